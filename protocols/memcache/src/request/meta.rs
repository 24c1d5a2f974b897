//! Interpretation of meta command flags (`mg ms md ma me`) into [`MetaOpts`].
//!
//! The flag set and every error line are those of memcached 1.6.18, checked letter by letter
//! against the real server (`mg a X`, `mg a X1`, `mg a Xx` for every ASCII letter, and the same
//! for ms/md/ma). The rules this reproduces:
//!
//! - Flags are tokens whose first byte is the letter; a repeated letter, or a first byte >= 127,
//!   is `CLIENT_ERROR duplicate flag`, an unknown letter `CLIENT_ERROR invalid flag`; both stop
//!   the scan at once.
//! - A bad token (`Tx`, `C`, `D-1` …) does not stop the scan: the message of the *last* bad token
//!   wins, unless a later duplicate/unknown flag stops the scan first. A bad `F` token leaves the
//!   message as it was (initially `CLIENT_ERROR bad command line format`).
//! - `md` and `ma` collapse every error of that scan into `CLIENT_ERROR invalid or duplicate
//!   flag`.
//! - Then `ms`/`ma` check the `M` mode letter, then an opaque longer than 32 bytes (the `O`
//!   included) is `CLIENT_ERROR opaque token too long`. memcached checks the opaque length of
//!   `mg` and `ma` only after doing the operation; here it is refused before, with the same line.
//! - Numbers use memcached's C conversions (see `num`): `T`/`N`/`R` are 32-bit signed
//!   (truncated), `F` 32-bit unsigned (truncated), `C`/`D`/`J` 64-bit unsigned.

use super::{MetaFlags, MetaKind, StoreMode};
use crate::num;

/// Longest opaque token memcached echoes, counting its `O`.
const MAX_OPAQUE: usize = 32;

const E_BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
const E_BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";
const E_DUPLICATE: &[u8] = b"CLIENT_ERROR duplicate flag\r\n";
const E_INVALID: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
const E_DECODING_KEY: &[u8] = b"CLIENT_ERROR error decoding key\r\n";
const E_M_LENGTH: &[u8] = b"CLIENT_ERROR incorrect length for M token\r\n";
const E_INITIAL: &[u8] = b"CLIENT_ERROR invalid numeric initial value\r\n";
const E_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta value\r\n";
const E_INVALID_OR_DUPLICATE: &[u8] = b"CLIENT_ERROR invalid or duplicate flag\r\n";
const E_MS_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ms M token\r\n";
const E_MA_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ma M token\r\n";
const E_OPAQUE: &[u8] = b"CLIENT_ERROR opaque token too long\r\n";

/// The meta flags of one command, interpreted. Each field names its wire flag letter; which ones
/// a command honours is the server's business (memcached accepts the whole set on every meta
/// command and ignores what does not apply, e.g. `v` on `md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaOpts<'a> {
    /// `b`: the key token is base64; see [`crate::request::Meta::decode_key`]. Keys returned
    /// with `k` are then re-encoded and followed by ` b`.
    pub base64: bool,
    /// `c`: return the CAS unique.
    pub return_cas: bool,
    /// `f`: return the client flags.
    pub return_flags: bool,
    /// `h`: return whether the item was fetched before (`h0`/`h1`).
    pub return_hit: bool,
    /// `k`: return the key.
    pub return_key: bool,
    /// `l`: return seconds since last access.
    pub return_last_access: bool,
    /// `O`: opaque token to echo, without its `O` (at most 31 bytes).
    pub opaque: Option<&'a [u8]>,
    /// `q`: quiet: suppress the nominal reply (`EN` for mg, `HD` for ms/md/ma; `NF` for md too).
    pub quiet: bool,
    /// `s`: return the value size.
    pub return_size: bool,
    /// `t`: return the remaining TTL (`-1` for none).
    pub return_ttl: bool,
    /// `v`: return the value (`VA` instead of `HD`).
    pub return_value: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_bump: bool,
    /// `I`: invalidate: md marks stale instead of deleting; ms with CAS may store over a stale item.
    pub invalidate: bool,
    /// `T`: new TTL (memcached exptime rules), truncated to 32 bits as memcached does.
    pub ttl: Option<i64>,
    /// `N`: vivify on miss with this TTL (mg, ma).
    pub vivify: Option<i64>,
    /// `R`: win the recache token when the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `F`: client flags to store (ms).
    pub client_flags: Option<u32>,
    /// `C`: compare this CAS unique.
    pub compare_cas: Option<u64>,
    /// `D`: delta for ma (memcached's default is 1).
    pub delta: Option<u64>,
    /// `J`: initial value for ma autovivify (default 0).
    pub initial: Option<u64>,
    /// `M`: mode letter, as given. Validated only for ms (`E A P R S`) and ma (`I + D -`); see
    /// [`MetaOpts::store_mode`] and [`MetaOpts::incr`].
    pub mode: Option<u8>,
}

