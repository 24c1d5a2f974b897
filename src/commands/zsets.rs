//! The sorted set command family: ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT
//! ZLEXCOUNT ZRANGE ZRANGESTORE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX
//! ZREVRANGE ZPOPMIN ZPOPMAX ZMPOP ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZRANDMEMBER
//! ZSCAN ZUNION ZINTER ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZINTERCARD.
//!
//! The shapes follow redis-server 7.0's `t_zset.c`, because clients see which error comes first:
//!
//! - one [`zadd_generic`] serves ZADD and ZINCRBY (options, then pair count, then conflicts,
//!   then every score, then the key's type);
//! - one [`zrange_generic`] serves the eight range commands, ZRANGESTORE included, told apart by
//!   a [`RangeCmd`] (fixed range kind and direction, or chosen by BYSCORE/BYLEX/REV);
//! - one [`zremrange_generic`] the three ZREMRANGEBY* commands; one [`setop_generic`] the seven
//!   union/intersection/difference commands;
//! - popping is [`pop_locked`], which takes the caller's shard guard so that the blocking
//!   variants (BZPOPMIN, BZPOPMAX, BZMPOP: not in the table until the server can block a client)
//!   reuse it unchanged, and [`reply_pop`] for the reply shapes.
//!
//! Score arguments of ZADD/ZINCRBY and weights are parsed strictly ([`parse_score`]); range
//! bounds as `strtod` reads them ([`parse_score_range`]), leading spaces allowed. Hexadecimal
//! floats (`0x10`), which `strtod` accepts, are refused here.
//!
//! Sets are accepted by the set operations as sorted sets whose scores are all 1, as Redis does.

use std::borrow::Cow;
use std::collections::HashMap;

use cachette_resp::Version;

