//! The list command family (non-blocking): LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE
//! LINDEX LSET LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP.
//!
//! The shapes follow redis-server 7.0's `t_list.c`, because clients see which error comes first
//! (LRANGE checks its indexes before the key, LINDEX the key before its index, …); each handler
//! says its order. One body serves each group of variants:
//!
//! - [`push_locked`] serves LPUSH, RPUSH, LPUSHX, RPUSHX and the push half of LMOVE;
//! - [`pop_locked`] serves LPOP, RPOP (with and without a count) and LMPOP;
//! - [`move_locked`] serves LMOVE and RPOPLPUSH;
//! - [`mpop_locked`] serves LMPOP.
//!
//! The `_locked` functions take the caller's shard guard, so the blocking variants (BLPOP,
//! BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, which need the server's blocking machinery) can call them
//! once a key they wait on has elements, and answer with the same values.
//!
//! Lookups for writing go through `peek` (redis-server's write lookups count no hits or
//! misses), and `write` — a new CAS unique, a dirty change — is taken only once the command is
//! sure to modify the list. A list emptied by a command is deleted by it.

use super::arg::*;
use super::flags::*;
use super::{block_on, int_arg, is, notify, parse_timeout, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{Hashed, Locked};
use crate::types::list::{End, List};
use crate::types::Value;

/// This family's table entries (arity, flags and key positions as redis-server 7.0's COMMAND
/// INFO gives them; LMPOP's keys are found by its handler from `numkeys`).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", PUSH_COMPLEXITY, "Prepend one or multiple elements to a list", lpush).args(PUSH_ARGS),
    spec("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", PUSH_COMPLEXITY, "Append one or multiple elements to a list", rpush).args(PUSH_ARGS),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", PUSH_COMPLEXITY, "Prepend an element to a list, only if the list exists", lpushx).args(PUSH_ARGS),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", PUSH_COMPLEXITY, "Append an element to a list, only if the list exists", rpushx).args(PUSH_ARGS),
    spec("lpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "O(N) where N is the number of elements returned", "Remove and get the first elements in a list", lpop).args(POP_ARGS),
    spec("rpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "O(N) where N is the number of elements returned", "Remove and get the last elements in a list", rpop).args(POP_ARGS),
    spec("llen", 2, READONLY | FAST, (1, 1, 1), "list", "1.0.0", "O(1)", "Get the length of a list", llen).args(ONE_KEY),
    spec("lrange", 4, READONLY, (1, 1, 1), "list", "1.0.0", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", "Get a range of elements from a list", lrange).args(RANGE_ARGS),
    spec("lindex", 3, READONLY, (1, 1, 1), "list", "1.0.0", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", "Get an element from a list by its index", lindex).args(&[key("key"), integer("index")]),
    spec("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", "1.0.0", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", "Set the value of an element in a list by its index", lset).args(&[key("key"), integer("index"), string("element")]),
    spec("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", "2.2.0", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", "Insert an element before or after another element in a list", linsert).args(LINSERT_ARGS),
    spec("lrem", 4, WRITE, (1, 1, 1), "list", "1.0.0", "O(N+M) where N is the length of the list and M is the number of elements removed.", "Remove elements from a list", lrem).args(&[key("key"), integer("count"), string("element")]),
    spec("ltrim", 4, WRITE, (1, 1, 1), "list", "1.0.0", "O(N) where N is the number of elements to be removed by the operation.", "Trim a list to the specified range", ltrim).args(RANGE_ARGS),
    spec("lpos", -3, READONLY, (1, 1, 1), "list", "6.0.6", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", "Return the index of matching elements on a list", lpos).args(LPOS_ARGS),
    spec("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", "6.2.0", "O(1)", "Pop an element from a list, push it to another list and return it", lmove).args(LMOVE_ARGS),
    spec("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), "list", "1.2.0", "O(1)", "Remove the last element in a list, prepend it to another list and return it", rpoplpush).args(&[key("source"), key("destination").key_spec(1)]),
    spec("lmpop", -4, WRITE, (0, 0, 0), "list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "Pop elements from a list", lmpop).args(LMPOP_ARGS).numkeys(1),
    spec("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "2.0.0", "O(N) where N is the number of provided keys.", "Remove and get the first element in a list, or block until one is available", blpop).args(BPOP_ARGS),
    spec("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "2.0.0", "O(N) where N is the number of provided keys.", "Remove and get the last element in a list, or block until one is available", brpop).args(BPOP_ARGS),
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), "list", "6.2.0", "O(1)", "Pop an element from a list, push it to another list and return it; or block until one is available", blmove).args(BLMOVE_ARGS),
    spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), "list", "2.2.0", "O(1)", "Pop an element from a list, push it to another list and return it; or block until one is available", brpoplpush).args(&[key("source"), key("destination").key_spec(1), double("timeout")]),
    spec("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), "list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "Pop elements from a list, or block until one is available", blmpop).args(BLMPOP_ARGS).numkeys(2),
];

/// `BLPOP key [key ...] timeout` (and BRPOP)
const BPOP_ARGS: &[Arg] = &[key("key").multiple(), double("timeout")];

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
const BLMOVE_ARGS: &[Arg] = &[
    key("source"),
    key("destination").key_spec(1),
    oneof("wherefrom", LEFT_RIGHT),
    oneof("whereto", LEFT_RIGHT),
    double("timeout"),
];

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
const BLMPOP_ARGS: &[Arg] = &[
    double("timeout"),
    integer("numkeys"),
    key("key").multiple(),
    oneof("where", LEFT_RIGHT),
    integer("count").token("COUNT").optional(),
];

const PUSH_COMPLEXITY: &str =
    "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.";

/// `LPUSH key element [element ...]` (and RPUSH, LPUSHX, RPUSHX)
const PUSH_ARGS: &[Arg] = &[key("key"), string("element").multiple()];

/// `LPOP key [count]`
const POP_ARGS: &[Arg] = &[key("key"), integer("count").since("6.2.0").optional()];

/// `LRANGE key start stop` (and LTRIM)
const RANGE_ARGS: &[Arg] = &[key("key"), integer("start"), integer("stop")];

/// `LEFT|RIGHT`, as LMOVE and LMPOP spell an end.
const LEFT_RIGHT: &[Arg] = &[pure("LEFT"), pure("RIGHT")];

/// `LINSERT key BEFORE|AFTER pivot element`
const LINSERT_ARGS: &[Arg] =
    &[key("key"), oneof("where", &[pure("BEFORE"), pure("AFTER")]), string("pivot"), string("element")];

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
const LPOS_ARGS: &[Arg] = &[
    key("key"),
    string("element"),
    integer("rank").token("RANK").optional(),
    integer("num-matches").token("COUNT").optional(),
    integer("len").token("MAXLEN").optional(),
];

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
const LMOVE_ARGS: &[Arg] =
    &[key("source"), key("destination").key_spec(1), oneof("wherefrom", LEFT_RIGHT), oneof("whereto", LEFT_RIGHT)];

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
const LMPOP_ARGS: &[Arg] = &[
    integer("numkeys"),
    key("key").multiple(),
    oneof("where", LEFT_RIGHT),
    integer("count").token("COUNT").optional(),
];

// ---- shared helpers -----------------------------------------------------------------------

/// The list a value holds, or WRONGTYPE.
fn list_of(v: &Value) -> Result<&List, CmdError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// The list under `k` for reading (counts a hit or a miss): None when the key is missing.
fn read_list<'l>(l: &'l mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> Result<Option<&'l List>, CmdError> {
    l.read(db, k, now).map(|e| list_of(&e.value)).transpose()
}

/// The list under `k` for deciding a write (no stats, no CAS): None when the key is missing.
fn peek_list<'l>(l: &'l mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> Result<Option<&'l List>, CmdError> {
    l.peek(db, k, now).map(|e| list_of(&e.value)).transpose()
}

/// The list under `k` for modifying it in place (new CAS unique, one dirty change). The caller
/// has found a list there with [`peek_list`] under the same lock.
fn write_list<'l>(l: &'l mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> &'l mut List {
    match l.write(db, k, now).map(|e| &mut e.value) {
        Some(Value::List(list)) => list,
        _ => unreachable!("a list was peeked under the same lock"),
    }
}

/// Deletes `k` if it holds an empty list: the command that empties a list removes the key.
fn delete_if_empty(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) {
    if matches!(l.peek(db, k, now).map(|e| &e.value), Some(Value::List(list)) if list.is_empty()) {
        l.delete(db, k, now);
    }
}

/// `LEFT` / `RIGHT` (any case), else a syntax error (redis-server's
/// `getListPositionFromObjectOrReply`).
fn end_arg(a: &[u8]) -> Result<End, CmdError> {
    if is(a, "LEFT") {
        Ok(End::Head)
    } else if is(a, "RIGHT") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Reads an integer argument in `min..=max`, answering `ERR <msg>` when it is not one or is out
/// of range (redis-server's `getRangeLongFromObjectOrReply` with a message).
fn ranged_arg(a: &[u8], min: i64, max: i64, msg: &'static str) -> Result<i64, CmdError> {
    int_arg(a).ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| CmdError::err(format!("ERR {msg}")))
}

/// A non-negative count (redis-server's `getPositiveLongFromObjectOrReply`: one message, `msg`
/// or "value is out of range, must be positive", whether the argument is negative or not a
/// number at all).
fn positive_arg(a: &[u8], msg: Option<&'static str>) -> Result<usize, CmdError> {
    let msg = msg.unwrap_or("value is out of range, must be positive");
    int_arg(a).ok().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| CmdError::err(format!("ERR {msg}")))
}

/// The index a possibly negative `i` names in a list of `len` elements, if any.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    usize::try_from(i).ok().filter(|&i| i < len)
}

/// LRANGE's and LTRIM's clamping of `start..=stop`: the kept range, or None when it is empty.
fn clamp_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let n = len as i64;
    let start = if start < 0 { (n + start).max(0) } else { start };
    let stop = if stop < 0 { n + stop } else { stop };
    if start > stop || start >= n {
        return None;
    }
    Some((start as usize, stop.min(n - 1) as usize))
}

