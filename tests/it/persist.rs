//! RDB compatibility with the real redis-server, both directions: a file saved by one is loaded
//! by the other with every key, value and TTL intact (compared through both servers' replies),
//! `redis-check-rdb` accepts cachette's files, DUMP payloads RESTORE across, memcached flags
//! survive a restart, and a SIGKILL during BGSAVE leaves the last good dump.rdb loadable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use redis::Connection;

use crate::util;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("cachette-persist-{}-{tag}-{}", std::process::id(), util::free_port()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cmd<T: redis::FromRedisValue>(con: &mut Connection, args: &[&[u8]]) -> T {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).expect("name"));
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// Every type in its compact and its large encoding, in two databases, some with TTLs.
fn fill(con: &mut Connection) {
    let far = 4_000_000_000_000u64; // year 2096, in ms
    for db in [0u8, 5] {
        let db = db.to_string();
        cmd::<()>(con, &[b"SELECT", db.as_bytes()]);
        cmd::<()>(con, &[b"SET", b"str", b"hello"]);
        cmd::<()>(con, &[b"SET", b"int", b"-12345"]);
        cmd::<()>(con, &[b"SET", b"bigint", b"9223372036854775807"]);
        cmd::<()>(con, &[b"SET", b"leading-zero", b"007"]);
        cmd::<()>(con, &[b"SET", b"long", "compressible text ".repeat(500).as_bytes()]);
        cmd::<()>(con, &[b"SET", b"binary", &[0u8, 255, 13, 10, 7]]);
        cmd::<()>(con, &[b"SET", b"empty", b""]);
        cmd::<()>(con, &[b"SET", b"ttl", b"v"]);
        cmd::<()>(con, &[b"PEXPIREAT", b"ttl", far.to_string().as_bytes()]);
        cmd::<()>(con, &[b"RPUSH", b"list-small", b"a", b"1", b"-70000", b"b"]);
        for chunk in 0..10 {
            let items: Vec<String> = (0..1000).map(|i| format!("item-{chunk}-{i}")).collect();
            let mut args: Vec<&[u8]> = vec![b"RPUSH", b"list-large"];
            args.extend(items.iter().map(|s| s.as_bytes()));
            cmd::<()>(con, &args);
        }
        cmd::<()>(con, &[b"HSET", b"hash-small", b"f1", b"v1", b"f2", b"22"]);
        cmd::<()>(con, &[b"PEXPIREAT", b"hash-small", (far + 1).to_string().as_bytes()]);
        for i in 0..600 {
            cmd::<()>(con, &[b"HSET", b"hash-large", format!("field{i}").as_bytes(), format!("value{i}").as_bytes()]);
        }
        cmd::<()>(con, &[b"HSET", b"hash-longvalue", b"f", "x".repeat(100).as_bytes()]);
        cmd::<()>(con, &[b"SADD", b"set-ints", b"1", b"2", b"-3", b"4000000000"]);
        cmd::<()>(con, &[b"SADD", b"set-strings", b"a", b"b", b"c"]);
        for i in 0..700 {
            cmd::<()>(con, &[b"SADD", b"set-large-ints", i.to_string().as_bytes()]);
            cmd::<()>(con, &[b"SADD", b"set-large", format!("m{i}").as_bytes()]);
        }
        cmd::<()>(con, &[b"ZADD", b"zset-small", b"1.5", b"a", b"-2", b"b", b"inf", b"c"]);
        for i in 0..300 {
            cmd::<()>(
                con,
                &[b"ZADD", b"zset-large", format!("{}", i as f64 / 7.0).as_bytes(), format!("m{i}").as_bytes()],
            );
        }
        cmd::<()>(con, &[b"PEXPIREAT", b"zset-large", (far + 2).to_string().as_bytes()]);
    }
    cmd::<()>(con, &[b"SELECT", b"0"]);
}

