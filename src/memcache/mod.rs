//! memcached commands mapped onto the shared engine.
//!
//! A memcached item *is* a Redis string in database 0: `set k 5 0 1` here is `GET k` → the same
//! bytes there, and a Redis `SET` is a memcached hit with flags 0. Items carry memcached's client
//! flags and CAS unique in the engine entry. A key holding a Redis collection is invisible to
//! memcached reads (a miss), is refused by in-place updates (NOT_STORED / NOT_FOUND) and is
//! replaced by `set`, as a Redis `SET` would.
//!
//! Expiry times follow memcached: 0 never, negative already expired, up to 30 days relative
//! seconds, beyond that a unix time. An item stored with a time already past is stored already
//! expired: no reader sees it, and the reply is still STORED, as memcached answers.
//!
//! The codec (`cachette_memcache`) has already validated keys, lengths and numbers; this module
//! only applies semantics and writes replies. It never builds Redis command strings. The text
//! and meta commands are here and in `meta`; the binary protocol's are in `binary` (with SASL in
//! `sasl`), on the same `store`, `arith`, `fetch`, `flush_all` and `stats`.

mod admin;
pub mod binary;
mod meta;
pub mod sasl;
mod stats;

pub use stats::Stats;

use std::sync::atomic::{AtomicU64, Ordering};

use cachette_memcache::request::{GetMode, MetaKind, StoreMode};
use cachette_memcache::{reply, Command};

use crate::commands::{notify, Session};
use crate::engine::{Hashed, Locked};
use crate::server::Shared;
use crate::types::Value;

/// The memcached version reported by `version` and `stats` (clients gate features on it).
pub const MEMCACHED_VERSION: &str = "1.6.18";
/// memcached's boundary between relative and absolute expiry times.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;
/// memcached items live in database 0.
const DB: usize = 0;

/// What the connection should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep serving.
    Continue,
    /// Close after flushing (quit).
    Close,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// When an item with memcached exptime `exptime` expires, given the clock `now` (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    Never,
    /// At this unix ms.
    At(u64),
    /// Already: the item is not kept.
    Past,
}

/// memcached's exptime rules (see the module documentation).
pub fn expiry(exptime: i64, now: u64) -> Expiry {
    if exptime == 0 {
        return Expiry::Never;
    }
    if exptime < 0 {
        return Expiry::Past;
    }
    let at = if exptime > REALTIME_MAXDELTA {
        (exptime as u64).saturating_mul(1000)
    } else {
        now.saturating_add(exptime as u64 * 1000)
    };
    if at <= now {
        Expiry::Past
    } else {
        Expiry::At(at)
    }
}

