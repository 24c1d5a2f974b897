//! Differential tests of the memcached binary protocol: every script under
//! `tests/diff/memcache_bin/` runs against memcached 1.6.18 and against cachette in lockstep,
//! and the response packets are compared field by field. Script syntax: `tests/diff/README.md`
//! ("Binary memcached scripts").
//!
//! Each request line is sent as one frame followed by a VERSION with a sentinel opaque (VERSION
//! rather than NOOP because it is served before SASL authentication); the packets up to its
//! answer are the line's reply. That frames quiet commands (nothing
//! or only errors before the NOOP), multi-packet STAT replies and closes (EOF before the NOOP)
//! without the harness knowing each command's shape. CAS uniques are masked as `<cas@L>` (L the
//! line where the value was first seen), as `tests/diff/intended.txt` allows for memcached.
//!
//! Scripts starting with `!sasl` run against servers with SASL on: memcached `-S` with a Cyrus
//! sasldb made by `saslpasswd2` (user `testuser`, password `testpass`), and cachette with
//! `memcache-sasl yes` and a pwdb file with the same user.
//!
//! The framer here is independent of the `cachette_memcache::binary` codec on purpose.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::differential::split_args;
use crate::util;

const SENTINEL: u32 = 0xC0FF_EE00;
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
pub const SASL_USER: &str = "testuser";
pub const SASL_PASSWORD: &str = "testpass";

#[test]
fn memcache_binary_scripts() {
    let Some(reference) = util::memcached() else { return };
    let candidate = util::cachette(&[]);
    let report = run_suite(false, ("memcached", reference.mc_port), ("cachette", candidate.mc_port));
    assert!(report.is_empty(), "{report}");
}

#[test]
fn memcache_binary_scripts_are_deterministic() {
    let (Some(a), Some(b)) = (util::memcached(), util::memcached()) else { return };
    let report = run_suite(false, ("memcached #1", a.mc_port), ("memcached #2", b.mc_port));
    assert!(report.is_empty(), "{report}");
}

#[test]
fn memcache_binary_sasl_scripts() {
    let Some(dir) = sasl_files() else { return };
    let Some(reference) = sasl_memcached(&dir) else { return };
    let candidate = sasl_cachette(&dir);
    let report = run_suite(true, ("memcached -S", reference.mc_port), ("cachette", candidate.mc_port));
    assert!(report.is_empty(), "{report}");
}

