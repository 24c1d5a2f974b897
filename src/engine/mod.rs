//! The keyspace: databases split into shards, each shard behind its own lock.
//!
//! ```text
//!   key --hash--> shard = (hash >> 32) & mask        Engine
//!                                                     ├── shards[0]: Mutex<Shard>
//!   Shard                                             │     └── dbs[0..16]: Db
//!   └── Db                                            ├── shards[1] ...
//!       ├── arena:    64 KB pages of records in 8-byte size classes (header, key, string)
//!       ├── side:     Slab<Value>    (long strings and collections, out of line)
//!       ├── index:    HashTable<u32> (record handles, hashed through the record's key)
//!       └── volatile: Vec<u32>       (handles of keys with a TTL, for expiry sampling)
//! ```
//!
//! Commands see one key at a time as a decoded [`Entry`] (`db`'s staged entry; see there).
//!
//! Every command is atomic: it locks the shards of its keys in ascending shard order
//! ([`Engine::lock`]) and does all its work under those guards; commands over the whole keyspace
//! (FLUSHALL, SWAPDB) lock every shard. The clock is an argument (`now`, unix milliseconds), so
//! expiry is testable without sleeping.
//!
//! A transaction (EXEC) is atomic the same way, one level up: [`Engine::exclusive`] takes every
//! shard and parks the guards in a thread-local for the transaction's duration. While they are
//! parked, this thread's `lock*` calls lend them out (moved into the [`Locked`], moved back on
//! its drop) instead of locking again, so the ~90 handlers that lock for themselves run inside
//! EXEC unchanged and no other thread sees the transaction half done. Parking needs guards
//! that borrow nothing shorter-lived than the thread, hence `&'static Engine` there: the
//! server has one engine per process, leaked once.
//!
//! Expiry is lazy (a read of an expired key deletes it first) plus active: [`Engine::expire_cycle`]
//! samples keys with a TTL in each shard and deletes the expired ones, repeating while more than a
//! quarter of a sample was expired and the time budget lasts — redis-server's adaptive algorithm.
//!
//! On a replica ([`Engine::set_replica`]) the master drives expiry, as in Redis: nothing is
//! reclaimed here (no active cycle, no lazy deletion), reads hide keys whose time has passed,
//! and the master's `DEL`s remove them. The replication thread applying the master's stream
//! marks itself ([`effects::applying_from_master`]) and sees such keys as live, so its
//! commands act on the same keyspace the master's did.

pub mod db;
pub mod effects;
pub mod evict;
pub mod expired;
pub mod memory;
pub mod ready;

use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use db::{mc_bits, Db, Entry};

use crate::types::Value;

/// Number of logical databases (SELECT 0..15).
pub const DATABASES: usize = 16;

/// A key together with its hash, computed once per command and reused for the shard choice and
/// the index probe.
#[derive(Clone, Copy, Debug)]
pub struct Hashed<'a> {
    /// The key bytes.
    pub key: &'a [u8],
    /// The engine's hash of `key`.
    pub hash: u64,
}

/// Counters the engine maintains for INFO stats and memcached `stats`.
#[derive(Default, Debug)]
pub struct Stats {
    /// Reads that found their key.
    pub keyspace_hits: AtomicU64,
    /// Reads that did not.
    pub keyspace_misses: AtomicU64,
    /// Keys deleted because their TTL passed (lazily or by the active cycle).
    pub expired_keys: AtomicU64,
    /// Writes since the last save (`rdb_changes_since_last_save`).
    pub dirty: AtomicU64,
}

/// One shard: a slice of every database.
pub struct Shard {
    dbs: Vec<Db>,
}

impl Shard {
    /// The part of database `db` that lives in this shard.
    pub fn db(&mut self, db: usize) -> &mut Db {
        &mut self.dbs[db]
    }
}

/// The shared keyspace.
pub struct Engine {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
    cas: AtomicU64,
    /// Hit/miss/expiry counters.
    pub stats: Stats,
    /// Keys blocked clients wait for.
    pub ready: ready::Readiness,
    /// Keys reclaimed by expiry, for the `expired` keyspace event.
    pub expired: expired::ExpiredLog,
    /// Keys evicted, for the `evicted` keyspace event.
    pub evicted: expired::ExpiredLog,
    /// Keys created, for the `new` keyspace event.
    pub created: expired::ExpiredLog,
    /// Keys a read did not find, for the `keymiss` keyspace event.
    pub missed: expired::ExpiredLog,
    /// The memory limit, eviction policy and eviction pool.
    pub limits: evict::Limits,
    /// Write effects, for the AOF and replication.
    pub feed: effects::Feed,
    /// A replica: the master drives expiry (see the module documentation).
    replica: AtomicBool,
    /// A replica that ignores `maxmemory` (`replica-ignore-maxmemory yes`): no eviction.
    replica_ignores_maxmemory: AtomicBool,
}

