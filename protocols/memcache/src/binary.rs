//! The memcached binary protocol: request frames parsed in place, response frames encoded.
//!
//! Every packet is a 24-byte header followed by `extras`, `key` and `value`, in that order
//! (all integers big-endian):
//!
//! ```text
//!  byte  0      1        2..4     4        5          6..8      8..12       12..16   16..24
//!       magic  opcode   key len  extras   data type  vbucket   total body  opaque   cas
//!       0x80 request                len               (status   length
//!       0x81 response                                 in a reply)
//! ```
//!
//! CONTRACT (the server relies on exactly this):
//! - [`parse`] looks at the start of `buf` only and never allocates.
//! - [`Parsed::Complete`]`(req, n)`: one whole request occupies `buf[..n]`, its shape (extras,
//!   key and value lengths for its opcode) already checked.
//! - [`Parsed::Incomplete`]: wait for more bytes. Never returned while the header announces a
//!   body the server would refuse: what is buffered is at most 24 + 255 + 65535 bytes, or a
//!   value that fits the item size limit. A storage request whose value cannot fit is refused
//!   as soon as its key has arrived, and its value is swallowed unread.
//! - [`Parsed::Refused`]: answer `status` (unless the session overrides it, see
//!   [`Refusal::before_auth`]), drop `consumed` bytes, discard the next `swallow` bytes of input
//!   (the connection keeps a countdown, they may not have arrived yet), and close after the
//!   reply if `close`.
//! - [`Parsed::BadMagic`]: the first byte is not 0x80. memcached closes without a reply.
//!
//! The reference is memcached 1.6.18 (`proto_bin.c`), probed byte by byte. What it does with a
//! malformed request, and so what this module answers:
//! - key length + extras length greater than the body length: UNKNOWN_COMMAND, close. This is
//!   checked before authentication.
//! - a key longer than 250 bytes, or extras/key/value lengths wrong for the opcode: EINVAL,
//!   close.
//! - an unknown opcode: UNKNOWN_COMMAND, the body swallowed, the connection kept. (memcached
//!   swallows the body length again *after* the key and extras it has already read, which
//!   desynchronises the stream; cachette swallows exactly the body.)
//! - a value too large for the item size limit (memcached `-I`): E2BIG, the value swallowed,
//!   the connection kept; a refused SET also unlinks the key's current item ([`Refusal::unlink`]).
//! - a SASL mechanism name over 32 bytes: EINVAL; SASL data over the item size limit: ENOMEM;
//!   either way the data is swallowed and the connection kept.
//! - TOUCH, GAT and STAT do not check the body length in memcached, which then reads any excess
//!   as the next request; cachette refuses an excess with EINVAL and closes, as for GET.

use crate::request::Limits;

/// The first byte of every request.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Bytes in a request or response header.
pub const HEADER_LEN: usize = 24;
/// memcached's `MAX_SASL_MECH_LEN`.
pub const MAX_SASL_MECH_LEN: usize = 32;

/// The opcodes cachette serves (memcached 1.6.18's set; anything else is UNKNOWN_COMMAND).
#[allow(missing_docs)]
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes, with the error texts memcached 1.6.18 sends as the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    NoError = 0x00,
    /// `Not found`
    KeyEnoent = 0x01,
    /// `Data exists for key.`
    KeyEexists = 0x02,
    /// `Too large.`
    E2big = 0x03,
    /// `Invalid arguments`
    Einval = 0x04,
    /// `Not stored.`
    NotStored = 0x05,
    /// `Non-numeric server-side value for incr or decr`
    DeltaBadval = 0x06,
    /// `Auth failure.`
    AuthError = 0x20,
    /// SASL wants another step (empty body).
    AuthContinue = 0x21,
    /// `Unknown command`
    UnknownCommand = 0x81,
    /// `Out of memory`
    Enomem = 0x82,
    /// `Not supported`: cachette answers it to writes on a read-only replica.
    NotSupported = 0x83,
}

impl Status {
    /// The body memcached sends with this status when it is an error.
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::NoError | Status::AuthContinue => b"",
            Status::KeyEnoent => b"Not found",
            Status::KeyEexists => b"Data exists for key.",
            Status::E2big => b"Too large.",
            Status::Einval => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::DeltaBadval => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::UnknownCommand => b"Unknown command",
            Status::Enomem => b"Out of memory",
            Status::NotSupported => b"Not supported",
        }
    }
}

