//! Redis's RDB format: the writer cachette saves snapshots and DUMP payloads with, and the
//! reader that loads what redis-server 7.0 and 7.2 write.
//!
//! A file is `REDIS` + four version digits, then a sequence of records each led by one byte:
//! an opcode (AUX, SELECTDB, RESIZEDB, EXPIRETIME_MS, IDLE, FREQ, FUNCTION2, MODULE_AUX, EOF)
//! or a value type (then the key and the value), and after EOF an 8-byte little-endian CRC-64
//! of everything before it (0 when the writer skipped the checksum). Lengths use RDB's
//! variable encoding (6, 14, 32 or 64 bits; the `11` prefix marks a string stored as an
//! integer or LZF-compressed).
//!
//! What the writer produces, all in encodings redis-server 7.0 writes and loads itself:
//! strings (integer-encoded when the text is a canonical integer, LZF when `rdbcompression`
//! and long enough), lists as quicklist 2 of listpacks of about 8 KB, and hashes, sets and
//! sorted sets in their plain encodings (`HASH`, `SET`, `ZSET_2`). redis-server converts a
//! small plain collection to listpack/intset as it loads it, exactly as it does its own, so the
//! compact encodings are not worth a second writer; the reader accepts them all.
//!
//! memcached client flags ride in an AUX record `cachette-mc-flags` right before the key that
//! carries them: redis-server ignores AUX fields it does not know (it logs them at debug
//! level), so the file still loads there, flags dropped.
//!
//! The reader works on the whole file in memory and checks every length against the bytes
//! left before allocating, so a lying length fails with an error instead of a huge
//! allocation; counts are never trusted for capacity beyond what the remaining bytes can hold.

use std::io::{self, Write};

use super::{crc64, lzf};
use crate::types::hash::Hash;
use crate::types::list::List;
use crate::types::set::{Member, Set};
use crate::types::zset::ZSet;
use crate::types::Value;

/// The version cachette writes (redis-server 7.0's).
pub const RDB_VERSION: u16 = 10;
/// The newest version the reader accepts (redis-server 7.2's).
pub const RDB_VERSION_MAX: u16 = 11;

/// AUX field carrying the memcached flags of the key that follows.
pub const AUX_MC_FLAGS: &[u8] = b"cachette-mc-flags";

mod op {
    pub const FUNCTION_PRE_GA: u8 = 245;
    pub const FUNCTION2: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Value type bytes.
pub mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;
/// Not a file value: stands for the ziplist nodes of `LIST_ZIPLIST` and `LIST_QUICKLIST`.
const ZIPLIST_NODE: u64 = 0;

/// Target encoded size of one quicklist node (redis-server's `list-max-listpack-size -2`).
const LIST_NODE_BYTES: usize = 8 * 1024;

// ---- writer ------------------------------------------------------------------------------------

/// Writes RDB records to `out`, keeping the running CRC-64.
pub struct Writer<W: Write> {
    out: W,
    crc: u64,
    checksum: bool,
    compress: bool,
}

impl<W: Write> Writer<W> {
    /// A writer; `checksum` and `compress` are `rdbchecksum` and `rdbcompression`.
    pub fn new(out: W, checksum: bool, compress: bool) -> Writer<W> {
        Writer { out, crc: 0, checksum, compress }
    }

    fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        if self.checksum {
            self.crc = crc64::update(self.crc, b);
        }
        self.out.write_all(b)
    }

    fn byte(&mut self, b: u8) -> io::Result<()> {
        self.raw(&[b])
    }

    /// RDB's variable-length length.
    fn len(&mut self, n: u64) -> io::Result<()> {
        if n < 1 << 6 {
            self.byte(n as u8)
        } else if n < 1 << 14 {
            self.raw(&[0x40 | (n >> 8) as u8, n as u8])
        } else if n <= u64::from(u32::MAX) {
            self.byte(0x80)?;
            self.raw(&(n as u32).to_be_bytes())
        } else {
            self.byte(0x81)?;
            self.raw(&n.to_be_bytes())
        }
    }

    /// A string, integer-encoded or compressed when that is what redis-server would do.
    pub fn string(&mut self, s: &[u8]) -> io::Result<()> {
        if s.len() <= 11 {
            if let Some(v) = crate::types::string::parse_i64(s) {
                if let Ok(v) = i8::try_from(v) {
                    return self.raw(&[0xC0 | ENC_INT8, v as u8]);
                }
                if let Ok(v) = i16::try_from(v) {
                    self.byte(0xC0 | ENC_INT16)?;
                    return self.raw(&v.to_le_bytes());
                }
                if let Ok(v) = i32::try_from(v) {
                    self.byte(0xC0 | ENC_INT32)?;
                    return self.raw(&v.to_le_bytes());
                }
            }
        }
        // Redis tries LZF only above 20 bytes and keeps it only when it saves 4 bytes or more.
        if self.compress && s.len() > 20 {
            if let Some(c) = lzf::compress(s, s.len() - 4) {
                self.byte(0xC0 | ENC_LZF)?;
                self.len(c.len() as u64)?;
                self.len(s.len() as u64)?;
                return self.raw(&c);
            }
        }
        self.len(s.len() as u64)?;
        self.raw(s)
    }

