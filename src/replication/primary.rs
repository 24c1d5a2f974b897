//! The primary side: one thread, `cachette-repl`, owns every attached replica's socket.
//!
//! ```text
//!   worker: PSYNC/SYNC ─ Handoff{socket, leftover bytes} ─> Repl inbox + Waker
//!   cachette-repl loop:
//!     drain the feed's replication bytes ─> backlog (in the feed) + each replica's buffer
//!     adopt handed-over sockets: +CONTINUE from the backlog, or queue a full sync
//!     full sync: lock every shard ─ read the offset ─ fork ─ unlock
//!                child (diskless): +FULLRESYNC, $EOF:<mark>, RDB, <mark> straight into the socket
//!                child (disk):     RDB into temp-repl-<pid>.rdb; parent then sends $<len> + file
//!     read REPLCONF ACKs, write buffers, PING every repl-ping-replica-period, answer WAITs,
//!     enforce client-output-buffer-limit replica and repl-timeout
//! ```
//!
//! Why a thread of its own rather than keeping a replica on the worker that accepted it: the
//! fan-out of the stream to N replicas, the fork for a sync and the slow snapshot transfer are
//! then done once, off the threads that serve clients; a worker's loop stays exactly what it
//! was (a replica costs it nothing once handed over), and the stream reaches replicas in one
//! place, in stream order, which makes per-replica offsets trivial to keep.
//!
//! The offset in +FULLRESYNC is the replication stream's offset read while this thread holds
//! every shard lock across the fork (as BGSAVE does): effects enter the feed under their shard
//! locks, so the child's copy-on-write image holds exactly the effects before that offset, and
//! the replica's stream starts right after it, with a SELECT (the stream's database cursor is
//! reset under the same locks). The soundness argument for forking a multi-threaded process is
//! `persist`'s: the child touches only the shards (held by the forking thread), the allocator
//! (fork-safe in glibc), and raw file descriptors, and leaves with `_exit`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::{Hello, ReplicaState, ReplicaView, SyncRequest};
use crate::config::LogLevel;
use crate::server::log::log;
use crate::server::{unix_ms, ClientInfo, Shared};

/// A connection a worker hands over after PSYNC / SYNC.
pub struct Handoff {
    /// The socket (deregistered from the worker's poll).
    pub stream: TcpStream,
    /// Its client record (it stays in the client registry while it is a replica).
    pub info: Arc<ClientInfo>,
    /// Replies the worker had not written yet (they go first).
    pub output: Vec<u8>,
    /// Input after the PSYNC command (REPLCONF ACKs that came early).
    pub input: Vec<u8>,
    /// What it said with REPLCONF.
    pub hello: Hello,
    /// PSYNC or SYNC.
    pub request: SyncRequest,
}

const WAKER: Token = Token(usize::MAX);
/// Largest replica input kept unparsed (ACKs are tiny; anything bigger is not a replica).
const MAX_INPUT: usize = 1 << 20;
/// How much of a snapshot file is read per write round.
const FILE_CHUNK: usize = 256 * 1024;

/// Starts the replication thread and hooks it to the feed.
pub fn start(shared: Arc<Shared>) -> io::Result<()> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    shared.repl.set_waker(waker.clone());
    shared.engine.feed.set_replication_waker(Box::new(move || {
        let _ = waker.wake();
    }));
    let mut p = Primary {
        poll,
        shared,
        replicas: Slab::new(),
        chunk: Vec::new(),
        last_ping: unix_ms(),
        no_replicas_since: unix_ms(),
        last_newline: unix_ms(),
        hot_until: 0,
        args: cachette_resp::Args::new(),
    };
    std::thread::Builder::new().name("cachette-repl".into()).spawn(move || p.run())?;
    Ok(())
}

enum Phase {
    /// Waiting for its snapshot to start (the diskless delay).
    Waiting { since: u64, diskless: bool },
    /// A child writes its snapshot: into the socket (diskless, `tmp` None) or into `tmp`.
    Child { pid: libc::pid_t, tmp: Option<PathBuf> },
    /// Sending the snapshot file: `pre` holds the next bytes, `left` are still in the file.
    Bulk { file: File, left: u64 },
    /// Streaming.
    Online,
}

