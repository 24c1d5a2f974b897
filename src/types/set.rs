//! A Redis set, encoded the way redis-server 7.0 encodes it (`t_set.c`, `intset.c`).
//!
//! ```text
//!   Ints   sorted Vec<i64>            every member a canonical integer (`string2ll`), at most
//!                                      MAX_INTSET_ENTRIES of them    OBJECT ENCODING "intset"
//!   Table  hashbrown HashTable of     anything else                  OBJECT ENCODING "hashtable"
//!          Box<[u8]>
//! ```
//!
//! redis-server 7.0 has no listpack encoding for sets (7.2 added one): `SADD s a` answers
//! `hashtable` at once, so this module has exactly those two, and converts when 7.0 does. A set
//! starts as an intset; a non-integer member, or a 513th integer, turns it into a table for good
//! (removals never convert back). The store commands build their result as a fresh set, member
//! by member, so `SUNIONSTORE` of integer sets gives an intset again, as in Redis.
//!
//! Reply order is what clients see: an intset iterates ascending, exactly as redis-server's, so
//! SMEMBERS of an integer set is byte-for-byte deterministic; a table iterates in its hash order,
//! which (as in Redis) is an accident of the process seed.
//!
//! Memory per member: 8 bytes in an intset (redis packs 2/4/8 depending on the widest value); in
//! a table 16 bytes of boxed-slice pointer plus one control byte per bucket (load 7/16..7/8), plus
//! the member's own allocation. A table that empties below 1/8 of its buckets is shrunk, which
//! also keeps random sampling (a random bucket until an occupied one) at a few probes.
//!
//! SSCAN over a table walks buckets in index order. hashbrown moves members only when it
//! rehashes (grow, shrink, or in-place tombstone cleanup), and every such rehash is done here
//! explicitly and bumps [`Set`]'s `epoch`, which a cursor carries in its top 16 bits: a cursor
//! from an older epoch restarts the walk from bucket 0. So a member present for the whole scan
//! is always returned (possibly more than once), as SCAN promises.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::string::parse_i64;

/// redis-server's `set-max-intset-entries` default: an intset holds at most this many members.
pub const MAX_INTSET_ENTRIES: usize = 512;

/// redis-server's `SPOP_MOVE_STRATEGY_MUL`: SPOP with a count pops one by one while what stays
/// is more than a fifth of what goes; past that it rebuilds the set from what stays.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// redis-server's `SRANDMEMBER_SUB_STRATEGY_MUL`: SRANDMEMBER with a positive count below the
/// size copies the set and removes members while the count is over a third of the size.
const SRANDMEMBER_SUB_STRATEGY_MUL: usize = 3;

/// Bits of an SSCAN cursor that hold the bucket index; the 16 above hold the epoch.
const CURSOR_INDEX_BITS: u32 = 48;

/// One process-wide seed for every set's table: the hash only has to be unpredictable to
/// clients, and one seed costs no bytes per set.
fn hasher() -> &'static DefaultHashBuilder {
    static H: OnceLock<DefaultHashBuilder> = OnceLock::new();
    H.get_or_init(DefaultHashBuilder::default)
}

fn hash(m: &[u8]) -> u64 {
    hasher().hash_one(m)
}

/// The re-hash callback hashbrown calls when it moves members: it is handed `&T`, `T` being
/// the stored `Box<[u8]>`.
#[allow(clippy::borrowed_box)]
fn rehash(m: &Box<[u8]>) -> u64 {
    hash(m)
}

/// A small, fast, non-cryptographic generator (splitmix64) for SPOP and SRANDMEMBER, seeded
/// afresh per command from std's per-thread random keys. Not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the OS-seeded `RandomState` keys (which change on every call).
    pub fn new() -> Rng {
        Rng(std::collections::hash_map::RandomState::new().hash_one(0u64))
    }

    /// A generator with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n` > 0), by multiply-shift (bias below 2^-40 for any set
    /// size that fits in memory).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

impl Default for Rng {
    fn default() -> Rng {
        Rng::new()
    }
}

/// A member as a set hands it out: an intset's integer (formatted only when a reply needs the
/// text), or a table's bytes, borrowed or (once removed from the set) owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Member<'a> {
    /// A member of an intset.
    Int(i64),
    /// A member of a table.
    Bytes(Cow<'a, [u8]>),
}