/// (db, key) -> (type, canonical value, PEXPIRETIME).
type Contents = BTreeMap<(u8, Vec<u8>), (String, Vec<Vec<u8>>, i64)>;

/// Every key of databases 0..16, as the server's replies show it.
fn contents(con: &mut Connection) -> Contents {
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        cmd::<()>(con, &[b"SELECT", db.to_string().as_bytes()]);
        let keys: Vec<Vec<u8>> = cmd(con, &[b"KEYS", b"*"]);
        for k in keys {
            let t: String = cmd(con, &[b"TYPE", &k]);
            let mut v: Vec<Vec<u8>> = match t.as_str() {
                "string" => vec![cmd(con, &[b"GET", &k])],
                "list" => cmd(con, &[b"LRANGE", &k, b"0", b"-1"]),
                "hash" => {
                    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = cmd(con, &[b"HGETALL", &k]);
                    pairs.sort();
                    pairs.into_iter().flat_map(|(a, b)| [a, b]).collect()
                }
                "set" => cmd(con, &[b"SMEMBERS", &k]),
                "zset" => cmd(con, &[b"ZRANGE", &k, b"0", b"-1", b"WITHSCORES"]),
                other => panic!("unexpected type {other}"),
            };
            if t == "set" {
                v.sort();
            }
            let exp: i64 = cmd(con, &[b"PEXPIRETIME", &k]);
            out.insert((db, k), (t, v, exp));
        }
    }
    cmd::<()>(con, &[b"SELECT", b"0"]);
    out
}

fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(path.exists(), "{} was not written", path.display());
}

#[test]
fn redis_server_dump_loads_in_cachette() {
    let dir = Scratch::new("r2c");
    let Some(redis) = util::redis_server_with(&["--dir", dir.path(), "--dbfilename", "from-redis.rdb"]) else {
        return;
    };
    let mut rc = redis.redis_client();
    fill(&mut rc);
    let want = contents(&mut rc);
    assert_eq!(cmd::<String>(&mut rc, &[b"SAVE"]), "OK");
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "from-redis.rdb"]);
    let mut cc = ca.redis_client();
    let got = contents(&mut cc);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let info: String = cmd(&mut cc, &[b"INFO", b"persistence"]);
    assert!(info.contains(&format!("rdb_last_load_keys_loaded:{}", want.len())), "{info}");
}

#[test]
fn cachette_dump_loads_in_redis_server_and_passes_redis_check_rdb() {
    let dir = Scratch::new("c2r");
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "from-cachette.rdb"]);
    let mut cc = ca.redis_client();
    fill(&mut cc);
    // A memcached item: its flags travel in an AUX record redis-server must skip.
    assert_eq!(util::roundtrip(&mut ca.mc(), b"set mc-item 99 0 3\r\nabc\r\n", 8), b"STORED\r\n");
    let want = contents(&mut cc);
    assert_eq!(cmd::<String>(&mut cc, &[b"SAVE"]), "OK");
    let file = dir.0.join("from-cachette.rdb");
    if let Some(check) =
        ["/usr/bin/redis-check-rdb", "/usr/local/bin/redis-check-rdb"].iter().find(|p| Path::new(p).exists())
    {
        let out = Command::new(check).arg(&file).output().expect("run redis-check-rdb");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");
    }
    let out = Command::new(util::cachette_bin()).arg("check-rdb").arg(&file).output().expect("check-rdb");
    assert!(out.status.success(), "cachette check-rdb: {}", String::from_utf8_lossy(&out.stderr));
    let Some(redis) = util::redis_server_with(&["--dir", dir.path(), "--dbfilename", "from-cachette.rdb"]) else {
        return;
    };
    let got = contents(&mut redis.redis_client());
    assert_eq!(got, want);
}

