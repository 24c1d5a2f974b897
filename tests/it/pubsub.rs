//! Pub/Sub and keyspace notifications end to end, across worker threads: fan-out with exact
//! receiver counts, a subscriber that never reads cut off at its output buffer limit while the
//! publisher goes on, `expired` events from the active expiry cycle, and events for writes that
//! came through the memcached port. (Command replies and errors are compared with redis-server
//! by the differential scripts `pubsub.txt` and `notifications.txt`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util;

fn cmd_bytes(cmd: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", cmd.len()).into_bytes();
    for a in cmd {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn send(s: &mut TcpStream, cmd: &[&str]) {
    let parts: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    s.write_all(&cmd_bytes(&parts)).expect("write");
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap_or_else(|e| panic!("{e} reading {n} bytes"));
    buf
}

/// Reads `want.len()` bytes and checks they are `want`.
fn read_expect(s: &mut TcpStream, want: &[u8]) {
    let got = read_n(s, want.len());
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Sends a command and checks the exact reply.
fn expect(s: &mut TcpStream, cmd: &[&str], reply: &[u8]) {
    send(s, cmd);
    let got = read_n(s, reply.len());
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(reply), "{cmd:?}");
}

/// A RESP2 message push as a subscriber receives it.
fn message(channel: &str, msg: &str) -> Vec<u8> {
    format!("*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{msg}\r\n", channel.len(), msg.len()).into_bytes()
}

fn pmessage(pattern: &str, channel: &str, msg: &str) -> Vec<u8> {
    format!(
        "*4\r\n$8\r\npmessage\r\n${}\r\n{pattern}\r\n${}\r\n{channel}\r\n${}\r\n{msg}\r\n",
        pattern.len(),
        channel.len(),
        msg.len()
    )
    .into_bytes()
}

fn subscribe_reply(word: &str, channel: &str, count: usize) -> Vec<u8> {
    format!("*3\r\n${}\r\n{word}\r\n${}\r\n{channel}\r\n:{count}\r\n", word.len(), channel.len()).into_bytes()
}

/// Polls `PUBSUB NUMSUB channel` until it answers `want` (subscriptions are cleaned up by the
/// subscriber's own worker, a moment after its socket closes).
fn await_numsub(c: &mut TcpStream, channel: &str, want: usize, within: Duration) -> bool {
    let reply = format!("*2\r\n${}\r\n{channel}\r\n:{want}\r\n", channel.len()).into_bytes();
    let start = Instant::now();
    while start.elapsed() < within {
        send(c, &["PUBSUB", "NUMSUB", channel]);
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).expect("numsub");
        if buf[..n] == reply[..] {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn fan_out_to_1000_subscribers_on_two_threads() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut subs: Vec<TcpStream> = (0..1000).map(|_| srv.resp()).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // Every tenth one subscribes to a pattern as well, to count pattern receivers too.
        if i % 10 == 0 {
            send(s, &["PSUBSCRIBE", "news.*"]);
        }
        send(s, &["SUBSCRIBE", "news.tech"]);
    }
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 10 == 0 {
            read_expect(s, &subscribe_reply("psubscribe", "news.*", 1));
            read_expect(s, &subscribe_reply("subscribe", "news.tech", 2));
        } else {
            read_expect(s, &subscribe_reply("subscribe", "news.tech", 1));
        }
    }
    let mut publisher = srv.resp();
    expect(&mut publisher, &["PUBSUB", "NUMSUB", "news.tech"], b"*2\r\n$9\r\nnews.tech\r\n:1000\r\n");
    expect(&mut publisher, &["PUBSUB", "NUMPAT"], b":1\r\n");
    const MESSAGES: usize = 20;
    for m in 0..MESSAGES {
        let msg = format!("m{m:02}");
        // 1000 channel subscribers + 100 pattern subscriptions: exact, as redis-server counts.
        expect(&mut publisher, &["PUBLISH", "news.tech", &msg], b":1100\r\n");
    }
    expect(&mut publisher, &["PUBLISH", "news.sport", "x"], b":100\r\n");
    expect(&mut publisher, &["PUBLISH", "other", "x"], b":0\r\n");
    for (i, s) in subs.iter_mut().enumerate() {
        for m in 0..MESSAGES {
            let msg = format!("m{m:02}");
            let want = message("news.tech", &msg);
            assert_eq!(read_n(s, want.len()), want, "subscriber {i}, message {m}");
            if i % 10 == 0 {
                let want = pmessage("news.*", "news.tech", &msg);
                assert_eq!(read_n(s, want.len()), want, "pattern subscriber {i}, message {m}");
            }
        }
        if i % 10 == 0 {
            let want = pmessage("news.*", "news.sport", "x");
            assert_eq!(read_n(s, want.len()), want);
        }
    }
    // Disconnecting unsubscribes.
    subs.truncate(500);
    assert!(await_numsub(&mut publisher, "news.tech", 500, Duration::from_secs(10)));
    expect(&mut publisher, &["PUBSUB", "NUMPAT"], b":1\r\n");
    subs.clear();
    assert!(await_numsub(&mut publisher, "news.tech", 0, Duration::from_secs(10)));
    expect(&mut publisher, &["PUBSUB", "NUMPAT"], b":0\r\n");
    expect(&mut publisher, &["PUBSUB", "CHANNELS"], b"*0\r\n");
}

#[test]
fn resp3_subscriber_on_another_connection_gets_pushes_and_keeps_its_commands() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut sub = srv.resp();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut sub, &["HELLO", "3"]);
    let mut hello = [0u8; 512];
    let _ = sub.read(&mut hello).expect("hello");
    expect(&mut sub, &["SSUBSCRIBE", "orders"], b">3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n");
    expect(&mut sub, &["SET", "k", "v"], b"+OK\r\n");
    let mut publisher = srv.resp();
    expect(&mut publisher, &["SPUBLISH", "orders", "o1"], b":1\r\n");
    expect(&mut publisher, &["PUBLISH", "orders", "o1"], b":0\r\n");
    let push = b">3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n";
    assert_eq!(read_n(&mut sub, push.len()), push);
    expect(&mut sub, &["GET", "k"], b"$1\r\nv\r\n");
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_the_publisher_goes_on() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = srv.resp();
    expect(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 2mb 1mb 60"], b"+OK\r\n");
    // Workers pick up limits on their housekeeping tick.
    std::thread::sleep(Duration::from_millis(300));
    let mut slow = srv.resp();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut slow, &["SUBSCRIBE", "firehose"]);
    read_expect(&mut slow, &subscribe_reply("subscribe", "firehose", 1));
    let mut publisher = srv.resp();
    publisher.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let payload = vec![b'x'; 64 * 1024];
    let publish = cmd_bytes(&[b"PUBLISH", b"firehose", &payload]);
    // 3000 x 64 KiB = 192 MiB offered: far more than the limit plus what the kernel's socket
    // buffers can hold, so the server must drop the subscriber rather than buffer it all.
    let (mut delivered, mut after_cutoff) = (0, 0);
    for _ in 0..3000 {
        publisher.write_all(&publish).expect("publish");
        let reply = read_n(&mut publisher, 4);
        match &reply[..] {
            b":1\r\n" if after_cutoff == 0 => delivered += 1,
            b":0\r\n" => after_cutoff += 1,
            other => panic!("unexpected PUBLISH reply {:?}", String::from_utf8_lossy(other)),
        }
        if after_cutoff >= 100 {
            break;
        }
    }
    assert!(after_cutoff >= 100, "the slow subscriber was never disconnected ({delivered} delivered)");
    assert!(delivered > 10, "cut off too early: {delivered}");
    // Its connection is gone: draining the socket ends in EOF (or a reset), not a block.
    let mut sink = vec![0u8; 1 << 20];
    let start = Instant::now();
    loop {
        match slow.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(start.elapsed() < Duration::from_secs(10), "socket never closed"),
        }
    }
    let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", srv.pid()))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()));
    if let Some(kb) = rss_kb {
        assert!(kb < 150 * 1024, "server RSS {kb} kB after 192 MiB offered to a 2 MB-limited subscriber");
    }
    expect(&mut admin, &["PUBSUB", "NUMSUB", "firehose"], b"*2\r\n$8\r\nfirehose\r\n:0\r\n");
}

