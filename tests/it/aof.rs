//! The append-only file: every type, TTLs and memcached items survive restarts (clean, SIGKILL,
//! after BGREWRITEAOF under load); `appendfsync always` loses no acknowledged write across 50
//! SIGKILLs; a truncated tail is repaired or refused per `aof-load-truncated`; corruption in
//! the middle stops start-up naming the offset; the log replays into redis-server itself.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{cachette_bin, cachette_in, redis_server, Proc};

/// A scratch directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("cachette-aof-{}-{name}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Path, extra: &[&str]) -> Proc {
    let mut args = vec!["--appendonly", "yes"];
    args.extend_from_slice(extra);
    cachette_in(dir, &args).unwrap_or_else(|| {
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        panic!("cachette did not start: {log}")
    })
}

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<redis::Value>(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every key of every database: type, value, absolute expiry, and for strings of db 0 the
/// memcached flags.
fn dump(p: &Proc) -> BTreeMap<(usize, Vec<u8>), String> {
    dump_keys(p, true)
}

/// [`dump`] without the memcached part (for redis-server); its lines end in a space where
/// `dump`'s flags would be.
pub(crate) fn dump_keys(p: &Proc, with_flags: bool) -> BTreeMap<(usize, Vec<u8>), String> {
    let mut con = p.redis_client();
    let mut mc = with_flags.then(|| p.mc());
    let mut out = BTreeMap::new();
    for db in 0..16usize {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut con).expect("select");
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).expect("keys");
        for key in keys {
            let t: String = redis::cmd("TYPE").arg(&key).query(&mut con).expect("type");
            let v: redis::Value = match t.as_str() {
                "string" => redis::cmd("GET").arg(&key).query(&mut con),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut con),
                "hash" => redis::cmd("HGETALL").arg(&key).query(&mut con),
                "set" => redis::cmd("SMEMBERS").arg(&key).query(&mut con),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES").query(&mut con),
                other => panic!("type {other}"),
            }
            .expect("value");
            let v = match (t.as_str(), v) {
                ("set", redis::Value::Array(mut items)) => {
                    items.sort_by_key(|i| format!("{i:?}"));
                    redis::Value::Array(items)
                }
                ("hash", redis::Value::Array(items)) => {
                    let mut pairs: Vec<String> = items.chunks(2).map(|c| format!("{c:?}")).collect();
                    pairs.sort();
                    redis::Value::SimpleString(pairs.join(","))
                }
                (_, v) => v,
            };
            let exp: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut con).expect("pexpiretime");
            let mut flags = String::new();
            if let Some(mc) =
                mc.as_mut().filter(|_| db == 0 && t == "string" && !key.contains(&b' ') && key.len() < 200)
            {
                mc.write_all(b"mg ").expect("mg");
                mc.write_all(&key).expect("mg");
                mc.write_all(b" f\r\n").expect("mg");
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while !line.ends_with(b"\r\n") {
                    mc.read_exact(&mut b).expect("mg reply");
                    line.push(b[0]);
                }
                flags = String::from_utf8_lossy(&line).trim().to_owned();
            }
            out.insert((db, key), format!("{t} {v:?} exp={exp} {flags}"));
        }
    }
    out
}

fn mc_cmd(p: &Proc, text: &str) -> String {
    String::from_utf8_lossy(&crate::util::mc_exchange(p, text.as_bytes())).into_owned()
}

/// Writes one of everything the AOF must rebuild: every type, every kind of TTL, the
/// commands logged as something else, a transaction, other databases, memcached items.
pub(crate) fn write_everything(p: &Proc) {
    write_redis_everything(p);
    // memcached items, with flags and expiry.
    let r = mc_cmd(
        p,
        "set mc1 42 0 3\r\nabc\r\nset mc2 7 100000 2\r\nxy\r\nset mc3 0 0 1\r\n5\r\nincr mc3 10\r\n\
         append mc1 0 0 2\r\nde\r\nprepend mc2 0 0 1\r\nw\r\nset mcdel 1 0 1\r\nq\r\ndelete mcdel\r\n\
         touch mc3 50000\r\nadd mc4 9 0 1\r\nz\r\nms mc5 2 F17 T900\r\nhi\r\nma mc3 D5\r\n\
         set mcgone 1 0 1\r\nq\r\ntouch mcgone -1\r\nmn\r\n",
    );
    assert!(r.ends_with("MN\r\n"), "memcached writes: {r}");
}

