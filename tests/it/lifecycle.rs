//! Start-up, configuration and connection lifecycle of the real binary: a port of 0, bad
//! config files, the idle timeout, and output backpressure.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

#[test]
fn port_zero_disables_that_listener() {
    let (port, mc_port) = (util::free_port(), util::free_port());
    let mut child = Command::new(util::cachette_bin())
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--memcache-port", "0", "--metrics-port", "0"])
        .args(["--save", "", "--dbfilename", &format!("cachette-it-{port}.rdb")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut s = util::connect_when_ready(port, Duration::from_secs(10)).expect("RESP listener");
    assert_eq!(util::roundtrip(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", mc_port)).is_err(), "no memcached listener");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bad_config_file_stops_startup_naming_the_line() {
    let dir = std::env::temp_dir().join(format!("cachette-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.conf");
    std::fs::write(&path, "# fine\nport 7000\nno-such-directive yes\n").unwrap();
    let out = Command::new(util::cachette_bin()).arg(&path).stdin(Stdio::null()).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "stderr: {err}");
    assert!(err.contains("no-such-directive"), "stderr: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let srv = util::cachette(&["--timeout", "1"]);
    let mut s = srv.resp();
    assert_eq!(util::roundtrip(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(4), "{waited:?}");
}

#[test]
fn a_client_that_does_not_read_gets_every_reply_once_it_does() {
    // 400 GETs of a 64 KB value is 25 MB of replies, far past the output soft limit: the server
    // must stop executing this client's pipeline while its output waits, then resume.
    let srv = util::cachette(&[]);
    let mut s = srv.resp();
    let value = vec![b'v'; 64 * 1024];
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(util::roundtrip(&mut s, &set, 5), b"+OK\r\n");
    let gets = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(400);
    s.write_all(&gets).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let one = format!("${}\r\n", value.len()).len() + value.len() + 2;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while got < one * 400 {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed after {got} bytes");
        got += n;
    }
    assert_eq!(got, one * 400);
    // And the connection is still in sync.
    assert_eq!(util::roundtrip(&mut s, b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn logfile_gets_start_and_shutdown_lines_in_redis_format() {
    let dir = std::env::temp_dir().join(format!("cachette-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cachette.log");
    let path_arg = path.to_string_lossy().into_owned();
    let mut srv = util::cachette(&["--logfile", &path_arg]);
    let status = srv.terminate(Duration::from_secs(10)).expect("exited");
    assert!(status.success());
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.first().is_some_and(|l| l.contains(" * ") && l.contains("ready to accept connections")), "{log}");
    assert!(lines.last().is_some_and(|l| l.contains("ready to exit")), "{log}");
    // pid:M DD Mon YYYY HH:MM:SS.mmm * message
    let first = lines[0];
    assert!(first.starts_with(&format!("{}:M ", srv.pid())), "{first}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn maxclients_refuses_with_the_reference_servers_errors() {
    let srv = util::cachette(&["--maxclients", "2"]);
    // The readiness probes of `util` have closed; let the server notice before counting.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = srv.resp();
    let mut b = srv.resp();
    for s in [&mut a, &mut b] {
        assert_eq!(util::roundtrip(s, b"PING\r\n", 7), b"+PONG\r\n");
    }
    let mut c = srv.resp();
    let got = util::roundtrip(&mut c, b"", 38);
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    let mut m = srv.mc();
    let got = util::roundtrip(&mut m, b"", 33);
    assert_eq!(got, b"ERROR Too many open connections\r\n");
}