use super::arg::*;
use super::flags::*;
use super::keys::{cursor_arg, element_scan_options, empty_scan_page};
use super::{block_on, int_arg, is, notify, parse_timeout, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{Hashed, Locked};
use crate::glob::glob_match;
use crate::types::set::Rng;
use crate::types::string::parse_f64;
use crate::types::zset::{LexBound, LexRange, ScoreRange, ZSet};
use crate::types::Value;

/// This family's table entries (arity, flags, key positions, docs and arguments as
/// redis-server 7.0.15's COMMAND INFO and COMMAND DOCS give them). ZMPOP and the set operations
/// have movable keys (0, 0, 0): their handlers find the keys through `numkeys`.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", "Add one or more members to a sorted set, or update its score if it already exists", zadd).args(&[key("key"), oneof("condition", &[pure("NX"), pure("XX")]).since("3.0.2").optional(), oneof("comparison", &[pure("GT"), pure("LT")]).since("6.2.0").optional(), pure("CH").named("change").since("3.0.2").optional(), pure("INCR").named("increment").since("3.0.2").optional(), block("score_member", &[double("score"), string("member")]).multiple()]),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "O(log(N)) where N is the number of elements in the sorted set.", "Increment the score of a member in a sorted set", zincrby).args(&[key("key"), integer("increment"), string("member")]),
    spec("zrem", -3, WRITE | FAST, (1, 1, 1), "sorted-set", "1.2.0", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", "Remove one or more members from a sorted set", zrem).args(&[key("key"), string("member").multiple()]),
    spec("zcard", 2, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "O(1)", "Get the number of members in a sorted set", zcard).args(&[key("key")]),
    spec("zscore", 3, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "O(1)", "Get the score associated with the given member in a sorted set", zscore).args(&[key("key"), string("member")]),
    spec("zmscore", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "6.2.0", "O(N) where N is the number of members being requested.", "Get the score associated with the given members in a sorted set", zmscore).args(&[key("key"), string("member").multiple()]),
    spec("zrank", 3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "O(log(N))", "Determine the index of a member in a sorted set", zrank).args(&[key("key"), string("member")]),
    spec("zrevrank", 3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "O(log(N))", "Determine the index of a member in a sorted set, with scores ordered from high to low", zrevrank).args(&[key("key"), string("member")]),
    spec("zcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Count the members in a sorted set with scores within the given values", zcount).args(&[key("key"), double("min"), double("max")]),
    spec("zlexcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.8.9", "O(log(N)) with N being the number of elements in the sorted set.", "Count the number of members in a sorted set between a given lexicographical range", zlexcount).args(&[key("key"), string("min"), string("max")]),
    spec("zrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "Return a range of members in a sorted set", zrange).args(&[key("key"), string("start"), string("stop"), oneof("sortby", &[pure("BYSCORE"), pure("BYLEX")]).since("6.2.0").optional(), pure("REV").since("6.2.0").optional(), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").since("6.2.0").optional(), pure("WITHSCORES").optional()]),
    spec("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), "sorted-set", "6.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", "Store a range of members from sorted set into another key", zrangestore).args(&[key("dst"), key("src").key_spec(1), string("min"), string("max"), oneof("sortby", &[pure("BYSCORE"), pure("BYLEX")]).optional(), pure("REV").optional(), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional()]),
    spec("zrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "1.0.5", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by score", zrangebyscore).args(&[key("key"), double("min"), double("max"), pure("WITHSCORES").since("2.0.0").optional(), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional()]),
    spec("zrevrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "2.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by score, with scores ordered from high to low", zrevrangebyscore).args(&[key("key"), double("max"), double("min"), pure("WITHSCORES").optional(), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional()]),
    spec("zrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by lexicographical range", zrangebylex).args(&[key("key"), string("min"), string("max"), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional()]),
    spec("zrevrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", zrevrangebylex).args(&[key("key"), string("max"), string("min"), block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional()]),
    spec("zrevrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "Return a range of members in a sorted set, by index, with scores ordered from high to low", zrevrange).args(&[key("key"), integer("start"), integer("stop"), pure("WITHSCORES").optional()]),
    spec("zpopmin", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with the lowest scores in a sorted set", zpopmin).args(&[key("key"), integer("count").optional()]),
    spec("zpopmax", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with the highest scores in a sorted set", zpopmax).args(&[key("key"), integer("count").optional()]),
    spec("zmpop", -4, WRITE, (0, 0, 0), "sorted-set", "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with scores in a sorted set", zmpop).args(&[integer("numkeys"), key("key").multiple(), oneof("where", &[pure("MIN"), pure("MAX")]), integer("count").token("COUNT").optional()]).numkeys(1),
    spec("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), "sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", bzpopmin).args(&[key("key").multiple(), double("timeout")]),
    spec("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), "sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", bzpopmax).args(&[key("key").multiple(), double("timeout")]),
    spec("bzmpop", -5, WRITE | BLOCKING, (0, 0, 0), "sorted-set", "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with scores in a sorted set or block until one is available", bzmpop).args(&[double("timeout"), integer("numkeys"), key("key").multiple(), oneof("where", &[pure("MIN"), pure("MAX")]), integer("count").token("COUNT").optional()]).numkeys(2),
    spec("zremrangebyrank", 4, WRITE, (1, 1, 1), "sorted-set", "2.0.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set within the given indexes", zremrangebyrank).args(&[key("key"), integer("start"), integer("stop")]),
    spec("zremrangebyscore", 4, WRITE, (1, 1, 1), "sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set within the given scores", zremrangebyscore).args(&[key("key"), double("min"), double("max")]),
    spec("zremrangebylex", 4, WRITE, (1, 1, 1), "sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set between the given lexicographical range", zremrangebylex).args(&[key("key"), string("min"), string("max")]),
    spec("zrandmember", -2, READONLY, (1, 1, 1), "sorted-set", "6.2.0", "O(N) where N is the number of elements returned", "Get one or multiple random elements from a sorted set", zrandmember).args(&[key("key"), block("options", &[integer("count"), pure("WITHSCORES").optional()]).optional()]),
    spec("zscan", -3, READONLY, (1, 1, 1), "sorted-set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate sorted sets elements and associated scores", zscan).args(&[key("key"), integer("cursor"), pattern("pattern").token("MATCH").optional(), integer("count").token("COUNT").optional()]),
    spec("zunion", -3, READONLY, (0, 0, 0), "sorted-set", "6.2.0", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "Add multiple sorted sets", zunion).args(&[integer("numkeys"), key("key").multiple(), integer("weight").token("WEIGHTS").optional().multiple(), oneof("aggregate", &[pure("SUM"), pure("MIN"), pure("MAX")]).token("AGGREGATE").optional(), pure("WITHSCORES").optional()]).numkeys(1),
    spec("zinter", -3, READONLY, (0, 0, 0), "sorted-set", "6.2.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "Intersect multiple sorted sets", zinter).args(&[integer("numkeys"), key("key").multiple(), integer("weight").token("WEIGHTS").optional().multiple(), oneof("aggregate", &[pure("SUM"), pure("MIN"), pure("MAX")]).token("AGGREGATE").optional(), pure("WITHSCORES").optional()]).numkeys(1),
    spec("zdiff", -3, READONLY, (0, 0, 0), "sorted-set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "Subtract multiple sorted sets", zdiff).args(&[integer("numkeys"), key("key").multiple(), pure("WITHSCORES").optional()]).numkeys(1),
    spec("zunionstore", -4, WRITE | DENYOOM, (1, 1, 1), "sorted-set", "2.0.0", "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "Add multiple sorted sets and store the resulting sorted set in a new key", zunionstore).args(&[key("destination"), integer("numkeys"), key("key").key_spec(1).multiple(), integer("weight").token("WEIGHTS").optional().multiple(), oneof("aggregate", &[pure("SUM"), pure("MIN"), pure("MAX")]).token("AGGREGATE").optional()]).numkeys(2),
    spec("zinterstore", -4, WRITE | DENYOOM, (1, 1, 1), "sorted-set", "2.0.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "Intersect multiple sorted sets and store the resulting sorted set in a new key", zinterstore).args(&[key("destination"), integer("numkeys"), key("key").key_spec(1).multiple(), integer("weight").token("WEIGHTS").optional().multiple(), oneof("aggregate", &[pure("SUM"), pure("MIN"), pure("MAX")]).token("AGGREGATE").optional()]).numkeys(2),
    spec("zdiffstore", -4, WRITE | DENYOOM, (1, 1, 1), "sorted-set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "Subtract multiple sorted sets and store the resulting sorted set in a new key", zdiffstore).args(&[key("destination"), integer("numkeys"), key("key").key_spec(1).multiple()]).numkeys(2),
    spec("zintercard", -3, READONLY, (0, 0, 0), "sorted-set", "7.0.0", "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", "Intersect multiple sorted sets and return the cardinality of the result", zintercard).args(&[integer("numkeys"), key("key").multiple(), integer("limit").token("LIMIT").optional()]).numkeys(1),
];

const NAN_ERR: &str = "ERR resulting score is not a number (NaN)";

// ---- parsing ----------------------------------------------------------------------------------

/// A score or increment as redis-server's `getDoubleFromObject` reads it: the whole argument a
/// float, no leading space, no NaN, and no overflow to ±inf or underflow to 0 from digits that
/// meant otherwise (`1e400`, `1e-400`); `inf`, `+inf`, `-inf` are fine.
pub fn parse_score(a: &[u8]) -> Option<f64> {
    let v = parse_f64(a)?;
    let lower = a.to_ascii_lowercase();
    if v.is_infinite() && !lower.windows(3).any(|w| w == b"inf") {
        return None;
    }
    let mantissa = lower.split(|&c| c == b'e').next().unwrap_or_default();
    if v == 0.0 && mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
        return None;
    }
    Some(v)
}

/// One bound of a score range as `zslParseRange` reads it with `strtod`: leading spaces are
/// skipped, an empty text is 0, a `(` makes the bound exclusive; trailing text or NaN is refused.
fn parse_bound(a: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match a.first() {
        Some(b'(') => (&a[1..], true),
        _ => (a, false),
    };
    if text.is_empty() {
        return Some((0.0, ex));
    }
    let start = text.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    parse_f64(&text[start..]).map(|v| (v, ex))
}

/// A `min max` score range, or "min or max is not a float".
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (parse_bound(min), parse_bound(max)) {
        (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange { min, max, min_ex, max_ex }),
        _ => Err(CmdError::err("ERR min or max is not a float")),
    }
}

fn parse_lex_bound(a: &[u8]) -> Option<LexBound<'_>> {
    match a {
        b"+" => Some(LexBound::Max),
        b"-" => Some(LexBound::Min),
        [b'[', rest @ ..] => Some(LexBound::Incl(rest)),
        [b'(', rest @ ..] => Some(LexBound::Excl(rest)),
        _ => None,
    }
}

/// A `min max` lexicographic range, or "min or max not valid string range item".
pub fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::err("ERR min or max not valid string range item")),
    }
}

/// `getPositiveLongFromObjectOrReply` with redis-server's message for both failures.
fn positive_arg(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    int_arg(a).ok().filter(|&n| n >= 0).ok_or(CmdError::err(msg))
}

/// A sorted set, or WRONGTYPE.
fn zset_of(v: &Value) -> Result<&ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn zset_mut(v: &mut Value) -> Result<&mut ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the sorted set at `key` (None when missing) under its shard lock, counting a
/// keyspace hit or miss.
fn read_zset<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_>, Option<&ZSet>) -> R,
) -> Result<R, CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(key);
    let mut l = engine.lock_one(&k);
    match l.read(db, &k, now) {
        Some(e) => {
            let z = zset_of(&e.value)?;
            Ok(f(ctx, Some(z)))
        }
        None => Ok(f(ctx, None)),
    }
}

/// Stores `z` at `dst`, or deletes `dst` when `z` is empty (a store command's result). Returns
/// the size and the keyspace event: `event` for a store, `del` when an existing `dst` went.
fn store_locked<'v>(
    l: &mut Locked<'_>,
    db: usize,
    dst: &Hashed<'_>,
    z: ZSet,
    now: u64,
    event: &'v str,
) -> (usize, Option<(u32, &'v str)>) {
    let n = z.len();
    if n == 0 {
        (0, l.delete(db, dst, now).then_some((notify::GENERIC, "del")))
    } else {
        l.set(db, dst, Value::ZSet(Box::new(z)), None, 0, false, now);
        (n, Some((notify::ZSET, event)))
    }
}

/// Writes `n` members with or without scores: RESP3 pairs are `[member, double]` arrays, RESP2
/// flattens them with the scores as bulk strings.
fn reply_members<'z>(ctx: &mut Ctx<'_>, n: usize, withscores: bool, items: impl Iterator<Item = (&'z [u8], f64)>) {
    let resp3 = ctx.session.version == Version::Resp3;
    ctx.out.array(if withscores && !resp3 { n * 2 } else { n });
    for (m, s) in items.take(n) {
        if withscores && resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        if withscores {
            ctx.out.double(s);
        }
    }
}

// ---- ZADD ZINCRBY -----------------------------------------------------------------------------

/// ZADD's options (ZINCRBY is ZADD with INCR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one `score member` pair did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    /// A new member.
    New,
    /// An existing member got another score.
    Updated,
    /// An existing member kept its score (same score, or GT/LT said no).
    Kept,
    /// Nothing (NX on an existing member, XX on a new one, GT/LT refused).
    Nop,
}

/// The outcome of adding `score` for `member` under `f` (redis-server's `zsetAdd`), without
/// changing anything: (what happens, the resulting score). Err only for a NaN sum.
fn plan_add(z: Option<&ZSet>, member: &[u8], score: f64, f: AddFlags) -> Result<(Added, f64), CmdError> {
    match z.and_then(|z| z.score(member)) {
        Some(_) if f.nx => Ok((Added::Nop, score)),
        Some(cur) => {
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(CmdError::err(NAN_ERR));
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                Ok((Added::Nop, new))
            } else if new != cur {
                Ok((Added::Updated, new))
            } else {
                Ok((Added::Kept, new))
            }
        }
        None if f.xx => Ok((Added::Nop, score)),
        None => Ok((Added::New, score)),
    }
}

