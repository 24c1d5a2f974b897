//! A Redis list: a deque of packed nodes, the shape of redis-server's quicklist of listpacks.
//!
//! ```text
//!   List ── nodes: VecDeque<Node> ── Node { buf, count }
//!                                     buf = [len][bytes][backlen] [len][bytes][backlen] …
//! ```
//!
//! Each node packs up to [`NODE_BYTES`] of entries into one buffer. An entry is its length as a
//! LEB128 varint, the bytes, and the length again written backwards (the least significant
//! group last, a continuation bit on every byte but the first written), so a node is walked
//! from either end without an index: the same trick as listpack's `backlen`. A 10-byte element
//! costs 12 bytes, where a `VecDeque<Box<[u8]>>` would pay a 16-byte fat pointer plus an
//! allocation (≥ 16 bytes of allocator overhead) per element.
//!
//! Costs: push and pop at either end are O(1) plus a memmove inside one end node (≤ 8 KB, as
//! listpack's); an index is found by skipping whole nodes by their counts, then walking one
//! node (from its nearer end); a middle insert or replace splices one node and splits it when
//! it outgrows the limit. An element larger than a node sits alone in its own node.
//!
//! The road not taken: one node size for all lists. redis-server 7.0 reports every list as
//! `quicklist` whatever its size (the `listpack` list encoding came with 7.2), so
//! [`List::encoding`] does too; `list-max-listpack-size` is not a directive of cachette yet and
//! [`NODE_BYTES`] stands for its default `-2`.

use std::collections::VecDeque;

/// Largest packed size of a node: redis-server's default `list-max-listpack-size -2` (8 KB).
/// A constant until the directive exists.
pub const NODE_BYTES: usize = 8 * 1024;

/// One end of a list: LEFT/head or RIGHT/tail, as the commands name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head (index 0, LEFT).
    Head,
    /// The tail (index -1, RIGHT).
    Tail,
}

/// A Redis list. Equality is by elements, not by how they happen to be split into nodes.
#[derive(Debug, Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
}

/// A packed run of entries. Never stored empty.
#[derive(Debug, Clone, Default)]
struct Node {
    buf: Vec<u8>,
    count: usize,
}

// ---- entry encoding ---------------------------------------------------------------------

/// Bytes a varint of `n` takes.
fn varint_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Packed size of an element of `n` bytes.
fn entry_size(n: usize) -> usize {
    2 * varint_len(n) + n
}

/// Writes the entry for `e` into `dst`, which is exactly `entry_size(e.len())` long.
fn write_entry(dst: &mut [u8], e: &[u8]) {
    let k = varint_len(e.len());
    let mut n = e.len();
    for b in &mut dst[..k] {
        *b = (n & 0x7f) as u8 | if n >= 0x80 { 0x80 } else { 0 };
        n >>= 7;
    }
    dst[k..k + e.len()].copy_from_slice(e);
    // The back length: group j (least significant first) at dst[end - 1 - j]; every byte but
    // the leftmost says "more to the left".
    let end = dst.len();
    for j in 0..k {
        let g = ((e.len() >> (7 * j)) & 0x7f) as u8;
        dst[end - 1 - j] = if j + 1 < k { g | 0x80 } else { g };
    }
}

/// The entry starting at `off`: (data start, data length, offset of the next entry).
fn entry_at(buf: &[u8], off: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, off);
    loop {
        let b = buf[i];
        n |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (i, n, i + n + varint_len(n))
}

/// The entry ending at `end`: (its start offset, data start, data length).
fn entry_before(buf: &[u8], end: usize) -> (usize, usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, end);
    loop {
        i -= 1;
        let b = buf[i];
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let data = i - n;
    (data - varint_len(n), data, n)
}

// ---- nodes ------------------------------------------------------------------------------

impl Node {
    fn with(e: &[u8]) -> Node {
        let mut n = Node { buf: Vec::with_capacity(entry_size(e.len())), count: 0 };
        n.insert_at(0, e);
        n
    }

