//! The string command family: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX
//! APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE SETRANGE SUBSTR.
//!
//! The shapes follow redis-server's `t_string.c`, because clients see which error comes first:
//!
//! - one [`set_generic`] serves SET, SETNX, SETEX, PSETEX and GETSET, told apart by a
//!   [`SetOptions`]; it checks the expire time, then (with GET) the old value's type, then NX/XX;
//! - one option parser, [`ExtOptions::parse`], serves SET and GETEX with redis-server's conflict
//!   rules (`EX 1 EX 2` is fine, `EX 1 PX 2` is a syntax error, KEEPTTL only on SET, PERSIST
//!   only on GETEX);
//! - one `incr_generic` serves INCR, DECR, INCRBY and DECRBY; one `mset_generic` MSET and MSETNX.
//!
//! Whole-value writes (SET, MSET, …) store a plain Redis string: memcached flags 0. In-place
//! edits (APPEND, SETRANGE, INCR…, INCRBYFLOAT) keep the key's TTL and flags, as redis-server
//! keeps the TTL and memcached's own append/incr keep the flags. Every write goes through the
//! engine guard (`set`, `write`, `delete`, `set_expire`), so CAS uniques and the dirty counter
//! move; an edit validates through `peek` first and takes `write` only once it will succeed, so
//! a refused command changes no CAS.
//!
//! Values are reached only through [`string_of`] (built on `Value::as_str`), so when
//! collection types join `Value` these commands answer WRONGTYPE for them unchanged.
//!
//! Exported for other families: [`ExpireKind`], [`parse_expire`], [`invalid_expire`],
//! [`string_of`], [`max_string_len`], [`check_string_len`].

use std::ops::Range;

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{effects, mc_bits, Hashed, Locked};
use crate::types::string::{self as st, FloatIncrError};
use crate::types::Value;

/// This family's table entries (arity, flags and key positions as redis-server 7.0's COMMAND
/// INFO gives them).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("get", 2, READONLY | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Get the value of a key", get).args(ONE_KEY),
    spec("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "1.0.0", "O(1)", "Set the string value of a key", set).args(SET_ARGS),
    spec("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Set the value of a key, only if the key does not exist", setnx).args(KEY_VALUE),
    spec("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.0.0", "O(1)", "Set the value and expiration of a key", setex).args(&[key("key"), integer("seconds"), string("value")]),
    spec("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.6.0", "O(1)", "Set the value and expiration in milliseconds of a key", psetex).args(&[key("key"), integer("milliseconds"), string("value")]),
    spec("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Set the string value of a key and return its old value", getset).args(KEY_VALUE),
    spec("getdel", 2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "O(1)", "Get the value of a key and delete the key", getdel).args(ONE_KEY),
    spec("getex", -2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "O(1)", "Get the value of a key and optionally set its expiration", getex).args(GETEX_ARGS),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), "string", "1.0.0", "O(N) where N is the number of keys to retrieve.", "Get the values of all the given keys", mget).args(KEYS),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values", mset).args(MSET_ARGS),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values, only if none of the keys exist", msetnx).args(MSET_ARGS),
    spec("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", "Append a value to a key", append).args(KEY_VALUE),
    spec("strlen", 2, READONLY | FAST, (1, 1, 1), "string", "2.2.0", "O(1)", "Get the length of the value stored in a key", strlen).args(ONE_KEY),
    spec("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Increment the integer value of a key by one", incr).args(ONE_KEY),
    spec("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Decrement the integer value of a key by one", decr).args(ONE_KEY),
    spec("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Increment the integer value of a key by the given amount", incrby).args(&[key("key"), integer("increment")]),
    spec("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "O(1)", "Decrement the integer value of a key by the given number", decrby).args(&[key("key"), integer("decrement")]),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.6.0", "O(1)", "Increment the float value of a key by the given amount", incrbyfloat).args(&[key("key"), double("increment")]),
    spec("getrange", 4, READONLY, (1, 1, 1), "string", "2.4.0", GETRANGE_COMPLEXITY, "Get a substring of the string stored at a key", getrange).args(RANGE_ARGS),
    spec("setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.2.0", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.", "Overwrite part of a string at key starting at the specified offset", setrange).args(&[key("key"), integer("offset"), string("value")]),
    spec("substr", 4, READONLY, (1, 1, 1), "string", "1.0.0", GETRANGE_COMPLEXITY, "Get a substring of the string stored at a key", getrange).args(RANGE_ARGS),
];

