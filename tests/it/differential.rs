//! Differential tests: every script under `tests/diff/` runs against a reference server
//! (redis-server 7 or memcached 1.6) and against cachette, in lockstep on one connection each,
//! and the replies are compared byte for byte. Scripts hold commands only: the reference's
//! replies are the expectation, so nothing here has to be kept in sync by hand.
//!
//! - Script syntax and directives: `tests/diff/README.md`.
//! - Intended differences, the only tolerated ones: `tests/diff/intended.txt`.
//! - `DIFF_ONLY=strings,text` runs only the scripts with those file stems.
//! - `DIFF_TRACE=1` prints every line with the reference's reply (for writing scripts).
//! - `!pending ISSUE reason` at the top of a script marks it as testing a feature of a later
//!   issue: the comparison with cachette skips it (and lists it), the self-check still runs it.
//!   `DIFF_PENDING=1` compares pending scripts with cachette too.
//!
//! The `*_are_deterministic` tests run the same scripts against two reference instances. A
//! line whose replies differ there is nondeterministic (a time, an id, an order) and must be
//! marked (`!type`, `!shape`, `!sorted`, `!approx`, `!scan`) before a comparison with cachette
//! means anything; those tests pass without cachette.
//!
//! The RESP framer and the memcached reply walker here are deliberately independent of the
//! `protocols/*` codec crates: a bug shared by the server and its test oracle would be invisible.

use crate::util;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one reply may take. References answer most lines in microseconds, but a heavy one
/// (PFSELFTEST) on a loaded machine takes seconds; a candidate that has not implemented a
/// command may never answer, and each such line costs this long.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A candidate that stops answering costs `REPLY_TIMEOUT` per line; after this many timeouts
/// the rest of the script is skipped so that a hung server fails fast.
const MAX_CANDIDATE_TIMEOUTS: usize = 3;

/// Tolerance of a bare `!approx`: milliseconds of drift between the two servers' clocks
/// (both sides run the same line within a few ms of each other).
const DEFAULT_APPROX: u64 = 1000;

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff")
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn redis_scripts() {
    let Some(reference) = util::redis_server() else {
        return;
    };
    let candidate = util::cachette(&[]);
    assert_suite(Proto::Redis, Run::Candidate, ("redis-server", reference.port), ("cachette", candidate.port));
}

#[test]
fn memcache_scripts() {
    let Some(reference) = util::memcached() else {
        return;
    };
    // memcached's defaults for what `stats` reports, as its flags: 4 threads, 1024 connections
    // and backlog, 64 MB with LRU eviction.
    let candidate =
        util::cachette(&["-t", "4", "-c", "1024", "-b", "1024", "-m", "64", "--maxmemory-policy", "allkeys-lru"]);
    assert_suite(Proto::Memcache, Run::Candidate, ("memcached", reference.mc_port), ("cachette", candidate.mc_port));
}

#[test]
fn redis_scripts_are_deterministic() {
    let (Some(first), Some(second)) = (util::redis_server(), util::redis_server()) else {
        return;
    };
    assert_suite(Proto::Redis, Run::SelfCheck, ("redis-server #1", first.port), ("redis-server #2", second.port));
}

#[test]
fn memcache_scripts_are_deterministic() {
    let (Some(first), Some(second)) = (util::memcached(), util::memcached()) else {
        return;
    };
    assert_suite(Proto::Memcache, Run::SelfCheck, ("memcached #1", first.mc_port), ("memcached #2", second.mc_port));
}

/// Which pair of servers a suite compares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    /// A reference against cachette: `!pending` scripts are skipped (unless `DIFF_PENDING=1`).
    Candidate,
    /// Two references: every script runs, `!pending` ones included.
    SelfCheck,
}

/// Runs every selected script of `proto` and panics with one report listing all problems.
fn assert_suite(proto: Proto, run: Run, reference: (&str, u16), candidate: (&str, u16)) {
    let report = run_suite(proto, run, reference, candidate);
    if !report.is_empty() {
        panic!("{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Redis,
    Memcache,
}

impl Proto {
    fn dir(self) -> &'static str {
        match self {
            Proto::Redis => "redis",
            Proto::Memcache => "memcache",
        }
    }
}

/// A parsed script file.
#[derive(Debug)]
struct Script {
    /// `!pending ISSUE[,ISSUE...] reason`: the script tests features of later issues.
    pending: Option<Pending>,
    steps: Vec<Step>,
}

/// Why a script is not compared with cachette yet.
#[derive(Debug, PartialEq)]
struct Pending {
    /// The project issues that the script waits for.
    issues: Vec<u32>,
    reason: String,
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issues: Vec<String> = self.issues.iter().map(|i| format!("#{i}")).collect();
        write!(f, "issue {}: {}", issues.join(", "), self.reason)
    }
}

/// Parses the argument of `!pending`: `ISSUE[,ISSUE...] reason`.
fn parse_pending(rest: &str) -> Result<Pending, String> {
    const USAGE: &str = "!pending takes issue numbers and a reason: !pending 3 collections";
    let (numbers, reason) = rest.split_once(char::is_whitespace).ok_or(USAGE)?;
    let issues: Vec<u32> = numbers
        .split(',')
        .map(|n| n.trim_start_matches('#').parse().ok().filter(|n| *n > 0))
        .collect::<Option<_>>()
        .ok_or(USAGE)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(USAGE.into());
    }
    Ok(Pending { issues, reason: reason.to_string() })
}

/// One executable line of a script.
#[derive(Debug)]
struct Step {
    /// 1-based line number in the script file.
    line: usize,
    /// The line as written, for reports.
    text: String,
    op: Op,
    check: Check,
}

#[derive(Debug, PartialEq)]
enum Op {
    /// Redis: arguments sent as a RESP multibulk; one reply is read.
    Command(Vec<Vec<u8>>),
    /// Memcache: a command line (plus its data block), CRLF-terminated, and how many `mn`
    /// commands it contains (their `MN` replies come before the sentinel's).
    Line { bytes: Vec<u8>, mn: usize },
    /// `!send`: bytes written as they are; nothing is read.
    Send(Vec<u8>),
    /// `!raw`: bytes written as they are; one reply is read.
    Raw(Vec<u8>),
    /// `!read`: one more reply is read.
    Read,
    /// `!closed`: the server must close the connection (trailing bytes are compared too).
    Closed,
    /// `!reconnect`: a fresh connection (RESP2, db 0) replaces the current one.
    Reconnect,
    /// `!sleep MS`: waits (once, not per server) so that short TTLs really expire.
    Sleep(u64),
}

/// How a reply is compared: byte for byte unless a modifier weakens it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Check {
    view: View,
    /// `!sorted` / `!sorted:N`: aggregates compared as sorted groups of N elements.
    sorted: Option<usize>,
    /// `!approx` / `!approx:N`: numbers may differ by up to N.
    approx: Option<u64>,
    /// `!scan`: a SCAN-family command iterated to cursor 0; the union of elements is compared.
    scan: bool,
    /// `!capture:NAME`: the reply's value (Redis) or CAS unique (memcache) becomes `$NAME`.
    capture: Option<String>,
    /// `!mask:KEY` (repeatable): in maps, the value after KEY is compared by type only.
    masks: Vec<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum View {
    #[default]
    Bytes,
    /// `!shape`: types and aggregate sizes, recursively; no scalar contents.
    Shape,
    /// `!type`: the reply's type only (memcache: the first word of the reply).
    Type,
    /// `!prefix:N`: the type and the first N bytes of the payload (memcache: of the reply).
    Prefix(usize),
}