impl<'a> MetaOpts<'a> {
    /// The storage operation an `ms` performs: the `M` mode (`E` add, `A` append, `P` prepend,
    /// `R` replace, `S` or none set), where a `C` CAS turns set and replace into `cas`, as
    /// memcached does. Append/prepend/add keep their mode and check `compare_cas` themselves.
    pub fn store_mode(&self) -> StoreMode {
        let mode = match self.mode {
            Some(b'E') => StoreMode::Add,
            Some(b'A') => StoreMode::Append,
            Some(b'P') => StoreMode::Prepend,
            Some(b'R') => StoreMode::Replace,
            _ => StoreMode::Set,
        };
        match mode {
            StoreMode::Set | StoreMode::Replace if self.compare_cas.is_some() => StoreMode::Cas,
            m => m,
        }
    }

    /// Whether an `ma` increments (mode `I`, `+` or none) rather than decrements (`D`, `-`).
    pub fn incr(&self) -> bool {
        !matches!(self.mode, Some(b'D') | Some(b'-'))
    }
}

impl<'a> MetaFlags<'a> {
    /// Interprets the flags of a `kind` command whose key token is `key` (needed to check a
    /// base64 key when `b` is given). `Err` is the complete reply line memcached 1.6.18 sends.
    ///
    /// For `ms` the parser has already done this (a refused `ms` must swallow its data block), so
    /// on a parsed `ms` it cannot fail. For `me` only a first flag of exactly `b` means anything
    /// (and the parser has checked the key); for `mn` nothing does: both never fail.
    pub fn parse(&self, kind: MetaKind, key: &[u8]) -> Result<MetaOpts<'a>, &'static [u8]> {
        match kind {
            MetaKind::Noop => return Ok(MetaOpts::default()),
            MetaKind::Debug => {
                let base64 = self.iter().next() == Some((b'b', &b""[..]));
                return Ok(MetaOpts { base64, ..MetaOpts::default() });
            }
            _ => {}
        }
        let o = self.scan(key).map_err(|e| match kind {
            MetaKind::Delete | MetaKind::Arith => E_INVALID_OR_DUPLICATE,
            _ => e,
        })?;
        match kind {
            MetaKind::Set if !matches!(o.mode, None | Some(b'E' | b'A' | b'P' | b'R' | b'S')) => return Err(E_MS_MODE),
            MetaKind::Arith if !matches!(o.mode, None | Some(b'I' | b'+' | b'D' | b'-')) => return Err(E_MA_MODE),
            _ => {}
        }
        if let Some(op) = o.opaque {
            if op.len() + 1 > MAX_OPAQUE {
                return Err(E_OPAQUE);
            }
        }
        Ok(o)
    }

