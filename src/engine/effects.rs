//! Write effects: the one stream of changes the AOF and replication consume.
//!
//! Every command that changes the keyspace leaves its *effect* in the [`Feed`], encoded once as
//! RESP, with a `SELECT` whenever the database differs from the previous effect's. An effect
//! replays to the same keyspace: by default it is the command line itself, and commands whose
//! replay would differ say what to log instead ([`rewrite`]): a relative expiry becomes an
//! absolute `PEXPIREAT`/`PXAT`, `SPOP` becomes `SREM` of what it popped, a float increment the
//! `SET` of its result, a served `BLPOP` an `LPOP`, a memcached write the equivalent Redis write.
//! Keys the server removes on its own (expiry, eviction) become `DEL`s ([`Feed::emit`]).
//!
//! Ordering: an effect enters the feed while its command still holds its shard locks — at
//! the drop of the [`super::Locked`] guard that saw the write, before the guards release — so
//! two commands on one key are logged in the order they ran, whatever threads ran them.
//! Commands on different shards commute, so their relative order in the log does not matter.
//!
//! Cost: while nothing consumes the feed (no AOF, no replica) the whole mechanism is one relaxed
//! load per write command. While something does, a write command copies its arguments once into
//! a thread-local buffer, and appends them to the feed under one mutex.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// The shared stream of effects.
#[derive(Default)]
pub struct Feed {
    enabled: AtomicBool,
    inner: Mutex<FeedInner>,
    /// Signalled when effects arrive (the AOF writer waits on it).
    arrived: Condvar,
    /// Bytes ever appended: the replication offset.
    offset: AtomicU64,
}

#[derive(Default)]
struct FeedInner {
    /// Effects not yet taken by the consumer.
    pending: Vec<u8>,
    /// Database of the last effect in the stream; None forces a SELECT before the next one.
    db: Option<usize>,
}

impl Feed {
    /// True while something consumes the feed.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Starts or stops recording effects. Starting forgets the database of the last effect, so
    /// the first one recorded is preceded by a SELECT.
    pub fn set_enabled(&self, on: bool) {
        let mut inner = self.lock();
        if on {
            inner.db = None;
        } else {
            inner.pending.clear();
        }
        self.enabled.store(on, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, FeedInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one or more encoded effects that apply to `db`.
    fn append(&self, db: usize, effects: &[u8]) {
        if effects.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let before = inner.pending.len();
        if inner.db != Some(db) {
            let db_text = db.to_string();
            encode(&mut inner.pending, &[b"SELECT", db_text.as_bytes()]);
            inner.db = Some(db);
        }
        inner.pending.extend_from_slice(effects);
        let added = inner.pending.len() - before;
        self.offset.fetch_add(added as u64, Ordering::Relaxed);
        drop(inner);
        self.arrived.notify_one();
    }

    /// Appends an effect that does not depend on the database (EXEC).
    fn append_raw(&self, effect: &[u8]) {
        let mut inner = self.lock();
        inner.pending.extend_from_slice(effect);
        self.offset.fetch_add(effect.len() as u64, Ordering::Relaxed);
        drop(inner);
        self.arrived.notify_one();
    }

    /// Records an effect that is not the running command's: a key the server deleted by itself
    /// (expired, evicted). The caller holds the key's shard.
    pub fn emit(&self, db: usize, args: &[&[u8]]) {
        if !self.enabled() {
            return;
        }
        let mut buf = Vec::new();
        encode(&mut buf, args);
        self.append(db, &buf);
    }

    /// Moves every pending effect into `out` (appending). Returns the feed offset after them.
    pub fn take(&self, out: &mut Vec<u8>) -> u64 {
        let mut inner = self.lock();
        out.append(&mut inner.pending);
        self.offset.load(Ordering::Relaxed)
    }

    /// Like [`Feed::take`], and the next effect recorded starts with a SELECT: the consumer is
    /// about to write the effects after these to a new file (an AOF rewrite). Called while the
    /// caller holds every shard, so the returned offset is a point-in-time of the keyspace.
    pub fn take_restart(&self, out: &mut Vec<u8>) -> u64 {
        let mut inner = self.lock();
        out.append(&mut inner.pending);
        inner.db = None;
        self.offset.load(Ordering::Relaxed)
    }

    /// Like [`Feed::take`], but first waits up to `timeout` for something to arrive.
    pub fn take_wait(&self, out: &mut Vec<u8>, timeout: std::time::Duration) -> u64 {
        let inner = self.lock();
        let mut inner = if inner.pending.is_empty() {
            self.arrived.wait_timeout(inner, timeout).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0)
        } else {
            inner
        };
        out.append(&mut inner.pending);
        self.offset.load(Ordering::Relaxed)
    }

    /// Bytes ever appended.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }
}

/// Appends `args` as a RESP multibulk.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The running command's effect, per thread.
#[derive(Default)]
struct Pending {
    /// A write command is running and the feed is on.
    open: bool,
    db: usize,
    /// The command line, encoded: the default effect.
    argv: Vec<u8>,
    /// Effects the command chose instead of its command line ([`rewrite`]).
    rewritten: Vec<u8>,
    /// The command said what to log (possibly nothing).
    is_rewritten: bool,
    /// memcached: the effect is the state of this key after each guard ([`begin_state`]).
    state_key: Option<Vec<u8>>,
}

/// Where a transaction stands in the feed (per thread: EXEC runs on one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tx {
    None,
    /// EXEC is running and has logged nothing yet: MULTI goes before its first effect.
    Pending,
    /// MULTI is in the feed: EXEC follows the last command.
    Open,
}

