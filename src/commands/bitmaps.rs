//! The bitmap command family: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO, all on
//! string values.
//!
//! Bit order is redis-server's: bit 0 is the most significant bit of byte 0, so a bitmap reads
//! left to right as its hex dump does. A string is an infinite bitmap padded with zero bits;
//! reads past its end see zeros, writes past its end grow it with zero bytes first.
//!
//! The shapes follow redis-server 7.0's `bitops.c`, because clients see which error comes first:
//!
//! - offsets ([`parse_bit_offset`]) are refused when negative or when their byte lies at or past
//!   `proto-max-bulk-len` — that is the only size check: a string grown to the offset's byte
//!   therefore always respects the limit, exactly as redis-server reasons;
//! - BITCOUNT and BITPOS look the key up (and type-check it) *before* parsing their range, so a
//!   missing key answers 0 (or BITPOS's -1/0) whatever junk follows; one [`bit_range`] turns
//!   their `start end [BYTE|BIT]` into an inclusive range of bit positions;
//! - BITFIELD and BITFIELD_RO share [`bitfield_generic`]: every subcommand is parsed before the
//!   key is touched, and the overflow checks ([`signed_result`], [`unsigned_result`]) reproduce
//!   redis-server's arithmetic, wrap-arounds of its intermediate values included.
//!
//! Writes keep the key's TTL and memcached flags (they edit the value in place through the
//! guard's `write`, which renews the CAS unique); a key they create gets flags 0 and no TTL.
//! BITOP replaces its destination as SET does (flags 0, TTL dropped) or deletes it when the
//! result is empty. A command that changes nothing (SETBIT writing the bit already there) takes
//! no `write`, as redis-server then leaves its dirty counter alone.
//!
//! The bit scans work on whole `u64` words in the middle of a range and on masked bytes at its
//! edges, so BITCOUNT and BITPOS over a 512 MB string cost a pass over memory, not a bit loop.

