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
//! a thread-local buffer, and appends them to the feed under one mutex (once per consumer: the
//! AOF's pending bytes, the replication stream's).
//!
//! Two consumers: the AOF takes `pending` ([`Feed::take`]); replication, once a replica has
//! attached, drains its own copy into the backlog ([`Feed::drain_replication`]). The
//! replication stream's offset is `master_repl_offset`; a replica following a primary proxies
//! the primary's bytes into it ([`Feed::proxy`]) and keeps its own effects out of it.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use crate::replication::backlog::Backlog;

/// The shared stream of effects, with its two consumers: the AOF (`pending`, taken by the AOF
/// writer) and replication (`repl`, drained into the backlog by the replication thread; see
/// `crate::replication`). Each consumer has its own database cursor, because each stream must
/// be replayable from its own start; the bytes of an effect are the same in both.
#[derive(Default)]
pub struct Feed {
    /// True while either consumer is on: the one check a write command pays.
    enabled: AtomicBool,
    inner: Mutex<FeedInner>,
    /// Signalled when effects arrive (the AOF writer waits on it).
    arrived: Condvar,
    /// Bytes ever appended to the AOF's stream (the AOF's durability offset).
    offset: AtomicU64,
    /// Bytes ever appended to the replication stream: `master_repl_offset`.
    repl_offset: AtomicU64,
    /// The replication consumer is awake (or already woken): appends need not wake it. It
    /// clears the flag only when it finds nothing undrained and is about to sleep
    /// ([`Feed::replication_park`]), so under a steady load writers never pay for a wake-up.
    repl_signalled: AtomicBool,
    /// Wakes the replication consumer (installed once by the replication thread).
    repl_waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

#[derive(Default)]
struct FeedInner {
    /// The AOF consumes the feed.
    aof: bool,
    /// Effects not yet taken by the AOF.
    pending: Vec<u8>,
    /// Database of the last effect in the AOF stream; None forces a SELECT before the next one.
    db: Option<usize>,
    /// The replication stream, once a replica attached (None: replication costs nothing).
    repl: Option<ReplStream>,
}

/// The replication side of the feed: bytes not yet drained, and the backlog they go into.
struct ReplStream {
    pending: Vec<u8>,
    /// Database of the last effect in the replication stream (None: SELECT before the next).
    db: Option<usize>,
    /// This server follows a primary: its own effects stay out of the replication stream,
    /// which carries the primary's bytes verbatim ([`Feed::proxy`]).
    upstream: bool,
    backlog: Backlog,
}

thread_local! {
    /// The replica's apply loop is running a command from its primary (see
    /// [`applying_from_master`]).
    static FROM_MASTER: Cell<bool> = const { Cell::new(false) };
}

/// The replica side's switch: while on (on the thread applying the primary's stream), effects
/// go to the AOF only, never to the replication stream, which receives the primary's bytes
/// through [`Feed::proxy`] instead.
pub fn applying_from_master(on: bool) {
    FROM_MASTER.with(|f| f.set(on));
}

/// True on the thread applying the primary's stream (a replica's lookups then see keys whose
/// time has passed as live: see `engine`).
#[inline]
pub fn is_applying_from_master() -> bool {
    FROM_MASTER.with(Cell::get)
}

/// Appends `effects` to `out`, preceded by a SELECT when `db` is not the stream's current one.
/// Returns the bytes added.
fn push_effect(out: &mut Vec<u8>, cursor: &mut Option<usize>, db: Option<usize>, effects: &[u8]) -> usize {
    let before = out.len();
    if let Some(db) = db {
        if *cursor != Some(db) {
            let db_text = db.to_string();
            encode(out, &[b"SELECT", db_text.as_bytes()]);
            *cursor = Some(db);
        }
    }
    out.extend_from_slice(effects);
    out.len() - before
}

impl Feed {
    /// True while something consumes the feed.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn refresh_enabled(&self, inner: &FeedInner) {
        self.enabled.store(inner.aof || inner.repl.is_some(), Ordering::Relaxed);
    }

    /// Starts or stops recording effects for the AOF. Starting forgets the database of the last
    /// effect, so the first one recorded is preceded by a SELECT.
    pub fn set_enabled(&self, on: bool) {
        let mut inner = self.lock();
        if on {
            inner.db = None;
        } else {
            inner.pending.clear();
        }
        inner.aof = on;
        self.refresh_enabled(&inner);
    }

