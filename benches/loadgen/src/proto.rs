//! The three wire formats the load generator speaks: how a GET or SET is written, and how one
//! complete reply is recognised and classified.
//!
//! Only as much of each protocol is understood as a benchmark needs: a reply is a hit (with
//! its data, so the value can be verified), a miss, a successful store, an error line, or
//! something else that was well formed but unexpected. Parsing is incremental in the usual
//! way: *incomplete* is an ordinary answer meaning "read more", and the caller keeps the
//! unconsumed bytes.

use std::fmt;

/// Which protocol the connections speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Redis serialization protocol; requests are arrays of bulk strings.
    Resp,
    /// memcached text protocol: `get` / `set`.
    McText,
    /// memcached meta protocol: `mg <key> v` / `ms <key> <len>`.
    McMeta,
}

impl Proto {
    /// The name used on the command line and in the machine-readable output.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Resp => "resp",
            Proto::McText => "mc-text",
            Proto::McMeta => "mc-meta",
        }
    }

    /// Parses a `--proto` value.
    pub fn from_name(s: &str) -> Option<Proto> {
        match s {
            "resp" => Some(Proto::Resp),
            "mc-text" | "mc" | "memcache" => Some(Proto::McText),
            "mc-meta" | "meta" => Some(Proto::McMeta),
            _ => None,
        }
    }

    /// A request that every server answers without touching the keyspace (readiness probe).
    pub fn ping_request(self) -> &'static [u8] {
        match self {
            Proto::Resp => b"PING\r\n",
            Proto::McText | Proto::McMeta => b"version\r\n",
        }
    }
}

/// The two operations the benchmark issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
}