use super::arg::*;
use super::flags::*;
use super::strings::{max_string_len, string_of};
use super::{int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{mc_bits, Hashed};
use crate::types::string as st;
use crate::types::Value;

/// This family's table entries (arity, flags and key positions as redis-server 7.0's COMMAND
/// INFO gives them).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", "2.2.0", "O(1)", "Sets or clears the bit at offset in the string value stored at key", setbit).args(&[key("key"), integer("offset"), integer("value")]),
    spec("getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", "2.2.0", "O(1)", "Returns the bit value at offset in the string value stored at key", getbit).args(&[key("key"), integer("offset")]),
    spec("bitcount", -2, READONLY, (1, 1, 1), "bitmap", "2.6.0", "O(N)", "Count set bits in a string", bitcount).args(BITCOUNT_ARGS),
    spec("bitpos", -3, READONLY, (1, 1, 1), "bitmap", "2.8.7", "O(N)", "Find first bit set or clear in a string", bitpos).args(BITPOS_ARGS),
    spec("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", "2.6.0", "O(N)", "Perform bitwise operations between strings", bitop).args(BITOP_ARGS),
    spec("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), "bitmap", "3.2.0", "O(1) for each subcommand specified", "Perform arbitrary bitfield integer operations on strings", bitfield).args(BITFIELD_ARGS),
    spec("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), "bitmap", "6.0.0", "O(1) for each subcommand specified", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", bitfield_ro).args(BITFIELD_RO_ARGS),
];

/// `[BYTE|BIT]`, added to BITCOUNT and BITPOS in 7.0.
const INDEX_UNIT: Arg = oneof("index_unit", &[pure("BYTE"), pure("BIT")]).since("7.0.0").optional();

/// `BITCOUNT key [start end [BYTE|BIT]]`
const BITCOUNT_ARGS: &[Arg] = &[key("key"), block("index", &[integer("start"), integer("end"), INDEX_UNIT]).optional()];

/// `BITPOS key bit [start [end [BYTE|BIT]]]`
const BITPOS_ARGS: &[Arg] = &[
    key("key"),
    integer("bit"),
    block("index", &[integer("start"), block("end_index", &[integer("end"), INDEX_UNIT]).optional()]).optional(),
];

/// `BITOP operation destkey key [key ...]`
const BITOP_ARGS: &[Arg] = &[string("operation"), key("destkey"), key("key").key_spec(1).multiple()];

/// `GET encoding offset`, BITFIELD's read and BITFIELD_RO's only subcommand.
const BITFIELD_GET: &[Arg] = &[string("encoding"), integer("offset")];

/// `BITFIELD key [GET encoding offset | [OVERFLOW WRAP|SAT|FAIL] SET encoding offset value |
/// [OVERFLOW WRAP|SAT|FAIL] INCRBY encoding offset increment ...]`
const BITFIELD_ARGS: &[Arg] = &[
    key("key"),
    oneof(
        "operation",
        &[
            block("encoding_offset", BITFIELD_GET).token("GET"),
            block(
                "write",
                &[
                    oneof("wrap_sat_fail", &[pure("WRAP"), pure("SAT"), pure("FAIL")]).token("OVERFLOW").optional(),
                    oneof(
                        "write_operation",
                        &[
                            block("encoding_offset_value", &[string("encoding"), integer("offset"), integer("value")])
                                .token("SET"),
                            block(
                                "encoding_offset_increment",
                                &[string("encoding"), integer("offset"), integer("increment")],
                            )
                            .token("INCRBY"),
                        ],
                    ),
                ],
            ),
        ],
    )
    .optional()
    .multiple(),
];

/// `BITFIELD_RO key [GET encoding offset [GET encoding offset ...]]`
const BITFIELD_RO_ARGS: &[Arg] =
    &[key("key"), block("encoding_offset", BITFIELD_GET).token("GET").optional().multiple().multiple_token()];

// ---- errors ---------------------------------------------------------------------------------

fn bad_offset() -> CmdError {
    CmdError::err("ERR bit offset is not an integer or out of range")
}

fn bad_bit_value() -> CmdError {
    CmdError::err("ERR bit is not an integer or out of range")
}

fn bad_field_type() -> CmdError {
    CmdError::err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
}

// ---- argument parsing -----------------------------------------------------------------------

/// redis-server refuses to set `proto-max-bulk-len` below 1 MB, so an offset whose byte lies
/// below this is valid whatever the configuration says and the configuration need not be read.
const MIN_PROTO_MAX_BULK_LEN: u64 = 1024 * 1024;

/// The `proto-max-bulk-len` offsets are checked against, read at most once per command and only
/// for offsets large enough for it to matter. Used before any shard is locked (see
/// [`max_string_len`] for why).
struct OffsetLimit(Option<u64>);

impl OffsetLimit {
    fn new() -> OffsetLimit {
        OffsetLimit(None)
    }

    /// redis-server's `getBitOffsetFromArgument`: see [`parse_bit_offset`]; the limit comes from
    /// the configuration.
    fn offset(&mut self, ctx: &Ctx<'_>, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
        parse_bit_offset(arg, width, || *self.0.get_or_insert_with(|| max_string_len(ctx)))
    }
}

/// Parses a bit offset: a strict integer, or with `width` (BITFIELD) also `#N`, meaning N fields
/// of `width` bits. The product is taken as redis-server takes it, in a wrapping 64-bit multiply,
/// so a huge `#N` may come out negative and be refused. Refused too (as "bit offset is not an
/// integer or out of range") when negative, or when its byte is at or past `limit()` — the
/// configured `proto-max-bulk-len`, asked for only when the byte is past the 1 MB floor.
fn parse_bit_offset(arg: &[u8], width: Option<u32>, limit: impl FnOnce() -> u64) -> Result<u64, CmdError> {
    let (digits, mul) = match (arg.first(), width) {
        (Some(b'#'), Some(w)) => (&arg[1..], i64::from(w)),
        _ => (arg, 1),
    };
    let n = st::parse_i64(digits).ok_or_else(bad_offset)?.wrapping_mul(mul);
    let n = u64::try_from(n).map_err(|_| bad_offset())?;
    let byte = n >> 3;
    if byte >= MIN_PROTO_MAX_BULK_LEN && byte >= limit() {
        return Err(bad_offset());
    }
    Ok(n)
}

/// An offset known to be in range as an index into memory.
fn byte_index(bit: u64) -> Result<usize, CmdError> {
    usize::try_from(bit >> 3).map_err(|_| bad_offset())
}

/// The unit of BITCOUNT's and BITPOS's `start`/`end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Byte,
    Bit,
}

/// `BYTE` or `BIT`, any case; anything else is a syntax error.
fn parse_unit(arg: &[u8]) -> Result<Unit, CmdError> {
    if is(arg, "bit") {
        Ok(Unit::Bit)
    } else if is(arg, "byte") {
        Ok(Unit::Byte)
    } else {
        Err(CmdError::Syntax)
    }
}

/// The bits `start..=end` (in `unit`s, negative counting from the end) of a string of `len`
/// bytes, as an inclusive range of bit positions; None when empty. redis-server's conversion:
/// negative indexes add the length, then both clamp at 0 and `end` at the last unit.
fn bit_range(len: usize, start: i64, end: i64, unit: Unit) -> Option<(u64, u64)> {
    let len = len as i64;
    let total = if unit == Unit::Bit { len << 3 } else { len };
    let norm = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (norm(start), norm(end).min(total - 1));
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(match unit {
        Unit::Bit => (start, end),
        Unit::Byte => (start << 3, (end << 3) | 7),
    })
}

