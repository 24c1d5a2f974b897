//! The append-only file: every write's effect, logged as RESP, replayed at start-up.
//!
//! Layout: Redis 7's multi-part AOF, so redis-server and `redis-check-aof` read cachette's
//! directory and the other way round. `appenddirname` holds a manifest
//! (`appendonly.aof.manifest`, lines `file NAME seq N type b|i`) naming one base file and the
//! incremental files written since it, in order. The manifest is what makes a rewrite safe
//! without a global pause: the new base is written while effects go on into a *new*
//! incremental file, and the switch to the new base is one atomic rename of the manifest.
//! A single-file layout would need the rewrite to copy the effects logged during it into the
//! new file, and an operator moving files between cachette and redis-server would have to
//! convert them.
//!
//! Writing: one thread ([`Aof::run`]) takes effects from the engine's feed
//! ([`crate::engine::effects`]), appends them to the current incremental file and fsyncs per
//! `appendfsync`. It publishes the feed offset it has made durable; under `always` a worker
//! writes no reply while the feed holds effects beyond that offset ([`Aof::wait_durable`], run
//! before each socket write). So no reply — to a write or to a read that saw a write — leaves
//! before the effects made before it are on disk; the wait is a group commit, one fsync for
//! whatever every worker logged meanwhile, as redis-server fsyncs once per event-loop pass.
//!
//! Rewriting (BGREWRITEAOF, the automatic rewrite, turning `appendonly` on at runtime): the
//! writer takes every shard lock for a moment, takes the effects logged so far (they belong to
//! the old files), and forks. The child owns a point-in-time copy of the keyspace (the shard
//! locks are held in the copy, by the only thread it has) and writes it as RESP commands to the
//! new base; the parent releases the shards at once and logs every later effect to a new
//! incremental file. The base plus that file is therefore exactly the keyspace, whatever runs
//! meanwhile. The manifest lists the old base, old incremental files and the new one until the
//! child succeeds, then only the new base and the new incremental file.
//!
//! Loading ([`load`]) replays the files through the command dispatcher with a session whose
//! replies are dropped, while the feed is off, before the listeners accept anyone. A file cut
//! short at the end (a crash mid-write) is truncated at its last whole command when
//! `aof-load-truncated yes`; anything else malformed stops start-up naming the file and offset.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cachette_resp as resp;

use crate::config::{Config, LogLevel};
use crate::engine::effects::encode;
use crate::server::log::log;
use crate::server::{unix_ms, Shared};
use crate::types::Value;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// About once a second.
    EverySec,
    /// Before any reply that follows the write.
    Always,
    /// Left to the kernel.
    No,
}

impl Fsync {
    /// Every policy, in the order of [`Fsync::NAMES`].
    pub const ALL: [Fsync; 3] = [Fsync::EverySec, Fsync::Always, Fsync::No];
    /// The directive's words, in redis-server's order (its error message lists them so).
    pub const NAMES: [&'static str; 3] = ["everysec", "always", "no"];
}

/// Commands per RESP line in a base file for big collections (redis-server's
/// AOF_REWRITE_ITEMS_PER_CMD), so no line needs an unbounded buffer to replay.
const ITEMS_PER_CMD: usize = 64;

/// The directory the AOF directory lives in: `dir`, as for dump.rdb.
pub fn data_dir(cfg: &Config) -> PathBuf {
    PathBuf::from(&cfg.dir)
}

/// `appenddirname` inside [`data_dir`].
pub fn aof_dir(cfg: &Config) -> PathBuf {
    data_dir(cfg).join(&cfg.appenddirname)
}

fn manifest_name(cfg: &Config) -> String {
    format!("{}.manifest", cfg.appendfilename)
}

/// Redis 7 names a base by its format: `.base.rdb` with `aof-use-rdb-preamble yes`, else
/// `.base.aof`. (Loading goes by the content, the `REDIS` signature, not the name.)
fn base_name(cfg: &Config, seq: u64) -> String {
    let ext = if cfg.aof_use_rdb_preamble { "rdb" } else { "aof" };
    format!("{}.{seq}.base.{ext}", cfg.appendfilename)
}

fn incr_name(cfg: &Config, seq: u64) -> String {
    format!("{}.{seq}.incr.aof", cfg.appendfilename)
}

// ---- manifest ---------------------------------------------------------------------------

/// The files of one AOF, in replay order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// (name, seq) of the base file.
    pub base: Option<(String, u64)>,
    /// (name, seq) of the incremental files, oldest first.
    pub incrs: Vec<(String, u64)>,
}

impl Manifest {
    /// Parses a manifest as redis-server 7 writes it (`file NAME seq N type b|h|i`, one per
    /// line; `#` comments). History entries (`h`) are skipped: they are not part of the data.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words =
                crate::config::split_words(line).ok_or_else(|| format!("line {}: unbalanced quotes", no + 1))?;
            let mut name = None;
            let mut seq = None;
            let mut kind = None;
            for pair in words.chunks(2) {
                let [k, v] = pair else { return Err(format!("line {}: odd number of words", no + 1)) };
                match k.as_str() {
                    "file" => name = Some(v.clone()),
                    "seq" => seq = v.parse::<u64>().ok(),
                    "type" => kind = Some(v.clone()),
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(format!("line {}: needs file, seq and type", no + 1));
            };
            if name.contains('/') {
                return Err(format!("line {}: file name with a path", no + 1));
            }
            match kind.as_str() {
                "b" if m.base.is_some() => return Err(format!("line {}: a second base file", no + 1)),
                "b" => m.base = Some((name, seq)),
                "i" => m.incrs.push((name, seq)),
                "h" => {}
                _ => return Err(format!("line {}: unknown file type '{kind}'", no + 1)),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() {
            return Err("no base or incremental file".into());
        }
        Ok(m)
    }

    /// The manifest's text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, seq, t) in
            self.base.iter().map(|(n, s)| (n, s, 'b')).chain(self.incrs.iter().map(|(n, s)| (n, s, 'i')))
        {
            s.push_str(&format!("file {name} seq {seq} type {t}\n"));
        }
        s
    }

    /// Every file, in replay order.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.base.iter().chain(self.incrs.iter()).map(|(n, _)| n.as_str())
    }

    fn max_seq(&self) -> u64 {
        self.base.iter().chain(self.incrs.iter()).map(|(_, s)| *s).max().unwrap_or(0)
    }
}

/// Replaces the manifest atomically: temp file, fsync, rename, fsync of the directory.
fn write_manifest(dir: &Path, cfg: &Config, m: &Manifest) -> io::Result<()> {
    let tmp = dir.join(format!("temp-{}", manifest_name(cfg)));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(m.render().as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(manifest_name(cfg)))?;
    File::open(dir)?.sync_all()
}

