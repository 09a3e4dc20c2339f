//! Matching ahead on a second core: lines are read and dated in batches on this thread (the
//! date detector is stateful), a helper thread runs the filter's pure regex searches for each
//! batch (`Matcher::prematch`), and this thread applies them to the filter in line order. The
//! helper walks a batch from its end and this thread from its start, so the two meet in the
//! middle and whichever gets to a line first computes it: the split adapts to the machine.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::filter::{DatedLine, Filter, LineResult, Matcher, Prematch};

/// Lines per batch: large enough to amortise the hand-over, small enough to stay in cache.
const BATCH: usize = 1024;

/// One line's searches: claimed by whichever thread gets there first.
struct Slot {
    buffer: Arc<str>,
    claimed: AtomicBool,
    done: Mutex<Option<Prematch>>,
}

/// A batch as both threads see it.
struct Batch {
    slots: Vec<Slot>,
    check_all: bool,
}

impl Slot {
    /// Helper side: compute unless this thread already claimed the line. The lock is held
    /// from the claim to the result, so a waiting reader always finds the result.
    fn fill(&self, matcher: &Matcher, check_all: bool) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.claimed.swap(true, Ordering::AcqRel) {
            *done = Some(matcher.prematch(Arc::clone(&self.buffer), check_all));
        }
    }

    /// Reader side: compute it here if the helper has not claimed it, else take its result.
    fn take(&self, matcher: &Matcher, check_all: bool) -> Prematch {
        if !self.claimed.swap(true, Ordering::AcqRel) {
            return matcher.prematch(Arc::clone(&self.buffer), check_all);
        }
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        done.take()
            .unwrap_or_else(|| matcher.prematch(Arc::clone(&self.buffer), check_all))
    }
}

/// A line read and dated, waiting for its searches.
pub struct Pending {
    pub line_no: u64,
    pub line: String,
    dated: DatedLine,
}

/// Feeds lines through `filter` with the searches run ahead on a helper thread; `next`
/// yields the lines to process (already stripped and filtered), `emit` receives each line
/// with its result, in order.
pub fn run(
    filter: &mut Filter,
    now: f64,
    mut next: impl FnMut() -> io::Result<Option<(u64, String)>>,
    mut emit: impl FnMut(&Pending, LineResult) -> io::Result<()>,
) -> io::Result<()> {
    let matcher = Arc::clone(&filter.matcher);
    let check_all = filter.mode.check_all_regex;
    let (sender, receiver) = mpsc::channel::<Arc<Batch>>();
    std::thread::scope(|scope| {
        let helper_matcher = Arc::clone(&matcher);
        scope.spawn(move || {
            for batch in receiver {
                for slot in batch.slots.iter().rev() {
                    slot.fill(&helper_matcher, batch.check_all);
                }
            }
        });
        let mut waiting: Option<(Arc<Batch>, Vec<Pending>)> = None;
        loop {
            let mut pending = Vec::with_capacity(BATCH);
            let mut slots = Vec::with_capacity(BATCH);
            while pending.len() < BATCH {
                let Some((line_no, line)) = next()? else {
                    break;
                };
                let dated = filter.date_line(&line, now);
                slots.push(Slot {
                    buffer: Filter::likely_buffer(&line, &dated).into(),
                    claimed: AtomicBool::new(false),
                    done: Mutex::new(None),
                });
                pending.push(Pending {
                    line_no,
                    line,
                    dated,
                });
            }
            let finished = pending.is_empty();
            let batch = Arc::new(Batch { slots, check_all });
            if !finished {
                // A closed channel only means the helper is gone: this thread computes all.
                let _ = sender.send(Arc::clone(&batch));
            }
            if let Some((batch, lines)) = waiting.take() {
                for (slot, line) in batch.slots.iter().zip(&lines) {
                    let prematch = slot.take(&matcher, check_all);
                    let result = filter.process_dated(&line.line, line.dated, Some(prematch), now);
                    emit(line, result)?;
                }
            }
            if finished {
                break;
            }
            waiting = Some((batch, pending));
        }
        drop(sender);
        Ok(())
    })
}
