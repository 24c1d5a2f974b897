//! Request parsing: multibulk and inline commands from a client's read buffer.
//!
//! CONTRACT (the server relies on exactly this):
//! - `parse_request(buf, limits, args)` looks at the start of `buf` only.
//! - `Ok(Status::Complete(n))`: one whole command occupies `buf[..n]`; its arguments are in `args`
//!   (cleared first). `args.len() == 0` means an empty command (`\r\n` inline, `*0\r\n`, `*-1\r\n`)
//!   that redis-server silently skips; the caller consumes `n` bytes and replies nothing.
//! - `Ok(Status::Incomplete)`: more bytes are needed; `args` content is unspecified.
//! - `Err(ProtocolError)`: the client sent something redis-server rejects with
//!   `-ERR Protocol error: ...`; the caller replies `-ERR {message}` and closes the connection.
//! - Bounds are checked before anything is waited for, so a declared giant length is refused at
//!   once, and an inline line longer than `limits.max_inline_len` without a newline is refused
//!   rather than buffered.
//! - Cost: O(number of arguments) per call; bulk bodies are skipped, not scanned.
//!
//! Wire syntax, as redis-server 7.0 reads it (`processMultibulkBuffer`, `processInlineBuffer`):
//!
//! ```text
//! multibulk  *<count>\r\n  then <count> times  $<len>\r\n<len bytes>\r\n
//! inline     anything not starting with '*', up to '\n' (an optional '\r' before it is dropped)
//! ```
//!
//! Redis's quirks are reproduced on purpose, because a client that works against redis-server
//! must work here too, and one that is refused there must be refused here with the same words:
//! - A header line ends at its first `\r`; the byte after it is skipped unchecked, so `*1\rX`
//!   reads a count of 1. A lone `\n` does not end a header: `*1\n$4\r\n` is an invalid count.
//! - The two bytes after a bulk body are skipped unchecked: `$4\r\nPINGxx` is `PING`.
//! - Counts are parsed like `string2ll`: no sign but `-`, no leading zeros, no `-0`, at most 20
//!   characters. A count `<= 0` (`*0`, `*-1`, `*-7`) is an empty command; a bulk length `< 0` is
//!   an error, `$-1` included.
//! - Redis searches lines with `strchr`, which stops at a NUL byte: a NUL before the line's end
//!   makes the line look unterminated, so the parser waits (and refuses once the buffer holds
//!   more than `max_inline_len` bytes) instead of failing at once.
//! - The "too big" checks compare everything buffered from the start of the line, not the line
//!   itself, with `max_inline_len`; a line whose terminator is already buffered is never too big.

use std::fmt;

/// Bounds a client cannot exceed. Defaults match redis-server 7.0.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Largest multibulk count. redis-server 7.0 accepts up to `INT_MAX` once authenticated
    /// (6.x capped it at 1024*1024): `*2147483647` waits for arguments, `*2147483648` is refused.
    pub max_multibulk_len: usize,
    /// Longest inline command line, and longest `*`/`$` header line (PROTO_INLINE_MAX_SIZE, 64 KB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: i32::MAX as usize, max_inline_len: 64 * 1024 }
    }
}

/// Outcome of a parse attempt that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A whole command of this many bytes was parsed into the [`Args`].
    Complete(usize),
    /// The buffer holds only part of a command.
    Incomplete,
}

/// A protocol violation. `message()` is the text after `-ERR ` exactly as redis-server words it,
/// e.g. `Protocol error: invalid multibulk length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    message: String,
    /// The exact bytes when the message quotes a client byte that is not UTF-8
    /// (`expected '$', got '\xff'`); `message` then holds a lossy copy.
    raw: Option<Box<[u8]>>,
}

