//! The meta commands (`mg ms md ma mn me`) on the shared engine.
//!
//! Return flags are echoed in the order the client gave them, as memcached 1.6 does; the
//! win/stale markers come last in the order `Z X W`. Per-item state the meta protocol exposes —
//! fetched (`h`), last access (`l`), stale (`X`), win token sent (`W`/`Z`) — lives in the entry's
//! `mc_bits` and `lru`, and every new value clears it.
//!
//! Anti-stampede patterns: `mg … N<ttl>` on a miss creates an empty item and hands the caller
//! the win token (`W`); `mg … R<secs>` hands it out when the remaining TTL drops below the
//! threshold; `md … I` marks an item stale instead of deleting it, so readers get the old value
//! with `X` while exactly one of them gets `W` and recomputes it.

use std::sync::atomic::Ordering;

use cachette_memcache::reply;
use cachette_memcache::request::{Meta, MetaKind, MetaOpts};

use super::{bump, expiry, Expiry, StoreRequest, StoreResult, DB};
use crate::commands::notify;
use crate::engine::{mc_bits, Entry, Hashed, Locked};
use crate::server::Shared;
use crate::types::Value;

/// Runs one meta command.
pub fn execute(shared: &Shared, m: Meta<'_>, out: &mut Vec<u8>, now: u64) {
    if m.kind == MetaKind::Noop {
        out.extend_from_slice(b"MN\r\n");
        return;
    }
    let opts = match m.opts() {
        Ok(o) => o,
        Err(line) => {
            out.extend_from_slice(line);
            return;
        }
    };
    let mut scratch = [0u8; 512];
    let Some(key) = m.decode_key(opts.base64, &mut scratch) else {
        out.extend_from_slice(b"CLIENT_ERROR error decoding key\r\n");
        return;
    };
    let key = key.to_owned();
    match m.kind {
        MetaKind::Get => get(shared, &m, &opts, &key, out, now),
        MetaKind::Set => set(shared, &m, &opts, &key, out, now),
        MetaKind::Delete => delete(shared, &m, &opts, &key, out, now),
        MetaKind::Arith => arith(shared, &m, &opts, &key, out, now),
        MetaKind::Debug => debug(shared, &opts, &key, out, now),
        MetaKind::Noop => {}
    }
}

/// Remaining TTL in seconds as memcached reports it (`-1`: never).
fn ttl_secs(e: &Entry, now: u64) -> i64 {
    match e.expire_at() {
        None => -1,
        Some(t) => (t.saturating_sub(now) / 1000) as i64,
    }
}

/// What a reply line may echo back. Each command fills in only the fields memcached 1.6.18
/// echoes for it (`mg`: all; `ms`: `c`, which is 0 when nothing was stored; `ma`: `c t` on
/// success; `md` and every failure line: only `O k`); a requested flag whose field is `None`
/// is left out of the reply.
#[derive(Default)]
struct Echo<'a> {
    key: &'a [u8],
    /// Re-encode `k` in base64 and add ` b`.
    binary: bool,
    cas: Option<u64>,
    client_flags: Option<u32>,
    size: Option<usize>,
    ttl: Option<i64>,
    /// The TTL after this request's `T`: memcached applies `T` while it walks the flags, so a
    /// `t` before `T` shows the old TTL and one after it the new.
    ttl_after_t: Option<i64>,
    /// Seconds since the previous access (`l`).
    idle: Option<u64>,
    /// Fetched before this request (`h`).
    hit_before: Option<bool>,
}

impl<'a> Echo<'a> {
    /// Only the key: failure lines and `md`.
    fn key(key: &'a [u8], binary: bool) -> Echo<'a> {
        Echo { key, binary, ..Echo::default() }
    }
}

/// Echoes the flags of `m` that ask for something back, in request order.
fn echo_flags(out: &mut Vec<u8>, m: &Meta<'_>, opts: &MetaOpts<'_>, echo: &Echo<'_>) {
    let mut ttl = echo.ttl;
    for (flag, _) in m.flags.iter() {
        match flag {
            b'O' => {
                if let Some(o) = opts.opaque {
                    reply::meta_opaque(out, o);
                }
            }
            b'k' => reply::meta_key(out, echo.key, echo.binary),
            b'c' => echo.cas.into_iter().for_each(|c| reply::meta_flag(out, b'c', c)),
            b'f' => echo.client_flags.into_iter().for_each(|f| reply::meta_flag(out, b'f', u64::from(f))),
            b's' => echo.size.into_iter().for_each(|s| reply::meta_flag(out, b's', s as u64)),
            b't' => ttl.into_iter().for_each(|t| reply::meta_flag_i64(out, b't', t)),
            b'T' => ttl = echo.ttl_after_t.or(ttl),
            b'h' => echo.hit_before.into_iter().for_each(|h| reply::meta_flag(out, b'h', u64::from(h))),
            b'l' => echo.idle.into_iter().for_each(|l| reply::meta_flag(out, b'l', l)),
            _ => {}
        }
    }
}

/// A status line echoing only the key and opaque.
fn status_reply(out: &mut Vec<u8>, status: &[u8; 2], m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8]) {
    reply::meta_status(out, status);
    echo_flags(out, m, opts, &Echo::key(key, opts.base64));
    reply::meta_eol(out);
}

