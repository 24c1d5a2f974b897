//! The binary protocol end to end on the real binary: auto-detection per connection, bad input
//! (garbage, truncated headers, lengths that lie, huge announced bodies, 10,000 quiet gets
//! without a NOOP) answered without a panic, without desynchronising the connection where
//! memcached keeps it, and without disturbing other clients; and STAT, whose figures the
//! differential scripts cannot compare.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util;

fn frame(op: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    let mut out = vec![0x80, op];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

fn set(key: &[u8], value: &[u8]) -> Vec<u8> {
    frame(0x01, &[0; 8], key, value, 0)
}

/// (status, opcode, opaque, key, value) of each response packet read until `until` says stop.
type Packet = (u16, u8, u32, Vec<u8>, Vec<u8>);

fn read_packets(s: &mut TcpStream, until: impl Fn(&Packet) -> bool) -> Vec<Packet> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let start = Instant::now();
    loop {
        while buf.len() >= 24 {
            let blen = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if buf.len() < 24 + blen {
                break;
            }
            let (klen, elen) = (u16::from_be_bytes([buf[2], buf[3]]) as usize, buf[4] as usize);
            let p = (
                u16::from_be_bytes([buf[6], buf[7]]),
                buf[1],
                u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]),
                buf[24 + elen..24 + elen + klen].to_vec(),
                buf[24 + elen + klen..24 + blen].to_vec(),
            );
            buf.drain(..24 + blen);
            let done = until(&p);
            out.push(p);
            if done {
                return out;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no end of reply after {} packets", out.len());
        match s.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn noop(opaque: u32) -> Vec<u8> {
    frame(0x0a, b"", b"", b"", opaque)
}

/// Reads up to the NOOP with `opaque`.
fn until_noop(s: &mut TcpStream, opaque: u32) -> Vec<Packet> {
    read_packets(s, |p| p.1 == 0x0a && p.2 == opaque)
}

/// A second client still gets served.
fn still_serves(srv: &util::Proc) {
    let mut other = srv.mc();
    other.write_all(&frame(0x0b, b"", b"", b"", 77)).expect("write");
    let got = read_packets(&mut other, |_| true);
    assert_eq!(got[0].4, b"1.6.18");
    let got = util::roundtrip(&mut other, b"", 0);
    assert!(got.is_empty());
    let mut text = srv.mc();
    assert_eq!(util::roundtrip(&mut text, b"version\r\n", 16), b"VERSION 1.6.18\r\n");
}

#[test]
fn protocol_is_detected_per_connection() {
    let srv = util::cachette(&[]);
    let mut bin = srv.mc();
    let mut text = srv.mc();
    bin.write_all(&set(b"k", b"from-binary")).expect("write");
    assert_eq!(read_packets(&mut bin, |_| true)[0].0, 0);
    let got = util::roundtrip(&mut text, b"get k\r\n", 34);
    assert_eq!(got, b"VALUE k 0 11\r\nfrom-binary\r\nEND\r\n");
    // Once text, always text: a later 0x80 byte is not a binary header.
    let got = util::roundtrip(&mut text, b"\x80bogus\r\n", 7);
    assert_eq!(got, b"ERROR\r\n");
}

#[test]
fn ten_thousand_quiet_gets_without_noop() {
    let srv = util::cachette(&[]);
    let mut c = srv.mc();
    let value = vec![b'v'; 1024];
    c.write_all(&set(b"hit", &value)).expect("write");
    read_packets(&mut c, |_| true);
    // Misses are silent: only the NOOP answers.
    let mut misses = Vec::new();
    for i in 0..10_000u32 {
        misses.extend_from_slice(&frame(0x09, b"", format!("miss{i}").as_bytes(), b"", i));
    }
    misses.extend_from_slice(&noop(1));
    c.write_all(&misses).expect("write");
    let got = until_noop(&mut c, 1);
    assert_eq!(got.len(), 1, "only the NOOP answers");
    // 10,000 hits (10 MB of answers) sent without reading: the server stops executing while
    // its output waits (bounded), another client is served meanwhile, and every answer arrives
    // in order once this client reads.
    let mut hits = Vec::new();
    for i in 0..10_000u32 {
        hits.extend_from_slice(&frame(0x0d, b"", b"hit", b"", i));
    }
    hits.extend_from_slice(&noop(2));
    let mut writer = c.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&hits).is_ok());
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&srv);
    let got = until_noop(&mut c, 2);
    assert!(sender.join().expect("sender"));
    assert_eq!(got.len(), 10_001);
    for (i, p) in got[..10_000].iter().enumerate() {
        assert_eq!((p.0, p.2, p.3.as_slice(), p.4.len()), (0, i as u32, &b"hit"[..], 1024));
    }
}

