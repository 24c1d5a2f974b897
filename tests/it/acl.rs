//! Authentication and ACLs end to end: requirepass (at start-up and by CONFIG SET), users from a
//! config file and from an aclfile, ACL SAVE/LOAD round trips, command/key/category denials and
//! allowances (MULTI queueing included), ACL CAT against redis-server's, and protected mode seen
//! from a non-loopback address through a network namespace the test builds itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util;

/// Sends one command and returns its whole reply as text (RESP framing included).
fn call(s: &mut TcpStream, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).expect("write");
    read_reply(s)
}

fn read_reply(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    loop {
        if let Some(n) = frame_len(&buf, 0) {
            assert_eq!(n, buf.len(), "one reply at a time");
            return String::from_utf8_lossy(&buf).into_owned();
        }
        match s.read(&mut byte) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(n) => buf.extend_from_slice(&byte[..n]),
        }
    }
}

/// Length of the complete RESP2 frame at `at`, if it is all there.
fn frame_len(buf: &[u8], at: usize) -> Option<usize> {
    let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[at + 1..end]).ok()?;
    match buf[at] {
        b'+' | b'-' | b':' => Some(end + 2 - at),
        b'$' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(end + 2 - at);
            }
            let total = end + 2 + n as usize + 2;
            (buf.len() >= total).then_some(total - at)
        }
        b'*' => {
            let n: i64 = line.parse().ok()?;
            let mut pos = end + 2;
            for _ in 0..n.max(0) {
                pos += frame_len(buf, pos)?;
            }
            Some(pos - at)
        }
        _ => None,
    }
}

const OK: &str = "+OK\r\n";
const NOAUTH: &str = "-NOAUTH Authentication required.\r\n";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const NOPERM_KEY: &str = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

fn noperm(cmd: &str) -> String {
    format!("-NOPERM this user has no permissions to run the '{cmd}' command\r\n")
}

