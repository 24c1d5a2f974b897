//! Client management and introspection across worker threads: CLIENT KILL, PAUSE, UNBLOCK and
//! REPLY, MONITOR fed from every thread, SLOWLOG thresholds, and the command statistics.
//! Servers run with two workers, so a test's connections land on both.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util;

fn send(s: &mut TcpStream, cmd: &[&str]) {
    let mut out = format!("*{}\r\n", cmd.len());
    for a in cmd {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(out.as_bytes()).expect("write");
}

/// Reads one reply (RESP2) as text: simple strings, errors and integers as their line,
/// bulk strings as their payload, arrays as their elements joined by `|`, nulls as `(nil)`.
fn read_reply(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("reply line");
    let line = line.trim_end_matches("\r\n").to_string();
    let (kind, rest) = line.split_at(1);
    match kind {
        "$" => {
            let n: i64 = rest.parse().expect("bulk len");
            if n < 0 {
                return "(nil)".into();
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf).expect("bulk");
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        }
        "*" => {
            let n: i64 = rest.parse().expect("array len");
            if n < 0 {
                return "(nil)".into();
            }
            (0..n).map(|_| read_reply(r)).collect::<Vec<_>>().join("|")
        }
        _ => line,
    }
}

struct Client(BufReader<TcpStream>);

impl Client {
    fn new(srv: &util::Proc) -> Client {
        Client(BufReader::new(srv.resp()))
    }
    fn call(&mut self, cmd: &[&str]) -> String {
        send(self.0.get_mut(), cmd);
        read_reply(&mut self.0)
    }
    fn id(&mut self) -> String {
        self.call(&["CLIENT", "ID"]).trim_start_matches(':').to_string()
    }
    /// True when the server closed the connection (EOF) within a few seconds.
    fn closed(&mut self) -> bool {
        self.0.get_mut().set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut b = [0u8; 64];
        matches!(self.0.read(&mut b), Ok(0)) || matches!(self.0.get_mut().read(&mut b), Ok(0))
    }
}

/// The client's address as the server sees it (for the ADDR filter).
fn addr_of(c: &Client) -> String {
    c.0.get_ref().local_addr().expect("local addr").to_string()
}

#[test]
fn client_kill_closes_connections_on_any_worker() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = Client::new(&srv);
    let mut victims: Vec<Client> = (0..6).map(|_| Client::new(&srv)).collect();
    let ids: Vec<String> = victims.iter_mut().map(Client::id).collect();

    assert_eq!(admin.call(&["CLIENT", "KILL", "ID", &ids[0]]), ":1");
    assert!(victims[0].closed(), "killed by ID");
    let addr = addr_of(&victims[1]);
    assert_eq!(admin.call(&["CLIENT", "KILL", &addr]), "+OK", "old form");
    assert!(victims[1].closed(), "killed by address");
    assert_eq!(admin.call(&["CLIENT", "KILL", "ADDR", &addr_of(&victims[2]), "SKIPME", "yes"]), ":1");
    assert!(victims[2].closed(), "killed by ADDR");

    // Everyone else but the caller: the three left.
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "normal"]), ":3");
    for v in &mut victims[3..] {
        assert!(v.closed());
    }
    assert_eq!(admin.call(&["PING"]), "+PONG", "SKIPME defaults to yes");
    let listed = admin.call(&["CLIENT", "LIST"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");

    // Killing oneself answers first, then closes.
    let me = admin.id();
    assert_eq!(admin.call(&["CLIENT", "KILL", "ID", &me, "SKIPME", "no"]), ":1");
    assert!(admin.closed());
}

#[test]
fn client_pause_write_holds_writes_and_lets_reads_through() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = Client::new(&srv);
    let mut others: Vec<Client> = (0..4).map(|_| Client::new(&srv)).collect();
    assert_eq!(admin.call(&["SET", "k", "before"]), "+OK");
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), "+OK");
    for c in &mut others {
        assert_eq!(c.call(&["GET", "k"]), "before", "reads pass a write pause");
    }
    for (i, c) in others.iter_mut().enumerate() {
        send(c.0.get_mut(), &["SET", "k", &format!("during{i}")]);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.call(&["GET", "k"]), "before", "writes wait, they do not fail");
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), "+OK");
    for c in &mut others {
        assert_eq!(read_reply(&mut c.0), "+OK", "the held write runs after UNPAUSE");
    }
    assert!(admin.call(&["GET", "k"]).starts_with("during"));
}

