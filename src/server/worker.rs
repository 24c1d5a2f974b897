//! A worker thread: one `mio::Poll`, this worker's own listening sockets (one per protocol and
//! address, bound with SO_REUSEPORT) and a `Slab` of the connections it accepted, indexed by
//! `Token(slab key)`. Tokens at the top of the range are reserved for the waker and listeners.
//!
//! A connection stays on the worker that accepted it for its whole life, so its buffers are
//! never shared; the only cross-thread state it touches is the engine (shard locks) and the
//! relaxed counters in `Shared`.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::blocking::Mail;
use super::conn::{Conn, ConnLimits, Proto};
use super::shared::{ClientInfo, Shared};
use crate::config::LogLevel;

/// The waker's token: other threads use it to interrupt `poll` (shutdown, later pub/sub).
pub const WAKER: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 2;
/// How often idle timeouts, kill flags and limits are looked at.
const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// See the module documentation.
pub struct Worker {
    /// This worker's index (its mailbox for served blocked clients).
    id: usize,
    /// Client id → slab key, to deliver replies to blocked clients.
    by_id: std::collections::HashMap<u64, usize>,
    /// Slab keys of the connections blocked in BLPOP and friends.
    blocked: Vec<usize>,
    /// Slab keys of the connections whose next command waits for a CLIENT PAUSE to end.
    paused: Vec<usize>,
    /// The `kill_generation` last acted on.
    kills_seen: u64,
    poll: Poll,
    listeners: Vec<(TcpListener, Proto)>,
    conns: Slab<Conn>,
    shared: Arc<Shared>,
    limits: ConnLimits,
    /// Connections with output to write once every ready connection has been served.
    to_flush: Vec<usize>,
    /// `busy-poll-us`, refreshed with the other limits.
    busy_poll: Duration,
    /// `tcp-keepalive` seconds for accepted sockets (0: off), refreshed with the other limits.
    keepalive: u64,
    /// When a refused connection was last logged.
    last_refusal_log: Instant,
}

