//! The four wire formats the load generator speaks: how a GET, a SET or a multi-key GET is
//! written, and how one complete reply is recognised and classified.
//!
//! Only as much of each protocol is understood as a benchmark needs: a reply is a hit (with
//! its data, so the value can be verified), a miss, a successful store, an error line, or
//! something else that was well formed but unexpected. Parsing is incremental in the usual
//! way: *incomplete* is an ordinary answer meaning "read more", and the caller keeps the
//! unconsumed bytes.
//!
//! A multi-get's reply is taken one *item* at a time (one hit, one miss, or the end marker)
//! rather than whole, so however many keys a multi-get names, the reader never needs more
//! than one value in its buffer.

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
    /// memcached binary protocol: GET / SET with 24-byte headers; the opaque field carries
    /// the key's number so every response is matched to its request.
    McBinary,
}

impl Proto {
    /// The name used on the command line and in the machine-readable output.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Resp => "resp",
            Proto::McText => "mc-text",
            Proto::McMeta => "mc-meta",
            Proto::McBinary => "mc-binary",
        }
    }

    /// Parses a `--proto` value.
    pub fn from_name(s: &str) -> Option<Proto> {
        match s {
            "resp" => Some(Proto::Resp),
            "mc-text" | "mc" | "memcache" => Some(Proto::McText),
            "mc-meta" | "meta" => Some(Proto::McMeta),
            "mc-binary" | "binary" => Some(Proto::McBinary),
            _ => None,
        }
    }

    /// A request that every server answers without touching the keyspace (readiness probe).
    pub fn ping_request(self) -> &'static [u8] {
        match self {
            Proto::Resp => b"PING\r\n",
            Proto::McText | Proto::McMeta => b"version\r\n",
            Proto::McBinary => &BINARY_VERSION_REQUEST,
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

/// Appends one request to `out`. `value` is ignored for GET; `tag` is sent where the protocol
/// can carry it (the binary opaque) and must come back in the reply (see [`parse`]).
pub fn encode(proto: Proto, op: Op, key: &[u8], value: &[u8], tag: u32, out: &mut Vec<u8>) {
    match (proto, op) {
        (Proto::McBinary, Op::Get) => binary_request(out, BinRequest { opcode: OP_GET, key, tag, ..BinRequest::EMPTY }),
        (Proto::McBinary, Op::Set) => {
            // Extras: flags 0, expiration 0 (never), as the text encoders send.
            binary_request(out, BinRequest { opcode: OP_SET, extras: &[0; 8], key, value, tag })
        }
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

/// Looks for one complete reply at the start of `buf`. `tag` is the one its request was
/// encoded with; a binary reply carrying another opaque means the stream is out of step.
pub fn parse(proto: Proto, buf: &[u8], tag: u32) -> Parse<'_> {
    match proto {
        Proto::Resp => parse_resp(buf),
        Proto::McText => parse_mc_text(buf),
        Proto::McMeta => parse_mc_meta(buf),
        Proto::McBinary => parse_binary_single(buf, tag),
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

// ---- memcached binary protocol --------------------------------------------------------------

/// Request and response magic bytes.
const MAGIC_REQUEST: u8 = 0x80;
const MAGIC_RESPONSE: u8 = 0x81;
const OP_GET: u8 = 0x00;
const OP_SET: u8 = 0x01;
const OP_NOOP: u8 = 0x0a;
const OP_VERSION: u8 = 0x0b;
const OP_GETKQ: u8 = 0x0d;
const STATUS_OK: u16 = 0x0000;
const STATUS_KEY_ENOENT: u16 = 0x0001;
/// The binary header, request or response.
pub const BINARY_HEADER: usize = 24;
/// A response body longer than this is refused rather than buffered: no value the benchmark
/// stores comes near it, so such a header can only mean the stream is out of step.
const MAX_BINARY_BODY: usize = 64 << 20;

/// `VERSION` with an empty body: the binary readiness probe.
pub const BINARY_VERSION_REQUEST: [u8; BINARY_HEADER] = {
    let mut h = [0u8; BINARY_HEADER];
    h[0] = MAGIC_REQUEST;
    h[1] = OP_VERSION;
    h
};

/// The parts of one binary request.
struct BinRequest<'a> {
    opcode: u8,
    extras: &'a [u8],
    key: &'a [u8],
    value: &'a [u8],
    tag: u32,
}

impl BinRequest<'_> {
    const EMPTY: BinRequest<'static> = BinRequest { opcode: 0, extras: &[], key: &[], value: &[], tag: 0 };
}

fn binary_request(out: &mut Vec<u8>, r: BinRequest<'_>) {
    let body = r.extras.len() + r.key.len() + r.value.len();
    out.push(MAGIC_REQUEST);
    out.push(r.opcode);
    out.extend_from_slice(&(r.key.len() as u16).to_be_bytes());
    out.push(r.extras.len() as u8);
    out.push(0); // data type: raw bytes
    out.extend_from_slice(&[0, 0]); // vbucket
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&r.tag.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // CAS: none, so the SET is unconditional
    out.extend_from_slice(r.extras);
    out.extend_from_slice(r.key);
    out.extend_from_slice(r.value);
}

/// One binary response, split into its fields; slices point into the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct BinResponse<'a> {
    pub opcode: u8,
    pub status: u16,
    pub opaque: u32,
    pub cas: u64,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Splits the binary response at the front of `buf`: `Ok(None)` while incomplete, `Err` when
/// the header cannot be a response (wrong magic, lengths that do not add up, absurd size).
pub fn binary_response(buf: &[u8]) -> Result<Option<(BinResponse<'_>, usize)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != MAGIC_RESPONSE {
        return Err(format!("binary response magic 0x{:02x}, want 0x81", buf[0]));
    }
    let Some(h) = buf.get(..BINARY_HEADER) else {
        return Ok(None);
    };
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let key_len = usize::from(be16(2));
    let extras_len = usize::from(h[4]);
    let body = be32(8) as usize;
    if body > MAX_BINARY_BODY {
        return Err(format!("binary response claims a {body}-byte body"));
    }
    if extras_len + key_len > body {
        return Err(format!("binary response: extras {extras_len} + key {key_len} exceed body {body}"));
    }
    let Some(b) = buf.get(BINARY_HEADER..BINARY_HEADER + body) else {
        return Ok(None);
    };
    let mut cas = [0u8; 8];
    cas.copy_from_slice(&h[16..24]);
    let r = BinResponse {
        opcode: h[1],
        status: be16(6),
        opaque: be32(12),
        cas: u64::from_be_bytes(cas),
        extras: &b[..extras_len],
        key: &b[extras_len..extras_len + key_len],
        value: &b[extras_len + key_len..],
    };
    Ok(Some((r, BINARY_HEADER + body)))
}

/// Status codes by their names in the protocol's documentation, for error messages.
fn status_name(status: u16) -> &'static [u8] {
    match status {
        0x0001 => b"KEY_ENOENT",
        0x0002 => b"KEY_EEXISTS",
        0x0003 => b"E2BIG",
        0x0004 => b"EINVAL",
        0x0005 => b"NOT_STORED",
        0x0006 => b"DELTA_BADVAL",
        0x0020 => b"AUTH_ERROR",
        0x0081 => b"UNKNOWN_COMMAND",
        0x0082 => b"ENOMEM",
        _ => b"unknown status",
    }
}