/// The Redis half of [`write_everything`]: what a redis-server primary can be given too
/// (replication tests use it).
pub(crate) fn write_redis_everything(p: &Proc) {
    let mut c = p.redis_client();
    let far = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis()
        + 3_600_000)
        .to_string();
    for args in [
        &["SET", "s", "plain"][..],
        &["SET", "s_ex", "v", "EX", "1000"],
        &["SET", "s_px_nx", "v", "PX", "900000", "NX"],
        &["SET", "s_px_nx", "other", "PX", "5", "NX"],
        &["SETEX", "setex", "1000", "v"],
        &["PSETEX", "psetex", "1000000", "v"],
        &["SET", "getex", "v"],
        &["GETEX", "getex", "EX", "5000"],
        &["SET", "persisted", "v", "EX", "100"],
        &["GETEX", "persisted", "PERSIST"],
        &["SET", "gone", "v"],
        &["EXPIRE", "gone", "-1"],
        &["SET", "exp", "v"],
        &["EXPIRE", "exp", "777"],
        &["SET", "pexp", "v"],
        &["PEXPIRE", "pexp", "777000"],
        &["SET", "expat", "v"],
        &["PEXPIREAT", "expat", &far],
        &["INCRBYFLOAT", "f", "1.1"],
        &["INCRBYFLOAT", "f", "2.2e3"],
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["APPEND", "app", "ab"],
        &["APPEND", "app", "cd"],
        &["SETRANGE", "app", "1", "XY"],
        &["SETBIT", "bits", "100", "1"],
        &["PFADD", "hll", "a", "b", "c"],
        &["MSET", "m1", "1", "m2", "2"],
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["LPUSH", "l", "z"],
        &["LPOP", "l"],
        &["RPOP", "l", "2"],
        &["LINSERT", "l", "BEFORE", "b", "ab"],
        &["RPUSH", "l2", "x", "y"],
        &["LMOVE", "l2", "l3", "LEFT", "RIGHT"],
        &["LMPOP", "1", "l2", "RIGHT", "COUNT", "5"],
        &["HSET", "h", "a", "1", "b", "2", "c", "3"],
        &["HDEL", "h", "c"],
        &["HINCRBYFLOAT", "h", "f", "0.25"],
        &["HINCRBYFLOAT", "h", "f", "1e2"],
        &["HINCRBY", "h", "i", "5"],
        &["SADD", "set", "a", "b", "c", "d", "e", "f", "g", "h", "1", "2", "3"],
        &["SPOP", "set"],
        &["SPOP", "set", "3"],
        &["SADD", "ints", "1", "2", "3", "4"],
        &["SPOP", "ints", "10"],
        &["SADD", "ints2", "1", "2", "3", "4"],
        &["SREM", "ints2", "2"],
        &["ZADD", "z", "1", "a", "2.5", "b", "-inf", "c", "inf", "d", "0.1", "e"],
        &["ZINCRBY", "z", "0.2", "e"],
        &["ZPOPMIN", "z"],
        &["ZMPOP", "1", "z", "MAX", "COUNT", "1"],
        &["ZADD", "z2", "1", "a", "2", "b"],
        &["ZUNIONSTORE", "z3", "2", "z", "z2"],
        &["RENAME", "m1", "renamed"],
        &["COPY", "renamed", "copied"],
        &["SELECT", "3"],
        &["SET", "in3", "v", "EX", "5000"],
        &["RPUSH", "l", "db3"],
        &["SELECT", "0"],
        &["MOVE", "m2", "5"],
        &["SET", "tmp", "v"],
        &["DEL", "tmp"],
    ] {
        q(&mut c, args);
    }
    // A transaction, logged between MULTI and EXEC.
    q(&mut c, &["MULTI"]);
    q(&mut c, &["INCR", "txn"]);
    q(&mut c, &["SPOP", "set"]);
    q(&mut c, &["EXPIRE", "txn", "9000"]);
    q(&mut c, &["EXEC"]);
    // A blocking pop served later, by the thread of the client that pushed.
    let port = p.port;
    let waiter = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
        let mut w = client.get_connection().expect("conn");
        let got: Vec<String> = redis::cmd("BLPOP").arg("bl").arg(5).query(&mut w).expect("blpop");
        let moved: String =
            redis::cmd("BLMOVE").arg("bl").arg("bl2").arg("RIGHT").arg("LEFT").arg(5).query(&mut w).expect("blmove");
        (got, moved)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut c).expect("info");
        if info.contains("blocked_clients:1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    q(&mut c, &["RPUSH", "bl", "one", "two", "three"]);
    let (got, moved) = waiter.join().expect("waiter");
    assert_eq!((got[1].as_str(), moved.as_str()), ("one", "three"));
}

