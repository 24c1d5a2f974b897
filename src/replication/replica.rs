//! The replica side of replication: which master this server follows, the state of the link to
//! it, and what that state means for this server's own clients.
//!
//! `REPLICAOF host port` (or the `replicaof` directive) records the master and bumps a
//! generation number; the replication thread ([`link`]) notices, drops any link it had and
//! connects to the new master: handshake, full or partial resync, then the stream of the
//! master's writes, applied through the one command table with a session marked `master`.
//! `REPLICAOF NO ONE` clears the master; the thread drops the link and waits.
//!
//! While a master is set, the server is a replica: the engine is in replica mode (the master
//! drives expiry: see `engine`), clients' writes get `-READONLY` (`replica-read-only yes`) and,
//! with `replica-serve-stale-data no`, every command not flagged `stale` gets `-MASTERDOWN`
//! while the link is not up. The memcached side refuses writes the same way
//! (`memcache::read_only_replica`).
//!
//! Offsets follow redis-server's: `processed` is the master's stream offset up to the last
//! command applied (a MULTI … EXEC counts when its EXEC is applied), `read` the offset up to the
//! last byte received. Applied bytes are proxied verbatim into this server's own replication
//! stream (`Feed::proxy`), so its `master_repl_offset` is `processed` and its replication id
//! (`Repl` ids) is the master's: sub-replicas see the master's exact offsets (chains), and
//! after a cut the thread asks `PSYNC <replid> <master_repl_offset + 1>`, so a master with the
//! bytes in its backlog answers `+CONTINUE` and sends only the rest. The same pair survives a
//! restart in the snapshot's AUX fields ([`saved_position`]), and a promotion keeps the old id
//! as `replid2` (PSYNC2), so the other replicas of the old master can continue with this one.

mod link;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cachette_resp::Encoder;

use super::Role;
use crate::commands::{flags, CmdError, Spec};
use crate::config::LogLevel;
use crate::server::log::log;
use crate::server::{unix_ms, ClientInfo, Shared};

/// The reply to a client write on a read-only replica, as redis-server words it.
pub const READONLY_ERROR: &str = "READONLY You can't write against a read only replica.";
/// The reply while the link is down and `replica-serve-stale-data` is `no`.
pub const MASTERDOWN_ERROR: &str = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Where the link to the master is, as ROLE names the states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; the thread is about to connect (or waits before retrying).
    #[default]
    Connect,
    /// Connected, in the handshake.
    Connecting,
    /// Receiving the master's RDB (or loading it).
    Sync,
    /// Following the master's stream.
    Connected,
}

impl LinkState {
    /// ROLE's word for the state.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// A running full resynchronisation's transfer (INFO's `master_sync_*`).
#[derive(Clone, Copy, Debug, Default)]
struct Transfer {
    /// Bytes announced (`$<len>`); 0 for an EOF-marked (diskless) transfer, as redis-server.
    total: u64,
    /// Bytes received so far.
    read: u64,
    /// Unix ms of the last bytes received.
    last_io_ms: u64,
}

/// The replica's state; see the module documentation.
#[derive(Default)]
pub struct Replica {
    /// A master is set (the server is a replica): one relaxed load on every command.
    replica: AtomicBool,
    /// The link is up (state `Connected`): read by every command when stale data is refused.
    link_up: AtomicBool,
    inner: Mutex<Inner>,
    /// Signalled when the master changes, so the thread need not poll for it.
    changed: Condvar,
    /// The position the snapshot loaded at start-up recorded (see [`restore_position`]).
    restored: Mutex<Option<SavedPosition>>,
}

#[derive(Default)]
struct Inner {
    /// The master followed: (host, port).
    master: Option<(String, u16)>,
    /// Bumped at every change of master: a link of an older generation ends.
    generation: u64,
    state: LinkState,
    /// Unix ms of the last bytes from the master.
    last_io_ms: u64,
    /// Unix ms the link went down; 0 while it never was up.
    down_since_ms: u64,
    transfer: Option<Transfer>,
    /// PSYNC may name this server's replication id and offset (`Repl` ids, the feed's offset):
    /// they are a master's stream it holds up to that offset — its master's after a sync, its
    /// own when it was a master, or those its snapshot recorded. Otherwise `PSYNC ? -1`.
    cached: bool,
    /// The database the master's stream is in (its last SELECT): kept across a cut, since a
    /// partial resync goes on without a new SELECT.
    stream_db: usize,
    /// Offset of the last command applied.
    processed: i64,
    /// Offset of the last byte received.
    read: i64,
    /// The master link's client record (CLIENT LIST, CLIENT KILL), while connected.
    client: Option<Arc<ClientInfo>>,
}

impl Replica {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while a master is set.
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// True while the link is up and following the stream.
    pub fn link_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }

