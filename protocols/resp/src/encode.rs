//! Reply encoding into an output buffer, for RESP2 and RESP3 clients.
//!
//! CONTRACT: every method appends exactly one frame header (or whole frame) to `out`. Aggregate
//! headers (`array`, `map`, `set`, `push`) are followed by the caller writing their elements.
//! In RESP2 the RESP3-only types degrade as redis-server 7 degrades them:
//! null -> `$-1`, null_array -> `*-1`, map(n) -> `*{2n}`, set(n) -> `*n`, push(n) -> `*n`,
//! double -> bulk string, boolean -> `:1`/`:0`, big number -> bulk, verbatim -> bulk of the text.
//! Doubles are formatted as redis-server formats them (`%.17g`, `inf`, `-inf`, `nan`).

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
}