    /// memcached's `_meta_flag_preparse`: see the module documentation for the error rules.
    fn scan(&self, key: &[u8]) -> Result<MetaOpts<'a>, &'static [u8]> {
        let mut o = MetaOpts::default();
        let mut seen = [false; 127];
        let mut error: Option<&'static [u8]> = None;
        // A bad `F` token marks the scan failed without choosing a message.
        let mut failed = false;
        for (letter, arg) in self.iter() {
            match seen.get_mut(usize::from(letter)) {
                Some(s) if !*s => *s = true,
                _ => return Err(E_DUPLICATE),
            }
            match letter {
                b'b' => {
                    o.base64 = true;
                    if crate::base64::decoded_len(key).is_none() {
                        error = Some(E_DECODING_KEY);
                    }
                }
                b'N' | b'T' | b'R' => match num::strtol(arg) {
                    Some(v) => {
                        let v = Some(i64::from(v));
                        match letter {
                            b'N' => o.vivify = v,
                            b'T' => o.ttl = v,
                            _ => o.recache = v,
                        }
                    }
                    None => error = Some(E_BAD_TOKEN),
                },
                b'C' => match num::strtoull(arg) {
                    Some(v) => o.compare_cas = Some(v),
                    None => error = Some(E_BAD_TOKEN),
                },
                b'F' => match num::strtoul(arg) {
                    Some(v) => o.client_flags = Some(v),
                    None => failed = true,
                },
                b'J' => match num::strtoull(arg) {
                    Some(v) => o.initial = Some(v),
                    None => error = Some(E_INITIAL),
                },
                b'D' => match num::strtoull(arg) {
                    Some(v) => o.delta = Some(v),
                    None => error = Some(E_DELTA),
                },
                b'M' => match arg {
                    [m] => o.mode = Some(*m),
                    _ => error = Some(E_M_LENGTH),
                },
                b'O' => o.opaque = Some(arg),
                b'c' => o.return_cas = true,
                b'f' => o.return_flags = true,
                b'h' => o.return_hit = true,
                b'k' => o.return_key = true,
                b'l' => o.return_last_access = true,
                b'q' => o.quiet = true,
                b's' => o.return_size = true,
                b't' => o.return_ttl = true,
                b'u' => o.no_bump = true,
                b'v' => o.return_value = true,
                b'I' => o.invalidate = true,
                // Proxy routing hints: accepted and ignored by memcached itself.
                b'P' | b'L' => {}
                _ => return Err(E_INVALID),
            }
        }
        match error {
            Some(e) => Err(e),
            None if failed => Err(E_BAD_FORMAT),
            None => Ok(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: MetaKind, key: &[u8], flags: &'static [u8]) -> Result<MetaOpts<'static>, &'static [u8]> {
        MetaFlags(flags).parse(kind, key)
    }

    #[test]
    fn accepted_flags() {
        let o = p(MetaKind::Get, b"YWJj", b"b c f h k l O123 q s t u v I T30 N-1 R5 F7 C9 D2 J3 Mx P L").unwrap();
        assert!(o.base64 && o.return_cas && o.return_flags && o.return_hit && o.return_key);
        assert!(o.return_last_access && o.quiet && o.return_size && o.return_ttl && o.no_bump);
        assert!(o.return_value && o.invalidate);
        assert_eq!(o.opaque, Some(&b"123"[..]));
        assert_eq!((o.ttl, o.vivify, o.recache), (Some(30), Some(-1), Some(5)));
        assert_eq!((o.client_flags, o.compare_cas, o.delta, o.initial), (Some(7), Some(9), Some(2), Some(3)));
        assert_eq!(o.mode, Some(b'x'), "mg does not validate M");
        // memcached: `mg a O` -> `EN O`; the empty opaque is echoed.
        assert_eq!(p(MetaKind::Get, b"a", b"O").unwrap().opaque, Some(&b""[..]));
        // Numbers follow the C conversions: T4294967297 is 1 second.
        assert_eq!(p(MetaKind::Get, b"a", b"T4294967297").unwrap().ttl, Some(1));
    }

    #[test]
    fn errors_as_memcached_words_them() {
        // Each line below is memcached 1.6.18's answer to `mg a <flags>` / `ms zz 1 <flags>` /
        // `md zz <flags>` / `ma n <flags>`.
        use MetaKind::*;
        // (command, key, flags, memcached's reply)
        type Case = (MetaKind, &'static [u8], &'static [u8], &'static [u8]);
        let cases: &[Case] = &[
            (Get, b"a", b"b", E_DECODING_KEY),
            (Get, b"a", b"C", E_BAD_TOKEN),
            (Get, b"a", b"Cx", E_BAD_TOKEN),
            (Get, b"a", b"D", E_DELTA),
            (Get, b"a", b"F", E_BAD_FORMAT),
            (Get, b"a", b"Fx", E_BAD_FORMAT),
            (Get, b"a", b"J", E_INITIAL),
            (Get, b"a", b"M", E_M_LENGTH),
            (Get, b"a", b"N", E_BAD_TOKEN),
            (Get, b"a", b"Rx", E_BAD_TOKEN),
            (Get, b"a", b"Tx", E_BAD_TOKEN),
            (Get, b"a", b"v v", E_DUPLICATE),
            (Get, b"a", b"v T1 T2", E_DUPLICATE),
            (Get, b"a", b"Tx Dx", E_DELTA),
            (Get, b"a", b"Dx Tx", E_BAD_TOKEN),
            (Get, b"a", b"Fx Dx", E_DELTA),
            (Get, b"a", b"Dx Fx", E_DELTA),
            (Get, b"a", b"Dx zz", E_INVALID),
            (Get, b"a", b"Dx v v", E_DUPLICATE),
            (Get, b"a", b"\xff", E_DUPLICATE),
            (Get, b"a", b"\x7f", E_DUPLICATE),
            (Get, b"a", b"1", E_INVALID),
            (Get, b"a", b"x", E_INVALID),
            (Get, b"a", b"O12345678901234567890123456789012", E_OPAQUE),
            (Set, b"zz", b"S1", E_INVALID),
            (Set, b"zz", b"M1", E_MS_MODE),
            (Set, b"zz", b"Mx O123456789012345678901234567890123", E_MS_MODE),
            (Set, b"zz", b"O123456789012345678901234567890123 Mx", E_MS_MODE),
            (Set, b"zz", b"O123456789012345678901234567890123 Zx", E_INVALID),
            (Set, b"zz", b"Tx O123456789012345678901234567890123", E_BAD_TOKEN),
            (Delete, b"zz", b"b", E_INVALID_OR_DUPLICATE),
            (Delete, b"zz", b"C", E_INVALID_OR_DUPLICATE),
            (Delete, b"zz", b"M", E_INVALID_OR_DUPLICATE),
            (Delete, b"zzzz", b"O12345678901234567890123456789012", E_OPAQUE),
            (Arith, b"n", b"a", E_INVALID_OR_DUPLICATE),
            (Arith, b"n", b"Dx", E_INVALID_OR_DUPLICATE),
            (Arith, b"n", b"M1", E_MA_MODE),
            (Arith, b"n", b"Mx O123456789012345678901234567890123", E_MA_MODE),
            (Arith, b"zzzz", b"O12345678901234567890123456789012", E_OPAQUE),
        ];
        for &(kind, key, flags, want) in cases {
            let got = MetaFlags(flags).parse(kind, key);
            assert_eq!(got.err(), Some(want), "{kind:?} {key:?} {}", String::from_utf8_lossy(flags));
        }
    }

    #[test]
    fn accepted_edges() {
        // memcached: `mg a Mx` -> HD, `md zz M1` -> NF, 31-byte opaque echoed, `ma n C1` -> EX.
        assert!(p(MetaKind::Get, b"a", b"Mx").is_ok());
        assert!(p(MetaKind::Delete, b"zz", b"M1").is_ok());
        assert!(p(MetaKind::Get, b"a", b"O1234567890123456789012345678901").is_ok());
        assert!(p(MetaKind::Arith, b"n", b"C1 I q").is_ok());
        assert!(p(MetaKind::Get, b"a", b"").is_ok());
        // Extra spaces between flags are not tokens.
        assert!(p(MetaKind::Get, b"a", b"  v   k ").is_ok());
    }

    #[test]
    fn modes() {
        let mode = |f: &'static [u8]| p(MetaKind::Set, b"a", f).unwrap().store_mode();
        assert_eq!(mode(b""), StoreMode::Set);
        assert_eq!(mode(b"MS"), StoreMode::Set);
        assert_eq!(mode(b"ME"), StoreMode::Add);
        assert_eq!(mode(b"MA"), StoreMode::Append);
        assert_eq!(mode(b"MP"), StoreMode::Prepend);
        assert_eq!(mode(b"MR"), StoreMode::Replace);
        assert_eq!(mode(b"C5"), StoreMode::Cas);
        assert_eq!(mode(b"MR C5"), StoreMode::Cas);
        assert_eq!(mode(b"MA C5"), StoreMode::Append);
        let incr = |f: &'static [u8]| p(MetaKind::Arith, b"a", f).unwrap().incr();
        assert!(incr(b"") && incr(b"MI") && incr(b"M+"));
        assert!(!incr(b"MD") && !incr(b"M-"));
    }

    #[test]
    fn debug_and_noop() {
        assert!(p(MetaKind::Debug, b"YWJj", b"b").unwrap().base64);
        assert!(!p(MetaKind::Debug, b"YWJj", b"v b").unwrap().base64);
        assert!(!p(MetaKind::Debug, b"YWJj", b"bx").unwrap().base64);
        assert_eq!(p(MetaKind::Noop, b"", b"zz zz"), Ok(MetaOpts::default()));
    }
}
