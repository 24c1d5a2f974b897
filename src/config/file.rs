//! redis.conf-style configuration text: one `directive arg arg…` per line, `#` comment lines,
//! blank lines, quoting as [`split_args`], directive names case-insensitive, later lines
//! overriding earlier ones, and `include <path>` reading another file in place (a relative path is
//! relative to the working directory, as in Redis).
//!
//! Every problem stops start-up with one line naming where and why, e.g.
//! `line 12: 'save 900 1': 'save' is a redis-server directive cachette does not support yet`.
//! Directives cachette does not implement are never skipped silently: a redis.conf that asks for
//! persistence or a password must not start a server that quietly has neither.

use std::path::Path;

use super::splitargs::split_args;
use super::table::{is_unsupported_redis_directive, lookup};
use super::Config;

/// How deep `include` may nest; deeper is almost certainly a file including itself.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Longest slice of an offending line quoted back in an error.
const MAX_QUOTED_LINE: usize = 120;

/// Applies configuration text to `cfg`, line by line. On error `cfg` holds the lines before the
/// offending one; callers abandon it (start-up fails) rather than use it.
pub fn parse_file_text(text: &str, cfg: &mut Config) -> Result<(), String> {
    parse_bytes(text.as_bytes(), cfg, 0)
}

/// Reads and applies the file at `path`.
pub(crate) fn load_file(path: &Path, cfg: &mut Config, depth: usize) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("can't open config file '{}': {e}", path.display()))?;
    parse_bytes(&text, cfg, depth).map_err(|e| format!("{}: {e}", path.display()))
}

/// Config files are read as bytes: a stray non-UTF-8 byte in a comment must not matter, and
/// quoted arguments can carry any byte through `\xHH` anyway.
fn parse_bytes(text: &[u8], cfg: &mut Config, depth: usize) -> Result<(), String> {
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let fail = |reason: &str| {
            let mut shown = String::from_utf8_lossy(line).into_owned();
            if shown.chars().count() > MAX_QUOTED_LINE {
                shown = shown.chars().take(MAX_QUOTED_LINE).collect::<String>() + "...";
            }
            format!("line {}: '{shown}': {reason}", index + 1)
        };
        let args = split_args(line).ok_or_else(|| fail("Unbalanced quotes in configuration line"))?;
        if args.is_empty() {
            continue;
        }
        apply_line(&args, cfg, depth).map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// Applies one directive line (`args[0]` is the name) from a file or the command line.
pub(crate) fn apply_line(args: &[Vec<u8>], cfg: &mut Config, depth: usize) -> Result<(), String> {
    let Some((name, rest)) = args.split_first() else {
        return Ok(());
    };
    if name.eq_ignore_ascii_case(b"include") {
        let [path] = rest else {
            return Err("Bad directive or wrong number of arguments".to_owned());
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err("include nested too deeply (does a file include itself?)".to_owned());
        }
        let path = std::str::from_utf8(path).map_err(|_| "include path is not valid UTF-8")?;
        return load_file(Path::new(path), cfg, depth + 1);
    }
    if name.eq_ignore_ascii_case(b"user") {
        return add_user(rest, cfg);
    }
    match lookup(name) {
        Some((directive, _)) => directive.apply_args(cfg, rest),
        None if is_unsupported_redis_directive(name) => Err(format!(
            "'{}' is a redis-server directive that cachette does not support yet",
            String::from_utf8_lossy(name).to_ascii_lowercase()
        )),
        None => Err("Bad directive or wrong number of arguments".to_owned()),
    }
}

/// `user <name> <rule> …` (repeatable, as in redis.conf): checked now so a bad rule stops
/// start-up with its line, applied to the users at start-up.
fn add_user(rest: &[Vec<u8>], cfg: &mut Config) -> Result<(), String> {
    let words: Vec<String> = rest.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let Some(name) = words.first() else {
        return Err("Bad directive or wrong number of arguments".to_owned());
    };
    if name.contains(' ') {
        return Err("Usernames can't contain spaces or null characters".to_owned());
    }
    let mut rules = crate::acl::Rules::new();
    for w in &words[1..] {
        rules.apply(w.as_bytes()).map_err(|e| format!("Error in user declaration '{w}': {}", e.message()))?;
    }
    cfg.users.push(words);
    Ok(())
}
