//! Persistence: RDB snapshots in Redis's own format (SAVE, BGSAVE, save points, load at
//! start-up, save at shutdown). The file format lives in [`rdb`]; this module owns *when* and
//! *how* a snapshot is taken and the state INFO persistence reports.
//!
//! ```text
//!   SAVE       lock every shard ─ write temp-<pid>.rdb ─ fsync ─ rename ─ unlock
//!   BGSAVE     lock every shard ─ fork ─ unlock (parent returns at once)
//!                                  └─ child: write temp-<pid>.rdb from its copy-on-write
//!                                     image ─ fsync ─ rename ─ _exit(0|1)
//!   cron       reaps the child (waitpid WNOHANG), records the result, starts scheduled and
//!              save-point snapshots
//! ```
//!
//! A snapshot is always written to a temporary file in `dir`, fsynced, and renamed over
//! `dbfilename` (then the directory is fsynced), so a crash or a failed save at any moment leaves
//! the previous file whole.
//!
//! # Why forking a multi-threaded process is sound here
//!
//! After `fork` only the calling thread exists in the child; any lock another thread held at
//! that instant stays held forever there. The child therefore touches only what it can prove
//! free:
//! - the shard mutexes: the forking thread holds *all* of them (through `lock_all`) across the
//!   fork, so the child owns valid guards and no engine structure is half-modified;
//! - the allocator: glibc's `fork` takes every malloc arena lock before forking and re-initialises
//!   them in the child (its documented async-fork handling), so the child may allocate; the
//!   counting wrapper in `engine::memory` is lock-free atomics;
//! - files: plain `open`/`write`/`fsync`/`rename` syscalls through `std::fs`, no shared buffer.
//!
//! It reads the configuration it needs *before* forking (the config `RwLock` may be held by a
//! CONFIG SET elsewhere), never logs (the log has a mutex), and leaves with `_exit`, so no
//! destructor or atexit handler runs against state owned by threads that no longer exist. The
//! parent holds every shard lock only for the duration of `fork` itself (page-table copy: a few
//! milliseconds per GB), so clients are not blocked for the save.
//!
//! # Living with a child
//!
//! Every page the parent writes while a child runs is copied for the child, so the peak memory
//! of a save grows with what the parent writes, not only with what clients change. All forks
//! go through [`fork_child`], which counts the child in (`engine::note_fork_child`); while one
//! lives, reads leave the LRU/LFU clock of the entries they touch alone, as redis-server's
//! `lookupKey` does, so a GET-heavy load copies no pages. The child runs where the server runs
//! unless `bgsave_cpulist` / `aof_rewrite_cpulist` say otherwise (redis-server's directives).

pub mod aof;
pub mod crc64;
pub mod lzf;
pub mod rdb;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::{Config, LogLevel};
use crate::engine::{Engine, Locked, DATABASES};
use crate::server::log::log;
use crate::server::{unix_ms, Shared};

/// redis-server's `CONFIG_BGSAVE_RETRY_DELAY`: seconds before a failed save-point snapshot is
/// retried.
const BGSAVE_RETRY_DELAY: u64 = 5;

/// The reply to writes while the last background save failed (`stop-writes-on-bgsave-error`).
pub const MISCONF_ERROR: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Persistence state shared by the commands, the cron and shutdown.
#[derive(Default)]
pub struct Persist {
    state: Mutex<State>,
    /// `State::last_bgsave_failed`, readable without the mutex: every write command checks it.
    failed: AtomicBool,
    /// A BGSAVE is between its checks and recording its child (see [`bgsave`]).
    starting: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Unix seconds of the last successful save (or of start-up).
    lastsave: u64,
    /// Unix seconds of the last background save attempt.
    last_try: u64,
    last_bgsave_failed: bool,
    last_bgsave_secs: Option<u64>,
    child: Option<Child>,
    scheduled: bool,
    saves: u64,
    loaded_keys: u64,
    expired_on_load: u64,
    /// SHUTDOWN already took the final snapshot (or was told not to).
    shutdown_handled: bool,
}

