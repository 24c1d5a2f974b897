//! memcached end to end: the `memcache` client crate and raw text against the real binary, and
//! one keyspace shared with RESP clients.

use crate::util;

#[test]
fn memcache_crate_roundtrip() {
    let srv = util::cachette(&[]);
    let mc = srv.memcache_client();
    mc.set("alpha", "one", 0).unwrap();
    let v: Option<String> = mc.get("alpha").unwrap();
    assert_eq!(v.as_deref(), Some("one"));
    assert!(mc.add("alpha", "two", 0).is_err() || mc.get::<String>("alpha").unwrap().as_deref() == Some("one"));
    mc.set("n", 10u64, 0).unwrap();
    assert_eq!(mc.increment("n", 5).unwrap(), 15);
    assert_eq!(mc.decrement("n", 100).unwrap(), 0);
    assert!(mc.delete("alpha").unwrap());
    let v: Option<String> = mc.get("alpha").unwrap();
    assert_eq!(v, None);
}

#[test]
fn one_keyspace_for_both_protocols() {
    let srv = util::cachette(&[]);
    let mut r = srv.redis_client();
    let mut m = srv.mc();
    let _: () = redis::cmd("SET").arg("shared").arg("from-redis").query(&mut r).unwrap();
    let got = util::roundtrip(&mut m, b"get shared\r\n", 36);
    assert_eq!(got, b"VALUE shared 0 10\r\nfrom-redis\r\nEND\r\n");
    let got = util::roundtrip(&mut m, b"set shared 42 0 7\r\nfrom-mc\r\n", 8);
    assert_eq!(got, b"STORED\r\n");
    let v: String = redis::cmd("GET").arg("shared").query(&mut r).unwrap();
    assert_eq!(v, "from-mc");
    // memcached flags survive a Redis read and are dropped by a Redis write, like a fresh SET.
    let got = util::roundtrip(&mut m, b"get shared\r\n", 34);
    assert_eq!(got, b"VALUE shared 42 7\r\nfrom-mc\r\nEND\r\n");
}

#[test]
fn cas_notices_a_redis_write_in_between() {
    let srv = util::cachette(&[]);
    let mut r = srv.redis_client();
    let mut m = srv.mc();
    util::roundtrip(&mut m, b"set c 0 0 1\r\na\r\n", 8);
    let got = util::roundtrip(&mut m, b"gets c\r\n", 20);
    let line = String::from_utf8_lossy(&got);
    let cas: u64 = line.split_whitespace().nth(4).and_then(|t| t.parse().ok()).expect("cas token");
    let _: () = redis::cmd("SET").arg("c").arg("b").query(&mut r).unwrap();
    let got = util::roundtrip(&mut m, format!("cas c 0 0 1 {cas}\r\nz\r\n").as_bytes(), 8);
    assert_eq!(got, b"EXISTS\r\n");

    // A Redis-written item is stored without a CAS; the first memcached read gives it one,
    // which stays put until the next write, Redis's in-place ones included.
    let gets = |m: &mut std::net::TcpStream| -> u64 {
        let got = ask(m, b"gets c\r\n", b"END\r\n");
        got.split_whitespace().nth(4).and_then(|t| t.parse().ok()).expect("cas token")
    };
    let first = gets(&mut m);
    assert!(first > cas, "{first} after {cas}");
    assert_eq!(gets(&mut m), first, "stable between writes");
    let _: i64 = redis::cmd("APPEND").arg("c").arg("c").query(&mut r).unwrap();
    let after = gets(&mut m);
    assert!(after > first, "an in-place Redis write renews it");
    let got = util::roundtrip(&mut m, format!("cas c 0 0 1 {first}\r\nz\r\n").as_bytes(), 8);
    assert_eq!(got, b"EXISTS\r\n");
    let got = util::roundtrip(&mut m, format!("cas c 0 0 1 {after}\r\nz\r\n").as_bytes(), 8);
    assert_eq!(got, b"STORED\r\n");
}

