//! Failover by redis-sentinel 7.0 among cachette instances (issue 8's done-means): three real
//! `redis-sentinel` processes watch a cachette primary with two cachette replicas; a client
//! that finds the primary through the sentinels (redis-py's `Sentinel`,
//! `tests/tools/sentinel_writer.py`) writes `SET w:i` + `WAIT 1` in a loop; the primary is
//! killed with SIGKILL. The sentinels must promote one replica and point the other at it, the
//! client must go on having its writes acknowledged by the new primary, and no write that
//! WAIT 1 acknowledged before the kill may be missing there. Then the old primary is restarted
//! (empty, a master again): the sentinels must turn it into a replica of the new primary.
//!
//! Sentinel's side of it, which this drives: it reads the replicas from the primary's INFO
//! (`slaveN:` lines), polls each replica's INFO (role, master_link_down_since_seconds,
//! slave_priority, slave_repl_offset, replica_announced) and picks the one with the lowest
//! priority and then the largest offset; it sends that one `MULTI, REPLICAOF NO ONE, CONFIG
//! REWRITE, CLIENT KILL TYPE normal, EXEC`, waits for INFO to say `role:master`, then sends the
//! other `MULTI, REPLICAOF <new> <port>, CONFIG REWRITE, CLIENT KILL TYPE pubsub, EXEC` and
//! waits for its INFO to show the link up before announcing `+switch-master`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{self, Proc};

/// Every wait below is bounded by one of these; the whole test takes about 18 s, 11 of them
/// waiting for sentinel to convert the restarted old primary (it waits 8 s after an instance
/// reports a new role before it reconfigures it, then for its next INFO).
const SETTLE: Duration = Duration::from_secs(20);
const FAILOVER: Duration = Duration::from_secs(25);
const AFTER: Duration = Duration::from_secs(15);
const CONVERT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The scratch directory, and on a failing assertion the tail of every log in it.
struct Scratch {
    dir: PathBuf,
    logs: Vec<(String, PathBuf)>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, path) in &self.logs {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(300)..];
                eprintln!("===== {name} ({}) =====\n{}", path.display(), tail.join("\n"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("cachette-it-failover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir, logs: Vec::new() }
    }

    /// A fresh subdirectory for one process, and its log registered for printing.
    fn own(&mut self, name: &str, log: &str) -> (PathBuf, PathBuf) {
        let own = self.dir.join(name);
        std::fs::create_dir_all(&own).expect("mkdir");
        let log = own.join(log);
        self.logs.push((name.to_owned(), log.clone()));
        (own, log)
    }
}

/// A cachette with its own config file (sentinel's CONFIG REWRITE rewrites it) and directory.
/// Diskless syncs start at once rather than after the 5 s wait for more replicas.
fn cachette(scratch: &mut Scratch, name: &str, replicaof: Option<u16>) -> Proc {
    let (own, log) = scratch.own(name, "cachette.log");
    let conf = own.join("cachette.conf");
    std::fs::write(&conf, "# tests/it/sentinel_failover: sentinel rewrites this file\n").expect("write conf");
    for _ in 0..5 {
        if let Some(p) = start_cachette(&own, &log, (util::free_port(), util::free_port()), replicaof) {
            return p;
        }
    }
    panic!("{name} did not start");
}

/// Starts (or restarts) the cachette of directory `own` on `ports` (RESP, memcached).
fn start_cachette(own: &Path, log: &Path, (port, mc_port): (u16, u16), replicaof: Option<u16>) -> Option<Proc> {
    let mut cmd = Command::new(util::cachette_bin());
    cmd.arg(own.join("cachette.conf"));
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--memcache-port", &mc_port.to_string()]);
    cmd.args(["--metrics-port", "0", "--save", "", "--dir", own.to_str().expect("utf-8 dir")]);
    cmd.args(["--repl-diskless-sync-delay", "0", "--loglevel", "verbose"]);
    let master = replicaof.map(|p| format!("127.0.0.1 {p}"));
    if let Some(m) = &master {
        cmd.args(["--replicaof", m]);
    }
    util::spawn_logged(cmd, port, mc_port, log)
}

/// A redis-sentinel monitoring `mymaster` at `primary` with a quorum of 2, verbose log.
fn sentinel(scratch: &mut Scratch, bin: &str, i: usize, primary: u16) -> Proc {
    let name = format!("sentinel{i}");
    let (own, log) = scratch.own(&name, "sentinel.log");
    for _ in 0..5 {
        let port = util::free_port();
        let conf = own.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\nlogfile {}\nloglevel verbose\n\
                 sentinel monitor mymaster 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 10000\n\
                 sentinel parallel-syncs mymaster 1\n",
                own.display(),
                log.display(),
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new(bin);
        cmd.arg(&conf);
        if let Some(p) = util::spawn_logged(cmd, port, 0, &own.join("stdout.log")) {
            return p;
        }
    }
    panic!("{name} did not start");
}

fn connect(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
    con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    Some(con)
}

/// One command's reply as text (bulk, status or integer), or `-error` / `-down`.
fn ask(port: u16, args: &[&str]) -> String {
    let Some(mut con) = connect(port) else { return "-down".to_owned() };
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(&mut con) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::SimpleString(s)) => s,
        Ok(redis::Value::Okay) => "OK".to_owned(),
        Ok(redis::Value::Int(n)) => n.to_string(),
        Ok(redis::Value::Nil) => "(nil)".to_owned(),
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("-{e}"),
    }
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::to_owned))
}

