//! HyperLogLog values, in redis-server's own byte layout.
//!
//! A HyperLogLog is an ordinary string value, so GET/SET/DUMP move it between servers: the bytes
//! written here are the bytes redis-server 7.0 writes for the same inputs, and a value taken from
//! redis-server counts the same here. The layout (redis' "HYLL" format):
//!
//! ```text
//! +------+-----+-------+------------------------+---------------------------+
//! | HYLL | enc | 0 0 0 | cardinality (8 B, LE)  | registers                 |
//! +------+-----+-------+------------------------+---------------------------+
//!   enc: 0 = dense, 1 = sparse.  Top bit of the last cardinality byte set = cache invalid.
//! ```
//!
//! - **dense**: 16384 registers of 6 bits, packed from the least significant bit of each byte
//!   (register 0 is the low 6 bits of byte 0), 12288 bytes;
//! - **sparse**: a run-length code over the registers, three opcodes —
//!   `00xxxxxx` ZERO (1..64 zero registers), `01xxxxxx yyyyyyyy` XZERO (1..16384 zero registers),
//!   `1vvvvvxx` VAL (1..4 registers of value 1..32). A fresh HLL is one XZERO of 16384.
//!
//! An element goes to register `h & 16383` of its 64-bit MurmurHash64A `h` (seed `0xadc83b19`),
//! and the register keeps the maximum over its elements of "trailing zeros of `h >> 14`, plus
//! one" (at most 51). A sparse value becomes dense when an update would take it past
//! [`SPARSE_MAX_BYTES`] or needs a register value above 32.
//!
//! The count is Ertl's improved estimator over the register histogram, as redis-server 7.0 does
//! it, with the same floating point steps so that rounding agrees. PFCOUNT caches it in the header.
//!
//! The sparse update ([`set_register`]) reproduces redis-server's in-place edit step for step —
//! split the opcode covering the register, then merge adjacent equal VALs in a window of five —
//! because a different but equally valid encoding would not be byte-identical. Corrupted
//! values (set by a client with SET) are handled as redis-server handles them, reading a
//! missing trailing byte as the 0 of its string terminator, and refused with
//! [`HllError::Corrupt`] where redis-server refuses them.

/// Registers are indexed by this many low bits of the hash.
pub const P: u32 = 14;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits of the hash left for the run length.
const Q: usize = 64 - P as usize;
/// Bits per dense register.
const BITS: usize = 6;
/// Header bytes before the registers.
pub const HDR_SIZE: usize = 16;
/// Length of a dense value.
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
/// Largest sparse value (header included) before it is promoted to dense: redis-server's
/// `hll-sparse-max-bytes` default, a constant until the directive exists.
pub const SPARSE_MAX_BYTES: usize = 3000;
/// The MurmurHash64A seed redis-server hashes elements with.
pub const SEED: u64 = 0xadc8_3b19;

const MAGIC: &[u8; 4] = b"HYLL";
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// Largest register value a VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Longest run of a VAL opcode.
const VAL_MAX_LEN: usize = 4;
/// Longest run of a ZERO opcode.
const ZERO_MAX_LEN: usize = 64;
/// 1/(2 ln 2), the asymptotic bias correction of the estimator.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Why a value cannot be used as a HyperLogLog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// A string without the HYLL header (or a dense one of the wrong length).
    NotHll,
    /// A HYLL string whose registers do not decode.
    Corrupt,
}

// ---- hashing --------------------------------------------------------------------------------

/// Austin Appleby's MurmurHash64A, reading 8-byte blocks little-endian (as redis-server does on
/// every platform).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let blocks = data.chunks_exact(8);
    let tail = blocks.remainder();
    for b in blocks {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        let mut k = u64::from_le_bytes(w).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^ (h >> R)
}

/// The register an element updates and the value it offers: 1 + the trailing zeros of the hash
/// above the index bits (a sentinel bit bounds it at `Q + 1`).
pub fn position(element: &[u8]) -> (usize, u8) {
    let h = murmur64a(element, SEED);
    let index = (h & (REGISTERS as u64 - 1)) as usize;
    let rest = (h >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- header ---------------------------------------------------------------------------------

/// A fresh, empty HyperLogLog: sparse, one XZERO over every register, cached count 0 (valid).
pub fn empty() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR_SIZE + 2);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&[SPARSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&xzero(REGISTERS));
    v
}