// ---- bit scans over byte slices --------------------------------------------------------------

/// The bits of a byte from position `from` (0 = most significant) to `to` inclusive.
fn byte_mask(from: u64, to: u64) -> u8 {
    (0xffu8 >> from) & (0xffu8 << (7 - to))
}

/// Number of set bits in `bytes`, a word at a time.
fn popcount(bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail: u64 = words.remainder().iter().map(|b| u64::from(b.count_ones())).sum();
    let mut sum = 0u64;
    for w in words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        sum += u64::from(u64::from_ne_bytes(word).count_ones());
    }
    sum + tail
}

/// Number of set bits at positions `first..=last` of `s` (both inside `s`).
fn count_range(s: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    if fb == lb {
        return u64::from((s[fb] & byte_mask(first & 7, last & 7)).count_ones());
    }
    let edges = (s[fb] & byte_mask(first & 7, 7)).count_ones() + (s[lb] & byte_mask(0, last & 7)).count_ones();
    u64::from(edges) + popcount(&s[fb + 1..lb])
}

/// Index of the first byte of `bytes` that differs from `skip`, skipping a word at a time.
fn first_byte_not(bytes: &[u8], skip: u8) -> Option<usize> {
    let words = bytes.chunks_exact(8);
    let done = bytes.len() - words.remainder().len();
    let skip_word = u64::from_ne_bytes([skip; 8]);
    for (i, w) in words.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        if u64::from_ne_bytes(word) != skip_word {
            return w.iter().position(|&b| b != skip).map(|j| i * 8 + j);
        }
    }
    bytes[done..].iter().position(|&b| b != skip).map(|j| done + j)
}

/// Position of the first bit equal to `bit` among positions `first..=last` of `s` (both inside
/// `s`), or None.
fn find_bit(s: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    // Looking for a 0 is looking for a 1 in the complement.
    let flip = if bit { 0 } else { 0xff };
    let hit = |i: usize| {
        let from = if i == fb { first & 7 } else { 0 };
        let to = if i == lb { last & 7 } else { 7 };
        let v = (s[i] ^ flip) & byte_mask(from, to);
        (v != 0).then(|| ((i as u64) << 3) + u64::from(v.leading_zeros()))
    };
    if let Some(p) = hit(fb) {
        return Some(p);
    }
    if fb == lb {
        return None;
    }
    match first_byte_not(&s[fb + 1..lb], flip) {
        Some(j) => hit(fb + 1 + j),
        None => hit(lb),
    }
}

// ---- SETBIT / GETBIT ------------------------------------------------------------------------

/// The bit at `offset` of `s`, zero past its end.
fn bit_at(s: &[u8], offset: u64) -> bool {
    let byte = usize::try_from(offset >> 3).ok().and_then(|i| s.get(i)).copied().unwrap_or(0);
    byte & (0x80 >> (offset & 7)) != 0
}

/// Sets or clears the bit at `offset`; `s` must reach it.
fn set_bit(s: &mut [u8], offset: u64, on: bool) {
    let (i, m) = ((offset >> 3) as usize, 0x80u8 >> (offset & 7));
    if on {
        s[i] |= m;
    } else {
        s[i] &= !m;
    }
}

/// SETBIT: offset, then the bit (0 or 1), then the key's type. Replies with the old bit. A
/// missing key is created as `offset / 8 + 1` zero bytes; a shorter string is zero-padded to that.
fn setbit(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let offset = OffsetLimit::new().offset(ctx, argv.get(2), None)?;
    let on = match int_arg(argv.get(3)) {
        Ok(0) => false,
        Ok(1) => true,
        _ => return Err(bad_bit_value()),
    };
    let need = byte_index(offset)? + 1;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let old = match l.peek(db, &k, now) {
        Some(e) => {
            let s = string_of(&e.value)?;
            Some((bit_at(s, offset), s.len() < need))
        }
        None => None,
    };
    let was = match old {
        None => {
            let mut v = vec![0u8; need];
            set_bit(&mut v, offset, on);
            l.set(db, &k, Value::Str(v), None, 0, false, now).mc_bits |= mc_bits::RAW_STRING;
            false
        }
        Some((was, grows)) => {
            if grows || was != on {
                if let Some(s) = l.write(db, &k, now).and_then(|e| e.value.as_str_mut()) {
                    if s.len() < need {
                        s.resize(need, 0);
                    }
                    set_bit(s, offset, on);
                }
            } else if let Some(e) = l.peek(db, &k, now) {
                // redis-server unshares the string before looking at the bit.
                e.mc_bits |= mc_bits::RAW_STRING;
            }
            was
        }
    };
    drop(l);
    ctx.notify(notify::STRING, "setbit", k.key);
    ctx.out.int(i64::from(was));
    Ok(())
}

