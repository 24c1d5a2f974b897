//! cachette as a replication primary, checked end to end with a real redis-server replica:
//! a full sync (diskless and disk-based) followed by the stream of effects from both
//! protocols, a cut link continued with +CONTINUE (partial resync, not full), a replica process
//! stopped and continued while writes go on, WAIT, and min-replicas-to-write. The replica's own
//! log is read for anything it refused.

use std::time::{Duration, Instant};

use crate::aof::{dump_keys, write_everything};
use crate::util::{cachette, redis_server_with, Proc};

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<redis::Value>(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(con).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} not in {info}"))
        .trim()
        .to_owned()
}

/// A redis-server replica of `primary`, logging to a file the test reads at the end.
struct Replica {
    proc: Proc,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(primary: &Proc) -> Option<Replica> {
        let log = std::env::temp_dir().join(format!("redis-replica-{}-{}.log", std::process::id(), primary.port));
        let _ = std::fs::remove_file(&log);
        let port = primary.port.to_string();
        let proc = redis_server_with(&["--replicaof", "127.0.0.1", &port, "--logfile", log.to_str()?])?;
        Some(Replica { proc, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines where the replica says it refused something from its primary, apart from
    /// cachette's MCFLAGS (memcached flags, which redis-server does not know: documented).
    fn complaints(&self) -> Vec<String> {
        self.log().lines().filter(|l| l.contains("CRITICAL") && !l.contains("MCFLAGS")).map(str::to_owned).collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("replica log:\n{}", self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until `n` replicas are online and have acknowledged everything written so far (by
/// any client: a write on this connection that changes nothing brings its WAIT offset up to
/// the stream's end).
fn wait_synced(con: &mut redis::Connection, n: i64) {
    let _: i64 = redis::cmd("DEL").arg("repl-test:nothing").query(con).expect("del");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let acked: i64 = redis::cmd("WAIT").arg(n).arg(1000).query(con).expect("wait");
        if acked >= n {
            return;
        }
        assert!(Instant::now() < deadline, "replicas did not catch up: {}", info_of(con));
    }
}

fn info_of(con: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query(con).unwrap_or_default()
}

fn assert_same_data(primary: &Proc, replica: &Proc) {
    let ours = dump_keys(primary, false);
    let theirs = dump_keys(replica, false);
    assert!(ours.len() > 30, "{ours:?}");
    let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    let differ: Vec<_> = keys
        .into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| (k.0, String::from_utf8_lossy(&k.1).into_owned(), ours.get(k), theirs.get(k)))
        .collect();
    assert!(differ.is_empty(), "(db, key, cachette, redis-server replica): {differ:?}");
}

/// Writes a batch of keys through both ports, `tag` keeping batches apart.
fn write_batch(p: &Proc, tag: &str, n: usize) {
    use std::io::{Read, Write};
    let mut c = p.redis_client();
    for i in 0..n {
        let k = format!("{tag}:{i}");
        q(&mut c, &["SET", &k, &i.to_string(), "EX", "5000"]);
        q(&mut c, &["RPUSH", &format!("{tag}:list"), &k]);
        q(&mut c, &["HSET", &format!("{tag}:hash"), &k, "v"]);
        q(&mut c, &["ZINCRBY", &format!("{tag}:z"), "1.5", &(i % 7).to_string()]);
    }
    let mut mc = p.mc();
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("set {tag}:mc{i} 0 3600 2\r\nok\r\n"));
    }
    text.push_str("mn\r\n");
    mc.write_all(text.as_bytes()).expect("mc write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"MN\r\n") {
        let r = mc.read(&mut buf).expect("mc read");
        assert!(r > 0, "memcached port closed");
        got.extend_from_slice(&buf[..r]);
    }
}

/// The replica's CLIENT LIST line.
fn replica_line(con: &mut redis::Connection) -> String {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).expect("client list");
    list.lines().find(|l| l.contains("cmd=psync")).unwrap_or_else(|| panic!("no replica in {list}")).to_owned()
}

fn full_sync_then_stream(diskless: &str) {
    let primary = cachette(&["--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"]);
    let mut c = primary.redis_client();
    // What exists before the replica attaches reaches it through the snapshot.
    write_everything(&primary);
    let Some(replica) = Replica::start(&primary) else { return };
    wait_synced(&mut c, 1);
    // And what follows, through the stream.
    write_batch(&primary, "after", 50);
    wait_synced(&mut c, 1);
    assert_same_data(&primary, &replica.proc);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "1");
    let info = info_of(&mut c);
    assert!(info.contains("connected_slaves:1") && info.contains("state=online"), "{info}");
    assert!(info.contains("repl_backlog_active:1"), "{info}");
    let log = replica.log();
    assert!(log.contains("MASTER <-> REPLICA sync: Finished with success"), "{log}");
    assert!(replica.complaints().is_empty(), "{:?}", replica.complaints());
}

#[test]
fn a_redis_server_replica_gets_a_diskless_snapshot_and_the_stream() {
    full_sync_then_stream("yes");
}

#[test]
fn a_redis_server_replica_gets_a_disk_snapshot_and_the_stream() {
    full_sync_then_stream("no");
}

/// A killed link resumes with +CONTINUE and only the missed bytes; a stopped replica process
/// catches up when it continues.
#[test]
fn a_cut_link_continues_with_a_partial_resync() {
    let primary = cachette(&["--repl-diskless-sync-delay", "0"]);
    let mut c = primary.redis_client();
    let Some(replica) = Replica::start(&primary) else { return };
    wait_synced(&mut c, 1);
    write_everything(&primary);
    wait_synced(&mut c, 1);
    let line = replica_line(&mut c);
    assert!(line.contains(" flags=S "), "{line}");
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut c).expect("kill");
    assert_eq!(killed, 1);
    // Writes while the link is down: the backlog keeps them.
    write_batch(&primary, "during", 30);
    wait_synced(&mut c, 1);
    assert_same_data(&primary, &replica.proc);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "1", "{}", replica.log());
    assert_eq!(info_field(&mut c, "stats", "sync_partial_ok"), "1", "{}", replica.log());
    assert!(replica.log().contains("Successful partial resynchronization"), "{}", replica.log());

    // SIGSTOP the replica while writes go on, SIGCONT it: it catches up.
    let pid = replica.proc.pid() as libc::pid_t;
    // SAFETY: kill(2) on the replica process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    write_batch(&primary, "stopped", 100);
    q(&mut c, &["SET", "stopped:mine", "1"]);
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(300).query(&mut c).expect("wait");
    assert_eq!(acked, 0, "a stopped replica acknowledges nothing");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_synced(&mut c, 1);
    assert_same_data(&primary, &replica.proc);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "1");
    assert!(replica.complaints().is_empty(), "{:?}", replica.complaints());
}