/// A GET or SET response, checked field by field: a hit must carry the 4 bytes of flags, no
/// key and a CAS; a store must carry a CAS and nothing else. Anything else well framed is
/// `Other`, so it is counted as an error rather than ending the run.
fn parse_binary_single(buf: &[u8], tag: u32) -> Parse<'_> {
    let (r, used) = match binary_response(buf) {
        Ok(Some(x)) => x,
        Ok(None) => return Parse::Incomplete,
        Err(e) => return Parse::Invalid(e),
    };
    if r.opaque != tag {
        return Parse::Invalid(format!("binary response opaque {} where {tag} was expected", r.opaque));
    }
    let reply = match (r.opcode, r.status) {
        (OP_GET, STATUS_OK) if r.extras.len() == 4 && r.key.is_empty() && r.cas != 0 => Reply::Value(r.value),
        (OP_GET, STATUS_OK) => Reply::Other(b"GET hit without 4 bytes of flags, with a key, or without a CAS"),
        (OP_GET, STATUS_KEY_ENOENT) => Reply::Miss,
        (OP_SET, STATUS_OK) if r.extras.is_empty() && r.key.is_empty() && r.value.is_empty() && r.cas != 0 => {
            Reply::Stored
        }
        (OP_SET, STATUS_OK) => Reply::Other(b"SET success with a body or without a CAS"),
        (OP_GET | OP_SET, status) => Reply::Error(status_name(status)),
        _ => Reply::Other(b"response to another opcode"),
    };
    Parse::Complete(reply, used)
}

