//! Base64 as memcached's meta protocol uses it for binary keys (the `b` flag).
//!
//! Decoding follows memcached 1.6.18 rather than RFC 4648 strictness, because a key must map to
//! the same item here as there: bytes outside the alphabet are skipped (`YQ@@==` is `a`), the
//! remaining symbols (padding included) must come in whole groups of four, decoding stops after
//! the first group that holds padding, and three or more `=` in that group is an error. Encoding
//! is the standard alphabet with padding, which is what memcached writes back for `k`.

/// Sentinel for bytes outside the alphabet in [`DECODE`].
const SKIP: u8 = 0x80;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Symbol values by byte; `=` decodes as 0 and is counted as padding separately.
const DECODE: [u8; 256] = {
    let mut t = [SKIP; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = 0;
    t
};

/// Decodes a base64 key token into `out` and returns the decoded bytes, or `None` when memcached
/// would answer "error decoding key" (no symbols, a symbol count not a multiple of four, bad
/// padding) or `out` is too small. A buffer as long as `token` always suffices. Never allocates.
pub fn decode_base64_key<'o>(token: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let mut len = 0;
    let ok = decode_with(token, |bytes| match out.get_mut(len..len + bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            len += bytes.len();
            true
        }
        None => false,
    });
    if ok.is_some() {
        out.get(..len)
    } else {
        None
    }
}

/// The length `token` decodes to, or `None` where [`decode_base64_key`] fails for any buffer
/// size. Lets the parser validate a key without a scratch buffer.
pub(crate) fn decoded_len(token: &[u8]) -> Option<usize> {
    decode_with(token, |_| true)
}

/// memcached's decoding loop; `emit` receives each decoded group and returns false to abort.
fn decode_with(token: &[u8], mut emit: impl FnMut(&[u8]) -> bool) -> Option<usize> {
    let symbols = token.iter().filter(|&&b| DECODE[b as usize] != SKIP).count();
    if symbols == 0 || symbols % 4 != 0 {
        return None;
    }
    let mut block = [0u8; 4];
    let mut filled = 0;
    let mut pad = 0;
    let mut len = 0;
    for &b in token {
        let v = DECODE[b as usize];
        if v == SKIP {
            continue;
        }
        if b == b'=' {
            pad += 1;
        }
        block[filled] = v;
        filled += 1;
        if filled == 4 {
            let bytes = [block[0] << 2 | block[1] >> 4, block[1] << 4 | block[2] >> 2, block[2] << 6 | block[3]];
            // Padding ends the key: one `=` drops the last byte of the group, two drop two.
            let keep = match pad {
                0 => 3,
                1 => 2,
                2 => 1,
                _ => return None,
            };
            if !emit(&bytes[..keep]) {
                return None;
            }
            len += keep;
            filled = 0;
            if pad > 0 {
                break;
            }
        }
    }
    Some(len)
}

/// Appends the base64 encoding (standard alphabet, `=` padding) of `data` to `out`.
pub fn encode_base64(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(data.len().div_ceil(3) * 4);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend_from_slice(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            ALPHABET[(n >> 6) as usize & 63],
            ALPHABET[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[ALPHABET[(n >> 18) as usize & 63], ALPHABET[(n >> 12) as usize & 63], b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(t: &[u8]) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        decode_base64_key(t, &mut buf).map(<[u8]>::to_vec)
    }

    #[test]
    fn decodes_like_memcached() {
        // Verified with `mg <token> b v` / `ms ... b` against memcached 1.6.18.
        assert_eq!(dec(b"YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(dec(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(dec(b"YQ@@==").as_deref(), Some(&b"a"[..]));
        assert_eq!(dec(b"YWJjYQ==YWJj").as_deref(), Some(&b"abca"[..]));
        assert_eq!(dec(b"Y=Q=").as_deref(), Some(&b"`"[..]));
        assert_eq!(dec(b"YQ"), None);
        assert_eq!(dec(b"a"), None);
        assert_eq!(dec(b"YQ==="), None);
        assert_eq!(dec(b"===="), None);
        assert_eq!(dec(b"@@@@"), None);
        assert_eq!(dec(b""), None);
    }

    #[test]
    fn small_output_is_refused_not_overrun() {
        let mut buf = [0u8; 2];
        assert_eq!(decode_base64_key(b"YWJj", &mut buf), None);
        assert_eq!(decoded_len(b"YWJj"), Some(3));
        assert_eq!(decoded_len(b"YWI="), Some(2));
        assert_eq!(decoded_len(b"YWI"), None);
    }

    #[test]
    fn encode_round_trips() {
        for len in 0usize..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            let mut enc = Vec::new();
            encode_base64(&mut enc, &data);
            assert_eq!(enc.len(), len.div_ceil(3) * 4);
            if len > 0 {
                assert_eq!(dec(&enc), Some(data));
            }
        }
        let mut enc = Vec::new();
        encode_base64(&mut enc, b"abc");
        assert_eq!(enc, b"YWJj");
    }
}
