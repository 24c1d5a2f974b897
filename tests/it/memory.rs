//! The memory limit end to end: every `maxmemory-policy` evicts from the keys it may evict (and
//! noeviction from none), the LRU and LFU policies keep the hot keys, and memcached clients see
//! evictions or memcached's out-of-memory error.

use std::io::{Read, Write};

use crate::util;

const VALUE: usize = 1000;

fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    field(&info, "used_memory")
}

fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {info}"))
}

fn evicted(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
    field(&info, "evicted_keys")
}

/// Fills `prefix:0..n` with 1000-byte values (pipelined), with `EX ttl_base + i` when given.
fn fill(c: &mut redis::Connection, prefix: &str, n: usize, ttl_base: Option<usize>) {
    let value = "x".repeat(VALUE);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            let cmd = p.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value);
            if let Some(base) = ttl_base {
                cmd.arg("EX").arg(base + i);
            }
            cmd.ignore();
        }
        p.query::<()>(c).unwrap();
    }
}

/// How many of `prefix:range` still exist.
fn surviving(c: &mut redis::Connection, prefix: &str, range: std::ops::Range<usize>) -> usize {
    let mut p = redis::pipe();
    for i in range {
        p.cmd("EXISTS").arg(format!("{prefix}:{i}"));
    }
    let found: Vec<i64> = p.query(c).unwrap();
    found.iter().filter(|&&x| x == 1).count()
}

/// Sets the limit to current usage minus `shrink` bytes (so about `shrink / VALUE` keys must go).
fn squeeze(c: &mut redis::Connection, policy: &str, shrink: u64) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query(c).unwrap();
    let limit = used_memory(c) - shrink;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(c).unwrap();
    let _: () = redis::cmd("SET").arg("trigger").arg("x").query(c).unwrap();
    // Each command evicts for a bounded time (maxmemory-eviction-tenacity), and the cron goes
    // on between commands, so the server gets under the limit within a few rounds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let used = used_memory(c);
        if used <= limit + 64 * 1024 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{policy}: memory not back under the limit: {used} > {limit}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    let server = util::cachette(&["--threads", "2"]);
    let mut c = server.redis_client();
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut c).unwrap();
        let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
        fill(&mut c, "p", 2000, None);
        fill(&mut c, "t", 2000, Some(10_000));
        let before = evicted(&mut c);
        squeeze(&mut c, policy, 1000 * (VALUE as u64 + 100));
        assert_eq!(surviving(&mut c, "p", 0..2000), 2000, "{policy} evicted a key without a TTL");
        let t = surviving(&mut c, "t", 0..2000);
        assert!(t < 1200, "{policy}: {t} TTL keys survive");
        assert!(evicted(&mut c) - before >= 800, "{policy}: evicted_keys counts them");
        if policy == "volatile-ttl" {
            // The soonest to expire go first: far fewer survivors in the first half.
            let (early, late) = (surviving(&mut c, "t", 0..1000), surviving(&mut c, "t", 1000..2000));
            assert!(early * 2 < late, "volatile-ttl kept {early} early and {late} late keys");
        }
    }
    // With no TTL key left to evict, writes that need memory are refused.
    let _: () = redis::cmd("DEL").arg((0..2000).map(|i| format!("t:{i}")).collect::<Vec<_>>()).query(&mut c).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut c).unwrap();
    let err = redis::cmd("SET").arg("k").arg("v").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("OOM"));
    assert_eq!(surviving(&mut c, "p", 0..2000), 2000);
}

#[test]
fn noeviction_refuses_writes_and_keeps_reads_and_deletes() {
    let server = util::cachette(&[]);
    let mut c = server.redis_client();
    fill(&mut c, "k", 100, None);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut c).unwrap();
    let err = redis::cmd("SET").arg("new").arg("v").query::<()>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("OOM"));
    assert_eq!(err.detail(), Some("command not allowed when used memory > 'maxmemory'."));
    let v: Option<String> = redis::cmd("GET").arg("k:1").query(&mut c).unwrap();
    assert_eq!(v.map(|v| v.len()), Some(VALUE));
    let n: i64 = redis::cmd("DEL").arg("k:1").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 99, "noeviction never evicts");
    assert_eq!(evicted(&mut c), 0);
}

