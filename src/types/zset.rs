//! A Redis sorted set: members ordered by (score, member bytes), each member stored once.
//!
//! ```text
//!   members: slab  id -> (member bytes, score)                   each member's one copy
//!   chunks:  [ (1,#4) (1,#0) (2,#7) … ≤128 ] [ (5,#2) … ] [ … ]  (score, id), sorted runs, never empty
//!   counts:  Fenwick tree over the chunk lengths                 rank <-> (chunk, offset)
//!   index:   hash table of ids, hashed through their members    O(1) ZSCORE (large encoding only)
//! ```
//!
//! One representation serves both of redis-server's encodings, so every algorithm is written
//! once. A small set (at most [`MAX_LISTPACK_ENTRIES`] members of at most
//! [`MAX_LISTPACK_VALUE`] bytes) is a single sorted chunk with no index: finding a member is a
//! linear scan, as in a listpack, and it reports `listpack`. When it outgrows either limit it
//! gains the member index and reports `skiplist`, and chunks split as they fill: the structure is
//! then a two-level B-tree. Like redis-server, a set never goes back to `listpack` by shrinking;
//! only a store command's fresh result is compacted ([`ZSet::compact_if_small`]).
//!
//! Costs in the large encoding (N members, C = N/64..N/128 chunks): score lookup O(1); finding
//! a position by key, score or lex bound O(log N) (binary search over the chunks' last items,
//! then inside one chunk; the score sits in the chunk item, so only ties read the member through
//! the slab); rank to position O(log C) through the Fenwick tree; insert and remove
//! O(log N + chunk) plus O(C) on the rare split or merge that rebuilds the Fenwick tree; a range
//! of M members is O(log N + M). The road not taken is a skip list with spans: in safe Rust it
//! needs an arena of nodes with index links and costs more memory per member than a chunked
//! array. Here a member costs its bytes (one allocation), a 24-byte slab slot, a 16-byte chunk
//! item and, in the large encoding, about 5 bytes of index (a 4-byte id and a control byte at
//! most 7/8 full). Loading 1M 16-byte members in order measured 72 bytes allocated and 84 of RSS
//! per member, against redis-server's 126 and 133. The index holds ids rather than keys, as the
//! keyspace's does (`engine::db`), so the bytes exist once.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use slab::Slab;

/// redis-server's default `zset-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// redis-server's default `zset-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;
/// Most items a chunk holds before it splits in two.
const CHUNK_MAX: usize = 128;
/// A chunk this small merges with a neighbour when they fit in one.
const CHUNK_MIN: usize = CHUNK_MAX / 4;

/// A member's one copy, in the slab; its slab key is the member's id.
#[derive(Debug, Clone)]
struct Slot {
    member: Box<[u8]>,
    score: f64,
}

/// A chunk's entry: the score (so that ordering by score needs no slab access) and the id.
#[derive(Debug, Clone, Copy)]
struct Item {
    score: f64,
    id: u32,
}

/// `item` sorts before (`score`, `member`).
fn item_before(members: &Slab<Slot>, item: &Item, score: f64, member: &[u8]) -> bool {
    cmp_key(item.score, &members[item.id as usize].member, score, member) == Ordering::Less
}

/// The sorted-set order: score, then member bytes. Scores are never NaN (commands refuse it), so
/// the fallback to Equal only keeps the function total; -0 and 0 compare equal, as in C.
fn cmp_key(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    score.partial_cmp(&other_score).unwrap_or(Ordering::Equal).then_with(|| member.cmp(other_member))
}

/// A score interval as ZRANGEBYSCORE takes it: `(1.5` is exclusive, `-inf`/`+inf` unbounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// The lower bound itself is excluded.
    pub min_ex: bool,
    /// The upper bound itself is excluded.
    pub max_ex: bool,
}

impl ScoreRange {
    fn below(&self, score: f64) -> bool {
        if self.min_ex {
            score <= self.min
        } else {
            score < self.min
        }
    }
    fn within_max(&self, score: f64) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lexicographic interval (ZRANGEBYLEX): `-`, `+`, `[a` or `(a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[a`: the member itself included.
    Incl(&'a [u8]),
    /// `(a`: the member itself excluded.
    Excl(&'a [u8]),
}

/// A lexicographic interval, meaningful when all members share one score (as Redis documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange<'a> {
    /// Lower end.
    pub min: LexBound<'a>,
    /// Upper end.
    pub max: LexBound<'a>,
}

impl LexRange<'_> {
    fn below(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(b) => m < b,
            LexBound::Excl(b) => m <= b,
        }
    }
    fn within_max(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(b) => m <= b,
            LexBound::Excl(b) => m < b,
        }
    }
}

