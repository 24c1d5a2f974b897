//! memcached reply lines, appended to an output buffer.
//!
//! Every function appends to a caller-owned `Vec<u8>` and allocates nothing beyond that vector's
//! own growth: numbers are formatted on the stack, and no intermediate strings are built. Fixed
//! lines are constants with their `\r\n`, so the common replies are a single `extend_from_slice`.
//!
//! Meta replies are composed piecewise, in the order memcached writes them: a status
//! ([`meta_status`] or [`meta_va`]), then return flags ([`meta_flag`], [`meta_flag_i64`],
//! [`meta_flag_bytes`], [`meta_flag_bare`], [`meta_key`], [`meta_opaque`]), then [`meta_eol`],
//! then for `VA` the value via [`meta_data`]:
//!
//! ```
//! use cachette_memcache::reply;
//! let mut out = Vec::new();
//! reply::meta_va(&mut out, 2);
//! reply::meta_flag(&mut out, b'c', 7);
//! reply::meta_flag_i64(&mut out, b't', -1);
//! reply::meta_eol(&mut out);
//! reply::meta_data(&mut out, b"hi");
//! assert_eq!(out, b"VA 2 c7 t-1\r\nhi\r\n");
//! ```

use std::fmt;
use std::io::Write as _;

/// `STORED\r\n`
pub const STORED: &[u8] = b"STORED\r\n";
/// `NOT_STORED\r\n`
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
/// `EXISTS\r\n` (cas with a stale unique)
pub const EXISTS: &[u8] = b"EXISTS\r\n";
/// `NOT_FOUND\r\n`
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
/// `DELETED\r\n`
pub const DELETED: &[u8] = b"DELETED\r\n";
/// `TOUCHED\r\n`
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
/// `OK\r\n` (flush_all, verbosity)
pub const OK: &[u8] = b"OK\r\n";
/// `END\r\n` (closes a retrieval and a stats listing)
pub const END: &[u8] = b"END\r\n";
/// `RESET\r\n` (`stats reset`)
pub const RESET: &[u8] = b"RESET\r\n";
/// `ERROR\r\n`: unknown command, or a known one with the wrong number of tokens.
pub const ERROR: &[u8] = b"ERROR\r\n";

/// `CLIENT_ERROR bad command line format\r\n`: key too long, malformed number, bad meta line.
pub const CLIENT_ERROR_BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
/// `CLIENT_ERROR bad data chunk\r\n`: a data block not followed by `\r\n`.
pub const CLIENT_ERROR_BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// `CLIENT_ERROR invalid exptime argument\r\n` (touch, gat, flush_all).
pub const CLIENT_ERROR_BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
/// `CLIENT_ERROR invalid numeric delta argument\r\n` (incr/decr).
pub const CLIENT_ERROR_BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
/// The usage error `delete` gives for a third token other than `0` or `noreply`.
pub const CLIENT_ERROR_DELETE_USAGE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
/// `CLIENT_ERROR cannot increment or decrement non-numeric value\r\n`
pub const CLIENT_ERROR_NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
/// `SERVER_ERROR object too large for cache\r\n`: a value over the item size limit.
pub const SERVER_ERROR_TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// `SERVER_ERROR out of memory storing object\r\n`
pub const SERVER_ERROR_OOM_STORING: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
/// What memcached 1.6.18 answers `shutdown` with unless started with `-A`.
pub const SHUTDOWN_NOT_ENABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";

/// `HD\r\n`: meta success without a value.
pub const HD: &[u8] = b"HD\r\n";
/// `EN\r\n`: meta miss (mg, me).
pub const EN: &[u8] = b"EN\r\n";
/// `NF\r\n`: meta not found (md, ma, ms in replace/append mode).
pub const NF: &[u8] = b"NF\r\n";
/// `NS\r\n`: meta not stored.
pub const NS: &[u8] = b"NS\r\n";
/// `EX\r\n`: meta CAS mismatch.
pub const EX: &[u8] = b"EX\r\n";
/// `MN\r\n`: the answer to `mn`.
pub const MN: &[u8] = b"MN\r\n";

