//! One shard's part of one database: records in a size-class arena, an index from key to
//! record handle, and the list of keys that carry a TTL. Every method here assumes the caller
//! holds the shard's lock (it has `&mut Db`, which it can only get through a shard guard).
//!
//! ## Record layout
//!
//! A key lives in one **record**: a slot of an arena page, sized to the record in 8-byte steps
//! (16 to 1024 bytes; a bigger record gets a page of its own, sized exactly). Pages are 64 KB
//! `Box<[u8]>`s, each holding slots of one size; a record is named by a 32-bit handle
//! (page << 12 | slot) and costs no allocator header of its own. A record is:
//!
//! ```text
//!   header  u64 LE: bit 0 live, 1 value out of line, 2 has flags, 3 has CAS, 4 has TTL,
//!                   5-7 padding bytes at the end, 8-12 mc_bits, 13-20 key length (255: long),
//!                   21-44 last access (unix seconds mod 2^24), 45-52 LFU counter,
//!                   53-63 LFU minute (mod 2^11)
//!   [flags u32]              only when the memcached flags are not 0
//!   [cas u64]                only once the item has a CAS unique (see below)
//!   [expire u64, pos u32]    only with a TTL: unix ms, and the position in `volatile`
//!   [key length u32]         only for keys of 255 bytes or more
//!   key bytes
//!   value: the string's bytes (strings up to 512 bytes), or a u32 index into `side`, the
//!          per-database slab of out-of-line values (longer strings and every collection)
//!   0-7 padding bytes
//! ```
//!
//! so a 12-byte key with a 32-byte value costs a 56-byte slot, and with a 100-byte value a
//! 120-byte one. The value length is not stored: it is what the slot leaves after the rest and
//! the padding. Clocks are kept modulo 2^24 seconds / 2^11 minutes and unwrapped against the
//! caller's `now` (last access within ±97 days is exact; an LFU counter idle for over 17 hours
//! has decayed by then at the default decay time anyway). A CAS unique is stored only for
//! items that were given one: every memcached store takes one, a Redis write does not, and a
//! memcached read of a CAS-less item assigns it a fresh one (see `Locked::cas_of`).
//!
//! The index is a `hashbrown::HashTable<u32>` of handles that re-derives hashes from the
//! records' keys (4 bytes plus a control byte per key). Keys with a TTL are also listed in
//! `volatile` (each record knows its position there), so active expiry samples only them and
//! removal is O(1) by swap-remove. Page memory is returned when a page empties (all of it on
//! FLUSHALL); one empty page per size class is kept to avoid churn at a boundary.
//!
//! ## The staged entry
//!
//! Commands see a key as an [`Entry`] (`&mut Entry`, with a plain `value: Value`), so the
//! database **stages** one record at a time: [`Db::entry_mut`] decodes it into `hot` (the
//! string's bytes copied into a reused buffer, an out-of-line value moved out of `side`), and
//! the next operation on this database writes it back (only if it changed, so reads do not
//! dirty pages a fork child shares). Every method that reads records other than through `hot`
//! writes it back first. A record that no longer fits its slot moves, always to a later
//! position (a later page), so a SCAN in progress may see it twice but never misses it.
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

/// Keys up to this long live inside the staged entry without an allocation.
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

/// A stored key and its value, TTL and memcached metadata, as commands see it (decoded from
/// its record, see the module documentation).
#[derive(Debug)]
pub struct Entry {
    key: Key,
    /// The value.
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 = none.
    expire_at: u64,
    /// memcached client flags (0 for values written through Redis).
    pub flags: u32,
    /// CAS unique, renewed on every write; 0 = none assigned yet (a Redis write).
    pub cas: u64,
    /// Last access, unix seconds (memcached `l`/`la=`, OBJECT IDLETIME, eviction).
    pub lru: u32,
    /// memcached item state bits (see [`mc_bits`]); cleared whenever a new value is stored.
    pub mc_bits: u8,
    /// LFU access counter (Redis's logarithmic 8-bit counter), see [`super::evict`].
    pub lfu: u8,
    /// Minute (mod 2^16) the LFU counter was last decremented or incremented.
    pub ldt: u16,
}

/// Per-item state bits, kept in [`Entry::mc_bits`]: memcached's, plus one for Redis's string
/// encoding. Five bits: the record header has room for exactly these.
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
}

/// What eviction reads of a sampled key, decoded from its record without staging it.
#[derive(Debug, Clone, Copy)]
pub struct Sampled<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Absolute expiry in unix milliseconds; 0 = none.
    pub expire_at: u64,
    /// Last access, unix seconds.
    pub lru: u32,
    /// LFU counter.
    pub lfu: u8,
    /// LFU minute.
    pub ldt: u16,
}

impl<'a> Sampled<'a> {
    fn of(e: &'a Entry) -> Sampled<'a> {
        Sampled { key: e.key(), expire_at: e.expire_at, lru: e.lru, lfu: e.lfu, ldt: e.ldt }
    }
}

/// Bytes the keyspace holds for `e` (MEMORY USAGE): its record slot, an index slot, and an
/// out-of-line value with its slab slot and heap bytes.
pub fn footprint(e: &Entry) -> usize {
    let inline = rec::inline_str(&e.value).is_some();
    let slot = rec::encoded_len(e, !inline);
    let index = std::mem::size_of::<u32>() + 1;
    if inline {
        slot + index
    } else {
        slot + index
            + std::mem::size_of::<slab::Slab<Value>>() / 3
            + std::mem::size_of::<Value>()
            + e.value.heap_bytes()
    }
}

/// The record codec: pure functions over a record's bytes (see the module documentation).
mod rec {
    use super::{Entry, Key, Value, NO_POS};

    pub const LIVE: u64 = 1;
    pub const OUT: u64 = 2;
    pub const FLAGS: u64 = 4;
    pub const CAS: u64 = 8;
    pub const EXP: u64 = 16;
    const PAD_SHIFT: u32 = 5;
    const MC_SHIFT: u32 = 8;
    const KLEN_SHIFT: u32 = 13;
    const LRU_SHIFT: u32 = 21;
    const LFU_SHIFT: u32 = 45;
    const LDT_SHIFT: u32 = 53;
    const LRU_BITS: u32 = 24;
    const LDT_BITS: u32 = 11;
    /// Key length byte meaning "a u32 length follows".
    const LONG_KEY: usize = 255;
    /// Strings up to this long are stored in the record.
    pub const INLINE_MAX: usize = 512;
    pub const HEADER: usize = 8;
    /// Slots grow in steps of this many bytes.
    pub const GRAIN: usize = 8;
    /// The smallest slot: room for a free slot's link.
    pub const MIN_SLOT: usize = 16;

