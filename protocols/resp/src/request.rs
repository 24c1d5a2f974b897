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

use std::fmt;

/// Bounds a client cannot exceed. Defaults match redis-server 7.0.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Largest multibulk count (redis-server: 1024*1024 once authenticated).
    pub max_multibulk_len: usize,
    /// Longest inline command line, and longest `*`/`$` header line (PROTO_INLINE_MAX_SIZE, 64 KB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
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
}

impl ProtocolError {
    /// Builds an error from its message (without the `ERR ` prefix).
    pub fn new(message: impl Into<String>) -> Self {
        ProtocolError { message: message.into() }
    }
    /// The message, without the `-ERR ` prefix.
    pub fn message(&self) -> &str {
        &self.message
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
}

/// Parses one command from the start of `buf`. See the module documentation for the contract.
pub fn parse_request(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Status, ProtocolError> {
    let _ = (buf, limits, args);
    todo!("implemented by the codec work")
}