#[test]
fn client_pause_all_holds_every_command_until_it_ends() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = Client::new(&srv);
    let mut other = Client::new(&srv);
    let start = Instant::now();
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "300", "ALL"]), "+OK");
    assert_eq!(other.call(&["PING"]), "+PONG");
    assert!(start.elapsed() >= Duration::from_millis(250), "PING answered during PAUSE ALL");
}

#[test]
fn client_unblock_ends_a_wait_on_another_worker() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = Client::new(&srv);
    let mut waiters: Vec<Client> = (0..2).map(|_| Client::new(&srv)).collect();
    let ids: Vec<String> = waiters.iter_mut().map(Client::id).collect();
    for w in &mut waiters {
        send(w.0.get_mut(), &["BLPOP", "q", "0"]);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin.call(&["CLIENT", "LIST"]).lines().filter(|l| l.contains("flags=b")).count() < 2 {
        assert!(Instant::now() < deadline, "clients never blocked");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &ids[0]]), ":1");
    assert_eq!(read_reply(&mut waiters[0].0), "(nil)", "TIMEOUT answers the timeout reply");
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &ids[1], "ERROR"]), ":1");
    assert_eq!(read_reply(&mut waiters[1].0), "-UNBLOCKED client unblocked via CLIENT UNBLOCK");
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &ids[1]]), ":0", "no longer blocked");
    assert_eq!(waiters[0].call(&["PING"]), "+PONG", "the pipeline goes on");
}

#[test]
fn client_reply_off_and_skip_drop_replies() {
    let srv = util::cachette(&[]);
    let mut c = Client::new(&srv);
    send(c.0.get_mut(), &["CLIENT", "REPLY", "OFF"]);
    send(c.0.get_mut(), &["SET", "a", "1"]);
    send(c.0.get_mut(), &["GET", "nosuch", "extra"]);
    send(c.0.get_mut(), &["CLIENT", "REPLY", "SKIP"]);
    send(c.0.get_mut(), &["GET", "a"]);
    assert_eq!(c.call(&["CLIENT", "REPLY", "ON"]), "+OK");
    send(c.0.get_mut(), &["CLIENT", "REPLY", "SKIP"]);
    send(c.0.get_mut(), &["INCR", "a"]);
    assert_eq!(c.call(&["GET", "a"]), "2", "only the replies were dropped, not the commands");
}

#[test]
fn monitor_sees_commands_from_every_worker() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut monitors: Vec<Client> = (0..2).map(|_| Client::new(&srv)).collect();
    for m in &mut monitors {
        assert_eq!(m.call(&["MONITOR"]), "+OK");
    }
    let mut clients: Vec<Client> = (0..6).map(|_| Client::new(&srv)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.call(&["SET", &format!("key{i}"), "va\"l\n"]), "+OK");
        assert_eq!(c.call(&["CONFIG", "GET", "port"]).split('|').count(), 2, "admin commands are not shown");
    }
    for m in &mut monitors {
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let line = read_reply(&mut m.0);
            seen.push(line);
        }
        for (i, line) in seen.iter().enumerate() {
            // +1700000000.123456 [0 127.0.0.1:5555] "set" "key0" "va\"l\n"
            let (ts, rest) = line.trim_start_matches('+').split_once(' ').expect("timestamp");
            let (secs, micros) = ts.split_once('.').expect("seconds.micros");
            assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
            assert!(rest.starts_with("[0 127.0.0.1:"), "{line}");
            assert!(rest.ends_with(&format!("] \"SET\" \"key{i}\" \"va\\\"l\\n\"")), "{line}");
        }
        assert_eq!(m.call(&["GET", "x"]), "-ERR Replica can't interact with the keyspace");
    }
    // A monitor that goes away stops being fed; the other goes on. Refused commands (the
    // monitors' GET) are not shown.
    drop(monitors.pop());
    assert_eq!(clients[0].call(&["PING"]), "+PONG");
    let line = read_reply(&mut monitors[0].0);
    assert!(line.ends_with("] \"PING\""), "{line}");
}