/// Sets the TTL from a `T`/`N` token. A negative one expires the item, which memcached does
/// *after* the current reply is built: callers defer it with [`expire_now`] (see [`is_past`]).
fn apply_ttl(l: &mut Locked<'_>, k: &Hashed<'_>, exptime: i64, now: u64) {
    match expiry(exptime, now) {
        Expiry::Never => {
            l.set_expire(DB, k, None, now);
        }
        Expiry::At(t) => {
            l.set_expire(DB, k, Some(t), now);
        }
        Expiry::Past => expire_now(l, k, now),
    }
}

/// Applies the request's `T` to the item, except a negative one, which sets `expire_after`
/// instead (the item answers this request and is gone afterwards). Returns the TTL a `t` after
/// `T` reports: 0 for an item expiring now, where memcached prints its uptime arithmetic (an
/// unsigned wrap of a negative number of seconds).
fn take_ttl(l: &mut Locked<'_>, k: &Hashed<'_>, opts: &MetaOpts<'_>, expire_after: &mut bool, now: u64) -> Option<i64> {
    let t = opts.ttl?;
    if expiry(t, now) == Expiry::Past {
        *expire_after = true;
        return Some(0);
    }
    apply_ttl(l, k, t, now);
    l.peek(DB, k, now).map(|e| ttl_secs(e, now))
}

/// Marks the item expired (memcached leaves it to be reclaimed; readers miss from now on).
fn expire_now(l: &mut Locked<'_>, k: &Hashed<'_>, now: u64) {
    l.set_expire(DB, k, Some(now.saturating_sub(1).max(1)), now);
}

fn get(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_get);
    let k = shared.engine.hashed(key);
    let mut l = super::lock_key(shared, &k);
    let exists = matches!(l.peek(DB, &k, now), Some(e) if e.value.as_str().is_some());
    if !exists && l.db(DB, &k).last_lookup_expired() {
        bump(&st.get_expired);
    }
    let mut won = false;
    // A negative T (or N on a miss) expires the item, but this reply still shows it.
    let mut expire_after = false;
    if !exists {
        let Some(vivify) = opts.vivify else {
            bump(&st.get_misses);
            shared.engine.stats.keyspace_misses.fetch_add(1, Ordering::Relaxed);
            if !opts.quiet {
                out.extend_from_slice(b"EN");
                echo_flags(out, m, opts, &Echo::key(key, opts.base64));
                out.extend_from_slice(b"\r\n");
            }
            return;
        };
        // Vivify: an empty placeholder whose creator wins the right to fill it.
        bump(&st.get_misses);
        let expire = match expiry(vivify, now) {
            Expiry::At(t) => Some(t),
            Expiry::Never => None,
            Expiry::Past => {
                expire_after = true;
                None
            }
        };
        let e = l.set(DB, &k, Value::Str(Vec::new()), expire, 0, false, now);
        e.mc_bits |= mc_bits::WIN_SENT;
        super::cas_of(shared, e);
        won = true;
    } else {
        bump(&st.get_hits);
        shared.engine.stats.keyspace_hits.fetch_add(1, Ordering::Relaxed);
    }
    // The TTL as found (or as vivified): what R compares and what a `t` before `T` shows.
    let Some(ttl) = l.peek(DB, &k, now).map(|e| if expire_after { 0 } else { ttl_secs(e, now) }) else { return };
    let ttl_after_t = take_ttl(&mut l, &k, opts, &mut expire_after, now);
    let Some(e) = l.peek(DB, &k, now) else { return };
    if !won {
        let stale = e.mc_bits & mc_bits::STALE != 0;
        let recache = opts.recache.is_some_and(|r| ttl != -1 && ttl < r);
        if (stale || recache) && e.mc_bits & mc_bits::WIN_SENT == 0 {
            e.mc_bits |= mc_bits::WIN_SENT;
            won = true;
        }
    }
    let bits = e.mc_bits;
    let data_len = e.value.as_str().map(|v| v.len()).unwrap_or(0);
    if opts.return_value {
        reply::meta_va(out, data_len);
    } else {
        reply::meta_status(out, b"HD");
    }
    let echo = Echo {
        key,
        binary: bits & mc_bits::KEY_BINARY != 0,
        cas: Some(super::cas_of(shared, e)),
        client_flags: Some(e.flags),
        size: Some(data_len),
        ttl: Some(ttl),
        ttl_after_t,
        idle: Some((now / 1000).saturating_sub(u64::from(e.lru))),
        hit_before: Some(bits & mc_bits::FETCHED != 0),
    };
    echo_flags(out, m, opts, &echo);
    if bits & mc_bits::WIN_SENT != 0 && !won {
        reply::meta_flag_bare(out, b'Z');
    }
    if bits & mc_bits::STALE != 0 {
        reply::meta_flag_bare(out, b'X');
    }
    if won {
        reply::meta_flag_bare(out, b'W');
    }
    reply::meta_eol(out);
    if opts.return_value {
        reply::meta_data(out, e.value.as_str().map(|v| v.as_slice()).unwrap_or(&[]));
    }
    if !opts.no_bump {
        e.lru = (now / 1000) as u32;
    }
    e.mc_bits |= mc_bits::FETCHED;
    if expire_after {
        expire_now(&mut l, &k, now);
    }
}

