//! Parsing of memcached text and meta commands.
//!
//! CONTRACT (the server relies on exactly this):
//! - `parse(buf, limits)` looks at the start of `buf` only and never allocates.
//! - `Parsed::Complete(cmd, n)`: one whole command (for storage commands: line *and* data block)
//!   occupies `buf[..n]`.
//! - `Parsed::Incomplete`: wait for more bytes. Never returned for a line longer than
//!   `limits.max_line_len` (that is an error, as memcached answers it), nor while waiting for a
//!   data block larger than `limits.max_item_size` (refused at once, see `Parsed::Error::swallow`).
//!   One exception, as in memcached: a `get`/`gets` line (multiget) may grow without bound; the
//!   connection's own query-buffer limit applies to it.
//! - `Parsed::Error { reply, consumed, swallow, close }`: write `reply` (a full line with `\r\n`),
//!   drop `consumed` bytes from the buffer, then discard the next `swallow` bytes of input (which
//!   may not have arrived yet: the connection keeps a countdown), and close the connection after
//!   the reply if `close`. This is how "SERVER_ERROR object too large for cache" keeps the stream
//!   in sync, and how a line too long is answered.
//! - `reply` may be empty: memcached stays silent about errors in a text command that ends in
//!   `noreply` (bad number, key too long, bad data chunk, object too large), and closes a line
//!   too long without a word.
//! - When memcached refuses a `set` (any `ms`) as too large it also unlinks the key's current
//!   item, so a reader does not see the old value. On an `Error` with `swallow > 0`, call
//!   [`refused_key`] with the same buffer: it names the key to delete, if any.
//!
//! Reference behaviour is memcached 1.6.18, probed byte by byte; the tests in `request/tests.rs`
//! quote what the real server answered. The points that shape this parser:
//! - A line ends at `\n`; a `\r` before it is dropped. Tokens are separated by spaces only (a
//!   tab is part of a token), and a NUL ends the line as C's `strlen` does.
//! - Without a `\n` in more than `max_line_len` buffered bytes the connection is closed, with no
//!   reply, unless the line starts with `get ` or `gets ` (after at most 100 spaces).
//! - Numbers follow the C conversions memcached uses (see `num`), 32-bit truncation included.
//! - A storage command refused on its line (bad token count, key too long, bad number, negative
//!   length) does not swallow its data block: the block is then read as a command line (usually
//!   `ERROR`). Only "object too large" swallows `bytes + 2`. A data block is exactly `bytes + 2`
//!   bytes, and if its last two are not `\r\n` all of it is dropped with "bad data chunk".
//! - Meta commands validate their shape here; their flags are interpreted by [`MetaFlags::parse`]
//!   (`ms` flags are checked here too, because a refused `ms` swallows its data block).

mod meta;
#[cfg(test)]
mod tests;

pub use crate::base64::decode_base64_key;
pub use meta::MetaOpts;

use crate::num;
use crate::reply;

/// Bounds a client cannot exceed.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Item size limit (memcached `-I`, default 1 MB). As in memcached it bounds the whole item,
    /// not just the value: see [`Limits::item_fits`].
    pub max_item_size: usize,
    /// Longest key (memcached: 250).
    pub max_key_len: usize,
    /// Bytes buffered without a `\n` before the connection is closed (memcached 1.6: 2048;
    /// `get`/`gets` lines are exempt). A longer line whose `\n` has already arrived is parsed
    /// normally, as memcached does when it finds the newline in one read.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_item_size: 1024 * 1024, max_key_len: 250, max_line_len: 2048 }
    }
}

/// memcached's per-item overhead counted against `-I`: the 48-byte item header plus the 8-byte
/// CAS unique.
const ITEM_HEADER: usize = 48 + 8;

