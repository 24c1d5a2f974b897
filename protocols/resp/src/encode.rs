//! Reply encoding into an output buffer, for RESP2 and RESP3 clients.
//!
//! CONTRACT: every method appends exactly one frame header (or whole frame) to `out`. Aggregate
//! headers (`array`, `map`, `set`, `push`) are followed by the caller writing their elements.
//! In RESP2 the RESP3-only types degrade as redis-server 7 degrades them:
//! null -> `$-1`, null_array -> `*-1`, map(n) -> `*{2n}`, set(n) -> `*n`, push(n) -> `*n`,
//! double -> bulk string, boolean -> `:1`/`:0`, big number -> bulk, verbatim -> bulk of the text.
//! Doubles are formatted as redis-server formats them (`%.17g`, `inf`, `-inf`, `nan`).
//!
//! This is the hot half of the codec: every reply passes through here. Each method reserves
//! once and copies; numbers are formatted into a stack buffer, never through an allocation.
//! An attribute (`|n`, RESP3 only) has no RESP2 form at all: redis-server leaves it out, so
//! [`Encoder::attribute`] tells the caller whether to write the attribute's entries.

/// Protocol version negotiated with HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// Appends replies to a caller-owned buffer.
pub struct Encoder<'a> {
    /// The buffer replies are appended to.
    pub out: &'a mut Vec<u8>,
    /// The client's protocol version.
    pub version: Version,
}

impl<'a> Encoder<'a> {
    /// An encoder appending to `out` for a client speaking `version`.
    pub fn new(out: &'a mut Vec<u8>, version: Version) -> Self {
        Encoder { out, version }
    }

    fn resp3(&self) -> bool {
        self.version == Version::Resp3
    }