/// The member index of the large encoding: slab ids, hashed through their members' bytes.
#[derive(Debug, Clone)]
struct Index {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl Index {
    fn new(capacity: usize) -> Index {
        Index { table: HashTable::with_capacity(capacity), hasher: RandomState::new() }
    }
}

/// A Redis sorted set. See the module documentation for the layout.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    /// Every member once, with its score; the key is the id the chunks and the index hold.
    members: Slab<Slot>,
    /// The sum of the members' lengths, so that `heap_bytes` need not visit them.
    bytes: usize,
    chunks: Vec<Vec<Item>>,
    /// Fenwick tree (1-based, stored 0-based) over `chunks[i].len()`.
    counts: Vec<usize>,
    /// Member -> id; present exactly in the large (`skiplist`) encoding.
    index: Option<Index>,
}

impl PartialEq for ZSet {
    /// Equal contents, whatever the encoding or chunking.
    fn eq(&self, other: &ZSet) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

impl ZSet {
    /// An empty set in the small encoding.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// An empty set in the large encoding, as redis-server creates the result of ZUNIONSTORE and
    /// friends before compacting it ([`ZSet::compact_if_small`]).
    pub fn new_large() -> ZSet {
        ZSet { index: Some(Index::new(0)), ..ZSet::default() }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there is no member (a stored set never is: the emptying command deletes it).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Heap bytes the value owns: slab, member bytes (allocator rounding not counted), chunk
    /// storage, the Fenwick tree and the index's table. O(C).
    pub fn heap_bytes(&self) -> usize {
        // A vacant slab slot's free-list link shares the member pointer's niche, so a slab slot
        // is exactly one `Slot`.
        let members = self.members.capacity() * std::mem::size_of::<Slot>() + self.bytes;
        let chunks = self.chunks.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<Item>();
        let outer = self.chunks.capacity() * std::mem::size_of::<Vec<Item>>()
            + self.counts.capacity() * std::mem::size_of::<usize>();
        let index = self.index.as_ref().map_or(0, |ix| ix.table.allocation_size());
        members + chunks + outer + index
    }

    /// The name `OBJECT ENCODING` gives, as redis-server would name this value's encoding.
    pub fn encoding(&self) -> &'static str {
        if self.index.is_some() {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|id| self.members[id as usize].score)
    }

    /// Adds `member` with `score`, or moves it to `score`; returns its previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let found = self.find(member);
        if found.is_none()
            && self.index.is_none()
            && (self.len() + 1 > MAX_LISTPACK_ENTRIES || member.len() > MAX_LISTPACK_VALUE)
        {
            self.convert_to_large();
        }
        // A listpack stores 0 as an integer, so redis-server's small sets lose the sign of -0.
        let score = if self.index.is_none() && score == 0.0 { 0.0 } else { score };
        match found {
            Some(id) => {
                let old = self.members[id as usize].score;
                if old != score {
                    self.unlink(id);
                    self.members[id as usize].score = score;
                    self.link(Item { score, id });
                }
                Some(old)
            }
            None => {
                let id = self.members.insert(Slot { member: member.into(), score });
                let id = u32::try_from(id).expect("more than 2^32 members in one sorted set");
                self.bytes += member.len();
                if let Some(Index { table, hasher }) = &mut self.index {
                    let members = &self.members;
                    table
                        .insert_unique(hasher.hash_one(member), id, |&x| hasher.hash_one(&*members[x as usize].member));
                }
                self.link(Item { score, id });
                None
            }
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.find(member)?;
        self.unlink(id);
        if let Some(Index { table, hasher }) = &mut self.index {
            if let Ok(e) = table.find_entry(hasher.hash_one(member), |&x| x == id) {
                e.remove();
            }
        }
        let slot = self.members.remove(id as usize);
        self.bytes -= slot.member.len();
        Some(slot.score)
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let id = self.find(member)?;
        let score = self.members[id as usize].score;
        Some(self.lower_bound(|i| item_before(&self.members, i, score, member)))
    }