// ---- multi-get -------------------------------------------------------------------------------

/// The tag of the binary NOOP that ends a multi-get; keys' tags are their numbers, which the
/// keyspace (a `u32` count) never makes this large.
pub const MGET_END_TAG: u32 = u32::MAX;

/// Appends what comes before the first key of a multi-get. RESP has none: the command line
/// refuses `--op mget` with it (its `MGET` reply is one array, not a stream of items).
pub fn mget_begin(proto: Proto, out: &mut Vec<u8>) {
    match proto {
        Proto::McText => out.extend_from_slice(b"get"),
        Proto::Resp | Proto::McMeta | Proto::McBinary => {}
    }
}

/// Appends one key of a multi-get: text adds it to the `get` line, meta sends `mg <key> v`,
/// binary a GETKQ (answered only on a hit, with the key), as libmemcached's multi-get does.
pub fn mget_key(proto: Proto, key: &[u8], tag: u32, out: &mut Vec<u8>) {
    match proto {
        Proto::Resp => {}
        Proto::McText => {
            out.push(b' ');
            out.extend_from_slice(key);
        }
        Proto::McMeta => encode(Proto::McMeta, Op::Get, key, b"", tag, out),
        Proto::McBinary => binary_request(out, BinRequest { opcode: OP_GETKQ, key, tag, ..BinRequest::EMPTY }),
    }
}

/// Appends what ends a multi-get: the text line's CRLF, meta `mn`, binary NOOP (whose reply
/// says every quiet GET before it has been answered).
pub fn mget_end(proto: Proto, out: &mut Vec<u8>) {
    match proto {
        Proto::Resp => {}
        Proto::McText => out.extend_from_slice(b"\r\n"),
        Proto::McMeta => out.extend_from_slice(b"mn\r\n"),
        Proto::McBinary => binary_request(out, BinRequest { opcode: OP_NOOP, tag: MGET_END_TAG, ..BinRequest::EMPTY }),
    }
}

/// One piece of a multi-get's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A hit. `key` is named where the protocol names it (text `VALUE`, binary GETKQ): misses
    /// are then silent and the caller learns of them from the keys skipped. `tag` is the
    /// binary opaque.
    Hit { key: Option<&'a [u8]>, tag: Option<u32>, data: &'a [u8] },
    /// A miss, where the protocol reports one (meta `EN`).
    Miss,
    /// The multi-get is complete: text `END`, meta `MN`, binary NOOP.
    End,
    /// An error reply.
    Error(&'a [u8]),
    /// Well formed but not part of a multi-get's answer.
    Other(&'a [u8]),
}

/// The outcome of looking for one multi-get item at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseItem<'a> {
    Complete(Item<'a>, usize),
    Incomplete,
    Invalid(String),
}

/// Looks for one multi-get item at the start of `buf`. RESP multi-gets are not supported
/// (the benchmark does not issue them) and parse as invalid.
pub fn parse_mget_item(proto: Proto, buf: &[u8]) -> ParseItem<'_> {
    match proto {
        Proto::Resp => ParseItem::Invalid("multi-get is not implemented over RESP".into()),
        Proto::McText => parse_mget_text(buf),
        Proto::McMeta => match parse_mc_meta(buf) {
            Parse::Complete(Reply::Value(data), n) => ParseItem::Complete(Item::Hit { key: None, tag: None, data }, n),
            Parse::Complete(Reply::Miss, n) => ParseItem::Complete(Item::Miss, n),
            Parse::Complete(Reply::Other(b"MN"), n) => ParseItem::Complete(Item::End, n),
            Parse::Complete(Reply::Error(l), n) => ParseItem::Complete(Item::Error(l), n),
            Parse::Complete(Reply::Stored | Reply::Other(_), n) => ParseItem::Complete(Item::Other(&buf[..n]), n),
            Parse::Incomplete => ParseItem::Incomplete,
            Parse::Invalid(e) => ParseItem::Invalid(e),
        },
        Proto::McBinary => parse_mget_binary(buf),
    }
}