/// `SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT
/// unix-time-milliseconds|KEEPTTL]`
const SET_ARGS: &[Arg] = &[
    key("key"),
    string("value"),
    oneof("condition", &[pure("NX"), pure("XX")]).since("2.6.12").optional(),
    pure("GET").since("6.2.0").optional(),
    oneof("expiration", SET_EXPIRATION).optional(),
];

const SET_EXPIRATION: &[Arg] = &[
    integer("seconds").token("EX").since("2.6.12"),
    integer("milliseconds").token("PX").since("2.6.12"),
    unix_time("unix-time-seconds").token("EXAT").since("6.2.0"),
    unix_time("unix-time-milliseconds").token("PXAT").since("6.2.0"),
    pure("KEEPTTL").since("6.0.0"),
];

/// `GETEX key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]`:
/// SET's expirations without their `since` (GETEX came with all of them), PERSIST for KEEPTTL.
const GETEX_ARGS: &[Arg] = &[key("key"), oneof("expiration", GETEX_EXPIRATION).optional()];

const GETEX_EXPIRATION: &[Arg] = &[
    integer("seconds").token("EX"),
    integer("milliseconds").token("PX"),
    unix_time("unix-time-seconds").token("EXAT"),
    unix_time("unix-time-milliseconds").token("PXAT"),
    pure("PERSIST"),
];

/// `MSET key value [key value ...]`
const MSET_ARGS: &[Arg] = &[block("key_value", &[key("key"), string("value")]).multiple()];

/// `GETRANGE key start end`
const RANGE_ARGS: &[Arg] = &[key("key"), integer("start"), integer("end")];

const GETRANGE_COMPLEXITY: &str = "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.";

// ---- shared helpers (exported) ----------------------------------------------------------

/// The bytes of a string value, or WRONGTYPE for any other type.
#[inline]
pub fn string_of(v: &Value) -> Result<&[u8], CmdError> {
    v.as_str().map(Vec::as_slice).ok_or(CmdError::WrongType)
}

/// How an expire argument is given: the SET/GETEX options, which are also the units and bases
/// of EXPIRE (`Ex`), PEXPIRE (`Px`), EXPIREAT (`ExAt`) and PEXPIREAT (`PxAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireKind {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// Unix time in seconds.
    ExAt,
    /// Unix time in milliseconds.
    PxAt,
}

impl ExpireKind {
    /// The kind an option name (`EX`, `px`, `EXAT`, `PXAT`, any case) stands for.
    pub fn from_option(opt: &[u8]) -> Option<ExpireKind> {
        [(ExpireKind::Ex, "EX"), (ExpireKind::Px, "PX"), (ExpireKind::ExAt, "EXAT"), (ExpireKind::PxAt, "PXAT")]
            .into_iter()
            .find(|(_, name)| is(opt, name))
            .map(|(k, _)| k)
    }

    /// True for EX/PX (relative to now).
    pub fn is_relative(self) -> bool {
        matches!(self, ExpireKind::Ex | ExpireKind::Px)
    }

    /// True for EX/EXAT (seconds).
    pub fn in_seconds(self) -> bool {
        matches!(self, ExpireKind::Ex | ExpireKind::ExAt)
    }

    /// `n` in this kind's unit and base as an absolute unix time in ms, or None when the unit
    /// conversion or adding `now` overflows `i64` (redis-server then answers "invalid expire
    /// time"). Negative and past results are returned as they are: EXPIRE accepts them (and
    /// deletes the key), SET refuses `n <= 0` before calling this (see [`parse_expire`]).
    pub fn to_unix_ms(self, n: i64, now: u64) -> Option<i64> {
        let ms = if self.in_seconds() { n.checked_mul(1000)? } else { n };
        if self.is_relative() {
            ms.checked_add(i64::try_from(now).ok()?)
        } else {
            Some(ms)
        }
    }
}

/// `ERR invalid expire time in '<command>' command`, as redis-server words it.
pub fn invalid_expire(command: &str) -> CmdError {
    CmdError::err(format!("ERR invalid expire time in '{command}' command"))
}

/// Reads the expire argument of SET, SETEX, PSETEX or GETEX (redis-server's
/// `getExpireMillisecondsOrReply`): an integer (else "value is not an integer"), greater than
/// 0, whose conversion to absolute unix ms does not overflow (else "invalid expire time in
/// '<command>' command"). Returns the absolute expiry in unix ms; it may already be past for
/// EXAT/PXAT, and the caller then deletes the key.
pub fn parse_expire(arg: &[u8], kind: ExpireKind, now: u64, command: &str) -> Result<u64, CmdError> {
    let n = int_arg(arg)?;
    if n <= 0 {
        return Err(invalid_expire(command));
    }
    match kind.to_unix_ms(n, now) {
        Some(ms) if ms > 0 => Ok(ms as u64),
        _ => Err(invalid_expire(command)),
    }
}

