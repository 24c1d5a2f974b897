//! The command line: `cachette [CONFIG_FILE] [OPTIONS]`, in redis-server's dialect plus a few
//! of memcached's short flags.
//!
//! ```text
//! cachette /etc/cachette.conf --port 7000 --bind 127.0.0.1 -::1 --loglevel verbose -t 8
//!          \________________/ \_________/ \_________________/ \________________/ \__/
//!           config file,       one directive line per `--name`, applied in order  memcached
//!           read first         after the file (so they override it)               short flag
//! ```
//!
//! As in redis-server, a first argument that does not start with `-` is the config file, and
//! `--name` followed by arguments is the config-file line `name arguments…` for *any* directive in
//! the table. The token right after a bare `--name` is always its argument, even if it starts with
//! `--` or `-` (so `--bind -::1` works); later tokens join the same line until the next `--name`.
//! `--name=value` and `"--name value"` (one shell word) are accepted too.
//!
//! memcached's short flags map onto the same directives, so a memcached command line starts
//! cachette unchanged: `-p` memcache-port, `-l ADDR[,ADDR…]` bind, `-m MB` maxmemory, `-M`
//! maxmemory-policy noeviction, `-c` maxclients, `-t` threads, `-b` tcp-backlog, `-I SIZE`
//! memcache-item-size-max (`k`/`m` mean KiB/MiB as in memcached), `-C` memcache-cas no, `-A`
//! memcache-enable-shutdown yes, `-B` memcache-protocol, `-S` memcache-sasl yes, `-v`/`-vv` loglevel verbose/debug,
//! `-o idle_timeout=N` timeout (other `-o` options that only tune memcached's internals are
//! accepted and ignored). `-U 0` is accepted; UDP itself is refused with a message, as are
//! memcached's flags that have no counterpart (`-d`, `-u`, `-s` …). `-p` is memcached's: redis-server
//! has no short port flag (`redis-cli -p` is a client option). For the same reason `-v` is
//! memcached's verbosity and `-V` (or `--version`) prints the version.
//!
//! `--memcached-compat` applies memcached's defaults first (no RESP listener, memcached port
//! 11211, `-m 64` with LRU eviction, `-c 1024`, `-t 4`, `-b 1024`) except its listening on
//! every interface (cachette keeps `bind 127.0.0.1`); the config file and the other flags still
//! override them.
//!
//! clap owns `--help` and `--version` and documents the main flags, with help text and defaults
//! taken from the directive table; parsing itself goes through the table for every directive, so
//! `--port` and `--hz` take exactly the same path as the config file.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

use super::file::{apply_line, load_file};
use super::splitargs::split_args;
use super::table::{lookup, DIRECTIVES};
use super::Config;

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Start the server with this configuration (boxed: it is large, and the other variant
    /// small).
    Run(Box<Config>),
    /// Print this text (`--help` / `--version`) to standard output and exit successfully.
    Print(String),
}

/// Parses the command line (including `argv[0]`) and reads the config file it names, exiting the
/// process after printing for `--help` and `--version` (as clap-based programs do). Errors are one
/// line, without a "cachette:" prefix.
pub fn from_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Config, String> {
    match parse_args(args)? {
        Invocation::Run(config) => Ok(*config),
        Invocation::Print(text) => {
            // Not print!: that panics on a closed pipe (`cachette --help | head -1`).
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            std::process::exit(0)
        }
    }
}

/// [`from_args`] without the exit: tells the caller what to print instead.
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Invocation, String> {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let (config_file, rest) = match args.split_first() {
        Some((first, _)) if first.as_encoded_bytes() == b"-" => {
            return Err("reading the configuration from standard input ('-') is not supported".to_owned());
        }
        Some((first, rest)) if !first.as_encoded_bytes().starts_with(b"-") => (Some(PathBuf::from(first)), rest),
        _ => (None, &args[..]),
    };
    let lines = match split_command_line(rest)? {
        Split::Lines(lines) => lines,
        Split::Help => return Ok(Invocation::Print(command().render_help().to_string())),
        Split::Version => return Ok(Invocation::Print(command().render_version().to_string())),
    };

    let mut config = Config::default();
    if rest.iter().any(|a| a == "--memcached-compat") {
        for (name, value) in MEMCACHED_COMPAT {
            apply_line(&[name.as_bytes().to_vec(), value.as_bytes().to_vec()], &mut config, 0)?;
        }
    }
    if let Some(path) = config_file {
        load_file(&path, &mut config, 0)?;
        // Absolute, so CONFIG REWRITE still finds it if the working directory changes.
        config.config_file = Some(std::path::absolute(&path).unwrap_or(path));
    }
    for line in &lines {
        let args: Vec<Vec<u8>> = line.iter().map(|a| a.as_bytes().to_vec()).collect();
        apply_line(&args, &mut config, 0).map_err(|e| format!("--{}: {e}", line.join(" ")))?;
    }
    config.validate()?;
    if rest.iter().any(|a| a == "--test-config") {
        let what = config.config_file.as_ref().map_or("the defaults".to_owned(), |p| p.display().to_string());
        return Ok(Invocation::Print(format!("configuration OK: {what}\n")));
    }
    Ok(Invocation::Run(Box::new(config)))
}