#[test]
fn requirepass_at_start_up_and_by_config_set() {
    let srv = util::cachette(&["--requirepass", "s3cret"]);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["GET", "k"]), NOAUTH);
    assert_eq!(call(&mut c, &["AUTH", "nope"]), WRONGPASS);
    assert_eq!(call(&mut c, &["AUTH", "s3cret"]), OK);
    assert_eq!(call(&mut c, &["SET", "k", "v"]), OK);
    assert_eq!(call(&mut c, &["CONFIG", "SET", "requirepass", "other"]), OK);
    // This connection stays authenticated; a new one needs the new password.
    assert_eq!(call(&mut c, &["GET", "k"]), "$1\r\nv\r\n");
    let mut d = srv.resp();
    assert_eq!(call(&mut d, &["GET", "k"]), NOAUTH);
    assert_eq!(call(&mut d, &["AUTH", "s3cret"]), WRONGPASS);
    assert_eq!(call(&mut d, &["AUTH", "default", "other"]), OK);
    assert_eq!(call(&mut d, &["GET", "k"]), "$1\r\nv\r\n");
    // No password again: new connections need no AUTH.
    assert_eq!(call(&mut d, &["CONFIG", "SET", "requirepass", ""]), OK);
    let mut e = srv.resp();
    assert_eq!(call(&mut e, &["GET", "k"]), "$1\r\nv\r\n");
    // The redis crate authenticates from the URL as any client library does.
    assert_eq!(call(&mut e, &["CONFIG", "SET", "requirepass", "url-pass"]), OK);
    let client = redis::Client::open(format!("redis://:url-pass@127.0.0.1:{}/", srv.port)).expect("client");
    let mut con = client.get_connection().expect("authenticated connection");
    let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET after AUTH");
    assert_eq!(v, "v");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cachette-acl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn an_application_user_from_the_config_file_is_limited_as_configured() {
    let dir = temp_dir("conf");
    let conf = dir.join("cachette.conf");
    std::fs::write(&conf, "user app on >app-secret ~app:* +@read +@write -@dangerous\nuser ops on >ops +@all ~*\n")
        .expect("write conf");
    let srv = util::cachette(&["--include", conf.to_str().expect("utf-8 path")]);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["AUTH", "app", "wrong"]), WRONGPASS);
    assert_eq!(call(&mut c, &["AUTH", "app", "app-secret"]), OK);
    assert_eq!(call(&mut c, &["ACL", "WHOAMI"]), noperm("acl|whoami"));
    // Allowed: reads and writes of app:* keys, over several keys too.
    assert_eq!(call(&mut c, &["SET", "app:1", "v"]), OK);
    assert_eq!(call(&mut c, &["GET", "app:1"]), "$1\r\nv\r\n");
    assert_eq!(call(&mut c, &["MSET", "app:2", "a", "app:3", "b"]), OK);
    assert_eq!(call(&mut c, &["HSET", "app:h", "f", "1"]), ":1\r\n");
    assert_eq!(call(&mut c, &["LPUSH", "app:l", "x"]), ":1\r\n");
    assert_eq!(call(&mut c, &["DEL", "app:2"]), ":1\r\n");
    // Denied: other keys (any position), dangerous and admin commands.
    assert_eq!(call(&mut c, &["GET", "other"]), NOPERM_KEY);
    assert_eq!(call(&mut c, &["MSET", "app:2", "a", "other", "b"]), NOPERM_KEY);
    assert_eq!(call(&mut c, &["RENAME", "app:1", "other"]), NOPERM_KEY);
    assert_eq!(call(&mut c, &["FLUSHALL"]), noperm("flushall"));
    assert_eq!(call(&mut c, &["KEYS", "*"]), noperm("keys"));
    assert_eq!(call(&mut c, &["CONFIG", "GET", "port"]), noperm("config|get"));
    assert_eq!(call(&mut c, &["CLIENT", "LIST"]), noperm("client|list"));
    // Nothing in the keyspace changed by the refused commands.
    let mut ops = srv.resp();
    assert_eq!(call(&mut ops, &["AUTH", "ops", "ops"]), OK);
    assert_eq!(call(&mut ops, &["EXISTS", "other"]), ":0\r\n");
    assert_eq!(call(&mut ops, &["DBSIZE"]), ":4\r\n");
    // The denials are in the ACL log, newest first.
    let log = call(&mut ops, &["ACL", "LOG", "1"]);
    assert!(log.contains("$6\r\nreason\r\n$7\r\ncommand\r\n") && log.contains("$11\r\nclient|list\r\n"), "{log}");
    assert!(log.contains("user=app"), "client-info names the user: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multi_refuses_a_denied_command_at_queue_time() {
    let srv = util::cachette(&[]);
    let mut admin = srv.resp();
    assert_eq!(call(&mut admin, &["ACL", "SETUSER", "tx", "on", ">p", "~*", "+@transaction", "+get"]), OK);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["AUTH", "tx", "p"]), OK);
    assert_eq!(call(&mut c, &["MULTI"]), OK);
    assert_eq!(call(&mut c, &["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(call(&mut c, &["SET", "k", "v"]), noperm("set"));
    assert_eq!(call(&mut c, &["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(call(&mut admin, &["EXISTS", "k"]), ":0\r\n");
    let log = call(&mut admin, &["ACL", "LOG", "1"]);
    assert!(log.contains("$7\r\ncontext\r\n$5\r\nmulti\r\n"), "queued denials are logged in the multi context: {log}");
    // A change to the user applies to its open connections at once.
    assert_eq!(call(&mut c, &["GET", "k"]), "$-1\r\n");
    assert_eq!(call(&mut admin, &["ACL", "SETUSER", "tx", "-get"]), OK);
    assert_eq!(call(&mut c, &["GET", "k"]), noperm("get"));
    // Deleting it closes them.
    assert_eq!(call(&mut admin, &["ACL", "DELUSER", "tx"]), ":1\r\n");
    assert!(closed_soon(&mut c), "the deleted user's connection is closed");
}

/// True when the server closes `c` within 5 s (kills are noticed by the owning worker's
/// periodic check, not at once).
fn closed_soon(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    for _ in 0..50 {
        let _ = c.write_all(b"*1\r\n$4\r\nPING\r\n");
        let mut b = [0u8; 64];
        if matches!(c.read(&mut b), Ok(0) | Err(_)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn categories_allow_and_deny_whole_families() {
    let srv = util::cachette(&[]);
    let mut admin = srv.resp();
    assert_eq!(call(&mut admin, &["ACL", "SETUSER", "h", "on", "nopass", "allkeys", "+@hash", "-hdel"]), OK);
    assert_eq!(call(&mut admin, &["ACL", "SETUSER", "ro", "on", "nopass", "+@read", "%R~*"]), OK);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["AUTH", "h", "x"]), OK);
    assert_eq!(call(&mut c, &["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(call(&mut c, &["HGET", "h", "f"]), "$1\r\nv\r\n");
    assert_eq!(call(&mut c, &["HDEL", "h", "f"]), noperm("hdel"));
    assert_eq!(call(&mut c, &["SET", "s", "v"]), noperm("set"));
    assert_eq!(call(&mut c, &["AUTH", "ro", "x"]), OK);
    assert_eq!(call(&mut c, &["HGET", "h", "f"]), "$1\r\nv\r\n");
    assert_eq!(call(&mut c, &["HSET", "h", "f", "w"]), noperm("hset"));
    assert_eq!(call(&mut admin, &["ACL", "DRYRUN", "ro", "get", "k"]), OK);
    assert_eq!(
        call(&mut admin, &["ACL", "DRYRUN", "ro", "set", "k", "v"]),
        "$53\r\nThis user has no permissions to run the 'set' command\r\n"
    );
}

#[test]
fn acl_save_and_load_round_trip_through_the_aclfile() {
    let dir = temp_dir("file");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user default on nopass ~* &* +@all\nuser app on >pw ~app:* resetchannels -@all +get\n")
        .expect("write aclfile");
    let path = file.to_str().expect("utf-8 path").to_owned();
    let srv = util::cachette(&["--aclfile", &path]);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["ACL", "USERS"]), "*2\r\n$3\r\napp\r\n$7\r\ndefault\r\n");
    let mut app = srv.resp();
    assert_eq!(call(&mut app, &["AUTH", "app", "pw"]), OK);
    assert_eq!(call(&mut app, &["GET", "app:x"]), "$-1\r\n");
    assert_eq!(call(&mut c, &["ACL", "SETUSER", "new", "on", ">n", "~n:*", "+@string"]), OK);
    assert_eq!(call(&mut c, &["ACL", "SAVE"]), OK);
    let saved = std::fs::read_to_string(&file).expect("saved file");
    assert_eq!(
        saved,
        "user app on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~app:* resetchannels -@all +get\n\
         user default on nopass ~* &* +@all\n\
         user new on #1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9 ~n:* resetchannels -@all +@string\n"
    );
    // A file with an error changes nothing.
    std::fs::write(&file, "user app on >pw +nosuch\n").expect("write");
    let err = call(&mut c, &["ACL", "LOAD"]);
    assert_eq!(
        err,
        format!(
            "-ERR {path}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n"
        )
    );
    assert_eq!(call(&mut c, &["ACL", "USERS"]), "*3\r\n$3\r\napp\r\n$7\r\ndefault\r\n$3\r\nnew\r\n");
    // Loading replaces the users and closes the connections of the replaced ones.
    std::fs::write(&file, saved.replace("user new on", "user new off")).expect("write");
    assert_eq!(call(&mut c, &["ACL", "LOAD"]), OK);
    assert_eq!(call(&mut c, &["AUTH", "new", "n"]), WRONGPASS);
    assert!(closed_soon(&mut app), "app's connection was closed by ACL LOAD");
    drop(srv);
    // And the saved file starts a new server with the same users.
    let srv = util::cachette(&["--aclfile", &path]);
    let mut c = srv.resp();
    assert_eq!(call(&mut c, &["AUTH", "app", "pw"]), OK);
    assert_eq!(call(&mut c, &["SET", "app:x", "v"]), noperm("set"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acl_cat_matches_redis_server_for_the_commands_cachette_has() {
    let Some(reference) = util::redis_server() else { return };
    let srv = util::cachette(&[]);
    let mut ours = srv.resp();
    let mut theirs = reference.resp();
    let list = |s: &mut TcpStream, args: &[&str]| -> Vec<String> {
        let reply = call(s, args);
        let mut names: Vec<String> =
            reply.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$'])).map(str::to_owned).collect();
        names.sort();
        names
    };
    let cats = list(&mut theirs, &["ACL", "CAT"]);
    assert_eq!(call(&mut ours, &["ACL", "CAT"]), call(&mut theirs, &["ACL", "CAT"]));
    // Commands redis-server has and cachette does not yet are not compared (nor CLIENT
    // SETINFO, which cachette has from 7.2 and 7.0 lacks).
    let exists = |ours: &mut TcpStream, name: &str| -> bool {
        let top = name.split('|').next().unwrap_or(name);
        let info = call(ours, &["COMMAND", "INFO", top]);
        info.contains(&format!("${}\r\n{name}\r\n", name.len()))
    };
    for cat in &cats {
        let want: Vec<String> =
            list(&mut theirs, &["ACL", "CAT", cat]).into_iter().filter(|n| exists(&mut ours, n)).collect();
        // cachette's own commands (MCFLAGS) are not redis-server's to compare.
        let mine: Vec<String> = list(&mut ours, &["ACL", "CAT", cat])
            .into_iter()
            .filter(|n| n != "client|setinfo" && exists(&mut theirs, n))
            .collect();
        assert_eq!(mine, want, "ACL CAT {cat}");
    }
}

/// A network namespace joined to the host by a veth pair on a private /30, removed on drop
/// (also when the test fails).
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
}

impl Netns {
    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    fn create() -> Result<Netns, String> {
        let id = std::process::id();
        // 10.231.0.0/16 is this test's own range; the pid picks a /30 so parallel runs differ.
        let (a, b) = ((id / 64) % 256, (id % 64) * 4);
        let ns = Netns {
            name: format!("cachette-acl-{id}"),
            host_if: format!("cah{}", id % 100_000),
            host_ip: format!("10.231.{a}.{}", b + 1),
        };
        let peer_if = format!("can{}", id % 100_000);
        let peer_ip = format!("10.231.{a}.{}/30", b + 2);
        Self::ip(&["netns", "add", &ns.name])?;
        // From here on, Drop cleans up whatever was made.
        Self::ip(&["link", "add", &ns.host_if, "type", "veth", "peer", "name", &peer_if])?;
        Self::ip(&["link", "set", &peer_if, "netns", &ns.name])?;
        Self::ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", &ns.host_if])?;
        Self::ip(&["link", "set", &ns.host_if, "up"])?;
        Self::ip(&["netns", "exec", &ns.name, "ip", "addr", "add", &peer_ip, "dev", &peer_if])?;
        Self::ip(&["netns", "exec", &ns.name, "ip", "link", "set", &peer_if, "up"])?;
        Self::ip(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Connects from inside the namespace to `port` on the host side, sends `request` and
    /// returns everything read until the server closes or 2 s of silence.
    fn talk(&self, port: u16, request: &str) -> Vec<u8> {
        let script = format!(
            "import socket,sys\n\
             s=socket.create_connection(('{}',{port}),timeout=5)\n\
             s.sendall({request:?}.encode())\n\
             s.settimeout(2)\n\
             out=b''\n\
             try:\n    while True:\n        b=s.recv(65536)\n        if not b: break\n        out+=b\n\
             except (socket.timeout, ConnectionResetError):\n    pass\n\
             sys.stdout.buffer.write(out)\n",
            self.host_ip
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "python3", "-c", &script])
            .output()
            .expect("run the client in the namespace");
        assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Self::ip(&["netns", "del", &self.name]);
        let _ = Self::ip(&["link", "del", &self.host_if]);
    }
}

#[test]
fn protected_mode_denies_non_loopback_clients_while_there_is_no_password() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            assert!(!util::in_ci(), "network namespaces must work in CI: {e}");
            eprintln!("skipping: cannot build a network namespace here ({e})");
            return;
        }
    };
    let srv = util::cachette(&["--bind", "127.0.0.1", &ns.host_ip, "--protected-mode", "yes"]);
    // Nothing is sent: unread input would make the server's close a reset.
    let denied = ns.talk(srv.port, "");
    let text = String::from_utf8_lossy(&denied).into_owned();
    assert!(text.starts_with("-DENIED Redis is running in protected mode"), "{text}");
    // redis-server says exactly the same, byte for byte.
    if let Some(bin) = util::find_binary("redis-server") {
        let port = util::free_port();
        let mut child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", &ns.host_ip])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let ready = util::connect_when_ready(port, Duration::from_secs(10)).is_some();
        let theirs = ready.then(|| ns.talk(port, ""));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(theirs.map(|t| String::from_utf8_lossy(&t).into_owned()), Some(text.clone()));
    }
    // Loopback clients are served all along.
    let mut local = srv.resp();
    assert_eq!(call(&mut local, &["PING"]), "+PONG\r\n");
    // With a password the door opens (to AUTH)...
    assert_eq!(call(&mut local, &["CONFIG", "SET", "requirepass", "pw"]), OK);
    assert_eq!(
        String::from_utf8_lossy(&ns.talk(srv.port, "PING\r\nAUTH pw\r\nPING\r\n")),
        format!("{NOAUTH}{OK}+PONG\r\n")
    );
    // ...and with protected mode off, to everyone.
    assert_eq!(call(&mut local, &["CONFIG", "SET", "requirepass", "", "protected-mode", "no"]), OK);
    assert_eq!(String::from_utf8_lossy(&ns.talk(srv.port, "PING\r\n")), "+PONG\r\n");
}

/// One memcached binary request (magic 0x80) with no extras.
fn bin_request(op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, op];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&((key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Sends one binary request and returns the status of its response (None: the connection
/// closed instead).
fn bin_status(s: &mut TcpStream, req: &[u8]) -> Option<u16> {
    s.write_all(req).ok()?;
    let mut header = [0u8; 24];
    s.read_exact(&mut header).ok()?;
    let body = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let mut rest = vec![0u8; body];
    s.read_exact(&mut rest).ok()?;
    Some(u16::from_be_bytes([header[6], header[7]]))
}

#[test]
fn memcached_sasl_without_a_password_file_checks_the_acl_users() {
    let dir = temp_dir("sasl");
    let conf = dir.join("cachette.conf");
    std::fs::write(&conf, "memcache-sasl yes\nuser app on >pw ~* +@all\n").expect("write conf");
    let srv = util::cachette(&["--include", conf.to_str().expect("utf-8 path")]);
    const AUTH_ERROR: Option<u16> = Some(0x20);
    let mut m = srv.mc();
    assert_ne!(bin_status(&mut m, &bin_request(0x00, b"k", b"")), Some(1), "GET before SASL is refused");
    let mut m = srv.mc();
    assert_eq!(bin_status(&mut m, &bin_request(0x21, b"PLAIN", b"\0app\0wrong")), AUTH_ERROR);
    assert_eq!(bin_status(&mut m, &bin_request(0x21, b"PLAIN", b"\0app\0pw")), Some(0));
    assert_eq!(bin_status(&mut m, &bin_request(0x00, b"k", b"")), Some(1), "authenticated: GET misses");
    // The same credentials on the RESP side; switching the user off closes the door to both.
    let mut r = srv.resp();
    assert_eq!(call(&mut r, &["AUTH", "app", "pw"]), OK);
    assert_eq!(call(&mut r, &["ACL", "SETUSER", "app", "off"]), OK);
    let mut m2 = srv.mc();
    assert_eq!(bin_status(&mut m2, &bin_request(0x21, b"PLAIN", b"\0app\0pw")), AUTH_ERROR);
    let _ = std::fs::remove_dir_all(&dir);
}
