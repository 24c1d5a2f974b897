//! redis-sentinel 7.0 watching cachette: three real `redis-sentinel` processes monitor one
//! cachette primary, find each other through its `__sentinel__:hello` channel, and must see it
//! as a healthy master; everything they sent must have been answered without an error.
//! Failover itself needs replicas and belongs with the replication tests.
//!
//! Also the transaction sentinel sends to reconfigure an instance (MULTI, REPLICAOF, CONFIG
//! REWRITE, CLIENT KILL TYPE normal, CLIENT KILL TYPE pubsub, EXEC), minus REPLICAOF, compared
//! with redis-server's answers.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util;

/// How long the sentinels get to discover each other and settle; they say hello every 2 s.
const SETTLE: Duration = Duration::from_secs(40);

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("cachette-it-sentinel-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    Scratch(dir)
}

/// redis-sentinel, which .ci/test installs; outside CI its absence skips the test.
fn sentinel_binary() -> Option<String> {
    let found = util::find_binary("redis-sentinel");
    if found.is_none() {
        assert!(!util::in_ci(), "redis-sentinel must be installed in CI (.ci/test installs it)");
        eprintln!("redis-sentinel not installed: skipping");
    }
    found
}

/// `SENTINEL MASTER mymaster` as (field, value) pairs.
fn master_state(con: &mut redis::Connection) -> Vec<(String, String)> {
    let flat: Vec<String> = redis::cmd("SENTINEL").arg("MASTER").arg("mymaster").query(con).unwrap_or_default();
    flat.chunks_exact(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect()
}

fn field<'a>(state: &'a [(String, String)], name: &str) -> &'a str {
    state.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// One command on a plain RESP connection, its reply as text (a bulk string's content, an
/// integer's digits, a status, or `-error`). The `redis` crate is not used on the primary
/// here: it sends CLIENT SETINFO on connecting, which redis-server 7.0 (and cachette) refuse,
/// and the test counts the errors the primary gave.
fn ask(con: &mut BufReader<TcpStream>, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    con.get_mut().write_all(req.as_bytes()).expect("write");
    let mut head = String::new();
    con.read_line(&mut head).expect("read");
    let head = head.trim_end();
    match head.split_at(1) {
        ("$", len) => {
            let len: usize = len.parse().expect("bulk length");
            let mut body = vec![0; len + 2];
            std::io::Read::read_exact(con, &mut body).expect("bulk");
            body.truncate(len);
            String::from_utf8(body).expect("utf-8")
        }
        ("-", _) => head.to_owned(),
        (_, rest) => rest.to_owned(),
    }
}

fn plain(port: u16) -> BufReader<TcpStream> {
    let s = util::connect_when_ready(port, Duration::from_secs(5)).expect("connect");
    BufReader::new(s)
}

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect")
}