enum Split {
    Lines(Vec<Vec<String>>),
    Help,
    Version,
}

/// Turns the arguments after the config file into directive lines (`[name, arg, …]`).
fn split_command_line(tokens: &[OsString]) -> Result<Split, String> {
    let mut lines: Vec<Vec<String>> = Vec::new();
    // Set right after a bare `--name`: the next token is its argument whatever it looks like.
    let mut want_value = false;
    let mut tokens = tokens.iter();
    while let Some(token) = tokens.next() {
        let token = token.to_str().ok_or_else(|| format!("argument {token:?} is not valid UTF-8"))?.to_owned();
        if want_value {
            want_value = false;
            if let Some(line) = lines.last_mut() {
                line.push(token);
            }
            continue;
        }
        match token.as_str() {
            "-h" | "--help" => return Ok(Split::Help),
            "-V" | "--version" => return Ok(Split::Version),
            "--memcached-compat" | "--test-config" => {}
            flag if UNSUPPORTED_MEMCACHED_FLAGS.contains(&flag) => {
                return Err(format!("{flag}: memcached's {flag} has no counterpart in cachette (see --help)"));
            }
            flag if is_memcached_flag(flag) => {
                let value = if memcached_flag_takes_value(flag) {
                    let value = tokens
                        .next()
                        .and_then(|v| v.to_str())
                        .ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
                    Some(value)
                } else {
                    None
                };
                lines.extend(memcached_flag(flag, value)?);
            }
            "--" => return Err("'--' must be followed by a directive name, as in --port 6380".into()),
            _ if token.starts_with("--") => {
                let body = &token[2..];
                if let Some((name, value)) = body.split_once('=') {
                    lines.push(vec![name.to_owned(), value.to_owned()]);
                } else if body.contains(|c: char| c.is_ascii_whitespace()) {
                    // One shell word holding "name value…", which redis-server also accepts.
                    let words = split_args(body.as_bytes()).ok_or_else(|| format!("unbalanced quotes in '{token}'"))?;
                    let words: Vec<String> =
                        words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
                    want_value = words.len() == 1;
                    lines.push(words);
                } else {
                    lines.push(vec![body.to_owned()]);
                    want_value = true;
                }
            }
            _ => match lines.last_mut() {
                Some(line) => line.push(token),
                None => {
                    return Err(format!(
                        "unexpected argument '{token}': the config file must come first, and \
                         directives are given as --name value (see --help)"
                    ))
                }
            },
        }
    }
    Ok(Split::Lines(lines))
}

/// memcached's short flags that cachette maps (see [`memcached_flag`]).
fn is_memcached_flag(flag: &str) -> bool {
    matches!(flag, "-p" | "-U" | "-l" | "-m" | "-M" | "-c" | "-t" | "-I" | "-C" | "-A" | "-B" | "-b" | "-o" | "-S")
        || (flag.len() >= 2 && flag.starts_with('-') && flag[1..].bytes().all(|b| b == b'v'))
}

fn memcached_flag_takes_value(flag: &str) -> bool {
    !matches!(flag, "-M" | "-C" | "-A" | "-S") && !flag[1..].bytes().all(|b| b == b'v')
}

/// memcached 1.6 flags with no counterpart in cachette: refused by name rather than taken for a
/// stray argument, so an operator swapping the binary learns which one to drop.
const UNSUPPORTED_MEMCACHED_FLAGS: &[&str] =
    &["-s", "-a", "-d", "-r", "-u", "-k", "-P", "-f", "-n", "-L", "-D", "-R", "-F", "-X", "-W", "-Y", "-e", "-Z"];

