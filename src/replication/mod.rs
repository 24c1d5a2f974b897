//! Replication: Redis's PSYNC protocol, so a real redis-server (or another cachette) can follow
//! this server, and this server can follow a primary.
//!
//! ```text
//!   write command ─ shard guard drops ─ Feed (engine::effects) ─┬─ AOF pending  ─> AOF writer
//!                                                              └─ repl pending ─> replication
//!   thread "cachette-repl" (primary.rs): drains repl pending ─> backlog ring (backlog.rs)
//!                                        and every attached replica's output buffer
//!   worker: PSYNC / SYNC ─> the connection is handed to the replication thread, which owns
//!           the replica's socket from then on (full sync child, stream, ACKs, PINGs)
//! ```
//!
//! This module holds what the rest of the server sees: [`Repl`] in `Shared::repl` — the role,
//! the replication ids and offsets (PSYNC2: `replid`, `replid2`, `second_repl_offset`), the
//! registry of attached replicas as INFO / ROLE / WAIT / min-replicas read it, the sync
//! counters — and INFO's `# Replication` section. `master_repl_offset` is the replication
//! stream's offset kept by the feed ([`crate::engine::effects::Feed::repl_offset`]).
//!
//! memcached flags: a memcached item with flags other than 0 is streamed as `SET` plus
//! cachette's `MCFLAGS key flags` (the AOF's effect, so a cachette replica keeps the flags). A
//! redis-server replica does not know MCFLAGS: it answers the error into the void, logs it,
//! and goes on with the item stored without its flags. Items with flags 0 (most clients' plain
//! strings) are plain `SET`s and replicate to redis-server without a word.
//!
//! The replica side (REPLICAOF, loading a snapshot, applying the stream) lives in `replica.rs`
//! and uses the feed's replica API: `Feed::reset_replication` after a full sync,
//! `Feed::proxy` for the primary's bytes, `effects::applying_from_master` around applied
//! commands, and [`Repl::promote`] for REPLICAOF NO ONE.

pub mod backlog;
pub mod primary;
pub mod replica;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::server::{unix_ms, Shared};

/// What this server is in the replication topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts writes; replicas may follow it.
    Master,
    /// Follows the primary at host:port.
    Replica {
        /// Primary host.
        host: String,
        /// Primary port.
        port: u16,
    },
}

/// The replication ids (see the module documentation).
#[derive(Clone, Debug)]
pub struct Ids {
    /// 40 lowercase hex characters, random at start and at each promotion.
    pub replid: String,
    /// The previous replid (40 zeros when none): a replica of the old primary may continue.
    pub replid2: String,
    /// The offset up to which `replid2` is valid, plus one (-1 when none), as Redis keeps it.
    pub second_repl_offset: i64,
}

/// What a replica said about itself with REPLCONF before PSYNC (kept in its session).
#[derive(Clone, Debug, Default)]
pub struct Hello {
    /// REPLCONF listening-port.
    pub port: u16,
    /// REPLCONF ip-address.
    pub ip: Option<String>,
    /// REPLCONF capa eof: it can read a diskless, EOF-marked snapshot.
    pub capa_eof: bool,
    /// REPLCONF capa psync2.
    pub capa_psync2: bool,
}

/// How a replica asked to be synchronised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncRequest {
    /// PSYNC <replid> <offset> (`?` and -1 ask for a full sync).
    Psync {
        /// The replication id the replica followed.
        replid: String,
        /// The 1-based stream position of the first byte it lacks.
        offset: i64,
    },
    /// The old SYNC: a snapshot and the stream, no +FULLRESYNC line.
    Sync,
}

/// The state of an attached replica, as INFO reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// Waiting for its snapshot to start (diskless delay) or be written.
    WaitBgsave,
    /// The snapshot is on its way.
    SendBulk,
    /// Streaming.
    Online,
}

