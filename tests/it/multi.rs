//! Transactions across clients and threads: optimistic locking under races (no lost update),
//! EXEC's atomicity seen by a concurrent reader, and WATCH invalidated by what a single
//! differential script cannot show — another client, the memcached protocol, expiry by the
//! active cycle or by another client's read, FLUSHALL and SWAPDB from elsewhere, eviction —,
//! and the limits: the queue bound and out-of-memory refusals.
//!
//! The server runs with `--threads 2`, and the racing tests use several connections each, so
//! that (whatever the kernel's SO_REUSEPORT spread) clients sit on both worker threads.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use crate::util;

fn cmd(c: &mut Connection, args: &[&str]) -> Value {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    r.query::<Value>(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(c: &mut Connection, args: &[&str]) {
    assert_eq!(cmd(c, args), Value::Okay, "{args:?}");
}

/// WATCH `key`, run `touch` (from elsewhere), then MULTI / SET / EXEC: true when EXEC ran.
fn exec_survives(c: &mut Connection, key: &str, touch: impl FnOnce()) -> bool {
    ok(c, &["WATCH", key]);
    touch();
    ok(c, &["MULTI"]);
    assert_eq!(cmd(c, &["SET", "after-exec", "1"]), Value::SimpleString("QUEUED".into()));
    match cmd(c, &["EXEC"]) {
        Value::Nil => false,
        Value::Array(v) => {
            assert_eq!(v, vec![Value::Okay]);
            true
        }
        other => panic!("EXEC answered {other:?}"),
    }
}

#[test]
fn watch_races_lose_no_update() {
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 10_000;
    let srv = util::cachette(&["--threads", "2"]);
    ok(&mut srv.redis_client(), &["SET", "counter", "0"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut c = srv.redis_client();
            std::thread::spawn(move || {
                let (mut won, mut lost) = (0u64, 0u64);
                for _ in 0..ROUNDS / CLIENTS {
                    assert!(Instant::now() < deadline, "race loop ran out of time");
                    ok(&mut c, &["WATCH", "counter"]);
                    let v: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
                    ok(&mut c, &["MULTI"]);
                    cmd(&mut c, &["SET", "counter", &(v + 1).to_string()]);
                    match cmd(&mut c, &["EXEC"]) {
                        Value::Nil => lost += 1,
                        Value::Array(_) => won += 1,
                        other => panic!("EXEC answered {other:?}"),
                    }
                }
                (won, lost)
            })
        })
        .collect();
    let (mut won, mut lost) = (0, 0);
    for h in handles {
        let (w, l) = h.join().unwrap();
        won += w;
        lost += l;
    }
    assert_eq!(won + lost, ROUNDS as u64);
    let counter: u64 = redis::cmd("GET").arg("counter").query(&mut srv.redis_client()).unwrap();
    assert_eq!(counter, won, "every successful EXEC counted once, no other ({lost} EXECs failed)");
    assert!(won > 0);
}

/// A reader pipelining MGETs over keys spread across shards never sees a transaction half done.
#[test]
fn exec_is_atomic_to_a_concurrent_reader() {
    const KEYS: usize = 16;
    const TRANSACTIONS: usize = 2_000;
    let srv = util::cachette(&["--threads", "2"]);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("atom:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
        mset.push(k.clone());
        mset.push("0".into());
    }
    ok(&mut srv.redis_client(), &mset.iter().map(String::as_str).collect::<Vec<_>>());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = srv.redis_client();
            let (keys, done) = (keys.clone(), done.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                    let mut p = redis::pipe();
                    for _ in 0..8 {
                        p.cmd("MGET").arg(&keys);
                    }
                    let batches: Vec<Vec<i64>> = p.query(&mut c).unwrap();
                    for vals in batches {
                        assert!(vals.iter().all(|v| *v == vals[0]), "saw a partial transaction: {vals:?}");
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let mut c = srv.redis_client();
            let keys = keys.clone();
            std::thread::spawn(move || {
                for i in 0..TRANSACTIONS / 2 {
                    let mut p = redis::pipe();
                    p.atomic();
                    // Alternate INCRs and a whole MSET, both spanning every key.
                    if (i + w) % 2 == 0 {
                        for k in &keys {
                            p.cmd("INCR").arg(k).ignore();
                        }
                    } else {
                        let mut m = redis::cmd("MSET");
                        for k in &keys {
                            m.arg(k).arg(i64::MAX / 2 - i as i64);
                        }
                        p.add_command(m).ignore();
                        for k in &keys {
                            p.cmd("SET").arg(k).arg(i).ignore();
                        }
                    }
                    let () = p.query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
}

#[test]
fn watch_is_invalidated_by_another_client() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut a = srv.redis_client();
    let mut b = srv.redis_client();
    ok(&mut b, &["SET", "k", "1"]);
    assert!(!exec_survives(&mut a, "k", || ok(&mut b, &["SET", "k", "2"])));
    assert!(exec_survives(&mut a, "k", || {
        cmd(&mut b, &["GET", "k"]);
    }));
    // A key that did not exist, created and deleted again by someone else.
    assert!(!exec_survives(&mut a, "fresh", || {
        ok(&mut b, &["SET", "fresh", "x"]);
        cmd(&mut b, &["DEL", "fresh"]);
    }));
    // Another database's key of the same name is another key.
    assert!(exec_survives(&mut a, "k", || {
        ok(&mut b, &["SELECT", "3"]);
        ok(&mut b, &["SET", "k", "elsewhere"]);
        ok(&mut b, &["SELECT", "0"]);
    }));
}

#[test]
fn watch_is_invalidated_by_a_memcached_write() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut r = srv.redis_client();
    let mut mc = srv.mc();
    mc.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut mc_cmd = |line: &[u8], expect: &[u8]| {
        mc.write_all(line).unwrap();
        let mut got = vec![0u8; expect.len()];
        mc.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect));
    };
    ok(&mut r, &["SET", "shared", "from-redis"]);
    assert!(!exec_survives(&mut r, "shared", || mc_cmd(b"set shared 5 0 2\r\nmc\r\n", b"STORED\r\n")));
    assert_eq!(cmd(&mut r, &["GET", "shared"]), Value::BulkString(b"mc".to_vec()));
    assert!(!exec_survives(&mut r, "shared", || mc_cmd(b"append shared 0 0 1\r\n!\r\n", b"STORED\r\n")));
    assert!(!exec_survives(&mut r, "shared", || mc_cmd(b"touch shared 1000\r\n", b"TOUCHED\r\n")));
    assert!(!exec_survives(&mut r, "shared", || mc_cmd(b"delete shared\r\n", b"DELETED\r\n")));
    // A memcached read is no change.
    ok(&mut r, &["SET", "shared", "v"]);
    assert!(exec_survives(&mut r, "shared", || mc_cmd(b"get shared\r\n", b"VALUE shared 0 1\r\nv\r\nEND\r\n")));
    assert!(!exec_survives(&mut r, "shared", || mc_cmd(b"flush_all\r\n", b"OK\r\n")));
}

#[test]
fn watch_is_invalidated_by_expiry() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut a = srv.redis_client();
    let mut b = srv.redis_client();
    // Reclaimed by the active expiry cycle: wait until DBSIZE (which counts keys not yet
    // reclaimed) drops to zero.
    ok(&mut b, &["FLUSHALL"]);
    ok(&mut b, &["SET", "ttl", "v", "PX", "100"]);
    assert!(!exec_survives(&mut a, "ttl", || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cmd(&mut b, &["DBSIZE"]) != Value::Int(0) {
            assert!(Instant::now() < deadline, "the active cycle never reclaimed the key");
            std::thread::sleep(Duration::from_millis(20));
        }
    }));
    // Reclaimed by another client's read.
    ok(&mut b, &["SET", "ttl", "v", "PX", "50"]);
    assert!(!exec_survives(&mut a, "ttl", || {
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cmd(&mut b, &["GET", "ttl"]), Value::Nil);
    }));
    // A TTL that has not passed is no change.
    ok(&mut b, &["SET", "ttl", "v", "EX", "100"]);
    assert!(exec_survives(&mut a, "ttl", || {}));
}