    /// The header: magic, version and the AUX fields redis-server 7.0 writes.
    pub fn header(&mut self, ctime: u64, used_mem: u64, aof_base: bool) -> io::Result<()> {
        self.raw(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        self.aux(b"redis-ver", crate::commands::connection::REDIS_VERSION.as_bytes())?;
        self.aux(b"redis-bits", b"64")?;
        self.aux(b"ctime", ctime.to_string().as_bytes())?;
        self.aux(b"used-mem", used_mem.to_string().as_bytes())?;
        self.aux(b"aof-base", if aof_base { b"1" } else { b"0" })
    }

    /// One AUX record.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.byte(op::AUX)?;
        self.string(key)?;
        self.string(value)
    }

    /// SELECTDB then RESIZEDB with the database's key and TTL counts.
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.byte(op::SELECTDB)?;
        self.len(db as u64)?;
        self.byte(op::RESIZEDB)?;
        self.len(keys)?;
        self.len(expires)
    }

    /// One key: its memcached flags (when not 0), expiry, type, name and value.
    pub fn key(&mut self, key: &[u8], value: &Value, expire_at: Option<u64>, flags: u32) -> io::Result<()> {
        if flags != 0 {
            self.aux(AUX_MC_FLAGS, flags.to_string().as_bytes())?;
        }
        if let Some(at) = expire_at {
            self.byte(op::EXPIRETIME_MS)?;
            self.raw(&at.to_le_bytes())?;
        }
        self.byte(value_type(value))?;
        self.string(key)?;
        self.value(value)
    }

    /// A value's body (its type byte written separately: see [`value_type`]).
    pub fn value(&mut self, value: &Value) -> io::Result<()> {
        match value {
            Value::Str(s) => self.string(s),
            Value::List(l) => {
                let mut nodes: Vec<Vec<u8>> = Vec::new();
                let mut lp = ListpackBuilder::default();
                for e in l.iter() {
                    lp.push(e);
                    if lp.bytes() >= LIST_NODE_BYTES {
                        nodes.push(std::mem::take(&mut lp).finish());
                    }
                }
                if lp.count > 0 {
                    nodes.push(lp.finish());
                }
                self.len(nodes.len() as u64)?;
                for n in &nodes {
                    self.len(QUICKLIST_NODE_PACKED)?;
                    self.string(n)?;
                }
                Ok(())
            }
            Value::Set(s) => {
                self.len(s.len() as u64)?;
                for m in s.iter() {
                    m.with_bytes(|b| self.string(b))?;
                }
                Ok(())
            }
            Value::Hash(h) => {
                self.len(h.len() as u64)?;
                for (f, v) in h.iter() {
                    self.string(f)?;
                    self.string(v)?;
                }
                Ok(())
            }
            Value::ZSet(z) => {
                self.len(z.len() as u64)?;
                // Highest score first, as redis-server writes it: its loader then inserts each
                // member at the head of the skiplist.
                let all: Vec<(&[u8], f64)> = z.iter().collect();
                for (m, score) in all.into_iter().rev() {
                    self.string(m)?;
                    self.raw(&score.to_le_bytes())?;
                }
                Ok(())
            }
        }
    }

    /// EOF and the checksum; hands back the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.byte(op::EOF)?;
        let crc = if self.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        Ok(self.out)
    }
}

/// The RDB type byte cachette writes for `value`.
pub fn value_type(value: &Value) -> u8 {
    match value {
        Value::Str(_) => ty::STRING,
        Value::List(_) => ty::LIST_QUICKLIST_2,
        Value::Set(_) => ty::SET,
        Value::Hash(_) => ty::HASH,
        Value::ZSet(_) => ty::ZSET_2,
    }
}

/// Builds one listpack: `total bytes (u32) | count (u16) | entries | 0xFF`, each entry being
/// its encoding, its data and its "backlen" (the entry's length, for walking backwards).
#[derive(Default)]
struct ListpackBuilder {
    body: Vec<u8>,
    count: usize,
}

impl ListpackBuilder {
    fn bytes(&self) -> usize {
        self.body.len() + 7
    }

    fn push(&mut self, e: &[u8]) {
        let start = self.body.len();
        let int = if e.len() <= 20 { crate::types::string::parse_i64(e) } else { None };
        match int {
            Some(v) if (0..=127).contains(&v) => self.body.push(v as u8),
            Some(v) if (-4096..=4095).contains(&v) => {
                let u = (v as u16) & 0x1fff;
                self.body.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
            }
            Some(v) if i16::try_from(v).is_ok() => {
                self.body.push(0xF1);
                self.body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                self.body.push(0xF2);
                self.body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                self.body.push(0xF3);
                self.body.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                self.body.push(0xF4);
                self.body.extend_from_slice(&v.to_le_bytes());
            }
            None => {
                let n = e.len();
                if n < 64 {
                    self.body.push(0x80 | n as u8);
                } else if n < 4096 {
                    self.body.extend_from_slice(&[0xE0 | (n >> 8) as u8, n as u8]);
                } else {
                    self.body.push(0xF0);
                    self.body.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.body.extend_from_slice(e);
            }
        }
        let l = self.body.len() - start;
        encode_backlen(l, &mut self.body);
        self.count += 1;
    }

    fn finish(self) -> Vec<u8> {
        let total = self.bytes();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xFF);
        out
    }
}

