//! State every worker thread shares: the keyspace, the live configuration, the registry of
//! connected clients (for CLIENT LIST / INFO clients) and server-wide counters.
//!
//! Nothing here is a global: `server::run` builds one `Shared` and hands an `Arc` of it to each
//! thread. Counters are relaxed atomics — each is independent and read only for reporting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::engine::Engine;

/// Server-wide counters (INFO stats / clients, memcached stats).
#[derive(Default, Debug)]
pub struct Counters {
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections refused because of maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands executed (both protocols).
    pub commands_processed: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Connected clients right now.
    pub connected_clients: AtomicUsize,
    /// Connections currently open on the memcached port.
    pub memcache_connections: AtomicUsize,
}

/// What the rest of the server may see of one connection. The owning worker updates the atomics
/// as it serves the client; other threads only read them.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique, increasing client id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// Socket file descriptor.
    pub fd: i32,
    /// When the connection was accepted.
    pub created: Instant,
    /// Unix ms of the last request batch (CLIENT LIST idle, the idle timeout).
    pub last_active_ms: AtomicU64,
    /// Selected database.
    pub db: AtomicUsize,
    /// Protocol version (2 or 3); 0 for memcached connections.
    pub resp: AtomicU32,
    /// Name given by CLIENT SETNAME / HELLO SETNAME.
    pub name: Mutex<Vec<u8>>,
    /// Name of the last command run.
    pub last_cmd: Mutex<&'static str>,
    /// Query buffer bytes in use, output buffer bytes pending.
    pub qbuf: AtomicUsize,
    /// Output buffer bytes pending.
    pub obuf: AtomicUsize,
    /// Set by CLIENT KILL (or shutdown) from any thread; the owner closes the connection.
    pub kill: AtomicBool,
    /// Index of the worker that owns the connection.
    pub worker: usize,
    /// CLIENT NO-EVICT ON.
    pub no_evict: AtomicBool,
    /// In MONITOR mode.
    pub monitor: AtomicBool,
    /// True for a memcached-protocol connection.
    pub memcache: bool,
    /// The ACL user it is authenticated as (CLIENT LIST `user=`; ACL DELUSER closes its
    /// connections).
    pub user: Mutex<Arc<str>>,
    /// Subscriptions: channels, patterns, shard channels (CLIENT LIST `sub psub ssub`, type
    /// pubsub); written by the owner's session.
    pub subs: [AtomicUsize; 3],
    /// Client tracking: [`TRACKING_ON`] and [`TRACKING_BCAST`] bits (CLIENT LIST flags `t B`).
    pub tracking: AtomicU32,
    /// Tracking REDIRECT target (CLIENT LIST `redir`): -1 when none.
    pub redir: std::sync::atomic::AtomicI64,
    /// A [`ClientKind`] as `u8`: what the connection is to replication. Set through
    /// [`ClientInfo::set_kind`] by the replication code; everything else reads [`ClientInfo::kind`].
    pub kind: AtomicU8,
}

/// What a connection is to replication, as redis-server's `CLIENT_MASTER` / `CLIENT_SLAVE`
/// flags tell it: CLIENT LIST shows `M` / `S`, CLIENT KILL / CLIENT LIST `TYPE` select by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientKind {
    /// An ordinary client (subscribed or not: pub/sub is a state of its own, see
    /// [`ClientInfo::is_pubsub`]).
    Normal = 0,
    /// This server's link to its primary, seen from the replica (flag `M`, type `master`).
    Master = 1,
    /// A replica attached to this server, seen from the primary (flag `S`, type `replica`).
    Replica = 2,
}

/// The client type CLIENT LIST / CLIENT KILL `TYPE` and the output buffer limits use, derived as
/// redis-server's `getClientType` derives it: master first, then replica, then pub/sub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Master,
    Replica,
    PubSub,
}

impl ClientType {
    /// Parses a `TYPE` argument as redis-server's `getClientTypeByName` does (`slave` is
    /// `replica`), case-insensitively.
    pub fn by_name(name: &[u8]) -> Option<ClientType> {
        [
            (&b"normal"[..], ClientType::Normal),
            (b"slave", ClientType::Replica),
            (b"replica", ClientType::Replica),
            (b"pubsub", ClientType::PubSub),
            (b"master", ClientType::Master),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)
    }
}

