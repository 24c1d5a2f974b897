//! Real memcached clients against the real binary: libmemcached (pylibmc, Debian's
//! `python3-pylibmc`, in binary and ascii mode, with and without SASL; and the libmemcached
//! tools `memccp`/`memccat --binary`) and memjs (binary protocol + SASL PLAIN, installed by
//! `.ci/test` with `npm install --prefix tests/clients`), and libmemcached's conformance suite
//! `memccapable` in binary mode. The scripted sessions live in
//! `tests/clients/`; each prints `ok` when every step gave the answer the client expects.
//!
//! A client that is not installed is skipped with a message, except under CI (`CI=true`), where
//! `.ci/test` installs them all and a missing one is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::differential_binary::{sasl_cachette, sasl_files, SASL_PASSWORD, SASL_USER};
use crate::util;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether a client is available; a skip message outside CI, a panic under it.
fn available(what: &str, ok: bool) -> bool {
    if !ok {
        assert!(!util::in_ci(), "{what} must be installed in CI (.ci/test installs it)");
        eprintln!("{what} not installed: skipping");
    }
    ok
}

fn pylibmc() -> bool {
    let ok = Command::new("/usr/bin/python3").args(["-c", "import pylibmc"]).output().is_ok_and(|o| o.status.success());
    available("pylibmc (python3-pylibmc)", ok)
}

fn memjs() -> bool {
    let ok = util::find_binary("node").is_some() && clients_dir().join("node_modules/memjs").exists();
    available("node + memjs (npm install --prefix tests/clients)", ok)
}

/// Runs a session script; asserts it printed `ok`.
fn session(program: &str, args: &[&str]) {
    let out = Command::new(program).current_dir(clients_dir()).args(args).output().expect("run client session");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{program} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pylibmc_binary_and_ascii() {
    if !pylibmc() {
        return;
    }
    let srv = util::cachette(&[]);
    let port = srv.mc_port.to_string();
    session("/usr/bin/python3", &["pylibmc_session.py", &port, "binary"]);
    session("/usr/bin/python3", &["pylibmc_session.py", &port, "ascii"]);
}

#[test]
fn pylibmc_binary_with_sasl() {
    if !pylibmc() {
        return;
    }
    let Some(dir) = sasl_files() else { return };
    let srv = sasl_cachette(&dir);
    let port = srv.mc_port.to_string();
    session("/usr/bin/python3", &["pylibmc_session.py", &port, "binary", SASL_USER, SASL_PASSWORD]);
    // A wrong password gets nothing.
    let out = Command::new("/usr/bin/python3")
        .current_dir(clients_dir())
        .args(["pylibmc_session.py", &port, "binary", SASL_USER, "wrong"])
        .output()
        .expect("run pylibmc");
    assert!(!out.status.success(), "a wrong password must not get through");
}

#[test]
fn memjs_binary_and_sasl() {
    if !memjs() {
        return;
    }
    let srv = util::cachette(&[]);
    session("node", &["memjs_session.js", &srv.mc_port.to_string()]);
    let Some(dir) = sasl_files() else { return };
    let srv = sasl_cachette(&dir);
    session("node", &["memjs_session.js", &srv.mc_port.to_string(), SASL_USER, SASL_PASSWORD]);
}

#[test]
fn libmemcached_tools_binary() {
    let (Some(cp), Some(cat)) = (util::find_binary("memccp"), util::find_binary("memccat")) else {
        available("memccp/memccat (libmemcached-tools)", false);
        return;
    };
    let srv = util::cachette(&[]);
    let servers = format!("--servers=127.0.0.1:{}", srv.mc_port);
    let dir = std::env::temp_dir().join(format!("cachette-memccp-{}-{}", std::process::id(), srv.mc_port));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("payload.txt");
    std::fs::write(&file, "copied over the binary protocol\n").expect("write payload");
    let st = Command::new(cp).args([&servers, "--binary"]).arg(&file).status().expect("memccp");
    assert!(st.success(), "memccp --binary failed");
    let out = Command::new(cat).args([&servers, "--binary", "payload.txt"]).output().expect("memccat");
    // memccat ends each value with a newline of its own.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "copied over the binary protocol\n\n");
    // The text protocol sees the same item.
    let mut m = srv.mc();
    let got = util::roundtrip(&mut m, b"get payload.txt\r\n", 60);
    assert!(got.starts_with(b"VALUE payload.txt 0 32\r\ncopied"), "{}", String::from_utf8_lossy(&got));
    let _ = std::fs::remove_dir_all(dir);
}

/// libmemcached's protocol conformance suite, `memccapable`, in binary mode (memcached 1.6.18
/// passes it; `clients.rs` runs its ascii mode).
#[test]
fn memccapable_conformance() {
    let Some(capable) = util::find_binary("memccapable") else {
        available("memccapable (libmemcached-tools)", false);
        return;
    };
    let srv = util::cachette(&[]);
    let out = Command::new(&capable)
        .args(["-h", "127.0.0.1", "-p", &srv.mc_port.to_string(), "-t", "5", "-b"])
        .output()
        .expect("run memccapable");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("All tests passed"),
        "memccapable -b:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