    fn lock(&self) -> MutexGuard<'_, FeedInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one or more encoded effects that apply to `db` (None: to no database, EXEC).
    fn append(&self, db: Option<usize>, effects: &[u8]) {
        if effects.is_empty() {
            return;
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        let aof = inner.aof;
        if aof {
            let added = push_effect(&mut inner.pending, &mut inner.db, db, effects);
            self.offset.fetch_add(added as u64, Ordering::Relaxed);
        }
        let mut wake = false;
        if let Some(r) = inner.repl.as_mut() {
            if !r.upstream && !FROM_MASTER.with(|f| f.get()) {
                let added = push_effect(&mut r.pending, &mut r.db, db, effects);
                self.repl_offset.fetch_add(added as u64, Ordering::Relaxed);
                wake = !self.repl_signalled.swap(true, Ordering::AcqRel);
            }
        }
        drop(guard);
        if aof {
            self.arrived.notify_one();
        }
        if wake {
            self.wake_replication();
        }
    }

    fn wake_replication(&self) {
        if let Some(w) = self.repl_waker.get() {
            w();
        }
    }

    /// Records an effect that is not the running command's: a key the server deleted by itself
    /// (expired, evicted). The caller holds the key's shard.
    pub fn emit(&self, db: usize, args: &[&[u8]]) {
        if !self.enabled() {
            return;
        }
        let mut buf = Vec::new();
        encode(&mut buf, args);
        self.append(Some(db), &buf);
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

    /// Bytes ever appended to the AOF's stream.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }

    // ----- the replication stream -------------------------------------------------------

    /// Installs the function that wakes the replication consumer (once).
    pub fn set_replication_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.repl_waker.set(wake);
    }

    /// `master_repl_offset`: bytes ever appended to the replication stream.
    pub fn repl_offset(&self) -> u64 {
        self.repl_offset.load(Ordering::Relaxed)
    }

    /// True once the replication stream exists (a replica attached, or this server follows a
    /// primary).
    pub fn replicating(&self) -> bool {
        self.lock().repl.is_some()
    }

    /// Creates the replication stream with a backlog of `size` bytes, if there is none (Redis
    /// creates its backlog when the first replica attaches). The offset goes on from where it
    /// was; the first effect recorded starts with a SELECT.
    pub fn start_replication(&self, size: usize) {
        let mut inner = self.lock();
        if inner.repl.is_none() {
            let offset = self.repl_offset.load(Ordering::Relaxed);
            inner.repl = Some(ReplStream {
                pending: Vec::new(),
                db: None,
                upstream: false,
                backlog: Backlog::new(size, offset),
            });
            self.refresh_enabled(&inner);
        }
    }

    /// Frees the replication stream and its backlog (`repl-backlog-ttl` passed without
    /// replicas). The offset is kept, as Redis keeps `master_repl_offset`.
    pub fn stop_replication(&self) {
        let mut inner = self.lock();
        if let Some(r) = inner.repl.take() {
            // Undrained bytes were counted but will never be served: nobody can ask for them
            // (a PSYNC needs the backlog, which goes with them).
            drop(r);
        }
        self.refresh_enabled(&inner);
    }

    /// Restarts the replication stream at `offset` with an empty backlog (a replica that just
    /// loaded its primary's snapshot taken at `offset`), following the primary (`upstream`).
    pub fn reset_replication(&self, offset: u64, size: usize, upstream: bool) {
        let mut inner = self.lock();
        self.repl_offset.store(offset, Ordering::Relaxed);
        inner.repl = Some(ReplStream { pending: Vec::new(), db: None, upstream, backlog: Backlog::new(size, offset) });
        self.refresh_enabled(&inner);
    }

    /// Whether this server's own effects enter the replication stream (false while it follows
    /// a primary, whose bytes it proxies). Switching forces a SELECT before the next own effect.
    pub fn set_upstream(&self, upstream: bool) {
        let mut inner = self.lock();
        if let Some(r) = inner.repl.as_mut() {
            r.upstream = upstream;
            r.db = None;
        }
    }

    /// The replica side: appends bytes received from the primary, verbatim, to the replication
    /// stream (backlog and sub-replicas), not to the AOF. Their SELECTs are the primary's, so
    /// the next own effect (after a promotion) starts with a SELECT of its own.
    pub fn proxy(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let Some(r) = inner.repl.as_mut() else { return };
        r.pending.extend_from_slice(bytes);
        r.db = None;
        self.repl_offset.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let wake = !self.repl_signalled.swap(true, Ordering::AcqRel);
        drop(inner);
        if wake {
            self.wake_replication();
        }
    }

    /// Appends a command that belongs to the replication stream only (the primary's PING
    /// heartbeat, REPLCONF GETACK), in whatever database the stream is in.
    pub fn append_replication_only(&self, args: &[&[u8]]) {
        let mut buf = Vec::new();
        encode(&mut buf, args);
        let mut inner = self.lock();
        let Some(r) = inner.repl.as_mut() else { return };
        if r.upstream {
            return;
        }
        r.pending.extend_from_slice(&buf);
        self.repl_offset.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let wake = !self.repl_signalled.swap(true, Ordering::AcqRel);
        drop(inner);
        if wake {
            self.wake_replication();
        }
    }

    /// Forces a SELECT before the next effect of the replication stream (a new replica starts
    /// from a snapshot and must be told its database, as Redis resets `slaveseldb`).
    pub fn replication_reselect(&self) {
        if let Some(r) = self.lock().repl.as_mut() {
            r.db = None;
        }
    }

    /// The replication consumer's drain: moves the undrained bytes into the backlog and into
    /// `out` (appended). Returns the stream offset at the start of those bytes, or None when
    /// there is no replication stream.
    pub fn drain_replication(&self, out: &mut Vec<u8>) -> Option<u64> {
        let mut inner = self.lock();
        let r = inner.repl.as_mut()?;
        let start = self.repl_offset.load(Ordering::Relaxed) - r.pending.len() as u64;
        r.backlog.append(&r.pending);
        out.append(&mut r.pending);
        Some(start)
    }

    /// The replication consumer is about to sleep: true when nothing is undrained, and (with
    /// `wake_on_append`) the next append will wake it; false when bytes wait (the consumer
    /// should come back soon, and appends meanwhile stay silent). Clearing the flag under the
    /// lock that appends set it under means no append is missed. Without `wake_on_append` (no
    /// replica to feed, only the backlog) appends never wake the consumer: it drains on its
    /// own tick, and writers on its core are spared a context switch per write batch, which
    /// cost 60% of a pinned worker's SET throughput.
    pub fn replication_park(&self, wake_on_append: bool) -> bool {
        let inner = self.lock();
        if inner.repl.as_ref().is_some_and(|r| !r.pending.is_empty()) {
            return false;
        }
        self.repl_signalled.store(!wake_on_append, Ordering::Release);
        true
    }

    /// Runs `f` on the backlog (under the feed's lock: keep it short).
    pub fn with_backlog<T>(&self, f: impl FnOnce(&mut Backlog) -> T) -> Option<T> {
        self.lock().repl.as_mut().map(|r| f(&mut r.backlog))
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
        feed.append(None, &exec);
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
            feed.append(Some(db), &multi);
            TX.with(|t| t.set(Tx::Open));
        }
        if p.is_rewritten {
            let effects = std::mem::take(&mut p.rewritten);
            feed.append(Some(db), &effects);
            p.rewritten = effects;
            p.rewritten.clear();
        } else {
            feed.append(Some(db), &p.argv);
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
    fn the_replication_stream_has_its_own_cursor_and_proxies_verbatim() {
        let feed = Feed::default();
        feed.emit(0, &[b"DEL", b"k"]);
        assert_eq!(feed.repl_offset(), 0, "nothing before a replica attaches");
        feed.start_replication(1 << 20);
        feed.emit(2, &[b"DEL", b"k"]);
        let mut out = Vec::new();
        assert_eq!(feed.drain_replication(&mut out), Some(0));
        let first = b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n".to_vec();
        assert_eq!(out, first);
        assert_eq!(feed.repl_offset(), first.len() as u64);
        let mut aof = Vec::new();
        feed.take(&mut aof);
        assert!(aof.is_empty(), "the AOF is off: nothing pending for it");
        // The AOF turning on starts its own cursor; the replication stream keeps db 2.
        feed.set_enabled(true);
        feed.emit(2, &[b"DEL", b"j"]);
        feed.take(&mut aof);
        assert!(aof.starts_with(b"*2\r\n$6\r\nSELECT"), "the AOF gets its SELECT");
        out.clear();
        assert_eq!(feed.drain_replication(&mut out), Some(first.len() as u64));
        assert_eq!(out, b"*2\r\n$3\r\nDEL\r\n$1\r\nj\r\n".to_vec(), "no SELECT: still db 2");
        // Applying from a primary: AOF only. Following one: proxied bytes only.
        applying_from_master(true);
        feed.emit(2, &[b"DEL", b"x"]);
        applying_from_master(false);
        feed.set_upstream(true);
        feed.emit(2, &[b"DEL", b"y"]);
        feed.proxy(b"*1\r\n$4\r\nPING\r\n");
        out.clear();
        feed.drain_replication(&mut out);
        assert_eq!(out, b"*1\r\n$4\r\nPING\r\n".to_vec());
        aof.clear();
        feed.take(&mut aof);
        assert_eq!(aof.len(), 2 * b"*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n".len());
        // The backlog holds the whole stream so far.
        let mut all = Vec::new();
        assert_eq!(feed.with_backlog(|b| b.copy_from(0, &mut all)), Some(true));
        assert_eq!(all.len() as u64, feed.repl_offset());
        // Promoted: its own effects enter the stream again, after a SELECT.
        feed.set_upstream(false);
        feed.emit(2, &[b"DEL", b"z"]);
        out.clear();
        feed.drain_replication(&mut out);
        assert!(out.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"));
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
