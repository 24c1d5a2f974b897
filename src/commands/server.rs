//! Server and introspection commands: TIME, COMMAND, CONFIG (GET, SET, RESETSTAT, REWRITE), INFO,
//! CLIENT.
//!
//! COMMAND derives everything from the command table, so a new command is documented the moment
//! it is added to its family's table.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::arg::*;
use super::flags::*;
use super::{container, excerpt, int_arg, is, lookup, spec, table, Argv, CmdError, Ctx, Spec};
use crate::engine::memory;
use crate::server::shared::unix_us;
use crate::server::shared::{ClientKind, ClientType};
use crate::server::ClientInfo;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("time", 1, LOADING | STALE | FAST, (0, 0, 0), "server", "2.6.0", "O(1)", "Return the current server time", time),
    spec("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, (0, 0, 0), "server", "1.0.0", "O(1)", "Asynchronously rewrite the append-only file", bgrewriteaof),
    spec("info", -1, LOADING | STALE, (0, 0, 0), "server", "1.0.0", "O(1)", "Get information and statistics about the server", info).args(&[string("section").optional().multiple()]),
    Spec {
        handler: command_all,
        flags: LOADING | STALE,
        complexity: "O(N) where N is the total number of Redis commands",
        ..container("command", -1, "server", "2.8.13", "Get array of Redis command details", COMMAND_SUBS)
    },
    container("config", -2, "server", "2.0.0", "A container for server configuration commands", CONFIG_SUBS),
    container("client", -2, "connection", "2.4.0", "A container for client connection commands", CLIENT_SUBS),
];