#[test]
fn wait_and_min_replicas_to_write() {
    let (primary, metrics_port) = crate::metrics::start(&["--repl-diskless-sync-delay", "0"]);
    let mut c = primary.redis_client();
    // No replica: WAIT 0 answers at once, WAIT 1 times out with 0.
    assert_eq!(q(&mut c, &["WAIT", "0", "0"]), redis::Value::Int(0));
    let start = Instant::now();
    assert_eq!(q(&mut c, &["WAIT", "1", "200"]), redis::Value::Int(0));
    assert!(start.elapsed() >= Duration::from_millis(150));
    let err = redis::cmd("WAIT").arg(1).arg(-1).query::<i64>(&mut c).expect_err("negative timeout");
    assert!(err.to_string().contains("timeout is negative"), "{err}");
    // min-replicas-to-write without replicas refuses writes, not reads.
    q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let err = redis::cmd("SET").arg("k").arg("v").query::<()>(&mut c).expect_err("refused");
    assert_eq!(err.code(), Some("NOREPLICAS"), "{err}");
    assert_eq!(err.detail(), Some("Not enough good replicas to write."), "{err}");
    assert_eq!(q(&mut c, &["GET", "k"]), redis::Value::Nil);
    let Some(replica) = Replica::start(&primary) else { return };
    // With a replica that acknowledges, writes go through and WAIT counts it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if redis::cmd("SET").arg("k").arg("v").query::<()>(&mut c).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "writes still refused: {}", info_of(&mut c));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]), redis::Value::Int(1));
    let role = q(&mut c, &["ROLE"]);
    let text = format!("{role:?}");
    assert!(text.contains("master") && text.contains(&replica.proc.port.to_string()), "{text}");
    q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    let mut r = replica.proc.redis_client();
    assert_eq!(q(&mut r, &["GET", "k"]), redis::Value::BulkString(b"v".to_vec()));
    // The replication metrics, under cachette's and redis_exporter's names.
    let (_, body) = crate::metrics::get(metrics_port, "/metrics");
    let port = replica.proc.port.to_string();
    for needle in [
        "cachette_replication_role{role=\"master\"} 1",
        "cachette_replication_connected_replicas 1",
        "redis_connected_slaves 1",
        "redis_instance_info{role=\"master\"",
        "cachette_replication_full_syncs_total 1",
    ] {
        assert!(body.contains(needle), "{needle} not in:\n{body}");
    }
    let offset = format!("cachette_replication_replica_offset_bytes{{replica=\"127.0.0.1:{port}\",state=\"online\"}}");
    assert!(body.contains(&offset), "{offset} not in:\n{body}");
    assert!(body.contains("cachette_replication_offset_bytes "), "{body}");
}

