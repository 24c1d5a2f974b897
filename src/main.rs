//! The `cachette` binary: command line -> `Config` -> `server::run`, and nothing else.
//!
//! Everything about arguments and config files lives in `cachette::config`; everything about
//! serving lives in `cachette::server`. Errors from either end the process with status 1 and one
//! line on standard error.

use std::process::ExitCode;

fn main() -> ExitCode {
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