#[test]
fn every_type_ttl_and_memcached_item_survives_restarts() {
    let dir = TempDir::new("types");
    let mut p = start(&dir.0, &["--appendfsync", "always"]);
    write_everything(&p);
    let before = dump(&p);
    assert!(before.len() > 30, "{before:?}");
    assert!(before.get(&(0, b"mc1".to_vec())).is_some_and(|v| v.contains("f42")), "{before:?}");
    // Clean stop.
    p.terminate(Duration::from_secs(10)).expect("stops");
    let mut p = start(&dir.0, &[]);
    assert_eq!(dump(&p), before, "after a clean restart");
    // SIGKILL (everysec: the writer has long since written it).
    std::thread::sleep(Duration::from_millis(1200));
    drop(p);
    p = start(&dir.0, &[]);
    assert_eq!(dump(&p), before, "after SIGKILL");
    // Rewritten into a base file, then more writes into the new incremental file.
    let mut c = p.redis_client();
    q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    let manifest = std::fs::read_to_string(dir.0.join("appendonlydir/appendonly.aof.manifest")).expect("manifest");
    assert!(manifest.contains("type b") && manifest.contains("type i"), "{manifest}");
    q(&mut c, &["SET", "after", "rewrite"]);
    let before = dump(&p);
    p.terminate(Duration::from_secs(10)).expect("stops");
    let p = start(&dir.0, &[]);
    assert_eq!(dump(&p), before, "after BGREWRITEAOF and a restart");
    let mut c = p.redis_client();
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).expect("info");
    assert!(info.contains("aof_enabled:1") && info.contains("aof_last_write_status:ok"), "{info}");
}