/// redis-server's `isHLLObjectOrReply`: the magic, a known encoding, and a dense value of the
/// exact dense length. Sparse values are checked only when decoded.
pub fn validate(v: &[u8]) -> Result<(), HllError> {
    if v.len() < HDR_SIZE || &v[..4] != MAGIC || v[4] > SPARSE || (v[4] == DENSE && v.len() != DENSE_SIZE) {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// True for a dense value (after [`validate`]).
pub fn is_dense(v: &[u8]) -> bool {
    v[4] == DENSE
}

/// The cached cardinality, unless the cache is marked invalid.
pub fn cached_count(v: &[u8]) -> Option<u64> {
    let mut card = [0u8; 8];
    card.copy_from_slice(&v[8..16]);
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores a freshly computed cardinality in the header (which marks the cache valid).
pub fn store_count(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality stale; every change of the registers must.
pub fn invalidate_count(v: &mut [u8]) {
    v[15] |= 0x80;
}

// ---- dense registers ------------------------------------------------------------------------

/// Register `i` of the dense register bytes `regs`.
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit % 8);
    let lo = u16::from(regs[byte]);
    let hi = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((lo >> fb) | (hi << (8 - fb))) & 63) as u8
}

/// Sets register `i` of `regs` to `v` (at most 63).
fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit % 8);
    let v = u16::from(v);
    regs[byte] = ((u16::from(regs[byte]) & !(63 << fb)) | (v << fb)) as u8;
    // The last register ends exactly on the last byte; no bits spill over.
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = ((u16::from(*next) & !(63 >> (8 - fb))) | (v >> (8 - fb))) as u8;
    }
}

/// Raises register `i` to `count`; true when it was lower.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if dense_get(regs, i) >= count {
        return false;
    }
    dense_put(regs, i, count);
    true
}

/// Every dense register in order, four per three bytes (the registers tile 12288 bytes exactly).
fn dense_all(regs: &[u8]) -> impl Iterator<Item = u8> + '_ {
    regs.chunks_exact(3).flat_map(|c| {
        let (a, b, d) = (c[0], c[1], c[2]);
        [a & 63, ((a >> 6) | (b << 2)) & 63, ((b >> 4) | (d << 4)) & 63, d >> 2]
    })
}

// ---- sparse opcodes -------------------------------------------------------------------------

/// A decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` zero registers, one byte.
    Zero(usize),
    /// `len` zero registers, two bytes.
    XZero(usize),
    /// `len` registers of `value`.
    Val(u8, usize),
}

impl Op {
    /// Registers covered.
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    /// Bytes taken.
    fn bytes(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
}

/// The opcode at `s[p]`. An XZERO cut off by the end reads its second byte as 0, the string
/// terminator redis-server would read there.
fn op_at(s: &[u8], p: usize) -> Op {
    let b = s[p];
    if b & 0x80 != 0 {
        Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1)
    } else if b & 0x40 != 0 {
        let lo = s.get(p + 1).copied().unwrap_or(0);
        Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(lo)) + 1)
    } else {
        Op::Zero(usize::from(b & 0x3f) + 1)
    }
}

fn zero(len: usize) -> u8 {
    (len - 1) as u8
}

fn xzero(len: usize) -> [u8; 2] {
    let n = len - 1;
    [0x40 | (n >> 8) as u8, (n & 0xff) as u8]
}

fn val(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Appends the shortest zero-run opcode for `len` registers.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        seq.extend_from_slice(&xzero(len));
    } else {
        seq.push(zero(len));
    }
}

/// Walks the sparse opcodes `s`, calling `f(first_register, run, value)` for each VAL run, and
/// returns the number of registers covered — [`REGISTERS`] for a well-formed value.
///
/// With `strict`, a VAL run that would pass the last register is not reported and ends the walk
/// (redis-server's merge and sparse-to-dense conversion, which write registers by index);
/// otherwise it is reported like any other (the histogram). Either way the total tells.
fn walk_sparse(s: &[u8], strict: bool, mut f: impl FnMut(usize, usize, u8)) -> usize {
    let (mut p, mut idx) = (0, 0usize);
    while p < s.len() {
        let op = op_at(s, p);
        if let Op::Val(v, run) = op {
            if strict && idx + run > REGISTERS {
                return idx + run;
            }
            f(idx, run, v);
        }
        idx += op.span();
        p += op.bytes();
    }
    idx
}

