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