/// A directory holding memcached's SASL config and sasldb and cachette's pwdb for the test
/// user; None (a skip, or a failure under CI) when `saslpasswd2` is not installed.
pub fn sasl_files() -> Option<PathBuf> {
    let Some(saslpasswd2) = util::find_binary("saslpasswd2") else {
        assert!(!util::in_ci(), "saslpasswd2 (sasl2-bin) must be installed in CI");
        eprintln!("saslpasswd2 not installed: skipping the SASL scripts");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("cachette-sasl-{}-{}", std::process::id(), util::free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("sasldb2");
    let conf = format!("mech_list: plain\nsasldb_path: {}\n", db.display());
    std::fs::write(dir.join("memcached.conf"), conf).expect("sasl conf");
    std::fs::write(dir.join("pwdb"), format!("{SASL_USER}:{SASL_PASSWORD}\n")).expect("pwdb");
    let mut child = std::process::Command::new(saslpasswd2)
        .args(["-p", "-c", "-a", "memcached", "-f"])
        .arg(&db)
        .arg(SASL_USER)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run saslpasswd2");
    child.stdin.take().expect("stdin").write_all(SASL_PASSWORD.as_bytes()).expect("password");
    assert!(child.wait().expect("saslpasswd2").success(), "saslpasswd2 failed");
    Some(dir)
}

/// memcached with SASL on, checking against the sasldb in `dir`.
pub fn sasl_memcached(dir: &Path) -> Option<util::Proc> {
    let conf = dir.to_string_lossy().into_owned();
    util::memcached_with(&["-S"], &[("SASL_CONF_PATH", &conf)])
}

/// cachette with SASL on and the test user.
pub fn sasl_cachette(dir: &Path) -> util::Proc {
    let pwdb = dir.join("pwdb").to_string_lossy().into_owned();
    util::cachette(&["--memcache-sasl", "yes", "--memcache-sasl-pwdb", &pwdb])
}

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Step {
    /// Send bytes; read the reply unless `send_only`; `closed`: read until EOF instead.
    Request {
        bytes: Vec<u8>,
        cas_var: Option<String>,
        send_only: bool,
        closed: bool,
        capture: Option<String>,
    },
    Reconnect,
    Sleep(u64),
}

#[derive(Debug)]
struct Line {
    number: usize,
    text: String,
    step: Step,
}

fn opcode(name: &str) -> Option<u8> {
    let table: &[(&str, u8)] = &[
        ("get", 0x00),
        ("set", 0x01),
        ("add", 0x02),
        ("replace", 0x03),
        ("delete", 0x04),
        ("incr", 0x05),
        ("decr", 0x06),
        ("quit", 0x07),
        ("flush", 0x08),
        ("getq", 0x09),
        ("noop", 0x0a),
        ("version", 0x0b),
        ("getk", 0x0c),
        ("getkq", 0x0d),
        ("append", 0x0e),
        ("prepend", 0x0f),
        ("stat", 0x10),
        ("setq", 0x11),
        ("addq", 0x12),
        ("replaceq", 0x13),
        ("deleteq", 0x14),
        ("incrq", 0x15),
        ("decrq", 0x16),
        ("quitq", 0x17),
        ("flushq", 0x18),
        ("appendq", 0x19),
        ("prependq", 0x1a),
        ("touch", 0x1c),
        ("gat", 0x1d),
        ("gatq", 0x1e),
        ("sasl_list", 0x20),
        ("sasl_auth", 0x21),
        ("sasl_step", 0x22),
        ("gatk", 0x23),
        ("gatkq", 0x24),
    ];
    if let Some(hex) = name.strip_prefix("0x") {
        return u8::from_str_radix(hex, 16).ok();
    }
    table.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
}

fn num(v: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(v).map_err(|e| e.to_string())?;
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("bad number {s:?}: {e}"))
}

/// Builds the frame for one request line (see the README for the fields).
fn build(args: &[Vec<u8>]) -> Result<(Vec<u8>, Option<String>), String> {
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    if name == "raw" {
        return Ok((args[1..].concat(), None));
    }
    let op = opcode(&name).ok_or_else(|| format!("unknown opcode {name}"))?;
    let (mut key, mut value, mut extras) = (Vec::new(), Vec::new(), Vec::new());
    let (mut opaque, mut cas, mut cas_var) = (0u32, 0u64, None);
    let (mut keylen, mut extlen, mut bodylen, mut magic, mut dtype) = (None, None, None, 0x80u8, 0u8);
    let mut i = 1;
    while i < args.len() {
        let tok = &args[i];
        let eq = tok.iter().position(|&b| b == b'=').ok_or_else(|| format!("expected name=value: {tok:?}"))?;
        let field = String::from_utf8_lossy(&tok[..eq]).into_owned();
        let mut v = tok[eq + 1..].to_vec();
        if v.is_empty() && i + 1 < args.len() {
            i += 1;
            v = args[i].clone();
        }
        match field.as_str() {
            "key" => key = v,
            "value" => value = v,
            "x8" => extras.push(num(&v)? as u8),
            "x32" => extras.extend_from_slice(&(num(&v)? as u32).to_be_bytes()),
            "x64" => extras.extend_from_slice(&num(&v)?.to_be_bytes()),
            "opaque" => opaque = num(&v)? as u32,
            "cas" if v.starts_with(b"$") => cas_var = Some(String::from_utf8_lossy(&v[1..]).into_owned()),
            "cas" => cas = num(&v)?,
            "keylen" => keylen = Some(num(&v)? as u16),
            "extlen" => extlen = Some(num(&v)? as u8),
            "bodylen" => bodylen = Some(num(&v)? as u32),
            "magic" => magic = num(&v)? as u8,
            "dtype" => dtype = num(&v)? as u8,
            other => return Err(format!("unknown field {other}")),
        }
        i += 1;
    }
    let mut out = vec![magic, op];
    out.extend_from_slice(&keylen.unwrap_or(key.len() as u16).to_be_bytes());
    out.push(extlen.unwrap_or(extras.len() as u8));
    out.push(dtype);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&bodylen.unwrap_or((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(&extras);
    out.extend_from_slice(&key);
    out.extend_from_slice(&value);
    Ok((out, cas_var))
}

fn parse_script(source: &str) -> Result<(bool, Vec<Line>), String> {
    let mut lines = Vec::new();
    let mut sasl = false;
    for (i, raw) in source.lines().enumerate() {
        let number = i + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fail = |e: String| format!("line {number}: {e}");
        if text == "!sasl" {
            if !lines.is_empty() {
                return Err(fail("!sasl must come before the first request".into()));
            }
            sasl = true;
            continue;
        }
        let mut args = split_args(text).map_err(fail)?;
        let step = match args.first().map(|a| a.as_slice()) {
            Some(b"!reconnect") => Step::Reconnect,
            Some(b"!sleep") => {
                let ms = args.get(1).map(|a| num(a)).transpose().map_err(fail)?.unwrap_or(0);
                Step::Sleep(ms.min(1000))
            }
            _ => {
                let (mut send_only, mut closed, mut capture) = (false, false, None);
                while let Some(first) = args.first().filter(|a| a.starts_with(b"!")) {
                    match first.as_slice() {
                        b"!send" => send_only = true,
                        b"!closed" => closed = true,
                        c if c.starts_with(b"!capture:") => {
                            capture = Some(String::from_utf8_lossy(&c[9..]).into_owned())
                        }
                        other => return Err(fail(format!("unknown directive {}", String::from_utf8_lossy(other)))),
                    }
                    args.remove(0);
                }
                if args.is_empty() {
                    return Err(fail("no request".into()));
                }
                let (bytes, cas_var) = build(&args).map_err(fail)?;
                Step::Request { bytes, cas_var, send_only, closed, capture }
            }
        };
        lines.push(Line { number, text: text.to_owned(), step });
    }
    Ok((sasl, lines))
}

// ---------------------------------------------------------------------------------------------
// One server
// ---------------------------------------------------------------------------------------------

/// One response packet, decoded by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packet {
    magic: u8,
    opcode: u8,
    status: u16,
    data_type: u8,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The packet at the start of `buf` and its length, if all of it is there.
fn packet(buf: &[u8]) -> Option<(Packet, usize)> {
    if buf.len() < 24 {
        return None;
    }
    let be = |r: std::ops::Range<usize>| buf[r].iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    let (klen, elen, blen) = (be(2..4) as usize, buf[4] as usize, be(8..12) as usize);
    if buf.len() < 24 + blen || elen + klen > blen {
        return None;
    }
    let body = &buf[24..24 + blen];
    Some((
        Packet {
            magic: buf[0],
            opcode: buf[1],
            status: be(6..8) as u16,
            data_type: buf[5],
            opaque: be(12..16) as u32,
            cas: be(16..24),
            extras: body[..elen].to_vec(),
            key: body[elen..elen + klen].to_vec(),
            value: body[elen + klen..].to_vec(),
        },
        24 + blen,
    ))
}

fn escape(bytes: &[u8]) -> String {
    let shown = if bytes.len() > 80 { &bytes[..40] } else { bytes };
    let mut s: String = shown.escape_ascii().to_string();
    if bytes.len() > 80 {
        let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        s.push_str(&format!("...({} bytes, fnv {sum:016x})", bytes.len()));
    }
    s
}

struct Server<'a> {
    label: &'a str,
    port: u16,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    vars: HashMap<String, u64>,
    cas_labels: HashMap<u64, usize>,
}

impl<'a> Server<'a> {
    fn new(label: &'a str, port: u16) -> Self {
        Server { label, port, conn: None, buf: Vec::new(), vars: HashMap::new(), cas_labels: HashMap::new() }
    }

    fn connect(&mut self) -> Result<(), String> {
        let s = util::connect_when_ready(self.port, Duration::from_secs(5))
            .ok_or_else(|| format!("{}: cannot connect", self.label))?;
        s.set_read_timeout(Some(Duration::from_millis(50))).ok();
        self.conn = Some(s);
        self.buf.clear();
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Some(c) = self.conn.as_mut() {
            if c.write_all(bytes).is_err() {
                // The peer closed; the read that follows reports it.
            }
        }
    }

    /// Reads until `done(packets so far)` or EOF or the timeout; returns the packets and how
    /// the read ended ("" when `done`).
    fn read_until(&mut self, done: impl Fn(&[Packet]) -> bool) -> (Vec<Packet>, &'static str) {
        let mut packets = Vec::new();
        let start = Instant::now();
        loop {
            while let Some((p, n)) = packet(&self.buf) {
                self.buf.drain(..n);
                packets.push(p);
                if done(&packets) {
                    return (packets, "");
                }
            }
            if start.elapsed() > REPLY_TIMEOUT {
                return (packets, "<timeout>");
            }
            let Some(c) = self.conn.as_mut() else { return (packets, "<closed>") };
            let mut chunk = [0u8; 65536];
            match c.read(&mut chunk) {
                Ok(0) => {
                    self.conn = None;
                    return (packets, "<closed>");
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => {
                    self.conn = None;
                    return (packets, "<closed>");
                }
            }
        }
    }

    fn render(&mut self, packets: &[Packet], end: &str, line: usize) -> String {
        let mut out = String::new();
        for p in packets {
            let cas = match p.cas {
                0 => "0".to_owned(),
                c => format!("<cas@{}>", self.cas_labels.entry(c).or_insert(line)),
            };
            out.push_str(&format!(
                "[magic={:#04x} op={:#04x} status={:#06x} dtype={} opaque={:#x} cas={cas} extras={} key=\"{}\" value=\"{}\"] ",
                p.magic,
                p.opcode,
                p.status,
                p.data_type,
                p.opaque,
                p.extras.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                escape(&p.key),
                escape(&p.value)
            ));
        }
        out.push_str(end);
        out
    }

    fn run(&mut self, line: &Line) -> Option<String> {
        match &line.step {
            Step::Reconnect => {
                if let Err(e) = self.connect() {
                    return Some(e);
                }
                None
            }
            Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                None
            }
            Step::Request { bytes, cas_var, send_only, closed, capture } => {
                let mut bytes = bytes.clone();
                if let Some(var) = cas_var {
                    let cas = self.vars.get(var).copied().unwrap_or(0);
                    bytes[16..24].copy_from_slice(&cas.to_be_bytes());
                }
                if *send_only {
                    self.send(&bytes);
                    return None;
                }
                let (packets, end) = if *closed {
                    self.send(&bytes);
                    self.read_until(|_| false)
                } else {
                    // VERSION with the sentinel opaque: its answer ends this line's reply.
                    let mut noop = vec![0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                    noop.extend_from_slice(&SENTINEL.to_be_bytes());
                    noop.extend_from_slice(&[0; 8]);
                    bytes.extend_from_slice(&noop);
                    self.send(&bytes);
                    let (mut packets, end) = self.read_until(|p| p.last().is_some_and(|p| p.opaque == SENTINEL));
                    if end.is_empty() {
                        packets.pop();
                    }
                    (packets, end)
                };
                if let (Some(name), Some(p)) = (capture, packets.first()) {
                    self.vars.insert(name.clone(), p.cas);
                }
                Some(self.render(&packets, end, line.number))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Suite
// ---------------------------------------------------------------------------------------------

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff/memcache_bin");
    let only: Option<Vec<String>> =
        std::env::var("DIFF_ONLY").ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/diff/memcache_bin")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .filter(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            only.as_ref().map_or(true, |o| o.contains(&stem))
        })
        .collect();
    files.sort();
    files
}

/// Runs the scripts whose `!sasl` flag equals `sasl`; returns every mismatch, or "".
fn run_suite(sasl: bool, reference: (&str, u16), candidate: (&str, u16)) -> String {
    let trace = std::env::var("DIFF_TRACE").is_ok_and(|v| v == "1");
    let mut report = String::new();
    for path in scripts() {
        let name = format!("memcache_bin/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let source = std::fs::read_to_string(&path).expect("read script");
        let (is_sasl, lines) = match parse_script(&source) {
            Ok(x) => x,
            Err(e) => {
                report.push_str(&format!("{name}: {e}\n"));
                continue;
            }
        };
        if is_sasl != sasl {
            continue;
        }
        let mut a = Server::new(reference.0, reference.1);
        let mut b = Server::new(candidate.0, candidate.1);
        // Every script starts from an empty cache, on fresh connections.
        for s in [&mut a, &mut b] {
            if let Err(e) = s.connect() {
                report.push_str(&format!("{name}: {e}\n"));
                return report;
            }
            if !sasl {
                let flush = [0x80, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                s.send(&flush);
                s.read_until(|p| !p.is_empty());
            }
        }
        for line in &lines {
            let (ra, rb) = (a.run(line), b.run(line));
            if trace {
                eprintln!("{name}:{}: {}\n    {}", line.number, line.text, ra.as_deref().unwrap_or("-"));
            }
            if ra != rb {
                report.push_str(&format!(
                    "{name}:{}: {}\n    {}: {}\n    {}: {}\n",
                    line.number,
                    line.text,
                    reference.0,
                    ra.as_deref().unwrap_or("-"),
                    candidate.0,
                    rb.as_deref().unwrap_or("-")
                ));
            }
        }
    }
    report
}

#[test]
fn script_lines_build_frames() {
    let (sasl, lines) =
        parse_script("!sasl\nset key=k x32=5 x32=0 value= \"ab\" opaque=7\n!closed get key=k bodylen=1\n")
            .expect("parses");
    assert!(sasl);
    let Step::Request { bytes, closed: false, .. } = &lines[0].step else { panic!("{lines:?}") };
    assert_eq!(&bytes[..12], &[0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 11]);
    assert_eq!(&bytes[24..], b"\0\0\0\x05\0\0\0\0kab");
    let Step::Request { bytes, closed: true, .. } = &lines[1].step else { panic!("{lines:?}") };
    assert_eq!(bytes[11], 1);
}
