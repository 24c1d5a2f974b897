//! cachette as a replica (issue 8): a real redis-server primary (diskless and disk-based full
//! sync), the stream applied, expiry driven by the primary, partial resync after a cut and
//! after the primary was stopped, read-only replicas on both protocols, REPLICAOF NO ONE.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::aof::{dump_keys, write_redis_everything};
use crate::util::{cachette, redis_server_with, Proc};

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<redis::Value>(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        redis::Value::Okay => "OK".into(),
        redis::Value::Nil => "(nil)".into(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::ServerError(e) => format!("-{} {}", e.code(), e.details().unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

/// The reply to one command, as text: errors with their `-`, as redis-server words them.
fn reply(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<redis::Value>(con) {
        Ok(v) => text(v),
        // The redis crate re-spells known codes (MasterDown); ask again on a raw socket.
        Err(_) => raw_reply(con, args),
    }
}

fn raw_reply(con: &mut redis::Connection, args: &[&str]) -> String {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(con).expect("client info");
    let port = info.split(' ').find_map(|w| w.strip_prefix("laddr=")).and_then(|a| a.rsplit(':').next());
    let port: u16 = port.and_then(|p| p.parse().ok()).expect("laddr port");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).expect("write");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Writes a fresh marker on the primary and waits until the replica has applied it: every
/// write before it has been applied too.
fn sync_point(primary: &Proc, replica: &Proc) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
    let mut p = primary.redis_client();
    q(&mut p, &["SET", "__marker", &n]);
    let mut r = replica.redis_client();
    wait_for("the replica to catch up", Duration::from_secs(20), || reply(&mut r, &["GET", "__marker"]) == n);
}

fn stat(p: &Proc, section: &str, field: &str) -> String {
    let mut c = p.redis_client();
    let info = text(q(&mut c, &["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

fn replica_of(primary: &Proc, extra: &[&str]) -> Proc {
    let master = format!("127.0.0.1 {}", primary.port);
    let mut args = vec!["--replicaof", master.as_str()];
    args.extend_from_slice(extra);
    cachette(&args)
}

/// Mixed writes with expiries, in two databases.
fn write_batch(p: &Proc, round: usize) {
    let mut c = p.redis_client();
    for i in 0..200 {
        let k = format!("r{round}:k{i}");
        match i % 6 {
            0 => q(&mut c, &["SET", &k, &format!("v{i}"), "EX", "3000"]),
            1 => q(&mut c, &["RPUSH", &k, "a", "b", &i.to_string()]),
            2 => q(&mut c, &["HSET", &k, "f", &i.to_string(), "g", "x"]),
            3 => q(&mut c, &["SADD", &k, "a", "b", &i.to_string()]),
            4 => q(&mut c, &["ZADD", &k, &i.to_string(), "m", "1.5", "n"]),
            _ => q(&mut c, &["INCRBY", &k, &i.to_string()]),
        };
    }
    q(&mut c, &["SELECT", "2"]);
    q(&mut c, &["SET", &format!("db2:{round}"), "x", "PX", "5000000"]);
    q(&mut c, &["EXPIRE", &format!("r{round}:k1"), "100"]);
    q(&mut c, &["SELECT", "0"]);
    q(&mut c, &["DEL", &format!("r{round}:k2")]);
}

fn converges(primary: &Proc, replica: &Proc) {
    sync_point(primary, replica);
    let (want, got) = (dump_keys(primary, false), dump_keys(replica, false));
    assert!(want.len() > 100, "{want:?}");
    if want != got {
        let missing: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).take(5).collect();
        let extra: Vec<_> = got.iter().filter(|(k, v)| want.get(*k) != Some(v)).take(5).collect();
        panic!("replica differs: primary has {missing:?}, replica has {extra:?}");
    }
}

fn follows_redis_server(diskless: &str) {
    let Some(primary) = redis_server_with(&["--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"])
    else {
        return;
    };
    // What the full sync carries.
    write_batch(&primary, 0);
    let master = format!("127.0.0.1 {}", primary.port);
    let (replica, metrics_port) = crate::metrics::start(&["--replicaof", &master]);
    // What the stream carries.
    write_batch(&primary, 1);
    write_redis_everything(&primary);
    converges(&primary, &replica);
    assert_eq!(stat(&primary, "stats", "sync_full"), "1");
    let (_, body) = crate::metrics::get(metrics_port, "/metrics");
    for line in [
        "cachette_replication_role{role=\"replica\"} 1",
        "cachette_replication_master_link_up 1",
        "redis_master_link_up 1",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in {body}");
    }

    // A key expired on the primary is hidden at once on the replica, but removed only by the
    // primary's DEL.
    let mut p = primary.redis_client();
    let mut r = replica.redis_client();
    q(&mut p, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut p, &["SET", "short", "v", "PX", "200"]);
    sync_point(&primary, &replica);
    let before = reply(&mut r, &["DBSIZE"]);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(reply(&mut r, &["GET", "short"]), "(nil)");
    assert_eq!(reply(&mut r, &["EXISTS", "short"]), "0");
    assert_eq!(reply(&mut r, &["TTL", "short"]), "-2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(reply(&mut r, &["DBSIZE"]), before, "the replica must not delete it itself");
    assert_eq!(reply(&mut p, &["GET", "short"]), "(nil)", "the primary expires it now, and sends DEL");
    sync_point(&primary, &replica);
    let after: i64 = reply(&mut r, &["DBSIZE"]).parse().expect("dbsize");
    assert_eq!(after, before.parse::<i64>().expect("dbsize") - 1);
    q(&mut p, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);

    // Cut the link from the primary's side: the replica comes back with a partial resync.
    q(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    write_batch(&primary, 2);
    converges(&primary, &replica);
    assert_eq!(stat(&primary, "stats", "sync_full"), "1", "no second full sync");
    assert_eq!(stat(&primary, "stats", "sync_partial_ok"), "1");

    // Stop the primary for a while: the link survives (or resumes) and the writes converge.
    // SAFETY: kill(2) on a child we own; no memory effects.
    unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reply(&mut r, &["GET", "r0:k0"]), "v0", "stale data is served meanwhile");
    // SAFETY: as above.
    unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGCONT) };
    write_batch(&primary, 3);
    converges(&primary, &replica);
    assert_eq!(stat(&primary, "stats", "sync_full"), "1");
}

#[test]
fn follows_a_diskless_redis_server_primary() {
    follows_redis_server("yes");
}

#[test]
fn follows_a_disk_based_redis_server_primary() {
    follows_redis_server("no");
}

#[test]
fn a_read_only_replica_refuses_writes_on_both_protocols_until_replicaof_no_one() {
    let Some(primary) = redis_server_with(&[]) else { return };
    let mut p = primary.redis_client();
    q(&mut p, &["SET", "k", "v"]);
    let replica = replica_of(&primary, &[]);
    sync_point(&primary, &replica);
    let mut r = replica.redis_client();
    assert_eq!(reply(&mut r, &["SET", "x", "1"]), "-READONLY You can't write against a read only replica.");
    assert_eq!(reply(&mut r, &["GET", "k"]), "v");
    // Inside MULTI the write is refused as it is queued, and EXEC aborts.
    let mut raw = replica.resp();
    let got = crate::util::roundtrip(&mut raw, b"MULTI\r\nSET x 1\r\nEXEC\r\n", 120);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "+OK\r\n-READONLY You can't write against a read only replica.\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // memcached: text, meta (reads still work) and binary.
    let got =
        crate::util::mc_exchange(&replica, b"set x 0 0 1\r\n1\r\nget k\r\nms y 1\r\n2\r\nincr k 1 noreply\r\nmn\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "SERVER_ERROR read only replica\r\nVALUE k 0 1\r\nv\r\nEND\r\nSERVER_ERROR read only replica\r\nSERVER_ERROR read only replica\r\nMN\r\n"
    );
    // A binary SET: status 0x0083, "Not supported".
    let mut set = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(b"x1");
    let got = crate::util::mc_exchange(&replica, &set);
    assert!(got.len() >= 24 && got[0] == 0x81 && got[6..8] == [0x00, 0x83], "{got:?}");

    // REPLICAOF's replies, as redis-server 7.0.15 gives them.
    let port = primary.port.to_string();
    assert_eq!(reply(&mut r, &["REPLICAOF", "127.0.0.1", &port]), "OK Already connected to specified master");
    assert_eq!(reply(&mut r, &["REPLICAOF", "127.0.0.1", "70000"]), "-ERR Invalid master port");
    assert_eq!(reply(&mut r, &["REPLICAOF", "no", "two"]), "-ERR Invalid master port");
    let cfg: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("replicaof").query(&mut r).expect("config get");
    assert_eq!(cfg, ["replicaof".to_owned(), format!("127.0.0.1 {port}")]);
    // Promoted: writable, data kept.
    assert_eq!(reply(&mut r, &["REPLICAOF", "NO", "ONE"]), "OK");
    assert_eq!(reply(&mut r, &["SET", "x", "1"]), "OK");
    assert_eq!(reply(&mut r, &["GET", "k"]), "v");
    assert_eq!(String::from_utf8_lossy(&crate::util::mc_exchange(&replica, b"set y 0 0 1\r\n2\r\n")), "STORED\r\n");
    assert_eq!(reply(&mut r, &["REPLICAOF", "NO", "ONE"]), "OK", "NO ONE on a master is fine");
}

#[test]
fn stale_data_is_refused_with_masterdown_when_asked() {
    let port = crate::util::free_port().to_string();
    let master = format!("127.0.0.1 {port}");
    let replica = cachette(&["--replicaof", &master, "--replica-serve-stale-data", "no"]);
    let mut r = replica.redis_client();
    let masterdown = "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
    assert_eq!(reply(&mut r, &["GET", "k"]), masterdown);
    assert_eq!(reply(&mut r, &["PING"]), masterdown, "PING is not flagged stale in redis 7.0");
    assert!(reply(&mut r, &["INFO", "server"]).contains("redis_version"));
    assert_eq!(reply(&mut r, &["CONFIG", "SET", "replica-serve-stale-data", "yes"]), "OK");
    assert_eq!(reply(&mut r, &["GET", "k"]), "(nil)");
}

#[test]
fn masterauth_authenticates_before_the_handshake() {
    let Some(primary) = redis_server_with(&["--requirepass", "s3cret"]) else { return };
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", primary.port)).expect("client");
    let mut p = client.get_connection().expect("conn");
    q(&mut p, &["SET", "k", "authed"]);
    let replica = replica_of(&primary, &["--masterauth", "s3cret"]);
    let mut r = replica.redis_client();
    wait_for("the authenticated sync", Duration::from_secs(20), || reply(&mut r, &["GET", "k"]) == "authed");
}

/// Waits until `replica` (following `primary`) holds exactly the primary's keys, memcached
/// flags included.
fn converges_with_flags(primary: &Proc, replica: &Proc) {
    sync_point(primary, replica);
    assert_eq!(dump_keys(replica, true), dump_keys(primary, true));
}

#[test]
fn a_chain_of_cachette_replicas_converges_promotes_and_resumes_from_its_snapshot() {
    let dir = crate::aof::TempDir::new("chain");
    let a = cachette(&["--repl-diskless-sync-delay", "0"]);
    write_batch(&a, 0);
    let b = replica_of(&a, &["--repl-diskless-sync-delay", "0"]);
    let master_b = format!("127.0.0.1 {}", b.port);
    let c = crate::util::cachette_in(&dir.0, &["--replicaof", &master_b]).expect("c starts");
    // Both protocols on the primary, every type and kind of TTL.
    crate::aof::write_everything(&a);
    write_batch(&a, 1);
    converges_with_flags(&a, &b);
    converges_with_flags(&a, &c);
    assert!(text(q(&mut b.redis_client(), &["INFO", "replication"])).contains("master_link_status:up"));
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c.redis_client()).expect("role");
    assert_eq!(text(role[0].clone()), "slave");
    assert_eq!(text(role[3].clone()), "connected");

    // B is promoted: C goes on with a partial resync (PSYNC2), and follows B's own writes.
    let mut bc = b.redis_client();
    assert_eq!(stat(&b, "stats", "sync_full"), "1");
    assert_eq!(reply(&mut bc, &["REPLICAOF", "NO", "ONE"]), "OK");
    let info = text(q(&mut bc, &["INFO", "replication"]));
    assert!(info.contains("role:master") && !info.contains("second_repl_offset:-1"), "{info}");
    write_batch(&b, 2);
    converges_with_flags(&b, &c);
    assert_eq!(stat(&b, "stats", "sync_full"), "1", "C did not need a full sync");
    assert_eq!(stat(&b, "stats", "sync_partial_ok"), "1");

    // C restarted from its own snapshot continues with a partial resync too.
    assert_eq!(reply(&mut c.redis_client(), &["SAVE"]), "OK");
    drop(c);
    write_batch(&b, 3);
    let c = crate::util::cachette_in(&dir.0, &["--replicaof", &master_b]).expect("c restarts");
    converges_with_flags(&b, &c);
    assert_eq!(stat(&b, "stats", "sync_full"), "1", "the restart did not need a full sync");
    assert_eq!(stat(&b, "stats", "sync_partial_ok"), "2");
}

#[test]
fn info_and_role_describe_the_link() {
    let port = crate::util::free_port();
    let master = format!("127.0.0.1 {port}");
    let replica = cachette(&["--replicaof", &master]);
    let mut r = replica.redis_client();
    let info = text(q(&mut r, &["INFO", "replication"]));
    let fields: Vec<&str> = info.lines().skip(1).map(|l| l.split(':').next().unwrap_or("")).collect();
    assert_eq!(
        fields[..13],
        [
            "role",
            "master_host",
            "master_port",
            "master_link_status",
            "master_last_io_seconds_ago",
            "master_sync_in_progress",
            "slave_read_repl_offset",
            "slave_repl_offset",
            "master_link_down_since_seconds",
            "slave_priority",
            "slave_read_only",
            "replica_announced",
            "connected_slaves",
        ],
        "{info}"
    );
    assert!(info.contains(&format!("master_port:{port}\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1")));
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut r).expect("role");
    assert_eq!(role.len(), 5);
    assert!(matches!(text(role[3].clone()).as_str(), "connect" | "connecting"), "{role:?}");
    assert_eq!(text(role[4].clone()), "-1");
}

#[test]
fn a_cachette_replica_resumes_partially_after_client_kill_and_sigstop() {
    let a = cachette(&["--repl-diskless-sync-delay", "0"]);
    write_batch(&a, 0);
    let b = replica_of(&a, &[]);
    crate::aof::write_everything(&a);
    converges_with_flags(&a, &b);
    // The master link shows as flag M on the replica; the replica as flag S on the primary.
    let list = text(q(&mut b.redis_client(), &["CLIENT", "LIST"]));
    assert!(list.lines().any(|l| l.contains(" flags=M ")), "{list}");
    let list = text(q(&mut a.redis_client(), &["CLIENT", "LIST"]));
    let id = list
        .lines()
        .find(|l| l.contains(" flags=S "))
        .and_then(|l| l.strip_prefix("id="))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no replica in {list}"))
        .to_owned();
    assert_eq!(reply(&mut a.redis_client(), &["CLIENT", "KILL", "ID", &id]), "1");
    write_batch(&a, 1);
    converges_with_flags(&a, &b);
    assert_eq!(stat(&a, "stats", "sync_partial_ok"), "1");
    // From the replica's side, as sentinel would: its normal clients go, the link stays.
    assert_eq!(reply(&mut b.redis_client(), &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]), "0");
    assert_eq!(reply(&mut b.redis_client(), &["CLIENT", "KILL", "TYPE", "master"]), "1");
    write_batch(&a, 4);
    converges_with_flags(&a, &b);
    assert_eq!(stat(&a, "stats", "sync_partial_ok"), "2");

    // The replica process stopped for a while, then continued: it catches up.
    // SAFETY: kill(2) on a child we own; no memory effects.
    unsafe { libc::kill(b.pid() as libc::pid_t, libc::SIGSTOP) };
    write_batch(&a, 2);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: as above.
    unsafe { libc::kill(b.pid() as libc::pid_t, libc::SIGCONT) };
    write_batch(&a, 3);
    converges_with_flags(&a, &b);
    assert_eq!(stat(&a, "stats", "sync_full"), "1", "never a second full sync");
}

#[test]
fn a_snapshot_taken_under_load_resumes_without_applying_anything_twice() {
    let dir = crate::aof::TempDir::new("underload");
    let a = cachette(&["--repl-diskless-sync-delay", "0"]);
    let master = format!("127.0.0.1 {}", a.port);
    let b = crate::util::cachette_in(&dir.0, &["--replicaof", &master]).expect("b starts");
    sync_point(&a, &b);
    // INCRs stream in while the replica saves: a counter applied twice after the restart
    // would differ from the primary's.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, port) = (stop.clone(), a.port);
        std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
            let mut c = client.get_connection().expect("conn");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let mut p = redis::pipe();
                for _ in 0..50 {
                    p.cmd("INCR").arg("counter").ignore();
                }
                let _: () = p.query(&mut c).expect("incr");
            }
        })
    };
    let mut bc = b.redis_client();
    for _ in 0..5 {
        assert_eq!(reply(&mut bc, &["SAVE"]), "OK");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    drop(bc);
    drop(b);
    let b = crate::util::cachette_in(&dir.0, &["--replicaof", &master]).expect("b restarts");
    sync_point(&a, &b);
    assert_eq!(reply(&mut b.redis_client(), &["GET", "counter"]), reply(&mut a.redis_client(), &["GET", "counter"]));
    assert_eq!(stat(&a, "stats", "sync_full"), "1", "the restart continued: {}", stat(&a, "stats", "sync_partial_ok"));
}