// ---- push -----------------------------------------------------------------------------------

/// Pushes `elements` one by one at `end` of the list under `k`, creating it unless
/// `only_existing` (LPUSHX/RPUSHX). Returns the new length (0 when nothing was there to push
/// onto). WRONGTYPE when the key holds another type.
pub fn push_locked<'a>(
    l: &mut Locked<'_>,
    db: usize,
    k: &Hashed<'_>,
    end: End,
    elements: impl Iterator<Item = &'a [u8]>,
    only_existing: bool,
    now: u64,
) -> Result<usize, CmdError> {
    if peek_list(l, db, k, now)?.is_some() {
        let list = write_list(l, db, k, now);
        elements.for_each(|e| list.push(end, e));
        return Ok(list.len());
    }
    if only_existing {
        return Ok(0);
    }
    let mut list = List::default();
    elements.for_each(|e| list.push(end, e));
    let len = list.len();
    l.set(db, k, Value::List(Box::new(list)), None, 0, false, now);
    Ok(len)
}

/// LPUSH/RPUSH/LPUSHX/RPUSHX: the key's type is checked first; the reply is the new length.
fn push_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, end: End, only_existing: bool) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let len = push_locked(&mut engine.lock_one(&k), db, &k, end, argv.rest(2), only_existing, now)?;
    if len > 0 {
        ctx.notify_after(notify::LIST, push_event(end), k.key);
    }
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    push_generic(ctx, argv, End::Head, false)
}