fn read_manifest(dir: &Path, cfg: &Config) -> Result<Option<Manifest>, String> {
    let path = dir.join(manifest_name(cfg));
    match fs::read_to_string(&path) {
        Ok(text) => {
            Manifest::parse(&text).map(Some).map_err(|e| format!("Invalid AOF manifest {}: {e}", path.display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("Can't open the AOF manifest {}: {e}", path.display())),
    }
}

// ---- base files -------------------------------------------------------------------------

/// Writes every live key of the locked keyspace as RESP commands: the type's write command in
/// chunks, `PEXPIREAT` for a TTL, `MCFLAGS` for memcached flags. Used by the rewrite child and
/// at start-up.
pub fn write_keyspace(l: &mut crate::engine::Locked<'_>, out: &mut impl Write, now: u64) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut written = 0u64;
    for db in 0..crate::engine::DATABASES {
        let mut selected = false;
        for part in l.dbs(db) {
            part.try_for_each(|e| {
                if e.expire_at().is_some_and(|t| now > t) {
                    return Ok(());
                }
                if !selected {
                    encode(&mut buf, &[b"SELECT", db.to_string().as_bytes()]);
                    selected = true;
                }
                entry_commands(e, &mut buf);
                if buf.len() >= 32 * 1024 {
                    out.write_all(&buf)?;
                    written += buf.len() as u64;
                    buf.clear();
                }
                Ok::<(), io::Error>(())
            })?;
        }
    }
    out.write_all(&buf)?;
    written += buf.len() as u64;
    Ok(written)
}

/// How a base file is written, read from the configuration before any fork.
#[derive(Clone, Copy)]
struct BaseFormat {
    /// `aof-use-rdb-preamble`: an RDB image instead of RESP commands.
    rdb: bool,
    opts: super::RdbOptions,
}

impl BaseFormat {
    fn of(cfg: &Config) -> BaseFormat {
        BaseFormat {
            rdb: cfg.aof_use_rdb_preamble,
            opts: super::RdbOptions {
                checksum: cfg.rdbchecksum,
                compress: cfg.rdbcompression,
                aof_base: true,
                key_delay_us: cfg.rdb_key_save_delay,
            },
        }
    }
}

/// Writes the locked keyspace as a base file in `format`.
fn write_base<W: Write>(l: &mut crate::engine::Locked<'_>, mut out: W, now: u64, format: BaseFormat) -> io::Result<W> {
    if format.rdb {
        Ok(super::write_rdb(l, out, format.opts, now)?.0)
    } else {
        write_keyspace(l, &mut out, now)?;
        Ok(out)
    }
}

/// An error found in an AOF part that starts `by` bytes into its file.
fn shifted(d: Damage, by: u64) -> Damage {
    match d {
        Damage::Truncated { good } => Damage::Truncated { good: good + by },
        Damage::Corrupt { offset, reason } => Damage::Corrupt { offset: offset + by, reason },
        Damage::Unknown { offset, command } => Damage::Unknown { offset: offset + by, command },
    }
}

/// The commands that rebuild one entry.
pub fn entry_commands(e: &crate::engine::Entry, buf: &mut Vec<u8>) {
    let key = e.key();
    let chunked = |buf: &mut Vec<u8>, cmd: &[u8], items: &mut dyn Iterator<Item = Vec<Vec<u8>>>| {
        let mut line: Vec<Vec<u8>> = Vec::new();
        let mut n = 0;
        let flush = |buf: &mut Vec<u8>, line: &mut Vec<Vec<u8>>| {
            if !line.is_empty() {
                let mut args: Vec<&[u8]> = vec![cmd, key];
                args.extend(line.iter().map(Vec::as_slice));
                encode(buf, &args);
                line.clear();
            }
        };
        for item in items {
            line.extend(item);
            n += 1;
            if n % ITEMS_PER_CMD == 0 {
                flush(buf, &mut line);
            }
        }
        flush(buf, &mut line);
    };
    match &e.value {
        Value::Str(v) => encode(buf, &[b"SET", key, v]),
        Value::List(l) => chunked(buf, b"RPUSH", &mut l.iter().map(|x| vec![x.to_vec()])),
        Value::Hash(h) => chunked(buf, b"HSET", &mut h.iter().map(|(f, v)| vec![f.to_vec(), v.to_vec()])),
        Value::Set(s) => chunked(buf, b"SADD", &mut s.iter().map(|m| vec![m.with_bytes(<[u8]>::to_vec)])),
        Value::ZSet(z) => chunked(
            buf,
            b"ZADD",
            &mut z.iter().map(|(m, score)| {
                let mut s = Vec::new();
                resp::format_double(score, &mut s);
                vec![s, m.to_vec()]
            }),
        ),
    }
    if let Some(t) = e.expire_at() {
        encode(buf, &[b"PEXPIREAT", key, t.to_string().as_bytes()]);
    }
    if e.flags != 0 && matches!(e.value, Value::Str(_)) {
        encode(buf, &[b"MCFLAGS", key, e.flags.to_string().as_bytes()]);
    }
}

// ---- reading ----------------------------------------------------------------------------

/// Why a file does not read as an AOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a command (or inside MULTI without EXEC); `good` bytes are whole.
    Truncated { good: u64 },
    /// Not RESP commands at `offset`.
    Corrupt { offset: u64, reason: String },
    /// A command cachette does not know at `offset` (replay only).
    Unknown { offset: u64, command: String },
}

/// The session an AOF replays in: no socket, replies dropped, and no ACL restriction (the log
/// holds what the server itself did).
pub fn loader_session() -> crate::commands::Session {
    internal_session(Arc::new(crate::server::ClientInfo::internal()), "aof-loader")
}

/// A session whose commands are the server's own record of what happened — the AOF replayed,
/// or a replica's stream from its master (`replication::replica`): authenticated as an
/// unrestricted `user`, its replies dropped by the caller.
pub fn internal_session(info: Arc<crate::server::ClientInfo>, user: &str) -> crate::commands::Session {
    let mut session = crate::commands::Session::new(info);
    session.user = Some(Arc::new(crate::acl::User::unrestricted(user)));
    session.authenticated = true;
    session
}

/// Replays the commands of one file through the dispatcher in `session` (replies dropped).
/// Returns the commands run and how the file ended; stops at an unknown command. The loader's
/// per-file step, and the `aof_load` fuzz target's entry.
pub fn replay(shared: &Shared, session: &mut crate::commands::Session, data: &[u8]) -> (u64, Result<(), Damage>) {
    let mut unknown: Option<(u64, String)> = None;
    let mut commands = 0;
    let mut out = Vec::new();
    let result = scan(data, |offset, args, bytes| {
        if unknown.is_some() {
            return;
        }
        let argv = crate::commands::Argv::new(bytes, args);
        if crate::commands::lookup(argv.get(0)).is_none() {
            unknown = Some((offset, String::from_utf8_lossy(argv.get(0)).into_owned()));
            return;
        }
        crate::commands::execute(shared, session, &argv, &mut out, REPLAY_CLOCK);
        out.clear();
        // A blocking command that found nothing would wait: during a replay it just did nothing.
        session.block = None;
        commands += 1;
    });
    match unknown {
        Some((offset, command)) => (commands, Err(Damage::Unknown { offset, command })),
        None => (commands, result),
    }
}

/// Bounds for commands read from a file: a bulk as large as a client may send, and as many
/// arguments as redis-server accepts.
fn file_limits() -> resp::Limits {
    resp::Limits::default()
}

/// Walks the commands of `data`, calling `f` on each with its offset. Stops at the first
/// damage. MULTI without EXEC at the end counts as truncated before the MULTI (redis-server
/// drops such a transaction too).
pub fn scan(data: &[u8], mut f: impl FnMut(u64, &resp::Args, &[u8])) -> Result<(), Damage> {
    let limits = file_limits();
    let mut args = resp::Args::new();
    let mut at = 0usize;
    let mut multi_at: Option<usize> = None;
    while at < data.len() {
        let rest = &data[at..];
        if rest[0] != b'*' {
            return Err(Damage::Corrupt { offset: at as u64, reason: "expected '*' (a RESP command)".into() });
        }
        match resp::parse_request(rest, &limits, &mut args) {
            Ok(resp::Status::Complete(n)) => {
                if args.is_empty() {
                    return Err(Damage::Corrupt { offset: at as u64, reason: "empty command".into() });
                }
                let name = args.get(&rest[..n], 0);
                if name.eq_ignore_ascii_case(b"MULTI") {
                    multi_at = Some(at);
                } else if name.eq_ignore_ascii_case(b"EXEC") {
                    multi_at = None;
                }
                f(at as u64, &args, &rest[..n]);
                at += n;
            }
            Ok(resp::Status::Incomplete) => return Err(Damage::Truncated { good: multi_at.unwrap_or(at) as u64 }),
            Err(e) => return Err(Damage::Corrupt { offset: at as u64, reason: e.message().to_owned() }),
        }
    }
    match multi_at {
        Some(m) => Err(Damage::Truncated { good: m as u64 }),
        None => Ok(()),
    }
}

/// The clock commands see while the AOF replays: before every expiry time, so no key expires
/// half-way through the log (redis-server does not expire keys while loading either). Every
/// time in the log is absolute, so nothing else depends on it; keys whose time has passed
/// expire on their first access or in the active cycle after start-up, and are logged then.
const REPLAY_CLOCK: u64 = 1;

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The manifest existed.
    pub found: bool,
    /// Commands replayed.
    pub commands: u64,
    /// Total size of the files.
    pub bytes: u64,
    /// Size of the base file.
    pub base_bytes: u64,
}