/// memcached `-o` options that tune internals cachette does not have (slab allocator, LRU
/// segments and crawler, hash table sizing, connection buffers): accepted, with no effect, so
/// that an existing memcached command line starts. `idle_timeout` is mapped; every other
/// option (extstore `ext_*`, TLS `ssl_*`, `track_sizes` …) is refused.
const IGNORED_EXTENDED_OPTIONS: &[&str] = &[
    "modern",
    "no_modern",
    "maxconns_fast",
    "no_maxconns_fast",
    "hashpower",
    "no_hashexpand",
    "hash_algorithm",
    "tail_repair_time",
    "lru_crawler",
    "no_lru_crawler",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "lru_maintainer",
    "no_lru_maintainer",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "temporary_ttl",
    "slab_reassign",
    "slab_automove",
    "slab_automove_ratio",
    "slab_automove_window",
    "slab_automove_freeratio",
    "slab_chunk_max",
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "read_buf_mem_limit",
];

/// Maps one of memcached's short flags (with its value, for those that take one) onto
/// directive lines.
fn memcached_flag(flag: &str, value: Option<&str>) -> Result<Vec<Vec<String>>, String> {
    let v = value.unwrap_or_default();
    let line = |name: &str, value: &str| Ok(vec![vec![name.to_owned(), value.to_owned()]]);
    match flag {
        "-p" => line("memcache-port", v),
        "-U" => match v.parse::<u32>() {
            Ok(0) => Ok(Vec::new()),
            _ => Err(format!(
                "-U {v}: cachette does not serve memcached over UDP (memcached itself has it off by \
                 default since 1.5.6); use TCP, or -U 0"
            )),
        },
        "-l" => listen_flag(v),
        // memcached reads -m as a whole number of megabytes (MiB).
        "-m" => match v.parse::<u64>() {
            Ok(mb) => line("maxmemory", &format!("{mb}mb")),
            Err(_) => Err(format!("-m {v}: the memory limit is a whole number of megabytes")),
        },
        "-M" => line("maxmemory-policy", "noeviction"),
        "-c" => line("maxclients", v),
        "-t" => line("threads", v),
        "-b" => line("tcp-backlog", v),
        "-I" => {
            // memcached reads `1m` as 1 MiB; in Redis units that is `1mb`.
            let binary_unit = v.len() > 1
                && v.ends_with(['k', 'K', 'm', 'M'])
                && v[..v.len() - 1].bytes().all(|b| b.is_ascii_digit());
            let size = if binary_unit { format!("{v}b") } else { v.to_owned() };
            line("memcache-item-size-max", &size)
        }
        "-C" => line("memcache-cas", "no"),
        "-A" => line("memcache-enable-shutdown", "yes"),
        "-S" => line("memcache-sasl", "yes"),
        "-B" => line("memcache-protocol", v),
        "-o" => {
            let mut lines = Vec::new();
            for option in v.split(',').filter(|o| !o.is_empty()) {
                let (name, arg) = option.split_once('=').unwrap_or((option, ""));
                match name {
                    "idle_timeout" => lines.push(vec!["timeout".to_owned(), arg.to_owned()]),
                    _ if IGNORED_EXTENDED_OPTIONS.contains(&name) => {}
                    _ => return Err(format!("-o {option}: not a memcached option cachette supports")),
                }
            }
            Ok(lines)
        }
        // -v, -vv, -vvv: memcached's verbosity, as log levels.
        _ => line("loglevel", if flag == "-v" { "verbose" } else { "debug" }),
    }
}

/// memcached's `-l ADDR[:PORT][,ADDR[:PORT]…]`: the addresses become `bind`; a port given with
/// one (`127.0.0.1:11311`, `[::1]:11311`) becomes `memcache-port`, as memcached listens on it,
/// so all ports given must agree (cachette has one memcached port for every address).
fn listen_flag(v: &str) -> Result<Vec<Vec<String>>, String> {
    let mut bind = vec!["bind".to_owned()];
    let mut port: Option<&str> = None;
    for addr in v.split(',').filter(|a| !a.is_empty()) {
        let (host, p) = if let Some(rest) = addr.strip_prefix('[') {
            match rest.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, p)) => (host, Some(p.strip_prefix(':').ok_or_else(|| format!("-l {addr}: bad address"))?)),
                None => return Err(format!("-l {addr}: bad address")),
            }
        } else {
            match addr.split_once(':') {
                // One colon: host:port. More: a bare IPv6 address.
                Some((host, p)) if !p.contains(':') => (host, Some(p)),
                _ => (addr, None),
            }
        };
        if let Some(p) = p {
            if port.is_some_and(|q| q != p) {
                return Err(format!("-l {v}: cachette listens on one memcached port for every address"));
            }
            port = Some(p);
        }
        bind.push(host.to_owned());
    }
    let mut lines = vec![bind];
    if let Some(p) = port {
        lines.push(vec!["memcache-port".to_owned(), p.to_owned()]);
    }
    Ok(lines)
}

