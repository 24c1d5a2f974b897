//! Feeds arbitrary bytes to the AOF loader as a file: the scanner that finds commands,
//! truncation and damage, and the replay of whatever commands it finds through the dispatcher
//! (as start-up replays an AOF), plus the manifest parser on the same bytes. Besides "no
//! panic", it checks that a reported damage offset lies inside the input. The keyspace is
//! flushed after each input so memory stays bounded across runs.
#![no_main]

use std::sync::OnceLock;

use cachette::config::Config;
use cachette::persist::aof::{loader_session, replay, scan, Damage, Manifest};
use cachette::server::Shared;
use libfuzzer_sys::fuzz_target;

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared::new(Config::default()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::parse(text);
    }
    match scan(data, |_, _, _| {}) {
        Ok(()) => {}
        Err(Damage::Truncated { good }) => assert!(good as usize <= data.len()),
        Err(Damage::Corrupt { offset, .. }) | Err(Damage::Unknown { offset, .. }) => {
            assert!((offset as usize) < data.len())
        }
    }
    let shared = shared();
    let _ = replay(shared, &mut loader_session(), data);
    let _ = replay(shared, &mut loader_session(), b"*1\r\n$8\r\nFLUSHALL\r\n");
});