fn parse_mget_text(buf: &[u8]) -> ParseItem<'_> {
    let Some((head, head_len)) = line(buf) else {
        return ParseItem::Incomplete;
    };
    if !head.starts_with(b"VALUE ") {
        let item = match mc_status_line(head) {
            Reply::Miss => Item::End,
            Reply::Error(l) => Item::Error(l),
            _ => Item::Other(head),
        };
        return ParseItem::Complete(item, head_len);
    }
    // `VALUE <key> <flags> <bytes> [<cas>]`
    let mut fields = head.split(|&b| b == b' ').skip(1);
    let key = fields.next().unwrap_or_default();
    let flags_ok = fields.next().and_then(parse_int).is_some_and(|f| f >= 0);
    let Some(len) = fields.next().and_then(parse_int).filter(|&n| n >= 0 && flags_ok && !key.is_empty()) else {
        return ParseItem::Invalid(format!("bad VALUE line {}", show(head)));
    };
    match payload(buf, head_len, len as usize) {
        Ok(Some(data)) => {
            ParseItem::Complete(Item::Hit { key: Some(key), tag: None, data }, head_len + len as usize + 2)
        }
        Ok(None) => ParseItem::Incomplete,
        Err(e) => ParseItem::Invalid(e),
    }
}

fn parse_mget_binary(buf: &[u8]) -> ParseItem<'_> {
    let (r, used) = match binary_response(buf) {
        Ok(Some(x)) => x,
        Ok(None) => return ParseItem::Incomplete,
        Err(e) => return ParseItem::Invalid(e),
    };
    let item = match (r.opcode, r.status) {
        (OP_NOOP, STATUS_OK) if r.opaque == MGET_END_TAG => Item::End,
        (OP_NOOP, _) => return ParseItem::Invalid(format!("NOOP response with opaque {}", r.opaque)),
        (OP_GETKQ, STATUS_OK) if r.extras.len() == 4 && !r.key.is_empty() && r.cas != 0 => {
            Item::Hit { key: Some(r.key), tag: Some(r.opaque), data: r.value }
        }
        (OP_GETKQ, STATUS_OK) => Item::Other(b"GETKQ hit without 4 bytes of flags, without the key, or without a CAS"),
        // A quiet get is never answered with a miss; the server did not treat it as quiet.
        (OP_GETKQ, STATUS_KEY_ENOENT) => Item::Other(b"GETKQ miss answered"),
        (OP_GETKQ, status) => Item::Error(status_name(status)),
        _ => Item::Other(b"response to another opcode"),
    };
    ParseItem::Complete(item, used)
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
        encode(proto, op, b"key:00000007", b"abc", 7, &mut out);
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
            let got = parse(*proto, bytes, 0);
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
                assert_eq!(parse(*proto, &bytes[..cut], 0), Parse::Incomplete, "{} cut at {cut}", show(bytes));
            }
        }
    }

    #[test]
    fn pipelined_replies_are_taken_one_at_a_time() {
        let buf = b"$1\r\na\r\n$-1\r\n+OK\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            match parse(Proto::Resp, &buf[at..], 0) {
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
        assert!(matches!(parse(Proto::Resp, b"hello\r\n", 0), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::Resp, b"$x\r\n", 0), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::McText, b"VALUE k 0 3\r\nabcd\r\n", 0), Parse::Invalid(_)));
        assert!(matches!(parse(Proto::McMeta, b"VA x\r\n", 0), Parse::Invalid(_)));
    }

    /// A binary response: header fields as given, body = extras + key + value.
    fn bin(opcode: u8, status: u16, opaque: u32, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = vec![MAGIC_RESPONSE, opcode];
        v.extend_from_slice(&(key.len() as u16).to_be_bytes());
        v.push(extras.len() as u8);
        v.push(0);
        v.extend_from_slice(&status.to_be_bytes());
        v.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        v.extend_from_slice(&opaque.to_be_bytes());
        v.extend_from_slice(&cas.to_be_bytes());
        v.extend_from_slice(extras);
        v.extend_from_slice(key);
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn binary_requests_have_the_documented_header() {
        let get = enc(Proto::McBinary, Op::Get);
        let mut want = vec![0x80, 0x00, 0, 12, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"key:00000007");
        assert_eq!(get, want);

        let set = enc(Proto::McBinary, Op::Set);
        let mut want = vec![0x80, 0x01, 0, 12, 8, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(b"key:00000007abc");
        assert_eq!(set, want);

        assert_eq!(BINARY_VERSION_REQUEST[..2], [0x80, 0x0b]);
        assert!(BINARY_VERSION_REQUEST[2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn binary_replies_are_checked_field_by_field() {
        let flags = [0, 0, 0, 0];
        let hit = bin(OP_GET, 0, 7, 99, &flags, b"", b"abc");
        assert_eq!(parse(Proto::McBinary, &hit, 7), Parse::Complete(Reply::Value(b"abc"), 31));
        let miss = bin(OP_GET, 1, 7, 0, b"", b"", b"Not found");
        assert_eq!(parse(Proto::McBinary, &miss, 7), Parse::Complete(Reply::Miss, 33));
        let stored = bin(OP_SET, 0, 7, 5, b"", b"", b"");
        assert_eq!(parse(Proto::McBinary, &stored, 7), Parse::Complete(Reply::Stored, 24));
        let too_big = bin(OP_SET, 3, 7, 0, b"", b"", b"Too large.");
        assert_eq!(parse(Proto::McBinary, &too_big, 7), Parse::Complete(Reply::Error(b"E2BIG"), 34));

        // Well framed but wrong: no CAS, no flags, a key on a plain GET, another opcode.
        for bad in [
            bin(OP_GET, 0, 7, 0, &flags, b"", b"abc"),
            bin(OP_GET, 0, 7, 1, b"", b"", b"abc"),
            bin(OP_GET, 0, 7, 1, &flags, b"k", b"abc"),
            bin(OP_SET, 0, 7, 0, b"", b"", b""),
            bin(OP_NOOP, 0, 7, 0, b"", b"", b""),
        ] {
            assert!(matches!(parse(Proto::McBinary, &bad, 7), Parse::Complete(Reply::Other(_), _)), "{bad:?}");
        }

        // Out of step: another opaque, a request's magic, a body that cannot hold its parts.
        assert!(matches!(parse(Proto::McBinary, &hit, 8), Parse::Invalid(_)));
        let mut req = hit.clone();
        req[0] = 0x80;
        assert!(matches!(parse(Proto::McBinary, &req, 7), Parse::Invalid(_)));
        let mut lying = hit.clone();
        lying[4] = 200;
        assert!(matches!(parse(Proto::McBinary, &lying, 7), Parse::Invalid(_)));
        // A header claiming a huge body is refused before any of it arrives.
        let mut huge = bin(OP_GET, 0, 7, 1, &flags, b"", b"");
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse(Proto::McBinary, &huge[..24], 7), Parse::Invalid(_)));

        for cut in 0..hit.len() {
            assert_eq!(parse(Proto::McBinary, &hit[..cut], 7), Parse::Incomplete, "cut at {cut}");
        }
    }

    fn mget(proto: Proto, keys: &[(&[u8], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        mget_begin(proto, &mut out);
        for (k, t) in keys {
            mget_key(proto, k, *t, &mut out);
        }
        mget_end(proto, &mut out);
        out
    }

    #[test]
    fn multi_gets_are_encoded_per_protocol() {
        let keys: &[(&[u8], u32)] = &[(b"a", 1), (b"bc", 2)];
        assert_eq!(mget(Proto::McText, keys), b"get a bc\r\n");
        assert_eq!(mget(Proto::McMeta, keys), b"mg a v\r\nmg bc v\r\nmn\r\n");
        let bin = mget(Proto::McBinary, keys);
        let mut want = vec![0x80, 0x0d, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'a'];
        want.extend_from_slice(&[0x80, 0x0d, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(b"bc");
        want.extend_from_slice(&[0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0; 8]);
        assert_eq!(bin, want);
    }

    /// Every item of `buf`, in order, asserting that each strict prefix of each is incomplete.
    fn items(proto: Proto, buf: &[u8]) -> Vec<Item<'_>> {
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            match parse_mget_item(proto, &buf[at..]) {
                ParseItem::Complete(item, n) => {
                    for cut in 0..n {
                        assert_eq!(parse_mget_item(proto, &buf[at..at + cut]), ParseItem::Incomplete, "cut {cut}");
                    }
                    got.push(item);
                    at += n;
                }
                other => panic!("{other:?} at {at}"),
            }
        }
        got
    }

    #[test]
    fn multi_get_replies_are_read_item_by_item() {
        let hit = |key: Option<&'static [u8]>, tag, data: &'static [u8]| Item::Hit { key, tag, data };
        assert_eq!(
            items(Proto::McText, b"VALUE a 0 2\r\nxy\r\nVALUE bc 5 1 77\r\nz\r\nEND\r\n"),
            [hit(Some(b"a"), None, b"xy"), hit(Some(b"bc"), None, b"z"), Item::End]
        );
        assert_eq!(items(Proto::McText, b"END\r\n"), [Item::End]);
        assert_eq!(items(Proto::McText, b"SERVER_ERROR x\r\n"), [Item::Error(b"SERVER_ERROR x")]);
        assert_eq!(
            items(Proto::McMeta, b"VA 2\r\nxy\r\nEN\r\nMN\r\n"),
            [hit(None, None, b"xy"), Item::Miss, Item::End]
        );
        let mut b = bin(OP_GETKQ, 0, 4, 9, &[0; 4], b"bc", b"xyz");
        b.extend_from_slice(&bin(OP_NOOP, 0, MGET_END_TAG, 0, b"", b"", b""));
        assert_eq!(items(Proto::McBinary, &b), [hit(Some(b"bc"), Some(4), b"xyz"), Item::End]);

        let answered_miss = bin(OP_GETKQ, 1, 4, 0, b"", b"bc", b"");
        assert!(matches!(parse_mget_item(Proto::McBinary, &answered_miss), ParseItem::Complete(Item::Other(_), _)));
        let no_cas = bin(OP_GETKQ, 0, 4, 0, &[0; 4], b"bc", b"xyz");
        assert!(matches!(parse_mget_item(Proto::McBinary, &no_cas), ParseItem::Complete(Item::Other(_), _)));
        let stray_noop = bin(OP_NOOP, 0, 3, 0, b"", b"", b"");
        assert!(matches!(parse_mget_item(Proto::McBinary, &stray_noop), ParseItem::Invalid(_)));
        assert!(matches!(parse_mget_item(Proto::McText, b"VALUE a x 2\r\nxy\r\n"), ParseItem::Invalid(_)));
        assert!(matches!(parse_mget_item(Proto::McText, b"VALUE a 0 2\r\nxyz\r\n"), ParseItem::Invalid(_)));
        assert!(matches!(parse_mget_item(Proto::Resp, b"*1\r\n"), ParseItem::Invalid(_)));
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
