//! Number parsing with memcached's exact acceptance rules.
//!
//! memcached reads numbers with `strtol`/`strtoul`/`strtoull` (base 10) wrapped in its
//! `safe_strto*` helpers, and clients depend on the quirks that follow: leading whitespace and a
//! `+` or `-` sign are accepted, the digits may be followed by a whitespace byte and then
//! anything (`"5\tjunk"` reads as 5), a 64-bit overflow is refused, and — because the results are
//! stored into 32-bit variables — `strtol` values are truncated to `i32` and `strtoul` values to
//! `u32` without any range check (`set k 0 0 4294967297` stores a 1-byte value in memcached
//! 1.6.18, verified). Reimplementing those rules here keeps stream framing identical to the
//! reference server. None of this allocates or panics.

/// C's `isspace` in the "C" locale.
#[inline]
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtoull`/`strtoll` saw: the sign and the magnitude of the digits.
struct Scanned {
    negative: bool,
    magnitude: u64,
}

/// The common part of the C conversions: whitespace, sign, digits, and memcached's check that
/// the digits end the token or are followed by whitespace. `None` when no digit was read, when
/// the magnitude overflows 64 bits (C reports ERANGE for both signs), or when a non-space byte
/// follows the digits.
fn scan(tok: &[u8]) -> Option<Scanned> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&s) = tok.get(i) {
        if s == b'+' || s == b'-' {
            negative = s == b'-';
            i += 1;
        }
    }
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(&d) = tok.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        match magnitude.checked_mul(10).and_then(|m| m.checked_add(u64::from(d - b'0'))) {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start || overflow {
        return None;
    }
    match tok.get(i) {
        Some(&b) if !is_c_space(b) => None,
        _ => Some(Scanned { negative, magnitude }),
    }
}

/// memcached `safe_strtoull`: `strtoull` then refuse a result with the top bit set when the token
/// holds a `-` (so `-1` is refused but `-18446744073709551615` reads as 1, as in C).
pub(crate) fn strtoull(tok: &[u8]) -> Option<u64> {
    let s = scan(tok)?;
    let v = if s.negative { s.magnitude.wrapping_neg() } else { s.magnitude };
    if (v as i64) < 0 && tok.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// memcached `safe_strtoul`: as [`strtoull`] (an `unsigned long` is 64 bits), then stored in a
/// `uint32_t`, which keeps the low 32 bits.
pub(crate) fn strtoul(tok: &[u8]) -> Option<u32> {
    strtoull(tok).map(|v| v as u32)
}

/// memcached `safe_strtol`: `strtol` into a 64-bit `long` (overflow refused), then stored in an
/// `int32_t`, which keeps the low 32 bits.
pub(crate) fn strtol(tok: &[u8]) -> Option<i32> {
    let s = scan(tok)?;
    let v: i64 = if s.negative {
        if s.magnitude > 1u64 << 63 {
            return None;
        }
        (s.magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(s.magnitude).ok()?
    };
    Some(v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_rules() {
        // Each case was sent to memcached 1.6.18 as a `set` flags / `incr` delta token.
        assert_eq!(strtoull(b"5"), Some(5));
        assert_eq!(strtoull(b"+5"), Some(5));
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"9223372036854775808"), Some(1 << 63));
        assert_eq!(strtoull(b"1x"), None);
        assert_eq!(strtoull(b"1\tjunk"), Some(1));
        assert_eq!(strtoull(b"\t1"), Some(1));
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"+"), None);
        assert_eq!(strtoull(b"x"), None);
        assert_eq!(strtoul(b"4294967296"), Some(0));
        assert_eq!(strtoul(b"18446744073709551615"), Some(u32::MAX));
        assert_eq!(strtoul(b"9223372036854775808"), Some(0));
    }

    #[test]
    fn signed_rules() {
        assert_eq!(strtol(b"-1"), Some(-1));
        assert_eq!(strtol(b"4294967297"), Some(1));
        assert_eq!(strtol(b"-4294967295"), Some(1));
        assert_eq!(strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(strtol(b"9223372036854775808"), None);
        assert_eq!(strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(strtol(b"-9223372036854775809"), None);
        assert_eq!(strtol(b"99999999999999999999"), None);
        assert_eq!(strtol(b"abc"), None);
        assert_eq!(strtol(b"0\r"), Some(0));
    }
}
