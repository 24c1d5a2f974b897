//! COMMAND DOCS `arguments` against redis-server: interactive redis-cli builds its typing hints
//! (`SET k ` → `value [NX|XX] [GET] [EX seconds|…]`) from them, so for every command cachette
//! lists, the subtree must equal redis-server 7.0's — field order, types and all.
//!
//! Regression: cachette's COMMAND DOCS had no `arguments`, and redis-cli showed no hints.
//!
//! Replies are read over RESP3 into a small typed tree (maps stay ordered lists of pairs), so the
//! comparison sees what a client sees. The reader is local and minimal on purpose: it is
//! independent of the server's codec, like the differential harness's framer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::util;

/// One RESP reply: scalars as (type byte, text), aggregates as (type byte, elements); a map's
/// elements are its keys and values alternating.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Scalar(u8, String),
    Agg(u8, Vec<Reply>),
}

impl Reply {
    /// The value under `key` in a map reply.
    fn get(&self, key: &str) -> Option<&Reply> {
        let Reply::Agg(b'%', items) = self else { return None };
        items.chunks(2).find(|kv| kv[0] == Reply::Scalar(b'$', key.into())).map(|kv| &kv[1])
    }

    /// The (key, value) pairs of a map reply; empty for anything else.
    fn pairs(&self) -> Vec<(String, &Reply)> {
        let Reply::Agg(b'%', items) = self else { return Vec::new() };
        items
            .chunks(2)
            .map(|kv| match &kv[0] {
                Reply::Scalar(_, k) => (k.clone(), &kv[1]),
                other => (format!("{other:?}"), &kv[1]),
            })
            .collect()
    }
}

/// Compact for failure messages: `{name: key, type: key, key_spec_index: :0}`, sets as `~[…]`.
impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Scalar(b'$', s) => write!(f, "{s}"),
            Reply::Scalar(kind, s) => write!(f, "{}{s}", *kind as char),
            Reply::Agg(b'%', items) => {
                let pairs: Vec<String> = items.chunks(2).map(|kv| format!("{}: {}", kv[0], kv[1])).collect();
                write!(f, "{{{}}}", pairs.join(", "))
            }
            Reply::Agg(kind, items) => {
                let items: Vec<String> = items.iter().map(Reply::to_string).collect();
                write!(f, "{}[{}]", if *kind == b'*' { "" } else { "~" }, items.join(", "))
            }
        }
    }
}

struct Conn(BufReader<TcpStream>);

impl Conn {
    /// Connects and switches to RESP3.
    fn open(proc: &util::Proc) -> Conn {
        let mut c = Conn(BufReader::new(proc.resp()));
        c.call(&["HELLO", "3"]);
        c
    }

    fn call(&mut self, args: &[&str]) -> Reply {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.0.get_mut().write_all(req.as_bytes()).expect("write");
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.0.read_line(&mut line).expect("read reply");
        let line = line.strip_suffix("\r\n").expect("CRLF-terminated header");
        let (kind, rest) = (line.as_bytes()[0], line[1..].to_string());
        match kind {
            b'$' | b'=' | b'!' => {
                let n: usize = rest.parse().expect("bulk length");
                let mut buf = vec![0; n + 2];
                self.0.read_exact(&mut buf).expect("bulk payload");
                buf.truncate(n);
                Reply::Scalar(b'$', String::from_utf8(buf).expect("utf-8 bulk"))
            }
            b'*' | b'~' | b'>' | b'%' => {
                let n: usize = rest.parse().expect("aggregate length");
                let n = if kind == b'%' { 2 * n } else { n };
                Reply::Agg(kind, (0..n).map(|_| self.read()).collect())
            }
            _ => Reply::Scalar(kind, rest),
        }
    }
}

/// The `arguments` of one COMMAND DOCS entry and of each of its subcommands, by name.
fn arguments(doc: &Reply) -> Vec<(String, Option<Reply>)> {
    let mut out = vec![(String::new(), doc.get("arguments").cloned())];
    if let Some(subs) = doc.get("subcommands") {
        for (name, sub) in subs.pairs() {
            out.push((name, sub.get("arguments").cloned()));
        }
    }
    out
}

#[test]
fn command_docs_arguments_match_redis() {
    let Some(reference) = util::redis_server() else { return };
    let srv = util::cachette(&[]);
    let (mut redis, mut cachette) = (Conn::open(&reference), Conn::open(&srv));
    let Reply::Agg(_, names) = cachette.call(&["COMMAND", "LIST"]) else { panic!("COMMAND LIST is not an array") };
    let mut compared = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let Reply::Scalar(_, name) = name else { panic!("command name {name:?}") };
        let (want, got) = (redis.call(&["COMMAND", "DOCS", &name]), cachette.call(&["COMMAND", "DOCS", &name]));
        let Some(want) = want.get(&name) else { continue }; // a command redis-server 7.0 lacks
        let got = got.get(&name).unwrap_or_else(|| panic!("cachette has no COMMAND DOCS for {name}"));
        let want = arguments(want);
        for (sub, got_args) in arguments(got) {
            // Subcommands redis-server 7.0 lacks (CLIENT SETINFO came in 7.2) have nothing to match.
            let Some((_, want_args)) = want.iter().find(|(w, _)| *w == sub) else { continue };
            let label = if sub.is_empty() { name.clone() } else { sub };
            if got_args != *want_args {
                let show = |a: &Option<Reply>| a.as_ref().map_or("(none)".to_string(), Reply::to_string);
                problems.push(format!(
                    "{label}:\n  redis-server {}\n  cachette     {}",
                    show(want_args),
                    show(&got_args)
                ));
            }
            compared.push(label);
        }
    }
    assert!(compared.iter().any(|c| c == "set") && compared.iter().any(|c| c == "config|get"), "compared {compared:?}");
    assert!(problems.is_empty(), "COMMAND DOCS arguments differ:\n{}", problems.join("\n"));
}