#[test]
fn watch_is_invalidated_by_flushall_and_swapdb_from_another_client() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut a = srv.redis_client();
    let mut b = srv.redis_client();
    ok(&mut b, &["SET", "k", "1"]);
    assert!(!exec_survives(&mut a, "k", || ok(&mut b, &["FLUSHALL"])));
    // Flushing a database without the key is no change.
    assert!(exec_survives(&mut a, "k", || ok(&mut b, &["FLUSHALL"])));
    ok(&mut b, &["SET", "k", "1"]);
    assert!(!exec_survives(&mut a, "k", || ok(&mut b, &["FLUSHDB"])));
    ok(&mut b, &["SET", "k", "1"]);
    assert!(!exec_survives(&mut a, "k", || ok(&mut b, &["SWAPDB", "0", "5"])));
    // The key now lives in db 5; swapping it back into db 0 touches db 0's watchers too.
    assert!(!exec_survives(&mut a, "k", || ok(&mut b, &["SWAPDB", "0", "5"])));
    assert!(exec_survives(&mut a, "other", || ok(&mut b, &["SWAPDB", "0", "5"])));
}

/// A client that disconnects while watching leaves nothing behind: a later change of the key
/// and a later WATCH by someone else work as usual.
#[test]
fn a_disconnected_watcher_is_forgotten() {
    let srv = util::cachette(&["--threads", "2"]);
    for _ in 0..50 {
        let mut gone = srv.redis_client();
        ok(&mut gone, &["WATCH", "k", "k2"]);
        ok(&mut gone, &["MULTI"]);
        cmd(&mut gone, &["SET", "k", "never"]);
    }
    let mut a = srv.redis_client();
    ok(&mut a, &["SET", "k", "1"]);
    assert!(exec_survives(&mut a, "k", || {}));
    assert_eq!(cmd(&mut a, &["GET", "k"]), Value::BulkString(b"1".to_vec()));
}