impl Member<'_> {
    /// Runs `f` on the member's text (an integer is formatted on the stack, not allocated).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Bytes(b) => f(b),
            Member::Int(i) => {
                let mut buf = [0u8; 20];
                f(format_i64(*i, &mut buf))
            }
        }
    }

    /// The member, detached from the set it came from.
    pub fn into_owned(self) -> Member<'static> {
        match self {
            Member::Int(i) => Member::Int(i),
            Member::Bytes(b) => Member::Bytes(Cow::Owned(b.into_owned())),
        }
    }
}

/// Formats `v` into the tail of `buf` (20 bytes hold `i64::MIN`).
fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

#[derive(Debug, Clone)]
enum Repr {
    /// Sorted, distinct.
    Ints(Vec<i64>),
    /// `bytes`: the sum of the members' lengths, kept so `heap_bytes` is O(1).
    Table { members: HashTable<Box<[u8]>>, bytes: usize },
}

/// A Redis set. See the module documentation for the encodings.
#[derive(Debug, Clone)]
pub struct Set {
    repr: Repr,
    /// Bumped whenever the table's members move (see the module documentation on SSCAN).
    epoch: u16,
}

impl Default for Set {
    fn default() -> Set {
        Set { repr: Repr::Ints(Vec::new()), epoch: 0 }
    }
}

/// Two sets are equal when they hold the same members, whatever their encodings.
impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_member(&m))
    }
}

/// Iterator over a set's members: ascending for an intset, hash order for a table.
pub enum Iter<'a> {
    /// Over an intset.
    Ints(std::slice::Iter<'a, i64>),
    /// Over a table.
    Table(hashbrown::hash_table::Iter<'a, Box<[u8]>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            Iter::Ints(it) => it.next().map(|&i| Member::Int(i)),
            Iter::Table(it) => it.next().map(|b| Member::Bytes(Cow::Borrowed(&b[..]))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Ints(it) => it.size_hint(),
            Iter::Table(it) => it.size_hint(),
        }
    }
}

impl<'a> FromIterator<Member<'a>> for Set {
    /// Builds a set member by member, converting as redis-server's `setTypeAdd` would.
    fn from_iter<I: IntoIterator<Item = Member<'a>>>(iter: I) -> Set {
        let mut s = Set::default();
        for m in iter {
            s.insert_member(&m);
        }
        s
    }
}