#[test]
fn slowlog_keeps_what_passes_the_threshold() {
    let srv = util::cachette(&["--threads", "2", "--slowlog-log-slower-than", "50000"]);
    let mut c = Client::new(&srv);
    assert_eq!(c.call(&["SLOWLOG", "RESET"]), "+OK");
    assert_eq!(c.call(&["GET", "k"]), "(nil)");
    assert_eq!(c.call(&["DEBUG", "SLEEP", "0.06"]), "+OK");
    assert_eq!(c.call(&["SLOWLOG", "LEN"]), ":1");
    let entry = c.call(&["SLOWLOG", "GET"]);
    let fields: Vec<&str> = entry.split('|').collect();
    assert_eq!(&fields[3..6], ["DEBUG", "SLEEP", "0.06"], "{entry}");
    let micros: u64 = fields[2].trim_start_matches(':').parse().expect("duration");
    assert!(micros >= 50_000, "{entry}");
    assert_eq!(c.call(&["CONFIG", "SET", "slowlog-max-len", "0"]), "+OK");
    assert_eq!(c.call(&["SLOWLOG", "LEN"]), ":0");
}

#[test]
fn command_statistics_add_up_across_workers() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut clients: Vec<Client> = (0..4).map(|_| Client::new(&srv)).collect();
    for c in &mut clients {
        for _ in 0..25 {
            c.call(&["INCR", "n"]);
        }
        c.call(&["GET"]);
        c.call(&["LPUSH", "n", "x"]);
    }
    let stats = clients[0].call(&["INFO", "commandstats"]);
    let incr = stats.lines().find(|l| l.starts_with("cmdstat_incr:")).expect("incr line");
    assert!(incr.starts_with("cmdstat_incr:calls=100,usec="), "{incr}");
    assert!(incr.ends_with(",rejected_calls=0,failed_calls=0"), "{incr}");
    let get = stats.lines().find(|l| l.starts_with("cmdstat_get:")).expect("get line");
    assert!(get.ends_with("rejected_calls=4,failed_calls=0"), "{get}");
    let lpush = stats.lines().find(|l| l.starts_with("cmdstat_lpush:")).expect("lpush line");
    assert!(lpush.starts_with("cmdstat_lpush:calls=4,") && lpush.ends_with("failed_calls=4"), "{lpush}");
    let errors = clients[0].call(&["INFO", "errorstats"]);
    assert!(errors.contains("errorstat_ERR:count=4\r\nerrorstat_WRONGTYPE:count=4"), "{errors}");
    let hist = clients[0].call(&["LATENCY", "HISTOGRAM", "incr"]);
    assert!(hist.starts_with("incr|calls|:100|histogram_usec|"), "{hist}");
    let latency = clients[0].call(&["INFO", "latencystats"]);
    assert!(latency.contains("latency_percentiles_usec_incr:p50="), "{latency}");
}

#[test]
fn client_pause_write_holds_an_exec_that_writes() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = Client::new(&srv);
    let mut tx = Client::new(&srv);
    assert_eq!(tx.call(&["MULTI"]), "+OK");
    assert_eq!(tx.call(&["GET", "k"]), "+QUEUED");
    assert_eq!(tx.call(&["SET", "k", "v"]), "+QUEUED");
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), "+OK");
    send(tx.0.get_mut(), &["EXEC"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.call(&["GET", "k"]), "(nil)", "EXEC with a write waits");
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), "+OK");
    assert_eq!(read_reply(&mut tx.0), "(nil)|+OK");
    // A read-only transaction passes a write pause.
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]), "+OK");
    assert_eq!(tx.call(&["MULTI"]), "+OK");
    assert_eq!(tx.call(&["GET", "k"]), "+QUEUED");
    assert_eq!(tx.call(&["EXEC"]), "v");
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), "+OK");
}