fn rpush(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    push_generic(ctx, argv, End::Tail, false)
}

fn lpushx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    push_generic(ctx, argv, End::Head, true)
}

fn rpushx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    push_generic(ctx, argv, End::Tail, true)
}

// ---- pop ------------------------------------------------------------------------------------

fn push_event(end: End) -> &'static str {
    if end == End::Head {
        "lpush"
    } else {
        "rpush"
    }
}

fn pop_event(end: End) -> &'static str {
    if end == End::Head {
        "lpop"
    } else {
        "rpop"
    }
}

/// True when notifications are on and `k` is gone: the pop that just ran emptied it. Looked up
/// only when someone may hear the `del`.
fn emptied(ctx: &Ctx<'_>, l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> bool {
    ctx.notifies(notify::GENERIC) && l.peek(db, k, now).is_none()
}

/// Announces a pop from `key` (and its deletion when it emptied).
fn notify_pop(ctx: &mut Ctx<'_>, end: End, key: &[u8], gone: bool) {
    ctx.notify_after(notify::LIST, pop_event(end), key);
    if gone {
        ctx.notify_after(notify::GENERIC, "del", key);
    }
}

/// Elements popped by one command, in pop order.
pub type Popped = Vec<Vec<u8>>;

/// Pops up to `count` elements from `end` of the list under `k`, in pop order, deleting the
/// key when it empties. None when the key is missing; WRONGTYPE when it holds another type;
/// `count` 0 pops nothing (and leaves the CAS alone).
pub fn pop_locked(
    l: &mut Locked<'_>,
    db: usize,
    k: &Hashed<'_>,
    end: End,
    count: usize,
    now: u64,
) -> Result<Option<Popped>, CmdError> {
    if peek_list(l, db, k, now)?.is_none() {
        return Ok(None);
    }
    if count == 0 {
        return Ok(Some(Vec::new()));
    }
    let popped = write_list(l, db, k, now).pop_many(end, count);
    delete_if_empty(l, db, k, now);
    Ok(Some(popped))
}

