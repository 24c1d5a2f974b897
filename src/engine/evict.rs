//! The memory limit: `maxmemory`, Redis's eight `maxmemory-policy` values, and the LFU counter
//! the `*-lfu` policies read.
//!
//! Before a command runs, the dispatcher asks [`Engine::make_room`]. Under the limit that is one
//! relaxed load. Over it, keys are evicted as redis-server's `performEvictions` does, in one
//! batch that goes a little below the limit ([`below_limit`]) under one hold of the pool lock,
//! so the writes that follow find room without paying for an eviction each:
//!
//! - **lru / lfu / ttl**: an eviction pool of the 16 best candidates seen so far, kept across
//!   calls and shared by every thread. Each eviction first samples `maxmemory-samples` keys from
//!   every database of one shard, the next in turn from a random start (the live records that
//!   follow a random arena slot, as redis-server takes consecutive buckets: one cache miss
//!   rather than one per key). The victim is deleted straight from its record. The pool is global,
//!   so a key is evicted only when no sampled key in any shard is a better candidate: the sample
//!   quality is redis-server's, and no shard is emptied while colder keys sit in another.
//! - **random**: a random key of a random non-empty database, shard by shard from a random start.
//! - **noeviction**, or nothing left to evict (volatile policies with no TTL keys): the caller
//!   refuses commands that may grow memory (`-OOM`, memcached's `SERVER_ERROR out of memory`).
//!
//! Eviction spends at most a time slice that grows with `maxmemory-eviction-tenacity`
//! (redis-server's formula); if memory is still over the limit then, the command runs anyway and
//! the next command (or the cron thread) goes on evicting, as redis-server's EVICT_RUNNING.
//!
//! Memory is the process's allocator count ([`super::memory::used`]), which is what
//! redis-server's `used_memory` is too: keys, values, indexes and client buffers.
//!
//! LFU is redis-server's: an 8-bit logarithmic counter that starts at 5, grows with probability
//! `1 / ((counter - 5) * lfu-log-factor + 1)` on each access and loses one per `lfu-decay-time`
//! minutes without access. It is updated on access only while an LFU policy is selected.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::db::Sampled;
use super::{memory, Engine, Entry};

/// Counter of a new key (redis-server's LFU_INIT_VAL), so that new keys are not evicted before
/// they had a chance to be read.
pub const LFU_INIT_VAL: u8 = 5;

/// Candidates the eviction pool keeps (redis-server's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;

/// Shards sampled before each eviction: one, like redis-server sampling once per eviction; the
/// pool keeps the best candidates of earlier samples, so more would cost locks for little.
const SHARDS_PER_FILL: usize = 1;

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Evict among keys with a TTL, least recently used first.
    VolatileLru,
    /// Evict among keys with a TTL, least frequently used first.
    VolatileLfu,
    /// Evict a random key with a TTL.
    VolatileRandom,
    /// Evict the key with the nearest expiry.
    VolatileTtl,
    /// Evict any key, least recently used first.
    AllkeysLru,
    /// Evict any key, least frequently used first.
    AllkeysLfu,
    /// Evict a random key.
    AllkeysRandom,
    /// Never evict: refuse writes that need memory.
    NoEviction,
}

impl Policy {
    /// Every policy, in the order of [`Policy::NAMES`].
    pub const ALL: [Policy; 8] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllkeysLru,
        Policy::AllkeysLfu,
        Policy::AllkeysRandom,
        Policy::NoEviction,
    ];

    /// The directive's words, as CONFIG GET and INFO show them.
    pub const NAMES: [&'static str; 8] = [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    ];

    /// The directive's word for this policy.
    pub fn name(self) -> &'static str {
        Policy::NAMES[self as usize]
    }

    /// True when only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    /// True for the policies that read the LFU counter.
    pub fn lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }
}