#[test]
fn bad_input_is_contained() {
    let srv = util::cachette(&[]);
    // Garbage after the magic byte, in many shapes: the server answers or closes, never dies.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let mut c = srv.mc();
        let mut bytes = vec![0x80];
        for _ in 0..(round % 64) + 1 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        c.write_all(&bytes).expect("write");
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = c.read_to_end(&mut sink);
    }
    // A truncated header, then the peer goes away.
    let mut c = srv.mc();
    c.write_all(&frame(0x00, b"", b"key", b"", 1)[..10]).expect("write");
    drop(c);
    // A body length that lies upward on a GET: EINVAL, closed (memcached does the same).
    let mut c = srv.mc();
    let mut f = frame(0x00, b"", b"key", b"", 1);
    f[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    c.write_all(&f).expect("write");
    let got = read_packets(&mut c, |_| false);
    assert_eq!((got.len(), got[0].0), (1, 0x04));
    // A SET announcing 4 GiB: E2BIG at once, nothing buffered, the connection kept; what
    // follows is swallowed as value, and the connection still answers after it.
    let mut c = srv.mc();
    let mut f = set(b"huge", b"");
    f[8..12].copy_from_slice(&(12 + 3_000_000u32).to_be_bytes());
    c.write_all(&f).expect("write");
    let got = read_packets(&mut c, |_| true);
    assert_eq!((got[0].0, got[0].4.as_slice()), (0x03, &b"Too large."[..]));
    c.write_all(&vec![b'x'; 3_000_000]).expect("write");
    c.write_all(&noop(9)).expect("write");
    assert_eq!(until_noop(&mut c, 9).len(), 1);
    still_serves(&srv);
}

#[test]
fn stat_groups() {
    let srv = util::cachette(&[]);
    let mut c = srv.mc();
    c.write_all(&set(b"k", b"v")).expect("write");
    read_packets(&mut c, |_| true);
    for (group, must_have) in
        [(&b""[..], &b"curr_items"[..]), (b"settings", b"item_size_max"), (b"items", b"items:1:number")]
    {
        c.write_all(&frame(0x10, b"", group, b"", 5)).expect("write");
        let got = read_packets(&mut c, |p| p.3.is_empty() && p.4.is_empty());
        assert!(got.iter().all(|p| p.0 == 0 && p.1 == 0x10 && p.2 == 5));
        assert!(got.iter().any(|p| p.3 == must_have), "STAT {group:?} lacks {must_have:?}");
        if group.is_empty() {
            let items = got.iter().find(|p| p.3 == b"curr_items").map(|p| p.4.clone());
            assert_eq!(items.as_deref(), Some(&b"1"[..]));
        }
    }
}

#[test]
fn sasl_needs_a_readable_users_file() {
    let out = std::process::Command::new(util::cachette_bin())
        .args(["--port", "0", "--memcache-port", &util::free_port().to_string(), "--bind", "127.0.0.1"])
        .args(["--memcache-sasl", "yes", "--memcache-sasl-pwdb", "/nonexistent/cachette-users"])
        .output()
        .expect("run cachette");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memcache-sasl-pwdb /nonexistent/cachette-users"), "{err}");
}

/// memcached -C, -B binary and -B ascii, as memcached 1.6.18 answers them (probed).
#[test]
fn cas_disabled_and_fixed_protocols() {
    let srv = util::cachette(&["-C"]);
    let mut c = srv.mc();
    let cas_of = |p: &[Packet]| p.first().map(|p| (p.0, p.4.clone()));
    c.write_all(&set(b"k", b"v")).expect("write");
    let got = read_packets(&mut c, |_| true);
    assert_eq!(cas_of(&got), Some((0, Vec::new())));
    // Every CAS reads 0, and a SET carrying one simply stores.
    let mut with_cas = set(b"k", b"w");
    with_cas[16..24].copy_from_slice(&5u64.to_be_bytes());
    c.write_all(&with_cas).expect("write");
    c.write_all(&frame(0x00, b"", b"k", b"", 0)).expect("write");
    let got = read_packets(&mut c, |p| p.1 == 0x00);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0, got[1].4.as_slice()), (0, &b"w"[..]));
    let raw = util::roundtrip(&mut c, &frame(0x00, b"", b"k", b"", 0), 29);
    assert_eq!(&raw[16..24], &[0; 8], "the CAS field of a hit is 0");

    // -B binary: a text client is read as a binary header and closed.
    let srv = util::cachette(&["-B", "binary"]);
    let mut t = srv.mc();
    let got = util::roundtrip(&mut t, b"version\r\nversion\r\nversion\r\n", 1);
    assert!(got.is_empty());
    // -B ascii: a binary frame is a text line like any other.
    let srv = util::cachette(&["-B", "ascii"]);
    let mut t = srv.mc();
    let got = util::roundtrip(&mut t, b"version\r\n", 16);
    assert_eq!(got, b"VERSION 1.6.18\r\n");
}

/// `stats` counts SASL attempts as memcached does: auth_cmds for every finished attempt,
/// auth_errors for the failed ones, nothing for an AUTH_CONTINUE.
#[test]
fn sasl_attempts_are_counted() {
    let Some(dir) = crate::differential_binary::sasl_files() else { return };
    let srv = crate::differential_binary::sasl_cachette(&dir);
    let mut c = srv.mc();
    for data in [&b"\0testuser\0bad"[..], b"", b"\0testuser\0testpass"] {
        c.write_all(&frame(0x21, b"", b"PLAIN", data, 0)).expect("write");
        read_packets(&mut c, |_| true);
    }
    c.write_all(&frame(0x10, b"", b"", b"", 0)).expect("write");
    let got = read_packets(&mut c, |p| p.3.is_empty() && p.4.is_empty());
    let stat = |name: &[u8]| got.iter().find(|p| p.3 == name).map(|p| p.4.clone());
    assert_eq!(stat(b"auth_cmds").as_deref(), Some(&b"2"[..]));
    assert_eq!(stat(b"auth_errors").as_deref(), Some(&b"1"[..]));
}
