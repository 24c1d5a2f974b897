//! A Redis hash: field → value, both binary strings.
//!
//! Two representations, as redis-server has two encodings:
//!
//! - **packed** (`listpack`): every pair back to back in one byte buffer, each string written as
//!   a LEB128 length and its bytes. One allocation for the whole hash, 2 bytes of overhead per
//!   short pair; lookups are a linear walk, which is what makes it cheap only while small.
//!   Pairs stay in insertion order, and an update rewrites the value in place, so HGETALL,
//!   HKEYS and HVALS list the fields in exactly the order redis-server's listpack does.
//! - **table** (`hashtable`): the pairs in a `Vec` (each string boxed), plus a
//!   `hashbrown::HashTable<u32>` of positions into it, keyed by the field's hash. Deletion is
//!   `swap_remove`, so positions stay dense: random picks (HRANDFIELD) are O(1), and HSCAN's
//!   cursor is a position (see [`Hash::scan`]).
//!
//! A hash starts packed and converts to a table, never back (as Redis), once it holds more than
//! [`MAX_LISTPACK_ENTRIES`] pairs or is given a field or value longer than
//! [`MAX_LISTPACK_VALUE`] bytes. Those are redis-server's defaults for `hash-max-listpack-entries`
//! and `hash-max-listpack-value` (512 and 64, as compiled in); cachette has no such config
//! directives yet, so they are constants here.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Most pairs a packed hash holds: redis-server's built-in default for
/// `hash-max-listpack-entries` (what a server started without a config file uses, and the
/// differential tests' reference; the sample redis.conf lowers it to 128).
pub const MAX_LISTPACK_ENTRIES: usize = 512;
/// Longest field or value a packed hash holds (redis-server's `hash-max-listpack-value` default).
pub const MAX_LISTPACK_VALUE: usize = 64;

/// A Redis hash.
#[derive(Debug, Clone, Default)]
pub struct Hash {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Packed),
    /// Boxed: every stored value is as large as the largest `Value` variant, so a hash keeps
    /// its inline part to the packed form's 32 bytes.
    Table(Box<Table>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Packed(Packed::default())
    }
}

impl PartialEq for Hash {
    /// Same pairs, whatever the representation and order.
    fn eq(&self, other: &Hash) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Hash {
    /// An empty (packed) hash.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len as usize,
            Repr::Table(t) => t.entries.len(),
        }
    }

    /// True when there are no fields (a stored hash never is: see `types`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.find(field).map(|s| &p.buf[s.value.clone()]),
            Repr::Table(t) => t.position(field).map(|i| &*t.entries[i].1),
        }
    }

    /// True when `field` is present.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts a packed hash to a table if a string of `longest` bytes is about to be stored
    /// (redis-server's `hashTypeTryConversion`, which HSET and HSETNX run over all their
    /// arguments *before* storing any, so a multi-pair HSET converts up front).
    pub fn prepare(&mut self, longest: usize) {
        if longest > MAX_LISTPACK_VALUE {
            self.convert();
        }
    }

    /// Stores `value` under `field`; true when the field is new. An existing field keeps its
    /// place in the order. Converts to a table when the pair is too long for the packed form or
    /// the pair count passes [`MAX_LISTPACK_ENTRIES`].
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.prepare(field.len().max(value.len()));
        let new = match &mut self.repr {
            Repr::Packed(p) => p.set(field, value),
            Repr::Table(t) => t.set(field, value),
        };
        if self.len() > MAX_LISTPACK_ENTRIES {
            self.convert();
        }
        new
    }

    /// Removes `field`; true when it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => p.remove(field),
            Repr::Table(t) => t.remove(field),
        }
    }

    /// Every (field, value) pair: insertion order while packed, unspecified once a table.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => Iter::Packed(PackedIter { buf: &p.buf }),
            Repr::Table(t) => Iter::Table(t.entries.iter()),
        }
    }

    /// A view with O(1) access by position, for random sampling. Packed: collects the pairs
    /// (at most [`MAX_LISTPACK_ENTRIES`]); table: borrows its vector.
    pub fn indexed(&self) -> Indexed<'_> {
        match &self.repr {
            Repr::Packed(_) => Indexed::Pairs(self.iter().collect()),
            Repr::Table(t) => Indexed::Table(&t.entries),
        }
    }

    /// One HSCAN step from `cursor`: calls `f` on about `count` pairs and returns the cursor to
    /// continue from (0: done).
    ///
    /// A packed hash is returned whole with cursor 0, whatever the cursor, as redis-server does
    /// for a listpack. A table is walked by position from the top down: cursor `c` means
    /// "positions below `c` remain" (0 on the first call means "all of them"). Removal moves
    /// the *last* pair into the hole (`swap_remove`), i.e. only ever downwards, and insertion
    /// appends above every cursor, so a pair present for the whole scan is returned at least
    /// once — Redis's guarantee — without a table of our own. Any cursor is accepted; one past
    /// the end is clamped.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        match &self.repr {
            Repr::Packed(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Repr::Table(t) => {
                let len = t.entries.len();
                let top = match usize::try_from(cursor) {
                    Ok(c) if c != 0 && c < len => c,
                    _ => len,
                };
                let bottom = top.saturating_sub(count.max(1));
                for (k, v) in t.entries[bottom..top].iter().rev() {
                    f(k, v);
                }
                bottom as u64
            }
        }
    }

    /// Heap bytes the value owns.
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.buf.capacity(),
            Repr::Table(t) => {
                let strings: usize = t.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
                t.entries.capacity() * std::mem::size_of::<Pair>()
                    + strings
                    + t.index.capacity() * (std::mem::size_of::<u32>() + 1)
            }
        }
    }

    /// The name `OBJECT ENCODING` gives, as redis-server would name this value's encoding.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Switches to the table representation (no-op if already one).
    fn convert(&mut self) {
        if let Repr::Packed(p) = &self.repr {
            let mut t = Table::with_capacity(p.len as usize);
            for (k, v) in (PackedIter { buf: &p.buf }) {
                t.set(k, v);
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }
}

/// A table's (field, value), each boxed to its exact length.
pub type Pair = (Box<[u8]>, Box<[u8]>);

/// Iterator over a hash's pairs; see [`Hash::iter`].
pub enum Iter<'a> {
    /// Over the packed buffer.
    Packed(PackedIter<'a>),
    /// Over the table's vector.
    Table(std::slice::Iter<'a, Pair>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(p) => p.next(),
            Iter::Table(t) => t.next().map(|(k, v)| (&**k, &**v)),
        }
    }
}