fn parse_script(proto: Proto, source: &str) -> Result<Script, (usize, String)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut steps = Vec::new();
    let mut pending = None;
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let text = lines[i].trim_end();
        i += 1;
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |m: String| (line_no, m);
        if let Some(rest) = trimmed.strip_prefix("!pending").filter(|r| r.is_empty() || r.starts_with(' ')) {
            if !steps.is_empty() || pending.is_some() {
                return Err(err("!pending is a file-level directive: once, before the first command".into()));
            }
            pending = Some(parse_pending(rest.trim()).map_err(err)?);
            continue;
        }
        let mut check = Check::default();
        let mut rest = trimmed;
        let mut op = None;
        while let Some(after_bang) = rest.strip_prefix('!') {
            let (word, tail) = after_bang.split_once(char::is_whitespace).unwrap_or((after_bang, ""));
            rest = tail.trim_start();
            let (name, param) = word.split_once(':').map_or((word, None), |(n, p)| (n, Some(p)));
            let number = |p: Option<&str>, default: u64| -> Result<u64, (usize, String)> {
                p.map_or(Ok(default), |p| p.parse().map_err(|_| err(format!("bad number in !{word}"))))
            };
            match name {
                "type" => check.view = View::Type,
                "prefix" => check.view = View::Prefix(number(param, 0)? as usize),
                "shape" => check.view = View::Shape,
                "sorted" => check.sorted = Some(number(param, 1)?.max(1) as usize),
                "approx" => check.approx = Some(number(param, DEFAULT_APPROX)?),
                "scan" => check.scan = true,
                "mask" => match param {
                    Some(k) if !k.is_empty() => check.masks.push(k.as_bytes().to_vec()),
                    _ => return Err(err("!mask needs a field name: !mask:KEY".into())),
                },
                "capture" => match param {
                    Some(v) if !v.is_empty() && v.bytes().all(is_var_byte) => check.capture = Some(v.to_string()),
                    _ => return Err(err("!capture needs a name: !capture:NAME".into())),
                },
                "send" | "raw" => {
                    let bytes = split_args(rest).map_err(err)?.concat();
                    op = Some(if name == "send" { Op::Send(bytes) } else { Op::Raw(bytes) });
                    rest = "";
                }
                "read" => op = Some(Op::Read),
                "closed" => op = Some(Op::Closed),
                "reconnect" => op = Some(Op::Reconnect),
                "sleep" => {
                    let ms = rest.parse().ok().filter(|ms| *ms <= MAX_SLEEP_MS);
                    op = Some(Op::Sleep(ms.ok_or_else(|| err(format!("!sleep takes 0..={MAX_SLEEP_MS} ms")))?));
                    rest = "";
                }
                _ => return Err(err(format!("unknown directive !{name}"))),
            }
            if op.is_some() {
                break;
            }
        }
        let op = match op {
            Some(op) => {
                if !rest.is_empty() {
                    return Err(err(format!("unexpected text after the directive: {rest}")));
                }
                op
            }
            None if rest.is_empty() => return Err(err("modifiers without a command".into())),
            None => match proto {
                Proto::Redis => {
                    let args = split_args(rest).map_err(err)?;
                    if args.is_empty() {
                        return Err(err("empty command".into()));
                    }
                    Op::Command(args)
                }
                Proto::Memcache => {
                    let mut bytes = rest.as_bytes().to_vec();
                    bytes.extend_from_slice(b"\r\n");
                    let verb = rest.split_whitespace().next().unwrap_or("");
                    if MC_STORAGE.contains(&verb) {
                        // The data block is the next line verbatim, or `!data <bytes>`.
                        let Some(data) = lines.get(i) else {
                            return Err(err(format!("{verb} needs a data line after it")));
                        };
                        i += 1;
                        match data.strip_prefix("!data ") {
                            Some(expr) => bytes.extend(split_args(expr).map_err(|m| (i, m))?.concat()),
                            None => bytes.extend_from_slice(data.as_bytes()),
                        }
                        bytes.extend_from_slice(b"\r\n");
                    }
                    Op::Line { bytes, mn: usize::from(verb == "mn") }
                }
            },
        };
        if check.scan && !matches!(op, Op::Command(_)) {
            return Err(err("!scan applies to Redis commands only".into()));
        }
        if proto == Proto::Memcache && check.sorted.is_some() {
            return Err(err("!sorted applies to Redis replies only".into()));
        }
        steps.push(Step { line: line_no, text: text.to_string(), op, check });
    }
    Ok(Script { pending, steps })
}

/// Scripts must stay fast: expiry is tested with TTLs of a few hundred milliseconds.
const MAX_SLEEP_MS: u64 = 1000;

/// memcached commands whose data block follows on the next line.
const MC_STORAGE: [&str; 7] = ["set", "add", "replace", "append", "prepend", "cas", "ms"];

fn is_var_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits a line into arguments the way redis-cli does (its `sdssplitargs`): whitespace
/// separates; "double quotes" take `\n \r \t \b \a \xHH` and `\<any>` escapes; 'single quotes'
/// take only `\'`; a closing quote must be followed by whitespace or the end. One extension: a
/// quoted argument directly followed by `*N` is repeated N times (`"x"*2000000`), so large
/// values need not be spelled out.
pub(crate) fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        let mut arg = Vec::new();
        while i < b.len() && !b[i].is_ascii_whitespace() {
            let quote = b[i];
            if quote != b'"' && quote != b'\'' {
                arg.push(quote);
                i += 1;
                continue;
            }
            i += 1;
            loop {
                let Some(&c) = b.get(i) else {
                    return Err(format!("unbalanced quotes in: {line}"));
                };
                i += 1;
                if c == quote {
                    break;
                }
                if c != b'\\' || i == b.len() {
                    arg.push(c);
                    continue;
                }
                let e = b[i];
                i += 1;
                if quote == b'\'' {
                    if e != b'\'' {
                        arg.push(b'\\');
                    }
                    arg.push(e);
                    continue;
                }
                match e {
                    b'n' => arg.push(b'\n'),
                    b'r' => arg.push(b'\r'),
                    b't' => arg.push(b'\t'),
                    b'b' => arg.push(8),
                    b'a' => arg.push(7),
                    b'x' if i + 2 <= b.len() && b[i..i + 2].iter().all(u8::is_ascii_hexdigit) => {
                        let hex = std::str::from_utf8(&b[i..i + 2]).map_err(|e| e.to_string())?;
                        arg.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                        i += 2;
                    }
                    other => arg.push(other),
                }
            }
            if b.get(i) == Some(&b'*') {
                let digits: Vec<u8> = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).copied().collect();
                let n: usize = std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| format!("bad repeat count after a quoted argument in: {line}"))?;
                arg = arg.repeat(n);
                i += 1 + digits.len();
            }
            if i < b.len() && !b[i].is_ascii_whitespace() {
                return Err(format!("closing quote must be followed by a space in: {line}"));
            }
        }
        out.push(arg);
    }
}