/// A replica that falls behind past `client-output-buffer-limit replica` is dropped; when it
/// comes back, what it missed is no longer in a small backlog, so it gets a full sync (and the
/// partial attempt is counted as refused).
#[test]
fn a_replica_past_its_output_limit_and_the_backlog_resynchronises_in_full() {
    let primary = cachette(&["--repl-diskless-sync-delay", "0", "--repl-backlog-size", "16kb"]);
    let mut c = primary.redis_client();
    let Some(replica) = Replica::start(&primary) else { return };
    write_everything(&primary);
    wait_synced(&mut c, 1);
    q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "replica 256kb 0 0"]);
    let pid = replica.proc.pid() as libc::pid_t;
    // SAFETY: kill(2) on the replica process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // Far more than the socket buffers and the limit can hold.
    let value = "x".repeat(10_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while info_field(&mut c, "replication", "connected_slaves") != "0" {
        assert!(Instant::now() < deadline, "the replica was not dropped: {}", info_of(&mut c));
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("SET").arg(format!("big:{round}:{i}")).arg(&value).ignore();
        }
        pipe.query::<()>(&mut c).expect("pipeline");
        round += 1;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_synced(&mut c, 1);
    assert_same_data(&primary, &replica.proc);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "2", "{}", replica.log());
    assert_eq!(info_field(&mut c, "stats", "sync_partial_err"), "1", "{}", replica.log());
    assert_eq!(info_field(&mut c, "replication", "repl_backlog_size"), "16384");
}

/// `repl-backlog-ttl`: without replicas the backlog goes, and with it the replication id whose
/// history it held.
#[test]
fn the_backlog_is_freed_after_its_ttl_without_replicas() {
    let primary = cachette(&["--repl-diskless-sync-delay", "0", "--repl-backlog-ttl", "1"]);
    let mut c = primary.redis_client();
    assert_eq!(info_field(&mut c, "replication", "repl_backlog_active"), "0");
    let Some(replica) = Replica::start(&primary) else { return };
    wait_synced(&mut c, 1);
    // Written once the stream exists (it starts when the replica attaches).
    q(&mut c, &["SET", "k", "v"]);
    wait_synced(&mut c, 1);
    assert_eq!(info_field(&mut c, "replication", "repl_backlog_active"), "1");
    let replid = info_field(&mut c, "replication", "master_replid");
    let offset: u64 = info_field(&mut c, "replication", "master_repl_offset").parse().expect("offset");
    assert!(offset > 0);
    drop(replica);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "replication", "repl_backlog_active") != "0" {
        assert!(Instant::now() < deadline, "{}", info_of(&mut c));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(info_field(&mut c, "replication", "master_replid"), replid);
    let after: u64 = info_field(&mut c, "replication", "master_repl_offset").parse().expect("offset");
    assert!(after >= offset, "the offset goes on");
}

/// Reads one line (without its CRLF), skipping the bare newlines a primary sends as keep-alive.
fn read_line(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).expect("read");
        if b[0] == b'\n' && line.is_empty() {
            continue;
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return String::from_utf8_lossy(&line).into_owned();
        }
    }
}

fn read_exact(s: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read");
    buf
}

