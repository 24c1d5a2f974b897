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

/// Why [`incr_by_float`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatIncrError {
    /// An operand is not a float `strtold` accepts in full, or it is out of `long double`
    /// range (`ERR value is not a valid float`).
    NotFloat,
    /// The sum is infinite or NaN (`ERR increment would produce NaN or Infinity`).
    NanOrInfinity,
}

/// INCRBYFLOAT (and HINCRBYFLOAT) arithmetic as redis-server on x86-64 does it: the current
/// value (`None`: the key is missing, which counts as 0) and the increment are each parsed as
/// a `long double` the way `strtold` rounds them, added in 80-bit extended precision, and the
/// sum is printed `%.17Lf` with trailing zeros (and a trailing dot) trimmed, `-0` becoming `0`.
///
/// Emulating the 64-bit mantissa rather than computing in `f64` is what makes `0.1 + 0.2`
/// print `0.3`, and `1e400` a valid value, as they are in Redis. The current value is parsed
/// before the increment, so a bad stored value is reported first, as redis-server does.
/// Cost: a few hundred nanoseconds for ordinary operands; bounded big-integer work for the
/// 5119-character extremes `string2ld` admits.
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, FloatIncrError> {
    let a = match current {
        Some(s) => long_double::parse(s).ok_or(FloatIncrError::NotFloat)?,
        None => long_double::Ld::ZERO,
    };
    let b = long_double::parse(incr).ok_or(FloatIncrError::NotFloat)?;
    let sum = long_double::add(a, b).ok_or(FloatIncrError::NanOrInfinity)?;
    Ok(long_double::format_human(sum))
}

/// True when `s` is a float redis-server's `string2ld` accepts (finite or infinite).
pub fn is_long_double(s: &[u8]) -> bool {
    long_double::parse(s).is_some()
}

/// A software model of the x87 80-bit `long double` (64-bit mantissa with explicit leading
/// bit, exponents down to the 2^-16445 subnormal, up to 2^16384), just enough of it for
/// INCRBYFLOAT: correctly rounded parsing (decimal and hex, as glibc's `strtold`), correctly
/// rounded addition, and exact `%.17Lf` printing (ties to even, as glibc prints).
///
/// Rounding is always to nearest, ties to even. Big operands go through a small
/// little-endian `u64`-limb integer; no allocation beyond that.
mod long_double {
    use std::cmp::Ordering;

    /// Exponent (of the least significant mantissa bit) of the smallest subnormal.
    const MIN_LSB_EXP: i64 = -16445;
    /// Largest exponent of the least significant bit of a finite value (its top bit is 2^16383).
    const MAX_LSB_EXP: i64 = 16383 - 63;
    /// `string2ld` refuses inputs of this length and longer (MAX_LONG_DOUBLE_CHARS).
    const MAX_CHARS: usize = 5 * 1024;

