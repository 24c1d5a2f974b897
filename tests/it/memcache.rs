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
}