    /// Where a record's parts are.
    pub struct Fields {
        pub hdr: u64,
        pub flags_at: usize,
        pub cas_at: usize,
        pub exp_at: usize,
        pub key_at: usize,
        pub key_len: usize,
        pub val_at: usize,
        pub val_len: usize,
    }

    #[inline]
    fn u32_at(r: &[u8], at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&r[at..at + 4]);
        u32::from_le_bytes(b)
    }

    #[inline]
    fn u64_at(r: &[u8], at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[at..at + 8]);
        u64::from_le_bytes(b)
    }

    #[inline]
    pub fn header(r: &[u8]) -> u64 {
        u64_at(r, 0)
    }

    #[inline]
    pub fn fields(r: &[u8]) -> Fields {
        let hdr = header(r);
        let mut at = HEADER;
        let mut take = |bit: u64, n: usize| {
            let here = at;
            if hdr & bit != 0 {
                at += n;
            }
            here
        };
        let flags_at = take(FLAGS, 4);
        let cas_at = take(CAS, 8);
        let exp_at = take(EXP, 12);
        let mut key_len = ((hdr >> KLEN_SHIFT) & 0xff) as usize;
        if key_len == LONG_KEY {
            key_len = u32_at(r, at) as usize;
            at += 4;
        }
        let key_at = at;
        let val_at = key_at + key_len;
        let pad = ((hdr >> PAD_SHIFT) & 7) as usize;
        let val_len = if hdr & OUT != 0 { 4 } else { r.len() - pad - val_at };
        Fields { hdr, flags_at, cas_at, exp_at, key_at, key_len, val_at, val_len }
    }

    #[inline]
    pub fn key(r: &[u8]) -> &[u8] {
        let f = fields(r);
        &r[f.key_at..f.key_at + f.key_len]
    }

    /// Expiry (unix ms, 0 = none) and position in `volatile`.
    #[inline]
    pub fn expiry(r: &[u8], f: &Fields) -> (u64, u32) {
        if f.hdr & EXP == 0 {
            (0, NO_POS)
        } else {
            (u64_at(r, f.exp_at), u32_at(r, f.exp_at + 8))
        }
    }

    /// The side slab index of an out-of-line value.
    #[inline]
    pub fn side_index(r: &[u8], f: &Fields) -> Option<u32> {
        (f.hdr & OUT != 0).then(|| u32_at(r, f.val_at))
    }

    #[inline]
    pub fn mc_bits(hdr: u64) -> u8 {
        ((hdr >> MC_SHIFT) & 0x1f) as u8
    }

    pub fn set_vol_pos(r: &mut [u8], pos: u32) {
        let f = fields(r);
        debug_assert!(f.hdr & EXP != 0);
        r[f.exp_at + 8..f.exp_at + 12].copy_from_slice(&pos.to_le_bytes());
    }

    /// The string a record can hold inline, if `v` is one.
    #[inline]
    pub fn inline_str(v: &Value) -> Option<&[u8]> {
        match v {
            Value::Str(s) if s.len() <= INLINE_MAX => Some(s),
            _ => None,
        }
    }

    /// Slot size for a record of `raw` bytes.
    #[inline]
    pub fn slot_for(raw: usize) -> usize {
        raw.max(MIN_SLOT).div_ceil(GRAIN) * GRAIN
    }

    /// The slot size `e` needs (`out`: its value lives in `side`).
    pub fn encoded_len(e: &Entry, out: bool) -> usize {
        let key = e.key();
        let mut raw = HEADER + key.len();
        raw += if e.flags != 0 { 4 } else { 0 };
        raw += if e.cas != 0 { 8 } else { 0 };
        raw += if e.expire_at != 0 { 12 } else { 0 };
        raw += if key.len() >= LONG_KEY { 4 } else { 0 };
        raw += match (out, e.value.as_str()) {
            (false, Some(s)) => s.len(),
            _ => 4,
        };
        slot_for(raw)
    }

    /// Writes the record for `e` into `out` (cleared first). `side` is the value's index in the
    /// side slab when it is out of line (`Some(u32::MAX)` while the staged entry holds it).
    pub fn encode(e: &Entry, vol_pos: u32, side: Option<u32>, out: &mut Vec<u8>) {
        out.clear();
        let key = e.key();
        let size = encoded_len(e, side.is_some());
        let long = key.len() >= LONG_KEY;
        let value: &[u8] = match side {
            None => e.value.as_str().map(Vec::as_slice).unwrap_or_default(),
            Some(_) => &[],
        };
        let mut hdr = LIVE;
        hdr |= if side.is_some() { OUT } else { 0 };
        hdr |= if e.flags != 0 { FLAGS } else { 0 };
        hdr |= if e.cas != 0 { CAS } else { 0 };
        hdr |= if e.expire_at != 0 { EXP } else { 0 };
        hdr |= u64::from(e.mc_bits & 0x1f) << MC_SHIFT;
        hdr |= (if long { LONG_KEY as u64 } else { key.len() as u64 }) << KLEN_SHIFT;
        hdr |= (u64::from(e.lru) & ((1 << LRU_BITS) - 1)) << LRU_SHIFT;
        hdr |= u64::from(e.lfu) << LFU_SHIFT;
        hdr |= (u64::from(e.ldt) & ((1 << LDT_BITS) - 1)) << LDT_SHIFT;
        out.extend_from_slice(&hdr.to_le_bytes());
        if e.flags != 0 {
            out.extend_from_slice(&e.flags.to_le_bytes());
        }
        if e.cas != 0 {
            out.extend_from_slice(&e.cas.to_le_bytes());
        }
        if e.expire_at != 0 {
            out.extend_from_slice(&e.expire_at.to_le_bytes());
            out.extend_from_slice(&vol_pos.to_le_bytes());
        }
        if long {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(key);
        match side {
            Some(i) => out.extend_from_slice(&i.to_le_bytes()),
            None => out.extend_from_slice(value),
        }
        let pad = size - out.len();
        out.resize(size, 0);
        out[0] |= (pad as u8) << PAD_SHIFT;
    }

    /// `stored` (the low `bits` of a clock) as the full clock value nearest `reference`.
    #[inline]
    pub fn unwrap_clock(stored: u64, reference: u64, bits: u32) -> u64 {
        let span = 1u64 << bits;
        let back = reference.wrapping_sub(stored) & (span - 1);
        if back <= span / 2 {
            reference.wrapping_sub(back)
        } else {
            reference.wrapping_add(span - back)
        }
    }

    /// (lru, lfu, ldt) of a header, clocks unwrapped against `now` (unix ms).
    #[inline]
    pub fn clocks(hdr: u64, now: u64) -> (u32, u8, u16) {
        let lru = unwrap_clock((hdr >> LRU_SHIFT) & ((1 << LRU_BITS) - 1), now / 1000, LRU_BITS) as u32;
        let now_min = u64::from(super::super::evict::lfu_minutes(now));
        let ldt = unwrap_clock((hdr >> LDT_SHIFT) & ((1 << LDT_BITS) - 1), now_min, LDT_BITS) as u16;
        (lru, ((hdr >> LFU_SHIFT) & 0xff) as u8, ldt)
    }

    /// Decodes everything but the value: (entry with an empty string value, position in
    /// `volatile`, side index when the value is out of line). `now` (unix ms) unwraps clocks.
    pub fn decode(r: &[u8], f: &Fields, now: u64, value: Vec<u8>) -> (Entry, u32, Option<u32>) {
        let hdr = f.hdr;
        let (expire_at, vol_pos) = expiry(r, f);
        let (lru, lfu, ldt) = clocks(hdr, now);
        let side = side_index(r, f);
        let mut value = value;
        value.clear();
        if side.is_none() {
            value.extend_from_slice(&r[f.val_at..f.val_at + f.val_len]);
        }
        let e = Entry {
            key: Key::new(&r[f.key_at..f.key_at + f.key_len]),
            value: Value::Str(value),
            expire_at,
            flags: if hdr & FLAGS != 0 { u32_at(r, f.flags_at) } else { 0 },
            cas: if hdr & CAS != 0 { u64_at(r, f.cas_at) } else { 0 },
            lru,
            mc_bits: mc_bits(hdr),
            lfu,
            ldt,
        };
        (e, vol_pos, side)
    }
}