impl ReplicaState {
    /// INFO's word.
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One attached replica as the rest of the server sees it (the replication thread publishes it).
#[derive(Clone, Debug)]
pub struct ReplicaView {
    /// Its client id.
    pub id: u64,
    /// Its address (REPLCONF ip-address, else the peer address).
    pub ip: String,
    /// REPLCONF listening-port.
    pub port: u16,
    /// Sync state.
    pub state: ReplicaState,
    /// The last offset it acknowledged (REPLCONF ACK).
    pub ack_offset: u64,
    /// Unix ms of its last acknowledgement.
    pub ack_ms: u64,
}

/// A client blocked in WAIT.
#[derive(Clone, Debug)]
pub struct WaitRequest {
    /// The client's id.
    pub id: u64,
    /// The worker that owns it.
    pub worker: usize,
    /// Replicas wanted.
    pub numreplicas: usize,
    /// The stream offset they must have acknowledged.
    pub offset: u64,
    /// Unix ms when it was registered.
    pub since_ms: u64,
}

/// See the module documentation.
pub struct Repl {
    role: Mutex<Role>,
    ids: Mutex<Ids>,
    replicas: Mutex<Vec<ReplicaView>>,
    waiters: Mutex<Vec<WaitRequest>>,
    /// Connections handed over by workers, for the replication thread.
    inbox: Mutex<Vec<primary::Handoff>>,
    waker: OnceLock<Arc<mio::Waker>>,
    /// INFO stats `sync_full`.
    pub sync_full: AtomicU64,
    /// INFO stats `sync_partial_ok`.
    pub sync_partial_ok: AtomicU64,
    /// INFO stats `sync_partial_err`.
    pub sync_partial_err: AtomicU64,
    /// `min-replicas-to-write` is not met: writes are refused (one load per write command).
    writes_refused: AtomicBool,
    /// Someone waits in WAIT: the thread asks replicas for an ACK.
    pub(crate) getack_wanted: AtomicBool,
    /// See [`Repl::apply_gate`].
    apply_gate: Mutex<()>,
}

/// The error of a write refused by `min-replicas-to-write`.
pub const NOREPLICAS_ERROR: &str = "NOREPLICAS Not enough good replicas to write.";

impl Default for Repl {
    fn default() -> Repl {
        Repl {
            role: Mutex::new(Role::Master),
            ids: Mutex::new(Ids {
                replid: crate::server::shared::random_hex(40),
                replid2: "0".repeat(40),
                second_repl_offset: -1,
            }),
            replicas: Mutex::default(),
            waiters: Mutex::default(),
            inbox: Mutex::default(),
            waker: OnceLock::new(),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            writes_refused: AtomicBool::new(false),
            getack_wanted: AtomicBool::new(false),
            apply_gate: Mutex::new(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Repl {
    /// The current role.
    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    /// Sets the role (the replica side's REPLICAOF).
    pub fn set_role(&self, role: Role) {
        *lock(&self.role) = role;
    }

    /// True unless this server follows a primary.
    pub fn is_master(&self) -> bool {
        *lock(&self.role) == Role::Master
    }

    /// The replication ids.
    pub fn ids(&self) -> Ids {
        lock(&self.ids).clone()
    }

    /// Replaces the replication ids (a replica adopting its primary's after a full sync).
    pub fn set_ids(&self, ids: Ids) {
        *lock(&self.ids) = ids;
    }

    /// PSYNC2 promotion (REPLICAOF NO ONE): the old id becomes `replid2`, valid up to the
    /// current offset, and a new random id starts, so the other replicas of the old primary can
    /// continue with this server without a full sync.
    pub fn promote(&self, shared: &Shared) {
        let offset = shared.engine.feed.repl_offset();
        let mut ids = lock(&self.ids);
        ids.replid2 = std::mem::replace(&mut ids.replid, crate::server::shared::random_hex(40));
        ids.second_repl_offset = offset as i64 + 1;
        drop(ids);
        shared.engine.feed.set_upstream(false);
    }

    /// Held by a replica's apply loop around applying a chunk of its primary's stream *and*
    /// proxying those bytes ([`crate::engine::effects::Feed::proxy`]); a full sync of a
    /// sub-replica takes it before it locks the shards to fork. Without it a snapshot could
    /// hold a command whose bytes are not yet in the stream, and the sub-replica would apply it
    /// twice. Order: this gate, then shard locks.
    pub fn apply_gate(&self) -> std::sync::MutexGuard<'_, ()> {
        lock(&self.apply_gate)
    }

    /// True when nobody holds the apply gate: for a caller that already holds every shard
    /// (SAVE, BGSAVE), which may not wait for the gate without inverting the order above.
    /// Idle then means no command is applied but not yet proxied, and none can be until the
    /// shards are released.
    pub fn apply_gate_idle(&self) -> bool {
        !matches!(self.apply_gate.try_lock(), Err(std::sync::TryLockError::WouldBlock))
    }

    /// The attached replicas.
    pub fn replicas(&self) -> Vec<ReplicaView> {
        lock(&self.replicas).clone()
    }

    pub(crate) fn publish_replicas(&self, views: Vec<ReplicaView>) {
        *lock(&self.replicas) = views;
    }

    /// Number of online replicas that acknowledged `offset` or later.
    pub fn acked(&self, offset: u64) -> usize {
        lock(&self.replicas).iter().filter(|r| r.state == ReplicaState::Online && r.ack_offset >= offset).count()
    }

    /// Writes are refused because `min-replicas-to-write` is not met.
    #[inline]
    pub fn writes_refused(&self) -> bool {
        self.writes_refused.load(Ordering::Relaxed)
    }

    /// CONFIG SET: applies `min-replicas-*` at once (the replication thread also re-checks
    /// them as ACKs come and go).
    pub fn configure(&self, cfg: &crate::config::Config) {
        self.refresh_good_replicas(
            u64::from(cfg.min_replicas_to_write),
            u64::from(cfg.min_replicas_max_lag),
            unix_ms(),
        );
    }

    /// Recomputes [`Repl::writes_refused`] from the directives and the replicas' last ACKs.
    /// As in redis-server, a `min-replicas-max-lag` of 0 turns the check off, and a replica
    /// never refuses its own writes this way.
    pub(crate) fn refresh_good_replicas(&self, min_to_write: u64, max_lag: u64, now_ms: u64) {
        let refused = min_to_write > 0 && max_lag > 0 && self.is_master() && {
            let good = lock(&self.replicas)
                .iter()
                .filter(|r| r.state == ReplicaState::Online && now_ms.saturating_sub(r.ack_ms) / 1000 <= max_lag)
                .count();
            (good as u64) < min_to_write
        };
        self.writes_refused.store(refused, Ordering::Relaxed);
    }

    /// Installs the replication thread's waker.
    pub(crate) fn set_waker(&self, waker: Arc<mio::Waker>) {
        let _ = self.waker.set(waker);
    }

    pub(crate) fn wake(&self) {
        if let Some(w) = self.waker.get() {
            let _ = w.wake();
        }
    }

    /// A worker hands over a connection that asked for PSYNC / SYNC.
    pub fn adopt(&self, handoff: primary::Handoff) {
        lock(&self.inbox).push(handoff);
        self.wake();
    }

    pub(crate) fn take_inbox(&self) -> Vec<primary::Handoff> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    /// WAIT: registers a blocked client; the replication thread answers it when enough
    /// replicas acknowledged (its worker's timeout answers otherwise, via [`Repl::cancel_wait`]).
    pub fn add_wait(&self, w: WaitRequest) {
        lock(&self.waiters).push(w);
        self.getack_wanted.store(true, Ordering::Release);
        self.wake();
    }

    /// Forgets a WAIT (its timeout passed or its client left).
    pub fn cancel_wait(&self, id: u64) {
        lock(&self.waiters).retain(|w| w.id != id);
    }

    /// Takes the WAITs now satisfied.
    pub(crate) fn take_satisfied_waits(&self) -> Vec<(WaitRequest, usize)> {
        let mut waiters = lock(&self.waiters);
        if waiters.is_empty() {
            return Vec::new();
        }
        let mut done = Vec::new();
        waiters.retain(|w| {
            let n = self.acked(w.offset);
            if n >= w.numreplicas {
                done.push((w.clone(), n));
                false
            } else {
                true
            }
        });
        done
    }

    /// Forgets WAITs whose client is no longer blocked (it left, or its timeout answered it).
    /// A second of grace covers the moment between the WAIT handler registering here and its
    /// worker parking the client.
    pub(crate) fn forget_gone_waits(&self, shared: &Shared) {
        let now = unix_ms();
        lock(&self.waiters).retain(|w| now.saturating_sub(w.since_ms) < 1000 || shared.blocking.is_blocked(w.id));
    }

    /// True while a client waits in WAIT.
    pub(crate) fn has_waiters(&self) -> bool {
        !lock(&self.waiters).is_empty()
    }

    /// INFO's `# Replication` section, in redis-server 7.0.15's field order.
    pub fn info_section(&self, shared: &Shared, out: &mut String) {
        let now = unix_ms();
        out.push_str("# Replication\r\n");
        match self.role() {
            Role::Master => out.push_str("role:master\r\n"),
            Role::Replica { .. } => replica::info_fields(shared, out),
        }
        let replicas = self.replicas();
        let _ = write!(out, "connected_slaves:{}\r\n", replicas.len());
        for (i, r) in replicas.iter().enumerate() {
            let lag = now.saturating_sub(r.ack_ms) / 1000;
            let _ = write!(
                out,
                "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
                r.ip,
                r.port,
                r.state.name(),
                r.ack_offset
            );
        }
        let ids = self.ids();
        let feed = &shared.engine.feed;
        let offset = feed.repl_offset();
        let (active, first, histlen) = feed.with_backlog(|b| (1, b.start() + 1, b.histlen())).unwrap_or((0, 0, 0));
        let size = shared.config().repl_backlog_size;
        let _ = write!(
            out,
            "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{active}\r\nrepl_backlog_size:{size}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n",
            ids.replid, ids.replid2, ids.second_repl_offset
        );
    }
}