/// GETBIT: offset first, then the key; a missing key or an offset past the end reads 0.
fn getbit(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let offset = OffsetLimit::new().offset(ctx, argv.get(2), None)?;
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let bit = match l.read(db, &k, now) {
        Some(e) => bit_at(string_of(&e.value)?, offset),
        None => false,
    };
    drop(l);
    ctx.out.int(i64::from(bit));
    Ok(())
}

// ---- BITCOUNT / BITPOS ----------------------------------------------------------------------

/// BITCOUNT: a missing key is 0 before any argument is looked at (redis-server 7.0 order); then
/// the type, then `start end [BYTE|BIT]` — a lone `start` or anything after the unit is a
/// syntax error. Two negative indexes in the wrong order count nothing, even where both would
/// clamp to the first unit.
fn bitcount(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let count = match l.read(db, &k, now) {
        None => 0,
        Some(e) => {
            let s = string_of(&e.value)?;
            let range = match argv.len() {
                2 => bit_range(s.len(), 0, -1, Unit::Byte),
                4 | 5 => {
                    let (start, end) = (int_arg(argv.get(2))?, int_arg(argv.get(3))?);
                    let unit = if argv.len() == 5 { parse_unit(argv.get(4))? } else { Unit::Byte };
                    // Only BITCOUNT has this shortcut: without it, both indexes could clamp to
                    // 0 and count the first unit.
                    if start < 0 && end < 0 && start > end {
                        None
                    } else {
                        bit_range(s.len(), start, end, unit)
                    }
                }
                _ => return Err(CmdError::Syntax),
            };
            range.map_or(0, |(first, last)| count_range(s, first, last))
        }
    };
    drop(l);
    ctx.out.int(count as i64);
    Ok(())
}

/// BITPOS: the bit (0 or 1) first; a missing key is an endless run of zeros (answers 0 for a 0,
/// -1 for a 1) before the range is looked at; then the type, then `start`, the unit, `end`, in
/// that order. Not found: -1, except that a 0 searched without an explicit `end` is found just
/// past the range, as if the string went on with zero padding.
fn bitpos(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let bit = match int_arg(argv.get(2))? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::err("ERR The bit argument must be 1 or 0.")),
    };
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let pos = match l.read(db, &k, now) {
        None if bit => -1,
        None => 0,
        Some(e) => {
            let s = string_of(&e.value)?;
            let (range, end_given) = match argv.len() {
                3 => (bit_range(s.len(), 0, -1, Unit::Byte), false),
                4..=6 => {
                    let start = int_arg(argv.get(3))?;
                    let unit = if argv.len() == 6 { parse_unit(argv.get(5))? } else { Unit::Byte };
                    match argv.len() {
                        4 => (bit_range(s.len(), start, -1, unit), false),
                        _ => (bit_range(s.len(), start, int_arg(argv.get(4))?, unit), true),
                    }
                }
                _ => return Err(CmdError::Syntax),
            };
            match range {
                None => -1,
                Some((first, last)) => match find_bit(s, first, last, bit) {
                    Some(p) => p as i64,
                    None if !bit && !end_given => last as i64 + 1,
                    None => -1,
                },
            }
        }
    };
    drop(l);
    ctx.out.int(pos);
    Ok(())
}

// ---- BITOP ----------------------------------------------------------------------------------

/// A BITOP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

impl BitOp {
    fn parse(arg: &[u8]) -> Result<BitOp, CmdError> {
        [(BitOp::And, "and"), (BitOp::Or, "or"), (BitOp::Xor, "xor"), (BitOp::Not, "not")]
            .into_iter()
            .find(|(_, name)| is(arg, name))
            .map(|(op, _)| op)
            .ok_or(CmdError::Syntax)
    }

    /// Folds `src` (zero-padded to `acc`'s length) into `acc`, which holds the first source.
    fn fold(self, acc: &mut [u8], src: &[u8]) {
        let (head, tail) = acc.split_at_mut(src.len().min(acc.len()));
        match self {
            BitOp::And => {
                head.iter_mut().zip(src).for_each(|(a, b)| *a &= b);
                tail.fill(0);
            }
            BitOp::Or => head.iter_mut().zip(src).for_each(|(a, b)| *a |= b),
            BitOp::Xor => head.iter_mut().zip(src).for_each(|(a, b)| *a ^= b),
            BitOp::Not => {}
        }
    }
}