struct Replica {
    stream: TcpStream,
    info: Arc<ClientInfo>,
    hello: Hello,
    /// PSYNC (true) or the old SYNC.
    psync: bool,
    phase: Phase,
    /// Stream offset up to which its buffer holds (or it was sent) the stream.
    next: u64,
    /// Bytes before the stream (snapshot header and file chunks), written first.
    pre: Vec<u8>,
    ppos: usize,
    /// The stream from `next - obuf.len() + opos` on.
    obuf: Vec<u8>,
    opos: usize,
    ibuf: Vec<u8>,
    ack: u64,
    ack_ms: u64,
    /// After a diskless sync the stream waits for the replica's first ACK: sent right behind
    /// the EOF mark, it could arrive in the same read as the mark, and a replica that looks
    /// for the mark at the end of what it read would take the stream for snapshot bytes and
    /// wait for ever (Redis holds the stream back the same way).
    stream_on_ack: bool,
    soft_since: Option<u64>,
    dead: bool,
}

impl Replica {
    fn state(&self) -> ReplicaState {
        match self.phase {
            Phase::Waiting { .. } | Phase::Child { .. } => ReplicaState::WaitBgsave,
            Phase::Bulk { .. } => ReplicaState::SendBulk,
            Phase::Online => ReplicaState::Online,
        }
    }

    fn pending(&self) -> usize {
        self.obuf.len() - self.opos + self.pre.len() - self.ppos
    }

    fn ip(&self) -> String {
        self.hello.ip.clone().unwrap_or_else(|| self.info.addr.ip().to_string())
    }
}

struct Primary {
    poll: Poll,
    shared: Arc<Shared>,
    replicas: Slab<Replica>,
    /// The last drained stream bytes.
    chunk: Vec<u8>,
    last_ping: u64,
    /// Unix ms since when no replica is attached (repl-backlog-ttl).
    no_replicas_since: u64,
    /// Unix ms of the last keep-alive newline to replicas waiting for their snapshot.
    last_newline: u64,
    /// Unix ms until which the stream counts as busy (bytes were drained less than
    /// [`HOT_MS`] ago): the thread then polls every millisecond instead of asking writers to
    /// wake it, so a steady load costs its writers no wake-ups (each one is a context switch
    /// on the writer's core).
    hot_until: u64,
    args: cachette_resp::Args,
}

/// What one non-blocking write of a replica's buffer came to.
enum Step {
    /// Progress (or an interrupted call): write again.
    Again,
    /// The socket is full: wait for it to drain.
    Blocked,
    /// The replica is gone.
    Dead,
}

