//! The hash command family: HSET HSETNX HGET HMGET HMSET HDEL HLEN HSTRLEN HEXISTS HKEYS HVALS
//! HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.
//!
//! The shapes follow redis-server 7.0's `t_hash.c`, because clients see which error comes first:
//! numeric arguments are checked before the key is looked up (HINCRBY, HINCRBYFLOAT, HRANDFIELD's
//! count, HSCAN's cursor), HSCAN looks the key up before reading its options (a missing key
//! answers an empty page whatever they say), and the stored value is checked last.
//!
//! - one `hset_generic` serves HSET and HMSET (they differ only in the reply);
//! - one `read_hash` does the lookup, type check and missing-key case for every read;
//! - writes type-check through `peek_hash` and take the engine's `write` (new CAS unique, one
//!   change counted) only once they will change something: an HSETNX of an existing field, an
//!   HDEL of absent fields or a refused HINCRBY leave the key untouched, as in Redis;
//! - the command that removes a hash's last field deletes the key.
//!
//! The representation (packed while small, a table beyond redis-server's listpack limits) is
//! `types::hash`'s business; these handlers see one `Hash` API.

use std::hash::{BuildHasher, RandomState};

use cachette_resp::{Encoder, Version};

use super::arg::*;
use super::flags::*;
use super::keys::{cursor_arg, element_scan_options, empty_scan_page};
use super::{int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{Hashed, Locked};
use crate::glob::glob_match;
use crate::types::hash::Hash;
use crate::types::string::{self as st, FloatIncrError};
use crate::types::Value;

/// This family's table entries (arity, flags and key positions as redis-server 7.0's COMMAND
/// INFO gives them).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", "Set the string value of a hash field", hset).args(FIELD_VALUES),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "O(1)", "Set the value of a hash field, only if the field does not exist", hsetnx).args(&[key("key"), string("field"), string("value")]),
    spec("hget", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "O(1)", "Get the value of a hash field", hget).args(KEY_FIELD),
    spec("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the number of fields being requested.", "Get the values of all the given hash fields", hmget).args(KEY_FIELDS),
    spec("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the number of fields being set.", "Set multiple hash fields to multiple values", hmset).args(FIELD_VALUES),
    spec("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the number of fields to be removed.", "Delete one or more hash fields", hdel).args(KEY_FIELDS),
    spec("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "O(1)", "Get the number of fields in a hash", hlen).args(ONE_KEY),
    spec("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", "3.2.0", "O(1)", "Get the length of the value of a hash field", hstrlen).args(KEY_FIELD),
    spec("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "O(1)", "Determine if a hash field exists", hexists).args(KEY_FIELD),
    spec("hkeys", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the fields in a hash", hkeys).args(ONE_KEY),
    spec("hvals", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the values in a hash", hvals).args(ONE_KEY),
    spec("hgetall", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the fields and values in a hash", hgetall).args(ONE_KEY),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "O(1)", "Increment the integer value of a hash field by the given number", hincrby).args(&[key("key"), string("field"), integer("increment")]),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.6.0", "O(1)", "Increment the float value of a hash field by the given amount", hincrbyfloat).args(&[key("key"), string("field"), double("increment")]),
    spec("hrandfield", -2, READONLY, (1, 1, 1), "hash", "6.2.0", "O(N) where N is the number of fields returned", "Get one or multiple random fields from a hash", hrandfield).args(HRANDFIELD_ARGS),
    spec("hscan", -3, READONLY, (1, 1, 1), "hash", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate hash fields and associated values", hscan).args(HSCAN_ARGS),
];

/// `key field value [field value ...]` (HSET, HMSET)
const FIELD_VALUES: &[Arg] = &[key("key"), block("field_value", &[string("field"), string("value")]).multiple()];
/// `key field`
const KEY_FIELD: &[Arg] = &[key("key"), string("field")];
/// `key field [field ...]`
const KEY_FIELDS: &[Arg] = &[key("key"), string("field").multiple()];
/// `HRANDFIELD key [count [WITHVALUES]]`
const HRANDFIELD_ARGS: &[Arg] =
    &[key("key"), block("options", &[integer("count"), pure("WITHVALUES").optional()]).optional()];
/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
const HSCAN_ARGS: &[Arg] = &[
    key("key"),
    integer("cursor"),
    pattern("pattern").token("MATCH").optional(),
    integer("count").token("COUNT").optional(),
];

// ---- access helpers -----------------------------------------------------------------------------

/// The hash a value holds, or WRONGTYPE.
fn hash_of(v: &Value) -> Result<&Hash, CmdError> {
    match v {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

/// Looks `key` up for reading (counting a hit or miss) and hands `f` the reply encoder and the
/// hash, None when the key is missing. WRONGTYPE before `f` runs, so `f` may write the reply.
fn read_hash(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Encoder<'_>, Option<&Hash>) -> Result<(), CmdError>,
) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(key);
    let mut l = engine.lock_one(&k);
    let h = match l.read(db, &k, now) {
        Some(e) => Some(hash_of(&e.value)?),
        None => None,
    };
    f(&mut ctx.out, h)
}

/// The hash under `k` without counting a read or a change (for validating a write); None when
/// missing, WRONGTYPE for another type.
fn peek_hash<'l>(l: &'l mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> Result<Option<&'l Hash>, CmdError> {
    match l.peek(db, k, now) {
        Some(e) => hash_of(&e.value).map(Some),
        None => Ok(None),
    }
}

/// Applies `f` to the hash under `k` through the engine's `write` (new CAS unique, one change
/// counted), creating the key with an empty hash when missing. The caller holds `k`'s shard and
/// has type-checked it with [`peek_hash`], so a present key holds a hash.
fn modify_hash_locked<T>(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64, f: impl FnOnce(&mut Hash) -> T) -> T {
    if let Some(Value::Hash(h)) = l.write(db, k, now).map(|e| &mut e.value) {
        return f(h);
    }
    let mut h = Hash::new();
    let r = f(&mut h);
    l.set(db, k, Value::Hash(h), None, 0, false, now);
    r
}

// ---- writes -------------------------------------------------------------------------------------

fn hset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    hset_generic(ctx, argv, "hset")
}

fn hmset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    hset_generic(ctx, argv, "hmset")
}

/// HSET / HMSET: pairs must come whole; every string is measured before any is stored, so a
/// hash given one over-long string converts up front (redis-server's `hashTypeTryConversion`).
/// HSET answers how many fields were new, HMSET `+OK`.
fn hset_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, name: &str) -> Result<(), CmdError> {
    if argv.len() % 2 != 0 {
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{name}' command")));
    }
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let longest = argv.rest(2).map(<[u8]>::len).max().unwrap_or(0);
    let mut l = engine.lock_one(&k);
    peek_hash(&mut l, db, &k, now)?;
    let added = modify_hash_locked(&mut l, db, &k, now, |h| {
        h.prepare(longest);
        (2..argv.len()).step_by(2).filter(|&i| h.set(argv.get(i), argv.get(i + 1))).count()
    });
    drop(l);
    ctx.notify_after(notify::HASH, "hset", k.key);
    if name == "hset" {
        ctx.out.int(added as i64);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// HSETNX: an existing field answers 0 and leaves the key untouched (no conversion either).
fn hsetnx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (field, value) = (argv.get(2), argv.get(3));
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let exists = peek_hash(&mut l, db, &k, now)?.is_some_and(|h| h.contains(field));
    if !exists {
        modify_hash_locked(&mut l, db, &k, now, |h| h.set(field, value));
    }
    drop(l);
    if !exists {
        ctx.notify_after(notify::HASH, "hset", k.key);
    }
    ctx.out.int(i64::from(!exists));
    Ok(())
}

/// HDEL: answers how many of the named fields were removed (a repeated name counts once); the
/// key goes when its last field does.
fn hdel(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let any = match peek_hash(&mut l, db, &k, now)? {
        Some(h) => argv.rest(2).any(|f| h.contains(f)),
        None => false,
    };
    let mut removed = 0;
    let mut emptied = false;
    if any {
        emptied = modify_hash_locked(&mut l, db, &k, now, |h| {
            removed = argv.rest(2).filter(|f| h.remove(f)).count();
            h.is_empty()
        });
        if emptied {
            l.delete(db, &k, now);
        }
    }
    drop(l);
    if removed > 0 {
        ctx.notify(notify::HASH, "hdel", k.key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", k.key);
        }
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// HINCRBY: the increment must be an integer (checked first), the stored value a strict 64-bit
/// integer (a missing field counts as 0), and the sum must not overflow.
fn hincrby(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let by = int_arg(argv.get(3))?;
    let field = argv.get(2);
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let old = match peek_hash(&mut l, db, &k, now)?.and_then(|h| h.get(field)) {
        Some(v) => st::parse_i64(v).ok_or_else(|| CmdError::err("ERR hash value is not an integer"))?,
        None => 0,
    };
    let new = old.checked_add(by).ok_or(CmdError::Overflow)?;
    let mut digits = Vec::with_capacity(20);
    st::push_i64(&mut digits, new);
    modify_hash_locked(&mut l, db, &k, now, |h| h.set(field, &digits));
    drop(l);
    ctx.notify_after(notify::HASH, "hincrby", k.key);
    ctx.out.int(new);
    Ok(())
}

/// HINCRBYFLOAT: redis-server's order of checks and its four messages — the increment must be
/// a float ("value is not a valid float") and finite ("value is NaN or Infinity"), checked
/// before the key; then the stored value must be a float ("hash value is not a float"); then
/// the sum, computed in `long double` as `types::string::incr_by_float` emulates, finite.
fn hincrbyfloat(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (field, incr) = (argv.get(2), argv.get(3));
    // 0 + increment: fails exactly when the increment is not a float, or is infinite.
    st::incr_by_float(None, incr).map_err(|e| match e {
        FloatIncrError::NotFloat => CmdError::NotFloat,
        FloatIncrError::NanOrInfinity => CmdError::err("ERR value is NaN or Infinity"),
    })?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let current = peek_hash(&mut l, db, &k, now)?.and_then(|h| h.get(field));
    // The increment is known good, so a NotFloat now is the stored value's.
    let new = st::incr_by_float(current, incr).map_err(|e| match e {
        FloatIncrError::NotFloat => CmdError::err("ERR hash value is not a float"),
        FloatIncrError::NanOrInfinity => CmdError::err("ERR increment would produce NaN or Infinity"),
    })?;
    // The result, not the increment: float formatting must not be redone on replay.
    crate::engine::effects::rewrite(&[b"HSET", k.key, field, &new]);
    modify_hash_locked(&mut l, db, &k, now, |h| h.set(field, &new));
    drop(l);
    ctx.notify_after(notify::HASH, "hincrbyfloat", k.key);
    ctx.out.bulk(&new);
    Ok(())
}

// ---- reads --------------------------------------------------------------------------------------

fn hget(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let field = argv.get(2);
    read_hash(ctx, argv.get(1), |out, h| {
        match h.and_then(|h| h.get(field)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
        Ok(())
    })
}

/// HMGET: a null for each absent field; a missing key reads as an empty hash.
fn hmget(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    read_hash(ctx, argv.get(1), |out, h| {
        out.array(argv.len() - 2);
        for f in argv.rest(2) {
            match h.and_then(|h| h.get(f)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
        Ok(())
    })
}

fn hlen(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    read_hash(ctx, argv.get(1), |out, h| {
        out.int(h.map_or(0, Hash::len) as i64);
        Ok(())
    })
}

fn hstrlen(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let field = argv.get(2);
    read_hash(ctx, argv.get(1), |out, h| {
        out.int(h.and_then(|h| h.get(field)).map_or(0, <[u8]>::len) as i64);
        Ok(())
    })
}

fn hexists(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let field = argv.get(2);
    read_hash(ctx, argv.get(1), |out, h| {
        out.int(i64::from(h.is_some_and(|h| h.contains(field))));
        Ok(())
    })
}

/// What HKEYS, HVALS and HGETALL list of each pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Fields,
    Values,
    Both,
}

fn hkeys(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    getall_generic(ctx, argv, Part::Fields)
}

fn hvals(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    getall_generic(ctx, argv, Part::Values)
}

fn hgetall(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    getall_generic(ctx, argv, Part::Both)
}

/// HKEYS / HVALS (arrays) and HGETALL (a map in RESP3, a flat array in RESP2), in the hash's
/// own order: insertion order while packed, as redis-server's listpack.
fn getall_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, part: Part) -> Result<(), CmdError> {
    read_hash(ctx, argv.get(1), |out, h| {
        let len = h.map_or(0, Hash::len);
        if part == Part::Both {
            out.map(len);
        } else {
            out.array(len);
        }
        for (f, v) in h.into_iter().flat_map(Hash::iter) {
            if part != Part::Values {
                out.bulk(f);
            }
            if part != Part::Fields {
                out.bulk(v);
            }
        }
        Ok(())
    })
}

// ---- HRANDFIELD ---------------------------------------------------------------------------------

/// Most picks one HRANDFIELD with a negative count answers. redis-server has no bound here and
/// would build a reply of any size (with WITHVALUES it refuses beyond 2^62); cachette refuses a
/// count whose reply could not fit in memory anyway rather than abort on the allocation.
const MAX_RANDOM_PICKS: u64 = 1 << 26;

/// A small xorshift64* generator. HRANDFIELD needs "random", not cryptographic; each command
/// seeds one from std's per-process random hasher keys and the clock, so no state is shared.
struct Rng(u64);

impl Rng {
    fn new(now: u64) -> Rng {
        Rng(RandomState::new().hash_one(now) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`), up to a bias of n / 2^64.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` distinct positions out of `0..size` (`count < size`), ascending: redis-server lists
/// a listpack's unique sample in listpack order too. Selection sampling (one pass) when the
/// sample is a large part of the hash, rejection of repeats when it is small.
fn distinct_positions(rng: &mut Rng, count: usize, size: usize) -> Vec<usize> {
    if count * 3 > size {
        let mut picked = Vec::with_capacity(count);
        for i in 0..size {
            if rng.below(size - i) < count - picked.len() {
                picked.push(i);
            }
        }
        return picked;
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    while seen.len() < count {
        seen.insert(rng.below(size));
    }
    let mut picked: Vec<usize> = seen.into_iter().collect();
    picked.sort_unstable();
    picked
}

/// HRANDFIELD key [count [WITHVALUES]]. Without a count: one field, or null for a missing key.
/// With one: a positive count gives distinct fields (the whole hash if it has no more), a
/// negative one `-count` picks that may repeat; a missing key gives an empty array. With
/// WITHVALUES, RESP3 nests each pick as `[field, value]`, RESP2 flattens them.
fn hrandfield(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut request = None;
    if argv.len() >= 3 {
        let n = int_arg(argv.get(2))?;
        if n == i64::MIN {
            return Err(CmdError::err(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        let with_values = match argv.len() {
            3 => false,
            4 if is(argv.get(3), "WITHVALUES") => true,
            _ => return Err(CmdError::Syntax),
        };
        if (with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n))
            || (n < 0 && n.unsigned_abs() > MAX_RANDOM_PICKS)
        {
            return Err(CmdError::err("ERR value is out of range"));
        }
        request = Some((n, with_values));
    }
    let resp3 = ctx.session.version == Version::Resp3;
    let mut rng = Rng::new(ctx.now);
    read_hash(ctx, argv.get(1), |out, h| {
        let Some((n, with_values)) = request else {
            match h {
                Some(h) => out.bulk(h.indexed().get(rng.below(h.len())).0),
                None => out.null(),
            }
            return Ok(());
        };
        let Some(h) = h.filter(|_| n != 0) else {
            out.array(0);
            return Ok(());
        };
        let all = h.indexed();
        let size = all.len();
        let count = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        let positions: Vec<usize> = if n < 0 || count == 1 {
            (0..count).map(|_| rng.below(size)).collect()
        } else if count >= size {
            (0..size).collect()
        } else {
            distinct_positions(&mut rng, count, size)
        };
        out.array(if with_values && !resp3 { positions.len() * 2 } else { positions.len() });
        for i in positions {
            let (f, v) = all.get(i);
            if with_values && resp3 {
                out.array(2);
            }
            out.bulk(f);
            if with_values {
                out.bulk(v);
            }
        }
        Ok(())
    })
}

// ---- HSCAN --------------------------------------------------------------------------------------

/// HSCAN key cursor [MATCH pattern] [COUNT count]: the cursor is checked first, then the key
/// (missing: an empty page with cursor 0, options unread), then the options. A packed hash is
/// returned whole; a table about COUNT pairs per call (see `Hash::scan` for the cursor).
fn hscan(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let cursor = cursor_arg(argv.get(2))?;
    read_hash(ctx, argv.get(1), |out, h| {
        let Some(h) = h else {
            empty_scan_page(out);
            return Ok(());
        };
        let (pattern, count) = element_scan_options(argv)?;
        let mut page: Vec<(&[u8], &[u8])> = Vec::new();
        let next = h.scan(cursor, count, |f, v| {
            if pattern.map_or(true, |p| glob_match(p, f, false)) {
                page.push((f, v));
            }
        });
        out.array(2);
        out.bulk(next.to_string().as_bytes());
        out.array(page.len() * 2);
        for (f, v) in page {
            out.bulk(f);
            out.bulk(v);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_redis_command_info() {
        let find = |n: &str| COMMANDS.iter().find(|s| s.name == n).unwrap();
        assert_eq!(COMMANDS.len(), 16);
        assert!(COMMANDS.iter().all(|s| s.group == "hash" && (s.first_key, s.last_key, s.step) == (1, 1, 1)));
        assert!(find("hset").has(WRITE | DENYOOM | FAST));
        assert!(find("hdel").has(WRITE) && !find("hdel").has(DENYOOM));
        assert!(find("hgetall").has(READONLY) && !find("hgetall").has(FAST));
        assert_eq!((find("hrandfield").arity, find("hscan").arity), (-2, -3));
    }

    #[test]
    fn distinct_positions_are_distinct_sorted_and_in_range() {
        let mut rng = Rng::new(42);
        for (count, size) in [(1, 2), (5, 6), (3, 100), (40, 100), (99, 100)] {
            let p = distinct_positions(&mut rng, count, size);
            assert_eq!(p.len(), count);
            assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
            assert!(p.iter().all(|&i| i < size));
        }
    }

    #[test]
    fn rng_covers_its_range() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..200 {
            seen[rng.below(5)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
