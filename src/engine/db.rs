//! One shard's part of one database: entries in a slab, an index from key to slab id, and the
//! list of keys that carry a TTL. Every method here assumes the caller holds the shard's lock
//! (it has `&mut Db`, which it can only get through a shard guard).
//!
//! Layout choices (memory work will refine them): the key is stored once, inside its entry; the
//! index is a `hashbrown::HashTable<u32>` of slab ids that re-derives hashes from the entries'
//! keys, so it costs 4 bytes plus a control byte per key. Keys with a TTL are also listed in
//! `volatile` (each entry knows its position there) so that active expiry samples only them and
//! removal is O(1) by swap-remove.
//!
//! WATCH lives here too: `watched` maps a key to the transactions watching it, and every method
//! that changes a key (upsert, remove — expiry included —, set_expire, clear, [`Db::touched`]
//! for in-place edits) marks them dirty. It sits beside the data so the shard lock that guards a
//! change also guards the marking, and costs one `is_empty` branch while nobody watches.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use slab::Slab;

use super::Hashed;
use crate::types::Value;

const NO_POS: u32 = u32::MAX;

/// Keys up to this long live inside their entry, saving an allocation (and its allocator
/// header and rounding, 32 bytes for a 12-byte key in glibc) per key; 22 makes the inline form
/// as large as a boxed slice plus its tag, so an entry grows by 8 bytes in exchange.
const INLINE_KEY: usize = 22;

/// A key, inline when short (most keys), on the heap otherwise.
#[derive(Debug, Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(k: &[u8]) -> Key {
        if k.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..k.len()].copy_from_slice(k);
            Key::Inline { len: k.len() as u8, bytes }
        } else {
            Key::Heap(k.into())
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

/// A stored key and its value, TTL and memcached metadata.
#[derive(Debug)]
pub struct Entry {
    key: Key,
    /// The value.
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 = none.
    expire_at: u64,
    /// Position in `Db::volatile`, or NO_POS.
    vol_pos: u32,
    /// memcached client flags (0 for values written through Redis).
    pub flags: u32,
    /// CAS unique, renewed on every write.
    pub cas: u64,
    /// Last access, unix seconds (memcached `l`/`la=`, OBJECT IDLETIME, eviction later).
    pub lru: u32,
    /// memcached item state bits (see [`mc_bits`]); cleared whenever a new value is stored.
    pub mc_bits: u8,
    /// LFU access counter (Redis's logarithmic 8-bit counter), see [`super::evict`].
    pub lfu: u8,
    /// Minute (mod 2^16) the LFU counter was last decremented or incremented.
    pub ldt: u16,
}

/// Per-item state bits, kept in [`Entry::mc_bits`]: memcached's, plus one for Redis's string
/// encoding.
pub mod mc_bits {
    /// The item has been read since it was stored (`h1`, `fetch=yes`).
    pub const FETCHED: u8 = 1;
    /// Marked stale by `md … I` (or `ms … I` with an older CAS): readers see `X`.
    pub const STALE: u8 = 2;
    /// A client already won the recache/vivify token (`W` was sent; later readers see `Z`).
    pub const WIN_SENT: u8 = 4;
    /// Stored by `ms … b`: memcached keeps `ITEM_KEY_BINARY` on the item, and `mg … k` re-encodes
    /// the key in base64 on a hit only for such items.
    pub const KEY_BINARY: u8 = 8;
    /// Redis view: the string was edited in place (APPEND, SETRANGE, SETBIT, …) or built bit by
    /// bit, so redis-server would hold it as a `raw` sds and OBJECT ENCODING says `raw` even when
    /// it is short. Set by [`super::Locked::write`] and by the commands that create such values.
    pub const RAW_STRING: u8 = 16;
}

impl Entry {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// Absolute expiry (unix ms), if any.
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }
    fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && now > self.expire_at
    }
}

