//! ACL command categories (`@read`, `@write`, `@dangerous`, …), derived from the command table.
//!
//! One source for both users of categories: COMMAND INFO lists a command's categories, and ACL
//! rules (`+@read -@dangerous`) and `ACL CAT` select commands by them. Most categories follow
//! from a command's flags (write, readonly, admin, pubsub, fast, blocking) and its COMMAND DOCS
//! group (string, list, …), as redis-server derives the implicit ones; the few that redis-server
//! declares by hand for individual commands (FLUSHALL is `@dangerous`, DBSIZE is `@keyspace`,
//! SORT belongs to the collection types, …) are the exceptions in [`EXTRA`] and [`WITHOUT`].

use super::flags::*;
use super::Spec;

/// Category names in redis-server's bit order (ACL CAT lists them so, and COMMAND INFO lists a
/// command's categories in this order).
pub const NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (case-insensitive, without the `@`).
pub fn by_name(name: &[u8]) -> Option<u32> {
    NAMES.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

const fn bit(name: &str) -> u32 {
    let mut i = 0;
    while i < NAMES.len() {
        if const_eq(NAMES[i], name) {
            return 1 << i;
        }
        i += 1;
    }
    panic!("unknown category")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const KEYSPACE: u32 = bit("keyspace");
const DANGEROUS: u32 = bit("dangerous");
const CONNECTION: u32 = bit("connection");

/// Categories redis-server gives these commands beyond what their flags and group imply.
const EXTRA: &[(&str, u32)] = &[
    ("flushall", KEYSPACE | DANGEROUS),
    ("flushdb", KEYSPACE | DANGEROUS),
    ("swapdb", KEYSPACE | DANGEROUS),
    ("dbsize", KEYSPACE),
    ("keys", DANGEROUS),
    ("info", DANGEROUS),
    ("sort", bit("set") | bit("sortedset") | bit("list") | DANGEROUS),
    ("sort_ro", bit("set") | bit("sortedset") | bit("list") | DANGEROUS),
    ("pfdebug", bit("hyperloglog")),
    ("pfselftest", bit("hyperloglog")),
    ("command", CONNECTION),
    ("acl", 0),
];

/// Categories their group would imply that redis-server does not give these commands.
const WITHOUT: &[(&str, u32)] =
    &[("sort", KEYSPACE), ("sort_ro", KEYSPACE), ("object", KEYSPACE), ("client", CONNECTION)];

fn group_category(group: &str) -> u32 {
    match group {
        "generic" => KEYSPACE,
        "string" => bit("string"),
        "list" => bit("list"),
        "hash" => bit("hash"),
        "set" => bit("set"),
        "sorted-set" => bit("sortedset"),
        "bitmap" => bit("bitmap"),
        "hyperloglog" => bit("hyperloglog"),
        "geo" => bit("geo"),
        "stream" => bit("stream"),
        "pubsub" => bit("pubsub"),
        "connection" => CONNECTION,
        "transactions" => bit("transaction"),
        "scripting" => bit("scripting"),
        _ => 0,
    }
}

/// The categories of `s` as a bit set over [`NAMES`].
pub fn of(s: &Spec) -> u32 {
    let mut c = group_category(s.group);
    let top = s.name.split('|').next().unwrap_or(s.name);
    // A subcommand's group-derived categories come from its own group; the exceptions are keyed
    // by the full name, or the container's name for the container itself.
    let key = if s.name.contains('|') { s.name } else { top };
    for &(name, extra) in EXTRA {
        if name == key {
            c |= extra;
        }
    }
    // COMMAND's subcommands are `@connection` in redis-server too.
    if top == "command" {
        c |= CONNECTION;
    }
    for &(name, without) in WITHOUT {
        if name == key {
            c &= !without;
        }
    }
    for (flag, cat) in [(WRITE, "write"), (READONLY, "read"), (PUBSUB, "pubsub"), (BLOCKING, "blocking")] {
        if s.has(flag) {
            c |= bit(cat);
        }
    }
    if s.has(ADMIN) {
        c |= bit("admin") | DANGEROUS;
    }
    c |= if s.has(FAST) { bit("fast") } else { bit("slow") };
    c
}

/// The names of the categories in `mask`, in bit order.
pub fn names(mask: u32) -> impl Iterator<Item = &'static str> {
    NAMES.iter().enumerate().filter(move |(i, _)| mask & (1 << i) != 0).map(|(_, n)| *n)
}
