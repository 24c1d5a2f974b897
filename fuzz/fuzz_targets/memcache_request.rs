//! Feeds arbitrary bytes to the memcached request parser the way a connection does: parse from
//! the front, drop what each outcome consumed, count down a swallowed data block, stop on
//! *incomplete* or a close. Besides "no panic", it checks the contract the server relies on:
//! every complete command or error consumes at least one byte and never more than the buffer,
//! and the meta flag helper, the base64 key decoding and `refused_key` hold up on whatever the
//! parser accepted. The first input byte picks small limits now and then, so the too-large,
//! key-length and line-length paths are reached with short inputs.
#![no_main]

use cachette_memcache::request::{refused_key, MetaKind};
use cachette_memcache::{parse, Command, Limits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (limits, input) = match data.split_first() {
        Some((&sel, rest)) if sel & 1 == 1 => (
            Limits {
                max_item_size: usize::from(sel) * 4,
                max_key_len: usize::from(sel >> 2) + 1,
                max_line_len: usize::from(sel >> 1) + 8,
            },
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
            Parsed::Complete(cmd, n) => {
                assert!(n > 0 && n <= buf.len());
                if let Command::Meta(m) = cmd {
                    let opts = m.opts();
                    if m.kind == MetaKind::Set {
                        assert!(opts.is_ok(), "a parsed ms has valid flags");
                    }
                    if let Ok(o) = opts {
                        let mut scratch = [0u8; 512];
                        let key = m.decode_key(o.base64, &mut scratch[..m.key.len().min(512)]);
                        assert!(key.is_some() || !o.base64 || m.key.len() > 512 || m.kind == MetaKind::Noop);
                    }
                }
                pos += n;
            }
            Parsed::Incomplete => break,
            Parsed::Error { consumed, swallow: s, close, .. } => {
                assert!(consumed > 0 && consumed <= buf.len());
                if s > 0 {
                    let _ = refused_key(buf, &limits);
                }
                pos += consumed;
                swallow = s;
                if close {
                    break;
                }
            }
        }
    }
});
