//! Feeds arbitrary bytes to the memcached binary-protocol parser the way a connection does:
//! parse from the front, drop what each outcome consumed, count down a swallowed value, stop on
//! *incomplete*, a close or a bad magic byte. Besides "no panic", it checks the contract the
//! server relies on: a complete request or a refusal consumes at least a header and never more
//! than the buffer, and a refused SET names a key that lies inside the buffer. The first input
//! byte picks small limits now and then, so the too-large and key-length paths are reached with
//! short inputs.
#![no_main]

use cachette_memcache::binary::{parse, Parsed, HEADER_LEN};
use cachette_memcache::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (limits, input) = match data.split_first() {
        Some((&sel, rest)) if sel & 1 == 1 => (
            Limits { max_item_size: usize::from(sel) * 4, max_key_len: usize::from(sel >> 2) + 1, max_line_len: 2048 },
            rest,
        ),
        Some((_, rest)) => (Limits::default(), rest),
        None => return,
    };
    let mut pos = 0;
    let mut swallow = 0usize;
    loop {
        let skip = swallow.min(input.len() - pos);
        pos += skip;
        swallow -= skip;
        if pos == input.len() {
            break;
        }
        let buf = &input[pos..];
        match parse(buf, &limits) {
            Parsed::Complete(_, n) => {
                assert!(n >= HEADER_LEN && n <= buf.len());
                pos += n;
            }
            Parsed::Incomplete | Parsed::BadMagic => break,
            Parsed::Refused(r) => {
                assert!(r.consumed >= HEADER_LEN && r.consumed <= buf.len());
                if let Some(key) = r.unlink {
                    assert!(!key.is_empty() && key.len() <= limits.max_key_len);
                }
                pos += r.consumed;
                swallow = r.swallow;
                if r.close {
                    break;
                }
            }
        }
    }
});