fn set(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    bump(&shared.memcache.cmd_set);
    let req = StoreRequest {
        mode: opts.store_mode(),
        key,
        flags: opts.client_flags.unwrap_or(0),
        exptime: opts.ttl.unwrap_or(0),
        data: m.data,
        compare_cas: opts.compare_cas,
        invalidate: opts.invalidate,
        binary_key: opts.base64,
    };
    // memcached echoes `c` from the item it built for this request: its new CAS when stored,
    // 0 when refused.
    let (result, new_cas) = super::store(shared, &req, now);
    if result == StoreResult::OutOfMemory {
        // memcached answers an ms it cannot store for memory with the same line as `set`.
        out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
        return;
    }
    let status: &[u8; 2] = match result {
        StoreResult::Stored => b"HD",
        StoreResult::NotStored => b"NS",
        StoreResult::Exists => b"EX",
        StoreResult::NotFound | StoreResult::OutOfMemory => b"NF",
    };
    if opts.quiet && result == StoreResult::Stored {
        return;
    }
    reply::meta_status(out, status);
    echo_flags(out, m, opts, &Echo { cas: Some(new_cas), ..Echo::key(key, opts.base64) });
    reply::meta_eol(out);
}

fn delete(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let k = shared.engine.hashed(key);
    let mut l = super::lock_key(shared, &k);
    let current = l.peek(DB, &k, now).map(|e| super::cas_of(shared, e));
    let status: &[u8; 2] = match current {
        None => {
            bump(&st.delete_misses);
            b"NF"
        }
        Some(have) if opts.compare_cas.is_some_and(|c| c != have) => b"EX",
        Some(_) if opts.invalidate => {
            // Keep the value for readers, marked stale, and let the next reader win the token.
            if let Some(t) = opts.ttl {
                apply_ttl(&mut l, &k, t, now);
            }
            if let Some(e) = l.write(DB, &k, now) {
                e.mc_bits = (e.mc_bits | mc_bits::STALE) & !mc_bits::WIN_SENT;
            }
            bump(&st.delete_hits);
            b"HD"
        }
        Some(_) => {
            l.delete(DB, &k, now);
            super::event(shared, notify::GENERIC, "del", key);
            bump(&st.delete_hits);
            b"HD"
        }
    };
    // q hides only the nominal HD: memcached still prints NF and EX.
    if opts.quiet && status == b"HD" {
        return;
    }
    status_reply(out, status, m, opts, key);
}