/// Runs one parsed memcached command, appending its reply (if any) to `out`.
pub fn execute(shared: &Shared, session: &mut Session, cmd: Command<'_>, out: &mut Vec<u8>, now: u64) -> Action {
    shared.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
    apply_pending_flush(shared, now);
    if read_only_replica(shared) && writes(&cmd) {
        // Unlike a refused store's reply, this one is sent even with noreply: the client
        // must learn that nothing it sends here is kept.
        out.extend_from_slice(READ_ONLY_REPLICA);
        return Action::Continue;
    }
    let st = &shared.memcache;
    match cmd {
        Command::Get { mode, exptime, keys } => {
            let touch = matches!(mode, GetMode::Gat | GetMode::Gats).then_some(exptime);
            let with_cas = matches!(mode, GetMode::Gets | GetMode::Gats);
            for key in keys.iter() {
                fetch(shared, key, touch, now, |flags, cas, data| {
                    reply::value(out, key, flags, data, with_cas.then_some(cas));
                });
            }
            out.extend_from_slice(b"END\r\n");
        }
        Command::Store { mode, key, flags, exptime, data, cas, noreply } => {
            bump(&st.cmd_set);
            let compare_cas = (mode == StoreMode::Cas).then_some(cas);
            let req =
                StoreRequest { mode, key, flags, exptime, data, compare_cas, invalidate: false, binary_key: false };
            let (r, _) = store(shared, &req, now);
            if !noreply {
                out.extend_from_slice(r.line());
            }
        }
        Command::Delete { key, noreply } => {
            let k = shared.engine.hashed(key);
            let found = lock_key(shared, &k).delete(DB, &k, now);
            if found {
                event(shared, notify::GENERIC, "del", key);
            }
            bump(if found { &st.delete_hits } else { &st.delete_misses });
            if !noreply {
                out.extend_from_slice(if found { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" });
            }
        }
        Command::Arith { incr, key, delta, noreply } => {
            let r = arith(shared, &ArithRequest { key, incr, delta, compare_cas: None, create: None }, now);
            if !noreply {
                match r {
                    ArithOutcome::Value { value, .. } => reply_number(out, value),
                    ArithOutcome::NonNumeric => out.extend_from_slice(reply::CLIENT_ERROR_NON_NUMERIC),
                    // Without a CAS to compare or an item to create, only NOT_FOUND is left.
                    ArithOutcome::NotFound | ArithOutcome::Exists | ArithOutcome::NotStored => {
                        out.extend_from_slice(b"NOT_FOUND\r\n")
                    }
                }
            }
        }
        Command::Touch { key, exptime, noreply } => {
            bump(&st.cmd_touch);
            let k = shared.engine.hashed(key);
            let found = touch(&mut lock_key(shared, &k), &k, exptime, now);
            if found {
                touch_event(shared, key, exptime, now);
            }
            bump(if found { &st.touch_hits } else { &st.touch_misses });
            if !noreply {
                out.extend_from_slice(if found { b"TOUCHED\r\n" } else { b"NOT_FOUND\r\n" });
            }
        }
        Command::FlushAll { delay, noreply } => {
            flush_all(shared, delay, now);
            if !noreply {
                out.extend_from_slice(b"OK\r\n");
            }
        }
        Command::Version => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(MEMCACHED_VERSION.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Command::Verbosity { level, noreply } => {
            st.verbosity.store(u64::from(level), Ordering::Relaxed);
            if !noreply {
                out.extend_from_slice(b"OK\r\n");
            }
        }
        Command::Quit => return Action::Close,
        Command::Stats { args } => stats::stats(shared, session, args, out, now),
        Command::Shutdown { invalid, .. } => return admin::shutdown(shared, invalid, out),
        Command::CacheMemlimit { megabytes, noreply } => admin::cache_memlimit(shared, megabytes, noreply, out),
        Command::LruCrawler(c) => admin::lru_crawler(shared, c, out, now),
        Command::SlabsReassign { src, dst } => admin::slabs_reassign(src, dst, out),
        Command::Tuning { noreply } => {
            if !noreply {
                out.extend_from_slice(reply::OK);
            }
        }
        Command::Watch => out.extend_from_slice(b"CLIENT_ERROR watch commands not allowed\r\n"),
        // memcached 1.6.18 leaves cmd_meta at 0 (it counts meta commands only in its proxy).
        Command::Meta(m) => {
            meta::execute(shared, m, out, now);
        }
    }
    if notify::pending(shared) {
        notify::flush_expired(shared, None);
    }
    Action::Continue
}

/// The answer to a write sent to a read-only replica (`replica-read-only yes`): memcached has
/// no such state, so the text is cachette's own; the binary protocol answers status 0x83
/// (`Not supported`).
pub const READ_ONLY_REPLICA: &[u8] = b"SERVER_ERROR read only replica\r\n";

/// True when this server is a replica refusing its clients' writes.
pub fn read_only_replica(shared: &Shared) -> bool {
    shared.replica.is_replica() && shared.config().replica_read_only
}

/// True for the text and meta commands that change an item (a touch included).
fn writes(cmd: &Command<'_>) -> bool {
    match cmd {
        Command::Get { mode, .. } => matches!(mode, GetMode::Gat | GetMode::Gats),
        Command::Store { .. }
        | Command::Delete { .. }
        | Command::Arith { .. }
        | Command::Touch { .. }
        | Command::FlushAll { .. } => true,
        Command::Meta(m) => match m.kind {
            MetaKind::Set | MetaKind::Delete | MetaKind::Arith => true,
            MetaKind::Get => m.flags.iter().any(|(f, _)| f == b'T'),
            MetaKind::Noop | MetaKind::Debug => false,
        },
        _ => false,
    }
}

/// Locks `key`'s shard for a memcached operation; while the AOF (or a replica) consumes
/// effects, the key's resulting state becomes the operation's effect.
pub(crate) fn lock_key<'e>(shared: &'e Shared, k: &Hashed<'_>) -> Locked<'e> {
    if shared.engine.feed.enabled() {
        crate::engine::effects::begin_state(DB, k.key);
    }
    shared.engine.lock_one(k)
}

/// Announces a keyspace event for a memcached write. memcached has no events of its own, so a
/// write announces what the equivalent Redis command would: set/add/replace/cas `set` (and
/// `expire` with an exptime), append/prepend `append`, incr/decr `incrby` (Redis's DECRBY
/// announces `incrby` too), delete `del`, touch/gat `expire` (`persist` for exptime 0, `del`
/// for one already past). flush_all announces nothing, like FLUSHALL. Only db 0 is memcached's.
///
/// Every such write also invalidates the key for clients that track it (client-side caching).
pub(crate) fn event(shared: &Shared, class: u32, event: &str, key: &[u8]) {
    shared.tracking.invalidate(shared, key, None);
    if shared.notify_flags.load(Ordering::Relaxed) & class != 0 {
        notify::emit(shared, class, event, DB, key, None);
    }
}

fn touch_event(shared: &Shared, key: &[u8], exptime: i64, now: u64) {
    match expiry(exptime, now) {
        Expiry::Never => event(shared, notify::GENERIC, "persist", key),
        Expiry::At(_) => event(shared, notify::GENERIC, "expire", key),
        Expiry::Past => event(shared, notify::GENERIC, "del", key),
    }
}

/// Deletes `key` from memcached's database: memcached unlinks the current item when it refuses
/// a `set` of a new one as too large, so readers never see the value the client replaced.
pub fn unlink(shared: &Shared, key: &[u8], now: u64) {
    let k = shared.engine.hashed(key);
    lock_key(shared, &k).delete(DB, &k, now);
}

/// The CAS unique clients see for `e`, first giving it one if it has none yet: an item written
/// through Redis is stored without a CAS (8 bytes less), and gets one the first time a memcached
/// client can see it, so a `gets` before and after any later write still differ.
pub fn cas_of(shared: &Shared, e: &mut crate::engine::Entry) -> u64 {
    if shared.memcache.cas_disabled.load(Ordering::Relaxed) {
        return 0;
    }
    if e.cas == 0 {
        e.cas = shared.engine.next_cas();
    }
    e.cas
}

/// The CAS unique clients see for an item whose engine CAS is `cas`: 0 when CAS is disabled
/// (memcached `-C`, config `memcache-cas no`), as memcached reports it in every protocol.
pub fn visible_cas(shared: &Shared, cas: u64) -> u64 {
    if shared.memcache.cas_disabled.load(Ordering::Relaxed) {
        0
    } else {
        cas
    }
}

fn reply_number(out: &mut Vec<u8>, v: u64) {
    reply::push_u64(out, v);
    out.extend_from_slice(b"\r\n");
}

/// `flush_all [delay]` (text) and FLUSH (binary): now, or at a time by memcached's exptime
/// rules when `delay > 0`.
pub(crate) fn flush_all(shared: &Shared, delay: i64, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_flush);
    if delay > 0 {
        let at = match expiry(delay, now) {
            Expiry::At(t) => t,
            _ => now,
        };
        st.flush_at.store(at, Ordering::Relaxed);
    } else {
        st.flush_at.store(0, Ordering::Relaxed);
        flush(shared);
    }
}

/// A flush_all with a delay takes effect the first time a command runs after its time (and
/// from the cron), like memcached's `oldest_live` check.
pub fn apply_pending_flush(shared: &Shared, now: u64) {
    let at = shared.memcache.flush_at.load(Ordering::Relaxed);
    if at != 0
        && now >= at
        && shared.memcache.flush_at.compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        flush(shared);
    }
}

fn flush(shared: &Shared) {
    let mut all = shared.engine.lock_all();
    for db in all.dbs(DB) {
        db.clear();
    }
    // Logged under every shard, so no write lands between the flush and its effect.
    shared.engine.feed.emit(DB, &[b"FLUSHDB"]);
}

/// The one read path behind get/gets/gat/gats and the binary GET/GAT/TOUCH family: touches
/// `key` first when `touch` gives a new exptime, counts the hit or miss as memcached does
/// (get/gets in `cmd_get` and the hit/miss counters, anything that touches only in the touch
/// counters), and hands a hit's flags, visible CAS unique and value to `emit` while the shard
/// lock is held (no copy of the value). Returns whether it hit.
pub(crate) fn fetch(
    shared: &Shared,
    key: &[u8],
    touch_exptime: Option<i64>,
    now: u64,
    emit: impl FnOnce(u32, u64, &[u8]),
) -> bool {
    let st = &shared.memcache;
    let (lookups, hits, misses) = if touch_exptime.is_some() {
        (&st.cmd_touch, &st.touch_hits, &st.touch_misses)
    } else {
        (&st.cmd_get, &st.get_hits, &st.get_misses)
    };
    bump(lookups);
    // gat with an exptime already past still returns the item; it is gone afterwards.
    let expire_after = touch_exptime.is_some_and(|t| expiry(t, now) == Expiry::Past);
    let k = shared.engine.hashed(key);
    let mut l = lock_key(shared, &k);
    if let Some(exptime) = touch_exptime.filter(|_| !expire_after) {
        if !touch(&mut l, &k, exptime, now) {
            bump(misses);
            return false;
        }
    }
    let Some(e) = l.read(DB, &k, now).filter(|e| e.value.as_str().is_some()) else {
        bump(misses);
        if touch_exptime.is_none() && l.db(DB, &k).last_lookup_expired() {
            bump(&st.get_expired);
        }
        return false;
    };
    bump(hits);
    e.mc_bits |= crate::engine::mc_bits::FETCHED;
    emit(e.flags, cas_of(shared, e), e.value.as_str().map(Vec::as_slice).unwrap_or_default());
    if expire_after {
        l.delete(DB, &k, now);
    }
    if let Some(exptime) = touch_exptime {
        drop(l);
        touch_event(shared, key, exptime, now);
    }
    true
}

/// Sets a key's expiry by memcached rules; false if the key is missing or not a string.
fn touch(l: &mut Locked<'_>, k: &Hashed<'_>, exptime: i64, now: u64) -> bool {
    let is_str = matches!(l.peek(DB, k, now), Some(e) if e.value.as_str().is_some());
    if !is_str {
        return false;
    }
    match expiry(exptime, now) {
        Expiry::Never => l.set_expire(DB, k, None, now),
        Expiry::At(t) => l.set_expire(DB, k, Some(t), now),
        Expiry::Past => {
            l.delete(DB, k, now);
            true
        }
    }
}

/// Outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreResult {
    /// STORED
    Stored,
    /// NOT_STORED
    NotStored,
    /// EXISTS (cas mismatch)
    Exists,
    /// NOT_FOUND (cas on a missing key)
    NotFound,
    /// Memory is over the limit and nothing could be evicted (`-M`, or noeviction).
    OutOfMemory,
}

