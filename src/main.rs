//! The `cachette` binary: command line -> `Config` -> `server::run`, and nothing else.
//!
//! Everything about arguments and config files lives in `cachette::config`; everything about
//! serving lives in `cachette::server`. Two operator subcommands check files without starting a
//! server: `cachette check-rdb FILE` and `cachette check-aof [--fix] FILE`. Errors from either end the process with status 1 and one
//! line on standard error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "check-rdb") {
        return check_rdb(&args[2..]);
    }
    if args.get(1).is_some_and(|a| a == "check-aof") {
        let rest: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(cachette::persist::aof::check_main(&rest) as u8);
    }
    let config = match cachette::config::from_args(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cachette: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cachette::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cachette: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cachette check-rdb FILE`: what an RDB file holds, or the first problem and its byte offset
/// (the operator's redis-check-rdb). Exit status 0 when the file loads.
fn check_rdb(rest: &[std::ffi::OsString]) -> ExitCode {
    let [file] = rest else {
        eprintln!("usage: cachette check-rdb FILE");
        return ExitCode::from(2);
    };
    match cachette::persist::check_file(std::path::Path::new(file)) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cachette check-rdb: {e}");
            ExitCode::FAILURE
        }
    }
}
