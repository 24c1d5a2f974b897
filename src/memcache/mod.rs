//! memcached commands mapped onto the shared engine.
//!
//! A memcached item *is* a Redis string in database 0: `set k 5 0 1` here is `GET k` → the same
//! bytes there, and a Redis `SET` is a memcached hit with flags 0. Items carry memcached's client
//! flags and CAS unique in the engine entry. A key holding a Redis collection is invisible to
//! memcached reads (a miss), is refused by in-place updates (NOT_STORED / NOT_FOUND) and is
//! replaced by `set`, as a Redis `SET` would.
//!
//! Expiry times follow memcached: 0 never, negative already expired, up to 30 days relative
//! seconds, beyond that a unix time. An item stored with a time already past is not kept (the
//! reply is still STORED, as memcached answers).
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
    let _ = session;
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
            let r = store(shared, mode, key, flags, exptime, data, cas, now);
            if !noreply {
                out.extend_from_slice(r.line());
            }
        }
        Command::Delete { key, noreply } => {
            let k = shared.engine.hashed(key);
            let found = shared.engine.lock_one(&k).delete(DB, &k, now);
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
            let found = touch(&mut shared.engine.lock_one(&k), &k, exptime, now);
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
        Command::Stats { args } => stats(shared, args, out, now),
        Command::Meta(m) => {
            bump(&st.cmd_meta);
            meta::execute(shared, m, out, now);
        }
    }
    Action::Continue
}

/// Deletes `key` from memcached's database: memcached unlinks the current item when it refuses
/// a `set` of a new one as too large, so readers never see the value the client replaced.
pub fn unlink(shared: &Shared, key: &[u8], now: u64) {
    let k = shared.engine.hashed(key);
    shared.engine.lock_one(&k).delete(DB, &k, now);
}

fn reply_number(out: &mut Vec<u8>, v: u64) {
    push_u64(out, v);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `v` without allocating.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
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
}

fn get_one(shared: &Shared, mode: GetMode, exptime: i64, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_get);
    let touch_too = matches!(mode, GetMode::Gat | GetMode::Gats);
    if touch_too {
        bump(&st.cmd_touch);
    }
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    if touch_too && !touch(&mut l, &k, exptime, now) {
        bump(&st.get_misses);
        bump(&st.touch_misses);
        return;
    }
    let Some(e) = l.read(DB, &k, now) else {
        bump(&st.get_misses);
        return;
    };
    let Some(data) = e.value.as_str() else {
        bump(&st.get_misses);
        return;
    };
    bump(&st.get_hits);
    e.mc_bits |= crate::engine::mc_bits::FETCHED;
    if touch_too {
        bump(&st.touch_hits);
    }
    let cas = matches!(mode, GetMode::Gets | GetMode::Gats).then_some(e.cas);
    reply::value(out, key, e.flags, data, cas);
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
}

impl StoreResult {
    fn line(self) -> &'static [u8] {
        match self {
            StoreResult::Stored => b"STORED\r\n",
            StoreResult::NotStored => b"NOT_STORED\r\n",
            StoreResult::Exists => b"EXISTS\r\n",
            StoreResult::NotFound => b"NOT_FOUND\r\n",
        }
    }
}

/// The one implementation behind set/add/replace/append/prepend/cas (text and meta).
#[allow(clippy::too_many_arguments)]
pub fn store(
    shared: &Shared,
    mode: StoreMode,
    key: &[u8],
    flags: u32,
    exptime: i64,
    data: &[u8],
    cas: u64,
    now: u64,
) -> StoreResult {
    let st = &shared.memcache;
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let current = l.peek(DB, &k, now).map(|e| (e.value.as_str().is_some(), e.cas));
    match mode {
        StoreMode::Add if current.is_some() => return StoreResult::NotStored,
        StoreMode::Replace if current.is_none() => return StoreResult::NotStored,
        StoreMode::Append | StoreMode::Prepend => {
            if current.map(|c| c.0) != Some(true) {
                return StoreResult::NotStored;
            }
            if let Some(e) = l.write(DB, &k, now) {
                if let Some(v) = e.value.as_str_mut() {
                    if mode == StoreMode::Append {
                        v.extend_from_slice(data);
                    } else {
                        v.splice(0..0, data.iter().copied());
                    }
                }
            }
            bump(&st.total_items);
            return StoreResult::Stored;
        }
        StoreMode::Cas => match current {
            None => {
                bump(&st.cas_misses);
                return StoreResult::NotFound;
            }
            Some((_, c)) if c != cas => {
                bump(&st.cas_badval);
                return StoreResult::Exists;
            }
            Some(_) => bump(&st.cas_hits),
        },
        _ => {}
    }
    match expiry(exptime, now) {
        Expiry::Past => {
            l.delete(DB, &k, now);
        }
        Expiry::Never => {
            l.set(DB, &k, Value::Str(data.to_vec()), None, flags, false, now);
        }
        Expiry::At(t) => {
            l.set(DB, &k, Value::Str(data.to_vec()), Some(t), flags, false, now);
        }
    }
    bump(&st.total_items);
    StoreResult::Stored
}

/// memcached's reading of an item as a number: decimal digits, then only whitespace.
pub(crate) fn parse_counter(v: &[u8]) -> Option<u64> {
    let digits = v.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || !v[digits..].iter().all(|c| c.is_ascii_whitespace()) {
        return None;
    }
    std::str::from_utf8(&v[..digits]).ok()?.parse().ok()
}

/// incr/decr: Ok(Some(new value)), Ok(None) when missing, Err(reply line) when not a number.
pub fn arith(shared: &Shared, key: &[u8], incr: bool, delta: u64, now: u64) -> Result<Option<u64>, &'static [u8]> {
    let st = &shared.memcache;
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
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

fn stats(shared: &Shared, args: &[u8], out: &mut Vec<u8>, now: u64) {
    let args = args.trim_ascii();
    if !args.is_empty() {
        if args == b"reset" {
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
            // Sub-commands (settings, items, slabs, sizes, conns) arrive with the memcached
            // completion work; memcached answers unknown ones like this.
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
        ("limit_maxbytes", "0".to_string()),
        ("threads", threads.to_string()),
        ("bytes", bytes.to_string()),
        ("curr_items", items.to_string()),
        ("total_items", ld(&st.total_items)),
        ("evictions", "0".to_string()),
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
    }
}