/// LPOP/RPOP key [count]. The count is checked before the key. Without a count: the element or
/// a null; with one: an array (empty for count 0 on an existing list), or a null array when
/// the key is missing — `*-1` in RESP2, `_` in RESP3, as redis-server.
fn pop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, end: End) -> Result<(), CmdError> {
    let name = if end == End::Head { "lpop" } else { "rpop" };
    if argv.len() > 3 {
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{name}' command")));
    }
    let count = if argv.len() == 3 { Some(positive_arg(argv.get(2), None)?) } else { None };
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let popped = pop_locked(&mut l, db, &k, end, count.unwrap_or(1), now)?;
    let gone = emptied(ctx, &mut l, db, &k, now);
    drop(l);
    if popped.as_ref().is_some_and(|v| !v.is_empty()) {
        notify_pop(ctx, end, k.key, gone);
    }
    match (popped, count) {
        (None, None) => ctx.out.null(),
        (None, Some(_)) => ctx.out.null_array(),
        (Some(v), None) => match v.first() {
            Some(e) => ctx.out.bulk(e),
            None => ctx.out.null(),
        },
        (Some(v), Some(_)) => {
            ctx.out.array(v.len());
            v.iter().for_each(|e| ctx.out.bulk(e));
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    pop_generic(ctx, argv, End::Head)
}

fn rpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    pop_generic(ctx, argv, End::Tail)
}

/// Pops up to `count` (> 0) elements from `end` of the first non-empty list among `keys`, as
/// LMPOP/BLMPOP: returns its position in `keys` and the elements. A key of another type met
/// before a list is WRONGTYPE; keys after the first list are not looked at. The caller holds
/// every key's shard.
pub fn mpop_locked(
    l: &mut Locked<'_>,
    db: usize,
    keys: &[Hashed<'_>],
    end: End,
    count: usize,
    now: u64,
) -> Result<Option<(usize, Popped)>, CmdError> {
    for (i, k) in keys.iter().enumerate() {
        if let Some(popped) = pop_locked(l, db, k, end, count, now)? {
            return Ok(Some((i, popped)));
        }
    }
    Ok(None)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]. Checked in redis-server's order:
/// numkeys (an integer ≥ 1, else "numkeys should be greater than 0"), that the keys and the
/// end fit in the line (else a syntax error), the end, then the options (COUNT once, ≥ 1).
/// Replies [key, [elements]] or a null array.
fn lmpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    mpop_command(ctx, argv, 1, None)
}

/// The body of LMPOP and BLMPOP: the LMPOP arguments start at `first` (BLMPOP's timeout comes
/// before them). With `block` set and nothing to pop, the client blocks instead of replying.
fn mpop_command(ctx: &mut Ctx<'_>, argv: &Argv<'_>, first: usize, block: Option<Option<u64>>) -> Result<(), CmdError> {
    let numkeys = ranged_arg(argv.get(first), 1, i64::MAX, "numkeys should be greater than 0")?;
    let where_at = usize::try_from(numkeys).ok().and_then(|n| n.checked_add(first + 1)).filter(|&w| w < argv.len());
    let Some(where_at) = where_at else {
        return Err(CmdError::Syntax);
    };
    let end = end_arg(argv.get(where_at))?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < argv.len() {
        if count.is_none() && is(argv.get(i), "COUNT") && i + 1 < argv.len() {
            let n = ranged_arg(argv.get(i + 1), 1, i64::MAX, "count should be greater than 0")?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = (first + 1..where_at).map(|i| engine.hashed(argv.get(i))).collect();
    let mut l = engine.lock(&keys);
    let popped = mpop_locked(&mut l, db, &keys, end, count.unwrap_or(1), now)?;
    if let Some((i, elements)) = &popped {
        // Logged as the pop it was, from the one key it popped, with the actual count.
        log_pop(keys[*i].key, end, Some(elements.len()));
        let gone = emptied(ctx, &mut l, db, &keys[*i], now);
        drop(l);
        notify_pop(ctx, end, keys[*i].key, gone);
    }
    match (popped, block) {
        (Some((i, elements)), _) => {
            ctx.out.array(2);
            ctx.out.bulk(keys[i].key);
            ctx.out.array(elements.len());
            elements.iter().for_each(|e| ctx.out.bulk(e));
        }
        (None, Some(deadline)) => block_on(ctx, &keys, deadline),
        (None, None) => ctx.out.null_array(),
    }
    Ok(())
}

// ---- blocking ---------------------------------------------------------------------------------

fn end_name(end: End) -> &'static [u8] {
    if end == End::Head {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// Logs a pop from `key` as LPOP/RPOP (with `count` when the command had one).
fn log_pop(key: &[u8], end: End, count: Option<usize>) {
    let cmd: &[u8] = if end == End::Head { b"LPOP" } else { b"RPOP" };
    match count {
        Some(n) => crate::engine::effects::rewrite(&[cmd, key, n.to_string().as_bytes()]),
        None => crate::engine::effects::rewrite(&[cmd, key]),
    }
}

/// BLPOP / BRPOP key [key ...] timeout: the timeout is checked first; then the first non-empty
/// list among the keys gives one element, replied as [key, element]; none: block.
fn bpop_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, end: End) -> Result<(), CmdError> {
    let deadline = parse_timeout(argv.get(argv.len() - 1), ctx.now)?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = (1..argv.len() - 1).map(|i| engine.hashed(argv.get(i))).collect();
    let mut l = engine.lock(&keys);
    let popped = mpop_locked(&mut l, db, &keys, end, 1, now)?;
    if let Some((i, _)) = &popped {
        // Served now or later (re-run by the blocking registry): the non-blocking pop.
        log_pop(keys[*i].key, end, None);
        let gone = emptied(ctx, &mut l, db, &keys[*i], now);
        drop(l);
        notify_pop(ctx, end, keys[*i].key, gone);
    }
    match popped.and_then(|(i, mut v)| v.pop().map(|e| (i, e))) {
        Some((i, e)) => {
            ctx.out.array(2);
            ctx.out.bulk(keys[i].key);
            ctx.out.bulk(&e);
        }
        None => block_on(ctx, &keys, deadline),
    }
    Ok(())
}

fn blpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bpop_generic(ctx, argv, End::Head)
}

fn brpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bpop_generic(ctx, argv, End::Tail)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn blmpop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let deadline = parse_timeout(argv.get(1), ctx.now)?;
    mpop_command(ctx, argv, 2, Some(deadline))
}

/// BLMOVE / BRPOPLPUSH: LMOVE, or block on the source while it is empty.
fn bmove_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, from: End, to: End) -> Result<(), CmdError> {
    let deadline = parse_timeout(argv.get(argv.len() - 1), ctx.now)?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let (src, dst) = (engine.hashed(argv.get(1)), engine.hashed(argv.get(2)));
    let moved = move_notified(ctx, db, &src, &dst, from, to, now)?;
    match moved {
        Some(e) => ctx.out.bulk(&e),
        None => block_on(ctx, &[src], deadline),
    }
    Ok(())
}