impl Worker {
    /// A worker serving `listeners`; returns it with the waker other threads use to reach it.
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        listeners: Vec<(std::net::TcpListener, Proto)>,
    ) -> io::Result<(Worker, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut mio_listeners = Vec::with_capacity(listeners.len());
        for (i, (l, proto)) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            poll.registry().register(&mut l, Token(LISTENER_BASE - i), Interest::READABLE)?;
            mio_listeners.push((l, proto));
        }
        let limits = limits_from(&shared);
        let busy_poll = Duration::from_micros(shared.config().busy_poll_us);
        let keepalive = shared.config().tcp_keepalive;
        let worker = Worker {
            id,
            by_id: Default::default(),
            blocked: Vec::new(),
            paused: Vec::new(),
            kills_seen: 0,
            poll,
            listeners: mio_listeners,
            conns: Slab::new(),
            shared,
            limits,
            to_flush: Vec::new(),
            busy_poll,
            keepalive,
            last_refusal_log: Instant::now(),
        };
        Ok((worker, waker))
    }

    /// Serves until the shared shutdown flag is set, then flushes what it can and returns.
    pub fn run(mut self) {
        super::stats::set_thread_slot(self.id);
        let mut events = Events::with_capacity(1024);
        let mut last_housekeeping = Instant::now();
        let mut spin_until: Option<Instant> = None;
        loop {
            // Busy polling (see `busy-poll-us`): while a recent pass was busy, look again at
            // once instead of sleeping, so clients find this thread awake.
            let timeout = match spin_until {
                Some(t) if Instant::now() < t => Duration::ZERO,
                // Mail this worker posted to itself (a PUBLISH to its own clients) after it last
                // looked: deliver it before sleeping.
                _ if self.shared.blocking.has_mail(self.id) => Duration::ZERO,
                _ => self.next_deadline().unwrap_or(HOUSEKEEPING).min(HOUSEKEEPING),
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                super::log::log(LogLevel::Warning, &format!("poll failed, worker stops: {e}"));
                break;
            }
            let served = events.iter().count();
            if served >= 2 && self.busy_poll > Duration::ZERO {
                spin_until = Some(Instant::now() + self.busy_poll);
            } else if served == 0 && timeout.is_zero() {
                // An empty spin: give the core to anything else runnable on it (a client or
                // another worker sharing this CPU) before looking again. Alone on its core the
                // yield returns at once and the spin goes on; sharing, the spin costs the
                // others nothing they wanted.
                std::thread::yield_now();
            }
            for event in events.iter() {
                let token = event.token();
                if token == WAKER {
                    continue;
                }
                if token.0 > LISTENER_BASE - self.listeners.len() && token.0 <= LISTENER_BASE {
                    self.accept(LISTENER_BASE - token.0);
                    continue;
                }
                if event.is_read_closed() {
                    if let Some(conn) = self.conns.get_mut(token.0) {
                        conn.note_read_closed();
                    }
                }
                self.serve(token.0, event.is_readable() || event.is_read_closed() || event.is_error());
            }
            self.deliver_mail();
            self.deliver_monitor_lines();
            self.resume_paused();
            self.expire_blocked();
            let kills = self.shared.kill_generation.load(Ordering::Acquire);
            if kills != self.kills_seen {
                self.kills_seen = kills;
                self.close_clients(false);
            }
            self.flush_pending();
            if self.shared.shutdown.load(Ordering::Acquire) {
                self.stop();
                return;
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING {
                last_housekeeping = Instant::now();
                self.housekeeping();
            }
        }
    }

    fn accept(&mut self, idx: usize) {
        loop {
            let (listener, proto) = &self.listeners[idx];
            let proto = *proto;
            let (mut stream, addr) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the connection in the backlog and try later,
                    // rather than spinning.
                    super::log::log(LogLevel::Warning, &format!("accept failed: {e}"));
                    return;
                }
            };
            let counters = &self.shared.counters;
            let maxclients = self.shared.config().maxclients;
            if counters.connected_clients.load(Ordering::Relaxed) >= maxclients {
                // Counted always, logged once per second at most (a flood must not flood the log).
                let rejected = counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                if rejected == 0 || self.last_refusal_log.elapsed() >= Duration::from_secs(1) {
                    self.last_refusal_log = Instant::now();
                    super::log::log(
                        LogLevel::Warning,
                        &format!("max number of clients reached ({maxclients}), refusing {addr}"),
                    );
                }
                let msg: &[u8] = match proto {
                    Proto::Resp => b"-ERR max number of clients reached\r\n",
                    Proto::Memcache => b"ERROR Too many open connections\r\n",
                };
                let _ = io::Write::write(&mut stream, msg);
                continue;
            }
            if proto == Proto::Resp && crate::acl::protected_mode_denies(&self.shared, addr.ip()) {
                counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                let _ = io::Write::write(&mut stream, crate::acl::DENIED.as_bytes());
                continue;
            }
            counters.connections_received.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            if self.keepalive > 0 {
                let _ = super::listener::set_keepalive(std::os::fd::AsRawFd::as_raw_fd(&stream), self.keepalive);
            }
            let laddr = stream.local_addr().unwrap_or(addr);
            let info = ClientInfo {
                id: self.shared.next_client_id.fetch_add(1, Ordering::Relaxed),
                addr,
                laddr,
                fd: std::os::fd::AsRawFd::as_raw_fd(&stream),
                created: Instant::now(),
                last_active_ms: super::shared::unix_ms().into(),
                db: Default::default(),
                resp: (if proto == Proto::Resp { 2 } else { 0 }).into(),
                name: Default::default(),
                last_cmd: std::sync::Mutex::new("NULL"),
                qbuf: Default::default(),
                obuf: Default::default(),
                kill: Default::default(),
                worker: self.id,
                no_evict: Default::default(),
                monitor: Default::default(),
                memcache: proto == Proto::Memcache,
                user: std::sync::Mutex::new(std::sync::Arc::from("default")),
                subs: Default::default(),
                tracking: Default::default(),
                redir: (-1).into(),
                kind: Default::default(),
            };
            let info = self.shared.register_client(info);
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            let mut conn = Conn::new(stream, proto, info, self.id);
            // As redis-server: a connection made while the default user needs no password
            // stays authenticated when a password is set later.
            conn.set_authenticated(self.shared.acl.default_is_open_door());
            if let Err(e) = self.poll.registry().register(conn.stream(), token, Interest::READABLE) {
                super::log::log(LogLevel::Warning, &format!("could not register a client socket: {e}"));
                self.shared.unregister_client(&conn.info);
                continue;
            }
            self.by_id.insert(conn.info.id, token.0);
            entry.insert(conn);
        }
    }

    fn serve(&mut self, key: usize, readable: bool) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        conn.drive(&self.shared, &self.limits, readable, true);
        // Keep the short list of blocked connections exact, so the deadline checks that run on
        // every loop pass cost nothing when no client is blocked.
        if conn.is_blocked() {
            if !self.blocked.contains(&key) {
                self.blocked.push(key);
            }
        } else {
            self.blocked.retain(|&k| k != key);
        }
        if conn.is_paused() {
            if !self.paused.contains(&key) {
                self.paused.push(key);
            }
        } else {
            self.paused.retain(|&k| k != key);
        }
        if !conn.is_dead() && conn.wants_write() {
            if !conn.flush_queued {
                conn.flush_queued = true;
                self.to_flush.push(key);
            }
            return;
        }
        self.settle(key);
    }

    /// Hands the replies other threads produced for this worker's blocked clients to them, and
    /// lets their pipelines go on.
    fn deliver_mail(&mut self) {
        let mail = self.shared.blocking.take_mail(self.id);
        if mail.is_empty() {
            return;
        }
        let now = super::shared::unix_ms();
        for (id, item) in mail {
            let Some(&key) = self.by_id.get(&id) else { continue };
            let Some(conn) = self.conns.get_mut(key) else { continue };
            match item {
                Mail::Reply(reply) => {
                    conn.unblock_with(&reply);
                    self.serve(key, false);
                }
                Mail::Push(bytes) => {
                    conn.push(&bytes, &self.limits, now);
                    if conn.is_dead() {
                        self.settle(key);
                    } else if !conn.flush_queued {
                        conn.flush_queued = true;
                        self.to_flush.push(key);
                    }
                }
            }
        }
    }

    /// Appends the MONITOR lines other threads fed to this worker's monitors.
    fn deliver_monitor_lines(&mut self) {
        /// redis-server's replica-class hard output limit, which monitors fall under.
        const MONITOR_OUTPUT_LIMIT: usize = 256 << 20;
        let Some((lines, ids)) = self.shared.monitors.take(self.id) else { return };
        for id in ids {
            let Some(&key) = self.by_id.get(&id) else { continue };
            if let Some(conn) = self.conns.get_mut(key) {
                conn.push_output(&lines, MONITOR_OUTPUT_LIMIT);
                self.serve(key, false);
            }
        }
    }

    /// Lets the connections held by a CLIENT PAUSE go on once it has ended.
    fn resume_paused(&mut self) {
        if self.paused.is_empty() || self.shared.pause.state(super::shared::unix_ms()).is_some() {
            return;
        }
        for key in std::mem::take(&mut self.paused) {
            self.serve(key, false);
        }
    }

    /// How long until the nearest blocked client's deadline or the end of a pause that holds a
    /// client (None: nothing pending).
    fn next_deadline(&self) -> Option<Duration> {
        let now = super::shared::unix_ms();
        let pause =
            (!self.paused.is_empty()).then(|| Duration::from_millis(self.shared.pause.until().saturating_sub(now)));
        if self.blocked.is_empty() {
            return pause;
        }
        self.blocked
            .iter()
            .filter_map(|&k| self.conns.get(k).and_then(|c| c.block_deadline()))
            .min()
            .map(|d| Duration::from_millis(d.saturating_sub(now)))
            .into_iter()
            .chain(pause)
            .min()
    }

    /// Answers the blocked clients whose deadline passed.
    fn expire_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let now = super::shared::unix_ms();
        let due: Vec<usize> = self
            .blocked
            .iter()
            .copied()
            .filter(|&k| self.conns.get(k).and_then(|c| c.block_deadline()).is_some_and(|d| d <= now))
            .collect();
        for key in due {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.time_out(&self.shared);
                self.serve(key, false);
            }
        }
    }

    /// Writes the output the poll pass produced, one connection at a time, and lets any
    /// pipeline that stopped on a full output buffer go on.
    fn flush_pending(&mut self) {
        let mut keys = std::mem::take(&mut self.to_flush);
        for &key in &keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.flush_queued = false;
                conn.drive(&self.shared, &self.limits, false, false);
            }
            self.settle(key);
        }
        keys.clear();
        self.to_flush = keys;
    }

    /// After a drive: drop the connection if it is done, else register WRITABLE exactly when
    /// output is pending.
    fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.is_dead() {
            self.close(key);
            return;
        }
        let want = conn.wants_write();
        if want != conn.writable_registered {
            let interest = if want { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if self.poll.registry().reregister(conn.stream(), Token(key), interest).is_err() {
                self.close(key);
                return;
            }
            conn.writable_registered = want;
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            self.blocked.retain(|&k| k != key);
            self.paused.retain(|&k| k != key);
            conn.forget_block(&self.shared);
            conn.leave_pubsub(&self.shared);
            if conn.info.monitor.load(Ordering::Relaxed) {
                self.shared.monitors.remove(conn.info.id);
            }
            self.by_id.remove(&conn.info.id);
            let _ = self.poll.registry().deregister(conn.stream());
            self.shared.unregister_client(&conn.info);
        }
    }

    fn housekeeping(&mut self) {
        self.limits = limits_from(&self.shared);
        self.busy_poll = Duration::from_micros(self.shared.config().busy_poll_us);
        self.keepalive = self.shared.config().tcp_keepalive;
        self.close_clients(true);
    }

    /// Closes the connections CLIENT KILL marked, and with `idle_too` those past `timeout`.
    fn close_clients(&mut self, idle_too: bool) {
        let timeout = if idle_too { self.shared.config().timeout } else { 0 };
        let now = super::shared::unix_ms();
        let mut to_close = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            let idle = timeout > 0
                && !conn.info.memcache
                && now.saturating_sub(conn.info.last_active_ms.load(Ordering::Relaxed)) / 1000 >= timeout;
            if conn.info.kill.load(Ordering::Relaxed) || idle {
                to_close.push(key);
            }
        }
        for key in to_close {
            self.close(key);
        }
    }

    /// Shutdown: stop accepting, give each client one last chance to receive its replies.
    fn stop(&mut self) {
        for (l, _) in self.listeners.iter_mut() {
            let _ = self.poll.registry().deregister(l);
        }
        self.listeners.clear();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.close_soon();
                conn.drive(&self.shared, &self.limits, false, false);
            }
            self.close(key);
        }
    }
}

fn limits_from(shared: &Shared) -> ConnLimits {
    let cfg = shared.config();
    ConnLimits {
        resp: cachette_resp::Limits { max_bulk_len: cfg.proto_max_bulk_len, ..Default::default() },
        memcache: cachette_memcache::Limits { max_item_size: cfg.item_size_max, ..Default::default() },
        query_buffer: cfg.client_query_buffer_limit,
        output: cfg.client_output_buffer_limit,
    }
}