impl ProtocolError {
    /// Builds an error from its message (without the `ERR ` prefix).
    ///
    /// CR and LF become spaces, as redis-server does to every error it sends, so the message can
    /// be written on the wire as it is.
    pub fn new(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.contains(['\r', '\n']) {
            message = message.replace(['\r', '\n'], " ");
        }
        ProtocolError { message, raw: None }
    }
    /// The message, without the `-ERR ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The message exactly as redis-server would send it after `-ERR `. It differs from
    /// [`message`](Self::message) only when it quotes a request byte that is not ASCII
    /// (`expected '$', got '\xff'` is sent with the raw byte, which a `String` cannot hold).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.raw {
            Some(raw) => raw,
            None => self.message.as_bytes(),
        }
    }
    /// `expected '$', got 'c'`: redis formats the offending byte with `%c`, raw.
    fn expected_dollar(got: u8) -> Self {
        let got = if got == b'\r' || got == b'\n' { b' ' } else { got };
        let mut raw = b"Protocol error: expected '$', got '".to_vec();
        raw.push(got);
        raw.push(b'\'');
        match String::from_utf8(raw) {
            Ok(message) => ProtocolError { message, raw: None },
            Err(e) => {
                let raw = e.into_bytes();
                let message = String::from_utf8_lossy(&raw).into_owned();
                ProtocolError { message, raw: Some(raw.into_boxed_slice()) }
            }
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// The arguments of the last parsed command: spans into the read buffer, or (for inline commands
/// whose quoting had to be undone) into a scratch buffer owned here. Reused across commands so
/// the steady state allocates nothing.
#[derive(Debug, Default)]
pub struct Args {
    spans: Vec<Span>,
    scratch: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    in_scratch: bool,
}

impl Args {
    /// An empty argument list.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of arguments (command name included).
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    /// True when the last command was empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Argument `i`, resolved against `buf` (the same buffer that was parsed).
    ///
    /// Panics if `i >= self.len()`.
    pub fn get<'a>(&'a self, buf: &'a [u8], i: usize) -> &'a [u8] {
        let s = self.spans[i];
        if s.in_scratch {
            &self.scratch[s.start..s.end]
        } else {
            &buf[s.start..s.end]
        }
    }
    /// Clears all arguments.
    pub fn clear(&mut self) {
        self.spans.clear();
        self.scratch.clear();
    }
    /// Appends an argument found at `buf[start..end]`.
    pub fn push_span(&mut self, start: usize, end: usize) {
        self.spans.push(Span { start, end, in_scratch: false });
    }
    /// Appends an argument whose bytes had to be rewritten (inline quoting).
    pub fn push_owned(&mut self, bytes: &[u8]) {
        let start = self.scratch.len();
        self.scratch.extend_from_slice(bytes);
        self.spans.push(Span { start, end: self.scratch.len(), in_scratch: true });
    }
    /// All arguments in order, resolved against `buf` (the same buffer that was parsed).
    pub fn iter<'a>(&'a self, buf: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        (0..self.len()).map(move |i| self.get(buf, i))
    }
    /// Starts an argument written piecewise into the scratch buffer, so undoing inline quoting
    /// needs no temporary allocation. Returns the scratch offset to pass to `end_owned`.
    fn begin_owned(&self) -> usize {
        self.scratch.len()
    }
    /// Finishes an argument begun with `begin_owned`.
    fn end_owned(&mut self, start: usize) {
        self.spans.push(Span { start, end: self.scratch.len(), in_scratch: true });
    }
}

/// Parses one command from the start of `buf`. See the module documentation for the contract.
pub fn parse_request(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Status, ProtocolError> {
    parse(buf, limits, args, Auth::Authenticated)
}

/// [`parse_request`] for a connection that has not authenticated yet while the server requires
/// a password. redis-server then refuses, before reading them, a multibulk count above 10
/// (`Protocol error: unauthenticated multibulk length`) and a bulk length above 16384
/// (`Protocol error: unauthenticated bulk length`), so an anonymous client cannot make it buffer
/// much. Everything else is as in [`parse_request`].
pub fn parse_request_unauthenticated(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Status, ProtocolError> {
    parse(buf, limits, args, Auth::Required)
}

/// The unauthenticated bounds of redis-server 7.0 (`processMultibulkBuffer`).
const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
const UNAUTH_MAX_BULK_LEN: i64 = 16384;

/// Whether the stricter pre-authentication bounds apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Authenticated,
    Required,
}

fn parse(buf: &[u8], limits: &Limits, args: &mut Args, auth: Auth) -> Result<Status, ProtocolError> {
    args.clear();
    match buf.first() {
        None => Ok(Status::Incomplete),
        Some(b'*') => parse_multibulk(buf, limits, args, auth),
        Some(_) => parse_inline(buf, limits, args),
    }
}

/// Where the header line starting at `from` ends: the index of its `\r`, if that `\r` and one
/// more byte are buffered. `Ok(None)` means wait; the error is the "too big" one, raised when
/// more than `max` bytes are buffered from `from` on without a terminator.
///
/// A NUL byte hides everything after it, as it does from redis's `strchr`.
fn header_end(buf: &[u8], from: usize, max: usize, too_big: &str) -> Result<Option<usize>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r' || b == 0) {
        Some(i) if rest[i] == b'\r' => {
            // The byte after `\r` is presumed to be `\n` and skipped unread, as redis does.
            if i + 1 < rest.len() {
                Ok(Some(from + i))
            } else {
                Ok(None)
            }
        }
        _ if rest.len() > max => Err(ProtocolError::new(too_big)),
        _ => Ok(None),
    }
}

