//! The server log: one line per notable event (start, listening, shutdown, refused clients,
//! I/O failures), never one per request, in redis-server's line format so existing log tooling
//! reads it:
//!
//! ```text
//! 12345:M 22 Nov 2026 02:14:00.123 * Ready to accept connections
//! ```
//!
//! The level marks are redis-server's: `.` debug, `-` verbose, `*` notice, `#` warning. Lines go
//! to standard error (journald under systemd) or, with `logfile`, appended to that file.
//!
//! The logger is process-wide and set once at start-up, like the signal flag: log calls come
//! from places that hold no reference to the server state. Only the level can change later
//! (CONFIG SET loglevel), through an atomic.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::config::{Config, LogLevel};

struct Logger {
    level: AtomicU8,
    file: Option<Mutex<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Verbose => 1,
        LogLevel::Notice => 2,
        LogLevel::Warning => 3,
        LogLevel::Nothing => 4,
    }
}

/// Sets the log destination and level from `config`. The destination is fixed by the first
/// call (the `logfile` directive cannot change at run time); later calls only change the level.
pub fn init(config: &Config) -> Result<(), String> {
    let file = if config.logfile.is_empty() {
        None
    } else {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .map_err(|e| format!("cannot open logfile {}: {e}", config.logfile))?;
        Some(Mutex::new(f))
    };
    let logger = LOGGER.get_or_init(|| Logger { level: AtomicU8::new(rank(config.loglevel)), file });
    logger.level.store(rank(config.loglevel), Ordering::Relaxed);
    Ok(())
}

/// Follows a CONFIG SET of `loglevel`.
pub fn set_level(level: LogLevel) {
    if let Some(l) = LOGGER.get() {
        l.level.store(rank(level), Ordering::Relaxed);
    }
}

/// Writes one line at `level` (before `init`, at notice level to standard error).
pub fn log(level: LogLevel, msg: &str) {
    let (threshold, file) = match LOGGER.get() {
        Some(l) => (l.level.load(Ordering::Relaxed), l.file.as_ref()),
        None => (rank(LogLevel::Notice), None),
    };
    if level == LogLevel::Nothing || rank(level) < threshold {
        return;
    }
    let mark = match level {
        LogLevel::Debug => '.',
        LogLevel::Verbose => '-',
        LogLevel::Notice => '*',
        _ => '#',
    };
    let line = format!("{}:M {} {mark} {msg}\n", std::process::id(), timestamp(super::unix_ms()));
    match file {
        Some(f) => {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// `22 Nov 2026 02:14:00.123` in UTC, from unix milliseconds.
fn timestamp(ms: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!("{d:02} {} {y} {:02}:{:02}:{:02}.{:03}", MONTHS[(m - 1) as usize], t / 3600, t / 60 % 60, t % 60, ms % 1000)
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "01 Jan 1970 00:00:00.000");
        assert_eq!(timestamp(951_782_400_000), "29 Feb 2000 00:00:00.000");
        assert_eq!(timestamp(1_795_313_640_123), "22 Nov 2026 02:14:00.123");
    }
}