/// BITOP: the operation name, NOT's single source, then the sources' types in order (missing
/// keys are empty strings). The result is as long as the longest source, shorter sources
/// padded with zero bytes; an empty result deletes `destkey`. Replies with the result's length.
/// The destination's old value, of whatever type, is replaced like SET replaces it.
fn bitop(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let op = BitOp::parse(argv.get(1))?;
    if op == BitOp::Not && argv.len() != 4 {
        return Err(CmdError::err("ERR BITOP NOT must be called with a single source key."));
    }
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let dest = engine.hashed(argv.get(2));
    let sources: Vec<Hashed<'_>> = argv.rest(3).map(|k| engine.hashed(k)).collect();
    let mut all = sources.clone();
    all.push(dest);
    let mut l = engine.lock(&all);
    // First pass: types (in order, as redis-server reports the first offender) and the length.
    let mut maxlen = 0;
    for k in &sources {
        if let Some(e) = l.read(db, k, now) {
            maxlen = maxlen.max(string_of(&e.value)?.len());
        }
    }
    let event = if maxlen == 0 {
        l.delete(db, &dest, now).then_some((notify::GENERIC, "del"))
    } else {
        let mut res = vec![0u8; maxlen];
        for (i, k) in sources.iter().enumerate() {
            let src = match l.peek(db, k, now) {
                Some(e) => string_of(&e.value)?,
                None => &[],
            };
            if i == 0 {
                res[..src.len()].copy_from_slice(src);
            } else {
                op.fold(&mut res, src);
            }
        }
        if op == BitOp::Not {
            res.iter_mut().for_each(|b| *b = !*b);
        }
        l.set(db, &dest, Value::Str(res), None, 0, false, now).mc_bits |= mc_bits::RAW_STRING;
        Some((notify::STRING, "set"))
    };
    drop(l);
    if let Some((class, event)) = event {
        ctx.notify(class, event, dest.key);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

// ---- BITFIELD -------------------------------------------------------------------------------

/// What BITFIELD does when a SET or INCRBY leaves the field's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Keep the low bits (two's complement for signed fields). The default.
    Wrap,
    /// Clamp to the field's minimum or maximum.
    Sat,
    /// Write nothing and reply nil for this subcommand.
    Fail,
}

/// A field type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldType {
    signed: bool,
    bits: u32,
}

impl FieldType {
    /// redis-server's `getBitfieldTypeFromArgument`: `i` or `u` (lower case only: `I8` is
    /// refused) and a strict integer. It reads the argument as a C string, so anything after a
    /// NUL byte is ignored.
    fn parse(arg: &[u8]) -> Result<FieldType, CmdError> {
        let arg = arg.split(|&c| c == 0).next().unwrap_or_default();
        let signed = match arg.first() {
            Some(b'i') => true,
            Some(b'u') => false,
            _ => return Err(bad_field_type()),
        };
        let max = if signed { 64 } else { 63 };
        match st::parse_i64(&arg[1..]) {
            Some(bits @ 1..=64) if bits <= max => Ok(FieldType { signed, bits: bits as u32 }),
            _ => Err(bad_field_type()),
        }
    }
}

/// One BITFIELD subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldAction {
    Get,
    /// SET to the value; replies with the old one.
    Set(i64),
    /// INCRBY the increment; replies with the new value.
    IncrBy(i64),
}

/// A parsed subcommand with the overflow mode in force where it appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldOp {
    action: FieldAction,
    ty: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// Parses BITFIELD's subcommands (everything after the key), redis-server's order: a name
/// without enough arguments after it is a syntax error; then type, offset, value.
fn parse_field_ops(ctx: &Ctx<'_>, argv: &Argv<'_>) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut limit = OffsetLimit::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let (name, left) = (argv.get(j), argv.len() - j - 1);
        let takes_value = if is(name, "get") && left >= 2 {
            false
        } else if (is(name, "set") || is(name, "incrby")) && left >= 3 {
            true
        } else if is(name, "overflow") && left >= 1 {
            let mode = argv.get(j + 1);
            overflow = [(Overflow::Wrap, "wrap"), (Overflow::Sat, "sat"), (Overflow::Fail, "fail")]
                .into_iter()
                .find(|(_, n)| is(mode, n))
                .map(|(o, _)| o)
                .ok_or_else(|| CmdError::err("ERR Invalid OVERFLOW type specified"))?;
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let ty = FieldType::parse(argv.get(j + 1))?;
        let offset = limit.offset(ctx, argv.get(j + 2), Some(ty.bits))?;
        let action = if !takes_value {
            FieldAction::Get
        } else if is(name, "set") {
            FieldAction::Set(int_arg(argv.get(j + 3))?)
        } else {
            FieldAction::IncrBy(int_arg(argv.get(j + 3))?)
        };
        ops.push(FieldOp { action, ty, offset, overflow });
        j += if takes_value { 4 } else { 3 };
    }
    Ok(ops)
}

/// The `bits`-wide unsigned field at `offset` of `s`, zero-padded past its end.
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |v, i| (v << 1) | u64::from(bit_at(s, offset + i)))
}

/// Writes the low `bits` bits of `value` at `offset`; `s` must reach the field's last bit.
fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        set_bit(s, offset + i, (value >> (u64::from(bits) - 1 - i)) & 1 == 1);
    }
}

