//! Feeds arbitrary bytes to the RESP request parser the way a connection does: parse from the
//! front, drop what each complete command consumed, stop on *incomplete* or a protocol error.
//! Besides "no panic", it checks the contract the server relies on: a complete command consumes
//! at least one byte and never more than the buffer, every argument resolves inside the buffer
//! (or the scratch copy), and an error's message is one line. The first input byte picks small
//! limits now and then, so the "too big" and "invalid length" paths are reached with short
//! inputs, and switches to the unauthenticated bounds.
#![no_main]

use cachette_resp::{parse_request, parse_request_unauthenticated, Args, Limits, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let limits = if sel & 1 == 1 {
        Limits {
            max_bulk_len: usize::from(sel >> 1),
            max_multibulk_len: usize::from(sel >> 4),
            max_inline_len: usize::from(sel >> 2) + 1,
        }
    } else {
        Limits::default()
    };
    let unauthenticated = sel & 2 == 2;
    let mut args = Args::new();
    let mut pos = 0;
    while pos < input.len() {
        let buf = &input[pos..];
        let parsed = if unauthenticated {
            parse_request_unauthenticated(buf, &limits, &mut args)
        } else {
            parse_request(buf, &limits, &mut args)
        };
        match parsed {
            Ok(Status::Complete(n)) => {
                assert!(n > 0 && n <= buf.len());
                let total: usize = args.iter(buf).map(<[u8]>::len).sum();
                // Unescaping only ever shortens a word, so arguments never outgrow their command.
                assert!(total <= n);
                pos += n;
            }
            Ok(Status::Incomplete) => break,
            Err(e) => {
                assert!(e.message().starts_with("Protocol error: "));
                assert!(!e.as_bytes().iter().any(|&b| b == b'\r' || b == b'\n'));
                break;
            }
        }
    }
});