/// `ClientInfo::tracking` bit: CLIENT TRACKING is on.
pub const TRACKING_ON: u32 = 1;
/// `ClientInfo::tracking` bit: in BCAST mode.
pub const TRACKING_BCAST: u32 = 2;

impl ClientInfo {
    /// True while the client has any subscription (the pubsub client type).
    pub fn is_pubsub(&self) -> bool {
        self.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0)
    }

    /// What the connection is to replication.
    pub fn kind(&self) -> ClientKind {
        match self.kind.load(Ordering::Relaxed) {
            1 => ClientKind::Master,
            2 => ClientKind::Replica,
            _ => ClientKind::Normal,
        }
    }

    /// Marks the connection as a replica attached to us, or as our primary's link (or back to
    /// normal). Only the replication code calls this.
    pub fn set_kind(&self, kind: ClientKind) {
        self.kind.store(kind as u8, Ordering::Relaxed);
    }

    /// The client's type for CLIENT LIST / CLIENT KILL `TYPE`.
    pub fn client_type(&self) -> ClientType {
        match self.kind() {
            ClientKind::Master => ClientType::Master,
            ClientKind::Replica => ClientType::Replica,
            ClientKind::Normal if self.is_pubsub() => ClientType::PubSub,
            ClientKind::Normal => ClientType::Normal,
        }
    }
}

impl ClientInfo {
    /// A record for unit tests: client `id` speaking RESP `resp` on worker `worker`.
    #[cfg(test)]
    pub(crate) fn for_test(id: u64, resp: u32, worker: usize) -> ClientInfo {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        ClientInfo {
            id,
            addr,
            laddr: addr,
            fd: -1,
            created: Instant::now(),
            last_active_ms: Default::default(),
            db: Default::default(),
            resp: resp.into(),
            name: Default::default(),
            last_cmd: Mutex::new("NULL"),
            qbuf: Default::default(),
            obuf: Default::default(),
            kill: Default::default(),
            worker,
            no_evict: Default::default(),
            monitor: Default::default(),
            memcache: false,
            user: Mutex::new(Arc::from("default")),
            subs: Default::default(),
            tracking: Default::default(),
            redir: (-1).into(),
            kind: Default::default(),
        }
    }
}

/// See the module documentation.
pub struct Shared {
    /// The keyspace. `'static` (leaked once per `Shared`, which lives as long as the process)
    /// so a transaction can park its shard guards on its thread: see `Engine::exclusive`.
    pub engine: &'static Engine,
    /// The live configuration (CONFIG SET writes it; workers read it rarely).
    pub config: RwLock<Config>,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Next client id.
    pub next_client_id: AtomicU64,
    /// Server-wide counters.
    pub counters: Counters,
    /// Set once to stop the server.
    pub shutdown: AtomicBool,
    /// Process start, for uptime and client ages.
    pub started: Instant,
    /// Unix seconds at start.
    pub started_unix: u64,
    /// Random 40-hex-character run id (INFO server run_id).
    pub run_id: String,
    /// Ports actually bound (after port 0 / ephemeral resolution), for INFO.
    pub tcp_port: u16,
    /// The memcached port.
    pub memcache_port: u16,
    /// Clients blocked in BLPOP and friends.
    pub blocking: super::blocking::Blocking,
    /// memcached `stats` counters and the pending delayed flush.
    pub memcache: crate::memcache::Stats,
    /// The active expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE turns it off for tests).
    pub active_expire: AtomicBool,
    /// The dataset is being loaded at start-up (the metrics endpoint's /health says so).
    pub loading: AtomicBool,
    /// Snapshot state: last save, the background save child, INFO persistence.
    pub persist: crate::persist::Persist,
    /// ACL users and the ACL log.
    pub acl: Arc<crate::acl::Acl>,
    /// Pub/Sub subscriptions and delivery.
    pub pubsub: super::pubsub::PubSub,
    /// Client-side caching: who tracks which key.
    pub tracking: super::tracking::Tracking,
    /// Keyspace event classes commands announce (`commands::notify`); zero when off.
    pub notify_flags: AtomicU32,
    /// `memcache-sasl yes`: the users SASL accepts (read from `memcache-sasl-pwdb` at start).
    /// `None`: SASL is off and the memcached port auto-detects text or binary per connection.
    pub memcache_sasl: Option<crate::memcache::sasl::Users>,
    /// Per-command statistics, error counts, slow log, latency monitor.
    pub stats: super::stats::Stats,
    /// MONITOR clients and the delivery of their lines.
    pub monitors: super::monitor::Monitors,
    /// CLIENT PAUSE state.
    pub pause: Pause,
    /// Bumped by CLIENT KILL: workers that see it change look for connections to close.
    pub kill_generation: AtomicU64,
    /// Each worker's waker, to interrupt its poll (kill, unpause).
    wakers: std::sync::OnceLock<Vec<Arc<mio::Waker>>>,
    /// The append-only file's writer state.
    pub aof: crate::persist::aof::Aof,
    /// The replica side of replication: the master followed, the link's state.
    pub replica: crate::replication::replica::Replica,
    /// Replication: role, ids, attached replicas.
    pub repl: crate::replication::Repl,
}

