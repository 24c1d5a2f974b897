//! The RDB loader on arbitrary bytes: a whole file (loaded into a fresh keyspace, so the value
//! builders run too) and a DUMP payload. No input may panic, and no length read from the input
//! may allocate beyond what the input can hold (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let engine = cachette::engine::Engine::new(1);
    let _ = cachette::persist::load_into(&engine, data, 0);
    // The same bytes behind a valid header, so mutations reach the records quickly.
    let mut file = b"REDIS0011".to_vec();
    file.extend_from_slice(data);
    let _ = cachette::persist::load_into(&engine, &file, 0);
    let _ = cachette::persist::rdb::read_payload(data);
});
