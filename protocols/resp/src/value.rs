//! An owned RESP2/RESP3 frame and a parser for any frame — the client side of the protocol.
//!
//! Used where cachette reads what a Redis server writes: replication (a primary's replies), tests
//! and tools. The server's own request path never builds a [`Value`]; it uses
//! [`crate::request`], which borrows instead of copying.
//!
//! Frames, one type byte then a line ending in `\r\n`:
//!
//! ```text
//! +simple   -error   :integer   $len\r\nbytes   *n (array)   _ (null)   ,double   #t / #f
//! !len\r\nbulk error   =len\r\nfmt:text (verbatim)   (big number   %n (map, n pairs)
//! ~n (set)   |n (attribute: n pairs, then the frame they annotate)   >n (push)
//! $-1 (RESP2 null bulk)   *-1 (RESP2 null array)
//! ```
//!
//! [`parse_value`] runs twice over a frame: a check pass that allocates nothing finds whether
//! the whole frame is buffered, then a build pass makes the tree. A caller polling a slowly
//! filling buffer so pays no allocation for the attempts that come back incomplete. Nesting is
//! limited to [`MAX_DEPTH`] so no input can exhaust the stack, and memory is only ever allocated
//! for bytes that are present, so a declared length cannot reserve more than the input holds.
//! RESP3 streamed strings and aggregates (`$?`, `*?`) are refused: redis-server never sends them.

use crate::encode::{format_double, Encoder, Version};
use crate::ProtocolError;

/// Deepest nesting of aggregates [`parse_value`] accepts.
pub const MAX_DEPTH: usize = 128;
/// Largest declared bulk, bulk error or verbatim length [`parse_value`] accepts (4 GiB); a larger
/// declaration is a protocol error rather than a wait for bytes that will not fit anywhere.
pub const MAX_BULK_LEN: u64 = 1 << 32;
/// Largest declared aggregate length [`parse_value`] accepts (redis's `INT_MAX`).
pub const MAX_AGGREGATE_LEN: u64 = i32::MAX as u64;
/// A number line (`:`, and the lengths of `$ * % ~ | > ! =`) longer than this cannot be valid,
/// so the parser refuses it instead of waiting for its end.
const MAX_NUMBER_LINE: usize = 32;

/// Any RESP2/RESP3 frame.
///
/// `Value::encode` writes the canonical form, which [`parse_value`] reads back into an equal
/// value; RESP3 types are written natively, and the two nulls in their RESP2 form (`$-1`, `*-1`).
/// [`Value::encode_as`] writes what a redis-server would send a client of a given version.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+text`: a status such as `OK` or `PONG`. Must not contain CR or LF.
    Simple(Vec<u8>),
    /// `-CODE message`: an error, without the leading `-`. Must not contain CR or LF.
    Error(Vec<u8>),
    /// `:n`.
    Integer(i64),
    /// `$len`: a binary-safe string.
    Bulk(Vec<u8>),
    /// A null: RESP2 `$-1` (null bulk string) or RESP3 `_`; both parse to this.
    Null,
    /// RESP2 `*-1`, the null array (e.g. `EXEC` aborted by `WATCH`).
    NullArray,
    /// `*n`.
    Array(Vec<Value>),
    /// `%n`: key/value pairs in the order sent.
    Map(Vec<(Value, Value)>),
    /// `~n`: members in the order sent.
    Set(Vec<Value>),
    /// `|n`: out-of-band key/value pairs annotating the frame that follows them, which is kept
    /// here as `value` so that one parse yields one whole reply.
    Attribute {
        /// The annotations.
        attributes: Vec<(Value, Value)>,
        /// The reply they annotate.
        value: Box<Value>,
    },
    /// `,d`: a double, including `inf`, `-inf` and `nan`.
    Double(f64),
    /// `#t` or `#f`.
    Boolean(bool),
    /// `(digits`: an integer of any size, as its decimal text.
    BigNumber(Vec<u8>),
    /// `=len\r\nfmt:text`: a string with a format hint (`txt`, `mkd`).
    Verbatim {
        /// The three-byte format.
        format: [u8; 3],
        /// The text after `fmt:`.
        text: Vec<u8>,
    },
    /// `>n`: an out-of-band push (pub/sub message, client-side caching invalidation).
    Push(Vec<Value>),
    /// `!len`: a binary-safe error.
    BulkError(Vec<u8>),
}