fn zadd(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < argv.len() {
        let o = argv.get(i);
        if is(o, "NX") {
            f.nx = true;
        } else if is(o, "XX") {
            f.xx = true;
        } else if is(o, "CH") {
            f.ch = true;
        } else if is(o, "INCR") {
            f.incr = true;
        } else if is(o, "GT") {
            f.gt = true;
        } else if is(o, "LT") {
            f.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    zadd_generic(ctx, argv, f, i)
}

fn zincrby(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zadd_generic(ctx, argv, AddFlags { incr: true, ..AddFlags::default() }, 2)
}

/// ZADD and ZINCRBY from the first score (`first`) on; see the module documentation for the
/// order of checks. The whole command is validated before anything is stored, so it applies
/// fully or not at all.
fn zadd_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, f: AddFlags, first: usize) -> Result<(), CmdError> {
    let elements = argv.len() - first;
    if elements % 2 == 1 || elements == 0 {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err("ERR XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && elements > 2 {
        return Err(CmdError::err("ERR INCR option supports a single increment-element pair"));
    }
    let pairs = (first..argv.len())
        .step_by(2)
        .map(|j| parse_score(argv.get(j)).map(|s| (s, argv.get(j + 1))).ok_or(CmdError::NotFloat))
        .collect::<Result<Vec<_>, _>>()?;

    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let (mut added, mut updated, mut last) = (0, 0, None);
    let existing = match l.peek(db, &k, now) {
        Some(e) => Some(zset_of(&e.value)?),
        None => None,
    };
    if existing.is_none() && !f.xx {
        // The only way to fail after validation is a NaN sum, which needs an existing member.
        let mut z = ZSet::new();
        for &(score, member) in &pairs {
            let (what, new) = plan_add(Some(&z), member, score, f)?;
            if matches!(what, Added::New | Added::Updated) {
                z.insert(member, new);
            }
            count(what, &mut added, &mut updated);
            last = (what != Added::Nop).then_some(new);
        }
        l.set(db, &k, Value::ZSet(Box::new(z)), None, 0, false, now);
    } else if existing.is_some() {
        if f.incr {
            plan_add(existing, pairs[0].1, pairs[0].0, f)?;
        }
        let Some(e) = l.peek(db, &k, now) else { return Err(CmdError::WrongType) };
        let z = zset_mut(&mut e.value)?;
        for &(score, member) in &pairs {
            let (what, new) = plan_add(Some(z), member, score, f)?;
            if matches!(what, Added::New | Added::Updated) {
                z.insert(member, new);
            }
            count(what, &mut added, &mut updated);
            last = (what != Added::Nop).then_some(new);
        }
        if added + updated > 0 {
            // Renews the CAS unique and counts the change, now that there was one.
            l.write(db, &k, now);
        }
    }
    drop(l);
    if added + updated > 0 {
        ctx.notify_after(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, k.key);
    }
    if f.incr {
        match last {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int(if f.ch { added + updated } else { added });
    }
    Ok(())
}

fn count(what: Added, added: &mut i64, updated: &mut i64) {
    match what {
        Added::New => *added += 1,
        Added::Updated => *updated += 1,
        Added::Kept | Added::Nop => {}
    }
}

/// Announces the removal of `n` members of `key` by `event` (nothing when none went), and the
/// key's deletion when it emptied.
/// Pops announce after their reply (`after`), removals before it, as redis-server does.
fn notify_removed(ctx: &mut Ctx<'_>, event: &str, key: &[u8], n: usize, emptied: bool, after: bool) {
    if n == 0 {
        return;
    }
    if after {
        ctx.notify_after(notify::ZSET, event, key);
        if emptied {
            ctx.notify_after(notify::GENERIC, "del", key);
        }
    } else {
        ctx.notify(notify::ZSET, event, key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
}

// ---- ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT -------------------------------

/// ZREM key member [member ...]: how many were removed; an emptied set is deleted.
fn zrem(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let mut emptied = false;
    let removed = match l.peek(db, &k, now) {
        None => 0,
        Some(e) => {
            let z = zset_mut(&mut e.value)?;
            let n = argv.rest(2).filter(|m| z.remove(m).is_some()).count();
            let empty = z.is_empty();
            if empty {
                l.delete(db, &k, now);
            } else if n > 0 {
                l.write(db, &k, now);
            }
            emptied = empty;
            n
        }
    };
    drop(l);
    notify_removed(ctx, "zrem", k.key, removed, emptied, false);
    ctx.out.int(removed as i64);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    read_zset(ctx, argv.get(1), |ctx, z| ctx.out.int(z.map_or(0, ZSet::len) as i64))
}

fn zscore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    read_zset(ctx, argv.get(1), |ctx, z| match z.and_then(|z| z.score(argv.get(2))) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    })
}

fn zmscore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    read_zset(ctx, argv.get(1), |ctx, z| {
        ctx.out.array(argv.len() - 2);
        for m in argv.rest(2) {
            match z.and_then(|z| z.score(m)) {
                Some(s) => ctx.out.double(s),
                None => ctx.out.null(),
            }
        }
    })
}

fn zrank(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    rank_generic(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    rank_generic(ctx, argv, true)
}

fn rank_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, rev: bool) -> Result<(), CmdError> {
    read_zset(ctx, argv.get(1), |ctx, z| {
        match z.and_then(|z| z.rank(argv.get(2)).map(|r| if rev { z.len() - 1 - r } else { r })) {
            Some(r) => ctx.out.int(r as i64),
            None => ctx.out.null(),
        }
    })
}

fn zcount(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let r = parse_score_range(argv.get(2), argv.get(3))?;
    read_zset(ctx, argv.get(1), |ctx, z| {
        let (a, b) = z.map_or((0, 0), |z| z.score_span(&r));
        ctx.out.int((b - a) as i64)
    })
}

fn zlexcount(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let r = parse_lex_range(argv.get(2), argv.get(3))?;
    read_zset(ctx, argv.get(1), |ctx, z| {
        let (a, b) = z.map_or((0, 0), |z| z.lex_span(&r));
        ctx.out.int((b - a) as i64)
    })
}

// ---- the range commands -----------------------------------------------------------------------

/// How a range is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    /// Not fixed by the command: BYSCORE/BYLEX may choose, else by rank (ZRANGE, ZRANGESTORE).
    Auto,
    Rank,
    Score,
    Lex,
}

/// What distinguishes the eight range commands (redis-server's `zrangeGenericCommand` args).
#[derive(Debug, Clone, Copy)]
struct RangeCmd {
    kind: RangeKind,
    /// Some(rev) when the command fixes the direction; None when REV may be given.
    rev: Option<bool>,
    /// ZRANGESTORE: the destination is argument 1 and the source 2.
    store: bool,
}

fn zrange(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Auto, rev: None, store: false })
}
fn zrangestore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Auto, rev: None, store: true })
}
fn zrevrange(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Rank, rev: Some(true), store: false })
}
fn zrangebyscore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Score, rev: Some(false), store: false })
}
fn zrevrangebyscore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Score, rev: Some(true), store: false })
}
fn zrangebylex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Lex, rev: Some(false), store: false })
}
fn zrevrangebylex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zrange_generic(ctx, argv, RangeCmd { kind: RangeKind::Lex, rev: Some(true), store: false })
}