/// Sends `req` and reads until the reply ends with `end` (or 5 s pass).
fn ask(m: &mut std::net::TcpStream, req: &[u8], end: &[u8]) -> String {
    use std::io::{Read, Write};
    m.write_all(req).expect("write");
    m.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        match m.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn memcached_command_line_flags() {
    // An operator's memcached command line, with cachette's switch for memcached's defaults.
    let mut srv = util::cachette_memcached_style(&[
        "--memcached-compat",
        "-U",
        "0",
        "-t",
        "2",
        "-c",
        "100",
        "-I",
        "2m",
        "-C",
        "-A",
        "-B",
        "ascii",
        "-vv",
        "-o",
        "modern,idle_timeout=0",
    ]);
    let mut m = srv.mc();
    let settings = ask(&mut m, b"stats settings\r\n", b"END\r\n");
    for want in [
        "STAT maxbytes 67108864\r\n",
        "STAT maxconns 100\r\n",
        &format!("STAT tcpport {}\r\n", srv.mc_port),
        "STAT evictions on\r\n",
        "STAT shutdown_command yes\r\n",
        "STAT num_threads 2\r\n",
        "STAT cas_enabled no\r\n",
        "STAT binding_protocol ascii\r\n",
        "STAT item_size_max 2097152\r\n",
    ] {
        assert!(settings.contains(want), "{want:?} missing from:\n{settings}");
    }
    assert!(ask(&mut m, b"stats\r\n", b"END\r\n").contains("STAT limit_maxbytes 67108864\r\n"));
    // -I 2m: a 1.5 MB value fits.
    let big = vec![b'x'; 1_500_000];
    let mut req = b"set big 0 0 1500000\r\n".to_vec();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n");
    assert_eq!(ask(&mut m, &req, b"\r\n"), "STORED\r\n");
    // -C: CAS uniques read 0 and every compare-and-swap fails, as memcached -C answers.
    assert_eq!(ask(&mut m, b"set k 0 0 1\r\nx\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut m, b"gets k\r\n", b"END\r\n"), "VALUE k 0 1 0\r\nx\r\nEND\r\n");
    assert_eq!(ask(&mut m, b"cas k 0 0 1 0\r\ny\r\n", b"\r\n"), "EXISTS\r\n");
    assert_eq!(ask(&mut m, b"mg k c v\r\n", b"x\r\n"), "VA 1 c0\r\nx\r\n");
    assert_eq!(ask(&mut m, b"ms k 1 C0\r\nq\r\n", b"\r\n"), "EX\r\n");
    assert_eq!(ask(&mut m, b"ms k 1 c\r\nq\r\n", b"\r\n"), "HD c0\r\n");
    // ... except where 0 means "do not compare": append, and md/ma comparing with C0.
    assert_eq!(ask(&mut m, b"ms k 1 MA C0\r\nz\r\n", b"\r\n"), "HD\r\n");
    assert_eq!(ask(&mut m, b"gats 10 k\r\n", b"END\r\n"), "VALUE k 0 2 0\r\nqz\r\nEND\r\n");
    assert_eq!(ask(&mut m, b"set n 0 0 1\r\n5\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut m, b"ma n C0 v\r\n", b"6\r\n"), "VA 1\r\n6\r\n");
    assert_eq!(ask(&mut m, b"ma n C1 v\r\n", b"\r\n"), "EX\r\n");
    assert_eq!(ask(&mut m, b"md n C0 q\r\nmn\r\n", b"MN\r\n"), "MN\r\n");
    // -A: shutdown stops the server; memcached closes the connection without a reply.
    assert_eq!(ask(&mut m, b"shutdown foo\r\n", b"\r\n"), "CLIENT_ERROR invalid shutdown mode\r\n");
    assert_eq!(ask(&mut m, b"shutdown\r\n", b"\r\n"), "");
    let status = srv.wait_exit(std::time::Duration::from_secs(10)).expect("cachette exits after shutdown");
    assert!(status.success(), "{status}");
}

#[test]
fn memcached_flags_cachette_refuses() {
    for (args, says) in [
        (&["-U", "11211"][..], "UDP"),
        (&["-d"][..], "-d has no counterpart"),
        (&["-m", "lots"][..], "megabytes"),
        (&["-o", "ext_path=/tmp/x:64m"][..], "ext_path"),
    ] {
        let out = std::process::Command::new(util::cachette_bin())
            .args(["--port", "0", "-p", "0"])
            .args(args)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{args:?} should be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn dumps_and_watch() {
    let srv = util::cachette(&[]);
    let mut m = srv.mc();
    assert_eq!(ask(&mut m, b"set dump/me 0 0 1\r\nx\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(ask(&mut m, b"set other 3 1000 3\r\nabc\r\n", b"\r\n"), "STORED\r\n");
    let dump = ask(&mut m, b"lru_crawler metadump all\r\n", b"END\r\n");
    let lines: Vec<&str> = dump.split('\n').collect();
    assert_eq!(lines.len(), 4, "{dump}");
    let mine = lines.iter().find(|l| l.starts_with("key=dump%2Fme ")).expect("URI-encoded key");
    assert!(mine.contains(" exp=-1 ") && mine.contains(" fetch=no cls=1 size=67"), "{mine}");
    let other = lines.iter().find(|l| l.starts_with("key=other ")).expect("other key");
    assert!(!other.contains("exp=-1"), "{other}");
    assert_eq!(lines[2..], ["END\r", ""]);
    let dump = ask(&mut m, b"stats cachedump 1 0\r\n", b"END\r\n");
    assert!(dump.contains("ITEM dump/me [1 b; 0 s]\r\n"), "{dump}");
    assert_eq!(ask(&mut m, b"stats cachedump 1 1\r\n", b"END\r\n").matches("ITEM ").count(), 1);
    assert_eq!(ask(&mut m, b"watch\r\n", b"\r\n"), "CLIENT_ERROR watch commands not allowed\r\n");
    // No slab pages, so never a spare one to move; memcached's class range still applies.
    for (req, want) in [
        (&b"slabs reassign 1 2\r\n"[..], "NOSPARE source class has no spare pages\r\n"),
        (b"slabs reassign 0 39\r\n", "NOSPARE source class has no spare pages\r\n"),
        (b"slabs reassign -1 2\r\n", "BADCLASS invalid src or dst class id\r\n"),
        (b"slabs reassign 1 40\r\n", "BADCLASS invalid src or dst class id\r\n"),
    ] {
        assert_eq!(ask(&mut m, req, b"\r\n"), want);
    }
    // A crawl reclaims what has expired; the dump stops listing it at once either way.
    assert_eq!(ask(&mut m, b"set short 0 1 1\r\nx\r\n", b"\r\n"), "STORED\r\n");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(ask(&mut m, b"lru_crawler crawl all\r\n", b"\r\n"), "OK\r\n");
    assert!(!ask(&mut m, b"lru_crawler metadump all\r\n", b"END\r\n").contains("key=short"));
    // cache_memlimit is maxmemory, visible to Redis clients too.
    assert_eq!(ask(&mut m, b"cache_memlimit 100\r\n", b"\r\n"), "OK\r\n");
    let mut r = srv.redis_client();
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut r).unwrap();
    assert_eq!(v, vec!["maxmemory".to_string(), (100 * 1024 * 1024).to_string()]);
}

#[test]
fn get_expired_counts_reads_that_find_an_expired_item() {
    // hz 1: the background expiry cycle (which would reclaim the key unseen) runs once a second,
    // so the read a few milliseconds after expiry is almost always the one that finds it.
    let srv = util::cachette(&["--hz", "1"]);
    let mut r = srv.redis_client();
    let mut m = srv.mc();
    for key in ["e1", "e2"] {
        assert_eq!(ask(&mut m, format!("set {key} 0 0 1\r\nx\r\n").as_bytes(), b"\r\n"), "STORED\r\n");
        let _: () = redis::cmd("PEXPIRE").arg(key).arg(1).query(&mut r).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(ask(&mut m, b"get e1\r\n", b"END\r\n"), "END\r\n");
    assert_eq!(ask(&mut m, b"mg e2 v\r\n", b"\r\n"), "EN\r\n");
    let stats = ask(&mut m, b"stats\r\n", b"END\r\n");
    assert!(stats.contains("STAT get_expired 2\r\n") && stats.contains("STAT get_misses 2\r\n"), "{stats}");
    assert!(stats.contains("STAT expired_unfetched 2\r\n"), "{stats}");
}
