//! String values: the number parsing and formatting rules redis-server applies to them.
//!
//! Redis is strict about what counts as an integer (`string2ll`): optional `-`, no `+`, no
//! leading zeros, no spaces, at most 20 characters. INCR and friends, and every integer argument,
//! go through [`parse_i64`]. Floats accept what `strtold` accepts but reject NaN and trailing junk
//! (and spaces), as `string2ld` does.

/// Parses a strict Redis integer (`string2ll`). None for anything redis-server would refuse.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    // No leading zero (and "-0" is refused), and at least one digit.
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses a non-negative strict integer that fits in `u64` (memcached-free; used for offsets).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let v = parse_i64(s)?;
    u64::try_from(v).ok()
}

/// Parses a float as `string2ld`/`strtold` would for INCRBYFLOAT: decimal or exponent forms,
/// `inf`/`infinity` with sign; no spaces, no NaN, no empty string.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5120 {
        return None;
    }
    if s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("nan") {
        return None;
    }
    // Rust accepts "infinity"/"inf" like strtold; reject forms strtold would not (e.g. "1_0").
    if !lower
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-' | b'i' | b'n' | b'f' | b't' | b'y'))
    {
        return None;
    }
    // strtold accepts hex floats too ("0x1p3"); rare enough that refusing them is acceptable.
    let v: f64 = lower.parse().ok()?;
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Appends the decimal form of `v` without allocating.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Formats an INCRBYFLOAT result the way redis-server prints it: plain decimal notation (never an
/// exponent), no trailing zeros, no trailing dot.
///
/// redis-server computes in `long double` and prints `%.17Lf`; we compute in `f64` and print the
/// shortest decimal that round-trips, which agrees with it for every value whose result is exact
/// in both (documented as an intended difference for the rest).
pub fn format_incrbyfloat(v: f64) -> Vec<u8> {
    let mut s = format!("{v}");
    if s.contains('e') || s.contains('E') {
        s = format!("{v:.17}");
    }
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        for (s, v) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-0", None),
            (b"01", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"", None),
            (b"-", None),
            (b"1a", None),
        ] {
            assert_eq!(parse_i64(s), v, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"3.0e3"), Some(3000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
        assert_eq!(parse_f64(b""), None);
    }

    #[test]
    fn incrbyfloat_format() {
        assert_eq!(format_incrbyfloat(10.6), b"10.6");
        assert_eq!(format_incrbyfloat(3000.0), b"3000");
        assert_eq!(format_incrbyfloat(-0.0), b"0");
        assert_eq!(format_incrbyfloat(5.0e-5), b"0.00005");
    }

    #[test]
    fn i64_digits() {
        let mut out = Vec::new();
        push_i64(&mut out, i64::MIN);
        assert_eq!(out, b"-9223372036854775808");
    }
}
