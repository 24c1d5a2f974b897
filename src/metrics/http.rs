//! The metrics HTTP listener: `GET /metrics` (Prometheus text format) and `GET /health`.
//!
//! One thread, blocking std sockets, one request per connection: a scraper comes every few
//! seconds, so this is not a hot path and needs no event loop or HTTP library. Requests are
//! bounded (8 KB of head, a 2-second read timeout), so a client that sends nothing or too much
//! cannot hold the listener. `/health` answers 200 `OK` while the server accepts commands and
//! 503 with the reason otherwise (loading the dataset at start-up, shutting down).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Exporter, Families};
use crate::config::LogLevel;
use crate::server::{log, Shared};

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Binds the listener; the caller decides what a failure means.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    // Non-blocking accept lets the thread notice shutdown without a connection arriving.
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves until the server shuts down.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let exporter = Exporter::default();
    while !shared.shutdown.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, &shared, &exporter) {
                    log::log(LogLevel::Verbose, &format!("metrics request failed: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::log(LogLevel::Warning, &format!("metrics listener: accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(mut stream: TcpStream, shared: &Shared, exporter: &Exporter) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", b"request too large\n");
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if method != b"GET" && method != b"HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"only GET\n");
    }
    match path {
        b"/metrics" => {
            let families = Families::from_index(shared.config().metrics_names);
            let body = exporter.render(shared, families);
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes())
        }
        b"/health" if shared.shutdown.load(Ordering::Acquire) => {
            respond(&mut stream, "503 Service Unavailable", "text/plain", b"shutting down\n")
        }
        b"/health" if shared.loading.load(Ordering::Acquire) => {
            respond(&mut stream, "503 Service Unavailable", "text/plain", b"loading the dataset\n")
        }
        b"/health" => respond(&mut stream, "200 OK", "text/plain", b"OK\n"),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"try /metrics or /health\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    // Closing with unread input makes the kernel send a reset, which can destroy the response
    // before the client reads it (an oversized request): end our side, then drain a bounded
    // amount of what the client is still sending.
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}