#[test]
fn dump_restore_moves_values_both_ways() {
    let Some(redis) = util::redis_server() else { return };
    let ca = util::cachette(&[]);
    let (mut rc, mut cc) = (redis.redis_client(), ca.redis_client());
    fill(&mut rc);
    fill(&mut cc);
    let want = contents(&mut rc);
    for forward in [true, false] {
        let (from, to) = if forward { (&mut rc, &mut cc) } else { (&mut cc, &mut rc) };
        let keys: Vec<Vec<u8>> = cmd(from, &[b"KEYS", b"*"]);
        for k in keys.into_iter().filter(|k| !k.ends_with(b"-restored")) {
            let payload: Vec<u8> = cmd(from, &[b"DUMP", &k]);
            let mut target = k.clone();
            target.extend_from_slice(b"-restored");
            let pexp: i64 = cmd(from, &[b"PEXPIRETIME", &k]);
            let ttl = if pexp < 0 { "0".to_string() } else { pexp.to_string() };
            let r: String = cmd(to, &[b"RESTORE", &target, ttl.as_bytes(), &payload, b"ABSTTL"]);
            assert_eq!(r, "OK");
        }
    }
    // Each server now holds, under "-restored", what the other one had (and the fills agree).
    let strip = |m: Contents| -> Contents {
        m.into_iter().filter_map(|((db, k), v)| k.strip_suffix(b"-restored").map(|k| ((db, k.to_vec()), v))).collect()
    };
    let db0: Contents = want.into_iter().filter(|((db, _), _)| *db == 0).collect();
    assert_eq!(strip(contents(&mut cc)), db0, "redis-server -> cachette");
    assert_eq!(strip(contents(&mut rc)), db0, "cachette -> redis-server");
}