fn parse_multibulk(buf: &[u8], limits: &Limits, args: &mut Args, auth: Auth) -> Result<Status, ProtocolError> {
    let Some(cr) = header_end(buf, 0, limits.max_inline_len, "Protocol error: too big mbulk count string")? else {
        return Ok(Status::Incomplete);
    };
    let count = match string2ll(&buf[1..cr]) {
        Some(n) if n <= 0 => return Ok(Status::Complete(cr + 2)),
        Some(n) if exceeds(n, limits.max_multibulk_len) => None,
        other => other,
    };
    let Some(count) = count else {
        return Err(ProtocolError::new("Protocol error: invalid multibulk length"));
    };
    if auth == Auth::Required && count > UNAUTH_MAX_MULTIBULK_LEN {
        return Err(ProtocolError::new("Protocol error: unauthenticated multibulk length"));
    }

    let mut pos = cr + 2;
    for _ in 0..count {
        let Some(cr) = header_end(buf, pos, limits.max_inline_len, "Protocol error: too big bulk count string")? else {
            return Ok(Status::Incomplete);
        };
        // The type byte is checked only once the whole header line is buffered: `*1\r\nxyz`
        // waits, `*1\r\nx\r\n` fails.
        if buf[pos] != b'$' {
            return Err(ProtocolError::expected_dollar(buf[pos]));
        }
        let len = match string2ll(&buf[pos + 1..cr]) {
            Some(n) if n >= 0 && !exceeds(n, limits.max_bulk_len) => n,
            _ => return Err(ProtocolError::new("Protocol error: invalid bulk length")),
        };
        if auth == Auth::Required && len > UNAUTH_MAX_BULK_LEN {
            return Err(ProtocolError::new("Protocol error: unauthenticated bulk length"));
        }
        let start = cr + 2;
        // `len <= max_bulk_len`, a usize, so the conversion cannot fail; the additions are
        // checked because a caller may configure max_bulk_len near usize::MAX.
        let Some(end) = usize::try_from(len).ok().and_then(|len| start.checked_add(len)) else {
            return Err(ProtocolError::new("Protocol error: invalid bulk length"));
        };
        match end.checked_add(2) {
            Some(next) if next <= buf.len() => {
                args.push_span(start, end);
                pos = next;
            }
            _ => return Ok(Status::Incomplete),
        }
    }
    Ok(Status::Complete(pos))
}

/// True when a non-negative count `n` is above the bound `max`.
fn exceeds(n: i64, max: usize) -> bool {
    u64::try_from(n).is_ok_and(|n| n > max as u64)
}

