//! Generic keyspace commands: DEL UNLINK EXISTS TYPE TOUCH KEYS SCAN RANDOMKEY RENAME RENAMENX
//! COPY MOVE SWAPDB DBSIZE FLUSHDB FLUSHALL, and the TTL family EXPIRE PEXPIRE EXPIREAT PEXPIREAT
//! TTL PTTL EXPIRETIME PEXPIRETIME PERSIST.
//!
//! Variant commands share one body each, as redis-server's `expireGenericCommand`,
//! `ttlGenericCommand` and `renameGenericCommand` do: `expire_generic` takes the time unit and
//! base, `ttl_generic` the output unit and whether the time is absolute, `rename_generic`
//! whether the destination must be free. Option parsing ([`ExpireFlags::parse`],
//! [`ScanOpts::parse`], [`parse_cursor`]) is kept apart from execution and unit-tested on its own.
//!
//! Semantics and error strings follow redis-server 7.0.15, checked side by side against it. Keys
//! whose TTL has passed but that no cycle has reclaimed yet are invisible everywhere here: KEYS,
//! SCAN, RANDOMKEY and DBSIZE skip them, single-key lookups reclaim them.
//!
//! Locking: a command over known keys locks all their shards at once ([`Engine::lock`], ascending
//! shard order), so RENAME/COPY are atomic; commands over a whole database or all of them
//! (FLUSHDB, FLUSHALL, SWAPDB) lock every shard. KEYS, DBSIZE, SCAN and RANDOMKEY visit one shard
//! at a time, so — unlike single-threaded redis-server's — a KEYS or DBSIZE answer is not a
//! snapshot of one instant (a write that lands meanwhile in a shard already visited is not seen);
//! in exchange clients on the other shards keep running during a long KEYS.
//!
//! One deliberate difference: redis-server's DBSIZE also counts expired keys its expiry cycle has
//! not reclaimed yet; here DBSIZE counts live keys only, like KEYS.

