//! Request parser tests: a table of inputs whose outcome was observed on redis-server 7.0.15,
//! then property tests (split points, random bytes).

use super::*;
use proptest::prelude::*;

/// What `parse_request` must return for one input.
#[derive(Debug)]
enum Want {
    /// Complete after this many bytes, with these arguments.
    Done(usize, &'static [&'static [u8]]),
    /// Incomplete.
    Wait,
    /// A protocol error with exactly this message (as bytes, as sent after `-ERR `).
    Fail(&'static [u8]),
}
use Want::*;

/// One row: the bytes, the outcome, and what redis-server 7.0.15 did with them (sent on a fresh
/// connection to `redis-server --save '' --appendonly no`; "closed" means it closed the
/// connection after the error, which is this crate's caller's job).
struct Case {
    input: &'static [u8],
    want: Want,
    seen: &'static str,
}

const INVALID_MBULK: &[u8] = b"Protocol error: invalid multibulk length";
const INVALID_BULK: &[u8] = b"Protocol error: invalid bulk length";
const UNBALANCED: &[u8] = b"Protocol error: unbalanced quotes in request";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- multibulk count ---
    Case { input: b"*-1\r\n", want: Done(5, &[]), seen: "`*-1\\r\\nPING\\r\\n` -> +PONG: empty command skipped" },
    Case { input: b"*0\r\n", want: Done(4, &[]), seen: "`*0\\r\\nPING\\r\\n` -> +PONG" },
    Case { input: b"*-5\r\n", want: Done(5, &[]), seen: "`*-5\\r\\nPING\\r\\n` -> +PONG: any count <= 0 is empty" },
    Case { input: b"*-0\r\n", want: Fail(INVALID_MBULK), seen: "string2ll refuses -0; closed" },
    Case { input: b"*\r\n", want: Fail(INVALID_MBULK), seen: "empty count; closed" },
    Case { input: b"*x\r\n", want: Fail(INVALID_MBULK), seen: "closed" },
    Case { input: b"*1x\r\n", want: Fail(INVALID_MBULK), seen: "closed" },
    Case { input: b"*01\r\n$4\r\nPING\r\n", want: Fail(INVALID_MBULK), seen: "leading zero refused; closed" },
    Case { input: b"*+1\r\n$4\r\nPING\r\n", want: Fail(INVALID_MBULK), seen: "plus sign refused; closed" },
    Case { input: b"*000000000000000000001\r\n", want: Fail(INVALID_MBULK), seen: "21 characters; closed" },
    Case { input: b"*2000000\r\n", want: Wait, seen: "waits: 7.0 has no 1M multibulk cap" },
    Case { input: b"*2147483647\r\n", want: Wait, seen: "waits: INT_MAX is allowed" },
    Case { input: b"*2147483648\r\n", want: Fail(INVALID_MBULK), seen: "INT_MAX + 1; closed" },
    Case { input: b"*1\n$4\r\nPING\r\n", want: Fail(INVALID_MBULK), seen: "a header ends at \\r only, so the count text is `1\\n$4`; closed" },
    Case { input: b"*1\rX$4\r\nPING\r\n", want: Done(14, &[b"PING"]), seen: "+PONG: the byte after the header's \\r is not checked" },
    Case { input: b"*1\r", want: Wait, seen: "waits for the byte after \\r" },
    // --- bulk headers ---
    Case { input: b"*1\r\n$-1\r\n", want: Fail(INVALID_BULK), seen: "no null bulk in requests; closed" },
    Case { input: b"*1\r\n$-0\r\n", want: Fail(INVALID_BULK), seen: "closed" },
    Case { input: b"*1\r\n$x\r\n", want: Fail(INVALID_BULK), seen: "closed" },
    Case { input: b"*1\r\n$\r\n", want: Fail(INVALID_BULK), seen: "closed" },
    Case { input: b"*1\r\n$99999999999999999999\r\n", want: Fail(INVALID_BULK), seen: "overflows i64; closed" },
    Case { input: b"*1\r\n$536870912\r\n", want: Wait, seen: "exactly proto-max-bulk-len: waits for the body" },
    Case { input: b"*1\r\n$536870913\r\n", want: Fail(INVALID_BULK), seen: "refused before any body arrives; closed" },
    Case { input: b"*1\r\n$4\nPING\r\n", want: Fail(INVALID_BULK), seen: "length text `4\\nPING`; closed" },
    Case { input: b"*1\r\nx\r\n", want: Fail(b"Protocol error: expected '$', got 'x'"), seen: "closed" },
    Case { input: b"*1\r\nxyz", want: Wait, seen: "the type byte is judged only once the line's \\r is buffered" },
    Case { input: b"*1\r\n\r\n", want: Fail(b"Protocol error: expected '$', got ' '"), seen: "the \\r is quoted, then turned into a space; closed" },
    Case { input: b"*2\r\n$4\r\nECHO\r\n+hi\r\n", want: Fail(b"Protocol error: expected '$', got '+'"), seen: "closed" },
    Case { input: b"*1\r\n\xff\r\n", want: Fail(b"Protocol error: expected '$', got '\xff'"), seen: "the raw byte is sent back; closed" },
    Case { input: b"*1\r\n\x00\r\n", want: Wait, seen: "strchr stops at the NUL: the line looks unterminated" },
    Case { input: b"*1\r\n$1\r\n", want: Wait, seen: "waits for the body" },
    // --- bulk bodies ---
    Case { input: b"*1\r\n$4\r\nPING", want: Wait, seen: "waits" },
    Case { input: b"*1\r\n$4\r\nPING\r", want: Wait, seen: "waits for both bytes after the body" },
    Case { input: b"*1\r\n$4\r\nPINGxx+\r\n", want: Done(14, &[b"PING"]), seen: "+PONG, then `+` runs as an inline command: the 2 bytes after a body are skipped unchecked" },
    Case { input: b"*1\r\n$4\r\nPINGxxPING\r\n", want: Done(14, &[b"PING"]), seen: "+PONG +PONG" },
    Case { input: b"*1\r\n$0\r\n\r\n", want: Done(10, &[b""]), seen: "unknown command ''" },
    Case { input: b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", want: Done(26, &[b"SET", b"k", b""]), seen: "+OK" },
    // --- inline ---
    Case { input: b"PING\n", want: Done(5, &[b"PING"]), seen: "+PONG: \\n alone ends an inline line" },
    Case { input: b"\r\n", want: Done(2, &[]), seen: "`\\r\\n\\nPING\\r\\n` -> +PONG only" },
    Case { input: b"\n", want: Done(1, &[]), seen: "as above" },
    Case { input: b"   \t \r\n", want: Done(7, &[]), seen: "`   \\t \\r\\nPING\\r\\n` -> +PONG only" },
    Case { input: b"PING\r\r\n", want: Done(7, &[b"PING"]), seen: "+PONG: one \\r is dropped, the other separates" },
    Case { input: b"PING\x00\r\n", want: Wait, seen: "strchr stops at the NUL: no newline seen" },
    Case { input: b"$3\r\n", want: Done(4, &[b"$3"]), seen: "unknown command '$3': only '*' selects multibulk" },
    Case { input: b"ECHO a\rb\r\n", want: Done(10, &[b"ECHO", b"a", b"b"]), seen: "wrong number of arguments for 'echo'" },
    Case { input: b"ECHO \x0ba\r\n", want: Done(9, &[b"ECHO", b"a"]), seen: "$1 a: \\v is skipped between arguments" },
    Case { input: b"ECHO a\x0bb\r\n", want: Done(10, &[b"ECHO", b"a\x0bb"]), seen: "$3: but does not end one" },
    Case { input: b"ECHO\x0ca\r\n", want: Done(8, &[b"ECHO\x0ca"]), seen: "unknown command 'ECHO\\fa'" },
    Case { input: b"ECHO \xff\r\n", want: Done(8, &[b"ECHO", b"\xff"]), seen: "$1 \\xff" },
    Case { input: b"ECHO \"a\\x41\\n\"\r\n", want: Done(16, &[b"ECHO", b"aA\n"]), seen: "$3 aA\\n" },
    Case { input: b"ECHO \"\\xFf\\x00\"\r\n", want: Done(17, &[b"ECHO", b"\xff\x00"]), seen: "$2 ff 00: hex digits of either case" },
    Case { input: b"ECHO \"\\xzz\"\r\n", want: Done(13, &[b"ECHO", b"xzz"]), seen: "$3 xzz: \\x without two hex digits is x" },
    Case { input: b"ECHO \"\\xA\"\r\n", want: Done(12, &[b"ECHO", b"xA"]), seen: "$2 xA" },
    Case { input: b"ECHO \"\\q\\\\\\\"\\b\\a\\t\\r\"\r\n", want: Done(23, &[b"ECHO", b"q\\\"\x08\x07\t\r"]), seen: "$7" },
    Case { input: b"ECHO \"a\rb\"\r\n", want: Done(12, &[b"ECHO", b"a\rb"]), seen: "$3: a raw \\r inside quotes is kept" },
    Case { input: b"ECHO \"\"\r\n", want: Done(9, &[b"ECHO", b""]), seen: "$0" },
    Case { input: b"ECHO \"a\"\x0b\r\n", want: Done(11, &[b"ECHO", b"a"]), seen: "$1: \\v may follow a closing quote" },
    Case { input: b"ECHO 'a\\'b'\r\n", want: Done(13, &[b"ECHO", b"a'b"]), seen: "$3 a'b" },
    Case { input: b"ECHO 'a\\nb'\r\n", want: Done(13, &[b"ECHO", b"a\\nb"]), seen: "$4: no other escapes in single quotes" },
    Case { input: b"ECHO 'a'\t\r\n", want: Done(11, &[b"ECHO", b"a"]), seen: "$1" },
    Case { input: b"ECHO a\"b c\" d\r\n", want: Done(15, &[b"ECHO", b"ab c", b"d"]), seen: "wrong number of arguments: a quote may open mid-word" },
    Case { input: b"ECHO \"abc\"x\r\n", want: Fail(UNBALANCED), seen: "closing quote not followed by a space; closed" },
    Case { input: b"ECHO a\"b c\"d\r\n", want: Fail(UNBALANCED), seen: "closed" },
    Case { input: b"ECHO 'a'b\r\n", want: Fail(UNBALANCED), seen: "closed" },
    Case { input: b"ECHO \"abc\r\n", want: Fail(UNBALANCED), seen: "unterminated; closed" },
    Case { input: b"ECHO 'ab\r\n", want: Fail(UNBALANCED), seen: "unterminated; closed" },
    Case { input: b"ECHO \"a\\\"\r\n", want: Fail(UNBALANCED), seen: "escaped quote leaves it open; closed" },
];