/// One client's WATCH of one key.
#[derive(Debug)]
struct Watch {
    /// The client's transaction flag, set when the key changes.
    dirty: Arc<AtomicBool>,
    /// The key was present but already expired when WATCH ran (redis-server's
    /// `watchedKey.expired`): reclaiming it then is no change, and it does not fail EXEC as
    /// an expired key.
    expired: bool,
}

/// The watches of one database part: key → the clients watching it.
type Watched = HashMap<Box<[u8]>, Vec<Watch>>;

/// Marks every watcher of `key` dirty; `deleted` says the key is gone after the change, which
/// is no change for a watcher that saw it already expired.
fn touch(watched: &mut Watched, key: &[u8], deleted: bool) {
    if let Some(ws) = watched.get_mut(key) {
        for w in ws {
            if w.expired && deleted {
                w.expired = false;
                continue;
            }
            w.dirty.store(true, Ordering::Release);
        }
    }
}

/// See the module documentation.
pub struct Db {
    entries: Slab<Entry>,
    index: HashTable<u32>,
    volatile: Vec<u32>,
    hasher: RandomState,
    rng: u64,
    /// Expired entries reclaimed here that no memcached read had fetched (memcached's
    /// `expired_unfetched`): a plain counter, read under the shard lock by `stats`.
    expired_unfetched: u64,
    /// See [`Db::last_lookup_expired`].
    last_lookup_expired: bool,
    watched: Watched,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            entries: Slab::new(),
            index: HashTable::new(),
            volatile: Vec::new(),
            hasher: RandomState::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            expired_unfetched: 0,
            last_lookup_expired: false,
            watched: HashMap::new(),
        }
    }
}

impl Db {
    /// Replaces the hasher; the engine gives every Db its own, seeded like the shard selection.
    pub(super) fn with_hasher(hasher: RandomState) -> Db {
        Db { hasher, ..Db::default() }
    }

    /// Number of keys (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the database part holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Number of keys still live at `now`: `len` minus the expired keys no one has reclaimed
    /// yet (DBSIZE). Costs O(keys with a TTL), since only those can have expired.
    pub fn live_len(&self, now: u64) -> usize {
        let expired = |id: u32| self.entries[id as usize].is_expired(now);
        self.entries.len() - self.volatile.iter().filter(|&&id| expired(id)).count()
    }

    fn find(&self, key: &Hashed<'_>) -> Option<u32> {
        let entries = &self.entries;
        self.index.find(key.hash, |&id| *entries[id as usize].key == *key.key).copied()
    }

    /// Finds `key`; if it has expired at `now`, removes it. Returns (slab id if live, expired?).
    pub fn lookup(&mut self, key: &Hashed<'_>, now: u64) -> (Option<u32>, bool) {
        let out = match self.find(key) {
            Some(id) if self.entries[id as usize].is_expired(now) => {
                self.reclaim(id);
                (None, true)
            }
            found => (found, false),
        };
        self.last_lookup_expired = out.1;
        out
    }

    /// Whether the last lookup here found its key expired (and reclaimed it): memcached's
    /// `get_expired`, read by a miss without a second lookup.
    pub fn last_lookup_expired(&self) -> bool {
        self.last_lookup_expired
    }

    /// Removes an expired entry, counting it for `expired_unfetched` when it is a string no
    /// memcached read had fetched.
    fn reclaim(&mut self, id: u32) -> Entry {
        let e = self.remove(id);
        if e.mc_bits & mc_bits::FETCHED == 0 && e.value.as_str().is_some() {
            self.expired_unfetched += 1;
        }
        e
    }

    /// Expired strings reclaimed unfetched so far (see the field).
    pub fn expired_unfetched(&self) -> u64 {
        self.expired_unfetched
    }

    /// The entry at slab id `id` (from `lookup`).
    pub fn entry_mut(&mut self, id: u32) -> &mut Entry {
        &mut self.entries[id as usize]
    }