/// Strings can grow to at least this much whatever `proto-max-bulk-len` says: redis-server
/// refuses to configure it lower (1 MB), so below this the configured value need not be read.
const MIN_PROTO_MAX_BULK_LEN: u64 = 1024 * 1024;

/// The configured `proto-max-bulk-len`, the largest string APPEND and SETRANGE may build.
/// Reads the configuration: call it with no shard locked (a config writer waiting on the
/// read-write lock could otherwise stand between a shard holder and its read).
pub fn max_string_len(ctx: &Ctx<'_>) -> u64 {
    u64::try_from(ctx.shared.config().proto_max_bulk_len).unwrap_or(u64::MAX)
}

/// redis-server's `checkStringLength`: refuses a string of `total` bytes above `limit`.
pub fn check_string_len(total: u64, limit: u64) -> Result<(), CmdError> {
    if total > limit {
        return Err(CmdError::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    }
    Ok(())
}

// ---- option parsing -----------------------------------------------------------------------

/// Which command's options [`ExtOptions::parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtFor {
    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]`
    Set,
    /// `GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]`
    GetEx,
}

/// The options of SET and GETEX as given, before any is checked against the keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtOptions<'a> {
    /// NX: only if the key is missing.
    pub nx: bool,
    /// XX: only if the key exists.
    pub xx: bool,
    /// GET: reply with the old value.
    pub get: bool,
    /// KEEPTTL: keep the key's TTL.
    pub keep_ttl: bool,
    /// PERSIST (GETEX): remove the TTL.
    pub persist: bool,
    /// EX/PX/EXAT/PXAT and its argument, unparsed: the number is checked after every option
    /// has been read, as redis-server does (a syntax error later on the line wins).
    pub expire: Option<(ExpireKind, &'a [u8])>,
}

impl<'a> ExtOptions<'a> {
    /// Parses the options after the key (and value) — redis-server's
    /// `parseExtendedStringArgumentsOrReply`, conflict rules included: NX and XX exclude each
    /// other; the four expire forms, KEEPTTL and PERSIST exclude each other, but repeating the
    /// same one is allowed (the last wins); an expire option without its argument, an option
    /// of the other command, or anything unknown is "ERR syntax error".
    pub fn parse(args: impl Iterator<Item = &'a [u8]>, cmd: ExtFor) -> Result<ExtOptions<'a>, CmdError> {
        let set = cmd == ExtFor::Set;
        let mut o = ExtOptions::default();
        let mut args = args.peekable();
        while let Some(opt) = args.next() {
            let kind = o.expire.map(|(k, _)| k);
            if set && is(opt, "NX") && !o.xx {
                o.nx = true;
            } else if set && is(opt, "XX") && !o.nx {
                o.xx = true;
            } else if set && is(opt, "GET") {
                o.get = true;
            } else if set && is(opt, "KEEPTTL") && kind.is_none() {
                o.keep_ttl = true;
            } else if !set && is(opt, "PERSIST") && kind.is_none() {
                o.persist = true;
            } else if let Some(k) = ExpireKind::from_option(opt) {
                let compatible = !o.keep_ttl && !o.persist && !matches!(kind, Some(prev) if prev != k);
                match args.peek() {
                    Some(&arg) if compatible => {
                        o.expire = Some((k, arg));
                        args.next();
                    }
                    _ => return Err(CmdError::Syntax),
                }
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(o)
    }
}

// ---- SET and its variants -------------------------------------------------------------------

/// When a SET-family command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Always (SET, SETEX, PSETEX, GETSET).
    #[default]
    Always,
    /// Only if the key is missing (NX, SETNX).
    IfMissing,
    /// Only if the key exists (XX).
    IfExists,
}

/// What a SET-family command answers when it wrote and when NX/XX stopped it (unless GET
/// made the old value the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetReply {
    /// `+OK` / null (SET, SETEX, PSETEX).
    #[default]
    OkOrNull,
    /// `:1` / `:0` (SETNX).
    OneOrZero,
}

/// What distinguishes SET, SETNX, SETEX, PSETEX and GETSET (redis-server's `setGenericCommand`
/// flags and replies).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetOptions<'a> {
    /// NX / XX.
    pub condition: Condition,
    /// Reply with the old value (SET … GET, GETSET).
    pub get: bool,
    /// Keep an existing TTL (KEEPTTL).
    pub keep_ttl: bool,
    /// The expire option and its unparsed argument.
    pub expire: Option<(ExpireKind, &'a [u8])>,
    /// The reply for written / not written.
    pub reply: SetReply,
    /// The name in "invalid expire time in '…' command".
    pub command: &'static str,
}

/// Stores `value` under `key` per `o`. Order of checks, as redis-server: the expire time, then
/// (with GET) the old value's type, then NX/XX. An expire time already past stores the key expired
/// (and still answers as a successful SET).
pub fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], o: &SetOptions<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.session.db, ctx.now);
    let expire_at = match o.expire {
        Some((kind, arg)) => Some(parse_expire(arg, kind, now, o.command)?),
        None => None,
    };
    let engine = ctx.engine();
    let k = engine.hashed(key);
    let raw = value;
    // Allocated before the shard lock is taken, so other threads wait only for the index update.
    let value = Value::Str(value.to_vec());
    let mut l = engine.lock_one(&k);
    let found = if o.get {
        match l.read(db, &k, now) {
            Some(e) => {
                ctx.out.bulk(string_of(&e.value)?);
                true
            }
            None => {
                ctx.out.null();
                false
            }
        }
    } else {
        // Plain SET never needs to know: the upsert replaces whatever is there.
        o.condition != Condition::Always && l.peek(db, &k, now).is_some()
    };
    let stopped = match o.condition {
        Condition::Always => false,
        Condition::IfMissing => found,
        Condition::IfExists => !found,
    };
    if !stopped {
        // A relative or absolute expiry is logged as the absolute PXAT (SETEX and PSETEX too),
        // as redis-server 7.0 propagates it, an expiry already past included.
        if let Some(t) = expire_at {
            effects::rewrite(&[b"SET", key, raw, b"PXAT", t.to_string().as_bytes()]);
        }
        // An expire time already past stores a key that is already expired, as redis-server
        // 7.0 does: no reader sees it, and its reclaiming announces `expired`.
        l.set(db, &k, value, expire_at, 0, o.keep_ttl, now);
    }
    drop(l);
    if !stopped {
        // An expire time already past still announces `set` and `expire`, as redis-server does.
        ctx.notify(notify::STRING, "set", key);
        if expire_at.is_some() {
            ctx.notify(notify::GENERIC, "expire", key);
        }
    }
    if !o.get {
        match (o.reply, stopped) {
            (SetReply::OkOrNull, false) => ctx.out.ok(),
            (SetReply::OkOrNull, true) => ctx.out.null(),
            (SetReply::OneOrZero, false) => ctx.out.int(1),
            (SetReply::OneOrZero, true) => ctx.out.int(0),
        }
    }
    Ok(())
}

fn set(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let x = ExtOptions::parse(argv.rest(3), ExtFor::Set)?;
    let condition = match (x.nx, x.xx) {
        (true, _) => Condition::IfMissing,
        (_, true) => Condition::IfExists,
        _ => Condition::Always,
    };
    let o = SetOptions {
        condition,
        get: x.get,
        keep_ttl: x.keep_ttl,
        expire: x.expire,
        reply: SetReply::OkOrNull,
        command: "set",
    };
    set_generic(ctx, argv.get(1), argv.get(2), &o)
}

fn setnx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let o = SetOptions {
        condition: Condition::IfMissing,
        reply: SetReply::OneOrZero,
        command: "setnx",
        ..Default::default()
    };
    set_generic(ctx, argv.get(1), argv.get(2), &o)
}

fn setex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let o = SetOptions { expire: Some((ExpireKind::Ex, argv.get(2))), command: "setex", ..Default::default() };
    set_generic(ctx, argv.get(1), argv.get(3), &o)
}

fn psetex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let o = SetOptions { expire: Some((ExpireKind::Px, argv.get(2))), command: "psetex", ..Default::default() };
    set_generic(ctx, argv.get(1), argv.get(3), &o)
}

fn getset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let o = SetOptions { get: true, command: "getset", ..Default::default() };
    set_generic(ctx, argv.get(1), argv.get(2), &o)
}

// ---- reads ----------------------------------------------------------------------------------

fn get(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    match l.read(db, &k, now) {
        Some(e) => ctx.out.bulk(string_of(&e.value)?),
        None => ctx.out.null(),
    }
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let len = match l.read(db, &k, now) {
        Some(e) => string_of(&e.value)?.len(),
        None => 0,
    };
    ctx.out.int(len as i64);
    Ok(())
}

/// MGET: every key read under one lock set, so the answer is one moment's view. A key holding
/// another type reads as null, not as an error (redis-server's rule).
fn mget(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = argv.rest(1).map(|k| engine.hashed(k)).collect();
    let mut l = engine.lock(&keys);
    ctx.out.array(keys.len());
    for k in &keys {
        match l.read(db, k, now).and_then(|e| e.value.as_str()) {
            Some(s) => ctx.out.bulk(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// The byte range GETRANGE returns for `start..=end` over a string of `len` bytes, with
/// redis-server 7.0's rules: negative indexes count from the end and are clamped to 0, `end`
/// is clamped to the last byte, and two negative indexes with `start > end` give nothing (so
/// `GETRANGE k 0 -100` of "hello" is "h", as in Redis 7.0).
pub fn substr_range(len: usize, start: i64, end: i64) -> Range<usize> {
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return 0..0;
    }
    let n = len as i64;
    let start = if start < 0 { (n + start).max(0) } else { start };
    let end = if end < 0 { (n + end).max(0) } else { end.min(n - 1) };
    if start > end {
        return 0..0;
    }
    start as usize..end as usize + 1
}

/// GETRANGE and its old name SUBSTR. The indexes are checked before the key is looked up.
fn getrange(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let start = int_arg(argv.get(2))?;
    let end = int_arg(argv.get(3))?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    match l.read(db, &k, now) {
        Some(e) => {
            let s = string_of(&e.value)?;
            ctx.out.bulk(&s[substr_range(s.len(), start, end)]);
        }
        None => ctx.out.bulk(b""),
    }
    Ok(())
}

// ---- reads that write -----------------------------------------------------------------------

fn getdel(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    match l.read(db, &k, now) {
        Some(e) => ctx.out.bulk(string_of(&e.value)?),
        None => {
            ctx.out.null();
            return Ok(());
        }
    }
    l.delete(db, &k, now);
    drop(l);
    ctx.notify(notify::GENERIC, "del", argv.get(1));
    Ok(())
}

/// GETEX: the options are parsed first, then the key is read (missing: null, whatever the
/// expire argument says), its type checked, and only then the expire time — redis-server's
/// order. An EXAT/PXAT already past deletes the key after replying with its value.
fn getex(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let x = ExtOptions::parse(argv.rest(2), ExtFor::GetEx)?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.read(db, &k, now) else {
        ctx.out.null();
        return Ok(());
    };
    let s = string_of(&e.value)?;
    let expire_at = match x.expire {
        Some((kind, arg)) => Some(parse_expire(arg, kind, now, "getex")?),
        None => None,
    };
    let had_ttl = e.expire_at().is_some();
    ctx.out.bulk(s);
    let key = k.key;
    let event = match expire_at {
        Some(t) if t <= now => {
            effects::rewrite(&[b"DEL", key]);
            l.delete(db, &k, now);
            Some("del")
        }
        Some(t) => {
            effects::rewrite(&[b"PEXPIREAT", key, t.to_string().as_bytes()]);
            l.set_expire(db, &k, Some(t), now);
            Some("expire")
        }
        None if x.persist && had_ttl => {
            effects::rewrite(&[b"PERSIST", key]);
            l.set_expire(db, &k, None, now);
            Some("persist")
        }
        None => None,
    };
    drop(l);
    if let Some(event) = event {
        ctx.notify(notify::GENERIC, event, argv.get(1));
    }
    Ok(())
}

// ---- multi-key writes -----------------------------------------------------------------------

fn mset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    mset_generic(ctx, argv, false)
}

fn msetnx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    mset_generic(ctx, argv, true)
}

/// MSET / MSETNX: all keys locked at once, so no reader sees half of it. With `nx`, nothing is
/// written if any key exists. Later pairs win over earlier ones for a repeated key.
fn mset_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, nx: bool) -> Result<(), CmdError> {
    let name = if nx { "msetnx" } else { "mset" };
    if argv.len() % 2 == 0 {
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{name}' command")));
    }
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = (1..argv.len()).step_by(2).map(|i| engine.hashed(argv.get(i))).collect();
    let mut l = engine.lock(&keys);
    if nx && keys.iter().any(|k| l.peek(db, k, now).is_some()) {
        drop(l);
        ctx.out.int(0);
        return Ok(());
    }
    for (i, k) in keys.iter().enumerate() {
        l.set(db, k, Value::Str(argv.get(2 + 2 * i).to_vec()), None, 0, false, now);
    }
    drop(l);
    for k in &keys {
        ctx.notify(notify::STRING, "set", k.key);
    }
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

// ---- in-place edits -------------------------------------------------------------------------

/// Replaces the string under `k` with what `fill` writes into the emptied buffer: in place when
/// the key exists (TTL and flags kept, CAS renewed), else as a new key without TTL. The caller
/// holds `k`'s shard and has checked that the key, if present, holds a string.
fn replace_string_locked(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64, fill: impl FnOnce(&mut Vec<u8>)) {
    if let Some(e) = l.write(db, k, now) {
        if let Some(s) = e.value.as_str_mut() {
            s.clear();
            fill(s);
        }
        // A fresh value, not an edit: redis-server stores a new `int`/`embstr` object.
        e.mc_bits &= !mc_bits::RAW_STRING;
        return;
    }
    let mut v = Vec::new();
    fill(&mut v);
    l.set(db, k, Value::Str(v), None, 0, false, now);
}

fn incr(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    incr_generic(ctx, argv.get(1), 1)
}

fn decr(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    incr_generic(ctx, argv.get(1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let by = int_arg(argv.get(2))?;
    incr_generic(ctx, argv.get(1), by)
}

fn decrby(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let by = int_arg(argv.get(2))?;
    // Negating i64::MIN overflows; redis-server has a message of its own for it.
    let by = by.checked_neg().ok_or_else(|| CmdError::err("ERR decrement would overflow"))?;
    incr_generic(ctx, argv.get(1), by)
}

/// INCR/DECR/INCRBY/DECRBY: the stored value must be a strict 64-bit integer (a missing key
/// counts as 0) and the sum must not overflow. The key keeps its TTL.
fn incr_generic(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(key);
    let mut l = engine.lock_one(&k);
    let old = match l.peek(db, &k, now) {
        Some(e) => st::parse_i64(string_of(&e.value)?).ok_or(CmdError::NotInteger)?,
        None => 0,
    };
    let new = old.checked_add(delta).ok_or(CmdError::Overflow)?;
    replace_string_locked(&mut l, db, &k, now, |s| st::push_i64(s, new));
    drop(l);
    ctx.notify(notify::STRING, "incrby", key);
    ctx.out.int(new);
    Ok(())
}

/// INCRBYFLOAT: type first, then the stored value, then the increment must parse as floats;
/// the sum (in `long double`, see `types::string::incr_by_float`) must be finite. Replies with
/// the new value as a bulk string; the key keeps its TTL.
fn incrbyfloat(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let current = match l.peek(db, &k, now) {
        Some(e) => Some(string_of(&e.value)?),
        None => None,
    };
    let new = st::incr_by_float(current, argv.get(2)).map_err(|e| match e {
        FloatIncrError::NotFloat => CmdError::NotFloat,
        FloatIncrError::NanOrInfinity => CmdError::err("ERR increment would produce NaN or Infinity"),
    })?;
    // The result, not the increment: float formatting must not be redone on replay.
    effects::rewrite(&[b"SET", k.key, &new, b"KEEPTTL"]);
    replace_string_locked(&mut l, db, &k, now, |s| s.extend_from_slice(&new));
    drop(l);
    ctx.notify(notify::STRING, "incrbyfloat", argv.get(1));
    ctx.out.bulk(&new);
    Ok(())
}

/// APPEND: creates the key when missing; otherwise the result may not exceed
/// `proto-max-bulk-len`. The configured limit is read only for results over 1 MB, and never
/// under a shard lock: the first pass checks against the 1 MB floor, and if that is exceeded
/// the lock is dropped, the limit read, and the command redone from the start.
fn append(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (key, tail) = (argv.get(1), argv.get(2));
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(key);
    let mut limit = None;
    loop {
        let mut l = engine.lock_one(&k);
        let old = match l.peek(db, &k, now) {
            Some(e) => Some(string_of(&e.value)?.len() as u64),
            None => None,
        };
        let len = match old {
            None => {
                l.set(db, &k, Value::Str(tail.to_vec()), None, 0, false, now);
                tail.len() as u64
            }
            Some(old) => {
                let total = old + tail.len() as u64;
                if total > MIN_PROTO_MAX_BULK_LEN && limit.is_none() {
                    drop(l);
                    limit = Some(max_string_len(ctx));
                    continue;
                }
                check_string_len(total, limit.unwrap_or(MIN_PROTO_MAX_BULK_LEN))?;
                if let Some(s) = l.write(db, &k, now).and_then(|e| e.value.as_str_mut()) {
                    s.extend_from_slice(tail);
                }
                total
            }
        };
        drop(l);
        ctx.notify(notify::STRING, "append", key);
        ctx.out.int(len as i64);
        return Ok(());
    }
}

/// SETRANGE: overwrites from `offset`, zero-padding a shorter (or missing) string. Order of
/// checks as redis-server: offset integer, offset >= 0, then the key: a missing key with an
/// empty patch answers 0 and creates nothing; an existing one is type-checked and, with an
/// empty patch, answers its length untouched; only then the size limit.
fn setrange(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let offset = int_arg(argv.get(2))?;
    let patch = argv.get(3);
    if offset < 0 {
        return Err(CmdError::err("ERR offset is out of range"));
    }
    let total = offset as u64 + patch.len() as u64;
    // The only size the command can reach is known up front, so the limit is read (when it
    // matters at all) before the shard is locked.
    let limit = if total > MIN_PROTO_MAX_BULK_LEN { max_string_len(ctx) } else { MIN_PROTO_MAX_BULK_LEN };
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let old = match l.peek(db, &k, now) {
        Some(e) => Some(string_of(&e.value)?.len()),
        None => None,
    };
    let len = match old {
        _ if patch.is_empty() => old.unwrap_or(0),
        None => {
            check_string_len(total, limit)?;
            let (offset, total) = (offset as usize, total as usize);
            let mut v = vec![0u8; total];
            v[offset..].copy_from_slice(patch);
            l.set(db, &k, Value::Str(v), None, 0, false, now).mc_bits |= mc_bits::RAW_STRING;
            total
        }
        Some(old) => {
            check_string_len(total, limit)?;
            let (offset, total) = (offset as usize, total as usize);
            if let Some(s) = l.write(db, &k, now).and_then(|e| e.value.as_str_mut()) {
                if s.len() < total {
                    s.resize(total, 0);
                }
                s[offset..total].copy_from_slice(patch);
            }
            old.max(total)
        }
    };
    drop(l);
    if !patch.is_empty() {
        ctx.notify(notify::STRING, "setrange", argv.get(1));
    }
    ctx.out.int(len as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a>(args: &[&'a str], cmd: ExtFor) -> Result<ExtOptions<'a>, CmdError> {
        ExtOptions::parse(args.iter().map(|a| a.as_bytes()), cmd)
    }

    #[test]
    fn set_options_combine_as_redis_allows() {
        let o = parse(&["nx", "GET", "ex", "10"], ExtFor::Set).unwrap();
        assert!(o.nx && o.get && !o.xx);
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"10"[..])));
        // Repeating an option, or the same expire form, is fine; the last value wins.
        let o = parse(&["EX", "10", "ex", "20", "NX", "nx", "get", "get"], ExtFor::Set).unwrap();
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"20"[..])));
        let o = parse(&["keepttl", "KEEPTTL", "xx"], ExtFor::Set).unwrap();
        assert!(o.keep_ttl && o.xx);
        for (opt, kind) in [("px", ExpireKind::Px), ("ExAt", ExpireKind::ExAt), ("PXAT", ExpireKind::PxAt)] {
            assert_eq!(parse(&[opt, "5"], ExtFor::Set).unwrap().expire, Some((kind, &b"5"[..])));
        }
        // The number is not looked at here.
        assert_eq!(parse(&["EX", "abc"], ExtFor::Set).unwrap().expire, Some((ExpireKind::Ex, &b"abc"[..])));
        assert_eq!(parse(&[], ExtFor::Set).unwrap(), ExtOptions::default());
    }

    #[test]
    fn set_option_conflicts_are_syntax_errors() {
        for bad in [
            &["nx", "xx"][..],
            &["xx", "nx"],
            &["ex", "10", "px", "10"],
            &["pxat", "1", "exat", "1"],
            &["keepttl", "ex", "10"],
            &["ex", "10", "keepttl"],
            &["keepttl", "px", "100"],
            &["ex"],
            &["nx", "px"],
            &["foo"],
            &["persist"],
            &["EX", "10", "bar"],
        ] {
            assert_eq!(parse(bad, ExtFor::Set), Err(CmdError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn getex_options() {
        let o = parse(&["persist", "PERSIST"], ExtFor::GetEx).unwrap();
        assert!(o.persist);
        let o = parse(&["ex", "100", "ex", "200"], ExtFor::GetEx).unwrap();
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"200"[..])));
        for bad in
            [&["persist", "ex", "10"][..], &["ex", "10", "persist"], &["keepttl"], &["nx"], &["xx"], &["get"], &["px"]]
        {
            assert_eq!(parse(bad, ExtFor::GetEx), Err(CmdError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn expire_arguments() {
        let now = 1_700_000_000_000u64;
        assert_eq!(parse_expire(b"10", ExpireKind::Ex, now, "set"), Ok(now + 10_000));
        assert_eq!(parse_expire(b"10", ExpireKind::Px, now, "set"), Ok(now + 10));
        assert_eq!(parse_expire(b"10", ExpireKind::ExAt, now, "set"), Ok(10_000));
        assert_eq!(parse_expire(b"10", ExpireKind::PxAt, now, "set"), Ok(10));
        assert_eq!(parse_expire(b"9223372036854775807", ExpireKind::PxAt, now, "set"), Ok(i64::MAX as u64));
        assert_eq!(parse_expire(b"9223372036854775", ExpireKind::ExAt, now, "set"), Ok(9_223_372_036_854_775_000));
        let invalid = |cmd: &str| Err(CmdError::err(format!("ERR invalid expire time in '{cmd}' command")));
        assert_eq!(parse_expire(b"0", ExpireKind::Ex, now, "set"), invalid("set"));
        assert_eq!(parse_expire(b"-1", ExpireKind::Px, now, "psetex"), invalid("psetex"));
        assert_eq!(parse_expire(b"9223372036854776", ExpireKind::ExAt, now, "set"), invalid("set"));
        // Fits after * 1000 but not once now is added.
        assert_eq!(parse_expire(b"9223372036854775", ExpireKind::Ex, now, "getex"), invalid("getex"));
        assert_eq!(parse_expire(b"9223372036854775807", ExpireKind::Px, now, "set"), invalid("set"));
        assert_eq!(parse_expire(b"1.5", ExpireKind::Ex, now, "set"), Err(CmdError::NotInteger));
        assert_eq!(parse_expire(b"abc", ExpireKind::Ex, now, "set"), Err(CmdError::NotInteger));
    }

    #[test]
    fn expire_kind_conversions_for_the_expire_family() {
        let now = 1000u64;
        assert_eq!(ExpireKind::Ex.to_unix_ms(-5, now), Some(-4000));
        assert_eq!(ExpireKind::ExAt.to_unix_ms(i64::MIN / 1000, now), Some(i64::MIN / 1000 * 1000));
        assert_eq!(ExpireKind::ExAt.to_unix_ms(i64::MIN / 1000 - 1, now), None);
        assert_eq!(ExpireKind::Px.to_unix_ms(i64::MAX - 1000, now), Some(i64::MAX));
        assert_eq!(ExpireKind::Px.to_unix_ms(i64::MAX - 999, now), None);
        assert_eq!(ExpireKind::from_option(b"pXaT"), Some(ExpireKind::PxAt));
        assert_eq!(ExpireKind::from_option(b"EXA"), None);
    }

    #[test]
    fn getrange_indexes_as_redis_7_0() {
        let r = |start, end| {
            let range = substr_range(5, start, end);
            String::from_utf8(b"hello"[range].to_vec()).unwrap()
        };
        assert_eq!(r(0, -1), "hello");
        assert_eq!(r(0, -100), "h");
        assert_eq!(r(-1, -5), "");
        assert_eq!(r(-100, -1), "hello");
        assert_eq!(r(3, 100), "lo");
        assert_eq!(r(10, 20), "");
        assert_eq!(r(4, 3), "");
        assert_eq!(r(1, 2), "el");
        assert_eq!(r(i64::MIN, i64::MAX), "hello");
        assert_eq!(substr_range(0, 0, -1), 0..0);
    }

    #[test]
    fn string_length_limit() {
        assert!(check_string_len(512 << 20, 512 << 20).is_ok());
        assert_eq!(
            check_string_len((512 << 20) + 1, 512 << 20),
            Err(CmdError::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
        );
    }

    #[test]
    fn table_matches_redis_command_info() {
        let find = |n: &str| COMMANDS.iter().find(|s| s.name == n).unwrap();
        assert_eq!(COMMANDS.len(), 21);
        let mset = find("mset");
        assert_eq!((mset.arity, mset.first_key, mset.last_key, mset.step), (-3, 1, -1, 2));
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(find("mget").key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(find("get").has(READONLY | FAST) && !find("get").has(WRITE));
        assert!(find("getex").has(WRITE) && !find("getex").has(DENYOOM));
        assert!(COMMANDS.iter().all(|s| s.group == "string"));
    }
}