    /// The master followed, if any.
    pub fn master(&self) -> Option<(String, u16)> {
        self.lock().master.clone()
    }

    /// Offset of the last command applied from the master.
    pub fn processed_offset(&self) -> i64 {
        self.lock().processed
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn set_state(&self, state: LinkState) {
        let mut g = self.lock();
        let was_up = g.state == LinkState::Connected;
        g.state = state;
        if state != LinkState::Sync {
            g.transfer = None;
        }
        if was_up && state != LinkState::Connected {
            g.down_since_ms = unix_ms();
        }
        self.link_up.store(state == LinkState::Connected, Ordering::Relaxed);
    }
}

/// The link as the metrics endpoint reports it.
#[derive(Clone, Copy, Debug)]
pub struct LinkView {
    /// The link is up (following the stream).
    pub up: bool,
    /// Seconds since the last bytes from the master (-1 while the link is not up).
    pub last_io_secs: i64,
    /// A full sync is under way.
    pub syncing: bool,
    /// Offset of the last command applied.
    pub applied_offset: i64,
    /// Seconds since the link went down (-1: up, or never was).
    pub down_secs: i64,
}

impl Replica {
    /// The link's state, while this server is a replica.
    pub fn link_view(&self) -> Option<LinkView> {
        let g = self.lock();
        g.master.as_ref()?;
        let now = unix_ms();
        let secs = |ms: u64| (now.saturating_sub(ms) / 1000) as i64;
        let up = g.state == LinkState::Connected;
        Some(LinkView {
            up,
            last_io_secs: if up { secs(g.last_io_ms) } else { -1 },
            syncing: g.state == LinkState::Sync,
            applied_offset: g.processed,
            down_secs: if up || g.down_since_ms == 0 { -1 } else { secs(g.down_since_ms) },
        })
    }
}

/// What REPLICAOF did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The master changed (or was cleared).
    Changed,
    /// Already following that master.
    Already,
}

/// Follows `master` from now on (None: becomes a master, keeping its data). Safe to call from
/// any thread; the replication thread does the work.
pub fn set_master(shared: &Shared, master: Option<(String, u16)>) -> Outcome {
    let r = &shared.replica;
    let mut g = r.lock();
    if master.is_some() && g.master == master {
        return Outcome::Already;
    }
    let was = g.master.take();
    // A master turning replica offers its own history to the new master (PSYNC2: a promoted
    // sibling may continue it), as redis-server's replicationCacheMasterUsingMyself.
    if was.is_none() {
        g.cached = true;
    }
    g.master = master.clone();
    g.generation += 1;
    g.state = LinkState::Connect;
    g.transfer = None;
    // redis-server starts counting the link as down when the master is set.
    g.down_since_ms = 0;
    let replica = master.is_some();
    r.replica.store(replica, Ordering::Release);
    r.link_up.store(false, Ordering::Relaxed);
    // The rest of the switch happens under the state's lock too, so two REPLICAOFs at once
    // cannot leave the engine, the role and the config from different ones. (Lock order: this
    // state, then the config, the feed, the ids.)
    {
        let mut cfg = shared.config_mut();
        shared.engine.set_replica(replica, cfg.replica_ignore_maxmemory);
        cfg.replicaof = master.as_ref().map(|(h, p)| format!("{h} {p}")).unwrap_or_default();
    }
    let feed = &shared.engine.feed;
    match &master {
        Some((host, port)) => {
            shared.repl.set_role(Role::Replica { host: host.clone(), port: *port });
            // From now on the stream this server serves is its master's, proxied verbatim.
            feed.start_replication(shared.config().repl_backlog_size);
            feed.set_upstream(true);
        }
        // PSYNC2 promotion: the old id stays valid (replid2) up to the offset reached.
        None if was.is_some() => {
            shared.repl.promote(shared);
            shared.repl.set_role(Role::Master);
        }
        None => {}
    }
    drop(g);
    // Sub-replicas must hear of the change; they come back with a PSYNC, partial when
    // the histories allow (redis-server disconnects them the same way).
    if was != master {
        disconnect_sub_replicas(shared);
    }
    match (&was, &master) {
        (_, Some((h, p))) => log(LogLevel::Notice, &format!("Connecting to MASTER {h}:{p}")),
        (Some(_), None) => log(LogLevel::Notice, "MASTER MODE enabled (user request)"),
        (None, None) => {}
    }
    r.changed.notify_all();
    Outcome::Changed
}

