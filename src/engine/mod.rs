//! The keyspace: databases split into shards, each shard behind its own lock.
//!
//! ```text
//!   key --hash--> shard = (hash >> 32) & mask        Engine
//!                                                     ├── shards[0]: Mutex<Shard>
//!   Shard                                             │     └── dbs[0..16]: Db
//!   └── Db                                            ├── shards[1] ...
//!       ├── entries: Slab<Entry>   (key stored once, in the entry)
//!       ├── index:   HashTable<u32> (slab ids, hashed through entry.key)
//!       └── volatile: Vec<u32>     (slab ids of keys with a TTL, for expiry sampling)
//! ```
//!
//! Every command is atomic: it locks the shards of its keys in ascending shard order
//! ([`Engine::lock`]) and does all its work under those guards; commands over the whole keyspace
//! (FLUSHALL, SWAPDB) lock every shard. The clock is an argument (`now`, unix milliseconds), so
//! expiry is testable without sleeping.
//!
//! Expiry is lazy (a read of an expired key deletes it first) plus active: [`Engine::expire_cycle`]
//! samples keys with a TTL in each shard and deletes the expired ones, repeating while more than a
//! quarter of a sample was expired and the time budget lasts — redis-server's adaptive algorithm.

pub mod db;
pub mod expired;
pub mod memory;
pub mod ready;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

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
}