fn encode_backlen(l: usize, out: &mut Vec<u8>) {
    if l <= 127 {
        out.push(l as u8);
    } else if l < 16383 {
        out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]);
    } else if l < 2_097_151 {
        out.extend_from_slice(&[(l >> 14) as u8, ((l >> 7) & 127) as u8 | 128, (l & 127) as u8 | 128]);
    } else if l < 268_435_455 {
        out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]);
    } else {
        out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]);
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// A DUMP payload: type, value, RDB version (u16 LE), CRC-64 (u64 LE) of all that precedes.
pub fn dump_payload(value: &Value, compress: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), false, compress);
    // Writing into a Vec cannot fail.
    let _ = w.byte(value_type(value)).and_then(|_| w.value(value));
    let mut out = w.out;
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// ---- reader ------------------------------------------------------------------------------------

/// Why a file or payload could not be read: what was wrong and at which byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

type R<T> = Result<T, Error>;

/// One key as the reader hands it over.
#[derive(Debug)]
pub struct Record {
    /// Database number.
    pub db: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
    /// Absolute expiry, unix ms.
    pub expire_at: Option<u64>,
    /// memcached flags (from the AUX record before the key).
    pub flags: u32,
    /// Seconds idle (IDLE opcode), if given.
    pub idle: Option<u64>,
    /// LFU counter (FREQ opcode), if given.
    pub freq: Option<u8>,
}

/// What a whole file held besides its keys.
#[derive(Debug, Default)]
pub struct Summary {
    /// The file's RDB version.
    pub version: u16,
    /// AUX fields, in file order (the per-key memcached flags excepted).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys handed to the callback.
    pub keys: u64,
    /// Whether the file carried a (non-zero, verified) checksum.
    pub checksummed: bool,
    /// Warnings about records that were skipped (functions).
    pub warnings: Vec<String>,
    /// Bytes the RDB image took (EOF opcode and checksum included): an AOF base may go on
    /// with RESP commands after it.
    pub end: usize,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        Err(Error { offset: self.pos, message: message.into() })
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            return self.err(format!("unexpected end of input (wanted {n} more bytes)"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A length, or (second field true) a special string encoding number.
    fn len_or_enc(&mut self) -> R<(u64, bool)> {
        let b = self.byte()?;
        match b >> 6 {
            0 => Ok((u64::from(b & 0x3f), false)),
            1 => Ok(((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?), false)),
            2 => match b {
                0x80 => Ok((u64::from(u32::from_be_bytes(self.array()?)), false)),
                0x81 => Ok((u64::from_be_bytes(self.array()?), false)),
                _ => self.err(format!("unknown length encoding {b:#04x}")),
            },
            _ => Ok((u64::from(b & 0x3f), true)),
        }
    }

    fn len(&mut self) -> R<u64> {
        match self.len_or_enc()? {
            (n, false) => Ok(n),
            _ => self.err("string encoding where a length was expected"),
        }
    }

    /// A count of items each at least `min_bytes` long: refused when the input left cannot
    /// hold that many, so no later capacity is sized by a lie.
    fn count(&mut self, min_bytes: usize) -> R<usize> {
        let n = self.len()?;
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return self.err(format!("count {n} exceeds what the remaining input can hold"));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> R<Vec<u8>> {
        match self.len_or_enc()? {
            (n, false) => {
                if n > self.remaining() as u64 {
                    return self.err(format!("string of {n} bytes runs past the end"));
                }
                Ok(self.take(n as usize)?.to_vec())
            }
            (enc, true) => match enc as u8 {
                ENC_INT8 => Ok((self.byte()? as i8).to_string().into_bytes()),
                ENC_INT16 => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
                ENC_INT32 => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
                ENC_LZF => {
                    let clen = self.len()?;
                    let ulen = self.len()?;
                    if clen > self.remaining() as u64 {
                        return self.err("compressed string runs past the end");
                    }
                    // One LZF back reference (3 bytes) expands to at most 264: a declared size
                    // beyond 88 times the compressed one is a lie, refused before allocating.
                    if ulen > clen.saturating_mul(88) {
                        return self.err("compressed string declares an impossible length");
                    }
                    let at = self.pos;
                    let c = self.take(clen as usize)?;
                    lzf::decompress(c, ulen as usize)
                        .map_err(|m| Error { offset: at, message: format!("bad LZF string: {m}") })
                }
                e => self.err(format!("unknown string encoding {e}")),
            },
        }
    }

    fn u64_text(&mut self) -> R<u64> {
        let s = self.string()?;
        match std::str::from_utf8(&s).ok().and_then(|t| t.parse().ok()) {
            Some(v) => Ok(v),
            None => self.err("expected an integer"),
        }
    }

    /// ZSET (type 3) score: a length byte then text; 253/254/255 are NaN/+inf/-inf.
    fn text_double(&mut self) -> R<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let t = self.take(n as usize)?;
                match std::str::from_utf8(t).ok().and_then(|t| t.parse::<f64>().ok()) {
                    Some(v) => Ok(v),
                    None => self.err("bad score"),
                }
            }
        }
    }
}