/// Every COMMAND DOCS entry (and subcommand entry) cachette gives, field by field.
fn doc_entries(doc: &Reply, name: &str) -> Vec<(String, Reply)> {
    let mut fields: Vec<(String, Reply)> = Vec::new();
    let mut own = Vec::new();
    for (k, v) in doc.pairs() {
        if k != "subcommands" {
            own.push(Reply::Scalar(b'$', k));
            own.push(v.clone());
        }
    }
    fields.push((name.to_string(), Reply::Agg(b'%', own)));
    if let Some(subs) = doc.get("subcommands") {
        for (sub, d) in subs.pairs() {
            fields.extend(doc_entries(d, &sub));
        }
    }
    fields
}

/// COMMAND DOCS must equal redis-server 7.0's for every command cachette implements: summary,
/// since, group, complexity, doc flags, deprecation, history and arguments, in its field order.
#[test]
fn command_docs_match_redis_entirely() {
    let Some(reference) = util::redis_server() else { return };
    let srv = util::cachette(&[]);
    let (mut redis, mut cachette) = (Conn::open(&reference), Conn::open(&srv));
    let Reply::Agg(_, names) = cachette.call(&["COMMAND", "LIST"]) else { panic!("COMMAND LIST is not an array") };
    let mut problems = Vec::new();
    let mut compared = 0;
    for name in names {
        let Reply::Scalar(_, name) = name else { panic!("command name {name:?}") };
        let (want, got) = (redis.call(&["COMMAND", "DOCS", &name]), cachette.call(&["COMMAND", "DOCS", &name]));
        let Some(want) = want.get(&name) else { continue };
        let got = got.get(&name).unwrap_or_else(|| panic!("cachette has no COMMAND DOCS for {name}"));
        let want = doc_entries(want, &name);
        for (sub, entry) in doc_entries(got, &name) {
            // Subcommands redis-server lacks have nothing to match.
            let Some((_, want_entry)) = want.iter().find(|(w, _)| *w == sub) else { continue };
            compared += 1;
            if entry != *want_entry {
                problems.push(format!("{sub}:\n  redis-server {want_entry}\n  cachette     {entry}"));
            }
        }
    }
    assert!(compared > 200, "compared only {compared}");
    assert!(problems.is_empty(), "COMMAND DOCS differ:\n{}", problems.join("\n"));
}

/// COMMAND INFO must equal redis-server 7.0's for every command and subcommand cachette
/// implements: arity, flags, key positions, ACL categories, tips and key specifications.
/// Subcommands are compared by name (redis-server lists them in hash order).
#[test]
fn command_info_matches_redis() {
    fn entries(info: &Reply) -> Vec<(String, Reply)> {
        let Reply::Agg(_, f) = info else { return Vec::new() };
        let Reply::Scalar(_, name) = &f[0] else { return Vec::new() };
        let mut out = vec![(name.clone(), Reply::Agg(b'*', f[..9].to_vec()))];
        if let Reply::Agg(_, subs) = &f[9] {
            for s in subs {
                out.extend(entries(s));
            }
        }
        out
    }
    /// Flags and categories are sets: compare them sorted.
    fn normalized(r: &Reply) -> Reply {
        match r {
            Reply::Agg(b'~', items) => {
                let mut items: Vec<Reply> = items.iter().map(normalized).collect();
                items.sort_by_key(|i| i.to_string());
                Reply::Agg(b'~', items)
            }
            Reply::Agg(k, items) => Reply::Agg(*k, items.iter().map(normalized).collect()),
            s => s.clone(),
        }
    }
    let Some(reference) = util::redis_server() else { return };
    let srv = util::cachette(&[]);
    let (mut redis, mut cachette) = (Conn::open(&reference), Conn::open(&srv));
    let Reply::Agg(_, names) = cachette.call(&["COMMAND", "LIST"]) else { panic!("COMMAND LIST is not an array") };
    let mut problems = Vec::new();
    for name in names {
        let Reply::Scalar(_, name) = name else { panic!("command name {name:?}") };
        let Reply::Agg(_, want) = redis.call(&["COMMAND", "INFO", &name]) else { panic!("COMMAND INFO") };
        let Reply::Agg(_, got) = cachette.call(&["COMMAND", "INFO", &name]) else { panic!("COMMAND INFO") };
        if matches!(want[0], Reply::Scalar(b'_', _)) {
            continue; // a command redis-server 7.0 lacks
        }
        let want = entries(&want[0]);
        for (sub, entry) in entries(&got[0]) {
            let Some((_, w)) = want.iter().find(|(n, _)| *n == sub) else { continue };
            if normalized(&entry) != normalized(w) {
                problems.push(format!("{sub}:\n  redis-server {w}\n  cachette     {entry}"));
            }
        }
    }
    assert!(problems.is_empty(), "COMMAND INFO differs:\n{}", problems.join("\n"));
}