#[test]
fn a_subscriber_over_the_soft_limit_for_its_seconds_is_cut_off() {
    let srv = util::cachette(&[]);
    let mut admin = srv.resp();
    expect(&mut admin, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1"], b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let mut slow = srv.resp();
    send(&mut slow, &["SUBSCRIBE", "c"]);
    read_expect(&mut slow, &subscribe_reply("subscribe", "c", 1));
    let payload = vec![b'y'; 16 * 1024];
    let publish = cmd_bytes(&[b"PUBLISH", b"c", &payload]);
    let start = Instant::now();
    let mut cut = false;
    // No hard limit: only the soft limit's time can end it, within a few seconds.
    while start.elapsed() < Duration::from_secs(10) {
        admin.write_all(&publish).expect("publish");
        if read_n(&mut admin, 4) == b":0\r\n" {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(cut, "never disconnected");
    assert!(start.elapsed() >= Duration::from_millis(900), "disconnected before its soft seconds");
}

#[test]
fn active_expiry_announces_expired_keys() {
    let srv = util::cachette(&["--threads", "2", "--hz", "50"]);
    let mut admin = srv.resp();
    expect(&mut admin, &["CONFIG", "SET", "notify-keyspace-events", "Ex"], b"+OK\r\n");
    let mut sub = srv.resp();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut sub, &["SUBSCRIBE", "__keyevent@0__:expired"]);
    let _ = read_n(&mut sub, subscribe_reply("subscribe", "__keyevent@0__:expired", 1).len());
    expect(&mut admin, &["SELECT", "0"], b"+OK\r\n");
    for k in ["a", "b", "c"] {
        expect(&mut admin, &["SET", k, "v", "PX", "100"], b"+OK\r\n");
    }
    // Nobody reads the keys: only the cron's cycle can find them.
    let mut seen: Vec<Vec<u8>> =
        (0..3).map(|_| read_n(&mut sub, message("__keyevent@0__:expired", "a").len())).collect();
    seen.sort();
    let want: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|k| message("__keyevent@0__:expired", k)).collect();
    assert_eq!(seen, want);
}

#[test]
fn memcached_writes_announce_the_equivalent_redis_events() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut admin = srv.resp();
    expect(&mut admin, &["CONFIG", "SET", "notify-keyspace-events", "KEA"], b"+OK\r\n");
    let mut sub = srv.resp();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut sub, &["PSUBSCRIBE", "__keyevent@0__:*"]);
    let _ = read_n(&mut sub, subscribe_reply("psubscribe", "__keyevent@0__:*", 1).len());
    let mut mc = srv.mc();
    mc.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let script: &[(&[u8], &[u8])] = &[
        (b"set k 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"append k 0 0 1\r\n2\r\n", b"STORED\r\n"),
        (b"prepend k 0 0 1\r\n0\r\n", b"STORED\r\n"),
        (b"incr k 5\r\n", b"17\r\n"),
        (b"decr k 1\r\n", b"16\r\n"),
        (b"touch k 100\r\n", b"TOUCHED\r\n"),
        (b"set t 0 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"delete k\r\n", b"DELETED\r\n"),
        (b"delete k\r\n", b"NOT_FOUND\r\n"),
    ];
    for (req, reply) in script {
        mc.write_all(req).expect("mc write");
        assert_eq!(read_n(&mut mc, reply.len()), *reply, "{}", String::from_utf8_lossy(req));
    }
    let events = [
        ("set", "k"),
        ("append", "k"),
        ("append", "k"),
        ("incrby", "k"),
        ("incrby", "k"),
        ("expire", "k"),
        ("set", "t"),
        ("expire", "t"),
        ("del", "k"),
    ];
    for (event, key) in events {
        let want = pmessage("__keyevent@0__:*", &format!("__keyevent@0__:{event}"), key);
        assert_eq!(String::from_utf8_lossy(&read_n(&mut sub, want.len())), String::from_utf8_lossy(&want));
    }
}

#[test]
fn pops_announce_on_another_connection() {
    // The same-connection differential script leaves the pop commands out (redis-server 7.0
    // writes their push inside the reply array); their events are checked here.
    let srv = util::cachette(&[]);
    let mut admin = srv.resp();
    expect(&mut admin, &["CONFIG", "SET", "notify-keyspace-events", "Ezg"], b"+OK\r\n");
    let mut sub = srv.resp();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut sub, &["PSUBSCRIBE", "*"]);
    let _ = read_n(&mut sub, subscribe_reply("psubscribe", "*", 1).len());
    expect(&mut admin, &["ZADD", "z", "1", "a", "2", "b", "3", "c"], b":3\r\n");
    expect(&mut admin, &["ZPOPMIN", "z"], b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    expect(
        &mut admin,
        &["ZMPOP", "1", "z", "MAX", "COUNT", "5"],
        b"*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    for (event, key) in [("zadd", "z"), ("zpopmin", "z"), ("zpopmax", "z"), ("del", "z")] {
        let want = pmessage("*", &format!("__keyevent@0__:{event}"), key);
        assert_eq!(String::from_utf8_lossy(&read_n(&mut sub, want.len())), String::from_utf8_lossy(&want));
    }
}

/// Reads one `CLIENT ID` reply.
fn client_id(s: &mut TcpStream) -> String {
    send(s, &["CLIENT", "ID"]);
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("client id");
    String::from_utf8_lossy(&buf[1..n - 2]).into_owned()
}

fn hello3(s: &mut TcpStream) {
    send(s, &["HELLO", "3"]);
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf).expect("hello");
}

