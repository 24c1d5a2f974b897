//! loadgen: a closed-loop load generator for cachette, redis-server and memcached.
//!
//! ```text
//! loadgen [run] --proto resp|mc-text|mc-meta|mc-binary --port N [options]   measure (--help)
//! loadgen ping --proto P --port N [--wait S]                      wait until a server answers
//! loadgen free-ports N                                            print N free loopback ports
//! ```
//!
//! One thread, one `mio::Poll`, N connections (see `driver` for what latency means). The
//! measured run prints a human summary and one machine-readable `RESULT key=value …` line (or
//! JSON with `--json`). Every run ends by itself: by request count, by duration, or by the
//! stall timeout when the server stops answering. Exit status: 0 clean, 2 finished but some
//! replies were errors (wrong value, miss after preload, error reply), 1 could not run.

mod driver;
mod hist;
mod proto;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use driver::{Driver, KeyOrder, OpMix, Outcome, Phase, Workload};
use proto::Proto;

const USAGE: &str = "\
usage: loadgen [run] [options]
       loadgen ping --proto P [--host H] --port N [--wait SECONDS]
       loadgen free-ports COUNT

options for run:
  --proto resp|mc-text|mc-meta|mc-binary
                                 protocol to speak (default resp)
  --host HOST                    server address (default 127.0.0.1)
  --port N                       server port (required)
  --conns N                      connections (default 50)
  --pipeline N                   requests per batch on each connection (default 1)
  --op get|set|mixed|mget        operation (default get); mget is a multi-get, counted as
                                 one request (memcached protocols only: text `get k1 k2 …`,
                                 meta `mg k v` per key then `mn`, binary GETKQ per key then
                                 NOOP)
  --get-ratio F                  share of GETs for --op mixed (default 0.9)
  --mget-keys N                  keys per multi-get, 1 to 1000 (default 100)
  --value-size N                 bytes per value (default 32)
  --keys N                       keyspace size, keys are key:%08d (default 100000)
  --requests N                   stop after N requests in total
  --duration SECONDS             stop after this long (default: 100000 requests if neither)
  --warmup                       first SET every key (not measured), so GETs must hit
  --seed N                       random seed for key choice (default 1)
  --timeout SECONDS              give up when no reply comes for this long (default 10)
  --label TEXT                   copied into the RESULT line (e.g. the server's name)
  --server-pid PID               also report that process's CPU use during the run
  --json                         print the result as one JSON object instead of RESULT k=v
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.first().map(String::as_str) {
        Some("ping") | Some("free-ports") | Some("run") => args.remove(0),
        _ => "run".to_string(),
    };
    let result = match cmd.as_str() {
        "ping" => Flags::parse(&args).and_then(|f| ping(&f)),
        "free-ports" => free_ports(&args),
        _ => Flags::parse(&args).and_then(|f| run(&f)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--name value` / `--name=value` pairs and bare `--switch`es, in order of appearance.
struct Flags(Vec<(String, Option<String>)>);

/// Flags that take no value.
const SWITCHES: &[&str] = &["warmup", "json", "help"];

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                if a == "-h" {
                    out.push(("help".to_string(), None));
                    continue;
                }
                return Err(format!("unexpected argument {a:?}\n{USAGE}"));
            };
            if let Some((n, v)) = name.split_once('=') {
                out.push((n.to_string(), Some(v.to_string())));
            } else if SWITCHES.contains(&name) {
                out.push((name.to_string(), None));
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                out.push((name.to_string(), Some(v.clone())));
            }
        }
        Ok(Flags(out))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Result<T, String> {
        match self.str(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name}: {v:?} is not a valid number")),
            None => default.ok_or_else(|| format!("--{name} is required\n{USAGE}")),
        }
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown option --{n}\n{USAGE}")),
            None => Ok(()),
        }
    }
}

fn addr(f: &Flags) -> Result<SocketAddr, String> {
    let host = f.str("host").unwrap_or("127.0.0.1");
    let port: u16 = f.num("port", None)?;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))
}

fn proto_flag(f: &Flags) -> Result<Proto, String> {
    let name = f.str("proto").unwrap_or("resp");
    Proto::from_name(name).ok_or_else(|| format!("--proto: unknown protocol {name:?}"))
}

/// The settings of a measured run, as given.
struct RunConfig {
    proto: Proto,
    addr: SocketAddr,
    conns: usize,
    pipeline: usize,
    op: &'static str,
    mix: OpMix,
    value_size: usize,
    keys: u32,
    requests: Option<u64>,
    duration: Option<Duration>,
    warmup: bool,
    label: String,
    json: bool,
}

/// Keys per multi-get at most; memcached reads a text `get` line of any length, but 1000
/// 12-byte keys already make a 13 kB request, far beyond what the benchmark needs.
const MAX_MGET_KEYS: usize = 1000;
/// Keys of all multi-gets of one batch at most (`--pipeline` x `--mget-keys`).
const MAX_MGET_KEYS_PER_BATCH: usize = 100_000;

fn run(f: &Flags) -> Result<ExitCode, String> {
    f.check_known(&[
        "proto",
        "host",
        "port",
        "conns",
        "pipeline",
        "op",
        "get-ratio",
        "mget-keys",
        "value-size",
        "keys",
        "requests",
        "duration",
        "warmup",
        "seed",
        "timeout",
        "label",
        "server-pid",
        "json",
        "help",
    ])?;
    if f.has("help") {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let get_ratio: f64 = f.num("get-ratio", Some(0.9))?;
    if !(0.0..=1.0).contains(&get_ratio) {
        return Err("--get-ratio must be between 0 and 1".into());
    }
    let mget_keys: usize = f.num("mget-keys", Some(100))?;
    if !(1..=MAX_MGET_KEYS).contains(&mget_keys) {
        return Err(format!("--mget-keys must be between 1 and {MAX_MGET_KEYS}"));
    }
    let (op, mix) = match f.str("op").unwrap_or("get") {
        "get" => ("get", OpMix::Get),
        "set" => ("set", OpMix::Set),
        "mixed" => ("mixed", OpMix::Mixed { get_per_million: (get_ratio * 1e6).round() as u32 }),
        "mget" => ("mget", OpMix::MGet { keys: mget_keys }),
        other => return Err(format!("--op: unknown operation {other:?}")),
    };
    let duration: Option<f64> = f.str("duration").map(|_| f.num("duration", None)).transpose()?;
    let mut requests: Option<u64> = f.str("requests").map(|_| f.num("requests", None)).transpose()?;
    if duration.is_none() && requests.is_none() {
        requests = Some(100_000);
    }
    let cfg = RunConfig {
        proto: proto_flag(f)?,
        addr: addr(f)?,
        conns: f.num("conns", Some(50))?,
        pipeline: f.num("pipeline", Some(1))?,
        op,
        mix,
        value_size: f.num("value-size", Some(32))?,
        keys: f.num("keys", Some(100_000))?,
        requests,
        duration: duration.map(Duration::from_secs_f64),
        warmup: f.has("warmup"),
        label: f.str("label").unwrap_or("").to_string(),
        json: f.has("json"),
    };
    if cfg.conns == 0 || cfg.pipeline == 0 || cfg.keys == 0 {
        return Err("--conns, --pipeline and --keys must be at least 1".into());
    }
    if let OpMix::MGet { keys } = cfg.mix {
        if cfg.proto == Proto::Resp {
            return Err("--op mget is for the memcached protocols (mc-text, mc-meta, mc-binary)".into());
        }
        // Each connection keeps its batch's keys: bound what one batch may name.
        if cfg.pipeline.saturating_mul(keys) > MAX_MGET_KEYS_PER_BATCH {
            return Err(format!("--pipeline x --mget-keys must be at most {MAX_MGET_KEYS_PER_BATCH}"));
        }
    }
    let wl = Workload {
        proto: cfg.proto,
        keys: cfg.keys,
        value_size: cfg.value_size,
        stall_timeout: Duration::from_secs_f64(f.num("timeout", Some(10.0))?),
        seed: f.num("seed", Some(1))?,
    };

    eprintln!(
        "loadgen: {} {} {} ({}): {} conns x pipeline {}, {}-byte values, {} keys",
        cfg.proto.name(),
        cfg.op,
        cfg.addr,
        if cfg.label.is_empty() { "-" } else { &cfg.label },
        cfg.conns,
        cfg.pipeline,
        cfg.value_size,
        cfg.keys
    );
    let mut driver =
        Driver::connect(cfg.addr, cfg.conns, &wl).map_err(|e| format!("connecting to {}: {e}", cfg.addr))?;

    if cfg.warmup {
        let t = Instant::now();
        let pre = driver.run(&Phase {
            mix: OpMix::Set,
            order: KeyOrder::Sequential,
            // Deep pipelines make the preload quick; it is not measured.
            pipeline: cfg.pipeline.max(64),
            max_requests: Some(u64::from(cfg.keys)),
            duration: None,
            misses_are_errors: false,
        })?;
        if pre.errors > 0 {
            return Err(format!(
                "preload: {} of {} SETs failed: {}",
                pre.errors,
                pre.completed,
                pre.error_samples.join("; ")
            ));
        }
        eprintln!("loadgen: preload: {} SETs in {:.2} s", pre.completed, t.elapsed().as_secs_f64());
    }

    let server_pid: Option<u32> = f.str("server-pid").map(|_| f.num("server-pid", None)).transpose()?;
    let server_before = server_pid.and_then(process_cpu_time);
    let cpu_before = cpu_time();
    let outcome = driver.run(&Phase {
        mix: cfg.mix,
        order: KeyOrder::Random,
        pipeline: cfg.pipeline,
        max_requests: cfg.requests,
        duration: cfg.duration,
        misses_are_errors: cfg.warmup,
    })?;
    // How busy each side's core was: a server well below 100 % while the client is near it
    // means the load generator, not the server, limited the rate.
    let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !outcome.elapsed.is_zero() => {
            Some(100.0 * b.saturating_sub(a).as_secs_f64() / outcome.elapsed.as_secs_f64())
        }
        _ => None,
    };
    let cpu = CpuUse {
        client: pct(cpu_before, cpu_time()),
        server: pct(server_before, server_pid.and_then(process_cpu_time)),
    };
    report(&cfg, &outcome, &cpu);
    Ok(if outcome.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// CPU time this (single-threaded) process has run, from the scheduler's own nanosecond
/// counter; None where /proc does not offer it.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time of every thread of process `pid`, the same way.
fn process_cpu_time(pid: u32) -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading; it simply stops counting.
        if let Ok(s) = std::fs::read_to_string(path) {
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(ns))
}

/// CPU use during the measured run, in percent of one core.
struct CpuUse {
    client: Option<f64>,
    server: Option<f64>,
}

fn report(cfg: &RunConfig, o: &Outcome, cpu: &CpuUse) {
    let secs = o.elapsed.as_secs_f64();
    let rate = if secs > 0.0 { o.completed as f64 / secs } else { 0.0 };
    let us = |ns: u64| ns as f64 / 1000.0;
    let h = &o.hist;
    let (p50, p90, p99, p999) =
        (us(h.percentile(0.50)), us(h.percentile(0.90)), us(h.percentile(0.99)), us(h.percentile(0.999)));
    let (max, mean) = (us(h.max()), us(h.mean()));

    // The human summary goes to stderr so that stdout carries only the machine line.
    eprintln!("loadgen: {} requests in {secs:.3} s = {rate:.0} ops/s", o.completed);
    eprintln!(
        "loadgen: latency (batch sent -> reply read) p50 {p50:.1} us  p90 {p90:.1} us  \
         p99 {p99:.1} us  p99.9 {p999:.1} us  max {max:.1} us  mean {mean:.1} us"
    );
    eprintln!("loadgen: gets {} (hits {}, misses {}), sets {}, errors {}", o.gets, o.hits, o.misses, o.sets, o.errors);
    if let Some(c) = cpu.client {
        eprint!("loadgen: cpu: client {c:.0} %");
        if let Some(s) = cpu.server {
            eprint!(", server {s:.0} %");
        }
        eprintln!(" of one core");
    }
    for e in &o.error_samples {
        eprintln!("loadgen: error: {e}");
    }

    let fields: Vec<(&str, String)> = vec![
        ("label", cfg.label.clone()),
        ("proto", cfg.proto.name().to_string()),
        ("op", cfg.op.to_string()),
        ("addr", cfg.addr.to_string()),
        ("conns", cfg.conns.to_string()),
        ("pipeline", cfg.pipeline.to_string()),
        ("mget_keys", if let OpMix::MGet { keys } = cfg.mix { keys.to_string() } else { "-".into() }),
        ("value_size", cfg.value_size.to_string()),
        ("keys", cfg.keys.to_string()),
        ("requests", o.completed.to_string()),
        ("seconds", format!("{secs:.3}")),
        ("ops_per_sec", format!("{rate:.0}")),
        ("p50_us", format!("{p50:.1}")),
        ("p90_us", format!("{p90:.1}")),
        ("p99_us", format!("{p99:.1}")),
        ("p999_us", format!("{p999:.1}")),
        ("max_us", format!("{max:.1}")),
        ("mean_us", format!("{mean:.1}")),
        ("gets", o.gets.to_string()),
        ("hits", o.hits.to_string()),
        ("misses", o.misses.to_string()),
        ("sets", o.sets.to_string()),
        ("errors", o.errors.to_string()),
        ("warmup", u8::from(cfg.warmup).to_string()),
        ("client_cpu_pct", cpu.client.map_or("-".into(), |c| format!("{c:.0}"))),
        ("server_cpu_pct", cpu.server.map_or("-".into(), |c| format!("{c:.0}"))),
    ];
    if cfg.json {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| {
                // Numbers stay numbers; the few text fields need no escaping beyond quotes.
                if v.parse::<f64>().is_ok() {
                    format!("\"{k}\":{v}")
                } else {
                    format!("\"{k}\":\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                }
            })
            .collect();
        println!("{{{}}}", body.join(","));
    } else {
        let body: Vec<String> = fields
            .iter()
            // Spaces would break `key=value` splitting; labels are names, so replace them.
            .map(|(k, v)| format!("{k}={}", if v.is_empty() { "-".into() } else { v.replace(' ', "_") }))
            .collect();
        println!("RESULT {}", body.join(" "));
    }
}

/// Waits until the server answers its protocol's no-op request, printing the answer (e.g.
/// `+PONG` or `VERSION 1.6.18`). A port that accepts but never answers is not ready.
fn ping(f: &Flags) -> Result<ExitCode, String> {
    f.check_known(&["proto", "host", "port", "wait"])?;
    let proto = proto_flag(f)?;
    let addr = addr(f)?;
    let wait = Duration::from_secs_f64(f.num("wait", Some(10.0))?);
    let start = Instant::now();
    let mut last_err = String::from("never tried");
    while start.elapsed() < wait {
        match ping_once(proto, addr) {
            Ok(answer) => {
                println!("{answer}");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => last_err = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{addr} ({}) did not answer within {:.1} s: {last_err}", proto.name(), wait.as_secs_f64()))
}

fn ping_once(proto: Proto, addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    s.write_all(proto.ping_request()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        if proto == Proto::McBinary {
            if let Some((r, _)) = proto::binary_response(&buf)? {
                return Ok(format!("VERSION {}", String::from_utf8_lossy(r.value)));
            }
        } else if buf.ends_with(b"\n") {
            return Ok(String::from_utf8_lossy(&buf).trim_end().to_string());
        }
        // An answer is a line or one version response: anything longer is not one.
        if buf.len() > 4096 {
            return Err("answer longer than 4096 bytes".into());
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed without an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Prints `COUNT` distinct loopback ports that were free a moment ago. All listeners stay open
/// until every port is chosen, so the ports differ; the race with the server's own bind is the
/// usual small one.
fn free_ports(args: &[String]) -> Result<ExitCode, String> {
    let count: usize = match args {
        [n] => n.parse().map_err(|_| format!("free-ports: bad count {n:?}"))?,
        _ => return Err("usage: loadgen free-ports COUNT".into()),
    };
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    for l in &listeners {
        println!("{}", l.local_addr().map_err(|e| e.to_string())?.port());
    }
    Ok(ExitCode::SUCCESS)
}