/// Forked children (background save, AOF rewrite, replication snapshot) alive right now. While
/// one is, every page the parent writes is copied for it, so reads leave the access clocks
/// alone (redis-server's `hasActiveChildProcess` check in `lookupKey`). One per process, as a
/// fork is.
static FORK_CHILDREN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a forked child in (`true`, right after a successful fork) or out (`false`, once
/// reaped).
pub fn note_fork_child(alive: bool) {
    if alive {
        FORK_CHILDREN.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = FORK_CHILDREN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Whether a forked child shares this process's pages copy-on-write.
#[inline]
pub fn fork_child_active() -> bool {
    FORK_CHILDREN.load(Ordering::Relaxed) != 0
}

/// Guards of the shards one command touches, held in ascending shard order.
pub struct Locked<'e> {
    engine: &'e Engine,
    guards: Guards<'e>,
}

/// A shard locked by the command itself: (shard index, guard).
type OwnGuard<'e> = (usize, MutexGuard<'e, Shard>);
/// A shard guard held by a transaction and lent to one of its commands.
type LentGuard = MutexGuard<'static, Shard>;

enum Guards<'e> {
    /// Locked for this command, ascending.
    Own(Vec<OwnGuard<'e>>),
    /// Lent by the transaction parked on this thread: every shard, by index; `ids` are the
    /// ones the command asked for (whole-database walks visit only those).
    Exec { ids: Vec<usize>, all: Vec<LentGuard> },
}

/// Every shard's guard, parked on this thread by [`Engine::exclusive`]. `None` inside while a
/// [`Locked`] has borrowed them.
type Parked = Option<Vec<LentGuard>>;

thread_local! {
    /// Address of the engine whose shards this thread holds for a transaction (0: none). A
    /// plain `Cell` so the check on every lock is one thread-local load.
    static EXCLUSIVE: Cell<usize> = const { Cell::new(0) };
    static PARKED: RefCell<Parked> = const { RefCell::new(None) };
}

#[cfg(debug_assertions)]
thread_local! {
    /// `Locked` values alive on this thread (debug builds only).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Debug builds check that no thread takes shard locks while it holds a [`Locked`]: outside a
/// transaction that risks a deadlock (same shard, or shards out of order), inside one it is
/// the double borrow [`Engine::lend`] refuses. Every test then doubles as an audit of the
/// handlers.
#[inline]
fn note_locked() {
    #[cfg(debug_assertions)]
    HELD.with(|h| {
        assert_eq!(h.get(), 0, "shard lock taken while this thread already holds one");
        h.set(1);
    });
}

/// Holds every shard of an engine for one transaction on this thread; see the module
/// documentation. Dropping it releases them. Not `Send`: the guards are parked in this
/// thread's storage.
pub struct Exclusive {
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        EXCLUSIVE.with(|e| e.set(0));
        let guards = PARKED.with(|p| p.borrow_mut().take());
        drop(guards);
    }
}

impl Engine {
    /// An empty keyspace with `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> Engine {
        let n = shards.max(1).next_power_of_two();
        let hasher = std::collections::hash_map::RandomState::new();
        let shards = (0..n)
            .map(|_| {
                let dbs = (0..DATABASES).map(|_| Db::with_hasher(hasher.clone())).collect();
                Mutex::new(Shard { dbs })
            })
            .collect();
        Engine {
            shards,
            mask: n - 1,
            hasher,
            cas: AtomicU64::new(0),
            stats: Stats::default(),
            ready: ready::Readiness::default(),
            expired: Default::default(),
            evicted: Default::default(),
            created: Default::default(),
            missed: Default::default(),
            limits: evict::Limits::default(),
            feed: effects::Feed::default(),
            replica: AtomicBool::new(false),
            replica_ignores_maxmemory: AtomicBool::new(false),
        }
    }

    /// Enters or leaves replica mode: the master drives expiry; with `ignore_maxmemory` the
    /// replica evicts nothing and refuses nothing for memory (`replica-ignore-maxmemory`).
    pub fn set_replica(&self, on: bool, ignore_maxmemory: bool) {
        self.replica.store(on, Ordering::Release);
        self.replica_ignores_maxmemory.store(on && ignore_maxmemory, Ordering::Release);
    }

    /// True in replica mode.
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// True while memory limits do not apply (a replica ignoring `maxmemory`).
    #[inline]
    pub fn ignores_maxmemory(&self) -> bool {
        self.replica_ignores_maxmemory.load(Ordering::Relaxed)
    }

    /// Hashes a key. The hasher is seeded randomly per process so clients cannot aim for
    /// collisions.
    #[inline]
    pub fn hashed<'a>(&self, key: &'a [u8]) -> Hashed<'a> {
        Hashed { key, hash: self.hasher.hash_one(key) }
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A fresh CAS unique. memcached stores take one; an item that has one gets a new one on
    /// every later write, from either protocol, so a memcached `gets`/`cas` pair notices a Redis
    /// write in between (a Redis-written item has none until a memcached read assigns it).
    #[inline]
    pub fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic in a command while a shard was held leaves at most the staged entry
        // unwritten, and the next operation on that database writes it back (the arena and
        // index change only in short steps no input can make fail), so a poisoned lock is taken
        // over rather than propagated to every later client.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn addr(&self) -> usize {
        self as *const Engine as usize
    }

    /// True while this thread holds every shard for a transaction ([`Engine::exclusive`]).
    #[inline]
    fn exclusive_here(&self) -> bool {
        EXCLUSIVE.with(|e| e.get()) == self.addr()
    }

    /// True while this thread runs a transaction holding every shard (EXEC): it must not wait
    /// for anything a shard holder may be waiting for.
    pub fn in_transaction(&self) -> bool {
        self.exclusive_here()
    }

    /// Lends the parked guards to a command asking for shards `ids`.
    fn lend(&self, ids: Vec<usize>) -> Locked<'_> {
        // Taken twice would mean a handler locking while it already holds a `Locked`: outside
        // a transaction that deadlocks on the shard mutex, so it is a bug either way.
        let all = PARKED.with(|p| p.borrow_mut().take()).expect("a command locked shards twice inside a transaction");
        Locked { engine: self, guards: Guards::Exec { ids, all } }
    }

    /// Takes every shard, in ascending order, and parks the guards on this thread until the
    /// returned value is dropped: meanwhile this thread's `lock*` calls reuse them (see the
    /// module documentation). Must not be called while this thread holds a `Locked` or is
    /// already exclusive.
    pub fn exclusive(&'static self) -> Exclusive {
        assert_eq!(EXCLUSIVE.with(|e| e.get()), 0, "nested exclusive engine access");
        #[cfg(debug_assertions)]
        assert_eq!(HELD.with(|h| h.get()), 0, "exclusive access taken while this thread holds a shard lock");
        let guards: Vec<MutexGuard<'static, Shard>> = (0..self.shards.len()).map(|i| self.lock_shard(i)).collect();
        PARKED.with(|p| *p.borrow_mut() = Some(guards));
        EXCLUSIVE.with(|e| e.set(self.addr()));
        Exclusive { _thread_bound: PhantomData }
    }

    /// Locks the shards of `keys` in ascending order (each once).
    pub fn lock(&self, keys: &[Hashed<'_>]) -> Locked<'_> {
        let mut ids: Vec<usize> = keys.iter().map(|k| self.shard_of(k.hash)).collect();
        ids.sort_unstable();
        ids.dedup();
        if self.exclusive_here() {
            return self.lend(ids);
        }
        note_locked();
        let guards = ids.into_iter().map(|i| (i, self.lock_shard(i))).collect();
        Locked { engine: self, guards: Guards::Own(guards) }
    }

    /// Locks one key's shard: the common case, without the sort.
    #[inline]
    pub fn lock_one(&self, key: &Hashed<'_>) -> Locked<'_> {
        self.lock_index(self.shard_of(key.hash))
    }

    /// Locks every shard, for commands that act on whole databases atomically.
    pub fn lock_all(&self) -> Locked<'_> {
        if self.exclusive_here() {
            return self.lend((0..self.shards.len()).collect());
        }
        note_locked();
        let guards = (0..self.shards.len()).map(|i| (i, self.lock_shard(i))).collect();
        Locked { engine: self, guards: Guards::Own(guards) }
    }

    /// Runs `f` on each shard's part of database `db` in turn, each under its own lock (not
    /// atomic across shards: for KEYS, DBSIZE, INFO keyspace and the like).
    pub fn for_each_shard<F: FnMut(usize, &mut Db)>(&self, db: usize, mut f: F) {
        if self.exclusive_here() {
            let mut l = self.lock_all();
            for i in 0..self.shards.len() {
                f(i, l.shard_at(i).db(db));
            }
            return;
        }
        #[cfg(debug_assertions)]
        assert_eq!(HELD.with(|h| h.get()), 0, "shard lock taken while this thread already holds one");
        for i in 0..self.shards.len() {
            let mut g = self.lock_shard(i);
            f(i, g.db(db));
        }
    }

    /// Locks shard `i` alone (SCAN walks shards by index).
    #[inline]
    pub fn lock_index(&self, i: usize) -> Locked<'_> {
        if self.exclusive_here() {
            return self.lend(vec![i]);
        }
        note_locked();
        Locked { engine: self, guards: Guards::Own(vec![(i, self.lock_shard(i))]) }
    }

    /// Number of keys in `db` (expired-but-not-yet-reclaimed keys included, as Redis counts).
    pub fn dbsize(&self, db: usize) -> usize {
        let mut n = 0;
        self.for_each_shard(db, |_, d| n += d.len());
        n
    }

    /// Keys and keys-with-TTL in `db`, for INFO keyspace.
    pub fn db_counts(&self, db: usize) -> (usize, usize) {
        let (mut keys, mut vol) = (0, 0);
        self.for_each_shard(db, |_, d| {
            keys += d.len();
            vol += d.volatile_len();
        });
        (keys, vol)
    }

    /// Reclaims every expired key of `db` now, shard by shard (memcached's `lru_crawler crawl`):
    /// returns (keys with a TTL looked at, keys deleted). Each deletion is propagated as the
    /// expiry cycle propagates it. O(keys with a TTL); each shard is held for its own pass.
    pub fn reclaim_expired(&self, db: usize, now: u64) -> (u64, u64) {
        let (mut checked, mut reclaimed) = (0, 0);
        if self.is_replica() {
            return (0, 0);
        }
        for i in 0..self.shards.len() {
            let mut g = self.lock_shard(i);
            let d = g.db(db);
            checked += d.volatile_len() as u64;
            reclaimed += d.expire_sample(now, usize::MAX, |key| self.feed.emit(db, &[b"DEL", key])) as u64;
        }
        if reclaimed > 0 {
            self.stats.expired_keys.fetch_add(reclaimed, Ordering::Relaxed);
        }
        (checked, reclaimed)
    }

    /// One active-expiry pass over every shard and database: samples keys with a TTL and deletes
    /// the expired ones, repeating in a shard while over a quarter of the sample had expired.
    /// `budget` bounds the wall time spent (checked between samples); returns keys deleted.
    ///
    /// Each shard is locked only for one sample at a time, so clients wait at most one sample.
    pub fn expire_cycle(&self, now: u64, effort: u32, budget: std::time::Duration) -> usize {
        if self.is_replica() {
            return 0;
        }
        let start = std::time::Instant::now();
        let sample = 20 + 5 * effort.saturating_sub(1) as usize;
        let mut total = 0;
        'shards: for i in 0..self.shards.len() {
            for db in 0..DATABASES {
                loop {
                    let expired = {
                        let mut g = self.lock_shard(i);
                        g.db(db).expire_sample(now, sample, |key| {
                            self.feed.emit(db, &[b"DEL", key]);
                            self.expired.record(db, key);
                        })
                    };
                    total += expired;
                    if expired * 4 <= sample {
                        break;
                    }
                    if start.elapsed() >= budget {
                        break 'shards;
                    }
                }
            }
        }
        if total > 0 {
            self.stats.expired_keys.fetch_add(total as u64, Ordering::Relaxed);
        }
        total
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Before the guards go: the effect of what was written under them enters the feed
        // while no other command can touch these keys (see `effects`).
        if self.engine.feed.enabled() {
            if let Some((db, key)) = effects::pending_state() {
                self.log_state(db, &key);
            }
            effects::on_unlock(&self.engine.feed);
        }
        #[cfg(debug_assertions)]
        HELD.with(|h| h.set(0));
        if let Guards::Exec { all, .. } = &mut self.guards {
            let all = std::mem::take(all);
            PARKED.with(|p| *p.borrow_mut() = Some(all));
        }
    }
}

