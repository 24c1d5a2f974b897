//! MONITOR: every command any thread runs, streamed to the clients that asked, on whatever
//! worker they live.
//!
//! ```text
//!  worker B runs SET k v ──> feed(line) ──> the mailbox of each worker with a monitor + Waker
//!  worker A wakes ──> take(A) ──> appends the lines to each of its monitor connections
//! ```
//!
//! [`Monitors::active`] is one relaxed load, so the cost without monitors is nil; with monitors
//! each command formats its line once and copies it into one mailbox per worker that has a
//! monitor. Redis's line: `+<unix s>.<µs> [<db> <ip:port>] "arg" "arg"…`, arguments quoted as
//! `sdscatrepr` quotes them.
//!
//! Self-contained on purpose (like `blocking.rs` mailboxes): the pub/sub delivery is built the
//! same way, and the two can be merged into one per-worker mailbox later.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mio::Waker;

/// A worker's inbox of monitor lines.
struct Mailbox {
    lines: Mutex<Vec<u8>>,
    has_mail: AtomicBool,
    waker: Arc<Waker>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Monitors {
    active: AtomicUsize,
    /// (client id, worker) of every monitor.
    clients: Mutex<Vec<(u64, usize)>>,
    boxes: OnceLock<Vec<Mailbox>>,
}

impl Monitors {
    /// Installs one mailbox per worker.
    pub fn set_wakers(&self, wakers: Vec<Arc<Waker>>) {
        let boxes = wakers
            .into_iter()
            .map(|waker| Mailbox { lines: Mutex::new(Vec::new()), has_mail: AtomicBool::new(false), waker })
            .collect();
        let _ = self.boxes.set(boxes);
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, Vec<(u64, usize)>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when at least one client is monitoring.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Client `id` on `worker` starts monitoring.
    pub fn add(&self, id: u64, worker: usize) {
        let mut c = self.clients();
        if !c.iter().any(|&(i, _)| i == id) {
            c.push((id, worker));
            self.active.store(c.len(), Ordering::Relaxed);
        }
    }

    /// Client `id` is gone.
    pub fn remove(&self, id: u64) {
        let mut c = self.clients();
        c.retain(|&(i, _)| i != id);
        self.active.store(c.len(), Ordering::Relaxed);
    }

    /// Sends one line (without the CRLF) to every monitor.
    pub fn feed(&self, line: &[u8]) {
        let Some(boxes) = self.boxes.get() else { return };
        let mut workers: Vec<usize> = self.clients().iter().map(|&(_, w)| w).collect();
        workers.sort_unstable();
        workers.dedup();
        for w in workers {
            let Some(mb) = boxes.get(w) else { continue };
            {
                let mut buf = mb.lines.lock().unwrap_or_else(|p| p.into_inner());
                buf.extend_from_slice(line);
                buf.extend_from_slice(b"\r\n");
            }
            if !mb.has_mail.swap(true, Ordering::AcqRel) {
                let _ = mb.waker.wake();
            }
        }
    }

    /// The lines fed for `worker`'s monitors since the last call, with those monitors' ids.
    pub fn take(&self, worker: usize) -> Option<(Vec<u8>, Vec<u64>)> {
        let mb = self.boxes.get()?.get(worker)?;
        // A plain load first: this runs on every pass of every worker's loop.
        if !mb.has_mail.load(Ordering::Relaxed) || !mb.has_mail.swap(false, Ordering::AcqRel) {
            return None;
        }
        let lines = std::mem::take(&mut *mb.lines.lock().unwrap_or_else(|p| p.into_inner()));
        let ids = self.clients().iter().filter(|&&(_, w)| w == worker).map(|&(id, _)| id).collect();
        Some((lines, ids))
    }
}

/// Appends `arg` quoted as redis-server's `sdscatrepr` quotes it.
pub fn quote_into(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &c in arg {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// One monitor line: `+<secs>.<µs> [<db> <addr>] "arg" …` (no CRLF).
pub fn line(
    unix_us: u128,
    db: usize,
    addr: &std::net::SocketAddr,
    args: impl Iterator<Item = impl AsRef<[u8]>>,
) -> Vec<u8> {
    let mut out = format!("+{}.{:06} [{db} {addr}]", unix_us / 1_000_000, unix_us % 1_000_000).into_bytes();
    for a in args {
        out.push(b' ');
        quote_into(&mut out, a.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_as_redis_does() {
        let addr = "127.0.0.1:5555".parse().expect("addr");
        let args: [&[u8]; 3] = [b"set", b"k", b"v\n\x01\"\\ \xc3"];
        let l = line(1_700_000_000_123_456, 0, &addr, args.iter());
        assert_eq!(
            String::from_utf8_lossy(&l),
            r#"+1700000000.123456 [0 127.0.0.1:5555] "set" "k" "v\n\x01\"\\ \xc3""#
        );
    }
}
