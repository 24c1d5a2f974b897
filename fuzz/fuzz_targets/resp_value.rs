//! Feeds arbitrary bytes to the RESP2/RESP3 frame parser (the client side: replication, tools)
//! and checks that whatever it accepts survives a round trip: a parsed frame consumes at least
//! one byte and no more than the buffer, and encoding it then parsing the encoding gives an
//! equal frame back (NaN doubles aside, which equal nothing), so a frame read from a primary can
//! be relayed without loss. Encoding it for a RESP2 and a RESP3 client must not panic either.
#![no_main]

use cachette_resp::{parse_value, Value, Version};
use libfuzzer_sys::fuzz_target;

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Double(d) => d.is_nan(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => items.iter().any(has_nan),
        Value::Map(pairs) => pairs.iter().any(|(k, v)| has_nan(k) || has_nan(v)),
        Value::Attribute { attributes, value } => {
            has_nan(value) || attributes.iter().any(|(k, v)| has_nan(k) || has_nan(v))
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while let Ok(Some((value, n))) = parse_value(&data[pos..]) {
        assert!(n > 0 && n <= data.len() - pos);
        pos += n;
        let mut wire = Vec::new();
        value.encode(&mut wire);
        match parse_value(&wire) {
            Ok(Some((again, m))) => {
                assert_eq!(m, wire.len());
                assert!(has_nan(&value) || again == value);
            }
            other => panic!("re-encoded frame does not parse: {other:?}"),
        }
        for version in [Version::Resp2, Version::Resp3] {
            let mut out = Vec::new();
            value.encode_as(version, &mut out);
        }
    }
});