#[rustfmt::skip]
const COMMAND_SUBS: &[Spec] = &[
    spec("command|count", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Get total number of Redis commands", command_count),
    spec("command|info", -2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(N) where N is the number of commands to look up", "Get array of specific Redis command details, or all when no argument is given.", command_info).args(&[string("command-name").optional().multiple()]),
    spec("command|docs", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the number of commands to look up", "Get array of specific Redis command documentation", command_docs).args(&[string("command-name").optional().multiple()]),
    spec("command|list", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the total number of Redis commands", "Get an array of Redis command names", command_list).args(COMMAND_LIST_ARGS),
    spec("command|getkeysandflags", -4, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the number of arguments to the command", "Extract keys and access flags given a full Redis command", command_getkeysandflags),
    spec("command|getkeys", -4, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(N) where N is the number of arguments to the command", "Extract keys given a full Redis command", command_getkeys),
    spec("command|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "O(1)", "Show helpful text about the different subcommands", command_help),
];

#[rustfmt::skip]
const CONFIG_SUBS: &[Spec] = &[
    spec("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Get the values of configuration parameters", config_get).args(&[block("parameter", &[string("parameter")]).multiple()]),
    spec("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Set configuration parameters to the given values", config_set).args(&[block("parameter_value", &[string("parameter"), string("value")]).multiple()]),
    spec("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(1)", "Reset the stats returned by INFO", config_resetstat),
    spec("config|rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.0", "O(1)", "Rewrite the configuration file with the in memory configuration", config_rewrite),
    spec("config|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "O(1)", "Show helpful text about the different subcommands", config_help),
];

#[rustfmt::skip]
const CLIENT_SUBS: &[Spec] = &[
    spec("client|id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "O(1)", "Returns the client ID for the current connection", client_id),
    spec("client|getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "O(1)", "Get the current connection name", client_getname),
    spec("client|setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "O(1)", "Set the current connection name", client_setname).args(&[string("connection-name")]),
    spec("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "O(N) where N is the number of client connections", "Get the list of client connections", client_list).args(CLIENT_LIST_ARGS),
    spec("client|info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "O(1)", "Returns information about the current client connection.", client_info),
    spec("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "O(N) where N is the number of client connections", "Kill the connection of a client", client_kill).args(&[oneof("filter", &[string("ip:port").deprecated("2.8.12"), oneof("new-format", CLIENT_KILL_FILTERS).multiple()])]),
    spec("client|pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.9.50", "O(1)", "Stop processing commands from clients for some time", client_pause).args(&[integer("timeout"), oneof("mode", &[pure("WRITE"), pure("ALL")]).since("6.2.0").optional()]),
    spec("client|unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "O(N) Where N is the number of paused clients", "Resume processing of clients that were paused", client_unpause),
    spec("client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "7.0.0", "O(1)", "Set client eviction mode for the current connection", client_no_evict).args(&[oneof("enabled", &[pure("ON"), pure("OFF")])]),
    spec("client|reply", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "3.2.0", "O(1)", "Instruct the server whether to reply to commands", client_reply).args(&[oneof("on_off_skip", &[pure("ON"), pure("OFF"), pure("SKIP")])]),
    spec("client|unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "O(log N) where N is the number of client connections", "Unblock a client blocked in a blocking command from a different connection", client_unblock).args(&[integer("client-id"), oneof("timeout_error", &[pure("TIMEOUT"), pure("ERROR")]).optional()]),
    spec("client|tracking", -3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "O(1). Some options may introduce additional complexity.", "Enable or disable server assisted client side caching support", super::tracking::client_tracking).args(super::tracking::TRACKING_ARGS),
    spec("client|caching", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "O(1)", "Instruct the server about tracking or not keys in the next request", super::tracking::client_caching).args(super::tracking::CACHING_ARGS),
    spec("client|getredir", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "O(1)", "Get tracking notifications redirection client ID if any", super::tracking::client_getredir),
    spec("client|trackinginfo", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "O(1)", "Return information about server assisted client side caching for the current connection", super::tracking::client_trackinginfo),
    spec("client|help", 2, LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "O(1)", "Show helpful text about the different subcommands", client_help),
];

/// The filters of the new `CLIENT KILL <filter> <value> …` form.
#[rustfmt::skip]
const CLIENT_KILL_FILTERS: &[Arg] = &[
    integer("client-id").token("ID").since("2.8.12").optional(),
    oneof("normal_master_slave_pubsub", &[pure("NORMAL"), pure("MASTER").since("3.2.0"), pure("SLAVE"), pure("REPLICA").since("5.0.0"), pure("PUBSUB")]).token("TYPE").since("2.8.12").optional(),
    string("username").token("USER").optional(),
    string("ip:port").token("ADDR").optional(),
    string("ip:port").token("LADDR").since("6.2.0").optional(),
    string("yes/no").token("SKIPME").optional(),
];

/// `COMMAND LIST [FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]`
const COMMAND_LIST_ARGS: &[Arg] = &[oneof("filterby", COMMAND_LIST_FILTERS).token("FILTERBY").optional()];

const COMMAND_LIST_FILTERS: &[Arg] =
    &[string("module-name").token("MODULE"), string("category").token("ACLCAT"), pattern("pattern").token("PATTERN")];

/// `CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]`
const CLIENT_LIST_ARGS: &[Arg] = &[
    oneof("normal_master_replica_pubsub", &[pure("NORMAL"), pure("MASTER"), pure("REPLICA"), pure("PUBSUB")])
        .token("TYPE")
        .since("5.0.0")
        .optional(),
    block("id", &[integer("client-id").multiple()]).token("ID").since("6.2.0").optional(),
];

fn time(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let us = unix_us();
    ctx.out.array(2);
    ctx.out.bulk((us / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((us % 1_000_000).to_string().as_bytes());
    Ok(())
}

/// The reply of a container's HELP subcommand, in redis-server's layout.
pub(super) fn help(ctx: &mut Ctx<'_>, name: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes());
    for l in lines {
        ctx.out.simple(l.as_bytes());
    }
    ctx.out.simple(b"HELP");
    ctx.out.simple(b"    Prints this help.");
}

// ---- COMMAND ----------------------------------------------------------------------------

fn write_command_info(ctx: &mut Ctx<'_>, s: &Spec) {
    ctx.out.array(10);
    ctx.out.bulk(s.name.as_bytes());
    ctx.out.int(i64::from(s.arity));
    let names: Vec<&str> = NAMES.iter().filter(|(f, _)| s.has(*f)).map(|(_, n)| *n).collect();
    ctx.out.set(names.len());
    for n in names {
        ctx.out.simple(n.as_bytes());
    }
    ctx.out.int(i64::from(s.first_key));
    ctx.out.int(i64::from(s.last_key));
    ctx.out.int(i64::from(s.step));
    let cats = super::category::of(s);
    ctx.out.set(cats.count_ones() as usize);
    for c in super::category::names(cats) {
        ctx.out.simple(format!("@{c}").as_bytes());
    }
    let meta = super::meta::meta(s.name);
    let tips = meta.map_or(&[][..], |m| m.tips);
    ctx.out.set(tips.len());
    for t in tips {
        ctx.out.bulk(t.as_bytes());
    }
    let specs = meta.map_or(&[][..], |m| m.key_specs);
    ctx.out.set(specs.len());
    for ks in specs {
        write_key_spec(ctx, ks);
    }
    // redis-server answers a container's subcommands as an array, a plain command's as an
    // empty set.
    if s.subcommands.is_empty() {
        ctx.out.set(0);
    } else {
        ctx.out.array(s.subcommands.len());
        for sub in s.subcommands {
            write_command_info(ctx, sub);
        }
    }
}

/// One key specification, as COMMAND INFO shows it.
fn write_key_spec(ctx: &mut Ctx<'_>, ks: &super::meta::KeySpec) {
    use super::meta::{Begin, Find};
    let out = &mut ctx.out;
    out.map(3 + usize::from(!ks.notes.is_empty()));
    if !ks.notes.is_empty() {
        out.bulk(b"notes");
        out.bulk(ks.notes.as_bytes());
    }
    out.bulk(b"flags");
    out.set(ks.flags.len());
    for f in ks.flags {
        out.simple(f.as_bytes());
    }
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    match ks.begin {
        Begin::Index(i) => {
            out.bulk(b"index");
            out.bulk(b"spec");
            out.map(1);
            out.bulk(b"index");
            out.int(i64::from(i));
        }
        Begin::Keyword(k, from) => {
            out.bulk(b"keyword");
            out.bulk(b"spec");
            out.map(2);
            out.bulk(b"keyword");
            out.bulk(k.as_bytes());
            out.bulk(b"startfrom");
            out.int(i64::from(from));
        }
        Begin::Unknown => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    match ks.find {
        Find::Range(last, step, limit) => {
            out.bulk(b"range");
            out.bulk(b"spec");
            out.map(3);
            for (k, v) in [("lastkey", last), ("keystep", step), ("limit", limit)] {
                out.bulk(k.as_bytes());
                out.int(i64::from(v));
            }
        }
        Find::Keynum(idx, first, step) => {
            out.bulk(b"keynum");
            out.bulk(b"spec");
            out.map(3);
            for (k, v) in [("keynumidx", idx), ("firstkey", first), ("keystep", step)] {
                out.bulk(k.as_bytes());
                out.int(i64::from(v));
            }
        }
        Find::Unknown => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
}

/// Bare COMMAND: the COMMAND INFO of every command.
fn command_all(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.array(table().len());
    for s in table() {
        write_command_info(ctx, s);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.int(table().len() as i64);
    Ok(())
}

fn command_info(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() == 2 {
        ctx.out.array(table().len());
        for s in table() {
            write_command_info(ctx, s);
        }
        return Ok(());
    }
    ctx.out.array(argv.len() - 2);
    for name in argv.rest(2) {
        match lookup_full(name) {
            Some(s) => write_command_info(ctx, s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// One command's COMMAND DOCS entry, fields in redis-server 7.0's order (`arguments` before
/// `subcommands`, each only when there are any).
fn write_docs(ctx: &mut Ctx<'_>, s: &Spec) {
    let has_subs = !s.subcommands.is_empty();
    let has_args = !s.args.is_empty();
    let none = super::meta::Meta {
        acl: &[],
        tips: &[],
        key_specs: &[],
        doc_flags: &[],
        deprecated_since: "",
        replaced_by: "",
        history: &[],
    };
    let m = super::meta::meta(s.name).unwrap_or(&none);
    let fields = [
        !s.complexity.is_empty(),
        !m.doc_flags.is_empty(),
        !m.deprecated_since.is_empty(),
        !m.replaced_by.is_empty(),
        !m.history.is_empty(),
        has_args,
        has_subs,
    ];
    ctx.out.bulk(s.name.as_bytes());
    ctx.out.map(3 + fields.iter().filter(|&&f| f).count());
    ctx.out.bulk(b"summary");
    ctx.out.bulk(s.summary.as_bytes());
    ctx.out.bulk(b"since");
    ctx.out.bulk(s.since.as_bytes());
    ctx.out.bulk(b"group");
    ctx.out.bulk(s.group.as_bytes());
    if !s.complexity.is_empty() {
        ctx.out.bulk(b"complexity");
        ctx.out.bulk(s.complexity.as_bytes());
    }
    if !m.doc_flags.is_empty() {
        ctx.out.bulk(b"doc_flags");
        ctx.out.set(m.doc_flags.len());
        for f in m.doc_flags {
            ctx.out.simple(f.as_bytes());
        }
    }
    if !m.deprecated_since.is_empty() {
        ctx.out.bulk(b"deprecated_since");
        ctx.out.bulk(m.deprecated_since.as_bytes());
    }
    if !m.replaced_by.is_empty() {
        ctx.out.bulk(b"replaced_by");
        ctx.out.bulk(m.replaced_by.as_bytes());
    }
    if !m.history.is_empty() {
        ctx.out.bulk(b"history");
        ctx.out.set(m.history.len());
        for (version, change) in m.history {
            ctx.out.array(2);
            ctx.out.bulk(version.as_bytes());
            ctx.out.bulk(change.as_bytes());
        }
    }
    if has_args {
        ctx.out.bulk(b"arguments");
        write_args(ctx, s.args);
    }
    if has_subs {
        ctx.out.bulk(b"subcommands");
        ctx.out.map(s.subcommands.len());
        for sub in s.subcommands {
            write_docs(ctx, sub);
        }
    }
}

/// An `arguments` list: one map per argument with redis-server's fields in its order — name,
/// type, then key_spec_index, token, since, flags (a set) and the nested arguments of a oneof or
/// block, each only when it applies. redis-cli reads this shape to build its hints.
fn write_args(ctx: &mut Ctx<'_>, args: &[Arg]) {
    ctx.out.array(args.len());
    for a in args {
        let nested = matches!(a.kind, ArgKind::OneOf | ArgKind::Block);
        let present = [
            a.key_spec_index.is_some(),
            a.token.is_some(),
            a.since.is_some(),
            a.deprecated_since.is_some(),
            a.flags != 0,
            nested,
        ];
        ctx.out.map(2 + present.iter().filter(|&&x| x).count());
        ctx.out.bulk(b"name");
        ctx.out.bulk(a.name().as_bytes());
        ctx.out.bulk(b"type");
        ctx.out.bulk(a.kind.name().as_bytes());
        if let Some(i) = a.key_spec_index {
            ctx.out.bulk(b"key_spec_index");
            ctx.out.int(i64::from(i));
        }
        if let Some(t) = a.token {
            ctx.out.bulk(b"token");
            ctx.out.bulk(t.as_bytes());
        }
        if let Some(v) = a.since {
            ctx.out.bulk(b"since");
            ctx.out.bulk(v.as_bytes());
        }
        if let Some(v) = a.deprecated_since {
            ctx.out.bulk(b"deprecated_since");
            ctx.out.bulk(v.as_bytes());
        }
        if a.flags != 0 {
            let names: Vec<&str> = FLAG_NAMES.iter().filter(|(f, _)| a.flags & f != 0).map(|(_, n)| *n).collect();
            ctx.out.bulk(b"flags");
            ctx.out.set(names.len());
            for n in names {
                ctx.out.simple(n.as_bytes());
            }
        }
        if nested {
            ctx.out.bulk(b"arguments");
            write_args(ctx, a.args);
        }
    }
}

fn command_docs(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() == 2 {
        ctx.out.map(table().len());
        for s in table() {
            write_docs(ctx, s);
        }
        return Ok(());
    }
    let found: Vec<&Spec> = argv.rest(2).filter_map(lookup_full).collect();
    ctx.out.map(found.len());
    for s in found {
        write_docs(ctx, s);
    }
    Ok(())
}

fn command_list(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let names: Vec<&str> = match argv.len() {
        2 => table().iter().map(|s| s.name).collect(),
        5 if is(argv.get(2), "FILTERBY") => {
            let (kind, value) = (argv.get(3), argv.get(4));
            if is(kind, "PATTERN") {
                table()
                    .iter()
                    .filter(|s| crate::glob::glob_match(value, s.name.as_bytes(), true))
                    .map(|s| s.name)
                    .collect()
            } else if is(kind, "ACLCAT") {
                let want = super::category::by_name(value).unwrap_or(0);
                table().iter().filter(|s| super::category::of(s) & want != 0).map(|s| s.name).collect()
            } else if is(kind, "MODULE") {
                Vec::new()
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// A key's position in a command line, with the flags of the key spec that found it.
pub(crate) type KeyAndFlags = (usize, &'static [&'static str]);

/// The keys of the command line `args` (name first) by the command's key specifications, as
/// (position, flags of the spec that found it). None when a spec cannot be followed (its begin
/// or find is `unknown`, or the line is too short for it): the caller then falls back to the
/// table's key positions. Err when a key count points past the end of the line.
pub(crate) fn keys_by_specs(s: &Spec, args: &[&[u8]]) -> Result<Option<Vec<KeyAndFlags>>, CmdError> {
    use super::meta::{Begin, Find};
    let Some(m) = super::meta::meta(s.name) else { return Ok(None) };
    let argc = args.len() as i64;
    let mut keys = Vec::new();
    for ks in m.key_specs {
        let first = match ks.begin {
            Begin::Index(i) => i64::from(i),
            Begin::Keyword(word, from) => {
                let from = i64::from(from);
                let mut found = None;
                if from >= 0 {
                    found = (from..argc).find(|&i| is(args[i as usize], word));
                } else {
                    let mut i = argc + from;
                    while i > 0 {
                        if is(args[i as usize], word) {
                            found = Some(i);
                            break;
                        }
                        i -= 1;
                    }
                }
                match found {
                    Some(i) => i + 1,
                    None => continue, // the keyword is optional and absent: no keys from here
                }
            }
            Begin::Unknown => return Ok(None),
        };
        if first >= argc {
            continue;
        }
        let (start, last, step) = match ks.find {
            Find::Range(last, step, limit) => {
                let (last, limit) = (i64::from(last), i64::from(limit));
                let end = if last >= 0 {
                    first + last
                } else if limit <= 1 {
                    argc + last
                } else {
                    first + ((argc - first) / limit + last)
                };
                (first, end, i64::from(step).max(1))
            }
            Find::Keynum(idx, firstkey, step) => {
                let at = first + i64::from(idx);
                if at >= argc {
                    return Err(CmdError::err("ERR Invalid arguments specified for command"));
                }
                let n = crate::types::string::parse_i64(args[at as usize])
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| CmdError::err("ERR Invalid arguments specified for command"))?;
                let step = i64::from(step).max(1);
                let start = first + i64::from(firstkey);
                let end = start + (n - 1) * step;
                if end >= argc {
                    return Err(CmdError::err("ERR Invalid arguments specified for command"));
                }
                (start, end, step)
            }
            Find::Unknown => return Ok(None),
        };
        let mut i = start;
        while i <= last && i < argc {
            keys.push((i as usize, ks.flags));
            i += step;
        }
    }
    Ok(Some(keys))
}

/// The keys of `argv[2..]` with their flags, for COMMAND GETKEYS and GETKEYSANDFLAGS, with
/// redis-server's errors.
fn command_keys(argv: &Argv<'_>) -> Result<Vec<KeyAndFlags>, CmdError> {
    let Some(s) = lookup(argv.get(2)) else {
        return Err(CmdError::err("ERR Invalid command specified"));
    };
    // A container command is asked about through its subcommand (COMMAND GETKEYS object
    // encoding k).
    let s = if s.subcommands.is_empty() || argv.len() < 4 {
        s
    } else {
        super::lookup_sub(s, argv.get(3)).ok_or_else(|| CmdError::err("ERR Invalid command specified"))?
    };
    let argc = argv.len() - 2;
    if !s.arity_ok(argc) {
        return Err(CmdError::err("ERR Invalid number of arguments specified for command"));
    }
    let args: Vec<&[u8]> = argv.rest(2).collect();
    let keys = match keys_by_specs(s, &args)? {
        // SORT's STORE key has no key spec redis-server could follow (its spec is `unknown`);
        // like redis-server, ask the command's own key finder.
        _ if s.name == "sort" => {
            let flags = |i: usize| if i == 1 { &["RO", "access"][..] } else { &["OW", "update"][..] };
            s.all_key_positions(argc, |i| args[i]).into_iter().map(|k| (k, flags(k))).collect()
        }
        Some(k) if !s.has(MOVABLE_KEYS) || !k.is_empty() => k,
        _ => {
            let flags = super::meta::meta(s.name).and_then(|m| m.key_specs.first()).map_or(&[][..], |k| k.flags);
            s.all_key_positions(argc, |i| args[i]).into_iter().map(|k| (k, flags)).collect()
        }
    };
    if keys.is_empty() {
        return Err(CmdError::err("ERR The command has no key arguments"));
    }
    Ok(keys.into_iter().map(|(k, flags)| (k, variable_flags(s, &args, flags))).collect())
}

/// The flags of a key spec marked `variable_flags`, which depend on the arguments (redis-server
/// works them out per command, as here for its two such commands).
pub(crate) fn variable_flags(s: &Spec, args: &[&[u8]], flags: &'static [&'static str]) -> &'static [&'static str] {
    if !flags.contains(&"variable_flags") {
        return flags;
    }
    let any = |words: &[&str]| args.iter().skip(2).any(|a| words.iter().any(|w| is(a, w)));
    match s.name {
        "set" if any(&["GET"]) => &["RW", "access", "update"],
        "set" => &["OW", "update"],
        "bitfield" if any(&["SET", "INCRBY"]) => &["RW", "access", "update"],
        "bitfield" => &["RO", "access"],
        _ => flags,
    }
}

/// A command or subcommand by name (`get`, `config|get`), as COMMAND INFO and DOCS take them.
fn lookup_full(name: &[u8]) -> Option<&'static Spec> {
    if name.contains(&b'|') {
        return super::all_specs().iter().copied().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name));
    }
    lookup(name)
}

fn command_getkeys(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys = command_keys(argv)?;
    ctx.out.array(keys.len());
    for (k, _) in keys {
        ctx.out.bulk(argv.get(k + 2));
    }
    Ok(())
}

fn command_getkeysandflags(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let keys = command_keys(argv)?;
    ctx.out.array(keys.len());
    for (k, flags) in keys {
        ctx.out.array(2);
        ctx.out.bulk(argv.get(k + 2));
        ctx.out.set(flags.len());
        for f in flags {
            ctx.out.simple(f.as_bytes());
        }
    }
    Ok(())
}

fn command_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    help(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}

// ---- CONFIG -----------------------------------------------------------------------------

fn config_get(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let patterns: Vec<&[u8]> = argv.rest(2).collect();
    let pairs = ctx.shared.config().get_many(&patterns);
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..argv.len()).step_by(2).map(|i| (argv.get(i), argv.get(i + 1))).collect();
    let (level, events) = {
        let mut cfg = ctx.shared.config_mut();
        cfg.set_many(&pairs).map_err(|e| CmdError::err(e.message().to_string()))?;
        ctx.shared.stats.sync_config(&cfg);
        ctx.shared.engine.limits.configure(cfg.memory_settings());
        ctx.shared.aof.configure(&cfg);
        (cfg.loglevel, cfg.notify_keyspace_events)
    };
    crate::server::log::set_level(level);
    for (name, value) in &pairs {
        // requirepass is the default user's password, as in redis-server 7.
        if name.eq_ignore_ascii_case(b"requirepass") {
            ctx.shared.acl.set_requirepass(value);
        } else if name.eq_ignore_ascii_case(b"acllog-max-len") {
            ctx.shared.acl.log_trim(ctx.shared.config().acllog_max_len);
        }
    }
    super::notify::configure(ctx.shared, events);
    let limits = &ctx.shared.engine.limits;
    if pairs.iter().any(|(name, _)| name.eq_ignore_ascii_case(b"maxmemory")) && limits.over_limit() {
        crate::server::log::log(
            crate::config::LogLevel::Warning,
            &format!(
                "WARNING: the new maxmemory value set via CONFIG SET ({}) is smaller than the current memory usage ({}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy.",
                limits.maxmemory(),
                crate::engine::memory::used()
            ),
        );
        // As redis-server, evict right away rather than at the next command.
        let _ = ctx.shared.engine.make_room(ctx.now);
    }
    ctx.out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let c = &ctx.shared.counters;
    for a in [
        &c.connections_received,
        &c.rejected_connections,
        &c.commands_processed,
        &c.net_input_bytes,
        &c.net_output_bytes,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    let s = &ctx.engine().stats;
    for a in [&s.keyspace_hits, &s.keyspace_misses, &s.expired_keys] {
        a.store(0, Ordering::Relaxed);
    }
    ctx.shared.stats.reset();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE: the running configuration into the file the server started with (see
/// `config::rewrite` for redis-server's rules). The `user` lines are the live ACL users unless
/// an aclfile keeps them.
fn config_rewrite(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let cfg = ctx.shared.config().clone();
    let Some(path) = cfg.config_file.clone() else {
        return Err(CmdError::err("ERR The server is running without a config file"));
    };
    let users: Option<Vec<String>> =
        cfg.aclfile.is_empty().then(|| ctx.shared.acl.save_text().lines().map(str::to_owned).collect());
    if let Err(e) = crate::config::rewrite::rewrite_file(&path, &cfg, users.as_deref()) {
        // strerror's words, without Rust's " (os error N)".
        let text = e.to_string();
        let reason = text.split(" (os error").next().unwrap_or(&text).to_owned();
        crate::server::log::log(crate::config::LogLevel::Warning, &format!("CONFIG REWRITE failed: {reason}"));
        return Err(CmdError::err(format!("ERR Rewriting config file: {reason}")));
    }
    crate::server::log::log(crate::config::LogLevel::Notice, "CONFIG REWRITE executed with success.");
    ctx.out.ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ---- CLIENT -----------------------------------------------------------------------------

/// Refuses names redis-server refuses: anything outside '!'..='~'.
pub fn validate_client_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// Sets (or with an empty name clears) the connection's name.
pub fn set_client_name(ctx: &mut Ctx<'_>, name: &[u8]) {
    if let Ok(mut n) = ctx.session.info.name.lock() {
        *n = name.to_vec();
    }
}

fn client_id(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.int(ctx.session.info.id as i64);
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let name = ctx.session.info.name.lock().map(|n| n.clone()).unwrap_or_default();
    if name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&name);
    }
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    validate_client_name(argv.get(2))?;
    set_client_name(ctx, argv.get(2));
    ctx.out.ok();
    Ok(())
}

/// CLIENT LIST's `flags` field, letters in redis-server's order (`N` when none applies).
fn client_flags(shared: &crate::server::Shared, info: &ClientInfo) -> String {
    let mut f = String::new();
    if info.monitor.load(Ordering::Relaxed) {
        f.push('O');
    } else if info.kind() == ClientKind::Replica {
        f.push('S');
    }
    if info.kind() == ClientKind::Master {
        f.push('M');
    }
    if info.is_pubsub() {
        f.push('P');
    }
    if shared.blocking.is_blocked(info.id) {
        f.push('b');
    }
    let tracking = info.tracking.load(Ordering::Relaxed);
    if tracking & crate::server::shared::TRACKING_ON != 0 {
        f.push('t');
    }
    if tracking & crate::server::shared::TRACKING_BCAST != 0 {
        f.push('B');
    }
    if info.no_evict.load(Ordering::Relaxed) {
        f.push('e');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// One CLIENT LIST / CLIENT INFO line, with redis-server 7.0's fields in its order (ACL LOG
/// quotes it too). `multi` reads -1 until transactions keep that state where other threads
/// can see it.
pub(crate) fn client_line(shared: &crate::server::Shared, info: &ClientInfo, now_ms: u64) -> String {
    let name = info.name.lock().map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
    let cmd = info.last_cmd.lock().map(|c| *c).unwrap_or("NULL");
    let last = info.last_active_ms.load(Ordering::Relaxed);
    let idle = now_ms.saturating_sub(last) / 1000;
    let obuf = info.obuf.load(Ordering::Relaxed);
    let qbuf = info.qbuf.load(Ordering::Relaxed);
    let user = info.user.lock().map(|u| u.to_string()).unwrap_or_default();
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl={} oll=0 omem=0 tot-mem={} events={} cmd={} user={} redir={} resp={}\n",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        name,
        info.created.elapsed().as_secs(),
        idle,
        client_flags(shared, info),
        info.db.load(Ordering::Relaxed),
        info.subs[0].load(Ordering::Relaxed),
        info.subs[1].load(Ordering::Relaxed),
        info.subs[2].load(Ordering::Relaxed),
        qbuf,
        obuf,
        16384 + qbuf + obuf,
        if obuf > 0 { "rw" } else { "r" },
        cmd,
        user,
        info.redir.load(Ordering::Relaxed),
        info.resp.load(Ordering::Relaxed),
    )
}

/// Parses a TYPE argument, with redis-server's error.
fn client_type(t: &[u8]) -> Result<ClientType, CmdError> {
    ClientType::by_name(t).ok_or_else(|| CmdError::err(format!("ERR Unknown client type '{}'", excerpt(t, 128))))
}

/// The Redis clients (memcached connections are in `stats conns`), in id order.
fn redis_clients(ctx: &Ctx<'_>) -> Vec<std::sync::Arc<ClientInfo>> {
    ctx.shared.lock_clients().values().filter(|c| !c.memcache).cloned().collect()
}

fn client_list(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    // redis-server 7.0 takes either one TYPE filter or one ID list, never both.
    let mut of_type = None;
    let mut ids: Option<Vec<i64>> = None;
    if argv.len() == 4 && is(argv.get(2), "TYPE") {
        of_type = Some(client_type(argv.get(3))?);
    } else if argv.len() >= 4 && is(argv.get(2), "ID") {
        let parsed: Option<Vec<i64>> = argv.rest(3).map(crate::types::string::parse_i64).collect();
        ids = Some(parsed.ok_or_else(|| CmdError::err("ERR Invalid client ID"))?);
    } else if argv.len() != 2 {
        return Err(CmdError::Syntax);
    }
    let now = crate::server::unix_ms();
    let mut text = String::new();
    for c in redis_clients(ctx) {
        let listed = match &ids {
            Some(ids) => ids.contains(&(c.id as i64)),
            None => of_type.map_or(true, |t| t == c.client_type()),
        };
        if listed {
            text.push_str(&client_line(ctx.shared, &c, now));
        }
    }
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let info = ctx.session.info.clone();
    let line = client_line(ctx.shared, &info, crate::server::unix_ms());
    ctx.out.verbatim(b"txt", line.as_bytes());
    Ok(())
}

/// The filters of one CLIENT KILL; a client is killed when it matches all of them.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    of_type: Option<ClientType>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    skipme: bool,
}

impl KillFilter<'_> {
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        (!self.skipme || c.id != me)
            && self.id.map_or(true, |id| id == c.id)
            && self.of_type.map_or(true, |t| t == c.client_type())
            && self.addr.map_or(true, |a| a == c.addr.to_string().as_bytes())
            && self.laddr.map_or(true, |a| a == c.laddr.to_string().as_bytes())
            && self.user.map_or(true, |u| c.user.lock().is_ok_and(|n| n.as_bytes() == u))
    }
}

/// CLIENT KILL ip:port (the old form: +OK or an error) and CLIENT KILL <filter> <value> …
/// (the count of clients killed). The owner worker closes a killed connection; the caller's own
/// connection closes after this reply.
fn client_kill(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let old_form = argv.len() == 3;
    let mut f = KillFilter { skipme: !old_form, ..Default::default() };
    if old_form {
        f.addr = Some(argv.get(2));
    } else {
        let mut i = 2;
        while i < argv.len() {
            // As redis-server: filters are read in order, so `TYPE foo ID` is an unknown type
            // and only a filter missing its value is a syntax error.
            if i + 1 >= argv.len() {
                return Err(CmdError::Syntax);
            }
            let (opt, val) = (argv.get(i), argv.get(i + 1));
            if is(opt, "ID") {
                let id = crate::types::string::parse_i64(val)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| CmdError::err("ERR client-id should be greater than 0"))?;
                f.id = Some(id as u64);
            } else if is(opt, "TYPE") {
                f.of_type = Some(client_type(val)?);
            } else if is(opt, "ADDR") {
                f.addr = Some(val);
            } else if is(opt, "LADDR") {
                f.laddr = Some(val);
            } else if is(opt, "USER") {
                if ctx.shared.acl.user(val).is_none() {
                    return Err(CmdError::err(format!("ERR No such user '{}'", excerpt(val, 128))));
                }
                f.user = Some(val);
            } else if is(opt, "SKIPME") {
                f.skipme = if is(val, "yes") {
                    true
                } else if is(val, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
    }
    let me = ctx.session.info.id;
    let mut killed = 0;
    for c in redis_clients(ctx) {
        if !f.matches(&c, me) {
            continue;
        }
        killed += 1;
        if c.id == me {
            ctx.session.close_after_reply = true;
        } else {
            c.kill.store(true, Ordering::Release);
        }
    }
    if killed > 0 {
        ctx.shared.kill_generation.fetch_add(1, Ordering::AcqRel);
        ctx.shared.wake_all();
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::err("ERR No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    Ok(())
}

fn client_pause(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let ms = crate::types::string::parse_i64(argv.get(2))
        .ok_or_else(|| CmdError::err("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("ERR timeout is negative"));
    }
    let all = match argv.len() {
        3 => true,
        4 if is(argv.get(3), "ALL") => true,
        4 if is(argv.get(3), "WRITE") => false,
        _ => return Err(CmdError::err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let now = crate::server::unix_ms();
    ctx.shared.pause.pause(now.saturating_add(ms as u64), all, now);
    ctx.out.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.shared.pause.unpause();
    ctx.shared.wake_all();
    ctx.out.ok();
    Ok(())
}

/// An ON/OFF argument; anything else is a syntax error.
fn on_off(a: &[u8]) -> Result<bool, CmdError> {
    if is(a, "ON") {
        Ok(true)
    } else if is(a, "OFF") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn client_no_evict(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let on = on_off(argv.get(2))?;
    ctx.session.info.no_evict.store(on, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// CLIENT REPLY: ON answers +OK; OFF and SKIP answer nothing (`execute` drops their output).
fn client_reply(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    use super::ReplyMode;
    let mode = argv.get(2);
    if is(mode, "ON") {
        ctx.session.reply = ReplyMode::On;
        ctx.out.ok();
    } else if is(mode, "OFF") {
        ctx.session.reply = ReplyMode::Off;
    } else if is(mode, "SKIP") {
        // OFF stays OFF; otherwise only the next command is silent.
        if ctx.session.reply != ReplyMode::Off {
            ctx.session.reply = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

fn client_unblock(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let id = int_arg(argv.get(2))?;
    let error = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "TIMEOUT") => false,
        4 if is(argv.get(3), "ERROR") => true,
        _ => return Err(CmdError::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let done = id > 0 && ctx.shared.blocking.unblock(ctx.shared, id as u64, error);
    ctx.out.int(i64::from(done));
    Ok(())
}

fn client_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    help(
        ctx,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    );
    Ok(())
}

// ---- BGREWRITEAOF -----------------------------------------------------------------------

fn bgrewriteaof(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    if !ctx.shared.config().appendonly {
        // redis-server would write a base file anyway; cachette rewrites only a live AOF.
        return Err(CmdError::err("ERR cachette rewrites the append only file only while appendonly is yes"));
    }
    ctx.shared.aof.request_rewrite().map_err(CmdError::err)?;
    ctx.out.simple(b"Background append only file rewriting started");
    Ok(())
}

// ---- INFO -------------------------------------------------------------------------------

/// Every section in redis-server's order; `commandstats` and `latencystats` only on request or
/// with `all` / `everything`, as redis-server leaves them out of the default set.
const SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "commandstats", "errorstats", "latencystats", "keyspace"];
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

fn info(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let asked: Vec<String> = argv.rest(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = asked.iter().any(|w| w == "all" || w == "everything");
    let default = asked.is_empty() || asked.iter().any(|w| w == "default");
    let mut text = String::new();
    for section in SECTIONS {
        let wanted = all || asked.iter().any(|w| w == section) || (default && !NOT_DEFAULT.contains(section));
        if !wanted {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        info_section(ctx, section, &mut text);
    }
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// The per-command sections: `cmdstat_<name>:…` and `latency_percentiles_usec_<name>:…` for
/// every command called at least once.
fn command_sections(ctx: &Ctx<'_>, latency: bool, t: &mut String) {
    for (i, s) in super::all_specs().iter().enumerate() {
        let c = ctx.shared.stats.totals(i, latency);
        if c.calls == 0 && c.rejected == 0 && c.failed == 0 {
            continue;
        }
        if latency {
            if c.calls > 0 {
                let _ = write!(
                    t,
                    "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                    s.name,
                    c.percentile_us(50.0),
                    c.percentile_us(99.0),
                    c.percentile_us(99.9)
                );
            }
        } else {
            let per_call = if c.calls == 0 { 0.0 } else { c.usec as f64 / c.calls as f64 };
            let _ = write!(
                t,
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                s.name, c.calls, c.usec, c.rejected, c.failed
            );
        }
    }
}

fn info_section(ctx: &Ctx<'_>, section: &str, t: &mut String) {
    let sh = ctx.shared;
    let cfg = sh.config();
    let c = &sh.counters;
    let st = &sh.engine.stats;
    match section {
        "server" => {
            let _ = write!(
                t,
                "# Server\r\nredis_version:{}\r\ncachette_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nmemcache_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nworker_threads:{}\r\n",
                super::connection::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                sh.run_id,
                sh.tcp_port,
                sh.memcache_port,
                unix_us(),
                sh.uptime_secs(),
                sh.uptime_secs() / 86400,
                cfg.hz,
                cfg.hz,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                cfg.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                cfg.threads,
            );
        }
        "clients" => {
            let _ = write!(
                t,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                c.connected_clients.load(Ordering::Relaxed),
                cfg.maxclients,
                sh.blocking.blocked_clients(),
            );
        }
        "memory" => {
            let used = memory::used();
            let rss = memory::rss();
            let peak = memory::peak();
            let total = memory::total_system();
            let max = sh.engine.limits.maxmemory();
            let _ = write!(
                t,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\n",
                memory::human(used),
                memory::human(rss),
                memory::human(peak),
                memory::human(total),
                memory::human(max as usize),
                sh.engine.limits.policy().name(),
                if used > 0 { rss as f64 / used as f64 } else { 0.0 },
            );
        }
        "stats" => {
            let _ = write!(
                t,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\n",
                c.connections_received.load(Ordering::Relaxed),
                c.commands_processed.load(Ordering::Relaxed),
                c.net_input_bytes.load(Ordering::Relaxed),
                c.net_output_bytes.load(Ordering::Relaxed),
                c.rejected_connections.load(Ordering::Relaxed),
                st.expired_keys.load(Ordering::Relaxed),
                sh.engine.limits.evicted_keys.load(Ordering::Relaxed),
                st.keyspace_hits.load(Ordering::Relaxed),
                st.keyspace_misses.load(Ordering::Relaxed),
                sh.stats.total_errors(),
            );
            let (channels, patterns, shard) = sh.pubsub.sizes();
            let (keys, items, prefixes) = sh.tracking.sizes();
            let _ = write!(
                t,
                "pubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:{shard}\r\ntracking_total_keys:{keys}\r\ntracking_total_items:{items}\r\ntracking_total_prefixes:{prefixes}\r\n"
            );
        }
        "persistence" => {
            sh.persist.info(st.dirty.load(Ordering::Relaxed), t);
            sh.aof.info(&cfg, t);
        }
        "commandstats" => {
            t.push_str("# Commandstats\r\n");
            drop(cfg);
            command_sections(ctx, false, t);
        }
        "latencystats" => {
            t.push_str("# Latencystats\r\n");
            drop(cfg);
            command_sections(ctx, true, t);
        }
        "errorstats" => {
            t.push_str("# Errorstats\r\n");
            for (code, n) in sh.stats.error_counts() {
                let _ = write!(t, "errorstat_{code}:count={n}\r\n");
            }
        }
        "keyspace" => {
            t.push_str("# Keyspace\r\n");
            let dbs = cfg.databases.min(crate::engine::DATABASES);
            drop(cfg);
            for db in 0..dbs {
                let (keys, expires) = sh.engine.db_counts(db);
                if keys > 0 {
                    let _ = write!(t, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(name: &'static str, line: &[&str]) -> Vec<(String, Vec<&'static str>)> {
        // A spec of that name is enough: the key specs come from `meta` by name.
        let s: &'static Spec = Box::leak(Box::new(spec(name, -1, 0, (0, 0, 0), "", "", "", "", |_, _| Ok(()))));
        let args: Vec<&[u8]> = line.iter().map(|a| a.as_bytes()).collect();
        let found = keys_by_specs(s, &args).expect("valid").expect("followable");
        found.into_iter().map(|(i, f)| (line[i].to_string(), f.to_vec())).collect()
    }

    #[test]
    fn key_specs_find_keys_after_a_keyword_and_with_a_limit() {
        // XREAD's keys follow STREAMS and take half of what is left (limit 2).
        let got = keys("xread", &["xread", "COUNT", "2", "streams", "a", "b", "0", "0"]);
        assert_eq!(got, [("a".into(), vec!["RO", "access"]), ("b".into(), vec!["RO", "access"])]);
        // GEORADIUS: the source key, then the STORE target found by its keyword.
        let line = ["georadius", "src", "0", "0", "1", "km", "STORE", "dst"];
        let got: Vec<String> = keys("georadius", &line).into_iter().map(|k| k.0).collect();
        assert_eq!(got, ["src", "dst"]);
        let got: Vec<String> = keys("georadius", &line[..6]).into_iter().map(|k| k.0).collect();
        assert_eq!(got, ["src"], "an absent optional keyword finds nothing");
    }

    #[test]
    fn key_specs_count_keys_from_numkeys_and_refuse_counts_past_the_end() {
        let got: Vec<String> =
            keys("zunionstore", &["zunionstore", "d", "2", "a", "b"]).into_iter().map(|k| k.0).collect();
        assert_eq!(got, ["d", "a", "b"]);
        let s = lookup(b"zunionstore").expect("zunionstore");
        let args: Vec<&[u8]> = vec![b"zunionstore", b"d", b"5", b"a"];
        assert!(keys_by_specs(s, &args).is_err());
    }

    /// Runs one command as client `me` against `shared`; the reply bytes.
    fn run_as(shared: &crate::server::Shared, me: &std::sync::Arc<ClientInfo>, args: &[&str]) -> String {
        let mut line = Vec::new();
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        crate::engine::effects::encode(&mut line, &argv);
        let mut parsed = cachette_resp::Args::new();
        assert!(matches!(
            cachette_resp::parse_request(&line, &Default::default(), &mut parsed),
            Ok(cachette_resp::Status::Complete(_))
        ));
        let mut session = super::super::Session::new(me.clone());
        session.authenticated = true;
        let mut out = Vec::new();
        super::super::execute(shared, &mut session, &super::super::Argv::new(&line, &parsed), &mut out, 0);
        String::from_utf8(out).expect("utf-8")
    }

    /// The replication kinds the replication code sets show in CLIENT LIST flags and select
    /// clients for CLIENT LIST / CLIENT KILL TYPE; a monitor stays a normal client.
    #[test]
    fn client_kinds_show_and_select_as_in_redis() {
        use crate::server::shared::ClientKind;
        let shared = crate::server::Shared::new(crate::config::Config::default());
        let client = |id: u64| shared.register_client(ClientInfo::for_test(id, 2, 0));
        let (me, normal, replica, master, subscriber, monitor) =
            (client(1), client(2), client(3), client(4), client(5), client(6));
        replica.set_kind(ClientKind::Replica);
        master.set_kind(ClientKind::Master);
        master.subs[0].store(1, Ordering::Relaxed);
        subscriber.subs[2].store(1, Ordering::Relaxed);
        monitor.monitor.store(true, Ordering::Relaxed);
        let flags = |c: &ClientInfo| client_flags(&shared, c);
        let got: Vec<String> = [&me, &replica, &master, &subscriber, &monitor].iter().map(|c| flags(c)).collect();
        assert_eq!(got, ["N", "S", "MP", "P", "O"]);

        let ids = |reply: String| -> Vec<String> {
            reply.lines().filter_map(|l| l.split(' ').next()?.strip_prefix("id=").map(str::to_owned)).collect()
        };
        assert_eq!(ids(run_as(&shared, &me, &["CLIENT", "LIST", "TYPE", "replica"])), ["3"]);
        assert_eq!(ids(run_as(&shared, &me, &["CLIENT", "LIST", "TYPE", "slave"])), ["3"]);
        assert_eq!(ids(run_as(&shared, &me, &["CLIENT", "LIST", "TYPE", "master"])), ["4"]);
        assert_eq!(ids(run_as(&shared, &me, &["CLIENT", "LIST", "TYPE", "pubsub"])), ["5"]);
        assert_eq!(ids(run_as(&shared, &me, &["CLIENT", "LIST", "TYPE", "normal"])), ["1", "2", "6"]);

        assert_eq!(run_as(&shared, &me, &["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
        assert!(master.kill.load(Ordering::Acquire));
        assert_eq!(run_as(&shared, &me, &["CLIENT", "KILL", "TYPE", "slave", "ID", "2"]), ":0\r\n");
        assert_eq!(run_as(&shared, &me, &["CLIENT", "KILL", "TYPE", "replica", "ID", "3"]), ":1\r\n");
        // SKIPME yes by default: the sender is not counted.
        assert_eq!(run_as(&shared, &me, &["CLIENT", "KILL", "TYPE", "normal"]), ":2\r\n");
        assert!(normal.kill.load(Ordering::Acquire) && monitor.kill.load(Ordering::Acquire));
        assert!(!me.kill.load(Ordering::Acquire) && !subscriber.kill.load(Ordering::Acquire));
    }

    #[test]
    fn set_and_bitfield_flags_depend_on_their_arguments() {
        let set = lookup(b"set").expect("set");
        let spec_flags = &["RW", "access", "update", "variable_flags"][..];
        assert_eq!(variable_flags(set, &[b"set", b"k", b"v"], spec_flags), ["OW", "update"]);
        assert_eq!(variable_flags(set, &[b"set", b"k", b"v", b"get"], spec_flags), ["RW", "access", "update"]);
        let bf = lookup(b"bitfield").expect("bitfield");
        assert_eq!(variable_flags(bf, &[b"bitfield", b"k", b"get", b"u8", b"0"], spec_flags), ["RO", "access"]);
    }
}