/// A parsed range.
enum Range<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// The members a range selects, as (first rank visited, how many, descending?).
fn select(z: &ZSet, range: &Range<'_>, rev: bool, offset: i64, limit: i64) -> (usize, usize, bool) {
    let len = z.len() as i64;
    let (a, b) = match range {
        Range::Rank(start, end) => {
            let start = if *start < 0 { (start + len).max(0) } else { *start };
            let end = if *end < 0 { end + len } else { (*end).min(len - 1) };
            if start > end || start >= len {
                return (0, 0, rev);
            }
            let n = (end - start + 1) as usize;
            return if rev { ((len - 1 - start) as usize, n, true) } else { (start as usize, n, false) };
        }
        Range::Score(r) => z.score_span(r),
        Range::Lex(r) => z.lex_span(r),
    };
    let span = (b - a) as i64;
    // A negative offset selects nothing and a negative limit means "all", as in redis-server.
    if offset < 0 || offset >= span {
        return (0, 0, rev);
    }
    let n = if limit < 0 { span - offset } else { limit.min(span - offset) } as usize;
    if rev {
        (b - 1 - offset as usize, n, true)
    } else {
        (a + offset as usize, n, false)
    }
}

/// The eight range commands; see [`RangeCmd`]. Checks in redis-server's order: options, their
/// conflicts, the range, then the key.
fn zrange_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, cmd: RangeCmd) -> Result<(), CmdError> {
    let base = if cmd.store { 2 } else { 1 };
    let (mut kind, mut rev, mut withscores) = (cmd.kind, cmd.rev, false);
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = base + 3;
    while j < argv.len() {
        let (o, left) = (argv.get(j), argv.len() - j - 1);
        if !cmd.store && is(o, "WITHSCORES") {
            withscores = true;
        } else if is(o, "LIMIT") && left >= 2 {
            offset = int_arg(argv.get(j + 1))?;
            limit = int_arg(argv.get(j + 2))?;
            j += 2;
        } else if rev.is_none() && is(o, "REV") {
            rev = Some(true);
        } else if kind == RangeKind::Auto && is(o, "BYLEX") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(o, "BYSCORE") {
            kind = RangeKind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit != -1 && kind == RangeKind::Rank {
        return Err(CmdError::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(CmdError::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut lo, mut hi) = (argv.get(base + 1), argv.get(base + 2));
    if rev && kind != RangeKind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match kind {
        RangeKind::Score => Range::Score(parse_score_range(lo, hi)?),
        RangeKind::Lex => Range::Lex(parse_lex_range(lo, hi)?),
        _ => Range::Rank(int_arg(lo)?, int_arg(hi)?),
    };

    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let src = engine.hashed(argv.get(base));
    if cmd.store {
        let dst = engine.hashed(argv.get(1));
        let mut l = engine.lock(&[dst, src]);
        let result = match l.read(db, &src, now) {
            None => ZSet::new(),
            Some(e) => {
                let z = zset_of(&e.value)?;
                let mut out = ZSet::new();
                let (at, n, desc) = select(z, &range, rev, offset, limit);
                let items: Box<dyn Iterator<Item = (&[u8], f64)>> =
                    if desc { Box::new(z.iter_rev_from(at)) } else { Box::new(z.iter_from(at)) };
                for (m, s) in items.take(n) {
                    out.insert(m, s);
                }
                out
            }
        };
        let (n, event) = store_locked(&mut l, db, &dst, result, now, "zrangestore");
        drop(l);
        if let Some((class, event)) = event {
            ctx.notify_after(class, event, dst.key);
        }
        ctx.out.int(n as i64);
        return Ok(());
    }
    read_zset(ctx, argv.get(base), |ctx, z| {
        let Some(z) = z else {
            ctx.out.array(0);
            return;
        };
        let (at, n, desc) = select(z, &range, rev, offset, limit);
        if desc {
            reply_members(ctx, n, withscores, z.iter_rev_from(at));
        } else {
            reply_members(ctx, n, withscores, z.iter_from(at));
        }
    })
}

// ---- ZREMRANGEBY* -------------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let range = Range::Rank(int_arg(argv.get(2))?, int_arg(argv.get(3))?);
    zremrange_generic(ctx, argv, range)
}
fn zremrangebyscore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let range = Range::Score(parse_score_range(argv.get(2), argv.get(3))?);
    zremrange_generic(ctx, argv, range)
}
fn zremrangebylex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let range = Range::Lex(parse_lex_range(argv.get(2), argv.get(3))?);
    zremrange_generic(ctx, argv, range)
}

/// Removes the members `range` selects; an emptied set is deleted.
fn zremrange_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, range: Range<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let mut emptied = false;
    let removed = match l.peek(db, &k, now) {
        None => 0,
        Some(e) => {
            let z = zset_mut(&mut e.value)?;
            let (at, n, _) = select(z, &range, false, 0, -1);
            let n = z.drain_ranks(at, at + n).len();
            emptied = z.is_empty();
            if emptied {
                l.delete(db, &k, now);
            } else if n > 0 {
                l.write(db, &k, now);
            }
            n
        }
    };
    drop(l);
    let event = match range {
        Range::Rank(..) => "zremrangebyrank",
        Range::Score(_) => "zremrangebyscore",
        Range::Lex(_) => "zremrangebylex",
    };
    notify_removed(ctx, event, k.key, removed, emptied, false);
    ctx.out.int(removed as i64);
    Ok(())
}

