//! Sentinel failover over cachette replication (issue 8): three real redis-sentinel processes
//! watch a cachette primary with two cachette replicas; the primary is SIGKILLed; the
//! sentinels promote a replica (REPLICAOF NO ONE), point the other at it (REPLICAOF host port,
//! which continues with a partial resync thanks to PSYNC2), and no write acknowledged by
//! `WAIT 1` before the kill is lost. redis-py's Sentinel client goes on writing through the
//! failover.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::sentinel::{connect, field, master_state, scratch, sentinel_binary};
use crate::util;

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The master's address as the sentinels give it (what a sentinel-aware client connects to).
fn master_addr(sentinel_port: u16) -> Option<u16> {
    let mut con = connect(sentinel_port);
    let addr: Vec<String> =
        redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg("mymaster").query(&mut con).ok()?;
    addr.get(1)?.parse().ok()
}

fn role(port: u16) -> Vec<String> {
    let mut con = connect(port);
    let v: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap_or_default();
    v.into_iter()
        .map(|x| match x {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            redis::Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn sentinels_fail_over_a_killed_cachette_primary_without_losing_acknowledged_writes() {
    let Some(bin) = sentinel_binary() else { return };
    let primary = util::cachette(&["--repl-diskless-sync-delay", "0"]);
    let master = format!("127.0.0.1 {}", primary.port);
    let replicas = [
        util::cachette(&["--replicaof", &master, "--repl-diskless-sync-delay", "0"]),
        util::cachette(&["--replicaof", &master, "--repl-diskless-sync-delay", "0"]),
    ];
    let dir = scratch("failover");
    let mut sentinels = Vec::new();
    for i in 0..3 {
        let own = dir.0.join(format!("s{i}"));
        std::fs::create_dir_all(&own).expect("mkdir");
        let port = util::free_port();
        let conf = own.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\nlogfile {}\n\
                 sentinel monitor mymaster 127.0.0.1 {} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 10000\n",
                own.display(),
                own.join("sentinel.log").display(),
                primary.port
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new(&bin);
        cmd.arg(&conf);
        sentinels.push(util::spawn_and_wait(cmd, port, 0).expect("redis-sentinel starts"));
    }
    // Every sentinel knows both replicas (from the primary's INFO) and the other sentinels.
    wait_for("the sentinels to settle", Duration::from_secs(40), || {
        sentinels
            .iter()
            .map(|s| master_state(&mut connect(s.port)))
            .all(|st| field(&st, "num-slaves") == "2" && field(&st, "num-other-sentinels") == "2")
            .then_some(())
    });

    // Writes acknowledged by a replica before the kill.
    let mut p = primary.redis_client();
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let key = format!("k{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut p).expect("set");
        let acks: i64 = redis::cmd("WAIT").arg(1).arg(2000).query(&mut p).expect("wait");
        if acks >= 1 {
            acknowledged.push(key);
        }
    }
    assert!(acknowledged.len() > 150, "{} of 200 acknowledged", acknowledged.len());
    drop(p);
    // redis-py's Sentinel client writes through the failover.
    let py_client = python_sentinel_client(&sentinels.iter().map(|s| s.port).collect::<Vec<_>>(), primary.port);
    // SAFETY: kill(2) on a child we own; no memory effects.
    unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGKILL) };

    let new_port = wait_for("a failover", Duration::from_secs(60), || {
        master_addr(sentinels[0].port).filter(|&p| p != primary.port)
    });
    let (promoted, other) = match replicas.iter().position(|r| r.port == new_port) {
        Some(0) => (&replicas[0], &replicas[1]),
        Some(_) => (&replicas[1], &replicas[0]),
        None => panic!("sentinels chose {new_port}, not a replica"),
    };
    assert_eq!(role(promoted.port).first().map(String::as_str), Some("master"));
    let mut m = promoted.redis_client();
    for key in &acknowledged {
        let v: Option<String> = redis::cmd("GET").arg(key).query(&mut m).expect("get");
        assert!(v.is_some(), "acknowledged {key} lost");
    }
    // The other replica follows the promoted one, and a client that asks the sentinels where
    // the master is writes there and sees the write replicated.
    wait_for("the other replica to follow the new master", Duration::from_secs(30), || {
        let r = role(other.port);
        (r.len() == 5 && r[2] == new_port.to_string() && r[3] == "connected").then_some(())
    });
    let port = master_addr(sentinels[1].port).expect("master address");
    let mut c = connect(port);
    let _: () = redis::cmd("SET").arg("after").arg("failover").query(&mut c).expect("write after the failover");
    let mut o = other.redis_client();
    wait_for("the write to reach the other replica", Duration::from_secs(10), || {
        let v: Option<String> = redis::cmd("GET").arg("after").query(&mut o).ok()?;
        (v.as_deref() == Some("failover")).then_some(())
    });
    for key in &acknowledged {
        let v: Option<String> = redis::cmd("GET").arg(key).query(&mut o).expect("get");
        assert!(v.is_some(), "acknowledged {key} missing on the other replica");
    }
    if let Some(child) = py_client {
        let out = child.wait_with_output().expect("python client");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "redis-py Sentinel client: {text} {}", String::from_utf8_lossy(&out.stderr));
        let written: u32 =
            text.trim().strip_prefix("written after failover: ").and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(written >= 20, "{text}");
    }
    // PSYNC2: the other replica continued from the promoted one's history, no full sync.
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut m).expect("info");
    assert!(stats.contains("sync_full:0\r\n") && stats.contains("sync_partial_ok:1\r\n"), "{stats}");
}

/// A redis-py client using Sentinel discovery (`Sentinel(...).master_for`), as applications
/// do: it writes until it has written 20 keys to a master other than the original one, for at
/// most 60 s, retrying while the failover runs. None when python3 with redis-py is missing
/// outside CI.
fn python_sentinel_client(sentinels: &[u16], old_port: u16) -> Option<std::process::Child> {
    let script = format!(
        r#"
import sys, time
from redis.sentinel import Sentinel
from redis.exceptions import ConnectionError, TimeoutError, ReadOnlyError, ResponseError
s = Sentinel([{}], socket_timeout=1.0)
m = s.master_for("mymaster", socket_timeout=1.0)
after, i, deadline = 0, 0, time.time() + 60
while after < 20 and time.time() < deadline:
    try:
        m.set("py:%d" % i, i)
        i += 1
        if s.discover_master("mymaster")[1] != {old_port}:
            after += 1
    except (ConnectionError, TimeoutError, ReadOnlyError, ResponseError):
        time.sleep(0.1)
print("written after failover: %d" % after)
sys.exit(0 if after >= 20 else 1)
"#,
        sentinels.iter().map(|p| format!("('127.0.0.1', {p})")).collect::<Vec<_>>().join(", ")
    );
    let ok = Command::new("python3").args(["-c", "import redis.sentinel"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(!util::in_ci(), "python3 with redis-py must be installed in CI");
        eprintln!("python3 with redis-py not installed: skipping the Sentinel client");
        return None;
    }
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    Some(child)
}