/// Closes the links of this server's own replicas (their thread sees the kill flag).
pub(crate) fn disconnect_sub_replicas(shared: &Shared) {
    let ids: Vec<u64> = shared.repl.replicas().iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return;
    }
    let clients = shared.lock_clients();
    for id in ids {
        if let Some(c) = clients.get(&id) {
            c.kill.store(true, Ordering::Release);
        }
    }
}

/// A replica's position in its master's stream, as a snapshot records it (AUX fields
/// `repl-id`, `repl-offset`, `repl-stream-db`, as redis-server writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPosition {
    /// The master's replication id.
    pub replid: String,
    /// The stream offset the snapshot's data reflects.
    pub offset: u64,
    /// The database the stream was in.
    pub db: usize,
}

/// On a replica, the apply gate for a snapshot about to lock every shard (SAVE, BGSAVE), so
/// that no command from the master is applied but not yet proxied while it is taken: the
/// snapshot's data and its recorded offset then agree. None on a master, inside a transaction
/// (which holds the shards already: waiting for the gate there could deadlock with the apply
/// loop, which takes the gate first) and on the apply thread itself.
pub fn snapshot_gate(shared: &Shared) -> Option<std::sync::MutexGuard<'_, ()>> {
    let wait = shared.replica.is_replica()
        && !shared.engine.in_transaction()
        && !crate::engine::effects::is_applying_from_master();
    wait.then(|| shared.repl.apply_gate())
}

/// The position to record in a snapshot taken now (the caller holds every shard, and the
/// apply gate when `gated`: see [`snapshot_gate`]): a replica's in its master's stream, so
/// that after a restart it can continue with a partial resync. None on a master, on a replica
/// that holds no master's history yet, and, ungated, when a command from the master may be
/// applied but not yet proxied (the gate is held): the data and the offset could disagree,
/// so that snapshot asks for a full sync after a restart rather than apply a command twice.
pub fn saved_position(shared: &Shared, gated: bool) -> Option<SavedPosition> {
    if !shared.replica.is_replica() || !(gated || shared.repl.apply_gate_idle()) {
        return None;
    }
    let g = shared.replica.lock();
    if g.master.is_none() || !g.cached {
        return None;
    }
    let db = g.stream_db;
    drop(g);
    Some(SavedPosition { replid: shared.repl.ids().replid, offset: shared.engine.feed.repl_offset(), db })
}

/// Keeps the position a snapshot loaded at start-up recorded, for [`start`].
pub fn restore_position(shared: &Shared, aux: &[(Vec<u8>, Vec<u8>)]) {
    let field = |name: &[u8]| aux.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let (Some(replid), Some(offset)) = (field(b"repl-id"), field(b"repl-offset")) else { return };
    let Ok(offset) = offset.parse::<u64>() else { return };
    if replid.len() != 40 {
        return;
    }
    let db = field(b"repl-stream-db").and_then(|d| d.parse().ok()).unwrap_or(0);
    *shared.replica.restored.lock().unwrap_or_else(|p| p.into_inner()) = Some(SavedPosition { replid, offset, db });
}