impl StoreResult {
    fn line(self) -> &'static [u8] {
        match self {
            StoreResult::Stored => b"STORED\r\n",
            StoreResult::NotStored => b"NOT_STORED\r\n",
            StoreResult::Exists => b"EXISTS\r\n",
            StoreResult::NotFound => b"NOT_FOUND\r\n",
            StoreResult::OutOfMemory => b"SERVER_ERROR out of memory storing object\r\n",
        }
    }
}

/// One storage request, from a text command (set/add/replace/append/prepend/cas) or `ms`.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    /// What to do.
    pub mode: StoreMode,
    /// The key (decoded, for `ms b`).
    pub key: &'a [u8],
    /// Client flags for a new item (append/prepend keep the item's own).
    pub flags: u32,
    /// memcached exptime for a new item.
    pub exptime: i64,
    /// The data block.
    pub data: &'a [u8],
    /// CAS unique the item must still have: text `cas` always, `ms C` with any mode.
    pub compare_cas: Option<u64>,
    /// `ms I`: a CAS older than the item's still stores, and the item becomes stale.
    pub invalidate: bool,
    /// `ms b`: the item remembers its key was binary (see `mc_bits::KEY_BINARY`).
    pub binary_key: bool,
}

/// The one implementation behind set/add/replace/append/prepend/cas and `ms`. Returns the
/// outcome and the CAS unique of the item it stored (0 when nothing was stored).
pub fn store(shared: &Shared, req: &StoreRequest<'_>, now: u64) -> (StoreResult, u64) {
    let st = &shared.memcache;
    // At the memory limit, evict first; with nothing to evict (memcached -M), refuse.
    if shared.engine.limits.over_limit() && shared.engine.make_room(now).is_err() {
        bump(&st.store_no_memory);
        return (StoreResult::OutOfMemory, 0);
    }
    let k = shared.engine.hashed(req.key);
    // Allocated before the shard lock is taken, so other threads wait only for the index update.
    let value = match req.mode {
        StoreMode::Append | StoreMode::Prepend => None,
        _ => Some(Value::Str(req.data.to_vec())),
    };
    let mut l = lock_key(shared, &k);
    // A key holding a Redis collection exists for add/replace (which refuse or overwrite it as
    // they would an item) but has no item to append to or compare a CAS with.
    let entry = l.peek(DB, &k, now);
    let exists = entry.is_some();
    // A stale write (ms I with an older CAS) keeps the old item's "win token sent" state, so
    // the reader already recomputing it is not joined by another (memcached answers Z).
    let win_sent = entry.as_ref().map_or(0, |e| e.mc_bits & crate::engine::mc_bits::WIN_SENT);
    let current = entry.and_then(|e| {
        let len = e.value.as_str()?.len();
        Some((cas_of(shared, e), len, e.flags))
    });
    let fits =
        |(_, len, flags): (u64, usize, u32)| item_limits(shared).item_fits(req.key.len(), flags, len + req.data.len());
    let appending = matches!(req.mode, StoreMode::Append | StoreMode::Prepend);
    let compare_cas = req.compare_cas.filter(|&c| c != 0 || !appending);
    let mut mark_stale = false;
    let result = match (req.mode, current) {
        (StoreMode::Add, _) if exists => StoreResult::NotStored,
        (StoreMode::Replace, _) if !exists => StoreResult::NotStored,
        // The joined item must fit the size limit, or nothing changes (memcached).
        (StoreMode::Append | StoreMode::Prepend, c) if !c.is_some_and(fits) => StoreResult::NotStored,
        (StoreMode::Cas, None) => StoreResult::NotFound,
        // memcached reads a CAS of 0 as "no CAS": an append or prepend then does not compare,
        // and a set or replace (a cas) never matches, so with -C, where every item's CAS is 0,
        // every cas fails.
        (_, Some((have, _, _))) if compare_cas.is_some_and(|c| c != have || c == 0) => {
            // With I, a write carrying an older CAS than the item's still lands, but stale.
            if req.invalidate && compare_cas.is_some_and(|c| c < have) {
                mark_stale = true;
                StoreResult::Stored
            } else {
                StoreResult::Exists
            }
        }
        _ => StoreResult::Stored,
    };
    if req.mode == StoreMode::Cas {
        bump(match result {
            StoreResult::NotFound => &st.cas_misses,
            StoreResult::Exists => &st.cas_badval,
            _ => &st.cas_hits,
        });
    }
    if result != StoreResult::Stored {
        return (result, 0);
    }
    bump(&st.total_items);
    let Some(value) = value else {
        let Some(e) = l.write(DB, &k, now) else { return (result, 0) };
        if let Some(v) = e.value.as_str_mut() {
            if req.mode == StoreMode::Append {
                v.extend_from_slice(req.data);
            } else {
                v.splice(0..0, req.data.iter().copied());
            }
        }
        let cas = cas_of(shared, e);
        drop(l);
        event(shared, notify::STRING, "append", req.key);
        return (result, cas);
    };
    let expire = expire_at(req.exptime, now);
    let e = l.set(DB, &k, value, expire, req.flags, false, now);
    if mark_stale {
        e.mc_bits |= crate::engine::mc_bits::STALE | win_sent;
    }
    if req.binary_key {
        e.mc_bits |= crate::engine::mc_bits::KEY_BINARY;
    }
    let cas = cas_of(shared, e);
    drop(l);
    event(shared, notify::STRING, "set", req.key);
    if expire.is_some() {
        event(shared, notify::GENERIC, "expire", req.key);
    }
    (result, cas)
}