/// Pairs by position; see [`Hash::indexed`].
pub enum Indexed<'a> {
    /// A packed hash's pairs, collected.
    Pairs(Vec<(&'a [u8], &'a [u8])>),
    /// A table's vector.
    Table(&'a [Pair]),
}

impl<'a> Indexed<'a> {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        match self {
            Indexed::Pairs(v) => v.len(),
            Indexed::Table(t) => t.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pair at position `i` (`i < len()`).
    pub fn get(&self, i: usize) -> (&'a [u8], &'a [u8]) {
        match self {
            Indexed::Pairs(v) => v[i],
            Indexed::Table(t) => (&*t[i].0, &*t[i].1),
        }
    }
}

// ---- packed ------------------------------------------------------------------------------------

/// Pairs back to back: `len(field) field len(value) value …`, lengths in LEB128.
#[derive(Debug, Clone, Default)]
struct Packed {
    buf: Vec<u8>,
    /// Pairs held (at most [`MAX_LISTPACK_ENTRIES`], so `u32` is plenty and keeps the struct
    /// at 32 bytes).
    len: u32,
}

/// Where one pair lies in the buffer.
struct Slot {
    /// The whole pair.
    pair: std::ops::Range<usize>,
    /// The value's bytes (its length prefix excluded).
    value: std::ops::Range<usize>,
    /// The value's length prefix and bytes.
    value_with_len: std::ops::Range<usize>,
}

/// Bytes of the LEB128 length prefix of `n`.
fn prefix_len(n: usize) -> usize {
    ((usize::BITS - n.leading_zeros()).max(1) as usize).div_ceil(7)
}

fn push_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Reads the string starting at `pos`: (its bytes' range, position after it). The buffer is
/// only ever written by `push_len` + bytes, so it is well formed.
fn read_str(buf: &[u8], mut pos: usize) -> (std::ops::Range<usize>, usize) {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = buf[pos];
        pos += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    (pos..pos + n, pos + n)
}

impl Packed {
    /// O(total bytes): walks the pairs comparing fields.
    fn find(&self, field: &[u8]) -> Option<Slot> {
        let mut pos = 0;
        while pos < self.buf.len() {
            let (f, after_f) = read_str(&self.buf, pos);
            let (v, end) = read_str(&self.buf, after_f);
            if &self.buf[f] == field {
                return Some(Slot { pair: pos..end, value: v, value_with_len: after_f..end });
            }
            pos = end;
        }
        None
    }

    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(s) => {
                if s.value.len() == value.len() {
                    self.buf[s.value].copy_from_slice(value);
                } else {
                    let mut enc = Vec::with_capacity(value.len() + 2);
                    push_len(&mut enc, value.len());
                    enc.extend_from_slice(value);
                    self.buf.splice(s.value_with_len, enc);
                    self.buf.shrink_to_fit();
                }
                false
            }
            None => {
                // Exact growth, as a listpack reallocates on every insert: a packed hash is
                // at most a few KB, so the copies are cheap, and no capacity is left idle in
                // the many small hashes this form exists for.
                self.buf.reserve_exact(field.len() + value.len() + prefix_len(field.len()) + prefix_len(value.len()));
                push_len(&mut self.buf, field.len());
                self.buf.extend_from_slice(field);
                push_len(&mut self.buf, value.len());
                self.buf.extend_from_slice(value);
                self.len += 1;
                true
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some(s) => {
                self.buf.drain(s.pair);
                self.buf.shrink_to_fit();
                self.len -= 1;
                true
            }
            None => false,
        }
    }
}

/// Iterator over a packed buffer's pairs.
pub struct PackedIter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let (f, after_f) = read_str(self.buf, 0);
        let (v, end) = read_str(self.buf, after_f);
        let (buf, rest) = self.buf.split_at(end);
        self.buf = rest;
        Some((&buf[f], &buf[v]))
    }
}

