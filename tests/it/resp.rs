//! RESP end to end: the `redis` client crate against the real binary, pipelining, several
//! clients across worker threads, RESP3, shutdown.

use std::io::{Read, Write};
use std::time::Duration;

use crate::util;

#[test]
fn redis_crate_strings_and_ttl() {
    let srv = util::cachette(&[]);
    let mut c = srv.redis_client();
    let _: () = redis::cmd("SET").arg("greeting").arg("hello").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("greeting").query(&mut c).unwrap();
    assert_eq!(v, "hello");
    let n: i64 = redis::cmd("INCRBY").arg("counter").arg(41).query(&mut c).unwrap();
    assert_eq!(n, 41);
    let n: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
    assert_eq!(n, 42);
    let _: () = redis::cmd("SET").arg("short").arg("x").arg("PX").arg(150).query(&mut c).unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("short").query(&mut c).unwrap();
    assert!(ttl > 0 && ttl <= 150, "pttl {ttl}");
    std::thread::sleep(Duration::from_millis(300));
    let gone: Option<String> = redis::cmd("GET").arg("short").query(&mut c).unwrap();
    assert_eq!(gone, None);
    let err = redis::cmd("NOSUCHCMD").arg("a").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
}

#[test]
fn active_expiry_reclaims_untouched_keys() {
    let srv = util::cachette(&["--hz", "50"]);
    let mut c = srv.redis_client();
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").arg("PX").arg(50).query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SET").arg("keep").arg("v").query(&mut c).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // DBSIZE counts keys that expired but were not reclaimed yet, so it only drops when the
        // active cycle deletes keys nobody reads.
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {n} keys");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pipeline_of_ten_thousand_commands_in_one_write() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let key = format!("p{i}");
        batch.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len()).as_bytes());
    }
    let expect = b"+OK\r\n".repeat(10_000);
    let got = util::roundtrip(&mut s, &batch, expect.len());
    assert_eq!(got.len(), expect.len());
    assert!(got == expect);
    let got = util::roundtrip(&mut s, b"DBSIZE\r\n", 8);
    assert_eq!(got, b":10000\r\n");
}

#[test]
fn clients_on_different_workers_see_each_others_writes_at_once() {
    // With two workers and SO_REUSEPORT, sixteen connections all landing on one worker has
    // probability 2^-15; every pair is checked, so cross-thread visibility is exercised.
    let srv = util::cachette(&["--threads", "2"]);
    let mut conns: Vec<_> = (0..16).map(|_| srv.redis_client()).collect();
    for round in 0..50 {
        let w = round % conns.len();
        let r = (round * 7 + 3) % conns.len();
        let key = format!("shared{round}");
        let _: () = redis::cmd("SET").arg(&key).arg(round).query(&mut conns[w]).unwrap();
        let v: i64 = redis::cmd("GET").arg(&key).query(&mut conns[r]).unwrap();
        assert_eq!(v, round as i64);
    }
}

#[test]
fn resp3_hello_and_null() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    let got = util::roundtrip(&mut s, b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", 1);
    assert!(got.starts_with(b"%7\r\n"), "{:?}", String::from_utf8_lossy(&got));
    std::thread::sleep(Duration::from_millis(50));
    let mut rest = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let _ = s.read(&mut rest);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = util::roundtrip(&mut s, b"GET missing\r\n", 3);
    assert_eq!(got, b"_\r\n");
}

#[test]
fn sigterm_stops_cleanly_with_exit_zero() {
    let mut srv = util::cachette(&[]);
    let mut s = srv.resp();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    let status = srv.terminate(Duration::from_secs(10)).expect("exited after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn quit_replies_then_closes() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    let got = util::roundtrip(&mut s, b"QUIT\r\n", usize::MAX);
    assert_eq!(got, b"+OK\r\n");
}
