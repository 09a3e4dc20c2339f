//! Values only configuration loading needs (the regexes that read option syntax and rewrite
//! date patterns): built on first use, dropped once the daemon has built its jails, and
//! built again by the next load.

use std::sync::{Arc, Mutex, PoisonError};

pub struct LoadTime<T> {
    slot: Mutex<Option<Arc<T>>>,
    build: fn() -> T,
}

impl<T> LoadTime<T> {
    pub const fn new(build: fn() -> T) -> LoadTime<T> {
        LoadTime {
            slot: Mutex::new(None),
            build,
        }
    }

    /// The value, built now if it was not or was released.
    pub fn get(&self) -> Arc<T> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slot.get_or_insert_with(|| Arc::new((self.build)())))
    }

    /// Drops the value; users holding it keep theirs.
    pub fn release(&self) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn built_once_until_released() {
        static VALUE: LoadTime<usize> = LoadTime::new(|| BUILDS.fetch_add(1, Ordering::SeqCst));
        let first = VALUE.get();
        assert!(Arc::ptr_eq(&first, &VALUE.get()));
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
        VALUE.release();
        assert_eq!(*first, 0, "a holder keeps its value");
        assert_eq!(*VALUE.get(), 1);
        assert_eq!(BUILDS.load(Ordering::SeqCst), 2);
    }
}