thread_local! {
    static TX: Cell<Tx> = const { Cell::new(Tx::None) };
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    /// A keyspace change happened under the current guard (see [`wrote`]).
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// Opens the effect of a write command about to run in `db` with arguments `args` (called by
/// the dispatcher only when the feed is on).
pub fn begin<'a>(db: usize, args: impl Iterator<Item = &'a [u8]>) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.open = true;
        p.db = db;
        p.argv.clear();
        p.rewritten.clear();
        p.is_rewritten = false;
        p.state_key = None;
        let args: Vec<&[u8]> = args.collect();
        encode(&mut p.argv, &args);
    });
    WROTE.with(|w| w.set(false));
}

/// Opens the effect of a memcached operation on `key` (db `db`): whatever it changes, its
/// effect is the key's resulting state — `SET key value [PXAT t]` plus `MCFLAGS key flags`, or
/// `DEL key` — computed as each guard releases (see `Locked`'s drop). One rule for every
/// memcached write (set/add/cas/append/incr/touch/gat/delete/meta …) keeps them replayable
/// without an effect per command and flag combination. Closed by [`end`].
pub fn begin_state(db: usize, key: &[u8]) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.open = true;
        p.db = db;
        p.argv.clear();
        p.rewritten.clear();
        p.is_rewritten = true;
        p.state_key = Some(key.to_vec());
    });
    WROTE.with(|w| w.set(false));
}

/// The key whose state is the pending effect, when the current guard changed something.
pub(super) fn pending_state() -> Option<(usize, Vec<u8>)> {
    if !WROTE.with(|w| w.get()) {
        return None;
    }
    PENDING.with(|p| {
        let p = p.borrow();
        if !p.open {
            return None;
        }
        p.state_key.clone().map(|k| (p.db, k))
    })
}

/// Closes the running command's effect (whatever was not logged by now was no change).
pub fn end() {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.open = false;
        p.state_key = None;
        if p.argv.capacity() > 64 * 1024 {
            p.argv = Vec::new();
        }
        if p.rewritten.capacity() > 64 * 1024 {
            p.rewritten = Vec::new();
        }
    });
}

/// The running command logs `args` instead of its command line; called several times, it logs
/// each in order. A command that calls it for nothing it changed logs nothing extra. Call it
/// while holding the shards of the keys it names (before the guard drops).
pub fn rewrite(args: &[&[u8]]) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.open {
            return;
        }
        p.is_rewritten = true;
        encode(&mut p.rewritten, args);
    });
}