impl<'e> Locked<'e> {
    /// Records the state of `key` as the running memcached operation's effect (see
    /// [`effects::begin_state`]). Read without the expiry check: the state is what is stored.
    fn log_state(&mut self, db: usize, key: &[u8]) {
        let h = self.engine.hashed(key);
        let shard = self.engine.shard_of(h.hash);
        let held = match &self.guards {
            Guards::Own(g) => g.iter().any(|(i, _)| *i == shard),
            Guards::Exec { ids, .. } => ids.contains(&shard),
        };
        if !held {
            return;
        }
        let d = self.shard_at(shard).db(db);
        let (found, _) = d.lookup(&h, 0);
        let Some(id) = found else {
            effects::rewrite(&[b"DEL", key]);
            return;
        };
        let e = d.entry_mut(id);
        let Some(v) = e.value.as_str() else { return };
        match e.expire_at() {
            Some(t) => effects::rewrite(&[b"SET", key, v, b"PXAT", t.to_string().as_bytes()]),
            None => effects::rewrite(&[b"SET", key, v]),
        }
        if e.flags != 0 {
            effects::rewrite(&[b"MCFLAGS", key, e.flags.to_string().as_bytes()]);
        }
    }

    #[inline]
    fn shard(&mut self, hash: u64) -> &mut Shard {
        let want = self.engine.shard_of(hash);
        self.shard_at(want)
    }

