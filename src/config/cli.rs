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
//! memcached's `-t N` (threads), `-c N` (maxclients), `-I SIZE` (item size limit, where `k`/`m`
//! mean KiB/MiB as in memcached) and `-l ADDR[,ADDR…]` (bind) map onto the same directives;
//! `-S` (SASL) is `memcache-sasl yes`.
//! memcached's `-p` is not taken: with two listeners it would be ambiguous (`redis-cli -p` is the
//! RESP port, `memcached -p` the memcached one), so both ports are spelled out.
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
    /// Start the server with this configuration (boxed: it is far larger than the text).
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
            "-v" | "-V" | "--version" => return Ok(Split::Version),
            "-t" | "-c" | "-I" | "-l" => {
                let value = tokens
                    .next()
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| format!("{token} needs a value (see --help)"))?;
                lines.push(memcached_flag(&token, value));
            }
            "-S" => lines.push(vec!["memcache-sasl".into(), "yes".into()]),
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

/// Maps one of memcached's short flags onto a directive line.
fn memcached_flag(flag: &str, value: &str) -> Vec<String> {
    match flag {
        "-t" => vec!["threads".into(), value.into()],
        "-c" => vec!["maxclients".into(), value.into()],
        "-I" => {
            // memcached reads `1m` as 1 MiB; in Redis units that is `1mb`.
            let binary_unit = value.len() > 1
                && value.ends_with(['k', 'K', 'm', 'M'])
                && value[..value.len() - 1].bytes().all(|b| b.is_ascii_digit());
            let size = if binary_unit { format!("{value}b") } else { value.to_owned() };
            vec!["memcache-item-size-max".into(), size]
        }
        _ => std::iter::once("bind".to_owned()).chain(value.split(',').map(str::to_owned)).collect(),
    }
}

/// The flags `--help` lists individually: (directive, short flag, value name).
const MAIN_FLAGS: &[(&str, Option<char>, &str)] = &[
    ("port", None, "N"),
    ("memcache-port", None, "N"),
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
    .arg(Arg::new("help").short('h').long("help").action(ArgAction::Help).help("Print help"))
    .arg(
        Arg::new("version")
            .short('V')
            .visible_short_alias('v')
            .long("version")
            .action(ArgAction::Version)
            .help("Print version"),
    )
    .after_help(format!(
        "Any configuration directive can be given as --<name> <value> [<value>...], e.g. \
         --hz 100 or --bind 127.0.0.1 -::1; command-line directives override the config file. \
         -I takes memcached's units (1m = 1 MiB); elsewhere sizes use Redis's (1mb = 1 MiB, \
         1m = 1000000). conf/cachette.conf documents every directive.\n\nDirectives: {}",
        directive_names.join(", ")
    ))
}