    fn iter(&self) -> NodeIter<'_> {
        NodeIter { buf: &self.buf, front: 0, back: self.buf.len(), left: self.count }
    }

    /// Byte offset of entry `i` (`i == count` gives the end), walked from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            (0..i).fold(0, |off, _| entry_at(&self.buf, off).2)
        } else {
            (i..self.count).fold(self.buf.len(), |end, _| entry_before(&self.buf, end).0)
        }
    }

    /// Grows the buffer for `extra` more bytes: doubling, but never past the node limit (or
    /// the one oversized element), so a full node wastes at most what one entry needs.
    fn reserve(&mut self, extra: usize) {
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if len + extra > cap {
            let want = (cap * 2).max(len + extra).min(NODE_BYTES.max(len + extra));
            self.buf.reserve_exact(want - len);
        }
    }

    /// Gives back spare capacity after the node shrank a lot.
    fn tidy(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() >= 2 * self.buf.len() {
            self.buf.shrink_to_fit();
        }
    }

    /// Inserts the entry for `e` at byte offset `off` (an entry boundary).
    fn insert_at(&mut self, off: usize, e: &[u8]) {
        let size = entry_size(e.len());
        let old = self.buf.len();
        self.reserve(size);
        self.buf.resize(old + size, 0);
        self.buf.copy_within(off..old, off + size);
        write_entry(&mut self.buf[off..off + size], e);
        self.count += 1;
    }

    /// Would `e` fit without passing the limit? An empty node takes anything.
    fn fits(&self, e: &[u8]) -> bool {
        self.count == 0 || self.buf.len() + entry_size(e.len()) <= NODE_BYTES
    }
}

/// The entries of one node, from either end.
struct NodeIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (data, n, next) = entry_at(self.buf, self.front);
        self.front = next;
        self.left -= 1;
        Some(&self.buf[data..data + n])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (start, data, n) = entry_before(self.buf, self.back);
        self.back = start;
        self.left -= 1;
        Some(&self.buf[data..data + n])
    }
}