    #[inline]
    fn shard_at(&mut self, want: usize) -> &mut Shard {
        match &mut self.guards {
            Guards::Own(guards) => {
                let pos = guards
                    .iter()
                    .position(|(i, _)| *i == want)
                    .expect("command touched a key whose shard it did not lock");
                &mut guards[pos].1
            }
            Guards::Exec { ids, all } => {
                assert!(ids.contains(&want), "command touched a key whose shard it did not lock");
                &mut all[want]
            }
        }
    }

    #[cfg(test)]
    fn guards_len(&self) -> usize {
        match &self.guards {
            Guards::Own(g) => g.len(),
            Guards::Exec { ids, .. } => ids.len(),
        }
    }

    /// The engine these guards belong to.
    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// The database part holding `key` (the key's shard must be locked).
    #[inline]
    pub fn db(&mut self, db: usize, key: &Hashed<'_>) -> &mut Db {
        self.shard(key.hash).db(db)
    }

    /// Finds `key` in `db`, reclaiming (and counting) it if its TTL has passed. The one lookup
    /// every accessor below goes through.
    #[inline]
    fn find(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> (&mut Db, Option<u32>) {
        let engine = self.engine;
        let d = self.db(db, key);
        if engine.is_replica() {
            // No time is before 0, so the lookup reclaims nothing; the key is then hidden
            // from everyone but the master's stream once its time has passed.
            let (found, _) = d.lookup(key, 0);
            let hidden = found.is_some_and(|id| {
                !effects::is_applying_from_master() && d.entry_mut(id).expire_at().is_some_and(|t| now > t)
            });
            return (d, if hidden { None } else { found });
        }
        let (found, expired) = d.lookup(key, now);
        if expired {
            engine.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
            engine.feed.emit(db, &[b"DEL", key.key]);
            engine.expired.record(db, key.key);
        }
        (d, found)
    }

    /// Every locked shard's part of `db`, in shard order, for whole-database operations
    /// under `lock_all`.
    pub fn dbs(&mut self, db: usize) -> impl Iterator<Item = &mut Db> + use<'_, 'e> {
        // One iterator type for both kinds of guards: the other kind's slice is empty.
        let (own, all, ids): (&mut [OwnGuard<'e>], &mut [LentGuard], &[usize]) = match &mut self.guards {
            Guards::Own(g) => (g, &mut [], &[]),
            Guards::Exec { ids, all } => (&mut [], all, ids),
        };
        let lent = all.iter_mut().enumerate().filter(move |(i, _)| ids.contains(i)).map(move |(_, g)| g.db(db));
        own.iter_mut().map(move |(_, g)| g.db(db)).chain(lent)
    }

    /// Every database part of locked shard `shard`, in database order (eviction samples them).
    pub fn shard_dbs(&mut self, shard: usize) -> impl Iterator<Item = &mut Db> + use<'_, 'e> {
        let (own, all): (&mut [OwnGuard<'e>], &mut [LentGuard]) = match &mut self.guards {
            Guards::Own(g) => (g, &mut []),
            Guards::Exec { ids, all } if ids.contains(&shard) => (&mut [], &mut all[shard..=shard]),
            Guards::Exec { .. } => (&mut [], &mut []),
        };
        let lent = all.iter_mut().flat_map(|g| g.dbs.iter_mut());
        own.iter_mut().filter(move |(i, _)| *i == shard).flat_map(|(_, g)| g.dbs.iter_mut()).chain(lent)
    }

    /// Swaps two databases in every locked shard (SWAPDB; needs `lock_all`). Watches stay with
    /// their database index; a watched key present on either side counts as changed.
    pub fn swap_dbs(&mut self, a: usize, b: usize, now: u64) {
        effects::wrote();
        if a == b {
            return;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let swap = |shard: &mut Shard| {
            let (left, right) = shard.dbs.split_at_mut(hi);
            let (x, y) = (&mut left[lo], &mut right[0]);
            x.touch_all_watched(Some(y), now);
            y.touch_all_watched(Some(x), now);
            x.swap_contents(y);
        };
        match &mut self.guards {
            Guards::Own(g) => g.iter_mut().for_each(|(_, g)| swap(g)),
            Guards::Exec { ids, all } => ids.iter().for_each(|&i| swap(&mut all[i])),
        }
    }

    /// WATCH `key` in `db` for the transaction whose flag is `dirty`.
    pub fn watch(&mut self, db: usize, key: &Hashed<'_>, dirty: &Arc<AtomicBool>, now: u64) {
        self.db(db, key).watch(key.key, dirty, now);
    }

    /// Forgets a watch made with [`Locked::watch`].
    pub fn unwatch(&mut self, db: usize, key: &Hashed<'_>, dirty: &Arc<AtomicBool>) {
        self.db(db, key).unwatch(key.key, dirty);
    }

    /// True when `key`, live when watched, has expired since (EXEC then fails).
    pub fn watched_key_expired(&mut self, db: usize, key: &Hashed<'_>, dirty: &Arc<AtomicBool>, now: u64) -> bool {
        self.db(db, key).watched_key_expired(key.key, dirty, now)
    }

    /// Looks a key up for reading, deleting it first if its TTL has passed. Counts a hit or a miss.
    #[inline]
    pub fn read(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<&mut Entry> {
        let engine = self.engine;
        let (stats, limits) = (&engine.stats, &engine.limits);
        let (d, found) = self.find(db, key, now);
        match found {
            Some(id) => {
                stats.keyspace_hits.fetch_add(1, Ordering::Relaxed);
                let e = d.entry_mut(id);
                // redis-server's lookupKey skips the access clock while a child runs: the
                // write would copy the entry's page for the child on every read.
                if !fork_child_active() {
                    e.lru = (now / 1000) as u32;
                    if limits.tracks_lfu() {
                        limits.lfu_touch(e, now);
                    }
                }
                Some(e)
            }
            None => {
                stats.keyspace_misses.fetch_add(1, Ordering::Relaxed);
                engine.missed.record(db, key.key);
                None
            }
        }
    }

    /// Looks a key up without counting a hit or miss (writes, EXISTS-style checks), still
    /// reclaiming it if expired.
    #[inline]
    pub fn peek(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<&mut Entry> {
        let (d, found) = self.find(db, key, now);
        found.map(|id| d.entry_mut(id))
    }

    /// Looks a key up for modifying it in place: counts as a write, and gives the entry a new
    /// CAS unique (the caller is about to change its value). A string edited in place is what
    /// redis-server calls `raw` ([`mc_bits::RAW_STRING`]).
    #[inline]
    pub fn write(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<&mut Entry> {
        let engine = self.engine;
        let (d, found) = self.find(db, key, now);
        let id = found?;
        d.touched(key.key);
        let e = d.entry_mut(id);
        // An item without a CAS (written through Redis) gets one when a memcached client asks.
        if e.cas != 0 {
            e.cas = engine.next_cas();
        }
        e.mc_bits |= mc_bits::RAW_STRING;
        if engine.limits.tracks_lfu() {
            engine.limits.lfu_touch(e, now);
        }
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
        effects::wrote();
        Some(e)
    }

    // The arguments are the entry's fields; bundling them would only move the list elsewhere.
    #[allow(clippy::too_many_arguments)]
    /// Stores `value` under `key`, replacing any existing entry (its TTL included, unless
    /// `keep_ttl`), with memcached `flags`. Returns the new entry.
    pub fn set(
        &mut self,
        db: usize,
        key: &Hashed<'_>,
        value: Value,
        expire_at: Option<u64>,
        flags: u32,
        keep_ttl: bool,
        now: u64,
    ) -> &mut Entry {
        let engine = self.engine;
        self.note_created(db, key, now);
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
        effects::wrote();
        engine.ready.stored(db, key.key);
        // No CAS unique: memcached stores assign one, Redis writes leave it to the first
        // memcached read (see `db`'s layout).
        self.db(db, key).upsert(key, value, expire_at, flags, 0, keep_ttl, now)
    }

    /// Before a store, for keyspace notifications only (free while they are off): an expired
    /// entry the store replaces is reclaimed first, so its `expired` event is announced as
    /// redis-server's write lookup announces it, and a key that did not exist is logged for the
    /// `new` event.
    #[inline]
    fn note_created(&mut self, db: usize, key: &Hashed<'_>, now: u64) {
        let engine = self.engine;
        if engine.expired.is_enabled() || engine.created.is_enabled() {
            let (_, found) = self.find(db, key, now);
            if found.is_none() {
                engine.created.record(db, key.key);
            }
        }
    }

    /// Deletes a key; true if it existed (and had not expired).
    pub fn delete(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> bool {
        self.discard(db, key, now).is_some()
    }

    /// Deletes a key without handing its entry back: its memcached bits and whether it held a
    /// string, if it existed (and had not expired).
    pub fn discard(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<(u8, bool)> {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        let out = d.delete(found?, key.hash);
        stats.dirty.fetch_add(1, Ordering::Relaxed);
        effects::wrote();
        Some(out)
    }

    /// Removes a key and hands back its entry (RENAME, MOVE, GETDEL).
    pub fn take(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<Entry> {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        let e = d.remove(found?);
        stats.dirty.fetch_add(1, Ordering::Relaxed);
        effects::wrote();
        Some(e)
    }

    /// Inserts an entry taken elsewhere under a (possibly different) key, replacing any existing
    /// one; keeps the entry's TTL and flags, and gives it a new CAS unique if it had one.
    pub fn put(&mut self, db: usize, key: &Hashed<'_>, entry: Entry, now: u64) {
        let engine = self.engine;
        self.note_created(db, key, now);
        let cas = if entry.cas != 0 { engine.next_cas() } else { 0 };
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
        effects::wrote();
        let expire = entry.expire_at();
        let flags = entry.flags;
        engine.ready.stored(db, key.key);
        let e = self.db(db, key).upsert(key, entry.value, expire, flags, cas, false, now);
        e.lru = entry.lru;
        e.mc_bits |= entry.mc_bits & mc_bits::RAW_STRING;
    }

    /// Sets or clears a key's TTL (absolute unix ms). The key must exist.
    pub fn set_expire(&mut self, db: usize, key: &Hashed<'_>, expire_at: Option<u64>, now: u64) -> bool {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        match found {
            Some(id) => {
                d.set_expire(id, expire_at);
                stats.dirty.fetch_add(1, Ordering::Relaxed);
                effects::wrote();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn set_get_delete() {
        let e = Engine::new(4);
        let k = e.hashed(b"a");
        let mut l = e.lock_one(&k);
        l.set(0, &k, s("1"), None, 7, false, 1000);
        assert_eq!(l.read(0, &k, 1000).map(|e| (e.value.clone(), e.flags)), Some((s("1"), 7)));
        assert!(l.read(1, &k, 1000).is_none(), "databases are separate");
        assert!(l.delete(0, &k, 1000));
        assert!(!l.delete(0, &k, 1000));
    }

    #[test]
    fn lazy_expiry_uses_the_given_clock() {
        let e = Engine::new(1);
        let k = e.hashed(b"t");
        let mut l = e.lock_one(&k);
        l.set(0, &k, s("v"), Some(2000), 0, false, 1000);
        assert!(l.read(0, &k, 2000).is_some(), "expires strictly after its time");
        assert!(l.read(0, &k, 2001).is_none());
        drop(l);
        assert_eq!(e.dbsize(0), 0);
        assert_eq!(e.stats.expired_keys.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn active_cycle_reclaims_untouched_keys() {
        let e = Engine::new(4);
        for i in 0..1000u32 {
            let key = format!("k{i}");
            let k = e.hashed(key.as_bytes());
            let ttl = if i % 2 == 0 { Some(500) } else { None };
            e.lock_one(&k).set(0, &k, s("v"), ttl, 0, false, 0);
        }
        let mut total = 0;
        for _ in 0..100 {
            total += e.expire_cycle(1000, 1, std::time::Duration::from_millis(50));
        }
        assert_eq!(total, 500);
        assert_eq!(e.dbsize(0), 500);
    }

    #[test]
    fn a_replica_hides_expired_keys_but_leaves_their_removal_to_the_master() {
        let e = Engine::new(2);
        let k = e.hashed(b"t");
        e.lock_one(&k).set(0, &k, s("v"), Some(2000), 0, false, 1000);
        e.set_replica(true, true);
        assert!(e.lock_one(&k).read(0, &k, 3000).is_none(), "hidden from clients");
        assert_eq!(e.expire_cycle(3000, 1, std::time::Duration::from_millis(50)), 0, "no active expiry");
        assert_eq!(e.reclaim_expired(0, 3000), (0, 0));
        assert_eq!(e.dbsize(0), 1, "still there");
        assert_eq!(e.stats.expired_keys.load(Ordering::Relaxed), 0);
        effects::applying_from_master(true);
        assert!(e.lock_one(&k).read(0, &k, 3000).is_some(), "live to the master's stream");
        assert!(e.lock_one(&k).delete(0, &k, 3000), "the master's DEL removes it");
        effects::applying_from_master(false);
        assert_eq!(e.dbsize(0), 0);
        assert!(e.ignores_maxmemory());
        e.set_replica(false, true);
        assert!(!e.ignores_maxmemory() && !e.is_replica());
    }

    #[test]
    fn cas_changes_on_every_write() {
        let e = Engine::new(1);
        let k = e.hashed(b"c");
        let mut l = e.lock_one(&k);
        assert_eq!(l.set(0, &k, s("1"), None, 0, false, 0).cas, 0, "a Redis write assigns none");
        let c1 = e.next_cas();
        l.write(0, &k, 0).expect("present").cas = c1;
        let c2 = l.write(0, &k, 0).map(|e| e.cas);
        assert!(Some(c1) < c2, "once assigned, every write renews it");
    }

    fn leaked(shards: usize) -> &'static Engine {
        Box::leak(Box::new(Engine::new(shards)))
    }

    #[test]
    fn exclusive_lends_its_guards_to_this_thread_only() {
        let e = leaked(8);
        let keys: Vec<Vec<u8>> = (0..32).map(|i| format!("k{i}").into_bytes()).collect();
        let x = e.exclusive();
        for k in &keys {
            let h = e.hashed(k);
            e.lock_one(&h).set(0, &h, s("v"), None, 0, false, 0);
        }
        let hashed: Vec<Hashed<'_>> = keys.iter().map(|k| e.hashed(k)).collect();
        let asked = e.lock(&hashed).guards_len();
        assert_eq!(e.lock(&hashed).dbs(0).count(), asked, "only the shards asked for");
        assert_eq!(e.lock_all().dbs(0).map(|d| d.len()).sum::<usize>(), 32);
        assert_eq!(e.dbsize(0), 32, "for_each_shard borrows too");
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = {
            let started = started.clone();
            std::thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                e.dbsize(0)
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(!other.is_finished(), "another thread got a shard while the transaction held them");
        let h = e.hashed(b"k0");
        e.lock_one(&h).delete(0, &h, 0);
        drop(x);
        assert_eq!(other.join().unwrap(), 31);
        // Outside the transaction the thread locks for itself again.
        assert_eq!(e.lock_all().dbs(0).count(), 8);
    }

    #[test]
    fn every_kind_of_change_marks_watchers() {
        let e = leaked(4);
        let k = e.hashed(b"w");
        let flag = || std::sync::Arc::new(AtomicBool::new(false));
        let watched = |f: &std::sync::Arc<AtomicBool>, now: u64| {
            e.lock_one(&k).watch(0, &k, f, now);
            f.clone()
        };
        let dirty = |f: &std::sync::Arc<AtomicBool>| f.load(Ordering::SeqCst);

        let f = watched(&flag(), 0);
        e.lock_one(&k).set(0, &k, s("1"), None, 0, false, 0);
        assert!(dirty(&f), "set");
        let f = watched(&flag(), 0);
        let _ = e.lock_one(&k).read(0, &k, 0);
        assert!(!dirty(&f), "a read is no change");
        let _ = e.lock_one(&k).write(0, &k, 0);
        assert!(dirty(&f), "write (in place)");
        let f = watched(&flag(), 0);
        e.lock_one(&k).set_expire(0, &k, Some(100), 0);
        assert!(dirty(&f), "set_expire");
        let f = watched(&flag(), 0);
        assert!(!e.lock_one(&k).watched_key_expired(0, &k, &f, 100));
        assert!(e.lock_one(&k).watched_key_expired(0, &k, &f, 101), "expired since WATCH");
        assert!(e.lock_one(&k).peek(0, &k, 101).is_none());
        assert!(dirty(&f), "lazy expiry");
        let f = watched(&flag(), 0);
        e.lock_one(&k).set(0, &k, s("1"), Some(100), 0, false, 0);
        let f2 = watched(&flag(), 0);
        assert!(dirty(&f));
        e.expire_cycle(200, 1, std::time::Duration::from_millis(100));
        assert!(dirty(&f2), "active expiry");

        // Watched while already expired: its reclaiming is no change, a new value is.
        e.lock_one(&k).set(0, &k, s("1"), Some(100), 0, false, 0);
        let f = watched(&flag(), 150);
        assert!(!e.lock_one(&k).watched_key_expired(0, &k, &f, 150));
        assert!(e.lock_one(&k).peek(0, &k, 150).is_none());
        assert!(!dirty(&f));
        e.lock_one(&k).set(0, &k, s("2"), None, 0, false, 150);
        assert!(dirty(&f));

        // FLUSHDB (clear) of an existing key; of a missing one; SWAPDB both ways.
        let f = watched(&flag(), 0);
        e.lock_all().dbs(0).for_each(|d| d.clear());
        assert!(dirty(&f));
        let f = watched(&flag(), 0);
        e.lock_all().dbs(0).for_each(|d| d.clear());
        assert!(!dirty(&f), "nothing to flush");
        e.lock_all().swap_dbs(0, 1, 0);
        assert!(!dirty(&f), "missing on both sides");
        e.lock_one(&k).set(1, &k, s("x"), None, 0, false, 0);
        assert!(!dirty(&f), "another database");
        e.lock_all().swap_dbs(1, 0, 0);
        assert!(dirty(&f), "swapped in");
        e.lock_one(&k).unwatch(0, &k, &f);
        let f = watched(&flag(), 0);
        e.lock_one(&k).unwatch(0, &k, &f);
        e.lock_one(&k).set(0, &k, s("y"), None, 0, false, 0);
        assert!(!dirty(&f), "unwatched");
        let left: usize = (0..e.shard_count()).map(|i| e.lock_index(i).shard_at(i).db(0).watched_len()).sum();
        assert_eq!(left, 1, "only the flags never unwatched remain");
    }
}