/// One complete reply, classified. Borrowed slices point into the caller's read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A GET hit and its data.
    Value(&'a [u8]),
    /// A GET miss: `$-1`, `_`, `END` without a `VALUE`, or `EN`.
    Miss,
    /// A store succeeded: `+OK`, `STORED`, `HD`.
    Stored,
    /// The server answered with an error line (`-ERR …`, `SERVER_ERROR …`, `CLIENT_ERROR …`).
    Error(&'a [u8]),
    /// Well formed but not an answer the benchmark expects (`NOT_STORED`, an integer, …).
    Other(&'a [u8]),
}

/// The outcome of looking for one reply at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// A reply and the number of bytes it took.
    Complete(Reply<'a>, usize),
    /// The buffer holds only part of a reply.
    Incomplete,
    /// The bytes cannot be a reply of this protocol: the stream is out of step.
    Invalid(String),
}

/// Appends one request to `out`. `value` is ignored for GET.
pub fn encode(proto: Proto, op: Op, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match (proto, op) {
        (Proto::Resp, Op::Get) => {
            out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
            resp_bulk(key, out);
        }
        (Proto::Resp, Op::Set) => {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            resp_bulk(key, out);
            resp_bulk(value, out);
        }
        (Proto::McText, Op::Get) => {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::McText, Op::Set) => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 0 ");
            push_decimal(value.len() as u64, out);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::McMeta, Op::Get) => {
            // `v` asks for the value; without it a hit is a bare `HD`.
            out.extend_from_slice(b"mg ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" v\r\n");
        }
        (Proto::McMeta, Op::Set) => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_decimal(value.len() as u64, out);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn resp_bulk(data: &[u8], out: &mut Vec<u8>) {
    out.push(b'$');
    push_decimal(data.len() as u64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without going through `fmt` (this runs once per request).
pub fn push_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Looks for one complete reply at the start of `buf`.
pub fn parse(proto: Proto, buf: &[u8]) -> Parse<'_> {
    match proto {
        Proto::Resp => parse_resp(buf),
        Proto::McText => parse_mc_text(buf),
        Proto::McMeta => parse_mc_meta(buf),
    }
}

/// The line at the front of `buf` without its CRLF, and the length including the CRLF.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    Some((&buf[..end], nl + 1))
}

fn parse_int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Bytes of a length-prefixed payload plus its CRLF starting at `at`, if all there.
fn payload(buf: &[u8], at: usize, len: usize) -> Result<Option<&[u8]>, String> {
    let end = at + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err("data block not followed by CRLF".into());
    }
    Ok(Some(&buf[at..end]))
}

fn parse_resp(buf: &[u8]) -> Parse<'_> {
    let Some(&kind) = buf.first() else {
        return Parse::Incomplete;
    };
    let Some((head, head_len)) = line(buf) else {
        return Parse::Incomplete;
    };
    let rest = &head[1..];
    match kind {
        b'+' if rest == b"OK" => Parse::Complete(Reply::Stored, head_len),
        b'-' => Parse::Complete(Reply::Error(head), head_len),
        b'_' => Parse::Complete(Reply::Miss, head_len),
        b'$' => match parse_int(rest) {
            Some(-1) => Parse::Complete(Reply::Miss, head_len),
            Some(n) if n >= 0 => match payload(buf, head_len, n as usize) {
                Ok(Some(data)) => Parse::Complete(Reply::Value(data), head_len + n as usize + 2),
                Ok(None) => Parse::Incomplete,
                Err(e) => Parse::Invalid(e),
            },
            _ => Parse::Invalid(format!("bad bulk length {}", show(head))),
        },
        _ => match skip_resp(buf, 0) {
            Ok(Some(n)) => Parse::Complete(Reply::Other(head), n),
            Ok(None) => Parse::Incomplete,
            Err(e) => Parse::Invalid(e),
        },
    }
}

/// Length of the complete RESP2/RESP3 value at the front of `buf`, whatever its type, so an
/// unexpected reply (an array, a map, a push) is stepped over instead of desynchronising.
fn skip_resp(buf: &[u8], depth: usize) -> Result<Option<usize>, String> {
    if depth > 32 {
        return Err("RESP nesting deeper than 32".into());
    }
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some((head, head_len)) = line(buf) else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(head_len)),
        b'$' | b'!' | b'=' => match parse_int(&head[1..]) {
            Some(-1) => Ok(Some(head_len)),
            Some(n) if n >= 0 => Ok(payload(buf, head_len, n as usize)?.map(|_| head_len + n as usize + 2)),
            _ => Err(format!("bad length {}", show(head))),
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = match parse_int(&head[1..]) {
                Some(-1) => return Ok(Some(head_len)),
                Some(n) if n >= 0 => n as usize,
                _ => return Err(format!("bad aggregate length {}", show(head))),
            };
            // Maps and attributes hold key/value pairs.
            let items = if matches!(kind, b'%' | b'|') { n * 2 } else { n };
            let mut at = head_len;
            for _ in 0..items {
                match skip_resp(&buf[at..], depth + 1)? {
                    Some(len) => at += len,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        _ => Err(format!("not a RESP reply: {}", show(head))),
    }
}

fn parse_mc_text(buf: &[u8]) -> Parse<'_> {
    let Some((first, mut at)) = line(buf) else {
        return Parse::Incomplete;
    };
    if !first.starts_with(b"VALUE ") {
        return Parse::Complete(mc_status_line(first), at);
    }
    // `VALUE <key> <flags> <bytes> [<cas>]`, its data, maybe more VALUE blocks, then `END`.
    // Only the first block's data is reported: the benchmark asks for one key at a time.
    let mut first_data = None;
    let mut head = first;
    loop {
        let Some(len) = head.split(|&b| b == b' ').nth(3).and_then(parse_int).filter(|&n| n >= 0) else {
            return Parse::Invalid(format!("bad VALUE line {}", show(head)));
        };
        let data = match payload(buf, at, len as usize) {
            Ok(Some(d)) => d,
            Ok(None) => return Parse::Incomplete,
            Err(e) => return Parse::Invalid(e),
        };
        first_data.get_or_insert(data);
        at += len as usize + 2;
        let Some((next, next_len)) = line(&buf[at..]) else {
            return Parse::Incomplete;
        };
        at += next_len;
        if next == b"END" {
            return Parse::Complete(Reply::Value(first_data.unwrap_or_default()), at);
        }
        if !next.starts_with(b"VALUE ") {
            return Parse::Invalid(format!("expected VALUE or END, got {}", show(next)));
        }
        head = next;
    }
}

/// The one-line replies of the text protocol.
fn mc_status_line(l: &[u8]) -> Reply<'_> {
    match l {
        b"END" => Reply::Miss,
        b"STORED" => Reply::Stored,
        _ if l == b"ERROR"
            || l.starts_with(b"ERROR ")
            || l.starts_with(b"CLIENT_ERROR")
            || l.starts_with(b"SERVER_ERROR") =>
        {
            Reply::Error(l)
        }
        _ => Reply::Other(l),
    }
}

fn parse_mc_meta(buf: &[u8]) -> Parse<'_> {
    let Some((head, head_len)) = line(buf) else {
        return Parse::Incomplete;
    };
    // Meta replies are a two-letter code, then flags after a space.
    let code = head.split(|&b| b == b' ').next().unwrap_or_default();
    match code {
        b"VA" => {
            let Some(len) = head.split(|&b| b == b' ').nth(1).and_then(parse_int).filter(|&n| n >= 0) else {
                return Parse::Invalid(format!("bad VA line {}", show(head)));
            };
            match payload(buf, head_len, len as usize) {
                Ok(Some(data)) => Parse::Complete(Reply::Value(data), head_len + len as usize + 2),
                Ok(None) => Parse::Incomplete,
                Err(e) => Parse::Invalid(e),
            }
        }
        b"EN" => Parse::Complete(Reply::Miss, head_len),
        b"HD" => Parse::Complete(Reply::Stored, head_len),
        _ => Parse::Complete(mc_status_line(head), head_len),
    }
}

/// A reply line made printable for error messages, cut short.
pub fn show(bytes: &[u8]) -> ShowBytes<'_> {
    ShowBytes(&bytes[..bytes.len().min(80)])
}

/// Displays bytes with non-printable ones escaped.
pub struct ShowBytes<'a>(&'a [u8]);

