//! Real memcached clients against the real binary, each in a scripted session: the
//! libmemcached tools in ASCII mode (memccapable's protocol conformance suite, then copy, cat,
//! exist, touch, dump, stat, remove) and pymemcache. A missing client skips its test with a
//! message outside CI and fails under CI (`.ci/test` installs them).

use std::process::{Command, Output};

use crate::util;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("client runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// libmemcached 1.1 installs its tools as `memc*` (memccp), older releases as `mem*` (memcp).
fn tool(base: &str) -> Option<String> {
    util::client_tool(&[&format!("memc{base}"), &format!("mem{base}")])
}

#[test]
fn libmemcached_tools_ascii() {
    let Some(capable) = tool("capable") else { return };
    let (Some(cp), Some(cat), Some(exist), Some(rm), Some(stat), Some(dump), Some(touch)) =
        (tool("cp"), tool("cat"), tool("exist"), tool("rm"), tool("stat"), tool("dump"), tool("touch"))
    else {
        return;
    };
    let srv = util::cachette(&[]);
    let port = srv.mc_port.to_string();
    // memccapable's ASCII suite: every text command, with and without noreply.
    let out = run(Command::new(&capable).args(["-h", "127.0.0.1", "-p", &port, "-a", "-t", "5"]));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("All tests passed"), "{report}");

    let servers = format!("--servers=127.0.0.1:{}", srv.mc_port);
    let dir = std::env::temp_dir().join(format!("cachette-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("greeting.txt");
    std::fs::write(&file, "hello from libmemcached\n").expect("write");
    run(Command::new(&cp).arg(&servers).arg(&file));
    let out = run(Command::new(&cat).arg(&servers).arg("greeting.txt"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "hello from libmemcached");
    run(Command::new(&exist).arg(&servers).arg("greeting.txt"));
    run(Command::new(&touch).arg(&servers).arg("--expire=100").arg("greeting.txt"));
    // memcdump lists keys through `lru_crawler metadump`.
    let out = run(Command::new(&dump).arg(&servers));
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == "greeting.txt"));
    let out = run(Command::new(&stat).arg(&servers));
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("version: 1.6.18") && stats.contains("curr_items:"), "{stats}");
    run(Command::new(&rm).arg(&servers).arg("greeting.txt"));
    let gone = Command::new(&exist).arg(&servers).arg("greeting.txt").output().expect("runs");
    assert!(!gone.status.success(), "the key should be gone");
    let _ = std::fs::remove_dir_all(&dir);
}

const PYMEMCACHE_SESSION: &str = r#"
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5, default_noreply=False)
assert c.version() == b"1.6.18", c.version()
assert c.set("k", "v", expire=100) is True
assert c.get("k") == b"v"
assert c.add("k", "x") is False and c.add("k2", "x") is True
assert c.replace("nope", "x") is False and c.replace("k2", "y") is True
assert c.get_many(["k", "k2", "missing"]) == {"k": b"v", "k2": b"y"}
value, token = c.gets("k")
assert value == b"v" and token
assert c.cas("k", "w", token) is True
assert c.cas("k", "z", token) is False
assert c.append("k", "1") and c.prepend("k", "0") and c.get("k") == b"0w1"
c.set("n", "10")
assert c.incr("n", 5) == 15 and c.decr("n", 20) == 0
assert c.incr("missing", 1) is None
assert c.touch("k", 100) is True and c.touch("missing", 1) is False
assert c.get("k") == b"0w1"
assert c.delete("k2") is True and c.get("k2") is None
c.set("big", b"x" * 1000000)
assert c.get("big") == b"x" * 1000000
try:
    c.set("huge", b"x" * 2000000)
    raise SystemExit("a 2 MB value was accepted")
except Exception as e:
    assert "too large" in str(e), e
stats = c.stats()
assert stats[b"version"] == b"1.6.18" and stats[b"cmd_get"] >= 5, stats
assert int(stats[b"curr_items"]) >= 2
settings = c.stats("settings")
assert settings[b"item_size_max"] == 1048576, settings
assert c.flush_all() is True and c.get("k") is None
c.quit()
print("ok")
"#;

#[test]
fn pymemcache_session() {
    let Some(python) = util::client_tool(&["python3"]) else { return };
    let has_module = Command::new(&python).args(["-c", "import pymemcache"]).output().is_ok_and(|o| o.status.success());
    if !has_module {
        assert!(!util::in_ci(), "pymemcache must be installed in CI (.ci/test installs it)");
        eprintln!("pymemcache not installed: skipping");
        return;
    }
    let srv = util::cachette(&[]);
    let out = run(Command::new(&python).args(["-c", PYMEMCACHE_SESSION, &srv.mc_port.to_string()]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
