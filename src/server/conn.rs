//! One client connection: its socket, read and write buffers, and the protocol session.
//!
//! `Conn::drive` is the whole per-connection state machine, run whenever the socket is readable
//! or writable (mio is edge-triggered, so it reads until `WouldBlock` and remembers whether more
//! input may be waiting):
//!
//! ```text
//!   loop: parse + execute every complete buffered request (stop early if output is backed up)
//!         write pending output until WouldBlock
//!         output still over the soft limit? -> wait for WRITABLE, do not read more (backpressure)
//!         read more input (bounded per round) -> none? stop
//! ```
//!
//! Replies of a whole pipelined batch accumulate in one output buffer and leave in as few
//! `write` calls as the kernel allows.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cachette_resp as resp;
use mio::net::TcpStream;

use super::shared::{unix_ms, ClientInfo, Shared};
use crate::commands::{self, Argv, Session};
use crate::config::ClientClass;
use crate::memcache;

/// Which protocol a connection speaks (fixed by the port it arrived on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Redis serialization protocol.
    Resp,
    /// memcached: text + meta, or binary, chosen per connection by its first byte.
    Memcache,
}

/// Stop executing pipelined commands while this much output is waiting for the socket.
const OUTPUT_SOFT_LIMIT: usize = 1 << 20;
/// Bytes read per round before the buffered requests are executed.
const READ_ROUND: usize = 256 * 1024;
/// Initial read buffer size, and the size an idle grown buffer shrinks back to.
const READ_BUF: usize = 16 * 1024;

/// Limits read from the configuration, refreshed by the worker periodically.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// RESP bounds.
    pub resp: resp::Limits,
    /// memcached bounds.
    pub memcache: cachette_memcache::Limits,
    /// Largest query buffer before the client is dropped.
    pub query_buffer: usize,
    /// `client-output-buffer-limit`, by client class.
    pub output: [crate::config::ObufLimit; 3],
}

/// Input bytes not yet consumed are `buf[start..end]`; the tail beyond `end` is free space.
/// Kept at its full length so reads need no zeroing.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Makes room for at least `READ_BUF / 2` more bytes: compacts, then doubles if still full.
    fn reserve(&mut self) {
        if self.buf.len() - self.end >= READ_BUF / 2 {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_BUF / 2 {
            let new_len = (self.buf.len() * 2).max(READ_BUF);
            self.buf.resize(new_len, 0);
        }
    }

    fn consumed_all(&mut self) {
        self.start = 0;
        self.end = 0;
        if self.buf.len() > 4 * READ_BUF {
            // A big request grew the buffer; don't keep it for an idle client.
            self.buf = vec![0; READ_BUF];
        }
    }
}

/// A connection's blocked state.
#[derive(Debug, Clone, Copy)]
pub struct Blocked {
    /// Unix ms when the command times out; None waits forever.
    pub deadline: Option<u64>,
    /// What it answers then.
    pub on_timeout: crate::commands::TimeoutReply,
}

