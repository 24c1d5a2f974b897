//! redis-cli's scriptable modes against cachette and redis-server side by side: `--scan`,
//! `--bigkeys`, `--memkeys`, `--stat`, `--latency`, `monitor` and `--no-raw`. Each run is bounded
//! by `timeout`; the outputs are compared by shape (the same lines with the figures masked),
//! since key counts, sizes and timings legitimately differ.

use std::process::{Command, Stdio};

use crate::util;

/// Runs redis-cli against `port` with `args`, at most `secs` seconds (coreutils `timeout`;
/// `stdbuf` makes redis-cli's stdout line-buffered so a timed-out run keeps its output).
fn cli(port: u16, secs: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args([secs, "stdbuf", "-oL", "redis-cli", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    if !out.stderr.is_empty() {
        eprintln!("redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each line with every run of digits (and decimal point, and memory unit) replaced by `#`,
/// spaces squeezed:
/// what is left is the shape redis-cli printed.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let mut s = String::new();
            let mut in_num = false;
            for ch in l.chars() {
                if ch.is_ascii_digit() || (in_num && ch == '.') {
                    if !in_num {
                        s.push('#');
                    }
                    in_num = true;
                } else {
                    in_num = false;
                    s.push(ch);
                }
            }
            // Memory figures carry a unit that depends on their size (942.19K, 1.96M).
            for unit in ["#B", "#K", "#M", "#G"] {
                s = s.replace(unit, "#");
            }
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn populate(port: u16) {
    for args in [
        &["SET", "str:a", "hello"][..],
        &["SET", "str:b", "a much longer string value"],
        &["RPUSH", "list:a", "x", "y", "z"],
        &["HSET", "hash:a", "f", "v", "g", "w"],
        &["SADD", "set:a", "m", "n"],
        &["ZADD", "zset:a", "1", "m"],
    ] {
        cli(port, "5", args);
    }
}

#[test]
fn redis_cli_modes_match_redis_server_in_shape() {
    if std::process::Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("redis-cli not installed: skipping");
        return;
    }
    let Some(reference) = util::redis_server() else { return };
    let srv = util::cachette(&["--threads", "2"]);
    let (r, c) = (reference.port, srv.port);
    populate(r);
    populate(c);

    let scan = |p| {
        let mut keys: Vec<String> = cli(p, "5", &["--scan", "--pattern", "*:a"]).lines().map(String::from).collect();
        keys.sort();
        keys
    };
    assert_eq!(scan(c), scan(r), "--scan --pattern");

    for mode in ["--bigkeys", "--memkeys"] {
        // The summary (from the line "-------- summary -------") on; the progress lines before it
        // name keys in SCAN order, which differs between servers.
        let summary = |p| {
            let out = cli(p, "10", &[mode]);
            let at = out.find("-------- summary -------").unwrap_or(0);
            let mut lines = shape(&out[at..]);
            // Sizes decide which key is "biggest" when two are close: compare the kinds only.
            lines.retain(|l| !l.starts_with("Biggest"));
            lines
        };
        assert_eq!(summary(c), summary(r), "{mode}");
    }

    // --stat: the two header lines, then one row per interval with the same columns.
    let stat = |p| shape(&cli(p, "1.2", &["--stat", "-i", "0.3"]));
    let (got, want) = (stat(c), stat(r));
    assert!(got.len() >= 3 && want.len() >= 3, "--stat printed {got:?} / {want:?}");
    assert_eq!(got[..3], want[..3], "--stat");

    // --latency without a terminal samples for one interval, prints "min max avg samples", exits.
    let latency = |p| shape(&cli(p, "10", &["--latency", "-i", "0.2"]));
    assert_eq!(latency(c), latency(r), "--latency");
    assert_eq!(latency(c), vec!["# # # #"]);

    for args in [&["--no-raw", "GET", "str:a"][..], &["--no-raw", "LRANGE", "list:a", "0", "-1"], &["GET", "str:a"]] {
        assert_eq!(cli(c, "5", args), cli(r, "5", args), "{args:?}");
    }

    // monitor: start it, run a command from another client, stop it.
    let monitor = |p: u16| {
        let child = Command::new("timeout")
            .args(["1", "stdbuf", "-oL", "redis-cli", "-p", &p.to_string(), "monitor"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli monitor");
        std::thread::sleep(std::time::Duration::from_millis(300));
        cli(p, "5", &["GET", "str:a"]);
        let out = child.wait_with_output().expect("monitor output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Mask the client's port as well as the time.
        shape(&text)
    };
    let (got, want) = (monitor(c), monitor(r));
    assert_eq!(got, want, "monitor");
    assert_eq!(got.last().map(String::as_str), Some("# [# #:#] \"GET\" \"str:a\""));
}