/// `--memcached-compat`: memcached's defaults, applied before the config file and the other
/// flags (which still override them), for an operator replacing the memcached binary.
/// memcached listens on every interface by default; cachette keeps its loopback default
/// (`bind 127.0.0.1`), since it has no authentication on that port: give `-l 0.0.0.0` to
/// listen everywhere.
const MEMCACHED_COMPAT: &[(&str, &str)] = &[
    ("port", "0"),
    ("memcache-port", "11211"),
    ("maxmemory", "64mb"),
    ("maxmemory-policy", "allkeys-lru"),
    ("maxclients", "1024"),
    ("threads", "4"),
    ("tcp-backlog", "1024"),
];

/// The flags `--help` lists individually: (directive, short flag, value name).
const MAIN_FLAGS: &[(&str, Option<char>, &str)] = &[
    ("port", None, "N"),
    ("memcache-port", Some('p'), "N"),
    ("bind", None, "ADDR"),
    ("threads", Some('t'), "N"),
    ("timeout", None, "SECONDS"),
    ("maxclients", Some('c'), "N"),
    ("memcache-item-size-max", Some('I'), "SIZE"),
    ("loglevel", None, "LEVEL"),
    ("logfile", None, "PATH"),
];

/// The clap definition behind `--help` and `--version`.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new("cachette")
        .version(env!("CARGO_PKG_VERSION"))
        .about("One server for Redis (RESP) and memcached clients, over one keyspace")
        .override_usage("cachette [CONFIG_FILE] [OPTIONS] [--<directive> <value>...]")
        .disable_version_flag(true)
        .disable_help_flag(true)
        .arg(
            Arg::new("config_file")
                .value_name("CONFIG_FILE")
                .help("redis.conf-style configuration file, read before the options below"),
        );
    for &(name, short, value_name) in MAIN_FLAGS {
        let Some((directive, _)) = lookup(name.as_bytes()) else {
            continue;
        };
        let mut arg = Arg::new(name).long(name).value_name(value_name).help(format!(
            "{} [default: {}]",
            directive.doc,
            directive.default_text()
        ));
        if let Some(short) = short {
            arg = arg.short(short);
        }
        if directive.name == "bind" {
            arg = arg.num_args(1..);
        }
        cmd = cmd.arg(arg);
    }
    let directive_names: Vec<&str> = DIRECTIVES.iter().map(|d| d.name).collect();
    cmd.arg(
        Arg::new("listen").short('l').value_name("ADDR,...").help("memcached-style --bind: comma-separated addresses"),
    )
    .arg(
        Arg::new("test-config")
            .long("test-config")
            .action(ArgAction::SetTrue)
            .help("Check the configuration (file and flags), print the verdict and exit"),
    )
    .arg(Arg::new("help").short('h').long("help").action(ArgAction::Help).help("Print help"))
    .arg(Arg::new("version").short('V').long("version").action(ArgAction::Version).help("Print version"))
    .after_help(format!(
        "Any configuration directive can be given as --<name> <value> [<value>...], e.g. \
         --hz 100 or --bind 127.0.0.1 -::1; command-line directives override the config file. \
         -I takes memcached's units (1m = 1 MiB); elsewhere sizes use Redis's (1mb = 1 MiB, \
         1m = 1000000). conf/cachette.conf documents every directive.\n\n\
         memcached's flags: -p PORT (memcache-port), -l ADDR[,ADDR] (bind), -m MB (maxmemory), \
         -M (maxmemory-policy noeviction), -c N, -t N, -b N (tcp-backlog), -I SIZE, -C \
         (memcache-cas no), -A (memcache-enable-shutdown yes), -B ascii|binary|auto, -v/-vv \
         (loglevel verbose/debug), -o idle_timeout=N, -U 0. --memcached-compat starts from \
         memcached's defaults: no RESP listener, memcache-port 11211, maxmemory 64mb, \
         maxmemory-policy allkeys-lru, maxclients 1024, threads 4, tcp-backlog 1024 (but bind \
         stays 127.0.0.1: give -l 0.0.0.0 to listen on every interface).\n\nDirectives: {}",
        directive_names.join(", ")
    ))
}