/// Replaces `$NAME` by the captured value where NAME was captured earlier in this script.
fn substitute(bytes: &[u8], vars: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    if vars.is_empty() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let name_len = bytes[i + 1..].iter().take_while(|b| is_var_byte(**b)).count();
            let name = String::from_utf8_lossy(&bytes[i + 1..i + 1 + name_len]);
            if let Some(value) = vars.get(name.as_ref()) {
                out.extend_from_slice(value);
                i += 1 + name_len;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Counts `mn` commands at line starts: each produces an `MN` before the sentinel's.
fn count_mn(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l == b"mn" || l.starts_with(b"mn ")
        })
        .count()
}

// ---------------------------------------------------------------------------------------------
// Intended differences
// ---------------------------------------------------------------------------------------------

/// One entry of `tests/diff/intended.txt`.
#[derive(Debug)]
struct Intended {
    name: String,
    proto: Proto,
    /// Command names the rule applies to (Redis: case-insensitive); empty means every line.
    commands: Vec<String>,
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// memcache: CAS uniques in `VALUE` lines, meta `c` flags and `me` output are replaced by
    /// the script line where that value first appeared (`<cas@12>`; `<cas@12#2>` for the
    /// second new one in that reply). So "the same CAS as before" and "a new CAS" are still
    /// compared, the numbers are not; and unlike a running count, one missing CAS does not
    /// shift every later label.
    MaskCas,
    /// Redis: in a map (or a RESP2 flat key/value array), the value after this key is masked.
    MaskField(Vec<u8>),
    /// Any: only the reply's type is compared.
    TypeOnly,
    /// memcache: of the `STAT` lines, only those whose name is listed are compared; the others
    /// are dropped on both sides. `*:x` lists every name ending in `:x` (per-class lines such
    /// as `items:1:number`).
    KeepStats(Vec<Vec<u8>>),
    /// memcache: the values of the listed `STAT` lines become `<masked>`.
    MaskStats(Vec<Vec<u8>>),
}

fn load_intended() -> Result<Vec<Intended>, String> {
    let path = diff_dir().join("intended.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.splitn(5, '|').map(str::trim).collect();
        let bad = |m: &str| format!("intended.txt:{}: {m}: {line}", n + 1);
        if f.len() != 5 || f[4].is_empty() {
            return Err(bad("expected `name | protocol | commands | rule | reason`"));
        }
        let proto = match f[1] {
            "redis" => Proto::Redis,
            "memcache" => Proto::Memcache,
            _ => return Err(bad("protocol must be redis or memcache")),
        };
        let rule = match f[3].split_once(':') {
            None if f[3] == "mask-cas" && proto == Proto::Memcache => Rule::MaskCas,
            None if f[3] == "type-only" => Rule::TypeOnly,
            Some(("mask-field", key)) if proto == Proto::Redis => Rule::MaskField(key.as_bytes().to_vec()),
            Some(("keep-stats", names)) if proto == Proto::Memcache => Rule::KeepStats(stat_names(names)),
            Some(("mask-stats", names)) if proto == Proto::Memcache => Rule::MaskStats(stat_names(names)),
            _ => return Err(bad("unknown rule (mask-cas, mask-field:KEY, type-only, keep-stats:A,B, mask-stats:A,B)")),
        };
        let commands = if f[2] == "*" { vec![] } else { f[2].split(',').map(|c| c.trim().to_string()).collect() };
        out.push(Intended { name: f[0].to_string(), proto, commands, rule });
    }
    Ok(out)
}

fn stat_names(list: &str) -> Vec<Vec<u8>> {
    list.split(',').map(|n| n.trim().as_bytes().to_vec()).filter(|n| !n.is_empty()).collect()
}