struct Child {
    pid: libc::pid_t,
    started: Instant,
    dirty_at_start: u64,
    tmp: PathBuf,
}

/// What a snapshot needs from the configuration, read before any fork.
#[derive(Clone)]
struct Target {
    dir: PathBuf,
    file: PathBuf,
    checksum: bool,
    compress: bool,
    incremental_fsync: bool,
    /// The replication position the snapshot holds (`repl-id`, `repl-offset`,
    /// `repl-stream-db` AUX fields), read while every shard is held.
    repl: Option<crate::replication::replica::SavedPosition>,
    key_delay_us: u64,
    /// `bgsave_cpulist`, parsed (empty: the server's CPUs).
    cpus: Vec<usize>,
}

impl Target {
    fn of(cfg: &Config) -> Target {
        let dir = PathBuf::from(&cfg.dir);
        Target {
            file: dir.join(&cfg.dbfilename),
            dir,
            checksum: cfg.rdbchecksum,
            compress: cfg.rdbcompression,
            incremental_fsync: cfg.rdb_save_incremental_fsync,
            repl: None,
            key_delay_us: cfg.rdb_key_save_delay,
            cpus: cpulist_or_warn("bgsave_cpulist", &cfg.bgsave_cpulist),
        }
    }
}

/// How [`write_rdb`] writes an image.
#[derive(Clone, Copy, Debug, Default)]
pub struct RdbOptions {
    /// `rdbchecksum`: a CRC64 at the end (else 0).
    pub checksum: bool,
    /// `rdbcompression`: LZF for long strings.
    pub compress: bool,
    /// The image is an AOF base (the `aof-base` aux field says so).
    pub aof_base: bool,
    /// `rdb-key-save-delay`: microseconds slept after each key (tests make saves slow so).
    pub key_delay_us: u64,
}

/// Parses a CPU list as redis-server's `bgsave_cpulist` takes it: comma-separated CPUs and
/// ranges, a range optionally with a step (`0-3,8-11`, `0-7:2`). Err names the bad item.
pub fn parse_cpulist(text: &str) -> Result<Vec<usize>, String> {
    const MAX_CPU: usize = 1024; // CPU_SETSIZE
    let mut cpus = Vec::new();
    if text.trim().is_empty() {
        return Ok(cpus);
    }
    for item in text.split(',') {
        let bad = || format!("invalid CPU list item '{item}'");
        let (range, step) = match item.split_once(':') {
            Some((r, st)) => (r, st.trim().parse::<usize>().map_err(|_| bad())?),
            None => (item, 1),
        };
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if step == 0 || a > b || b >= MAX_CPU {
            return Err(bad());
        }
        cpus.extend((a..=b).step_by(step));
    }
    Ok(cpus)
}

/// [`parse_cpulist`] of a directive's value; a bad list is logged and ignored (the child then
/// runs where the server does).
fn cpulist_or_warn(directive: &str, text: &str) -> Vec<usize> {
    parse_cpulist(text).unwrap_or_else(|e| {
        log(LogLevel::Warning, &format!("{directive}: {e}; the child runs on the server's CPUs"));
        Vec::new()
    })
}

/// redis-server's `REDIS_AUTOSYNC_BYTES`: with `rdb-save-incremental-fsync`, the file is
/// fsynced each time this much more was written.
const AUTOSYNC_BYTES: u64 = 4 * 1024 * 1024;

/// A file that fsyncs itself every [`AUTOSYNC_BYTES`] when asked to.
struct AutoSync {
    file: File,
    every: Option<u64>,
    unsynced: u64,
}