/// Starts the replication thread (once, at start-up), following the `replicaof` directive if
/// set. A replica whose snapshot recorded its master's position offers it with PSYNC, as
/// redis-server does after a restart; otherwise it asks for a full sync.
pub fn start(shared: Arc<Shared>) -> Result<(), String> {
    let master = shared.config().master();
    if master.is_some() {
        set_master(&shared, master);
        let restored = shared.replica.restored.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut g = shared.replica.lock();
        g.cached = false;
        if let Some(p) = restored {
            log(
                LogLevel::Notice,
                &format!("Using the replication ID {} and offset {} from the RDB", p.replid, p.offset),
            );
            shared.repl.set_ids(super::Ids { replid: p.replid, replid2: "0".repeat(40), second_repl_offset: -1 });
            shared.engine.feed.reset_replication(p.offset, shared.config().repl_backlog_size, true);
            g.cached = true;
            g.stream_db = p.db;
            g.processed = p.offset as i64;
            g.read = p.offset as i64;
        }
    }
    std::thread::Builder::new()
        .name("cachette-replica".into())
        .spawn(move || link::run(shared))
        .map(|_| ())
        .map_err(|e| format!("cannot start the replication thread: {e}"))
}

/// Waits until a master is set (or `timeout`): (generation, master).
fn wait_for_master(r: &Replica, timeout: Duration) -> Option<(u64, (String, u16))> {
    let g = r.lock();
    let (g, _) = r.changed.wait_timeout_while(g, timeout, |g| g.master.is_none()).unwrap_or_else(|p| p.into_inner());
    g.master.clone().map(|m| (g.generation, m))
}

/// A client's command on a replica: `-READONLY` for writes (`replica-read-only yes`),
/// `-MASTERDOWN` for commands not flagged `stale` while the link is down and
/// `replica-serve-stale-data no`. In redis-server's order: the write check first.
pub fn admit(shared: &Shared, spec: &Spec) -> Result<(), CmdError> {
    let (read_only, serve_stale) = {
        let cfg = shared.config();
        (cfg.replica_read_only, cfg.replica_serve_stale_data)
    };
    if read_only && spec.has(flags::WRITE) {
        return Err(CmdError::err(READONLY_ERROR));
    }
    if !serve_stale && !shared.replica.link_up() && !spec.has(flags::STALE) {
        return Err(CmdError::err(MASTERDOWN_ERROR));
    }
    Ok(())
}

/// A directive's current value as CONFIG GET shows it, when cachette has the directive
/// (`replica-priority` and `replica-announced` belong to sentinel support).
fn directive(shared: &Shared, name: &str, absent: &str) -> String {
    match crate::config::lookup(name.as_bytes()) {
        Some((d, _)) => d.value(&shared.config()),
        None => absent.to_owned(),
    }
}

/// INFO replication's replica fields, `role:slave` to `replica_announced`, in redis-server
/// 7.0.15's order (the caller goes on with `connected_slaves`). Writes nothing on a master.
pub fn info_fields(shared: &Shared, t: &mut String) {
    use std::fmt::Write;
    let g = shared.replica.lock();
    let Some((host, port)) = g.master.clone() else { return };
    let now = unix_ms();
    let secs = |ms: u64| (now.saturating_sub(ms) / 1000) as i64;
    let up = g.state == LinkState::Connected;
    let _ = write!(
        t,
        "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
        if up { "up" } else { "down" },
        if up { secs(g.last_io_ms) } else { -1 },
        u8::from(g.state == LinkState::Sync),
        g.read,
        g.processed,
    );
    if let (LinkState::Sync, Some(x)) = (g.state, g.transfer) {
        let perc = if x.total > 0 { x.read as f64 / x.total as f64 * 100.0 } else { 0.0 };
        let _ = write!(
            t,
            "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
            x.total,
            x.read,
            x.total as i64 - x.read as i64,
            secs(x.last_io_ms),
        );
    }
    if !up {
        let down = if g.down_since_ms == 0 { -1 } else { secs(g.down_since_ms) };
        let _ = write!(t, "master_link_down_since_seconds:{down}\r\n");
    }
    drop(g);
    let read_only = shared.config().replica_read_only;
    let priority = directive(shared, "replica-priority", "100");
    let announced = directive(shared, "replica-announced", "yes") == "yes";
    let _ = write!(
        t,
        "slave_priority:{priority}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
        u8::from(read_only),
        u8::from(announced)
    );
}