#[test]
fn memcached_flags_and_ttls_survive_a_restart() {
    let dir = Scratch::new("mc");
    let args = ["--dir", dir.path(), "--dbfilename", "dump.rdb", "--save", "3600 1"];
    let mut ca = util::cachette(&args);
    let mut mc = ca.mc();
    let reply = util::roundtrip(&mut mc, b"set item 4242 0 5\r\nhello\r\n", 8);
    assert_eq!(reply, b"STORED\r\n");
    let mut cc = ca.redis_client();
    cmd::<()>(&mut cc, &[b"SET", b"ttl", b"v", b"PX", b"1000000"]);
    let exp: i64 = cmd(&mut cc, &[b"PEXPIRETIME", b"ttl"]);
    // SIGTERM with save points set writes the final snapshot.
    assert!(ca.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    drop(ca);
    wait_for_file(&dir.0.join("dump.rdb"));
    let ca = util::cachette(&args);
    let mut mc = ca.mc();
    let reply = util::roundtrip(&mut mc, b"get item\r\n", 30);
    assert_eq!(reply, b"VALUE item 4242 5\r\nhello\r\nEND\r\n");
    let mut cc = ca.redis_client();
    assert_eq!(cmd::<i64>(&mut cc, &[b"PEXPIRETIME", b"ttl"]), exp);
}

#[test]
fn shutdown_save_bgsave_and_lastsave() {
    let dir = Scratch::new("cmds");
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "d.rdb"]);
    let mut cc = ca.redis_client();
    cmd::<()>(&mut cc, &[b"SET", b"a", b"1"]);
    let info: String = cmd(&mut cc, &[b"INFO", b"persistence"]);
    assert!(info.contains("rdb_changes_since_last_save:1"), "{info}");
    assert_eq!(cmd::<String>(&mut cc, &[b"BGSAVE"]), "Background saving started");
    let start = Instant::now();
    loop {
        let info: String = cmd(&mut cc, &[b"INFO", b"persistence"]);
        if info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_saves:1") {
            assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
            assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "BGSAVE never finished: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Inside a transaction (which holds every shard) BGSAVE forks from the shards it lends.
    let (ok, started): (String, String) =
        redis::pipe().atomic().cmd("SET").arg("t").arg("1").cmd("BGSAVE").query(&mut cc).expect("EXEC");
    assert_eq!((ok.as_str(), started.as_str()), ("OK", "Background saving started"));
    let start = Instant::now();
    while !cmd::<String>(&mut cc, &[b"INFO", b"persistence"]).contains("rdb_saves:2") {
        assert!(start.elapsed() < Duration::from_secs(10), "BGSAVE in EXEC never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let lastsave: i64 = cmd(&mut cc, &[b"LASTSAVE"]);
    assert!(lastsave > 1_700_000_000);
    cmd::<()>(&mut cc, &[b"SET", b"b", b"2"]);
    // SHUTDOWN SAVE saves even without save points, and closes the connection without a reply.
    let r: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut cc);
    assert!(r.is_err());
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", ca.port)).is_ok() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ca2 = util::cachette(&["--dir", dir.path(), "--dbfilename", "d.rdb"]);
    let mut c2 = ca2.redis_client();
    assert_eq!(cmd::<Vec<String>>(&mut c2, &[b"MGET", b"a", b"b"]), vec!["1", "2"]);
}

#[test]
fn a_failed_bgsave_is_reported_and_stops_writes() {
    let dir = Scratch::new("fail");
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "d.rdb", "--save", "3600 1"]);
    let mut cc = ca.redis_client();
    cmd::<()>(&mut cc, &[b"SET", b"a", b"1"]);
    // The directory vanishes: the save cannot create its temporary file.
    std::fs::remove_dir_all(&dir.0).expect("remove dir");
    assert_eq!(cmd::<String>(&mut cc, &[b"BGSAVE"]), "Background saving started");
    let start = Instant::now();
    loop {
        let info: String = cmd(&mut cc, &[b"INFO", b"persistence"]);
        if info.contains("rdb_last_bgsave_status:err") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no failure reported: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r: redis::RedisResult<()> = redis::cmd("SET").arg("b").arg("2").query(&mut cc);
    let e = r.expect_err("MISCONF");
    assert_eq!(e.code(), Some("MISCONF"), "{e}");
    assert_eq!(cmd::<String>(&mut cc, &[b"GET", b"a"]), "1", "reads still work");
    cmd::<()>(&mut cc, &[b"CONFIG", b"SET", b"stop-writes-on-bgsave-error", b"no"]);
    cmd::<()>(&mut cc, &[b"SET", b"b", b"2"]);
    std::fs::create_dir_all(&dir.0).expect("recreate dir");
}

#[test]
fn sigkill_during_bgsave_never_damages_the_last_good_dump() {
    let dir = Scratch::new("kill");
    let file = dir.0.join("dump.rdb");
    for round in 0..3 {
        let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "dump.rdb"]);
        let mut cc = ca.redis_client();
        let before: i64 = cmd(&mut cc, &[b"DBSIZE"]);
        // Grow the keyspace so the next BGSAVE takes a while, save once synchronously (the good
        // file), grow again and kill the server in the middle of the background save.
        let mut pipe = redis::pipe();
        for i in 0..50_000 {
            pipe.cmd("SET").arg(format!("r{round}-k{i}")).arg("x".repeat(64)).ignore();
        }
        pipe.query::<()>(&mut cc).expect("fill");
        assert_eq!(cmd::<String>(&mut cc, &[b"SAVE"]), "OK");
        let saved = before + 50_000;
        let mut pipe = redis::pipe();
        for i in 0..50_000 {
            pipe.cmd("SET").arg(format!("r{round}-late{i}")).arg("y".repeat(64)).ignore();
        }
        pipe.query::<()>(&mut cc).expect("fill");
        assert_eq!(cmd::<String>(&mut cc, &[b"BGSAVE"]), "Background saving started");
        std::thread::sleep(Duration::from_millis(round * 15));
        // SAFETY: kill(2) on the server process this test started.
        unsafe {
            libc::kill(ca.pid() as libc::pid_t, libc::SIGKILL);
        }
        drop(ca);
        let out = Command::new(util::cachette_bin()).arg("check-rdb").arg(&file).output().expect("check-rdb");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        // Either the last good snapshot or (if the child finished first) the new one.
        let keys: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("db 0: ").and_then(|r| r.strip_suffix(" keys")))
            .and_then(|n| n.parse().ok())
            .expect("key count in the report");
        assert!(keys == saved || keys == saved + 50_000, "round {round}: {keys} keys, saved {saved}");
        // Start the next round from the file as it is.
        if keys != saved {
            break;
        }
    }
}

