//! Binary codec tests: frames built by hand, the outcomes memcached 1.6.18 gave for the same
//! bytes (quoted where it matters), and property tests for split-point invariance and
//! robustness on arbitrary input.

use super::*;
use proptest::prelude::*;

const L: Limits = Limits { max_item_size: 1024 * 1024, max_key_len: 250, max_line_len: 2048 };

/// A request frame; `body_len` overrides the true length (to make it lie).
fn frame(op: u8, extras: &[u8], key: &[u8], value: &[u8], body_len: Option<u32>) -> Vec<u8> {
    let h = Header {
        opcode: op,
        key_len: key.len() as u16,
        extras_len: extras.len() as u8,
        data_type: 0,
        vbucket: 0,
        body_len: body_len.unwrap_or((extras.len() + key.len() + value.len()) as u32),
        opaque: 0xdead_beef,
        cas: 7,
    };
    let mut out = Vec::new();
    h.encode_request(&mut out);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn complete(buf: &[u8]) -> Command<'_> {
    match parse(buf, &L) {
        Parsed::Complete(req, n) => {
            assert_eq!(n, buf.len());
            assert_eq!(req.header.opaque, 0xdead_beef);
            req.command
        }
        other => panic!("expected a complete request, got {other:?}"),
    }
}

/// A refusal with its key copied out, so tests can build the frame inline.
struct Refused {
    status: Status,
    consumed: usize,
    swallow: usize,
    close: bool,
    before_auth: bool,
    unlink: Option<Vec<u8>>,
}