/// Replays the AOF into the keyspace (start-up, before any client). The feed must be off.
pub fn load(shared: &Shared) -> Result<Loaded, String> {
    let cfg = shared.config().clone();
    let dir = aof_dir(&cfg);
    let Some(manifest) = read_manifest(&dir, &cfg)? else {
        return Ok(Loaded::default());
    };
    let started = Instant::now();
    let mut loaded = Loaded { found: true, ..Loaded::default() };
    let mut session = loader_session();
    let files: Vec<String> = manifest.files().map(str::to_owned).collect();
    for (i, name) in files.iter().enumerate() {
        let path = dir.join(name);
        let data = match fs::read(&path) {
            Ok(d) => d,
            // redis-server tolerates a missing empty incremental file only; be as strict.
            Err(e) => return Err(format!("Can't open the append-only file {}: {e}", path.display())),
        };
        let last = i + 1 == files.len();
        // An RDB image first (a base written with aof-use-rdb-preamble, by either server),
        // then RESP commands, if any follow it.
        let mut rdb_end = 0;
        if data.starts_with(b"REDIS") {
            let image = super::load_image(shared.engine, &data, unix_ms(), false)
                .map_err(|e| format!("Bad file format reading the RDB preamble of the append only file {name}: {e}"))?;
            rdb_end = image.end;
        }
        let (commands, result) = replay(shared, &mut session, &data[rdb_end..]);
        let result = result.map_err(|d| shifted(d, rdb_end as u64));
        loaded.commands += commands;
        let mut size = data.len() as u64;
        match result {
            Ok(()) => {}
            Err(Damage::Truncated { good }) if last && cfg.aof_load_truncated => {
                log(LogLevel::Warning, &format!("!!! Warning: short read while loading the AOF file {name}!!!"));
                log(LogLevel::Warning, &format!("!!! Truncating the AOF {name} at offset {good} !!!"));
                let f = OpenOptions::new().write(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                f.set_len(good)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
                // A MULTI left open by the cut is dropped with the bytes.
                session.tx = Default::default();
                size = good;
                log(LogLevel::Warning, &format!("AOF {name} loaded anyway because aof-load-truncated is enabled"));
            }
            Err(Damage::Truncated { good }) => {
                return Err(format!(
                    "Unexpected end of file reading the append only file {name} (whole commands end at offset {good}). You can: 1) Make a backup of your AOF file, then use cachette check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
                ));
            }
            Err(Damage::Unknown { offset, command }) => {
                return Err(format!(
                    "Unknown command '{command}' reading the append only file {name} at offset {offset}"
                ));
            }
            Err(Damage::Corrupt { offset, reason }) => {
                return Err(format!(
                    "Bad file format reading the append only file {name} at offset {offset} ({reason}): make a backup of your AOF file, then use cachette check-aof --fix <filename.manifest>"
                ));
            }
        }
        loaded.bytes += size;
        if manifest.base.as_ref().is_some_and(|(b, _)| b == name) {
            loaded.base_bytes = size;
        }
    }
    log(
        LogLevel::Notice,
        &format!(
            "DB loaded from append only file: {:.3} seconds ({} commands)",
            started.elapsed().as_secs_f64(),
            loaded.commands
        ),
    );
    Ok(loaded)
}

// ---- the writer -------------------------------------------------------------------------

/// AOF state shared between the writer thread, the workers (durability waits) and INFO.
#[derive(Default)]
pub struct Aof {
    /// The writer logs effects (appendonly is in effect).
    on: AtomicBool,
    /// `appendfsync always` while on: workers hold replies until effects are durable.
    always: AtomicBool,
    durable: Mutex<u64>,
    durable_cv: Condvar,
    rewrite_requested: AtomicBool,
    rewrite_in_progress: AtomicBool,
    /// Unix ms the running rewrite started (0: none).
    rewrite_started_ms: AtomicU64,
    /// -1 until a rewrite finished.
    last_rewrite_secs: std::sync::atomic::AtomicI64,
    last_rewrite_ok: AtomicBool,
    last_write_ok: AtomicBool,
    rewrites: AtomicU64,
    current_size: AtomicU64,
    base_size: AtomicU64,
    /// Size of the AOF after the last rewrite (or load), for the automatic rewrite.
    rewrite_base_size: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop: AtomicBool,
}

impl Aof {
    /// Fresh state: off, every status ok.
    pub fn new() -> Aof {
        let a = Aof::default();
        a.last_rewrite_secs.store(-1, Ordering::Relaxed);
        a.last_rewrite_ok.store(true, Ordering::Relaxed);
        a.last_write_ok.store(true, Ordering::Relaxed);
        a
    }

    /// Under `appendfsync always`, waits until every effect the feed holds now is on disk
    /// (called before a worker writes replies; see the module documentation).
    #[inline]
    pub fn wait_durable(&self, feed: &crate::engine::effects::Feed) {
        if !self.always.load(Ordering::Acquire) {
            return;
        }
        let target = feed.offset();
        let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        while *d < target && self.always.load(Ordering::Acquire) {
            d = self
                .durable_cv
                .wait_timeout(d, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn set_durable(&self, offset: u64) {
        let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        if offset > *d {
            *d = offset;
        }
        drop(d);
        self.durable_cv.notify_all();
    }

    /// Applies a CONFIG SET: `appendfsync always` holds replies from the next one on (the
    /// writer thread picks up the rest on its next pass).
    pub fn configure(&self, cfg: &Config) {
        let always = self.on.load(Ordering::Acquire) && cfg.appendfsync == Fsync::Always;
        self.always.store(always, Ordering::Release);
        if !always {
            self.durable_cv.notify_all();
        }
    }

    /// Asks for a background rewrite. Err when one runs already (BGREWRITEAOF's error).
    pub fn request_rewrite(&self) -> Result<(), &'static str> {
        if self.rewrite_in_progress.load(Ordering::Acquire) {
            return Err("ERR Background append only file rewriting already in progress");
        }
        self.rewrite_requested.store(true, Ordering::Release);
        Ok(())
    }

    /// Starts the writer thread (idle while `appendonly no`). `loaded` is what start-up
    /// replayed; with `appendonly yes` and no AOF on disk, the current keyspace becomes the
    /// first base file before this returns.
    pub fn start(shared: Arc<Shared>, loaded: &Loaded) -> Result<(), String> {
        let aof = &shared.aof;
        aof.rewrite_base_size.store(loaded.bytes, Ordering::Relaxed);
        aof.current_size.store(loaded.bytes, Ordering::Relaxed);
        aof.base_size.store(loaded.base_bytes, Ordering::Relaxed);
        let mut w = Writer::new(shared.clone());
        if shared.config().appendonly {
            w.open_at_start().map_err(|e| format!("Can't open the append-only file: {e}"))?;
        }
        let h = std::thread::Builder::new()
            .name("cachette-aof".into())
            .spawn(move || w.run())
            .map_err(|e| format!("cannot start the AOF thread: {e}"))?;
        *shared.aof.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
        Ok(())
    }

    /// Flushes and fsyncs what is logged and stops the writer (shutdown, after the workers).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }

    /// The aof_* lines of INFO persistence.
    /// Bytes of the AOF (base plus incremental files) while it is on; None while off.
    pub fn size(&self) -> Option<u64> {
        self.on.load(Ordering::Relaxed).then(|| self.current_size.load(Ordering::Relaxed))
    }

    pub fn info(&self, cfg: &Config, t: &mut String) {
        use std::fmt::Write as _;
        let running = self.rewrite_in_progress.load(Ordering::Relaxed);
        let started = self.rewrite_started_ms.load(Ordering::Relaxed);
        let current_secs = if running && started > 0 { (unix_ms().saturating_sub(started) / 1000) as i64 } else { -1 };
        let ok = |b: bool| if b { "ok" } else { "err" };
        let _ = write!(
            t,
            "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            u8::from(cfg.appendonly),
            u8::from(running),
            u8::from(self.rewrite_requested.load(Ordering::Relaxed) && !running),
            self.last_rewrite_secs.load(Ordering::Relaxed),
            current_secs,
            ok(self.last_rewrite_ok.load(Ordering::Relaxed)),
            self.rewrites.load(Ordering::Relaxed),
            ok(self.last_write_ok.load(Ordering::Relaxed)),
        );
        if self.on.load(Ordering::Relaxed) {
            let _ = write!(
                t,
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\naof_buffer_length:0\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
                self.current_size.load(Ordering::Relaxed),
                self.base_size.load(Ordering::Relaxed),
            );
        }
    }
}

/// A rewrite child in flight.
struct Child {
    pid: libc::pid_t,
    seq: u64,
    tmp: PathBuf,
    started: Instant,
    /// The manifest to install when it succeeds.
    next: Manifest,
    /// The rewrite turns the AOF on (CONFIG SET appendonly yes): no manifest exists before.
    enabling: bool,
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    cfg: Config,
    dir: PathBuf,
    manifest: Manifest,
    file: Option<File>,
    dirty: bool,
    last_fsync: Instant,
    child: Option<Child>,
    /// Unix ms before which a failed rewrite is not retried.
    retry_after: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn new(shared: Arc<Shared>) -> Writer {
        let cfg = shared.config().clone();
        let dir = aof_dir(&cfg);
        Writer {
            shared,
            cfg,
            dir,
            manifest: Manifest::default(),
            file: None,
            dirty: false,
            last_fsync: Instant::now(),
            child: None,
            retry_after: 0,
            buf: Vec::new(),
        }
    }

    fn aof(&self) -> &Aof {
        &self.shared.aof
    }

    /// Start-up with `appendonly yes`: go on appending to the last incremental file, or write
    /// the keyspace (empty, or loaded from elsewhere) as the first base when there is no AOF.
    fn open_at_start(&mut self) -> Result<(), String> {
        fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let engine = self.shared.engine;
        match read_manifest(&self.dir, &self.cfg)? {
            Some(m) if !m.incrs.is_empty() => {
                let (name, _) = m.incrs.last().cloned().unwrap_or_default();
                let f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(self.dir.join(&name))
                    .map_err(|e| e.to_string())?;
                self.manifest = m;
                self.file = Some(f);
            }
            found => {
                let seq = found.as_ref().map_or(0, Manifest::max_seq) + 1;
                let mut m = found.unwrap_or_default();
                if m.base.is_none() {
                    let base = base_name(&self.cfg, seq);
                    let f = BufWriter::new(File::create(self.dir.join(&base)).map_err(|e| e.to_string())?);
                    let mut l = engine.lock_all();
                    let f = write_base(&mut l, f, unix_ms(), BaseFormat::of(&self.cfg)).map_err(|e| e.to_string())?;
                    drop(l);
                    let f = f.into_inner().map_err(|e| e.to_string())?;
                    f.sync_all().map_err(|e| e.to_string())?;
                    let n = f.metadata().map_or(0, |m| m.len());
                    self.aof().base_size.store(n, Ordering::Relaxed);
                    self.aof().current_size.store(n, Ordering::Relaxed);
                    self.aof().rewrite_base_size.store(n, Ordering::Relaxed);
                    m.base = Some((base, seq));
                }
                let incr = incr_name(&self.cfg, seq);
                let f = File::create(self.dir.join(&incr)).map_err(|e| e.to_string())?;
                m.incrs.push((incr, seq));
                write_manifest(&self.dir, &self.cfg, &m).map_err(|e| e.to_string())?;
                self.manifest = m;
                self.file = Some(f);
            }
        }
        engine.feed.set_enabled(true);
        self.set_on(true);
        Ok(())
    }

    fn set_on(&self, on: bool) {
        let a = self.aof();
        a.on.store(on, Ordering::Release);
        a.always.store(on && self.cfg.appendfsync == Fsync::Always, Ordering::Release);
        if !on {
            a.durable_cv.notify_all();
        }
    }

    fn run(mut self) {
        loop {
            let stopping = self.aof().stop.load(Ordering::Acquire);
            // The mutable directives, read once per pass (without copying the whole config).
            let (appendonly, appendfsync) = {
                let cfg = self.shared.config();
                self.cfg.auto_aof_rewrite_percentage = cfg.auto_aof_rewrite_percentage;
                self.cfg.auto_aof_rewrite_min_size = cfg.auto_aof_rewrite_min_size;
                self.cfg.aof_use_rdb_preamble = cfg.aof_use_rdb_preamble;
                self.cfg.rdbcompression = cfg.rdbcompression;
                self.cfg.rdb_key_save_delay = cfg.rdb_key_save_delay;
                (cfg.appendonly, cfg.appendfsync)
            };
            if appendfsync != self.cfg.appendfsync || appendonly != self.cfg.appendonly {
                self.cfg.appendfsync = appendfsync;
                self.cfg.appendonly = appendonly;
                if self.file.is_some() {
                    self.set_on(true);
                }
            }
            if stopping {
                self.kill_child();
            }
            let on = self.file.is_some() || self.child.as_ref().is_some();
            if self.cfg.appendonly && !on && !stopping {
                // CONFIG SET appendonly yes: the keyspace goes to a new base first.
                if unix_ms() >= self.retry_after {
                    self.start_rewrite(true);
                }
            } else if !self.cfg.appendonly && on {
                self.turn_off();
            }
            if self.file.is_none() {
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            self.buf.clear();
            let wait = if stopping { Duration::ZERO } else { Duration::from_millis(100) };
            let offset = self.shared.engine.feed.take_wait(&mut self.buf, wait);
            self.append_buf();
            // The flag, not this thread's copy of the config: CONFIG SET appendfsync always
            // sets it at once, and workers hold replies from then on.
            let always = self.aof().always.load(Ordering::Acquire);
            let fsync_now = match self.cfg.appendfsync {
                _ if always => self.dirty,
                Fsync::EverySec => self.dirty && self.last_fsync.elapsed() >= Duration::from_secs(1),
                Fsync::Always | Fsync::No => false,
            };
            if fsync_now || (stopping && self.dirty) {
                self.fsync();
            }
            if !self.dirty || !always {
                self.aof().set_durable(offset);
            }
            if stopping {
                return;
            }
            self.poll_child();
            if self.child.is_none() && unix_ms() >= self.retry_after {
                let asked = self.aof().rewrite_requested.swap(false, Ordering::AcqRel);
                if asked || self.auto_rewrite_due() {
                    self.start_rewrite(false);
                }
            }
        }
    }

    fn auto_rewrite_due(&self) -> bool {
        let pct = u64::from(self.cfg.auto_aof_rewrite_percentage);
        let size = self.aof().current_size.load(Ordering::Relaxed);
        let base = self.aof().rewrite_base_size.load(Ordering::Relaxed).max(1);
        pct > 0 && size >= self.cfg.auto_aof_rewrite_min_size as u64 && (size - base.min(size)) * 100 / base >= pct
    }

    /// Appends the taken effects to the current incremental file.
    fn append_buf(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let Some(f) = self.file.as_mut() else { return };
        // A failed write is retried with the same bytes: replies under `always` wait meanwhile,
        // as redis-server stops acknowledging writes it could not log.
        loop {
            match f.write_all(&self.buf) {
                Ok(()) => break,
                Err(e) => {
                    if self.shared.aof.last_write_ok.swap(false, Ordering::Relaxed) {
                        log(LogLevel::Warning, &format!("Error writing to the AOF file: {e}"));
                    }
                    if self.shared.aof.stop.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        self.shared.aof.last_write_ok.store(true, Ordering::Relaxed);
        self.shared.aof.current_size.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.dirty = true;
    }

    fn fsync(&mut self) {
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                self.shared.aof.last_write_ok.store(false, Ordering::Relaxed);
                log(LogLevel::Warning, &format!("Error fsyncing the AOF file: {e}"));
                return;
            }
        }
        self.dirty = false;
        self.last_fsync = Instant::now();
    }

    /// Stops a rewrite in flight (shutdown, appendonly no); its temp file goes.
    fn kill_child(&mut self) {
        if let Some(c) = self.child.take() {
            // SAFETY: kill and waitpid on the child this thread forked; no memory is touched.
            unsafe {
                libc::kill(c.pid, libc::SIGKILL);
                libc::waitpid(c.pid, std::ptr::null_mut(), 0);
            }
            crate::engine::note_fork_child(false);
            let _ = fs::remove_file(&c.tmp);
            self.aof().rewrite_in_progress.store(false, Ordering::Release);
            if c.enabling {
                let _ = fs::remove_file(self.dir.join(incr_name(&self.cfg, c.seq)));
            }
        }
    }

    fn turn_off(&mut self) {
        let engine = self.shared.engine;
        engine.feed.set_enabled(false);
        self.buf.clear();
        self.fsync();
        self.file = None;
        self.kill_child();
        self.set_on(false);
        log(LogLevel::Notice, "Background append only file rewriting stopped; AOF turned off");
    }

    /// Forks a child writing the keyspace to a new base; effects from the fork on go to a new
    /// incremental file. `enable` turns the feed on at the same instant (appendonly yes at
    /// runtime).
    fn start_rewrite(&mut self, enable: bool) {
        if let Err(e) = fs::create_dir_all(&self.dir) {
            log(LogLevel::Warning, &format!("Can't create the AOF directory {}: {e}", self.dir.display()));
            self.retry_after = unix_ms() + 5000;
            return;
        }
        if enable {
            if let Ok(Some(m)) = read_manifest(&self.dir, &self.cfg) {
                self.manifest.incrs.clear();
                self.manifest.base = None;
                // Keep sequence numbers growing past the files left by an earlier run.
                self.manifest.incrs.push((String::new(), m.max_seq()));
            }
        }
        let seq = self.manifest.max_seq() + 1;
        if enable {
            self.manifest = Manifest::default();
        }
        let incr = incr_name(&self.cfg, seq);
        let new_file = match File::create(self.dir.join(&incr)) {
            Ok(f) => f,
            Err(e) => {
                log(LogLevel::Warning, &format!("Can't create the AOF incremental file {incr}: {e}"));
                self.retry_after = unix_ms() + 5000;
                return;
            }
        };
        let tmp = self.dir.join(format!("temp-rewriteaof-bg-{seq}.aof"));
        let engine = self.shared.engine;
        let mut before = Vec::new();
        let now = unix_ms();
        let mut l = engine.lock_all();
        let offset = if enable {
            engine.feed.set_enabled(true);
            engine.feed.offset()
        } else {
            engine.feed.take_restart(&mut before)
        };
        let format = BaseFormat::of(&self.cfg);
        let cpus = super::cpulist_or_warn("aof_rewrite_cpulist", &self.cfg.aof_rewrite_cpulist);
        let forked = super::fork_child(&mut l, &cpus, |l| child_write(l, &tmp, now, format).is_ok());
        drop(l);
        let pid = match forked {
            Ok(pid) => pid,
            Err(e) => {
                log(LogLevel::Warning, &format!("Can't rewrite append only file in background: fork: {e}"));
                if enable {
                    engine.feed.set_enabled(false);
                } else {
                    // The effects stay in the old file, which goes on.
                    self.buf = before;
                    self.append_buf();
                }
                let _ = fs::remove_file(self.dir.join(&incr));
                self.aof().last_rewrite_ok.store(false, Ordering::Relaxed);
                self.retry_after = unix_ms() + 5000;
                return;
            }
        };
        log(LogLevel::Notice, &format!("Background append only file rewriting started by pid {pid}"));
        // Whatever preceded the fork belongs to the old files.
        self.buf = before;
        self.append_buf();
        self.fsync();
        self.aof().set_durable(offset);
        let mut next = Manifest { base: None, incrs: vec![(incr.clone(), seq)] };
        if !enable {
            // Until the child succeeds, the new incremental file follows the old ones.
            self.manifest.incrs.push((incr.clone(), seq));
            if let Err(e) = write_manifest(&self.dir, &self.cfg, &self.manifest) {
                log(LogLevel::Warning, &format!("Can't update the AOF manifest: {e}"));
            }
        }
        next.base = Some((base_name(&self.cfg, seq), seq));
        self.file = Some(new_file);
        self.dirty = false;
        self.set_on(true);
        let a = self.aof();
        a.rewrite_in_progress.store(true, Ordering::Release);
        a.rewrite_started_ms.store(unix_ms(), Ordering::Relaxed);
        self.child = Some(Child { pid, seq, tmp, started: Instant::now(), next, enabling: enable });
    }

    fn poll_child(&mut self) {
        let Some(c) = &self.child else { return };
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(c.pid, &mut status, libc::WNOHANG) };
        if r == 0 {
            return;
        }
        let Some(c) = self.child.take() else { return };
        crate::engine::note_fork_child(false);
        let shared = self.shared.clone();
        let a = &shared.aof;
        a.rewrite_in_progress.store(false, Ordering::Release);
        a.rewrite_started_ms.store(0, Ordering::Relaxed);
        let ok = r == c.pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        let installed = ok && self.install(&c);
        a.last_rewrite_secs.store(c.started.elapsed().as_secs() as i64, Ordering::Relaxed);
        a.last_rewrite_ok.store(installed, Ordering::Relaxed);
        if installed {
            a.rewrites.fetch_add(1, Ordering::Relaxed);
            log(LogLevel::Notice, "Background AOF rewrite finished successfully");
        } else {
            let _ = fs::remove_file(&c.tmp);
            log(LogLevel::Warning, "Background AOF rewrite failed");
            self.retry_after = unix_ms() + 5000;
            if c.enabling {
                // Turning on failed: retry from scratch.
                let _ = fs::remove_file(self.dir.join(incr_name(&self.cfg, c.seq)));
                self.shared.engine.feed.set_enabled(false);
                self.file = None;
                self.set_on(false);
            }
        }
    }

    /// Renames the child's file into place and switches the manifest to it.
    fn install(&mut self, c: &Child) -> bool {
        let Some((base, _)) = &c.next.base else { return false };
        let base_path = self.dir.join(base);
        if let Err(e) = fs::rename(&c.tmp, &base_path) {
            log(LogLevel::Warning, &format!("Can't rename the rewritten AOF: {e}"));
            return false;
        }
        if let Err(e) = write_manifest(&self.dir, &self.cfg, &c.next) {
            log(LogLevel::Warning, &format!("Can't write the AOF manifest: {e}"));
            return false;
        }
        let old = std::mem::replace(&mut self.manifest, c.next.clone());
        for name in old.files() {
            if !name.is_empty() && !c.next.files().any(|n| n == name) {
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
        let base_size = fs::metadata(&base_path).map(|m| m.len()).unwrap_or(0);
        let incr_size =
            c.next.incrs.first().and_then(|(n, _)| fs::metadata(self.dir.join(n)).ok()).map_or(0, |m| m.len());
        let a = &self.shared.aof;
        a.base_size.store(base_size, Ordering::Relaxed);
        a.current_size.store(base_size + incr_size, Ordering::Relaxed);
        a.rewrite_base_size.store(base_size + incr_size, Ordering::Relaxed);
        true
    }
}

/// The rewrite child's work: the locked keyspace (a point-in-time copy) to `tmp`, fsynced.
fn child_write(l: &mut crate::engine::Locked<'_>, tmp: &Path, now: u64, format: BaseFormat) -> io::Result<()> {
    let f = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    let f = write_base(l, f, now, format)?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}

// ---- cachette check-aof -----------------------------------------------------------------

/// `cachette check-aof [--fix] FILE`: FILE is a manifest (every file it names is checked) or
/// one AOF file. Returns the process exit status; prints as redis-check-aof does.
pub fn check_main(args: &[String]) -> i32 {
    let (fix, path) = match args {
        [p] => (false, p),
        [f, p] if f == "--fix" => (true, p),
        _ => {
            eprintln!("Usage: cachette check-aof [--fix] <file.manifest|file.aof>");
            return 1;
        }
    };
    let path = Path::new(path);
    let files: Vec<PathBuf> = if path.to_string_lossy().ends_with(".manifest") {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("Cannot open file {}: {e}", path.display());
                return 1;
            }
        };
        match Manifest::parse(&text) {
            Ok(m) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                m.files().map(|n| dir.join(n)).collect()
            }
            Err(e) => {
                eprintln!("Invalid AOF manifest {}: {e}", path.display());
                return 1;
            }
        }
    } else {
        vec![path.to_path_buf()]
    };
    let count = files.len();
    for (i, file) in files.iter().enumerate() {
        let data = match fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("Cannot open file {}: {e}", file.display());
                return 1;
            }
        };
        let last = i + 1 == count;
        let mut rdb_end = 0;
        if data.starts_with(b"REDIS") {
            match super::rdb::read_file(&data, |_| Ok(())) {
                Ok(sum) => {
                    rdb_end = sum.end;
                    println!("RDB preamble of {} is OK ({} keys)", file.display(), sum.keys);
                }
                Err(e) => {
                    println!("RDB preamble of {} is not valid: {e}", file.display());
                    return 1;
                }
            }
        }
        match scan(&data[rdb_end..], |_, _, _| {}).map_err(|d| shifted(d, rdb_end as u64)) {
            Ok(()) => println!("AOF {} is valid", file.display()),
            Err(damage) => {
                let (good, what) = match &damage {
                    Damage::Truncated { good } => (*good, "truncated".to_owned()),
                    Damage::Corrupt { offset, reason } => (*offset, format!("not valid at offset {offset}: {reason}")),
                    Damage::Unknown { offset, command } => {
                        (*offset, format!("not valid at offset {offset}: {command}"))
                    }
                };
                println!("AOF {} is {what}", file.display());
                let diff = data.len() as u64 - good;
                println!(
                    "AOF analyzed: filename={}, size={}, ok_up_to={good}, diff={diff}",
                    file.display(),
                    data.len()
                );
                if !fix {
                    println!("AOF {} is not valid. Use the --fix option to try fixing it.", file.display());
                    return 1;
                }
                if !last && matches!(damage, Damage::Corrupt { .. }) {
                    println!("Only the last file can be fixed: {} is followed by others.", file.display());
                    return 1;
                }
                let fixed = OpenOptions::new().write(true).open(file).and_then(|f| {
                    f.set_len(good)?;
                    f.sync_all()
                });
                if let Err(e) = fixed {
                    println!("Failed to truncate AOF {}: {e}", file.display());
                    return 1;
                }
                println!("Successfully truncated AOF {}", file.display());
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server state with the feed on, and a session to run commands in.
    struct Harness {
        shared: Shared,
        session: crate::commands::Session,
    }

    impl Harness {
        fn new() -> Harness {
            let shared = Shared::new(Config::default());
            shared.engine.feed.set_enabled(true);
            Harness { shared, session: loader_session() }
        }

        fn run(&mut self, now: u64, args: &[&str]) -> Vec<u8> {
            let mut line = Vec::new();
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            encode(&mut line, &argv);
            let mut parsed = resp::Args::new();
            assert!(matches!(
                resp::parse_request(&line, &Default::default(), &mut parsed),
                Ok(resp::Status::Complete(_))
            ));
            let mut out = Vec::new();
            crate::commands::execute(
                &self.shared,
                &mut self.session,
                &crate::commands::Argv::new(&line, &parsed),
                &mut out,
                now,
            );
            out
        }

        fn mc(&mut self, now: u64, text: &str) {
            let mut data = text.as_bytes();
            let mut out = Vec::new();
            while !data.is_empty() {
                let cachette_memcache::Parsed::Complete(cmd, n) = cachette_memcache::parse(data, &Default::default())
                else {
                    panic!("bad memcached request {text}")
                };
                crate::memcache::execute(&self.shared, &mut self.session, cmd, &mut out, now);
                crate::engine::effects::end();
                data = &data[n..];
            }
        }

        /// The effects logged since the last call, one string per command.
        fn effects(&mut self) -> Vec<String> {
            let mut buf = Vec::new();
            self.shared.engine.feed.take(&mut buf);
            let mut out = Vec::new();
            scan(&buf, |_, args, bytes| {
                let words: Vec<String> = args.iter(bytes).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                if words[0] != "SELECT" {
                    out.push(words.join(" "));
                }
            })
            .expect("whole commands");
            out
        }
    }

    const NOW: u64 = 1_000_000;

    #[test]
    fn expiries_are_logged_absolute_or_as_deletions() {
        let mut h = Harness::new();
        h.run(NOW, &["SET", "k", "v"]);
        assert_eq!(h.effects(), ["SET k v"]);
        h.run(NOW, &["EXPIRE", "k", "100"]);
        h.run(NOW, &["PEXPIRE", "k", "100"]);
        h.run(NOW, &["EXPIREAT", "k", "2000"]);
        h.run(NOW, &["EXPIRE", "k", "100", "GT"]);
        assert_eq!(h.effects(), ["PEXPIREAT k 1100000", "PEXPIREAT k 1000100", "PEXPIREAT k 2000000"], "GT refused");
        h.run(NOW, &["EXPIRE", "missing", "100"]);
        assert!(h.effects().is_empty(), "no change, no effect");
        h.run(NOW, &["PEXPIREAT", "k", "5"]);
        assert_eq!(h.effects(), ["DEL k"]);
    }

    #[test]
    fn set_family_expiry_becomes_pxat() {
        let mut h = Harness::new();
        h.run(NOW, &["SET", "k", "v", "EX", "10", "GET"]);
        h.run(NOW, &["SET", "k", "w", "NX", "PX", "5"]);
        h.run(NOW, &["SET", "k", "w", "XX", "EXAT", "3000"]);
        h.run(NOW, &["SETEX", "a", "2", "x"]);
        h.run(NOW, &["PSETEX", "b", "2", "y"]);
        h.run(NOW, &["SET", "c", "z", "EX", "1", "KEEPTTL"]);
        assert_eq!(
            h.effects(),
            ["SET k v PXAT 1010000", "SET k w PXAT 3000000", "SET a x PXAT 1002000", "SET b y PXAT 1000002"]
        );
        // A time already past stores an expired key (redis-server 7.0), logged as it is.
        h.run(NOW, &["SET", "k", "v", "PXAT", "10"]);
        assert_eq!(h.effects(), ["SET k v PXAT 10"]);
        h.run(NOW, &["GETEX", "a", "EX", "50"]);
        h.run(NOW, &["GETEX", "a", "PERSIST"]);
        h.run(NOW, &["GETEX", "a", "PERSIST"]);
        h.run(NOW, &["GETEX", "a"]);
        h.run(NOW, &["GETEX", "a", "PXAT", "1"]);
        assert_eq!(h.effects(), ["PEXPIREAT a 1050000", "PERSIST a", "DEL a"]);
    }

    #[test]
    fn random_and_float_commands_log_their_results() {
        let mut h = Harness::new();
        h.run(NOW, &["SADD", "s", "a", "b", "c", "d"]);
        h.effects();
        h.run(NOW, &["SPOP", "s"]);
        h.run(NOW, &["SPOP", "s", "2"]);
        let e = h.effects();
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("SREM s ") && e[0].split(' ').count() == 3, "{e:?}");
        assert!(e[1].starts_with("SREM s ") && e[1].split(' ').count() == 4, "{e:?}");
        h.run(NOW, &["SPOP", "s", "5"]);
        assert_eq!(h.effects(), ["DEL s"]);
        h.run(NOW, &["INCRBYFLOAT", "f", "1.5"]);
        h.run(NOW, &["INCRBYFLOAT", "f", "1e1"]);
        h.run(NOW, &["HINCRBYFLOAT", "h", "x", "0.5"]);
        assert_eq!(h.effects(), ["SET f 1.5 KEEPTTL", "SET f 11.5 KEEPTTL", "HSET h x 0.5"]);
    }

    #[test]
    fn blocking_and_numkeys_pops_log_the_pop_they_made() {
        let mut h = Harness::new();
        h.run(NOW, &["RPUSH", "l", "a", "b", "c", "d", "e"]);
        h.run(NOW, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        h.effects();
        h.run(NOW, &["BLPOP", "nothing", "l", "0"]);
        h.run(NOW, &["BRPOP", "l", "0"]);
        h.run(NOW, &["BLMOVE", "l", "m", "LEFT", "RIGHT", "0"]);
        h.run(NOW, &["BRPOPLPUSH", "l", "m", "0"]);
        h.run(NOW, &["LMPOP", "2", "x", "m", "LEFT", "COUNT", "10"]);
        h.run(NOW, &["BZPOPMIN", "z", "0"]);
        h.run(NOW, &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "9"]);
        h.run(NOW, &["BLPOP", "empty", "0.01"]);
        assert_eq!(
            h.effects(),
            [
                "LPOP l",
                "RPOP l",
                "LMOVE l m LEFT RIGHT",
                "LMOVE l m RIGHT LEFT",
                "LPOP m 2",
                "ZPOPMIN z",
                "ZPOPMAX z 2"
            ]
        );
    }

    #[test]
    fn transactions_are_wrapped_only_when_they_wrote() {
        let mut h = Harness::new();
        h.run(NOW, &["MULTI"]);
        h.run(NOW, &["GET", "k"]);
        h.run(NOW, &["EXEC"]);
        assert!(h.effects().is_empty());
        h.run(NOW, &["MULTI"]);
        h.run(NOW, &["SET", "k", "v", "EX", "1"]);
        h.run(NOW, &["INCR", "n"]);
        h.run(NOW, &["EXEC"]);
        assert_eq!(h.effects(), ["MULTI", "SET k v PXAT 1001000", "INCR n", "EXEC"]);
    }

    #[test]
    fn memcached_writes_log_the_resulting_item() {
        let mut h = Harness::new();
        h.mc(NOW, "set a 5 100 2\r\nhi\r\nset b 0 0 1\r\n1\r\n");
        assert_eq!(h.effects(), ["SET a hi PXAT 1100000", "MCFLAGS a 5", "SET b 1"]);
        h.mc(NOW, "incr b 41\r\nappend a 0 0 1\r\n!\r\ntouch b 10\r\nadd a 0 0 1\r\nx\r\n");
        assert_eq!(h.effects(), ["SET b 42", "SET a hi! PXAT 1100000", "MCFLAGS a 5", "SET b 42 PXAT 1010000"]);
        h.mc(NOW, "delete a\r\ndelete a\r\nms c 1 F3\r\nz\r\nmd c\r\n");
        assert_eq!(h.effects(), ["DEL a", "SET c z", "MCFLAGS c 3", "DEL c"]);
        h.mc(NOW, "flush_all\r\n");
        assert_eq!(h.effects(), ["FLUSHDB"]);
    }

    proptest::proptest! {
        /// Damaged logs (commands cut, bytes flipped) never panic the scanner or the replay,
        /// and damage is reported inside the input.
        #[test]
        fn damaged_logs_replay_without_panics(
            picks in proptest::collection::vec(0usize..12, 0..24),
            flip in proptest::option::of((0usize..4096, proptest::num::u8::ANY)),
            cut in proptest::option::of(0usize..4096),
        ) {
            let lines: [&[&[u8]]; 12] = [
                &[b"SET", b"k", b"v"], &[b"RPUSH", b"l", b"a", b"b"], &[b"SADD", b"s", b"1", b"x"],
                &[b"ZADD", b"z", b"1.5", b"m"], &[b"HSET", b"h", b"f", b"v"], &[b"PEXPIREAT", b"k", b"99999999999999"],
                &[b"SELECT", b"3"], &[b"MULTI"], &[b"EXEC"], &[b"INCR", b"k"], &[b"MCFLAGS", b"k", b"7"],
                &[b"BLPOP", b"nothing", b"0"],
            ];
            let mut data = Vec::new();
            for p in picks {
                encode(&mut data, lines[p]);
            }
            if let Some((at, b)) = flip {
                if !data.is_empty() {
                    let at = at % data.len();
                    data[at] = b;
                }
            }
            if let Some(c) = cut {
                data.truncate(c.min(data.len()));
            }
            match scan(&data, |_, _, _| {}) {
                Ok(()) => {}
                Err(Damage::Truncated { good }) => proptest::prop_assert!(good as usize <= data.len()),
                Err(Damage::Corrupt { offset, .. }) | Err(Damage::Unknown { offset, .. }) => {
                    proptest::prop_assert!((offset as usize) < data.len())
                }
            }
            let shared = Shared::new(Config::default());
            let _ = replay(&shared, &mut loader_session(), &data);
        }
    }

    #[test]
    fn manifest_round_trips_and_reads_redis_lines() {
        let m = Manifest::parse(
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
             file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.0.base.aof seq 0 type h\n",
        )
        .expect("parses");
        assert_eq!(m.base, Some(("appendonly.aof.1.base.rdb".into(), 1)));
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(Manifest::parse(&m.render()), Ok(m.clone()));
        assert!(Manifest::parse("file x seq 1 type z\n").is_err());
        assert!(Manifest::parse("file ../x seq 1 type b\n").is_err());
        assert!(Manifest::parse("").is_err());
    }

    #[test]
    fn scan_finds_truncation_and_corruption() {
        let mut ok = Vec::new();
        encode(&mut ok, &[b"SET", b"k", b"v"]);
        encode(&mut ok, &[b"DEL", b"k"]);
        let mut n = 0;
        assert_eq!(scan(&ok, |_, _, _| n += 1), Ok(()));
        assert_eq!(n, 2);
        let first = ok.iter().position(|&b| b == b'v').expect("v") + 3;
        for cut in first + 1..ok.len() {
            assert_eq!(scan(&ok[..cut], |_, _, _| {}), Err(Damage::Truncated { good: first as u64 }), "cut at {cut}");
        }
        let mut bad = ok.clone();
        bad[first] = b'x';
        assert!(matches!(scan(&bad, |_, _, _| {}), Err(Damage::Corrupt { offset, .. }) if offset == first as u64));
        let mut tx = Vec::new();
        encode(&mut tx, &[b"SET", b"a", b"1"]);
        let at = tx.len() as u64;
        encode(&mut tx, &[b"MULTI"]);
        encode(&mut tx, &[b"SET", b"a", b"2"]);
        assert_eq!(scan(&tx, |_, _, _| {}), Err(Damage::Truncated { good: at }), "open MULTI is cut");
        encode(&mut tx, &[b"EXEC"]);
        assert_eq!(scan(&tx, |_, _, _| {}), Ok(()));
    }
}