fn check(case_input: &[u8], want: &Want, seen: &str, result: Result<Status, ProtocolError>, args: &Args) {
    let shown = String::from_utf8_lossy(case_input);
    match (want, result) {
        (Done(n, want_args), Ok(Status::Complete(got))) => {
            assert_eq!(*n, got, "{shown:?} ({seen})");
            let got_args: Vec<&[u8]> = args.iter(case_input).collect();
            assert_eq!(*want_args, &got_args[..], "{shown:?} ({seen})");
        }
        (Wait, Ok(Status::Incomplete)) => {}
        (Fail(msg), Err(e)) => {
            assert_eq!(String::from_utf8_lossy(msg), String::from_utf8_lossy(e.as_bytes()), "{shown:?} ({seen})")
        }
        (want, got) => panic!("{shown:?} ({seen}): want {want:?}, got {got:?}"),
    }
}

#[test]
fn table_matches_redis_server_7_0_15() {
    let limits = Limits::default();
    let mut args = Args::new();
    for case in CASES {
        let result = parse_request(case.input, &limits, &mut args);
        check(case.input, &case.want, case.seen, result, &args);
    }
}

/// Every case must give the same verdict with trailing pipelined bytes after it: the parser
/// looks at one command only.
#[test]
fn table_is_unchanged_by_what_follows() {
    let limits = Limits::default();
    let mut args = Args::new();
    for case in CASES {
        if let Done(..) | Fail(_) = case.want {
            let mut input = case.input.to_vec();
            input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            let result = parse_request(&input, &limits, &mut args);
            check(&input, &case.want, case.seen, result, &args);
        }
    }
}

