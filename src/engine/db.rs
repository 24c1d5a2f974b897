//! One shard's part of one database: entries in a slab, an index from key to slab id, and the
//! list of keys that carry a TTL. Every method here assumes the caller holds the shard's lock
//! (it has `&mut Db`, which it can only get through a shard guard).
//!
//! Layout choices (memory work will refine them): the key is stored once, inside its entry; the
//! index is a `hashbrown::HashTable<u32>` of slab ids that re-derives hashes from the entries'
//! keys, so it costs 4 bytes plus a control byte per key. Keys with a TTL are also listed in
//! `volatile` (each entry knows its position there) so that active expiry samples only them and
//! removal is O(1) by swap-remove.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use slab::Slab;

use super::Hashed;
use crate::types::Value;

const NO_POS: u32 = u32::MAX;

/// A stored key and its value, TTL and memcached metadata.
#[derive(Debug)]
pub struct Entry {
    key: Box<[u8]>,
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
}

/// memcached per-item state, kept in [`Entry::mc_bits`].
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

/// See the module documentation.
pub struct Db {
    entries: Slab<Entry>,
    index: HashTable<u32>,
    volatile: Vec<u32>,
    hasher: RandomState,
    rng: u64,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            entries: Slab::new(),
            index: HashTable::new(),
            volatile: Vec::new(),
            hasher: RandomState::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
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
        match self.find(key) {
            Some(id) if self.entries[id as usize].is_expired(now) => {
                self.remove(id);
                (None, true)
            }
            found => (found, false),
        }
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
        self.entries.remove(id as usize)
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
                    key: key.key.into(),
                    value,
                    expire_at: 0,
                    vol_pos: NO_POS,
                    flags,
                    cas,
                    lru: (now / 1000) as u32,
                    mc_bits: 0,
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

    /// Checks up to `n` random keys with a TTL and removes the expired ones, handing each to
    /// `on_expired`; returns how many.
    pub fn expire_sample(&mut self, now: u64, n: usize, mut on_expired: impl FnMut(&Entry)) -> usize {
        let mut removed = 0;
        if self.volatile.len() <= n {
            let mut i = 0;
            while i < self.volatile.len() {
                let id = self.volatile[i];
                if self.entries[id as usize].is_expired(now) {
                    on_expired(&self.remove(id)); // swap-remove puts another id at i
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
                on_expired(&self.remove(id));
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
