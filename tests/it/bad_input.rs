//! Hostile and broken input: the server answers or closes as the reference servers do, never
//! panics, and keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util;

fn still_serving(srv: &util::Proc) {
    let mut s = srv.resp();
    assert_eq!(util::roundtrip(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
    let mut m = srv.mc();
    assert!(util::roundtrip(&mut m, b"version\r\n", 16).starts_with(b"VERSION "));
}

/// Reads until the peer closes or `limit` passes; returns what arrived and whether it closed.
fn read_until_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

#[test]
fn random_bytes_never_take_the_server_down() {
    let srv = util::cachette(&[]);
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    for round in 0..40 {
        let mut junk = vec![0u8; 1 + (round * 997) % 8192];
        for b in junk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        for port in [srv.port, srv.mc_port] {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(&junk);
                let _ = read_until_close(&mut s, Duration::from_millis(50));
            }
        }
    }
    still_serving(&srv);
}

#[test]
fn giant_declared_lengths_are_refused_without_waiting() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    s.write_all(b"*1\r\n$2147483648\r\n").unwrap();
    let (got, closed) = read_until_close(&mut s, Duration::from_secs(3));
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(closed);
    let mut s = srv.resp();
    s.write_all(b"*99999999999\r\n").unwrap();
    let (got, closed) = read_until_close(&mut s, Duration::from_secs(3));
    assert_eq!(got, b"-ERR Protocol error: invalid multibulk length\r\n");
    assert!(closed);
    still_serving(&srv);
}

#[test]
fn one_megabyte_inline_line_is_refused() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    let line = vec![b'a'; 1 << 20];
    let _ = s.write_all(&line);
    let (got, closed) = read_until_close(&mut s, Duration::from_secs(5));
    assert_eq!(got, b"-ERR Protocol error: too big inline request\r\n");
    assert!(closed);
    still_serving(&srv);
}

#[test]
fn truncated_frame_waits_and_then_completes() {
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let got = util::roundtrip(&mut s, b"lo\r\n", 5);
    assert_eq!(got, b"+OK\r\n");
}

#[test]
fn slowloris_one_byte_per_write_is_served_and_does_not_block_others() {
    let srv = util::cachette(&["--threads", "1"]);
    let mut slow = srv.resp();
    let cmd = b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$3\r\nyes\r\n";
    for (i, b) in cmd.iter().enumerate() {
        slow.write_all(&[*b]).unwrap();
        if i % 8 == 0 {
            // Meanwhile another client on the same (only) worker is served at once.
            let mut other = srv.resp();
            assert_eq!(util::roundtrip(&mut other, b"PING\r\n", 7), b"+PONG\r\n");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut buf = [0u8; 5];
    slow.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK\r\n");
    // And the memcached side the same way.
    let mut slow = srv.mc();
    for b in b"set s 0 0 2\r\nok\r\n" {
        slow.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut buf = [0u8; 8];
    slow.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"STORED\r\n");
}

#[test]
fn memcached_too_large_value_is_swallowed_and_stream_stays_in_sync() {
    let srv = util::cachette(&[]);
    let mut m = srv.mc();
    let size = (1 << 20) + 1;
    let mut req = format!("set big 0 0 {size}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'x', size));
    req.extend_from_slice(b"\r\nget big\r\n");
    let got = util::roundtrip(&mut m, &req, 46);
    assert_eq!(got, b"SERVER_ERROR object too large for cache\r\nEND\r\n");
}