fn wait_rewrite(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(c).expect("info");
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
            return;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log, replayed into redis-server 7 itself (minus cachette's MCFLAGS), gives the same
/// keyspace: the effects are deterministic Redis commands.
#[test]
fn the_log_replays_into_redis_server() {
    let Some(reference) = redis_server() else { return };
    let dir = TempDir::new("replay");
    // RESP bases, so the whole log is commands (the RDB-preamble base has its own test).
    let p = start(&dir.0, &["--appendfsync", "always", "--aof-use-rdb-preamble", "no"]);
    write_everything(&p);
    let mut c = p.redis_client();
    // Lazily expire what has expired, so both sides agree on it.
    let ours = dump(&p);
    q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    q(&mut c, &["SET", "after", "rewrite"]);
    q(&mut c, &["SPOP", "set"]);
    let ours_after = dump(&p);
    drop(p);
    let aofdir = dir.0.join("appendonlydir");
    let manifest = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).expect("manifest");
    let mut log = Vec::new();
    for line in manifest.lines() {
        let name = line.split(' ').nth(1).expect("name");
        log.extend(std::fs::read(aofdir.join(name)).expect("file"));
    }
    // Replay every command except MCFLAGS into the reference.
    let mut s = reference.resp();
    let mut at = 0;
    let mut sent = 0;
    let mut args = cachette_resp::Args::new();
    while at < log.len() {
        match cachette_resp::parse_request(&log[at..], &Default::default(), &mut args).expect("valid log") {
            cachette_resp::Status::Complete(n) => {
                if !args.get(&log[at..at + n], 0).eq_ignore_ascii_case(b"MCFLAGS") {
                    s.write_all(&log[at..at + n]).expect("send");
                    sent += 1;
                }
                at += n;
            }
            cachette_resp::Status::Incomplete => panic!("log cut at {at}"),
        }
    }
    s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("ping");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !got.ends_with(b"+PONG\r\n") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "reference closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(sent > 50);
    let strip = |m: &BTreeMap<(usize, Vec<u8>), String>| -> BTreeMap<(usize, Vec<u8>), String> {
        m.iter().map(|(k, v)| (k.clone(), v.split(" exp=").next().unwrap_or("").to_owned())).collect()
    };
    let (theirs, ours_after) = (strip(&dump_redis(&reference)), strip(&ours_after));
    let differ: Vec<_> = theirs
        .keys()
        .chain(ours_after.keys())
        .filter(|k| theirs.get(*k) != ours_after.get(*k))
        .map(|k| (String::from_utf8_lossy(&k.1).into_owned(), theirs.get(k), ours_after.get(k)))
        .collect();
    assert!(differ.is_empty(), "(key, redis-server, cachette): {differ:?}");
    assert_ne!(ours, ours_after);
}

/// [`dump`] without the memcached part (for redis-server).
fn dump_redis(p: &Proc) -> BTreeMap<(usize, Vec<u8>), String> {
    dump_keys(p, false)
}

/// Runs writers that record every acknowledged write, SIGKILLs the server after `run`, and
/// returns (acknowledged, present after restart) per writer.
fn kill_round(dir: &Path, fsync: &str, run: Duration, prev: &[u64], round: usize) -> Vec<(u64, u64)> {
    let p = start(dir, &["--appendfsync", fsync]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for (w, &start_at) in prev.iter().enumerate() {
        // What the last restart showed, in case this writer never gets to run before the kill.
        let acked = Arc::new(AtomicU64::new(start_at));
        let (stop, port, a) = (stop.clone(), p.port, acked.clone());
        // Each writer continues its own list: it first reads how far the last round got.
        let h = std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
            let Ok(mut c) = client.get_connection() else { return };
            let key = format!("log{w}");
            let Ok(mut next) = redis::cmd("LLEN").arg(&key).query::<u64>(&mut c) else { return };
            a.store(next, Ordering::SeqCst);
            while !stop.load(Ordering::Relaxed) && next < 1_000_000 {
                let r: redis::RedisResult<u64> = redis::cmd("RPUSH").arg(&key).arg(next).query(&mut c);
                match r {
                    Ok(len) => {
                        assert_eq!(len, next + 1, "round {round}: RPUSH answered a length out of sequence");
                        next += 1;
                        a.store(next, Ordering::SeqCst);
                    }
                    Err(_) => return,
                }
            }
        });
        handles.push((h, acked));
    }
    std::thread::sleep(run);
    drop(p); // SIGKILL
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<u64> = handles
        .into_iter()
        .map(|(h, a)| {
            let _ = h.join();
            a.load(Ordering::SeqCst)
        })
        .collect();
    let p = start(dir, &["--appendfsync", fsync]);
    let mut c = p.redis_client();
    let mut out = Vec::new();
    for (w, acked) in acked.into_iter().enumerate() {
        let items: Vec<u64> = redis::cmd("LRANGE").arg(format!("log{w}")).arg(0).arg(-1).query(&mut c).expect("lrange");
        // Whatever is there is a whole prefix of what was sent: nothing torn or out of order.
        for (i, v) in items.iter().enumerate() {
            assert_eq!(*v, i as u64, "round {round}, writer {w}: element {i} is {v}");
        }
        out.push((acked, items.len() as u64));
    }
    out
}

/// 50 SIGKILLs at random moments under `appendfsync always`: every acknowledged write is there.
#[test]
fn appendfsync_always_loses_no_acknowledged_write_across_50_sigkills() {
    let dir = TempDir::new("crash");
    let mut seed = std::process::id() as u64 | 1;
    let started = Instant::now();
    let mut prev = vec![0; 3];
    for round in 0..50 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run = Duration::from_millis(5 + seed % 60);
        let result = kill_round(&dir.0, "always", run, &prev, round);
        prev = result.iter().map(|r| r.1).collect();
        for (w, (acked, present)) in result.into_iter().enumerate() {
            assert!(present >= acked, "round {round}, writer {w}: {acked} acknowledged, {present} after restart");
            // At most the one write in flight when the kill came is there unacknowledged.
            assert!(present <= acked + 1, "round {round}, writer {w}: {present} present, {acked} acknowledged");
        }
        if started.elapsed() > Duration::from_secs(240) {
            eprintln!("crash test stopped after {} rounds (time bound)", round + 1);
            break;
        }
    }
}