/// The `bits`-wide field at `offset` read as `ty`: signed fields are sign-extended.
fn read_field(s: &[u8], offset: u64, ty: FieldType) -> i64 {
    let v = get_field(s, offset, ty.bits);
    if ty.signed && ty.bits < 64 && v & (1 << (ty.bits - 1)) != 0 {
        (v | (u64::MAX << ty.bits)) as i64
    } else {
        v as i64
    }
}

/// redis-server's `checkUnsignedBitfieldOverflow` with what the caller then stores: the value
/// `value + incr` takes in a `bits`-wide unsigned field, or None when it overflows under FAIL.
/// SET calls it with the new value and `incr` 0, so a negative SET value (as u64, huge)
/// overflows upwards — SAT stores the maximum, as redis-server does.
fn unsigned_result(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let sum = value.wrapping_add(incr as u64);
    let limit = if value > max || (incr > 0 && incr > maxincr) {
        max
    } else if incr < 0 && incr < minincr {
        0
    } else {
        return Some(sum);
    };
    match ow {
        Overflow::Wrap => Some(sum & max),
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    }
}

/// redis-server's `checkSignedBitfieldOverflow` with what the caller then stores, for a
/// `bits`-wide signed field; None when it overflows under FAIL. Its intermediate differences
/// wrap as they do in redis-server's C, which decides the direction of some SET overflows
/// (`SET i8 0 -9223372036854775808` saturates to 127, not -128): reproduced, not corrected.
fn signed_result(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let limit = if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        max
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        min
    } else {
        return Some(value + incr);
    };
    match ow {
        Overflow::Wrap => {
            let mut c = (value as u64).wrapping_add(incr as u64);
            if bits < 64 {
                let high = u64::MAX << bits;
                if c & (1 << (bits - 1)) != 0 {
                    c |= high;
                } else {
                    c &= !high;
                }
            }
            Some(c as i64)
        }
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    }
}

/// Runs one subcommand on `s` (long enough for every write); its reply element, None for nil.
fn apply_field_op(s: &mut [u8], op: &FieldOp) -> Option<i64> {
    let FieldOp { ty, offset, overflow, .. } = *op;
    let old = read_field(s, offset, ty);
    let (new, reply_new) = match op.action {
        FieldAction::Get => return Some(old),
        FieldAction::Set(v) if ty.signed => (signed_result(v, 0, ty.bits, overflow)?, false),
        FieldAction::Set(v) => (unsigned_result(v as u64, 0, ty.bits, overflow)? as i64, false),
        FieldAction::IncrBy(by) if ty.signed => (signed_result(old, by, ty.bits, overflow)?, true),
        FieldAction::IncrBy(by) => (unsigned_result(old as u64, by, ty.bits, overflow)? as i64, true),
    };
    set_field(s, offset, ty.bits, new as u64);
    Some(if reply_new { new } else { old })
}