/// CLIENT PAUSE: until when, and whether every command or only writes wait.
#[derive(Default, Debug)]
pub struct Pause {
    /// Unix ms when the pause ends (0 or past: no pause).
    until_ms: AtomicU64,
    /// Every command waits, not only writes.
    all: AtomicBool,
}

impl Pause {
    /// Pauses until `until_ms`. Like redis-server, a pause in force is only ever extended and
    /// made stricter (ALL over WRITE) by another CLIENT PAUSE, never shortened or relaxed.
    pub fn pause(&self, until_ms: u64, all: bool, now: u64) {
        let active = self.until_ms.load(Ordering::Acquire) > now;
        if active {
            self.all.fetch_or(all, Ordering::AcqRel);
            self.until_ms.fetch_max(until_ms, Ordering::AcqRel);
        } else {
            self.all.store(all, Ordering::Release);
            self.until_ms.store(until_ms, Ordering::Release);
        }
    }

    /// Ends the pause (CLIENT UNPAUSE).
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
    }

    /// None when no pause is in force at `now`, else Some(pausing every command?).
    pub fn state(&self, now: u64) -> Option<bool> {
        (self.until_ms.load(Ordering::Acquire) > now).then(|| self.all.load(Ordering::Acquire))
    }

    /// Unix ms when the current pause ends.
    pub fn until(&self) -> u64 {
        self.until_ms.load(Ordering::Acquire)
    }
}

impl ClientInfo {
    /// The record of a client that has no socket: the AOF loader's session (and the base the
    /// replica link fills its socket's details into).
    pub fn internal() -> ClientInfo {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        ClientInfo {
            id: 0,
            addr: none,
            laddr: none,
            fd: -1,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            db: AtomicUsize::new(0),
            resp: AtomicU32::new(2),
            name: Mutex::default(),
            last_cmd: Mutex::new("NULL"),
            qbuf: AtomicUsize::new(0),
            obuf: AtomicUsize::new(0),
            kill: AtomicBool::new(false),
            worker: 0,
            no_evict: AtomicBool::new(false),
            monitor: AtomicBool::new(false),
            subs: Default::default(),
            tracking: AtomicU32::new(0),
            redir: (-1).into(),
            kind: AtomicU8::new(0),
            user: Mutex::new(Arc::from("aof-loader")),
            memcache: false,
        }
    }
}