#[test]
fn tracking_invalidates_on_writes_from_other_clients_threads_and_memcached() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut reader = srv.resp();
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    hello3(&mut reader);
    expect(&mut reader, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    let mut writers: Vec<TcpStream> = (0..4).map(|_| srv.resp()).collect();
    let invalidate = |k: &str| format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{k}\r\n", k.len()).into_bytes();
    // A write from each of several connections (spread over both workers) reaches the reader.
    for (i, w) in writers.iter_mut().enumerate() {
        let key = format!("k{i}");
        expect(&mut reader, &["GET", &key], b"_\r\n");
        expect(w, &["SET", &key, "v"], b"+OK\r\n");
        read_expect(&mut reader, &invalidate(&key));
        // One invalidation per read: a second write says nothing until the key is read again.
        expect(w, &["SET", &key, "v2"], b"+OK\r\n");
    }
    // A memcached write invalidates the same keyspace.
    expect(&mut reader, &["GET", "mk"], b"_\r\n");
    let mut mc = srv.mc();
    mc.write_all(b"set mk 0 0 1\r\nx\r\n").unwrap();
    read_expect(&mut mc, b"STORED\r\n");
    read_expect(&mut reader, &invalidate("mk"));
    // Nothing else is pending for the reader: its next reply is its own.
    expect(&mut reader, &["PING"], b"+PONG\r\n");
    // FLUSHALL tells every tracking client to drop everything.
    expect(&mut writers[0], &["FLUSHALL"], b"+OK\r\n");
    read_expect(&mut reader, b">2\r\n$10\r\ninvalidate\r\n_\r\n");
}

