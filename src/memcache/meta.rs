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
use cachette_memcache::request::{Meta, MetaKind, MetaOpts, StoreMode};

use super::{bump, expiry, Expiry, StoreResult, DB};
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

/// Echoes the flags of `m` that ask for something back, in request order.
#[allow(clippy::too_many_arguments)]
fn echo_flags(
    out: &mut Vec<u8>,
    m: &Meta<'_>,
    opts: &MetaOpts<'_>,
    key: &[u8],
    e: Option<&Entry>,
    ttl: i64,
    prev_access: u32,
    hit_before: bool,
    now: u64,
) {
    for (flag, _) in m.flags.iter() {
        match flag {
            b'O' => {
                if let Some(o) = opts.opaque {
                    reply::meta_opaque(out, o);
                }
            }
            b'k' => reply::meta_key(out, key, opts.base64),
            b'b' if !opts.return_key => {}
            _ => {}
        }
        let Some(e) = e else { continue };
        match flag {
            b'c' => reply::meta_flag(out, b'c', e.cas),
            b'f' => reply::meta_flag(out, b'f', u64::from(e.flags)),
            b's' => reply::meta_flag(out, b's', e.value.as_str().map(|v| v.len()).unwrap_or(0) as u64),
            b't' => reply::meta_flag_i64(out, b't', ttl),
            b'h' => reply::meta_flag(out, b'h', u64::from(hit_before)),
            b'l' => reply::meta_flag(out, b'l', (now / 1000).saturating_sub(u64::from(prev_access))),
            _ => {}
        }
    }
}

fn apply_ttl(l: &mut Locked<'_>, k: &Hashed<'_>, exptime: i64, now: u64) {
    match expiry(exptime, now) {
        Expiry::Never => {
            l.set_expire(DB, k, None, now);
        }
        Expiry::At(t) => {
            l.set_expire(DB, k, Some(t), now);
        }
        Expiry::Past => {
            // memcached marks the item expired; the current reply still shows it.
            l.set_expire(DB, k, Some(now.saturating_sub(1).max(1)), now);
        }
    }
}

fn get(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_get);
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let exists = matches!(l.peek(DB, &k, now), Some(e) if e.value.as_str().is_some());
    let mut won = false;
    let mut ttl_override = None;
    if !exists {
        let Some(vivify) = opts.vivify else {
            bump(&st.get_misses);
            shared.engine.stats.keyspace_misses.fetch_add(1, Ordering::Relaxed);
            if !opts.quiet {
                out.extend_from_slice(b"EN");
                echo_flags(out, m, opts, key, None, -1, 0, false, now);
                out.extend_from_slice(b"\r\n");
            }
            return;
        };
        // Vivify: an empty placeholder whose creator wins the right to fill it. memcached
        // reports the placeholder's TTL as -1 in this first reply.
        bump(&st.get_misses);
        let expire = match expiry(vivify, now) {
            Expiry::At(t) => Some(t),
            _ => None,
        };
        let e = l.set(DB, &k, Value::Str(Vec::new()), expire, 0, false, now);
        e.mc_bits |= mc_bits::WIN_SENT;
        won = true;
        ttl_override = Some(-1);
    } else {
        bump(&st.get_hits);
        shared.engine.stats.keyspace_hits.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = opts.ttl {
            apply_ttl(&mut l, &k, t, now);
        }
    }
    let Some(e) = l.peek(DB, &k, now).or(None) else { return };
    let ttl = ttl_override.unwrap_or_else(|| ttl_secs(e, now));
    if !won {
        let stale = e.mc_bits & mc_bits::STALE != 0;
        let recache = opts.recache.is_some_and(|r| ttl != -1 && ttl < r);
        if (stale || recache) && e.mc_bits & mc_bits::WIN_SENT == 0 {
            e.mc_bits |= mc_bits::WIN_SENT;
            won = true;
        }
    }
    let prev_access = e.lru;
    let hit_before = e.mc_bits & mc_bits::FETCHED != 0;
    let bits = e.mc_bits;
    let data_len = e.value.as_str().map(|v| v.len()).unwrap_or(0);
    if opts.return_value {
        reply::meta_va(out, data_len);
    } else {
        reply::meta_status(out, b"HD");
    }
    echo_flags(out, m, opts, key, Some(e), ttl, prev_access, hit_before, now);
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
}

fn status_reply(
    out: &mut Vec<u8>,
    status: &[u8; 2],
    m: &Meta<'_>,
    opts: &MetaOpts<'_>,
    key: &[u8],
    e: Option<&Entry>,
    now: u64,
) {
    reply::meta_status(out, status);
    let ttl = e.map(|e| ttl_secs(e, now)).unwrap_or(-1);
    let access = e.map(|e| e.lru).unwrap_or(0);
    let fetched = e.is_some_and(|e| e.mc_bits & mc_bits::FETCHED != 0);
    echo_flags(out, m, opts, key, e, ttl, access, fetched, now);
    reply::meta_eol(out);
}