/// Converts a sparse value to dense in place (a dense one is left alone); true when it
/// converted. The header is kept, cached count included.
pub fn to_dense(v: &mut Vec<u8>) -> Result<bool, HllError> {
    if is_dense(v) {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&v[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    let covered = walk_sparse(&v[HDR_SIZE..], true, |first, run, value| {
        (first..first + run).for_each(|i| dense_put(regs, i, value));
    });
    if covered != REGISTERS {
        return Err(HllError::Corrupt);
    }
    *v = dense;
    Ok(true)
}

/// Raises register `index` of a sparse value to `count`, editing the opcodes in place exactly as
/// redis-server's `hllSparseSet` does (promoting to dense when needed). Ok(true) when a register
/// changed; the caller invalidates the cached count.
///
/// The work happens in a buffer holding redis-server's view of the string: the value, its 0
/// terminator and three spare bytes, so even a corrupted value (an XZERO cut short) is edited
/// the same way.
fn sparse_raise(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote_and_raise(v, index, count);
    }
    let mut end = v.len() - HDR_SIZE;
    // Step 1: find the opcode covering `index`, and the one before it.
    let s = &v[HDR_SIZE..];
    let (mut p, mut first, mut prev, mut op) = (0usize, 0usize, None, None);
    while p < end {
        let o = op_at(s, p);
        op = Some(o);
        if index < first + o.span() {
            break;
        }
        prev = Some(p);
        p += o.bytes();
        first += o.span();
    }
    let op = match op {
        Some(o) if p < end && o.span() != 0 => o,
        _ => return Err(HllError::Corrupt),
    };
    // Step 2: nothing to do when the register already holds as much; a one-register opcode is
    // rewritten in place; anything else is split into up to three opcodes (zeros or the old
    // value, the new value, zeros or the old value).
    if matches!(op, Op::Val(old, _) if old >= count) {
        return Ok(false);
    }
    let mut buf = std::mem::take(v);
    buf.extend_from_slice(&[0; 4]);
    let s = HDR_SIZE;
    if matches!(op, Op::Val(_, 1) | Op::Zero(1)) {
        buf[s + p] = val(count, 1);
    } else {
        let next = (p + op.bytes() < end).then_some(p + op.bytes());
        let last = first + op.span() - 1;
        let mut seq = Vec::with_capacity(5);
        let push_run = |seq: &mut Vec<u8>, len: usize| match op {
            Op::Val(cur, _) => seq.push(val(cur, len)),
            Op::Zero(_) | Op::XZero(_) => push_zeros(seq, len),
        };
        if index != first {
            push_run(&mut seq, index - first);
        }
        seq.push(val(count, 1));
        if index != last {
            push_run(&mut seq, last - index);
        }
        // Step 3: splice the sequence in, or promote if that would grow the value too far.
        let delta = seq.len() as isize - op.bytes() as isize;
        if delta > 0 && HDR_SIZE + end + delta as usize > SPARSE_MAX_BYTES {
            buf.truncate(s + end);
            *v = buf;
            return promote_and_raise(v, index, count);
        }
        if let (Some(n), true) = (next, delta != 0) {
            let to = (n as isize + delta) as usize;
            buf.copy_within(s + n..s + end, s + to);
        }
        end = (end as isize + delta) as usize;
        // The terminator goes in before the sequence, as in redis-server: only a cut-short
        // XZERO at the very end makes the order matter.
        buf[s + end] = 0;
        buf[s + p..s + p + seq.len()].copy_from_slice(&seq);
    }
    // Step 4: merge adjacent VALs of equal value, scanning up to five opcodes from `prev`.
    let mut q = prev.unwrap_or(0);
    let mut budget = 5;
    while q < end && budget > 0 {
        budget -= 1;
        match op_at(&buf[s..], q) {
            Op::XZero(_) => q += 2,
            Op::Zero(_) => q += 1,
            Op::Val(v1, l1) => {
                if q + 1 < end {
                    if let Op::Val(v2, l2) = op_at(&buf[s..], q + 1) {
                        if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                            buf[s + q + 1] = val(v1, l1 + l2);
                            buf.copy_within(s + q + 1..s + end + 1, s + q);
                            end -= 1;
                            buf[s + end] = 0;
                            // Try the merged run against its right neighbour too.
                            continue;
                        }
                    }
                }
                q += 1;
            }
        }
    }
    buf.truncate(s + end);
    *v = buf;
    invalidate_count(v);
    Ok(true)
}