impl Shared {
    /// Builds the shared state for `config`.
    pub fn new(config: Config) -> Shared {
        let shards = (config.threads.max(1) * 16).next_power_of_two().max(16);
        let tcp_port = config.port;
        let memcache_port = config.memcache_port;
        let notify = config.notify_keyspace_events;
        let stats = super::stats::Stats::new(crate::commands::spec_count(), config.threads.max(1), &config);
        let engine = Engine::new(shards);
        engine.limits.configure(config.memory_settings());
        let memcache = crate::memcache::Stats::default();
        memcache.cas_disabled.store(!config.memcache_cas, Ordering::Relaxed);
        let shared = Shared {
            engine: Box::leak(Box::new(engine)),
            config: RwLock::new(config),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            counters: Counters::default(),
            shutdown: AtomicBool::new(false),
            started: Instant::now(),
            started_unix: unix_ms() / 1000,
            run_id: random_hex(40),
            tcp_port,
            memcache_port,
            blocking: Default::default(),
            memcache,
            active_expire: AtomicBool::new(true),
            aof: crate::persist::aof::Aof::new(),
            loading: AtomicBool::new(false),
            persist: Default::default(),
            acl: Arc::new(crate::acl::Acl::new()),
            pubsub: Default::default(),
            tracking: Default::default(),
            notify_flags: AtomicU32::new(0),
            memcache_sasl: None,
            stats,
            monitors: Default::default(),
            pause: Default::default(),
            kill_generation: AtomicU64::new(0),
            wakers: Default::default(),
            replica: Default::default(),
            repl: Default::default(),
        };
        crate::commands::notify::configure(&shared, notify);
        shared
    }

    /// Installs the workers' wakers (once, at start).
    pub fn set_wakers(&self, wakers: Vec<Arc<mio::Waker>>) {
        let _ = self.wakers.set(wakers);
    }

    /// Interrupts every worker's poll.
    pub fn wake_all(&self) {
        for w in self.wakers.get().map(Vec::as_slice).unwrap_or(&[]) {
            let _ = w.wake();
        }
    }

    /// A read view of the configuration. A poisoned lock means a panic while CONFIG SET held it;
    /// the config struct is still whole (set_many validates before assigning), so go on.
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A write view of the configuration.
    pub fn config_mut(&self) -> std::sync::RwLockWriteGuard<'_, Config> {
        self.config.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new client and returns its info record.
    pub fn register_client(&self, info: ClientInfo) -> Arc<ClientInfo> {
        let info = Arc::new(info);
        self.lock_clients().insert(info.id, info.clone());
        self.counters.connected_clients.fetch_add(1, Ordering::Relaxed);
        if info.memcache {
            self.counters.memcache_connections.fetch_add(1, Ordering::Relaxed);
        }
        info
    }

    /// Forgets a client that disconnected.
    pub fn unregister_client(&self, info: &ClientInfo) {
        if self.lock_clients().remove(&info.id).is_some() {
            self.counters.connected_clients.fetch_sub(1, Ordering::Relaxed);
            if info.memcache {
                self.counters.memcache_connections.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The client registry.
    pub fn lock_clients(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientInfo>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Unix time in milliseconds: the engine's clock.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Unix time in microseconds (TIME).
pub fn unix_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// `n` random hex characters from the OS's randomness, falling back to time-based bits.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    let ok =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_ok();
    if !ok {
        let mut x = unix_us() as u64 ^ u64::from(std::process::id());
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_type_follows_redis_get_client_type() {
        let c = ClientInfo::for_test(1, 2, 0);
        assert_eq!((c.kind(), c.client_type()), (ClientKind::Normal, ClientType::Normal));
        c.subs[1].store(1, Ordering::Relaxed);
        assert_eq!(c.client_type(), ClientType::PubSub);
        // A replication link is its kind first, subscribed or not.
        c.set_kind(ClientKind::Replica);
        assert_eq!(c.client_type(), ClientType::Replica);
        c.set_kind(ClientKind::Master);
        assert_eq!(c.client_type(), ClientType::Master);
        c.set_kind(ClientKind::Normal);
        c.subs[1].store(0, Ordering::Relaxed);
        assert_eq!(c.client_type(), ClientType::Normal);
    }

    #[test]
    fn client_type_names() {
        assert_eq!(ClientType::by_name(b"NORMAL"), Some(ClientType::Normal));
        assert_eq!(ClientType::by_name(b"slave"), Some(ClientType::Replica));
        assert_eq!(ClientType::by_name(b"Replica"), Some(ClientType::Replica));
        assert_eq!(ClientType::by_name(b"master"), Some(ClientType::Master));
        assert_eq!(ClientType::by_name(b"pubsub"), Some(ClientType::PubSub));
        assert_eq!(ClientType::by_name(b"monitor"), None);
        assert_eq!(ClientType::by_name(b""), None);
    }
}