/// The queue of a transaction is bounded like the query buffer it came through: past
/// `client-query-buffer-limit` the transaction is refused and its commands freed, and the
/// connection goes on.
#[test]
fn a_transaction_queue_is_bounded() {
    let srv = util::cachette(&[]);
    let mut c = srv.redis_client();
    ok(&mut c, &["CONFIG", "SET", "client-query-buffer-limit", "1mb"]);
    ok(&mut c, &["MULTI"]);
    let big = "x".repeat(100 * 1024);
    let mut refused = 0;
    for _ in 0..20 {
        let r = redis::cmd("SET").arg("k").arg(&big).query::<Value>(&mut c);
        match r {
            Ok(Value::SimpleString(s)) if s == "QUEUED" => {}
            Err(e) if e.to_string().contains("client-query-buffer-limit") => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 1, "refused once, then QUEUED without storing");
    let exec = redis::cmd("EXEC").query::<Value>(&mut c).unwrap_err();
    assert!(exec.to_string().contains("Transaction discarded"), "{exec}");
    assert_eq!(cmd(&mut c, &["EXISTS", "k"]), Value::Int(0));
    assert_eq!(cmd(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
}

/// Out of memory at EXEC time: a transaction that would grow memory is refused with
/// redis-server's `EXECABORT … because of: OOM …`, one that only reads runs.
#[test]
fn exec_is_refused_when_out_of_memory_and_it_would_grow_memory() {
    let srv = util::cachette(&[]);
    let mut a = srv.redis_client();
    let mut b = srv.redis_client();
    ok(&mut a, &["MULTI"]);
    cmd(&mut a, &["SET", "k", "v"]);
    ok(&mut b, &["CONFIG", "SET", "maxmemory", "1"]);
    let e = redis::cmd("EXEC").query::<Value>(&mut a).unwrap_err();
    assert!(e.to_string().contains("because of: OOM command not allowed"), "{e}");
    ok(&mut b, &["CONFIG", "SET", "maxmemory", "0"]);
    ok(&mut a, &["MULTI"]);
    cmd(&mut a, &["GET", "k"]);
    ok(&mut b, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(cmd(&mut a, &["EXEC"]), Value::Array(vec![Value::Nil]));
    ok(&mut b, &["CONFIG", "SET", "maxmemory", "0"]);
}

#[test]
fn watch_is_invalidated_by_eviction() {
    let srv = util::cachette(&[]);
    let mut a = srv.redis_client();
    let mut b = srv.redis_client();
    ok(&mut b, &["SET", "k", "v"]);
    assert!(!exec_survives(&mut a, "k", || {
        ok(&mut b, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
        ok(&mut b, &["CONFIG", "SET", "maxmemory", "1"]);
        // Any command evicts first; with a 1-byte limit every key goes.
        cmd(&mut b, &["PING"]);
        ok(&mut b, &["CONFIG", "SET", "maxmemory", "0"]);
        assert_eq!(cmd(&mut b, &["EXISTS", "k"]), Value::Int(0));
    }));
}

/// Transactions mixed with everything else that takes shards — multi-key commands, whole-
/// keyspace commands, CONFIG SET of the eviction policy, memcached traffic, the expiry cycle —
/// from several threads: no deadlock (every read has a timeout) and the server stays whole.
/// Error replies are fine here (keys come and go under the other threads); a lost connection or
/// a timeout is not.
fn tolerate(r: redis::RedisResult<Value>) {
    if let Err(e) = r {
        assert!(!e.is_io_error() && !e.is_timeout() && !e.is_connection_dropped(), "{e}");
    }
}

fn any(c: &mut Connection, args: &[&str]) {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    tolerate(r.query::<Value>(c));
}

#[test]
fn transactions_mixed_with_other_traffic_do_not_deadlock() {
    const ROUNDS: usize = 2_000;
    let srv = util::cachette(&["--threads", "2", "--hz", "100"]);
    let timeout = Some(Duration::from_secs(30));
    let mut handles = Vec::new();
    for t in 0..4 {
        let mut c = srv.redis_client();
        c.set_read_timeout(timeout).unwrap();
        handles.push(std::thread::spawn(move || {
            for i in 0..ROUNDS {
                let k = format!("k{}", i % 7);
                match (i + t) % 6 {
                    0 => {
                        let mut p = redis::pipe();
                        p.atomic().cmd("MSET").arg("a").arg(i).arg("b").arg(i).ignore();
                        p.cmd("INCR").arg(&k).ignore().cmd("KEYS").arg("k*").ignore();
                        p.cmd("SET").arg("ttl").arg(1).arg("PX").arg(5).ignore();
                        tolerate(p.query::<Value>(&mut c));
                    }
                    1 => {
                        any(&mut c, &["WATCH", &k, "a"]);
                        any(&mut c, &["MULTI"]);
                        any(&mut c, &["SWAPDB", "0", "1"]);
                        any(
                            &mut c,
                            &[
                                "CONFIG",
                                "SET",
                                "maxmemory-policy",
                                if i % 2 == 0 { "allkeys-lru" } else { "noeviction" },
                            ],
                        );
                        any(&mut c, &["DBSIZE"]);
                        any(&mut c, &["EXEC"]);
                    }
                    2 => {
                        any(&mut c, &["MGET", "a", "b", &k]);
                        any(&mut c, &["SCAN", "0", "COUNT", "100"]);
                    }
                    3 => {
                        let mut p = redis::pipe();
                        p.atomic().cmd("FLUSHDB").ignore().cmd("RPUSH").arg("l").arg(i).ignore();
                        p.cmd("BLPOP").arg("l").arg(0).ignore().cmd("INFO").arg("keyspace").ignore();
                        tolerate(p.query::<Value>(&mut c));
                    }
                    4 => {
                        any(&mut c, &["RENAME", "a", "c"]);
                        any(&mut c, &["SETEX", &k, "1", "v"]);
                    }
                    _ => {
                        any(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
                        // Now and then a limit nothing fits under: every command evicts first.
                        any(&mut c, &["CONFIG", "SET", "maxmemory", if i % 4 == 0 { "1" } else { "0" }]);
                        any(&mut c, &["SMOVE", "s1", "s2", "m"]);
                    }
                }
            }
        }));
    }
    let mut mc = srv.mc();
    mc.set_read_timeout(timeout).unwrap();
    for i in 0..ROUNDS {
        mc.write_all(format!("set k{} 0 0 1\r\nx\r\nget a k{}\r\n", i % 7, i % 5).as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"END\r\n") {
            let n = mc.read(&mut buf).unwrap();
            assert!(n > 0, "memcached connection closed");
            got.extend_from_slice(&buf[..n]);
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let mut c = srv.redis_client();
    assert_eq!(cmd(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
}