#[test]
fn three_sentinels_monitor_a_cachette_primary() {
    let Some(bin) = sentinel_binary() else { return };
    let primary = util::cachette(&[]);
    let dir = scratch("monitor");
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
                 sentinel down-after-milliseconds mymaster 2000\n",
                own.display(),
                own.join("sentinel.log").display(),
                primary.port
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new(&bin);
        cmd.arg(&conf);
        let proc = util::spawn_and_wait(cmd, port, 0).expect("redis-sentinel starts");
        sentinels.push((proc, own.join("sentinel.log")));
    }

    // Each sentinel must see the primary up, as a master, and the two others (which it can
    // only learn from the hello messages published on the primary) — and still see it so once
    // down-after-milliseconds has passed, so that a missing or wrong answer would have shown.
    let start = Instant::now();
    let last = loop {
        let states: Vec<_> = sentinels.iter().map(|(s, _)| master_state(&mut connect(s.port))).collect();
        let settled = states.iter().all(|st| field(st, "flags") == "master" && field(st, "num-other-sentinels") == "2");
        if settled && start.elapsed() > Duration::from_secs(3) {
            break states;
        }
        assert!(start.elapsed() < SETTLE, "sentinels did not settle: {states:#?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    for state in &last {
        assert_eq!(field(state, "ip"), "127.0.0.1");
        assert_eq!(field(state, "port"), primary.port.to_string());
        assert_eq!(field(state, "num-slaves"), "0");
        // The run id sentinel read from INFO server.
        assert_eq!(field(state, "runid").len(), 40, "{state:?}");
    }
    for (s, _) in &sentinels {
        let mut con = connect(s.port);
        let addr: Vec<String> =
            redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg("mymaster").query(&mut con).expect("addr");
        assert_eq!(addr, ["127.0.0.1".to_owned(), primary.port.to_string()]);
        let others: Vec<redis::Value> =
            redis::cmd("SENTINEL").arg("SENTINELS").arg("mymaster").query(&mut con).expect("sentinels");
        assert_eq!(others.len(), 2);
        let quorum: String = redis::cmd("SENTINEL").arg("CKQUORUM").arg("mymaster").query(&mut con).expect("ckquorum");
        assert!(quorum.starts_with("OK 3 usable Sentinels"), "{quorum}");
    }

    // Each sentinel holds a command link and a pub/sub link, named as sentinel names them.
    let mut con = plain(primary.port);
    let list = ask(&mut con, &["CLIENT", "LIST"]);
    let pubsub = list.lines().filter(|l| l.contains("-pubsub ") && l.contains(" flags=P ")).count();
    let cmd_links = list.lines().filter(|l| l.contains("name=sentinel-") && l.contains("-cmd ")).count();
    assert_eq!((pubsub, cmd_links), (3, 3), "{list}");

    // CLIENT KILL TYPE pubsub drops the three hello subscriptions; the sentinels reconnect
    // and subscribe again.
    assert_eq!(ask(&mut con, &["CLIENT", "KILL", "TYPE", "pubsub"]), "3");
    let start = Instant::now();
    loop {
        let list = ask(&mut con, &["CLIENT", "LIST", "TYPE", "pubsub"]);
        if list.lines().count() == 3 {
            break;
        }
        assert!(start.elapsed() < SETTLE, "sentinels did not resubscribe: {list}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // When INFO reports a replication role (the replication work adds it), sentinel must read
    // the one it expects.
    let info = ask(&mut con, &["INFO", "replication"]);
    if info.contains("role:master") {
        for state in &last {
            assert_eq!(field(state, "role-reported"), "master", "{state:?}");
        }
    }

    // Nothing sentinel sent was refused or failed, and no sentinel ever thought it down.
    let errors = ask(&mut con, &["INFO", "errorstats"]);
    assert!(!errors.contains("errorstat_"), "{errors}");
    let stats = ask(&mut con, &["INFO", "commandstats"]);
    for cmd in ["cmdstat_ping:", "cmdstat_info:", "cmdstat_publish:", "cmdstat_subscribe:", "cmdstat_client|setname:"] {
        assert!(stats.contains(cmd), "sentinel sends {cmd} {stats}");
    }
    for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
        assert!(line.contains("rejected_calls=0,failed_calls=0"), "{line}");
    }
    for (_, log) in &sentinels {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for bad in ["+sdown", "+odown", "+failover", "-failover", "+reboot", "Error"] {
            assert!(!text.contains(bad), "{bad} in {}:\n{text}", log.display());
        }
        assert_eq!(text.matches("+sentinel sentinel").count(), 2, "{text}");
    }
}

/// The transaction sentinel sends after a failover, without its REPLICAOF (replication's):
/// the same replies from cachette and redis-server, with one more normal client and one
/// subscriber connected to each.
#[test]
fn sentinel_reconfiguration_transaction_answers_as_redis_server() {
    let dir = scratch("tx");
    let mut replies = Vec::new();
    let reference_conf = dir.0.join("redis.conf");
    let cachette_conf = dir.0.join("cachette.conf");
    std::fs::write(&reference_conf, "timeout 0\n").expect("write");
    std::fs::write(&cachette_conf, "timeout 0\n").expect("write");
    let Some(bin) = util::find_binary("redis-server") else {
        assert!(!util::in_ci(), "redis-server must be installed in CI");
        return;
    };
    let port = util::free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(&reference_conf).args(["--port", &port.to_string(), "--save", "", "--dir", dir.0.to_str().expect("utf-8")]);
    let reference = util::spawn_and_wait(cmd, port, 0).expect("redis-server starts");
    let (port, mc_port) = (util::free_port(), util::free_port());
    let mut cmd = Command::new(util::cachette_bin());
    cmd.arg(&cachette_conf).args(["--port", &port.to_string(), "--memcache-port", &mc_port.to_string()]);
    cmd.args(["--metrics-port", "0", "--save", "", "--dir", dir.0.to_str().expect("utf-8")]);
    let candidate = util::spawn_and_wait(cmd, port, mc_port).expect("cachette starts");

    for server in [&reference, &candidate] {
        let mut normal = server.redis_client();
        let _: String = redis::cmd("PING").query(&mut normal).expect("ping");
        let mut subscriber = server.redis_client();
        let _: redis::Value = redis::cmd("SUBSCRIBE").arg("__sentinel__:hello").query(&mut subscriber).expect("sub");
        let mut con = server.redis_client();
        let got: redis::Value = redis::pipe()
            .atomic()
            .cmd("CONFIG")
            .arg("REWRITE")
            .cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut con)
            .expect("transaction");
        replies.push(format!("{got:?}"));
        // The sender survives (SKIPME defaults to yes), the others are gone.
        let _: String = redis::cmd("PING").query(&mut con).expect("the sender is kept");
        assert!(redis::cmd("PING").query::<String>(&mut normal).is_err(), "the normal client is killed");
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(replies[0], "array([ok, int(1), int(1)])");
    let rewritten = std::fs::read_to_string(&cachette_conf).expect("read");
    assert!(rewritten.starts_with("timeout 0\n\n# Generated by CONFIG REWRITE\n"), "{rewritten}");
}
