//! Blocking list commands end to end: timeouts, wake-ups from other worker threads, FIFO order
//! among waiters, BLMOVE chains, pipelines behind a blocked command, and clients that vanish
//! while they wait.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util;

fn send(s: &mut TcpStream, cmd: &[&str]) {
    let mut out = format!("*{}\r\n", cmd.len());
    for a in cmd {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(out.as_bytes()).unwrap();
}

/// Reads exactly `n` bytes (or panics after the stream's read timeout).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]) {
            Ok(0) => panic!("closed after {:?}", String::from_utf8_lossy(&buf[..got])),
            Ok(k) => got += k,
            Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&buf[..got])),
        }
    }
    buf
}

/// True when nothing arrives within `wait`.
fn silent(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let r = s.read(&mut b);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    r.is_err()
}

#[test]
fn blpop_times_out_with_a_null_array() {
    let srv = util::cachette(&[]);
    let mut c = srv.resp();
    let start = Instant::now();
    send(&mut c, &["BLPOP", "q", "0.2"]);
    assert_eq!(read_n(&mut c, 5), b"*-1\r\n");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(190) && waited < Duration::from_secs(2), "{waited:?}");
    // redis-server 7.0 answers a null array for BLMOVE's timeout too.
    send(&mut c, &["BLMOVE", "q", "d", "LEFT", "RIGHT", "0.1"]);
    assert_eq!(read_n(&mut c, 5), b"*-1\r\n");
}

#[test]
fn a_push_from_any_thread_wakes_waiters_in_arrival_order() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut waiters: Vec<TcpStream> = (0..6).map(|_| srv.resp()).collect();
    for w in waiters.iter_mut() {
        send(w, &["BLPOP", "q", "0"]);
        // Arrival order must be unambiguous: let each one block before the next.
        assert!(silent(w, Duration::from_millis(50)));
    }
    let mut pusher = srv.resp();
    send(&mut pusher, &["RPUSH", "q", "e0", "e1", "e2", "e3", "e4", "e5"]);
    assert_eq!(read_n(&mut pusher, 4), b":6\r\n");
    for (i, w) in waiters.iter_mut().enumerate() {
        let expect = format!("*2\r\n$1\r\nq\r\n$2\r\ne{i}\r\n");
        assert_eq!(read_n(w, expect.len()), expect.as_bytes(), "waiter {i}");
    }
    send(&mut pusher, &["LLEN", "q"]);
    assert_eq!(read_n(&mut pusher, 4), b":0\r\n");
}

#[test]
fn the_pushed_element_goes_to_the_waiter_before_the_pushers_next_command() {
    let srv = util::cachette(&[]);
    let mut w = srv.resp();
    send(&mut w, &["BRPOP", "q", "0"]);
    assert!(silent(&mut w, Duration::from_millis(50)));
    let mut p = srv.resp();
    // One write: the LPOP runs right after the LPUSH, and must find the list already served.
    p.write_all(b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$1\r\nx\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nq\r\n").unwrap();
    assert_eq!(read_n(&mut p, 9), b":1\r\n$-1\r\n");
    assert_eq!(read_n(&mut w, 18), b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
}

#[test]
fn blmove_chains_pass_an_element_along() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut a = srv.resp();
    let mut b = srv.resp();
    send(&mut a, &["BLMOVE", "q1", "q2", "LEFT", "RIGHT", "0"]);
    send(&mut b, &["BLMOVE", "q2", "q3", "LEFT", "RIGHT", "0"]);
    assert!(silent(&mut a, Duration::from_millis(50)));
    let mut p = srv.resp();
    send(&mut p, &["RPUSH", "q1", "v"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    assert_eq!(read_n(&mut a, 7), b"$1\r\nv\r\n");
    assert_eq!(read_n(&mut b, 7), b"$1\r\nv\r\n");
    send(&mut p, &["LRANGE", "q3", "0", "-1"]);
    assert_eq!(read_n(&mut p, 11), b"*1\r\n$1\r\nv\r\n");
}

#[test]
fn a_pipeline_behind_a_blocked_command_waits_for_it() {
    let srv = util::cachette(&[]);
    let mut w = srv.resp();
    w.write_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert!(silent(&mut w, Duration::from_millis(100)), "PING must wait for BLPOP");
    let mut p = srv.resp();
    send(&mut p, &["LPUSH", "q", "x"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    assert_eq!(read_n(&mut w, 18 + 7), b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n+PONG\r\n");
}

#[test]
fn a_client_killed_while_blocked_leaves_nothing_behind() {
    let srv = util::cachette(&[]);
    {
        let mut w = srv.resp();
        send(&mut w, &["BLPOP", "q", "0"]);
        assert!(silent(&mut w, Duration::from_millis(50)));
    } // dropped: the connection closes while blocked
      // Wait until the server has seen the close (a push racing an unseen close is served, as in
      // redis-server): INFO's blocked_clients drops to 0.
    let mut p = srv.resp();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        send(&mut p, &["INFO", "clients"]);
        // A bulk reply: `$<len>\r\n` then len bytes and CRLF, read exactly.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n") {
            head.extend_from_slice(&read_n(&mut p, 1));
        }
        let len: usize = String::from_utf8_lossy(&head[1..head.len() - 2]).parse().unwrap();
        let body = read_n(&mut p, len + 2);
        if String::from_utf8_lossy(&body).contains("blocked_clients:0\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the server never noticed the close");
        std::thread::sleep(Duration::from_millis(20));
    }
    send(&mut p, &["RPUSH", "q", "kept"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    send(&mut p, &["LLEN", "q"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n", "the element must not go to a client that left");
}

#[test]
fn bzpopmin_is_woken_by_zadd_and_bzmpop_by_a_store() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut w = srv.resp();
    send(&mut w, &["BZPOPMIN", "z", "0"]);
    assert!(silent(&mut w, Duration::from_millis(50)));
    let mut p = srv.resp();
    send(&mut p, &["ZADD", "z", "2", "b", "1", "a"]);
    assert_eq!(read_n(&mut p, 4), b":2\r\n");
    let expect = b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n";
    assert_eq!(read_n(&mut w, expect.len()), expect);
    // A key created by a store command (here ZUNIONSTORE) wakes waiters too.
    send(&mut w, &["BZMPOP", "0", "1", "dst", "MAX"]);
    assert!(silent(&mut w, Duration::from_millis(50)));
    send(&mut p, &["ZUNIONSTORE", "dst", "1", "z"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    let expect = b"*2\r\n$3\r\ndst\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
    assert_eq!(read_n(&mut w, expect.len()), expect);
}

#[test]
fn a_waiter_stays_blocked_when_its_key_becomes_another_type() {
    let srv = util::cachette(&[]);
    let mut w = srv.resp();
    send(&mut w, &["BLPOP", "q", "0"]);
    assert!(silent(&mut w, Duration::from_millis(50)));
    let mut p = srv.resp();
    send(&mut p, &["SET", "q", "x"]);
    assert_eq!(read_n(&mut p, 5), b"+OK\r\n");
    assert!(silent(&mut w, Duration::from_millis(100)), "redis-server keeps a list waiter blocked on a string");
    send(&mut p, &["DEL", "q"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    send(&mut p, &["RPUSH", "q", "v"]);
    assert_eq!(read_n(&mut p, 4), b":1\r\n");
    assert_eq!(read_n(&mut w, 18), b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
}