/// The handshake byte for byte, as a replica sees it: REPLCONF's replies and errors, PSYNC's
/// +FULLRESYNC with a diskless EOF-marked payload or a `$<len>` one, SYNC's bare payload, the
/// stream starting with a SELECT once the replica acknowledged, +CONTINUE for a known id.
#[test]
fn the_handshake_speaks_redis_framing() {
    use std::io::Write;
    let p = cachette(&["--repl-diskless-sync-delay", "0"]);
    let mut c = p.redis_client();
    q(&mut c, &["SET", "a", "1"]);
    let err = redis::cmd("REPLCONF").arg("foo").arg("bar").query::<()>(&mut c).expect_err("unknown option");
    assert!(err.to_string().contains("Unrecognized REPLCONF option: foo"), "{err}");
    let err = redis::cmd("REPLCONF").arg("listening-port").query::<()>(&mut c).expect_err("odd");
    assert!(err.to_string().contains("syntax error"), "{err}");

    // Diskless: +FULLRESYNC, then $EOF:<mark>, the RDB, the mark.
    let mut s = p.resp();
    s.write_all(b"REPLCONF listening-port 4321\r\nREPLCONF capa eof capa psync2\r\n").expect("write");
    assert_eq!((read_line(&mut s), read_line(&mut s)), ("+OK".to_owned(), "+OK".to_owned()));
    s.write_all(b"PSYNC ? -1\r\n").expect("write");
    let full = read_line(&mut s);
    let parts: Vec<&str> = full.split(' ').collect();
    assert_eq!(parts[0], "+FULLRESYNC", "{full}");
    assert!(parts[1].len() == 40 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()), "{full}");
    let (replid, offset) = (parts[1].to_owned(), parts[2].parse::<u64>().expect("offset"));
    let eof = read_line(&mut s);
    let mark = eof.strip_prefix("$EOF:").unwrap_or_else(|| panic!("{eof}")).to_owned();
    assert_eq!(mark.len(), 40);
    let mut rdb = Vec::new();
    while !rdb.ends_with(mark.as_bytes()) {
        rdb.extend(read_exact(&mut s, 1));
    }
    assert!(rdb.starts_with(b"REDIS00"), "{:?}", &rdb[..16]);
    // The stream waits for the first ACK, then starts with a SELECT.
    q(&mut c, &["SET", "b", "2"]);
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(format!("REPLCONF ACK {offset}\r\n").as_bytes()).expect("ack");
    let select = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";
    assert_eq!(read_exact(&mut s, select.len()), select.to_vec());
    let set = b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n";
    assert_eq!(read_exact(&mut s, set.len()), set.to_vec());
    let info = info_of(&mut c);
    assert!(info.contains(&format!("slave0:ip=127.0.0.1,port=4321,state=online,offset={offset},")), "{info}");
    drop(s);

    // Without capa eof: the payload through a file, `$<len>` framed.
    let mut s = p.resp();
    s.write_all(b"PSYNC ? -1\r\n").expect("write");
    assert!(read_line(&mut s).starts_with("+FULLRESYNC "));
    let len: usize = read_line(&mut s).strip_prefix('$').expect("bulk").parse().expect("len");
    assert!(read_exact(&mut s, len).starts_with(b"REDIS00"));
    drop(s);

    // SYNC: no +FULLRESYNC line.
    let mut s = p.resp();
    s.write_all(b"SYNC\r\n").expect("write");
    let len: usize = read_line(&mut s).strip_prefix('$').expect("bulk").parse().expect("len");
    assert!(read_exact(&mut s, len).starts_with(b"REDIS00"));
    drop(s);

    // A known id and an offset the backlog holds: +CONTINUE and the bytes after it.
    let mut s = p.resp();
    s.write_all(b"REPLCONF capa psync2\r\n").expect("write");
    assert_eq!(read_line(&mut s), "+OK");
    s.write_all(format!("PSYNC {replid} {}\r\n", offset + 1).as_bytes()).expect("write");
    assert_eq!(read_line(&mut s), format!("+CONTINUE {replid}"));
    assert_eq!(read_exact(&mut s, select.len()), select.to_vec());
    assert_eq!(read_exact(&mut s, set.len()), set.to_vec());
    drop(s);
    // An unknown id: a full sync, and the partial attempt counted as refused.
    let mut s = p.resp();
    s.write_all(format!("PSYNC {} 1\r\n", "f".repeat(40)).as_bytes()).expect("write");
    assert!(read_line(&mut s).starts_with("+FULLRESYNC "));
    drop(s);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "4");
    assert_eq!(info_field(&mut c, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut c, "stats", "sync_partial_err"), "1");
}

/// Links cut while writes are in flight continue at the exact byte: counters bumped by INCR
/// (applied twice or lost, they would differ) agree on both sides after three cuts, each
/// resumed with +CONTINUE.
#[test]
fn links_cut_under_load_continue_at_the_exact_byte() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let primary = cachette(&["--repl-diskless-sync-delay", "0", "--repl-backlog-size", "8mb"]);
    let mut c = primary.redis_client();
    let Some(replica) = Replica::start(&primary) else { return };
    wait_synced(&mut c, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let stop = stop.clone();
            let port = primary.port;
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
                let mut con = client.get_connection().expect("conn");
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let _: i64 =
                        redis::cmd("INCR").arg(format!("counter:{w}:{}", n % 10)).query(&mut con).expect("incr");
                    let _: i64 = redis::cmd("RPUSH").arg(format!("log:{w}")).arg(n).query(&mut con).expect("rpush");
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut c).expect("kill");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = writers.into_iter().map(|h| h.join().expect("writer")).sum();
    assert!(total > 100, "{total}");
    wait_synced(&mut c, 1);
    assert_same_data(&primary, &replica.proc);
    assert_eq!(info_field(&mut c, "stats", "sync_full"), "1", "{}", replica.log());
    let partial: u64 = info_field(&mut c, "stats", "sync_partial_ok").parse().expect("count");
    assert!(partial >= 1, "{}", replica.log());
    assert!(replica.complaints().is_empty(), "{:?}", replica.complaints());
}
