//! Keys that blocked clients wait for, and the ones that just became ready.
//!
//! A client blocked in BLPOP (and friends) watches its keys here. Whenever the engine stores a
//! value under a watched key (a push creating a list, RENAME onto it, …), the key is queued as
//! ready, exactly where redis-server's `dbAdd` signals a key as ready. The server drains the
//! queue after each command and serves the waiters.
//!
//! Cost when nobody is blocked: one relaxed atomic load per stored value.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// See the module documentation.
#[derive(Default)]
pub struct Readiness {
    /// (db, key) → number of waiters watching it.
    watched: Mutex<HashMap<(usize, Vec<u8>), usize>>,
    /// Total watches; zero keeps `stored` to a single load.
    watches: AtomicUsize,
    ready: Mutex<Vec<(usize, Vec<u8>)>>,
    has_ready: AtomicBool,
}

impl Readiness {
    fn lock_watched(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, Vec<u8>), usize>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more waiter watches `key` in `db`.
    pub fn watch(&self, db: usize, key: &[u8]) {
        *self.lock_watched().entry((db, key.to_vec())).or_insert(0) += 1;
        self.watches.fetch_add(1, Ordering::Release);
    }

    /// One waiter stops watching `key` in `db`.
    pub fn unwatch(&self, db: usize, key: &[u8]) {
        let mut w = self.lock_watched();
        let k = (db, key.to_vec());
        if let Some(n) = w.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                w.remove(&k);
            }
            self.watches.fetch_sub(1, Ordering::Release);
        }
    }

    /// Called by the engine whenever a value is stored under `key`.
    #[inline]
    pub fn stored(&self, db: usize, key: &[u8]) {
        if self.watches.load(Ordering::Acquire) == 0 {
            return;
        }
        if self.lock_watched().contains_key(&(db, key.to_vec())) {
            self.ready.lock().unwrap_or_else(|p| p.into_inner()).push((db, key.to_vec()));
            self.has_ready.store(true, Ordering::Release);
        }
    }

    /// True when some watched key became ready since the last `take`.
    #[inline]
    pub fn has_ready(&self) -> bool {
        self.has_ready.load(Ordering::Acquire)
    }

    /// The keys that became ready, oldest first, each once.
    pub fn take(&self) -> Vec<(usize, Vec<u8>)> {
        let mut r = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        self.has_ready.store(false, Ordering::Release);
        let mut keys = std::mem::take(&mut *r);
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watched_keys_become_ready() {
        let r = Readiness::default();
        r.stored(0, b"a");
        assert!(!r.has_ready());
        r.watch(0, b"a");
        r.watch(0, b"a");
        r.stored(1, b"a");
        assert!(!r.has_ready(), "another database");
        r.stored(0, b"a");
        r.stored(0, b"a");
        assert!(r.has_ready());
        assert_eq!(r.take(), vec![(0, b"a".to_vec())]);
        assert!(!r.has_ready());
        r.unwatch(0, b"a");
        r.unwatch(0, b"a");
        r.stored(0, b"a");
        assert!(!r.has_ready());
    }
}
