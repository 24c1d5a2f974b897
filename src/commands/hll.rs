//! The HyperLogLog command family: PFADD PFCOUNT PFMERGE, plus the debugging commands PFDEBUG
//! and PFSELFTEST.
//!
//! A HyperLogLog is a string value in redis-server's byte layout ([`crate::types::hll`]), so
//! GET, SET, APPEND and memcached all see it as the string it is, and the bytes match
//! redis-server's. The shapes follow redis-server 7.0's `hyperloglog.c`, because clients see
//! which error comes first:
//!
//! - a key holding another type is WRONGTYPE; a string that is not a HyperLogLog is
//!   "WRONGTYPE Key is not a valid HyperLogLog string value."; a HyperLogLog whose registers do
//!   not decode is "INVALIDOBJ Corrupted HLL object detected";
//! - PFCOUNT and PFMERGE visit their keys in order and stop at the first bad one; PFMERGE's
//!   destination is also its first source;
//! - PFADD applies its elements one by one and, like redis-server, keeps what it applied before
//!   meeting a corrupted encoding.
//!
//! Writes edit the value in place, so they keep the key's TTL and memcached flags; a key they
//! create gets flags 0 and no TTL. PFCOUNT of one key stores the count it computed in the
//! value's header: that is a write (new CAS unique, a dirty change), as redis-server counts it.
//! An in-place edit whose outcome is known only after doing it (PFADD) edits through `peek` and
//! takes the guard's `write` afterwards, only when something changed, so a PFADD that adds
//! nothing new changes no CAS. The dirty counter moves as redis-server's does: PFADD by the
//! number of changed registers (plus one for a created key), the others by one.

use std::sync::atomic::Ordering;