/// Bytes per arena page.
const PAGE_BYTES: usize = 64 * 1024;
/// Records up to this size share pages; bigger ones get a page each.
const MAX_CLASS: usize = 1024;
const SLOT_BITS: u32 = 12;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Pages a database part may have (handles are 32 bits).
const MAX_PAGES: usize = 1 << (32 - SLOT_BITS);
const NIL16: u16 = u16::MAX;
/// Candidate pages a moving record looks at before it takes a fresh one.
const SEARCH: usize = 8;

/// One arena page: `cap` slots of `size` bytes. A free slot has header byte 0 (not live) and
/// the next free slot of its page in bytes 2..4.
struct Page {
    data: Box<[u8]>,
    size: u32,
    cap: u16,
    live: u16,
    /// Slots from here on were never used.
    bump: u16,
    /// Head of the page's free-slot list.
    free: u16,
    /// Position in its class's `nonfull` list, or NO_POS.
    nonfull_pos: u32,
}

impl Page {
    fn empty() -> Page {
        Page { data: Box::new([]), size: 0, cap: 0, live: 0, bump: 0, free: NIL16, nonfull_pos: NO_POS }
    }
}

/// Size-class pages of records (see the module documentation).
#[derive(Default)]
struct Arena {
    pages: Vec<Page>,
    /// Per class (slot size / GRAIN): pages with a free slot.
    nonfull: Vec<Vec<u32>>,
    /// Indexes of released pages, for reuse.
    free_pages: Vec<u32>,
}

impl Drop for Arena {
    fn drop(&mut self) {
        let free: usize = self.pages.iter().map(|p| p.size as usize * usize::from(p.cap - p.live)).sum();
        super::memory::arena_free(-(free as isize));
        let pages = std::mem::take(&mut self.pages);
        let bytes = pages.iter().map(|p| p.data.len()).sum();
        drop(pages);
        super::memory::released(bytes);
    }
}

#[inline]
fn split(h: u32) -> (usize, usize) {
    ((h >> SLOT_BITS) as usize, (h & SLOT_MASK) as usize)
}

impl Arena {
    #[inline]
    fn rec(&self, h: u32) -> &[u8] {
        let (p, s) = split(h);
        let page = &self.pages[p];
        let size = page.size as usize;
        &page.data[s * size..(s + 1) * size]
    }

    #[inline]
    fn rec_mut(&mut self, h: u32) -> &mut [u8] {
        let (p, s) = split(h);
        let page = &mut self.pages[p];
        let size = page.size as usize;
        &mut page.data[s * size..(s + 1) * size]
    }

    /// True when position `(p, s)` holds a record.
    #[inline]
    fn is_live(&self, p: usize, s: usize) -> bool {
        let page = &self.pages[p];
        s < usize::from(page.bump) && page.data[s * page.size as usize] & rec::LIVE as u8 != 0
    }