    /// A status reply, `+{s}`. `s` must not contain CR or LF (status texts are constants).
    #[inline]
    pub fn simple(&mut self, s: &[u8]) {
        self.out.reserve(s.len() + 3);
        self.out.push(b'+');
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// An error reply. `msg` is the message with its code and without the leading `-`, e.g.
    /// `b"ERR syntax error"` or `b"WRONGTYPE Operation against a key holding the wrong kind of
    /// value"`. CR and LF in it become spaces, as redis-server's `addReplyErrorLength` makes
    /// them, because an error is one line and a message may quote client input.
    #[inline]
    pub fn error(&mut self, msg: &[u8]) {
        // Tolerate a caller that kept the dash rather than send `--ERR`.
        let msg = msg.strip_prefix(b"-").unwrap_or(msg);
        self.out.reserve(msg.len() + 3);
        self.out.push(b'-');
        let from = self.out.len();
        self.out.extend_from_slice(msg);
        for b in &mut self.out[from..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer reply, `:{v}`.
    #[inline]
    pub fn int(&mut self, v: i64) {
        let mut digits = IntBuf::new();
        let s = digits.format_i64(v);
        self.out.reserve(s.len() + 3);
        self.out.push(b':');
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string, `${len}\r\n{b}\r\n`.
    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len(), b.len() + 2);
        self.out.extend_from_slice(b);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (redis's `addReplyBulkLongLong`, e.g. `INCRBYFLOAT`-style
    /// replies that are numbers but typed as strings), without allocating the decimal form.
    #[inline]
    pub fn bulk_int(&mut self, v: i64) {
        let mut digits = IntBuf::new();
        let s = digits.format_i64(v);
        self.header(b'$', s.len(), s.len() + 2);
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// The null reply: RESP2 `$-1` (a null bulk string), RESP3 `_`.
    #[inline]
    pub fn null(&mut self) {
        self.out.extend_from_slice(if self.resp3() { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// The null array: RESP2 `*-1` (e.g. `EXEC` after a failed `WATCH`, blocking pops that time
    /// out), RESP3 `_`.
    #[inline]
    pub fn null_array(&mut self) {
        self.out.extend_from_slice(if self.resp3() { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// The header of an array of `n` elements, `*n`.
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n, 0);
    }

    /// The header of a map of `n` key/value pairs: RESP3 `%n`, RESP2 a flat array `*{2n}`.
    /// The caller writes `2n` elements, key then value.
    #[inline]
    pub fn map(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'%', n, 0);
        } else {
            self.header(b'*', n.saturating_mul(2), 0);
        }
    }

    /// The header of a set of `n` members: RESP3 `~n`, RESP2 `*n`.
    #[inline]
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3() { b'~' } else { b'*' }, n, 0);
    }

    /// The header of an out-of-band push of `n` elements (pub/sub messages, invalidations):
    /// RESP3 `>n`, RESP2 `*n`.
    #[inline]
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3() { b'>' } else { b'*' }, n, 0);
    }

    /// The header of an attribute of `n` key/value pairs (RESP3 `|n`), which annotates the reply
    /// that follows it. Returns false, writing nothing, for a RESP2 client, which has no way to
    /// receive one: the caller then skips the `2n` entries and writes only the reply itself.
    #[must_use = "in RESP2 nothing is written and the attribute's entries must be skipped"]
    #[inline]
    pub fn attribute(&mut self, n: usize) -> bool {
        if self.resp3() {
            self.header(b'|', n, 0);
        }
        self.resp3()
    }

    /// A double: RESP3 `,{v}`, RESP2 a bulk string, both with [`format_double`]'s text.
    #[inline]
    pub fn double(&mut self, v: f64) {
        let mut text = DoubleBuf::new();
        let s = text.format(v);
        if self.resp3() {
            self.out.reserve(s.len() + 3);
            self.out.push(b',');
            self.out.extend_from_slice(s);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 `:1`/`:0`.
    #[inline]
    pub fn boolean(&mut self, b: bool) {
        self.out.extend_from_slice(match (self.resp3(), b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        });
    }

    /// A big number given as its decimal digits (optional leading `-`): RESP3 `({digits}`, RESP2
    /// a bulk string.
    #[inline]
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.resp3() {
            self.out.reserve(digits.len() + 3);
            self.out.push(b'(');
            self.out.extend_from_slice(digits);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// A verbatim string: RESP3 `={len}\r\n{format}:{text}\r\n` (`format` is `txt` or `mkd`),
    /// RESP2 a bulk string of `text` alone.
    #[inline]
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        if self.resp3() {
            self.header(b'=', text.len() + 4, text.len() + 6);
            self.out.extend_from_slice(format);
            self.out.push(b':');
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Appends bytes that are already a complete encoding (a cached reply, a fragment built
    /// earlier), unchanged.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `{prefix}{n}\r\n`, reserving `extra` more bytes for what the caller writes next.
    #[inline]
    pub(crate) fn header(&mut self, prefix: u8, n: usize, extra: usize) {
        let mut digits = IntBuf::new();
        let s = digits.format_u64(n as u64);
        self.out.reserve(s.len() + 3 + extra);
        self.out.push(prefix);
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Appends `v` formatted as C's `printf("%.17g", v)` (glibc), which is how redis-server 7.0 writes
/// doubles in RESP2 bulk and RESP3 double replies: `0.1` is `0.10000000000000001`, `3.0` is `3`,
/// `1e300` is `1.0000000000000001e+300`, `-0.0` is `-0`; infinities are `inf` and `-inf`, NaN is
/// `nan` (`-nan` when its sign bit is set, as glibc prints it).
///
/// Cost: integral values below 1e17 take the integer path; others go through the standard
/// library's exact decimal conversion into a stack buffer. Nothing is allocated.
pub fn format_double(v: f64, out: &mut Vec<u8>) {
    let mut text = DoubleBuf::new();
    out.extend_from_slice(text.format(v));
}

/// Decimal digits of an integer, written backwards into a stack buffer.
struct IntBuf {
    buf: [u8; 20],
}

/// "00" "01" … "99": two digits per division halves the number of divisions.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl IntBuf {
    fn new() -> Self {
        IntBuf { buf: [0; 20] }
    }

    /// `u64::MAX` has 20 digits, exactly the buffer.
    fn format_u64(&mut self, mut n: u64) -> &[u8] {
        let mut i = self.buf.len();
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            self.buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = n as usize * 2;
            i -= 2;
            self.buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            i -= 1;
            self.buf[i] = b'0' + n as u8;
        }
        &self.buf[i..]
    }

    /// Formats into a caller buffer with room for the sign: `i64::MIN` has 19 digits and a sign.
    fn format_i64(&mut self, v: i64) -> &[u8] {
        let start = self.buf.len() - self.format_u64(v.unsigned_abs()).len();
        if v < 0 {
            // 19 digits at most when negative, so index start-1 exists.
            self.buf[start - 1] = b'-';
            &self.buf[start - 1..]
        } else {
            &self.buf[start..]
        }
    }
}

/// The `%.17g` text of a double, in a stack buffer. The longest output is
/// `-1.2345678901234567e-308`: 24 bytes.
struct DoubleBuf {
    buf: [u8; 32],
    len: usize,
}

impl DoubleBuf {
    fn new() -> Self {
        DoubleBuf { buf: [0; 32], len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn format(&mut self, v: f64) -> &[u8] {
        self.len = 0;
        if v.is_nan() {
            self.put(if v.is_sign_negative() { b"-nan" } else { b"nan" });
        } else if v.is_infinite() {
            self.put(if v > 0.0 { b"inf" } else { b"-inf" });
        } else if v == 0.0 {
            self.put(if v.is_sign_negative() { b"-0" } else { b"0" });
        } else if v.fract() == 0.0 && v.abs() < 1e17 {
            // Exact integers of at most 17 digits are printed whole by %.17g; this is the
            // common case for scores and counters. The cast is exact below 2^63.
            let mut digits = IntBuf::new();
            let s = digits.format_i64(v as i64);
            self.put(s);
        } else {
            self.format_general(v);
        }
        &self.buf[..self.len]
    }

    /// %.17g for a finite non-zero `v`: round to 17 significant digits (the standard library's
    /// `{:.16e}` rounds the exact binary value half-to-even, as glibc does), then lay the digits
    /// out as %g does: plain if the decimal exponent X is in -4..17, else d.ddd e±XX; trailing
    /// zeros of the fraction and a bare point dropped.
    fn format_general(&mut self, v: f64) {
        use std::io::Write;
        // `{:.16e}` of a finite double is at most 1 + 1 + 1 + 16 + 1 + 4 = 24 bytes, e.g.
        // "-1.2345678901234567e-308".
        let mut sci = [0u8; 32];
        let written = {
            let mut cursor = &mut sci[..];
            let before = cursor.len();
            if write!(cursor, "{v:.16e}").is_err() {
                return;
            }
            before - cursor.len()
        };
        let sci = &sci[..written];
        let (negative, sci) = match sci.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, sci),
        };
        // sci is now "d.dddddddddddddddde<exp>": 17 digits around the point.
        let Some(e_at) = sci.iter().position(|&b| b == b'e') else {
            return;
        };
        let mut digits = [0u8; 17];
        let mut n = 0;
        for &b in &sci[..e_at] {
            if b.is_ascii_digit() && n < digits.len() {
                digits[n] = b;
                n += 1;
            }
        }
        let exp = parse_small_int(&sci[e_at + 1..]);
        // Significant digits left once trailing zeros are dropped (at least one).
        let sig = digits[..n].iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);

        if negative {
            self.put(b"-");
        }
        if (-4..17).contains(&exp) {
            if exp < 0 {
                self.put(b"0.");
                for _ in 0..(-exp - 1) {
                    self.put(b"0");
                }
                self.put(&digits[..sig]);
            } else {
                let int_len = exp as usize + 1;
                self.put(&digits[..int_len]);
                if sig > int_len {
                    self.put(b".");
                    self.put(&digits[int_len..sig]);
                }
            }
        } else {
            self.put(&digits[..1]);
            if sig > 1 {
                self.put(b".");
                self.put(&digits[1..sig]);
            }
            self.put(if exp < 0 { b"e-" } else { b"e+" });
            let mut ebuf = IntBuf::new();
            let e = ebuf.format_u64(u64::from(exp.unsigned_abs()));
            if e.len() < 2 {
                self.put(b"0");
            }
            self.put(e);
        }
    }
}

/// The exponent of Rust's `{:e}` output: an optional `-` and a few digits.
fn parse_small_int(s: &[u8]) -> i32 {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let magnitude = digits.iter().take(4).fold(0i32, |acc, &d| acc * 10 + i32::from(d.wrapping_sub(b'0') % 10));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut Encoder<'_>)) -> (Vec<u8>, Vec<u8>) {
        let (mut two, mut three) = (Vec::new(), Vec::new());
        f(&mut Encoder::new(&mut two, Version::Resp2));
        f(&mut Encoder::new(&mut three, Version::Resp3));
        (two, three)
    }

    fn check(f: impl Fn(&mut Encoder<'_>), resp2: &[u8], resp3: &[u8]) {
        let (two, three) = both(f);
        assert_eq!(String::from_utf8_lossy(&two), String::from_utf8_lossy(resp2), "RESP2");
        assert_eq!(String::from_utf8_lossy(&three), String::from_utf8_lossy(resp3), "RESP3");
    }

    /// Replies of redis-server 7.0.15 to `DEBUG PROTOCOL <type>` after `HELLO 2` and `HELLO 3`.
    #[test]
    #[allow(clippy::approx_constant)] // 3.141 is the double DEBUG PROTOCOL sends, not a stray pi.
    fn debug_protocol_replies_of_redis_server_7_0_15() {
        check(|e| e.bulk(b"Hello World"), b"$11\r\nHello World\r\n", b"$11\r\nHello World\r\n");
        check(|e| e.int(12345), b":12345\r\n", b":12345\r\n");
        check(|e| e.double(3.141), b"$5\r\n3.141\r\n", b",3.141\r\n");
        let big = b"1234567999999999999999999999999999999";
        check(
            |e| e.big_number(big),
            b"$37\r\n1234567999999999999999999999999999999\r\n",
            b"(1234567999999999999999999999999999999\r\n",
        );
        check(|e| e.null(), b"$-1\r\n", b"_\r\n");
        check(
            |e| {
                e.set(3);
                (0..3).for_each(|i| e.int(i));
            },
            b"*3\r\n:0\r\n:1\r\n:2\r\n",
            b"~3\r\n:0\r\n:1\r\n:2\r\n",
        );
        check(
            |e| {
                e.map(3);
                for i in 0..3 {
                    e.int(i);
                    e.boolean(i == 1);
                }
            },
            b"*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n",
            b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
        );
        check(
            |e| {
                if e.attribute(1) {
                    e.bulk(b"key-popularity");
                    e.array(2);
                    e.bulk(b"key:123");
                    e.int(90);
                }
                e.bulk(b"Some real reply following the attribute");
            },
            b"$39\r\nSome real reply following the attribute\r\n",
            b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n\
$39\r\nSome real reply following the attribute\r\n",
        );
        check(
            |e| e.verbatim(b"txt", b"This is a verbatim\nstring"),
            b"$25\r\nThis is a verbatim\nstring\r\n",
            b"=29\r\ntxt:This is a verbatim\nstring\r\n",
        );
        check(|e| e.boolean(true), b":1\r\n", b"#t\r\n");
        check(|e| e.boolean(false), b":0\r\n", b"#f\r\n");
        // RESP3 push as DEBUG PROTOCOL push sends it; RESP2 clients get pub/sub messages as
        // plain arrays.
        check(|e| e.push(2), b"*2\r\n", b">2\r\n");
    }

    #[test]
    fn simple_frames() {
        check(|e| e.ok(), b"+OK\r\n", b"+OK\r\n");
        check(|e| e.simple(b"PONG"), b"+PONG\r\n", b"+PONG\r\n");
        check(|e| e.null_array(), b"*-1\r\n", b"_\r\n");
        check(|e| e.array(0), b"*0\r\n", b"*0\r\n");
        check(|e| e.bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        check(|e| e.bulk_int(-42), b"$3\r\n-42\r\n", b"$3\r\n-42\r\n");
        check(|e| e.raw(b":1\r\n"), b":1\r\n", b":1\r\n");
        check(|e| e.double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        check(|e| e.double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n");
    }

    #[test]
    fn integers_at_the_edges() {
        for v in [0, 1, -1, 9, 10, 99, 100, -100, 12345678, i64::MAX, i64::MIN] {
            let (two, _) = both(|e| e.int(v));
            assert_eq!(two, format!(":{v}\r\n").into_bytes());
        }
        let (two, _) = both(|e| e.array(usize::MAX));
        assert_eq!(two, format!("*{}\r\n", usize::MAX).into_bytes());
    }

    /// redis-server replaces CR and LF in error messages with spaces: `*1\r\n\r\n` is answered
    /// `-ERR Protocol error: expected '$', got ' '`.
    #[test]
    fn errors_are_one_line() {
        check(|e| e.error(b"ERR syntax error"), b"-ERR syntax error\r\n", b"-ERR syntax error\r\n");
        check(|e| e.error(b"ERR a\r\nb\nc"), b"-ERR a  b c\r\n", b"-ERR a  b c\r\n");
        check(|e| e.error(b"-WRONGTYPE x"), b"-WRONGTYPE x\r\n", b"-WRONGTYPE x\r\n");
    }

    fn fmt(v: f64) -> String {
        let mut out = Vec::new();
        format_double(v, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// ZADD z <v> m; ZSCORE z m on redis-server 7.0.15 (RESP2 bulk and RESP3 double alike), and
    /// glibc's `printf("%.17g")` for the rest.
    #[test]
    #[allow(clippy::approx_constant)] // 3.141 is a value redis was seen printing.
    fn doubles_as_redis_server_7_0_15_prints_them() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (3.0, "3"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            // 2^-25 is exactly 2.98023223876953125e-8, a tie at the 17th digit: glibc rounds
            // half to even.
            (2f64.powi(-25), "2.9802322387695312e-08"),
            (5e-324, "4.9406564584124654e-324"),
            (-1.7976931348623157e308, "-1.7976931348623157e+308"),
            (3.141, "3.141"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-2.5, "-2.5"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (99999999999999999.0, "1e+17"),
            (12345.678, "12345.678"),
            (1152921504606846976.0, "1.152921504606847e+18"),
            (-123.0, "-123"),
        ];
        for &(v, want) in cases {
            assert_eq!(fmt(v), want, "{v:e}");
        }
        assert_eq!(fmt(f64::NAN), "nan");
        assert_eq!(fmt(-f64::NAN), "-nan");
    }

    /// %.17g keeps enough digits that reading the text back gives the same double.
    #[test]
    fn doubles_round_trip() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                let text = fmt(v);
                assert_eq!(text.parse::<f64>().ok().map(f64::to_bits), Some(v.to_bits()), "{text}");
            }
        }
    }
}