/// The running command logs nothing of its own, whatever it changed (its effects were emitted
/// by other means).
pub fn suppress() {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.open {
            p.is_rewritten = true;
            p.rewritten.clear();
        }
    });
}

/// EXEC starts running its queued commands (holding every shard): their effects, if any, go
/// to the feed between MULTI and EXEC, so a reader of the log applies all or none of them.
pub fn tx_begin() {
    TX.with(|t| t.set(Tx::Pending));
}

/// EXEC is done: closes the MULTI it logged, if any (still holding every shard).
pub fn tx_end(feed: &Feed) {
    if TX.with(|t| t.replace(Tx::None)) == Tx::Open {
        let mut exec = Vec::new();
        encode(&mut exec, &[b"EXEC"]);
        feed.append_raw(&exec);
    }
}

/// Records that the keyspace changed under the current guard.
#[inline]
pub fn wrote() {
    WROTE.with(|w| w.set(true));
}

/// Called as a guard releases its shards: if the keyspace changed under it, the running
/// command's effect goes to the feed now, while the shards are still held.
pub(super) fn on_unlock(feed: &Feed) {
    if !WROTE.with(|w| w.replace(false)) {
        return;
    }
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.open {
            return;
        }
        let db = p.db;
        let logs = if p.is_rewritten { !p.rewritten.is_empty() } else { true };
        if logs && TX.with(|t| t.get()) == Tx::Pending {
            let mut multi = Vec::new();
            encode(&mut multi, &[b"MULTI"]);
            feed.append(db, &multi);
            TX.with(|t| t.set(Tx::Open));
        }
        if p.is_rewritten {
            let effects = std::mem::take(&mut p.rewritten);
            feed.append(db, &effects);
            p.rewritten = effects;
            p.rewritten.clear();
        } else {
            feed.append(db, &p.argv);
            // The command line stands for the whole command: a later guard of the same command
            // adds nothing more (its rewrites would, if it made any).
            p.is_rewritten = true;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_carry_select_when_the_database_changes() {
        let feed = Feed::default();
        feed.emit(0, &[b"DEL", b"k"]);
        let mut out = Vec::new();
        feed.take(&mut out);
        assert!(out.is_empty(), "nothing recorded while off");
        feed.set_enabled(true);
        feed.emit(3, &[b"DEL", b"k"]);
        feed.emit(3, &[b"DEL", b"j"]);
        feed.emit(0, &[b"DEL", b"x"]);
        feed.take(&mut out);
        assert_eq!(
            out,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nj\r\n\
              *2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n"
                .to_vec()
        );
        assert_eq!(feed.offset(), out.len() as u64);
    }

    #[test]
    fn a_command_logs_its_line_once_or_its_rewrites() {
        let feed = Feed::default();
        feed.set_enabled(true);
        let mut out = Vec::new();
        // No change: nothing.
        begin(0, [&b"SET"[..], b"k", b"v"].into_iter());
        on_unlock(&feed);
        end();
        assert_eq!(feed.take(&mut out), 0);
        // A change under two guards: the line once.
        begin(0, [&b"SET"[..], b"k", b"v"].into_iter());
        wrote();
        on_unlock(&feed);
        wrote();
        on_unlock(&feed);
        end();
        feed.take(&mut out);
        assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".to_vec());
        out.clear();
        // Rewritten: the rewrites, each in its guard.
        begin(0, [&b"SPOP"[..], b"s", b"2"].into_iter());
        rewrite(&[b"SREM", b"s", b"a"]);
        wrote();
        on_unlock(&feed);
        rewrite(&[b"SREM", b"s", b"b"]);
        wrote();
        on_unlock(&feed);
        end();
        feed.take(&mut out);
        assert_eq!(
            out,
            b"*3\r\n$4\r\nSREM\r\n$1\r\ns\r\n$1\r\na\r\n*3\r\n$4\r\nSREM\r\n$1\r\ns\r\n$1\r\nb\r\n".to_vec()
        );
    }
}
