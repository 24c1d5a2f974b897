//! systemd's notification protocol (`sd_notify`), spoken directly: with `Type=notify` systemd
//! passes the path of a datagram socket in `NOTIFY_SOCKET`, and the service sends it
//! newline-separated `KEY=VALUE` lines — `READY=1` once it serves, `STATUS=…` while it works
//! towards that, `STOPPING=1` when it shuts down, `WATCHDOG=1` every half `WATCHDOG_USEC`.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op. A failed send is ignored, as
//! `sd_notify` callers do: the server works the same whether or not anyone listens.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

/// The notification socket, connected once.
fn socket() -> Option<&'static UnixDatagram> {
    static SOCKET: OnceLock<Option<UnixDatagram>> = OnceLock::new();
    SOCKET
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            let sock = UnixDatagram::unbound().ok()?;
            let bytes = path.as_encoded_bytes();
            if let Some(name) = bytes.strip_prefix(b"@") {
                // An abstract socket name (Linux): '@' stands for the leading NUL byte.
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?;
                sock.connect_addr(&addr).ok()?;
            } else {
                sock.connect(std::path::Path::new(&path)).ok()?;
            }
            Some(sock)
        })
        .as_ref()
}

/// Sends `state` (one or more `KEY=VALUE` lines) when running under systemd.
pub fn notify(state: &str) {
    if let Some(s) = socket() {
        let _ = s.send(state.as_bytes());
    }
}

/// `READY=1`, with a status line.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}\nMAINPID={}", std::process::id()));
}

/// A status line while starting (loading data) or running.
pub fn status(status: &str) {
    notify(&format!("STATUS={status}"));
}

/// `STOPPING=1`.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=Shutting down");
}

/// How often to send `WATCHDOG=1`: half the `WATCHDOG_USEC` systemd set (for this process:
/// `WATCHDOG_PID`, when given, must be ours), as sd_watchdog_enabled advises.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// `WATCHDOG=1`: the service is alive.
pub fn watchdog() {
    notify("WATCHDOG=1");
}