// ---- ZPOPMIN ZPOPMAX ZMPOP ----------------------------------------------------------------------

/// Members popped from one key, ascending for MIN and descending for MAX.
pub type Popped = Vec<(Box<[u8]>, f64)>;

/// Pops up to `count` members from the first of `keys` that holds a sorted set (`min`: the
/// lowest scores), deleting it if emptied; the caller holds the shards of every key. Returns the
/// index of that key and what was popped (nothing for `count` 0), None when no key exists, or
/// WRONGTYPE for the first existing key of another type (redis-server's `genericZpopCommand`;
/// BZPOPMIN/BZPOPMAX/BZMPOP call it once a key becomes ready).
pub fn pop_locked(
    l: &mut Locked<'_>,
    db: usize,
    keys: &[Hashed<'_>],
    min: bool,
    count: usize,
    now: u64,
) -> Result<Option<(usize, Popped)>, CmdError> {
    for (i, k) in keys.iter().enumerate() {
        let Some(e) = l.peek(db, k, now) else { continue };
        let z = zset_mut(&mut e.value)?;
        let n = count.min(z.len());
        let popped = if min {
            z.drain_ranks(0, n)
        } else {
            let mut v = z.drain_ranks(z.len() - n, z.len());
            v.reverse();
            v
        };
        if z.is_empty() {
            l.delete(db, k, now);
        } else if n > 0 {
            l.write(db, k, now);
        }
        return Ok(Some((i, popped)));
    }
    Ok(None)
}

/// Announces a pop from `key` (`zpopmin`/`zpopmax`, and `del` when it emptied). Called by
/// every pop command after [`pop_locked`], with the lock still held to see whether the key went.
fn notify_pop(ctx: &mut Ctx<'_>, l: &mut Locked<'_>, k: &Hashed<'_>, min: bool, n: usize) {
    if n == 0 || !ctx.notifies(notify::ZSET | notify::GENERIC) {
        return;
    }
    let (db, now) = (ctx.session.db, ctx.now);
    let gone = l.peek(db, k, now).is_none();
    notify_removed(ctx, if min { "zpopmin" } else { "zpopmax" }, k.key, n, gone, true);
}

/// The reply shapes of the pop commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopShape {
    /// ZPOPMIN/ZPOPMAX: a flat `[member, score, …]`, except RESP3 with a count: `[[m, s], …]`.
    Flat {
        /// The COUNT argument was given.
        counted: bool,
    },
    /// BZPOPMIN/BZPOPMAX: `[key, member, score]`.
    KeyFlat,
    /// ZMPOP/BZMPOP: `[key, [[member, score], …]]`.
    KeyNested,
}

