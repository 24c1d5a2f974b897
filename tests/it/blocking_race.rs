//! A push that lands while a blocking command is being parked still wakes it: BLPOP on one
//! worker and RPUSH to the same key from a connection on another, sent back to back, thousands
//! of times. (The push could fall between the BLPOP finding the key empty and its registration
//! as a waiter, signal nobody, and leave the client blocked for ever; it hung within a few
//! dozen rounds.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util;

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    out.into_bytes()
}

fn read_reply(s: &mut TcpStream, expect: &[u8], what: &str) {
    let mut got = vec![0u8; expect.len()];
    let mut n = 0;
    while n < got.len() {
        match s.read(&mut got[n..]) {
            Ok(0) => panic!("{what}: closed"),
            Ok(k) => n += k,
            Err(e) => panic!("{what}: {e} after {:?}", String::from_utf8_lossy(&got[..n])),
        }
    }
    assert_eq!(got, expect, "{what}");
}

#[test]
fn a_push_racing_the_parking_of_blpop_wakes_it() {
    let srv = util::cachette(&["--threads", "2"]);
    // Connections are spread over the workers; four pairs make sure some pair spans both.
    let mut pairs: Vec<(TcpStream, TcpStream)> = (0..4).map(|_| (srv.resp(), srv.resp())).collect();
    for (w, p) in &mut pairs {
        w.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        p.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    }
    for i in 0..3000 {
        let (w, p) = &mut pairs[i % 4];
        let key = format!("q{i}");
        w.write_all(&command(&["BLPOP", &key, "0"])).expect("send BLPOP");
        p.write_all(&command(&["RPUSH", &key, "x"])).expect("send RPUSH");
        read_reply(p, b":1\r\n", "RPUSH");
        let expect = format!("*2\r\n${}\r\n{key}\r\n$1\r\nx\r\n", key.len());
        read_reply(w, expect.as_bytes(), &format!("BLPOP in round {i}"));
    }
}
