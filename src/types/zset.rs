//! A Redis sorted set: members ordered by (score, member bytes), each member once.
//!
//! ```text
//!   chunks:  [ (1,a) (1,b) (2,c) … ≤128 ] [ (5,x) … ] [ … ]     sorted runs, never empty
//!   counts:  Fenwick tree over the chunk lengths                 rank <-> (chunk, offset)
//!   index:   member -> score (only in the large encoding)        O(1) ZSCORE
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
//! then inside one chunk); rank to position O(log C) through the Fenwick tree; insert and remove
//! O(log N + chunk) plus O(C) on the rare split or merge that rebuilds the Fenwick tree; a range
//! of M members is O(log N + M). The road not taken is a skip list with spans: in safe Rust it
//! needs an arena of nodes with index links and costs more memory per member than a chunked
//! array (24 bytes per item in a chunk plus the member bytes, and in the large encoding a second
//! copy of the member in the index).

use std::cmp::Ordering;
use std::collections::HashMap;

/// redis-server's default `zset-max-listpack-entries`.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// redis-server's default `zset-max-listpack-value`.
pub const MAX_LISTPACK_VALUE: usize = 64;
/// Most items a chunk holds before it splits in two.
const CHUNK_MAX: usize = 128;
/// A chunk this small merges with a neighbour when they fit in one.
const CHUNK_MIN: usize = CHUNK_MAX / 4;

/// One member and its score.
#[derive(Debug, Clone)]
struct Item {
    score: f64,
    member: Box<[u8]>,
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

/// A Redis sorted set. See the module documentation for the layout.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    chunks: Vec<Vec<Item>>,
    /// Fenwick tree (1-based, stored 0-based) over `chunks[i].len()`.
    counts: Vec<usize>,
    /// Member -> score; present exactly in the large (`skiplist`) encoding.
    index: Option<HashMap<Box<[u8]>, f64>>,
    len: usize,
}