/// A request header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The opcode as sent (responses echo it, quiet variants included).
    pub opcode: u8,
    /// Key length.
    pub key_len: u16,
    /// Extras length.
    pub extras_len: u8,
    /// Data type (memcached ignores it).
    pub data_type: u8,
    /// vbucket id (memcached ignores it).
    pub vbucket: u16,
    /// Extras + key + value length.
    pub body_len: u32,
    /// Echoed in the response.
    pub opaque: u32,
    /// CAS to compare (0: none).
    pub cas: u64,
}

impl Header {
    /// Decodes the first 24 bytes of `buf`, whatever the magic byte; `None` if fewer are there.
    pub fn decode(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Header {
            opcode: h[1],
            key_len: u16_at(2),
            extras_len: h[4],
            data_type: h[5],
            vbucket: u16_at(6),
            body_len: u32_at(8),
            opaque: u32_at(12),
            cas: u64::from(u32_at(16)) << 32 | u64::from(u32_at(20)),
        })
    }

    /// Encodes this header as a request (magic 0x80); for clients and tests.
    pub fn encode_request(&self, out: &mut Vec<u8>) {
        out.push(REQUEST_MAGIC);
        out.push(self.opcode);
        out.extend_from_slice(&self.key_len.to_be_bytes());
        out.push(self.extras_len);
        out.push(self.data_type);
        out.extend_from_slice(&self.vbucket.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }

    /// True for the opcodes memcached serves before SASL authentication.
    pub fn allowed_unauthenticated(&self) -> bool {
        matches!(self.opcode, opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION)
    }
}

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SET(Q)
    Set,
    /// ADD(Q)
    Add,
    /// REPLACE(Q)
    Replace,
    /// APPEND(Q): no extras.
    Append,
    /// PREPEND(Q): no extras.
    Prepend,
}

/// A request's meaning, borrowing key and value from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// GET GETQ GETK GETKQ GAT GATQ GATK GATKQ. A miss of a quiet variant is not answered.
    Get {
        /// The key.
        key: &'a [u8],
        /// GETK/GATK: the response carries the key.
        with_key: bool,
        /// GAT*: the new expiration (memcached exptime rules, unsigned).
        touch: Option<u32>,
    },
    /// TOUCH: sets the expiration, answers the flags.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiration.
        exptime: u32,
    },
    /// SET ADD REPLACE APPEND PREPEND and their quiet variants.
    Store {
        /// Which command.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// Client flags (0 for append/prepend, which keep the item's own).
        flags: u32,
        /// Expiration (0 for append/prepend).
        exptime: u32,
        /// The value.
        value: &'a [u8],
    },
    /// DELETE(Q).
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// INCREMENT/DECREMENT(Q).
    Arith {
        /// INCREMENT (else DECREMENT).
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// The value a missing key is created with.
        initial: u64,
        /// Expiration of a created item; 0xffffffff means "do not create, answer Not found".
        exptime: u32,
    },
    /// QUIT(Q).
    Quit,
    /// FLUSH(Q), with an optional delay (0: now).
    Flush {
        /// memcached exptime of the flush.
        delay: u32,
    },
    /// NOOP: answered, and it is the point where quiet commands' answers are due.
    Noop,
    /// VERSION.
    Version,
    /// STAT with an optional group (`settings`, `items`, `reset` …); empty for all.
    Stat {
        /// The group.
        group: &'a [u8],
    },
    /// SASL LIST MECHS.
    SaslListMechs,
    /// SASL AUTH (`step == false`) or SASL STEP.
    SaslAuth {
        /// SASL STEP.
        step: bool,
        /// The mechanism name (at most 32 bytes).
        mech: &'a [u8],
        /// The client's data.
        data: &'a [u8],
    },
}

/// One complete request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header as sent.
    pub header: Header,
    /// What it asks.
    pub command: Command<'a>,
}

impl Request<'_> {
    /// A quiet variant: success is not answered (a GETQ/GATQ hit still is).
    pub fn quiet(&self) -> bool {
        is_quiet(self.header.opcode)
    }
}

fn is_quiet(op: u8) -> bool {
    use opcode::*;
    matches!(
        op,
        GETQ | GETKQ
            | SETQ
            | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GATQ
            | GATKQ
    )
}