/// Writes what is left of `buf` from `*pos`, advancing `*pos` and `*written`.
fn write_step(stream: &mut TcpStream, buf: &[u8], pos: &mut usize, written: &mut u64) -> Step {
    match stream.write(&buf[*pos..]) {
        Ok(0) => Step::Dead,
        Ok(n) => {
            *pos += n;
            *written += n as u64;
            Step::Again
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Blocked,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Again,
        Err(_) => Step::Dead,
    }
}

/// How long after the last drained bytes the stream counts as busy (see `Primary::hot_until`).
const HOT_MS: u64 = 10;

impl Primary {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            if self.shared.shutdown.load(Ordering::Acquire) {
                self.close_all();
                return;
            }
            // Busy (bytes arrived since the last drain): come back in a millisecond, which
            // batches the stream into few writes and spares writers the wake-up; idle: sleep
            // until woken (by an append, a hand-over, a WAIT) or the housekeeping tick.
            let hot = unix_ms() < self.hot_until;
            let wake_on_append = !self.replicas.is_empty() && !hot;
            let timeout = if !self.shared.engine.feed.replication_park(wake_on_append) || hot {
                1
            } else if self.replicas.is_empty() {
                200
            } else {
                20
            };
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log(LogLevel::Warning, &format!("replication poll failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            self.drain();
            for h in self.shared.repl.take_inbox() {
                if let Some(key) = self.adopt(h) {
                    // ACKs that came with the PSYNC.
                    self.parse_input(key);
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let key = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read(key);
                }
            }
            self.housekeeping();
            // Writes after everything that may have added output this pass.
            let keys: Vec<usize> = self.replicas.iter().map(|(k, _)| k).collect();
            for key in keys {
                self.flush(key);
            }
            self.reap_dead();
            self.publish();
            self.answer_waits();
        }
    }

    /// Moves the feed's new replication bytes into the backlog and every replica's buffer.
    fn drain(&mut self) {
        self.chunk.clear();
        let Some(start) = self.shared.engine.feed.drain_replication(&mut self.chunk) else { return };
        if self.chunk.is_empty() {
            return;
        }
        let end = start + self.chunk.len() as u64;
        let now = unix_ms();
        self.hot_until = now + HOT_MS;
        let limit = self.shared.config().client_output_buffer_limit[crate::config::ClientClass::Replica as usize];
        for (_, r) in self.replicas.iter_mut() {
            if matches!(r.phase, Phase::Waiting { .. }) || r.next >= end || r.dead {
                continue;
            }
            let from = r.next.max(start);
            r.obuf.extend_from_slice(&self.chunk[(from - start) as usize..]);
            r.next = end;
            check_output_limit(r, limit, now);
        }
    }

    fn adopt(&mut self, h: Handoff) -> Option<usize> {
        let key = self.replicas.vacant_key();
        let mut stream = h.stream;
        if let Err(e) = self.poll.registry().register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE)
        {
            log(LogLevel::Warning, &format!("could not register a replica socket: {e}"));
            self.shared.unregister_client(&h.info);
            return None;
        }
        let now = unix_ms();
        // CLIENT LIST flag S, CLIENT KILL TYPE replica, and not a normal client any more.
        h.info.set_kind(crate::server::shared::ClientKind::Replica);
        let mut r = Replica {
            stream,
            info: h.info,
            hello: h.hello,
            psync: matches!(h.request, SyncRequest::Psync { .. }),
            phase: Phase::Online,
            next: 0,
            pre: h.output,
            ppos: 0,
            obuf: Vec::new(),
            opos: 0,
            ibuf: h.input,
            ack: 0,
            ack_ms: now,
            stream_on_ack: false,
            soft_since: None,
            dead: false,
        };
        let shared = &self.shared;
        let feed = &shared.engine.feed;
        let cfg = shared.config();
        let (backlog_size, diskless) = (cfg.repl_backlog_size, cfg.repl_diskless_sync);
        drop(cfg);
        let replica_name = format!("{}:{}", r.ip(), r.hello.port);
        if let SyncRequest::Psync { replid, offset } = &h.request {
            if let Some(continued) = self.try_partial(&mut r, replid, *offset) {
                log(
                    LogLevel::Notice,
                    &format!(
                        "Partial resynchronization request from {replica_name} accepted. Sending {continued} bytes of backlog starting from offset {offset}."
                    ),
                );
                shared.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
                self.no_replicas_since = now;
                return Some(self.replicas.insert(r));
            }
            if replid != "?" {
                shared.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
            }
            log(LogLevel::Notice, &format!("Replica {replica_name} asks for synchronization"));
            log(LogLevel::Notice, &format!("Full resync requested by replica {replica_name}"));
        } else {
            log(LogLevel::Notice, &format!("Replica {replica_name} asks for synchronization (SYNC)"));
        }
        shared.repl.sync_full.fetch_add(1, Ordering::Relaxed);
        feed.start_replication(backlog_size);
        // The old SYNC cannot read an EOF-marked payload, nor can a replica without capa eof.
        let diskless = diskless && r.psync && r.hello.capa_eof;
        r.phase = Phase::Waiting { since: now, diskless };
        self.no_replicas_since = now;
        Some(self.replicas.insert(r))
    }

    /// +CONTINUE when `replid` is ours (or our previous one, up to where it was valid) and the
    /// backlog still holds `offset`. Returns the bytes of backlog sent.
    fn try_partial(&self, r: &mut Replica, replid: &str, offset: i64) -> Option<usize> {
        let ids = self.shared.repl.ids();
        let ours = replid == ids.replid || (replid == ids.replid2 && offset <= ids.second_repl_offset);
        if !ours || offset < 1 {
            return None;
        }
        let from = offset as u64 - 1;
        let mut missed = Vec::new();
        let end = self.shared.engine.feed.with_backlog(|b| b.copy_from(from, &mut missed).then(|| b.end()))??;
        let line = if r.hello.capa_psync2 { format!("+CONTINUE {}\r\n", ids.replid) } else { "+CONTINUE\r\n".into() };
        r.pre.extend_from_slice(line.as_bytes());
        let n = missed.len();
        r.obuf = missed;
        r.next = end;
        r.ack = from;
        r.phase = Phase::Online;
        Some(n)
    }

    /// Reads what a replica sent: REPLCONF ACK <offset> (anything else is ignored, as a
    /// primary ignores its replicas' other chatter).
    fn read(&mut self, key: usize) {
        let Some(r) = self.replicas.get_mut(key) else { return };
        if matches!(r.phase, Phase::Child { tmp: None, .. }) {
            // The diskless child made the socket blocking; its input waits (re-read when the
            // child ends).
            return;
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.stream.read(&mut buf) {
                Ok(0) => {
                    r.dead = true;
                    log(LogLevel::Notice, &format!("Connection with replica {}:{} lost.", r.ip(), r.hello.port));
                    break;
                }
                Ok(n) => {
                    r.ibuf.extend_from_slice(&buf[..n]);
                    self.shared.counters.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    if r.ibuf.len() > MAX_INPUT {
                        r.dead = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    r.dead = true;
                    break;
                }
            }
        }
        self.parse_input(key);
    }

    fn parse_input(&mut self, key: usize) {
        let Some(r) = self.replicas.get_mut(key) else { return };
        let limits = cachette_resp::Limits::default();
        let mut used = 0;
        loop {
            let data = &r.ibuf[used..];
            if data.is_empty() {
                break;
            }
            match cachette_resp::parse_request(data, &limits, &mut self.args) {
                Ok(cachette_resp::Status::Complete(n)) => {
                    if self.args.len() >= 3
                        && self.args.get(data, 0).eq_ignore_ascii_case(b"replconf")
                        && self.args.get(data, 1).eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) = crate::types::string::parse_u64(self.args.get(data, 2)) {
                            r.ack = r.ack.max(off);
                            r.ack_ms = unix_ms();
                            r.stream_on_ack = false;
                        }
                    }
                    used += n;
                }
                Ok(cachette_resp::Status::Incomplete) => break,
                Err(_) => {
                    r.dead = true;
                    break;
                }
            }
        }
        r.ibuf.drain(..used);
    }

    /// Starts due snapshots, reaps finished children, sends PINGs and GETACKs, applies
    /// repl-timeout, CLIENT KILL, the backlog's size and TTL.
    fn housekeeping(&mut self) {
        let now = unix_ms();
        let cfg = self.shared.config();
        let (delay, max_waiting, ping_period, timeout, backlog_size, ttl, min_write, max_lag) = (
            cfg.repl_diskless_sync_delay,
            cfg.repl_diskless_sync_max_replicas,
            cfg.repl_ping_replica_period,
            cfg.repl_timeout,
            cfg.repl_backlog_size,
            cfg.repl_backlog_ttl,
            u64::from(cfg.min_replicas_to_write),
            u64::from(cfg.min_replicas_max_lag),
        );
        drop(cfg);
        let waiting = self.replicas.iter().filter(|(_, r)| matches!(r.phase, Phase::Waiting { .. })).count() as u64;
        let due: Vec<usize> = self
            .replicas
            .iter()
            .filter(|(_, r)| match r.phase {
                Phase::Waiting { since, diskless } => {
                    !diskless
                        || now.saturating_sub(since) >= delay * 1000
                        || (max_waiting > 0 && waiting >= max_waiting)
                }
                _ => false,
            })
            .map(|(k, _)| k)
            .collect();
        for key in due {
            self.start_sync(key);
        }
        let keys: Vec<usize> = self.replicas.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.reap_child(key) {
                self.read(key);
            }
        }
        for (_, r) in self.replicas.iter_mut() {
            if r.info.kill.load(Ordering::Relaxed) {
                r.dead = true;
            }
            // A PSYNC replica acknowledges every second; silence past repl-timeout is a dead
            // link (the old SYNC never acknowledges).
            if r.psync && matches!(r.phase, Phase::Online) && now.saturating_sub(r.ack_ms) > timeout * 1000 && !r.dead {
                log(
                    LogLevel::Warning,
                    &format!("Disconnecting timedout replica (streaming sync): {}:{}", r.ip(), r.hello.port),
                );
                r.dead = true;
            }
        }
        if now.saturating_sub(self.last_newline) >= 1000 {
            self.last_newline = now;
            // A replica waiting for its snapshot hears a newline every second, as Redis sends
            // it, so its repl-timeout does not fire while a long save runs (never while a
            // diskless child owns the socket).
            for (_, r) in self.replicas.iter_mut() {
                if matches!(r.phase, Phase::Waiting { .. } | Phase::Child { tmp: Some(_), .. }) {
                    r.pre.push(b'\n');
                }
            }
        }
        let feed = &self.shared.engine.feed;
        if !self.replicas.is_empty() {
            self.no_replicas_since = now;
            if now.saturating_sub(self.last_ping) >= ping_period * 1000 {
                self.last_ping = now;
                feed.append_replication_only(&[b"PING"]);
            }
            if self.shared.repl.getack_wanted.swap(false, Ordering::AcqRel) {
                feed.append_replication_only(&[b"REPLCONF", b"GETACK", b"*"]);
            }
        } else {
            self.shared.repl.getack_wanted.store(false, Ordering::Relaxed);
            if ttl > 0 && now.saturating_sub(self.no_replicas_since) >= ttl * 1000 && self.shared.repl.is_master() {
                if feed.replicating() {
                    log(
                        LogLevel::Notice,
                        &format!("Replication backlog freed after {ttl} seconds without connected replicas."),
                    );
                    feed.stop_replication();
                    // No history is left to continue from: a new id, and no previous one (as
                    // Redis does when it frees its backlog).
                    self.shared.repl.set_ids(super::Ids {
                        replid: crate::server::shared::random_hex(40),
                        replid2: "0".repeat(40),
                        second_repl_offset: -1,
                    });
                }
                self.no_replicas_since = now;
            }
        }
        feed.with_backlog(|b| b.resize(backlog_size));
        self.drain();
        self.shared.repl.refresh_good_replicas(min_write, max_lag, now);
    }

    /// Forks the child that writes replica `key`'s snapshot.
    fn start_sync(&mut self, key: usize) {
        let shared = self.shared.clone();
        let Some(r) = self.replicas.get_mut(key) else { return };
        let Phase::Waiting { diskless, .. } = r.phase else { return };
        if diskless && r.ppos < r.pre.len() {
            // Earlier replies must reach the socket before the child starts writing to it.
            return;
        }
        let cfg = shared.config();
        let (checksum, compress, dir) = (cfg.rdbchecksum, cfg.rdbcompression, PathBuf::from(&cfg.dir));
        drop(cfg);
        let replid = shared.repl.ids().replid;
        let mark = crate::server::shared::random_hex(40);
        let fd = r.stream.as_raw_fd();
        let psync = r.psync;
        let parent = std::process::id();
        let feed = &shared.engine.feed;
        let gate = shared.repl.apply_gate();
        let mut locked = shared.engine.lock_all();
        let offset = feed.repl_offset();
        feed.replication_reselect();
        // SAFETY: see the module documentation and `persist`: this thread holds every shard
        // lock across the fork, the child takes no other lock, allocates only through glibc
        // malloc (fork-safe), writes to a file descriptor it owns a copy of, and leaves with
        // _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let now = unix_ms();
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: plain syscalls; a child whose server died is pointless.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() as u32 != parent {
                        libc::_exit(1);
                    }
                }
                if diskless {
                    child_diskless(&mut locked, fd, psync, &replid, offset, &mark, checksum, compress, now).is_ok()
                } else {
                    let tmp = dir.join(format!("temp-repl-{}.rdb", std::process::id()));
                    child_disk(&mut locked, &tmp, checksum, compress, now).is_ok()
                }
            }))
            .unwrap_or(false);
            // SAFETY: ends the child without running destructors or atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        drop(locked);
        drop(gate);
        if pid < 0 {
            log(LogLevel::Warning, &format!("Can't fork for replica sync: {}", io::Error::last_os_error()));
            r.dead = true;
            return;
        }
        r.next = offset;
        r.obuf.clear();
        r.opos = 0;
        r.ack = 0;
        r.ack_ms = unix_ms();
        let target = if diskless { "replicas sockets" } else { "disk" };
        log(LogLevel::Notice, &format!("Starting BGSAVE for SYNC with target: {target} (pid {pid}, offset {offset})"));
        let tmp = (!diskless).then(|| dir.join(format!("temp-repl-{pid}.rdb")));
        if !diskless && psync {
            // The child writes a file; the replica learns the offset now, as Redis tells it
            // when the save starts.
            r.pre.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
        }
        r.phase = Phase::Child { pid, tmp };
        self.drain();
    }

    /// Collects replica `key`'s snapshot child if it ended, and moves the replica on. True when
    /// a diskless child ended (the socket's input, left alone meanwhile, must be read).
    fn reap_child(&mut self, key: usize) -> bool {
        let Some(r) = self.replicas.get_mut(key) else { return false };
        let Phase::Child { pid, ref tmp } = r.phase else { return false };
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == 0 {
            return false;
        }
        let ok = got == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        let tmp = tmp.clone();
        if !ok {
            log(LogLevel::Warning, &format!("Snapshot for replica {}:{} failed", r.ip(), r.hello.port));
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
            r.dead = true;
            return false;
        }
        match tmp {
            None => {
                // The child wrote into the socket in blocking mode; the flag is the socket's,
                // shared with us: make it non-blocking again.
                set_nonblocking(r.stream.as_raw_fd());
                log(LogLevel::Notice, &format!("Synchronization with replica {}:{} succeeded", r.ip(), r.hello.port));
                r.phase = Phase::Online;
                r.ack_ms = unix_ms();
                r.stream_on_ack = true;
                true
            }
            Some(t) => {
                let opened = File::open(&t).and_then(|f| f.metadata().map(|m| (f, m.len())));
                let _ = std::fs::remove_file(&t);
                match opened {
                    Ok((file, len)) => {
                        r.pre.extend_from_slice(format!("${len}\r\n").as_bytes());
                        r.phase = Phase::Bulk { file, left: len };
                        log(
                            LogLevel::Notice,
                            &format!(
                                "Synchronization with replica {}:{} sending {len} bytes of snapshot",
                                r.ip(),
                                r.hello.port
                            ),
                        );
                    }
                    Err(e) => {
                        log(LogLevel::Warning, &format!("Can't open the replica snapshot: {e}"));
                        r.dead = true;
                    }
                }
                false
            }
        }
    }

    /// Writes what replica `key` may be sent now.
    fn flush(&mut self, key: usize) {
        let Some(r) = self.replicas.get_mut(key) else { return };
        if r.dead {
            return;
        }
        // A diskless child owns the socket's output until it ends.
        if matches!(r.phase, Phase::Child { tmp: None, .. }) {
            return;
        }
        let mut written = 0u64;
        loop {
            if r.ppos < r.pre.len() {
                match write_step(&mut r.stream, &r.pre, &mut r.ppos, &mut written) {
                    Step::Again => continue,
                    Step::Blocked => break,
                    Step::Dead => {
                        r.dead = true;
                        break;
                    }
                }
            }
            r.pre.clear();
            r.ppos = 0;
            match &mut r.phase {
                Phase::Bulk { file, left } if *left > 0 => {
                    let n = (*left).min(FILE_CHUNK as u64) as usize;
                    r.pre.resize(n, 0);
                    if file.read_exact(&mut r.pre).is_err() {
                        r.dead = true;
                        break;
                    }
                    *left -= n as u64;
                    continue;
                }
                Phase::Bulk { .. } => {
                    log(
                        LogLevel::Notice,
                        &format!("Synchronization with replica {}:{} succeeded", r.ip(), r.hello.port),
                    );
                    r.phase = Phase::Online;
                    r.ack_ms = unix_ms();
                    continue;
                }
                Phase::Online if !r.stream_on_ack => {}
                _ => break,
            }
            if r.opos >= r.obuf.len() {
                break;
            }
            match write_step(&mut r.stream, &r.obuf, &mut r.opos, &mut written) {
                Step::Again => continue,
                Step::Blocked => break,
                Step::Dead => {
                    r.dead = true;
                    break;
                }
            }
        }
        if r.opos == r.obuf.len() {
            r.obuf.clear();
            r.opos = 0;
            if r.obuf.capacity() > 4 << 20 {
                r.obuf = Vec::new();
            }
        } else if r.opos > 1 << 20 {
            r.obuf.drain(..r.opos);
            r.opos = 0;
        }
        self.shared.counters.net_output_bytes.fetch_add(written, Ordering::Relaxed);
        r.info.obuf.store(r.pending(), Ordering::Relaxed);
    }

    /// Drops the replicas marked dead: their child (if any) is killed, their client record
    /// goes.
    fn reap_dead(&mut self) {
        let dead: Vec<usize> = self.replicas.iter().filter(|(_, r)| r.dead).map(|(k, _)| k).collect();
        for key in dead {
            self.drop_replica(key);
        }
    }

    fn drop_replica(&mut self, key: usize) {
        let Some(mut r) = self.replicas.try_remove(key) else { return };
        if let Phase::Child { pid, tmp } = &r.phase {
            // SAFETY: kill and waitpid on our own child.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
        }
        let _ = self.poll.registry().deregister(&mut r.stream);
        self.shared.unregister_client(&r.info);
        if self.replicas.is_empty() {
            self.no_replicas_since = unix_ms();
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.replicas.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.flush(key);
            self.drop_replica(key);
        }
    }

    /// Publishes the replicas' state for INFO, ROLE, WAIT and min-replicas-to-write.
    fn publish(&self) {
        let views = self
            .replicas
            .iter()
            .map(|(_, r)| ReplicaView {
                id: r.info.id,
                ip: r.ip(),
                port: r.hello.port,
                state: r.state(),
                ack_offset: r.ack,
                ack_ms: r.ack_ms,
            })
            .collect();
        self.shared.repl.publish_replicas(views);
    }

    /// Answers the WAITs that enough replicas acknowledged.
    fn answer_waits(&self) {
        let repl = &self.shared.repl;
        if !repl.has_waiters() {
            return;
        }
        for (w, n) in repl.take_satisfied_waits() {
            // Whoever takes the client out of the blocked registry first answers it: this
            // thread now, or its worker at the timeout.
            if self.shared.blocking.cancel(&self.shared, w.id) {
                let reply = format!(":{n}\r\n").into_bytes();
                self.shared.blocking.post(
                    w.worker,
                    std::iter::once((w.id, crate::server::blocking::Mail::Reply(reply))),
                    true,
                );
            }
        }
        repl.forget_gone_waits(&self.shared);
    }
}