use super::arg::*;
use super::flags::*;
use super::{excerpt, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{mc_bits, Hashed, Locked};
use crate::types::hll::{self, HllError};
use crate::types::Value;

/// This family's table entries (arity, flags and key positions as redis-server 7.0's COMMAND
/// INFO gives them).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), "hyperloglog", "2.8.9", "O(1) to add every element.", "Adds the specified elements to the specified HyperLogLog.", pfadd).args(&[key("key"), string("element").optional().multiple()]),
    spec("pfcount", -2, READONLY, (1, -1, 1), "hyperloglog", "2.8.9", "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", pfcount).args(&[key("key").multiple()]),
    spec("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), "hyperloglog", "2.8.9", "O(N) to merge N HyperLogLogs, but with high constant times.", "Merge N different HyperLogLogs into a single one.", pfmerge).args(&[key("destkey"), key("sourcekey").key_spec(1).multiple()]),
    spec("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), "hyperloglog", "2.8.9", "N/A", "Internal commands for debugging HyperLogLog values", pfdebug).args(&[string("subcommand"), key("key")]),
    spec("pfselftest", 1, ADMIN, (0, 0, 0), "hyperloglog", "2.8.9", "N/A", "An internal command for testing HyperLogLog values", pfselftest),
];

impl From<HllError> for CmdError {
    fn from(e: HllError) -> CmdError {
        match e {
            HllError::NotHll => CmdError::err("WRONGTYPE Key is not a valid HyperLogLog string value."),
            HllError::Corrupt => CmdError::err("INVALIDOBJ Corrupted HLL object detected"),
        }
    }
}

/// The bytes of a value that must be a HyperLogLog: WRONGTYPE for other types, the HLL errors
/// for strings that are not one (redis-server's `isHLLObjectOrReply`).
fn hll_of(v: &Value) -> Result<&[u8], CmdError> {
    let s = v.as_str().ok_or(CmdError::WrongType)?;
    hll::validate(s)?;
    Ok(s)
}

/// The same, for editing in place.
fn hll_of_mut(v: &mut Value) -> Result<&mut Vec<u8>, CmdError> {
    hll_of(v)?;
    v.as_str_mut().ok_or(CmdError::WrongType)
}

/// Counts `n` changes beyond the one the guard's `write`/`set` counted.
fn dirty_extra(l: &Locked<'_>, n: u64) {
    l.engine().stats.dirty.fetch_add(n, Ordering::Relaxed);
}

/// `PFADD key [element ...]`: 1 when a register changed or the key was created, else 0.
fn pfadd(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let created = match l.peek(db, &k, now) {
        Some(e) => {
            hll_of(&e.value)?;
            // redis-server unshares the value before adding, changed or not.
            e.mc_bits |= mc_bits::RAW_STRING;
            false
        }
        None => {
            l.set(db, &k, Value::Str(hll::empty()), None, 0, false, now).mc_bits |= mc_bits::RAW_STRING;
            true
        }
    };
    let v = match l.peek(db, &k, now) {
        Some(e) => hll_of_mut(&mut e.value)?,
        None => return Err(CmdError::NoSuchKey),
    };
    let mut changed = 0u64;
    let mut failed = None;
    for element in argv.rest(2) {
        match hll::add(v, element) {
            Ok(true) => changed += 1,
            Ok(false) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_none() && (changed > 0 || created) {
        hll::invalidate_count(v);
    }
    // Record the edit: a created key was counted by `set`; an existing one takes its `write`
    // now (a new CAS unique even when a corrupted element cut the command short, because its
    // bytes did change).
    let mut extra = changed;
    if changed > 0 && !created {
        l.write(db, &k, now);
        extra -= 1;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    dirty_extra(&l, extra);
    drop(l);
    if changed > 0 || created {
        ctx.notify(notify::STRING, "pfadd", k.key);
    }
    ctx.out.int(i64::from(changed > 0 || created));
    Ok(())
}

/// `PFCOUNT key [key ...]`: one key answers (and caches) its count; several answer the count
/// of their union, modifying none.
fn pfcount(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = argv.rest(1).map(|k| engine.hashed(k)).collect();
    let mut l = engine.lock(&keys);
    let card = if let [k] = keys[..] {
        count_one(&mut l, db, &k, now)?
    } else {
        let mut max = vec![0u8; hll::REGISTERS];
        for k in &keys {
            if let Some(e) = l.read(db, k, now) {
                hll::merge_into(&mut max, hll_of(&e.value)?)?;
            }
        }
        hll::count_registers(&max)
    };
    drop(l);
    // The reply is the 64-bit pattern as a signed integer, as redis-server's `addReplyLongLong`.
    ctx.out.int(card as i64);
    Ok(())
}

/// The count of one key: its cached count, or a fresh one stored back into the header.
fn count_one(l: &mut Locked<'_>, db: usize, k: &Hashed<'_>, now: u64) -> Result<u64, CmdError> {
    let Some(e) = l.read(db, k, now) else { return Ok(0) };
    let v = hll_of(&e.value)?;
    if let Some(card) = hll::cached_count(v) {
        return Ok(card);
    }
    let card = hll::count(v)?;
    if let Some(v) = l.write(db, k, now).and_then(|e| e.value.as_str_mut()) {
        hll::store_count(v, card);
    }
    Ok(card)
}

/// `PFMERGE destkey [sourcekey ...]`: the union of every key (the destination included) into
/// the destination, created when missing. Dense as soon as one input is.
fn pfmerge(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let keys: Vec<Hashed<'_>> = argv.rest(1).map(|k| engine.hashed(k)).collect();
    let dest = keys[0];
    let mut l = engine.lock(&keys);
    let mut max = vec![0u8; hll::REGISTERS];
    let mut dense = false;
    for k in &keys {
        if let Some(e) = l.read(db, k, now) {
            let v = hll_of(&e.value)?;
            dense |= hll::is_dense(v);
            hll::merge_into(&mut max, v)?;
        }
    }
    let entry = match l.write(db, &dest, now) {
        Some(e) => e,
        None => l.set(db, &dest, Value::Str(hll::empty()), None, 0, false, now),
    };
    entry.mc_bits |= mc_bits::RAW_STRING;
    let v = hll_of_mut(&mut entry.value)?;
    if dense {
        hll::to_dense(v)?;
    }
    for (i, &m) in max.iter().enumerate().filter(|(_, &m)| m != 0) {
        // The destination decoded cleanly above, so its edits cannot fail; redis-server ignores
        // their result too.
        let _ = hll::set_register(v, i, m);
    }
    hll::invalidate_count(v);
    drop(l);
    ctx.notify(notify::STRING, "pfadd", dest.key);
    ctx.out.ok();
    Ok(())
}

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`: redis-server's introspection of a value.
/// GETREG and TODENSE convert a sparse value to dense, as there.
fn pfdebug(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let sub = argv.get(1);
    let k = engine.hashed(argv.get(2));
    let mut l = engine.lock_one(&k);
    let Some(e) = l.peek(db, &k, now) else {
        return Err(CmdError::err("ERR The specified key does not exist"));
    };
    let dense = hll::is_dense(hll_of(&e.value)?);
    if is(sub, "getreg") || is(sub, "todense") {
        // Converted through `peek` and recorded with `write` only once it succeeded.
        if !dense && hll::to_dense(hll_of_mut(&mut e.value)?)? {
            l.write(db, &k, now);
        }
        if is(sub, "todense") {
            drop(l);
            ctx.out.int(i64::from(!dense));
            return Ok(());
        }
        let regs = match l.peek(db, &k, now) {
            Some(e) => hll::dense_registers(hll_of(&e.value)?),
            None => Vec::new(),
        };
        drop(l);
        ctx.out.array(regs.len());
        regs.iter().for_each(|&r| ctx.out.int(i64::from(r)));
    } else if is(sub, "decode") {
        if dense {
            return Err(CmdError::err("ERR HLL encoding is not sparse"));
        }
        let text = hll::decode_sparse(hll_of(&e.value)?);
        drop(l);
        ctx.out.bulk(text.as_bytes());
    } else if is(sub, "encoding") {
        drop(l);
        ctx.out.simple(if dense { b"dense" } else { b"sparse" });
    } else {
        return Err(CmdError::err(format!("ERR Unknown PFDEBUG subcommand '{}'", excerpt(sub, usize::MAX))));
    }
    Ok(())
}

/// `PFSELFTEST`: checks this implementation's registers and estimator; OK or TESTFAILED.
fn pfselftest(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    hll::selftest().map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}