fn blmove(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let from = end_arg(argv.get(3))?;
    let to = end_arg(argv.get(4))?;
    bmove_generic(ctx, argv, from, to)
}

fn brpoplpush(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bmove_generic(ctx, argv, End::Tail, End::Head)
}

// ---- move -----------------------------------------------------------------------------------

/// Pops one element from `from` of the list under `src` and pushes it at `to` of the list
/// under `dst` (created if missing), returning it; None when `src` is missing. WRONGTYPE when
/// `src`, or `dst` (checked only once `src` has an element), holds another type — nothing
/// moves then. With `src == dst` this rotates the list in place (its TTL stays). The caller
/// holds both keys' shards.
pub fn move_locked(
    l: &mut Locked<'_>,
    db: usize,
    src: &Hashed<'_>,
    dst: &Hashed<'_>,
    from: End,
    to: End,
    now: u64,
) -> Result<Option<Vec<u8>>, CmdError> {
    if !peek_list(l, db, src, now)?.is_some_and(|list| !list.is_empty()) {
        return Ok(None);
    }
    peek_list(l, db, dst, now)?;
    let Some(e) = write_list(l, db, src, now).pop(from) else {
        return Ok(None);
    };
    push_locked(l, db, dst, to, std::iter::once(e.as_slice()), false, now)?;
    // After the push, so that a one-element rotation never deletes its key.
    delete_if_empty(l, db, src, now);
    Ok(Some(e))
}