/// The "too big" errors: redis compares everything buffered from the start of the line with
/// 64 KiB, and only when no terminator was found.
#[test]
fn too_big_lines_match_redis_server_7_0_15() {
    const K: usize = 64 * 1024;
    let limits = Limits::default();
    let mut args = Args::new();
    let run = |input: Vec<u8>, args: &mut Args| parse_request(&input, &limits, args);
    let err = |r: Result<Status, ProtocolError>| r.map_err(|e| e.message().to_string());

    // 65536 bytes of 'a' wait; 65537 -> too big inline request, closed.
    assert_eq!(err(run(vec![b'a'; K], &mut args)), Ok(Status::Incomplete));
    assert_eq!(err(run(vec![b'a'; K + 1], &mut args)), Err("Protocol error: too big inline request".into()));
    // An inline line of 70005 bytes sent at once is executed (redis got it in few enough reads
    // that the newline was there when it looked); this parser sees the whole buffer, so any line
    // whose newline is buffered is accepted.
    let mut long = b"ECHO ".to_vec();
    long.extend(std::iter::repeat(b'a').take(70000));
    long.extend_from_slice(b"\r\n");
    assert_eq!(err(run(long.clone(), &mut args)), Ok(Status::Complete(long.len())));
    // '*' and 65535 digits wait; one more -> too big mbulk count string, closed.
    let mut hdr = vec![b'*'];
    hdr.extend(std::iter::repeat(b'1').take(K - 1));
    assert_eq!(err(run(hdr.clone(), &mut args)), Ok(Status::Incomplete));
    hdr.push(b'1');
    assert_eq!(err(run(hdr, &mut args)), Err("Protocol error: too big mbulk count string".into()));
    // "*1\r\n$" and 65535 digits wait; 65536 digits -> too big bulk count string, closed.
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(std::iter::repeat(b'1').take(K - 1));
    assert_eq!(err(run(bulk.clone(), &mut args)), Ok(Status::Incomplete));
    bulk.push(b'1');
    assert_eq!(err(run(bulk, &mut args)), Err("Protocol error: too big bulk count string".into()));
    // A NUL before the terminator hides it, so these end as "too big" once 64 KiB follow.
    for (head, msg) in [
        (&b"*1\x00\r\n"[..], "Protocol error: too big mbulk count string"),
        (b"*1\r\n$1\x00\r\n", "Protocol error: too big bulk count string"),
        (b"PING\x00\r\n", "Protocol error: too big inline request"),
    ] {
        let mut input = head.to_vec();
        input.extend(std::iter::repeat(b'a').take(K));
        assert_eq!(err(run(input, &mut args)), Err(msg.into()), "{head:?}");
    }
}