fn refused(buf: &[u8]) -> Refused {
    match parse(buf, &L) {
        Parsed::Refused(r) => Refused {
            status: r.status,
            consumed: r.consumed,
            swallow: r.swallow,
            close: r.close,
            before_auth: r.before_auth,
            unlink: r.unlink.map(<[u8]>::to_vec),
        },
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn header_round_trip() {
    let f = frame(opcode::GET, b"", b"foo", b"", None);
    let h = Header::decode(&f).expect("24 bytes");
    assert_eq!((h.opcode, h.key_len, h.extras_len, h.body_len, h.opaque, h.cas), (0, 3, 0, 3, 0xdead_beef, 7));
    assert_eq!(Header::decode(&f[..23]), None);
}

#[test]
fn commands() {
    assert_eq!(
        complete(&frame(opcode::GETKQ, b"", b"k", b"", None)),
        Command::Get { key: b"k", with_key: true, touch: None }
    );
    assert_eq!(
        complete(&frame(opcode::GAT, &10u32.to_be_bytes(), b"k", b"", None)),
        Command::Get { key: b"k", with_key: false, touch: Some(10) }
    );
    assert_eq!(
        complete(&frame(opcode::TOUCH, &5u32.to_be_bytes(), b"k", b"", None)),
        Command::Touch { key: b"k", exptime: 5 }
    );
    assert_eq!(
        complete(&frame(opcode::SETQ, &set_extras(9, 100), b"k", b"val", None)),
        Command::Store { kind: StoreKind::Set, key: b"k", flags: 9, exptime: 100, value: b"val" }
    );
    assert_eq!(
        complete(&frame(opcode::PREPEND, b"", b"k", b"v", None)),
        Command::Store { kind: StoreKind::Prepend, key: b"k", flags: 0, exptime: 0, value: b"v" }
    );
    let arith = [1u64.to_be_bytes().as_slice(), &10u64.to_be_bytes(), &0xffff_ffffu32.to_be_bytes()].concat();
    assert_eq!(
        complete(&frame(opcode::DECREMENTQ, &arith, b"n", b"", None)),
        Command::Arith { incr: false, key: b"n", delta: 1, initial: 10, exptime: u32::MAX }
    );
    assert_eq!(complete(&frame(opcode::FLUSH, b"", b"", b"", None)), Command::Flush { delay: 0 });
    assert_eq!(complete(&frame(opcode::FLUSHQ, &3u32.to_be_bytes(), b"", b"", None)), Command::Flush { delay: 3 });
    assert_eq!(complete(&frame(opcode::STAT, b"", b"", b"", None)), Command::Stat { group: b"" });
    assert_eq!(complete(&frame(opcode::STAT, b"", b"items", b"", None)), Command::Stat { group: b"items" });
    assert_eq!(
        complete(&frame(opcode::SASL_AUTH, b"", b"PLAIN", b"\0u\0p", None)),
        Command::SaslAuth { step: false, mech: b"PLAIN", data: b"\0u\0p" }
    );
    assert_eq!(complete(&frame(opcode::NOOP, b"", b"", b"", None)), Command::Noop);
    assert_eq!(complete(&frame(opcode::QUITQ, b"", b"", b"", None)), Command::Quit);
}

#[test]
fn quiet_variants() {
    let quiet = [0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24];
    for op in 0..=255u8 {
        assert_eq!(is_quiet(op), quiet.contains(&op), "opcode {op:#x}");
    }
}

#[test]
fn malformed_requests() {
    // memcached: keylen + extlen > bodylen -> UNKNOWN_COMMAND, then the connection closes.
    let r = refused(&frame(opcode::GET, b"", b"foo", b"", Some(2)));
    assert_eq!((r.status, r.close, r.before_auth, r.consumed), (Status::UnknownCommand, true, true, 24));
    // Wrong shapes -> EINVAL ("Invalid arguments") and close.
    for f in [
        frame(opcode::GET, b"abcd", b"foo", b"", None),
        frame(opcode::GET, b"", b"", b"", None),
        frame(opcode::GET, b"", b"k", b"v", None),
        frame(opcode::SET, b"", b"k", b"v", None),
        frame(opcode::SET, &set_extras(0, 0), b"", b"v", None),
        frame(opcode::INCREMENT, &[0; 8], b"k", b"", None),
        frame(opcode::VERSION, b"", b"k", b"", None),
        frame(opcode::NOOP, b"", b"", b"x", None),
        frame(opcode::FLUSH, &[0; 3], b"", b"", None),
        frame(opcode::TOUCH, b"", b"k", b"", None),
        frame(opcode::SASL_AUTH, b"", b"", b"data", None),
        frame(opcode::GET, b"", &[b'k'; 251], b"", None),
    ] {
        let r = refused(&f);
        assert_eq!((r.status, r.close, r.before_auth, r.swallow), (Status::Einval, true, false, 0), "{f:?}");
    }
    // Unknown opcodes: UNKNOWN_COMMAND, body swallowed, connection kept.
    let r = refused(&frame(0x50, b"", b"x", b"yz", None));
    assert_eq!((r.status, r.close, r.consumed, r.swallow), (Status::UnknownCommand, false, 24, 3));
    assert_eq!(Status::UnknownCommand.message(), b"Unknown command");
    // Not a request.
    assert_eq!(parse(b"get foo\r\n", &L), Parsed::BadMagic);
    assert_eq!(parse(&[0x81; 30], &L), Parsed::BadMagic);
}

#[test]
fn oversized_values_are_refused_from_the_header() {
    // A header announcing 4 GiB: refused once the key is there, nothing more buffered.
    let mut f = frame(opcode::SET, &set_extras(0, 0), b"big", b"", Some(u32::MAX));
    let r = refused(&f);
    assert_eq!((r.status, r.close, r.consumed), (Status::E2big, false, 24 + 8 + 3));
    assert_eq!(r.swallow, u32::MAX as usize - 11);
    assert_eq!(r.unlink.as_deref(), Some(&b"big"[..]));
    // Before the key has arrived it is incomplete (bounded: at most 24 + 255 + 65535 bytes).
    f.truncate(30);
    assert_eq!(parse(&f, &L), Parsed::Incomplete);
    // memcached's exact limit with -I 1m and key "a": 1048516 bytes fit, one more does not
    // (1048512 with non-zero flags), as in the text protocol.
    let at = |flags: u32, n: u32| frame(opcode::ADD, &set_extras(flags, 0), b"a", b"", Some(9 + n));
    assert_eq!(parse(&at(0, 1048516), &L), Parsed::Incomplete);
    assert_eq!(refused(&at(0, 1048517)).status, Status::E2big);
    assert_eq!(refused(&at(0, 1048517)).unlink, None, "only SET unlinks");
    assert_eq!(parse(&at(1, 1048512), &L), Parsed::Incomplete);
    assert_eq!(refused(&at(1, 1048513)).status, Status::E2big);
    let r = refused(&frame(opcode::APPENDQ, b"", b"a", b"", Some(1 + 1048517)));
    assert_eq!((r.status, r.swallow), (Status::E2big, 1048517));
    // SASL: long mechanism -> EINVAL, oversized data -> ENOMEM; both swallow and stay open.
    let r = refused(&frame(opcode::SASL_AUTH, b"", &[b'P'; 33], b"abc", None));
    assert_eq!((r.status, r.close, r.consumed, r.swallow), (Status::Einval, false, 24 + 33, 3));
    let r = refused(&frame(opcode::SASL_STEP, b"", b"PLAIN", b"", Some(5 + 2_000_000)));
    assert_eq!((r.status, r.close, r.swallow), (Status::Enomem, false, 2_000_000));
}

#[test]
fn responses() {
    // memcached 1.6.18's answer to a GET miss with opaque 7: "Not found", CAS 0.
    let h = Header::decode(&frame(opcode::GET, b"", b"foo", b"", None)).expect("header");
    let mut out = Vec::new();
    error(&mut out, &Header { opaque: 7, ..h }, Status::KeyEnoent);
    let mut want = vec![0x81, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(b"Not found");
    assert_eq!(out, want);
    // A GETK hit: flags as 4 bytes of extras, then key, then value; the CAS in the header.
    out.clear();
    response(&mut out, opcode::GETK, Status::NoError, 9, 1, &5u32.to_be_bytes(), b"foo", b"bar");
    let mut want = vec![0x81, 0x0c, 0, 3, 4, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5];
    want.extend_from_slice(b"foobar");
    assert_eq!(out, want);
    for (s, code) in [
        (Status::KeyEexists, 2u16),
        (Status::E2big, 3),
        (Status::Einval, 4),
        (Status::NotStored, 5),
        (Status::DeltaBadval, 6),
        (Status::AuthError, 0x20),
        (Status::AuthContinue, 0x21),
        (Status::UnknownCommand, 0x81),
        (Status::Enomem, 0x82),
    ] {
        assert_eq!(s as u16, code);
    }
}

fn any_request() -> impl Strategy<Value = Vec<u8>> {
    let key = proptest::collection::vec(any::<u8>(), 1..20);
    let value = proptest::collection::vec(any::<u8>(), 0..40);
    (
        prop_oneof![
            Just((opcode::GET, 0usize, false)),
            Just((opcode::GETKQ, 0, false)),
            Just((opcode::SET, 8, true)),
            Just((opcode::ADDQ, 8, true)),
            Just((opcode::APPEND, 0, true)),
            Just((opcode::INCREMENT, 20, false)),
            Just((opcode::GAT, 4, false)),
            Just((opcode::DELETE, 0, false)),
            Just((opcode::SASL_AUTH, 0, true)),
        ],
        key,
        value,
        any::<[u8; 20]>(),
    )
        .prop_map(|((op, ext, takes_value), key, value, extras)| {
            let value = if takes_value { value } else { Vec::new() };
            frame(op, &extras[..ext], &key, &value, None)
        })
}

proptest! {
    /// Cut anywhere, a request is incomplete until its last byte, then parses the same.
    #[test]
    fn any_split_point(reqs in proptest::collection::vec(any_request(), 1..4), cut in any::<prop::sample::Index>()) {
        let stream: Vec<u8> = reqs.concat();
        let whole: Vec<_> = {
            let mut v = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                match parse(&stream[at..], &L) {
                    Parsed::Complete(r, n) => { v.push((r, at, n)); at += n; }
                    other => panic!("{other:?}"),
                }
            }
            v
        };
        prop_assert_eq!(whole.len(), reqs.len());
        let (first, at, n) = whole[0];
        let cut = cut.index(n);
        prop_assert_eq!(at, 0);
        prop_assert_eq!(parse(&stream[..cut], &L), Parsed::Incomplete);
        prop_assert_eq!(parse(&stream[..n], &L), Parsed::Complete(first, n));
    }

    /// Arbitrary bytes never panic, and every outcome stays within the buffer.
    #[test]
    fn random_bytes(mut data in proptest::collection::vec(any::<u8>(), 0..200), magic in any::<bool>()) {
        if magic && !data.is_empty() {
            data[0] = REQUEST_MAGIC;
        }
        let small = Limits { max_item_size: 64, max_key_len: 8, max_line_len: 64 };
        for limits in [&L, &small] {
            match parse(&data, limits) {
                Parsed::Complete(_, n) => prop_assert!(n >= HEADER_LEN && n <= data.len()),
                Parsed::Refused(r) => prop_assert!(r.consumed >= HEADER_LEN && r.consumed <= data.len()),
                Parsed::Incomplete | Parsed::BadMagic => {}
            }
        }
    }
}