/// The promotion path of a sparse update: convert, then raise the register in the dense form
/// (where it is necessarily lower, or the sparse update would not have been needed).
fn promote_and_raise(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(v)?;
    Ok(dense_raise(&mut v[HDR_SIZE..], index, count))
}

/// Raises register `index` to `count` in a validated value of either encoding; Ok(true) when
/// it changed. Dense updates leave the cached count for the caller to invalidate (as PFADD
/// does once per command); sparse updates invalidate it themselves.
pub fn set_register(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    if is_dense(v) {
        Ok(dense_raise(&mut v[HDR_SIZE..], index, count))
    } else {
        sparse_raise(v, index, count)
    }
}

/// Adds one element (PFADD's `hllAdd`); Ok(true) when a register changed.
pub fn add(v: &mut Vec<u8>, element: &[u8]) -> Result<bool, HllError> {
    let (index, count) = position(element);
    set_register(v, index, count)
}

// ---- counting -------------------------------------------------------------------------------

/// Registers per value (0..=63), the input of the estimator.
type Histogram = [u32; 64];

/// Folds a validated value into `max` (one byte per register, the union of PFCOUNT with many
/// keys and of PFMERGE).
pub fn merge_into(max: &mut [u8], v: &[u8]) -> Result<(), HllError> {
    if is_dense(v) {
        for (m, r) in max.iter_mut().zip(dense_all(&v[HDR_SIZE..])) {
            *m = (*m).max(r);
        }
        return Ok(());
    }
    let covered = walk_sparse(&v[HDR_SIZE..], true, |first, run, value| {
        max[first..first + run].iter_mut().for_each(|m| *m = (*m).max(value));
    });
    if covered != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

/// Estimated cardinality of a validated value, ignoring the cache.
pub fn count(v: &[u8]) -> Result<u64, HllError> {
    let mut histo: Histogram = [0; 64];
    if is_dense(v) {
        dense_all(&v[HDR_SIZE..]).for_each(|r| histo[usize::from(r)] += 1);
    } else {
        let covered = walk_sparse(&v[HDR_SIZE..], false, |_, run, value| histo[usize::from(value)] += run as u32);
        if covered != REGISTERS {
            return Err(HllError::Corrupt);
        }
        // Zero runs are what the VAL runs leave of a well-formed value.
        histo[0] = (REGISTERS - histo[1..].iter().map(|&h| h as usize).sum::<usize>()) as u32;
    }
    Ok(estimate(&histo))
}

/// Estimated cardinality of registers given one per byte (from [`merge_into`]).
pub fn count_registers(max: &[u8]) -> u64 {
    let mut histo: Histogram = [0; 64];
    max.iter().for_each(|&r| histo[usize::from(r & 63)] += 1);
    estimate(&histo)
}

/// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
/// in redis-server's order of floating point operations, rounded half away from zero. A value
/// out of the 64-bit range (only corrupted registers get there) comes out as `llroundl` gives
/// it on x86-64: the bit pattern of `i64::MIN`.
fn estimate(histo: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for &h in histo[1..=Q].iter().rev() {
        z += f64::from(h);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    let e = (ALPHA_INF * m * m / z).round();
    // -2^63 ..< 2^63, both exactly representable; NaN and the infinities fall outside.
    let range = i64::MIN as f64..-(i64::MIN as f64);
    if range.contains(&e) {
        e as i64 as u64
    } else {
        i64::MIN as u64
    }
}

/// The estimator's correction for registers still zero.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// The estimator's correction for registers at the maximum.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        // libm's pow, as redis-server calls it, so the last bit agrees.
        z -= (1.0 - x).powf(2.0) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

// ---- inspection (PFDEBUG) -------------------------------------------------------------------

/// Every register of a dense value.
pub fn dense_registers(v: &[u8]) -> Vec<u8> {
    dense_all(&v[HDR_SIZE..]).collect()
}

/// The opcodes of a sparse value as PFDEBUG DECODE prints them: `z:len`, `Z:len`, `v:value,len`.
pub fn decode_sparse(v: &[u8]) -> String {
    let s = &v[HDR_SIZE..];
    let mut out = Vec::new();
    let mut p = 0;
    while p < s.len() {
        let op = op_at(s, p);
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        p += op.bytes();
    }
    out.join(" ")
}

/// A quick consistency check of this module for PFSELFTEST: dense register round trips, and
/// sparse and dense values fed the same elements counting the same within the expected error.
/// Err names the first failure.
pub fn selftest() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
    let mut expect = vec![0u8; REGISTERS];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..64 {
        for (i, e) in expect.iter_mut().enumerate() {
            seed = murmur64a(&seed.to_le_bytes(), round);
            *e = (seed & 63) as u8;
            dense_put(&mut regs, i, *e);
        }
        if let Some(i) = (0..REGISTERS).find(|&i| dense_get(&regs, i) != expect[i]) {
            return Err(format!("TESTFAILED Register error at {i}"));
        }
    }
    let (mut sparse, mut dense) = (empty(), empty());
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    for j in 1u64..=20_000 {
        let ele = j.to_le_bytes();
        let a = add(&mut sparse, &ele).map_err(|_| "TESTFAILED sparse add".to_string())?;
        let b = add(&mut dense, &ele).map_err(|_| "TESTFAILED dense add".to_string())?;
        if a != b {
            return Err(format!("TESTFAILED sparse and dense disagree on element {j}"));
        }
        if j % 1000 == 0 {
            let (cs, cd) = (count(&sparse), count(&dense));
            if cs != cd {
                return Err(format!("TESTFAILED sparse and dense counts differ at {j}"));
            }
            let c = cd.unwrap_or(0) as f64;
            if ((c - j as f64) / j as f64).abs() > 5.0 * relerr {
                return Err(format!("TESTFAILED too big error. card:{j} abserr:{}", (c - j as f64).abs()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MurmurHash64A (seed 0xadc83b19) of inputs of every tail length and more than one block,
    /// from a separate reference implementation; the low 14 bits of the first ones agree with
    /// the registers redis-server 7.0 sets (PFDEBUG DECODE after PFADD of one element: "a" is
    /// `Z:12711 v:2,1 Z:3672`, "abcdefgh" is `Z:1383 v:1,1 Z:15000`).
    const MURMUR_VECTORS: &[(&[u8], u64)] = &[
        (b"", 0xd8dfea6585bc9732),
        (b"a", 0x53d2470a9b43b1a7),
        (b"ab", 0x0eaed676437142cf),
        (b"abc", 0x77ec90aeb374e502),
        (b"abcd", 0xb079ee3d44202b3e),
        (b"abcde", 0x52a7daa2324a0e8e),
        (b"abcdef", 0x3a4f3a74f538b54f),
        (b"abcdefg", 0x22fe613bb08c9602),
        (b"abcdefgh", 0xf3a65df559914567),
        (b"abcdefghi", 0x834fba4d9152daf7),
        (b"hello world, hyperloglog!", 0x874ee31dcd1f81fb),
        (b"\x00\xff\x80", 0x0b3a88b2d350bf7f),
    ];

    /// `PFADD h a b c` on redis-server 7.0.15, then `GET h` (cache stale), and after `PFCOUNT h`.
    const REDIS_ABC: &[u8] = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80`\xf3\x80P\xb1\x84K\xfb\x80BZ";
    const REDIS_ABC_COUNTED: &[u8] =
        b"HYLL\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00`\xf3\x80P\xb1\x84K\xfb\x80BZ";

    #[test]
    fn murmur_known_vectors() {
        for (input, want) in MURMUR_VECTORS {
            assert_eq!(murmur64a(input, SEED), *want, "{input:?}");
        }
        assert_eq!(position(b"a"), (12711, 2));
        assert_eq!(position(b"abcdefgh"), (1383, 1));
    }

    #[test]
    fn empty_value_matches_redis() {
        assert_eq!(empty(), b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff".to_vec());
        assert_eq!(count(&empty()), Ok(0));
        assert_eq!(cached_count(&empty()), Some(0));
    }

    #[test]
    fn small_sparse_bytes_match_redis() {
        let mut v = empty();
        for e in [b"a", b"b", b"c"] {
            assert_eq!(add(&mut v, e), Ok(true));
        }
        invalidate_count(&mut v);
        assert_eq!(v, REDIS_ABC);
        assert_eq!(add(&mut v, b"a"), Ok(false), "a register only grows");
        assert_eq!(cached_count(&v), None);
        let card = count(&v).unwrap();
        store_count(&mut v, card);
        assert_eq!(v, REDIS_ABC_COUNTED);
        // As redis-server's PFDEBUG DECODE prints it.
        assert_eq!(decode_sparse(&v), "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603");
    }

    #[test]
    fn validation_refuses_non_hll_strings() {
        assert_eq!(validate(b"HYLL"), Err(HllError::NotHll));
        assert_eq!(validate(b"HYLx\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"), Err(HllError::NotHll));
        assert_eq!(validate(b"HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"), Err(HllError::NotHll));
        assert_eq!(validate(b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"), Err(HllError::NotHll));
        let mut dense = empty();
        assert_eq!(to_dense(&mut dense), Ok(true));
        assert_eq!(dense.len(), DENSE_SIZE);
        assert_eq!(validate(&dense), Ok(()));
        assert_eq!(to_dense(&mut dense), Ok(false));
    }

    #[test]
    fn corrupted_sparse_values_are_detected() {
        let hdr = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80";
        let with = |ops: &[u8]| [&hdr[..], ops].concat();
        // One register short; no opcodes at all; a VAL past the end; an XZERO cut short.
        for bad in [with(b"\x7f\xfe"), with(b""), with(b"\x7f\xff\x80"), with(b"\x7f")] {
            assert_eq!(count(&bad), Err(HllError::Corrupt), "{bad:?}");
            assert_eq!(merge_into(&mut [0; REGISTERS], &bad), Err(HllError::Corrupt), "{bad:?}");
            assert_eq!(to_dense(&mut bad.clone()), Err(HllError::Corrupt), "{bad:?}");
        }
        assert_eq!(add(&mut with(b""), b"a"), Err(HllError::Corrupt));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i * 7 % 64) as u8);
        }
        for (i, r) in dense_all(&regs).enumerate() {
            assert_eq!(dense_get(&regs, i), (i * 7 % 64) as u8);
            assert_eq!(r, (i * 7 % 64) as u8);
        }
    }

    #[test]
    fn overflowing_estimate_is_llroundl_of_infinity() {
        let mut v =
            [&b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"[..], &[0xff; DENSE_SIZE - HDR_SIZE]].concat();
        assert_eq!(count(&v), Ok(1 << 63));
        store_count(&mut v, 1 << 63);
        assert_eq!(cached_count(&v), None, "the value's top bit is the stale flag");
    }

    #[test]
    fn estimates_are_close() {
        let mut v = empty();
        for j in 0u32..20_000 {
            add(&mut v, &j.to_be_bytes()).unwrap();
        }
        assert!(is_dense(&v));
        let c = count(&v).unwrap() as f64;
        assert!((c - 20_000.0).abs() < 20_000.0 * 0.05, "{c}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Sparse edits and dense registers fed the same elements describe the same registers
        /// (so the sparse form stays well-formed), answer the same, and count the same.
        #[test]
        fn sparse_and_dense_agree(elements in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..400)) {
            let (mut sparse, mut dense) = (empty(), empty());
            to_dense(&mut dense).unwrap();
            for e in &elements {
                prop_assert_eq!(add(&mut sparse, e), add(&mut dense, e));
            }
            let mut union = vec![0u8; REGISTERS];
            merge_into(&mut union, &sparse).unwrap();
            prop_assert_eq!(&union, &dense_registers(&dense));
            prop_assert_eq!(count(&sparse), count(&dense));
            prop_assert_eq!(count_registers(&union), count(&dense).unwrap());
            to_dense(&mut sparse).unwrap();
            prop_assert_eq!(&sparse[HDR_SIZE..], &dense[HDR_SIZE..]);
        }
    }
}