    /// Ranks `[start, end)` of the members whose score lies in `r`.
    pub fn score_span(&self, r: &ScoreRange) -> (usize, usize) {
        let start = self.lower_bound(|i| r.below(i.score));
        let end = self.lower_bound(|i| r.within_max(i.score)).max(start);
        (start, end)
    }

    /// Ranks `[start, end)` of the members within the lexicographic range `r`.
    pub fn lex_span(&self, r: &LexRange<'_>) -> (usize, usize) {
        let m = |i: &Item| &*self.members[i.id as usize].member;
        let start = self.lower_bound(|i| r.below(m(i)));
        let end = self.lower_bound(|i| r.within_max(m(i))).max(start);
        (start, end)
    }

    /// The member and score at `rank` (ascending), if in range.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter_from(rank).next()
    }

    /// Every member and score, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter_from(0)
    }

    /// Members from `rank` upwards, ascending.
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (ci, off) = if rank >= self.len() { (self.chunks.len(), 0) } else { self.locate(rank) };
        let first = self.chunks.get(ci).map_or(&[][..], |c| &c[off..]);
        let rest = self.chunks.get(ci + 1..).unwrap_or(&[]);
        let members = &self.members;
        first.iter().chain(rest.iter().flatten()).map(move |i| (&*members[i.id as usize].member, i.score))
    }

    /// Members from `rank` downwards (inclusive), descending; empty when `rank` is past the end.
    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (first, rest): (&[Item], &[Vec<Item>]) = if rank >= self.len() {
            (&[], &[])
        } else {
            let (ci, off) = self.locate(rank);
            (&self.chunks[ci][..=off], &self.chunks[..ci])
        };
        let members = &self.members;
        first
            .iter()
            .rev()
            .chain(rest.iter().rev().flat_map(|c| c.iter().rev()))
            .map(move |i| (&*members[i.id as usize].member, i.score))
    }

    /// Removes ranks `[start, end)` and returns them ascending. O(log N + M + C).
    pub fn drain_ranks(&mut self, start: usize, end: usize) -> Vec<(Box<[u8]>, f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(end - start);
        let (mut ci, off) = self.locate(start);
        let mut from = off;
        let mut left = end - start;
        let ZSet { members, bytes, chunks, index, .. } = self;
        while left > 0 {
            let chunk = &mut chunks[ci];
            let take = (chunk.len() - from).min(left);
            for it in chunk.drain(from..from + take) {
                let slot = members.remove(it.id as usize);
                if let Some(Index { table, hasher }) = index {
                    if let Ok(e) = table.find_entry(hasher.hash_one(&*slot.member), |&x| x == it.id) {
                        e.remove();
                    }
                }
                *bytes -= slot.member.len();
                out.push((slot.member, slot.score));
            }
            left -= take;
            from = 0;
            ci += 1;
        }
        self.chunks.retain(|c| !c.is_empty());
        self.rebuild_counts();
        out
    }

    /// redis-server's `zsetConvertToListpackIfNeeded`, applied to a store command's result:
    /// back to the small encoding when it fits.
    pub fn compact_if_small(&mut self) {
        if self.index.is_some()
            && self.len() <= MAX_LISTPACK_ENTRIES
            && self.members.iter().all(|(_, s)| s.member.len() <= MAX_LISTPACK_VALUE)
        {
            self.index = None;
            // Renumber the members in order into a fresh slab with no vacant slots, so that the
            // small encoding's linear scans stay as short as the set.
            // Unlike an insert, redis-server's conversion keeps a -0 (it writes the double's text).
            let n = self.len();
            let mut old = std::mem::replace(&mut self.members, Slab::with_capacity(n));
            let all: Vec<Item> = std::mem::take(&mut self.chunks)
                .into_iter()
                .flatten()
                .map(|it| Item { score: it.score, id: self.members.insert(old.remove(it.id as usize)) as u32 })
                .collect();
            if !all.is_empty() {
                self.chunks.push(all);
            }
            self.rebuild_counts();
        }
    }

    /// Switches to the large (`skiplist`) encoding if not there yet: redis-server's SORT
    /// converts every sorted set it reads this way (`zsetConvert`), and OBJECT ENCODING shows it.
    pub fn make_large(&mut self) {
        if self.index.is_none() {
            self.convert_to_large();
        }
    }

    // ---- internals --------------------------------------------------------------------------

    fn convert_to_large(&mut self) {
        let mut ix = Index::new(self.len());
        let members = &self.members;
        for (id, slot) in members {
            let hash = ix.hasher.hash_one(&*slot.member);
            ix.table.insert_unique(hash, id as u32, |&x| ix.hasher.hash_one(&*members[x as usize].member));
        }
        self.index = Some(ix);
    }

    /// The id of `member`: through the index, or in the small encoding by a linear scan of the
    /// slab (contiguous, as a listpack is).
    fn find(&self, member: &[u8]) -> Option<u32> {
        match &self.index {
            Some(ix) => {
                let hash = ix.hasher.hash_one(member);
                ix.table.find(hash, |&id| *self.members[id as usize].member == *member).copied()
            }
            None => self.members.iter().find(|(_, s)| *s.member == *member).map(|(id, _)| id as u32),
        }
    }

    /// The rank of the first item for which `before` is false; `before` must be true for a
    /// prefix of the order and false after it.
    fn lower_bound(&self, before: impl Fn(&Item) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(&before));
        match self.chunks.get(ci) {
            Some(c) => self.prefix(ci) + c.partition_point(&before),
            None => self.len(),
        }
    }

    /// Puts `item` (whose slot is already in the slab) at its place in the chunks. A full chunk
    /// splits before it takes the item, so no chunk's buffer outgrows [`CHUNK_MAX`] items; an
    /// item past either end of the set starts a chunk of its own instead, so that a set loaded
    /// in order ends up with full chunks (a B-tree's append optimisation).
    fn link(&mut self, item: Item) {
        if self.chunks.is_empty() {
            self.chunks.push(vec![item]);
            self.rebuild_counts();
            return;
        }
        let members = &self.members;
        let member = &*members[item.id as usize].member;
        let before = |i: &Item| item_before(members, i, item.score, member);
        let last = self.chunks.len() - 1;
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(before)).min(last);
        let chunk = &mut self.chunks[ci];
        let pos = chunk.partition_point(before);
        if chunk.len() < CHUNK_MAX || self.index.is_none() {
            chunk.insert(pos, item);
            self.fenwick_add(ci, 1);
            return;
        }
        if pos == chunk.len() && ci == last {
            self.chunks.push(vec![item]);
        } else if pos == 0 && ci == 0 {
            self.chunks.insert(0, vec![item]);
        } else {
            let half = chunk.len() / 2;
            let mut tail = Vec::with_capacity(chunk.len() - half + 1);
            tail.extend(chunk.drain(half..));
            chunk.shrink_to(half + 1);
            if pos <= half {
                chunk.insert(pos, item);
            } else {
                tail.insert(pos - half, item);
            }
            self.chunks.insert(ci + 1, tail);
        }
        self.rebuild_counts();
    }

    /// Takes member `id`'s item out of the chunks (its slot stays in the slab).
    fn unlink(&mut self, id: u32) {
        let members = &self.members;
        let Slot { member, score } = &members[id as usize];
        let before = |i: &Item| item_before(members, i, *score, member);
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(before));
        let Some(chunk) = self.chunks.get_mut(ci) else { return };
        let pos = chunk.partition_point(before);
        if chunk.get(pos).map_or(true, |i| i.id != id) {
            return;
        }
        chunk.remove(pos);
        let n = chunk.len();
        if n == 0 {
            self.chunks.remove(ci);
            self.rebuild_counts();
        } else if n < CHUNK_MIN && self.try_merge(ci) {
            self.rebuild_counts();
        } else {
            self.fenwick_add_neg(ci);
        }
    }

    /// Merges chunk `ci` into a neighbour when both fit in one chunk.
    fn try_merge(&mut self, ci: usize) -> bool {
        let n = self.chunks[ci].len();
        if ci + 1 < self.chunks.len() && n + self.chunks[ci + 1].len() <= CHUNK_MAX {
            let next = self.chunks.remove(ci + 1);
            self.chunks[ci].extend(next);
            return true;
        }
        if ci > 0 && n + self.chunks[ci - 1].len() <= CHUNK_MAX {
            let cur = self.chunks.remove(ci);
            self.chunks[ci - 1].extend(cur);
            return true;
        }
        false
    }

    fn rebuild_counts(&mut self) {
        let n = self.chunks.len();
        self.counts.clear();
        self.counts.extend(self.chunks.iter().map(Vec::len));
        for i in 0..n {
            let parent = i | (i + 1);
            if parent < n {
                self.counts[parent] += self.counts[i];
            }
        }
    }

    fn fenwick_add(&mut self, mut i: usize, d: usize) {
        while i < self.counts.len() {
            self.counts[i] += d;
            i |= i + 1;
        }
    }

    fn fenwick_add_neg(&mut self, mut i: usize) {
        while i < self.counts.len() {
            self.counts[i] -= 1;
            i |= i + 1;
        }
    }

    /// Number of items in chunks `0..ci`.
    fn prefix(&self, ci: usize) -> usize {
        let mut sum = 0;
        let mut i = ci;
        while i > 0 {
            sum += self.counts[i - 1];
            i &= i - 1;
        }
        sum
    }

    /// (chunk, offset) of `rank < len`: a Fenwick descent, O(log C).
    fn locate(&self, rank: usize) -> (usize, usize) {
        let n = self.counts.len();
        let mut pos = 0; // number of whole chunks skipped
        let mut rem = rank;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.counts[next - 1] <= rem {
                rem -= self.counts[next - 1];
                pos = next;
            }
            step >>= 1;
        }
        (pos, rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        z.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    #[test]
    fn encodings_follow_redis_limits() {
        let mut z = ZSet::new();
        for i in 0..128 {
            z.insert(format!("m{i}").as_bytes(), i as f64);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"m0", 5.0);
        assert_eq!(z.encoding(), "listpack", "an update does not grow the set");
        z.insert(b"x", 1.0);
        assert_eq!(z.encoding(), "skiplist");
        z.drain_ranks(0, 100);
        assert_eq!(z.encoding(), "skiplist", "shrinking keeps the encoding");
        let kept = members(&z);
        z.compact_if_small();
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(members(&z), kept, "compacting renumbers the members, in order");
        assert!(kept.iter().all(|(m, s)| z.score(m) == Some(*s)));
        assert_eq!(z.members.capacity(), kept.len());
        let mut long = ZSet::new();
        long.insert(&[b'a'; 65], 1.0);
        assert_eq!(long.encoding(), "skiplist");
    }

    #[test]
    fn equality_ignores_encoding() {
        let mut a = ZSet::new();
        let mut b = ZSet::new();
        a.insert(b"x", 1.0);
        b.insert(b"x", 1.0);
        b.convert_to_large();
        assert_eq!(a, b);
        b.insert(b"x", 2.0);
        assert_ne!(a, b);
    }

    #[test]
    fn ranges_by_score_and_lex() {
        let mut z = ZSet::new();
        for (m, s) in [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0)] {
            z.insert(m.as_bytes(), s);
        }
        let r = ScoreRange { min: 2.0, max: 3.0, min_ex: false, max_ex: true };
        assert_eq!(z.score_span(&r), (1, 3));
        let r = ScoreRange { min: 3.0, max: 1.0, min_ex: false, max_ex: false };
        assert_eq!(z.score_span(&r), (3, 3));
        let l = LexRange { min: LexBound::Excl(b"a"), max: LexBound::Max };
        assert_eq!(z.lex_span(&l), (1, 4));
        assert_eq!(z.iter_rev_from(2).map(|(m, _)| m[0]).collect::<Vec<_>>(), b"cba");
    }

    /// Many chunks: in-order, reverse-order and random loads split full chunks at either end
    /// and in the middle; removals merge them. Contents, ranks and scores stay right, no chunk
    /// exceeds `CHUNK_MAX`, and an in-order load packs its chunks full.
    #[test]
    fn many_chunks_split_and_merge() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut z = ZSet::new();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..3000u32 {
            let m = format!("up{i:05}");
            z.insert(m.as_bytes(), f64::from(i));
            model.insert(m, f64::from(i));
        }
        assert!(z.chunks[..z.chunks.len() - 1].iter().all(|c| c.len() == CHUNK_MAX));
        assert!(z.heap_bytes() < z.len() * 70, "{} bytes for {}", z.heap_bytes(), z.len());
        for i in 0..3000u32 {
            let m = format!("down{i:05}");
            z.insert(m.as_bytes(), -f64::from(i));
            model.insert(m, -f64::from(i));
        }
        for round in 0..20000 {
            let m = format!("r{:04}", next() % 4000);
            if round % 3 == 0 {
                assert_eq!(z.remove(m.as_bytes()), model.remove(&m));
            } else {
                let s = (next() % 1000) as f64;
                assert_eq!(z.insert(m.as_bytes(), s), model.insert(m, s));
            }
            if round % 5000 == 0 {
                let k = format!("up{:05}", next() % 3000);
                model.remove(&k);
                z.remove(k.as_bytes());
            }
        }
        for i in (0..3000u32).step_by(2) {
            let m = format!("up{i:05}");
            assert_eq!(z.remove(m.as_bytes()), model.remove(&m));
        }
        assert!(z.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK_MAX));
        let mut want: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.as_bytes().to_vec(), *s)).collect();
        want.sort_by(|a, b| cmp_key(a.1, &a.0, b.1, &b.0));
        assert_eq!(members(&z), want);
        for (r, (m, s)) in want.iter().enumerate().step_by(7) {
            assert_eq!(z.rank(m), Some(r));
            assert_eq!(z.score(m), Some(*s));
        }
        let drained = z.drain_ranks(100, 2100);
        assert_eq!(drained.len(), 2000);
        assert_eq!(z.len(), want.len() - 2000);
        assert_eq!(z.score(&drained[0].0), None);
        assert_eq!(z.get(100).map(|(m, _)| m.to_vec()), Some(want[2100].0.clone()));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, i8),
        Rem(u8),
        Drain(u16, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Add(m, s)),
            2 => any::<u8>().prop_map(Op::Rem),
            1 => (0u16..300, 0u16..20).prop_map(|(a, n)| Op::Drain(a, a + n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The chunked structure against a plain sorted Vec: contents, ranks, rank ranges,
        /// score ranges and pops agree after any sequence of operations.
        #[test]
        fn matches_a_sorted_vec_model(ops in proptest::collection::vec(op(), 1..700)) {
            let mut z = ZSet::new();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            let key = |m: u8| vec![b'm', m, m];
            for o in ops {
                match o {
                    Op::Add(m, s) => {
                        let (m, s) = (key(m), f64::from(s));
                        let old = model.iter().position(|e| e.1 == m).map(|p| model.remove(p).0);
                        prop_assert_eq!(z.insert(&m, s), old);
                        model.push((s, m));
                        model.sort_by(|a, b| cmp_key(a.0, &a.1, b.0, &b.1));
                    }
                    Op::Rem(m) => {
                        let m = key(m);
                        let old = model.iter().position(|e| e.1 == m).map(|p| model.remove(p).0);
                        prop_assert_eq!(z.remove(&m), old);
                    }
                    Op::Drain(a, b) => {
                        let (a, b) = (usize::from(a), usize::from(b));
                        let got = z.drain_ranks(a, b);
                        let want: Vec<_> = if a < model.len() { model.drain(a..b.min(model.len())).collect() } else { Vec::new() };
                        prop_assert_eq!(got.len(), want.len());
                        for (g, w) in got.iter().zip(&want) {
                            prop_assert_eq!((&*g.0, g.1), (&w.1[..], w.0));
                        }
                    }
                }
                prop_assert_eq!(z.len(), model.len());
            }
            let flat: Vec<_> = model.iter().map(|(s, m)| (m.clone(), *s)).collect();
            prop_assert_eq!(members(&z), flat.clone());
            for (r, (m, s)) in flat.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some(r));
                prop_assert_eq!(z.score(m), Some(*s));
                prop_assert_eq!(z.get(r).map(|(m, s)| (m.to_vec(), s)), Some((m.clone(), *s)));
                let rev: Vec<_> = z.iter_rev_from(r).map(|(m, _)| m.to_vec()).collect();
                let want: Vec<_> = flat[..=r].iter().rev().map(|e| e.0.clone()).collect();
                prop_assert_eq!(rev, want);
            }
            for lo in [-130.0, -3.0, 0.0, 7.0] {
                let r = ScoreRange { min: lo, max: lo + 50.0, min_ex: true, max_ex: false };
                let want = flat.iter().filter(|e| e.1 > lo && e.1 <= lo + 50.0).count();
                let (a, b) = z.score_span(&r);
                prop_assert_eq!(b - a, want);
            }
        }
    }
}