fn bitfield(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bitfield_generic(ctx, argv, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    bitfield_generic(ctx, argv, true)
}

/// BITFIELD and BITFIELD_RO. Every subcommand is parsed first; then, with only GETs, the key is
/// read (missing reads as zeros); with a write (refused by BITFIELD_RO) the string is created
/// or zero-padded up to the farthest bit any write reaches — even when every write then fails
/// under OVERFLOW FAIL, as redis-server does — and the subcommands run in order.
fn bitfield_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, read_only: bool) -> Result<(), CmdError> {
    let ops = parse_field_ops(ctx, argv)?;
    let highest =
        ops.iter().filter(|op| op.action != FieldAction::Get).map(|op| op.offset + u64::from(op.ty.bits) - 1).max();
    if highest.is_some() && read_only {
        return Err(CmdError::err("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let replies: Vec<Option<i64>> = match highest {
        None => {
            let s = match l.read(db, &k, now) {
                Some(e) => string_of(&e.value)?,
                None => &[],
            };
            ops.iter().map(|op| Some(read_field(s, op.offset, op.ty))).collect()
        }
        Some(highest) => {
            let need = byte_index(highest)? + 1;
            let exists = match l.peek(db, &k, now) {
                Some(e) => string_of(&e.value).map(|_| true)?,
                None => false,
            };
            // A new key is built apart and stored once at the end. For an existing one `write`
            // finds the string `peek` just saw (the shard is still held), so `fresh` stands in
            // for it only to spare an `unwrap`.
            let mut fresh = Vec::new();
            let s = if exists {
                l.write(db, &k, now).and_then(|e| e.value.as_str_mut()).unwrap_or(&mut fresh)
            } else {
                &mut fresh
            };
            if s.len() < need {
                s.resize(need, 0);
            }
            let replies = ops.iter().map(|op| apply_field_op(s, op)).collect();
            if !exists {
                l.set(db, &k, Value::Str(fresh), None, 0, false, now).mc_bits |= mc_bits::RAW_STRING;
            }
            replies
        }
    };
    drop(l);
    if highest.is_some() {
        ctx.notify_after(notify::STRING, "setbit", k.key);
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_LIMIT: fn() -> u64 = || u64::MAX;

    #[test]
    fn offsets_as_redis_reads_them() {
        let limit = || 512u64 << 20;
        assert_eq!(parse_bit_offset(b"0", None, limit), Ok(0));
        assert_eq!(parse_bit_offset(b"4294967295", None, limit), Ok(4294967295));
        assert_eq!(parse_bit_offset(b"4294967296", None, limit), Err(bad_offset()));
        assert_eq!(parse_bit_offset(b"-1", None, limit), Err(bad_offset()));
        assert_eq!(parse_bit_offset(b"#1", None, limit), Err(bad_offset()));
        assert_eq!(parse_bit_offset(b"#3", Some(8), limit), Ok(24));
        assert_eq!(parse_bit_offset(b"#", Some(8), limit), Err(bad_offset()));
        assert_eq!(parse_bit_offset(b"", Some(8), limit), Err(bad_offset()));
        // 2^60 * 8 wraps to i64::MIN in redis-server's multiply: refused as negative.
        assert_eq!(parse_bit_offset(b"#1152921504606846976", Some(8), NO_LIMIT), Err(bad_offset()));
        // Small offsets never read the configuration.
        assert_eq!(parse_bit_offset(b"8388607", None, || panic!("read the limit")), Ok(8388607));
    }

    #[test]
    fn field_types() {
        assert_eq!(FieldType::parse(b"i64"), Ok(FieldType { signed: true, bits: 64 }));
        assert_eq!(FieldType::parse(b"u63"), Ok(FieldType { signed: false, bits: 63 }));
        assert_eq!(FieldType::parse(b"u8\0junk"), Ok(FieldType { signed: false, bits: 8 }));
        for bad in [&b"u64"[..], b"I8", b"U8", b"i65", b"i0", b"i08", b"u+8", b"x8", b"", b"i", b"8"] {
            assert_eq!(FieldType::parse(bad), Err(bad_field_type()), "{bad:?}");
        }
    }

    #[test]
    fn ranges_as_redis_7_0() {
        assert_eq!(bit_range(6, 0, -1, Unit::Byte), Some((0, 47)));
        assert_eq!(bit_range(6, 1, 1, Unit::Byte), Some((8, 15)));
        assert_eq!(bit_range(6, 5, 30, Unit::Bit), Some((5, 30)));
        assert_eq!(bit_range(6, -100, 100, Unit::Bit), Some((0, 47)));
        assert_eq!(bit_range(6, -1, -5, Unit::Byte), None);
        assert_eq!(bit_range(6, 10, 20, Unit::Byte), None);
        assert_eq!(bit_range(0, 0, -1, Unit::Byte), None);
        assert_eq!(bit_range(1, i64::MIN, i64::MAX, Unit::Bit), Some((0, 7)));
    }

    #[test]
    fn scans() {
        let s = b"foobar";
        assert_eq!(count_range(s, 0, 47), 26);
        assert_eq!(count_range(s, 8, 15), 6);
        assert_eq!(count_range(s, 5, 30), 17);
        assert_eq!(find_bit(&[0xff, 0xf0, 0], 0, 23, false), Some(12));
        assert_eq!(find_bit(&[0, 0, 1], 0, 23, true), Some(23));
        assert_eq!(find_bit(&[0xff; 20], 3, 150, false), None);
        let mut long = vec![0u8; 100];
        long[77] = 0x10;
        assert_eq!(find_bit(&long, 1, 799, true), Some(77 * 8 + 3));
        assert_eq!(popcount(&[0xff; 17]), 136);
    }

    #[test]
    fn overflow_rules() {
        use Overflow::*;
        assert_eq!(unsigned_result(250, 10, 8, Wrap), Some(4));
        assert_eq!(unsigned_result(250, 10, 8, Sat), Some(255));
        assert_eq!(unsigned_result(250, 10, 8, Fail), None);
        assert_eq!(unsigned_result(5, -10, 8, Sat), Some(0));
        assert_eq!(unsigned_result(5, -10, 8, Wrap), Some(251));
        assert_eq!(unsigned_result(u64::MAX, 0, 8, Wrap), Some(255));
        assert_eq!(unsigned_result(u64::MAX, 0, 8, Sat), Some(255));
        assert_eq!(signed_result(120, 10, 8, Wrap), Some(-126));
        assert_eq!(signed_result(120, 10, 8, Sat), Some(127));
        assert_eq!(signed_result(-120, -10, 8, Sat), Some(-128));
        assert_eq!(signed_result(-120, -10, 8, Fail), None);
        assert_eq!(signed_result(i64::MAX, 1, 64, Wrap), Some(i64::MIN));
        assert_eq!(signed_result(i64::MIN, -1, 64, Sat), Some(i64::MIN));
        assert_eq!(signed_result(200, 0, 8, Wrap), Some(-56));
        // redis-server's wrapping intermediate: saturates to the maximum.
        assert_eq!(signed_result(i64::MIN, 0, 8, Sat), Some(127));
        assert_eq!(signed_result(3, 4, 64, Fail), Some(7));
    }

    #[test]
    fn fields_read_and_write_in_redis_bit_order() {
        let mut s = vec![0u8; 3];
        assert_eq!(
            apply_field_op(
                &mut s,
                &FieldOp {
                    action: FieldAction::Set(-1),
                    ty: FieldType { signed: true, bits: 5 },
                    offset: 6,
                    overflow: Overflow::Wrap
                }
            ),
            Some(0)
        );
        assert_eq!(s, [0x03, 0xe0, 0]);
        assert_eq!(read_field(&s, 6, FieldType { signed: true, bits: 5 }), -1);
        assert_eq!(read_field(&s, 6, FieldType { signed: false, bits: 5 }), 31);
        assert_eq!(read_field(&s, 20, FieldType { signed: false, bits: 63 }), 0);
    }

    #[test]
    fn table_matches_redis_command_info() {
        let find = |n: &str| COMMANDS.iter().find(|s| s.name == n).unwrap();
        assert_eq!(COMMANDS.len(), 7);
        assert_eq!(find("bitop").key_positions(6).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert!(find("bitfield_ro").has(READONLY | FAST) && !find("bitfield").has(READONLY));
        assert!(COMMANDS.iter().all(|s| s.group == "bitmap"));
    }

    /// SETBIT/GETBIT/BITCOUNT/BITPOS on bytes against a plain Vec<bool>.
    #[derive(Debug, Clone)]
    enum Step {
        Set(u64, bool),
        Count(i64, i64, bool),
        Pos(bool, i64, Option<i64>, bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..200, any::<bool>()).prop_map(|(o, b)| Step::Set(o, b)),
            (-30i64..30, -30i64..30, any::<bool>()).prop_map(|(a, b, u)| Step::Count(a, b, u)),
            (any::<bool>(), -30i64..30, proptest::option::of(-30i64..30), any::<bool>())
                .prop_map(|(b, s, e, u)| Step::Pos(b, s, e, u)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn bit_commands_agree_with_a_bool_model(steps in proptest::collection::vec(step(), 1..40)) {
            let mut s: Vec<u8> = Vec::new();
            let mut model: Vec<bool> = Vec::new();
            for st in steps {
                match st {
                    Step::Set(o, b) => {
                        let need = (o / 8 + 1) as usize;
                        if s.len() < need { s.resize(need, 0); model.resize(need * 8, false); }
                        prop_assert_eq!(bit_at(&s, o), model[o as usize]);
                        set_bit(&mut s, o, b);
                        model[o as usize] = b;
                        prop_assert_eq!(bit_at(&s, o + 1000), false);
                    }
                    Step::Count(a, b, bit_unit) => {
                        let unit = if bit_unit { Unit::Bit } else { Unit::Byte };
                        let got = bit_range(s.len(), a, b, unit).map_or(0, |(f, l)| count_range(&s, f, l));
                        let want = model_range(model.len(), a, b, bit_unit)
                            .map_or(0, |(f, l)| model[f..=l].iter().filter(|&&x| x).count() as u64);
                        prop_assert_eq!(got, want);
                    }
                    Step::Pos(bit, a, e, bit_unit) => {
                        let unit = if bit_unit { Unit::Bit } else { Unit::Byte };
                        let got = bit_range(s.len(), a, e.unwrap_or(-1), unit).and_then(|(f, l)| find_bit(&s, f, l, bit));
                        let want = model_range(model.len(), a, e.unwrap_or(-1), bit_unit)
                            .and_then(|(f, l)| (f..=l).find(|&i| model[i] == bit).map(|i| i as u64));
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }

    /// The model's range: in bits over a `bits`-long bitmap, unit conversion done on indexes.
    fn model_range(bits: usize, start: i64, end: i64, bit_unit: bool) -> Option<(usize, usize)> {
        let total = if bit_unit { bits as i64 } else { bits as i64 / 8 };
        let norm = |i: i64| if i < 0 { (total + i).max(0) } else { i };
        let (a, b) = (norm(start), norm(end).min(total - 1));
        if a > b {
            return None;
        }
        let (a, b) = (a as usize, b as usize);
        Some(if bit_unit { (a, b) } else { (a * 8, b * 8 + 7) })
    }
}
