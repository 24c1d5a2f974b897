//! Helpers shared by the integration tests: free ports, and real server processes that are
//! started on 127.0.0.1, waited for, and killed when the handle drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now. The tiny race between this and the server's
/// bind is acceptable for tests; servers are retried on a fresh port if the bind fails.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Connects to `port`, retrying until `deadline` so tests can start right after a spawn.
pub fn connect_when_ready(port: u16, deadline: Duration) -> Option<TcpStream> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            s.set_nodelay(true).ok();
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A server process that is killed (and reaped) on drop.
pub struct Proc {
    child: Child,
    /// The RESP port, if the process serves one.
    pub port: u16,
    /// The memcached port, if the process serves one.
    pub mc_port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The snapshot a test's SAVE may have written under the names the starters give it.
        let tmp = std::env::temp_dir();
        for name in [
            format!("cachette-it-{}.rdb", self.port),
            format!("redis-it-{}.rdb", self.port),
            format!("cachette-it-mc-{}.rdb", self.mc_port),
        ] {
            let _ = std::fs::remove_file(tmp.join(name));
        }
    }
}

impl Proc {
    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A fresh RESP connection.
    pub fn resp(&self) -> TcpStream {
        connect_when_ready(self.port, Duration::from_secs(10)).expect("connect to RESP port")
    }

    /// A fresh memcached connection.
    pub fn mc(&self) -> TcpStream {
        connect_when_ready(self.mc_port, Duration::from_secs(10)).expect("connect to memcached port")
    }

    /// A `redis` crate client.
    pub fn redis_client(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        client.get_connection().expect("redis connection")
    }

    /// A `memcache` crate client speaking the text protocol.
    pub fn memcache_client(&self) -> memcache::Client {
        memcache::Client::connect(format!("memcache://127.0.0.1:{}?protocol=ascii", self.mc_port))
            .expect("memcache client")
    }
}

/// Spawns `cmd` (standard error inherited) and waits until `port` and `mc_port` (0: none)
/// accept connections; None when the process exits first or a port never opens. For servers
/// the starters below do not cover (a config file first, redis-sentinel).
pub fn spawn_and_wait(mut cmd: Command, port: u16, mc_port: u16) -> Option<Proc> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    spawn_ready(cmd, port, mc_port)
}

/// Spawns `cmd` as it is set up and waits for its ports (see [`spawn_and_wait`]).
fn spawn_ready(mut cmd: Command, port: u16, mc_port: u16) -> Option<Proc> {
    let child = cmd.spawn().ok()?;
    let mut p = Proc { child, port, mc_port };
    for probe in [port, mc_port] {
        if probe == 0 {
            continue;
        }
        connect_when_ready(probe, Duration::from_secs(10))?;
        if let Ok(Some(_)) = p.child.try_wait() {
            return None;
        }
    }
    Some(p)
}

/// [`spawn_and_wait`] with standard output and error appended to `log` (for tests that print
/// the logs of several servers when they fail).
pub fn spawn_logged(mut cmd: Command, port: u16, mc_port: u16, log: &std::path::Path) -> Option<Proc> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).ok()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::from(out.try_clone().ok()?)).stderr(Stdio::from(out));
    spawn_ready(cmd, port, mc_port)
}

/// Path of the cachette binary built for this test run.
pub fn cachette_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cachette")
}

/// Starts cachette on free RESP and memcached ports with `extra` arguments appended
/// (redis-server style `--directive value` pairs, or a config file path first).
pub fn cachette(extra: &[&str]) -> Proc {
    cachette_env(extra, &[])
}

/// [`cachette`] with extra environment variables.
pub fn cachette_env(extra: &[&str], env: &[(&str, &str)]) -> Proc {
    for _ in 0..5 {
        let (port, mc_port) = (free_port(), free_port());
        let mut cmd = Command::new(cachette_bin());
        cmd.envs(env.iter().copied());
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        cmd.args(["--memcache-port", &mc_port.to_string(), "--enable-debug-command", "local"]);
        // Many servers run at once in the tests: none takes the default metrics port.
        cmd.args(["--metrics-port", "0"]);
        // No snapshots unless a test asks (its later --save/--dir/--dbfilename win): a test
        // must neither litter the working directory nor load a stray dump.rdb from it.
        let dir = std::env::temp_dir();
        cmd.args(["--save", "", "--dir", dir.to_str().expect("utf-8 temp dir")]);
        cmd.args(["--dbfilename", &format!("cachette-it-{port}.rdb")]);
        cmd.args(extra);
        if let Some(p) = spawn_and_wait(cmd, port, mc_port) {
            return p;
        }
    }
    panic!("cachette did not start");
}

