//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! ```text
//!   MULTI ──> commands are queued (+QUEUED), not run; a command refused while queueing (unknown,
//!             wrong arity, no_multi) marks the transaction aborted
//!   EXEC  ──> aborted? -EXECABORT.  Otherwise take every shard (Engine::exclusive), then: a
//!             watched key changed or expired since WATCH? null array.  Else run the queued
//!             commands in order under those guards, one reply each, and release.
//! ```
//!
//! Atomicity comes from the engine: while EXEC holds every shard, the handlers' own `lock*`
//! calls on this thread borrow the held guards, so each queued command runs unchanged and no
//! other client, on any thread or protocol, sees the transaction half done. Blocked clients
//! woken by the transaction are served after EXEC has released the shards (the connection
//! serves them after every command).
//!
//! WATCH registers the client's dirty flag with the key in the engine (beside the data, under
//! the shard lock): any change to the key — from any thread, either protocol, expiry, FLUSHDB,
//! SWAPDB — sets the flag, so EXEC needs no version comparison. The registrations are removed
//! by EXEC, DISCARD, UNWATCH, RESET and the connection's end (the drop of [`Transaction`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cachette_resp::{Args, Encoder};

use super::arg::*;
use super::flags::*;
use super::{spec, Argv, CmdError, Ctx, Session, Spec};
use crate::engine::Engine;
use crate::server::Shared;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (0, 0, 0), "transactions", "1.2.0", "O(1)", "Mark the start of a transaction block", multi),
    spec("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, (0, 0, 0), "transactions", "1.2.0", "Depends on commands in the transaction", "Execute all commands issued after MULTI", exec),
    spec("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (0, 0, 0), "transactions", "2.0.0", "O(N), when N is the number of queued commands", "Discard all commands issued after MULTI", discard),
    spec("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (1, -1, 1), "transactions", "2.2.0", "O(1) for every key.", "Watch the given keys to determine execution of the MULTI/EXEC block", watch).args(&[key("key").multiple()]),
    spec("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (0, 0, 0), "transactions", "2.2.0", "O(1)", "Forget about all watched keys", unwatch),
];

/// Commands that run at once inside MULTI instead of being queued (redis-server's list in
/// `processCommand`).
const RUN_IN_MULTI: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

/// Per-queued-command overhead counted against the queue bound, beside the argument bytes.
const QUEUED_OVERHEAD: usize = 32;

/// One command waiting for EXEC.
struct Queued {
    spec: &'static Spec,
    args: Args,
}

/// A connection's transaction state: the commands queued since MULTI and the keys it watches.
pub struct Transaction {
    /// Commands queued since MULTI; `None` outside MULTI.
    queued: Option<Vec<Queued>>,
    /// Bytes queued so far (bounded by `client-query-buffer-limit`).
    queued_bytes: usize,
    /// A command was refused while queueing: EXEC answers EXECABORT. Nothing more is stored
    /// then, since nothing will run.
    aborted: bool,
    /// A queued command may grow memory (EXEC is then refused when out of memory).
    denyoom: bool,
    /// The (database, key) pairs watched.
    watching: HashSet<(usize, Vec<u8>)>,
    /// Set by the engine when a watched key changes; a fresh flag for every round of WATCH.
    dirty: Arc<AtomicBool>,
    /// The engine the watches live in (known from the first WATCH on), for the cleanup on drop.
    engine: Option<&'static Engine>,
}

impl Default for Transaction {
    fn default() -> Self {
        Transaction {
            queued: None,
            queued_bytes: 0,
            aborted: false,
            denyoom: false,
            watching: HashSet::new(),
            dirty: Arc::new(AtomicBool::new(false)),
            engine: None,
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.unwatch_all();
    }
}

impl Transaction {
    /// True when a queued command writes (or may replicate): CLIENT PAUSE WRITE holds such an
    /// EXEC back, as redis-server does.
    pub fn queued_writes(&self) -> bool {
        self.queued.iter().flatten().any(|q| q.spec.has(super::flags::WRITE | super::flags::MAY_REPLICATE))
    }

    /// True between MULTI and EXEC/DISCARD.
    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }

    /// Number of commands queued (CLIENT LIST `multi=`; -1 outside MULTI, as redis-server).
    pub fn queued_len(&self) -> i64 {
        self.queued.as_ref().map_or(-1, |q| q.len() as i64)
    }

    /// Number of keys watched (CLIENT LIST `watch=` in later Redis versions).
    pub fn watched_len(&self) -> usize {
        self.watching.len()
    }

    /// Forgets every watched key, and starts a fresh dirty flag.
    pub fn unwatch_all(&mut self) {
        if self.watching.is_empty() {
            return;
        }
        if let Some(engine) = self.engine {
            for (db, key) in self.watching.drain() {
                let k = engine.hashed(&key);
                engine.lock_one(&k).unwatch(db, &k, &self.dirty);
            }
        }
        self.watching.clear();
        self.dirty = Arc::new(AtomicBool::new(false));
    }

    /// Leaves MULTI (if in it) and forgets the watches: DISCARD, RESET, EXECABORT.
    pub fn discard(&mut self) {
        self.queued = None;
        self.queued_bytes = 0;
        self.aborted = false;
        self.denyoom = false;
        self.unwatch_all();
    }

    /// Whether EXEC must fail because of WATCH, and the watches dropped; with every shard held
    /// (inside `Engine::exclusive`), so no change can slip in between the check and the run.
    fn check_and_release_watches(&mut self, now: u64) -> bool {
        let Some(engine) = self.engine.filter(|_| !self.watching.is_empty()) else { return false };
        let mut l = engine.lock_all();
        let mut failed = self.dirty.load(Ordering::Acquire);
        for (db, key) in self.watching.drain() {
            let k = engine.hashed(&key);
            failed = failed || l.watched_key_expired(db, &k, &self.dirty, now);
            l.unwatch(db, &k, &self.dirty);
        }
        drop(l);
        self.dirty = Arc::new(AtomicBool::new(false));
        failed
    }
}

/// Called by the dispatcher for a command it refuses before running it (unknown, wrong arity,
/// out of memory): inside MULTI the transaction is marked aborted, and a refused EXEC discards
/// the transaction (watches included, even outside MULTI) with redis-server's
/// `EXECABORT … because of: …` wording. Returns the error to answer.
pub fn refused(session: &mut Session, argv: &Argv<'_>, e: CmdError) -> CmdError {
    if argv.get(0).eq_ignore_ascii_case(b"exec") {
        session.tx.discard();
        let msg = e.message();
        let reason = msg.strip_prefix("ERR ").unwrap_or(&msg);
        return CmdError::err(format!("EXECABORT Transaction discarded because of: {reason}"));
    }
    if session.tx.in_multi() {
        session.tx.aborted = true;
    }
    e
}

/// redis-server's `reject_cmd_on_oom`: whether `spec` is refused while memory is over
/// `maxmemory` and nothing can be evicted. Commands that may grow memory are; inside MULTI so is
/// everything but EXEC, DISCARD, QUIT and RESET; EXEC is when it would run such a command.
pub fn refused_on_oom(session: &Session, spec: &Spec) -> bool {
    match spec.name {
        "exec" => session.tx.denyoom,
        "discard" | "quit" | "reset" => spec.has(DENYOOM),
        _ => spec.has(DENYOOM) || session.tx.in_multi(),
    }
}

/// Inside MULTI, queues `spec`'s command (answering +QUEUED) or refuses it, and returns true;
/// returns false when the command is to run now (outside MULTI, or one of [`RUN_IN_MULTI`]).
pub fn queue(shared: &Shared, session: &mut Session, spec: &'static Spec, argv: &Argv<'_>, out: &mut Vec<u8>) -> bool {
    if !session.tx.in_multi() || RUN_IN_MULTI.contains(&spec.name.split('|').next().unwrap_or(spec.name)) {
        return false;
    }
    let mut enc = Encoder::new(out, session.version);
    let tx = &mut session.tx;
    if spec.has(NO_MULTI) {
        tx.aborted = true;
        enc.error(b"ERR Command not allowed inside a transaction");
        return true;
    }
    if !tx.aborted {
        let bytes: usize = argv.rest(0).map(|a| a.len() + QUEUED_OVERHEAD).sum();
        // A transaction is input deferred: bound it like the query buffer it came through.
        let limit = shared.config().client_query_buffer_limit;
        if tx.queued_bytes + bytes > limit {
            tx.aborted = true;
            tx.queued = Some(Vec::new());
            tx.queued_bytes = 0;
            enc.error(b"ERR transaction discarded: queued commands exceed client-query-buffer-limit");
            return true;
        }
        let mut args = Args::new();
        argv.rest(0).for_each(|a| args.push_owned(a));
        tx.queued_bytes += bytes;
        tx.denyoom |= spec.has(DENYOOM);
        if let Some(q) = tx.queued.as_mut() {
            q.push(Queued { spec, args });
        }
    }
    enc.simple(b"QUEUED");
    true
}

fn multi(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let tx = &mut ctx.session.tx;
    if tx.in_multi() {
        return Err(CmdError::err("ERR MULTI calls can not be nested"));
    }
    tx.queued = Some(Vec::new());
    tx.queued_bytes = 0;
    tx.aborted = false;
    tx.denyoom = false;
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    if !ctx.session.tx.in_multi() {
        return Err(CmdError::err("ERR DISCARD without MULTI"));
    }
    ctx.session.tx.discard();
    ctx.out.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let tx = &mut ctx.session.tx;
    let Some(queued) = tx.queued.take() else {
        return Err(CmdError::err("ERR EXEC without MULTI"));
    };
    tx.queued_bytes = 0;
    tx.denyoom = false;
    if std::mem::take(&mut tx.aborted) {
        tx.unwatch_all();
        return Err(CmdError::err("EXECABORT Transaction discarded because of previous errors."));
    }
    let exclusive = ctx.engine().exclusive();
    if ctx.session.tx.check_and_release_watches(ctx.now) {
        drop(exclusive);
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(queued.len());
    crate::engine::effects::tx_begin();
    for q in &queued {
        let argv = Argv::new(&[], &q.args);
        ctx.shared.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = super::acl::recheck_in_exec(ctx.shared, ctx.session, q.spec, &argv) {
            Encoder::new(&mut *ctx.out.out, ctx.session.version).error(e.message().as_bytes());
            continue;
        }
        super::call(ctx.shared, ctx.session, q.spec, &argv, &mut *ctx.out.out, ctx.now);
        if let Some(blocked) = ctx.session.block.take() {
            // Inside a transaction a blocking command that finds nothing answers at once, as
            // if its timeout had passed; redis-server's BLMOVE and BRPOPLPUSH answer a null
            // bulk there (a null array on a real timeout), WAIT the replicas that acknowledged.
            let mut enc = Encoder::new(&mut *ctx.out.out, ctx.session.version);
            match (blocked.on_timeout, q.spec.name) {
                (super::TimeoutReply::Replicas { offset, .. }, _) => {
                    enc.int(ctx.shared.repl.acked(offset) as i64);
                }
                (_, "blmove" | "brpoplpush") => enc.null(),
                _ => enc.null_array(),
            }
        }
    }
    crate::engine::effects::tx_end(&ctx.engine().feed);
    drop(exclusive);
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if ctx.session.tx.in_multi() {
        return Err(CmdError::err("ERR WATCH inside MULTI is not allowed"));
    }
    let engine = ctx.engine();
    let db = ctx.session.db;
    let tx = &mut ctx.session.tx;
    tx.engine = Some(engine);
    for key in argv.rest(1) {
        if tx.watching.contains(&(db, key.to_vec())) {
            continue;
        }
        let k = engine.hashed(key);
        engine.lock_one(&k).watch(db, &k, &tx.dirty, ctx.now);
        tx.watching.insert((db, key.to_vec()));
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.session.tx.unwatch_all();
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watches_left(engine: &Engine, db: usize) -> usize {
        engine.lock_all().dbs(db).map(|d| d.watched_len()).sum()
    }

    fn watching(engine: &'static Engine, keys: &[&[u8]]) -> Transaction {
        let mut tx = Transaction::default();
        tx.engine = Some(engine);
        for key in keys {
            let k = engine.hashed(key);
            engine.lock_one(&k).watch(0, &k, &tx.dirty, 0);
            tx.watching.insert((0, key.to_vec()));
        }
        tx
    }

    #[test]
    fn watches_end_with_unwatch_discard_exec_and_the_connection() {
        let engine: &'static Engine = Box::leak(Box::new(Engine::new(4)));
        let keys: &[&[u8]] = &[b"a", b"b", b"c"];

        let mut tx = watching(engine, keys);
        assert_eq!(watches_left(engine, 0), 3);
        let old = tx.dirty.clone();
        tx.unwatch_all();
        assert_eq!(watches_left(engine, 0), 0);
        assert!(!Arc::ptr_eq(&old, &tx.dirty), "a fresh flag for the next round");

        let mut tx = watching(engine, keys);
        tx.queued = Some(Vec::new());
        tx.discard();
        assert!(!tx.in_multi());
        assert_eq!(watches_left(engine, 0), 0);

        drop(watching(engine, keys));
        assert_eq!(watches_left(engine, 0), 0, "a closed connection leaves no watch behind");

        let mut tx = watching(engine, keys);
        let k = engine.hashed(b"b");
        engine.lock_one(&k).set(0, &k, crate::types::Value::Str(b"x".to_vec()), None, 0, false, 0);
        let exclusive = engine.exclusive();
        assert!(tx.check_and_release_watches(0), "b changed");
        drop(exclusive);
        assert_eq!(watches_left(engine, 0), 0);
        assert!(!tx.check_and_release_watches(0), "nothing watched any more");
    }
}