/// A write was refused: memory is over `maxmemory` and nothing could be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// The memory settings, as atomics so the hot path reads them without the config lock, plus the
/// shared eviction pool.
pub struct Limits {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    tenacity: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
    pool: Mutex<Vec<Candidate>>,
    /// The policy changed: the pool's scores are stale and its next holder empties it. A flag
    /// rather than a `clear` under the pool lock, because `configure` may run inside EXEC with
    /// every shard held, and an evictor holds the pool while it waits for a shard.
    pool_stale: AtomicBool,
    /// Keys evicted since start (INFO evicted_keys, memcached `evictions`).
    pub evicted_keys: AtomicU64,
    /// Of those, memcached items no read had fetched (memcached `evicted_unfetched`).
    pub evicted_unfetched: AtomicU64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(Policy::NoEviction as u8),
            samples: AtomicU32::new(5),
            tenacity: AtomicU32::new(10),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            pool: Mutex::new(Vec::with_capacity(POOL_SIZE)),
            pool_stale: AtomicBool::new(false),
            evicted_keys: AtomicU64::new(0),
            evicted_unfetched: AtomicU64::new(0),
        }
    }
}

/// The memory directives, copied from the configuration at start and on CONFIG SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes; 0 = no limit.
    pub maxmemory: u64,
    /// What to evict.
    pub policy: Policy,
    /// Keys sampled per database per refill.
    pub samples: u32,
    /// 0..=100: how long one eviction call may run (100 = until done).
    pub tenacity: u32,
    /// LFU counter growth damping.
    pub lfu_log_factor: u32,
    /// Minutes per LFU counter decrement (0 = no decay).
    pub lfu_decay_time: u32,
}

/// One key the pool considers; higher `score` = better to evict.
struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

impl Limits {
    /// Installs new settings. A policy change empties the pool, whose scores meant the old one.
    pub fn configure(&self, s: Settings) {
        self.maxmemory.store(s.maxmemory, Ordering::Relaxed);
        let old = self.policy.swap(s.policy as u8, Ordering::Relaxed);
        self.samples.store(s.samples.max(1), Ordering::Relaxed);
        self.tenacity.store(s.tenacity, Ordering::Relaxed);
        self.lfu_log_factor.store(s.lfu_log_factor, Ordering::Relaxed);
        self.lfu_decay_time.store(s.lfu_decay_time, Ordering::Relaxed);
        if old != s.policy as u8 {
            self.pool_stale.store(true, Ordering::Release);
        }
    }

    /// The configured limit in bytes (0 = none).
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    /// The configured policy.
    pub fn policy(&self) -> Policy {
        Policy::ALL.get(usize::from(self.policy.load(Ordering::Relaxed))).copied().unwrap_or(Policy::NoEviction)
    }

    /// True when reads and writes must update the LFU counter.
    #[inline]
    pub fn tracks_lfu(&self) -> bool {
        self.policy().lfu()
    }

    /// True when a limit is set and memory is above it.
    #[inline]
    pub fn over_limit(&self) -> bool {
        let max = self.maxmemory.load(Ordering::Relaxed);
        max != 0 && memory::used() as u64 > max
    }

    fn lock_pool(&self) -> MutexGuard<'_, Vec<Candidate>> {
        // The pool is a cache of hints; whatever a panicking holder left in it is still usable.
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if self.pool_stale.swap(false, Ordering::AcqRel) {
            pool.clear();
        }
        pool
    }

    /// redis-server's `LFUDecrAndReturn`: the counter after the decay due since `e.ldt`.
    pub fn lfu_decayed(&self, e: &Entry, now: u64) -> u8 {
        self.decayed(e.lfu, e.ldt, now)
    }

    fn decayed(&self, lfu: u8, ldt: u16, now: u64) -> u8 {
        let period = u64::from(self.lfu_decay_time.load(Ordering::Relaxed));
        if period == 0 {
            return lfu;
        }
        let now_min = lfu_minutes(now);
        let elapsed = if now_min >= ldt { now_min - ldt } else { 65535 - ldt + now_min };
        let periods = u64::from(elapsed) / period;
        u8::try_from(u64::from(lfu).saturating_sub(periods)).unwrap_or(0)
    }

    /// redis-server's `updateLFU`: decay, then a logarithmic increment, stamped with now.
    pub fn lfu_touch(&self, e: &mut Entry, now: u64) {
        let mut counter = self.lfu_decayed(e, now);
        if counter < 255 {
            let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
            let p = 1.0 / (base * f64::from(self.lfu_log_factor.load(Ordering::Relaxed)) + 1.0);
            if random_unit() < p {
                counter += 1;
            }
        }
        e.lfu = counter;
        e.ldt = lfu_minutes(now);
    }

    /// How long one eviction call may run: redis-server's `evictionTimeLimitUs`, 50 µs per step
    /// up to the default tenacity 10 (500 µs), then 15% more per step, no limit at 100. (At
    /// least 16 keys go per call whatever the limit.)
    fn time_limit(&self) -> Option<Duration> {
        let t = self.tenacity.load(Ordering::Relaxed);
        if t >= 100 {
            return None;
        }
        let us = if t <= 10 { 50 * u64::from(t) } else { (500.0 * 1.15f64.powi(t as i32 - 10)) as u64 };
        Some(Duration::from_micros(us))
    }

    /// The eviction score of `e` under `policy` (higher = evict first).
    fn score(&self, policy: Policy, e: &Sampled<'_>, now: u64) -> u64 {
        match policy {
            Policy::VolatileTtl => u64::MAX - if e.expire_at == 0 { u64::MAX } else { e.expire_at },
            p if p.lfu() => 255 - u64::from(self.decayed(e.lfu, e.ldt, now)),
            _ => (now / 1000).saturating_sub(u64::from(e.lru)),
        }
    }
}

