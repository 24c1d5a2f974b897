//! The README's Operations section, command by command: each line shown there is run here, with
//! the staged install standing in for `/` and free ports standing in for the defaults, so the
//! section cannot drift from what works.

use std::path::PathBuf;
use std::process::Command;

use crate::util;

/// The command lines of the first `sh` block after `## Operations`.
fn readme_commands() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Operations").nth(1).expect("README has an Operations section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("an sh block");
    block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("bash").arg("-c").arg(cmd).output().expect("bash");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_operations_command_in_the_readme_works() {
    let commands = readme_commands();
    assert_eq!(
        commands,
        [
            "sudo systemd/install.sh",
            "cachette /etc/cachette/cachette.conf --test-config",
            "curl -fsS http://127.0.0.1:9279/health",
            "curl -fsS http://127.0.0.1:9279/metrics | grep '^redis_connected_clients'",
            "redis-cli -p 6379 ping",
        ],
        "the README's Operations commands changed: update this test to run the new ones"
    );
    if util::find_binary("curl").is_none() {
        assert!(!util::in_ci(), "curl missing under CI");
        eprintln!("curl not installed: skipped");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let stage = std::env::temp_dir().join(format!("cachette-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);

    // 1. The installer, staged into a directory instead of / (no user, no systemctl).
    let install = commands[0].replace("sudo systemd/install.sh", &format!("{root}/systemd/install.sh"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&install)
        .env("DESTDIR", &stage)
        .env("CACHETTE_BIN", util::cachette_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conf: PathBuf = stage.join("etc/cachette/cachette.conf");
    let bin = stage.join("usr/local/bin/cachette");

    // 2. The config check, on the installed config.
    let check = commands[1]
        .replace("cachette ", &format!("{} ", bin.display()))
        .replace("/etc/cachette/cachette.conf", conf.to_str().unwrap());
    let (ok, text) = sh(&check);
    assert!(ok && text.starts_with("configuration OK"), "{check}: {text}");

    // 3-5. A server on the installed config (free ports instead of the defaults).
    let (port, metrics) = (util::free_port(), util::free_port());
    let mut child = Command::new(&bin)
        .arg(&conf)
        .args(["--port", &port.to_string(), "--memcache-port", "0", "--metrics-port", &metrics.to_string()])
        .args(["--threads", "1"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start the installed binary");
    let up = util::connect_when_ready(metrics, std::time::Duration::from_secs(10)).is_some()
        && util::connect_when_ready(port, std::time::Duration::from_secs(10)).is_some();
    let _guard = Reap(&mut child);
    assert!(up, "the installed server did not come up");
    let (ok, text) = sh(&commands[2].replace("9279", &metrics.to_string()));
    assert!(ok && text == "OK\n", "health: {text}");
    let (ok, text) = sh(&commands[3].replace("9279", &metrics.to_string()));
    assert!(ok && text.starts_with("redis_connected_clients "), "metrics: {text}");
    let (ok, text) = sh(&commands[4].replace("6379", &port.to_string()));
    assert!(ok && text.trim() == "PONG", "redis-cli: {text}");
    let _ = std::fs::remove_dir_all(&stage);
}

/// Kills and reaps the server however the test ends.
struct Reap<'a>(&'a mut std::process::Child);
impl Drop for Reap<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