/// The expiry time to store an item with. An exptime already past stores an item that is
/// already expired: no reader sees it, and the reply is still a success, as memcached answers.
fn expire_at(exptime: i64, now: u64) -> Option<u64> {
    match expiry(exptime, now) {
        Expiry::Never => None,
        Expiry::At(t) => Some(t),
        Expiry::Past => Some(now.saturating_sub(1).max(1)),
    }
}

/// The item size limit as the codec applies it (memcached `-I`, config `item-size-max`).
pub(crate) fn item_limits(shared: &Shared) -> cachette_memcache::Limits {
    cachette_memcache::Limits { max_item_size: shared.config().item_size_max, ..Default::default() }
}

/// memcached's reading of an item as a number (`safe_strtoull` on the data, which ends in CRLF):
/// C `strtoull`, so leading whitespace and one `+` or `-` sign, decimal digits that must not
/// overflow, and then whitespace or the end (anything after that whitespace is ignored). A `-`
/// is refused only when the negated result would be negative as a signed number, so `-0` is 0
/// and `-9223372036854775809` wraps to 9223372036854775807, both measured on 1.6.18.
pub(crate) fn parse_counter(v: &[u8]) -> Option<u64> {
    // C isspace: space, \t, \n, \v, \f, \r.
    let is_space = |c: u8| c == b' ' || (b'\t'..=b'\r').contains(&c);
    let mut i = v.iter().take_while(|&&c| is_space(c)).count();
    let negative = v.get(i) == Some(&b'-');
    if matches!(v.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = v[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || v.get(i + digits).is_some_and(|&c| !is_space(c)) {
        return None;
    }
    let magnitude =
        v[i..i + digits].iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    let n = if negative { magnitude.wrapping_neg() } else { magnitude };
    if negative && (n as i64) < 0 {
        return None;
    }
    Some(n)
}

/// One incr/decr: text `incr`/`decr`, or binary INCREMENT/DECREMENT with their CAS and
/// auto-create options.
#[derive(Debug, Clone, Copy)]
pub struct ArithRequest<'a> {
    /// The key.
    pub key: &'a [u8],
    /// incr (else decr).
    pub incr: bool,
    /// The amount.
    pub delta: u64,
    /// The item must still have this CAS unique (binary: a non-zero header CAS).
    pub compare_cas: Option<u64>,
    /// A missing key is created with this value and exptime (binary, unless exptime is
    /// 0xffffffff).
    pub create: Option<(u64, i64)>,
}

/// What an incr/decr did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The item now holds `value`, with CAS unique `cas` (incremented, or created).
    Value {
        /// The new number.
        value: u64,
        /// The item's CAS unique.
        cas: u64,
    },
    /// No item, and none created.
    NotFound,
    /// The item is empty or not a number.
    NonNumeric,
    /// The CAS unique did not match.
    Exists,
    /// Create was asked, but the key holds a Redis collection.
    NotStored,
}