/// See the module documentation.
pub struct Conn {
    stream: TcpStream,
    proto: Proto,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Input may be waiting: no `WouldBlock` seen since the last readable event.
    read_ready: bool,
    /// The peer shut down its side (the poller said so): read on to the end of the stream
    /// rather than trusting a short read, because no further event will announce the EOF.
    read_closed: bool,
    /// Close once the output is flushed (QUIT, protocol error).
    closing: bool,
    /// Close now (peer gone, I/O error, limit hit).
    dead: bool,
    /// WRITABLE interest is registered.
    pub writable_registered: bool,
    /// The worker has this connection on its list of output to write after the poll pass.
    pub flush_queued: bool,
    args: resp::Args,
    session: Session,
    /// memcached: bytes of a refused data block still to discard.
    swallow: usize,
    /// memcached: the protocol this connection speaks: by `memcache-protocol` (memcached -B),
    /// or with `auto` by its first byte (0x80: binary, anything else: text and meta), as
    /// memcached decides. `None` until that byte arrives.
    mc_binary: Option<bool>,
    /// memcached binary protocol state (SASL).
    bin: memcache::binary::BinarySession,
    /// The worker that owns this connection (blocked clients are woken through it).
    worker: usize,
    /// Blocked in BLPOP and friends: no further command runs until the reply arrives or this
    /// deadline (unix ms; None = never) passes.
    blocked: Option<Blocked>,
    /// Its next command waits for a CLIENT PAUSE to end.
    paused: bool,
    /// The record other threads see (its `last_active_ms` drives the idle timeout).
    pub info: Arc<ClientInfo>,
    /// Unix ms since when the pending output has been over its class's soft limit.
    soft_limit_since: Option<u64>,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, proto: Proto, info: Arc<ClientInfo>, worker: usize) -> Conn {
        Conn {
            stream,
            proto,
            rbuf: ReadBuf { buf: Vec::new(), start: 0, end: 0 },
            wbuf: Vec::new(),
            wpos: 0,
            read_ready: true,
            read_closed: false,
            closing: false,
            dead: false,
            writable_registered: false,
            flush_queued: false,
            args: resp::Args::new(),
            session: Session::new(info.clone()),
            swallow: 0,
            mc_binary: None,
            bin: Default::default(),
            worker,
            blocked: None,
            paused: false,
            info,
            soft_limit_since: None,
        }
        .on_worker(worker)
    }

    fn on_worker(mut self, worker: usize) -> Conn {
        self.session.worker = worker;
        self
    }

    /// Sets the session's authentication state at accept time.
    pub fn set_authenticated(&mut self, yes: bool) {
        self.session.authenticated = yes;
    }

    /// The socket, for (re)registration.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The poller reported that the peer closed its side: the data and the end of the stream
    /// may come in one event, so the next read must go on until it sees the end.
    pub fn note_read_closed(&mut self) {
        self.read_closed = true;
    }

    /// True when the connection should be dropped now.
    pub fn is_dead(&self) -> bool {
        self.dead || (self.closing && self.wpos >= self.wbuf.len())
    }

    /// True when output is waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// True once PSYNC / SYNC asked for the connection to become a replica stream.
    pub fn wants_handoff(&self) -> bool {
        self.session.handoff.is_some() && !self.dead
    }

    /// Gives the socket, unread input and unwritten output to the replication thread (the
    /// caller has deregistered the socket from its poll).
    pub fn into_handoff(mut self) -> crate::replication::primary::Handoff {
        let request = self.session.handoff.take().unwrap_or(crate::replication::SyncRequest::Sync);
        let hello = crate::commands::replication::take_hello(&mut self.session);
        crate::replication::primary::Handoff {
            output: self.wbuf[self.wpos..].to_vec(),
            input: self.rbuf.buf[self.rbuf.start..self.rbuf.end].to_vec(),
            stream: self.stream,
            info: self.info,
            hello,
            request,
        }
    }

    /// Marks the connection to be closed after its pending output (shutdown, CLIENT KILL).
    pub fn close_soon(&mut self) {
        self.closing = true;
    }

    /// Runs the connection's state machine; see the module documentation.
    ///
    /// With `defer_flush` the output is left in the buffer (unless it passes the soft limit or
    /// the connection is closing) for the worker to write after it has served every ready
    /// connection of this poll pass, as redis-server writes replies just before it sleeps: the
    /// peer then wakes once for a batch of replies rather than once per reply.
    pub fn drive(&mut self, shared: &Shared, limits: &ConnLimits, readable: bool, defer_flush: bool) {
        if readable {
            self.read_ready = true;
        }
        loop {
            let before = self.rbuf.pending();
            // Execution is skipped while output is over the soft limit; once the socket takes
            // that output the buffered pipeline must run again.
            let output_was_full = self.wbuf.len() - self.wpos > OUTPUT_SOFT_LIMIT;
            if before > 0 {
                self.execute_buffered(shared, limits);
            }
            if self.wants_handoff() {
                return;
            }
            let progressed = self.rbuf.pending() < before || output_was_full;
            let over_limit = self.wbuf.len() - self.wpos > OUTPUT_SOFT_LIMIT;
            if (!defer_flush || over_limit || self.closing) && self.flush(shared).is_err() {
                self.dead = true;
                return;
            }
            if self.dead || self.closing || self.wbuf.len() - self.wpos > OUTPUT_SOFT_LIMIT {
                return;
            }
            if progressed && self.rbuf.pending() > 0 {
                // Execution stopped at the output limit and the socket has taken the output
                // since: run the rest of the pipeline rather than wait for input that may never
                // come. (No progress means the rest is an incomplete command: go read.)
                continue;
            }
            if !self.read_ready {
                return;
            }
            match self.read_round(shared, limits) {
                Ok(0) if self.read_ready => {
                    // Peer closed its side: finish what we can reply, then go.
                    self.closing = true;
                    self.execute_buffered(shared, limits);
                    let _ = self.flush(shared);
                    self.dead = true;
                    return;
                }
                Ok(0) => return,
                Ok(_) => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Reads up to `READ_ROUND` bytes. Returns the count; 0 with `read_ready` still set means
    /// end of stream, 0 with it cleared means `WouldBlock`.
    fn read_round(&mut self, shared: &Shared, limits: &ConnLimits) -> io::Result<usize> {
        let mut total = 0;
        while total < READ_ROUND {
            if self.rbuf.pending() >= limits.query_buffer {
                // redis-server drops a client whose query buffer passes client-query-buffer-limit.
                self.dead = true;
                return Ok(total.max(1));
            }
            self.rbuf.reserve();
            let end = self.rbuf.end;
            let room = self.rbuf.buf.len() - end;
            match self.stream.read(&mut self.rbuf.buf[end..]) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.rbuf.end += n;
                    total += n;
                    if n < room && !self.read_closed {
                        // A short read from a stream socket means its receive queue is empty
                        // right now; anything arriving later raises a new edge. Skipping the
                        // read that would only say WouldBlock saves a syscall per request
                        // for unpipelined clients.
                        self.read_ready = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_ready = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        shared.counters.net_input_bytes.fetch_add(total as u64, Ordering::Relaxed);
        self.info.qbuf.store(self.rbuf.pending(), Ordering::Relaxed);
        Ok(total)
    }

    /// Writes pending output until done or `WouldBlock`.
    fn flush(&mut self, shared: &Shared) -> io::Result<()> {
        if self.wpos < self.wbuf.len() {
            // Under appendfsync always, no reply leaves before the effects logged so far are
            // on disk (see `persist::aof`).
            shared.aof.wait_durable(&shared.engine.feed);
        }
        let start = self.wpos;
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        shared.counters.net_output_bytes.fetch_add((self.wpos - start) as u64, Ordering::Relaxed);
        if self.wpos == self.wbuf.len() {
            self.wpos = 0;
            self.wbuf.clear();
            if self.wbuf.capacity() > 1 << 20 {
                self.wbuf = Vec::new();
            }
        }
        self.info.obuf.store(self.wbuf.len() - self.wpos, Ordering::Relaxed);
        Ok(())
    }

    /// Parks the client: its command waits in the registry, its pipeline stays buffered.
    fn block(&mut self, shared: &Shared, argv: Vec<Vec<u8>>, req: crate::commands::BlockRequest) {
        let waiter = super::blocking::Waiter {
            id: self.info.id,
            worker: self.worker,
            db: self.session.db,
            version: self.session.version,
            info: self.info.clone(),
            argv,
            keys: req.keys.clone(),
        };
        shared.blocking.register(shared, waiter);
        // A value stored under one of the keys between the command finding them empty and this
        // registration signalled nobody (nothing watched them yet: another worker's push can
        // land in that gap): look again now that they are watched, or the wake-up is lost for
        // good. A key found is queued as ready; the caller serves it (at worst the command runs
        // again and waits on).
        let (db, now) = (self.session.db, unix_ms());
        for key in &req.keys {
            let h = shared.engine.hashed(key);
            if shared.engine.lock_one(&h).peek(db, &h, now).is_some() {
                shared.engine.ready.stored(db, key);
            }
        }
        if let crate::commands::TimeoutReply::Replicas { offset, numreplicas } = req.on_timeout {
            // WAIT: only now that the client is in the registry can the replication thread
            // claim it (its `blocking.cancel` would fail before, and the answer be lost).
            shared.repl.add_wait(crate::replication::WaitRequest {
                id: self.info.id,
                worker: self.worker,
                numreplicas,
                offset,
                since_ms: unix_ms(),
            });
        }
        self.blocked = Some(Blocked { deadline: req.deadline, on_timeout: req.on_timeout });
    }

    /// The blocked command's deadline, if it is blocked with one.
    pub fn block_deadline(&self) -> Option<u64> {
        self.blocked.and_then(|b| b.deadline)
    }

    /// True while blocked.
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// True while its next command waits for a CLIENT PAUSE to end.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Appends output produced elsewhere (MONITOR lines). A consumer that falls `limit` bytes
    /// behind is dropped, as redis-server drops a replica-class client past its output limit.
    pub fn push_output(&mut self, bytes: &[u8], limit: usize) {
        self.wbuf.extend_from_slice(bytes);
        if self.wbuf.len() - self.wpos > limit {
            self.dead = true;
        }
    }

    /// A ready key served the blocked command: append its reply and resume the pipeline.
    pub fn unblock_with(&mut self, reply: &[u8]) {
        self.wbuf.extend_from_slice(reply);
        self.blocked = None;
    }

    /// The deadline passed: answer the timeout reply, unless a server claimed the client first
    /// (its reply is then on the way).
    pub fn time_out(&mut self, shared: &Shared) {
        let Some(b) = self.blocked else { return };
        if !shared.blocking.cancel(shared, self.info.id) {
            return;
        }
        let mut enc = cachette_resp::Encoder::new(&mut self.wbuf, self.session.version);
        match b.on_timeout {
            crate::commands::TimeoutReply::NullArray => enc.null_array(),
            crate::commands::TimeoutReply::Replicas { offset, .. } => {
                shared.repl.cancel_wait(self.info.id);
                enc.int(shared.repl.acked(offset) as i64);
            }
        }
        self.blocked = None;
    }

    /// Appends a push (pub/sub message) another thread delivered, then applies the output
    /// buffer limit of the client's class: over the hard limit, or over the soft limit for
    /// longer than its seconds, the client is dropped (its pending output with it), as
    /// redis-server drops it. This bounds what a subscriber that never reads can cost.
    pub fn push(&mut self, bytes: &[u8], limits: &ConnLimits, now: u64) {
        if self.dead {
            return;
        }
        self.wbuf.extend_from_slice(bytes);
        let class = if self.session.subs.active() { ClientClass::PubSub } else { ClientClass::Normal };
        let limit = limits.output[class as usize];
        let pending = (self.wbuf.len() - self.wpos) as u64;
        let over_hard = limit.hard > 0 && pending > limit.hard;
        let over_soft = limit.soft > 0 && pending > limit.soft;
        if !over_soft {
            self.soft_limit_since = None;
        }
        let soft_expired = over_soft && {
            let since = *self.soft_limit_since.get_or_insert(now);
            now.saturating_sub(since) / 1000 > limit.soft_secs
        };
        if over_hard || soft_expired {
            super::log::log(
                crate::config::LogLevel::Warning,
                &format!(
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    self.info.id, self.info.addr
                ),
            );
            self.dead = true;
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
    }

    /// Drops every pub/sub subscription and turns client tracking off (the connection is going
    /// away).
    pub fn leave_pubsub(&mut self, shared: &Shared) {
        if self.session.subs.active() {
            crate::commands::pubsub::leave_all(shared, &mut self.session);
        }
        crate::commands::tracking::leave(shared, &mut self.session);
    }

    /// Leaves the registry when the connection goes away while blocked.
    pub fn forget_block(&mut self, shared: &Shared) {
        if self.blocked.take().is_some() {
            shared.blocking.cancel(shared, self.info.id);
        }
    }

    fn execute_buffered(&mut self, shared: &Shared, limits: &ConnLimits) {
        // One clock read per batch: every command of a pipelined batch sees the same `now`,
        // as in redis-server, which also caches the time per event-loop iteration.
        let now = unix_ms();
        self.info.last_active_ms.store(now, Ordering::Relaxed);
        match self.proto {
            Proto::Resp => self.execute_resp(shared, limits, now),
            Proto::Memcache => self.execute_memcache(shared, limits, now),
        }
        if self.rbuf.pending() == 0 {
            self.rbuf.consumed_all();
        }
        self.info.qbuf.store(self.rbuf.pending(), Ordering::Relaxed);
    }

    fn execute_resp(&mut self, shared: &Shared, limits: &ConnLimits, now: u64) {
        self.paused = false;
        while !self.closing && self.blocked.is_none() && self.wbuf.len() - self.wpos <= OUTPUT_SOFT_LIMIT {
            let data = &self.rbuf.buf[self.rbuf.start..self.rbuf.end];
            if data.is_empty() {
                break;
            }
            match resp::parse_request(data, &limits.resp, &mut self.args) {
                Ok(resp::Status::Complete(n)) => {
                    let mut parked = None;
                    if !self.args.is_empty() {
                        let argv = Argv::new(&data[..n], &self.args);
                        // CLIENT PAUSE: the command stays buffered until the pause ends.
                        if shared.pause.until() > now && commands::must_wait(shared, &self.session, &argv, now) {
                            self.paused = true;
                            break;
                        }
                        commands::execute(shared, &mut self.session, &argv, &mut self.wbuf, now);
                        if self.session.close_after_reply {
                            self.closing = true;
                        }
                        if self.session.handoff.is_some() {
                            // PSYNC / SYNC: the rest of the input belongs to the replication
                            // thread, which takes the connection over (see `into_handoff`).
                            self.rbuf.start += n;
                            break;
                        }
                        if let Some(req) = self.session.block.take() {
                            parked = Some((req, argv.rest(0).map(<[u8]>::to_vec).collect()));
                        }
                    }
                    self.rbuf.start += n;
                    if let Some((req, argv)) = parked {
                        self.block(shared, argv, req);
                    }
                    // Waiters on a key this command made ready are served before this client's
                    // next command runs, as redis-server serves them.
                    if shared.engine.ready.has_ready() {
                        super::blocking::serve(shared);
                    }
                }
                Ok(resp::Status::Incomplete) => break,
                Err(e) => {
                    // The exact bytes: redis-server echoes a stray byte of the request as is,
                    // even when it is not UTF-8.
                    self.wbuf.extend_from_slice(b"-ERR ");
                    self.wbuf.extend_from_slice(e.as_bytes());
                    self.wbuf.extend_from_slice(b"\r\n");
                    self.closing = true;
                    break;
                }
            }
        }
    }

    fn execute_memcache(&mut self, shared: &Shared, limits: &ConnLimits, now: u64) {
        use cachette_memcache::Parsed;
        let binary = match self.mc_binary {
            Some(b) => b,
            None => {
                let Some(&first) = self.rbuf.buf[self.rbuf.start..self.rbuf.end].first() else { return };
                // `memcache-protocol` (memcached -B) may fix the protocol; with SASL memcached
                // speaks only the binary protocol. Either way a client of the other protocol has
                // its bytes read as that protocol's (a text line as a binary header is closed for
                // its bad magic).
                use crate::config::MemcacheProtocol;
                let fixed = shared.config().memcache_protocol;
                let b = shared.memcache_sasl.is_some()
                    || match fixed {
                        MemcacheProtocol::Binary => true,
                        MemcacheProtocol::Ascii => false,
                        MemcacheProtocol::Auto => first == cachette_memcache::binary::REQUEST_MAGIC,
                    };
                self.mc_binary = Some(b);
                b
            }
        };
        if binary {
            self.execute_memcache_binary(shared, limits, now);
            return;
        }
        while !self.closing && self.wbuf.len() - self.wpos <= OUTPUT_SOFT_LIMIT {
            if self.swallow > 0 && !self.discard_swallowed() {
                break;
            }
            let data = &self.rbuf.buf[self.rbuf.start..self.rbuf.end];
            if data.is_empty() {
                break;
            }
            match cachette_memcache::parse(data, &limits.memcache) {
                Parsed::Complete(cmd, n) => {
                    let act = memcache::execute(shared, &mut self.session, cmd, &mut self.wbuf, now);
                    // Closes the effect a memcached write opened (see `memcache::lock_key`).
                    crate::engine::effects::end();
                    self.rbuf.start += n;
                    if shared.engine.ready.has_ready() {
                        super::blocking::serve(shared);
                    }
                    if act == memcache::Action::Close {
                        self.closing = true;
                    }
                }
                Parsed::Incomplete => break,
                Parsed::Error { reply, consumed, swallow, close } => {
                    if swallow > 0 {
                        // Only "too large" refusals swallow with that reply or none (noreply).
                        if reply.is_empty() || reply == cachette_memcache::reply::SERVER_ERROR_TOO_LARGE {
                            shared.memcache.store_too_large.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        if let Some(refused) = cachette_memcache::request::refused_key(data, &limits.memcache) {
                            let mut scratch = [0u8; 512];
                            if let Some(key) = refused.decode(&mut scratch) {
                                memcache::unlink(shared, key, now);
                                crate::engine::effects::end();
                            }
                        }
                    }
                    self.wbuf.extend_from_slice(reply);
                    self.rbuf.start += consumed.min(self.rbuf.pending());
                    self.swallow = swallow;
                    if close {
                        self.closing = true;
                    }
                }
            }
        }
    }

    /// Discards what has arrived of a refused data block (memcached's swallow); true once it has
    /// all gone and parsing may resume.
    fn discard_swallowed(&mut self) -> bool {
        let k = self.swallow.min(self.rbuf.pending());
        self.rbuf.start += k;
        self.swallow -= k;
        self.swallow == 0
    }

    /// The binary-protocol twin of the loop above: same swallow countdown, same output bound.
    fn execute_memcache_binary(&mut self, shared: &Shared, limits: &ConnLimits, now: u64) {
        use cachette_memcache::binary::{self, Parsed};
        while !self.closing && self.wbuf.len() - self.wpos <= OUTPUT_SOFT_LIMIT {
            if self.swallow > 0 && !self.discard_swallowed() {
                break;
            }
            let data = &self.rbuf.buf[self.rbuf.start..self.rbuf.end];
            if data.is_empty() {
                break;
            }
            match binary::parse(data, &limits.memcache) {
                Parsed::Complete(req, n) => {
                    let act =
                        memcache::binary::execute(shared, &mut self.session, &mut self.bin, req, &mut self.wbuf, now);
                    crate::engine::effects::end();
                    self.rbuf.start += n;
                    if shared.engine.ready.has_ready() {
                        super::blocking::serve(shared);
                    }
                    if act == memcache::Action::Close {
                        self.closing = true;
                    }
                }
                Parsed::Incomplete => break,
                Parsed::Refused(r) => {
                    let close = memcache::binary::refuse(shared, &self.bin, &r, &mut self.wbuf, now);
                    crate::engine::effects::end();
                    self.rbuf.start += r.consumed.min(self.rbuf.pending());
                    self.swallow = r.swallow;
                    if close {
                        self.closing = true;
                    }
                }
                // memcached closes on a bad magic byte without a word.
                Parsed::BadMagic => {
                    self.closing = true;
                    self.rbuf.start = self.rbuf.end;
                }
            }
        }
    }
}