/// With `requirepass` set, before AUTH: `*11` -> unauthenticated multibulk length (closed), `*10`
/// waits, `$16385` -> unauthenticated bulk length (closed), `$16384` waits, `$-1` is still an
/// invalid bulk length and `*2147483648` still an invalid multibulk length.
#[test]
fn unauthenticated_bounds_match_redis_server_7_0_15() {
    let limits = Limits::default();
    let mut args = Args::new();
    let mut run =
        |input: &[u8]| parse_request_unauthenticated(input, &limits, &mut args).map_err(|e| e.message().to_string());
    assert_eq!(run(b"*11\r\n"), Err("Protocol error: unauthenticated multibulk length".into()));
    assert_eq!(run(b"*10\r\n"), Ok(Status::Incomplete));
    assert_eq!(run(b"*-1\r\n"), Ok(Status::Complete(5)));
    assert_eq!(run(b"*1\r\n$16385\r\n"), Err("Protocol error: unauthenticated bulk length".into()));
    assert_eq!(run(b"*1\r\n$16384\r\n"), Ok(Status::Incomplete));
    assert_eq!(run(b"*1\r\n$-1\r\n"), Err("Protocol error: invalid bulk length".into()));
    assert_eq!(run(b"*2147483648\r\n"), Err("Protocol error: invalid multibulk length".into()));
    assert_eq!(run(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"), Ok(Status::Complete(22)));
}

#[test]
fn configured_limits_are_honoured() {
    let limits = Limits { max_bulk_len: 3, max_multibulk_len: 2, max_inline_len: 8 };
    let mut args = Args::new();
    let mut run = |input: &[u8]| parse_request(input, &limits, &mut args).map_err(|e| e.message().to_string());
    assert_eq!(run(b"*1\r\n$3\r\nfoo\r\n"), Ok(Status::Complete(13)));
    assert_eq!(run(b"*1\r\n$4\r\n"), Err("Protocol error: invalid bulk length".into()));
    assert_eq!(run(b"*2\r\n"), Ok(Status::Incomplete));
    assert_eq!(run(b"*3\r\n"), Err("Protocol error: invalid multibulk length".into()));
    assert_eq!(run(b"GET abcd"), Ok(Status::Incomplete));
    assert_eq!(run(b"GET abcde"), Err("Protocol error: too big inline request".into()));
    // usize::MAX as a bound must not overflow the body arithmetic.
    let huge = Limits { max_bulk_len: usize::MAX, ..Limits::default() };
    let r = parse_request(b"*1\r\n$9223372036854775807\r\n", &huge, &mut Args::new());
    assert!(matches!(r, Ok(Status::Incomplete) | Err(_)));
}

#[test]
fn plain_words_are_spans_and_rewritten_words_are_owned() {
    let mut args = Args::new();
    let buf = b"SET \"k 1\" 'v' a\"b\"\r\n";
    assert_eq!(parse_request(buf, &Limits::default(), &mut args), Ok(Status::Complete(buf.len())));
    let got: Vec<&[u8]> = args.iter(buf).collect();
    assert_eq!(got, [&b"SET"[..], b"k 1", b"v", b"ab"]);
    let in_scratch: Vec<bool> = args.spans.iter().map(|s| s.in_scratch).collect();
    assert_eq!(in_scratch, [false, false, false, true]);
}

#[test]
fn string2ll_matches_redis() {
    assert_eq!(string2ll(b"0"), Some(0));
    assert_eq!(string2ll(b"-1"), Some(-1));
    assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
    for bad in [&b""[..], b"-", b"-0", b"00", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"] {
        assert_eq!(string2ll(bad), None, "{bad:?}");
    }
}

#[test]
fn protocol_error_text() {
    let e = ProtocolError::new("Protocol error: a\r\nb");
    assert_eq!(e.message(), "Protocol error: a  b");
    assert_eq!(e.to_string(), e.message());
    assert_eq!(e.as_bytes(), e.message().as_bytes());
}

// --- properties ---

/// One command as a client would send it, and the arguments it must parse to.
#[derive(Debug, Clone)]
struct Command {
    wire: Vec<u8>,
    args: Vec<Vec<u8>>,
}

fn multibulk() -> impl Strategy<Value = Command> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..6).prop_map(|args| {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        Command { wire, args }
    })
}

