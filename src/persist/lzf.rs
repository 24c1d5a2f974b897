//! LZF, the compression RDB files use for long strings (`rdbcompression yes`).
//!
//! The stream is a sequence of chunks, each led by a control byte:
//! - `000LLLLL`: a literal run of `L + 1` bytes (1..=32) follows;
//! - `LLLOOOOO OOOOOOOO` (`LLL` 1..=6) or `111OOOOO LLLLLLLL OOOOOOOO`: a back reference of
//!   `len + 2` bytes (`len` = `LLL`, or 7 + the extra byte), starting `offset + 1` bytes before
//!   the current end of output, `offset` being the 13 bits `OOOOO OOOOOOOO`.
//!
//! The compressor is a single-probe hash of three-byte sequences (like every LZF encoder): not
//! the densest output, but linear and allocation-light. The decompressor checks every length
//! and offset against the declared output size, so a lying file cannot make it read or write
//! out of bounds.

const MAX_LITERAL: usize = 32;
const MAX_OFFSET: usize = 1 << 13;
const MAX_MATCH: usize = 7 + 255 + 2;
/// The hash table has up to 2^14 slots, fewer for short inputs: most compressed strings are a
/// few dozen bytes, and clearing a 16K-slot table for each would cost more than compressing.
const MAX_HASH_BITS: u32 = 14;

fn hash3(b: &[u8], bits: u32) -> usize {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - bits)) as usize
}

/// Compresses `input`; `None` when the output would not fit in `max_out` bytes (Redis stores
/// a string compressed only when that saves at least four bytes).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(max_out.min(input.len()));
    let bits = (usize::BITS - input.len().leading_zeros()).clamp(4, MAX_HASH_BITS);
    let mut table = vec![usize::MAX; 1 << bits];
    let mut lit_start = 0;
    let mut i = 0;
    let flush_literals = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let n = (to - s).min(MAX_LITERAL);
            out.push((n - 1) as u8);
            out.extend_from_slice(&input[s..s + n]);
            s += n;
        }
    };
    while i + 2 < input.len() {
        let h = hash3(&input[i..], bits);
        let cand = table[h];
        table[h] = i;
        if cand != usize::MAX && i - cand <= MAX_OFFSET && input[cand..cand + 3] == input[i..i + 3] {
            let mut len = 3;
            let limit = (input.len() - i).min(MAX_MATCH);
            while len < limit && input[cand + len] == input[i + len] {
                len += 1;
            }
            flush_literals(&mut out, lit_start, i);
            let off = i - cand - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((l as u8) << 5) | (off >> 8) as u8);
            } else {
                out.push((7 << 5) | (off >> 8) as u8);
                out.push((l - 7) as u8);
            }
            out.push(off as u8);
            i += len;
            lit_start = i;
            if out.len() > max_out {
                return None;
            }
            continue;
        }
        i += 1;
    }
    flush_literals(&mut out, lit_start, input.len());
    (out.len() <= max_out).then_some(out)
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, &'static str> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(i..i + n).ok_or("LZF literal runs past the input")?;
            if out.len() + n > out_len {
                return Err("LZF output longer than declared");
            }
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or("LZF truncated")? as usize;
                i += 1;
            }
            let len = len + 2;
            let off = ((ctrl & 0x1f) << 8) + *input.get(i).ok_or("LZF truncated")? as usize + 1;
            i += 1;
            if off > out.len() {
                return Err("LZF back reference before the start");
            }
            if out.len() + len > out_len {
                return Err("LZF output longer than declared");
            }
            // Byte by byte: a reference may overlap the bytes it produces (a run).
            let start = out.len() - off;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err("LZF output shorter than declared");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetition() {
        let input = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(20);
        let c = compress(&input, input.len() - 4).expect("compressible");
        assert!(c.len() < input.len() / 10);
        assert_eq!(decompress(&c, input.len()).expect("round trip"), input);
        assert!(compress(b"abcdefgh", 4).is_none());
    }

    #[test]
    fn rejects_lies() {
        assert!(decompress(&[0x20, 0x00], 5).is_err(), "reference before start");
        assert!(decompress(&[0x05, b'a'], 6).is_err(), "short literal");
        assert!(decompress(&[0x00, b'a'], 2).is_err(), "short output");
        assert!(decompress(&[0x00, b'a', 0xe0, 0xff, 0x00], 10).is_err(), "overlong reference");
    }

    proptest! {
        #[test]
        fn round_trips(input in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            if let Some(c) = compress(&input, input.len() + input.len() / 32 + 1) {
                prop_assert_eq!(decompress(&c, input.len()).expect("decompress"), input);
            }
        }

        #[test]
        fn decompress_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..500) {
            let _ = decompress(&input, n);
        }
    }
}