impl std::io::Write for AutoSync {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(every) = self.every {
            self.unsynced += n as u64;
            if self.unsynced >= every {
                self.file.sync_data()?;
                self.unsynced = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Persist {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the clock LASTSAVE reports.
    pub fn init(&self, now_secs: u64) {
        self.lock().lastsave = now_secs;
    }

    /// LASTSAVE: unix seconds of the last successful save.
    pub fn lastsave(&self) -> u64 {
        self.lock().lastsave
    }

    /// True unless the last background save failed.
    pub fn last_bgsave_ok(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }

    /// Whether a background save is running.
    pub fn bgsave_in_progress(&self) -> bool {
        self.starting.load(Ordering::Acquire) || self.lock().child.is_some()
    }

    /// Whether writes must be refused with [`MISCONF_ERROR`]. On every write command, so the
    /// common case is one relaxed load; the configuration is read only after a failed save.
    pub fn writes_refused(&self, shared_config: &std::sync::RwLock<Config>) -> bool {
        if !self.failed.load(Ordering::Relaxed) {
            return false;
        }
        let cfg = shared_config.read().unwrap_or_else(|p| p.into_inner());
        cfg.stop_writes_on_bgsave_error && !cfg.save.is_empty()
    }

    fn set_failed(s: &mut State, failed: &AtomicBool, value: bool) {
        s.last_bgsave_failed = value;
        failed.store(value, Ordering::Relaxed);
    }

    /// Marks the final snapshot as taken care of (SHUTDOWN did it).
    pub fn set_shutdown_handled(&self) {
        self.lock().shutdown_handled = true;
    }

    /// Appends INFO persistence, with redis-server 7.0's field names.
    /// (The aof_* lines that follow are [`aof::Aof::info`]'s.)
    pub fn info(&self, dirty: u64, out: &mut String) {
        use std::fmt::Write as _;
        let s = self.lock();
        let current = s.child.as_ref().map_or(-1, |c| c.started.elapsed().as_secs() as i64);
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{dirty}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
            u8::from(s.child.is_some()),
            s.lastsave,
            if s.last_bgsave_failed { "err" } else { "ok" },
            s.last_bgsave_secs.map_or(-1, |v| v as i64),
            s.saves,
            s.expired_on_load,
            s.loaded_keys,
        );
    }
}

/// Why SAVE or BGSAVE did not start or failed, worded for the client.
#[derive(Debug, PartialEq)]
pub enum SaveError {
    /// A background save is running.
    InProgress,
    /// Writing failed (details were logged).
    Failed,
}

/// Writes every live key of every database held by `locked` to `target`, through a temporary
/// file renamed into place. Returns the number of keys written.
fn write_snapshot(locked: &mut Locked<'_>, target: &Target, tmp: &Path, now: u64) -> std::io::Result<u64> {
    let result = (|| {
        let file = File::create(tmp)?;
        let every = target.incremental_fsync.then_some(AUTOSYNC_BYTES);
        let out = BufWriter::with_capacity(1 << 16, AutoSync { file, every, unsynced: 0 });
        let mut w = rdb::Writer::new(out, target.checksum, target.compress);
        w.header(now / 1000, crate::engine::memory::used() as u64, false)?;
        if let Some(p) = &target.repl {
            w.aux(b"repl-stream-db", p.db.to_string().as_bytes())?;
            w.aux(b"repl-id", p.replid.as_bytes())?;
            w.aux(b"repl-offset", p.offset.to_string().as_bytes())?;
        }
        let written = write_keys_delayed(locked, &mut w, target.key_delay_us, now)?;
        let buf = w.finish()?;
        let f = buf.into_inner().map_err(|e| e.into_error())?.file;
        f.sync_all()?;
        drop(f);
        std::fs::rename(tmp, &target.file)?;
        // The rename is durable only once the directory entry is.
        File::open(&target.dir)?.sync_all()?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Writes every live key of every database held by `locked` as one RDB image to `out`; keys
/// expired at `now` are left out. Returns the writer and the number of keys written. Shared by
/// snapshots and AOF bases.
pub fn write_rdb<W: std::io::Write>(
    locked: &mut Locked<'_>,
    out: W,
    opts: RdbOptions,
    now: u64,
) -> std::io::Result<(W, u64)> {
    let mut w = rdb::Writer::new(out, opts.checksum, opts.compress);
    w.header(now / 1000, crate::engine::memory::used() as u64, opts.aof_base)?;
    let written = write_keys_delayed(locked, &mut w, opts.key_delay_us, now)?;
    Ok((w.finish()?, written))
}

/// Writes every live key of every database held by `locked` to `w` (after its header, before
/// `finish`). Returns the number of keys written. Also the body of the snapshot a primary sends
/// a replica (`replication::primary`).
pub fn write_keys<W: std::io::Write>(
    locked: &mut Locked<'_>,
    w: &mut rdb::Writer<W>,
    now: u64,
) -> std::io::Result<u64> {
    write_keys_delayed(locked, w, 0, now)
}

/// [`write_keys`], sleeping `key_delay_us` after each key (`rdb-key-save-delay`, for tests).
fn write_keys_delayed<W: std::io::Write>(
    locked: &mut Locked<'_>,
    w: &mut rdb::Writer<W>,
    key_delay_us: u64,
    now: u64,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    for db in 0..DATABASES {
        let (mut keys, mut expires) = (0u64, 0u64);
        for d in locked.dbs(db) {
            keys += d.len() as u64;
            expires += d.volatile_len() as u64;
        }
        if keys == 0 {
            continue;
        }
        w.select_db(db, keys, expires)?;
        for d in locked.dbs(db) {
            d.try_for_each(|e| {
                if e.expire_at().is_some_and(|at| at < now) {
                    return Ok(());
                }
                w.key(e.key(), &e.value, e.expire_at(), e.flags)?;
                written += 1;
                if key_delay_us > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(key_delay_us));
                }
                Ok::<(), std::io::Error>(())
            })?;
        }
    }
    Ok(written)
}

fn temp_name(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("temp-{pid}.rdb"))
}

/// SAVE: a synchronous snapshot with every shard locked (clients wait, as with redis-server's
/// SAVE).
pub fn save(shared: &Shared) -> Result<(), SaveError> {
    if shared.persist.bgsave_in_progress() {
        return Err(SaveError::InProgress);
    }
    save_sync(shared, true)
}

/// redis-server's `rdbSave`: a synchronous snapshot whether or not a child runs (its file has a
/// different temporary name). `counted`: INFO's rdb_saves counts it (SAVE does; the saves
/// FLUSHALL and DEBUG RELOAD make do not, in redis-server 7.0 either).
fn save_sync(shared: &Shared, counted: bool) -> Result<(), SaveError> {
    let mut target = Target::of(&shared.config());
    let gate = crate::replication::replica::snapshot_gate(shared);
    let mut locked = shared.engine.lock_all();
    target.repl = crate::replication::replica::saved_position(shared, gate.is_some());
    let start = Instant::now();
    match write_snapshot(&mut locked, &target, &temp_name(&target.dir, std::process::id()), unix_ms()) {
        Ok(n) => {
            shared.engine.stats.dirty.store(0, Ordering::Relaxed);
            drop(locked);
            let mut s = shared.persist.lock();
            s.lastsave = unix_ms() / 1000;
            Persist::set_failed(&mut s, &shared.persist.failed, false);
            s.saves += u64::from(counted);
            log(
                LogLevel::Notice,
                &format!("DB saved on disk ({n} keys, {:.3} seconds)", start.elapsed().as_secs_f64()),
            );
            Ok(())
        }
        Err(e) => {
            drop(locked);
            log(LogLevel::Warning, &format!("Failed saving the DB to {}: {e}", target.file.display()));
            Err(SaveError::Failed)
        }
    }
}

/// After FLUSHALL, as redis-server's `flushAllDataAndResetRDB`: a background save in flight
/// (of the data just flushed) is stopped, and with save points configured the empty dataset is
/// saved at once, so a restart does not bring the flushed keys back (rdb_changes_since_last_save
/// is then 0, as redis-server 7.0 reports it).
pub fn after_flushall(shared: &Shared) {
    kill_child(shared);
    if !shared.config().save.is_empty() {
        let _ = save_sync(shared, false);
    }
}

/// DEBUG RELOAD: save (unless `!save`), empty the keyspace (unless `!flush`), load the file
/// back. A key already present when not flushing is replaced by the file's. Err holds the
/// reply's error line.
pub fn debug_reload(shared: &Shared, save: bool, flush: bool) -> Result<(), String> {
    if save && save_sync(shared, false).is_err() {
        return Err("ERR".into());
    }
    let dirty = shared.engine.stats.dirty.load(Ordering::Relaxed);
    let target = Target::of(&shared.config());
    let data = std::fs::read(&target.file);
    if flush {
        let mut l = shared.engine.lock_all();
        for db in 0..DATABASES {
            for d in l.dbs(db) {
                d.clear();
            }
        }
    }
    let loaded = match data {
        Ok(data) => load_into(shared.engine, &data, unix_ms()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    // Loading is not a change of the dataset (redis-server counts none either).
    shared.engine.stats.dirty.store(dirty, Ordering::Relaxed);
    crate::engine::effects::suppress();
    match loaded {
        Ok(_) => {
            log(LogLevel::Warning, "DB reloaded by DEBUG RELOAD");
            Ok(())
        }
        Err(e) => {
            log(LogLevel::Warning, &format!("Failed loading {}: {e}", target.file.display()));
            Err("ERR Error trying to load the RDB dump, check server logs.".into())
        }
    }
}

/// BGSAVE: forks a child that writes the snapshot; returns once the child runs.
///
/// Lock order: the shards are taken *without* the state mutex held (a transaction calling
/// BGSAVE already holds every shard, and the cron takes the mutex first), so `starting` alone
/// keeps two saves from forking at once.
pub fn bgsave(shared: &Shared) -> Result<(), SaveError> {
    let p = &shared.persist;
    if p.starting.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(SaveError::InProgress);
    }
    if p.lock().child.is_some() {
        p.starting.store(false, Ordering::Release);
        return Err(SaveError::InProgress);
    }
    let mut target = Target::of(&shared.config());
    let gate = crate::replication::replica::snapshot_gate(shared);
    let mut locked = shared.engine.lock_all();
    target.repl = crate::replication::replica::saved_position(shared, gate.is_some());
    let dirty = shared.engine.stats.dirty.load(Ordering::Relaxed);
    let forked = fork_child(&mut locked, &target.cpus, |l| {
        let tmp = temp_name(&target.dir, std::process::id());
        write_snapshot(l, &target, &tmp, unix_ms()).is_ok()
    });
    drop(locked);
    drop(gate);
    let mut s = p.lock();
    s.last_try = unix_ms() / 1000;
    let pid = match forked {
        Ok(pid) => pid,
        Err(e) => {
            Persist::set_failed(&mut s, &p.failed, true);
            drop(s);
            p.starting.store(false, Ordering::Release);
            log(LogLevel::Warning, &format!("Can't save in background: fork: {e}"));
            return Err(SaveError::Failed);
        }
    };
    s.child =
        Some(Child { pid, started: Instant::now(), dirty_at_start: dirty, tmp: temp_name(&target.dir, pid as u32) });
    s.scheduled = false;
    drop(s);
    p.starting.store(false, Ordering::Release);
    log(LogLevel::Notice, &format!("Background saving started by pid {pid}"));
    Ok(())
}

/// Forks a child that runs `work` on the locked keyspace (its copy-on-write image) and exits
/// with status 0 when `work` returns true, 1 otherwise; returns the child's pid in the parent.
/// The caller holds every shard in `locked` (see the module documentation for why that makes
/// the fork sound) and must call [`crate::engine::note_fork_child`]`(false)` once it reaps the
/// child. Background saves, AOF rewrites and replication snapshots all fork through here.
///
/// The child inherits the server's CPU affinity (so on a pinned server it shares the worker's
/// core) unless `cpus` (`bgsave_cpulist` / `aof_rewrite_cpulist`) names others. It keeps the
/// server's priority, as redis-server's child does: at nice 19 it did not measurably help the
/// clients' throughput during a save on the shared bench machine, while the longer save copied
/// more pages (peak PSS +80-100 MB at 1M keys).
pub fn fork_child(
    locked: &mut Locked<'_>,
    cpus: &[usize],
    work: impl FnOnce(&mut Locked<'_>) -> bool,
) -> std::io::Result<libc::pid_t> {
    let parent = std::process::id();
    // SAFETY: see the module documentation: every shard lock is held by this thread, the child
    // takes no other lock, allocates only through glibc malloc (fork-safe in glibc), and leaves
    // with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid > 0 {
        crate::engine::note_fork_child(true);
        return Ok(pid);
    }
    // SAFETY: prctl, getppid and sched_setaffinity (on a zeroed, then filled, cpu_set_t) are
    // plain syscalls. A child whose server died is
    // pointless (no one records its result), so it dies with it; the previous file stays intact
    // either way.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() as u32 != parent {
            libc::_exit(1);
        }
        if !cpus.is_empty() {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            // A failure (CPUs the server may not use) leaves the inherited affinity.
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(locked))).unwrap_or(false);
    // SAFETY: _exit ends the process without running destructors or atexit handlers, which
    // could touch locks owned by threads that do not exist in the child.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

/// BGSAVE SCHEDULE while a save runs: start one as soon as it ends.
pub fn schedule(shared: &Shared) {
    shared.persist.lock().scheduled = true;
}

/// The cron's persistence work: reap a finished child, start a scheduled or save-point
/// snapshot.
pub fn cron(shared: &Shared) {
    reap(shared, false);
    let now = unix_ms() / 1000;
    let (scheduled, lastsave, last_try, failed, busy) = {
        let s = shared.persist.lock();
        (s.scheduled, s.lastsave, s.last_try, s.last_bgsave_failed, s.child.is_some())
    };
    if busy {
        return;
    }
    let dirty = shared.engine.stats.dirty.load(Ordering::Relaxed);
    let due = scheduled || {
        let cfg = shared.config();
        cfg.save.iter().any(|&(secs, changes)| {
            dirty >= changes
                && now.saturating_sub(lastsave) > secs
                && (!failed || now.saturating_sub(last_try) > BGSAVE_RETRY_DELAY)
        })
    };
    if due {
        if !scheduled {
            log(LogLevel::Notice, &format!("{dirty} changes since the last save, saving..."));
        }
        let _ = bgsave(shared);
    }
}

/// Collects the background child if it ended (or waits for it with `block`). A child the
/// server killed itself (`block`: [`kill_child`]) is not a failed save, as redis-server's
/// SIGUSR1-killed child is not.
fn reap(shared: &Shared, block: bool) {
    let mut s = shared.persist.lock();
    let Some(child) = s.child.as_ref() else { return };
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(child.pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
    if r == 0 {
        return;
    }
    let Some(child) = s.child.take() else { return };
    crate::engine::note_fork_child(false);
    let ok = r == child.pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    s.last_bgsave_secs = Some(child.started.elapsed().as_secs());
    if ok {
        s.lastsave = unix_ms() / 1000;
        Persist::set_failed(&mut s, &shared.persist.failed, false);
        s.saves += 1;
        let _ = shared
            .engine
            .stats
            .dirty
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(child.dirty_at_start)));
        drop(s);
        log(LogLevel::Notice, "Background saving terminated with success");
    } else if block {
        drop(s);
        let _ = std::fs::remove_file(&child.tmp);
        log(LogLevel::Warning, "Background saving terminated by signal");
    } else {
        Persist::set_failed(&mut s, &shared.persist.failed, true);
        drop(s);
        let _ = std::fs::remove_file(&child.tmp);
        log(LogLevel::Warning, "Background saving error");
    }
}

/// Stops a running background save (its temporary file removed), as shutdown does.
fn kill_child(shared: &Shared) {
    let pid = shared.persist.lock().child.as_ref().map(|c| c.pid);
    if let Some(pid) = pid {
        log(LogLevel::Warning, "There is a child saving an .rdb. Killing it!");
        // SAFETY: kill on our own child process id.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        reap(shared, true);
    }
}

/// The snapshot taken when the server stops: with `save` (SHUTDOWN SAVE) or, unless `nosave`,
/// when save points are configured. Err when the save failed.
pub fn shutdown_save(shared: &Shared, save: bool, nosave: bool) -> Result<(), SaveError> {
    kill_child(shared);
    let wanted = save || (!nosave && !shared.config().save.is_empty());
    if !wanted {
        return Ok(());
    }
    log(LogLevel::Notice, "Saving the final RDB snapshot before exiting.");
    self::save(shared)
}

/// On SIGTERM/SIGINT: the final snapshot unless SHUTDOWN already took care of it.
pub fn on_signal_exit(shared: &Shared) {
    if shared.persist.lock().shutdown_handled {
        return;
    }
    if shutdown_save(shared, false, false).is_err() {
        log(LogLevel::Warning, "Error trying to save the DB, the last snapshot may be older than the shutdown");
    }
}

/// Loads `dir/dbfilename` into the (empty) engine at start-up, if the file exists.
pub fn load_at_startup(shared: &Shared) -> Result<(), String> {
    let target = Target::of(&shared.config());
    let now = unix_ms();
    shared.persist.init(now / 1000);
    let data = match std::fs::read(&target.file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", target.file.display())),
    };
    let start = Instant::now();
    let LoadedImage { loaded, expired, aux, .. } = load_image(shared.engine, &data, now, false)
        .map_err(|e| format!("cannot load {}: {e}", target.file.display()))?;
    crate::replication::replica::restore_position(shared, &aux);
    shared.engine.stats.dirty.store(0, Ordering::Relaxed);
    {
        let mut s = shared.persist.lock();
        s.loaded_keys = loaded;
        s.expired_on_load = expired;
    }
    log(LogLevel::Notice, &format!("Done loading RDB, keys loaded: {loaded}, keys expired: {expired}."));
    log(LogLevel::Notice, &format!("DB loaded from disk: {:.3} seconds", start.elapsed().as_secs_f64()));
    Ok(())
}

/// Loads an RDB image into `engine`; keys already expired at `now` are skipped (as a primary
/// redis-server does). Returns (keys loaded, keys skipped as expired).
pub fn load_into(engine: &Engine, data: &[u8], now: u64) -> Result<(u64, u64), rdb::Error> {
    load_image(engine, data, now, false).map(|img| (img.loaded, img.expired))
}

/// [`load_into`], keeping keys already expired at `now` when `keep_expired` (a replica loading
/// its master's copy: the master's DELs remove them, as redis-server's replicas do). Also
/// returns the file's AUX fields (`repl-id`, `repl-offset`, …) and where the image ends in
/// `data` (an AOF base with an RDB preamble goes on with RESP commands there).
pub fn load_image(engine: &Engine, data: &[u8], now: u64, keep_expired: bool) -> Result<LoadedImage, rdb::Error> {
    let (mut loaded, mut expired) = (0u64, 0u64);
    let sum = rdb::read_file(data, |r| {
        if !keep_expired && r.expire_at.is_some_and(|at| at < now) {
            expired += 1;
            return Ok(());
        }
        let k = engine.hashed(&r.key);
        let mut l = engine.lock_one(&k);
        let e = l.set(r.db, &k, r.value, r.expire_at, r.flags, false, now);
        if let Some(idle) = r.idle {
            e.lru = ((now / 1000).saturating_sub(idle)) as u32;
        }
        if let Some(freq) = r.freq {
            e.lfu = freq;
        }
        loaded += 1;
        Ok(())
    })?;
    let ver = sum.aux.iter().find(|(k, _)| k == b"redis-ver").map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    if let Some(v) = ver {
        log(LogLevel::Notice, &format!("Loading RDB produced by version {v}"));
    }
    for w in &sum.warnings {
        log(LogLevel::Warning, w);
    }
    Ok(LoadedImage { loaded, expired, aux: sum.aux, end: sum.end })
}

/// What [`load_image`] found.
pub struct LoadedImage {
    /// Keys loaded.
    pub loaded: u64,
    /// Keys skipped as already expired.
    pub expired: u64,
    /// The file's AUX fields.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Offset in the data where the RDB image ends.
    pub end: usize,
}

/// `cachette check-rdb FILE`: reads the whole file and reports what it holds, or the first
/// problem with its byte offset. Returns the report's lines; Err holds the failure line.
pub fn check_file(path: &Path) -> Result<Vec<String>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut per_db = [0u64; DATABASES];
    let mut expires = 0u64;
    let mut types = std::collections::BTreeMap::new();
    let sum = rdb::read_file(&data, |r| {
        per_db[r.db] += 1;
        expires += u64::from(r.expire_at.is_some());
        *types.entry(r.value.kind().name()).or_insert(0u64) += 1;
        Ok(())
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = vec![format!("RDB version {}, {} bytes", sum.version, data.len())];
    for (k, v) in &sum.aux {
        out.push(format!("aux {} = {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
    }
    for (db, n) in per_db.iter().enumerate().filter(|(_, n)| **n > 0) {
        out.push(format!("db {db}: {n} keys"));
    }
    for (t, n) in &types {
        out.push(format!("{t}: {n}"));
    }
    out.push(format!("keys with an expiry: {expires}"));
    out.extend(sum.warnings.iter().cloned());
    out.push(if sum.checksummed { "checksum OK".into() } else { "no checksum stored".into() });
    out.push("RDB looks OK!".into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Value;

    #[test]
    fn cpu_lists_read_as_redis_server_reads_them() {
        assert_eq!(parse_cpulist(""), Ok(vec![]));
        assert_eq!(parse_cpulist("3"), Ok(vec![3]));
        assert_eq!(parse_cpulist("0-3,8-9"), Ok(vec![0, 1, 2, 3, 8, 9]));
        assert_eq!(parse_cpulist("0-7:3"), Ok(vec![0, 3, 6]));
        for bad in ["x", "3-1", "0-4:0", "1,", "2000", "-1"] {
            assert!(parse_cpulist(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_round_trips_through_a_file() {
        let dir = std::env::temp_dir().join(format!("cachette-persist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let target = Target {
            dir: dir.clone(),
            file: dir.join("dump.rdb"),
            checksum: true,
            compress: true,
            incremental_fsync: true,
            repl: None,
            key_delay_us: 0,
            cpus: Vec::new(),
        };
        let engine = Engine::new(4);
        let now = 1_000_000;
        for i in 0..200u32 {
            let key = format!("key{i}");
            let k = engine.hashed(key.as_bytes());
            let exp = match i % 3 {
                0 => None,
                1 => Some(now + 50_000),
                _ => Some(now - 1),
            };
            engine.lock_one(&k).set((i % 4) as usize, &k, Value::Str(i.to_string().into_bytes()), exp, i, false, 0);
        }
        let n = write_snapshot(&mut engine.lock_all(), &target, &dir.join("temp-test.rdb"), now).expect("write");
        assert_eq!(n, 134, "expired keys are left out");
        assert!(!dir.join("temp-test.rdb").exists());
        let back = Engine::new(2);
        let data = std::fs::read(&target.file).expect("read");
        assert_eq!(load_into(&back, &data, now).expect("load"), (134, 0));
        for i in (0..200u32).filter(|i| i % 3 != 2) {
            let key = format!("key{i}");
            let k = back.hashed(key.as_bytes());
            let mut l = back.lock_one(&k);
            let e = l.peek((i % 4) as usize, &k, now).expect("present");
            assert_eq!(e.value, Value::Str(i.to_string().into_bytes()));
            assert_eq!(e.flags, i);
            assert_eq!(e.expire_at(), (i % 3 == 1).then_some(now + 50_000));
        }
        let report = check_file(&target.file).expect("check");
        assert!(report.iter().any(|l| l == "checksum OK"), "{report:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