/// An inline word and its wire form: bare, double-quoted with escapes, or single-quoted.
fn inline_word() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let bare = "[a-zA-Z0-9_:.$+*-]{1,8}".prop_map(|s| (s.clone().into_bytes(), s.into_bytes()));
    let double = prop::collection::vec(any::<u8>(), 0..8).prop_map(|raw| {
        let mut wire = vec![b'"'];
        for &b in &raw {
            match b {
                b'"' => wire.extend_from_slice(b"\\\""),
                b'\\' => wire.extend_from_slice(b"\\\\"),
                b'\n' => wire.extend_from_slice(b"\\n"),
                0x20..=0x7e => wire.push(b),
                _ => wire.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        wire.push(b'"');
        (raw, wire)
    });
    let single = "[a-z ']{0,6}".prop_map(|s| {
        let raw = s.clone().into_bytes();
        let mut wire = vec![b'\''];
        for &b in &raw {
            if b == b'\'' {
                wire.extend_from_slice(b"\\'");
            } else {
                wire.push(b);
            }
        }
        wire.push(b'\'');
        (raw, wire)
    });
    prop_oneof![3 => bare, 1 => double, 1 => single]
}

fn inline() -> impl Strategy<Value = Command> {
    ("[A-Za-z][A-Za-z0-9]{0,6}", prop::collection::vec(inline_word(), 0..4), "[ \t]{1,3}", prop::bool::ANY).prop_map(
        |(name, words, sep, crlf)| {
            let mut wire = name.clone().into_bytes();
            let mut args = vec![name.into_bytes()];
            for (raw, word) in words {
                wire.extend_from_slice(sep.as_bytes());
                wire.extend_from_slice(&word);
                args.push(raw);
            }
            wire.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            Command { wire, args }
        },
    )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![3 => multibulk(), 2 => inline(), 1 => Just(Command { wire: b"\r\n".to_vec(), args: vec![] })]
}

/// Parses every complete command at the front of `buf`; errors fail the test.
fn parse_all(buf: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, TestCaseError> {
    let limits = Limits::default();
    let mut args = Args::new();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        match parse_request(&buf[pos..], &limits, &mut args) {
            Ok(Status::Complete(n)) => {
                prop_assert!(n > 0);
                out.push(args.iter(&buf[pos..]).map(<[u8]>::to_vec).collect());
                pos += n;
            }
            Ok(Status::Incomplete) => return Ok(out),
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e} at {pos}"))),
        }
    }
}

