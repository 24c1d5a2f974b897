//! Value parser and encoder tests: frames redis-server 7.0.15 sends, malformed frames, and
//! round-trip / no-panic properties.

use super::*;
use proptest::prelude::*;

fn parse_all(buf: &[u8]) -> Value {
    match parse_value(buf) {
        Ok(Some((v, n))) if n == buf.len() => v,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn bulk(s: &str) -> Value {
    Value::bulk(s)
}

/// Replies of redis-server 7.0.15 to `DEBUG PROTOCOL <type>` (RESP3 unless marked) and a few
/// ordinary commands; each parses to the value and encodes back to the same bytes.
#[test]
#[allow(clippy::approx_constant)] // 3.141 is the double DEBUG PROTOCOL sends, not a stray pi.
fn frames_sent_by_redis_server_7_0_15() {
    let cases: Vec<(&[u8], Value)> = vec![
        (b"$11\r\nHello World\r\n", bulk("Hello World")),
        (b":12345\r\n", Value::Integer(12345)),
        (b",3.141\r\n", Value::Double(3.141)),
        (b"(1234567999999999999999999999999999999\r\n", Value::BigNumber(b"1234567999999999999999999999999999999".to_vec())),
        (b"*3\r\n:0\r\n:1\r\n:2\r\n", Value::Array((0..3).map(Value::Integer).collect())),
        (b"~3\r\n:0\r\n:1\r\n:2\r\n", Value::Set((0..3).map(Value::Integer).collect())),
        (
            b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
            Value::Map((0..3).map(|i| (Value::Integer(i), Value::Boolean(i == 1))).collect()),
        ),
        (
            b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
            Value::Attribute {
                attributes: vec![(
                    bulk("key-popularity"),
                    Value::Array(vec![bulk("key:123"), Value::Integer(90)]),
                )],
                value: Box::new(bulk("Some real reply following the attribute")),
            },
        ),
        (
            b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n",
            Value::Push(vec![bulk("server-cpu-usage"), Value::Integer(42)]),
        ),
        (
            b"=29\r\ntxt:This is a verbatim\nstring\r\n",
            Value::Verbatim { format: *b"txt", text: b"This is a verbatim\nstring".to_vec() },
        ),
        (b"#t\r\n", Value::Boolean(true)),
        (b"#f\r\n", Value::Boolean(false)),
        (b"$-1\r\n", Value::Null),
        (b"*-1\r\n", Value::NullArray),
        (b"+OK\r\n", Value::simple("OK")),
        (b"-ERR Protocol error: invalid bulk length\r\n", Value::Error(b"ERR Protocol error: invalid bulk length".to_vec())),
        (b",0.10000000000000001\r\n", Value::Double(0.1)),
        (b",inf\r\n", Value::Double(f64::INFINITY)),
        (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
        (b"!21\r\nSYNTAX invalid syntax\r\n", Value::BulkError(b"SYNTAX invalid syntax".to_vec())),
        (b"*0\r\n", Value::Array(vec![])),
        (b"$0\r\n\r\n", bulk("")),
    ];
    for (wire, want) in cases {
        assert_eq!(parse_all(wire), want, "{:?}", String::from_utf8_lossy(wire));
        let mut out = Vec::new();
        want.encode(&mut out);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(wire));
    }
    // RESP3's null is read as the same Null, and written back in RESP2 form.
    assert_eq!(parse_all(b"_\r\n"), Value::Null);
}

#[test]
fn every_proper_prefix_is_incomplete() {
    let wire: &[u8] = b"*3\r\n%1\r\n+a\r\n,1.5\r\n|1\r\n:1\r\n:2\r\n=6\r\ntxt:ab\r\n$-1\r\n";
    assert!(matches!(parse_value(wire), Ok(Some((_, n))) if n == wire.len()));
    for cut in 0..wire.len() {
        assert_eq!(parse_value(&wire[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn malformed_frames_are_errors() {
    let bad: &[&[u8]] = &[
        b"?\r\n",
        b"$-2\r\n",
        b"*-2\r\n",
        b"%-1\r\n",
        b"!-1\r\n",
        b"$x\r\n",
        b"$3\r\nabcde",
        b":12a\r\n",
        b":99999999999999999999\r\n",
        b"#x\r\n",
        b"_x\r\n",
        b",\r\n",
        b",abc\r\n",
        b"(12a\r\n",
        b"(\r\n",
        b"=3\r\nabc\r\n",
        b"=4\r\nabcd\r\n",
        b"$?\r\n",
        b"*?\r\n",
        b"+a\rb\r\n",
        b"$4294967297\r\n",
        b"*2147483648\r\n",
        b"$000000000000000000000000000000000001\r\n",
    ];
    for wire in bad {
        assert!(parse_value(wire).is_err(), "{:?}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn nesting_is_bounded() {
    let ok = [&b"*1\r\n"[..]].repeat(MAX_DEPTH).concat();
    let ok = [ok, b":1\r\n".to_vec()].concat();
    assert!(matches!(parse_value(&ok), Ok(Some(_))));
    let deep = [&b"*1\r\n"[..]].repeat(MAX_DEPTH + 1).concat();
    let deep = [deep, b":1\r\n".to_vec()].concat();
    assert!(parse_value(&deep).is_err());
    // Attributes nest too.
    let attrs = [&b"|1\r\n:1\r\n"[..]].repeat(10_000).concat();
    assert!(parse_value(&attrs).is_err());
}

/// A huge declared length with little data behind it waits without reserving anything.
#[test]
fn declared_lengths_do_not_allocate() {
    assert_eq!(parse_value(b"*2147483647\r\n:1\r\n"), Ok(None));
    assert_eq!(parse_value(b"%2147483647\r\n:1\r\n:1\r\n"), Ok(None));
    assert_eq!(parse_value(b"$4294967296\r\nabc"), Ok(None));
}

#[test]
fn encode_as_downgrades_like_the_encoder() {
    let v = Value::Array(vec![
        Value::Map(vec![(bulk("a"), Value::Double(1.5))]),
        Value::Null,
        Value::NullArray,
        Value::Boolean(true),
        Value::Attribute { attributes: vec![(bulk("k"), bulk("v"))], value: Box::new(Value::Integer(1)) },
        Value::BulkError(b"ERR x\ny".to_vec()),
        Value::Verbatim { format: *b"txt", text: b"hi".to_vec() },
    ]);
    let mut two = Vec::new();
    v.encode_as(Version::Resp2, &mut two);
    assert_eq!(
        String::from_utf8_lossy(&two),
        "*7\r\n*2\r\n$1\r\na\r\n$3\r\n1.5\r\n$-1\r\n*-1\r\n:1\r\n:1\r\n-ERR x y\r\n$2\r\nhi\r\n"
    );
    let mut three = Vec::new();
    v.encode_as(Version::Resp3, &mut three);
    assert_eq!(
        String::from_utf8_lossy(&three),
        "*7\r\n%1\r\n$1\r\na\r\n,1.5\r\n_\r\n_\r\n#t\r\n|1\r\n$1\r\nk\r\n$1\r\nv\r\n:1\r\n!7\r\nERR x\ny\r\n=6\r\ntxt:hi\r\n"
    );
}

#[test]
fn accessors() {
    assert_eq!(bulk("x").as_bytes(), Some(&b"x"[..]));
    assert_eq!(Value::Integer(3).as_integer(), Some(3));
    assert_eq!(Value::Integer(3).as_bytes(), None);
    assert!(Value::NullArray.is_null() && Value::Null.is_null());
    assert!(Value::BulkError(vec![]).is_error());
}

// --- properties ---

/// Bytes a line frame may hold: anything but CR and LF.
fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..12)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        line_bytes().prop_map(Value::Simple),
        line_bytes().prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bulk),
        Just(Value::Null),
        Just(Value::NullArray),
        any::<f64>().prop_filter("NaN != NaN", |d| !d.is_nan()).prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        "-?[0-9]{1,40}".prop_map(|s| Value::BigNumber(s.into_bytes())),
        (any::<[u8; 3]>(), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(format, text)| Value::Verbatim { format, text }),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::BulkError),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (prop::collection::vec((inner.clone(), inner.clone()), 0..3), inner)
                .prop_map(|(attributes, value)| Value::Attribute { attributes, value: Box::new(value) }),
        ]
    })
}

proptest! {
    /// encode then parse gives the value back, consuming exactly the encoding; and every proper
    /// prefix of the encoding is incomplete, never an error.
    #[test]
    fn encode_parse_round_trip(v in value(), cut in any::<prop::sample::Index>()) {
        let mut wire = Vec::new();
        v.encode(&mut wire);
        prop_assert_eq!(parse_value(&wire), Ok(Some((v.clone(), wire.len()))));
        let cut = cut.index(wire.len());
        prop_assert_eq!(parse_value(&wire[..cut]), Ok(None));
        // Canonical input: parse then encode is the identity.
        let mut again = Vec::new();
        v.encode(&mut again);
        prop_assert_eq!(again, wire);
    }

    /// A RESP3 encoding parses back to the value with its nulls unified.
    #[test]
    fn resp3_encoding_parses(v in value()) {
        let mut wire = Vec::new();
        v.encode_as(Version::Resp3, &mut wire);
        let parsed = parse_value(&wire);
        prop_assert!(matches!(parsed, Ok(Some((_, n))) if n == wire.len()), "{:?}", parsed);
    }

    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some((_, n))) = parse_value(&buf) {
            prop_assert!(n > 0 && n <= buf.len());
        }
    }

    #[test]
    fn protocol_shaped_bytes_never_panic(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                &b"*"[..], b"%", b"~", b"|", b">", b"$", b"!", b"=", b"+", b"-", b":", b"_", b",",
                b"#", b"(", b"\r\n", b"\r", b"1", b"2", b"-1", b"0", b"t", b"txt:", b"inf", b"?",
            ]),
            0..48,
        )
    ) {
        let buf: Vec<u8> = parts.concat();
        if let Ok(Some((v, n))) = parse_value(&buf) {
            prop_assert!(n > 0 && n <= buf.len());
            let mut out = Vec::new();
            v.encode(&mut out);
        }
    }
}