/// A request the server refuses without running it; see the module contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The header (the response echoes its opcode and opaque).
    pub header: Header,
    /// What to answer.
    pub status: Status,
    /// Bytes of the buffer to drop.
    pub consumed: usize,
    /// Further input bytes to discard.
    pub swallow: usize,
    /// Close after the reply.
    pub close: bool,
    /// Decided before authentication (lengths that contradict each other): memcached answers
    /// it even to a client that has not authenticated. Any other refusal of an unauthenticated
    /// client's request is AUTH_ERROR instead.
    pub before_auth: bool,
    /// A SET refused as too large: the key whose current item must be deleted, as memcached
    /// does so that readers do not see the value the client meant to replace.
    pub unlink: Option<&'a [u8]>,
}

/// Outcome of one parse attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A request and the bytes it occupied.
    Complete(Request<'a>, usize),
    /// More bytes are needed.
    Incomplete,
    /// Refused; see [`Refusal`].
    Refused(Refusal<'a>),
    /// The first byte is not the request magic: close without a reply.
    BadMagic,
}

/// Parses one request from the start of `buf`; see the module contract. `limits.max_key_len`
/// bounds keys and `limits.max_item_size` values, as in the text protocol.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    use opcode::*;
    match buf.first() {
        None => return Parsed::Incomplete,
        Some(&m) if m != REQUEST_MAGIC => return Parsed::BadMagic,
        Some(_) => {}
    }
    let Some(h) = Header::decode(buf) else { return Parsed::Incomplete };
    let (ext, klen, body) = (usize::from(h.extras_len), usize::from(h.key_len), h.body_len as usize);
    let refuse = |status, consumed, swallow, close| {
        Parsed::Refused(Refusal { header: h, status, consumed, swallow, close, before_auth: false, unlink: None })
    };
    if ext + klen > body {
        return Parsed::Refused(Refusal {
            header: h,
            status: Status::UnknownCommand,
            consumed: HEADER_LEN,
            swallow: 0,
            close: true,
            before_auth: true,
            unlink: None,
        });
    }
    let einval = refuse(Status::Einval, HEADER_LEN, 0, true);
    if klen > limits.max_key_len {
        return einval;
    }
    let vlen = body - ext - klen;
    // The opcode's shape: (extras lengths allowed, key required / forbidden, value allowed).
    // Storage and SASL requests may carry a value; every other body is exactly extras + key.
    enum Key {
        Required,
        Forbidden,
        Optional,
    }
    let (ext_ok, key_rule, takes_value) = match h.opcode {
        GET | GETQ | GETK | GETKQ | DELETE | DELETEQ => (ext == 0, Key::Required, false),
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => (ext == 8, Key::Required, true),
        APPEND | APPENDQ | PREPEND | PREPENDQ => (ext == 0, Key::Required, true),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => (ext == 20, Key::Required, false),
        QUIT | QUITQ | NOOP | VERSION | SASL_LIST_MECHS => (ext == 0, Key::Forbidden, false),
        FLUSH | FLUSHQ => (ext == 0 || ext == 4, Key::Forbidden, false),
        STAT => (ext == 0, Key::Optional, false),
        TOUCH | GAT | GATQ | GATK | GATKQ => (ext == 4, Key::Required, false),
        SASL_AUTH | SASL_STEP => (ext == 0, Key::Required, true),
        _ => return refuse(Status::UnknownCommand, HEADER_LEN, body, false),
    };
    let key_ok = match key_rule {
        Key::Required => klen > 0,
        Key::Forbidden => klen == 0,
        Key::Optional => true,
    };
    if !ext_ok || !key_ok || (!takes_value && vlen > 0) {
        return einval;
    }
    let head = HEADER_LEN + ext + klen;
    if takes_value {
        // Refuse an oversized value from its header and key alone, before any of it arrives.
        let flags_at =
            |b: &[u8]| u32::from_be_bytes([b[HEADER_LEN], b[HEADER_LEN + 1], b[HEADER_LEN + 2], b[HEADER_LEN + 3]]);
        let too_large = |flags| !limits.item_fits(klen, flags, vlen);
        if buf.len() < head {
            return Parsed::Incomplete;
        }
        let key = &buf[HEADER_LEN + ext..head];
        match h.opcode {
            SASL_AUTH | SASL_STEP if klen > MAX_SASL_MECH_LEN => return refuse(Status::Einval, head, vlen, false),
            SASL_AUTH | SASL_STEP if too_large(0) => return refuse(Status::Enomem, head, vlen, false),
            SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ if too_large(flags_at(buf)) => {
                let unlink = matches!(h.opcode, SET | SETQ).then_some(key);
                return Parsed::Refused(Refusal {
                    header: h,
                    status: Status::E2big,
                    consumed: head,
                    swallow: vlen,
                    close: false,
                    before_auth: false,
                    unlink,
                });
            }
            APPEND | APPENDQ | PREPEND | PREPENDQ if too_large(0) => return refuse(Status::E2big, head, vlen, false),
            _ => {}
        }
    }
    let total = head + vlen;
    if buf.len() < total {
        return Parsed::Incomplete;
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + ext];
    let key = &buf[HEADER_LEN + ext..head];
    let value = &buf[head..total];
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let be64 = |b: &[u8]| u64::from(be32(b)) << 32 | u64::from(be32(&b[4..]));
    let command = match h.opcode {
        GET | GETQ | GETK | GETKQ => Command::Get { key, with_key: matches!(h.opcode, GETK | GETKQ), touch: None },
        GAT | GATQ | GATK | GATKQ => {
            Command::Get { key, with_key: matches!(h.opcode, GATK | GATKQ), touch: Some(be32(extras)) }
        }
        TOUCH => Command::Touch { key, exptime: be32(extras) },
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => {
            let kind = match h.opcode {
                SET | SETQ => StoreKind::Set,
                ADD | ADDQ => StoreKind::Add,
                _ => StoreKind::Replace,
            };
            Command::Store { kind, key, flags: be32(extras), exptime: be32(&extras[4..]), value }
        }
        APPEND | APPENDQ | PREPEND | PREPENDQ => {
            let kind = if matches!(h.opcode, APPEND | APPENDQ) { StoreKind::Append } else { StoreKind::Prepend };
            Command::Store { kind, key, flags: 0, exptime: 0, value }
        }
        DELETE | DELETEQ => Command::Delete { key },
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => Command::Arith {
            incr: matches!(h.opcode, INCREMENT | INCREMENTQ),
            key,
            delta: be64(extras),
            initial: be64(&extras[8..]),
            exptime: be32(&extras[16..]),
        },
        QUIT | QUITQ => Command::Quit,
        FLUSH | FLUSHQ => Command::Flush { delay: if ext == 4 { be32(extras) } else { 0 } },
        NOOP => Command::Noop,
        VERSION => Command::Version,
        STAT => Command::Stat { group: key },
        SASL_LIST_MECHS => Command::SaslListMechs,
        // The opcode table above admits nothing else.
        _ => Command::SaslAuth { step: h.opcode == SASL_STEP, mech: key, data: value },
    };
    Parsed::Complete(Request { header: h, command }, total)
}