proptest! {
    /// A stream of valid commands parses back to its commands, and any prefix of it gives the
    /// first commands then Incomplete, never an error: a read boundary changes nothing.
    #[test]
    fn any_split_point_gives_a_prefix_of_the_commands(
        commands in prop::collection::vec(command(), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let wire: Vec<u8> = commands.iter().flat_map(|c| c.wire.iter().copied()).collect();
        let want: Vec<Vec<Vec<u8>>> = commands.iter().map(|c| c.args.clone()).collect();
        prop_assert_eq!(&parse_all(&wire)?, &want);
        let cut = cut.index(wire.len() + 1);
        let got = parse_all(&wire[..cut])?;
        prop_assert!(got.len() <= want.len());
        prop_assert_eq!(&got[..], &want[..got.len()]);
    }

    /// No input panics, and every Complete consumes at least one byte and stays in the buffer.
    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits { max_inline_len: 64, ..Limits::default() };
        let mut args = Args::new();
        let mut pos = 0;
        while let Ok(Status::Complete(n)) = parse_request(&buf[pos..], &limits, &mut args) {
            prop_assert!(n > 0 && pos + n <= buf.len());
            for a in args.iter(&buf[pos..]) {
                prop_assert!(a.len() <= buf.len());
            }
            pos += n;
        }
        let _ = parse_request_unauthenticated(&buf, &limits, &mut args);
    }

    /// Random bytes drawn from the protocol's own alphabet reach the deeper branches.
    #[test]
    fn protocol_shaped_bytes_never_panic(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                &b"*"[..], b"$", b"\r\n", b"\r", b"\n", b"1", b"2", b"-1", b"0", b"10", b"\"",
                b"'", b"\\", b"\\x4", b"\\x41", b" ", b"\t", b"a", b"\x00", b"\x0b",
            ]),
            0..40,
        )
    ) {
        let buf: Vec<u8> = parts.concat();
        let limits = Limits { max_inline_len: 16, max_bulk_len: 8, max_multibulk_len: 4 };
        let mut args = Args::new();
        let mut pos = 0;
        while let Ok(Status::Complete(n)) = parse_request(&buf[pos..], &limits, &mut args) {
            prop_assert!(n > 0 && pos + n <= buf.len());
            pos += n;
        }
    }
}