/// Like [`cachette`], with `dir` as the working directory and `--dir` (where the AOF and RDB
/// files go), and no save points. None when it does not start (e.g. the AOF is refused); its
/// standard error is `dir/stderr.log`.
pub fn cachette_in(dir: &std::path::Path, extra: &[&str]) -> Option<Proc> {
    let (port, mc_port) = (free_port(), free_port());
    let mut cmd = Command::new(cachette_bin());
    cmd.current_dir(dir);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
    cmd.args(["--memcache-port", &mc_port.to_string(), "--metrics-port", "0", "--save", ""]);
    cmd.args(["--dir", dir.to_str().expect("utf-8 dir")]);
    cmd.args(extra);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stderr.log")).ok()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(log));
    let child = cmd.spawn().ok()?;
    let mut p = Proc { child, port, mc_port };
    for probe in [port, mc_port] {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = p.child.try_wait() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", probe)).is_ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Some(p)
}

/// Starts cachette the way memcached is started: `-p PORT -l 127.0.0.1` (a free port) and
/// `args` (memcached's flags, `--memcached-compat` …), with no RESP listener unless `args`
/// ask for one. Waits for the memcached port only.
pub fn cachette_memcached_style(args: &[&str]) -> Proc {
    for _ in 0..5 {
        let mc_port = free_port();
        let mut cmd = Command::new(cachette_bin());
        cmd.args(["-p", &mc_port.to_string(), "-l", "127.0.0.1", "--port", "0"]);
        // As in `cachette_env`: no snapshot into (or from) the working directory.
        let dir = std::env::temp_dir();
        cmd.args(["--save", "", "--dir", dir.to_str().expect("utf-8 temp dir")]);
        cmd.args(["--dbfilename", &format!("cachette-it-mc-{mc_port}.rdb")]);
        cmd.args(args);
        if let Some(p) = spawn_and_wait(cmd, 0, mc_port) {
            return p;
        }
    }
    panic!("cachette did not start");
}

/// True when running under CI, where a missing reference server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// The absolute path of an installed program, looked for where Debian puts them.
pub fn find_binary(name: &str) -> Option<String> {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return Some(p);
        }
    }
    None
}

/// The first of `names` found on `$PATH` (then in the system directories): client tools and
/// interpreters the client tests drive. Outside CI a missing tool skips the test with a
/// message; under CI it is a failure, as for the reference servers.
pub fn client_tool(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':').filter(|d| !d.is_empty()) {
            let p = format!("{dir}/{name}");
            if std::path::Path::new(&p).is_file() {
                return Some(p);
            }
        }
        if let Some(p) = find_binary(name) {
            return Some(p);
        }
    }
    assert!(!in_ci(), "{} must be installed in CI (.ci/test installs it)", names.join(" or "));
    eprintln!("{} not installed: skipping", names.join(" or "));
    None
}

/// Starts the reference redis-server (Debian's) with persistence off, or None when it is not
/// installed outside CI. Under CI a missing reference panics.
pub fn redis_server() -> Option<Proc> {
    redis_server_with(&[])
}

/// [`redis_server`] with extra `--directive value` arguments appended (they win over the
/// defaults above, as later redis-server arguments do).
pub fn redis_server_with(extra: &[&str]) -> Option<Proc> {
    let Some(bin) = find_binary("redis-server") else {
        assert!(!in_ci(), "redis-server must be installed in CI");
        eprintln!("redis-server not installed: skipping");
        return None;
    };
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        cmd.args(["--daemonize", "no", "--protected-mode", "no", "--enable-debug-command", "local"]);
        // SAVE in a test writes to the temp directory, never into the tree.
        let dir = std::env::temp_dir();
        cmd.args(["--dir", dir.to_str().expect("utf-8 temp dir")]);
        cmd.args(["--dbfilename", &format!("redis-it-{port}.rdb")]);
        cmd.args(extra);
        if let Some(p) = spawn_and_wait(cmd, port, 0) {
            return Some(p);
        }
    }
    panic!("redis-server did not start");
}

/// Starts the reference memcached (Debian's), or None when not installed outside CI.
pub fn memcached() -> Option<Proc> {
    memcached_with(&[], &[])
}

/// [`memcached`] with extra arguments and environment variables (`-S` with `SASL_CONF_PATH`).
pub fn memcached_with(extra: &[&str], env: &[(&str, &str)]) -> Option<Proc> {
    let Some(bin) = find_binary("memcached") else {
        assert!(!in_ci(), "memcached must be installed in CI");
        eprintln!("memcached not installed: skipping");
        return None;
    };
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1", "-u", "root"]);
        cmd.args(extra);
        cmd.envs(env.iter().copied());
        if let Some(p) = spawn_and_wait(cmd, 0, port) {
            return Some(p);
        }
    }
    panic!("memcached did not start");
}

/// Writes `bytes` and reads until `expect_len` bytes have arrived or the read times out.
pub fn roundtrip(s: &mut TcpStream, bytes: &[u8], expect_len: usize) -> Vec<u8> {
    s.write_all(bytes).expect("write");
    let mut out = vec![0u8; 0];
    let mut buf = [0u8; 65536];
    while out.len() < expect_len {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Sends `req` on a new memcached connection and returns everything answered until the server
/// has been quiet for 300 ms (or closed).
pub fn mc_exchange(p: &Proc, req: &[u8]) -> Vec<u8> {
    let mut s = p.mc();
    s.write_all(req).expect("write");
    s.set_read_timeout(Some(Duration::from_millis(300))).ok();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}