// ---- the list ---------------------------------------------------------------------------

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> List {
        let mut l = List::default();
        for e in iter {
            l.push(End::Tail, e);
        }
        l
    }
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the list has no elements (a stored list never is: see the module docs of
    /// `types`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes the value owns.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }

    /// The name `OBJECT ENCODING` gives: redis-server 7.0 calls every list `quicklist`.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Every element, head to tail (reversible).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(Node::iter)
    }

    /// The elements from index `start` on, head to tail. O(nodes skipped + one node).
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (ni, local) = self.locate(start.min(self.len));
        self.nodes.range(ni..).flat_map(Node::iter).skip(local)
    }

    /// The node holding index `i` and `i`'s index inside it; `i == len` gives (nodes, 0).
    /// Whole nodes are skipped from the nearer end by their counts.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i >= self.len {
            return (self.nodes.len(), 0);
        }
        if i < self.len / 2 {
            let mut rest = i;
            for (ni, n) in self.nodes.iter().enumerate() {
                if rest < n.count {
                    return (ni, rest);
                }
                rest -= n.count;
            }
        } else {
            let mut from_end = self.len - i;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                if from_end <= n.count {
                    return (ni, n.count - from_end);
                }
                from_end -= n.count;
            }
        }
        unreachable!("node counts add up to len")
    }

    /// Adds `e` at one end.
    pub fn push(&mut self, end: End, e: &[u8]) {
        self.len += 1;
        let node = match end {
            End::Head => self.nodes.front_mut(),
            End::Tail => self.nodes.back_mut(),
        };
        match node {
            Some(n) if n.fits(e) => {
                let off = if end == End::Head { 0 } else { n.buf.len() };
                n.insert_at(off, e);
            }
            _ if end == End::Head => self.nodes.push_front(Node::with(e)),
            _ => self.nodes.push_back(Node::with(e)),
        }
    }

    /// Removes and returns the element at one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let e = match end {
            End::Head => self.iter().next(),
            End::Tail => self.iter().next_back(),
        }?
        .to_vec();
        self.drain(end, 1);
        Some(e)
    }

    /// Removes up to `n` elements from one end and returns them in pop order (from that end
    /// inwards), as LPOP/RPOP with a count reply them.
    pub fn pop_many(&mut self, end: End, n: usize) -> Vec<Vec<u8>> {
        let n = n.min(self.len);
        let out: Vec<Vec<u8>> = match end {
            End::Head => self.iter().take(n).map(<[u8]>::to_vec).collect(),
            End::Tail => self.iter().rev().take(n).map(<[u8]>::to_vec).collect(),
        };
        self.drain(end, n);
        out
    }

    /// Drops `n` elements from one end: whole nodes while they fit in `n`, then a cut of one
    /// node.
    fn drain(&mut self, end: End, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let node = match end {
                End::Head => self.nodes.front_mut(),
                End::Tail => self.nodes.back_mut(),
            };
            let Some(node) = node else { break };
            if node.count <= n {
                n -= node.count;
                match end {
                    End::Head => self.nodes.pop_front(),
                    End::Tail => self.nodes.pop_back(),
                };
                continue;
            }
            match end {
                End::Head => {
                    let off = node.offset_of(n);
                    node.buf.drain(..off);
                }
                End::Tail => {
                    let off = node.offset_of(node.count - n);
                    node.buf.truncate(off);
                }
            }
            node.count -= n;
            node.tidy();
            n = 0;
        }
    }

    /// The element at index `i` (from the head).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (ni, local) = self.locate(i);
        let node = &self.nodes[ni];
        let (data, n, _) = entry_at(&node.buf, node.offset_of(local));
        Some(&node.buf[data..data + n])
    }

    /// Replaces the element at index `i`; false when `i` is out of range.
    pub fn set(&mut self, i: usize, e: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (ni, local) = self.locate(i);
        let node = &mut self.nodes[ni];
        let off = node.offset_of(local);
        let (_, _, next) = entry_at(&node.buf, off);
        node.buf.drain(off..next);
        node.count -= 1;
        node.insert_at(off, e);
        self.split_if_big(ni);
        true
    }

    /// Inserts `e` so that it becomes index `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, e: &[u8]) {
        if i == 0 {
            return self.push(End::Head, e);
        }
        if i >= self.len {
            return self.push(End::Tail, e);
        }
        let (ni, local) = self.locate(i);
        let node = &mut self.nodes[ni];
        let off = node.offset_of(local);
        node.insert_at(off, e);
        self.len += 1;
        self.split_if_big(ni);
    }

    /// Splits node `ni` in halves (by count), recursively, while it is over the limit and has
    /// more than one entry.
    fn split_if_big(&mut self, ni: usize) {
        let node = &mut self.nodes[ni];
        if node.buf.len() <= NODE_BYTES || node.count < 2 {
            return;
        }
        let keep = node.count / 2;
        let off = node.offset_of(keep);
        let tail = Node { buf: node.buf.split_off(off), count: node.count - keep };
        node.count = keep;
        node.tidy();
        self.nodes.insert(ni + 1, tail);
        self.split_if_big(ni + 1);
        self.split_if_big(ni);
    }

    /// Index of the first element equal to `e`, head to tail.
    pub fn position(&self, e: &[u8]) -> Option<usize> {
        self.iter().position(|x| x == e)
    }

    /// LREM: removes elements equal to `e` — all of them when `count` is 0, else the first
    /// `count` from the head (`count > 0`) or from the tail (`count < 0`). Returns how many.
    /// Nodes without a match are left untouched; neighbours that fit together after removals
    /// are merged.
    pub fn remove_matching(&mut self, e: &[u8], count: i64) -> usize {
        let mut budget =
            if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
        let from_tail = count < 0;
        let mut removed = 0;
        let order: Vec<usize> =
            if from_tail { (0..self.nodes.len()).rev().collect() } else { (0..self.nodes.len()).collect() };
        for ni in order {
            if budget == 0 {
                break;
            }
            let node = &mut self.nodes[ni];
            let hits = node.iter().filter(|x| *x == e).count();
            if hits == 0 {
                continue;
            }
            let take = hits.min(budget);
            // Which of the node's matches go: the first `take` walking in the command's direction.
            let skip = if from_tail { hits - take } else { 0 };
            let mut rebuilt = Vec::with_capacity(node.buf.len());
            let mut seen = 0;
            for x in node.iter() {
                if x == e {
                    seen += 1;
                    if seen > skip && seen <= skip + take {
                        continue;
                    }
                }
                let at = rebuilt.len();
                rebuilt.resize(at + entry_size(x.len()), 0);
                write_entry(&mut rebuilt[at..], x);
            }
            node.buf = rebuilt;
            node.count -= take;
            budget -= take;
            removed += take;
        }
        if removed > 0 {
            self.len -= removed;
            self.nodes.retain(|n| n.count > 0);
            self.merge_small();
        }
        removed
    }

    /// Merges neighbouring nodes whose entries fit in one, after removals left them thin.
    fn merge_small(&mut self) {
        let mut i = 0;
        while i + 1 < self.nodes.len() {
            if self.nodes[i].buf.len() + self.nodes[i + 1].buf.len() <= NODE_BYTES {
                if let Some(next) = self.nodes.remove(i + 1) {
                    let node = &mut self.nodes[i];
                    node.buf.extend_from_slice(&next.buf);
                    node.count += next.count;
                }
            } else {
                self.nodes[i].tidy();
                i += 1;
            }
        }
        if let Some(n) = self.nodes.back_mut() {
            n.tidy();
        }
    }

    /// LTRIM's work: drops `head` elements from the head and `tail` from the tail.
    pub fn trim(&mut self, head: usize, tail: usize) {
        self.drain(End::Head, head);
        self.drain(End::Tail, tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(items: &[&[u8]]) -> List {
        items.iter().copied().collect()
    }

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    /// The structure's own invariants: counts add up, no empty node, every node within the
    /// limit unless it holds one element, and both walks agree.
    fn check(l: &List) {
        assert_eq!(l.nodes.iter().map(|n| n.count).sum::<usize>(), l.len);
        for n in &l.nodes {
            assert!(n.count > 0, "empty node");
            assert!(n.buf.len() <= NODE_BYTES || n.count == 1, "oversized node of {} entries", n.count);
            assert_eq!(n.iter().count(), n.count);
            assert_eq!(n.iter().map(|e| entry_size(e.len())).sum::<usize>(), n.buf.len());
        }
        let fwd = items(l);
        let mut back: Vec<Vec<u8>> = l.iter().rev().map(<[u8]>::to_vec).collect();
        back.reverse();
        assert_eq!(fwd, back);
    }

    #[test]
    fn entry_encoding_round_trips_both_ways() {
        for n in [0usize, 1, 127, 128, 300, 16383, 16384, 70000] {
            let e = vec![b'x'; n];
            let mut buf = vec![0; entry_size(n)];
            write_entry(&mut buf, &e);
            assert_eq!(entry_at(&buf, 0), (varint_len(n), n, buf.len()));
            assert_eq!(entry_before(&buf, buf.len()), (0, varint_len(n), n));
        }
        assert_eq!(entry_size(10), 12, "a small element costs two bytes of framing");
    }

    #[test]
    fn push_pop_both_ends() {
        let mut l = List::default();
        l.push(End::Tail, b"b");
        l.push(End::Head, b"a");
        l.push(End::Tail, b"c");
        assert_eq!(items(&l), [b"a", b"b", b"c"]);
        assert_eq!(l.pop(End::Tail).as_deref(), Some(&b"c"[..]));
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"a"[..]));
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"b"[..]));
        assert_eq!(l.pop(End::Head), None);
        assert!(l.is_empty() && l.nodes.is_empty());
    }

    #[test]
    fn many_nodes_index_and_trim() {
        let big: Vec<Vec<u8>> = (0..5000).map(|i| format!("element-{i}").into_bytes()).collect();
        let mut l: List = big.iter().map(Vec::as_slice).collect();
        check(&l);
        assert!(l.nodes.len() > 5, "a long list spreads over nodes");
        assert_eq!(l.get(0), Some(&b"element-0"[..]));
        assert_eq!(l.get(4999), Some(&b"element-4999"[..]));
        assert_eq!(l.get(2500), Some(&b"element-2500"[..]));
        assert_eq!(l.iter_from(4998).count(), 2);
        l.trim(1000, 1000);
        check(&l);
        assert_eq!(l.len(), 3000);
        assert_eq!(l.get(0), Some(&b"element-1000"[..]));
        assert_eq!(l.pop_many(End::Tail, 2), vec![b"element-3999".to_vec(), b"element-3998".to_vec()]);
        check(&l);
        // Packed: well under 20 bytes per ~12-byte element, node overhead included.
        assert!(l.heap_bytes() < l.len() * 20, "{} bytes for {}", l.heap_bytes(), l.len());
    }

    #[test]
    fn oversized_elements_live_alone() {
        let huge = vec![b'h'; NODE_BYTES * 2];
        let mut l = list(&[b"a", b"b", b"c"]);
        l.insert(1, &huge);
        check(&l);
        l.set(0, &huge);
        check(&l);
        assert_eq!(l.get(1).map(<[u8]>::len), Some(huge.len()));
        assert_eq!(l.remove_matching(&huge, 0), 2);
        check(&l);
        assert_eq!(items(&l), [b"b", b"c"]);
    }

    #[test]
    fn remove_matching_directions() {
        let base: &[&[u8]] = &[b"x", b"a", b"x", b"b", b"x"];
        let mut l = list(base);
        assert_eq!(l.remove_matching(b"x", 2), 2);
        assert_eq!(items(&l), [b"a", b"b", b"x"]);
        let mut l = list(base);
        assert_eq!(l.remove_matching(b"x", -2), 2);
        assert_eq!(items(&l), [b"x", b"a", b"b"]);
        let mut l = list(base);
        assert_eq!(l.remove_matching(b"x", 0), 3);
        assert_eq!(l.remove_matching(b"zz", 0), 0);
        assert_eq!(items(&l), [b"a", b"b"]);
    }

    #[test]
    fn equality_ignores_node_boundaries() {
        let mut a: List = (0..2000).map(|_| &b"0123456789"[..]).collect();
        let mut b = List::default();
        for _ in 0..2000 {
            b.push(End::Head, b"0123456789");
        }
        assert_eq!(a, b);
        a.set(5, b"z");
        assert_ne!(a, b);
        b.set(5, b"z");
        assert_eq!(a, b);
        assert_eq!(a.encoding(), "quicklist");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool, usize),
        Range(usize, usize),
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Rem(i64, Vec<u8>),
        Trim(usize, usize),
        Index(usize),
    }

    /// Elements from a small alphabet so that LREM finds matches, with the odd long one so
    /// that nodes split.
    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::collection::vec(b'a'..=b'c', 0..3),
            1 => (b'a'..=b'c', 200..3000usize).prop_map(|(c, n)| vec![c; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), elem()).prop_map(|(h, e)| Op::Push(h, e)),
            2 => (any::<bool>(), 0..5usize).prop_map(|(h, n)| Op::Pop(h, n)),
            1 => (0..60usize, 0..60usize).prop_map(|(a, b)| Op::Range(a, b)),
            2 => (0..60usize, elem()).prop_map(|(i, e)| Op::Set(i, e)),
            2 => (0..60usize, elem()).prop_map(|(i, e)| Op::Insert(i, e)),
            1 => (-3..3i64, elem()).prop_map(|(c, e)| Op::Rem(c, e)),
            1 => (0..4usize, 0..4usize).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => (0..60usize).prop_map(Op::Index),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of operations gives what a plain VecDeque gives.
        #[test]
        fn behaves_like_a_vecdeque(ops in prop::collection::vec(op(), 1..120)) {
            let mut l = List::default();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(true, e) => { l.push(End::Head, &e); m.push_front(e); }
                    Op::Push(false, e) => { l.push(End::Tail, &e); m.push_back(e); }
                    Op::Pop(head, n) => {
                        let end = if head { End::Head } else { End::Tail };
                        let want: Vec<Vec<u8>> = (0..n)
                            .map_while(|_| if head { m.pop_front() } else { m.pop_back() })
                            .collect();
                        prop_assert_eq!(l.pop_many(end, n), want);
                    }
                    Op::Range(a, n) => {
                        let got: Vec<&[u8]> = l.iter_from(a).take(n).collect();
                        let want: Vec<&[u8]> = m.iter().skip(a).take(n).map(Vec::as_slice).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Set(i, e) => {
                        let ok = i < m.len();
                        prop_assert_eq!(l.set(i, &e), ok);
                        if ok { m[i] = e; }
                    }
                    Op::Insert(i, e) => {
                        let i = i.min(m.len());
                        l.insert(i, &e);
                        m.insert(i, e);
                    }
                    Op::Rem(c, e) => {
                        let mut left = if c == 0 { usize::MAX } else { c.unsigned_abs() as usize };
                        let before = m.len();
                        let mut keep: Vec<Vec<u8>> = Vec::new();
                        let walk: Vec<Vec<u8>> = if c < 0 { m.drain(..).rev().collect() } else { m.drain(..).collect() };
                        for x in walk {
                            if x == e && left > 0 { left -= 1; } else { keep.push(x); }
                        }
                        if c < 0 { keep.reverse(); }
                        m = keep.into();
                        prop_assert_eq!(l.remove_matching(&e, c), before - m.len());
                    }
                    Op::Trim(a, b) => {
                        l.trim(a, b);
                        for _ in 0..a { m.pop_front(); }
                        for _ in 0..b { m.pop_back(); }
                    }
                    Op::Index(i) => prop_assert_eq!(l.get(i), m.get(i).map(Vec::as_slice)),
                }
                prop_assert_eq!(l.len(), m.len());
            }
            check(&l);
            prop_assert_eq!(items(&l), m.into_iter().collect::<Vec<_>>());
        }
    }
}