    /// Removes the entry at `id` from slab, index and volatile list.
    pub fn remove(&mut self, id: u32) -> Entry {
        let hash = self.hasher.hash_one(&*self.entries[id as usize].key);
        if let Ok(slot) = self.index.find_entry(hash, |&x| x == id) {
            slot.remove();
        }
        self.unlist_volatile(id);
        let e = self.entries.remove(id as usize);
        if !self.watched.is_empty() {
            touch(&mut self.watched, &e.key, true);
        }
        e
    }

    /// Records that the value under `key` was changed in place (the engine's `write`), for
    /// the transactions watching it.
    #[inline]
    pub fn touched(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            touch(&mut self.watched, key, false);
        }
    }

    fn find_key(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        self.index.find(hash, |&id| *entries[id as usize].key == *key).map(|&id| &entries[id as usize])
    }

    /// WATCH: `dirty` is set when `key` changes from now on. Watching a key twice is one watch.
    pub fn watch(&mut self, key: &[u8], dirty: &Arc<AtomicBool>, now: u64) {
        let expired = self.find_key(key).is_some_and(|e| e.is_expired(now));
        let ws = self.watched.entry(key.into()).or_default();
        if !ws.iter().any(|w| Arc::ptr_eq(&w.dirty, dirty)) {
            ws.push(Watch { dirty: dirty.clone(), expired });
        }
    }

    /// Forgets the watch `dirty` holds on `key`.
    pub fn unwatch(&mut self, key: &[u8], dirty: &Arc<AtomicBool>) {
        if let Some(ws) = self.watched.get_mut(key) {
            ws.retain(|w| !Arc::ptr_eq(&w.dirty, dirty));
            if ws.is_empty() {
                self.watched.remove(key);
            }
        }
    }

    /// redis-server's `isWatchedKeyExpired` for one key: it was live when `dirty` watched it
    /// and has expired since, though nobody has reclaimed it yet.
    pub fn watched_key_expired(&self, key: &[u8], dirty: &Arc<AtomicBool>, now: u64) -> bool {
        let live_at_watch = self
            .watched
            .get(key)
            .and_then(|ws| ws.iter().find(|w| Arc::ptr_eq(&w.dirty, dirty)))
            .is_some_and(|w| !w.expired);
        live_at_watch && self.find_key(key).is_some_and(|e| e.is_expired(now))
    }

    /// Number of keys watched in this database part (for tests and introspection).
    pub fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// redis-server's `touchAllWatchedKeysInDb`: this database part is emptied (FLUSHDB) or,
    /// with `replaced_with`, about to trade contents with another (SWAPDB). Each watched key
    /// present before or after counts as changed, except where it is expired on both sides.
    pub fn touch_all_watched(&mut self, replaced_with: Option<&Db>, now: u64) {
        if self.watched.is_empty() {
            return;
        }
        let keys: Vec<Box<[u8]>> = self.watched.keys().cloned().collect();
        for key in keys {
            let here = self.find_key(&key).is_some();
            let there = replaced_with.and_then(|o| o.find_key(&key)).map(|e| e.is_expired(now));
            if !here && there.is_none() {
                continue;
            }
            let Some(ws) = self.watched.get_mut(&key) else { continue };
            for w in ws {
                if w.expired {
                    match there {
                        // The expired key goes away: no logical change.
                        None => {
                            w.expired = false;
                            continue;
                        }
                        Some(true) => continue,
                        Some(false) => {}
                    }
                } else if !here && there == Some(true) {
                    // A missing key replaced by an expired one: still missing, logically.
                    w.expired = true;
                    continue;
                }
                w.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Exchanges everything but the watches with `other` (SWAPDB: clients keep watching the
    /// database index they chose).
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.entries, &mut other.entries);
        std::mem::swap(&mut self.index, &mut other.index);
        std::mem::swap(&mut self.volatile, &mut other.volatile);
        std::mem::swap(&mut self.rng, &mut other.rng);
    }

    fn unlist_volatile(&mut self, id: u32) {
        let pos = self.entries[id as usize].vol_pos;
        if pos == NO_POS {
            return;
        }
        self.volatile.swap_remove(pos as usize);
        if let Some(&moved) = self.volatile.get(pos as usize) {
            self.entries[moved as usize].vol_pos = pos;
        }
        self.entries[id as usize].vol_pos = NO_POS;
    }

    /// Sets or clears the TTL of the entry at `id`.
    pub fn set_expire(&mut self, id: u32, expire_at: Option<u64>) {
        if !self.watched.is_empty() {
            touch(&mut self.watched, &self.entries[id as usize].key, false);
        }
        match expire_at {
            Some(t) => {
                let e = &mut self.entries[id as usize];
                e.expire_at = t.max(1);
                if e.vol_pos == NO_POS {
                    e.vol_pos = self.volatile.len() as u32;
                    self.volatile.push(id);
                }
            }
            None => {
                self.entries[id as usize].expire_at = 0;
                self.unlist_volatile(id);
            }
        }
    }

    /// Inserts or overwrites `key`. With `keep_ttl` an existing entry keeps its TTL and
    /// `expire_at` is ignored.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert(
        &mut self,
        key: &Hashed<'_>,
        value: Value,
        expire_at: Option<u64>,
        flags: u32,
        cas: u64,
        keep_ttl: bool,
        now: u64,
    ) -> &mut Entry {
        let (found, _) = self.lookup(key, now);
        if !self.watched.is_empty() {
            touch(&mut self.watched, key.key, false);
        }
        let id = match found {
            Some(id) => {
                let e = &mut self.entries[id as usize];
                e.value = value;
                e.flags = flags;
                e.cas = cas;
                e.mc_bits = 0;
                e.lru = (now / 1000) as u32;
                if !keep_ttl {
                    self.set_expire(id, expire_at);
                }
                id
            }
            None => {
                let id = self.entries.insert(Entry {
                    key: Key::new(key.key),
                    value,
                    expire_at: 0,
                    vol_pos: NO_POS,
                    flags,
                    cas,
                    lru: (now / 1000) as u32,
                    mc_bits: 0,
                    lfu: super::evict::LFU_INIT_VAL,
                    ldt: super::evict::lfu_minutes(now),
                });
                let id = u32::try_from(id).expect("more than 2^32 keys in one shard");
                let (entries, hasher) = (&self.entries, &self.hasher);
                self.index.insert_unique(key.hash, id, |&x| hasher.hash_one(&*entries[x as usize].key));
                if expire_at.is_some() {
                    self.set_expire(id, expire_at);
                }
                id
            }
        };
        &mut self.entries[id as usize]
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        self.touch_all_watched(None, 0);
        self.entries = Slab::new();
        self.index = HashTable::new();
        self.volatile = Vec::new();
    }

    /// Iterates over every entry, expired or not (callers filter with `now`).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|(_, e)| e)
    }

    /// Visits live entries in slab order starting at slot `from`, up to about `count` slots
    /// (empty ones included, as Redis's SCAN counts buckets). Returns the next slot to visit,
    /// or None when the end was reached. Entries present for a whole scan are always visited,
    /// because slab slots never move.
    pub fn scan(&self, from: usize, count: usize, now: u64, mut f: impl FnMut(&Entry)) -> Option<usize> {
        let end = self.entries.capacity();
        let mut slot = from;
        let mut seen = 0;
        while slot < end {
            if let Some(e) = self.entries.get(slot) {
                if !e.is_expired(now) {
                    f(e);
                }
                seen += 1;
            }
            slot += 1;
            if seen >= count {
                break;
            }
        }
        (slot < end).then_some(slot)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: statistical quality is plenty for sampling, and it needs no lock or crate.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random live key's entry, or None when empty.
    pub fn random_entry(&mut self, now: u64) -> Option<&Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let cap = self.entries.capacity().max(1);
        let mut pick = None;
        for _ in 0..64 {
            let slot = (self.next_random() % cap as u64) as usize;
            if let Some(e) = self.entries.get(slot) {
                if !e.is_expired(now) {
                    pick = Some(slot);
                    break;
                }
            }
        }
        if pick.is_none() {
            pick = self.entries.iter().find(|(_, e)| !e.is_expired(now)).map(|(i, _)| i);
        }
        pick.map(|i| &self.entries[i])
    }

    /// Calls `f` on up to `n` random live entries (only those with a TTL when `volatile`):
    /// eviction's sample. Entries may repeat; fewer than `n` come back only when there are fewer.
    pub fn sample(&mut self, n: usize, volatile: bool, now: u64, mut f: impl FnMut(&Entry)) {
        if volatile {
            if self.volatile.len() <= n {
                self.volatile.iter().map(|&id| &self.entries[id as usize]).filter(|e| !e.is_expired(now)).for_each(f);
                return;
            }
            for _ in 0..n {
                let pos = (self.next_random() % self.volatile.len() as u64) as usize;
                let e = &self.entries[self.volatile[pos] as usize];
                if !e.is_expired(now) {
                    f(e);
                }
            }
            return;
        }
        if self.entries.len() <= n {
            self.entries.iter().map(|(_, e)| e).filter(|e| !e.is_expired(now)).for_each(f);
            return;
        }
        let cap = self.entries.capacity().max(1) as u64;
        let (mut found, mut tries) = (0, 0);
        // Slab slots may be vacant after deletes; a bounded number of probes keeps a sparse
        // slab from costing more than a few misses per sample.
        while found < n && tries < n * 8 {
            tries += 1;
            let slot = (self.next_random() % cap) as usize;
            if let Some(e) = self.entries.get(slot) {
                if !e.is_expired(now) {
                    f(e);
                    found += 1;
                }
            }
        }
    }

    /// Checks up to `n` random keys with a TTL and removes the expired ones, handing each key to
    /// `on_expired`; returns how many.
    pub fn expire_sample(&mut self, now: u64, n: usize, mut on_expired: impl FnMut(&[u8])) -> usize {
        let mut removed = 0;
        if self.volatile.len() <= n {
            let mut i = 0;
            while i < self.volatile.len() {
                let id = self.volatile[i];
                if self.entries[id as usize].is_expired(now) {
                    let e = self.reclaim(id); // swap-remove puts another id at i
                    on_expired(e.key());
                    removed += 1;
                } else {
                    i += 1;
                }
            }
            return removed;
        }
        for _ in 0..n {
            if self.volatile.is_empty() {
                break;
            }
            let pos = (self.next_random() % self.volatile.len() as u64) as usize;
            let id = self.volatile[pos];
            if self.entries[id as usize].is_expired(now) {
                let e = self.reclaim(id);
                on_expired(e.key());
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        // Every key pays for its entry; this is the budget the memory work measures against.
        assert_eq!(std::mem::size_of::<Entry>(), 88);
        assert_eq!(&*Key::new(b"key:00000001"), b"key:00000001");
        assert!(matches!(Key::new(&[7u8; 22]), Key::Inline { len: 22, .. }));
        assert!(matches!(Key::new(&[7u8; 23]), Key::Heap(_)));
        assert_eq!(&*Key::new(&[7u8; 23]), &[7u8; 23][..]);
        assert_eq!(&*Key::new(b""), b"");
    }

    #[test]
    fn live_len_skips_unreclaimed_expired_keys() {
        let hasher = RandomState::new();
        let mut d = Db::with_hasher(hasher.clone());
        let ttls = [None, Some(100), Some(200), Some(300)];
        for (i, ttl) in ttls.into_iter().enumerate() {
            let key = [b'k', i as u8];
            let hash = hasher.hash_one(&key[..]);
            let k = Hashed { key: &key, hash };
            d.upsert(&k, Value::Str(Vec::new()), ttl, 0, 0, false, 0);
        }
        assert_eq!(d.live_len(100), 4, "a key expires strictly after its time");
        assert_eq!(d.live_len(250), 2);
        assert_eq!(d.len(), 4, "nothing was reclaimed");
        assert_eq!(d.live_len(1000), 1);
    }
}