/// Writes popped members in `shape`.
pub fn reply_pop(ctx: &mut Ctx<'_>, key: &[u8], popped: &Popped, shape: PopShape) {
    let resp3 = ctx.session.version == Version::Resp3;
    let nested = match shape {
        PopShape::Flat { counted } => {
            let nested = counted && resp3;
            ctx.out.array(if nested { popped.len() } else { popped.len() * 2 });
            nested
        }
        PopShape::KeyFlat => {
            ctx.out.array(popped.len() * 2 + 1);
            ctx.out.bulk(key);
            false
        }
        PopShape::KeyNested => {
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.array(popped.len());
            true
        }
    };
    for (m, s) in popped {
        if nested {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
}

fn zpopmin(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zpop_generic(ctx, argv, true)
}
fn zpopmax(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zpop_generic(ctx, argv, false)
}

/// ZPOPMIN/ZPOPMAX key [count].
fn zpop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, min: bool) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.len() {
        3 => Some(positive_arg(argv.get(2), "ERR value is out of range, must be positive")?),
        _ => None,
    };
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = [engine.hashed(argv.get(1))];
    let mut l = engine.lock_one(&k[0]);
    let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let popped = pop_locked(&mut l, db, &k, min, n, now)?;
    if let Some((_, p)) = &popped {
        notify_pop(ctx, &mut l, &k[0], min, p.len());
    }
    drop(l);
    match popped {
        Some((_, p)) => reply_pop(ctx, argv.get(1), &p, PopShape::Flat { counted: count.is_some() }),
        None => ctx.out.array(0),
    }
    Ok(())
}

/// The arguments of ZMPOP (and BZMPOP from `first`, its numkeys): the keys, MIN/MAX and count.
pub struct MpopArgs<'a> {
    /// The keys, in order.
    pub keys: Vec<&'a [u8]>,
    /// MIN (true) or MAX.
    pub min: bool,
    /// COUNT, 1 by default.
    pub count: usize,
}