#[test]
fn tracking_bcast_and_resp2_redirect_through_the_invalidate_channel() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut sink = srv.resp();
    sink.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sink_id = client_id(&mut sink);
    send(&mut sink, &["SUBSCRIBE", "__redis__:invalidate"]);
    read_expect(&mut sink, &subscribe_reply("subscribe", "__redis__:invalidate", 1));
    let mut reader = srv.resp();
    expect(&mut reader, &["CLIENT", "TRACKING", "on", "REDIRECT", &sink_id, "BCAST", "PREFIX", "user:"], b"+OK\r\n");
    let mut writer = srv.resp();
    expect(&mut writer, &["SET", "user:1", "a"], b"+OK\r\n");
    expect(&mut writer, &["SET", "other", "a"], b"+OK\r\n");
    let mut mc = srv.mc();
    mc.write_all(b"delete user:1\r\n").unwrap();
    read_expect(&mut mc, b"DELETED\r\n");
    let msg = |k: &str| {
        format!("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n${}\r\n{k}\r\n", k.len()).into_bytes()
    };
    read_expect(&mut sink, &msg("user:1"));
    read_expect(&mut sink, &msg("user:1"));
    expect(&mut reader, &["CLIENT", "GETREDIR"], format!(":{sink_id}\r\n").as_bytes());
    expect(&mut sink, &["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn tracking_invalidates_keys_the_active_cycle_expires() {
    let srv = util::cachette(&["--hz", "50"]);
    let mut reader = srv.resp();
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    hello3(&mut reader);
    expect(&mut reader, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    let mut writer = srv.resp();
    expect(&mut writer, &["SET", "t", "v", "PX", "100"], b"+OK\r\n");
    expect(&mut reader, &["GET", "t"], b"$1\r\nv\r\n");
    // Nobody touches the key again: the cron's cycle deletes it, and the reader hears of it.
    read_expect(&mut reader, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nt\r\n");
}

#[test]
fn client_list_shows_subscriptions_and_tracking_and_kill_takes_type_pubsub() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut sub = srv.resp();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    hello3(&mut sub);
    send(&mut sub, &["SUBSCRIBE", "x", "y"]);
    send(&mut sub, &["PSUBSCRIBE", "p*"]);
    send(&mut sub, &["SSUBSCRIBE", "s"]);
    send(&mut sub, &["CLIENT", "TRACKING", "on", "BCAST"]);
    send(&mut sub, &["CLIENT", "INFO"]);
    let mut text = String::new();
    let start = Instant::now();
    while !text.contains("resp=3\n") && start.elapsed() < Duration::from_secs(10) {
        let mut buf = [0u8; 4096];
        let n = sub.read(&mut buf).expect("read");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains(" flags=PtB db=0 sub=2 psub=1 ssub=1 "), "{text}");
    assert!(text.contains(" redir=0 resp=3\n"), "{text}");
    let sub_id = text.split("id=").nth(1).and_then(|s| s.split(' ').next()).expect("id").to_owned();
    let mut admin = srv.resp();
    send(&mut admin, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    let mut buf = [0u8; 4096];
    let n = admin.read(&mut buf).expect("list");
    let list = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(list.matches("id=").count(), 1, "{list}");
    assert!(list.contains(&format!("id={sub_id} ")), "{list}");
    expect(&mut admin, &["CLIENT", "KILL", "TYPE", "pubsub"], b":1\r\n");
    assert!(await_numsub(&mut admin, "x", 0, Duration::from_secs(10)));
}

#[test]
fn tracking_tells_a_resp3_client_its_redirect_target_has_gone() {
    let srv = util::cachette(&["--threads", "2"]);
    let mut target = srv.resp();
    let target_id = client_id(&mut target);
    let mut reader = srv.resp();
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    hello3(&mut reader);
    expect(&mut reader, &["CLIENT", "TRACKING", "on", "REDIRECT", &target_id], b"+OK\r\n");
    expect(&mut reader, &["GET", "rk"], b"_\r\n");
    drop(target);
    let mut admin = srv.resp();
    // The target's worker forgets it a moment after its socket closes.
    let start = Instant::now();
    loop {
        send(&mut admin, &["CLIENT", "LIST", "ID", &target_id]);
        let mut buf = [0u8; 1024];
        let n = admin.read(&mut buf).expect("list");
        if !String::from_utf8_lossy(&buf[..n]).contains("id=") || start.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    expect(&mut admin, &["SET", "rk", "1"], b"+OK\r\n");
    read_expect(&mut reader, format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{target_id}\r\n").as_bytes());
}