/// `SENTINEL MASTER mymaster` as (field, value) pairs; empty when the sentinel does not answer.
fn master_state(port: u16) -> Vec<(String, String)> {
    let Some(mut con) = connect(port) else { return Vec::new() };
    let flat: Vec<String> = redis::cmd("SENTINEL").arg("MASTER").arg("mymaster").query(&mut con).unwrap_or_default();
    flat.chunks_exact(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect()
}

fn field<'a>(state: &'a [(String, String)], name: &str) -> &'a str {
    state.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The primary's port as a sentinel names it now.
fn master_port(sentinel: u16) -> Option<u16> {
    let mut con = connect(sentinel)?;
    let addr: Vec<String> =
        redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg("mymaster").query(&mut con).ok()?;
    addr.get(1)?.parse().ok()
}

/// Ok when `info` (INFO replication) shows a replica of the primary on `port` with its link
/// up; Err(info) to report otherwise.
fn follows(info: String, port: u16) -> Result<(), String> {
    let ok = info_field(&info, "role").as_deref() == Some("slave")
        && info_field(&info, "master_port") == Some(port.to_string())
        && info_field(&info, "master_link_status").as_deref() == Some("up");
    if ok {
        Ok(())
    } else {
        Err(info)
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f() {
            Ok(()) => return,
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One line of the writer's output.
#[derive(Clone, Copy, Debug)]
struct Ack {
    id: u64,
    at_ms: u64,
    port: u16,
}

/// The writer process, its acknowledged writes collected by a reader thread; killed on drop.
struct Writer {
    child: Child,
    acks: Arc<Mutex<Vec<Ack>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Writer {
    fn start(python: &str, sentinels: &[u16], log: &Path) -> Writer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/sentinel_writer.py");
        let ports: Vec<String> = sentinels.iter().map(u16::to_string).collect();
        let err = std::fs::File::create(log.with_extension("stderr")).expect("writer stderr");
        let mut child = Command::new(python)
            .arg(script)
            .arg(ports.join(","))
            // Longer than the test; the test kills it.
            .arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("writer stdout");
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (sink, mut out) = (acks.clone(), std::fs::File::create(log).expect("writer log"));
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes());
                let w: Vec<&str> = line.split(' ').collect();
                if let ["ack", id, at, port] = w[..] {
                    if let (Ok(id), Ok(at_ms), Ok(port)) = (id.parse(), at.parse(), port.parse()) {
                        sink.lock().unwrap_or_else(|p| p.into_inner()).push(Ack { id, at_ms, port });
                    }
                }
            }
        });
        Writer { child, acks }
    }

    fn acks(&self) -> Vec<Ack> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The acknowledged writes the server at `port` lacks, as (id, acknowledged before `kill_ms`).