/// Where a batch of evictions stops: a little below the limit (1/512 of it, at most 256 KB), so
/// the writes that follow find room without each paying for one eviction and the pool lock.
fn below_limit(max: u64) -> u64 {
    max - (max / 512).min(256 * 1024)
}

/// The LFU clock: minutes since the epoch, modulo 2^16 (redis-server's `LFUGetTimeInMinutes`).
pub fn lfu_minutes(now_ms: u64) -> u16 {
    ((now_ms / 60_000) & 0xffff) as u16
}

/// A uniform value in [0, 1) from a per-thread xorshift generator (the LFU coin).
fn random_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
    // The address of a thread-local differs per thread, so threads started together diverge.
    let local = 0u8;
    (t.unwrap_or(0) ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

impl Engine {
    /// Evicts keys while memory is over `maxmemory` (see the module documentation). `Err` means
    /// memory is still over the limit and nothing could be evicted (or the policy is
    /// noeviction): the caller refuses commands that may grow memory. Call it with no shard
    /// locked.
    pub fn make_room(&self, now: u64) -> Result<(), OutOfMemory> {
        let limits = &self.limits;
        if !limits.over_limit() || self.ignores_maxmemory() {
            return Ok(());
        }
        let policy = limits.policy();
        if policy == Policy::NoEviction {
            return Err(OutOfMemory);
        }
        let random = matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom);
        // One pool lock for the whole batch; a thread that waited for it while another evicted
        // usually finds the work done.
        let mut pool = (!random).then(|| limits.lock_pool());
        if !limits.over_limit() {
            return Ok(());
        }
        let target = below_limit(limits.maxmemory());
        let start = Instant::now();
        let budget = limits.time_limit();
        let mut evicted = 0u32;
        while memory::used() as u64 > target {
            let done = match &mut pool {
                None => self.evict_random(policy.volatile(), now),
                Some(pool) => self.evict_from_pool(pool, policy, now),
            };
            if !done {
                // Out of evictable keys: refused (when still over the limit) even if this call
                // evicted some, as redis-server's EVICT_FAIL.
                return if limits.over_limit() { Err(OutOfMemory) } else { Ok(()) };
            }
            evicted += 1;
            if evicted % 16 == 0 && budget.is_some_and(|b| start.elapsed() > b) {
                break;
            }
        }
        Ok(())
    }

    /// Deletes one key for eviction; false if it was gone already.
    fn evict_key(&self, db: usize, key: &[u8], now: u64) -> bool {
        let k = self.hashed(key);
        let mut l = self.lock_one(&k);
        let Some((bits, is_str)) = l.discard(db, &k, now) else {
            return false;
        };
        // Logged under the shard lock, so a later write of the key cannot be logged before it.
        self.feed.emit(db, &[b"DEL", key]);
        self.evicted.record(db, key);
        self.limits.evicted_keys.fetch_add(1, Ordering::Relaxed);
        if bits & super::mc_bits::FETCHED == 0 && is_str {
            self.limits.evicted_unfetched.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn evict_random(&self, volatile: bool, now: u64) -> bool {
        let n = self.shard_count();
        let start = (random_unit() * n as f64) as usize;
        for i in 0..n {
            let shard = (start + i) % n;
            let mut picked = None;
            {
                let mut l = self.lock_index(shard);
                for (db, d) in l.shard_dbs(shard).enumerate() {
                    if (volatile && d.volatile_len() == 0) || d.is_empty() {
                        continue;
                    }
                    d.sample(1, volatile, now, |e| picked = Some((db, Box::<[u8]>::from(e.key))));
                    if picked.is_some() {
                        break;
                    }
                }
            }
            if let Some((db, key)) = picked {
                if self.evict_key(db, &key, now) {
                    return true;
                }
            }
        }
        false
    }

    fn evict_from_pool(&self, pool: &mut Vec<Candidate>, policy: Policy, now: u64) -> bool {
        let n = self.shard_count();
        let mut next = (random_unit() * n as f64) as usize;
        let mut visited = 0;
        // Every eviction refills first, as redis-server samples before each key it evicts: the
        // pool then holds the best of everything sampled lately, not the leftovers of one fill.
        loop {
            for _ in 0..SHARDS_PER_FILL.min(n) {
                self.fill_pool(pool, next % n, policy, now);
                next += 1;
                visited += 1;
            }
            while let Some(c) = pool.pop() {
                if self.evict_key(c.db, &c.key, now) {
                    return true;
                }
            }
            if visited >= n {
                return false;
            }
        }
    }

    /// Samples every database of `shard` into the pool (kept sorted, best candidate last).
    fn fill_pool(&self, pool: &mut Vec<Candidate>, shard: usize, policy: Policy, now: u64) {
        let limits = &self.limits;
        let samples = limits.samples.load(Ordering::Relaxed) as usize;
        let volatile = policy.volatile();
        let mut l = self.lock_index(shard);
        for (db, d) in l.shard_dbs(shard).enumerate() {
            if (volatile && d.volatile_len() == 0) || d.is_empty() {
                continue;
            }
            d.sample(samples, volatile, now, |e| {
                let score = limits.score(policy, &e, now);
                if pool.len() >= POOL_SIZE && pool[0].score >= score {
                    return;
                }
                if pool.iter().any(|c| c.db == db && *c.key == *e.key) {
                    return;
                }
                // The displaced candidate's key buffer is reused when it is large enough.
                let mut key = if pool.len() >= POOL_SIZE { pool.remove(0).key } else { Vec::new() };
                key.clear();
                key.extend_from_slice(e.key);
                let at = pool.partition_point(|c| c.score <= score);
                pool.insert(at, Candidate { score, db, key });
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for (i, p) in Policy::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
            assert_eq!(p.name(), Policy::NAMES[i]);
        }
        assert!(Policy::VolatileTtl.volatile() && !Policy::AllkeysLru.volatile());
        assert!(Policy::AllkeysLfu.lfu() && !Policy::AllkeysLru.lfu());
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let limits = Limits::default();
        let e = Engine::new(1);
        let k = e.hashed(b"k");
        let mut l = e.lock_one(&k);
        let now = 10 * 60_000;
        let entry = l.set(0, &k, crate::types::Value::Str(b"v".to_vec()), None, 0, false, now);
        assert_eq!(entry.lfu, LFU_INIT_VAL);
        for _ in 0..1000 {
            limits.lfu_touch(entry, now);
        }
        // With log factor 10, a thousand hits reach about 5 + sqrt(2 * 1000 / 10) ≈ 19.
        assert!((12..40).contains(&entry.lfu), "counter {}", entry.lfu);
        let c = entry.lfu;
        assert_eq!(limits.lfu_decayed(entry, now + 3 * 60_000), c - 3, "one per minute by default");
        assert_eq!(limits.lfu_decayed(entry, now + 600 * 60_000), 0);
    }

    #[test]
    fn batches_stop_a_little_below_the_limit() {
        assert_eq!(below_limit(64 << 20), (64 << 20) - (128 << 10));
        assert_eq!(below_limit(1 << 30), (1 << 30) - (256 << 10), "at most 256 KB");
        assert_eq!(below_limit(1000), 999);
        assert_eq!(below_limit(100), 100);
    }

    #[test]
    fn time_limit_follows_tenacity() {
        let limits = Limits::default();
        let at = |t| {
            limits.tenacity.store(t, Ordering::Relaxed);
            limits.time_limit()
        };
        assert_eq!(at(0), Some(Duration::ZERO));
        assert_eq!(at(10), Some(Duration::from_micros(500)));
        assert_eq!(at(11), Some(Duration::from_micros(575)));
        assert_eq!(at(100), None);
    }
}
