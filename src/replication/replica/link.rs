//! The replication thread: connects to the master, resynchronises, applies its stream.
//!
//! One dedicated thread with blocking sockets, rather than a connection in a worker's mio
//! loop: loading a full copy and applying the stream are long runs of engine work that must
//! not hold up a worker's clients, and the handshake is a strict request/reply sequence that
//! reads far more simply as straight-line code. Reads use a short timeout so the thread
//! notices, within [`TICK`], a REPLICAOF to another master, a CLIENT KILL of the link, the
//! shutdown, and when to send its once-a-second `REPLCONF ACK`; `repl-timeout` seconds
//! without a byte from the master drop the link, as in redis-server.
//!
//! ```text
//!   connect ─ PING ─ [AUTH] ─ REPLCONF listening-port / ip-address / capa ─ PSYNC
//!     +FULLRESYNC id off ─ $len | $EOF:mark ─ RDB → temp file in `dir` → flush + load
//!     +CONTINUE [id]     ─────────────────────────────────────────────────┐
//!                                                   stream: apply, ACK ◄──┘
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachette_resp as resp;

use super::{LinkState, Transfer};
use crate::config::LogLevel;
use crate::server::log::log;
use crate::server::{unix_ms, ClientInfo, Shared};

/// How often a blocked read returns to look at the world (kill, REPLICAOF, ACK due).
const TICK: Duration = Duration::from_millis(100);
/// Longest reply line accepted in the handshake (`+FULLRESYNC <40> <offset>` is ~70 bytes).
const MAX_LINE: usize = 64 * 1024;
/// Bytes read from the socket at a time.
const CHUNK: usize = 64 * 1024;
/// Length of the EOF mark of a diskless transfer (`$EOF:<mark>`).
const EOF_MARK_LEN: usize = 40;
/// The stream buffer is compacted once this much of it has been applied.
const COMPACT_AT: usize = 1 << 20;

/// Why a link ended.
#[derive(Debug)]
enum End {
    /// REPLICAOF changed the master, the link was killed, or the server is stopping.
    Stopped,
    /// A failure worth a log line; the thread reconnects after a pause.
    Failed(String),
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> End {
        End::Failed(e.to_string())
    }
}

type R<T> = Result<T, End>;

/// The thread's loop: wait for a master, follow it until the link ends, pause a second, again.
pub(super) fn run(shared: Arc<Shared>) {
    // Everything this thread runs is the master's: keys it sees expired are still live to it,
    // and the effects go to the AOF only (the stream gets the master's bytes, proxied).
    crate::engine::effects::applying_from_master(true);
    loop {
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let Some((generation, (host, port))) = super::wait_for_master(&shared.replica, TICK) else {
            continue;
        };
        let result = follow(&shared, generation, &host, port);
        if let Some(c) = shared.replica.lock().client.take() {
            shared.unregister_client(&c);
        }
        let current = shared.replica.generation() == generation;
        if current {
            shared.replica.set_state(LinkState::Connect);
        }
        match result {
            Err(End::Failed(why)) if current => {
                log(LogLevel::Warning, &format!("Replication link with MASTER {host}:{port}: {why}"))
            }
            _ => {}
        }
        // redis-server retries once a second (replicationCron); a new master starts at once.
        let retry = Instant::now() + Duration::from_secs(1);
        while Instant::now() < retry
            && shared.replica.generation() == generation
            && !shared.shutdown.load(Ordering::Acquire)
        {
            std::thread::sleep(TICK);
        }
    }
}

/// The socket to the master with its read buffer; every read checks that the link is still
/// wanted and not silent for longer than `repl-timeout`.
struct Conn<'a> {
    shared: &'a Shared,
    generation: u64,
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    at: usize,
    last_io: Instant,
    info: Option<Arc<ClientInfo>>,
}