impl Limits {
    /// Whether memcached 1.6.18 would accept an item with this key length, client flags and
    /// value length under `-I max_item_size`: header (56 bytes) + key + 1 + 4 if `flags != 0` +
    /// value + 2 must fit. With `-I 1m` and key `a` the largest value is 1048516 bytes (1048512
    /// with non-zero flags), both measured against the real server. The server can use this for
    /// append/prepend results too.
    pub fn item_fits(&self, key_len: usize, flags: u32, value_len: usize) -> bool {
        let suffix = if flags == 0 { 0 } else { 4 };
        ITEM_HEADER
            .checked_add(key_len)
            .and_then(|n| n.checked_add(1 + suffix + 2))
            .and_then(|n| n.checked_add(value_len))
            .is_some_and(|total| total <= self.max_item_size)
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
    Get {
        /// Which retrieval command (`bget`, an ancient alias memcached keeps, is `Get`).
        mode: GetMode,
        /// gat/gats: the new expiration, as sent (memcached exptime rules, 32-bit truncated).
        exptime: i64,
        /// The keys, each at most `max_key_len` bytes; possibly none (`gat 10` answers `END`).
        keys: Keys<'a>,
    },
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
    /// `delete key [0] [noreply]`
    Delete {
        /// The key.
        key: &'a [u8],
        /// `noreply` was given.
        noreply: bool,
    },
    /// `incr`/`decr key delta [noreply]`
    Arith {
        /// `incr` (else `decr`).
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount, a full 64-bit unsigned number.
        delta: u64,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `touch key exptime [noreply]`
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiration, as sent (memcached exptime rules, 32-bit truncated).
        exptime: i64,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`
    FlushAll {
        /// Seconds (or a unix time) until the flush; 0 or negative is now.
        delay: i64,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `verbosity level [noreply]`.
    Verbosity {
        /// The new level (memcached keeps it for `stats settings`).
        level: u32,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `quit`
    Quit,
    /// `stats [args...]`
    Stats {
        /// The rest of the line after `stats`, trailing spaces trimmed (may be empty); the
        /// server splits and checks it (`CLIENT_ERROR usage: stats detail on|off|dump`, …).
        args: &'a [u8],
    },
    /// A meta command (`mg ms md ma mn me`).
    Meta(crate::request::Meta<'a>),
    /// `shutdown [graceful]`. Whether it runs is the server's call (memcached `-A`); when it
    /// is disabled memcached says so whatever the arguments were, so they are judged here but
    /// reported by the server.
    Shutdown {
        /// `shutdown graceful`.
        graceful: bool,
        /// The arguments are not a mode (`CLIENT_ERROR invalid shutdown mode` when enabled).
        invalid: bool,
    },
    /// `cache_memlimit <megabytes> [noreply]`: the new memory limit (32-bit, as memcached
    /// reads it; the server checks its range).
    CacheMemlimit {
        /// Megabytes.
        megabytes: u32,
        /// `noreply` was given.
        noreply: bool,
    },
    /// `lru_crawler crawl|metadump|enable|disable …` (the settings `sleep` and `tocrawl` are
    /// [`Command::Tuning`]).
    LruCrawler(LruCrawler<'a>),
    /// `slabs reassign <src> <dst>`: the server knows the class range.
    SlabsReassign {
        /// Source class (`-1`, `0`: memcached's "any" and global pool).
        src: i32,
        /// Destination class.
        dst: i32,
    },
    /// A valid command tuning a memcached internal cachette does not have (`slabs automove`,
    /// `lru mode|tune|temp_ttl`, `lru_crawler sleep|tocrawl`): `OK`, and nothing changes.
    Tuning {
        /// `noreply` was given.
        noreply: bool,
    },
    /// `watch [event…]`: memcached's live log stream.
    Watch,
}

/// An `lru_crawler` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LruCrawler<'a> {
    /// `lru_crawler crawl <classes>`: reclaim expired items now.
    Crawl(&'a [u8]),
    /// `lru_crawler metadump <classes>|hash`: one line per item.
    Metadump(&'a [u8]),
    /// `lru_crawler enable`
    Enable,
    /// `lru_crawler disable`
    Disable,
}

/// memcached's highest slab class id (`MAX_NUMBER_OF_SLAB_CLASSES - 1`).
pub const MAX_SLAB_CLASS: u32 = 63;

/// The slab classes an `lru_crawler crawl|metadump` argument names, as a bit set (bit `i` =
/// class `i`): `all` (or `hash`, for metadump) is every class; otherwise comma-separated ids
/// `1..=63`. `None` is memcached's `BADCLASS invalid class id`.
pub fn slab_class_set(arg: &[u8], metadump: bool) -> Option<u64> {
    if arg == b"all" || (metadump && arg == b"hash") {
        return Some(!1u64);
    }
    let mut set = 0u64;
    for id in arg.split(|&b| b == b',') {
        let n = num::strtoul(id)?;
        if n == 0 || n > MAX_SLAB_CLASS {
            return None;
        }
        set |= 1 << n;
    }
    Some(set)
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

impl<'a> Meta<'a> {
    /// Interprets this command's flags; see [`MetaFlags::parse`]. `Err` is the reply line.
    pub fn opts(&self) -> Result<MetaOpts<'a>, &'static [u8]> {
        self.flags.parse(self.kind, self.key)
    }

    /// The key the command addresses: the token itself, or when `base64` (the `b` flag, from
    /// [`MetaOpts::base64`]) its decoding into `scratch`. `None` only for a key that does not
    /// decode (which [`Meta::opts`] has already reported) or a `scratch` shorter than the token.
    pub fn decode_key<'s>(&'s self, base64: bool, scratch: &'s mut [u8]) -> Option<&'s [u8]> {
        if base64 {
            decode_base64_key(self.key, scratch)
        } else {
            Some(self.key)
        }
    }
}

/// The key whose current item must be deleted because memcached refused a new value for it as
/// too large (see the module contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedKey<'a> {
    /// The key token as sent.
    pub key: &'a [u8],
    /// The token is base64 (an `ms` with `b`); decode with [`RefusedKey::decode`].
    pub base64: bool,
}

impl<'a> RefusedKey<'a> {
    /// The key bytes, decoding base64 into `scratch` when needed (a `scratch` as long as the
    /// token suffices).
    pub fn decode<'s>(&'s self, scratch: &'s mut [u8]) -> Option<&'s [u8]> {
        if self.base64 {
            decode_base64_key(self.key, scratch)
        } else {
            Some(self.key)
        }
    }
}

/// After [`parse`] returned an `Error` with `swallow > 0` for `buf`, the key memcached unlinks:
/// `Some` for a too-large `set` or `ms` (any mode), `None` otherwise (add/replace/append/prepend/
/// cas leave the old item alone, and other refusals never unlink). Costs a second parse of the
/// line, on the error path only.
pub fn refused_key<'a>(buf: &'a [u8], limits: &Limits) -> Option<RefusedKey<'a>> {
    let Parsed::Error { reply, swallow, .. } = parse(buf, limits) else {
        return None;
    };
    if swallow == 0 {
        return None;
    }
    let nl = memchr::memchr(b'\n', buf)?;
    let t = Tokens::new(command_line(&buf[..nl]));
    match t.get(0) {
        // The only text refusal that swallows is "too large"; of those, set alone unlinks.
        b"set" => Some(RefusedKey { key: t.get(1), base64: false }),
        // A refused ms swallows for flag errors too, which unlink nothing; "too large" is never
        // silenced for meta commands, so the reply tells them apart.
        b"ms" if reply == reply::SERVER_ERROR_TOO_LARGE => {
            let key = t.get(1);
            let base64 = MetaFlags(t.rest(3)).parse(MetaKind::Set, key).is_ok_and(|o| o.base64);
            Some(RefusedKey { key, base64 })
        }
        _ => None,
    }
}

/// The command text of a line (without its `\n`): memcached drops a final `\r` when something
/// precedes it, and C string handling ends the line at a NUL.
#[inline]
fn command_line(mut line: &[u8]) -> &[u8] {
    if line.len() > 1 && line[line.len() - 1] == b'\r' {
        line = &line[..line.len() - 1];
    }
    if let Some(z) = memchr::memchr(0, line) {
        line = &line[..z];
    }
    line
}

/// memcached's token limit per tokenizer pass (`MAX_TOKENS`): 23 tokens, then a terminal entry.
/// Token counts are compared as memcached compares them, so they are capped here too.
const MAX_TOKENS: usize = 23;
/// Tokens whose position is kept: no command reads past its 7th token (`cas` with `noreply`);
/// longer lines only need counting, or the rest of the line as a whole.
const KEPT_TOKENS: usize = 8;
/// memcached refuses meta commands with more than 20 entries (19 tokens plus the terminal).
const META_MAX_TOKENS: usize = 19;
/// memcached gives a multiget line without `\n` this many leading spaces before closing.
const MAX_LEADING_SPACES: usize = 100;

/// The tokens of a command line as memcached's `tokenize_command` splits it: on single spaces,
/// empty tokens skipped, counted up to [`MAX_TOKENS`]. The first [`KEPT_TOKENS`] are kept as
/// offsets (not slices) so that "the rest of the line from token i" (multiget keys, meta flags)
/// is at hand; a small array keeps the hot path free of a large memset.
struct Tokens<'a> {
    line: &'a [u8],
    spans: [(usize, usize); KEPT_TOKENS],
    n: usize,
}

impl<'a> Tokens<'a> {
    #[inline]
    fn new(line: &'a [u8]) -> Self {
        let mut spans = [(0, 0); KEPT_TOKENS];
        let mut n = 0;
        let mut i = 0;
        while n < MAX_TOKENS {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            if i == line.len() {
                break;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            if let Some(span) = spans.get_mut(n) {
                *span = (start, i);
            }
            n += 1;
        }
        Tokens { line, spans, n }
    }

    /// Token `i` (empty past the last one or past [`KEPT_TOKENS`], which callers rule out by
    /// counting first).
    fn get(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(s, e)) if i < self.n => &self.line[s..e],
            _ => &[],
        }
    }

    /// The line from the start of token `i` to its end; empty when there is no token `i`.
    fn rest(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(s, _)) if i < self.n => &self.line[s..],
            _ => &[],
        }
    }

    /// Whether the last token is `noreply` (memcached's `set_noreply_maybe`).
    fn noreply(&self) -> bool {
        self.n > 0 && self.get(self.n - 1) == b"noreply"
    }
}

/// An error outcome; `consumed` is the command line unless said otherwise.
fn error<'a>(reply: &'static [u8], consumed: usize) -> Parsed<'a> {
    Parsed::Error { reply, consumed, swallow: 0, close: false }
}

/// An error memcached does not report when the command asked for `noreply`.
fn quiet_error<'a>(reply: &'static [u8], consumed: usize, noreply: bool) -> Parsed<'a> {
    error(if noreply { b"" } else { reply }, consumed)
}

/// Parses one command from the start of `buf`. See the module documentation for the contract.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return no_newline(buf, limits);
    };
    let line_len = nl + 1;
    let t = Tokens::new(command_line(&buf[..nl]));
    let cmd = t.get(0);
    if cmd.len() < 2 {
        return error(reply::ERROR, line_len);
    }
    let at = Line { buf, line_len, limits };
    match cmd {
        b"get" | b"bget" => at.get(&t, GetMode::Get),
        b"gets" => at.get(&t, GetMode::Gets),
        b"gat" => at.get(&t, GetMode::Gat),
        b"gats" => at.get(&t, GetMode::Gats),
        b"set" => at.store(&t, StoreMode::Set),
        b"add" => at.store(&t, StoreMode::Add),
        b"replace" => at.store(&t, StoreMode::Replace),
        b"append" => at.store(&t, StoreMode::Append),
        b"prepend" => at.store(&t, StoreMode::Prepend),
        b"cas" => at.store(&t, StoreMode::Cas),
        b"delete" => at.delete(&t),
        b"incr" => at.arith(&t, true),
        b"decr" => at.arith(&t, false),
        b"touch" => at.touch(&t),
        b"flush_all" => at.flush_all(&t),
        b"version" => Parsed::Complete(Command::Version, line_len),
        b"quit" => Parsed::Complete(Command::Quit, line_len),
        b"verbosity" => at.verbosity(&t),
        b"stats" => Parsed::Complete(Command::Stats { args: trim_end_spaces(t.rest(1)) }, line_len),
        b"shutdown" => {
            let graceful = t.n == 2 && t.get(1) == b"graceful";
            Parsed::Complete(Command::Shutdown { graceful, invalid: t.n > 2 || (t.n == 2 && !graceful) }, line_len)
        }
        b"cache_memlimit" => at.cache_memlimit(&t),
        b"lru_crawler" => at.lru_crawler(&t),
        b"slabs" => at.slabs(&t),
        b"lru" => at.lru(&t),
        b"watch" => Parsed::Complete(Command::Watch, line_len),
        b"mg" => at.meta(&t, MetaKind::Get),
        b"ms" => at.meta_set(&t),
        b"md" => at.meta(&t, MetaKind::Delete),
        b"ma" => at.meta(&t, MetaKind::Arith),
        b"mn" => Parsed::Complete(
            Command::Meta(Meta { kind: MetaKind::Noop, key: b"", flags: MetaFlags(b""), data: b"" }),
            line_len,
        ),
        b"me" => at.meta_debug(&t),
        // Debug-build commands (misbehave, debugtime) and extstore answer like any unknown
        // command, as in a release build of memcached without extstore.
        _ => error(reply::ERROR, line_len),
    }
}

/// No `\n` yet: wait, or give up as memcached does on a runaway line.
fn no_newline<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    if buf.len() <= limits.max_line_len {
        return Parsed::Incomplete;
    }
    let lead = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[lead..];
    if lead <= MAX_LEADING_SPACES && (rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
        return Parsed::Incomplete;
    }
    Parsed::Error { reply: b"", consumed: buf.len(), swallow: 0, close: true }
}

fn trim_end_spaces(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &s[..end]
}

/// The command line being parsed: the buffer it starts, its length with the `\n`, and limits.
struct Line<'a, 'l> {
    buf: &'a [u8],
    line_len: usize,
    limits: &'l Limits,
}

impl<'a> Line<'a, '_> {
    fn key_ok(&self, key: &[u8]) -> bool {
        key.len() <= self.limits.max_key_len
    }

    /// get/gets/gat/gats: `get <key>*`, `gat <exptime> <key>*`.
    fn get(&self, t: &Tokens<'a>, mode: GetMode) -> Parsed<'a> {
        if t.n < 2 {
            return error(reply::ERROR, self.line_len);
        }
        let (exptime, first_key) = match mode {
            GetMode::Get | GetMode::Gets => (0, 1),
            GetMode::Gat | GetMode::Gats => match num::strtol(t.get(1)) {
                Some(e) => (i64::from(e), 2),
                None => return error(reply::CLIENT_ERROR_BAD_EXPTIME, self.line_len),
            },
        };
        let keys = Keys(trim_end_spaces(t.rest(first_key)));
        // One overlong key fails the whole line; memcached drops the hits it had gathered.
        if keys.iter().any(|k| !self.key_ok(k)) {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        }
        Parsed::Complete(Command::Get { mode, exptime, keys }, self.line_len)
    }

    /// set/add/replace/append/prepend `<key> <flags> <exptime> <bytes> [noreply]`,
    /// cas `<key> <flags> <exptime> <bytes> <cas> [noreply]`, then the data block.
    fn store(&self, t: &Tokens<'a>, mode: StoreMode) -> Parsed<'a> {
        let base = if mode == StoreMode::Cas { 6 } else { 5 };
        if t.n != base && t.n != base + 1 {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        let bad = quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply);
        let key = t.get(1);
        if !self.key_ok(key) {
            return bad;
        }
        let (Some(flags), Some(exptime), Some(len)) =
            (num::strtoul(t.get(2)), num::strtol(t.get(3)), num::strtol(t.get(4)))
        else {
            return bad;
        };
        let cas = if mode == StoreMode::Cas {
            match num::strtoull(t.get(5)) {
                Some(c) => c,
                None => return bad,
            }
        } else {
            0
        };
        let Some(len) = data_len(len) else {
            return bad;
        };
        if !self.limits.item_fits(key.len(), flags, len) {
            return self.too_large(len, noreply);
        }
        match self.data_block(len, noreply) {
            Ok(data) => {
                let cmd = Command::Store { mode, key, flags, exptime: i64::from(exptime), data, cas, noreply };
                Parsed::Complete(cmd, self.line_len + len + 2)
            }
            Err(p) => p,
        }
    }

    /// The `len`-byte data block after the line, which must be followed by `\r\n`. memcached
    /// reads exactly `len + 2` bytes before it looks, so a short or long block costs exactly that
    /// much input and the rest is read as commands.
    fn data_block(&self, len: usize, quiet: bool) -> Result<&'a [u8], Parsed<'a>> {
        let end = self.line_len + len + 2;
        let Some(block) = self.buf.get(self.line_len..end) else {
            return Err(Parsed::Incomplete);
        };
        match block.split_at(len) {
            (data, b"\r\n") => Ok(data),
            _ => Err(quiet_error(reply::CLIENT_ERROR_BAD_CHUNK, end, quiet)),
        }
    }

    /// A value over the item size limit: refused before its data arrives, which is swallowed.
    fn too_large(&self, len: usize, quiet: bool) -> Parsed<'a> {
        Parsed::Error {
            reply: if quiet { b"" } else { reply::SERVER_ERROR_TOO_LARGE },
            consumed: self.line_len,
            swallow: len + 2,
            close: false,
        }
    }

    /// `delete <key> [0] [noreply]`: memcached still accepts the legacy hold time, but only `0`.
    fn delete(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if !(2..=4).contains(&t.n) {
            return error(reply::ERROR, self.line_len);
        }
        let mut noreply = false;
        if t.n > 2 {
            let zero = t.get(2) == b"0";
            noreply = t.noreply();
            let valid = (t.n == 3 && (zero || noreply)) || (t.n == 4 && zero && noreply);
            if !valid {
                return quiet_error(reply::CLIENT_ERROR_DELETE_USAGE, self.line_len, noreply);
            }
        }
        let key = t.get(1);
        if !self.key_ok(key) {
            return quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply);
        }
        Parsed::Complete(Command::Delete { key, noreply }, self.line_len)
    }

    /// `incr|decr <key> <delta> [noreply]`; a fourth token other than `noreply` is ignored.
    fn arith(&self, t: &Tokens<'a>, incr: bool) -> Parsed<'a> {
        if t.n != 3 && t.n != 4 {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        let key = t.get(1);
        if !self.key_ok(key) {
            return quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply);
        }
        match num::strtoull(t.get(2)) {
            Some(delta) => Parsed::Complete(Command::Arith { incr, key, delta, noreply }, self.line_len),
            None => quiet_error(reply::CLIENT_ERROR_BAD_DELTA, self.line_len, noreply),
        }
    }

    /// `touch <key> <exptime> [noreply]`
    fn touch(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if t.n != 3 && t.n != 4 {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        let key = t.get(1);
        if !self.key_ok(key) {
            return quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply);
        }
        match num::strtol(t.get(2)) {
            Some(e) => Parsed::Complete(Command::Touch { key, exptime: i64::from(e), noreply }, self.line_len),
            None => quiet_error(reply::CLIENT_ERROR_BAD_EXPTIME, self.line_len, noreply),
        }
    }

    /// `flush_all [delay] [noreply]`. As in memcached, the delay is read whenever the token count
    /// says there is one, so `flush_all noreply 5` is an exptime error and `flush_all 5 junk` is
    /// a 5-second flush.
    fn flush_all(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if !(1..=3).contains(&t.n) {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        let mut delay = 0;
        if t.n != if noreply { 2 } else { 1 } {
            match num::strtol(t.get(1)) {
                Some(d) => delay = i64::from(d),
                None => return quiet_error(reply::CLIENT_ERROR_BAD_EXPTIME, self.line_len, noreply),
            }
        }
        Parsed::Complete(Command::FlushAll { delay, noreply }, self.line_len)
    }

    /// `verbosity <level> [noreply]`; the level must be a number even though it changes nothing.
    fn verbosity(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if t.n != 2 && t.n != 3 {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        match num::strtoul(t.get(1)) {
            Some(level) => Parsed::Complete(Command::Verbosity { level, noreply }, self.line_len),
            None => quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply),
        }
    }

    /// `cache_memlimit <megabytes> [noreply]`: one optional token after the number, which
    /// memcached ignores unless it is `noreply`.
    fn cache_memlimit(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if t.n != 2 && t.n != 3 {
            return error(reply::ERROR, self.line_len);
        }
        let noreply = t.noreply();
        match num::strtoul(t.get(1)) {
            Some(megabytes) => Parsed::Complete(Command::CacheMemlimit { megabytes, noreply }, self.line_len),
            None => quiet_error(reply::ERROR, self.line_len, noreply),
        }
    }

    /// `lru_crawler crawl|metadump <classes>`, `enable`, `disable`, `sleep <us>`, `tocrawl <n>`.
    fn lru_crawler(&self, t: &Tokens<'a>) -> Parsed<'a> {
        let done = |c| Parsed::Complete(c, self.line_len);
        match (t.n, t.get(1)) {
            (3, b"crawl") => done(Command::LruCrawler(LruCrawler::Crawl(t.get(2)))),
            (3, b"metadump") => done(Command::LruCrawler(LruCrawler::Metadump(t.get(2)))),
            (2, b"enable") => done(Command::LruCrawler(LruCrawler::Enable)),
            (2, b"disable") => done(Command::LruCrawler(LruCrawler::Disable)),
            (3, b"sleep") => match num::strtoul(t.get(2)) {
                Some(us) if us > 1_000_000 => {
                    error(b"CLIENT_ERROR sleep must be one second or less\r\n", self.line_len)
                }
                Some(_) => done(Command::Tuning { noreply: false }),
                None => error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len),
            },
            (3, b"tocrawl") => match num::strtoul(t.get(2)) {
                Some(_) => done(Command::Tuning { noreply: false }),
                None => error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len),
            },
            _ => error(reply::ERROR, self.line_len),
        }
    }

    /// `slabs reassign <src> <dst>`, `slabs automove 0|1|2 [noreply]`.
    fn slabs(&self, t: &Tokens<'a>) -> Parsed<'a> {
        let noreply = t.noreply();
        match (t.n, t.get(1)) {
            (4, b"reassign") => match (num::strtol(t.get(2)), num::strtol(t.get(3))) {
                (Some(src), Some(dst)) => Parsed::Complete(Command::SlabsReassign { src, dst }, self.line_len),
                _ => error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len),
            },
            (3.., b"automove") => match num::strtoul(t.get(2)) {
                Some(0..=2) => Parsed::Complete(Command::Tuning { noreply }, self.line_len),
                Some(_) => quiet_error(reply::ERROR, self.line_len, noreply),
                None => quiet_error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len, noreply),
            },
            _ => error(reply::ERROR, self.line_len),
        }
    }

    /// `lru mode flat|segmented`, `lru temp_ttl <secs>`, `lru tune <hot%> <warm%> <hot factor>
    /// <warm factor>`: memcached answers a bad argument with a bare `ERROR`.
    fn lru(&self, t: &Tokens<'a>) -> Parsed<'a> {
        let noreply = t.noreply();
        let valid = match (t.n, t.get(1)) {
            (3.., b"mode") => matches!(t.get(2), b"flat" | b"segmented"),
            (3.., b"temp_ttl") => num::strtol(t.get(2)).is_some(),
            (6.., b"tune") => {
                let factor = |s: &[u8]| std::str::from_utf8(s).ok().and_then(|s| s.parse::<f64>().ok());
                match (num::strtoul(t.get(2)), num::strtoul(t.get(3)), factor(t.get(4)), factor(t.get(5))) {
                    (Some(hot), Some(warm), Some(hf), Some(wf)) => {
                        u64::from(hot) + u64::from(warm) <= 80 && hf > 0.0 && wf > 0.0
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if valid {
            Parsed::Complete(Command::Tuning { noreply }, self.line_len)
        } else {
            quiet_error(reply::ERROR, self.line_len, noreply)
        }
    }

    /// `mg|md|ma <key> <flag>*`: shape only; flags are the server's (via [`Meta::opts`]).
    fn meta(&self, t: &Tokens<'a>, kind: MetaKind) -> Parsed<'a> {
        if t.n < 2 {
            return error(reply::ERROR, self.line_len);
        }
        let key = t.get(1);
        if !self.key_ok(key) {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        }
        if t.n > META_MAX_TOKENS {
            return error(too_many_flags(kind), self.line_len);
        }
        let meta = Meta { kind, key, flags: MetaFlags(t.rest(2)), data: b"" };
        Parsed::Complete(Command::Meta(meta), self.line_len)
    }

    /// `me <key> [b]`
    fn meta_debug(&self, t: &Tokens<'a>) -> Parsed<'a> {
        let key = t.get(1);
        if t.n < 2 || !self.key_ok(key) {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        }
        if t.get(2) == b"b" && crate::base64::decoded_len(key).is_none() {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        }
        let meta = Meta { kind: MetaKind::Debug, key, flags: MetaFlags(t.rest(2)), data: b"" };
        Parsed::Complete(Command::Meta(meta), self.line_len)
    }

    /// `ms <key> <datalen> <flag>*` and its data block. Errors found once the length is known
    /// swallow the block (memcached's "so we can properly slurp bad bytes"); errors before it
    /// do not. Meta errors are always reported, `q` or not.
    fn meta_set(&self, t: &Tokens<'a>) -> Parsed<'a> {
        if t.n < 2 {
            return error(reply::ERROR, self.line_len);
        }
        let key = t.get(1);
        if !self.key_ok(key) || t.n == 2 {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        }
        if t.n > META_MAX_TOKENS {
            return error(too_many_flags(MetaKind::Set), self.line_len);
        }
        let Some(len) = num::strtol(t.get(2)).and_then(data_len) else {
            return error(reply::CLIENT_ERROR_BAD_FORMAT, self.line_len);
        };
        let flags = MetaFlags(t.rest(3));
        let opts = match flags.parse(MetaKind::Set, key) {
            Ok(o) => o,
            Err(reply) => return Parsed::Error { reply, consumed: self.line_len, swallow: len + 2, close: false },
        };
        let key_len = if opts.base64 { crate::base64::decoded_len(key).unwrap_or(0) } else { key.len() };
        if !self.limits.item_fits(key_len, opts.client_flags.unwrap_or(0), len) {
            return self.too_large(len, false);
        }
        match self.data_block(len, false) {
            Ok(data) => {
                let meta = Meta { kind: MetaKind::Set, key, flags, data };
                Parsed::Complete(Command::Meta(meta), self.line_len + len + 2)
            }
            Err(p) => p,
        }
    }
}

/// A data length memcached accepts: `0..=INT_MAX - 2` (it adds the `\r\n` in an `int`).
fn data_len(len: i32) -> Option<usize> {
    if !(0..=i32::MAX - 2).contains(&len) {
        return None;
    }
    usize::try_from(len).ok()
}

/// memcached words this one differently for mg.
fn too_many_flags(kind: MetaKind) -> &'static [u8] {
    match kind {
        MetaKind::Get => b"CLIENT_ERROR options flags are too long\r\n",
        _ => b"CLIENT_ERROR options flags too long\r\n",
    }
}