impl fmt::Display for ShowBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(proto: Proto, op: Op) -> Vec<u8> {
        let mut out = Vec::new();
        encode(proto, op, b"key:00000007", b"abc", &mut out);
        out
    }

    #[test]
    fn requests_are_encoded_as_each_protocol_writes_them() {
        let cases: &[(Proto, Op, &[u8])] = &[
            (Proto::Resp, Op::Get, b"*2\r\n$3\r\nGET\r\n$12\r\nkey:00000007\r\n"),
            (Proto::Resp, Op::Set, b"*3\r\n$3\r\nSET\r\n$12\r\nkey:00000007\r\n$3\r\nabc\r\n"),
            (Proto::McText, Op::Get, b"get key:00000007\r\n"),
            (Proto::McText, Op::Set, b"set key:00000007 0 0 3\r\nabc\r\n"),
            (Proto::McMeta, Op::Get, b"mg key:00000007 v\r\n"),
            (Proto::McMeta, Op::Set, b"ms key:00000007 3\r\nabc\r\n"),
        ];
        for (proto, op, want) in cases {
            assert_eq!(enc(*proto, *op), *want, "{proto:?} {op:?}");
        }
    }

    #[test]
    fn complete_replies_are_classified() {
        let cases: &[(Proto, &[u8], Reply, usize)] = &[
            (Proto::Resp, b"+OK\r\n", Reply::Stored, 5),
            (Proto::Resp, b"$3\r\nabc\r\n", Reply::Value(b"abc"), 9),
            (Proto::Resp, b"$0\r\n\r\n", Reply::Value(b""), 6),
            (Proto::Resp, b"$-1\r\n", Reply::Miss, 5),
            (Proto::Resp, b"_\r\n", Reply::Miss, 3),
            (Proto::Resp, b"-ERR x\r\n", Reply::Error(b"-ERR x"), 8),
            (Proto::Resp, b":1\r\n", Reply::Other(b":1"), 4),
            (Proto::Resp, b"*2\r\n$1\r\na\r\n:2\r\n", Reply::Other(b"*2"), 15),
            (Proto::Resp, b"%1\r\n+a\r\n+b\r\n", Reply::Other(b"%1"), 12),
            (Proto::McText, b"VALUE k 0 3\r\nabc\r\nEND\r\n", Reply::Value(b"abc"), 23),
            (Proto::McText, b"VALUE k 5 3 99\r\nabc\r\nEND\r\n", Reply::Value(b"abc"), 26),
            (Proto::McText, b"END\r\n", Reply::Miss, 5),
            (Proto::McText, b"STORED\r\n", Reply::Stored, 8),
            (Proto::McText, b"NOT_STORED\r\n", Reply::Other(b"NOT_STORED"), 12),
            (Proto::McText, b"ERROR\r\n", Reply::Error(b"ERROR"), 7),
            (Proto::McText, b"SERVER_ERROR out of memory\r\n", Reply::Error(b"SERVER_ERROR out of memory"), 28),
            (Proto::McMeta, b"VA 3\r\nabc\r\n", Reply::Value(b"abc"), 11),
            (Proto::McMeta, b"VA 3 f0 c9\r\nabc\r\n", Reply::Value(b"abc"), 17),
            (Proto::McMeta, b"EN\r\n", Reply::Miss, 4),
            (Proto::McMeta, b"HD\r\n", Reply::Stored, 4),
            (Proto::McMeta, b"NS\r\n", Reply::Other(b"NS"), 4),
            (Proto::McMeta, b"CLIENT_ERROR bad\r\n", Reply::Error(b"CLIENT_ERROR bad"), 18),
        ];
        for (proto, bytes, want, used) in cases {
            let got = parse(*proto, bytes);
            assert_eq!(got, Parse::Complete(*want, *used), "{}", show(bytes));
        }
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let cases: &[(Proto, &[u8])] = &[
            (Proto::Resp, b"$3\r\nabc\r\n"),
            (Proto::Resp, b"*2\r\n$1\r\na\r\n:2\r\n"),
            (Proto::McText, b"VALUE k 0 3\r\nabc\r\nEND\r\n"),
            (Proto::McText, b"VALUE k 0 1\r\na\r\nVALUE j 0 1\r\nb\r\nEND\r\n"),
            (Proto::McMeta, b"VA 3 f0\r\nabc\r\n"),
            (Proto::McMeta, b"HD\r\n"),
        ];
        for (proto, bytes) in cases {
            for cut in 0..bytes.len() {
                assert_eq!(parse(*proto, &bytes[..cut]), Parse::Incomplete, "{} cut at {cut}", show(bytes));
            }
        }
    }

    #[test]
    fn pipelined_replies_are_taken_one_at_a_time() {
        let buf = b"$1\r\na\r\n$-1\r\n+OK\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            match parse(Proto::Resp, &buf[at..]) {
                Parse::Complete(r, n) => {
                    got.push(format!("{r:?}"));
                    at += n;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, ["Value([97])", "Miss", "Stored"]);
    }

    #[test]
    fn garbage_is_invalid_not_incomplete() {
        assert!(matches!(parse(Proto::Resp, b"hello\r\n"), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::Resp, b"$x\r\n"), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::McText, b"VALUE k 0 3\r\nabcd\r\n"), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::McMeta, b"VA x\r\n"), Parse::Invalid(_)));
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 32, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