impl Value {
    /// A bulk string from anything byte-like, for building expected replies in tests and tools.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Value {
        Value::Bulk(bytes.as_ref().to_vec())
    }

    /// A status reply from anything byte-like.
    pub fn simple(text: impl AsRef<[u8]>) -> Value {
        Value::Simple(text.as_ref().to_vec())
    }

    /// The bytes of a string-like frame (simple, bulk, verbatim text, big number digits, either
    /// kind of error); `None` for other frames.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(b)
            | Value::Error(b)
            | Value::Bulk(b)
            | Value::BigNumber(b)
            | Value::BulkError(b)
            | Value::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The number of an integer frame; `None` for other frames.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// True for either null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::NullArray)
    }

    /// True for either kind of error.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_) | Value::BulkError(_))
    }

    /// Appends the canonical wire form of this frame to `out` (see [`Value`]).
    ///
    /// Bytes are written as they are: a `Simple` or `Error` holding CR or LF produces a frame
    /// that does not parse back the same.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => line(out, b'+', s),
            Value::Error(s) => line(out, b'-', s),
            Value::Integer(n) => Encoder::new(out, Version::Resp3).int(*n),
            Value::Bulk(b) => Encoder::new(out, Version::Resp2).bulk(b),
            Value::Null => out.extend_from_slice(b"$-1\r\n"),
            Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Array(items) => {
                length(out, b'*', items.len());
                items.iter().for_each(|v| v.encode(out));
            }
            Value::Map(pairs) => {
                length(out, b'%', pairs.len());
                encode_pairs(pairs, out);
            }
            Value::Set(items) => {
                length(out, b'~', items.len());
                items.iter().for_each(|v| v.encode(out));
            }
            Value::Attribute { attributes, value } => {
                length(out, b'|', attributes.len());
                encode_pairs(attributes, out);
                value.encode(out);
            }
            Value::Double(d) => {
                out.push(b',');
                format_double(*d, out);
                out.extend_from_slice(b"\r\n");
            }
            Value::Boolean(b) => Encoder::new(out, Version::Resp3).boolean(*b),
            Value::BigNumber(digits) => line(out, b'(', digits),
            Value::Verbatim { format, text } => Encoder::new(out, Version::Resp3).verbatim(format, text),
            Value::Push(items) => {
                length(out, b'>', items.len());
                items.iter().for_each(|v| v.encode(out));
            }
            Value::BulkError(b) => {
                length(out, b'!', b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Appends this frame as redis-server would send it to a client speaking `version`: in RESP2
    /// the RESP3 types degrade as [`Encoder`] degrades them, attributes are left out, and a bulk
    /// error becomes a simple error; in RESP3 either null is `_`.
    pub fn encode_as(&self, version: Version, out: &mut Vec<u8>) {
        let mut enc = Encoder::new(out, version);
        self.encode_with(&mut enc);
    }

    fn encode_with(&self, enc: &mut Encoder<'_>) {
        match self {
            Value::Simple(s) => enc.simple(s),
            Value::Error(s) => enc.error(s),
            Value::Integer(n) => enc.int(*n),
            Value::Bulk(b) => enc.bulk(b),
            Value::Null => enc.null(),
            Value::NullArray => enc.null_array(),
            Value::Array(items) => {
                enc.array(items.len());
                items.iter().for_each(|v| v.encode_with(enc));
            }
            Value::Map(pairs) => {
                enc.map(pairs.len());
                for (k, v) in pairs {
                    k.encode_with(enc);
                    v.encode_with(enc);
                }
            }
            Value::Set(items) => {
                enc.set(items.len());
                items.iter().for_each(|v| v.encode_with(enc));
            }
            Value::Attribute { attributes, value } => {
                if enc.attribute(attributes.len()) {
                    for (k, v) in attributes {
                        k.encode_with(enc);
                        v.encode_with(enc);
                    }
                }
                value.encode_with(enc);
            }
            Value::Double(d) => enc.double(*d),
            Value::Boolean(b) => enc.boolean(*b),
            Value::BigNumber(digits) => enc.big_number(digits),
            Value::Verbatim { format, text } => enc.verbatim(format, text),
            Value::Push(items) => {
                enc.push(items.len());
                items.iter().for_each(|v| v.encode_with(enc));
            }
            Value::BulkError(b) => {
                if enc.version == Version::Resp3 {
                    length(enc.out, b'!', b.len());
                    enc.out.extend_from_slice(b);
                    enc.out.extend_from_slice(b"\r\n");
                } else {
                    enc.error(b);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.push(prefix);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn length(out: &mut Vec<u8>, prefix: u8, n: usize) {
    Encoder::new(out, Version::Resp3).header(prefix, n, 0);
}

fn encode_pairs(pairs: &[(Value, Value)], out: &mut Vec<u8>) {
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

/// Parses one frame from the start of `buf`: `Ok(Some((value, consumed)))`, `Ok(None)` when the
/// frame is not whole yet, or an error for bytes no Redis server sends.
///
/// Cost: O(frames) for the check pass, plus one copy of the payload once the frame is complete.
pub fn parse_value(buf: &[u8]) -> Result<Option<(Value, usize)>, crate::ProtocolError> {
    if (Parser { buf, build: false }).frame(0, 0)?.is_none() {
        return Ok(None);
    }
    (Parser { buf, build: true }).frame(0, 0)
}

/// One walk over a frame. With `build` false nothing is allocated: every frame is answered by
/// the placeholder `Value::Null`, and the walk only finds where the frame ends.
struct Parser<'a> {
    buf: &'a [u8],
    build: bool,
}

/// A parse step's outcome: `None` is "incomplete".
type Step = Result<Option<(Value, usize)>, ProtocolError>;

fn error(what: &str) -> ProtocolError {
    ProtocolError::new(format!("Protocol error: {what}"))
}

impl Parser<'_> {
    /// The line starting at `from`: its content and the index after its `\r\n`. `limit` bounds
    /// how far to look for a number line.
    fn line(&self, from: usize, limit: Option<usize>) -> Result<Option<(&[u8], usize)>, ProtocolError> {
        let rest = self.buf.get(from..).unwrap_or_default();
        let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
            if limit.is_some_and(|max| rest.len() > max) {
                return Err(error("number line too long"));
            }
            return Ok(None);
        };
        if limit.is_some_and(|max| cr > max) {
            return Err(error("number line too long"));
        }
        match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&rest[..cr], from + cr + 2))),
            Some(_) => Err(error("expected '\\n' after '\\r'")),
        }
    }

    /// A length line: `Some(-1)` for the null length, otherwise `0..=max`.
    fn length(&self, from: usize, max: u64) -> Result<Option<(i64, usize)>, ProtocolError> {
        let Some((text, next)) = self.line(from, Some(MAX_NUMBER_LINE))? else {
            return Ok(None);
        };
        match parse_i64(text) {
            Some(n) if n == -1 || (n >= 0 && n as u64 <= max) => Ok(Some((n, next))),
            Some(_) if text.first() != Some(&b'-') => Err(error("length too large")),
            _ if text == b"?" => Err(error("streamed RESP3 frames are not supported")),
            _ => Err(error("invalid length")),
        }
    }

    /// The payload of `$`, `!` and `=`: `len` bytes then `\r\n`.
    fn body(&self, from: usize, len: i64) -> Result<Option<(&[u8], usize)>, ProtocolError> {
        let end = usize::try_from(len).ok().and_then(|len| from.checked_add(len));
        let Some(end) = end else {
            return Err(error("invalid length"));
        };
        match self.buf.get(end..end.saturating_add(2)) {
            Some(b"\r\n") => Ok(Some((&self.buf[from..end], end + 2))),
            Some(crlf) if crlf.len() == 2 => Err(error("bulk payload not followed by CRLF")),
            _ => Ok(None),
        }
    }

    fn frame(&self, pos: usize, depth: usize) -> Step {
        let Some(&kind) = self.buf.get(pos) else {
            return Ok(None);
        };
        let at = pos + 1;
        match kind {
            b'+' | b'-' | b'(' => {
                let Some((text, next)) = self.line(at, None)? else {
                    return Ok(None);
                };
                if kind == b'(' && !is_big_number(text) {
                    return Err(error("invalid big number"));
                }
                Ok(Some((self.owned(text, kind), next)))
            }
            b':' => {
                let Some((text, next)) = self.line(at, Some(MAX_NUMBER_LINE))? else {
                    return Ok(None);
                };
                let n = parse_i64(text).ok_or_else(|| error("invalid integer"))?;
                Ok(Some((Value::Integer(n), next)))
            }
            b'_' => {
                let Some((text, next)) = self.line(at, Some(MAX_NUMBER_LINE))? else {
                    return Ok(None);
                };
                if !text.is_empty() {
                    return Err(error("invalid null"));
                }
                Ok(Some((Value::Null, next)))
            }
            b'#' => {
                let Some((text, next)) = self.line(at, Some(MAX_NUMBER_LINE))? else {
                    return Ok(None);
                };
                let b = match text {
                    b"t" => true,
                    b"f" => false,
                    _ => return Err(error("invalid boolean")),
                };
                Ok(Some((Value::Boolean(b), next)))
            }
            b',' => {
                let Some((text, next)) = self.line(at, Some(MAX_NUMBER_LINE * 16))? else {
                    return Ok(None);
                };
                let d = parse_double(text).ok_or_else(|| error("invalid double"))?;
                Ok(Some((Value::Double(d), next)))
            }
            b'$' | b'!' | b'=' => {
                let Some((len, next)) = self.length(at, MAX_BULK_LEN)? else {
                    return Ok(None);
                };
                if len == -1 {
                    return match kind {
                        b'$' => Ok(Some((Value::Null, next))),
                        _ => Err(error("invalid length")),
                    };
                }
                let Some((body, next)) = self.body(next, len)? else {
                    return Ok(None);
                };
                if kind == b'=' && (body.len() < 4 || body[3] != b':') {
                    return Err(error("invalid verbatim string"));
                }
                Ok(Some((self.owned(body, kind), next)))
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => self.aggregate(kind, at, depth),
            other => {
                Err(ProtocolError::new(format!("Protocol error: unknown frame type byte {:?}", char::from(other))))
            }
        }
    }

    /// A string-like frame's value (nothing is copied in the check pass).
    fn owned(&self, bytes: &[u8], kind: u8) -> Value {
        if !self.build {
            return Value::Null;
        }
        match kind {
            b'+' => Value::Simple(bytes.to_vec()),
            b'-' => Value::Error(bytes.to_vec()),
            b'(' => Value::BigNumber(bytes.to_vec()),
            b'!' => Value::BulkError(bytes.to_vec()),
            b'=' => {
                let mut format = [0u8; 3];
                format.copy_from_slice(&bytes[..3]);
                Value::Verbatim { format, text: bytes[4..].to_vec() }
            }
            _ => Value::Bulk(bytes.to_vec()),
        }
    }

    fn aggregate(&self, kind: u8, at: usize, depth: usize) -> Step {
        if depth >= MAX_DEPTH {
            return Err(error("nesting too deep"));
        }
        let Some((len, mut pos)) = self.length(at, MAX_AGGREGATE_LEN)? else {
            return Ok(None);
        };
        if len == -1 {
            return match kind {
                b'*' => Ok(Some((Value::NullArray, pos))),
                _ => Err(error("invalid length")),
            };
        }
        // `len` is within MAX_AGGREGATE_LEN, so it fits a usize. Every element takes at least
        // three bytes, so capacity is capped by what the buffer can hold, whatever was declared.
        let len = len as usize;
        let pairs = matches!(kind, b'%' | b'|');
        let (items_cap, entries_cap) = match (self.build, pairs) {
            (false, _) => (0, 0),
            (true, false) => (len.min(self.buf.len() / 3), 0),
            (true, true) => (0, len.min(self.buf.len() / 6)),
        };
        let mut items = Vec::with_capacity(items_cap);
        let mut entries = Vec::with_capacity(entries_cap);
        for _ in 0..len {
            let Some((key, next)) = self.frame(pos, depth + 1)? else {
                return Ok(None);
            };
            pos = next;
            if pairs {
                let Some((value, next)) = self.frame(pos, depth + 1)? else {
                    return Ok(None);
                };
                pos = next;
                if self.build {
                    entries.push((key, value));
                }
            } else if self.build {
                items.push(key);
            }
        }
        let value = match kind {
            b'*' => Value::Array(items),
            b'~' => Value::Set(items),
            b'>' => Value::Push(items),
            b'%' => Value::Map(entries),
            _ => {
                let Some((value, next)) = self.frame(pos, depth + 1)? else {
                    return Ok(None);
                };
                pos = next;
                Value::Attribute { attributes: entries, value: Box::new(value) }
            }
        };
        Ok(Some((if self.build { value } else { Value::Null }, pos)))
    }
}

/// An optional sign then decimal digits, within i64.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        // Accumulate negatively so that i64::MIN is reachable.
        v = v.checked_mul(10)?.checked_sub(d)?;
    }
    if negative {
        Some(v)
    } else {
        v.checked_neg()
    }
}

fn is_big_number(text: &[u8]) -> bool {
    let digits = match text.split_first() {
        Some((b'-' | b'+', rest)) => rest,
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The text of a RESP3 double: what `%.17g` writes (`inf`, `-inf`, `nan` included), or any
/// other decimal form a server may choose (`1.5e+10`, `.5`).
fn parse_double(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    match text {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" => Some(f64::NAN),
        "-nan" => Some(-f64::NAN),
        // Rust also reads "infinity" and "NaN" in any case; a Redis server never writes those,
        // and refusing them here would only make the parser less forgiving than clients are.
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests;