// ---- table -------------------------------------------------------------------------------------

/// Dense pairs plus an index of their positions. Positions are `u32`: a hash holds at most
/// 2^32 - 1 fields, as in Redis.
#[derive(Debug, Clone)]
struct Table {
    entries: Vec<Pair>,
    index: HashTable<u32>,
    /// Seeded per table, so clients cannot aim for collisions.
    hasher: RandomState,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table { entries: Vec::with_capacity(n), index: HashTable::with_capacity(n), hasher: RandomState::new() }
    }

    fn position(&self, field: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(field);
        self.index.find(h, |&i| &*self.entries[i as usize].0 == field).map(|&i| i as usize)
    }

    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Some(i) = self.position(field) {
            let slot = &mut self.entries[i].1;
            if slot.len() == value.len() {
                slot.copy_from_slice(value);
            } else {
                *slot = value.into();
            }
            return false;
        }
        let Table { entries, index, hasher } = self;
        let pos = entries.len() as u32;
        entries.push((field.into(), value.into()));
        index.insert_unique(hasher.hash_one(field), pos, |&i| hasher.hash_one(&*entries[i as usize].0));
        true
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Table { entries, index, hasher } = self;
        let h = hasher.hash_one(field);
        let Ok(found) = index.find_entry(h, |&i| &*entries[i as usize].0 == field) else {
            return false;
        };
        let (pos, _) = found.remove();
        let last = entries.len() - 1;
        entries.swap_remove(pos as usize);
        if (pos as usize) != last {
            // The former last pair now sits at `pos`: repoint its index slot.
            let moved = hasher.hash_one(&*entries[pos as usize].0);
            if let Some(slot) = index.find_mut(moved, |&i| i as usize == last) {
                *slot = pos;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn packed_keeps_insertion_order_and_updates_in_place() {
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1"));
        assert!(h.set(b"b", b"2"));
        assert!(h.set(b"c", b"3"));
        assert!(!h.set(b"a", b"longer value"));
        assert!(!h.set(b"b", b""));
        assert_eq!(h.get(b"a"), Some(&b"longer value"[..]));
        assert_eq!(h.get(b"b"), Some(&b""[..]));
        assert_eq!(h.get(b"zz"), None);
        let order: Vec<_> = h.iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(pairs(&h), vec![(b"a".to_vec(), b"longer value".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        assert_eq!((h.len(), h.encoding()), (2, "listpack"));
    }

    #[test]
    fn inline_size_stays_small() {
        // Every keyspace entry pays for the largest Value variant.
        assert!(std::mem::size_of::<Hash>() <= 32);
    }

    #[test]
    fn prefix_lengths() {
        for n in [0usize, 1, 127, 128, 16383, 16384, usize::MAX] {
            let mut b = Vec::new();
            push_len(&mut b, n);
            assert_eq!(b.len(), prefix_len(n), "{n}");
        }
    }

    #[test]
    fn long_lengths_round_trip_in_the_packed_buffer() {
        let mut h = Hash::new();
        let v = vec![7u8; 64];
        let f = vec![0u8, 0x80, 0xff];
        h.set(&f, &v);
        h.set(b"", b"");
        assert_eq!(h.get(&f), Some(&v[..]));
        assert_eq!(h.get(b""), Some(&b""[..]));
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_at_redis_thresholds_and_never_back() {
        let mut h = Hash::new();
        for i in 0..MAX_LISTPACK_ENTRIES {
            h.set(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f0", b"w");
        assert_eq!(h.encoding(), "listpack", "an update does not grow it");
        h.set(b"one more", b"v");
        assert_eq!((h.encoding(), h.len()), ("hashtable", MAX_LISTPACK_ENTRIES + 1));
        assert_eq!(h.get(b"f0"), Some(&b"w"[..]));
        for i in 0..MAX_LISTPACK_ENTRIES {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert_eq!((h.encoding(), h.len()), ("hashtable", 1));

        let mut h = Hash::new();
        h.set(b"a", &[b'x'; MAX_LISTPACK_VALUE]);
        assert_eq!(h.encoding(), "listpack");
        h.set(&[b'y'; MAX_LISTPACK_VALUE + 1], b"1");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&[b'x'; MAX_LISTPACK_VALUE][..]));

        let mut h = Hash::new();
        h.prepare(MAX_LISTPACK_VALUE + 1);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn table_remove_keeps_the_index_consistent() {
        let mut h = Hash::new();
        h.prepare(usize::MAX);
        for i in 0..50 {
            h.set(format!("f{i}").as_bytes(), format!("{i}").as_bytes());
        }
        for i in (0..50).step_by(3) {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        for i in 0..50 {
            let want = (i % 3 != 0).then(|| format!("{i}").into_bytes());
            assert_eq!(h.get(format!("f{i}").as_bytes()).map(<[u8]>::to_vec), want, "f{i}");
        }
        assert_eq!(h.len(), 33);
    }

    #[test]
    fn equality_ignores_representation_and_order() {
        let mut a = Hash::new();
        let mut b = Hash::new();
        a.set(b"x", b"1");
        a.set(b"y", b"2");
        b.prepare(usize::MAX);
        b.set(b"y", b"2");
        b.set(b"x", b"1");
        assert_eq!(a, b);
        b.set(b"x", b"3");
        assert_ne!(a, b);
    }

    #[test]
    fn packed_scan_returns_everything_with_cursor_zero() {
        let mut h = Hash::new();
        h.set(b"a", b"1");
        h.set(b"b", b"2");
        let mut seen = Vec::new();
        assert_eq!(h.scan(12345, 1, |k, _| seen.push(k.to_vec())), 0);
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn table_scan_returns_every_survivor_despite_changes() {
        let mut h = Hash::new();
        h.prepare(usize::MAX);
        for i in 0..200 {
            h.set(format!("f{i}").as_bytes(), b"v");
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = h.scan(cursor, 7, |k, _| {
                seen.insert(k.to_vec());
            });
            // Churn between calls: delete some early fields, add new ones.
            h.remove(format!("f{round}").as_bytes());
            h.set(format!("new{round}").as_bytes(), b"v");
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in round..200 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }

    #[test]
    fn indexed_view() {
        let mut h = Hash::new();
        h.set(b"a", b"1");
        h.set(b"b", b"2");
        let ix = h.indexed();
        assert_eq!((ix.len(), ix.get(1)), (2, (&b"b"[..], &b"2"[..])));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Against a plain map: same answers through conversions, in both representations,
        /// and a packed hash lists its fields in first-insertion order.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u16..700, 0usize..80), 0..900)) {
            let mut h = Hash::new();
            let mut model = std::collections::HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            for (op, f, vlen) in ops {
                let field = format!("f{f}").into_bytes();
                if op < 2 {
                    let value = vec![b'v'; vlen];
                    let new = model.insert(field.clone(), value.clone()).is_none();
                    if new {
                        order.push(field.clone());
                    }
                    proptest::prop_assert_eq!(h.set(&field, &value), new);
                } else {
                    let present = model.remove(&field).is_some();
                    order.retain(|k| k != &field);
                    proptest::prop_assert_eq!(h.remove(&field), present);
                }
                proptest::prop_assert_eq!(h.len(), model.len());
            }
            for (k, v) in &model {
                proptest::prop_assert_eq!(h.get(k), Some(&v[..]));
            }
            if h.encoding() == "listpack" {
                let keys: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
                proptest::prop_assert_eq!(keys, order);
            }
        }
    }
}
