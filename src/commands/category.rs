//! ACL command categories (`@read`, `@write`, `@dangerous`, …) of the commands in the table.
//!
//! One source for both users of categories: COMMAND INFO lists a command's categories, and ACL
//! rules (`+@read -@dangerous`) and `ACL CAT` select commands by them. A command redis-server
//! has takes redis-server's own list (the generated [`super::meta`]); one it lacks (CLIENT
//! SETINFO, cachette's own) gets what redis-server would imply from its flags and group.

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
const CONNECTION: u32 = bit("connection");

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

/// The categories of `s` as a bit set over [`NAMES`]: redis-server's own for the commands it
/// has ([`super::meta`]), derived from flags and group for the others.
pub fn of(s: &Spec) -> u32 {
    if let Some(m) = super::meta::meta(s.name) {
        return m.acl.iter().filter_map(|c| by_name(c.trim_start_matches('@').as_bytes())).fold(0, |a, b| a | b);
    }
    derived(s)
}

/// What redis-server implies from flags (write, readonly, admin, pubsub, fast, blocking) plus
/// the category of the command's group.
fn derived(s: &Spec) -> u32 {
    let mut c = group_category(s.group);
    for (flag, cat) in [(WRITE, "write"), (READONLY, "read"), (PUBSUB, "pubsub"), (BLOCKING, "blocking")] {
        if s.has(flag) {
            c |= bit(cat);
        }
    }
    if s.has(ADMIN) {
        c |= bit("admin") | bit("dangerous");
    }
    c |= if s.has(FAST) { bit("fast") } else { bit("slow") };
    c
}

/// The names of the categories in `mask`, in bit order.
pub fn names(mask: u32) -> impl Iterator<Item = &'static str> {
    NAMES.iter().enumerate().filter(move |(i, _)| mask & (1 << i) != 0).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_redis_servers_categories_or_derived_ones() {
        for s in crate::acl::command_ids() {
            let bits = of(s);
            assert_ne!(bits & (bit("fast") | bit("slow")), 0, "{} is fast or slow", s.name);
            if let Some(m) = super::super::meta::meta(s.name) {
                let named: Vec<String> = names(bits).map(|n| format!("@{n}")).collect();
                assert_eq!(named, m.acl, "{}: bit order is redis-server's order", s.name);
            }
        }
        assert_eq!(by_name(b"DANGEROUS"), Some(bit("dangerous")));
        assert_eq!(by_name(b"nosuch"), None);
    }
}