/// Formats `v` in decimal into the tail of `buf`, returning the digits.
#[inline]
fn digits(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(digits(&mut buf, v));
}

/// Appends `v` in decimal, with a `-` when negative.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`: one hit of get/gets/gat/gats (`cas` is
/// `Some` for gets and gats).
#[inline]
pub fn value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(6 + key.len() + 1 + 10 + 1 + 20 + 1 + 20 + 2 + data.len() + 2);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, u64::from(flags));
    out.push(b' ');
    push_u64(out, data.len() as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        push_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `END\r\n`
#[inline]
pub fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(END);
}

/// `<n>\r\n`: the reply to a successful incr/decr.
#[inline]
pub fn number(out: &mut Vec<u8>, n: u64) {
    push_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>\r\n`
pub fn version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>\r\n`, where `value` is anything displayable (integers, `&str`, or
/// `format_args!("{:.6}", secs)` for memcached's rusage figures).
pub fn stat(out: &mut Vec<u8>, name: &str, value: impl fmt::Display) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>\r\n` for a raw byte value.
pub fn stat_bytes(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `CLIENT_ERROR <msg>\r\n`
pub fn client_error(out: &mut Vec<u8>, msg: &str) {
    out.extend_from_slice(b"CLIENT_ERROR ");
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `SERVER_ERROR <msg>\r\n`
pub fn server_error(out: &mut Vec<u8>, msg: &str) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Starts a meta reply line with a two-letter status (`b"HD"`, `b"EN"`, `b"NF"`, `b"NS"`,
/// `b"EX"`); follow with flags and [`meta_eol`].
#[inline]
pub fn meta_status(out: &mut Vec<u8>, code: &[u8; 2]) {
    out.extend_from_slice(code);
}

/// Starts a `VA <size>` meta reply line; follow with flags, [`meta_eol`] and [`meta_data`].
#[inline]
pub fn meta_va(out: &mut Vec<u8>, size: usize) {
    out.extend_from_slice(b"VA ");
    push_u64(out, size as u64);
}

/// ` <flag><n>`, e.g. `c` with the CAS unique, `f` client flags, `s` size, `l` seconds since
/// last access, `h` 0/1.
#[inline]
pub fn meta_flag(out: &mut Vec<u8>, flag: u8, n: u64) {
    out.push(b' ');
    out.push(flag);
    push_u64(out, n);
}

/// ` <flag><n>` for a signed value: `t-1` is how memcached says "never expires".
#[inline]
pub fn meta_flag_i64(out: &mut Vec<u8>, flag: u8, n: i64) {
    out.push(b' ');
    out.push(flag);
    push_i64(out, n);
}

/// ` <flag><bytes>`, e.g. `k` with a plain key.
#[inline]
pub fn meta_flag_bytes(out: &mut Vec<u8>, flag: u8, bytes: &[u8]) {
    out.push(b' ');
    out.push(flag);
    out.extend_from_slice(bytes);
}

/// ` <flag>` alone: `W` (won the recache token), `Z` (token already sent), `X` (stale).
#[inline]
pub fn meta_flag_bare(out: &mut Vec<u8>, flag: u8) {
    out.push(b' ');
    out.push(flag);
}

/// ` O<opaque>`: echoes the opaque token (as given to `O`, without the letter).
#[inline]
pub fn meta_opaque(out: &mut Vec<u8>, opaque: &[u8]) {
    meta_flag_bytes(out, b'O', opaque);
}

/// ` k<key>`, or for a binary key (the request had `b`) ` k<base64 of key> b`, as memcached
/// re-encodes it from the decoded bytes.
pub fn meta_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        crate::base64::encode_base64(out, key);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Ends a meta reply line.
#[inline]
pub fn meta_eol(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// The data block after a `VA` line: `<data>\r\n`.
#[inline]
pub fn meta_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// What `me` prints for an item, as memcached 1.6.18 formats it:
/// `ME <key> exp=<secs left or -1> la=<secs since access> cas=<cas> fetch=<yes|no> cls=<slab
/// class> size=<item bytes>\r\n`. `key` is the decoded key; `binary` re-encodes it in base64.
#[allow(clippy::too_many_arguments)]
pub fn meta_debug(
    out: &mut Vec<u8>,
    key: &[u8],
    binary: bool,
    exp: i64,
    last_access: u64,
    cas: u64,
    fetched: bool,
    class: u32,
    size: u64,
) {
    out.extend_from_slice(b"ME ");
    if binary {
        crate::base64::encode_base64(out, key);
    } else {
        out.extend_from_slice(key);
    }
    out.extend_from_slice(b" exp=");
    push_i64(out, exp);
    out.extend_from_slice(b" la=");
    push_u64(out, last_access);
    out.extend_from_slice(b" cas=");
    push_u64(out, cas);
    out.extend_from_slice(if fetched { b" fetch=yes" } else { b" fetch=no" });
    out.extend_from_slice(b" cls=");
    push_u64(out, u64::from(class));
    out.extend_from_slice(b" size=");
    push_u64(out, size);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn text_replies() {
        // Shapes copied from memcached 1.6.18 output.
        assert_eq!(with(|o| value(o, b"a", 0, b"x", None)), b"VALUE a 0 1\r\nx\r\n");
        assert_eq!(with(|o| value(o, b"a", 4294967295, b"", Some(36))), b"VALUE a 4294967295 0 36\r\n\r\n");
        assert_eq!(with(end), b"END\r\n");
        assert_eq!(with(|o| number(o, 0)), b"0\r\n");
        assert_eq!(with(|o| number(o, u64::MAX)), b"18446744073709551615\r\n");
        assert_eq!(with(|o| version(o, "1.6.18")), b"VERSION 1.6.18\r\n");
        assert_eq!(with(|o| stat(o, "pid", 42u32)), b"STAT pid 42\r\n");
        assert_eq!(with(|o| stat(o, "rusage_user", format_args!("{:.6}", 0.5))), b"STAT rusage_user 0.500000\r\n");
        assert_eq!(with(|o| stat(o, "version", "1.6.18")), b"STAT version 1.6.18\r\n");
        assert_eq!(with(|o| stat_bytes(o, b"1:chunk_size", b"96")), b"STAT 1:chunk_size 96\r\n");
        assert_eq!(with(|o| client_error(o, "x y")), b"CLIENT_ERROR x y\r\n");
        assert_eq!(with(|o| server_error(o, "out of memory")), b"SERVER_ERROR out of memory\r\n");
    }

    #[test]
    fn meta_replies() {
        // memcached 1.6.18: `ms YWJj 2 b k` -> `HD kYWJj b`; `mg a c f t s` on a fresh item.
        let r = with(|o| {
            meta_status(o, b"HD");
            meta_key(o, b"abc", true);
            meta_eol(o);
        });
        assert_eq!(r, b"HD kYWJj b\r\n");
        let r = with(|o| {
            meta_va(o, 1);
            meta_flag(o, b'c', 47);
            meta_flag(o, b'f', 0);
            meta_flag_i64(o, b't', -1);
            meta_flag(o, b's', 1);
            meta_opaque(o, b"123");
            meta_key(o, b"a", false);
            meta_flag_bare(o, b'W');
            meta_eol(o);
            meta_data(o, b"x");
        });
        assert_eq!(r, b"VA 1 c47 f0 t-1 s1 O123 ka W\r\nx\r\n");
        let r = with(|o| meta_debug(o, b"a", false, -1, 0, 164, false, 1, 61));
        assert_eq!(r, b"ME a exp=-1 la=0 cas=164 fetch=no cls=1 size=61\r\n");
        let r = with(|o| meta_debug(o, b"abc", true, 5, 2, 3, true, 1, 61));
        assert_eq!(r, b"ME YWJj exp=5 la=2 cas=3 fetch=yes cls=1 size=61\r\n");
        assert_eq!(with(|o| push_i64(o, i64::MIN)), b"-9223372036854775808");
    }
}