/// ROLE on a replica: `slave`, host, port, link state, offset (-1 until connected).
pub fn role_reply(shared: &Shared, out: &mut Encoder<'_>) {
    let g = shared.replica.lock();
    let (host, port) = g.master.clone().unwrap_or_default();
    out.array(5);
    out.bulk(b"slave");
    out.bulk(host.as_bytes());
    out.int(i64::from(port));
    out.bulk(g.state.name().as_bytes());
    out.int(if g.state == LinkState::Connected { g.processed } else { -1 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn lines(t: &str) -> Vec<&str> {
        t.split("\r\n").filter(|l| !l.is_empty()).collect()
    }

    #[test]
    fn info_fields_follow_the_link_state_in_redis_order() {
        let shared = Shared::new(Config::default());
        let mut t = String::new();
        info_fields(&shared, &mut t);
        assert!(t.is_empty(), "a master writes no replica fields");

        assert_eq!(set_master(&shared, Some(("10.0.0.1".into(), 6380))), Outcome::Changed);
        assert_eq!(set_master(&shared, Some(("10.0.0.1".into(), 6380))), Outcome::Already);
        info_fields(&shared, &mut t);
        assert_eq!(
            lines(&t),
            [
                "role:slave",
                "master_host:10.0.0.1",
                "master_port:6380",
                "master_link_status:down",
                "master_last_io_seconds_ago:-1",
                "master_sync_in_progress:0",
                "slave_read_repl_offset:0",
                "slave_repl_offset:0",
                "master_link_down_since_seconds:-1",
                "slave_priority:100",
                "slave_read_only:1",
                "replica_announced:1",
            ]
        );

        shared.replica.set_state(LinkState::Sync);
        shared.replica.lock().transfer = Some(Transfer { total: 200, read: 50, last_io_ms: unix_ms() });
        t.clear();
        info_fields(&shared, &mut t);
        let l = lines(&t);
        assert_eq!(l[5], "master_sync_in_progress:1");
        assert_eq!(
            l[8..13],
            [
                "master_sync_total_bytes:200",
                "master_sync_read_bytes:50",
                "master_sync_left_bytes:150",
                "master_sync_perc:25.00",
                "master_sync_last_io_seconds_ago:0",
            ]
        );

        shared.replica.set_state(LinkState::Connected);
        {
            let mut g = shared.replica.lock();
            g.last_io_ms = unix_ms();
            g.processed = 42;
            g.read = 50;
        }
        t.clear();
        info_fields(&shared, &mut t);
        let l = lines(&t);
        assert_eq!(
            l[3..8],
            [
                "master_link_status:up",
                "master_last_io_seconds_ago:0",
                "master_sync_in_progress:0",
                "slave_read_repl_offset:50",
                "slave_repl_offset:42"
            ]
        );
        assert!(!t.contains("master_link_down_since_seconds"));

        // Down again: the time it went down is counted from now.
        shared.replica.set_state(LinkState::Connect);
        t.clear();
        info_fields(&shared, &mut t);
        assert!(t.contains("master_link_down_since_seconds:0\r\n"), "{t}");
    }

    #[test]
    fn admit_refuses_writes_and_stale_reads_as_configured() {
        let shared = Shared::new(Config::default());
        let set = crate::commands::lookup(b"set").expect("set");
        let get = crate::commands::lookup(b"get").expect("get");
        let info = crate::commands::lookup(b"info").expect("info");
        set_master(&shared, Some(("127.0.0.1".into(), 1)));
        assert!(shared.engine.is_replica());
        assert_eq!(admit(&shared, set), Err(CmdError::err(READONLY_ERROR)));
        assert_eq!(admit(&shared, get), Ok(()), "stale data is served by default");
        shared.config_mut().replica_serve_stale_data = false;
        assert_eq!(admit(&shared, get), Err(CmdError::err(MASTERDOWN_ERROR)));
        assert_eq!(admit(&shared, info), Ok(()), "INFO is flagged stale");
        shared.replica.set_state(LinkState::Connected);
        assert_eq!(admit(&shared, get), Ok(()));
        shared.config_mut().replica_read_only = false;
        assert_eq!(admit(&shared, set), Ok(()));
        assert_eq!(shared.config().replicaof, "127.0.0.1 1");

        // Promotion: a master again, the old id kept as replid2.
        let before = shared.repl.ids().replid;
        assert_eq!(set_master(&shared, None), Outcome::Changed);
        assert!(!shared.replica.is_replica() && !shared.engine.is_replica());
        assert_eq!(shared.repl.ids().replid2, before);
        assert_eq!(shared.config().replicaof, "");
    }
}