impl<'a> MpopArgs<'a> {
    /// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at `first`.
    pub fn parse(argv: &Argv<'a>, first: usize) -> Result<MpopArgs<'a>, CmdError> {
        let numkeys = int_arg(argv.get(first))
            .ok()
            .filter(|&n| n > 0)
            .ok_or(CmdError::err("ERR numkeys should be greater than 0"))?;
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        if numkeys >= argv.len() - first - 1 {
            return Err(CmdError::Syntax);
        }
        let keys: Vec<&[u8]> = (first + 1..first + 1 + numkeys).map(|i| argv.get(i)).collect();
        let where_ = argv.get(first + 1 + numkeys);
        let min = if is(where_, "MIN") {
            true
        } else if is(where_, "MAX") {
            false
        } else {
            return Err(CmdError::Syntax);
        };
        let mut count = None;
        let mut j = first + 2 + numkeys;
        while j < argv.len() {
            if count.is_none() && is(argv.get(j), "COUNT") && j + 1 < argv.len() {
                let c = int_arg(argv.get(j + 1))
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(CmdError::err("ERR count should be greater than 0"))?;
                count = Some(usize::try_from(c).unwrap_or(usize::MAX));
                j += 2;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(MpopArgs { keys, min, count: count.unwrap_or(1) })
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: a null array when no key holds a set.
fn zmpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zmpop_generic(ctx, argv, false)
}

// ---- BZPOPMIN BZPOPMAX BZMPOP -------------------------------------------------------------------

/// Logs a pop from `key` as ZPOPMIN/ZPOPMAX (with `count` when the command had one).
fn log_zpop(key: &[u8], min: bool, count: Option<usize>) {
    let cmd: &[u8] = if min { b"ZPOPMIN" } else { b"ZPOPMAX" };
    match count {
        Some(n) => crate::engine::effects::rewrite(&[cmd, key, n.to_string().as_bytes()]),
        None => crate::engine::effects::rewrite(&[cmd, key]),
    }
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout: the timeout is checked first, then the first
/// non-empty sorted set gives one member, replied as [key, member, score]; none: block.
fn bzpop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, min: bool) -> Result<(), CmdError> {
    let deadline = parse_timeout(argv.get(argv.len() - 1), ctx.now)?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let keys: Vec<Hashed<'_>> = (1..argv.len() - 1).map(|i| engine.hashed(argv.get(i))).collect();
    let mut l = engine.lock(&keys);
    let popped = pop_locked(&mut l, db, &keys, min, 1, now)?;
    if let Some((i, p)) = &popped {
        // Served now or later (re-run by the blocking registry): the non-blocking pop.
        log_zpop(keys[*i].key, min, None);
        notify_pop(ctx, &mut l, &keys[*i], min, p.len());
    }
    drop(l);
    match popped {
        Some((i, p)) => reply_pop(ctx, keys[i].key, &p, PopShape::KeyFlat),
        None => block_on(ctx, &keys, deadline),
    }
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bzpop_generic(ctx, argv, true)
}

fn bzpopmax(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bzpop_generic(ctx, argv, false)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
fn bzmpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    zmpop_generic(ctx, argv, true)
}

/// ZMPOP and BZMPOP: the same pop; with nothing to pop, ZMPOP answers a null array and BZMPOP
/// blocks (its timeout, the first argument, is checked before anything else).
fn zmpop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, blocking: bool) -> Result<(), CmdError> {
    let deadline = if blocking { parse_timeout(argv.get(1), ctx.now)? } else { None };
    let a = MpopArgs::parse(argv, if blocking { 2 } else { 1 })?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let keys: Vec<Hashed<'_>> = a.keys.iter().map(|k| engine.hashed(k)).collect();
    let mut l = engine.lock(&keys);
    let popped = pop_locked(&mut l, db, &keys, a.min, a.count, now)?;
    if let Some((i, p)) = &popped {
        log_zpop(keys[*i].key, a.min, Some(p.len()));
        notify_pop(ctx, &mut l, &keys[*i], a.min, p.len());
    }
    drop(l);
    match popped {
        Some((i, p)) => reply_pop(ctx, a.keys[i], &p, PopShape::KeyNested),
        None if blocking => block_on(ctx, &keys, deadline),
        None => ctx.out.null_array(),
    }
    Ok(())
}

// ---- ZRANDMEMBER ZSCAN ---------------------------------------------------------------------------

/// ZRANDMEMBER key [count [WITHSCORES]].
fn zrandmember(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() == 2 {
        return read_zset(ctx, argv.get(1), |ctx, z| match z.and_then(|z| z.get(Rng::new().below(z.len()))) {
            Some((m, _)) => ctx.out.bulk(m),
            None => ctx.out.null(),
        });
    }
    let l = int_arg(argv.get(2))?;
    if l == i64::MIN {
        return Err(CmdError::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withscores = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "WITHSCORES") => true,
        _ => return Err(CmdError::Syntax),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::err("ERR value is out of range"));
    }
    let (count, unique) = (l.unsigned_abs() as usize, l >= 0);
    read_zset(ctx, argv.get(1), |ctx, z| {
        let Some(z) = z else {
            ctx.out.array(0);
            return;
        };
        let size = z.len();
        let mut rng = Rng::new();
        if count == 0 {
            ctx.out.array(0);
        } else if !unique {
            let picks = (0..count).map(|_| rng.below(size)).filter_map(|r| z.get(r));
            reply_members(ctx, count, withscores, picks);
        } else if count >= size {
            // The whole set, highest first (the order redis-server 7.0 answers in).
            reply_members(ctx, size, withscores, z.iter_rev_from(size - 1));
        } else {
            // A partial Fisher-Yates shuffle of the ranks: O(size) memory for one command, which
            // is what redis-server's own copy-and-remove case costs too.
            let mut ranks: Vec<usize> = (0..size).collect();
            for i in 0..count {
                let j = i + rng.below(size - i);
                ranks.swap(i, j);
            }
            let picks = ranks[..count].iter().filter_map(|&r| z.get(r));
            reply_members(ctx, count, withscores, picks);
        }
    })
}

/// The order-preserving map from a score to an unsigned key (ZSCAN cursors).
fn score_key(s: f64) -> u64 {
    // -0 and 0 are one score: one key, or a page boundary between them would skip the zeros.
    let b = if s == 0.0 { 0u64 } else { s.to_bits() };
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count].
///
/// A small (listpack) set is answered whole with cursor 0, as redis-server does. A large one is
/// walked in score order; the cursor is the order-preserving key of the last score returned,
/// plus one, and each page ends only where the score changes. So a member present for the whole
/// scan with an unchanged score is returned at least once (SCAN's guarantee), members sharing
/// one score always come in the same page (COUNT is a hint, as in Redis), and the cursor stays
/// meaningful whatever is added or removed in between. A member whose score changes during the
/// scan may be missed or repeated.
fn zscan(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let cursor = cursor_arg(argv.get(2))?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.read(db, &k, now) else {
        drop(l);
        empty_scan_page(&mut ctx.out);
        return Ok(());
    };
    let z = zset_of(&e.value)?;
    let (pattern, count) = element_scan_options(argv)?;
    let mut page: Vec<(&[u8], f64)> = Vec::new();
    let mut next = 0u64;
    if z.encoding() == "listpack" {
        page.extend(z.iter());
    } else {
        let start = if cursor == 0 { 0 } else { lower_bound_key(z, cursor - 1) };
        let mut it = z.iter_from(start).peekable();
        while let Some((m, s)) = it.next() {
            page.push((m, s));
            if page.len() >= count {
                match it.peek() {
                    Some(&(_, ns)) if score_key(ns) != score_key(s) => {
                        next = score_key(s).wrapping_add(1);
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    let keep = |m: &[u8]| pattern.map_or(true, |p| glob_match(p, m, false));
    let n = page.iter().filter(|(m, _)| keep(m)).count();
    let cursor_text = next.to_string();
    ctx.out.array(2);
    ctx.out.bulk(cursor_text.as_bytes());
    ctx.out.array(n * 2);
    for (m, s) in page.into_iter().filter(|(m, _)| keep(m)) {
        ctx.out.bulk(m);
        let mut text = Vec::new();
        cachette_resp::format_double(s, &mut text);
        ctx.out.bulk(&text);
    }
    Ok(())
}

/// The rank of the first member whose score key exceeds `after`.
fn lower_bound_key(z: &ZSet, after: u64) -> usize {
    // Score keys are monotonic in the score, so the bound is a score bound: find the score whose
    // key is `after` (any u64 maps back to some f64 bit pattern) and start past it.
    let bits = if after >> 63 == 1 { after & !(1 << 63) } else { !after };
    let s = f64::from_bits(bits);
    if s.is_nan() {
        // Keys beyond +inf's (or below -inf's) are NaN patterns: past every score, or before all.
        return if after >> 63 == 1 { z.len() } else { 0 };
    }
    let (a, _) = z.score_span(&ScoreRange { min: s, max: f64::INFINITY, min_ex: true, max_ex: false });
    a
}

// ---- ZUNION ZINTER ZDIFF (+STORE) ZINTERCARD ----------------------------------------------------

/// Which set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// How scores of a member found in several inputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// redis-server's `zunionInterAggregate`: a NaN sum (inf + -inf) becomes 0.
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// What distinguishes the seven commands: the operation, where numkeys is, and the output.
#[derive(Debug, Clone, Copy)]
struct SetOpCmd {
    op: SetOp,
    /// Store into argument 1 (…STORE).
    store: bool,
    /// Reply with the result's size only (ZINTERCARD).
    card: bool,
    name: &'static str,
}

fn zunion(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Union, store: false, card: false, name: "zunion" })
}
fn zinter(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Inter, store: false, card: false, name: "zinter" })
}
fn zdiff(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Diff, store: false, card: false, name: "zdiff" })
}
fn zunionstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Union, store: true, card: false, name: "zunionstore" })
}
fn zinterstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Inter, store: true, card: false, name: "zinterstore" })
}
fn zdiffstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Diff, store: true, card: false, name: "zdiffstore" })
}
fn zintercard(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    setop_generic(ctx, argv, SetOpCmd { op: SetOp::Inter, store: false, card: true, name: "zintercard" })
}

/// One input of a set operation: its members with scores (a set's are all 1), as a lookup table.
struct Source<'a> {
    items: Items<'a>,
    weight: f64,
}

/// Members and scores of one input.
type Items<'a> = Vec<(Cow<'a, [u8]>, f64)>;