#[test]
fn lru_and_lfu_keep_the_hot_keys() {
    let server = util::cachette(&["--threads", "2"]);
    let mut c = server.redis_client();
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut c).unwrap();
        // The LFU counter starts at creation under an LFU policy, as in redis-server.
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query(&mut c).unwrap();
        let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
        fill(&mut c, "k", 4000, None);
        if policy == "allkeys-lru" {
            // The LRU clock ticks in seconds.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        for _ in 0..3 {
            let mut p = redis::pipe();
            for i in 0..1000 {
                p.cmd("GET").arg(format!("k:{i}")).ignore();
            }
            p.query::<()>(&mut c).unwrap();
        }
        squeeze(&mut c, policy, 2000 * (VALUE as u64 + 100));
        let hot = surviving(&mut c, "k", 0..1000);
        let cold = surviving(&mut c, "k", 1000..4000);
        assert!(hot >= 900, "{policy}: only {hot} of 1000 hot keys survive ({cold} of 3000 cold)");
        assert!(cold <= 2100, "{policy}: {cold} cold keys survive");
    }
}

#[test]
fn allkeys_random_gets_under_the_limit() {
    let server = util::cachette(&[]);
    let mut c = server.redis_client();
    fill(&mut c, "k", 3000, None);
    squeeze(&mut c, "allkeys-random", 1000 * (VALUE as u64 + 100));
    let left = surviving(&mut c, "k", 0..3000);
    assert!((1000..2300).contains(&left), "{left} keys left");
}

fn mc_line(s: &mut std::net::TcpStream, req: &[u8]) -> String {
    s.write_all(req).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1);
        buf.push(b[0]);
    }
    String::from_utf8(buf).unwrap()
}

#[test]
fn memcached_clients_see_evictions_or_out_of_memory() {
    let server = util::cachette(&[]);
    let mut c = server.redis_client();
    let mut mc = server.mc();
    let value = "v".repeat(VALUE);
    for i in 0..2000 {
        let req = format!("set m{i} 0 0 {}\r\n{value}\r\n", value.len());
        assert_eq!(mc_line(&mut mc, req.as_bytes()), "STORED\r\n");
    }
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").query(&mut c).unwrap();
    let limit = used_memory(&mut c) - 500 * (VALUE as u64 + 100);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    for i in 2000..2500 {
        let req = format!("set m{i} 0 0 {}\r\n{value}\r\n", value.len());
        assert_eq!(mc_line(&mut mc, req.as_bytes()), "STORED\r\n", "memcached evicts to make room");
    }
    mc.write_all(b"stats\r\n").unwrap();
    let mut stats = String::new();
    while !stats.ends_with("END\r\n") {
        let mut buf = [0u8; 4096];
        let n = mc.read(&mut buf).unwrap();
        stats.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let evictions: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT evictions "))
        .and_then(|v| v.trim().parse().ok())
        .expect("STAT evictions");
    assert!(evictions >= 900, "{evictions} evictions");
    assert!(stats.contains(&format!("STAT limit_maxbytes {limit}\r\n")));
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").query(&mut c).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut c).unwrap();
    assert_eq!(mc_line(&mut mc, b"set x 0 0 1\r\nx\r\n"), "SERVER_ERROR out of memory storing object\r\n");
    assert_eq!(mc_line(&mut mc, b"ms x 1\r\nx\r\n"), "SERVER_ERROR out of memory storing object\r\n");
    assert!(mc_line(&mut mc, b"get m2499\r\n").starts_with("VALUE m2499 0 1000"), "reads still work");
}