/// `appendfsync everysec`: reports the most acknowledged writes one SIGKILL lost.
#[test]
fn appendfsync_everysec_reports_writes_lost_per_kill() {
    let dir = TempDir::new("everysec");
    let mut worst = 0;
    let mut prev = vec![0; 2];
    for round in 0..8 {
        let run = Duration::from_millis(100 + 150 * (round as u64 % 4));
        let result = kill_round(&dir.0, "everysec", run, &prev, round);
        prev = result.iter().map(|r| r.1).collect();
        for (acked, present) in result {
            worst = worst.max(acked.saturating_sub(present));
        }
    }
    // SIGKILL does not drop the kernel's page cache, so written-but-unsynced data survives a
    // process crash: only a machine crash would lose up to a second.
    eprintln!("appendfsync everysec: most acknowledged writes lost in one SIGKILL: {worst}");
}

fn incr_file(dir: &Path) -> PathBuf {
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).expect("manifest");
    let name = manifest.lines().rev().find(|l| l.ends_with("type i")).and_then(|l| l.split(' ').nth(1)).expect("incr");
    dir.join("appendonlydir").join(name)
}

fn run_to_exit(dir: &Path, extra: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(cachette_bin());
    cmd.current_dir(dir).args(["--port", "0", "--memcache-port", "0", "--metrics-port", "0", "--appendonly", "yes"]);
    // Both ports 0 is refused by validation, so give one a free port and let it exit on load.
    let port = crate::util::free_port().to_string();
    cmd.args(["--port", &port]).args(extra);
    let out = cmd.output().expect("run");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn truncated_tail_is_repaired_or_refused_and_corruption_names_the_offset() {
    let dir = TempDir::new("trunc");
    let mut p = start(&dir.0, &["--appendfsync", "always"]);
    let mut c = p.redis_client();
    q(&mut c, &["SET", "a", "1"]);
    q(&mut c, &["SET", "b", "2"]);
    p.terminate(Duration::from_secs(10)).expect("stops");
    let incr = incr_file(&dir.0);
    let whole = std::fs::read(&incr).expect("incr");
    // A command cut short, as a crash mid-write leaves it.
    let mut cut = whole.clone();
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhel");
    std::fs::write(&incr, &cut).expect("write");
    let (ok, err) = run_to_exit(&dir.0, &["--aof-load-truncated", "no"]);
    assert!(!ok && err.contains("Unexpected end of file"), "{err}");
    // check-aof sees it, --fix repairs it.
    let out = std::process::Command::new(cachette_bin()).args(["check-aof"]).arg(&incr).output().expect("check-aof");
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let p = start(&dir.0, &["--aof-load-truncated", "yes"]);
    let mut c = p.redis_client();
    let v: Vec<Option<String>> = redis::cmd("MGET").arg("a").arg("b").arg("c").query(&mut c).expect("mget");
    assert_eq!(v, vec![Some("1".into()), Some("2".into()), None]);
    drop(p);
    assert_eq!(std::fs::read(&incr).expect("incr"), whole, "the cut command is truncated away");
    let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
    assert!(log.contains("loaded anyway because aof-load-truncated is enabled"), "{log}");
    // Damage in the middle stops start-up, naming the file and the offset.
    let mut bad = whole.clone();
    let at = whole.len() / 2;
    bad[at] = b'!';
    bad.extend_from_slice(&whole);
    std::fs::write(&incr, &bad).expect("write");
    let (ok, err) = run_to_exit(&dir.0, &[]);
    assert!(
        !ok && err.contains("Bad file format") && err.contains("appendonly.aof.") && err.contains("at offset"),
        "{err}"
    );
    let out = std::process::Command::new(cachette_bin()).args(["check-aof"]).arg(&incr).output().expect("check-aof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success() && text.contains("not valid"), "{text}");
    // --fix truncates at the damage; the server then starts with what came before it.
    let out = std::process::Command::new(cachette_bin()).args(["check-aof", "--fix"]).arg(&incr).output().expect("fix");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let p = start(&dir.0, &[]);
    drop(p);
}

/// BGREWRITEAOF (several, and the automatic one) while writers run: the restarted keyspace is
/// the one the server had.
#[test]
fn rewrite_under_concurrent_writes_keeps_the_keyspace() {
    let dir = TempDir::new("rewrite");
    let p = start(&dir.0, &["--auto-aof-rewrite-min-size", "200kb", "--auto-aof-rewrite-percentage", "50"]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..3 {
        let (stop, port) = (stop.clone(), p.port);
        handles.push(std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
            let mut c = client.get_connection().expect("conn");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                let k = format!("k{w}:{}", i % 500);
                let _: () = redis::pipe()
                    .cmd("INCR")
                    .arg(&k)
                    .ignore()
                    .cmd("RPUSH")
                    .arg(format!("list{w}"))
                    .arg(i)
                    .ignore()
                    .cmd("HSET")
                    .arg(format!("h{w}"))
                    .arg(i % 100)
                    .arg(i)
                    .ignore()
                    .cmd("SADD")
                    .arg(format!("s{w}"))
                    .arg(i % 300)
                    .ignore()
                    .cmd("SPOP")
                    .arg(format!("s{w}"))
                    .ignore()
                    .query(&mut c)
                    .expect("pipeline");
                i += 1;
            }
        }));
    }
    let mut c = p.redis_client();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        // One may already run (the automatic one): then the error is the answer.
        let _ = redis::cmd("BGREWRITEAOF").query::<redis::Value>(&mut c);
        wait_rewrite(&mut c);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("writer");
    }
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).expect("info");
    assert!(info.contains("aof_rewrites:"), "{info}");
    let before = dump(&p);
    drop(p); // SIGKILL right after
    let p = start(&dir.0, &[]);
    assert_eq!(dump(&p), before);
}

