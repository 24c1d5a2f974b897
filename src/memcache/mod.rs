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
//! only applies semantics and writes replies. It never builds Redis command strings.

mod meta;

use std::sync::atomic::{AtomicU64, Ordering};

use cachette_memcache::request::{GetMode, StoreMode};
use cachette_memcache::{reply, Command};

use crate::commands::Session;
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

/// Counters memcached's `stats` reports, counted as memcached counts them.
#[derive(Default, Debug)]
pub struct Stats {
    /// Retrieval keys requested.
    pub cmd_get: AtomicU64,
    /// Storage commands.
    pub cmd_set: AtomicU64,
    /// flush_all commands.
    pub cmd_flush: AtomicU64,
    /// touch / gat commands.
    pub cmd_touch: AtomicU64,
    /// Meta commands.
    pub cmd_meta: AtomicU64,
    /// Retrievals that found their key.
    pub get_hits: AtomicU64,
    /// Retrievals that did not.
    pub get_misses: AtomicU64,
    /// delete that found its key.
    pub delete_hits: AtomicU64,
    /// delete that did not.
    pub delete_misses: AtomicU64,
    /// incr that found its key.
    pub incr_hits: AtomicU64,
    /// incr that did not.
    pub incr_misses: AtomicU64,
    /// decr that found its key.
    pub decr_hits: AtomicU64,
    /// decr that did not.
    pub decr_misses: AtomicU64,
    /// cas that stored.
    pub cas_hits: AtomicU64,
    /// cas on a missing key.
    pub cas_misses: AtomicU64,
    /// cas with a stale unique.
    pub cas_badval: AtomicU64,
    /// touch that found its key.
    pub touch_hits: AtomicU64,
    /// touch that did not.
    pub touch_misses: AtomicU64,
    /// Items ever stored.
    pub total_items: AtomicU64,
    /// Unix ms at which a delayed `flush_all` takes effect (0: none pending).
    pub flush_at: AtomicU64,
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
    let st = &shared.memcache;
    match cmd {
        Command::Get { mode, exptime, keys } => {
            for key in keys.iter() {
                get_one(shared, mode, exptime, key, out, now);
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
            bump(if found { &st.delete_hits } else { &st.delete_misses });
            if !noreply {
                out.extend_from_slice(if found { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" });
            }
        }
        Command::Arith { incr, key, delta, noreply } => {
            let r = arith(shared, key, incr, delta, now);
            if !noreply {
                match r {
                    Ok(Some(v)) => {
                        reply_number(out, v);
                    }
                    Ok(None) => out.extend_from_slice(b"NOT_FOUND\r\n"),
                    Err(line) => out.extend_from_slice(line),
                }
            }
        }
        Command::Touch { key, exptime, noreply } => {
            bump(&st.cmd_touch);
            let k = shared.engine.hashed(key);
            let found = touch(&mut lock_key(shared, &k), &k, exptime, now);
            bump(if found { &st.touch_hits } else { &st.touch_misses });
            if !noreply {
                out.extend_from_slice(if found { b"TOUCHED\r\n" } else { b"NOT_FOUND\r\n" });
            }
        }
        Command::FlushAll { delay, noreply } => {
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
            if !noreply {
                out.extend_from_slice(b"OK\r\n");
            }
        }
        Command::Version => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(MEMCACHED_VERSION.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Command::Verbosity { noreply } => {
            if !noreply {
                out.extend_from_slice(b"OK\r\n");
            }
        }
        Command::Quit => return Action::Close,
        Command::Stats { args } => stats(shared, session, args, out, now),
        Command::Meta(m) => {
            bump(&st.cmd_meta);
            meta::execute(shared, m, out, now);
        }
    }
    Action::Continue
}

/// Locks `key`'s shard for a memcached operation; while the AOF (or a replica) consumes
/// effects, the key's resulting state becomes the operation's effect.
pub(crate) fn lock_key<'e>(shared: &'e Shared, k: &Hashed<'_>) -> Locked<'e> {
    if shared.engine.feed.enabled() {
        crate::engine::effects::begin_state(DB, k.key);
    }
    shared.engine.lock_one(k)
}

/// Deletes `key` from memcached's database: memcached unlinks the current item when it refuses
/// a `set` of a new one as too large, so readers never see the value the client replaced.
pub fn unlink(shared: &Shared, key: &[u8], now: u64) {
    let k = shared.engine.hashed(key);
    lock_key(shared, &k).delete(DB, &k, now);
}

fn reply_number(out: &mut Vec<u8>, v: u64) {
    reply::push_u64(out, v);
    out.extend_from_slice(b"\r\n");
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

fn get_one(shared: &Shared, mode: GetMode, exptime: i64, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_get);
    let touch_too = matches!(mode, GetMode::Gat | GetMode::Gats);
    if touch_too {
        bump(&st.cmd_touch);
    }
    // gat with an exptime already past still returns the item; it is gone afterwards.
    let expire_after = touch_too && expiry(exptime, now) == Expiry::Past;
    let k = shared.engine.hashed(key);
    let mut l = lock_key(shared, &k);
    if touch_too && !expire_after && !touch(&mut l, &k, exptime, now) {
        bump(&st.get_misses);
        bump(&st.touch_misses);
        return;
    }
    let Some(e) = l.read(DB, &k, now).filter(|e| e.value.as_str().is_some()) else {
        bump(&st.get_misses);
        if touch_too {
            bump(&st.touch_misses);
        }
        return;
    };
    bump(&st.get_hits);
    e.mc_bits |= crate::engine::mc_bits::FETCHED;
    if touch_too {
        bump(&st.touch_hits);
    }
    let cas = matches!(mode, GetMode::Gets | GetMode::Gats).then_some(e.cas);
    reply::value(out, key, e.flags, e.value.as_str().map(Vec::as_slice).unwrap_or_default(), cas);
    if expire_after {
        l.delete(DB, &k, now);
    }
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
    let current = entry.and_then(|e| e.value.as_str().map(|v| (e.cas, v.len(), e.flags)));
    let fits =
        |(_, len, flags): (u64, usize, u32)| item_limits(shared).item_fits(req.key.len(), flags, len + req.data.len());
    let mut mark_stale = false;
    let result = match (req.mode, current) {
        (StoreMode::Add, _) if exists => StoreResult::NotStored,
        (StoreMode::Replace, _) if !exists => StoreResult::NotStored,
        // The joined item must fit the size limit, or nothing changes (memcached).
        (StoreMode::Append | StoreMode::Prepend, c) if !c.is_some_and(fits) => StoreResult::NotStored,
        (StoreMode::Cas, None) => StoreResult::NotFound,
        (_, Some((have, _, _))) if req.compare_cas.is_some_and(|c| c != have) => {
            // With I, a write carrying an older CAS than the item's still lands, but stale.
            if req.invalidate && req.compare_cas.is_some_and(|c| c < have) {
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
        return (result, e.cas);
    };
    // An exptime already past stores an item that is already expired: no reader sees it, and
    // the reply is still a success, as memcached answers.
    let expire = match expiry(req.exptime, now) {
        Expiry::Never => None,
        Expiry::At(t) => Some(t),
        Expiry::Past => Some(now.saturating_sub(1).max(1)),
    };
    let e = l.set(DB, &k, value, expire, req.flags, false, now);
    if mark_stale {
        e.mc_bits |= crate::engine::mc_bits::STALE;
    }
    if req.binary_key {
        e.mc_bits |= crate::engine::mc_bits::KEY_BINARY;
    }
    (result, e.cas)
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

/// incr/decr: Ok(Some(new value)), Ok(None) when missing, Err(reply line) when not a number.
pub fn arith(shared: &Shared, key: &[u8], incr: bool, delta: u64, now: u64) -> Result<Option<u64>, &'static [u8]> {
    let st = &shared.memcache;
    let k = shared.engine.hashed(key);
    let mut l = lock_key(shared, &k);
    let current = match l.peek(DB, &k, now) {
        Some(e) => e.value.as_str().map(|v| parse_counter(v)),
        None => None,
    };
    let Some(parsed) = current else {
        bump(if incr { &st.incr_misses } else { &st.decr_misses });
        return Ok(None);
    };
    let Some(old) = parsed else {
        return Err(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    };
    bump(if incr { &st.incr_hits } else { &st.decr_hits });
    let new = if incr { old.wrapping_add(delta) } else { old.saturating_sub(delta) };
    if let Some(e) = l.write(DB, &k, now) {
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
    }
    Ok(Some(new))
}

fn stats(shared: &Shared, session: &Session, args: &[u8], out: &mut Vec<u8>, now: u64) {
    let args = args.trim_ascii();
    if !args.is_empty() {
        match args {
            b"settings" => stats_settings(shared, out),
            b"items" => stats_items(shared, out, now),
            b"slabs" => stats_slabs(shared, out, now),
            // memcached without `-o track_sizes` answers exactly this.
            b"sizes" => reply::stat(out, "sizes_status", "disabled"),
            b"conns" => stats_conns(shared, session, out),
            _ => {}
        }
        if matches!(args, b"settings" | b"items" | b"slabs" | b"sizes" | b"conns") {
            out.extend_from_slice(b"END\r\n");
        } else if args == b"reset" {
            let st = &shared.memcache;
            for c in [
                &st.cmd_get,
                &st.cmd_set,
                &st.cmd_flush,
                &st.cmd_touch,
                &st.cmd_meta,
                &st.get_hits,
                &st.get_misses,
                &st.delete_hits,
                &st.delete_misses,
                &st.incr_hits,
                &st.incr_misses,
                &st.decr_hits,
                &st.decr_misses,
                &st.cas_hits,
                &st.cas_misses,
                &st.cas_badval,
                &st.touch_hits,
                &st.touch_misses,
                &st.total_items,
            ] {
                c.store(0, Ordering::Relaxed);
            }
            out.extend_from_slice(b"RESET\r\n");
        } else {
            // memcached answers unknown groups like this.
            out.extend_from_slice(b"ERROR\r\n");
        }
        return;
    }
    let st = &shared.memcache;
    let c = &shared.counters;
    let (items, bytes) = {
        let mut items = 0usize;
        let mut bytes = 0usize;
        shared.engine.for_each_shard(DB, |_, d| {
            items += d.len();
            for e in d.iter() {
                if let Some(v) = e.value.as_str() {
                    bytes += v.len() + e.key().len();
                }
            }
        });
        (items, bytes)
    };
    let threads = shared.config().threads;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    let lines: Vec<(&str, String)> = vec![
        ("pid", std::process::id().to_string()),
        ("uptime", shared.uptime_secs().to_string()),
        ("time", (now / 1000).to_string()),
        ("version", MEMCACHED_VERSION.to_string()),
        ("pointer_size", "64".to_string()),
        ("curr_connections", c.memcache_connections.load(Ordering::Relaxed).to_string()),
        ("total_connections", ld(&c.connections_received)),
        ("rejected_connections", ld(&c.rejected_connections)),
        ("cmd_get", ld(&st.cmd_get)),
        ("cmd_set", ld(&st.cmd_set)),
        ("cmd_flush", ld(&st.cmd_flush)),
        ("cmd_touch", ld(&st.cmd_touch)),
        ("cmd_meta", ld(&st.cmd_meta)),
        ("get_hits", ld(&st.get_hits)),
        ("get_misses", ld(&st.get_misses)),
        ("delete_misses", ld(&st.delete_misses)),
        ("delete_hits", ld(&st.delete_hits)),
        ("incr_misses", ld(&st.incr_misses)),
        ("incr_hits", ld(&st.incr_hits)),
        ("decr_misses", ld(&st.decr_misses)),
        ("decr_hits", ld(&st.decr_hits)),
        ("cas_misses", ld(&st.cas_misses)),
        ("cas_hits", ld(&st.cas_hits)),
        ("cas_badval", ld(&st.cas_badval)),
        ("touch_hits", ld(&st.touch_hits)),
        ("touch_misses", ld(&st.touch_misses)),
        ("bytes_read", ld(&c.net_input_bytes)),
        ("bytes_written", ld(&c.net_output_bytes)),
        ("limit_maxbytes", shared.engine.limits.maxmemory().to_string()),
        ("threads", threads.to_string()),
        ("bytes", bytes.to_string()),
        ("curr_items", items.to_string()),
        ("total_items", ld(&st.total_items)),
        ("evictions", ld(&shared.engine.limits.evicted_keys)),
    ];
    for (name, value) in lines {
        out.extend_from_slice(b"STAT ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats settings`: the settings memcached 1.6.18 prints, in its order, limited to those that
/// mean something in cachette, with the values cachette actually uses. Slab geometry
/// (`chunk_size`, `growth_factor`) is memcached's default: it is what `me` and `stats
/// items|slabs` use to assign slab classes. `maxbytes 0`: cachette has no memory limit, and
/// `evictions off`: it never evicts an item to make room.
fn stats_settings(shared: &Shared, out: &mut Vec<u8>) {
    let cfg = shared.config();
    reply::stat(out, "maxbytes", 0);
    reply::stat(out, "maxconns", cfg.maxclients);
    reply::stat(out, "tcpport", shared.memcache_port);
    reply::stat(out, "udpport", 0);
    let inter = if cfg.bind.is_empty() { "NULL".to_string() } else { cfg.bind.join(",") };
    reply::stat(out, "inter", inter);
    // `verbosity` is accepted and ignored.
    reply::stat(out, "verbosity", 0);
    reply::stat(out, "evictions", "off");
    reply::stat(out, "domain_socket", "NULL");
    reply::stat(out, "growth_factor", "1.25");
    reply::stat(out, "chunk_size", 48);
    reply::stat(out, "num_threads", cfg.threads.max(1));
    reply::stat(out, "cas_enabled", "yes");
    reply::stat(out, "tcp_backlog", cfg.tcp_backlog);
    reply::stat(out, "binding_protocol", "ascii");
    reply::stat(out, "auth_enabled_sasl", "no");
    reply::stat(out, "auth_enabled_ascii", "no");
    reply::stat(out, "item_size_max", cfg.item_size_max);
    reply::stat(out, "flush_enabled", "yes");
    reply::stat(out, "idle_timeout", cfg.timeout);
    reply::stat(out, "ssl_enabled", "no");
}

/// Per slab class totals over the live memcached items of db 0 (string values; a Redis
/// collection is invisible to memcached), by the class memcached would put each item in:
/// `(class, chunk size) -> (items, item bytes, oldest last access in unix seconds)`.
fn slab_usage(shared: &Shared, now: u64) -> std::collections::BTreeMap<(u32, u64), (u64, u64, u32)> {
    let mut classes = std::collections::BTreeMap::new();
    shared.engine.for_each_shard(DB, |_, d| {
        for e in d.iter() {
            let Some(v) = e.value.as_str() else { continue };
            if e.expire_at().is_some_and(|t| now > t) {
                continue;
            }
            let size = meta::item_size(e.key().len(), v.len(), e.flags);
            let c = classes.entry(meta::slab_class(size)).or_insert((0, 0, u32::MAX));
            c.0 += 1;
            c.1 += size;
            c.2 = c.2.min(e.lru);
        }
    });
    classes
}

/// `stats items`: per slab class holding items, the counts cachette has (memcached prints more
/// lines per class, about its segmented LRU, which cachette does not have). Nothing but `END`
/// when there are no items, as memcached. `age` is the seconds since the class's least recently
/// used item was last accessed; `evicted` and `outofmemory` are always 0.
fn stats_items(shared: &Shared, out: &mut Vec<u8>, now: u64) {
    for ((class, _), (number, bytes, oldest)) in slab_usage(shared, now) {
        let age = (now / 1000).saturating_sub(u64::from(oldest));
        reply::stat(out, &format!("items:{class}:number"), number);
        reply::stat(out, &format!("items:{class}:age"), age);
        reply::stat(out, &format!("items:{class}:mem_requested"), bytes);
        reply::stat(out, &format!("items:{class}:evicted"), 0);
        reply::stat(out, &format!("items:{class}:outofmemory"), 0);
    }
}

/// `stats slabs`: per class the chunk size and the chunks its items would use, then memcached's
/// totals. cachette allocates per item, not in slab pages, so the page lines are left out and
/// `total_malloced` is the bytes of those chunks (0 with no items, as memcached prints it).
fn stats_slabs(shared: &Shared, out: &mut Vec<u8>, now: u64) {
    let classes = slab_usage(shared, now);
    let mut malloced = 0;
    for (&(class, chunk), &(number, _, _)) in &classes {
        reply::stat(out, &format!("{class}:chunk_size"), chunk);
        reply::stat(out, &format!("{class}:used_chunks"), number);
        malloced += chunk * number;
    }
    reply::stat(out, "active_slabs", classes.len());
    reply::stat(out, "total_malloced", malloced);
}

/// `stats conns`: memcached's lines for each memcached-protocol connection, keyed by socket fd.
/// The connection asking is in `conn_parse_cmd`; the others are reported as `conn_waiting`
/// (cachette does not publish a connection's parse state). memcached also lists its listening
/// sockets; cachette's per-worker listeners are not connections and are left out.
fn stats_conns(shared: &Shared, session: &Session, out: &mut Vec<u8>) {
    let mut conns: Vec<_> = shared.lock_clients().values().filter(|c| c.memcache).cloned().collect();
    conns.sort_by_key(|c| c.fd);
    let addr = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(_) => format!("tcp:{a}"),
        std::net::SocketAddr::V6(_) => format!("tcp6:{a}"),
    };
    for c in conns {
        let fd = c.fd;
        let state = if c.id == session.info.id { "conn_parse_cmd" } else { "conn_waiting" };
        let idle_ms = (c.created.elapsed().as_millis() as u64).saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
        reply::stat(out, &format!("{fd}:addr"), addr(c.addr));
        reply::stat(out, &format!("{fd}:listen_addr"), addr(c.laddr));
        reply::stat(out, &format!("{fd}:state"), state);
        reply::stat(out, &format!("{fd}:secs_since_last_cmd"), idle_ms / 1000);
    }
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