/// Guards of the shards one command touches, held in ascending shard order.
pub struct Locked<'e> {
    engine: &'e Engine,
    guards: Vec<(usize, MutexGuard<'e, Shard>)>,
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
        }
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

    /// A fresh CAS unique. Every write of a value takes one, from either protocol, so a memcached
    /// `gets`/`cas` pair notices a Redis write in between.
    #[inline]
    pub fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while a shard was held cannot leave an entry half-written in a way later
        // commands could misread (every mutation is a single slab/index update), so a poisoned
        // lock is taken over rather than propagated to every later client.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the shards of `keys` in ascending order (each once).
    pub fn lock(&self, keys: &[Hashed<'_>]) -> Locked<'_> {
        let mut ids: Vec<usize> = keys.iter().map(|k| self.shard_of(k.hash)).collect();
        ids.sort_unstable();
        ids.dedup();
        let guards = ids.into_iter().map(|i| (i, self.lock_shard(i))).collect();
        Locked { engine: self, guards }
    }

    /// Locks one key's shard: the common case, without the sort.
    #[inline]
    pub fn lock_one(&self, key: &Hashed<'_>) -> Locked<'_> {
        let i = self.shard_of(key.hash);
        Locked { engine: self, guards: vec![(i, self.lock_shard(i))] }
    }

    /// Locks every shard, for commands that act on whole databases atomically.
    pub fn lock_all(&self) -> Locked<'_> {
        let guards = (0..self.shards.len()).map(|i| (i, self.lock_shard(i))).collect();
        Locked { engine: self, guards }
    }

    /// Runs `f` on each shard's part of database `db` in turn, each under its own lock (not
    /// atomic across shards: for KEYS, DBSIZE, INFO keyspace and the like).
    pub fn for_each_shard<F: FnMut(usize, &mut Db)>(&self, db: usize, mut f: F) {
        for i in 0..self.shards.len() {
            let mut g = self.lock_shard(i);
            f(i, g.db(db));
        }
    }

    /// Locks shard `i` alone (SCAN walks shards by index).
    pub fn lock_index(&self, i: usize) -> Locked<'_> {
        Locked { engine: self, guards: vec![(i, self.lock_shard(i))] }
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

    /// One active-expiry pass over every shard and database: samples keys with a TTL and deletes
    /// the expired ones, repeating in a shard while over a quarter of the sample had expired.
    /// `budget` bounds the wall time spent (checked between samples); returns keys deleted.
    ///
    /// Each shard is locked only for one sample at a time, so clients wait at most one sample.
    pub fn expire_cycle(&self, now: u64, effort: u32, budget: std::time::Duration) -> usize {
        let start = std::time::Instant::now();
        let sample = 20 + 5 * effort.saturating_sub(1) as usize;
        let mut total = 0;
        'shards: for i in 0..self.shards.len() {
            for db in 0..DATABASES {
                loop {
                    let expired = {
                        let mut g = self.lock_shard(i);
                        g.db(db).expire_sample(now, sample, |e| self.expired.record(db, e.key()))
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

impl<'e> Locked<'e> {
    #[inline]
    fn shard(&mut self, hash: u64) -> &mut Shard {
        let want = self.engine.shard_of(hash);
        let pos = self
            .guards
            .iter()
            .position(|(i, _)| *i == want)
            .expect("command touched a key whose shard it did not lock");
        &mut self.guards[pos].1
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
        let (found, expired) = d.lookup(key, now);
        if expired {
            engine.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
            engine.expired.record(db, key.key);
        }
        (d, found)
    }

    /// Every locked shard's part of `db`, for whole-database operations under `lock_all`.
    pub fn dbs(&mut self, db: usize) -> impl Iterator<Item = &mut Db> + use<'_, 'e> {
        self.guards.iter_mut().map(move |(_, g)| g.db(db))
    }

    /// Swaps two databases in every locked shard (SWAPDB; needs `lock_all`).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        for (_, g) in self.guards.iter_mut() {
            g.dbs.swap(a, b);
        }
    }

    /// Looks a key up for reading, deleting it first if its TTL has passed. Counts a hit or a miss.
    #[inline]
    pub fn read(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<&mut Entry> {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        match found {
            Some(id) => {
                stats.keyspace_hits.fetch_add(1, Ordering::Relaxed);
                let e = d.entry_mut(id);
                e.lru = (now / 1000) as u32;
                Some(e)
            }
            None => {
                stats.keyspace_misses.fetch_add(1, Ordering::Relaxed);
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
    /// CAS unique (the caller is about to change its value).
    #[inline]
    pub fn write(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<&mut Entry> {
        let engine = self.engine;
        let e = self.peek(db, key, now)?;
        e.cas = engine.next_cas();
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
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
        if engine.expired.is_enabled() {
            // An expired entry this replaces is reclaimed first, so its `expired` event is
            // announced as redis-server's write lookup announces it.
            self.find(db, key, now);
        }
        let cas = engine.next_cas();
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
        engine.ready.stored(db, key.key);
        self.db(db, key).upsert(key, value, expire_at, flags, cas, keep_ttl, now)
    }

    /// Deletes a key; true if it existed (and had not expired).
    pub fn delete(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> bool {
        self.take(db, key, now).is_some()
    }

    /// Removes a key and hands back its entry (RENAME, MOVE, GETDEL).
    pub fn take(&mut self, db: usize, key: &Hashed<'_>, now: u64) -> Option<Entry> {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        let e = d.remove(found?);
        stats.dirty.fetch_add(1, Ordering::Relaxed);
        Some(e)
    }

    /// Inserts an entry taken elsewhere under a (possibly different) key, replacing any existing
    /// one; keeps the entry's TTL and flags, gives it a new CAS unique.
    pub fn put(&mut self, db: usize, key: &Hashed<'_>, entry: Entry, now: u64) {
        let engine = self.engine;
        let cas = engine.next_cas();
        engine.stats.dirty.fetch_add(1, Ordering::Relaxed);
        let expire = entry.expire_at();
        let flags = entry.flags;
        engine.ready.stored(db, key.key);
        let e = self.db(db, key).upsert(key, entry.value, expire, flags, cas, false, now);
        e.lru = entry.lru;
    }

    /// Sets or clears a key's TTL (absolute unix ms). The key must exist.
    pub fn set_expire(&mut self, db: usize, key: &Hashed<'_>, expire_at: Option<u64>, now: u64) -> bool {
        let stats = &self.engine.stats;
        let (d, found) = self.find(db, key, now);
        match found {
            Some(id) => {
                d.set_expire(id, expire_at);
                stats.dirty.fetch_add(1, Ordering::Relaxed);
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
    fn cas_changes_on_every_write() {
        let e = Engine::new(1);
        let k = e.hashed(b"c");
        let mut l = e.lock_one(&k);
        let c1 = l.set(0, &k, s("1"), None, 0, false, 0).cas;
        let c2 = l.write(0, &k, 0).map(|e| e.cas);
        assert!(Some(c1) < c2);
    }
}