    /// A value: `m * 2^e` with sign, or an infinity. `m == 0` is zero.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Ld {
        Finite { neg: bool, m: u64, e: i64 },
        Inf,
    }

    impl Ld {
        pub const ZERO: Ld = Ld::Finite { neg: false, m: 0, e: 0 };
    }

    /// An unsigned big integer, little-endian limbs, no high zero limbs.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Big(Vec<u64>);

    impl Big {
        fn from_u64(v: u64) -> Big {
            let mut b = Big(vec![v]);
            b.trim();
            b
        }
        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }
        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }
        fn bits(&self) -> i64 {
            match self.0.last() {
                None => 0,
                Some(top) => (self.0.len() as i64 - 1) * 64 + 64 - i64::from(top.leading_zeros()),
            }
        }
        fn mul_add_small(&mut self, mul: u64, add: u64) {
            let mut carry = u128::from(add);
            for limb in &mut self.0 {
                let t = u128::from(*limb) * u128::from(mul) + carry;
                *limb = t as u64;
                carry = t >> 64;
            }
            if carry != 0 {
                self.0.push(carry as u64);
            }
            self.trim();
        }
        fn mul_pow10(&mut self, mut n: u64) {
            while n > 0 {
                let k = n.min(19);
                self.mul_add_small(10u64.pow(k as u32), 0);
                n -= k;
            }
        }
        fn shl(&mut self, n: i64) {
            if self.is_zero() || n <= 0 {
                return;
            }
            let (limbs, bits) = ((n / 64) as usize, (n % 64) as u32);
            if bits != 0 {
                let mut carry = 0u64;
                for limb in &mut self.0 {
                    let next = *limb >> (64 - bits);
                    *limb = (*limb << bits) | carry;
                    carry = next;
                }
                if carry != 0 {
                    self.0.push(carry);
                }
            }
            self.0.splice(0..0, std::iter::repeat(0).take(limbs));
        }
        fn shr1(&mut self) {
            let mut carry = 0u64;
            for limb in self.0.iter_mut().rev() {
                let next = *limb << 63;
                *limb = (*limb >> 1) | carry;
                carry = next;
            }
            self.trim();
        }
        fn cmp_big(&self, o: &Big) -> Ordering {
            self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }
        /// `self -= o`; requires `self >= o`.
        fn sub_assign(&mut self, o: &Big) {
            let mut borrow = false;
            for (i, limb) in self.0.iter_mut().enumerate() {
                let sub = o.0.get(i).copied().unwrap_or(0);
                let (v, b1) = limb.overflowing_sub(sub);
                let (v, b2) = v.overflowing_sub(u64::from(borrow));
                *limb = v;
                borrow = b1 || b2;
            }
            self.trim();
        }
        /// The top 128 bits, how far they are shifted down, and whether any bit below them is set.
        fn top128(&self) -> (u128, i64, bool) {
            let bits = self.bits();
            let bit = |i: i64| -> u128 { u128::from(self.0[(i / 64) as usize] >> (i % 64) & 1) };
            if bits <= 128 {
                let lo = self.0.first().copied().unwrap_or(0);
                let hi = self.0.get(1).copied().unwrap_or(0);
                return ((u128::from(hi) << 64) | u128::from(lo), 0, false);
            }
            let shift = bits - 128;
            let mut x = 0u128;
            for i in (shift..bits).rev() {
                x = (x << 1) | bit(i);
            }
            let whole = (shift / 64) as usize;
            let sticky =
                self.0[..whole].iter().any(|&l| l != 0) || (shift % 64 != 0 && self.0[whole] << (64 - shift % 64) != 0);
            (x, shift, sticky)
        }
        fn divmod_small(&mut self, d: u64) -> u64 {
            let mut rem = 0u128;
            for limb in self.0.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / u128::from(d)) as u64;
                rem = cur % u128::from(d);
            }
            self.trim();
            rem as u64
        }
        fn into_decimal(mut self) -> String {
            const CHUNK: u64 = 10_000_000_000_000_000_000;
            let mut chunks = Vec::new();
            while !self.is_zero() {
                chunks.push(self.divmod_small(CHUNK));
            }
            let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_else(|| "0".into());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:019}"));
            }
            s
        }
    }

    /// Rounds `x * 2^exp` (plus a positive amount below x's last bit when `sticky`) to the
    /// nearest long double magnitude. None on overflow; `(0, 0)` on underflow. When `sticky`,
    /// `x` must carry more than 65 significant bits (callers guarantee it).
    fn round(x: u128, exp: i64, sticky: bool) -> Option<(u64, i64)> {
        if x == 0 {
            return Some((0, 0));
        }
        let b = 128 - i64::from(x.leading_zeros());
        let lsb = (exp + b - 64).max(MIN_LSB_EXP);
        let shift = lsb - exp;
        let m = if shift <= 0 {
            x << (-shift)
        } else {
            let (q, rem) = match shift {
                s if s > 128 => (0, Ordering::Less),
                128 => (0, x.cmp(&(1u128 << 127))),
                s => (x >> s, (x & ((1u128 << s) - 1)).cmp(&(1u128 << (s - 1)))),
            };
            let up = match rem {
                Ordering::Greater => true,
                Ordering::Equal => sticky || q & 1 == 1,
                Ordering::Less => false,
            };
            q + u128::from(up)
        };
        let (m, lsb) = if m >> 64 != 0 { (m >> 1, lsb + 1) } else { (m, lsb) };
        if m == 0 {
            return Some((0, 0));
        }
        if lsb > MAX_LSB_EXP {
            return None;
        }
        Some((m as u64, lsb))
    }

    /// Rounds the big integer `n * 2^exp` (exactly, or just above when `sticky`).
    fn round_big(n: &Big, exp: i64, sticky: bool) -> Option<(u64, i64)> {
        let (hi, shift, low) = n.top128();
        round(hi, exp + shift, sticky || low)
    }

    fn finite(neg: bool, r: Option<(u64, i64)>) -> Option<Ld> {
        match r {
            // strtold reports ERANGE for a nonzero input that rounds to zero or to infinity,
            // and string2ld refuses both.
            None | Some((0, _)) => None,
            Some((m, e)) => Some(Ld::Finite { neg, m, e }),
        }
    }

    /// Parses `s` as `string2ld` would: no leading space, the whole string consumed, decimal
    /// or hex (`0x1.8p3`), `inf`/`infinity`, no NaN, out-of-range refused.
    pub fn parse(s: &[u8]) -> Option<Ld> {
        if s.is_empty() || s.len() >= MAX_CHARS || matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(Ld::Inf);
        }
        if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
            return parse_hex(neg, &rest[2..]);
        }
        parse_decimal(neg, rest)
    }

    /// Reads `[+-]digits` as an exponent, saturating far beyond any meaningful range.
    fn parse_exponent(s: &[u8]) -> Option<i64> {
        let (neg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits.iter().fold(0i64, |acc, &d| (acc * 10 + i64::from(d - b'0')).min(1_000_000_000));
        Some(if neg { -v } else { v })
    }

    fn parse_decimal(neg: bool, s: &[u8]) -> Option<Ld> {
        let mut digits: Vec<u8> = Vec::new();
        let (mut dexp, mut seen, mut i) = (0i64, false, 0);
        while i < s.len() && s[i].is_ascii_digit() {
            if !(digits.is_empty() && s[i] == b'0') {
                digits.push(s[i] - b'0');
            }
            seen = true;
            i += 1;
        }
        if i < s.len() && s[i] == b'.' {
            i += 1;
            while i < s.len() && s[i].is_ascii_digit() {
                if !(digits.is_empty() && s[i] == b'0') {
                    digits.push(s[i] - b'0');
                }
                dexp -= 1;
                seen = true;
                i += 1;
            }
        }
        if !seen {
            return None;
        }
        if i < s.len() {
            if s[i] | 0x20 != b'e' {
                return None;
            }
            dexp += parse_exponent(&s[i + 1..])?;
        }
        while digits.last() == Some(&0) {
            digits.pop();
            dexp += 1;
        }
        if digits.is_empty() {
            return Some(Ld::Finite { neg, m: 0, e: 0 });
        }
        // value = D * 10^dexp lies in [10^(mag-1), 10^mag). The largest long double is
        // about 1.19e4932, half the smallest subnormal about 1.82e-4951.
        let mag = digits.len() as i64 + dexp;
        if !(-4951..=4933).contains(&mag) {
            return None;
        }
        let mut d = Big::default();
        for chunk in digits.chunks(19) {
            let v = chunk.iter().fold(0u64, |acc, &x| acc * 10 + u64::from(x));
            d.mul_add_small(10u64.pow(chunk.len() as u32), v);
        }
        if dexp >= 0 {
            d.mul_pow10(dexp as u64);
            return finite(neg, round_big(&d, 0, false));
        }
        // D / 10^-dexp: a quotient of 66..68 bits, scaled by a power of two, and whether
        // anything remained.
        let mut b = Big::from_u64(1);
        b.mul_pow10(dexp.unsigned_abs());
        let t = d.bits() - b.bits() - 66;
        if t >= 0 {
            b.shl(t);
        } else {
            d.shl(-t);
        }
        let qbits = d.bits() - b.bits() + 1;
        let mut q = 0u128;
        if qbits > 0 {
            b.shl(qbits - 1);
            for j in (0..qbits).rev() {
                if d.cmp_big(&b) != Ordering::Less {
                    d.sub_assign(&b);
                    q |= 1u128 << j;
                }
                b.shr1();
            }
        }
        finite(neg, round(q, t, !d.is_zero()))
    }

    fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
        let mut n = Big::default();
        let (mut exp, mut seen, mut i) = (0i64, false, 0);
        let mut frac = false;
        while i < s.len() {
            let c = s[i];
            if c == b'.' && !frac {
                frac = true;
            } else if let Some(v) = (c as char).to_digit(16) {
                n.mul_add_small(16, u64::from(v));
                if frac {
                    exp -= 4;
                }
                seen = true;
            } else {
                break;
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if i < s.len() {
            if s[i] | 0x20 != b'p' {
                return None;
            }
            exp += parse_exponent(&s[i + 1..])?;
        }
        if n.is_zero() {
            return Some(Ld::Finite { neg, m: 0, e: 0 });
        }
        finite(neg, round_big(&n, exp, false))
    }

    /// `a + b`, correctly rounded; None when the sum is infinite or NaN.
    pub fn add(a: Ld, b: Ld) -> Option<Ld> {
        let (Ld::Finite { neg: na, m: ma, e: ea }, Ld::Finite { neg: nb, m: mb, e: eb }) = (a, b) else {
            return None;
        };
        if ma == 0 {
            return Some(if mb == 0 { Ld::Finite { neg: na && nb, m: 0, e: 0 } } else { b });
        }
        if mb == 0 {
            return Some(a);
        }
        // Normalise (subnormals included) so the top bit is bit 63; then the larger exponent
        // is the larger magnitude.
        let norm = |m: u64, e: i64| (m << m.leading_zeros(), e - i64::from(m.leading_zeros()));
        let ((ma, ea), (mb, eb)) = (norm(ma, ea), norm(mb, eb));
        let ((nb_, mbig, ebig), (ns, msmall, esmall)) =
            if (ea, ma) >= (eb, mb) { ((na, ma, ea), (nb, mb, eb)) } else { ((nb, mb, eb), (na, ma, ea)) };
        // The larger operand with 62 guard bits below it; the smaller aligned to it, its
        // shifted-out bits folded into a sticky flag.
        let big = u128::from(mbig) << 62;
        let base = ebig - 62;
        let d = ebig - esmall;
        let (small, sticky) = if d <= 62 {
            (u128::from(msmall) << (62 - d), false)
        } else if d - 62 >= 128 {
            (0, true)
        } else {
            let sh = (d - 62) as u32;
            (u128::from(msmall) >> sh, u128::from(msmall) & ((1u128 << sh) - 1) != 0)
        };
        let sum = if nb_ == ns {
            big + small
        } else {
            // Subtracting a little more than `small`: borrow one unit and keep the
            // (positive) remainder as the sticky part.
            big - small - u128::from(sticky)
        };
        if sum == 0 && !sticky {
            return Some(Ld::ZERO);
        }
        let (m, e) = round(sum, base, sticky)?;
        Some(Ld::Finite { neg: nb_, m, e })
    }

    /// `%.17Lf`, trailing zeros and dot trimmed, `-0` as `0` (redis-server's ld2string in
    /// LD_STR_HUMAN mode). Infinities never reach here (INCRBYFLOAT refuses them first).
    pub fn format_human(v: Ld) -> Vec<u8> {
        let Ld::Finite { neg, m, e } = v else {
            return b"inf".to_vec();
        };
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        if e >= 0 {
            let mut n = Big::from_u64(m);
            n.shl(e);
            s.push_str(&n.into_decimal());
        } else {
            // m * 10^17 < 2^121, so the scaled value and its rounding fit in a u128.
            const SCALE: u128 = 100_000_000_000_000_000;
            let x = u128::from(m) * SCALE;
            let sh = e.unsigned_abs();
            let q = match sh {
                s if s > 128 => 0,
                128 => u128::from(x > 1u128 << 127),
                s => {
                    let (q, rem, half) = (x >> s, x & ((1u128 << s) - 1), 1u128 << (s - 1));
                    q + u128::from(rem > half || (rem == half && q & 1 == 1))
                }
            };
            let frac = format!("{:017}", q % SCALE);
            let frac = frac.trim_end_matches('0');
            s.push_str(&(q / SCALE).to_string());
            if !frac.is_empty() {
                s.push('.');
                s.push_str(frac);
            }
        }
        if s == "-0" {
            s = "0".into();
        }
        s.into_bytes()
    }
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

    fn ibf(cur: &str, incr: &str) -> Result<String, FloatIncrError> {
        incr_by_float(Some(cur.as_bytes()), incr.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    /// Answers recorded from redis-server 7.0.15 on x86-64 (80-bit long double).
    #[test]
    fn incr_by_float_matches_redis_long_double() {
        let ok = |cur: &str, incr: &str, want: &str| assert_eq!(ibf(cur, incr).as_deref(), Ok(want), "{cur} + {incr}");
        ok("10.5", "0.1", "10.6");
        ok("10.6", "-5", "5.6");
        ok("0.1", "0.2", "0.3");
        ok("5.0e3", "2.0e2", "5200");
        ok("1e20", "1", "100000000000000000000");
        ok("1.3", "1e-17", "1.30000000000000001");
        ok("3", "1e-18", "3");
        ok("0", "-0.000000000000000001", "0");
        ok("0", "1.000000000000000000001", "1");
        ok("1.5", "-1.5", "0");
        ok("-1", "0.9999999999999999999", "0");
        ok("0x10", "1", "17");
        ok("0", "0X1.8P1", "3");
        ok("0", "0x.8", "0.5");
        ok("0", "+1", "1");
        ok("0", ".5", "0.5");
        ok("0", "5.", "5");
        ok("0", "1e+2", "100");
        ok("0", "-.5e-1", "-0.05");
        ok("0", "00012.5", "12.5");
        ok("0", "-0", "0");
        ok("0", "1e-4950", "0");
        ok("0", "0e-5000", "0");
        ok("0", "0x1.8p-16446", "0");
        ok("0", "0.000003814697265625", "0.00000381469726562");
        ok("0", "0.000011444091796875", "0.00001144409179688");
        ok("123456789012345678901234567890", "1", "123456789012345678899921813504");
        ok(
            "0",
            "1.7976931348623157e308",
            "179769313486231569995921046774104434048386446944329178485314420765176628523124396354701868608387085564428793419425520689308708363451136055357897278026477617073498977686288394835618163294045594434929537447290627480669417384648879122776218333598953852832103282504751611691208117720159985926376802466863339536384",
        );
        let big = ibf("1e400", "1").unwrap();
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
        assert_eq!(big.len(), 401);
        let max = ibf("1.18973149535723176502e+4932", "0").unwrap();
        assert!(max.starts_with(
            "1189731495357231765021263853030970205169063322294624200440323733891737005522970722616410290336528882"
        ));
        assert_eq!(max.len(), 4933);
    }

    #[test]
    fn incr_by_float_refusals() {
        use FloatIncrError::*;
        for bad in [
            "1e",
            " 1",
            "1 ",
            ".",
            "-",
            "+",
            "e5",
            "1,5",
            "nan",
            "0x",
            "0x1p",
            "1e5000",
            "1e-5000",
            "1e-4951",
            "1e4933",
            "0x1p-16446",
            "0x1p20000",
            "",
            "abc",
        ] {
            assert_eq!(ibf("0", bad), Err(NotFloat), "{bad:?}");
            assert_eq!(ibf(bad, "1"), Err(NotFloat), "stored {bad:?}");
        }
        for inf in ["inf", "INF", "-Infinity", "+inf"] {
            assert_eq!(ibf("0", inf), Err(NanOrInfinity), "{inf:?}");
        }
        assert_eq!(ibf("1.18973149535723176502e+4932", "1.18973149535723176502e+4932"), Err(NanOrInfinity));
        assert_eq!(ibf("abc", "xyz"), Err(NotFloat));
        assert_eq!(incr_by_float(None, b"1e-5").as_deref(), Ok(&b"0.00001"[..]));
        assert_eq!(incr_by_float(None, b"-0").as_deref(), Ok(&b"0"[..]));
        assert!(is_long_double(b"1e400") && !is_long_double(b"1e5000"));
    }
}
