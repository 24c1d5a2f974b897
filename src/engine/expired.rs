//! Keys the engine deleted because their TTL passed, kept for the `expired` keyspace event (a
//! second log of the same kind keeps evicted keys for `evicted`).
//!
//! The engine knows nothing of pub/sub: when notifications of expired keys are on, it records
//! each reclaimed key here (lazily on lookup, or in the active cycle), and the server publishes
//! the events — after the command that met the key, or after the cron's cycle. Off, recording
//! costs one relaxed load per reclaimed key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// See the module documentation.
#[derive(Default)]
pub struct ExpiredLog {
    enabled: AtomicBool,
    pending: AtomicBool,
    keys: Mutex<Vec<(usize, Vec<u8>)>>,
}

impl ExpiredLog {
    /// Turns recording on or off (`notify-keyspace-events` with `x` and `K` or `E`).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if !on {
            self.take();
        }
    }

    /// True while recording (one relaxed load).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Called by the engine for each key it reclaimed.
    #[inline]
    pub fn record(&self, db: usize, key: &[u8]) {
        if self.enabled.load(Ordering::Relaxed) {
            self.keys.lock().unwrap_or_else(|p| p.into_inner()).push((db, key.to_vec()));
            self.pending.store(true, Ordering::Release);
        }
    }

    /// True when keys wait to be announced (one atomic load).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// The recorded keys, oldest first, emptying the log.
    pub fn take(&self) -> Vec<(usize, Vec<u8>)> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.keys.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_when_enabled() {
        let log = ExpiredLog::default();
        log.record(0, b"a");
        assert!(!log.has_pending());
        log.set_enabled(true);
        log.record(0, b"a");
        log.record(3, b"b");
        assert!(log.has_pending());
        assert_eq!(log.take(), vec![(0, b"a".to_vec()), (3, b"b".to_vec())]);
        assert!(log.take().is_empty());
    }
}