use super::arg::*;
use super::flags::*;
use super::strings::{invalid_expire, ExpireKind};
use super::{container, excerpt, int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::effects;
use crate::engine::{mc_bits, Db, Engine, Hashed, Locked, DATABASES};
use crate::glob::glob_match;
use crate::types::Kind;

/// This family's table entries, one line per command (kept unwrapped so the table reads as one).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).", "Delete a key", del).args(KEYS),
    spec("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", del).args(KEYS),
    spec("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", "O(N) where N is the number of keys to check.", "Determine if a key exists", exists).args(KEYS),
    spec("type", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "O(1)", "Determine the type stored at key", type_).args(ONE_KEY),
    spec("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "Alters the last access time of a key(s). Returns the number of existing keys specified.", touch).args(KEYS),
    spec("keys", 2, READONLY, (0, 0, 0), "generic", "1.0.0", "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.", "Find all keys matching the given pattern", keys).args(&[pattern("pattern")]),
    spec("scan", -2, READONLY, (0, 0, 0), "generic", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", "Incrementally iterate the keys space", scan).args(SCAN_ARGS),
    spec("randomkey", 1, READONLY, (0, 0, 0), "generic", "1.0.0", "O(1)", "Return a random key from the keyspace", randomkey),
    spec("rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", "O(1)", "Rename a key", rename).args(RENAME_ARGS),
    spec("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", "O(1)", "Rename a key, only if the new key does not exist", renamenx).args(RENAME_ARGS),
    spec("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "Copy a key", copy).args(COPY_ARGS),
    spec("move", 3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", "O(1)", "Move a key to another database", move_).args(&[key("key"), integer("db")]),
    spec("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", "4.0.0", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "Swaps two Redis databases", swapdb).args(&[integer("index1"), integer("index2")]),
    spec("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", "O(1)", "Return the number of keys in the selected database", dbsize),
    spec("flushdb", -1, WRITE, (0, 0, 0), "server", "1.0.0", "O(N) where N is the number of keys in the selected database", "Remove all keys from the current database", flushdb).args(FLUSH_ARGS),
    spec("flushall", -1, WRITE, (0, 0, 0), "server", "1.0.0", "O(N) where N is the total number of keys in all databases", "Remove all keys from all databases", flushall).args(FLUSH_ARGS),
    spec("expire", -3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", "O(1)", "Set a key's time to live in seconds", expire).args(&[key("key"), integer("seconds"), EXPIRE_CONDITION]),
    spec("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "O(1)", "Set a key's time to live in milliseconds", pexpire).args(&[key("key"), integer("milliseconds"), EXPIRE_CONDITION]),
    spec("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "1.2.0", "O(1)", "Set the expiration for a key as a UNIX timestamp", expireat).args(&[key("key"), unix_time("unix-time-seconds"), EXPIRE_CONDITION]),
    spec("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "O(1)", "Set the expiration for a key as a UNIX timestamp specified in milliseconds", pexpireat).args(&[key("key"), unix_time("unix-time-milliseconds"), EXPIRE_CONDITION]),
    spec("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "O(1)", "Get the time to live for a key in seconds", ttl).args(ONE_KEY),
    spec("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", "2.6.0", "O(1)", "Get the time to live for a key in milliseconds", pttl).args(ONE_KEY),
    spec("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key", expiretime).args(ONE_KEY),
    spec("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key in milliseconds", pexpiretime).args(ONE_KEY),
    spec("mcflags", 3, WRITE | FAST, (1, 1, 1), "generic", "7.0.0", "O(1)", "cachette extension: sets the memcached client flags of a string key (the AOF replays memcached items with it)", mcflags).args(&[key("key"), integer("flags")]),
    spec("persist", 2, WRITE | FAST, (1, 1, 1), "generic", "2.2.0", "O(1)", "Remove the expiration from a key", persist).args(ONE_KEY),
    container("object", -2, "generic", "2.2.3", "A container for object introspection commands", OBJECT_SUBS),
];

#[rustfmt::skip]
const OBJECT_SUBS: &[Spec] = &[
    spec("object|encoding", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "O(1)", "Inspect the internal encoding of a Redis object", object_encoding).args(ONE_KEY),
    spec("object|freq", 3, READONLY, (2, 2, 1), "generic", "4.0.0", "O(1)", "Get the logarithmic access frequency counter of a Redis object", object_freq).args(ONE_KEY),
    spec("object|idletime", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "O(1)", "Get the time since a Redis object was last accessed", object_idletime).args(ONE_KEY),
    spec("object|refcount", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "O(1)", "Get the number of references to the value of the key", object_refcount).args(ONE_KEY),
    spec("object|help", 2, LOADING | STALE, (0, 0, 0), "generic", "6.2.0", "O(1)", "Show helpful text about the different subcommands", object_help),
];

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
const SCAN_ARGS: &[Arg] = &[
    integer("cursor"),
    pattern("pattern").token("MATCH").optional(),
    integer("count").token("COUNT").optional(),
    string("type").token("TYPE").since("6.0.0").optional(),
];

/// `RENAME key newkey`
const RENAME_ARGS: &[Arg] = &[key("key"), key("newkey").key_spec(1)];

/// `COPY source destination [DB destination-db] [REPLACE]`
const COPY_ARGS: &[Arg] = &[
    key("source"),
    key("destination").key_spec(1),
    integer("destination-db").token("DB").optional(),
    pure("REPLACE").optional(),
];

/// `FLUSHDB [ASYNC|SYNC]`
const FLUSH_ARGS: &[Arg] = &[oneof("async", &[pure("ASYNC").since("4.0.0"), pure("SYNC").since("6.2.0")]).optional()];

/// `[NX|XX|GT|LT]` of EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
const EXPIRE_CONDITION: Arg =
    oneof("condition", &[pure("NX"), pure("XX"), pure("GT"), pure("LT")]).since("7.0.0").optional();

// ---- shared helpers ---------------------------------------------------------------------

/// Number of databases clients may address (SELECT, MOVE, COPY DB, SWAPDB).
fn databases(ctx: &Ctx<'_>) -> usize {
    ctx.shared.config().databases.min(DATABASES)
}

/// Parses a C `int` argument as redis-server's `getIntFromObjectOrReply` does: `msg` (when
/// given) replaces both the not-an-integer and the out-of-range error.
fn int32_arg(a: &[u8], msg: Option<&'static str>) -> Result<i32, CmdError> {
    let v = int_arg(a).map_err(|e| msg.map_or(e, CmdError::err))?;
    i32::try_from(v).map_err(|_| {
        CmdError::err(msg.unwrap_or("ERR value is out of range, value must between -2147483648 and 2147483647"))
    })
}

/// A database index argument (MOVE, COPY … DB): an `int`, then within the configured count.
fn db_index_arg(ctx: &Ctx<'_>, a: &[u8]) -> Result<usize, CmdError> {
    let db = int32_arg(a, None)?;
    usize::try_from(db).ok().filter(|&d| d < databases(ctx)).ok_or(CmdError::DbIndex)
}

/// Locks the shards of `keys`: the one-key case skips the sort `Engine::lock` does.
fn lock_keys<'e>(engine: &'e Engine, keys: &[Hashed<'_>]) -> Locked<'e> {
    match keys {
        [k] => engine.lock_one(k),
        _ => engine.lock(keys),
    }
}

/// Hashes every argument from position 1 on (the multi-key commands' keys).
fn hashed_keys<'a>(engine: &Engine, argv: &Argv<'a>) -> Vec<Hashed<'a>> {
    argv.rest(1).map(|k| engine.hashed(k)).collect()
}

/// Keys gathered for a KEYS or SCAN reply, in one flat buffer (one allocation, not one per key).
#[derive(Default)]
struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyList {
    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    fn reply(&self, ctx: &mut Ctx<'_>) {
        ctx.out.array(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            ctx.out.bulk(&self.bytes[start..end]);
            start = end;
        }
    }
}

/// The single database part a `lock_index` guard holds.
fn only_db<'l>(l: &'l mut Locked<'_>, db: usize) -> &'l mut Db {
    l.dbs(db).next().expect("lock_index holds one shard")
}

// ---- DEL UNLINK EXISTS TYPE TOUCH -------------------------------------------------------

/// DEL key [key ...] and UNLINK: the number of keys removed, a repeated key counting once.
/// UNLINK frees inline too: with strings only, a drop is one deallocation; handing large
/// collections to a background thread belongs with the collection types.
fn del(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let keys = hashed_keys(engine, argv);
    let mut l = lock_keys(engine, &keys);
    let deleted: Vec<&Hashed<'_>> = keys.iter().filter(|k| l.delete(db, k, now)).collect();
    drop(l);
    for k in &deleted {
        ctx.notify(notify::GENERIC, "del", k.key);
    }
    ctx.out.int(deleted.len() as i64);
    Ok(())
}

/// EXISTS key [key ...]: counts every argument that names a live key, repeats included.
fn exists(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let keys = hashed_keys(engine, argv);
    let mut l = lock_keys(engine, &keys);
    let n = keys.iter().filter(|k| l.read(db, k, now).is_some()).count();
    drop(l);
    ctx.out.int(n as i64);
    Ok(())
}

/// TOUCH key [key ...]: counts the live keys named, like EXISTS; each lookup (`Locked::read`)
/// also marks its key as just used, which is TOUCH's point.
fn touch(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    exists(ctx, argv)
}

/// TYPE key: the type name as a status reply, `none` for a missing key.
fn type_(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let name = engine.lock_one(&k).read(db, &k, now).map_or("none", |e| e.value.kind().name());
    ctx.out.simple(name.as_bytes());
    Ok(())
}

// ---- KEYS SCAN RANDOMKEY DBSIZE ---------------------------------------------------------

/// KEYS pattern. Walks every shard's slab once; `*` matches everything without calling the
/// matcher (so, as in Redis, it also returns the empty key, which the glob `*` would not match).
fn keys(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let pattern = argv.get(1);
    let all = pattern == b"*";
    let mut found = KeyList::default();
    engine.for_each_shard(db, |_, d| {
        d.scan(0, usize::MAX, now, |e| {
            if all || glob_match(pattern, e.key(), false) {
                found.push(e.key());
            }
        });
    });
    found.reply(ctx);
    Ok(())
}

/// [`parse_cursor`] with redis-server's error for a bad cursor: every SCAN-family command uses it.
pub fn cursor_arg(arg: &[u8]) -> Result<u64, CmdError> {
    parse_cursor(arg).ok_or_else(|| CmdError::err("ERR invalid cursor"))
}

/// The reply of HSCAN/SSCAN/ZSCAN on a missing key: cursor 0 and no elements.
pub fn empty_scan_page(out: &mut cachette_resp::Encoder<'_>) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

/// Parses a SCAN cursor as redis-server does, with C's `strtoul`: no leading white space, an
/// optional sign (a minus negates modulo 2^64, so `-1` is the largest cursor), digits, nothing
/// after them. The empty string is cursor 0, and the argument ends at a NUL byte, as a C string
/// would. None on a malformed or out-of-range cursor (see [`cursor_arg`]).
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = arg.split(|&b| b == 0).next().unwrap_or_default();
    let Some(&first) = s.first() else {
        return Some(0);
    };
    if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, digits) = match first {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor layout. The low `shard_bits` bits name the shard (the shard count is a power of
/// two), the bits above them the slab slot of that shard's part of the database to resume at:
///
/// ```text
///   cursor = (slot << shard_bits) | shard
/// ```
///
/// A scan walks shard 0 from slot 0 — cursor 0 — then each shard's slab in slot order, then the
/// next shard, and answers 0 after the last shard. Slab slots never move while their key lives,
/// so a key present for the whole scan is returned (possibly twice, if it is deleted and
/// re-inserted into an earlier slot). (Slot 0 of shard 0 is only ever the start: a resumed
/// position always has slot ≥ 1 there.)
pub fn encode_cursor(shard: usize, slot: usize, shard_bits: u32) -> u64 {
    ((slot as u64) << shard_bits) | shard as u64
}

/// Splits a cursor into (shard, slot); see [`encode_cursor`]. Any u64 decodes: a cursor past the
/// end of a shard's slab just moves on to the next shard.
pub fn decode_cursor(cursor: u64, shard_bits: u32) -> (usize, usize) {
    let mask = (1u64 << shard_bits) - 1;
    ((cursor & mask) as usize, usize::try_from(cursor >> shard_bits).unwrap_or(usize::MAX))
}

/// SCAN's options: `[MATCH pattern] [COUNT count] [TYPE type]`, each may repeat (the last wins).
#[derive(Debug, PartialEq, Eq)]
pub struct ScanOpts<'a> {
    /// Glob the keys must match; None also for `*`, which matches everything.
    pub pattern: Option<&'a [u8]>,
    /// About how many entries to visit this call.
    pub count: usize,
    /// `Some(None)`: a TYPE no value has, so nothing matches (redis-server 7.0 answers an empty
    /// page rather than an error for an unknown type name).
    pub kind: Option<Option<Kind>>,
}

impl<'a> ScanOpts<'a> {
    /// Parses the arguments after the cursor.
    pub fn parse(args: &[&'a [u8]]) -> Result<ScanOpts<'a>, CmdError> {
        let mut o = ScanOpts { pattern: None, count: 10, kind: None };
        let mut i = 0;
        while i < args.len() {
            let (opt, has_value) = (args[i], i + 1 < args.len());
            if is(opt, "COUNT") && has_value {
                let n = int_arg(args[i + 1])?;
                if n < 1 {
                    return Err(CmdError::Syntax);
                }
                o.count = usize::try_from(n).unwrap_or(usize::MAX);
            } else if is(opt, "MATCH") && has_value {
                let p = args[i + 1];
                o.pattern = (p != b"*").then_some(p);
            } else if is(opt, "TYPE") && has_value {
                o.kind = Some(Kind::from_name(args[i + 1]));
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
        Ok(o)
    }
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. Visits about COUNT entries per call,
/// moving on to the next shard within the same call while budget is left, so a small database
/// is returned in one page; the filters apply after the visit (a page may be empty while the
/// cursor is not 0, as in Redis).
fn scan(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let cursor = cursor_arg(argv.get(1))?;
    let args: Vec<&[u8]> = argv.rest(2).collect();
    let opts = ScanOpts::parse(&args)?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let shards = engine.shard_count();
    let bits = shards.trailing_zeros();
    let (mut shard, mut slot) = decode_cursor(cursor, bits);
    let mut budget = opts.count;
    let mut found = KeyList::default();
    let next = loop {
        let mut visited = 0usize;
        let mut l = engine.lock_index(shard);
        let resume = only_db(&mut l, db).scan(slot, budget, now, |e| {
            visited += 1;
            let type_ok = opts.kind.map_or(true, |k| k == Some(e.value.kind()));
            if type_ok && opts.pattern.map_or(true, |p| glob_match(p, e.key(), false)) {
                found.push(e.key());
            }
        });
        drop(l);
        if let Some(s) = resume {
            break encode_cursor(shard, s, bits);
        }
        shard += 1;
        if shard == shards {
            break 0;
        }
        slot = 0;
        budget = budget.saturating_sub(visited);
        if budget == 0 {
            break encode_cursor(shard, 0, bits);
        }
    };
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    found.reply(ctx);
    Ok(())
}

/// RANDOMKEY: picks a shard with probability proportional to its key count (one short lock per
/// shard to read the counts), then a random live key in it; if that shard has emptied meanwhile
/// or holds only expired keys, the following shards are tried in turn.
fn randomkey(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let mut sizes = Vec::with_capacity(engine.shard_count());
    engine.for_each_shard(db, |_, d| sizes.push(d.len()));
    let total: usize = sizes.iter().sum();
    let mut key = None;
    if total > 0 {
        use std::hash::BuildHasher;
        // A fresh RandomState is seeded from a per-thread key that changes on every call.
        let r = (std::collections::hash_map::RandomState::new().hash_one(now) % total as u64) as usize;
        let mut acc = 0;
        let start = sizes.iter().position(|&n| {
            acc += n;
            acc > r
        });
        let start = start.unwrap_or(0);
        for off in 0..sizes.len() {
            let mut l = engine.lock_index((start + off) % sizes.len());
            if let Some(e) = only_db(&mut l, db).random_entry(now) {
                key = Some(e.key().to_vec());
                break;
            }
        }
    }
    match key {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

/// DBSIZE counts every stored key, including ones whose TTL passed but that neither a read nor
/// the active cycle has reclaimed yet — exactly what redis-server counts, and O(shards).
fn dbsize(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let n = ctx.engine().dbsize(ctx.session.db);
    ctx.out.int(n as i64);
    Ok(())
}

// ---- RENAME RENAMENX COPY MOVE ----------------------------------------------------------

fn rename(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    rename_generic(ctx, argv, true)
}

/// RENAME key newkey (`nx` false: replies OK, replaces newkey) and RENAMENX (`nx` true: replies 1,
/// or 0 leaving both keys alone when newkey exists). The entry moves whole — value, TTL and
/// memcached flags; a missing source is "ERR no such key" even when both names are the same,
/// and renaming an existing key to itself changes nothing (OK, or 0 for RENAMENX).
fn rename_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, nx: bool) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let (src, dst) = (engine.hashed(argv.get(1)), engine.hashed(argv.get(2)));
    let mut l = engine.lock(&[src, dst]);
    if l.peek(db, &src, now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    // Renaming a key to itself, or RENAMENX onto a taken name, leaves everything as it is.
    let done = if src.key == dst.key || (nx && l.peek(db, &dst, now).is_some()) {
        false
    } else {
        let entry = l.take(db, &src, now).expect("looked up under the same lock");
        l.put(db, &dst, entry, now);
        true
    };
    drop(l);
    if done {
        ctx.notify(notify::GENERIC, "rename_from", src.key);
        ctx.notify(notify::GENERIC, "rename_to", dst.key);
    }
    if nx {
        ctx.out.int(i64::from(done));
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// COPY source destination [DB destination-db] [REPLACE]: the copy keeps the source's TTL and
/// memcached flags. 1 when copied, 0 when the source is missing or the destination exists
/// without REPLACE. Options are checked in order, the first bad one answers.
fn copy(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let src_db = ctx.session.db;
    let (mut dst_db, mut replace) = (src_db, false);
    let mut i = 3;
    while i < argv.len() {
        let opt = argv.get(i);
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "DB") && i + 1 < argv.len() {
            dst_db = db_index_arg(ctx, argv.get(i + 1))?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if src_db == dst_db && argv.get(1) == argv.get(2) {
        return Err(CmdError::err("ERR source and destination objects are the same"));
    }
    let (engine, now) = (ctx.engine(), ctx.now);
    let (src, dst) = (engine.hashed(argv.get(1)), engine.hashed(argv.get(2)));
    let mut l = engine.lock(&[src, dst]);
    let found = l.read(src_db, &src, now).map(|e| (e.value.clone(), e.expire_at(), e.flags, e.mc_bits));
    let copied = match found {
        Some((value, expire_at, flags, bits)) if replace || l.peek(dst_db, &dst, now).is_none() => {
            l.set(dst_db, &dst, value, expire_at, flags, false, now).mc_bits |= bits & mc_bits::RAW_STRING;
            true
        }
        _ => false,
    };
    drop(l);
    if copied {
        ctx.notify_in(notify::GENERIC, "copy_to", dst_db, dst.key);
    }
    ctx.out.int(i64::from(copied));
    Ok(())
}

/// MOVE key db: moves the entry whole (TTL and flags) to another database; 0 when the key is
/// missing or already exists there. A key's shard is the same in every database, so one lock.
fn move_(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let src_db = ctx.session.db;
    let dst_db = db_index_arg(ctx, argv.get(2))?;
    if dst_db == src_db {
        return Err(CmdError::err("ERR source and destination objects are the same"));
    }
    let (engine, now) = (ctx.engine(), ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let moved = l.peek(src_db, &k, now).is_some() && l.peek(dst_db, &k, now).is_none();
    if moved {
        let entry = l.take(src_db, &k, now).expect("looked up under the same lock");
        l.put(dst_db, &k, entry, now);
    }
    drop(l);
    if moved {
        ctx.notify_in(notify::GENERIC, "move_from", src_db, k.key);
        ctx.notify_in(notify::GENERIC, "move_to", dst_db, k.key);
    }
    ctx.out.int(i64::from(moved));
    Ok(())
}

// ---- SWAPDB FLUSHDB FLUSHALL ------------------------------------------------------------

/// SWAPDB index1 index2: every shard swaps its two database parts under `lock_all`, so clients
/// see the swap happen at once. Connections keep their selected index and so see the other data.
fn swapdb(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let a = int32_arg(argv.get(1), Some("ERR invalid first DB index"))?;
    let b = int32_arg(argv.get(2), Some("ERR invalid second DB index"))?;
    let n = databases(ctx);
    let index = |d: i32| usize::try_from(d).ok().filter(|&d| d < n);
    let (Some(a), Some(b)) = (index(a), index(b)) else {
        return Err(CmdError::DbIndex);
    };
    if a != b {
        ctx.engine().lock_all().swap_dbs(a, b, ctx.now);
        ctx.engine().stats.dirty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    ctx.out.ok();
    Ok(())
}

/// FLUSHDB/FLUSHALL take at most one argument, SYNC or ASYNC. Both free inline here: clearing a
/// shard drops its slab and index in one go, which is quick next to what ASYNC saves in Redis.
fn parse_flush_mode(argv: &Argv<'_>) -> Result<(), CmdError> {
    match argv.len() {
        1 => Ok(()),
        2 if is(argv.get(1), "SYNC") || is(argv.get(1), "ASYNC") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

/// Empties `dbs` (database indexes) atomically under one `lock_all`; returns keys removed.
fn flush(engine: &Engine, dbs: std::ops::Range<usize>) -> usize {
    let mut l = engine.lock_all();
    // Logged even when there was nothing to remove, as redis-server propagates every flush.
    crate::engine::effects::wrote();
    let mut removed = 0;
    for db in dbs {
        for d in l.dbs(db) {
            removed += d.len();
            d.clear();
        }
    }
    drop(l);
    engine.stats.dirty.fetch_add(removed as u64, std::sync::atomic::Ordering::Relaxed);
    removed
}

/// FLUSHDB [ASYNC|SYNC]: empties the selected database.
fn flushdb(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    parse_flush_mode(argv)?;
    let db = ctx.session.db;
    flush(ctx.engine(), db..db + 1);
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC|SYNC]: empties every database (all the engine has, not just the configured
/// count, so nothing survives a later CONFIG change), then stops a background save and, with
/// save points set, saves the empty dataset (see [`crate::persist::after_flushall`]).
fn flushall(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    parse_flush_mode(argv)?;
    flush(ctx.engine(), 0..DATABASES);
    crate::persist::after_flushall(ctx.shared);
    ctx.out.ok();
    Ok(())
}

// ---- EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST ------------------------------------------

/// The NX / XX / GT / LT conditions of the EXPIRE family (Redis 7.0).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireFlags {
    /// Set only when the key has no TTL.
    pub nx: bool,
    /// Set only when the key has a TTL.
    pub xx: bool,
    /// Set only when the new expiry is later than the current one (no TTL counts as infinite).
    pub gt: bool,
    /// Set only when the new expiry is earlier than the current one (no TTL counts as infinite).
    pub lt: bool,
}

impl ExpireFlags {
    /// Parses the options after the time, as `parseExtendedExpireArgumentsOrReply`: any order,
    /// repeats allowed; an unknown word is refused first, then NX with any other, then GT with LT.
    pub fn parse<'a>(args: impl Iterator<Item = &'a [u8]>) -> Result<ExpireFlags, CmdError> {
        let mut f = ExpireFlags::default();
        for a in args {
            if is(a, "NX") {
                f.nx = true;
            } else if is(a, "XX") {
                f.xx = true;
            } else if is(a, "GT") {
                f.gt = true;
            } else if is(a, "LT") {
                f.lt = true;
            } else {
                // Redis formats the option as a C string: it ends at a NUL byte.
                let opt = a.split(|&b| b == 0).next().unwrap_or_default();
                return Err(CmdError::err(format!("ERR Unsupported option {}", excerpt(opt, opt.len()))));
            }
        }
        if f.nx && (f.xx || f.gt || f.lt) {
            return Err(CmdError::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
        }
        if f.gt && f.lt {
            return Err(CmdError::err("ERR GT and LT options at the same time are not compatible"));
        }
        Ok(f)
    }

    /// Whether a new absolute expiry `when` may replace `current` (None: the key has no TTL).
    pub fn allows(self, current: Option<i64>, when: i64) -> bool {
        match current {
            None => !(self.xx || self.gt),
            Some(cur) => !(self.nx || (self.gt && when <= cur) || (self.lt && when >= cur)),
        }
    }
}

fn expire(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, argv, "expire", ExpireKind::Ex)
}

fn pexpire(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, argv, "pexpire", ExpireKind::Px)
}

fn expireat(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, argv, "expireat", ExpireKind::ExAt)
}

fn pexpireat(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, argv, "pexpireat", ExpireKind::PxAt)
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT], told apart by the time's
/// unit and base (`kind`, shared with SET's EX/PX/EXAT/PXAT). Checks in redis-server's order:
/// options, the integer, overflow of the unit conversion and of adding now; then 0 for a missing
/// key or an unmet condition. Negative times are allowed: a time at or before now deletes the
/// key and answers 1.
fn expire_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, name: &str, kind: ExpireKind) -> Result<(), CmdError> {
    let flags = ExpireFlags::parse(argv.rest(3))?;
    let t = int_arg(argv.get(2))?;
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let when = kind.to_unix_ms(t, now).ok_or_else(|| invalid_expire(name))?;
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let (done, event) = match l.peek(db, &k, now) {
        None => (false, ""),
        Some(e) => {
            let current = e.expire_at().map(|t| i64::try_from(t).unwrap_or(i64::MAX));
            if !flags.allows(current, when) {
                (false, "")
            } else if when <= now as i64 {
                // Logged as redis-server propagates it: the deletion, and an absolute time
                // for the others, so replay at any later time gives the same key.
                effects::rewrite(&[b"DEL", k.key]);
                (l.delete(db, &k, now), "del")
            } else {
                effects::rewrite(&[b"PEXPIREAT", k.key, when.to_string().as_bytes()]);
                (l.set_expire(db, &k, Some(when as u64), now), "expire")
            }
        }
    };
    drop(l);
    // redis-server announces a deletion before the reply and a new TTL after it.
    if done && event == "del" {
        ctx.notify(notify::GENERIC, event, k.key);
    } else if done {
        ctx.notify_after(notify::GENERIC, event, k.key);
    }
    ctx.out.int(i64::from(done));
    Ok(())
}

/// MCFLAGS key flags: cachette's own command, so that an AOF (or a replica) rebuilds a
/// memcached item's client flags; 1 when the key is a string, else 0.
fn mcflags(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let flags = crate::types::string::parse_u64(argv.get(2))
        .and_then(|f| u32::try_from(f).ok())
        .ok_or_else(|| CmdError::err("ERR flags must be an integer between 0 and 4294967295"))?;
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let set = match l.peek(db, &k, now) {
        Some(e) if matches!(e.value, crate::types::Value::Str(_)) => {
            if e.flags != flags {
                e.flags = flags;
                crate::engine::effects::wrote();
            }
            true
        }
        _ => false,
    };
    drop(l);
    ctx.out.int(i64::from(set));
    Ok(())
}

/// PERSIST key: 1 when a TTL was removed, 0 when the key is missing or had none.
fn persist(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let had_ttl = l.peek(db, &k, now).is_some_and(|e| e.expire_at().is_some());
    if had_ttl {
        l.set_expire(db, &k, None, now);
    }
    drop(l);
    if had_ttl {
        ctx.notify(notify::GENERIC, "persist", k.key);
    }
    ctx.out.int(i64::from(had_ttl));
    Ok(())
}

// ---- TTL PTTL EXPIRETIME PEXPIRETIME ----------------------------------------------------

/// What a TTL-family command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TtlOutput {
    /// Milliseconds (PTTL, PEXPIRETIME) rather than seconds, rounded to nearest.
    ms: bool,
    /// The absolute unix time (EXPIRETIME, PEXPIRETIME) rather than the time left.
    absolute: bool,
}

fn ttl(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, argv, TtlOutput { ms: false, absolute: false })
}

fn pttl(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, argv, TtlOutput { ms: true, absolute: false })
}

fn expiretime(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, argv, TtlOutput { ms: false, absolute: true })
}

fn pexpiretime(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, argv, TtlOutput { ms: true, absolute: true })
}

/// The reply of a TTL-family command for a key whose expiry is `expire_at` (None: no TTL);
/// -1 without a TTL, never below 0 otherwise. Seconds round to nearest, as `(ms + 500) / 1000`
/// in redis-server (computed wide, so the largest expiry does not overflow).
fn ttl_reply(expire_at: Option<u64>, out: TtlOutput, now: u64) -> i64 {
    let Some(at) = expire_at else {
        return -1;
    };
    let at = i128::from(at);
    let ms = if out.absolute { at } else { (at - i128::from(now)).max(0) };
    let v = if out.ms { ms } else { (ms + 500) / 1000 };
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME key: -2 for a missing key, -1 without a TTL.
fn ttl_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, out: TtlOutput) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let k = engine.hashed(argv.get(1));
    let found = engine.lock_one(&k).read(db, &k, now).map(|e| e.expire_at());
    ctx.out.int(found.map_or(-2, |at| ttl_reply(at, out, now)));
    Ok(())
}

/// The options of HSCAN, SSCAN and ZSCAN (`[MATCH pattern] [COUNT count]`, from argument 3):
/// the pattern (None for `*`, which matches everything) and the count (default 10, at least 1,
/// else a syntax error as redis-server answers).
pub fn element_scan_options<'a>(argv: &Argv<'a>) -> Result<(Option<&'a [u8]>, usize), CmdError> {
    let (mut pattern, mut count) = (None, 10usize);
    let mut i = 3;
    while i < argv.len() {
        let (opt, has_value) = (argv.get(i), i + 1 < argv.len());
        if is(opt, "COUNT") && has_value {
            let n = int_arg(argv.get(i + 1))?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(opt, "MATCH") && has_value {
            let p = argv.get(i + 1);
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok((pattern, count))
}

// ---- OBJECT ------------------------------------------------------------------------------

/// Runs `f` on the entry of `argv[2]` without touching its access time (OBJECT must not change
/// what it reports), or replies nil for a missing key as redis-server does.
fn with_object(
    ctx: &mut Ctx<'_>,
    argv: &Argv<'_>,
    f: impl FnOnce(&mut Ctx<'_>, &crate::engine::Entry),
) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(2));
    let mut l = engine.lock_one(&k);
    match l.peek(db, &k, now) {
        Some(e) => f(ctx, e),
        None => ctx.out.null(),
    }
    Ok(())
}

/// The encoding redis-server would report for a string: `int` for a canonical 64-bit integer,
/// `embstr` up to 44 bytes, `raw` beyond, and `raw` for any string edited in place (APPEND,
/// SETRANGE, SETBIT, PFADD …: the entry's [`mc_bits::RAW_STRING`]), as redis-server unshares
/// such a string into a raw sds.
pub(super) fn string_encoding(v: &[u8], bits: u8) -> &'static str {
    if bits & mc_bits::RAW_STRING != 0 {
        "raw"
    } else if v.len() <= 20 && crate::types::string::parse_i64(v).is_some() {
        "int"
    } else if v.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

fn object_encoding(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    use crate::types::Value;
    with_object(ctx, argv, |ctx, e| {
        let name = match &e.value {
            Value::Str(s) => string_encoding(s, e.mc_bits),
            Value::List(v) => v.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
        };
        ctx.out.bulk(name.as_bytes());
    })
}

/// OBJECT FREQ and IDLETIME answer a missing key with a null first, as redis-server looks the key
/// up before it checks which of the two the policy tracks.
fn object_exists(ctx: &Ctx<'_>, argv: &Argv<'_>) -> bool {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(2));
    let found = engine.lock_one(&k).peek(db, &k, now).is_some();
    found
}

const NOT_TRACKED: &str =
    "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn object_freq(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let limits = &ctx.engine().limits;
    if object_exists(ctx, argv) && !limits.tracks_lfu() {
        return Err(CmdError::err(format!(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. {NOT_TRACKED}"
        )));
    }
    let now = ctx.now;
    with_object(ctx, argv, |ctx, e| ctx.out.int(i64::from(limits.lfu_decayed(e, now))))
}

fn object_idletime(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if object_exists(ctx, argv) && ctx.engine().limits.tracks_lfu() {
        return Err(CmdError::err(format!(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. {NOT_TRACKED}"
        )));
    }
    let now_secs = ctx.now / 1000;
    with_object(ctx, argv, |ctx, e| ctx.out.int(now_secs.saturating_sub(u64::from(e.lru)) as i64))
}

fn object_refcount(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    with_object(ctx, argv, |ctx, e| {
        // redis-server shares one object for each integer 0..10000 and reports INT_MAX for
        // those; every other value has exactly one reference.
        let shared =
            e.value.as_str().and_then(|s| crate::types::string::parse_i64(s)).is_some_and(|n| (0..10_000).contains(&n));
        ctx.out.int(if shared { i64::from(i32::MAX) } else { 1 });
    })
}

fn object_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(
        ctx,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+0"), Some(0));
        assert_eq!(parse_cursor(b"0012"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 0"), None);
        assert_eq!(parse_cursor(b"0 "), None);
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b"0x10"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"+"), None);
        assert_eq!(parse_cursor(b"7\0junk"), Some(7));
    }

    #[test]
    fn cursor_round_trips() {
        for bits in [0, 1, 4, 10] {
            for shard in [0usize, (1 << bits) - 1] {
                for slot in [0usize, 1, 12345, u32::MAX as usize] {
                    let c = encode_cursor(shard, slot, bits);
                    assert_eq!(decode_cursor(c, bits), (shard, slot));
                }
            }
        }
        assert_eq!(encode_cursor(0, 0, 6), 0, "the start of a scan is cursor 0");
        assert_eq!(encode_cursor(3, 2, 4), (2 << 4) | 3);
        // Every u64 decodes to a valid shard.
        assert_eq!(decode_cursor(u64::MAX, 4), (15, (u64::MAX >> 4) as usize));
    }

    #[test]
    fn scan_options() {
        let o = ScanOpts::parse(&[]).unwrap();
        assert_eq!(o, ScanOpts { pattern: None, count: 10, kind: None });
        let o = ScanOpts::parse(&[b("match"), b("a*"), b("COUNT"), b("100"), b("type"), b("STRING")]).unwrap();
        assert_eq!(o, ScanOpts { pattern: Some(b("a*")), count: 100, kind: Some(Some(Kind::String)) });
        // `*` needs no matching; an unknown type matches nothing; the last repeat wins.
        let o = ScanOpts::parse(&[b("MATCH"), b("x"), b("MATCH"), b("*"), b("TYPE"), b("nosuch")]).unwrap();
        assert_eq!(o, ScanOpts { pattern: None, count: 10, kind: Some(None) });
        assert_eq!(ScanOpts::parse(&[b("COUNT"), b("0")]), Err(CmdError::Syntax));
        assert_eq!(ScanOpts::parse(&[b("COUNT"), b("-5")]), Err(CmdError::Syntax));
        assert_eq!(ScanOpts::parse(&[b("COUNT"), b("x")]), Err(CmdError::NotInteger));
        assert_eq!(ScanOpts::parse(&[b("COUNT")]), Err(CmdError::Syntax));
        assert_eq!(ScanOpts::parse(&[b("FOO"), b("1")]), Err(CmdError::Syntax));
    }

    fn flags(args: &[&str]) -> Result<ExpireFlags, CmdError> {
        ExpireFlags::parse(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn expire_flag_parsing() {
        assert_eq!(flags(&[]), Ok(ExpireFlags::default()));
        assert_eq!(flags(&["nx", "NX"]), Ok(ExpireFlags { nx: true, ..Default::default() }));
        assert_eq!(flags(&["xx", "gt"]), Ok(ExpireFlags { xx: true, gt: true, ..Default::default() }));
        let nx_msg = CmdError::err("ERR NX and XX, GT or LT options at the same time are not compatible");
        let gtlt_msg = CmdError::err("ERR GT and LT options at the same time are not compatible");
        assert_eq!(flags(&["nx", "xx"]), Err(nx_msg.clone()));
        assert_eq!(flags(&["lt", "nx"]), Err(nx_msg.clone()));
        assert_eq!(flags(&["gt", "lt", "nx"]), Err(nx_msg));
        assert_eq!(flags(&["gt", "lt"]), Err(gtlt_msg));
        // The unknown word wins over incompatibilities, wherever it is.
        assert_eq!(flags(&["nx", "xx", "foo"]), Err(CmdError::err("ERR Unsupported option foo")));
        assert_eq!(flags(&["a\r\nb"]), Err(CmdError::err("ERR Unsupported option a  b")));
    }

    #[test]
    fn expire_conditions() {
        let none = ExpireFlags::default();
        let f = |s: &str| flags(&[s]).unwrap();
        assert!(none.allows(None, 5) && none.allows(Some(10), 5));
        assert!(f("nx").allows(None, 5) && !f("nx").allows(Some(10), 5));
        assert!(!f("xx").allows(None, 5) && f("xx").allows(Some(10), 5));
        // No TTL counts as infinite: GT never passes, LT always does.
        assert!(!f("gt").allows(None, i64::MAX) && f("lt").allows(None, 5));
        assert!(f("gt").allows(Some(10), 11) && !f("gt").allows(Some(10), 10));
        assert!(f("lt").allows(Some(10), 9) && !f("lt").allows(Some(10), 10));
    }

    #[test]
    fn ttl_replies() {
        let now = 1_000_000;
        let (ttl, pttl) = (TtlOutput { ms: false, absolute: false }, TtlOutput { ms: true, absolute: false });
        let (et, pet) = (TtlOutput { ms: false, absolute: true }, TtlOutput { ms: true, absolute: true });
        assert_eq!(ttl_reply(None, ttl, now), -1);
        assert_eq!(ttl_reply(None, pet, now), -1);
        assert_eq!(ttl_reply(Some(now + 1500), ttl, now), 2, "rounds to nearest");
        assert_eq!(ttl_reply(Some(now + 1499), ttl, now), 1);
        assert_eq!(ttl_reply(Some(now + 1499), pttl, now), 1499);
        assert_eq!(ttl_reply(Some(now - 5), pttl, now), 0, "never negative");
        assert_eq!(ttl_reply(Some(123_456), pet, now), 123_456);
        assert_eq!(ttl_reply(Some(123_456), et, now), 123);
        assert_eq!(ttl_reply(Some(i64::MAX as u64), et, now), 9_223_372_036_854_776);
    }

    #[test]
    fn int32_and_db_errors() {
        assert_eq!(int32_arg(b"7", None), Ok(7));
        assert_eq!(int32_arg(b"x", None), Err(CmdError::NotInteger));
        assert_eq!(
            int32_arg(b"4294967296", None),
            Err(CmdError::err("ERR value is out of range, value must between -2147483648 and 2147483647"))
        );
        let m = Some("ERR invalid first DB index");
        assert_eq!(int32_arg(b"x", m), Err(CmdError::err("ERR invalid first DB index")));
        assert_eq!(int32_arg(b"99999999999", m), Err(CmdError::err("ERR invalid first DB index")));
    }
}