impl Conn<'_> {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.shared.config().repl_timeout.max(1))
    }

    fn check(&self) -> R<()> {
        let s = self.shared;
        if s.shutdown.load(Ordering::Acquire) {
            return Err(End::Stopped);
        }
        {
            // Under the state's lock, so a REPLICAOF NO ONE (which leaves replica mode after
            // bumping the generation under it) cannot be undone here.
            let g = s.replica.lock();
            if g.generation != self.generation {
                return Err(End::Stopped);
            }
            // CONFIG SET replica-ignore-maxmemory takes effect within a tick.
            s.engine.set_replica(true, s.config().replica_ignore_maxmemory);
        }
        if self.info.as_ref().is_some_and(|i| i.kill.load(Ordering::Relaxed)) {
            return Err(End::Failed("connection killed by CLIENT KILL".into()));
        }
        if self.last_io.elapsed() > self.timeout() {
            return Err(End::Failed("timeout: no data nor PING received".into()));
        }
        Ok(())
    }

    /// One read of up to [`CHUNK`] bytes appended to `buf`; Ok(0) when nothing came within a
    /// tick.
    fn fill(&mut self) -> R<usize> {
        self.check()?;
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let got = self.stream.read(&mut self.buf[len..]);
        let n = match got {
            Ok(0) => {
                self.buf.truncate(len);
                return Err(End::Failed("connection lost (closed by the master)".into()));
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                self.buf.truncate(len);
                return Err(e.into());
            }
        };
        self.buf.truncate(len + n);
        if n > 0 {
            self.last_io = Instant::now();
            self.shared.replica.lock().last_io_ms = unix_ms();
            self.shared.counters.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at >= COMPACT_AT {
            self.buf.drain(..self.at);
            self.at = 0;
        }
    }

    /// The next line, without its `\r\n`.
    fn line(&mut self) -> R<Vec<u8>> {
        loop {
            if let Some(i) = self.unread().iter().position(|&b| b == b'\n') {
                let mut line = self.unread()[..i].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(i + 1);
                return Ok(line);
            }
            if self.unread().len() > MAX_LINE {
                return Err(End::Failed("protocol error: reply line too long".into()));
            }
            self.fill()?;
        }
    }

    /// The next line that is not empty: a master sends bare newlines to keep the link alive
    /// while it prepares the RDB.
    fn reply(&mut self) -> R<Vec<u8>> {
        loop {
            let l = self.line()?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }

    fn send(&mut self, args: &[&[u8]]) -> R<()> {
        let mut out = Vec::new();
        crate::engine::effects::encode(&mut out, args);
        self.stream.write_all(&out)?;
        self.shared.counters.net_output_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn command(&mut self, args: &[&[u8]]) -> R<Vec<u8>> {
        self.send(args)?;
        self.reply()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn connect(shared: &Shared, host: &str, port: u16) -> R<TcpStream> {
    let timeout = Duration::from_secs(shared.config().repl_timeout.max(1));
    let addrs: Vec<_> =
        (host, port).to_socket_addrs().map_err(|e| End::Failed(format!("cannot resolve {host}: {e}")))?.collect();
    let mut last = End::Failed(format!("no address for {host}"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(TICK))?;
                s.set_write_timeout(Some(timeout))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = End::Failed(format!("Error condition on socket for SYNC: {e}")),
        }
    }
    Err(last)
}

/// Connects to the master and follows it until the link ends.
fn follow(shared: &Shared, generation: u64, host: &str, port: u16) -> R<()> {
    let r = &shared.replica;
    r.set_state(LinkState::Connecting);
    let stream = connect(shared, host, port)?;
    log(LogLevel::Notice, &format!("MASTER <-> REPLICA sync started with {host}:{port}"));
    let mut conn = Conn { shared, generation, stream, buf: Vec::new(), at: 0, last_io: Instant::now(), info: None };
    handshake(&mut conn)?;
    let feed = &shared.engine.feed;
    let ids = shared.repl.ids();
    let (psync_id, psync_off) = match r.lock().cached {
        true => (ids.replid.clone(), (feed.repl_offset() + 1).to_string()),
        false => ("?".to_owned(), "-1".to_owned()),
    };
    let reply = conn.command(&[b"PSYNC", psync_id.as_bytes(), psync_off.as_bytes()])?;
    let start = match Psync::parse(&reply) {
        Psync::Full { replid, offset } => {
            log(LogLevel::Notice, &format!("Full resync from master: {replid}:{offset}"));
            full_sync(&mut conn, &replid, offset)?;
            offset
        }
        Psync::Continue { replid: new_id } => {
            log(LogLevel::Notice, "Successful partial resynchronization with master.");
            // As after a full sync: a REPLICAOF meanwhile wins.
            let g = r.lock();
            if g.generation != generation {
                return Err(End::Stopped);
            }
            feed.start_replication(shared.config().repl_backlog_size);
            feed.set_upstream(true);
            let offset = feed.repl_offset() as i64;
            if let Some(id) = new_id.filter(|id| *id != ids.replid) {
                // PSYNC2: the old id stays valid up to here, for this server's own replicas.
                log(LogLevel::Notice, &format!("Master replication ID changed to {id}"));
                shared.repl.set_ids(crate::replication::Ids {
                    replid: id,
                    replid2: ids.replid,
                    second_repl_offset: offset + 1,
                });
                drop(g);
                super::disconnect_sub_replicas(shared);
            }
            offset
        }
        Psync::Retry(why) => return Err(End::Failed(format!("master is not ready for PSYNC: {why}"))),
        Psync::Error(why) => return Err(End::Failed(format!("unexpected reply to PSYNC from master: {why}"))),
    };
    register_client(&mut conn);
    {
        let mut g = r.lock();
        g.read = start;
        g.processed = start;
    }
    r.set_state(LinkState::Connected);
    log(LogLevel::Notice, &format!("MASTER <-> REPLICA sync: streaming from offset {start}"));
    apply_stream(&mut conn, start)
}

/// PING, AUTH, REPLCONF, as redis-server 7's replica sends them.
fn handshake(conn: &mut Conn<'_>) -> R<()> {
    let reply = conn.command(&[b"PING"])?;
    // A master requiring a password answers PING with -NOAUTH: AUTH follows.
    let auth_error = reply.starts_with(b"-NOAUTH")
        || reply.starts_with(b"-NOPERM")
        || reply.starts_with(b"-ERR operation not permitted");
    if reply.first() == Some(&b'-') && !auth_error {
        return Err(End::Failed(format!("Error reply to PING from master: '{}'", text(&reply))));
    }
    let (user, pass, ip, port) = {
        let cfg = conn.shared.config();
        let port = if cfg.replica_announce_port != 0 { cfg.replica_announce_port } else { conn.shared.tcp_port };
        (cfg.masteruser.clone(), cfg.masterauth.clone(), cfg.replica_announce_ip.clone(), port)
    };
    if !pass.is_empty() {
        let reply = if user.is_empty() {
            conn.command(&[b"AUTH", pass.as_bytes()])?
        } else {
            conn.command(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?
        };
        if reply.first() == Some(&b'-') {
            return Err(End::Failed(format!("Unable to AUTH to MASTER: {}", text(&reply))));
        }
    }
    let reply = conn.command(&[b"REPLCONF", b"listening-port", port.to_string().as_bytes()])?;
    if reply.first() == Some(&b'-') {
        log(
            LogLevel::Notice,
            &format!("(Non critical) Master does not understand REPLCONF listening-port: {}", text(&reply)),
        );
    }
    if !ip.is_empty() {
        let reply = conn.command(&[b"REPLCONF", b"ip-address", ip.as_bytes()])?;
        if reply.first() == Some(&b'-') {
            log(
                LogLevel::Notice,
                &format!("(Non critical) Master does not understand REPLCONF ip-address: {}", text(&reply)),
            );
        }
    }
    let reply = conn.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    if reply.first() == Some(&b'-') {
        log(LogLevel::Notice, &format!("(Non critical) Master does not understand REPLCONF capa: {}", text(&reply)));
    }
    Ok(())
}

/// The master's answer to PSYNC.
#[derive(Debug, PartialEq, Eq)]
enum Psync {
    /// `+FULLRESYNC <replid> <offset>`: an RDB follows.
    Full { replid: String, offset: i64 },
    /// `+CONTINUE [<replid>]`: the stream follows from the offset asked for.
    Continue { replid: Option<String> },
    /// `-NOMASTERLINK`, `-LOADING`: try again later.
    Retry(String),
    /// Anything else.
    Error(String),
}

impl Psync {
    fn parse(line: &[u8]) -> Psync {
        let s = text(line);
        let words: Vec<&str> = s.split(' ').collect();
        match words.as_slice() {
            ["+FULLRESYNC", id, off] if id.len() == 40 => match off.parse() {
                Ok(offset) => Psync::Full { replid: (*id).to_owned(), offset },
                Err(_) => Psync::Error(s.clone()),
            },
            ["+CONTINUE"] => Psync::Continue { replid: None },
            ["+CONTINUE", id] if id.len() == 40 => Psync::Continue { replid: Some((*id).to_owned()) },
            [w, ..] if w.starts_with("-NOMASTERLINK") || w.starts_with("-LOADING") => Psync::Retry(s.clone()),
            _ => Psync::Error(s.clone()),
        }
    }
}

/// The framing of the RDB payload.
#[derive(Debug, PartialEq, Eq)]
enum Payload {
    /// `$<len>`: a disk-based master sends the file's length first.
    Len(u64),
    /// `$EOF:<40 bytes>`: a diskless master ends the payload with the mark.
    Mark(Vec<u8>),
}

impl Payload {
    fn parse(line: &[u8]) -> Option<Payload> {
        let rest = line.strip_prefix(b"$")?;
        if let Some(mark) = rest.strip_prefix(b"EOF:") {
            return (mark.len() == EOF_MARK_LEN).then(|| Payload::Mark(mark.to_vec()));
        }
        std::str::from_utf8(rest).ok()?.parse().ok().map(Payload::Len)
    }
}

/// Where the master's RDB is written while it arrives: `dir/temp-<unix s>.<pid>.rdb`, as
/// redis-server names it.
fn temp_path(shared: &Shared) -> PathBuf {
    let dir = PathBuf::from(&shared.config().dir);
    dir.join(format!("temp-{}.{}.rdb", unix_ms() / 1000, std::process::id()))
}

/// Receives the RDB into a temp file, then replaces the keyspace with it.
fn full_sync(conn: &mut Conn<'_>, replid: &str, offset: i64) -> R<()> {
    let shared = conn.shared;
    let r = &shared.replica;
    r.set_state(LinkState::Sync);
    let header = conn.reply()?;
    if header.first() == Some(&b'-') {
        return Err(End::Failed(format!("MASTER aborted replication with an error: {}", text(&header))));
    }
    let payload = Payload::parse(&header).ok_or_else(|| {
        End::Failed(format!("Bad protocol from MASTER, the first byte is not '$': {}", text(&header)))
    })?;
    let total = match &payload {
        Payload::Len(n) => *n,
        Payload::Mark(_) => 0,
    };
    r.lock().transfer = Some(Transfer { total, read: 0, last_io_ms: unix_ms() });
    log(
        LogLevel::Notice,
        &match &payload {
            Payload::Len(n) => format!("MASTER <-> REPLICA sync: receiving {n} bytes from master to disk"),
            Payload::Mark(_) => "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk".into(),
        },
    );
    let path = temp_path(shared);
    let received = receive(conn, &payload, &path);
    // No sub-replica snapshot between the new data and the new offset.
    let gate = shared.repl.apply_gate();
    let received = received.and_then(|()| {
        load(shared, &path).map_err(End::Failed)?;
        Ok(())
    });
    if received.is_err() {
        let _ = fs::remove_file(&path);
    }
    received?;
    // This server now holds the master's history up to `offset`: its ids are the master's,
    // and its own replicas start over from this snapshot. Under the state's lock, so that a
    // REPLICAOF that came during the load (and may have promoted this server) wins.
    let mut g = r.lock();
    if g.generation != conn.generation {
        return Err(End::Stopped);
    }
    shared.repl.set_ids(crate::replication::Ids {
        replid: replid.to_owned(),
        replid2: "0".repeat(40),
        second_repl_offset: -1,
    });
    let offset_u = u64::try_from(offset).unwrap_or(0);
    shared.engine.feed.reset_replication(offset_u, shared.config().repl_backlog_size, true);
    drop(gate);
    {
        g.cached = true;
        // The master SELECTs before its first command after a snapshot.
        g.stream_db = 0;
        g.processed = offset;
        g.read = offset;
    }
    drop(g);
    super::disconnect_sub_replicas(shared);
    // The keyspace changed under the AOF: it must be rebuilt from it (redis-server restarts
    // its AOF after a sync the same way).
    if shared.aof.size().is_some() {
        if let Err(e) = shared.aof.request_rewrite() {
            log(LogLevel::Warning, &format!("The AOF could not be rebuilt after the sync ({e}): run BGREWRITEAOF"));
        }
    }
    Ok(())
}

/// Writes the payload to `path`, counting bytes for INFO.
fn receive(conn: &mut Conn<'_>, payload: &Payload, path: &Path) -> R<()> {
    let shared = conn.shared;
    let mut file = File::create(path).map_err(|e| {
        End::Failed(format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}"))
    })?;
    let mut written: u64 = 0;
    // The last bytes written, to recognise the EOF mark across reads.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        if conn.unread().is_empty() {
            conn.fill()?;
        }
        let chunk = conn.unread();
        let (take, done) = match payload {
            Payload::Len(n) => {
                let want = (*n - written).min(chunk.len() as u64) as usize;
                (want, written + want as u64 == *n)
            }
            Payload::Mark(mark) => {
                // The master sends nothing after the mark until this replica's first ACK, but
                // look for it wherever it ends anyway.
                let mut window = tail.clone();
                window.extend_from_slice(chunk);
                match find(&window, mark) {
                    Some(i) => ((i + EOF_MARK_LEN).saturating_sub(tail.len()), true),
                    None => (chunk.len(), false),
                }
            }
        };
        let bytes = &conn.unread()[..take];
        file.write_all(bytes).map_err(|e| End::Failed(format!("Write error writing to the RDB temp file: {e}")))?;
        written += take as u64;
        if let Payload::Mark(_) = payload {
            tail.extend_from_slice(bytes);
            let keep = tail.len().saturating_sub(EOF_MARK_LEN);
            tail.drain(..keep);
        }
        conn.consume(take);
        if let Some(x) = shared.replica.lock().transfer.as_mut() {
            x.read = written;
            x.last_io_ms = unix_ms();
        }
        if done {
            break;
        }
    }
    if let Payload::Mark(_) = payload {
        // The mark is not part of the file.
        file.set_len(written.saturating_sub(EOF_MARK_LEN as u64))?;
    }
    file.sync_all()?;
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Replaces the keyspace with the RDB at `path`, which then becomes this server's snapshot
/// (renamed over `dbfilename`, as redis-server does). Every shard is held for the flush and
/// the load, so clients wait for the new data instead of seeing a half-loaded keyspace.
fn load(shared: &Shared, path: &Path) -> Result<(), String> {
    let data = fs::read(path).map_err(|e| format!("cannot read the RDB received from the master: {e}"))?;
    log(LogLevel::Notice, "MASTER <-> REPLICA sync: Flushing old data");
    let started = Instant::now();
    let engine = shared.engine;
    let loaded = {
        let _all = engine.exclusive();
        {
            let mut l = engine.lock_all();
            for db in 0..crate::engine::DATABASES {
                l.dbs(db).for_each(|d| d.clear());
            }
        }
        log(LogLevel::Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
        crate::persist::load_image(engine, &data, unix_ms(), true)
    };
    let keys = loaded
        .map(|img| img.loaded)
        .map_err(|e| format!("Failed trying to load the MASTER synchronization DB from disk: {e}"))?;
    engine.stats.dirty.store(0, Ordering::Relaxed);
    let target = PathBuf::from(&shared.config().dir).join(&shared.config().dbfilename);
    if let Err(e) = fs::rename(path, &target) {
        log(LogLevel::Warning, &format!("Failed trying to rename the temp DB into {}: {e}", target.display()));
        let _ = fs::remove_file(path);
    }
    log(
        LogLevel::Notice,
        &format!(
            "MASTER <-> REPLICA sync: Finished with success ({keys} keys, {:.3} seconds)",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Makes the link visible to CLIENT LIST / CLIENT KILL.
fn register_client(conn: &mut Conn<'_>) {
    let shared = conn.shared;
    let none = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let info = ClientInfo {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        addr: conn.stream.peer_addr().unwrap_or(none),
        laddr: conn.stream.local_addr().unwrap_or(none),
        fd: std::os::fd::AsRawFd::as_raw_fd(&conn.stream),
        last_active_ms: AtomicU64::new(unix_ms()),
        user: Mutex::new(Arc::from("default")),
        ..ClientInfo::internal()
    };
    // CLIENT LIST flag M, CLIENT KILL TYPE master (and sentinel's KILL TYPE normal spares it).
    info.set_kind(crate::server::shared::ClientKind::Master);
    let info = shared.register_client(info);
    shared.replica.lock().client = Some(info.clone());
    conn.info = Some(info);
}

fn send_ack(conn: &mut Conn<'_>, offset: i64) -> R<()> {
    conn.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

/// Applies the master's stream from `offset` until the link ends.
fn apply_stream(conn: &mut Conn<'_>, offset: i64) -> R<()> {
    let shared = conn.shared;
    let info = conn.info.clone().unwrap_or_else(|| Arc::new(ClientInfo::internal()));
    let mut session = crate::persist::aof::internal_session(info.clone(), "default");
    session.master = true;
    session.db = shared.replica.lock().stream_db;
    // Bytes received and bytes of whole commands applied, from the master's offset `offset`.
    let (mut read, mut processed) = (offset, offset);
    // A diskless master starts the stream at the first ACK; a disk one does not mind it.
    send_ack(conn, processed)?;
    let mut last_ack = Instant::now();
    let limits = resp::Limits::default();
    let mut args = resp::Args::new();
    let mut out = Vec::new();
    // Bytes applied but not yet proxied: a transaction goes to this server's replicas whole,
    // at its EXEC, as the offsets count it.
    let mut unproxied: Vec<u8> = Vec::new();
    // Bytes of the unread buffer already counted in `read`.
    let mut counted = conn.unread().len();
    read += counted as i64;
    loop {
        loop {
            let buf = conn.unread();
            if buf.is_empty() {
                break;
            }
            // Held from applying a command to proxying it, so a snapshot's data and offset
            // agree (see `Repl::apply_gate`); per command, so snapshots seldom meet it.
            let _gate = shared.repl.apply_gate();
            let n = match resp::parse_request(buf, &limits, &mut args) {
                Ok(resp::Status::Complete(n)) => n,
                Ok(resp::Status::Incomplete) => break,
                Err(e) => return Err(End::Failed(format!("protocol error from master: {}", e.message()))),
            };
            let bytes = &buf[..n];
            let mut getack = false;
            if !args.is_empty() {
                let argv = crate::commands::Argv::new(bytes, &args);
                if argv.get(0).eq_ignore_ascii_case(b"REPLCONF") {
                    getack = argv.len() >= 2 && argv.get(1).eq_ignore_ascii_case(b"GETACK");
                } else if crate::commands::lookup(argv.get(0)).is_some() {
                    info.last_active_ms.store(unix_ms(), Ordering::Relaxed);
                    crate::commands::execute(shared, &mut session, &argv, &mut out, unix_ms());
                    session.block = None;
                    out.clear();
                } else {
                    log(
                        LogLevel::Warning,
                        &format!("Ignoring unknown command '{}' from the master", text(argv.get(0))),
                    );
                }
            }
            unproxied.extend_from_slice(bytes);
            counted -= n;
            conn.consume(n);
            // GETACK is answered with the offset before it, as redis-server does.
            if getack {
                send_ack(conn, processed)?;
                last_ack = Instant::now();
            }
            // A transaction counts as applied at its EXEC.
            if !session.tx.in_multi() {
                processed = read - counted as i64;
                shared.engine.feed.proxy(&unproxied);
                unproxied.clear();
                let mut g = shared.replica.lock();
                g.processed = processed;
                g.stream_db = session.db;
            }
        }
        if last_ack.elapsed() >= Duration::from_secs(1) {
            send_ack(conn, processed)?;
            last_ack = Instant::now();
        }
        let n = conn.fill()?;
        counted += n;
        read += n as i64;
        if n > 0 {
            shared.replica.lock().read = read;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psync_replies_parse() {
        let id = "a".repeat(40);
        assert_eq!(
            Psync::parse(format!("+FULLRESYNC {id} 123").as_bytes()),
            Psync::Full { replid: id.clone(), offset: 123 }
        );
        assert_eq!(Psync::parse(b"+CONTINUE"), Psync::Continue { replid: None });
        assert_eq!(Psync::parse(format!("+CONTINUE {id}").as_bytes()), Psync::Continue { replid: Some(id) });
        assert!(matches!(
            Psync::parse(b"-NOMASTERLINK Can't SYNC while not connected with my master"),
            Psync::Retry(_)
        ));
        assert!(matches!(Psync::parse(b"-LOADING Redis is loading the dataset in memory"), Psync::Retry(_)));
        assert!(matches!(Psync::parse(b"-ERR unknown command 'PSYNC'"), Psync::Error(_)));
        assert!(matches!(Psync::parse(b"+FULLRESYNC short 1"), Psync::Error(_)));
    }

    #[test]
    fn payload_headers_parse() {
        assert_eq!(Payload::parse(b"$1234"), Some(Payload::Len(1234)));
        let mark = "0123456789".repeat(4);
        assert_eq!(Payload::parse(format!("$EOF:{mark}").as_bytes()), Some(Payload::Mark(mark.into_bytes())));
        assert_eq!(Payload::parse(b"$EOF:short"), None);
        assert_eq!(Payload::parse(b"$-1"), None);
        assert_eq!(Payload::parse(b"+OK"), None);
    }
}
