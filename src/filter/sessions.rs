//! The MLFID session cache: what the lines of one multi-line session (`<F-MLFID>`) have
//! gathered so far, by session id (fail2ban's `mlfidCache`: 100 entries at most, each for
//! 5 minutes after it was inserted).

use std::collections::VecDeque;

use super::data::FailData;

/// Sessions kept at most, and how long (wall clock) after insertion.
pub const CAPACITY: usize = 100;
pub const TTL: f64 = 300.0;

struct Entry {
    key: String,
    inserted: f64,
    data: FailData,
}

/// Sessions oldest first, as fail2ban evicts them.
#[derive(Default)]
pub struct Sessions {
    /// A full cache evicts on every insert: the front pops without moving the others
    /// (the hashes below move, 400 bytes at most).
    entries: VecDeque<Entry>,
    /// `key_hash` of each entry, in the same order. Every failure line of an MLFID filter
    /// looks its session up, and comparing 4 contiguous bytes an entry, 16 entries at a
    /// time, costs a fraction of walking the entries themselves.
    hashes: Vec<u32>,
}

impl Sessions {
    /// Where `key`'s session is, if any. A key has one entry at most (inserted only when
    /// absent).
    pub fn find(&self, key: &str) -> Option<usize> {
        let hash = key_hash(key);
        let is_key = |pos: usize| self.hashes[pos] == hash && self.entries[pos].key == key;
        let (chunks, rest) = self.hashes.as_chunks::<16>();
        for (n, chunk) in chunks.iter().enumerate() {
            // Compares without a branch between them: a few vector instructions a chunk.
            if chunk.iter().fold(false, |any, h| any | (*h == hash)) {
                if let Some(pos) = (n * 16..n * 16 + 16).find(|&pos| is_key(pos)) {
                    return Some(pos);
                }
            }
        }
        (self.hashes.len() - rest.len()..self.hashes.len()).find(|&pos| is_key(pos))
    }

    /// `find`, except that an entry expired at `wall` is removed and not found.
    pub fn find_live(&mut self, key: &str, wall: f64) -> Option<usize> {
        let pos = self.find(key)?;
        if self.entries[pos].inserted + TTL <= wall {
            self.remove(pos);
            return None;
        }
        Some(pos)
    }

    pub fn data_mut(&mut self, pos: usize) -> &mut FailData {
        &mut self.entries[pos].data
    }

    pub fn remove(&mut self, pos: usize) {
        self.entries.remove(pos);
        self.hashes.remove(pos);
    }

    /// Adds a session that is not in the cache. A full cache first evicts from the oldest
    /// end, and goes on evicting while the evicted entry had expired.
    pub fn insert(&mut self, key: &str, data: FailData, wall: f64) {
        if self.entries.len() >= CAPACITY {
            while let Some(old) = self.entries.pop_front() {
                self.hashes.remove(0);
                if old.inserted + TTL > wall {
                    break;
                }
            }
        }
        self.entries.push_back(Entry {
            key: key.to_string(),
            inserted: wall,
            data,
        });
        self.hashes.push(key_hash(key));
    }
}

/// FNV-1a (32 bits): the hash only spares most key comparisons in a short scan, so it needs
/// to be cheap on short keys rather than resistant to crafted ones (a collision costs a
/// compare).
fn key_hash(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache against a plain list with fail2ban's rules, over a long random run with
    /// few enough keys to hit, expire, remove and evict all the time.
    #[test]
    fn the_cache_follows_a_plain_list() {
        let mut cache = Sessions::default();
        let mut model: Vec<(String, f64, u64)> = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut wall = 0.0;
        let mut stamp = 0u64;
        for _ in 0..20_000 {
            wall += next(4) as f64;
            let key = format!("k{}", next(180));
            match next(4) {
                0 => {
                    let live = cache.find_live(&key, wall);
                    let at = model.iter().position(|e| e.0 == key);
                    match at {
                        Some(i) if model[i].1 + TTL <= wall => {
                            model.remove(i);
                            assert_eq!(live, None);
                        }
                        _ => assert_eq!(live, at),
                    }
                    if let Some(pos) = live {
                        let found = cache.data_mut(pos).get("stamp").map(str::to_string);
                        assert_eq!(found, Some(model[pos].2.to_string()));
                        if next(2) == 0 {
                            cache.remove(pos);
                            model.remove(pos);
                        }
                    }
                }
                _ if cache.find(&key).is_none() => {
                    stamp += 1;
                    let mut data = FailData::default();
                    data.set("stamp", Some(stamp.to_string().into()));
                    cache.insert(&key, data, wall);
                    if model.len() >= CAPACITY {
                        while !model.is_empty() {
                            let old = model.remove(0);
                            if old.1 + TTL > wall {
                                break;
                            }
                        }
                    }
                    model.push((key, wall, stamp));
                }
                _ => {}
            }
            assert_eq!(cache.entries.len(), model.len());
            assert_eq!(cache.hashes.len(), model.len());
        }
    }

    #[test]
    fn colliding_hashes_still_compare_keys() {
        let mut cache = Sessions::default();
        for i in 0..20 {
            cache.insert(&format!("s{i}"), FailData::default(), 0.0);
        }
        // Same hash as an entry, another key: not found (a crafted collision only costs
        // a compare).
        cache.hashes[3] = key_hash("other");
        assert_eq!(cache.find("other"), None);
        assert_eq!(cache.find("s3"), None);
        // An equal hash in an earlier chunk does not end the search.
        cache.hashes[4] = key_hash("s17");
        assert_eq!(cache.find("s17"), Some(17));
        cache.hashes[18] = key_hash("s19");
        assert_eq!(cache.find("s19"), Some(19));
        assert_eq!(cache.entries.len(), 20);
    }
}