/// [`move_locked`] under its own locks, then the events redis-server sends: the push to `dst`,
/// the pop from `src`, and `src`'s deletion if it emptied.
fn move_notified(
    ctx: &mut Ctx<'_>,
    db: usize,
    src: &Hashed<'_>,
    dst: &Hashed<'_>,
    from: End,
    to: End,
    now: u64,
) -> Result<Option<Vec<u8>>, CmdError> {
    let engine = ctx.engine();
    let mut l = engine.lock(&[*src, *dst]);
    let moved = move_locked(&mut l, db, src, dst, from, to, now)?;
    if moved.is_some() {
        // BLMOVE and BRPOPLPUSH, served now or later, are logged as the LMOVE they made.
        crate::engine::effects::rewrite(&[b"LMOVE", src.key, dst.key, end_name(from), end_name(to)]);
        let gone = emptied(ctx, &mut l, db, src, now);
        drop(l);
        ctx.notify(notify::LIST, push_event(to), dst.key);
        notify_pop(ctx, from, src.key, gone);
    }
    Ok(moved)
}

/// LMOVE / RPOPLPUSH: both ends are parsed before any key is looked at; replies the moved
/// element or a null.
fn move_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, from: End, to: End) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let (src, dst) = (engine.hashed(argv.get(1)), engine.hashed(argv.get(2)));
    let moved = move_notified(ctx, db, &src, &dst, from, to, now)?;
    match moved {
        Some(e) => ctx.out.bulk(&e),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let from = end_arg(argv.get(3))?;
    let to = end_arg(argv.get(4))?;
    move_generic(ctx, argv, from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    move_generic(ctx, argv, End::Tail, End::Head)
}

// ---- reads ----------------------------------------------------------------------------------

/// LLEN key: 0 for a missing key.
fn llen(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let len = read_list(&mut engine.lock_one(&k), db, &k, now)?.map_or(0, List::len);
    ctx.out.int(len as i64);
    Ok(())
}

/// LRANGE key start stop: the indexes are checked before the key; written straight from the
/// packed nodes under the lock.
fn lrange(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let start = int_arg(argv.get(2))?;
    let stop = int_arg(argv.get(3))?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let list = read_list(&mut l, db, &k, now)?;
    match list.and_then(|list| clamp_range(list.len(), start, stop).map(|r| (list, r))) {
        Some((list, (a, b))) => {
            ctx.out.array(b - a + 1);
            list.iter_from(a).take(b - a + 1).for_each(|e| ctx.out.bulk(e));
        }
        None => ctx.out.array(0),
    }
    Ok(())
}

/// LINDEX key index: the key first (missing: null), then its type, then the index.
fn lindex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(list) = read_list(&mut l, db, &k, now)? else {
        ctx.out.null();
        return Ok(());
    };
    let i = int_arg(argv.get(2))?;
    match index(list.len(), i).and_then(|i| list.get(i)) {
        Some(e) => ctx.out.bulk(e),
        None => ctx.out.null(),
    }
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]. Options are read in order,
/// the first bad one answers; then a missing key gives null (or an empty array with COUNT).
/// A negative rank searches from the tail; indexes are always from the head. COUNT 0 means
/// every match; MAXLEN caps how many elements are compared.
fn lpos(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < argv.len() {
        let (opt, more) = (argv.get(i), i + 1 < argv.len());
        if is(opt, "RANK") && more {
            // Any long, LLONG_MIN included (see the walk below).
            rank = int_arg(argv.get(i + 1))?;
            if rank == 0 {
                return Err(CmdError::err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "COUNT") && more {
            count = Some(positive_arg(argv.get(i + 1), Some("COUNT can't be negative"))?);
        } else if is(opt, "MAXLEN") && more {
            maxlen = positive_arg(argv.get(i + 1), Some("MAXLEN can't be negative"))?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let element = argv.get(2);
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(list) = read_list(&mut l, db, &k, now)? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let len = list.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    // redis-server 7.0 negates RANK in a C long, where -LLONG_MIN stays negative: every match
    // then counts as ranked and COUNT never ends the walk. Reproduced, since clients see it.
    let (skip, want) = if rank == i64::MIN { (0, if count.is_some() { usize::MAX } else { 1 }) } else { (skip, want) };
    let matches: Vec<usize> = if rank > 0 {
        list.iter()
            .take(scan)
            .enumerate()
            .filter(|(_, e)| *e == element)
            .map(|(i, _)| i)
            .skip(skip)
            .take(want)
            .collect()
    } else {
        let from_tail = list.iter().rev().take(scan).enumerate();
        from_tail.filter(|(_, e)| *e == element).map(|(i, _)| len - 1 - i).skip(skip).take(want).collect()
    };
    match count {
        Some(_) => {
            ctx.out.array(matches.len());
            matches.iter().for_each(|&m| ctx.out.int(m as i64));
        }
        None => match matches.first() {
            Some(&m) => ctx.out.int(m as i64),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

// ---- in-place edits -------------------------------------------------------------------------

/// LSET key index element: the key first ("no such key"), its type, the index (an integer,
/// then in range: "index out of range").
fn lset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(list) = peek_list(&mut l, db, &k, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let i = int_arg(argv.get(2))?;
    let Some(i) = index(list.len(), i) else {
        return Err(CmdError::err("ERR index out of range"));
    };
    write_list(&mut l, db, &k, now).set(i, argv.get(3));
    drop(l);
    ctx.notify_after(notify::LIST, "lset", k.key);
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element: BEFORE/AFTER first (syntax error), then the key
/// (missing: 0) and its type. Replies the new length, or -1 when the pivot is not there.
fn linsert(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let after = if is(argv.get(2), "AFTER") {
        true
    } else if is(argv.get(2), "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(list) = peek_list(&mut l, db, &k, now)? else {
        drop(l);
        ctx.out.int(0);
        return Ok(());
    };
    let reply = match list.position(argv.get(3)) {
        Some(p) => {
            let list = write_list(&mut l, db, &k, now);
            list.insert(p + usize::from(after), argv.get(4));
            list.len() as i64
        }
        None => -1,
    };
    drop(l);
    if reply > 0 {
        ctx.notify(notify::LIST, "linsert", k.key);
    }
    ctx.out.int(reply);
    Ok(())
}

/// LREM key count element: the count is checked before the key (missing: 0). Removes the
/// first |count| matches from the head (count > 0) or the tail (count < 0), or all (0).
fn lrem(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let count = int_arg(argv.get(2))?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let element = argv.get(3);
    let removed = match peek_list(&mut l, db, &k, now)? {
        Some(list) if list.position(element).is_some() => {
            let n = write_list(&mut l, db, &k, now).remove_matching(element, count);
            delete_if_empty(&mut l, db, &k, now);
            n
        }
        _ => 0,
    };
    let gone = removed > 0 && emptied(ctx, &mut l, db, &k, now);
    drop(l);
    if removed > 0 {
        ctx.notify(notify::LIST, "lrem", k.key);
        if gone {
            ctx.notify(notify::GENERIC, "del", k.key);
        }
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop: the indexes are checked before the key; a range that keeps nothing
/// deletes the key. Always OK.
fn ltrim(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let start = int_arg(argv.get(2))?;
    let stop = int_arg(argv.get(3))?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let mut trimmed = None;
    if let Some(list) = peek_list(&mut l, db, &k, now)? {
        trimmed = Some(false);
        let len = list.len();
        let (head, tail) = match clamp_range(len, start, stop) {
            Some((a, b)) => (a, len - 1 - b),
            None => (len, 0),
        };
        if head > 0 || tail > 0 {
            write_list(&mut l, db, &k, now).trim(head, tail);
            delete_if_empty(&mut l, db, &k, now);
            trimmed = Some(emptied(ctx, &mut l, db, &k, now));
        }
    }
    drop(l);
    if let Some(gone) = trimmed {
        ctx.notify(notify::LIST, "ltrim", k.key);
        if gone {
            ctx.notify(notify::GENERIC, "del", k.key);
        }
    }
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_ranges() {
        assert_eq!(index(3, 0), Some(0));
        assert_eq!(index(3, -1), Some(2));
        assert_eq!(index(3, -3), Some(0));
        assert_eq!(index(3, -4), None);
        assert_eq!(index(3, 3), None);
        assert_eq!(index(3, i64::MIN), None);
        assert_eq!(clamp_range(5, 0, -1), Some((0, 4)));
        assert_eq!(clamp_range(5, -100, 100), Some((0, 4)));
        assert_eq!(clamp_range(5, 3, 2), None);
        assert_eq!(clamp_range(5, 5, 10), None);
        assert_eq!(clamp_range(5, i64::MIN, i64::MIN), None);
        assert_eq!(clamp_range(5, 0, i64::MAX), Some((0, 4)));
        assert_eq!(clamp_range(0, 0, -1), None);
    }

    #[test]
    fn argument_errors_word_as_redis() {
        assert_eq!(end_arg(b"left"), Ok(End::Head));
        assert_eq!(end_arg(b"RIGHT"), Ok(End::Tail));
        assert_eq!(end_arg(b"up"), Err(CmdError::Syntax));
        assert_eq!(positive_arg(b"-1", None).unwrap_err().message(), "ERR value is out of range, must be positive");
        assert_eq!(positive_arg(b"x", None).unwrap_err().message(), "ERR value is out of range, must be positive");
        assert_eq!(
            positive_arg(b"x", Some("COUNT can't be negative")).unwrap_err().message(),
            "ERR COUNT can't be negative"
        );
        assert_eq!(
            ranged_arg(b"x", 1, 5, "count should be greater than 0"),
            Err(CmdError::err("ERR count should be greater than 0"))
        );
        assert_eq!(ranged_arg(b"5", 1, 5, "m"), Ok(5));
        assert_eq!(
            ranged_arg(b"0", 1, i64::MAX, "numkeys should be greater than 0").unwrap_err().message(),
            "ERR numkeys should be greater than 0"
        );
    }

    #[test]
    fn move_rotates_in_place_and_across_shards() {
        let engine = crate::engine::Engine::new(16);
        let (a, now) = (engine.hashed(b"a"), 0);
        // A key in another shard than `a`, so that the move locks two shards.
        let other: Vec<u8> = (0..1000u32)
            .map(|i| format!("b{i}").into_bytes())
            .find(|k| {
                let h = engine.hashed(k);
                engine.lock(&[a, h]).dbs(0).count() == 2
            })
            .expect("some key lands in another of 16 shards");
        let b = engine.hashed(&other);
        let mut l = engine.lock(&[a, b]);
        push_locked(&mut l, 0, &a, End::Tail, [&b"1"[..], b"2", b"3"].into_iter(), false, now).unwrap();
        assert_eq!(move_locked(&mut l, 0, &a, &a, End::Tail, End::Head, now).unwrap(), Some(b"3".to_vec()));
        let got: Vec<&[u8]> = read_list(&mut l, 0, &a, now).unwrap().unwrap().iter().collect();
        assert_eq!(got, [&b"3"[..], b"1", b"2"]);
        for _ in 0..3 {
            assert!(move_locked(&mut l, 0, &a, &b, End::Head, End::Tail, now).unwrap().is_some());
        }
        assert!(l.peek(0, &a, now).is_none(), "the emptied source is deleted");
        let got: Vec<&[u8]> = read_list(&mut l, 0, &b, now).unwrap().unwrap().iter().collect();
        assert_eq!(got, [&b"3"[..], b"1", b"2"]);
        assert_eq!(move_locked(&mut l, 0, &a, &b, End::Head, End::Tail, now).unwrap(), None);
        // A one-element rotation keeps its key.
        pop_locked(&mut l, 0, &b, End::Head, 2, now).unwrap();
        assert_eq!(move_locked(&mut l, 0, &b, &b, End::Head, End::Tail, now).unwrap(), Some(b"2".to_vec()));
        assert!(l.peek(0, &b, now).is_some());
    }
}
