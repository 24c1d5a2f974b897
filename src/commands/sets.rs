//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER
//! SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.
//!
//! The algebra has two generic bodies, as redis-server's `t_set.c` has: [`inter_generic`] serves
//! SMEMBERS, SINTER, SINTERCARD and SINTERSTORE, [`union_diff_generic`] serves SUNION, SDIFF and
//! their STORE variants. Both lock every key at once (destination included), check every key's
//! type before answering (a WRONGTYPE anywhere wins over a missing key elsewhere, as in Redis),
//! and build a stored result as a fresh set member by member, so its encoding is the one Redis
//! would give it (see `crate::types::set`). A store overwrites the destination whatever it held,
//! TTL included, and deletes it when the result is empty.
//!
//! The engine lends out one entry at a time, so an intersection copies the smallest set's
//! members once and filters that list through each other set in turn, rather than walking the
//! smallest set while holding all of them; the work is the same O(N·M).
//!
//! Reply shapes are redis-server 7.0.15's: SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a count
//! are RESP3 sets; SRANDMEMBER with a count and SMISMEMBER are arrays; SSCAN is
//! `[cursor, [members]]`. Semantics and error strings were checked side by side against it.

use super::arg::*;
use super::flags::*;
use super::keys::{cursor_arg, element_scan_options, empty_scan_page};
use super::{int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{Hashed, Locked};
use crate::glob::glob_match;
use crate::types::set::{Member, Rng, Set};
use crate::types::Value;

/// This family's table entries, one line per command (kept unwrapped so the table reads as one).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Add one or more members to a set", sadd).args(KEY_MEMBERS),
    spec("srem", -3, WRITE | FAST, (1, 1, 1), "set", "1.0.0", "O(N) where N is the number of members to be removed.", "Remove one or more members from a set", srem).args(KEY_MEMBERS),
    spec("smembers", 2, READONLY, (1, 1, 1), "set", "1.0.0", "O(N) where N is the set cardinality.", "Get all the members in a set", smembers).args(ONE_KEY),
    spec("sismember", 3, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "O(1)", "Determine if a given value is a member of a set", sismember).args(&[key("key"), string("member")]),
    spec("smismember", -3, READONLY | FAST, (1, 1, 1), "set", "6.2.0", "O(N) where N is the number of elements being checked for membership", "Returns the membership associated with the given elements for a set", smismember).args(KEY_MEMBERS),
    spec("scard", 2, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "O(1)", "Get the number of members in a set", scard).args(ONE_KEY),
    spec("spop", -2, WRITE | FAST, (1, 1, 1), "set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", "Remove and return one or multiple random members from a set", spop).args(&[key("key"), integer("count").since("3.2.0").optional()]),
    spec("srandmember", -2, READONLY, (1, 1, 1), "set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", "Get one or multiple random members from a set", srandmember).args(&[key("key"), integer("count").since("2.6.0").optional()]),
    spec("smove", 4, WRITE | FAST, (1, 2, 1), "set", "1.0.0", "O(1)", "Move a member from one set to another", smove).args(&[key("source"), key("destination").key_spec(1), string("member")]),
    spec("sinter", -2, READONLY, (1, -1, 1), "set", "1.0.0", INTER_COMPLEXITY, "Intersect multiple sets", sinter).args(KEYS),
    spec("sintercard", -3, READONLY, (0, 0, 0), "set", "7.0.0", INTER_COMPLEXITY, "Intersect multiple sets and return the cardinality of the result", sintercard).args(&[integer("numkeys"), key("key").multiple(), integer("limit").token("LIMIT").optional()]).numkeys(1),
    spec("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", INTER_COMPLEXITY, "Intersect multiple sets and store the resulting set in a key", sinterstore).args(STORE_ARGS),
    spec("sunion", -2, READONLY, (1, -1, 1), "set", "1.0.0", UNION_COMPLEXITY, "Add multiple sets", sunion).args(KEYS),
    spec("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", UNION_COMPLEXITY, "Add multiple sets and store the resulting set in a key", sunionstore).args(STORE_ARGS),
    spec("sdiff", -2, READONLY, (1, -1, 1), "set", "1.0.0", UNION_COMPLEXITY, "Subtract multiple sets", sdiff).args(KEYS),
    spec("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", UNION_COMPLEXITY, "Subtract multiple sets and store the resulting set in a key", sdiffstore).args(STORE_ARGS),
    spec("sscan", -3, READONLY, (1, 1, 1), "set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate Set elements", sscan).args(SSCAN_ARGS),
];