/// The one incr/decr: 64-bit unsigned, wrapping on incr, flooring at 0 on decr, as memcached.
/// memcached checks in this order: empty value (non-numeric), CAS, then the number itself.
pub fn arith(shared: &Shared, req: &ArithRequest<'_>, now: u64) -> ArithOutcome {
    let st = &shared.memcache;
    let k = shared.engine.hashed(req.key);
    let mut l = lock_key(shared, &k);
    let current =
        l.peek(DB, &k, now).map(|e| (cas_of(shared, e), e.value.as_str().map(|v| (v.is_empty(), parse_counter(v)))));
    let miss = || bump(if req.incr { &st.incr_misses } else { &st.decr_misses });
    let old = match current {
        None => {
            let Some((initial, exptime)) = req.create else {
                miss();
                return ArithOutcome::NotFound;
            };
            let value = Value::Str(initial.to_string().into_bytes());
            let expire = expire_at(exptime, now);
            let e = l.set(DB, &k, value, expire, 0, false, now);
            bump(&st.total_items);
            let cas = cas_of(shared, e);
            drop(l);
            // Created by the increment (binary protocol's initial value): what SET would say.
            event(shared, notify::STRING, "set", req.key);
            if expire.is_some() {
                event(shared, notify::GENERIC, "expire", req.key);
            }
            return ArithOutcome::Value { value: initial, cas };
        }
        // A Redis collection: no item to change, and `add` would refuse to replace it.
        Some((_, None)) if req.create.is_some() => return ArithOutcome::NotStored,
        Some((_, None)) => {
            miss();
            return ArithOutcome::NotFound;
        }
        Some((_, Some((true, _)))) => return ArithOutcome::NonNumeric,
        Some((have, _)) if req.compare_cas.is_some_and(|c| c != have) => return ArithOutcome::Exists,
        Some((_, Some((_, None)))) => return ArithOutcome::NonNumeric,
        Some((_, Some((_, Some(old))))) => old,
    };
    bump(if req.incr { &st.incr_hits } else { &st.decr_hits });
    let new = if req.incr { old.wrapping_add(req.delta) } else { old.saturating_sub(req.delta) };
    let Some(e) = l.write(DB, &k, now) else { return ArithOutcome::NotFound };
    if let Some(v) = e.value.as_str_mut() {
        let digits = new.to_string();
        // memcached rewrites a shorter number in place, padded with spaces to the old
        // length; a longer one gets a new item of exactly its length.
        if digits.len() <= v.len() {
            let old_len = v.len();
            v.clear();
            v.extend_from_slice(digits.as_bytes());
            v.resize(old_len, b' ');
        } else {
            *v = digits.into_bytes();
        }
    }
    let cas = cas_of(shared, e);
    drop(l);
    event(shared, notify::STRING, "incrby", req.key);
    ArithOutcome::Value { value: new, cas }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules() {
        let now = 1_700_000_000_000;
        assert_eq!(expiry(0, now), Expiry::Never);
        assert_eq!(expiry(-1, now), Expiry::Past);
        assert_eq!(expiry(10, now), Expiry::At(now + 10_000));
        assert_eq!(expiry(REALTIME_MAXDELTA, now), Expiry::At(now + REALTIME_MAXDELTA as u64 * 1000));
        assert_eq!(expiry(REALTIME_MAXDELTA + 1, now), Expiry::Past, "an absolute time in 1970");
        assert_eq!(expiry(1_800_000_000, now), Expiry::At(1_800_000_000_000));
    }

    #[test]
    fn counters_parse_like_memcached() {
        assert_eq!(parse_counter(b"10"), Some(10));
        assert_eq!(parse_counter(b"9 "), Some(9));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"abc"), None);
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b" 12"), Some(12));
        assert_eq!(parse_counter(b"\t+12"), Some(12));
        assert_eq!(parse_counter(b"12 a"), Some(12));
        assert_eq!(parse_counter(b"12a"), None);
        assert_eq!(parse_counter(b"+ 1"), None);
        assert_eq!(parse_counter(b"   "), None);
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b"-9223372036854775809"), Some(9223372036854775807));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
    }
}