/// The replica class's `client-output-buffer-limit`: past the hard limit, or past the soft one
/// for longer than its seconds, the replica is dropped (it will resynchronise).
fn check_output_limit(r: &mut Replica, limit: crate::config::ObufLimit, now: u64) {
    let pending = r.pending() as u64;
    let over_hard = limit.hard > 0 && pending > limit.hard;
    let over_soft = limit.soft > 0 && pending > limit.soft;
    if !over_soft {
        r.soft_since = None;
    }
    let soft_expired = over_soft && {
        let since = *r.soft_since.get_or_insert(now);
        now.saturating_sub(since) / 1000 > limit.soft_secs
    };
    if over_hard || soft_expired {
        log(
            LogLevel::Warning,
            &format!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                r.info.id, r.info.addr
            ),
        );
        r.dead = true;
        r.obuf = Vec::new();
        r.opos = 0;
    }
}

fn set_blocking(fd: i32) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A raw descriptor as a `Write` (the child's copy of the replica socket).
struct FdWriter(i32);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: write(2) from a valid slice to a descriptor this process owns.
        let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The diskless child: +FULLRESYNC, then the snapshot framed as `$EOF:<mark>\r\n … <mark>`,
/// straight into the socket (made blocking: the parent stays off it until the child ends).
#[allow(clippy::too_many_arguments)]
fn child_diskless(
    locked: &mut crate::engine::Locked<'_>,
    fd: i32,
    psync: bool,
    replid: &str,
    offset: u64,
    mark: &str,
    checksum: bool,
    compress: bool,
    now: u64,
) -> io::Result<()> {
    set_blocking(fd);
    let mut out = io::BufWriter::with_capacity(1 << 16, FdWriter(fd));
    if psync {
        out.write_all(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes())?;
    }
    out.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
    let mut w = crate::persist::rdb::Writer::new(out, checksum, compress);
    w.header(now / 1000, crate::engine::memory::used() as u64, false)?;
    crate::persist::write_keys(locked, &mut w, now)?;
    let mut out = w.finish()?;
    out.write_all(mark.as_bytes())?;
    out.flush()
}

/// The disk child: the snapshot into `tmp`.
fn child_disk(
    locked: &mut crate::engine::Locked<'_>,
    tmp: &std::path::Path,
    checksum: bool,
    compress: bool,
    now: u64,
) -> io::Result<()> {
    let out = io::BufWriter::with_capacity(1 << 16, File::create(tmp)?);
    let mut w = crate::persist::rdb::Writer::new(out, checksum, compress);
    w.header(now / 1000, crate::engine::memory::used() as u64, false)?;
    crate::persist::write_keys(locked, &mut w, now)?;
    let out = w.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}