const INTER_COMPLEXITY: &str =
    "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.";
const UNION_COMPLEXITY: &str = "O(N) where N is the total number of elements in all given sets.";

/// `key member [member ...]`
const KEY_MEMBERS: &[Arg] = &[key("key"), string("member").multiple()];

/// `destination key [key ...]` of the STORE variants.
const STORE_ARGS: &[Arg] = &[key("destination"), key("key").key_spec(1).multiple()];

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
const SSCAN_ARGS: &[Arg] = &[
    key("key"),
    integer("cursor"),
    pattern("pattern").token("MATCH").optional(),
    integer("count").token("COUNT").optional(),
];

// ---- shared helpers ---------------------------------------------------------------------

/// The set a value holds, or WRONGTYPE.
fn set_of(v: &Value) -> Result<&Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// The set a value holds, for modifying it, or WRONGTYPE.
fn set_of_mut(v: &mut Value) -> Result<&mut Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Writes one member as a bulk string (an intset's integer without allocating its text).
fn reply_member(ctx: &mut Ctx<'_>, m: &Member<'_>) {
    match m {
        Member::Int(i) => ctx.out.bulk_int(*i),
        Member::Bytes(b) => ctx.out.bulk(b),
    }
}

/// Writes `members` as a RESP3 set (an array in RESP2).
fn reply_set<'m>(ctx: &mut Ctx<'_>, len: usize, members: impl Iterator<Item = Member<'m>>) {
    ctx.out.set(len);
    members.for_each(|m| reply_member(ctx, &m));
}

/// Records that the set under `k` changed in place (its members were modified through `peek`):
/// renews the CAS unique and counts the write, as `Locked::write` does. After the mutation, so
/// that a command that changes nothing (SADD of present members) counts nothing, as in Redis.
fn mark_written(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) {
    l.write(db, k, now);
}

/// Deletes the key when its set emptied, else records the in-place change; `changed` false
/// means nothing happened.
fn finish_write(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64, changed: bool, emptied: bool) {
    if emptied {
        l.delete(db, k, now);
    } else if changed {
        mark_written(l, db, k, now);
    }
}

/// Stores a computed set under `dst` (replacing whatever it held, TTL included), or deletes
/// `dst` when the set is empty; answers the cardinality.
/// `event` is the command's keyspace event (`sinterstore` …); an emptied `dst` announces `del`.
fn store_result(ctx: &mut Ctx<'_>, l: &mut Locked<'_>, dst: &Hashed<'_>, result: Set, event: &str) {
    let (db, now) = (ctx.session.db, ctx.now);
    let n = result.len();
    if n > 0 {
        l.set(db, dst, Value::Set(Box::new(result)), None, 0, false, now);
        ctx.notify_after(notify::SET, event, dst.key);
    } else if l.delete(db, dst, now) {
        ctx.notify_after(notify::GENERIC, "del", dst.key);
    }
    ctx.out.int(n as i64);
}

// ---- SADD SREM SISMEMBER SMISMEMBER SCARD SMEMBERS ---------------------------------------