/// Applies `keep-stats` and `mask-stats` rules to a memcache reply (see [`Rule`]).
fn filter_stats(reply: &[u8], rules: &[&Intended]) -> Vec<u8> {
    let keep: Vec<&Vec<u8>> =
        rules.iter().filter_map(|r| if let Rule::KeepStats(n) = &r.rule { Some(n) } else { None }).flatten().collect();
    let mask: Vec<&Vec<u8>> =
        rules.iter().filter_map(|r| if let Rule::MaskStats(n) = &r.rule { Some(n) } else { None }).flatten().collect();
    if keep.is_empty() && mask.is_empty() {
        return reply.to_vec();
    }
    let mut out = Vec::with_capacity(reply.len());
    for line in reply.split_inclusive(|&b| b == b'\n') {
        let words: Vec<&[u8]> = line.trim_ascii_end().splitn(3, |&b| b == b' ').collect();
        let [b"STAT", name, _value] = words.as_slice() else {
            out.extend_from_slice(line);
            continue;
        };
        let listed = |list: &[&Vec<u8>]| {
            list.iter().any(|n| match n.strip_prefix(b"*") {
                Some(suffix) => name.ends_with(suffix) && name.len() > suffix.len(),
                None => n.as_slice() == *name,
            })
        };
        if !keep.is_empty() && !listed(&keep) {
            continue;
        }
        if listed(&mask) {
            out.extend_from_slice(b"STAT ");
            out.extend_from_slice(name);
            out.extend_from_slice(b" <masked>\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

impl Intended {
    fn applies(&self, proto: Proto, verb: Option<&[u8]>) -> bool {
        self.proto == proto
            && (self.commands.is_empty()
                || verb.is_some_and(|v| {
                    self.commands.iter().any(|c| match proto {
                        Proto::Redis => c.as_bytes().eq_ignore_ascii_case(v),
                        Proto::Memcache => c.as_bytes() == v,
                    })
                }))
    }
}

// ---------------------------------------------------------------------------------------------
// RESP replies
// ---------------------------------------------------------------------------------------------

/// Where the first complete RESP2/RESP3 reply in `buf` ends: `Ok(Some(len))`, `Ok(None)` when
/// more bytes are needed, `Err` for bytes that cannot be RESP. Iterative (a stack of element
/// counts still owed by open aggregates), so no nesting depth can overflow the test's stack.
/// Handles every RESP3 type: `_ # , ( ! = % ~ >`, attributes `|` (which precede the reply they
/// annotate), and streamed strings (`$?` + `;n` chunks) and aggregates (`*?` ... `.`).
fn frame_end(buf: &[u8]) -> Result<Option<usize>, String> {
    enum Open {
        Count(usize),
        Stream,
        StreamedString,
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(buf, pos) else {
            return Ok(None);
        };
        let kind = buf[pos];
        let line = &buf[pos + 1..eol];
        pos = eol + 2;
        // Whether this header completed one element of the enclosing aggregate.
        let mut done = true;
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'!' | b'=' | b';' => {
                if kind == b';' && !matches!(stack.last(), Some(Open::StreamedString)) {
                    return Err("';' chunk outside a streamed string".into());
                }
                if line == b"?" && kind != b';' {
                    stack.push(Open::StreamedString);
                    done = false;
                } else {
                    let n = parse_len(line)?;
                    // `;0` ends a streamed string and, unlike `$0`, carries no empty payload.
                    if n > 0 || (n == 0 && kind != b';') {
                        let end = pos + n as usize;
                        if buf.len() < end + 2 {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(format!("bulk of {n} bytes not followed by CRLF"));
                        }
                        pos = end + 2;
                    }
                    if kind == b';' {
                        // Chunks are not elements; only the empty chunk ends the string.
                        done = n == 0;
                        if done {
                            stack.pop();
                        }
                    }
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if line == b"?" {
                    stack.push(Open::Stream);
                    done = false;
                } else {
                    let n = parse_len(line)?;
                    // A map holds n pairs; an attribute is n pairs followed by the reply it
                    // annotates, and counts as that one reply.
                    let owed = match kind {
                        b'%' => 2 * n,
                        b'|' => 2 * n + 1,
                        _ => n,
                    };
                    if owed > 0 {
                        stack.push(Open::Count(owed as usize));
                        done = false;
                    }
                }
            }
            b'.' => {
                if !matches!(stack.pop(), Some(Open::Stream)) {
                    return Err("'.' outside a streamed aggregate".into());
                }
            }
            other => return Err(format!("unknown RESP type byte {:?}", other as char)),
        }
        if !done {
            continue;
        }
        // A finished element may finish its parent, and so on up.
        loop {
            match stack.last_mut() {
                None => return Ok(Some(pos)),
                Some(Open::Count(n)) => {
                    *n -= 1;
                    if *n > 0 {
                        break;
                    }
                    stack.pop();
                }
                Some(Open::Stream) | Some(Open::StreamedString) => break,
            }
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

fn parse_len(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= -1)
        .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(line)))
}

/// A parsed reply, for the comparisons that look inside one (`!sorted`, `!shape`, masking,
/// `!scan`, `!capture`). Only complete frames without streamed parts are parsed; anything else
/// is compared as bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Frame {
    /// `+ - : _ , # (` and the RESP2 nulls `$-1` / `*-1`: type byte and line content.
    Line(u8, Vec<u8>),
    /// `$ ! =`: type byte and payload.
    Blob(u8, Vec<u8>),
    /// `* ~ > % |`: type byte and elements (maps and attributes flattened to key, value, ...).
    Agg(u8, Vec<Frame>),
    /// A value hidden by an intended-difference rule; only its type byte remains.
    Masked(u8),
}

impl Frame {
    fn parse(buf: &[u8]) -> Option<Frame> {
        let (frame, used) = Self::parse_at(buf, 0)?;
        (used == buf.len()).then_some(frame)
    }

    fn parse_at(buf: &[u8], pos: usize) -> Option<(Frame, usize)> {
        let eol = find_crlf(buf, pos)?;
        let kind = buf[pos];
        let line = &buf[pos + 1..eol];
        let next = eol + 2;
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some((Frame::Line(kind, line.to_vec()), next)),
            b'$' | b'!' | b'=' => match parse_len(line).ok()? {
                -1 => Some((Frame::Line(kind, line.to_vec()), next)),
                n => {
                    let data = buf.get(next..next + n as usize)?;
                    Some((Frame::Blob(kind, data.to_vec()), next + n as usize + 2))
                }
            },
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_len(line).ok()?;
                if n == -1 {
                    return Some((Frame::Line(kind, line.to_vec()), next));
                }
                let count = match kind {
                    b'%' => 2 * n,
                    b'|' => 2 * n + 1,
                    _ => n,
                };
                let mut items = Vec::with_capacity(count as usize);
                let mut at = next;
                for _ in 0..count {
                    let (item, end) = Self::parse_at(buf, at)?;
                    items.push(item);
                    at = end;
                }
                Some((Frame::Agg(kind, items), at))
            }
            _ => None,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Line(k, line) => {
                out.push(*k);
                out.extend_from_slice(line);
            }
            Frame::Blob(k, data) => {
                out.push(*k);
                out.extend_from_slice(format!("{}\r\n", data.len()).as_bytes());
                out.extend_from_slice(data);
            }
            Frame::Agg(k, items) => {
                let n = match k {
                    b'%' => items.len() / 2,
                    b'|' => items.len() / 2,
                    _ => items.len(),
                };
                out.push(*k);
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for item in items {
                    item.encode(out);
                }
                return;
            }
            Frame::Masked(k) => out.extend_from_slice(format!("<masked {}>", *k as char).as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Types and sizes, recursively: `*2[$,$]`, `:`, `nil`; no contents.
    fn shape(&self, out: &mut String) {
        match self {
            Frame::Line(k, line) if line == b"-1" && matches!(k, b'$' | b'*') => out.push_str("nil"),
            Frame::Line(k, _) | Frame::Blob(k, _) | Frame::Masked(k) => out.push(*k as char),
            Frame::Agg(k, items) => {
                out.push(*k as char);
                out.push_str(&items.len().to_string());
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.shape(out);
                }
                out.push(']');
            }
        }
    }

    /// Sorts aggregates of scalars in groups of `group` elements (maps always by pair), after
    /// sorting their children: the order Redis happens to use is a hash-table accident.
    fn sort(&mut self, group: usize) {
        if let Frame::Agg(kind, items) = self {
            for item in items.iter_mut() {
                item.sort(group);
            }
            let group = if *kind == b'%' { 2 } else { group };
            let flat = items.iter().all(|i| !matches!(i, Frame::Agg(..)));
            if (flat || *kind == b'%') && *kind != b'|' && items.len() % group == 0 {
                let mut chunks: Vec<Vec<Frame>> = items.chunks(group).map(<[Frame]>::to_vec).collect();
                chunks.sort();
                *items = chunks.concat();
            }
        }
    }

    /// Masks the value after `key` in maps and in flat key/value arrays (RESP2 `HELLO`).
    fn mask_field(&mut self, key: &[u8]) {
        if let Frame::Agg(kind, items) = self {
            if matches!(kind, b'%' | b'*') && items.len() % 2 == 0 {
                for pair in items.chunks_mut(2) {
                    if let [Frame::Blob(_, k) | Frame::Line(b'+', k), value] = pair {
                        if k == key {
                            let t = match value {
                                Frame::Line(t, _) | Frame::Blob(t, _) | Frame::Agg(t, _) | Frame::Masked(t) => *t,
                            };
                            *value = Frame::Masked(t);
                        }
                    }
                }
            }
            for item in items.iter_mut() {
                item.mask_field(key);
            }
        }
    }

    /// The value of a scalar reply, for `!capture`.
    fn scalar(&self) -> Option<Vec<u8>> {
        match self {
            Frame::Line(k, v) if *k != b'-' => Some(v.clone()),
            Frame::Blob(_, v) => Some(v.clone()),
            _ => None,
        }
    }
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// memcached replies
// ---------------------------------------------------------------------------------------------

/// One reply line of memcached, with the data block that follows `VALUE` and `VA` headers.
struct McItem<'a> {
    line: &'a [u8],
    data: Option<&'a [u8]>,
}

/// Splits complete reply lines off `buf`; returns the items and the bytes they cover. A line
/// is only complete with its data block, so a half-received value is never mistaken for lines.
fn mc_items(buf: &[u8]) -> (Vec<McItem<'_>>, usize) {
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(eol) = find_crlf(buf, pos) {
        let line = &buf[pos..eol];
        let mut end = eol + 2;
        let mut data = None;
        if let Some(len) = mc_data_len(line) {
            if buf.len() < end + len + 2 {
                break;
            }
            data = Some(&buf[end..end + len]);
            end += len + 2;
        }
        items.push(McItem { line, data });
        pos = end;
    }
    (items, pos)
}

/// The size of the data block announced by a `VALUE key flags bytes [cas]` or `VA bytes ...`
/// line.
fn mc_data_len(line: &[u8]) -> Option<usize> {
    let mut words = line.split(|b| *b == b' ');
    let field = match words.next()? {
        b"VALUE" => words.nth(2)?,
        b"VA" => words.next()?,
        _ => return None,
    };
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Where the reply ends that is terminated by the `want`-th `MN` line, if it has arrived.
fn mc_reply_end(buf: &[u8], want: usize) -> Option<usize> {
    let (items, _) = mc_items(buf);
    let mut seen = 0;
    let mut pos = 0;
    for item in items {
        pos += item.line.len() + 2 + item.data.map_or(0, |d| d.len() + 2);
        if item.line == b"MN" {
            seen += 1;
            if seen == want {
                return Some(pos);
            }
        }
    }
    None
}

/// Replaces every CAS unique in a reply (of script line `line`) by a label naming the line
/// where that value was first seen on this side (see `Rule::MaskCas`).
fn mask_cas(reply: &[u8], line: usize, labels: &mut HashMap<Vec<u8>, String>) -> Vec<u8> {
    let (items, used) = mc_items(reply);
    let mut out = Vec::with_capacity(reply.len());
    let mut new_here = 0;
    let mut label = |cas: &[u8]| -> Vec<u8> {
        let label = labels.entry(cas.to_vec()).or_insert_with(|| {
            new_here += 1;
            match new_here {
                1 => format!("<cas@{line}>"),
                n => format!("<cas@{line}#{n}>"),
            }
        });
        label.clone().into_bytes()
    };
    for item in items {
        let words: Vec<&[u8]> = item.line.split(|b| *b == b' ').collect();
        let is_meta =
            item.line.len() >= 2 && [&b"VA"[..], b"HD", b"EN", b"NF", b"NS", b"EX"].contains(&&item.line[..2]);
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
            if words[0] == b"VALUE" && i == 4 && digits(w) {
                out.extend(label(w));
            } else if is_meta && i > 0 && w.first() == Some(&b'c') && digits(&w[1..]) {
                out.push(b'c');
                out.extend(label(&w[1..]));
            } else if words[0] == b"ME" && w.starts_with(b"cas=") && digits(&w[4..]) {
                out.extend_from_slice(b"cas=");
                out.extend(label(&w[4..]));
            } else {
                out.extend_from_slice(w);
            }
        }
        out.extend_from_slice(b"\r\n");
        if let Some(d) = item.data {
            out.extend_from_slice(d);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&reply[used..]);
    out
}

/// The first CAS unique in a memcached reply, for `!capture`.
fn first_cas(reply: &[u8]) -> Option<Vec<u8>> {
    let (items, _) = mc_items(reply);
    items.iter().find_map(|item| {
        let words: Vec<&[u8]> = item.line.split(|b| *b == b' ').collect();
        match words[0] {
            b"VALUE" => words.get(4).map(|w| w.to_vec()),
            b"VA" | b"HD" | b"EN" | b"NF" | b"NS" | b"EX" => {
                words.iter().skip(1).find(|w| w.first() == Some(&b'c')).map(|w| w[1..].to_vec())
            }
            _ => None,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Complete,
    /// The server closed the connection.
    Closed,
    /// Nothing (more) arrived within `REPLY_TIMEOUT`.
    Timeout,
    /// The bytes cannot be parsed as a reply of this protocol.
    Malformed,
    /// No connection to send on (it was closed earlier).
    NotConnected,
    /// Nothing was to be read (`!send`, `!reconnect`).
    Nothing,
}

struct Reply {
    bytes: Vec<u8>,
    end: End,
}

/// One server's side of a script run: its connection and what the script captured from it.
struct Side<'a> {
    label: &'a str,
    port: u16,
    proto: Proto,
    conn: Option<TcpStream>,
    /// Bytes read past the end of the last reply.
    pending: Vec<u8>,
    /// `MN` replies owed to `mn` commands sent by `!send` and not read yet.
    mn_owed: usize,
    vars: HashMap<String, Vec<u8>>,
    cas_labels: HashMap<Vec<u8>, String>,
}

impl<'a> Side<'a> {
    fn new(label: &'a str, port: u16, proto: Proto) -> Self {
        Side {
            label,
            port,
            proto,
            conn: None,
            pending: Vec::new(),
            mn_owed: 0,
            vars: HashMap::new(),
            cas_labels: HashMap::new(),
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        let s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("{}: connect: {e}", self.label))?;
        s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
        s.set_nodelay(true).ok();
        self.conn = Some(s);
        self.pending.clear();
        self.mn_owed = 0;
        Ok(())
    }

    /// Forgets the script's state and empties the server through a separate connection, so
    /// the script's own connection starts fresh (RESP2, db 0, no name).
    fn start_script(&mut self) -> Result<(), String> {
        self.vars.clear();
        self.cas_labels.clear();
        let (flush, ok): (&[u8], &[u8]) = match self.proto {
            Proto::Redis => (b"*1\r\n$8\r\nFLUSHALL\r\n", b"+OK\r\n"),
            Proto::Memcache => (b"flush_all\r\n", b"OK\r\n"),
        };
        self.connect()?;
        // Both answers are one line, whatever the protocol.
        let reply = self.write_then(flush, |buf| Ok(find_crlf(buf, 0).map(|eol| eol + 2)));
        if reply.bytes != ok {
            let how = if reply.end == End::Complete { String::new() } else { format!(" ({:?})", reply.end) };
            return Err(format!("{}: flush answered \"{}\"{how}", self.label, escape(&reply.bytes)));
        }
        self.connect()
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        match self.conn.as_mut().map(|c| c.write_all(bytes)) {
            Some(Ok(())) => true,
            // A write can fail when the peer closed; the read that follows reports it.
            Some(Err(_)) => true,
            None => false,
        }
    }

    /// Writes `bytes` and reads until `complete` finds the reply's end in the buffered bytes.
    fn write_then(&mut self, bytes: &[u8], complete: impl Fn(&[u8]) -> Result<Option<usize>, String>) -> Reply {
        if !self.write(bytes) {
            return Reply { bytes: Vec::new(), end: End::NotConnected };
        }
        self.read_reply(complete)
    }

    fn read_reply(&mut self, complete: impl Fn(&[u8]) -> Result<Option<usize>, String>) -> Reply {
        loop {
            match complete(&self.pending) {
                Ok(Some(n)) => {
                    let rest = self.pending.split_off(n);
                    return Reply { bytes: std::mem::replace(&mut self.pending, rest), end: End::Complete };
                }
                Ok(None) => {}
                Err(_) => return self.fail(End::Malformed),
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return self.fail(End::Closed),
                Err(end) => return self.fail(end),
            }
        }
    }

    /// Reads more bytes: `Ok(false)` on EOF.
    fn fill(&mut self) -> Result<bool, End> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(End::NotConnected);
        };
        let mut buf = [0u8; 64 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Err(End::Timeout),
                // A reset is how a peer that closed with unread input says goodbye.
                Err(_) => return Ok(false),
            }
        }
    }

    /// Ends the connection after a reply that leaves it unusable, returning what was read.
    fn fail(&mut self, end: End) -> Reply {
        self.conn = None;
        Reply { bytes: std::mem::take(&mut self.pending), end }
    }

    fn read_resp(&mut self) -> Reply {
        self.read_reply(frame_end)
    }

    /// Sends the `mn` sentinel and reads everything before its `MN` (which is stripped).
    fn read_mc(&mut self, extra_mn: usize) -> Reply {
        let want = self.mn_owed + extra_mn + 1;
        self.mn_owed = 0;
        let mut reply = self.write_then(b"mn\r\n", |buf| Ok(mc_reply_end(buf, want)));
        if reply.end == End::Complete {
            reply.bytes.truncate(reply.bytes.len() - b"MN\r\n".len());
        }
        reply
    }

    fn read_one(&mut self) -> Reply {
        match self.proto {
            Proto::Redis => self.read_resp(),
            Proto::Memcache => self.read_mc(0),
        }
    }

    /// `!closed`: reads until EOF; whatever arrives first is part of the reply.
    fn expect_close(&mut self) -> Reply {
        loop {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return self.fail(End::Closed),
                Err(end) => return self.fail(end),
            }
        }
    }

    fn execute(&mut self, step: &Step) -> Reply {
        let nothing = Reply { bytes: Vec::new(), end: End::Nothing };
        if self.conn.is_none() && step.op != Op::Reconnect {
            return Reply { bytes: Vec::new(), end: End::NotConnected };
        }
        match &step.op {
            Op::Command(args) => {
                let args: Vec<Vec<u8>> = args.iter().map(|a| substitute(a, &self.vars)).collect();
                if step.check.scan {
                    return self.scan(args);
                }
                self.write_then(&multibulk(&args), frame_end)
            }
            Op::Line { bytes, mn } => {
                let bytes = substitute(bytes, &self.vars);
                if !self.write(&bytes) {
                    return Reply { bytes: Vec::new(), end: End::NotConnected };
                }
                self.read_mc(*mn)
            }
            Op::Send(bytes) => {
                let bytes = substitute(bytes, &self.vars);
                self.mn_owed += count_mn(&bytes);
                if self.write(&bytes) {
                    nothing
                } else {
                    Reply { bytes: Vec::new(), end: End::NotConnected }
                }
            }
            Op::Raw(bytes) => {
                let bytes = substitute(bytes, &self.vars);
                if !self.write(&bytes) {
                    return Reply { bytes: Vec::new(), end: End::NotConnected };
                }
                match self.proto {
                    Proto::Redis => self.read_resp(),
                    Proto::Memcache => self.read_mc(count_mn(&bytes)),
                }
            }
            Op::Read => self.read_one(),
            Op::Closed => self.expect_close(),
            Op::Sleep(_) => nothing,
            Op::Reconnect => match self.connect() {
                Ok(()) => nothing,
                Err(e) => Reply { bytes: e.into_bytes(), end: End::NotConnected },
            },
        }
    }

    /// `!scan`: iterates a SCAN-family command from its cursor to cursor 0 and answers one
    /// synthetic reply `[0, sorted distinct elements]`, so servers that walk their tables in
    /// different orders or batch sizes still compare equal. Errors come back unchanged.
    fn scan(&mut self, mut args: Vec<Vec<u8>>) -> Reply {
        let scan_keys = args[0].eq_ignore_ascii_case(b"SCAN");
        let cursor_at = if scan_keys { 1 } else { 2 };
        let group =
            if args[0].eq_ignore_ascii_case(b"HSCAN") || args[0].eq_ignore_ascii_case(b"ZSCAN") { 2 } else { 1 };
        let mut seen: Vec<Vec<Frame>> = Vec::new();
        for _ in 0..10_000 {
            let reply = self.write_then(&multibulk(&args), frame_end);
            if reply.end != End::Complete {
                return reply;
            }
            let Some(Frame::Agg(b'*', parts)) = Frame::parse(&reply.bytes) else {
                return reply;
            };
            let [Frame::Blob(b'$', cursor), Frame::Agg(b'*', elements)] = parts.as_slice() else {
                return reply;
            };
            if elements.len() % group != 0 {
                return reply;
            }
            seen.extend(elements.chunks(group).map(<[Frame]>::to_vec));
            if cursor == b"0" {
                seen.sort();
                seen.dedup();
                let all = Frame::Agg(b'*', vec![Frame::Blob(b'$', b"0".to_vec()), Frame::Agg(b'*', seen.concat())]);
                return Reply { bytes: all.to_bytes(), end: End::Complete };
            }
            let Some(slot) = args.get_mut(cursor_at) else {
                return reply;
            };
            *slot = cursor.clone();
        }
        Reply { bytes: b"<scan did not return to cursor 0 in 10000 calls>".to_vec(), end: End::Malformed }
    }

    /// The bytes a reply to script line `line` is compared by: the rules and the line's
    /// modifiers applied.
    fn view(&mut self, reply: &Reply, line: usize, check: &Check, rules: &[&Intended]) -> Vec<u8> {
        let mut out = match self.proto {
            Proto::Redis => redis_view(&reply.bytes, check, rules),
            Proto::Memcache => {
                let mut bytes = filter_stats(&reply.bytes, rules);
                if rules.iter().any(|r| r.rule == Rule::MaskCas) {
                    bytes = mask_cas(&bytes, line, &mut self.cas_labels);
                }
                let type_only = check.view == View::Type || rules.iter().any(|r| r.rule == Rule::TypeOnly);
                if let View::Prefix(n) = check.view {
                    bytes.truncate(n);
                } else if type_only || check.view == View::Shape {
                    // memcache "types" are a reply's first words: one for !type, per line for !shape.
                    let (items, _) = mc_items(&bytes);
                    let firsts: Vec<&[u8]> =
                        items.iter().map(|i| i.line.split(|b| *b == b' ').next().unwrap_or(b"")).collect();
                    let n = if type_only { 1 } else { firsts.len() };
                    bytes = firsts.iter().take(n).copied().collect::<Vec<_>>().join(&b' ');
                    bytes.splice(0..0, b"words: ".iter().copied());
                }
                bytes
            }
        };
        let marker: &[u8] = match reply.end {
            End::Complete | End::Nothing => b"",
            End::Closed => b"<connection closed>",
            End::Timeout => b"<no reply within the timeout>",
            End::Malformed => b"<malformed reply>",
            End::NotConnected => b"<not connected>",
        };
        out.extend_from_slice(marker);
        out
    }

    fn capture(&mut self, name: &str, reply: &Reply) -> bool {
        let value = match self.proto {
            Proto::Redis => Frame::parse(&reply.bytes).and_then(|f| f.scalar()),
            Proto::Memcache => first_cas(&reply.bytes),
        };
        match value {
            Some(v) => {
                self.vars.insert(name.to_string(), v);
                true
            }
            None => false,
        }
    }
}

fn redis_view(bytes: &[u8], check: &Check, rules: &[&Intended]) -> Vec<u8> {
    let type_only = check.view == View::Type || rules.iter().any(|r| r.rule == Rule::TypeOnly);
    if type_only {
        return format!("type {}", bytes.first().map_or('?', |b| *b as char)).into_bytes();
    }
    let masks: Vec<&[u8]> = rules
        .iter()
        .filter_map(|r| match &r.rule {
            Rule::MaskField(k) => Some(k.as_slice()),
            _ => None,
        })
        .chain(check.masks.iter().map(Vec::as_slice))
        .collect();
    if masks.is_empty() && check.sorted.is_none() && check.view == View::Bytes {
        return bytes.to_vec();
    }
    let Some(mut frame) = Frame::parse(bytes) else {
        return bytes.to_vec();
    };
    if let View::Prefix(n) = check.view {
        let (kind, payload) = match &frame {
            Frame::Line(k, p) | Frame::Blob(k, p) => (*k, p.as_slice()),
            Frame::Agg(k, _) | Frame::Masked(k) => (*k, &b""[..]),
        };
        let mut out = format!("type {} starting ", kind as char).into_bytes();
        out.extend_from_slice(&payload[..n.min(payload.len())]);
        return out;
    }
    for key in masks {
        frame.mask_field(key);
    }
    if let Some(group) = check.sorted {
        frame.sort(group);
    }
    if check.view == View::Shape {
        let mut s = String::from("shape ");
        frame.shape(&mut s);
        return s.into_bytes();
    }
    frame.to_bytes()
}

/// Equality with `!approx`: runs of digits may differ by `tol`, everything else must match.
fn approx_equal(a: &[u8], b: &[u8], tol: u64) -> bool {
    fn runs(s: &[u8]) -> Vec<(bool, &[u8])> {
        let mut out: Vec<(bool, &[u8])> = Vec::new();
        let mut start = 0;
        for i in 1..=s.len() {
            if i == s.len() || s[i].is_ascii_digit() != s[start].is_ascii_digit() {
                out.push((s[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    ra.len() == rb.len()
        && ra.iter().zip(&rb).all(|((da, xa), (db, xb))| {
            if *da && *db {
                let num = |x: &[u8]| std::str::from_utf8(x).ok().and_then(|s| s.parse::<u64>().ok());
                match (num(xa), num(xb)) {
                    (Some(p), Some(q)) => p.abs_diff(q) <= tol,
                    _ => xa == xb,
                }
            } else {
                xa == xb
            }
        })
}

/// A difference between the two servers, or a problem with the script itself.
struct Problem {
    place: String,
    text: String,
    detail: String,
}

fn run_suite(proto: Proto, run: Run, reference: (&str, u16), candidate: (&str, u16)) -> String {
    let intended = match load_intended() {
        Ok(i) => i,
        Err(e) => return e,
    };
    let dir = diff_dir().join(proto.dir());
    let mut scripts: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect(),
        Err(e) => return format!("{}: {e}", dir.display()),
    };
    scripts.sort();
    let only: Option<Vec<String>> =
        std::env::var("DIFF_ONLY").ok().map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(only) = &only {
        scripts.retain(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            only.iter().any(|o| *o == stem || *o == format!("{}/{stem}", proto.dir()))
        });
        if scripts.is_empty() {
            eprintln!("DIFF_ONLY={only:?} selects no {} script", proto.dir());
        }
    }
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    let trace = flag("DIFF_TRACE");
    let compare_pending = run == Run::SelfCheck || flag("DIFF_PENDING");
    let mut problems = Vec::new();
    let mut lines = 0;
    let mut ran = 0;
    // `!pending` scripts, as "name (issue N: reason)", and whether they ran here.
    let mut pending = Vec::new();
    for path in &scripts {
        let name = format!("{}/{}", proto.dir(), path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default());
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem { place: name, text: String::new(), detail: format!("unreadable: {e}") });
                continue;
            }
        };
        let Script { pending: waits_for, steps } = match parse_script(proto, &source) {
            Ok(s) => s,
            Err((line, msg)) => {
                problems.push(Problem {
                    place: format!("{name}:{line}"),
                    text: String::new(),
                    detail: format!("script error: {msg}"),
                });
                continue;
            }
        };
        if let Some(waits_for) = waits_for {
            pending.push(format!("{name} ({waits_for})"));
            if !compare_pending {
                continue;
            }
        }
        lines += steps.len();
        ran += 1;
        let mut r = Side::new(reference.0, reference.1, proto);
        let mut c = Side::new(candidate.0, candidate.1, proto);
        run_script(&name, &steps, &mut r, &mut c, &intended, trace, &mut problems);
    }
    let pending_note = if pending.is_empty() {
        String::new()
    } else {
        let verb = if compare_pending { "included" } else { "SKIPPED, not compared" };
        let mut note = format!("differential {}: {} pending script(s) {verb}:\n", proto.dir(), pending.len());
        for p in &pending {
            note.push_str(&format!("    {p}\n"));
        }
        note
    };
    if problems.is_empty() {
        eprint!(
            "differential {}: {ran} scripts, {lines} lines, {} = {}\n{pending_note}",
            proto.dir(),
            reference.0,
            candidate.0
        );
        return String::new();
    }
    let mut report = format!(
        "differential {}: {} problem(s) in {ran} scripts / {lines} lines ({} is the reference, {} the candidate)\n\
         {pending_note}",
        proto.dir(),
        problems.len(),
        reference.0,
        candidate.0
    );
    for p in &problems {
        report.push_str(&format!("\n{}: {}\n{}\n", p.place, p.text, p.detail));
    }
    report
}

fn run_script<'a>(
    name: &str,
    steps: &[Step],
    r: &mut Side<'a>,
    c: &mut Side<'a>,
    intended: &[Intended],
    trace: bool,
    problems: &mut Vec<Problem>,
) {
    for side in [&mut *r, &mut *c] {
        if let Err(e) = side.start_script() {
            problems.push(Problem {
                place: name.to_string(),
                text: String::new(),
                detail: format!("cannot start: {e}"),
            });
            return;
        }
    }
    let mut candidate_timeouts = 0;
    for step in steps {
        let place = format!("{name}:{}", step.line);
        let problem = |detail: String| Problem { place: place.clone(), text: step.text.clone(), detail };
        if r.conn.is_none() && step.op != Op::Reconnect {
            problems.push(problem(format!(
                "script error: {} closed the connection before this line; add !reconnect (rest of script skipped)",
                r.label
            )));
            return;
        }
        // A candidate that closed when the reference did not was reported then; carry on with
        // a fresh connection so the rest of the script is still checked.
        if c.conn.is_none() && step.op != Op::Reconnect {
            let _ = c.connect();
        }
        if let Op::Sleep(ms) = step.op {
            std::thread::sleep(Duration::from_millis(ms));
            continue;
        }
        let expected = r.execute(step);
        let got = c.execute(step);
        let verb = match &step.op {
            Op::Command(args) => args.first().map(Vec::as_slice),
            Op::Line { bytes, .. } => bytes.split(|b| *b == b' ' || *b == b'\r').next(),
            _ => None,
        };
        let rules: Vec<&Intended> = intended.iter().filter(|i| i.applies(r.proto, verb)).collect();
        let expected_view = r.view(&expected, step.line, &step.check, &rules);
        let got_view = c.view(&got, step.line, &step.check, &rules);
        if trace {
            let shown = &expected_view[..expected_view.len().min(300)];
            let more = expected_view.len() - shown.len();
            let more = if more > 0 { format!("... ({more} more bytes)") } else { String::new() };
            eprintln!("{place}: {}\n    {}{more}", step.text, escape(shown));
        }
        // The reference not answering means the script is wrong (say, a data block that
        // swallowed the memcached sentinel); everything after it would be noise.
        if matches!(expected.end, End::Timeout | End::NotConnected | End::Malformed) {
            problems.push(problem(format!(
                "script error: {} gave no complete reply: {} (rest of script skipped)",
                r.label,
                escape(&expected_view)
            )));
            return;
        }
        if got.end == End::Timeout {
            candidate_timeouts += 1;
        }
        if let Some(var) = &step.check.capture {
            if !r.capture(var, &expected) {
                problems.push(problem(format!("script error: nothing to capture in {}", escape(&expected.bytes))));
            }
            c.capture(var, &got);
        }
        let same = match step.check.approx {
            Some(tol) => approx_equal(&expected_view, &got_view, tol),
            None => expected_view == got_view,
        };
        if !same {
            let (e, g) = excerpts(&expected_view, &got_view);
            // Name the intended differences only where they changed what is compared.
            let masked = expected_view != r.view(&expected, step.line, &step.check, &[])
                || got_view != c.view(&got, step.line, &step.check, &[]);
            let names = rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
            let applied = if names.is_empty() || !masked {
                String::new()
            } else {
                format!("    (intended differences applied: {names})\n")
            };
            problems.push(problem(format!("{applied}    expected: {e}\n    got:      {g}")));
        }
        if candidate_timeouts == MAX_CANDIDATE_TIMEOUTS {
            problems
                .push(problem(format!("{} timed out {MAX_CANDIDATE_TIMEOUTS} times: rest of script skipped", c.label)));
            return;
        }
    }
}

/// Printable form of bytes: ASCII as is, `\r \n \t \" \\` and `\xHH` otherwise.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Both sides escaped; long replies are cut to a window around their first difference.
fn excerpts(a: &[u8], b: &[u8]) -> (String, String) {
    const WINDOW: usize = 400;
    if a.len() <= WINDOW && b.len() <= WINDOW {
        return (format!("\"{}\"", escape(a)), format!("\"{}\"", escape(b)));
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let start = first.saturating_sub(100);
    let cut = |s: &[u8]| {
        let end = (start + WINDOW).min(s.len());
        let from = start.min(end);
        format!("({} bytes) ...\"{}\"...", s.len(), escape(&s[from..end]))
    };
    (cut(a), cut(b))
}

// ---------------------------------------------------------------------------------------------
// Unit tests of the harness itself (no servers needed)
// ---------------------------------------------------------------------------------------------

#[test]
fn resp_framer_finds_frame_ends() {
    let complete: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":-5\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"$0\r\n\r\n",
        b"$5\r\na\r\nbc\r\n",
        b"*0\r\n",
        b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n",
        b"%1\r\n+k\r\n*2\r\n_\r\n#t\r\n",
        b"~2\r\n,1.5\r\n(12345678901234567890\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"!3\r\nERR\r\n",
        b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n",
        b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        b"$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n",
        b"*?\r\n:1\r\n*?\r\n.\r\n.\r\n",
        b"%0\r\n",
    ];
    for frame in complete {
        assert_eq!(frame_end(frame), Ok(Some(frame.len())), "{}", escape(frame));
        let mut two = frame.to_vec();
        two.extend_from_slice(b"+NEXT\r\n");
        assert_eq!(frame_end(&two), Ok(Some(frame.len())), "{}", escape(&two));
        for cut in 0..frame.len() {
            assert_eq!(frame_end(&frame[..cut]), Ok(None), "{} cut at {cut}", escape(frame));
        }
    }
    for bad in [&b"?\r\n"[..], b"$-2\r\n", b"$1\r\nab\r\n", b".\r\n", b";1\r\nx\r\n"] {
        assert!(frame_end(bad).is_err(), "{}", escape(bad));
    }
}

#[test]
fn resp_frames_reencode_and_sort() {
    let bytes = b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n";
    let mut frame = Frame::parse(bytes).expect("parses");
    assert_eq!(frame.to_bytes(), bytes);
    frame.sort(1);
    assert_eq!(frame.to_bytes(), b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    let mut shape = String::new();
    frame.shape(&mut shape);
    assert_eq!(shape, "*2[$,*3[$,$,$]]");
    let mut hello = Frame::parse(b"%2\r\n$2\r\nid\r\n:7\r\n$5\r\nproto\r\n:3\r\n").expect("parses");
    hello.mask_field(b"id");
    assert_eq!(hello.to_bytes(), b"%2\r\n$2\r\nid\r\n<masked :>\r\n$5\r\nproto\r\n:3\r\n");
}

#[test]
fn script_lines_split_like_redis_cli() {
    let args = split_args(r#"SET "a b\x41\n" 'it\'s' x"y z" "r"*3 ''"#).expect("splits");
    assert_eq!(args, [&b"SET"[..], b"a bA\n", b"it's", b"xy z", b"rrr", b""]);
    assert!(split_args(r#"GET "unbalanced"#).is_err());
    assert!(split_args(r#"GET "a"b"#).is_err());
    let Script { pending, steps } =
        parse_script(Proto::Memcache, "set k 0 0 1\nx\n!capture:c gets k\ncas k 0 0 1 $c\n!data \"y\"\n")
            .expect("parses");
    assert_eq!(pending, None);
    assert_eq!(steps[0].op, Op::Line { bytes: b"set k 0 0 1\r\nx\r\n".to_vec(), mn: 0 });
    assert_eq!(steps[1].check.capture.as_deref(), Some("c"));
    assert_eq!(steps[2].op, Op::Line { bytes: b"cas k 0 0 1 $c\r\ny\r\n".to_vec(), mn: 0 });
    let vars = HashMap::from([("c".to_string(), b"42".to_vec())]);
    assert_eq!(substitute(b"cas k 0 0 1 $c $cc\r\n", &vars), b"cas k 0 0 1 42 $cc\r\n");
}

#[test]
fn memcache_replies_are_walked_by_data_blocks() {
    let reply = b"VALUE k 0 4 17\r\nMN\r\n\r\nVA 2 c17 f0\r\nhi\r\nHD c18\r\nMN\r\n";
    assert_eq!(mc_reply_end(reply, 1), Some(reply.len()));
    assert_eq!(mc_reply_end(&reply[..reply.len() - 1], 1), None);
    let mut labels = HashMap::new();
    assert_eq!(
        mask_cas(reply, 7, &mut labels),
        b"VALUE k 0 4 <cas@7>\r\nMN\r\n\r\nVA 2 c<cas@7> f0\r\nhi\r\nHD c<cas@7#2>\r\nMN\r\n"
    );
    assert_eq!(mask_cas(b"HD c18 c19\r\n", 9, &mut labels), b"HD c<cas@7#2> c<cas@9>\r\n");
    assert_eq!(first_cas(reply), Some(b"17".to_vec()));
    assert!(approx_equal(b":99998\r\n", b":100000\r\n", 1000));
    assert!(!approx_equal(b":-1\r\n", b":1\r\n", 1000));
}

#[test]
fn pending_is_a_file_level_directive() {
    let script = parse_script(Proto::Redis, "# later\n!pending 3 collections: lists\nRPUSH l a\n").expect("parses");
    let pending = script.pending.expect("pending");
    assert_eq!(pending, Pending { issues: vec![3], reason: "collections: lists".into() });
    assert_eq!(pending.to_string(), "issue #3: collections: lists");
    assert_eq!(script.steps.len(), 1);
    let two = parse_script(Proto::Redis, "!pending 8,#9 CONFIG REWRITE\nCONFIG REWRITE\n").expect("parses");
    assert_eq!(two.pending.map(|p| p.issues), Some(vec![8, 9]));
    for bad in
        ["GET k\n!pending 3 late\n", "!pending 3 a\n!pending 4 b\n", "!pending 3\n", "!pending x y\n", "!pending 0 y\n"]
    {
        assert!(parse_script(Proto::Redis, bad).is_err(), "{bad}");
    }
}