impl Set {
    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Table { members, .. } => members.len(),
        }
    }

    /// True when the set has no members (a stored set never is: its key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes the value owns: the intset's buffer, or the table's allocation plus its
    /// members' (allocator rounding not counted).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.capacity() * std::mem::size_of::<i64>(),
            Repr::Table { members, bytes } => members.allocation_size() + bytes,
        }
    }

    /// The name `OBJECT ENCODING` gives, as redis-server 7.0 would name this value's encoding.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table { .. } => "hashtable",
        }
    }

    /// The members: ascending for an intset, hash order for a table.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(v) => Iter::Ints(v.iter()),
            Repr::Table { members, .. } => Iter::Table(members.iter()),
        }
    }

    /// True when `m` is a member. O(log n) in an intset, O(1) in a table.
    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => parse_i64(m).is_some_and(|i| v.binary_search(&i).is_ok()),
            Repr::Table { members, .. } => members.find(hash(m), |x| **x == *m).is_some(),
        }
    }

    /// [`Set::contains`] for a member taken from another set (an integer is not formatted when
    /// this set is an intset too).
    pub fn contains_member(&self, m: &Member<'_>) -> bool {
        match (&self.repr, m) {
            (Repr::Ints(v), Member::Int(i)) => v.binary_search(i).is_ok(),
            _ => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds `m`; false if it was already a member.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if let Repr::Ints(v) = &mut self.repr {
            if let Some(i) = parse_i64(m) {
                match v.binary_search(&i) {
                    Ok(_) => return false,
                    Err(pos) if v.len() < MAX_INTSET_ENTRIES => {
                        v.insert(pos, i);
                        return true;
                    }
                    Err(_) => {}
                }
            }
            self.convert_to_table();
        }
        self.table_insert(m)
    }

    /// [`Set::insert`] for a member taken from another set.
    pub fn insert_member(&mut self, m: &Member<'_>) -> bool {
        m.with_bytes(|b| self.insert(b))
    }

    /// Removes `m`; false if it was not a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => match parse_i64(m).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Repr::Table { members, bytes } => match members.find_entry(hash(m), |x| **x == *m) {
                Ok(e) => {
                    *bytes -= e.get().len();
                    e.remove();
                    self.maybe_shrink();
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// [`Set::remove`] for a member taken from another set.
    pub fn remove_member(&mut self, m: &Member<'_>) -> bool {
        match (&mut self.repr, m) {
            (Repr::Ints(v), Member::Int(i)) => match v.binary_search(i) {
                Ok(pos) => {
                    v.remove(pos);
                    true
                }
                Err(_) => false,
            },
            _ => m.with_bytes(|b| self.remove(b)),
        }
    }

    /// A uniformly random member. None when empty.
    pub fn random(&self, rng: &mut Rng) -> Option<Member<'_>> {
        let slot = self.random_slot(rng)?;
        self.at_slot(slot)
    }

    /// Removes and returns a uniformly random member. None when empty.
    pub fn pop(&mut self, rng: &mut Rng) -> Option<Member<'static>> {
        let slot = self.random_slot(rng)?;
        let m = match &mut self.repr {
            Repr::Ints(v) => Member::Int(v.remove(slot)),
            Repr::Table { members, bytes } => {
                let (b, _) = members.get_bucket_entry(slot).ok()?.remove();
                *bytes -= b.len();
                Member::Bytes(Cow::Owned(b.into_vec()))
            }
        };
        self.maybe_shrink();
        Some(m)
    }

    /// SPOP with a count below the size: removes `count` random members and returns them.
    ///
    /// As redis-server: while what stays is more than a fifth of what goes, members are popped
    /// one by one (returned in pop order); otherwise the members that stay are drawn into a
    /// fresh set (which may so become an intset again), and what is left of the old one is
    /// returned in its iteration order.
    pub fn pop_many(&mut self, count: usize, rng: &mut Rng) -> Vec<Member<'static>> {
        let count = count.min(self.len());
        let remaining = self.len() - count;
        if remaining * SPOP_MOVE_STRATEGY_MUL > count {
            return (0..count).filter_map(|_| self.pop(rng)).collect();
        }
        let mut kept = Set::default();
        for _ in 0..remaining {
            if let Some(m) = self.pop(rng) {
                kept.insert_member(&m);
            }
        }
        let old = std::mem::replace(self, kept);
        old.iter().map(Member::into_owned).collect()
    }

    /// SRANDMEMBER with a negative count: `count` members drawn independently, so repeats are
    /// possible. Empty when the set is.
    pub fn sample_with_repeats(&self, count: usize, rng: &mut Rng) -> Vec<Member<'_>> {
        if self.is_empty() {
            return Vec::new();
        }
        (0..count).filter_map(|_| self.random(rng)).collect()
    }

    /// SRANDMEMBER with a positive count: `min(count, len)` distinct members. The whole set
    /// comes in iteration order (as redis-server replies it); a large share is drawn by
    /// removing random members from a copy, a small one by drawing until enough are distinct.
    pub fn sample_distinct(&self, count: usize, rng: &mut Rng) -> Vec<Member<'_>> {
        let len = self.len();
        if count >= len {
            return self.iter().collect();
        }
        let slots: Vec<usize> = if count * SRANDMEMBER_SUB_STRATEGY_MUL > len {
            let mut all = self.slots();
            while all.len() > count {
                let i = rng.below(all.len());
                all.swap_remove(i);
            }
            all
        } else {
            let mut seen = std::collections::HashSet::with_capacity(count);
            let mut picked = Vec::with_capacity(count);
            while picked.len() < count {
                let Some(s) = self.random_slot(rng) else { break };
                if seen.insert(s) {
                    picked.push(s);
                }
            }
            picked
        };
        slots.into_iter().filter_map(|s| self.at_slot(s)).collect()
    }

    /// One SSCAN step from `cursor`: calls `f` on the members visited and returns the next
    /// cursor (0 when done). An intset is returned whole in one call, as redis-server does for
    /// its compact encodings; a table visits buckets until `count` members were seen or
    /// `10 * count` buckets were, as `scanGenericCommand` bounds its work.
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(Member<'s>)) -> u64 {
        let members = match &self.repr {
            Repr::Ints(v) => {
                v.iter().for_each(|&i| f(Member::Int(i)));
                return 0;
            }
            Repr::Table { members, .. } => members,
        };
        let epoch = (cursor >> CURSOR_INDEX_BITS) as u16;
        let mut index = (cursor & ((1 << CURSOR_INDEX_BITS) - 1)) as usize;
        if epoch != self.epoch {
            index = 0;
        }
        let buckets = members.num_buckets();
        let (mut seen, mut visited) = (0usize, 0usize);
        let max_visits = count.saturating_mul(10);
        while index < buckets && seen < count && visited < max_visits {
            if let Some(m) = members.get_bucket(index) {
                f(Member::Bytes(Cow::Borrowed(&m[..])));
                seen += 1;
            }
            index += 1;
            visited += 1;
        }
        if index >= buckets {
            0
        } else {
            (u64::from(self.epoch) << CURSOR_INDEX_BITS) | index as u64
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn convert_to_table(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut members = HashTable::with_capacity(v.len() + 1);
            let mut bytes = 0;
            let mut buf = [0u8; 20];
            for &i in v {
                let b: Box<[u8]> = format_i64(i, &mut buf).into();
                bytes += b.len();
                members.insert_unique(hash(&b), b, rehash);
            }
            self.repr = Repr::Table { members, bytes };
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// Adds to a table (the set must be one).
    fn table_insert(&mut self, m: &[u8]) -> bool {
        let Repr::Table { members, bytes } = &mut self.repr else {
            return false;
        };
        let h = hash(m);
        if members.find(h, |x| **x == *m).is_some() {
            return false;
        }
        if members.len() == members.capacity() {
            // The insert would rehash inside hashbrown; do it here so the epoch notes it.
            members.reserve(1, rehash);
            self.epoch = self.epoch.wrapping_add(1);
        }
        members.insert_unique(h, m.into(), rehash);
        *bytes += m.len();
        true
    }

    /// Shrinks a table that fell below 1/8 full (redis-server resizes its dicts below 1/10).
    fn maybe_shrink(&mut self) {
        if let Repr::Table { members, .. } = &mut self.repr {
            let buckets = members.num_buckets();
            if buckets > 64 && members.len() * 8 < buckets {
                members.shrink_to(0, rehash);
                self.epoch = self.epoch.wrapping_add(1);
            }
        }
    }

    /// A random occupied slot: an intset position or a table bucket index.
    fn random_slot(&self, rng: &mut Rng) -> Option<usize> {
        match &self.repr {
            Repr::Ints(v) if v.is_empty() => None,
            Repr::Ints(v) => Some(rng.below(v.len())),
            Repr::Table { members, .. } if members.is_empty() => None,
            Repr::Table { members, .. } => {
                let buckets = members.num_buckets();
                loop {
                    let i = rng.below(buckets);
                    if members.get_bucket(i).is_some() {
                        return Some(i);
                    }
                }
            }
        }
    }

    /// Every occupied slot.
    fn slots(&self) -> Vec<usize> {
        match &self.repr {
            Repr::Ints(v) => (0..v.len()).collect(),
            Repr::Table { members, .. } => {
                (0..members.num_buckets()).filter(|&i| members.get_bucket(i).is_some()).collect()
            }
        }
    }

    fn at_slot(&self, slot: usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(v) => v.get(slot).map(|&i| Member::Int(i)),
            Repr::Table { members, .. } => members.get_bucket(slot).map(|b| Member::Bytes(Cow::Borrowed(&b[..]))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(items: &[&str]) -> Set {
        let mut s = Set::default();
        for i in items {
            s.insert(i.as_bytes());
        }
        s
    }

    fn texts(s: &Set) -> Vec<String> {
        s.iter().map(|m| m.with_bytes(|b| String::from_utf8_lossy(b).into_owned())).collect()
    }

    #[test]
    fn encodings_follow_redis_7_0() {
        let mut s = set_of(&["3", "1", "2", "-5"]);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(texts(&s), ["-5", "1", "2", "3"], "intsets iterate ascending");
        // Not canonical integers: leading zero, plus sign, space.
        for odd in ["01", "+1", " 1", "-0"] {
            assert_eq!(set_of(&["1", odd]).encoding(), "hashtable", "{odd}");
        }
        assert!(s.insert(b"a"));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"-5") && s.contains(b"a") && !s.contains(b"4"));
        s.remove(b"a");
        assert_eq!(s.encoding(), "hashtable", "no conversion back on removal");

        let mut big = Set::default();
        for i in 0..MAX_INTSET_ENTRIES as i64 {
            big.insert(i.to_string().as_bytes());
        }
        assert_eq!(big.encoding(), "intset");
        big.insert(b"100000");
        assert_eq!((big.encoding(), big.len()), ("hashtable", MAX_INTSET_ENTRIES + 1));
        assert!(big.contains(b"511") && big.contains(b"100000"));
    }

    #[test]
    fn insert_remove_and_equality() {
        let mut a = set_of(&["x", "y", "1"]);
        assert!(!a.insert(b"x"));
        assert!(a.remove(b"y") && !a.remove(b"y"));
        assert_eq!(a.len(), 2);
        let b: Set = [Member::Int(1), Member::Bytes(Cow::Borrowed(b"x"))].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(set_of(&["1", "2"]), set_of(&["2", "1"]));
        assert_ne!(set_of(&["1", "2"]), set_of(&["1", "3"]));
        assert!(a.heap_bytes() > 0);
        assert_eq!(format_i64(i64::MIN, &mut [0; 20]), b"-9223372036854775808");
    }

    #[test]
    fn table_shrinks_and_stays_consistent() {
        let mut s = Set::default();
        for i in 0..2000 {
            s.insert(format!("m{i}").as_bytes());
        }
        for i in 0..1990 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert_eq!(s.len(), 10);
        let mut rng = Rng::seeded(1);
        for _ in 0..100 {
            let m = s.random(&mut rng).map(|m| m.into_owned());
            assert!(m.is_some_and(|m| s.contains_member(&m)));
        }
    }

    /// Positive counts never repeat and are capped at the size; negative counts may repeat;
    /// every member is drawn about equally often.
    #[test]
    fn sampling_rules_and_distribution() {
        let mut rng = Rng::seeded(42);
        for s in [set_of(&["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]), set_of(&["a", "b", "c", "d", "e"])] {
            let n = s.len();
            for count in 1..=n + 3 {
                let got = s.sample_distinct(count, &mut rng);
                assert_eq!(got.len(), count.min(n));
                let distinct: std::collections::HashSet<_> = got.iter().cloned().collect();
                assert_eq!(distinct.len(), got.len(), "no repeats for count {count}");
                assert!(got.iter().all(|m| s.contains_member(m)));
            }
            let many = s.sample_with_repeats(50, &mut rng);
            assert_eq!(many.len(), 50);
            let distinct: std::collections::HashSet<_> = many.iter().cloned().collect();
            assert!(distinct.len() < many.len(), "50 draws from {n} repeat");

            let draws = 2000 * n;
            let mut hits = std::collections::HashMap::new();
            for m in s.sample_with_repeats(draws, &mut rng) {
                *hits.entry(m).or_insert(0usize) += 1;
            }
            assert_eq!(hits.len(), n);
            assert!(hits.values().all(|&h| h > 1600 && h < 2400), "uniform: {hits:?}");
            // Distinct samples of 2 (the draw-until-distinct path) cover members evenly too.
            let mut hits = std::collections::HashMap::new();
            for _ in 0..1000 * n {
                for m in s.sample_distinct(2, &mut rng) {
                    *hits.entry(m.into_owned()).or_insert(0usize) += 1;
                }
            }
            assert!(hits.values().all(|&h| h > 1600 && h < 2400), "uniform: {hits:?}");
        }
        assert!(Set::default().sample_with_repeats(3, &mut rng).is_empty());
    }

    #[test]
    fn pops_remove_what_they_return() {
        let mut rng = Rng::seeded(7);
        for count in [1, 3, 9] {
            // 3 pops one by one; 9 of 10 rebuilds the set from the one member that stays.
            let mut s = set_of(&["a", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
            let popped = s.pop_many(count, &mut rng);
            assert_eq!((popped.len(), s.len()), (count, 10 - count));
            assert!(popped.iter().all(|m| !s.contains_member(m)));
            let distinct: std::collections::HashSet<_> = popped.iter().cloned().collect();
            assert_eq!(distinct.len(), count);
        }
        let mut s = set_of(&["a", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        let p = s.pop_many(9, &mut rng);
        if !p.iter().any(|m| m.with_bytes(|b| b == b"a")) {
            assert_eq!(s.encoding(), "hashtable", "the 'a' that stayed keeps the table");
        } else {
            assert_eq!(s.encoding(), "intset", "rebuilt from the integer that stayed");
        }
        let mut s = set_of(&["x"]);
        assert_eq!(s.pop(&mut rng), Some(Member::Bytes(Cow::Owned(b"x".to_vec()))));
        assert_eq!(s.pop(&mut rng), None);
    }

    #[test]
    fn scan_returns_every_member_across_rehashes() {
        let mut s = Set::default();
        for i in 0..300 {
            s.insert(format!("k{i}").as_bytes());
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = s.scan(cursor, 10, |m| {
                seen.insert(m.with_bytes(<[u8]>::to_vec));
            });
            step += 1;
            // Grow the table mid-scan: members move, the cursor's epoch goes stale.
            if step == 5 {
                for i in 0..1000 {
                    s.insert(format!("new{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        assert!((0..300).all(|i| seen.contains(format!("k{i}").as_bytes())));
        let ints = set_of(&["5", "1"]);
        let mut got = Vec::new();
        assert_eq!(ints.scan(0, 1, |m| got.push(m.into_owned())), 0);
        assert_eq!(got, [Member::Int(1), Member::Int(5)]);
    }
}