fn set(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    bump(&st.cmd_set);
    let mode = opts.store_mode();
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let current = l.peek(DB, &k, now).and_then(|e| e.value.as_str().is_some().then_some((e.cas, e.mc_bits)));
    let cas_ok = |cur: Option<(u64, u8)>| match (opts.compare_cas, cur) {
        (Some(c), Some((have, _))) => c == have,
        _ => true,
    };
    let mut mark_stale = false;
    let result = match mode {
        StoreMode::Add if current.is_some() => StoreResult::NotStored,
        StoreMode::Replace if current.is_none() => StoreResult::NotStored,
        StoreMode::Append | StoreMode::Prepend if current.is_none() => StoreResult::NotStored,
        StoreMode::Cas if current.is_none() => StoreResult::NotFound,
        _ if !cas_ok(current) => {
            // With I, a write carrying an older CAS than the item's still lands, but stale.
            match (opts.invalidate, opts.compare_cas, current) {
                (true, Some(c), Some((have, _))) if c < have => {
                    mark_stale = true;
                    StoreResult::Stored
                }
                _ => StoreResult::Exists,
            }
        }
        _ => StoreResult::Stored,
    };
    if mode == StoreMode::Cas {
        match result {
            StoreResult::NotFound => bump(&st.cas_misses),
            StoreResult::Exists => bump(&st.cas_badval),
            _ => bump(&st.cas_hits),
        }
    }
    if result == StoreResult::Stored {
        match mode {
            StoreMode::Append | StoreMode::Prepend => {
                if let Some(v) = l.write(DB, &k, now).and_then(|e| e.value.as_str_mut()) {
                    if mode == StoreMode::Append {
                        v.extend_from_slice(m.data);
                    } else {
                        v.splice(0..0, m.data.iter().copied());
                    }
                }
            }
            _ => {
                let expire = match expiry(opts.ttl.unwrap_or(0), now) {
                    Expiry::Never => None,
                    Expiry::At(t) => Some(t),
                    Expiry::Past => Some(now.saturating_sub(1).max(1)),
                };
                let flags = opts.client_flags.unwrap_or(0);
                let e = l.set(DB, &k, Value::Str(m.data.to_vec()), expire, flags, false, now);
                if mark_stale {
                    e.mc_bits |= mc_bits::STALE;
                }
            }
        }
        bump(&st.total_items);
    }
    let status: &[u8; 2] = match result {
        StoreResult::Stored => b"HD",
        StoreResult::NotStored => b"NS",
        StoreResult::Exists => b"EX",
        StoreResult::NotFound => b"NF",
    };
    if opts.quiet && result == StoreResult::Stored {
        return;
    }
    let e = if result == StoreResult::Stored { l.peek(DB, &k, now).map(|e| &*e) } else { None };
    status_reply(out, status, m, opts, key, e, now);
}

fn delete(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let current = l.peek(DB, &k, now).map(|e| e.cas);
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
            bump(&st.delete_hits);
            b"HD"
        }
    };
    if opts.quiet && (status == b"HD" || status == b"NF") {
        return;
    }
    status_reply(out, status, m, opts, key, None, now);
}

fn arith(shared: &Shared, m: &Meta<'_>, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let incr = opts.incr();
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let current = l.peek(DB, &k, now).map(|e| (e.cas, e.value.as_str().map(|v| super::parse_counter(v))));
    let status: &[u8; 2] = match current {
        None | Some((_, None)) => match opts.vivify {
            Some(ttl) => {
                let initial = opts.initial.unwrap_or(0);
                let expire = match expiry(ttl, now) {
                    Expiry::At(t) => Some(t),
                    _ => None,
                };
                l.set(DB, &k, Value::Str(initial.to_string().into_bytes()), expire, 0, false, now);
                bump(&st.total_items);
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
            if let Some(t) = opts.ttl {
                apply_ttl(&mut l, &k, t, now);
            }
            b"HD"
        }
    };
    if status != b"HD" {
        status_reply(out, status, m, opts, key, None, now);
        return;
    }
    let Some(e) = l.peek(DB, &k, now) else { return };
    if opts.return_value {
        let v = e.value.as_str().cloned().unwrap_or_default();
        reply::meta_va(out, v.len());
        let ttl = ttl_secs(e, now);
        echo_flags(out, m, opts, key, Some(e), ttl, e.lru, e.mc_bits & mc_bits::FETCHED != 0, now);
        reply::meta_eol(out);
        reply::meta_data(out, &v);
    } else if !opts.quiet {
        status_reply(out, b"HD", m, opts, key, Some(e), now);
    }
}

/// memcached's slab class for an item of `size` bytes: classes start at 96-byte chunks and grow
/// by a factor of 1.25, 8-byte aligned (`-n 48 -f 1.25` defaults).
fn slab_class(size: u64) -> u32 {
    let mut chunk: u64 = 96;
    let mut class = 1;
    while chunk < size && class < 63 {
        chunk = ((chunk as f64 * 1.25) as u64).div_ceil(8) * 8;
        class += 1;
    }
    class
}

fn debug(shared: &Shared, opts: &MetaOpts<'_>, key: &[u8], out: &mut Vec<u8>, now: u64) {
    let k = shared.engine.hashed(key);
    let mut l = shared.engine.lock_one(&k);
    let Some(e) = l.peek(DB, &k, now).filter(|e| e.value.as_str().is_some()) else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    let value_len = e.value.as_str().map(|v| v.len()).unwrap_or(0) as u64;
    // memcached's item: 48-byte header, 8-byte CAS, key + NUL, value + CRLF, 4 bytes of flags.
    let size = 48 + 8 + key.len() as u64 + 1 + value_len + 2 + if e.flags != 0 { 4 } else { 0 };
    let la = (now / 1000).saturating_sub(u64::from(e.lru));
    reply::meta_debug(
        out,
        key,
        opts.base64,
        ttl_secs(e, now),
        la,
        e.cas,
        e.mc_bits & mc_bits::FETCHED != 0,
        slab_class(size),
        size,
    );
}