/// Redis's `string2ll`: an optional `-`, then `0` alone or a digit 1-9 followed by digits, in
/// range for i64, in fewer than 21 characters. Anything else (`+1`, `01`, `-0`, ` 1`, empty) is
/// not a number.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // -(2^63) is the one magnitude that fits negative but not positive.
        if v == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(v).ok().map(|v| -v)
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn parse_inline(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Status, ProtocolError> {
    // strchr(querybuf, '\n') in redis: a NUL before the newline hides it.
    let newline = match buf.iter().position(|&b| b == b'\n' || b == 0) {
        Some(i) if buf[i] == b'\n' => i,
        _ if buf.len() > limits.max_inline_len => {
            return Err(ProtocolError::new("Protocol error: too big inline request"));
        }
        _ => return Ok(Status::Incomplete),
    };
    let line_end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
    split_args(buf, line_end, args)?;
    Ok(Status::Complete(newline + 1))
}

/// C's `isspace` in the "C" locale: what separates arguments and may follow a closing quote.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What ends an unquoted argument. Narrower than [`is_c_space`]: redis's `sdssplitargs` skips
/// `\v` and `\f` between arguments but keeps them inside one (`a\vb` is one argument).
fn ends_unquoted(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn unbalanced() -> ProtocolError {
    ProtocolError::new("Protocol error: unbalanced quotes in request")
}

/// Splits `buf[..end]` into arguments as redis's `sdssplitargs` does.
///
/// Plain words, and quoted words with no backslash in them, are spans into `buf`; only words
/// whose bytes change (escapes, quotes glued to other text) are copied to the scratch buffer.
fn split_args(buf: &[u8], end: usize, args: &mut Args) -> Result<(), ProtocolError> {
    let line = &buf[..end];
    let mut i = 0;
    loop {
        while i < end && is_c_space(line[i]) {
            i += 1;
        }
        if i >= end {
            return Ok(());
        }
        let word_end =
            line[i..].iter().position(|&b| ends_unquoted(b) || b == b'"' || b == b'\'').map_or(end, |n| i + n);
        if word_end == end || ends_unquoted(line[word_end]) {
            args.push_span(i, word_end);
            i = word_end;
            continue;
        }
        if word_end == i {
            if let Some(close) = plain_quoted(line, i) {
                args.push_span(i + 1, close);
                i = close + 1;
                continue;
            }
        }
        i = split_rewritten(line, i, args)?;
    }
}

/// For a word opening with a quote at `open` whose content has no backslash and whose closing
/// quote is followed by a space or the end: the index of the closing quote.
fn plain_quoted(line: &[u8], open: usize) -> Option<usize> {
    let quote = line[open];
    let close = open + 1 + line[open + 1..].iter().position(|&b| b == quote || b == b'\\')?;
    let after_ok = line.get(close + 1).map_or(true, |&b| is_c_space(b));
    (line[close] == quote && after_ok).then_some(close)
}

/// The general `sdssplitargs` token state machine, writing the argument's bytes into the
/// scratch buffer. Returns the index just past the word.
fn split_rewritten(line: &[u8], mut p: usize, args: &mut Args) -> Result<usize, ProtocolError> {
    #[derive(PartialEq)]
    enum Mode {
        Plain,
        Double,
        Single,
    }
    let start = args.begin_owned();
    let mut mode = Mode::Plain;
    let at = |i: usize| line.get(i).copied();
    loop {
        let Some(c) = at(p) else {
            if mode != Mode::Plain {
                return Err(unbalanced());
            }
            break;
        };
        match mode {
            Mode::Plain => match c {
                b' ' | b'\n' | b'\r' | b'\t' => break,
                b'"' => mode = Mode::Double,
                b'\'' => mode = Mode::Single,
                _ => args.scratch.push(c),
            },
            Mode::Double => match (c, at(p + 1)) {
                (b'\\', Some(b'x')) if is_hex_pair(at(p + 2), at(p + 3)) => {
                    let hi = hex_value(line[p + 2]);
                    let lo = hex_value(line[p + 3]);
                    args.scratch.push(hi << 4 | lo);
                    p += 3;
                }
                (b'\\', Some(e)) => {
                    args.scratch.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    p += 1;
                }
                (b'"', next) => {
                    if next.is_some_and(|b| !is_c_space(b)) {
                        return Err(unbalanced());
                    }
                    p += 1;
                    break;
                }
                _ => args.scratch.push(c),
            },
            Mode::Single => match (c, at(p + 1)) {
                (b'\\', Some(b'\'')) => {
                    args.scratch.push(b'\'');
                    p += 1;
                }
                (b'\'', next) => {
                    if next.is_some_and(|b| !is_c_space(b)) {
                        return Err(unbalanced());
                    }
                    p += 1;
                    break;
                }
                _ => args.scratch.push(c),
            },
        }
        p += 1;
    }
    args.end_owned(start);
    Ok(p)
}

fn is_hex_pair(a: Option<u8>, b: Option<u8>) -> bool {
    a.is_some_and(|a| a.is_ascii_hexdigit()) && b.is_some_and(|b| b.is_ascii_hexdigit())
}

/// The value of an ASCII hex digit (callers check [`u8::is_ascii_hexdigit`] first).
fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