fn lost(port: u16, acks: &[Ack], kill_ms: u64) -> Vec<(u64, bool)> {
    let mut con = connect(port).expect("connect");
    let mut pipe = redis::pipe();
    for a in acks {
        pipe.cmd("GET").arg(format!("w:{}", a.id));
    }
    let got: Vec<Option<String>> = pipe.query(&mut con).expect("GETs");
    acks.iter()
        .zip(&got)
        .filter(|(a, v)| v.as_deref() != Some(a.id.to_string().as_str()))
        .map(|(a, _)| (a.id, a.at_ms < kill_ms))
        .collect()
}

#[test]
fn sentinels_fail_over_from_a_killed_cachette_primary_without_losing_acknowledged_writes() {
    let Some(sentinel_bin) = util::find_binary("redis-sentinel") else {
        assert!(!util::in_ci(), "redis-sentinel must be installed in CI (.ci/test installs it)");
        eprintln!("redis-sentinel not installed: skipping");
        return;
    };
    let Some(python) = util::client_tool(&["python3"]) else { return };
    let has_module =
        Command::new(&python).args(["-c", "import redis.sentinel"]).output().is_ok_and(|o| o.status.success());
    if !has_module {
        assert!(!util::in_ci(), "redis-py must be installed in CI (.ci/test installs python3-redis)");
        eprintln!("redis-py not installed: skipping");
        return;
    }
    let t0 = Instant::now();
    let mut scratch = Scratch::new();
    let mut primary = cachette(&mut scratch, "primary", None);
    let replicas = [
        cachette(&mut scratch, "replica1", Some(primary.port)),
        cachette(&mut scratch, "replica2", Some(primary.port)),
    ];
    wait_for("both replicas online", SETTLE, || {
        let info = ask(primary.port, &["INFO", "replication"]);
        let online = (0..2)
            .filter(|i| info_field(&info, &format!("slave{i}")).is_some_and(|l| l.contains("state=online")))
            .count();
        if online == 2 {
            Ok(())
        } else {
            Err(info)
        }
    });

    let sentinels: Vec<Proc> = (0..3).map(|i| sentinel(&mut scratch, &sentinel_bin, i, primary.port)).collect();
    let sentinel_ports: Vec<u16> = sentinels.iter().map(|s| s.port).collect();
    // Each sentinel must know both replicas (from the primary's INFO) and the two other
    // sentinels (from the hello channel) before the primary goes: no quorum, no failover.
    wait_for("the sentinels to know the replicas and each other", SETTLE, || {
        let states: Vec<_> = sentinel_ports.iter().map(|&p| master_state(p)).collect();
        let ready = states.iter().all(|st| {
            field(st, "flags") == "master" && field(st, "num-slaves") == "2" && field(st, "num-other-sentinels") == "2"
        });
        if ready {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    });
    let settled = t0.elapsed();

    let writer_log = scratch.own("writer", "writer.log").1;
    scratch.logs.push(("writer's standard error".to_owned(), writer_log.with_extension("stderr")));
    let mut writer = Writer::start(&python, &sentinel_ports, &writer_log);
    let writing = Instant::now();
    wait_for("the writer's first acknowledged writes", SETTLE, || {
        let n = writer.acks().len();
        if n >= 100 && writing.elapsed() > Duration::from_secs(1) {
            Ok(())
        } else {
            Err(format!("{n} acknowledged"))
        }
    });

    let kill_ms = now_ms();
    let killed = Instant::now();
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped; no memory effects.
    unsafe {
        libc::kill(primary.pid() as libc::pid_t, libc::SIGKILL);
    }
    assert!(primary.wait_exit(Duration::from_secs(5)).is_some(), "the primary did not die");
    let before: Vec<Ack> = writer.acks().into_iter().filter(|a| a.at_ms < kill_ms).collect();
    assert!(before.iter().all(|a| a.port == primary.port), "acknowledged by someone else before the kill");

    // +switch-master: every sentinel names one of the replicas.
    let mut promoted = 0;
    wait_for("every sentinel to name a replica as the primary", FAILOVER, || {
        let named: Vec<Option<u16>> = sentinel_ports.iter().map(|&p| master_port(p)).collect();
        match named[0] {
            Some(p) if p != primary.port && named.iter().all(|n| *n == Some(p)) => {
                promoted = p;
                Ok(())
            }
            _ => Err(format!("{named:?}")),
        }
    });
    let switched = killed.elapsed();
    let (new, other) = match replicas.iter().position(|r| r.port == promoted) {
        Some(0) => (&replicas[0], &replicas[1]),
        Some(_) => (&replicas[1], &replicas[0]),
        None => panic!("sentinel promoted {promoted}, which is neither replica"),
    };

    let info = ask(new.port, &["INFO", "replication"]);
    assert_eq!(info_field(&info, "role").as_deref(), Some("master"), "{info}");
    wait_for("the other replica to follow the new primary", AFTER, || {
        let info = ask(other.port, &["INFO", "replication"]);
        follows(info, new.port)
    });
    wait_for("writes acknowledged by the new primary", AFTER, || {
        let after = writer.acks().iter().filter(|a| a.at_ms > kill_ms && a.port == new.port).count();
        if after >= 20 {
            Ok(())
        } else {
            Err(format!("{after} acknowledged since the kill"))
        }
    });
    let resumed = killed.elapsed();
    let _ = writer.child.kill();
    let _ = writer.child.wait();
    let acks = writer.acks();

    // No acknowledged write is lost, on the new primary nor (once WAIT says it caught up) on
    // the replica that follows it.
    let mut con = connect(new.port).expect("connect to the new primary");
    let wait: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut con).expect("WAIT");
    assert_eq!(wait, 1, "the other replica acknowledges the new primary's stream");
    for (server, name) in [(new, "new primary"), (other, "other replica")] {
        let lost = lost(server.port, &acks, kill_ms);
        assert!(lost.is_empty(), "{name} lacks acknowledged writes (id, acknowledged before the kill): {lost:?}");
    }
    let after = acks.iter().filter(|a| a.at_ms > kill_ms).count();
    assert!(before.len() >= 100 && after >= 20, "{} before, {after} after", before.len());

    // Sentinel's own view. The leader ends the failover when the other replica's INFO shows it
    // linked to the new primary (not when failover-timeout gives up on it), every sentinel
    // switched, and every one lists the other replica as a healthy replica of the new primary.
    let sentinel_logs: Vec<PathBuf> =
        scratch.logs.iter().filter(|(n, _)| n.starts_with("sentinel")).map(|(_, p)| p.clone()).collect();
    let read_logs =
        || -> Vec<String> { sentinel_logs.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect() };
    wait_for("the leader to end the failover and every sentinel to switch", AFTER, || {
        let texts = read_logs();
        let switched = texts.iter().filter(|t| t.contains("+switch-master mymaster")).count();
        let ended = texts.iter().any(|t| t.contains("+failover-end master"));
        if switched == 3 && ended {
            Ok(())
        } else {
            Err(format!("{switched} switched, ended: {ended}"))
        }
    });
    for text in read_logs() {
        for bad in ["failover-end-for-timeout", "-failover-abort", "+tilt", "-slave-reconf-sent-timeout"] {
            assert!(!text.contains(bad), "{bad} in a sentinel's log");
        }
    }
    wait_for("every sentinel to see the other replica linked to the new primary", AFTER, || {
        for &port in &sentinel_ports {
            let mut con = connect(port).ok_or("sentinel down")?;
            let replicas: Vec<Vec<String>> =
                redis::cmd("SENTINEL").arg("REPLICAS").arg("mymaster").query(&mut con).map_err(|e| e.to_string())?;
            let entry = replicas
                .iter()
                .map(|flat| flat.chunks_exact(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect::<Vec<_>>());
            let ok = entry.clone().any(|st| {
                field(&st, "port") == other.port.to_string()
                    && field(&st, "flags") == "slave"
                    && field(&st, "master-link-status") == "ok"
                    && field(&st, "master-port") == new.port.to_string()
                    // Read from the replica's INFO (slave_priority, slave_repl_offset).
                    && field(&st, "slave-priority") == "100"
                    && field(&st, "slave-repl-offset").parse::<u64>().is_ok_and(|o| o > 0)
            });
            if !ok {
                return Err(format!("sentinel {port}: {:?}", entry.collect::<Vec<_>>()));
            }
        }
        Ok(())
    });

    // What sentinel sent the two replicas (SLAVEOF, CONFIG REWRITE, CLIENT KILL in MULTI)
    // all succeeded, and the rewritten config files restart each where sentinel left it.
    for (server, name) in [(new, "new primary"), (other, "other replica")] {
        let stats = ask(server.port, &["INFO", "commandstats"]);
        for cmd in ["cmdstat_slaveof:", "cmdstat_config|rewrite:", "cmdstat_client|kill:", "cmdstat_exec:"] {
            let line =
                stats.lines().find(|l| l.starts_with(cmd)).unwrap_or_else(|| panic!("{name}: no {cmd} in {stats}"));
            assert!(line.contains("rejected_calls=0,failed_calls=0"), "{name}: {line}");
        }
    }
    // PSYNC2: the other replica continued from the promoted one's history, no full sync.
    let stats = ask(new.port, &["INFO", "stats"]);
    assert_eq!(info_field(&stats, "sync_full").as_deref(), Some("0"), "{stats}");
    assert!(info_field(&stats, "sync_partial_ok").is_some_and(|n| n != "0"), "{stats}");
    let conf = |name: &str| std::fs::read_to_string(scratch.dir.join(name).join("cachette.conf")).unwrap_or_default();
    let (new_name, other_name) =
        if new.port == replicas[0].port { ("replica1", "replica2") } else { ("replica2", "replica1") };
    assert!(!conf(new_name).contains("replicaof"), "{}", conf(new_name));
    assert!(conf(other_name).contains(&format!("\nreplicaof 127.0.0.1 {}\n", new.port)), "{}", conf(other_name));
    // The old primary comes back, empty (no snapshot), as a master: the sentinels turn it
    // into a replica of the new primary (+convert-to-slave), and it gets everything.
    let back = Instant::now();
    let own = scratch.dir.join("primary");
    let _old = start_cachette(&own, &own.join("cachette.log"), (primary.port, primary.mc_port), None)
        .expect("the old primary restarts on its ports");
    wait_for("the old primary to become a replica of the new one", CONVERT, || {
        let info = ask(primary.port, &["INFO", "replication"]);
        follows(info, new.port)
    });
    let converted = back.elapsed();
    let wait: i64 = redis::cmd("WAIT").arg(2).arg(5000).query(&mut connect(new.port).expect("connect")).expect("WAIT");
    assert_eq!(wait, 2, "both replicas acknowledge the new primary's stream");
    let lost = lost(primary.port, &acks, kill_ms);
    assert!(lost.is_empty(), "the old primary lacks acknowledged writes: {lost:?}");
    eprintln!(
        "sentinel failover: settled in {settled:?}; {} writes acknowledged before the kill; all sentinels \
         named {promoted} {switched:?} after it; writes acknowledged again {resumed:?} after it; the old primary, \
         restarted, followed the new one {converted:?} later; whole test {:?}",
        before.len(),
        t0.elapsed()
    );
    drop(sentinels);
}