/// Reads a value of type `t` at the cursor.
fn read_value(c: &mut Cursor<'_>, t: u8) -> R<Value> {
    match t {
        ty::STRING => Ok(Value::Str(c.string()?)),
        ty::LIST => {
            let n = c.count(1)?;
            let mut l = List::default();
            for _ in 0..n {
                l.push(crate::types::list::End::Tail, &c.string()?);
            }
            non_empty(c, Value::List(Box::new(l)))
        }
        ty::SET => {
            let n = c.count(1)?;
            let mut s = Set::default();
            for _ in 0..n {
                let m = c.string()?;
                if !s.insert(&m) {
                    return c.err("duplicate set member");
                }
            }
            non_empty(c, Value::Set(Box::new(s)))
        }
        ty::ZSET | ty::ZSET_2 => {
            let n = c.count(2)?;
            let mut z = ZSet::new();
            for _ in 0..n {
                let m = c.string()?;
                let score = if t == ty::ZSET_2 { f64::from_le_bytes(c.array()?) } else { c.text_double()? };
                zadd(c, &mut z, &m, score)?;
            }
            non_empty(c, Value::ZSet(Box::new(z)))
        }
        ty::HASH => {
            let n = c.count(2)?;
            let mut h = Hash::new();
            for _ in 0..n {
                let f = c.string()?;
                let v = c.string()?;
                if !h.set(&f, &v) {
                    return c.err("duplicate hash field");
                }
            }
            non_empty(c, Value::Hash(h))
        }
        ty::HASH_ZIPMAP => {
            let blob = c.string()?;
            let pairs = zipmap_pairs(&blob).map_err(|m| Error { offset: c.pos, message: m.into() })?;
            let mut h = Hash::new();
            for (f, v) in pairs {
                if !h.set(&f, &v) {
                    return c.err("duplicate hash field in zipmap");
                }
            }
            non_empty(c, Value::Hash(h))
        }
        ty::LIST_ZIPLIST | ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
            let mut l = List::default();
            let nodes = if t == ty::LIST_ZIPLIST { 1 } else { c.count(2)? };
            for _ in 0..nodes {
                let container = if t == ty::LIST_QUICKLIST_2 { c.len()? } else { ZIPLIST_NODE };
                let blob = c.string()?;
                let elems = match container {
                    QUICKLIST_NODE_PLAIN => Ok(vec![blob]),
                    QUICKLIST_NODE_PACKED => listpack(&blob),
                    ZIPLIST_NODE => ziplist(&blob),
                    _ => return c.err(format!("unknown quicklist container {container}")),
                }
                .map_err(|m| Error { offset: c.pos, message: m.into() })?;
                for e in elems {
                    l.push(crate::types::list::End::Tail, &e);
                }
            }
            non_empty(c, Value::List(Box::new(l)))
        }
        ty::SET_INTSET => {
            let blob = c.string()?;
            let ints = intset(&blob).map_err(|m| Error { offset: c.pos, message: m.into() })?;
            let mut s = Set::default();
            for i in ints {
                if !s.insert_member(&Member::Int(i)) {
                    return c.err("duplicate intset member");
                }
            }
            non_empty(c, Value::Set(Box::new(s)))
        }
        ty::SET_LISTPACK => {
            let blob = c.string()?;
            let elems = listpack(&blob).map_err(|m| Error { offset: c.pos, message: m.into() })?;
            let mut s = Set::default();
            for e in elems {
                if !s.insert(&e) {
                    return c.err("duplicate set member");
                }
            }
            non_empty(c, Value::Set(Box::new(s)))
        }
        ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK | ty::HASH_ZIPLIST | ty::HASH_LISTPACK => {
            let blob = c.string()?;
            let elems = if t == ty::ZSET_ZIPLIST || t == ty::HASH_ZIPLIST { ziplist(&blob) } else { listpack(&blob) }
                .map_err(|m| Error { offset: c.pos, message: m.into() })?;
            if elems.len() % 2 != 0 {
                return c.err("odd number of elements in a packed hash or sorted set");
            }
            let mut it = elems.chunks_exact(2);
            if t == ty::HASH_ZIPLIST || t == ty::HASH_LISTPACK {
                let mut h = Hash::new();
                for pair in &mut it {
                    if !h.set(&pair[0], &pair[1]) {
                        return c.err("duplicate hash field");
                    }
                }
                non_empty(c, Value::Hash(h))
            } else {
                let mut z = ZSet::new();
                for pair in &mut it {
                    let score = std::str::from_utf8(&pair[1]).ok().and_then(|s| s.parse::<f64>().ok());
                    match score {
                        Some(s) => zadd(c, &mut z, &pair[0], s)?,
                        None => return c.err("bad score in a packed sorted set"),
                    }
                }
                non_empty(c, Value::ZSet(Box::new(z)))
            }
        }
        ty::MODULE_PRE_GA | ty::MODULE_2 => {
            c.err("the file holds a module data type, which cachette cannot load (no modules)")
        }
        ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
            c.err("the file holds a stream, which cachette does not support yet")
        }
        other => c.err(format!("unknown value type {other}")),
    }
}

