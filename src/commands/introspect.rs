//! Diagnostics commands: SLOWLOG, LATENCY, MONITOR, DEBUG and MEMORY.
//!
//! The data they report is gathered elsewhere, on every command, by `commands::execute` into
//! `server::stats` (per-command counters, slow log, latency samples) and `server::monitor`
//! (MONITOR lines); these handlers only read, reset and format it as redis-server 7.0 does.
//! Where cachette has no counterpart for a redis-server figure (allocator internals, RDB sizes)
//! the reply keeps redis-server's shape and gives the nearest honest figure.

use std::sync::atomic::Ordering;

use super::arg::*;
use super::flags::*;
use super::{container, excerpt, int_arg, is, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::memory;
use crate::types::Value;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    container("slowlog", -2, "server", "2.2.12", "A container for slow log commands", SLOWLOG_SUBS),
    container("latency", -2, "server", "2.8.13", "A container for latency diagnostics commands", LATENCY_SUBS),
    container("memory", -2, "server", "4.0.0", "A container for memory diagnostics commands", MEMORY_SUBS),
    spec("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "", "Listen for all requests received by the server in real time", monitor),
    spec("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Depends on subcommand.", "A container for debugging commands", debug),
];

#[rustfmt::skip]
const SLOWLOG_SUBS: &[Spec] = &[
    spec("slowlog|get", -2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "O(N) where N is the number of entries returned", "Get the slow log's entries", slowlog_get).args(&[integer("count").optional()]),
    spec("slowlog|len", 2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "O(1)", "Get the slow log's length", slowlog_len),
    spec("slowlog|reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "O(N) where N is the number of entries in the slowlog", "Clear all entries from the slow log", slowlog_reset),
    spec("slowlog|help", 2, LOADING | STALE, (0, 0, 0), "server", "6.2.0", "O(1)", "Show helpful text about the different subcommands", slowlog_help),
];

#[rustfmt::skip]
const LATENCY_SUBS: &[Spec] = &[
    spec("latency|latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Return the latest latency samples for all events.", latency_latest),
    spec("latency|history", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Return timestamp-latency samples for the event.", latency_history).args(&[string("event")]),
    spec("latency|reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Reset latency data for one or more events.", latency_reset).args(&[string("event").optional().multiple()]),
    spec("latency|histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "7.0.0", "O(N) where N is the number of commands with latency information being retrieved.", "Return the cumulative distribution of latencies of a subset of commands or all.", latency_histogram).args(&[string("command").optional().multiple()]),
    spec("latency|doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Return a human readable latency analysis report.", latency_doctor),
    spec("latency|graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Return a latency graph for the event.", latency_graph).args(&[string("event")]),
    spec("latency|help", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "O(1)", "Show helpful text about the different subcommands.", latency_help),
];

#[rustfmt::skip]
const MEMORY_SUBS: &[Spec] = &[
    spec("memory|usage", -3, READONLY, (2, 2, 1), "server", "4.0.0", "O(N) where N is the number of samples.", "Estimate the memory usage of a key", memory_usage).args(&[key("key"), integer("count").token("SAMPLES").optional()]),
    spec("memory|stats", 2, 0, (0, 0, 0), "server", "4.0.0", "O(1)", "Show memory usage details", memory_stats),
    spec("memory|doctor", 2, 0, (0, 0, 0), "server", "4.0.0", "O(1)", "Outputs memory problems report", memory_doctor),
    spec("memory|malloc-stats", 2, 0, (0, 0, 0), "server", "4.0.0", "Depends on how much memory is allocated, could be slow", "Show allocator internal stats", memory_malloc_stats),
    spec("memory|purge", 2, 0, (0, 0, 0), "server", "4.0.0", "Depends on how much memory is allocated, could be slow", "Ask the allocator to release memory", memory_purge),
    spec("memory|help", 2, LOADING | STALE, (0, 0, 0), "server", "4.0.0", "O(1)", "Show helpful text about the different subcommands", memory_help),
];

// ---- SLOWLOG ----------------------------------------------------------------------------

fn slowlog_get(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(CmdError::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            excerpt(argv.get(1), 128)
        )));
    }
    let count = match argv.len() {
        3 => crate::types::string::parse_i64(argv.get(2))
            .filter(|&n| n >= -1)
            .ok_or_else(|| CmdError::err("ERR count should be greater than or equal to -1"))?,
        _ => 10,
    };
    let count = if count == -1 { usize::MAX } else { count as usize };
    let entries: Vec<_> = {
        let log = ctx.shared.stats.slowlog.lock().unwrap_or_else(|p| p.into_inner());
        log.entries.iter().take(count).cloned().collect()
    };
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time as i64);
        ctx.out.int(e.micros as i64);
        ctx.out.array(e.args.len());
        for a in &e.args {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let n = ctx.shared.stats.slowlog.lock().unwrap_or_else(|p| p.into_inner()).entries.len();
    ctx.out.int(n as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.shared.stats.slowlog.lock().unwrap_or_else(|p| p.into_inner()).reset();
    ctx.out.ok();
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

// ---- LATENCY ----------------------------------------------------------------------------

fn latency_latest(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let rows: Vec<(&str, u64, u64, u64)> = {
        let lat = ctx.shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
        lat.events.iter().filter_map(|(name, ev)| ev.samples.back().map(|&(t, ms)| (*name, t, ms, ev.max))).collect()
    };
    ctx.out.array(rows.len());
    for (name, t, ms, max) in rows {
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(t as i64);
        ctx.out.int(ms as i64);
        ctx.out.int(max as i64);
    }
    Ok(())
}

/// The samples of the event named `name` (empty when it has none).
fn samples(ctx: &Ctx<'_>, name: &[u8]) -> Vec<(u64, u64)> {
    let lat = ctx.shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
    lat.events
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|(_, ev)| ev.samples.iter().copied().collect())
        .unwrap_or_default()
}

fn latency_history(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let s = samples(ctx, argv.get(2));
    ctx.out.array(s.len());
    for (t, ms) in s {
        ctx.out.array(2);
        ctx.out.int(t as i64);
        ctx.out.int(ms as i64);
    }
    Ok(())
}

fn latency_reset(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut lat = ctx.shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
    let n = if argv.len() == 2 {
        let n = lat.events.len();
        lat.events.clear();
        n
    } else {
        let before = lat.events.len();
        let names: Vec<&[u8]> = argv.rest(2).collect();
        lat.events.retain(|k, _| !names.contains(&k.as_bytes()));
        before - lat.events.len()
    };
    drop(lat);
    ctx.out.int(n as i64);
    Ok(())
}

fn latency_histogram(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let specs = super::all_specs();
    let wanted: Vec<usize> = if argv.len() == 2 {
        (0..specs.len()).collect()
    } else {
        // Each command once, in the order asked; unknown names are skipped.
        let mut v = Vec::new();
        for name in argv.rest(2) {
            if let Some(i) = specs.iter().position(|s| s.name.as_bytes().eq_ignore_ascii_case(name)) {
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
        v
    };
    let rows: Vec<(&str, crate::server::stats::CmdTotals)> = wanted
        .into_iter()
        .map(|i| (specs[i].name, ctx.shared.stats.totals(i, true)))
        .filter(|(_, t)| t.hist.iter().any(|&n| n > 0))
        .collect();
    ctx.out.map(rows.len());
    for (name, t) in rows {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(t.calls as i64);
        ctx.out.bulk(b"histogram_usec");
        let buckets = t.power_of_two_buckets();
        ctx.out.map(buckets.len());
        for (us, n) in buckets {
            ctx.out.int(us as i64);
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

fn latency_doctor(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let text = if ctx.shared.stats.latency_threshold() == 0 {
        "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string()
    } else {
        let lat = ctx.shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
        if lat.events.is_empty() {
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".to_string()
        } else {
            let mut t = String::from(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
            );
            for (i, (name, ev)) in lat.events.iter().enumerate() {
                let n = ev.samples.len() as u64;
                let avg = ev.samples.iter().map(|s| s.1).sum::<u64>() / n.max(1);
                let dev = ev.samples.iter().map(|s| s.1.abs_diff(avg)).sum::<u64>() / n.max(1);
                let period = match (ev.samples.front(), ev.samples.back()) {
                    (Some(a), Some(b)) if n > 1 => (b.0 - a.0) as f64 / (n - 1) as f64,
                    _ => 1.0,
                };
                t.push_str(&format!(
                    "{}. {name}: {n} latency spikes (average {avg}ms, mean deviation {dev}ms, period {period:.2} sec). Worst all time event {}ms.\n",
                    i + 1,
                    ev.max
                ));
            }
            t.push_str("\nI have a few advices for you:\n\n- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
            t
        }
    };
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// LATENCY GRAPH: redis-server's header line and rule, then one column per sample (oldest
/// left): the sample's height as a bar of `#` scaled to 4 rows, and its age below.
fn latency_graph(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let name = argv.get(2);
    let s = samples(ctx, name);
    if s.is_empty() {
        return Err(CmdError::err(format!("ERR No samples available for event '{}'", excerpt(name, 128))));
    }
    let max_all = {
        let lat = ctx.shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
        lat.events.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, e)| e.max).unwrap_or(0)
    };
    let (hi, lo) = (s.iter().map(|x| x.1).max().unwrap_or(0), s.iter().map(|x| x.1).min().unwrap_or(0));
    let mut t = format!(
        "{} - high {hi} ms, low {lo} ms (all time high {max_all} ms)\n{}\n",
        String::from_utf8_lossy(name),
        "-".repeat(80)
    );
    const ROWS: u64 = 4;
    for row in (1..=ROWS).rev() {
        let line: String = s.iter().map(|&(_, ms)| if hi > 0 && ms * ROWS >= row * hi { '#' } else { ' ' }).collect();
        t.push_str(&line);
        t.push('\n');
    }
    let now = crate::server::unix_ms() / 1000;
    let ages: Vec<String> = s.iter().map(|&(at, _)| format!("{}s", now.saturating_sub(at))).collect();
    t.push_str(&ages.join(" "));
    t.push('\n');
    ctx.out.verbatim(b"txt", t.as_bytes());
    Ok(())
}

fn latency_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}

// ---- MONITOR ----------------------------------------------------------------------------

/// MONITOR: from now on the client receives every command the server runs (see
/// `server::monitor`); keyspace commands from it are refused, as from a replica.
fn monitor(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let info = &ctx.session.info;
    if !ctx.session.monitor {
        ctx.session.monitor = true;
        info.monitor.store(true, Ordering::Relaxed);
        ctx.shared.monitors.add(info.id, info.worker);
    }
    ctx.out.ok();
    Ok(())
}

/// RESET's part for this family: replies back on, out of MONITOR mode (NO-EVICT stays, as in
/// redis-server 7.0).
pub fn reset_client_state(ctx: &mut Ctx<'_>) {
    ctx.session.reply = super::ReplyMode::On;
    let info = &ctx.session.info;
    if ctx.session.monitor {
        ctx.session.monitor = false;
        info.monitor.store(false, Ordering::Relaxed);
        ctx.shared.monitors.remove(info.id);
    }
}

// ---- DEBUG ------------------------------------------------------------------------------

/// True when `enable-debug-command` lets this client use DEBUG.
fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    match ctx.shared.config().enable_debug_command {
        1 => true,
        2 => ctx.session.info.addr.ip().is_loopback(),
        _ => false,
    }
}

/// DEBUG: the subcommands that make sense for cachette (SLEEP, OBJECT, SET-ACTIVE-EXPIRE,
/// ERROR, LOG, RELOAD, HELP); the others answer the unknown-subcommand error.
fn debug(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if !debug_allowed(ctx) {
        return Err(CmdError::err("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."));
    }
    let sub = argv.get(1);
    match argv.len() {
        2 if is(sub, "HELP") => {
            super::server::help(ctx, "DEBUG", DEBUG_HELP);
            return Ok(());
        }
        3 if is(sub, "SLEEP") => {
            // redis-server reads the seconds with strtod and sleeps for 0 on garbage.
            let secs = crate::types::string::parse_f64(argv.get(2)).unwrap_or(0.0);
            let micros = (secs * 1e6).clamp(0.0, 3.6e9) as u64;
            std::thread::sleep(std::time::Duration::from_micros(micros));
            ctx.out.ok();
            return Ok(());
        }
        3 if is(sub, "SET-ACTIVE-EXPIRE") => {
            // redis-server reads the flag with atoi: anything but a non-zero number is 0.
            let on = crate::types::string::parse_i64(argv.get(2)).unwrap_or(0) != 0;
            ctx.shared.active_expire.store(on, Ordering::Relaxed);
            ctx.out.ok();
            return Ok(());
        }
        3 if is(sub, "OBJECT") => return debug_object(ctx, argv.get(2)),
        _ if is(sub, "RELOAD") => return debug_reload(ctx, argv),
        3 if is(sub, "ERROR") => return Err(CmdError::err(String::from_utf8_lossy(argv.get(2)).into_owned())),
        3 if is(sub, "LOG") => {
            let msg = format!("DEBUG LOG: {}", String::from_utf8_lossy(argv.get(2)));
            crate::server::log::log(crate::config::LogLevel::Warning, &msg);
            ctx.out.ok();
            return Ok(());
        }
        _ => {}
    }
    Err(CmdError::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        excerpt(sub, 128)
    )))
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, flush, load the file back (redis-server's
/// options; MERGE only matters to redis-server, whose load refuses duplicate keys without it —
/// here a loaded key always replaces one already present).
fn debug_reload(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (mut save, mut flush) = (true, true);
    for opt in argv.rest(2) {
        if is(opt, "NOSAVE") {
            save = false;
        } else if is(opt, "NOFLUSH") {
            flush = false;
        } else if !is(opt, "MERGE") {
            return Err(CmdError::err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."));
        }
    }
    crate::persist::debug_reload(ctx.shared, save, flush).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}

const DEBUG_HELP: &[&str] = &[
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

/// DEBUG OBJECT: redis-server's fields. `serializedlength` is the value's payload size (what
/// an RDB dump would carry before compression), `lru` the 24-bit LRU clock of the last access.
fn debug_object(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<(), CmdError> {
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(key);
    let mut l = engine.lock_one(&k);
    let Some(e) = l.peek(db, &k, now) else {
        return Err(CmdError::NoSuchKey);
    };
    let (encoding, payload) = match &e.value {
        Value::Str(s) => (super::keys::string_encoding(s, e.mc_bits), s.len()),
        Value::List(v) => (v.encoding(), e.value.heap_bytes()),
        Value::Hash(v) => (v.encoding(), e.value.heap_bytes()),
        Value::Set(v) => (v.encoding(), e.value.heap_bytes()),
        Value::ZSet(v) => (v.encoding(), e.value.heap_bytes()),
    };
    let idle = (now / 1000).saturating_sub(u64::from(e.lru));
    let text = format!(
        "Value at:{:p} refcount:1 encoding:{encoding} serializedlength:{payload} lru:{} lru_seconds_idle:{idle}",
        &e.value as *const Value,
        e.lru & 0x00FF_FFFF,
    );
    drop(l);
    ctx.out.simple(text.as_bytes());
    Ok(())
}

// ---- MEMORY -----------------------------------------------------------------------------

/// Bytes one key costs beyond its key and value bytes, about: its record header and padding
/// and its index slot (see `engine::db`).
const ENTRY_OVERHEAD: usize = 16;

/// MEMORY USAGE: the entry record, the key, and the value's heap bytes as its type counts them
/// (every element, so SAMPLES is validated and otherwise not needed).
fn memory_usage(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    match argv.len() {
        3 => {}
        5 if is(argv.get(3), "SAMPLES") => {
            if int_arg(argv.get(4))? < 0 {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    }
    let key = argv.get(2);
    let (db, now, engine) = (ctx.session.db, ctx.now, ctx.engine());
    let k = engine.hashed(key);
    let size = engine.lock_one(&k).peek(db, &k, now).as_deref().map(crate::engine::db::footprint);
    match size {
        Some(n) => ctx.out.int(n as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

/// MEMORY STATS: redis-server's fields in its order, with cachette's figures; allocator fields
/// come from the process's own accounting (`engine::memory`).
fn memory_stats(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let used = memory::used() as u64;
    let peak = (memory::peak() as u64).max(used);
    let rss = memory::rss() as u64;
    let sh = ctx.shared;
    let clients: u64 = sh
        .lock_clients()
        .values()
        .map(|c| (c.qbuf.load(Ordering::Relaxed) + c.obuf.load(Ordering::Relaxed)) as u64)
        .sum();
    let dbs = sh.config().databases.min(crate::engine::DATABASES);
    let mut per_db = Vec::new();
    let mut keys = 0u64;
    for db in 0..dbs {
        let (k, exp) = sh.engine.db_counts(db);
        if k > 0 {
            per_db.push((db, k as u64, exp as u64));
            keys += k as u64;
        }
    }
    let overhead_main: u64 = per_db.iter().map(|&(_, k, _)| k * ENTRY_OVERHEAD as u64).sum();
    let overhead_exp: u64 = per_db.iter().map(|&(_, _, e)| e * 8).sum();
    let overhead = clients + overhead_main + overhead_exp;
    let dataset = used.saturating_sub(overhead);
    let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let m = &mut ctx.out;
    m.map(27 + per_db.len());
    let int = |m: &mut cachette_resp::Encoder<'_>, k: &str, v: u64| {
        m.bulk(k.as_bytes());
        m.int(v as i64);
    };
    let dbl = |m: &mut cachette_resp::Encoder<'_>, k: &str, v: f64| {
        m.bulk(k.as_bytes());
        m.double(v);
    };
    int(m, "peak.allocated", peak);
    int(m, "total.allocated", used);
    int(m, "startup.allocated", 0);
    int(m, "replication.backlog", 0);
    int(m, "clients.slaves", 0);
    int(m, "clients.normal", clients);
    int(m, "cluster.links", 0);
    int(m, "aof.buffer", 0);
    int(m, "lua.caches", 0);
    int(m, "functions.caches", 0);
    for (db, k, e) in &per_db {
        m.bulk(format!("db.{db}").as_bytes());
        m.map(3);
        int(m, "overhead.hashtable.main", k * ENTRY_OVERHEAD as u64);
        int(m, "overhead.hashtable.expires", e * 8);
        int(m, "overhead.hashtable.slot-to-keys", 0);
    }
    int(m, "overhead.total", overhead);
    int(m, "keys.count", keys);
    int(m, "keys.bytes-per-key", used.checked_div(keys).unwrap_or(0));
    int(m, "dataset.bytes", dataset);
    dbl(m, "dataset.percentage", pct(dataset, used));
    dbl(m, "peak.percentage", pct(used, peak));
    int(m, "allocator.allocated", used);
    int(m, "allocator.active", used);
    int(m, "allocator.resident", rss);
    dbl(m, "allocator-fragmentation.ratio", 1.0);
    int(m, "allocator-fragmentation.bytes", 0);
    dbl(m, "allocator-rss.ratio", ratio(rss, used));
    int(m, "allocator-rss.bytes", rss.saturating_sub(used));
    dbl(m, "rss-overhead.ratio", 1.0);
    int(m, "rss-overhead.bytes", 0);
    dbl(m, "fragmentation", ratio(rss, used));
    int(m, "fragmentation.bytes", rss.saturating_sub(used));
    Ok(())
}

fn memory_doctor(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    // redis-server declines to judge an instance under 5 MB.
    let text = if memory::used() < 5 << 20 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
    };
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn memory_malloc_stats(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.verbatim(b"txt", b"Stats not supported for the current allocator");
    Ok(())
}

fn memory_purge(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.ok();
    Ok(())
}

fn memory_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(
        ctx,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}