fn source_of(v: &Value) -> Result<Items<'_>, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z.iter().map(|(m, s)| (Cow::Borrowed(m), s)).collect()),
        Value::Set(s) => Ok(s.iter().map(|m| (Cow::Owned(m.with_bytes(<[u8]>::to_vec)), 1.0)).collect()),
        _ => Err(CmdError::WrongType),
    }
}

/// The seven set-operation commands (redis-server's `zunionInterDiffGenericCommand`): numkeys,
/// then the keys' types, then WEIGHTS / AGGREGATE / WITHSCORES / LIMIT as the command allows.
fn setop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, cmd: SetOpCmd) -> Result<(), CmdError> {
    let nk = if cmd.store { 2 } else { 1 };
    let setnum = int_arg(argv.get(nk))?;
    if setnum < 1 {
        return Err(CmdError::err(format!("ERR at least 1 input key is needed for '{}' command", cmd.name)));
    }
    if setnum > (argv.len() - nk - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let mut hashed: Vec<Hashed<'_>> = (nk + 1..nk + 1 + setnum).map(|i| engine.hashed(argv.get(i))).collect();
    if cmd.store {
        hashed.push(engine.hashed(argv.get(1)));
    }
    let mut l = engine.lock(&hashed);

    // Snapshot the inputs' contents (owned), so the destination can be written afterwards under
    // the same guard. Missing keys are empty inputs.
    let mut sources: Vec<Source<'static>> = Vec::with_capacity(setnum);
    for k in &hashed[..setnum] {
        let items = match l.read(db, k, now) {
            Some(e) => source_of(&e.value)?.into_iter().map(|(m, s)| (Cow::Owned(m.into_owned()), s)).collect(),
            None => Vec::new(),
        };
        sources.push(Source { items, weight: 1.0 });
    }

    let (mut aggregate, mut withscores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = nk + 1 + setnum;
    while j < argv.len() {
        let (o, remaining) = (argv.get(j), argv.len() - j);
        if cmd.op != SetOp::Diff && !cmd.card && remaining > setnum && is(o, "WEIGHTS") {
            for (i, src) in sources.iter_mut().enumerate() {
                src.weight =
                    parse_score(argv.get(j + 1 + i)).ok_or(CmdError::err("ERR weight value is not a float"))?;
            }
            j += 1 + setnum;
        } else if cmd.op != SetOp::Diff && !cmd.card && remaining >= 2 && is(o, "AGGREGATE") {
            let a = argv.get(j + 1);
            aggregate = if is(a, "SUM") {
                Aggregate::Sum
            } else if is(a, "MIN") {
                Aggregate::Min
            } else if is(a, "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !cmd.store && !cmd.card && is(o, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else if cmd.card && remaining >= 2 && is(o, "LIMIT") {
            let n = positive_arg(argv.get(j + 1), "ERR LIMIT can't be negative")?;
            limit = usize::try_from(n).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }

    let result = compute(&mut sources, cmd.op, aggregate);
    if cmd.card {
        drop(l);
        let n = if limit > 0 { result.len().min(limit) } else { result.len() };
        ctx.out.int(n as i64);
        return Ok(());
    }
    let mut z = ZSet::new_large();
    for (m, s) in &result {
        z.insert(m, *s);
    }
    if cmd.store {
        z.compact_if_small();
        let name = match cmd.op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let (n, event) = store_locked(&mut l, db, &hashed[setnum], z, now, name);
        drop(l);
        if let Some((class, event)) = event {
            ctx.notify_after(class, event, hashed[setnum].key);
        }
        ctx.out.int(n as i64);
        return Ok(());
    }
    drop(l);
    reply_members(ctx, z.len(), withscores, z.iter());
    Ok(())
}

/// The members of the result with their scores (unordered; the caller sorts by building a set).
fn compute(sources: &mut [Source<'_>], op: SetOp, aggregate: Aggregate) -> Vec<(Vec<u8>, f64)> {
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    match op {
        SetOp::Diff => {
            let (first, rest) = sources.split_first().expect("numkeys >= 1");
            let others: Vec<HashMap<&[u8], f64>> =
                rest.iter().map(|s| s.items.iter().map(|(m, v)| (&**m, *v)).collect()).collect();
            first
                .items
                .iter()
                .filter(|(m, _)| !others.iter().any(|o| o.contains_key(&**m)))
                .map(|(m, s)| (m.to_vec(), *s))
                .collect()
        }
        SetOp::Inter => {
            // Smallest input first, as redis-server orders them (stable for equal sizes): the
            // scores are aggregated in that order.
            sources.sort_by_key(|s| s.items.len());
            let (first, rest) = sources.split_first().expect("numkeys >= 1");
            let others: Vec<(HashMap<&[u8], f64>, f64)> =
                rest.iter().map(|s| (s.items.iter().map(|(m, v)| (&**m, *v)).collect(), s.weight)).collect();
            let mut out = Vec::new();
            'member: for (m, s) in &first.items {
                let mut acc = weighted(*s, first.weight);
                for (o, w) in &others {
                    match o.get(&**m) {
                        Some(v) => acc = aggregate.apply(acc, weighted(*v, *w)),
                        None => continue 'member,
                    }
                }
                out.push((m.to_vec(), acc));
            }
            out
        }
        SetOp::Union => {
            sources.sort_by_key(|s| s.items.len());
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for src in sources.iter() {
                for (m, s) in &src.items {
                    let v = weighted(*s, src.weight);
                    match acc.get_mut(&**m) {
                        Some(a) => *a = aggregate.apply(*a, v),
                        None => {
                            acc.insert(m.to_vec(), v);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_as_redis_server_reads_them() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"0e5"), Some(0.0));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_bound(b"(2"), Some((2.0, true)));
        assert_eq!(parse_bound(b""), Some((0.0, false)));
        assert_eq!(parse_bound(b"1 "), None);
        assert_eq!(parse_bound(b"  "), None);
        assert!(parse_lex_range(b"-", b"+").is_ok());
        assert!(parse_lex_range(b"a", b"+").is_err());
        assert!(parse_lex_range(b"[a", b"++").is_err());
    }

    #[test]
    fn score_keys_preserve_order() {
        let v = [f64::NEG_INFINITY, -1e300, -1.0, -0.0, 0.0, 1e-300, 1.0, f64::INFINITY];
        for w in v.windows(2) {
            assert!(score_key(w[0]) <= score_key(w[1]), "{} {}", w[0], w[1]);
        }
    }
}