fn arith(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let incr = opts.incr();
    let k = shared.engine.hashed(key);
    let mut l = super::lock_key(shared, &k);
    let current =
        l.peek(DB, &k, now).map(|e| (super::cas_of(shared, e), e.value.as_str().map(|v| super::parse_counter(v))));
    let mut vivified = false;
    let mut expire_after = false;
    let status: &[u8; 2] = match current {
        None | Some((_, None)) => match opts.vivify {
            Some(ttl) => {
                let initial = opts.initial.unwrap_or(0);
                let expire = match expiry(ttl, now) {
                    Expiry::At(t) => Some(t),
                    Expiry::Never => None,
                    Expiry::Past => {
                        expire_after = true;
                        None
                    }
                };
                let e = l.set(DB, &k, Value::Str(initial.to_string().into_bytes()), expire, 0, false, now);
                super::cas_of(shared, e);
                bump(&st.total_items);
                vivified = true;
                b"HD"
            }
            None => {
                bump(if incr { &st.incr_misses } else { &st.decr_misses });
                b"NF"
            }
        },
        Some((_, Some(None))) => {
            out.extend_from_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
            return;
        }
        Some((have, _)) if opts.compare_cas.is_some_and(|c| c != have) => b"EX",
        Some((_, Some(Some(old)))) => {
            bump(if incr { &st.incr_hits } else { &st.decr_hits });
            let delta = opts.delta.unwrap_or(1);
            let new = if incr { old.wrapping_add(delta) } else { old.saturating_sub(delta) };
            if let Some(v) = l.write(DB, &k, now).and_then(|e| e.value.as_str_mut()) {
                // ma writes the number at its own length (no padding, unlike text incr/decr).
                *v = new.to_string().into_bytes();
            }
            b"HD"
        }
    };
    if status != b"HD" {
        status_reply(out, status, m, opts, key);
        return;
    }
    super::event(shared, notify::STRING, if vivified { "set" } else { "incrby" }, key);
    // T applies to the item incremented or created, in flag order as for mg.
    let Some(ttl) = l.peek(DB, &k, now).map(|e| if expire_after { 0 } else { ttl_secs(e, now) }) else { return };
    let ttl_after_t = take_ttl(&mut l, &k, opts, &mut expire_after, now);
    // q silences a successful ma, the value included; an item it had to create is still
    // reported, as memcached does.
    if opts.quiet && !vivified {
        if expire_after {
            expire_now(&mut l, &k, now);
        }
        return;
    }
    let Some(e) = l.peek(DB, &k, now) else { return };
    let echo = Echo { cas: Some(super::cas_of(shared, e)), ttl: Some(ttl), ttl_after_t, ..Echo::key(key, opts.base64) };
    let value = e.value.as_str().cloned().unwrap_or_default();
    if opts.return_value {
        reply::meta_va(out, value.len());
    } else {
        reply::meta_status(out, b"HD");
    }
    echo_flags(out, m, opts, &echo);
    reply::meta_eol(out);
    if opts.return_value {
        reply::meta_data(out, &value);
    }
    if expire_after {
        expire_now(&mut l, &k, now);
    }
}

/// memcached's size for an item (what `me` prints as `size` and what picks its slab class):
/// 48-byte header, 8-byte CAS, key + NUL, value + CRLF, 4 bytes of client flags when non-zero.
pub(super) fn item_size(key_len: usize, value_len: usize, flags: u32) -> u64 {
    (48 + 8 + key_len + 1 + value_len + 2 + if flags != 0 { 4 } else { 0 }) as u64
}

/// memcached's slab class for an item of `size` bytes and that class's chunk size: classes start
/// at 96-byte chunks and grow by a factor of 1.25, 8-byte aligned (`-n 48 -f 1.25` defaults).
pub(super) fn slab_class(size: u64) -> (u32, u64) {
    let mut chunk: u64 = 96;
    let mut class = 1;
    while chunk < size && class < 63 {
        chunk = ((chunk as f64 * 1.25) as u64).div_ceil(8) * 8;
        class += 1;
    }
    (class, chunk)
}

fn debug(shared: &Shared, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let k = shared.engine.hashed(key);
    let mut l = super::lock_key(shared, &k);
    let Some(e) = l.peek(DB, &k, now).filter(|e| e.value.as_str().is_some()) else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    let value_len = e.value.as_str().map(|v| v.len()).unwrap_or(0);
    let size = item_size(key.len(), value_len, e.flags);
    let la = (now / 1000).saturating_sub(u64::from(e.lru));
    reply::meta_debug(
        out,
        key,
        opts.base64,
        ttl_secs(e, now),
        la,
        super::cas_of(shared, e),
        e.mc_bits & mc_bits::FETCHED != 0,
        slab_class(size).0,
        size,
    );
}