impl PartialEq for ZSet {
    /// Equal contents, whatever the encoding or chunking.
    fn eq(&self, other: &ZSet) -> bool {
        self.len == other.len && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
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
        ZSet { index: Some(HashMap::new()), ..ZSet::default() }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no member (a stored set never is: the emptying command deletes it).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes the value owns: chunk storage, member bytes, and the index's table and copies.
    pub fn heap_bytes(&self) -> usize {
        let item = std::mem::size_of::<Item>();
        let chunks: usize =
            self.chunks.iter().map(|c| c.capacity() * item + c.iter().map(|i| i.member.len()).sum::<usize>()).sum();
        let outer = self.chunks.capacity() * std::mem::size_of::<Vec<Item>>() + self.counts.capacity() * 8;
        let index = self.index.as_ref().map_or(0, |ix| {
            ix.capacity() * (std::mem::size_of::<(Box<[u8]>, f64)>() + 1) + ix.keys().map(|k| k.len()).sum::<usize>()
        });
        chunks + outer + index
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
        match &self.index {
            Some(ix) => ix.get(member).copied(),
            None => self.chunks.first()?.iter().find(|i| *i.member == *member).map(|i| i.score),
        }
    }

    /// Adds `member` with `score`, or moves it to `score`; returns its previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.score(member);
        match old {
            Some(s) if s == score => return old,
            Some(s) => {
                self.remove_item(s, member);
            }
            None => {
                if self.index.is_none() && (self.len + 1 > MAX_LISTPACK_ENTRIES || member.len() > MAX_LISTPACK_VALUE) {
                    self.convert_to_large();
                }
            }
        }
        if let Some(ix) = &mut self.index {
            match ix.get_mut(member) {
                Some(s) => *s = score,
                None => {
                    ix.insert(member.into(), score);
                }
            }
        }
        self.insert_item(Item { score, member: member.into() });
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.score(member)?;
        if let Some(ix) = &mut self.index {
            ix.remove(member);
        }
        self.remove_item(score, member);
        Some(score)
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.lower_bound(|i| cmp_key(i.score, &i.member, score, member) == Ordering::Less))
    }

    /// Ranks `[start, end)` of the members whose score lies in `r`.
    pub fn score_span(&self, r: &ScoreRange) -> (usize, usize) {
        let start = self.lower_bound(|i| r.below(i.score));
        let end = self.lower_bound(|i| r.within_max(i.score)).max(start);
        (start, end)
    }

    /// Ranks `[start, end)` of the members within the lexicographic range `r`.
    pub fn lex_span(&self, r: &LexRange<'_>) -> (usize, usize) {
        let start = self.lower_bound(|i| r.below(&i.member));
        let end = self.lower_bound(|i| r.within_max(&i.member)).max(start);
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
        let (ci, off) = if rank >= self.len { (self.chunks.len(), 0) } else { self.locate(rank) };
        let first = self.chunks.get(ci).map_or(&[][..], |c| &c[off..]);
        let rest = self.chunks.get(ci + 1..).unwrap_or(&[]);
        first.iter().chain(rest.iter().flatten()).map(|i| (&*i.member, i.score))
    }

    /// Members from `rank` downwards (inclusive), descending; empty when `rank` is past the end.
    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (first, rest): (&[Item], &[Vec<Item>]) = if rank >= self.len {
            (&[], &[])
        } else {
            let (ci, off) = self.locate(rank);
            (&self.chunks[ci][..=off], &self.chunks[..ci])
        };
        first.iter().rev().chain(rest.iter().rev().flat_map(|c| c.iter().rev())).map(|i| (&*i.member, i.score))
    }

    /// Removes ranks `[start, end)` and returns them ascending. O(log N + M + C).
    pub fn drain_ranks(&mut self, start: usize, end: usize) -> Vec<(Box<[u8]>, f64)> {
        let end = end.min(self.len);
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(end - start);
        let (mut ci, off) = self.locate(start);
        let mut from = off;
        let mut left = end - start;
        while left > 0 {
            let chunk = &mut self.chunks[ci];
            let take = (chunk.len() - from).min(left);
            for it in chunk.drain(from..from + take) {
                out.push((it.member, it.score));
            }
            left -= take;
            from = 0;
            ci += 1;
        }
        if let Some(ix) = &mut self.index {
            for (m, _) in &out {
                ix.remove(m);
            }
        }
        self.len -= out.len();
        self.chunks.retain(|c| !c.is_empty());
        self.rebuild_counts();
        out
    }

    /// redis-server's `zsetConvertToListpackIfNeeded`, applied to a store command's result:
    /// back to the small encoding when it fits.
    pub fn compact_if_small(&mut self) {
        if self.index.is_some()
            && self.len <= MAX_LISTPACK_ENTRIES
            && self.iter().all(|(m, _)| m.len() <= MAX_LISTPACK_VALUE)
        {
            self.index = None;
            // Unlike an insert, redis-server's conversion keeps a -0 (it writes the double's text).
            let all: Vec<Item> = std::mem::take(&mut self.chunks).into_iter().flatten().collect();
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
        let ix = self.iter().map(|(m, s)| (Box::<[u8]>::from(m), s)).collect();
        self.index = Some(ix);
    }

    /// The rank of the first item for which `before` is false; `before` must be true for a
    /// prefix of the order and false after it.
    fn lower_bound(&self, before: impl Fn(&Item) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(&before));
        match self.chunks.get(ci) {
            Some(c) => self.prefix(ci) + c.partition_point(&before),
            None => self.len,
        }
    }

    fn insert_item(&mut self, mut item: Item) {
        if self.index.is_none() && item.score == 0.0 {
            // A listpack stores 0 as an integer, so redis-server's small sets lose the sign of -0.
            item.score = 0.0;
        }
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(vec![item]);
            self.rebuild_counts();
            return;
        }
        let before = |i: &Item| cmp_key(i.score, &i.member, item.score, &item.member) == Ordering::Less;
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(before)).min(self.chunks.len() - 1);
        let chunk = &mut self.chunks[ci];
        let pos = chunk.partition_point(before);
        chunk.insert(pos, item);
        if chunk.len() > CHUNK_MAX && self.index.is_some() {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(ci + 1, tail);
            self.rebuild_counts();
        } else {
            self.fenwick_add(ci, 1);
        }
    }

    fn remove_item(&mut self, score: f64, member: &[u8]) {
        let before = |i: &Item| cmp_key(i.score, &i.member, score, member) == Ordering::Less;
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(before));
        let Some(chunk) = self.chunks.get_mut(ci) else { return };
        let pos = chunk.partition_point(before);
        if chunk.get(pos).map_or(true, |i| *i.member != *member) {
            return;
        }
        chunk.remove(pos);
        self.len -= 1;
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
        z.compact_if_small();
        assert_eq!(z.encoding(), "listpack");
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