    fn unlist(&mut self, p: usize) {
        let page = &mut self.pages[p];
        let pos = page.nonfull_pos;
        if pos == NO_POS {
            return;
        }
        page.nonfull_pos = NO_POS;
        let list = &mut self.nonfull[page.size as usize / rec::GRAIN];
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.pages[moved as usize].nonfull_pos = pos;
        }
    }

    fn list(&mut self, p: usize) {
        let class = self.pages[p].size as usize / rec::GRAIN;
        let list = &mut self.nonfull[class];
        self.pages[p].nonfull_pos = list.len() as u32;
        list.push(p as u32);
    }

    /// A fresh page of `cap` slots of `size` bytes, at an index above `after` when given.
    fn new_page(&mut self, size: usize, cap: usize, after: Option<usize>) -> usize {
        let n = self.free_pages.len();
        let reuse = match after {
            None => n.checked_sub(1),
            Some(a) => (n.saturating_sub(SEARCH)..n).rev().find(|&i| self.free_pages[i] as usize > a),
        };
        let p = match reuse {
            Some(i) => self.free_pages.swap_remove(i) as usize,
            None => {
                assert!(self.pages.len() < MAX_PAGES, "more than 2^20 arena pages in one database part");
                self.pages.push(Page::empty());
                self.pages.len() - 1
            }
        };
        super::memory::arena_free((size * cap) as isize);
        self.pages[p] = Page {
            data: vec![0u8; size * cap].into_boxed_slice(),
            size: size as u32,
            cap: cap as u16,
            ..Page::empty()
        };
        if cap > 1 {
            self.list(p);
        }
        p
    }

    /// A slot of `size` bytes (a slot size); above page `after` when given (a moving record).
    fn alloc(&mut self, size: usize, after: Option<usize>) -> u32 {
        let p = if size <= MAX_CLASS {
            let class = size / rec::GRAIN;
            if self.nonfull.len() <= class {
                self.nonfull.resize_with(class + 1, Vec::new);
            }
            let list = &self.nonfull[class];
            // A moving record looks at a few pages only: after many deletes most pages of a
            // class have room, and a fresh page is cheaper than a long search.
            let pick = match after {
                None => list.last().copied(),
                Some(a) => list.iter().rev().take(SEARCH).copied().find(|&p| p as usize > a),
            };
            match pick {
                Some(p) => p as usize,
                None => self.new_page(size, PAGE_BYTES / size, after),
            }
        } else {
            self.new_page(size, 1, after)
        };
        let page = &mut self.pages[p];
        let s = if page.free != NIL16 {
            let s = page.free;
            let at = usize::from(s) * page.size as usize;
            page.free = u16::from_le_bytes([page.data[at + 2], page.data[at + 3]]);
            s
        } else {
            page.bump += 1;
            page.bump - 1
        };
        page.live += 1;
        super::memory::arena_free(-(page.size as isize));
        if page.live == page.cap {
            self.unlist(p);
        }
        ((p as u32) << SLOT_BITS) | u32::from(s)
    }

    /// Frees slot `h`; a page left empty is released (but the last page of its class with room
    /// is kept, so a class hovering around a page boundary does not allocate on every write).
    fn free(&mut self, h: u32) {
        let (p, s) = split(h);
        let page = &mut self.pages[p];
        let at = s * page.size as usize;
        page.data[at] = 0;
        page.data[at + 2..at + 4].copy_from_slice(&page.free.to_le_bytes());
        page.free = s as u16;
        let was_full = page.live == page.cap;
        page.live -= 1;
        super::memory::arena_free(page.size as isize);
        if page.cap == 1 {
            self.release(p);
            return;
        }
        if was_full {
            self.list(p);
        }
        let page = &self.pages[p];
        if page.live == 0 && self.nonfull[page.size as usize / rec::GRAIN].len() > 1 {
            self.unlist(p);
            self.release(p);
        }
    }

    fn release(&mut self, p: usize) {
        let page = &self.pages[p];
        let bytes = page.size as usize * usize::from(page.cap);
        super::memory::arena_free(-(bytes as isize));
        super::memory::released(bytes);
        self.pages[p] = Page::empty();
        self.free_pages.push(p as u32);
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

/// The staged record (see the module documentation).
struct Hot {
    h: u32,
    vol_pos: u32,
    e: Entry,
}

/// See the module documentation.
pub struct Db {
    arena: Arena,
    /// Out-of-line values (long strings, collections), named by index from their records.
    side: Slab<Value>,
    live: usize,
    index: HashTable<u32>,
    volatile: Vec<u32>,
    hot: Option<Hot>,
    /// A string buffer reused between stagings.
    spare: Vec<u8>,
    /// The encode buffer.
    scratch: Vec<u8>,
    /// The latest `now` seen (unix ms), to unwrap the records' clocks.
    clock: u64,
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
            arena: Arena::default(),
            side: Slab::new(),
            live: 0,
            index: HashTable::new(),
            volatile: Vec::new(),
            hot: None,
            spare: Vec::new(),
            scratch: Vec::new(),
            clock: 0,
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
        self.live
    }

    /// True when the database part holds no key.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    #[inline]
    fn tick(&mut self, now: u64) {
        if now != 0 {
            self.clock = now;
        }
    }

    /// Expiry of the record `h` (0 = none), staged or not.
    #[inline]
    fn expire_of(&self, h: u32) -> u64 {
        match &self.hot {
            Some(hot) if hot.h == h => hot.e.expire_at,
            _ => {
                let r = self.arena.rec(h);
                rec::expiry(r, &rec::fields(r)).0
            }
        }
    }

    #[inline]
    fn is_expired(&self, h: u32, now: u64) -> bool {
        let t = self.expire_of(h);
        t != 0 && now > t
    }

    /// Number of keys still live at `now`: `len` minus the expired keys no one has reclaimed
    /// yet (DBSIZE). Costs O(keys with a TTL), since only those can have expired.
    pub fn live_len(&self, now: u64) -> usize {
        self.live - self.volatile.iter().filter(|&&h| self.is_expired(h, now)).count()
    }

    fn find_hashed(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let arena = &self.arena;
        self.index.find(hash, |&h| rec::key(arena.rec(h)) == key).copied()
    }

    /// Finds `key`; if it has expired at `now`, removes it. Returns (handle if live, expired?).
    pub fn lookup(&mut self, key: &Hashed<'_>, now: u64) -> (Option<u32>, bool) {
        self.tick(now);
        let out = match self.find_hashed(key.hash, key.key) {
            Some(h) if self.is_expired(h, now) => {
                self.reclaim(h);
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
    fn reclaim(&mut self, h: u32) -> Entry {
        let e = self.remove(h);
        if e.mc_bits & mc_bits::FETCHED == 0 && e.value.as_str().is_some() {
            self.expired_unfetched += 1;
        }
        e
    }

    /// Expired strings reclaimed unfetched so far (see the field).
    pub fn expired_unfetched(&self) -> u64 {
        self.expired_unfetched
    }

    /// Writes the staged entry back to its record (see the module documentation).
    pub fn flush(&mut self) {
        let Some(mut hot) = self.hot.take() else { return };
        let side = if rec::inline_str(&hot.e.value).is_none() {
            let v = std::mem::replace(&mut hot.e.value, Value::Str(Vec::new()));
            Some(u32::try_from(self.side.insert(v)).expect("more than 2^32 values in one database part"))
        } else {
            None
        };
        let mut buf = std::mem::take(&mut self.scratch);
        rec::encode(&hot.e, hot.vol_pos, side, &mut buf);
        if self.arena.rec(hot.h) != &buf[..] {
            self.place(hot.h, &buf, hot.vol_pos);
        }
        self.scratch = buf;
        if let Value::Str(v) = hot.e.value {
            if v.capacity() <= 2 * rec::INLINE_MAX {
                self.spare = v;
            }
        }
    }

    /// Stores record bytes `buf` for the record at `h`, moving it to a later slot when its size
    /// changed (index and `volatile` follow).
    fn place(&mut self, h: u32, buf: &[u8], vol_pos: u32) {
        if self.arena.rec(h).len() == buf.len() {
            self.arena.rec_mut(h).copy_from_slice(buf);
            return;
        }
        let nh = self.arena.alloc(buf.len(), Some(split(h).0));
        self.arena.rec_mut(nh).copy_from_slice(buf);
        self.arena.free(h);
        let hash = self.hasher.hash_one(rec::key(buf));
        if let Some(slot) = self.index.find_mut(hash, |&x| x == h) {
            *slot = nh;
        }
        if vol_pos != NO_POS {
            self.volatile[vol_pos as usize] = nh;
        }
    }

    /// Decodes record `h` into the staged entry.
    fn stage(&mut self, h: u32) -> &mut Hot {
        if !self.hot.as_ref().is_some_and(|hot| hot.h == h) {
            self.flush();
            let r = self.arena.rec(h);
            let f = rec::fields(r);
            let (mut e, vol_pos, side) = rec::decode(r, &f, self.clock, std::mem::take(&mut self.spare));
            if let Some(i) = side {
                if let Value::Str(v) = std::mem::replace(&mut e.value, self.side.remove(i as usize)) {
                    self.spare = v;
                }
            }
            self.hot = Some(Hot { h, vol_pos, e });
        }
        match &mut self.hot {
            Some(hot) => hot,
            None => unreachable!("staged just above"),
        }
    }

    /// The entry at handle `h` (from `lookup`).
    pub fn entry_mut(&mut self, h: u32) -> &mut Entry {
        &mut self.stage(h).e
    }

    /// Eviction's view of record `h`, without staging it.
    fn sampled(&self, h: u32, now: u64) -> Sampled<'_> {
        match &self.hot {
            Some(hot) if hot.h == h => Sampled::of(&hot.e),
            _ => {
                let r = self.arena.rec(h);
                let f = rec::fields(r);
                let (lru, lfu, ldt) = rec::clocks(f.hdr, now);
                let expire_at = rec::expiry(r, &f).0;
                Sampled { key: &r[f.key_at..f.key_at + f.key_len], expire_at, lru, lfu, ldt }
            }
        }
    }

    /// Removes the entry at `h`, whose key hashes to `hash`, without handing it back (DEL,
    /// eviction): read from its record, not staged. Returns its memcached bits and whether it
    /// was a string.
    pub fn delete(&mut self, h: u32, hash: u64) -> (u8, bool) {
        if self.hot.as_ref().is_some_and(|hot| hot.h == h) {
            return self.delete_staged(h);
        }
        let r = self.arena.rec(h);
        let f = rec::fields(r);
        let (_, vol_pos) = rec::expiry(r, &f);
        let side = rec::side_index(r, &f);
        let bits = rec::mc_bits(f.hdr);
        if !self.watched.is_empty() {
            touch(&mut self.watched, &r[f.key_at..f.key_at + f.key_len], true);
        }
        if let Ok(slot) = self.index.find_entry(hash, |&x| x == h) {
            slot.remove();
        }
        self.unlist_volatile(vol_pos);
        let is_str = match side {
            Some(i) => matches!(self.side.remove(i as usize), Value::Str(_)),
            None => true,
        };
        self.arena.free(h);
        self.live -= 1;
        self.maybe_shrink();
        (bits, is_str)
    }

    /// After large deletes the index gives its memory back too: hashbrown never shrinks by
    /// itself. Shrinking when an eighth full to a quarter full keeps the rehash work amortised.
    fn maybe_shrink(&mut self) {
        let cap = self.index.capacity();
        if cap > 4096 && self.live * 8 < cap {
            let (arena, hasher) = (&self.arena, &self.hasher);
            self.index.shrink_to(self.live * 4, |&x| hasher.hash_one(rec::key(arena.rec(x))));
        }
    }

    /// [`Db::delete`] of the staged entry: its string buffer is kept for the next staging.
    fn delete_staged(&mut self, h: u32) -> (u8, bool) {
        let e = self.remove(h);
        let bits = e.mc_bits;
        match e.value {
            Value::Str(v) => {
                if v.capacity() <= 2 * rec::INLINE_MAX {
                    self.spare = v;
                }
                (bits, true)
            }
            _ => (bits, false),
        }
    }

    /// Takes `h` out of `volatile` (its position is `pos`).
    fn unlist_volatile(&mut self, pos: u32) {
        if pos == NO_POS {
            return;
        }
        self.volatile.swap_remove(pos as usize);
        if let Some(&moved) = self.volatile.get(pos as usize) {
            match &mut self.hot {
                Some(hot) if hot.h == moved => hot.vol_pos = pos,
                _ => rec::set_vol_pos(self.arena.rec_mut(moved), pos),
            }
        }
    }

    /// Removes the entry at `h` from arena, index and volatile list.
    pub fn remove(&mut self, h: u32) -> Entry {
        self.stage(h);
        let Some(hot) = self.hot.take() else { unreachable!("staged just above") };
        self.unlist_volatile(hot.vol_pos);
        let hash = self.hasher.hash_one(hot.e.key());
        if let Ok(slot) = self.index.find_entry(hash, |&x| x == h) {
            slot.remove();
        }
        self.arena.free(h);
        self.live -= 1;
        if !self.watched.is_empty() {
            touch(&mut self.watched, hot.e.key(), true);
        }
        self.maybe_shrink();
        hot.e
    }

    /// Records that the value under `key` was changed in place (the engine's `write`), for
    /// the transactions watching it.
    #[inline]
    pub fn touched(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            touch(&mut self.watched, key, false);
        }
    }

    fn find_key(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(self.hasher.hash_one(key), key)
    }

    /// WATCH: `dirty` is set when `key` changes from now on. Watching a key twice is one watch.
    pub fn watch(&mut self, key: &[u8], dirty: &Arc<AtomicBool>, now: u64) {
        let expired = self.find_key(key).is_some_and(|h| self.is_expired(h, now));
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
        live_at_watch && self.find_key(key).is_some_and(|h| self.is_expired(h, now))
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
            let there = replaced_with.and_then(|o| o.find_key(&key).map(|h| o.is_expired(h, now)));
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
        std::mem::swap(&mut self.arena, &mut other.arena);
        std::mem::swap(&mut self.side, &mut other.side);
        std::mem::swap(&mut self.live, &mut other.live);
        std::mem::swap(&mut self.index, &mut other.index);
        std::mem::swap(&mut self.volatile, &mut other.volatile);
        std::mem::swap(&mut self.hot, &mut other.hot);
        std::mem::swap(&mut self.rng, &mut other.rng);
    }

    /// Sets or clears the TTL of the entry at `h`.
    pub fn set_expire(&mut self, h: u32, expire_at: Option<u64>) {
        self.stage(h);
        let Some(hot) = &mut self.hot else { unreachable!("staged just above") };
        if !self.watched.is_empty() {
            touch(&mut self.watched, hot.e.key(), false);
        }
        match expire_at {
            Some(t) => {
                hot.e.expire_at = t.max(1);
                if hot.vol_pos == NO_POS {
                    hot.vol_pos = self.volatile.len() as u32;
                    self.volatile.push(h);
                }
            }
            None => {
                hot.e.expire_at = 0;
                let pos = std::mem::replace(&mut hot.vol_pos, NO_POS);
                self.unlist_volatile(pos);
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
        let lru = (now / 1000) as u32;
        match found {
            Some(h) => {
                self.stage(h);
                let Some(hot) = &mut self.hot else { unreachable!("staged just above") };
                let e = &mut hot.e;
                // The old string's buffer serves the next staging (`stage` took the spare one).
                if let Value::Str(v) = std::mem::replace(&mut e.value, value) {
                    if v.capacity() <= 2 * rec::INLINE_MAX {
                        self.spare = v;
                    }
                }
                e.flags = flags;
                e.cas = cas;
                e.mc_bits = 0;
                e.lru = lru;
                if !keep_ttl {
                    self.set_expire(h, expire_at);
                }
            }
            None => {
                self.flush();
                let e = Entry {
                    key: Key::new(key.key),
                    value,
                    expire_at: expire_at.map_or(0, |t| t.max(1)),
                    flags,
                    cas,
                    lru,
                    mc_bits: 0,
                    lfu: super::evict::LFU_INIT_VAL,
                    ldt: super::evict::lfu_minutes(now),
                };
                let vol_pos = if expire_at.is_some() { self.volatile.len() as u32 } else { NO_POS };
                let side = rec::inline_str(&e.value).is_none().then_some(u32::MAX);
                let mut buf = std::mem::take(&mut self.scratch);
                rec::encode(&e, vol_pos, side, &mut buf);
                let h = self.arena.alloc(buf.len(), None);
                self.arena.rec_mut(h).copy_from_slice(&buf);
                self.scratch = buf;
                self.live += 1;
                let (arena, hasher) = (&self.arena, &self.hasher);
                self.index.insert_unique(key.hash, h, |&x| hasher.hash_one(rec::key(arena.rec(x))));
                if vol_pos != NO_POS {
                    self.volatile.push(h);
                }
                self.hot = Some(Hot { h, vol_pos, e });
            }
        }
        match &mut self.hot {
            Some(hot) => &mut hot.e,
            None => unreachable!("upsert stages its entry"),
        }
    }

    /// Drops every key, returning the arena's pages to the allocator.
    pub fn clear(&mut self) {
        self.touch_all_watched(None, 0);
        self.hot = None;
        self.side = Slab::new();
        self.live = 0;
        self.index = HashTable::new();
        self.volatile = Vec::new();
        // Last: dropping the pages may trim the allocator, which then finds the rest free too.
        self.arena = Arena::default();
    }

    /// Calls `f` on every entry, expired or not (callers filter with `now`), stopping at the
    /// first error.
    pub fn try_for_each<E>(&mut self, mut f: impl FnMut(&Entry) -> Result<(), E>) -> Result<(), E> {
        self.flush();
        for p in 0..self.arena.pages.len() {
            for s in 0..usize::from(self.arena.pages[p].bump) {
                if self.arena.is_live(p, s) {
                    let h = ((p as u32) << SLOT_BITS) | s as u32;
                    f(&self.stage(h).e)?;
                }
            }
        }
        Ok(())
    }

    /// Calls `f` on every entry, expired or not (callers filter with `now`).
    pub fn for_each(&mut self, mut f: impl FnMut(&Entry)) {
        let _ = self.try_for_each(|e| {
            f(e);
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Visits live entries in arena order starting at position `from`, up to about `count`
    /// records. Returns the next position to visit, or None when the end was reached. Entries
    /// present for a whole scan are always visited: a record only ever moves to a later
    /// position (see the module documentation).
    pub fn scan(&mut self, from: usize, count: usize, now: u64, mut f: impl FnMut(&Entry)) -> Option<usize> {
        self.tick(now);
        self.flush();
        let end = self.arena.pages.len() << SLOT_BITS;
        let mut pos = from;
        let mut seen = 0;
        while pos < end {
            let (p, s) = (pos >> SLOT_BITS, pos & SLOT_MASK as usize);
            if s >= usize::from(self.arena.pages[p].bump) {
                pos = (p + 1) << SLOT_BITS;
                continue;
            }
            if self.arena.is_live(p, s) {
                let h = pos as u32;
                if !self.is_expired(h, now) {
                    f(&self.stage(h).e);
                }
                seen += 1;
            }
            pos += 1;
            if seen >= count {
                break;
            }
        }
        (pos < end).then_some(pos)
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

    /// A random record's handle (live, perhaps expired), or None after a miss (a vacant slot).
    fn random_handle(&mut self) -> Option<u32> {
        let r = self.next_random();
        let pages = &self.arena.pages;
        if pages.is_empty() {
            return None;
        }
        let p = (r % pages.len() as u64) as usize;
        let bump = u64::from(pages[p].bump);
        if pages[p].live == 0 {
            return None;
        }
        let s = ((r >> 32) % bump) as usize;
        self.arena.is_live(p, s).then_some(((p as u32) << SLOT_BITS) | s as u32)
    }

    /// A random live key's entry, or None when empty.
    pub fn random_entry(&mut self, now: u64) -> Option<&Entry> {
        self.tick(now);
        if self.live == 0 {
            return None;
        }
        let mut pick = None;
        for _ in 0..64 {
            if let Some(h) = self.random_handle() {
                if !self.is_expired(h, now) {
                    pick = Some(h);
                    break;
                }
            }
        }
        if pick.is_none() {
            'pages: for p in 0..self.arena.pages.len() {
                for s in 0..usize::from(self.arena.pages[p].bump) {
                    let h = ((p as u32) << SLOT_BITS) | s as u32;
                    if self.arena.is_live(p, s) && !self.is_expired(h, now) {
                        pick = Some(h);
                        break 'pages;
                    }
                }
            }
        }
        pick.map(|h| &self.stage(h).e)
    }

    /// Calls `f` on up to `n` random live keys (only those with a TTL when `volatile`):
    /// eviction's sample. Keys may repeat; fewer than `n` come back only when there are fewer.
    pub fn sample(&mut self, n: usize, volatile: bool, now: u64, mut f: impl FnMut(Sampled<'_>)) {
        self.tick(now);
        if volatile {
            if self.volatile.len() <= n {
                for &h in &self.volatile {
                    if !self.is_expired(h, now) {
                        f(self.sampled(h, now));
                    }
                }
                return;
            }
            for _ in 0..n {
                let pos = (self.next_random() % self.volatile.len() as u64) as usize;
                let h = self.volatile[pos];
                if !self.is_expired(h, now) {
                    f(self.sampled(h, now));
                }
            }
            return;
        }
        if self.live <= n {
            for p in 0..self.arena.pages.len() {
                for s in 0..usize::from(self.arena.pages[p].bump) {
                    let h = ((p as u32) << SLOT_BITS) | s as u32;
                    if self.arena.is_live(p, s) && !self.is_expired(h, now) {
                        f(self.sampled(h, now));
                    }
                }
            }
            return;
        }
        // As redis-server's dictGetSomeKeys walks consecutive buckets from a random one, the
        // sample is the live records following a random slot of a random page: neighbours
        // share cache lines, where n scattered probes would cost n cache misses. A bounded
        // number of steps keeps a sparse arena from costing more than a few misses.
        let (mut found, mut steps) = (0, 0);
        let r = self.next_random();
        let pages = self.arena.pages.len();
        let (mut p, mut s) = ((r % pages as u64) as usize, 0usize);
        if self.arena.pages[p].bump > 0 {
            s = ((r >> 32) % u64::from(self.arena.pages[p].bump)) as usize;
        }
        while found < n && steps < n * 16 {
            steps += 1;
            if s >= usize::from(self.arena.pages[p].bump) {
                p = (p + 1) % pages;
                s = 0;
                continue;
            }
            let h = ((p as u32) << SLOT_BITS) | s as u32;
            s += 1;
            if self.arena.is_live(p, s - 1) && !self.is_expired(h, now) {
                f(self.sampled(h, now));
                found += 1;
            }
        }
    }

    /// Checks up to `n` random keys with a TTL and removes the expired ones, handing each key to
    /// `on_expired`; returns how many.
    pub fn expire_sample(&mut self, now: u64, n: usize, mut on_expired: impl FnMut(&[u8])) -> usize {
        self.tick(now);
        let mut removed = 0;
        if self.volatile.len() <= n {
            let mut i = 0;
            while i < self.volatile.len() {
                let h = self.volatile[i];
                if self.is_expired(h, now) {
                    let e = self.reclaim(h); // swap-remove puts another handle at i
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
            let h = self.volatile[pos];
            if self.is_expired(h, now) {
                let e = self.reclaim(h);
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

    fn db() -> (Db, RandomState) {
        let hasher = RandomState::new();
        (Db::with_hasher(hasher.clone()), hasher)
    }

    fn put(d: &mut Db, hasher: &RandomState, key: &[u8], v: Value, ttl: Option<u64>, now: u64) {
        let k = Hashed { key, hash: hasher.hash_one(key) };
        d.upsert(&k, v, ttl, 0, 0, false, now);
    }

    fn get(d: &mut Db, hasher: &RandomState, key: &[u8], now: u64) -> Option<Value> {
        let k = Hashed { key, hash: hasher.hash_one(key) };
        let (h, _) = d.lookup(&k, now);
        h.map(|h| d.entry_mut(h).value.clone())
    }

    fn s(n: usize) -> Value {
        Value::Str((0..n).map(|i| i as u8).collect())
    }

    #[test]
    fn small_records_cost_what_the_layout_promises() {
        let e = |key: &[u8], v: Value, cas: u64, expire_at: u64| Entry {
            key: Key::new(key),
            value: v,
            expire_at,
            flags: 0,
            cas,
            lru: 0,
            mc_bits: 0,
            lfu: 0,
            ldt: 0,
        };
        assert_eq!(rec::encoded_len(&e(b"key:00000001", s(32), 0, 0), false), 56);
        assert_eq!(rec::encoded_len(&e(b"key:00000001", s(100), 0, 0), false), 120);
        assert_eq!(rec::encoded_len(&e(b"key:00000001", s(32), 7, 0), false), 64);
        assert_eq!(rec::encoded_len(&e(b"key:00000001", s(32), 0, 9), false), 64);
        assert_eq!(rec::encoded_len(&e(b"", s(0), 0, 0), false), 16);
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let now = 1_700_000_000_123;
        for key in [&b""[..], b"k", &[7u8; 254], &[8u8; 255], &[9u8; 1000]] {
            for v in [s(0), s(1), s(100), s(rec::INLINE_MAX)] {
                let e = Entry {
                    key: Key::new(key),
                    value: v.clone(),
                    expire_at: 5,
                    flags: 0xdead_beef,
                    cas: 42,
                    lru: (now / 1000) as u32 - 3,
                    mc_bits: 31,
                    lfu: 200,
                    ldt: super::super::evict::lfu_minutes(now) - 2,
                };
                rec::encode(&e, 17, None, &mut buf);
                assert_eq!(buf.len() % rec::GRAIN, 0);
                let f = rec::fields(&buf);
                let (d, pos, side) = rec::decode(&buf, &f, now, Vec::new());
                assert_eq!((d.key(), &d.value, side, pos), (key, &v, None, 17));
                assert_eq!(
                    (d.expire_at, d.flags, d.cas, d.lru, d.mc_bits, d.lfu, d.ldt),
                    (5, e.flags, 42, e.lru, 31, 200, e.ldt)
                );
                rec::encode(&e, NO_POS, Some(3), &mut buf);
                let f = rec::fields(&buf);
                assert_eq!(rec::decode(&buf, &f, now, Vec::new()).2, Some(3));
            }
        }
    }

    #[test]
    fn clocks_unwrap_around_now() {
        assert_eq!(rec::unwrap_clock(5, 10, 24), 5);
        assert_eq!(rec::unwrap_clock(12, 10, 24), 12, "slightly in the future");
        let now = 1_763_000_000u64;
        assert_eq!(rec::unwrap_clock((now - 1000) & 0xff_ffff, now, 24), now - 1000);
        assert_eq!(rec::unwrap_clock(0x7fe, 3, 11) as u16, 0xfffe, "wraps back, as the 16-bit LFU minute does");
    }

    #[test]
    fn values_move_in_and_out_of_line_and_records_move_forward() {
        let (mut d, hasher) = db();
        for i in 0..2000u32 {
            put(&mut d, &hasher, format!("k{i}").as_bytes(), s(10), None, 1000);
        }
        let k = b"k7";
        let hk = Hashed { key: k, hash: hasher.hash_one(&k[..]) };
        let before = d.lookup(&hk, 1000).0.expect("present");
        put(&mut d, &hasher, k, s(600), Some(5000), 1000);
        d.flush();
        let after = d.lookup(&hk, 1000).0.expect("present");
        assert!(after > before, "a grown record moves to a later position");
        assert_eq!(get(&mut d, &hasher, k, 1000), Some(s(600)), "out of line");
        put(&mut d, &hasher, k, Value::List(Default::default()), None, 1000);
        assert!(matches!(get(&mut d, &hasher, k, 1000), Some(Value::List(_))));
        put(&mut d, &hasher, k, s(3), None, 1000);
        assert_eq!(get(&mut d, &hasher, k, 1000), Some(s(3)));
        assert_eq!(d.side.len(), 0, "back inline");
        let mut n = 0;
        d.for_each(|_| n += 1);
        assert_eq!((n, d.len()), (2000, 2000));
        // In-place edits through the staged entry land in the record.
        let h = d.lookup(&hk, 1000).0.expect("present");
        d.entry_mut(h).value.as_str_mut().expect("string").extend_from_slice(b"xyz");
        d.entry_mut(h).flags = 9;
        assert_eq!(get(&mut d, &hasher, b"k8", 1000), Some(s(10)));
        assert_eq!(get(&mut d, &hasher, k, 1000), Some(Value::Str(vec![0, 1, 2, b'x', b'y', b'z'])));
    }

    #[test]
    fn delete_reads_the_record_or_the_staged_entry() {
        let (mut d, hasher) = db();
        let keys: Vec<Vec<u8>> = (0..50u32).map(|i| format!("k{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            let v = if i % 3 == 0 { s(700) } else { s(i) };
            put(&mut d, &hasher, k, v, (i % 2 == 0).then_some(10_000), 1000);
        }
        let list = Value::List(Default::default());
        put(&mut d, &hasher, b"list", list, Some(10_000), 1000);
        let dirty = Arc::new(AtomicBool::new(false));
        d.watch(b"k4", &dirty, 1000);
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 4 != 1) {
            let hk = Hashed { key: k, hash: hasher.hash_one(&k[..]) };
            let h = d.lookup(&hk, 1000).0.expect("present");
            if i % 5 == 0 {
                d.entry_mut(h); // staged: the other path
            }
            assert_eq!(d.delete(h, hk.hash), (0, true));
        }
        assert!(dirty.load(Ordering::SeqCst), "a watcher sees the delete");
        let hk = Hashed { key: b"list", hash: hasher.hash_one(&b"list"[..]) };
        let h = d.lookup(&hk, 1000).0.expect("present");
        assert_eq!(d.delete(h, hk.hash), (0, false), "not a string");
        assert_eq!(d.side.len(), keys.iter().enumerate().filter(|(i, _)| i % 4 == 1 && i % 3 == 0).count());
        let left: Vec<_> = keys.iter().enumerate().filter(|(i, _)| i % 4 == 1).collect();
        assert_eq!(d.len(), left.len());
        assert_eq!(d.volatile_len(), left.iter().filter(|(i, _)| i % 2 == 0).count());
        for (i, k) in left {
            let v = if i % 3 == 0 { s(700) } else { s(i) };
            assert_eq!(get(&mut d, &hasher, k, 1000), Some(v));
        }
        assert_eq!(d.live_len(20_000), d.len() - d.volatile_len());
    }

    #[test]
    fn deletes_return_pages() {
        let (mut d, hasher) = db();
        for i in 0..20_000u32 {
            put(&mut d, &hasher, format!("key:{i:08}").as_bytes(), s(32), Some(1_000_000), 1000);
        }
        let pages = d.arena.pages.iter().filter(|p| p.cap > 0).count();
        assert!(pages >= 16, "{pages}");
        for i in 0..20_000u32 {
            let key = format!("key:{i:08}");
            let k = Hashed { key: key.as_bytes(), hash: hasher.hash_one(key.as_bytes()) };
            let h = d.lookup(&k, 1000).0.expect("present");
            d.remove(h);
        }
        assert_eq!((d.len(), d.volatile_len()), (0, 0));
        assert!(d.arena.pages.iter().filter(|p| p.cap > 0).count() <= 1, "one page kept per class");
        assert!(d.index.capacity() <= 4096, "the index shrank: {}", d.index.capacity());
    }

    #[test]
    fn scan_sees_every_key_once_without_changes() {
        let (mut d, hasher) = db();
        for i in 0..5000u32 {
            put(&mut d, &hasher, format!("k{i}").as_bytes(), s((i % 70) as usize), None, 1000);
        }
        let mut seen = std::collections::HashSet::new();
        let mut pos = Some(0);
        while let Some(p) = pos {
            pos = d.scan(p, 100, 1000, |e| assert!(seen.insert(e.key().to_vec())));
        }
        assert_eq!(seen.len(), 5000);
    }

    #[test]
    fn live_len_skips_unreclaimed_expired_keys() {
        let (mut d, hasher) = db();
        let ttls = [None, Some(100), Some(200), Some(300)];
        for (i, ttl) in ttls.into_iter().enumerate() {
            put(&mut d, &hasher, &[b'k', i as u8], Value::Str(Vec::new()), ttl, 0);
        }
        assert_eq!(d.live_len(100), 4, "a key expires strictly after its time");
        assert_eq!(d.live_len(250), 2);
        assert_eq!(d.len(), 4, "nothing was reclaimed");
        assert_eq!(d.live_len(1000), 1);
    }
}