fn zadd(c: &Cursor<'_>, z: &mut ZSet, m: &[u8], score: f64) -> R<()> {
    if score.is_nan() {
        return c.err("sorted set with a NaN score");
    }
    if z.insert(m, score).is_some() {
        return c.err("duplicate sorted set member");
    }
    Ok(())
}

/// redis-server refuses empty collections in a file ("Empty keys skipped" in 7.0 for packed
/// ones); an empty one would break the "stored collections are never empty" rule here.
fn non_empty(c: &Cursor<'_>, v: Value) -> R<Value> {
    let empty = match &v {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::ZSet(z) => z.is_empty(),
    };
    if empty {
        return c.err("empty collection");
    }
    Ok(v)
}

/// Reads a whole RDB file, calling `on_key` for each key in order. Errors name the byte offset.
pub fn read_file(buf: &[u8], mut on_key: impl FnMut(Record) -> Result<(), String>) -> R<Summary> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c.take(9)?;
    if &magic[..5] != b"REDIS" {
        return Err(Error { offset: 0, message: "not an RDB file (no REDIS signature)".into() });
    }
    let version = std::str::from_utf8(&magic[5..]).ok().and_then(|v| v.parse::<u16>().ok());
    let version = match version {
        Some(v) if (1..=RDB_VERSION_MAX).contains(&v) => v,
        _ => {
            return Err(Error {
                offset: 5,
                message: format!(
                    "unsupported RDB version '{}' (cachette reads up to {RDB_VERSION_MAX})",
                    String::from_utf8_lossy(&magic[5..])
                ),
            })
        }
    };
    let mut sum = Summary { version, ..Summary::default() };
    let (mut db, mut expire, mut flags, mut idle, mut freq) = (0usize, None, 0u32, None, None);
    loop {
        let t = c.byte()?;
        match t {
            op::EOF => break,
            op::SELECTDB => {
                let n = c.len()?;
                if n >= crate::engine::DATABASES as u64 {
                    return c.err(format!("database {n} out of range (cachette has {})", crate::engine::DATABASES));
                }
                db = n as usize;
            }
            op::RESIZEDB => {
                c.len()?;
                c.len()?;
            }
            op::EXPIRETIME_MS => expire = Some(u64::from_le_bytes(c.array()?)),
            op::EXPIRETIME => expire = Some(u64::from(u32::from_le_bytes(c.array()?)) * 1000),
            op::IDLE => idle = Some(c.len()?),
            op::FREQ => freq = Some(c.byte()?),
            op::AUX => {
                let k = c.string()?;
                if k == AUX_MC_FLAGS {
                    flags = u32::try_from(c.u64_text()?).or_else(|_| c.err("memcached flags out of range"))?;
                } else {
                    let v = c.string()?;
                    sum.aux.push((k, v));
                }
            }
            op::FUNCTION2 => {
                c.string()?;
                sum.warnings.push("skipped a function library (cachette has no scripting)".into());
            }
            op::FUNCTION_PRE_GA => {
                return c.err("the file holds a pre-release function record, which cachette cannot read")
            }
            op::MODULE_AUX => {
                return c.err("the file holds module auxiliary data, which cachette cannot load (no modules)")
            }
            t => {
                let key = c.string()?;
                let value = read_value(&mut c, t)?;
                let rec =
                    Record { db, key, value, expire_at: expire.take(), flags, idle: idle.take(), freq: freq.take() };
                flags = 0;
                sum.keys += 1;
                let at = c.pos;
                on_key(rec).map_err(|message| Error { offset: at, message })?;
            }
        }
    }
    if version >= 5 {
        let at = c.pos;
        let stored = u64::from_le_bytes(c.array()?);
        if stored != 0 {
            let computed = crc64::update(0, &buf[..at]);
            if computed != stored {
                return Err(Error {
                    offset: at,
                    message: format!("wrong RDB checksum: expected {stored:x}, computed {computed:x}"),
                });
            }
            sum.checksummed = true;
        }
    }
    sum.end = c.pos;
    Ok(sum)
}

/// Checks a DUMP payload's footer and reads its value.
pub fn read_payload(payload: &[u8]) -> Result<Value, PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::Footer);
    }
    let footer = &payload[payload.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION_MAX || crc64::update(0, &payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(PayloadError::Footer);
    }
    // The value is read from the whole payload, footer included, as redis-server reads it: a
    // value whose last string runs into the footer loads there, so it loads here too.
    let mut c = Cursor { buf: payload, pos: 0 };
    let t = c.byte().map_err(|_| PayloadError::Format)?;
    read_value(&mut c, t).map_err(|_| PayloadError::Format)
}

/// Why RESTORE refused a payload, as redis-server distinguishes them.
#[derive(Debug, PartialEq)]
pub enum PayloadError {
    /// Bad version or checksum.
    Footer,
    /// The value did not parse.
    Format,
}

// ---- compact encodings --------------------------------------------------------------------------

