//! Parsing of memcached text and meta commands.
//!
//! CONTRACT (the server relies on exactly this):
//! - `parse(buf, limits)` looks at the start of `buf` only and never allocates.
//! - `Parsed::Complete(cmd, n)`: one whole command (for storage commands: line *and* data block)
//!   occupies `buf[..n]`.
//! - `Parsed::Incomplete`: wait for more bytes. Never returned for a line longer than
//!   `limits.max_line_len` (that is an error, as memcached answers it), nor while waiting for a
//!   data block larger than `limits.max_item_size` (refused at once, see `Parsed::Error::swallow`).
//! - `Parsed::Error { reply, consumed, swallow, close }`: write `reply` (a full line with `\r\n`),
//!   drop `consumed` bytes from the buffer, then discard the next `swallow` bytes of input (which
//!   may not have arrived yet: the connection keeps a countdown), and close the connection after
//!   the reply if `close`. This is how "SERVER_ERROR object too large for cache" keeps the stream
//!   in sync, and how a line too long is answered.

/// Bounds a client cannot exceed.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest value accepted by a storage command (memcached `-I`, default 1 MB).
    pub max_item_size: usize,
    /// Longest key (memcached: 250).
    pub max_key_len: usize,
    /// Longest command line before memcached gives up on it (2048 for text commands in 1.6).
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_item_size: 1024 * 1024, max_key_len: 250, max_line_len: 2048 }
    }
}

/// Outcome of one parse attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A command and the number of bytes it occupied.
    Complete(Command<'a>, usize),
    /// More bytes are needed.
    Incomplete,
    /// A request memcached refuses; see the module contract.
    Error {
        /// The whole reply line, `\r\n` included.
        reply: &'static [u8],
        /// Bytes of `buf` to drop.
        consumed: usize,
        /// Further input bytes to discard (a refused data block), possibly not yet received.
        swallow: usize,
        /// Close the connection after writing `reply`.
        close: bool,
    },
}

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add data after the existing value (flags and exptime ignored).
    Append,
    /// `prepend`: add data before the existing value.
    Prepend,
    /// `cas`: store only if the CAS unique still matches.
    Cas,
}

/// Which retrieval command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMode {
    /// `get`
    Get,
    /// `gets` (with CAS unique)
    Gets,
    /// `gat exptime` (get and touch)
    Gat,
    /// `gats exptime`
    Gats,
}

/// Space-separated keys of a multi-key get, borrowed from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a>(pub &'a [u8]);

impl<'a> Keys<'a> {
    /// Iterates over the keys.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|b| *b == b' ').filter(|k| !k.is_empty())
    }
}

/// A parsed text or meta command, borrowing keys and data from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// get/gets/gat/gats. `exptime` is 0 for get/gets.
    Get { mode: GetMode, exptime: i64, keys: Keys<'a> },
    /// set/add/replace/append/prepend/cas with its data block (without the trailing `\r\n`).
    Store {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Client flags (opaque u32).
        flags: u32,
        /// Expiration as sent: 0 never, negative already expired, > 30 days a unix time.
        exptime: i64,
        /// The value.
        data: &'a [u8],
        /// CAS unique to compare (only for `cas`).
        cas: u64,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `delete key [noreply]`
    Delete { key: &'a [u8], noreply: bool },
    /// `incr`/`decr key delta [noreply]`
    Arith { incr: bool, key: &'a [u8], delta: u64, noreply: bool },
    /// `touch key exptime [noreply]`
    Touch { key: &'a [u8], exptime: i64, noreply: bool },
    /// `flush_all [delay] [noreply]`
    FlushAll { delay: i64, noreply: bool },
    /// `version`
    Version,
    /// `verbosity level [noreply]`
    Verbosity { noreply: bool },
    /// `quit`
    Quit,
    /// `stats [args...]`; `args` is the rest of the line (may be empty).
    Stats { args: &'a [u8] },
    /// A meta command (`mg ms md ma mn me`).
    Meta(crate::request::Meta<'a>),
}

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKind {
    /// `mg key flags*`
    Get,
    /// `ms key datalen flags*` + data block
    Set,
    /// `md key flags*`
    Delete,
    /// `ma key flags*`
    Arith,
    /// `mn`
    Noop,
    /// `me key`
    Debug,
}

/// A meta command: the key as sent (still base64 when the `b` flag is present) and its flags.
#[derive(Debug, PartialEq, Eq)]
pub struct Meta<'a> {
    /// Which command.
    pub kind: MetaKind,
    /// The key token (empty for `mn`).
    pub key: &'a [u8],
    /// The flag tokens, each a flag letter followed by its optional token (`T30`, `Oabc`, `v`).
    pub flags: MetaFlags<'a>,
    /// The data block of `ms` (without `\r\n`); empty otherwise.
    pub data: &'a [u8],
}

/// The flag tokens of a meta command, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFlags<'a>(pub &'a [u8]);

impl<'a> MetaFlags<'a> {
    /// Iterates over `(flag letter, token after it)`.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        self.0.split(|b| *b == b' ').filter(|t| !t.is_empty()).map(|t| (t[0], &t[1..]))
    }
}

/// Parses one command from the start of `buf`. See the module documentation for the contract.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let _ = (buf, limits);
    todo!("implemented by the codec work")
}