fn info_field(con: &mut Connection, field: &str) -> String {
    let info: String = cmd(con, &[b"INFO", b"persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .to_owned()
}

fn wait_bgsave_done(con: &mut Connection) {
    let start = Instant::now();
    while info_field(con, "rdb_bgsave_in_progress") != "0" {
        assert!(start.elapsed() < Duration::from_secs(30), "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// FLUSHALL as redis-server 7.0 does it: with save points it saves the empty dataset at once
/// (rdb_changes_since_last_save 0, rdb_saves not counting it), without them it leaves the file;
/// a background save in flight is stopped either way without being reported as a failure.
#[test]
fn flushall_saves_with_save_points_and_stops_a_bgsave() {
    let dir = Scratch::new("flushall");
    let Some(redis) = util::redis_server_with(&["--dir", dir.path(), "--dbfilename", "r.rdb", "--save", "3600 1"])
    else {
        return;
    };
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "c.rdb", "--save", "3600 1"]);
    let mut observed = Vec::new();
    for (server, file) in [(&redis, "r.rdb"), (&ca, "c.rdb")] {
        let mut c = server.redis_client();
        cmd::<()>(&mut c, &[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"]);
        assert_eq!(cmd::<String>(&mut c, &[b"SAVE"]), "OK");
        let saved = std::fs::metadata(dir.0.join(file)).expect("saved").len();
        cmd::<()>(&mut c, &[b"FLUSHALL"]);
        let emptied = std::fs::metadata(dir.0.join(file)).expect("still there").len();
        assert!(emptied < saved, "{file}: the empty dataset was saved over the file");
        let mut seen = vec![info_field(&mut c, "rdb_changes_since_last_save"), info_field(&mut c, "rdb_saves")];
        // Without save points the flush only counts as changes.
        cmd::<()>(&mut c, &[b"CONFIG", b"SET", b"save", b""]);
        cmd::<()>(&mut c, &[b"SET", b"x", b"1"]);
        cmd::<()>(&mut c, &[b"FLUSHALL"]);
        assert_eq!(std::fs::metadata(dir.0.join(file)).expect("file").len(), emptied);
        seen.push(info_field(&mut c, "rdb_changes_since_last_save"));
        // A slow background save is stopped by FLUSHALL, and that is no failed save.
        for i in 0..200 {
            cmd::<()>(&mut c, &[b"SET", format!("k{i}").as_bytes(), b"v"]);
        }
        cmd::<()>(&mut c, &[b"CONFIG", b"SET", b"rdb-key-save-delay", b"100000"]);
        assert_eq!(cmd::<String>(&mut c, &[b"BGSAVE"]), "Background saving started");
        cmd::<()>(&mut c, &[b"FLUSHALL"]);
        cmd::<()>(&mut c, &[b"CONFIG", b"SET", b"rdb-key-save-delay", b"0"]);
        wait_bgsave_done(&mut c);
        seen.push(info_field(&mut c, "rdb_last_bgsave_status"));
        observed.push(seen);
    }
    assert_eq!(observed[0], ["0", "1", "2", "ok"], "redis-server");
    assert_eq!(observed[1], observed[0], "cachette as redis-server");
    drop(ca);
    let again = util::cachette(&["--dir", dir.path(), "--dbfilename", "c.rdb"]);
    assert_eq!(cmd::<i64>(&mut again.redis_client(), &[b"DBSIZE"]), 0, "the flushed keys stay flushed");
}

/// DEBUG RELOAD saves, flushes and loads the file back (every type and TTL intact); NOSAVE loads
/// the existing file over what changed since; neither counts as a save in rdb_saves.
#[test]
fn debug_reload_saves_flushes_and_loads() {
    let dir = Scratch::new("reload");
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "d.rdb", "--enable-debug-command", "yes"]);
    let mut cc = ca.redis_client();
    fill(&mut cc);
    let want = contents(&mut cc);
    assert_eq!(cmd::<String>(&mut cc, &[b"DEBUG", b"RELOAD"]), "OK");
    assert_eq!(contents(&mut cc), want);
    assert_eq!(info_field(&mut cc, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut cc, "rdb_saves"), "0");
    cmd::<()>(&mut cc, &[b"SET", b"new", b"1"]);
    assert_eq!(cmd::<String>(&mut cc, &[b"DEBUG", b"RELOAD", b"NOSAVE"]), "OK");
    assert_eq!(contents(&mut cc), want, "the key set after the save is gone");
    assert_eq!(info_field(&mut cc, "rdb_changes_since_last_save"), "1");
    cmd::<()>(&mut cc, &[b"SET", b"new", b"1"]);
    assert_eq!(cmd::<String>(&mut cc, &[b"DEBUG", b"RELOAD", b"NOSAVE", b"NOFLUSH", b"MERGE"]), "OK");
    assert_eq!(contents(&mut cc).len(), want.len() + 1, "merged into what was there");
    let e = redis::cmd("DEBUG").arg("RELOAD").arg("SOON").query::<()>(&mut cc).expect_err("bad option");
    assert!(e.to_string().contains("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options"), "{e}");
}

/// While a child saves, reads leave the access clock alone (each write would copy a page for
/// the child), as redis-server's lookupKey does: OBJECT IDLETIME of a key read during a BGSAVE
/// keeps growing; after the save a read resets it again. Side by side with redis-server.
#[test]
fn reads_during_a_bgsave_do_not_touch_the_access_clock() {
    let dir = Scratch::new("lru");
    let Some(redis) = util::redis_server_with(&["--dir", dir.path(), "--dbfilename", "r.rdb"]) else {
        return;
    };
    let ca = util::cachette(&["--dir", dir.path(), "--dbfilename", "c.rdb"]);
    let mut observed = Vec::new();
    for server in [&redis, &ca] {
        let mut c = server.redis_client();
        cmd::<()>(&mut c, &[b"SET", b"probe", b"v"]);
        for i in 0..40 {
            cmd::<()>(&mut c, &[b"SET", format!("k{i}").as_bytes(), b"v"]);
        }
        std::thread::sleep(Duration::from_millis(2100));
        // 41 keys at 50 ms each: the save runs for about two seconds.
        cmd::<()>(&mut c, &[b"CONFIG", b"SET", b"rdb-key-save-delay", b"50000"]);
        assert_eq!(cmd::<String>(&mut c, &[b"BGSAVE"]), "Background saving started");
        let _: String = cmd(&mut c, &[b"GET", b"probe"]);
        let during: i64 = cmd(&mut c, &[b"OBJECT", b"IDLETIME", b"probe"]);
        assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1", "the save is still running");
        cmd::<()>(&mut c, &[b"CONFIG", b"SET", b"rdb-key-save-delay", b"0"]);
        wait_bgsave_done(&mut c);
        let _: String = cmd(&mut c, &[b"GET", b"probe"]);
        let after: i64 = cmd(&mut c, &[b"OBJECT", b"IDLETIME", b"probe"]);
        observed.push((during >= 2, after));
    }
    assert_eq!(observed[0], (true, 0), "redis-server");
    assert_eq!(observed[1], observed[0], "cachette as redis-server");
}