/// The elements of a listpack (integers as their decimal text).
fn listpack(b: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if b.len() < 7 {
        return Err("listpack too short");
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return Err("listpack size header disagrees with its length");
    }
    let declared = u16::from_le_bytes([b[4], b[5]]) as usize;
    let mut out = Vec::new();
    let mut p = 6;
    let need = |p: usize, n: usize| if p + n <= b.len() { Ok(()) } else { Err("listpack entry runs past the end") };
    loop {
        need(p, 1)?;
        let e = b[p];
        if e == 0xFF {
            p += 1;
            break;
        }
        let start = p;
        let (v, hdr, data): (Vec<u8>, usize, usize) = if e & 0x80 == 0 {
            ((e & 0x7f).to_string().into_bytes(), 1, 0)
        } else if e & 0xC0 == 0x80 {
            let n = (e & 0x3f) as usize;
            need(p, 1 + n)?;
            (b[p + 1..p + 1 + n].to_vec(), 1, n)
        } else if e & 0xE0 == 0xC0 {
            need(p, 2)?;
            let u = ((u16::from(e & 0x1f) << 8) | u16::from(b[p + 1])) as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            (v.to_string().into_bytes(), 2, 0)
        } else if e & 0xF0 == 0xE0 {
            need(p, 2)?;
            let n = ((usize::from(e & 0x0f)) << 8) | usize::from(b[p + 1]);
            need(p, 2 + n)?;
            (b[p + 2..p + 2 + n].to_vec(), 2, n)
        } else {
            let int = |n: usize| -> Result<i64, &'static str> {
                need(p, 1 + n)?;
                let mut a = [0u8; 8];
                a[..n].copy_from_slice(&b[p + 1..p + 1 + n]);
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n as u32;
                Ok((i64::from_le_bytes(a) << shift) >> shift)
            };
            match e {
                0xF0 => {
                    need(p, 5)?;
                    let n = u32::from_le_bytes([b[p + 1], b[p + 2], b[p + 3], b[p + 4]]) as usize;
                    need(p, 5 + n)?;
                    (b[p + 5..p + 5 + n].to_vec(), 5, n)
                }
                0xF1 => (int(2)?.to_string().into_bytes(), 3, 0),
                0xF2 => (int(3)?.to_string().into_bytes(), 4, 0),
                0xF3 => (int(4)?.to_string().into_bytes(), 5, 0),
                0xF4 => (int(8)?.to_string().into_bytes(), 9, 0),
                _ => return Err("unknown listpack entry encoding"),
            }
        };
        let entry = hdr + data;
        p = start + entry + backlen_size(entry);
        need(p, 0)?;
        out.push(v);
    }
    if p != b.len() {
        return Err("bytes after the listpack terminator");
    }
    if declared != 65535 && declared != out.len() {
        return Err("listpack element count disagrees with its entries");
    }
    Ok(out)
}

/// The elements of a ziplist (Redis before 7.0).
fn ziplist(b: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if b.len() < 11 {
        return Err("ziplist too short");
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return Err("ziplist size header disagrees with its length");
    }
    let mut out = Vec::new();
    let mut p = 10;
    let need = |p: usize, n: usize| if p + n <= b.len() { Ok(()) } else { Err("ziplist entry runs past the end") };
    loop {
        need(p, 1)?;
        if b[p] == 0xFF {
            p += 1;
            break;
        }
        // prevlen: 1 byte, or 0xFE and 4 bytes.
        p += if b[p] == 0xFE { 5 } else { 1 };
        need(p, 1)?;
        let e = b[p];
        let int = |n: usize| -> Result<i64, &'static str> {
            need(p, 1 + n)?;
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&b[p + 1..p + 1 + n]);
            let shift = 64 - 8 * n as u32;
            Ok((i64::from_le_bytes(a) << shift) >> shift)
        };
        let (v, len): (Vec<u8>, usize) = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                need(p, 1 + n)?;
                (b[p + 1..p + 1 + n].to_vec(), 1 + n)
            }
            1 => {
                need(p, 2)?;
                let n = (usize::from(e & 0x3f) << 8) | usize::from(b[p + 1]);
                need(p, 2 + n)?;
                (b[p + 2..p + 2 + n].to_vec(), 2 + n)
            }
            2 => {
                need(p, 5)?;
                let n = u32::from_be_bytes([b[p + 1], b[p + 2], b[p + 3], b[p + 4]]) as usize;
                need(p, 5 + n)?;
                (b[p + 5..p + 5 + n].to_vec(), 5 + n)
            }
            _ => match e {
                0xC0 => (int(2)?.to_string().into_bytes(), 3),
                0xD0 => (int(4)?.to_string().into_bytes(), 5),
                0xE0 => (int(8)?.to_string().into_bytes(), 9),
                0xF0 => (int(3)?.to_string().into_bytes(), 4),
                0xFE => (int(1)?.to_string().into_bytes(), 2),
                0xF1..=0xFD => ((i64::from(e & 0x0f) - 1).to_string().into_bytes(), 1),
                _ => return Err("unknown ziplist entry encoding"),
            },
        };
        p += len;
        out.push(v);
    }
    if p != b.len() {
        return Err("bytes after the ziplist terminator");
    }
    Ok(out)
}

