//! Server and introspection commands: TIME, COMMAND, CONFIG, INFO, CLIENT.
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

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("time", 1, LOADING | STALE | FAST, (0, 0, 0), "server", "2.6.0", "O(1)", "Returns the server time.", time),
    spec("bgrewriteaof", 1, ADMIN | NOSCRIPT, (0, 0, 0), "server", "1.0.0", "O(1)", "Asynchronously rewrite the append-only file", bgrewriteaof),
    spec("info", -1, LOADING | STALE, (0, 0, 0), "server", "1.0.0", "O(1)", "Returns information and statistics about the server.", info).args(&[string("section").optional().multiple()]),
    Spec {
        handler: command_all,
        ..container("command", -1, "server", "2.8.13", "Returns detailed information about all commands.", COMMAND_SUBS)
    },
    container("config", -2, "server", "2.0.0", "A container for server configuration commands.", CONFIG_SUBS),
    container("client", -2, "connection", "2.4.0", "A container for client connection commands.", CLIENT_SUBS),
];

#[rustfmt::skip]
const COMMAND_SUBS: &[Spec] = &[
    spec("command|count", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Returns a count of commands.", command_count),
    spec("command|info", -2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(N) where N is the number of commands to look up", "Returns information about one, multiple or all commands.", command_info).args(&[string("command-name").optional().multiple()]),
    spec("command|docs", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the number of commands to look up", "Returns documentary information about one, multiple or all commands.", command_docs).args(&[string("command-name").optional().multiple()]),
    spec("command|list", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the total number of Redis commands", "Returns a list of command names.", command_list).args(COMMAND_LIST_ARGS),
    spec("command|getkeys", -4, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(N) where N is the number of arguments to the command", "Extracts the key names from an arbitrary command.", command_getkeys),
    spec("command|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", command_help),
];

#[rustfmt::skip]
const CONFIG_SUBS: &[Spec] = &[
    spec("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Returns the effective values of configuration parameters.", config_get).args(&[block("parameter", &[string("parameter")]).multiple()]),
    spec("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Sets configuration parameters in-flight.", config_set).args(&[block("parameter_value", &[string("parameter"), string("value")]).multiple()]),
    spec("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "O(1)", "Resets the server's statistics.", config_resetstat),
    spec("config|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", config_help),
];

#[rustfmt::skip]
const CLIENT_SUBS: &[Spec] = &[
    spec("client|id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "O(1)", "Returns the unique client ID of the connection.", client_id),
    spec("client|getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "O(1)", "Returns the name of the connection.", client_getname),
    spec("client|setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "O(1)", "Sets the connection name.", client_setname).args(&[string("connection-name")]),
    spec("client|setinfo", 4, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "7.2.0", "O(1)", "Sets information specific to the client or connection.", client_setinfo).args(CLIENT_SETINFO_ARGS),
    spec("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "O(N) where N is the number of client connections", "Lists open connections.", client_list).args(CLIENT_LIST_ARGS),
    spec("client|info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "O(1)", "Returns information about the connection.", client_info),
    spec("client|help", 2, LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "O(1)", "Returns helpful text about the different subcommands.", client_help),
];

/// `COMMAND LIST [FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]`
const COMMAND_LIST_ARGS: &[Arg] = &[oneof("filterby", COMMAND_LIST_FILTERS).token("FILTERBY").optional()];

const COMMAND_LIST_FILTERS: &[Arg] =
    &[string("module-name").token("MODULE"), string("category").token("ACLCAT"), pattern("pattern").token("PATTERN")];

/// `CLIENT SETINFO LIB-NAME libname|LIB-VER libver` (redis-server 7.2 spells the tokens in
/// lower case).
const CLIENT_SETINFO_ARGS: &[Arg] =
    &[oneof("attr", &[string("libname").token("lib-name"), string("libver").token("lib-ver")])];

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
    ctx.out.simple(b"    Print this help.");
}

// ---- COMMAND ----------------------------------------------------------------------------

/// ACL categories redis-server would give a command, derived from its flags and group.
fn categories(s: &Spec) -> Vec<&'static str> {
    let mut c = Vec::new();
    if s.has(WRITE) {
        c.push("@write");
    }
    if s.has(READONLY) {
        c.push("@read");
    }
    let group = match s.group {
        "generic" => "@keyspace",
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "bitmap" => "@bitmap",
        "hyperloglog" => "@hyperloglog",
        "connection" => "@connection",
        "server" => "@admin",
        _ => "",
    };
    if s.has(ADMIN) {
        c.push("@admin");
        c.push("@dangerous");
    } else if !group.is_empty() && group != "@admin" {
        c.push(group);
    }
    c.push(if s.has(FAST) { "@fast" } else { "@slow" });
    if s.has(BLOCKING) {
        c.push("@blocking");
    }
    // Redis lists categories in bit order, and @transaction comes after @fast/@slow.
    if s.group == "transactions" {
        c.push("@transaction");
    }
    c
}

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
    let cats = categories(s);
    ctx.out.set(cats.len());
    for c in cats {
        ctx.out.simple(c.as_bytes());
    }
    ctx.out.set(0); // tips
    ctx.out.array(0); // key specs: first/last/step above describe the keys
    ctx.out.array(s.subcommands.len());
    for sub in s.subcommands {
        write_command_info(ctx, sub);
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
        match lookup(name) {
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
    ctx.out.bulk(s.name.as_bytes());
    ctx.out.map(4 + usize::from(has_args) + usize::from(has_subs));
    ctx.out.bulk(b"summary");
    ctx.out.bulk(s.summary.as_bytes());
    ctx.out.bulk(b"since");
    ctx.out.bulk(s.since.as_bytes());
    ctx.out.bulk(b"group");
    ctx.out.bulk(s.group.as_bytes());
    ctx.out.bulk(b"complexity");
    ctx.out.bulk(s.complexity.as_bytes());
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
        let present = [a.key_spec_index.is_some(), a.token.is_some(), a.since.is_some(), a.flags != 0, nested];
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
    let found: Vec<&Spec> = argv.rest(2).filter_map(lookup).collect();
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
                let want = format!("@{}", String::from_utf8_lossy(value).to_ascii_lowercase());
                table().iter().filter(|s| categories(s).contains(&want.as_str())).map(|s| s.name).collect()
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

fn command_getkeys(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let Some(s) = lookup(argv.get(2)) else {
        return Err(CmdError::err("ERR Invalid command specified"));
    };
    let argc = argv.len() - 2;
    if !s.arity_ok(argc) {
        return Err(CmdError::err("ERR Invalid number of arguments specified for command"));
    }
    let keys = s.all_key_positions(argc, |i| argv.get(i + 2));
    if keys.is_empty() {
        return Err(CmdError::err("ERR The command has no key arguments"));
    }
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(argv.get(k + 2));
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
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
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
    let level = {
        let mut cfg = ctx.shared.config_mut();
        cfg.set_many(&pairs).map_err(|e| CmdError::err(e.message().to_string()))?;
        ctx.shared.engine.limits.configure(cfg.memory_settings());
        cfg.loglevel
    };
    crate::server::log::set_level(level);
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

fn client_setinfo(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (attr, value) = (argv.get(2), argv.get(3));
    let lib = is(attr, "LIB-NAME");
    if !lib && !is(attr, "LIB-VER") {
        return Err(CmdError::err(format!("ERR Unrecognized option '{}'", excerpt(attr, 128))));
    }
    if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            if lib { "lib-name" } else { "lib-ver" }
        )));
    }
    if let Ok(mut l) = ctx.session.info.lib.lock() {
        if lib {
            l.0 = value.to_vec();
        } else {
            l.1 = value.to_vec();
        }
    }
    ctx.out.ok();
    Ok(())
}

fn client_line(info: &crate::server::ClientInfo, now_ms: u64) -> String {
    let name = info.name.lock().map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
    let cmd = info.last_cmd.lock().map(|c| *c).unwrap_or("NULL");
    let last = info.last_active_ms.load(Ordering::Relaxed);
    let idle = now_ms.saturating_sub(last) / 1000;
    let obuf = info.obuf.load(Ordering::Relaxed);
    let qbuf = info.qbuf.load(Ordering::Relaxed);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl={} oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={}\n",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        name,
        info.created.elapsed().as_secs(),
        idle,
        info.db.load(Ordering::Relaxed),
        qbuf,
        obuf,
        16384 + qbuf + obuf,
        cmd,
        info.resp.load(Ordering::Relaxed),
    )
}

fn client_list(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut ids: Option<Vec<u64>> = None;
    let mut only_type: Option<bool> = None; // Some(memcache?) filter
    let mut i = 2;
    while i < argv.len() {
        if is(argv.get(i), "TYPE") && i + 1 < argv.len() {
            let t = argv.get(i + 1);
            only_type = Some(if is(t, "normal") {
                false
            } else if is(t, "master") || is(t, "replica") || is(t, "slave") || is(t, "pubsub") {
                true
            } else {
                return Err(CmdError::err(format!("ERR Unknown client type '{}'", excerpt(t, 128))));
            });
            i += 2;
        } else if is(argv.get(i), "ID") && i + 1 < argv.len() {
            let mut v = Vec::new();
            for a in argv.rest(i + 1) {
                let id = int_arg(a).ok().filter(|&n| n > 0).ok_or_else(|| CmdError::err("ERR Invalid client ID"))?;
                v.push(id as u64);
            }
            ids = Some(v);
            i = argv.len();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut text = String::new();
    let clients: Vec<_> = ctx.shared.lock_clients().values().cloned().collect();
    for c in clients {
        if c.memcache {
            continue; // CLIENT LIST shows Redis clients; memcached ones are in `stats conns`.
        }
        if only_type == Some(true) {
            continue;
        }
        if let Some(ids) = &ids {
            if !ids.contains(&c.id) {
                continue;
            }
        }
        text.push_str(&client_line(&c, crate::server::unix_ms()));
    }
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let info = ctx.session.info.clone();
    let line = client_line(&info, crate::server::unix_ms());
    ctx.out.verbatim(b"txt", line.as_bytes());
    Ok(())
}

fn client_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    help(
        ctx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [options ...]",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr.",
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

const SECTIONS: &[&str] = &["server", "clients", "memory", "persistence", "stats", "keyspace"];

fn info(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut wanted: Vec<String> = argv.rest(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default") {
        wanted = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let mut text = String::new();
    for section in SECTIONS {
        if !wanted.iter().any(|w| w == section) {
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
        "persistence" => {
            t.push_str("# Persistence\r\nloading:0\r\nasync_loading:0\r\n");
            sh.aof.info(&cfg, t);
        }
        "stats" => {
            let _ = write!(
                t,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n",
                c.connections_received.load(Ordering::Relaxed),
                c.commands_processed.load(Ordering::Relaxed),
                c.net_input_bytes.load(Ordering::Relaxed),
                c.net_output_bytes.load(Ordering::Relaxed),
                c.rejected_connections.load(Ordering::Relaxed),
                st.expired_keys.load(Ordering::Relaxed),
                sh.engine.limits.evicted_keys.load(Ordering::Relaxed),
                st.keyspace_hits.load(Ordering::Relaxed),
                st.keyspace_misses.load(Ordering::Relaxed),
            );
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