/// Appends a response packet: header (magic 0x81, the request's opcode and opaque), then
/// `extras`, `key`, `value`.
#[allow(clippy::too_many_arguments)]
pub fn response(
    out: &mut Vec<u8>,
    opcode: u8,
    status: Status,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body = extras.len() + key.len() + value.len();
    out.reserve(HEADER_LEN + body);
    out.push(RESPONSE_MAGIC);
    out.push(opcode);
    // Keys are at most 250 bytes and extras at most 20 here; bodies at most the item size
    // limit (1 GiB), so the narrowing casts are exact.
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.push(0);
    out.extend_from_slice(&(status as u16).to_be_bytes());
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends an error response: no extras, no key, CAS 0, memcached's text for `status`.
pub fn error(out: &mut Vec<u8>, header: &Header, status: Status) {
    error_text(out, header, status, status.message());
}

/// An error response with a text of its own: memcached's out-of-memory errors carry the text
/// of the text protocol's `SERVER_ERROR` line without that prefix (ENOMEM `Out of memory
/// allocating item` for a store).
pub fn error_text(out: &mut Vec<u8>, header: &Header, status: Status, text: &[u8]) {
    response(out, header.opcode, status, header.opaque, 0, b"", b"", text);
}

#[cfg(test)]
mod tests;
