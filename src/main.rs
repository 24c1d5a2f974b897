//! The `cachette` binary: command line -> `Config` -> `server::run` (or the `check-aof`
//! operator tool), and nothing else.
//!
//! Everything about arguments and config files lives in `cachette::config`; everything about
//! serving lives in `cachette::server`. Errors from either end the process with status 1 and one
//! line on standard error.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Operator tools share the binary: `cachette check-aof [--fix] FILE`.
    if std::env::args_os().nth(1).is_some_and(|a| a == "check-aof") {
        let args: Vec<String> = std::env::args_os().skip(2).map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(cachette::persist::aof::check_main(&args) as u8);
    }
    let config = match cachette::config::from_args(std::env::args_os()) {
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