/// SADD key member [member ...]: the number of members that were not there yet.
fn sadd(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let added = match l.peek(db, &k, now) {
        Some(e) => {
            let s = set_of_mut(&mut e.value)?;
            let added = argv.rest(2).filter(|m| s.insert(m)).count();
            finish_write(&mut l, db, &k, now, added > 0, false);
            added
        }
        None => {
            let mut s = Set::default();
            let added = argv.rest(2).filter(|m| s.insert(m)).count();
            l.set(db, &k, Value::Set(Box::new(s)), None, 0, false, now);
            added
        }
    };
    drop(l);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", k.key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

/// SREM key member [member ...]: the number of members removed; the key goes when it empties.
fn srem(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let mut removed = 0;
    let mut emptied = false;
    if let Some(e) = l.peek(db, &k, now) {
        let s = set_of_mut(&mut e.value)?;
        removed = argv.rest(2).filter(|m| s.remove(m)).count();
        emptied = s.is_empty();
        finish_write(&mut l, db, &k, now, removed > 0, emptied);
    }
    drop(l);
    if removed > 0 {
        ctx.notify(notify::SET, "srem", k.key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", k.key);
        }
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// SISMEMBER key member: 1 or 0 (0 for a missing key).
fn sismember(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let found = match l.read(db, &k, now) {
        Some(e) => set_of(&e.value)?.contains(argv.get(2)),
        None => false,
    };
    drop(l);
    ctx.out.int(i64::from(found));
    Ok(())
}

/// SMISMEMBER key member [member ...]: an array of 1/0, one per member asked.
fn smismember(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let found: Vec<bool> = match l.read(db, &k, now) {
        Some(e) => {
            let s = set_of(&e.value)?;
            argv.rest(2).map(|m| s.contains(m)).collect()
        }
        None => vec![false; argv.len() - 2],
    };
    drop(l);
    ctx.out.array(found.len());
    found.into_iter().for_each(|f| ctx.out.int(i64::from(f)));
    Ok(())
}

/// SCARD key: the cardinality (0 for a missing key).
fn scard(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let n = match engine.lock_one(&k).read(db, &k, now) {
        Some(e) => set_of(&e.value)?.len(),
        None => 0,
    };
    ctx.out.int(n as i64);
    Ok(())
}

/// SMEMBERS key: redis-server runs it as a one-key SINTER.
fn smembers(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(1).collect();
    inter_generic(ctx, &keys, None, None)
}

// ---- SPOP SRANDMEMBER ---------------------------------------------------------------------

/// SPOP key [count]. Without a count: one random member, or nil. With one: a set of up to
/// `count` members removed at random (all of them, in the order a fresh copy iterates, when the
/// count reaches the size); the key goes when it empties.
fn spop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let count = match argv.len() {
        2 => None,
        3 => {
            let n = int_arg(argv.get(2)).ok().and_then(|n| usize::try_from(n).ok());
            Some(n.ok_or_else(|| CmdError::err("ERR value is out of range, must be positive"))?)
        }
        _ => return Err(CmdError::Syntax),
    };
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.peek(db, &k, now) else {
        drop(l);
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.set(0),
        }
        return Ok(());
    };
    let s = set_of_mut(&mut e.value)?;
    let mut rng = Rng::new();
    match count {
        None => {
            let m = s.pop(&mut rng);
            // Random: logged as the SREM of what it popped.
            if let Some(m) = &m {
                m.with_bytes(|b| crate::engine::effects::rewrite(&[b"SREM", k.key, b]));
            }
            let emptied = s.is_empty();
            finish_write(&mut l, db, &k, now, true, emptied);
            drop(l);
            notify_spop(ctx, k.key, emptied);
            match m {
                Some(m) => reply_member(ctx, &m),
                None => ctx.out.null(),
            }
        }
        Some(0) => {
            drop(l);
            ctx.out.set(0);
        }
        Some(n) if n >= s.len() => {
            // Redis answers with a SUNION of the one set, so the order is a fresh copy's.
            let all: Set = s.iter().collect();
            crate::engine::effects::rewrite(&[b"DEL", k.key]);
            l.delete(db, &k, now);
            drop(l);
            notify_spop(ctx, k.key, true);
            reply_set(ctx, all.len(), all.iter());
        }
        Some(n) => {
            let popped = s.pop_many(n, &mut rng);
            let members: Vec<Vec<u8>> = popped.iter().map(|m| m.with_bytes(<[u8]>::to_vec)).collect();
            let mut line: Vec<&[u8]> = vec![b"SREM", k.key];
            line.extend(members.iter().map(Vec::as_slice));
            crate::engine::effects::rewrite(&line);
            finish_write(&mut l, db, &k, now, true, false);
            drop(l);
            notify_spop(ctx, k.key, false);
            reply_set(ctx, popped.len(), popped.into_iter());
        }
    }
    Ok(())
}

fn notify_spop(ctx: &mut Ctx<'_>, key: &[u8], emptied: bool) {
    // redis-server announces the pop before its reply and the deletion after it.
    ctx.notify(notify::SET, "spop", key);
    if emptied {
        ctx.notify_after(notify::GENERIC, "del", key);
    }
}

/// SRANDMEMBER key [count]. Without a count: one random member, or nil. With one: an array; a
/// positive count gives distinct members (at most the whole set), a negative one `|count|`
/// independent draws that may repeat.
fn srandmember(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let count = match argv.len() {
        2 => None,
        3 => {
            let n = int_arg(argv.get(2))?;
            if n == i64::MIN {
                return Err(CmdError::err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            Some(n)
        }
        _ => return Err(CmdError::Syntax),
    };
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.read(db, &k, now) else {
        drop(l);
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.array(0),
        }
        return Ok(());
    };
    let s = set_of(&e.value)?;
    let mut rng = Rng::new();
    match count {
        None => match s.random(&mut rng) {
            Some(m) => reply_member(ctx, &m),
            None => ctx.out.null(),
        },
        Some(n) => {
            let picked = if n < 0 {
                s.sample_with_repeats(n.unsigned_abs() as usize, &mut rng)
            } else {
                s.sample_distinct(n as usize, &mut rng)
            };
            ctx.out.array(picked.len());
            picked.iter().for_each(|m| reply_member(ctx, m));
        }
    }
    Ok(())
}

// ---- SMOVE --------------------------------------------------------------------------------

/// SMOVE source destination member: 1 if the member moved. A missing source answers 0 before
/// any type check; a source or destination of another type is WRONGTYPE; moving within one set
/// only reports membership.
fn smove(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let (src, dst, member) = (engine.hashed(argv.get(1)), engine.hashed(argv.get(2)), argv.get(3));
    let mut l = engine.lock(&[src, dst]);
    let Some(e) = l.peek(db, &src, now) else {
        drop(l);
        ctx.out.int(0);
        return Ok(());
    };
    let in_src = set_of(&e.value)?.contains(member);
    let dst_exists = match l.peek(db, &dst, now) {
        Some(e) => set_of(&e.value).map(|_| true)?,
        None => false,
    };
    if src.key == dst.key || !in_src {
        drop(l);
        ctx.out.int(i64::from(in_src));
        return Ok(());
    }
    let mut src_emptied = false;
    if let Some(e) = l.peek(db, &src, now) {
        let s = set_of_mut(&mut e.value)?;
        s.remove(member);
        src_emptied = s.is_empty();
        finish_write(&mut l, db, &src, now, true, src_emptied);
    }
    let mut added = true;
    if dst_exists {
        if let Some(e) = l.peek(db, &dst, now) {
            added = set_of_mut(&mut e.value)?.insert(member);
            finish_write(&mut l, db, &dst, now, added, false);
        }
    } else {
        let mut s = Set::default();
        s.insert(member);
        l.set(db, &dst, Value::Set(Box::new(s)), None, 0, false, now);
    }
    drop(l);
    ctx.notify(notify::SET, "srem", src.key);
    if src_emptied {
        ctx.notify(notify::GENERIC, "del", src.key);
    }
    if added {
        ctx.notify(notify::SET, "sadd", dst.key);
    }
    ctx.out.int(1);
    Ok(())
}

// ---- SINTER SINTERCARD SINTERSTORE SMEMBERS ----------------------------------------------

fn sinter(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(1).collect();
    inter_generic(ctx, &keys, None, None)
}

fn sinterstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(2).collect();
    inter_generic(ctx, &keys, Some(argv.get(1)), None)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: the cardinality of the intersection, capped
/// at `limit` when it is not 0. LIMIT may repeat (the last wins).
fn sintercard(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let numkeys = int_arg(argv.get(1))
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > argv.len() - 2 {
        return Err(CmdError::err("ERR Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < argv.len() {
        if is(argv.get(i), "LIMIT") && i + 1 < argv.len() {
            let n = int_arg(argv.get(i + 1)).ok().and_then(|n| usize::try_from(n).ok());
            limit = n.ok_or_else(|| CmdError::err("ERR LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys: Vec<&[u8]> = (2..2 + numkeys).map(|i| argv.get(i)).collect();
    inter_generic(ctx, &keys, None, Some(limit))
}

/// Locks `keys` and `dst` together and checks every key's type (reads count keyspace hits and
/// misses; the store variants look up for writing, which Redis does not count). Answers each
/// key's cardinality, None for a missing key.
fn sizes_of<'e>(
    ctx: &Ctx<'e>,
    keys: &[Hashed<'_>],
    dst: Option<&Hashed<'_>>,
) -> Result<(Locked<'e>, Vec<Option<usize>>), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let mut all = keys.to_vec();
    all.extend(dst.copied());
    let mut l = engine.lock(&all);
    let mut sizes = Vec::with_capacity(keys.len());
    for k in keys {
        let e = if dst.is_some() { l.peek(db, k, now) } else { l.read(db, k, now) };
        sizes.push(e.map(|e| set_of(&e.value).map(Set::len)).transpose()?);
    }
    Ok((l, sizes))
}

/// The set under `k`, which [`sizes_of`] found to exist and to be a set.
fn locked_set<'l>(l: &'l mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> Option<&'l Set> {
    match &l.peek(db, k, now)?.value {
        Value::Set(s) => Some(s),
        _ => None,
    }
}

/// One body for SMEMBERS, SINTER, SINTERCARD (`card` = Some(limit), 0 = none) and SINTERSTORE
/// (`dst`). As redis-server: any missing key makes the result empty; the smallest set is walked
/// (so the reply is in its order) and each member kept if every other set has it.
fn inter_generic(ctx: &mut Ctx<'_>, keys: &[&[u8]], dst: Option<&[u8]>, card: Option<usize>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let hashed: Vec<Hashed<'_>> = keys.iter().map(|k| engine.hashed(k)).collect();
    let dst = dst.map(|d| engine.hashed(d));
    let (mut l, sizes) = sizes_of(ctx, &hashed, dst.as_ref())?;
    let Some(sizes) = sizes.into_iter().collect::<Option<Vec<usize>>>() else {
        return match &dst {
            Some(d) => {
                store_result(ctx, &mut l, d, Set::default(), "sinterstore");
                Ok(())
            }
            None => {
                drop(l);
                match card {
                    Some(_) => ctx.out.int(0),
                    None => ctx.out.set(0),
                }
                Ok(())
            }
        };
    };
    // SMEMBERS and one-key SINTER: answer straight from the set, no copy.
    if let ([k], None, None) = (&hashed[..], &dst, card) {
        if let Some(s) = locked_set(&mut l, db, k, now) {
            reply_set(ctx, s.len(), s.iter());
        }
        return Ok(());
    }
    let mut order: Vec<usize> = (0..hashed.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut kept: Vec<Member<'static>> = match locked_set(&mut l, db, &hashed[order[0]], now) {
        Some(s) => s.iter().map(Member::into_owned).collect(),
        None => Vec::new(),
    };
    for &i in &order[1..] {
        if kept.is_empty() {
            break;
        }
        if let Some(s) = locked_set(&mut l, db, &hashed[i], now) {
            kept.retain(|m| s.contains_member(m));
        }
    }
    match (&dst, card) {
        (Some(d), _) => store_result(ctx, &mut l, d, kept.into_iter().collect(), "sinterstore"),
        (None, Some(limit)) => {
            drop(l);
            let n = if limit > 0 { kept.len().min(limit) } else { kept.len() };
            ctx.out.int(n as i64);
        }
        (None, None) => {
            drop(l);
            reply_set(ctx, kept.len(), kept.into_iter());
        }
    }
    Ok(())
}

// ---- SUNION SUNIONSTORE SDIFF SDIFFSTORE --------------------------------------------------

/// Which algebra [`union_diff_generic`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Diff,
}

fn sunion(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(1).collect();
    union_diff_generic(ctx, &keys, None, SetOp::Union)
}

fn sunionstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(2).collect();
    union_diff_generic(ctx, &keys, Some(argv.get(1)), SetOp::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(1).collect();
    union_diff_generic(ctx, &keys, None, SetOp::Diff)
}

fn sdiffstore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys: Vec<&[u8]> = argv.rest(2).collect();
    union_diff_generic(ctx, &keys, Some(argv.get(1)), SetOp::Diff)
}

/// One body for SUNION, SDIFF and their STORE variants (`dst`). The result is built as a fresh
/// set and answered in its iteration order, as redis-server's `sunionDiffGenericCommand` does
/// (so integer results come ascending). A difference picks redis-server's algorithm by the same
/// cost estimate, because the two can leave the result in different encodings: (1) keep each
/// member of the first set that no other set has, or (2) copy the first set and remove every
/// other set's members.
fn union_diff_generic(ctx: &mut Ctx<'_>, keys: &[&[u8]], dst: Option<&[u8]>, op: SetOp) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let hashed: Vec<Hashed<'_>> = keys.iter().map(|k| engine.hashed(k)).collect();
    let dst = dst.map(|d| engine.hashed(d));
    let (mut l, sizes) = sizes_of(ctx, &hashed, dst.as_ref())?;
    let mut result = Set::default();
    match op {
        SetOp::Union => {
            for k in &hashed {
                if let Some(s) = locked_set(&mut l, db, k, now) {
                    s.iter().for_each(|m| {
                        result.insert_member(&m);
                    });
                }
            }
        }
        SetOp::Diff => {
            let first = sizes[0].unwrap_or(0);
            if first > 0 {
                let present = sizes.iter().flatten();
                let algo_one = present.clone().count() * first / 2;
                let algo_two: usize = present.sum();
                result = if algo_one <= algo_two {
                    diff_by_filter(&mut l, db, now, &hashed, &sizes)
                } else {
                    diff_by_removal(&mut l, db, now, &hashed)
                };
            }
        }
    }
    match &dst {
        Some(d) => {
            let event = if matches!(op, SetOp::Union) { "sunionstore" } else { "sdiffstore" };
            store_result(ctx, &mut l, d, result, event)
        }
        None => {
            drop(l);
            reply_set(ctx, result.len(), result.iter());
        }
    }
    Ok(())
}

/// SDIFF algorithm 1: the first set's members that no other set holds (the first key named
/// again removes everything, being the same set).
fn diff_by_filter(l: &mut Locked<'_>, db: usize, now: u64, keys: &[Hashed<'_>], sizes: &[Option<usize>]) -> Set {
    let mut kept: Vec<Member<'static>> = match locked_set(l, db, &keys[0], now) {
        Some(s) => s.iter().map(Member::into_owned).collect(),
        None => return Set::default(),
    };
    // Larger sets first: they are likelier to remove members early.
    let mut others: Vec<usize> = (1..keys.len()).filter(|&i| sizes[i].is_some()).collect();
    others.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    for i in others {
        if kept.is_empty() {
            break;
        }
        if keys[i].key == keys[0].key {
            kept.clear();
        } else if let Some(s) = locked_set(l, db, &keys[i], now) {
            kept.retain(|m| !s.contains_member(m));
        }
    }
    kept.into_iter().collect()
}

/// SDIFF algorithm 2: a copy of the first set, minus every other set's members.
fn diff_by_removal(l: &mut Locked<'_>, db: usize, now: u64, keys: &[Hashed<'_>]) -> Set {
    let mut result: Set = match locked_set(l, db, &keys[0], now) {
        Some(s) => s.iter().collect(),
        None => return Set::default(),
    };
    for k in &keys[1..] {
        if result.is_empty() {
            break;
        }
        if let Some(s) = locked_set(l, db, k, now) {
            s.iter().for_each(|m| {
                result.remove_member(&m);
            });
        }
    }
    result
}

// ---- SSCAN --------------------------------------------------------------------------------

/// SSCAN key cursor [MATCH pattern] [COUNT count]. Checks in redis-server's order: the cursor,
/// then the key (a missing key answers an empty page even with bad options), its type, and only
/// then the options (TYPE is not one of SSCAN's). See `Set::scan` for the cursor.
fn sscan(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let cursor = cursor_arg(argv.get(2))?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.read(db, &k, now) else {
        drop(l);
        empty_scan_page(&mut ctx.out);
        return Ok(());
    };
    let s = set_of(&e.value)?;
    let (pattern, count) = element_scan_options(argv)?;
    let mut page: Vec<Member<'_>> = Vec::new();
    let next = s.scan(cursor, count, |m| {
        if pattern.map_or(true, |p| m.with_bytes(|b| glob_match(p, b, false))) {
            page.push(m);
        }
    });
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(page.len());
    page.iter().for_each(|m| reply_member(ctx, m));
    Ok(())
}