/// The members of an intset: encoding width (2, 4 or 8), count, sorted little-endian integers.
fn intset(b: &[u8]) -> Result<Vec<i64>, &'static str> {
    if b.len() < 8 {
        return Err("intset too short");
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let n = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("bad intset encoding");
    }
    if n.checked_mul(width) != Some(b.len() - 8) {
        return Err("intset length disagrees with its size");
    }
    Ok(b[8..]
        .chunks_exact(width)
        .map(|ch| {
            let mut a = [0u8; 8];
            a[..width].copy_from_slice(ch);
            let shift = 64 - 8 * width as u32;
            (i64::from_le_bytes(a) << shift) >> shift
        })
        .collect())
}

type Pair = (Vec<u8>, Vec<u8>);

/// The pairs of a zipmap (hashes in RDB files from Redis before 2.6).
fn zipmap_pairs(b: &[u8]) -> Result<Vec<Pair>, &'static str> {
    let mut p = 1; // zmlen: a count hint, unreliable past 253
    let mut out = Vec::new();
    let read_len = |p: &mut usize| -> Result<Option<usize>, &'static str> {
        let first = *b.get(*p).ok_or("zipmap runs past the end")?;
        match first {
            255 => Ok(None),
            254 => {
                let s = b.get(*p + 1..*p + 5).ok_or("zipmap runs past the end")?;
                *p += 5;
                Ok(Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize))
            }
            n => {
                *p += 1;
                Ok(Some(n as usize))
            }
        }
    };
    while let Some(klen) = read_len(&mut p)? {
        let k = b.get(p..p + klen).ok_or("zipmap key runs past the end")?.to_vec();
        p += klen;
        let vlen = read_len(&mut p)?.ok_or("zipmap ends after a key")?;
        let free = *b.get(p).ok_or("zipmap runs past the end")? as usize;
        p += 1;
        let v = b.get(p..p + vlen).ok_or("zipmap value runs past the end")?.to_vec();
        p += vlen + free;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_values() -> Vec<Value> {
        let big: Vec<u8> = b"0123456789abcdef".repeat(100);
        let list: List = ["a", "1", "-5000", "70000", "-9000000", "5000000000", "xyz"]
            .iter()
            .map(|s| s.as_bytes())
            .chain(std::iter::once(&big[..]))
            .chain((0..3000).map(|_| &b"element-that-fills-nodes"[..]))
            .collect();
        let mut h = Hash::new();
        h.set(b"f", b"v");
        h.set(b"n", b"12");
        let mut hl = Hash::new();
        for i in 0..1000 {
            hl.set(format!("field{i}").as_bytes(), &big[..i % 100]);
        }
        let set: Set = [Member::Int(1), Member::Int(-7), Member::Int(1 << 40)].into_iter().collect();
        let mut sl = Set::default();
        sl.insert(b"alpha");
        sl.insert(b"42");
        let mut z = ZSet::new();
        z.insert(b"a", 1.5);
        z.insert(b"b", f64::INFINITY);
        z.insert(b"c", -0.25);
        vec![
            Value::Str(b"hello".to_vec()),
            Value::Str(b"12345".to_vec()),
            Value::Str(b"-2147483648".to_vec()),
            Value::Str(b"007".to_vec()),
            Value::Str(big.clone()),
            Value::Str(Vec::new()),
            Value::List(Box::new(list)),
            Value::Hash(h),
            Value::Hash(hl),
            Value::Set(Box::new(set)),
            Value::Set(Box::new(sl)),
            Value::ZSet(Box::new(z)),
        ]
    }

    #[test]
    fn file_round_trips() {
        for (checksum, compress) in [(true, true), (false, false)] {
            let mut w = Writer::new(Vec::new(), checksum, compress);
            w.header(1_700_000_000, 1000, false).expect("header");
            w.select_db(3, 12, 1).expect("select");
            let values = sample_values();
            for (i, v) in values.iter().enumerate() {
                let exp = (i == 0).then_some(1_800_000_000_000);
                w.key(format!("k{i}").as_bytes(), v, exp, if i == 1 { 77 } else { 0 }).expect("key");
            }
            let file = w.finish().expect("finish");
            let mut got = Vec::new();
            let sum = read_file(&file, |r| {
                got.push(r);
                Ok(())
            })
            .expect("reads back");
            assert_eq!(sum.checksummed, checksum);
            assert!(sum.aux.iter().any(|(k, _)| k == b"redis-ver"));
            assert_eq!(got.len(), values.len());
            for (i, (r, v)) in got.iter().zip(&values).enumerate() {
                assert_eq!(&r.value, v, "value {i}");
                assert_eq!(r.db, 3);
                assert_eq!(r.key, format!("k{i}").into_bytes());
                assert_eq!(r.expire_at, (i == 0).then_some(1_800_000_000_000));
                assert_eq!(r.flags, if i == 1 { 77 } else { 0 });
            }
        }
    }

    #[test]
    fn payload_round_trips_and_checks() {
        for v in sample_values() {
            let p = dump_payload(&v, true);
            assert_eq!(read_payload(&p).expect("reads"), v);
            let mut bad = p.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(read_payload(&bad), Err(PayloadError::Footer));
        }
        assert_eq!(read_payload(b"short"), Err(PayloadError::Footer));
    }

    #[test]
    fn a_redis_server_dump_payload_reads() {
        // redis-server 7.0.15: SET k hello; DUMP k.
        let p = b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a";
        assert_eq!(read_payload(p).expect("reads"), Value::Str(b"hello".to_vec()));
    }

    #[test]
    fn checksum_mismatch_and_truncation_are_errors() {
        let mut w = Writer::new(Vec::new(), true, true);
        w.header(0, 0, false).expect("header");
        w.select_db(0, 1, 0).expect("select");
        w.key(b"a", &Value::Str(b"b".to_vec()), None, 0).expect("key");
        let file = w.finish().expect("finish");
        for cut in 0..file.len() {
            assert!(read_file(&file[..cut], |_| Ok(())).is_err(), "cut at {cut}");
        }
        let mut bad = file.clone();
        bad[12] ^= 0x20;
        assert!(read_file(&bad, |_| Ok(())).is_err());
    }

    #[test]
    fn lying_lengths_do_not_allocate() {
        // A set claiming 2^32 members in a tiny file.
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&[ty::SET, 1, b'k', 0x80, 0xff, 0xff, 0xff, 0xff]);
        assert!(read_file(&f, |_| Ok(())).is_err());
        // A string claiming 2^63 bytes.
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&[ty::STRING, 1, b'k', 0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(read_file(&f, |_| Ok(())).is_err());
        // LZF declaring a gigabyte from three bytes.
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&[ty::STRING, 1, b'k', 0xC3, 3, 0x80, 0x40, 0, 0, 0, 1, 2]);
        assert!(read_file(&f, |_| Ok(())).is_err());
    }

    #[test]
    fn a_redis_7_2_file_with_a_listpack_set_reads() {
        // REDIS0011, a set in the 7.2 listpack encoding (type 20), a listpack hash, no checksum.
        let mut f = b"REDIS0011".to_vec();
        let mut lp = ListpackBuilder::default();
        lp.push(b"a");
        lp.push(b"17");
        let set = lp.finish();
        f.extend_from_slice(&[op::SELECTDB, 2, ty::SET_LISTPACK, 1, b's', set.len() as u8]);
        f.extend_from_slice(&set);
        let mut lp = ListpackBuilder::default();
        lp.push(b"field");
        lp.push(b"value");
        let hash = lp.finish();
        f.extend_from_slice(&[ty::HASH_LISTPACK, 1, b'h', hash.len() as u8]);
        f.extend_from_slice(&hash);
        f.push(op::EOF);
        f.extend_from_slice(&[0; 8]);
        let mut got = Vec::new();
        let sum = read_file(&f, |r| {
            got.push(r);
            Ok(())
        })
        .expect("reads");
        assert_eq!(sum.version, 11);
        assert!(!sum.checksummed);
        let want_set: Set = [Member::Bytes(b"a"[..].into()), Member::Int(17)].into_iter().collect();
        assert_eq!((got[0].db, &got[0].value), (2, &Value::Set(Box::new(want_set))));
        let mut want_hash = Hash::new();
        want_hash.set(b"field", b"value");
        assert_eq!(got[1].value, Value::Hash(want_hash));
    }

    #[test]
    fn streams_and_modules_are_refused_by_name() {
        for (t, word) in [(ty::STREAM_LISTPACKS_2, "stream"), (ty::MODULE_2, "module")] {
            let mut f = b"REDIS0010".to_vec();
            f.extend_from_slice(&[t, 1, b'k', 0, 0, 0]);
            let e = read_file(&f, |_| Ok(())).expect_err("refused");
            assert!(e.message.contains(word), "{e}");
        }
    }

    #[test]
    fn compact_encodings_read() {
        // Ziplist of "a", 5, 300: header, entries (prevlen, encoding, data), end.
        let mut zl = vec![0u8; 10];
        zl.extend_from_slice(&[0, 0x01, b'a']);
        zl.extend_from_slice(&[3, 0xF6]);
        zl.extend_from_slice(&[2, 0xC0, 0x2c, 0x01]);
        zl.push(0xFF);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        zl[8..10].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(ziplist(&zl).expect("ziplist"), vec![b"a".to_vec(), b"5".to_vec(), b"300".to_vec()]);
        // Listpack written by the builder, negative and wide integers included.
        let mut lp = ListpackBuilder::default();
        for e in ["x", "-1", "-4096", "4095", "-32768", "8000000", "-2147483648", "9223372036854775807"] {
            lp.push(e.as_bytes());
        }
        let got = listpack(&lp.finish()).expect("listpack");
        let want: Vec<Vec<u8>> =
            ["x", "-1", "-4096", "4095", "-32768", "8000000", "-2147483648", "9223372036854775807"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
        assert_eq!(got, want);
        // Intset of width 2.
        let is = [2, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 5, 0];
        assert_eq!(intset(&is).expect("intset"), vec![-1, 5]);
        // Zipmap {a: bc}.
        let zm = [1, 1, b'a', 2, 0, b'b', b'c', 255];
        assert_eq!(zipmap_pairs(&zm).expect("zipmap"), vec![(b"a".to_vec(), b"bc".to_vec())]);
    }
}