/// CONFIG SET appendonly yes at runtime writes the keyspace as a base first; the directives
/// read back as redis-server's.
#[test]
fn appendonly_turned_on_at_runtime() {
    let dir = TempDir::new("runtime");
    let p = cachette_in(&dir.0, &[]).expect("starts");
    let mut c = p.redis_client();
    let got: BTreeMap<String, String> =
        redis::cmd("CONFIG").arg("GET").arg("append*").query(&mut c).expect("config get");
    let want = [
        ("appenddirname", "appendonlydir"),
        ("appendfilename", "appendonly.aof"),
        ("appendfsync", "everysec"),
        ("appendonly", "no"),
    ];
    assert_eq!(got, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    q(&mut c, &["SET", "before", "1"]);
    q(&mut c, &["RPUSH", "l", "a"]);
    q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.0.join("appendonlydir/appendonly.aof.manifest").exists() {
        assert!(Instant::now() < deadline, "no manifest");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_rewrite(&mut c);
    q(&mut c, &["SET", "after", "2"]);
    q(&mut c, &["CONFIG", "SET", "appendfsync", "always"]);
    q(&mut c, &["RPUSH", "l", "b"]);
    let before = dump(&p);
    drop(p);
    let p = start(&dir.0, &[]);
    assert_eq!(dump(&p), before);
    let mut c = p.redis_client();
    let e = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("sometimes").query::<()>(&mut c).expect_err("bad");
    assert!(e.to_string().contains("argument(s) must be one of the following: everysec, always, no"), "{e}");
}

/// The log replays with every permission, whatever the default user may do (redis-server's
/// AOF client runs without ACL checks).
#[test]
fn the_log_replays_under_requirepass() {
    let dir = TempDir::new("acl");
    let p = start(&dir.0, &["--requirepass", "pw", "--appendfsync", "always"]);
    let url = format!("redis://:pw@127.0.0.1:{}/", p.port);
    let mut c = redis::Client::open(url.as_str()).expect("client").get_connection().expect("conn");
    q(&mut c, &["RPUSH", "l", "a", "b"]);
    drop(p);
    let p = start(&dir.0, &["--requirepass", "pw"]);
    let url = format!("redis://:pw@127.0.0.1:{}/", p.port);
    let mut c = redis::Client::open(url.as_str()).expect("client").get_connection().expect("conn");
    let l: Vec<String> = redis::cmd("LRANGE").arg("l").arg(0).arg(-1).query(&mut c).expect("lrange");
    assert_eq!(l, ["a", "b"]);
}

/// Plain Redis writes of every type, with and without TTLs, in two databases.
fn write_redis_types(c: &mut redis::Connection, tag: &str) {
    let far = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as u64
        + 3_600_000)
        .to_string();
    for db in ["0", "3"] {
        q(c, &["SELECT", db]);
        q(c, &["SET", &format!("{tag}:s"), "text"]);
        q(c, &["SET", &format!("{tag}:n"), "12345"]);
        q(c, &["SET", &format!("{tag}:ttl"), "v", "PXAT", &far]);
        q(c, &["RPUSH", &format!("{tag}:l"), "a", "b", "c"]);
        q(c, &["HSET", &format!("{tag}:h"), "f1", "v1", "f2", "v2"]);
        q(c, &["SADD", &format!("{tag}:set"), "x", "y", "7"]);
        q(c, &["ZADD", &format!("{tag}:z"), "1.5", "m1", "-2", "m2"]);
        let big: Vec<String> = (0..300).map(|i| format!("member-{i}")).collect();
        let mut args = vec!["SADD".to_owned(), format!("{tag}:bigset")];
        args.extend(big);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        q(c, &refs);
    }
    q(c, &["SELECT", "0"]);
}

/// `aof-use-rdb-preamble yes` (the default): the rewrite writes an RDB image as
/// `appendonly.aof.N.base.rdb`; cachette restarts from it plus the incremental file, and the
/// directory moves between cachette and redis-server 7 in both directions.
#[test]
fn rdb_preamble_base_round_trips_and_moves_between_servers() {
    let dir = TempDir::new("preamble");
    let p = start(&dir.0, &["--appendfsync", "always"]);
    let mut c = p.redis_client();
    write_redis_types(&mut c, "before");
    q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    let aofdir = dir.0.join("appendonlydir");
    let manifest = std::fs::read_to_string(aofdir.join("appendonly.aof.manifest")).expect("manifest");
    let base =
        manifest.lines().find(|l| l.ends_with("type b")).and_then(|l| l.split(' ').nth(1)).expect("a base").to_owned();
    assert!(base.ends_with(".base.rdb"), "{manifest}");
    assert!(std::fs::read(aofdir.join(&base)).expect("base").starts_with(b"REDIS"));
    write_redis_types(&mut c, "after");
    q(&mut c, &["DEL", "before:s"]);
    let want = dump_redis(&p);
    drop(p);
    let p = start(&dir.0, &[]);
    assert_eq!(dump_redis(&p), want, "cachette, restarted");
    drop(p);
    let out = std::process::Command::new(cachette_bin())
        .arg("check-aof")
        .arg(aofdir.join("appendonly.aof.manifest"))
        .output()
        .expect("check-aof");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // redis-server loads cachette's directory.
    let dir_s = dir.0.to_str().expect("utf-8");
    if let Some(r) = crate::util::redis_server_with(&["--dir", dir_s, "--appendonly", "yes"]) {
        assert_eq!(dump_redis(&r), want, "redis-server loading cachette's AOF");
    } else {
        return;
    }
    // And cachette loads redis-server's.
    let rdir = TempDir::new("preamble-redis");
    let rdir_s = rdir.0.to_str().expect("utf-8");
    let Some(r) = crate::util::redis_server_with(&[
        "--dir",
        rdir_s,
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "yes",
        "--appendfsync",
        "always",
    ]) else {
        return;
    };
    let mut rc = r.redis_client();
    write_redis_types(&mut rc, "before");
    q(&mut rc, &["BGREWRITEAOF"]);
    wait_rewrite(&mut rc);
    write_redis_types(&mut rc, "after");
    let want = dump_redis(&r);
    drop(r);
    let m = std::fs::read_to_string(rdir.0.join("appendonlydir/appendonly.aof.manifest")).expect("manifest");
    assert!(m.contains(".base.rdb"), "{m}");
    let p = start(&rdir.0, &[]);
    assert_eq!(dump_redis(&p), want, "cachette loading redis-server's AOF");
}
