//! SORT and SORT_RO: sort the elements of a list, set or sorted set, optionally by the values of
//! other keys (`BY pattern`), fetching other keys per element (`GET pattern`), and storing the
//! result as a list (`STORE`, SORT only).
//!
//! ```text
//! SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dst]
//!
//!   parse options ──> lock ──> load elements ──> score / compare keys ──> stable sort ──> window
//!                                 (a nosort list or zset loads only the window, in order)
//!                                                                   └─> reply  or  store a list
//! ```
//!
//! One body, [`sort_generic`], serves both commands, as redis-server's `sortCommandGeneric`
//! does; SORT_RO differs only in refusing STORE (a syntax error, since the option is unknown
//! to it). Semantics are redis-server 7.0.15's, checked side by side against it:
//!
//! - Numeric order by default: each element (or its BY value) is read the way C's `strtod` reads
//!   it ([`strtod_score`]: leading spaces, hex floats, `inf`; an empty string is 0), and anything
//!   else — trailing junk, NaN, overflow, underflow — fails the whole command with "One or more
//!   scores can't be converted into double". Equal scores fall back to the elements' bytes, so
//!   the order is total. A BY key that is missing scores 0.
//! - ALPHA compares bytes. redis-server compares with `strcoll` (bytewise under the C and
//!   C.UTF-8 locales it normally runs in, and stopping at a NUL byte) except with STORE, where
//!   it compares whole strings bytewise; [`Collation`] keeps both. A missing BY value sorts
//!   first.
//! - Ties keep the load order, because glibc's `qsort` (a merge sort) is stable and so is
//!   `sort_by`. One case can differ: redis-server partially sorts (`pqsort`, not stable) when
//!   BY and LIMIT are both given, so ALPHA ties under BY with a LIMIT may come out in another
//!   order there.
//! - A BY pattern without `*` means "don't sort": lists and sorted sets keep their order (DESC
//!   walks it backwards, LIMIT takes a range of it); a set is answered in its iteration order,
//!   except with STORE, where redis-server sorts it ALPHA so replicas store the same list.
//! - Like redis-server, reading a sorted set converts it to the large (`skiplist`) encoding.
//! - LIMIT clamps as redis-server does ([`window`]): a negative offset is 0, a negative count
//!   means "to the end".
//!
//! Locking: BY and GET patterns name keys that are only known once the source has been read,
//! so a SORT that uses a pattern which reads keys locks every shard ([`Engine::lock_all`]) for
//! its duration — atomic like any other command, at the price of stalling the other clients
//! for as long as the sort runs. The road not taken (read the source, compute the keys, lock
//! them, then re-check the source) costs two passes and a retry loop for a command that is
//! rarely on a hot path. A plain SORT locks only its source and destination.

use std::cmp::Ordering;
use std::ops::Range;

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, notify, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::{Engine, Hashed, Locked};
use crate::types::list::{End, List};
use crate::types::Value;

/// This family's table entries, one line per command (kept unwrapped so the table reads as one).
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("sort", -2, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), "generic", "1.0.0", COMPLEXITY, "Sort the elements in a list, set or sorted set", sort).args(SORT_ARGS),
    spec("sort_ro", -2, READONLY | MOVABLE_KEYS, (1, 1, 1), "generic", "7.0.0", COMPLEXITY, "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", sort_ro).args(SORT_RO_ARGS),
];

const COMPLEXITY: &str = "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).";

/// `key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`, shared by both.
macro_rules! sort_ro_args {
    ($($extra:expr),*) => {
        &[
            key("key"),
            pattern("pattern").key_spec(1).token("BY").optional(),
            block("offset_count", &[integer("offset"), integer("count")]).token("LIMIT").optional(),
            pattern("pattern").key_spec(1).token("GET").optional().multiple().multiple_token(),
            oneof("order", &[pure("ASC"), pure("DESC")]).optional(),
            pure("ALPHA").named("sorting").optional(),
            $($extra),*
        ]
    };
}

/// SORT_RO's syntax.
const SORT_RO_ARGS: &[Arg] = sort_ro_args!();
/// SORT's syntax: SORT_RO's plus `[STORE destination]`.
const SORT_ARGS: &[Arg] = sort_ro_args!(key("destination").key_spec(2).token("STORE").optional());

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dst]
fn sort(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    sort_generic(ctx, argv, false)
}

/// SORT_RO: SORT without STORE.
fn sort_ro(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    sort_generic(ctx, argv, true)
}

// ---- patterns -------------------------------------------------------------------------------

/// What a BY or GET pattern reads for one element (redis-server's `lookupKeyByPattern`).
///
/// redis-server looks at patterns as C strings in places (the `#` test, the search for `*` and
/// for `->`) and as whole byte strings in others (the copied prefix, suffix and field); the
/// parse below does the same, so a pattern with a NUL byte behaves as it does there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern<'a> {
    /// `#`: the element itself.
    Element,
    /// No `*`: names no key. As BY it means "don't sort"; as GET it reads nil.
    Constant,
    /// The key `prefix + element + suffix`: its string value, or with `field` (from
    /// `…*…->field`) that field of its hash. Any other type reads as missing.
    Key { prefix: &'a [u8], suffix: &'a [u8], field: Option<&'a [u8]> },
}

impl<'a> Pattern<'a> {
    fn parse(p: &'a [u8]) -> Pattern<'a> {
        let cstr = &p[..p.iter().position(|&c| c == 0).unwrap_or(p.len())];
        if cstr == b"#" {
            return Pattern::Element;
        }
        let Some(star) = cstr.iter().position(|&c| c == b'*') else {
            return Pattern::Constant;
        };
        // The first `->` after the `*` starts the field, if a (C-string) non-empty field follows.
        let after = &cstr[star + 1..];
        let arrow = after.windows(2).position(|w| w == b"->").map(|i| star + 1 + i);
        match arrow {
            Some(f) if f + 2 < cstr.len() => {
                Pattern::Key { prefix: &p[..star], suffix: &p[star + 1..f], field: Some(&p[f + 2..]) }
            }
            _ => Pattern::Key { prefix: &p[..star], suffix: &p[star + 1..], field: None },
        }
    }

    /// True when looking the pattern up reads the keyspace.
    fn reads_keys(&self) -> bool {
        matches!(self, Pattern::Key { .. })
    }

    /// The key this pattern names for `elem`, if any.
    fn key_for(&self, elem: &[u8]) -> Option<Vec<u8>> {
        let Pattern::Key { prefix, suffix, .. } = self else { return None };
        let mut k = Vec::with_capacity(prefix.len() + elem.len() + suffix.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(elem);
        k.extend_from_slice(suffix);
        Some(k)
    }

    /// Runs `f` on what the pattern reads for `elem` (None: nothing). Reads count as keyspace
    /// hits or misses, as redis-server's `lookupKeyRead` does; the caller holds every shard the
    /// key could be in (see the module docs on locking).
    fn with_value<R>(
        &self,
        l: &mut Locked<'_>,
        db: usize,
        now: u64,
        elem: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> R {
        let key = match self {
            Pattern::Element => return f(Some(elem)),
            Pattern::Constant => return f(None),
            Pattern::Key { .. } => self.key_for(elem).unwrap_or_default(),
        };
        let field = match self {
            Pattern::Key { field, .. } => *field,
            _ => None,
        };
        let k = l.engine().hashed(&key);
        match (l.read(db, &k, now).map(|e| &e.value), field) {
            (Some(Value::Str(s)), None) => f(Some(s)),
            (Some(Value::Hash(h)), Some(field)) => f(h.get(field)),
            _ => f(None),
        }
    }
}

// ---- options --------------------------------------------------------------------------------

/// The parsed options of one SORT / SORT_RO.
#[derive(Debug)]
struct SortOpts<'a> {
    /// The last BY pattern given.
    by: Option<Pattern<'a>>,
    /// Some BY pattern had no `*`. Sticky, as in redis-server: a later BY with a `*` does not
    /// bring sorting back.
    dontsort: bool,
    /// LIMIT offset and count as given (default 0, -1: everything).
    offset: i64,
    count: i64,
    /// GET patterns, in order.
    gets: Vec<Pattern<'a>>,
    desc: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

impl<'a> SortOpts<'a> {
    /// Parses the options after the key, with redis-server's errors: an unknown word, an option
    /// missing its arguments, or STORE in SORT_RO is a syntax error; a LIMIT argument that is
    /// not an integer is "value is not an integer". Later options override earlier ones.
    fn parse(args: &[&'a [u8]], readonly: bool) -> Result<SortOpts<'a>, CmdError> {
        let mut o = SortOpts {
            by: None,
            dontsort: false,
            offset: 0,
            count: -1,
            gets: Vec::new(),
            desc: false,
            alpha: false,
            store: None,
        };
        let mut j = 0;
        while j < args.len() {
            let (a, left) = (args[j], args.len() - j - 1);
            if is(a, "asc") {
                o.desc = false;
            } else if is(a, "desc") {
                o.desc = true;
            } else if is(a, "alpha") {
                o.alpha = true;
            } else if is(a, "limit") && left >= 2 {
                o.offset = int_arg(args[j + 1])?;
                o.count = int_arg(args[j + 2])?;
                j += 2;
            } else if !readonly && is(a, "store") && left >= 1 {
                o.store = Some(args[j + 1]);
                j += 1;
            } else if is(a, "by") && left >= 1 {
                let p = Pattern::parse(args[j + 1]);
                o.dontsort |= p == Pattern::Constant || p == Pattern::Element;
                o.by = Some(p);
                j += 1;
            } else if is(a, "get") && left >= 1 {
                o.gets.push(Pattern::parse(args[j + 1]));
                j += 1;
            } else {
                return Err(CmdError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    /// True when a BY or GET lookup may read a key other than the source.
    fn reads_other_keys(&self) -> bool {
        let by = !self.dontsort && self.by.is_some_and(|p| p.reads_keys());
        by || self.gets.iter().any(Pattern::reads_keys)
    }
}

/// The positions LIMIT selects among `len` elements, clamped exactly as redis-server 7.0.15
/// clamps them (offset into `[0, len]`, count into `[-1, len]`, -1 meaning "the rest").
fn window(len: usize, offset: i64, count: i64) -> Range<usize> {
    let n = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = offset.clamp(0, n);
    let count = count.clamp(-1, n);
    let mut end = if count < 0 { n - 1 } else { start + count - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    end = end.min(n - 1);
    if end < start {
        0..0
    } else {
        start as usize..end as usize + 1
    }
}

// ---- scores and comparison ------------------------------------------------------------------

/// Reads `raw` as `strtod` does in redis-server's SORT, where the whole (C) string must convert
/// and overflow, underflow (ERANGE) and NaN are refused. None: not a valid score.
///
/// What that accepts, and Rust's `f64::from_str` does not, or the reverse: leading white space;
/// an empty string (no conversion, and the end pointer is at the terminator: 0); text after a
/// NUL byte (ignored); hex floats (`0x1.8p1`); `inf`/`infinity` in any case. A decimal that
/// rounds into the subnormal range counts as underflow, as glibc reports it.
fn strtod_score(raw: &[u8]) -> Option<f64> {
    let s = &raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())];
    if s.is_empty() {
        return Some(0.0);
    }
    let body = &s[s.iter().position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?..];
    let (neg, u) = match body.first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let v = if u.eq_ignore_ascii_case(b"inf") || u.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else if u.len() > 2 && u[0] == b'0' && (u[1] | 0x20) == b'x' {
        hex_float(&u[2..])?
    } else {
        decimal_float(u)?
    };
    Some(if neg { -v } else { v })
}

/// A number's text split at its parts (digits only, as [`split_number`] checked them).
struct Parts<'a> {
    int: &'a [u8],
    frac: &'a [u8],
    /// The exponent after its marker, sign included.
    exp: Option<&'a [u8]>,
}

/// Splits `s` into `mantissa [exponent]` where the mantissa is digits with at most one `.` and
/// at least one digit, and the exponent `e`/`p` (`marker`) with an optional sign and digits.
/// None when anything is left over (what `strtod` would stop at).
fn split_number(s: &[u8], digit: fn(&u8) -> bool, marker: u8) -> Option<Parts<'_>> {
    let int_len = s.iter().take_while(|c| digit(c)).count();
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.split_first() {
        Some((b'.', r)) => {
            let n = r.iter().take_while(|c| digit(c)).count();
            r.split_at(n)
        }
        _ => (&[][..], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp = match rest.split_first() {
        None => None,
        Some((m, r)) if (m | 0x20) == marker => {
            let digits = r.strip_prefix(b"-").or_else(|| r.strip_prefix(b"+")).unwrap_or(r);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(r)
        }
        Some(_) => return None,
    };
    Some(Parts { int, frac, exp })
}

/// A decimal float in full (see [`strtod_score`]); None on bad syntax or ERANGE.
fn decimal_float(u: &[u8]) -> Option<f64> {
    let Parts { int, frac, .. } = split_number(u, u8::is_ascii_digit, b'e')?;
    // The syntax was checked above, so this is plain ASCII Rust parses the same way.
    let v: f64 = std::str::from_utf8(u).ok()?.parse().ok()?;
    let nonzero = int.iter().chain(frac).any(|&c| c != b'0');
    let underflow = nonzero && v.abs() < f64::MIN_POSITIVE;
    (v.is_finite() && !underflow).then_some(v)
}

/// A hex float's digits after `0x` (see [`strtod_score`]); None on bad syntax or ERANGE.
fn hex_float(h: &[u8]) -> Option<f64> {
    let Parts { int, frac, exp } = split_number(h, u8::is_ascii_hexdigit, b'p')?;
    let hex = |c: u8| u128::from((c as char).to_digit(16).unwrap_or(0));
    // Keep 124 bits of mantissa (more than an f64 needs); later digits only shift the exponent
    // and make the value inexact.
    let (mut mant, mut exp2, mut lost) = (0u128, 0i64, false);
    for &c in int {
        if mant >> 120 == 0 {
            mant = mant * 16 + hex(c);
        } else {
            exp2 += 4;
            lost |= hex(c) != 0;
        }
    }
    for &c in frac {
        if mant >> 120 == 0 {
            mant = mant * 16 + hex(c);
            exp2 -= 4;
        } else {
            lost |= hex(c) != 0;
        }
    }
    if let Some(e) = exp {
        let (neg, digits) = match e.split_first() {
            Some((b'-', d)) => (true, d),
            Some((b'+', d)) => (false, d),
            _ => (false, e),
        };
        // Saturate far beyond any finite double's range; the result is then 0 or inf anyway.
        let v = digits.iter().fold(0i64, |v, &c| (v * 10 + i64::from(c - b'0')).min(1 << 40));
        exp2 += if neg { -v } else { v };
    }
    if mant == 0 {
        return Some(0.0);
    }
    let m = mant as f64;
    let v = scale2(m, exp2);
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    if v.abs() < f64::MIN_POSITIVE {
        // Subnormal: ERANGE only if bits were lost on the way.
        let exact = !lost && m as u128 == mant && scale2(v, -exp2) == m;
        return exact.then_some(v);
    }
    Some(v)
}

/// `x * 2^e`, in steps small enough that only the last one can round (for x >= 1 going down,
/// or a subnormal going up).
fn scale2(mut x: f64, mut e: i64) -> f64 {
    while e.abs() > 1000 && x != 0.0 && x.is_finite() {
        let step = e.signum() * 1000;
        x *= 2f64.powi(step as i32);
        e -= step;
    }
    x * 2f64.powi(e as i32)
}

/// How ALPHA compares two strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collation {
    /// Whole byte strings (redis-server with STORE, `compareStringObjects`).
    Binary,
    /// Up to the first NUL byte, as `strcoll` in the C / C.UTF-8 locale sees a C string.
    CString,
}

impl Collation {
    fn cmp(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Collation::Binary => a.cmp(b),
            Collation::CString => {
                let c = |s: &[u8]| s.iter().position(|&c| c == 0).unwrap_or(s.len());
                a[..c(a)].cmp(&b[..c(b)])
            }
        }
    }
}

/// One element to sort, with what it sorts by.
struct Item {
    elem: Vec<u8>,
    /// Numeric order: the element's or its BY value's score (0 when the BY key is missing).
    score: f64,
    /// ALPHA order with BY: the BY value (None when missing, which sorts first).
    by: Option<Vec<u8>>,
}

/// The order of one sort: what is compared, and how.
#[derive(Debug, Clone, Copy)]
struct Order {
    alpha: bool,
    by: bool,
    desc: bool,
    collation: Collation,
}

impl Order {
    /// redis-server's `sortCompare`.
    fn cmp(&self, a: &Item, b: &Item) -> Ordering {
        let c = if !self.alpha {
            // Scores are never NaN (refused when read).
            a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
        } else if self.by {
            match (&a.by, &b.by) {
                (Some(x), Some(y)) => self.collation.cmp(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        } else {
            self.collation.cmp(&a.elem, &b.elem)
        };
        if self.desc {
            c.reverse()
        } else {
            c
        }
    }
}

// ---- the command ----------------------------------------------------------------------------

/// The source's elements as loaded, and the positions of them the reply covers.
struct Loaded {
    items: Vec<Item>,
    window: Range<usize>,
}

fn item(elem: &[u8]) -> Item {
    Item { elem: elem.to_vec(), score: 0.0, by: None }
}

/// Reads the source under the held lock: every element, or for a nosort list or sorted set only
/// the LIMIT window, in order (backwards for DESC), as redis-server loads them. Also applies
/// redis-server's rule that a nosort set with STORE is sorted ALPHA instead.
fn load(l: &mut Locked<'_>, db: usize, now: u64, src: &Hashed<'_>, o: &mut SortOpts<'_>) -> Result<Loaded, CmdError> {
    let Some(entry) = l.read(db, src, now) else {
        return Ok(Loaded { items: Vec::new(), window: 0..0 });
    };
    let value = &mut entry.value;
    if let Value::Set(_) = value {
        if o.dontsort && o.store.is_some() {
            o.dontsort = false;
            o.alpha = true;
            o.by = None;
        }
    }
    let (items, window) = match value {
        Value::List(list) => {
            let w = window(list.len(), o.offset, o.count);
            if o.dontsort {
                let (skip, n) = (w.start, w.len());
                let items: Vec<Item> = if o.desc {
                    list.iter().rev().skip(skip).take(n).map(item).collect()
                } else {
                    list.iter_from(skip).take(n).map(item).collect()
                };
                (items, 0..n)
            } else {
                (list.iter().map(item).collect(), w)
            }
        }
        Value::ZSet(z) => {
            z.make_large();
            let w = window(z.len(), o.offset, o.count);
            if o.dontsort {
                let n = w.len();
                let items: Vec<Item> = match (n, o.desc) {
                    (0, _) => Vec::new(),
                    (_, true) => z.iter_rev_from(z.len() - 1 - w.start).take(n).map(|(m, _)| item(m)).collect(),
                    (_, false) => z.iter_from(w.start).take(n).map(|(m, _)| item(m)).collect(),
                };
                (items, 0..n)
            } else {
                (z.iter().map(|(m, _)| item(m)).collect(), w)
            }
        }
        Value::Set(s) => {
            let items: Vec<Item> = s.iter().map(|m| m.with_bytes(item)).collect();
            let w = window(items.len(), o.offset, o.count);
            (items, w)
        }
        Value::Str(_) | Value::Hash(_) => return Err(CmdError::WrongType),
    };
    Ok(Loaded { items, window })
}

/// Fills in what each item sorts by and sorts them; Err when a score does not convert (every
/// score is still read first, so the keyspace sees the same reads as in redis-server).
fn sort_items(l: &mut Locked<'_>, db: usize, now: u64, items: &mut [Item], o: &SortOpts<'_>) -> Result<(), CmdError> {
    let by = o.by.filter(|p| p.reads_keys());
    let mut bad = false;
    for it in items.iter_mut() {
        match (by, o.alpha) {
            (Some(p), true) => it.by = p.with_value(l, db, now, &it.elem, |v| v.map(<[u8]>::to_vec)),
            (Some(p), false) => match p.with_value(l, db, now, &it.elem, |v| v.map(strtod_score)) {
                Some(Some(s)) => it.score = s,
                Some(None) => bad = true,
                None => {}
            },
            (None, true) => {}
            (None, false) => match strtod_score(&it.elem) {
                Some(s) => it.score = s,
                None => bad = true,
            },
        }
    }
    if bad {
        return Err(CmdError::err("ERR One or more scores can't be converted into double"));
    }
    let collation = if o.store.is_some() { Collation::Binary } else { Collation::CString };
    let order = Order { alpha: o.alpha, by: by.is_some(), desc: o.desc, collation };
    items.sort_by(|a, b| order.cmp(a, b));
    Ok(())
}

/// One body for SORT and SORT_RO (`readonly`: STORE is not an option).
fn sort_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, readonly: bool) -> Result<(), CmdError> {
    let args: Vec<&[u8]> = argv.rest(2).collect();
    let mut o = SortOpts::parse(&args, readonly)?;
    let (engine, db, now): (&Engine, _, _) = (ctx.engine(), ctx.session.db, ctx.now);
    let src = engine.hashed(argv.get(1));
    let dst = o.store.map(|d| engine.hashed(d));
    let mut l = if o.reads_other_keys() {
        engine.lock_all()
    } else {
        let mut keys = vec![src];
        keys.extend(dst);
        engine.lock(&keys)
    };
    let Loaded { mut items, window } = load(&mut l, db, now, &src, &mut o)?;
    if !o.dontsort {
        sort_items(&mut l, db, now, &mut items, &o)?;
    }
    let selected = &items[window];
    let per_item = o.gets.len().max(1);
    let count = selected.len() * per_item;
    match &dst {
        None => {
            ctx.out.array(count);
            for it in selected {
                if o.gets.is_empty() {
                    ctx.out.bulk(&it.elem);
                }
                for p in &o.gets {
                    let out = &mut ctx.out;
                    p.with_value(&mut l, db, now, &it.elem, |v| match v {
                        Some(b) => out.bulk(b),
                        None => out.null(),
                    });
                }
            }
        }
        Some(d) => {
            // A GET that reads nothing stores an empty string, as redis-server does.
            let mut list = List::default();
            for it in selected {
                if o.gets.is_empty() {
                    list.push(End::Tail, &it.elem);
                }
                for p in &o.gets {
                    p.with_value(&mut l, db, now, &it.elem, |v| list.push(End::Tail, v.unwrap_or_default()));
                }
            }
            if count > 0 {
                l.set(db, d, Value::List(list.into()), None, 0, false, now);
                ctx.notify(notify::LIST, "sortstore", d.key);
            } else if l.delete(db, d, now) {
                ctx.notify(notify::GENERIC, "del", d.key);
            }
            ctx.out.int(count as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_as_redis_reads_them() {
        assert_eq!(Pattern::parse(b"#"), Pattern::Element);
        assert_eq!(Pattern::parse(b"#\0x"), Pattern::Element, "C-string test");
        assert_eq!(Pattern::parse(b"nosort"), Pattern::Constant);
        assert_eq!(Pattern::parse(b"a\0*"), Pattern::Constant, "a * after a NUL is not seen");
        assert_eq!(Pattern::parse(b"w_*"), Pattern::Key { prefix: b"w_", suffix: b"", field: None });
        assert_eq!(Pattern::parse(b"h*x->f"), Pattern::Key { prefix: b"h", suffix: b"x", field: Some(b"f") });
        assert_eq!(Pattern::parse(b"h*->a->b"), Pattern::Key { prefix: b"h", suffix: b"", field: Some(b"a->b") });
        assert_eq!(Pattern::parse(b"h*->"), Pattern::Key { prefix: b"h", suffix: b"->", field: None });
        assert_eq!(Pattern::parse(b"->*"), Pattern::Key { prefix: b"->", suffix: b"", field: None });
        assert_eq!(Pattern::parse(b"*-*").key_for(b"e"), Some(b"e-*".to_vec()), "only the first * is replaced");
    }

    #[test]
    fn options_parse_with_redis_errors() {
        let p = |a: &[&'static str], ro| {
            let v: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
            SortOpts::parse(&v, ro).map(|o| (o.offset, o.count, o.desc, o.alpha, o.dontsort, o.gets.len(), o.store))
        };
        assert_eq!(p(&["limit", "1", "2", "DESC", "alpha"], false), Ok((1, 2, true, true, false, 0, None)));
        assert_eq!(p(&["desc", "asc", "get", "#", "GET", "x"], false), Ok((0, -1, false, false, false, 2, None)));
        assert_eq!(p(&["by", "nosort", "by", "w_*"], false).map(|o| o.4), Ok(true), "nosort is sticky");
        assert_eq!(p(&["store", "d"], false).map(|o| o.6), Ok(Some(&b"d"[..])));
        assert_eq!(p(&["store", "d"], true), Err(CmdError::Syntax));
        assert_eq!(p(&["limit", "1"], false), Err(CmdError::Syntax));
        assert_eq!(p(&["limit", "x", "1"], false), Err(CmdError::NotInteger));
        assert_eq!(p(&["by"], false), Err(CmdError::Syntax));
        assert_eq!(p(&["bogus"], false), Err(CmdError::Syntax));
    }

    #[test]
    fn limit_window_clamps_like_redis() {
        assert_eq!(window(5, 0, -1), 0..5);
        assert_eq!(window(5, 1, 2), 1..3);
        assert_eq!(window(5, -3, 2), 0..2);
        assert_eq!(window(5, 3, 100), 3..5);
        assert_eq!(window(5, 5, 1), 0..0);
        assert_eq!(window(5, 2, 0), 0..0);
        assert_eq!(window(5, 2, -7), 2..5);
        assert_eq!(window(5, i64::MAX, i64::MAX), 0..0);
        assert_eq!(window(5, 4, i64::MAX), 4..5);
        assert_eq!(window(0, 0, -1), 0..0);
    }

    #[test]
    fn scores_read_like_strtod() {
        let ok = |s: &str| strtod_score(s.as_bytes());
        assert_eq!(ok(""), Some(0.0));
        assert_eq!(ok(" \t5"), Some(5.0));
        assert_eq!(ok("+3"), Some(3.0));
        assert_eq!(ok(".5"), Some(0.5));
        assert_eq!(ok("5."), Some(5.0));
        assert_eq!(ok("-1.5e2"), Some(-150.0));
        assert_eq!(ok("0x10"), Some(16.0));
        assert_eq!(ok("0x1.8p1"), Some(3.0));
        assert_eq!(ok("-0X.8"), Some(-0.5));
        assert_eq!(ok("0x1p-1074"), Some(f64::from_bits(1)), "exact subnormal is fine");
        assert_eq!(ok("inf"), Some(f64::INFINITY));
        assert_eq!(ok("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod_score(b"7\0junk"), Some(7.0));
        assert_eq!(ok("0e999999"), Some(0.0));
        for bad in [
            "5 ",
            " ",
            "1e",
            "1e+",
            "nan",
            "NaN",
            "0x",
            "0x1p",
            "1e400",
            "1e-400",
            "1e-310",
            "0x1p2000",
            "1_0",
            "--1",
            ".",
            "e5",
            "infx",
            "0x1p-1080",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn collation_and_order() {
        assert_eq!(Collation::CString.cmp(b"a\0b", b"a\0a"), Ordering::Equal);
        assert_eq!(Collation::Binary.cmp(b"a\0b", b"a\0a"), Ordering::Greater);
        let it = |e: &str, score: f64, by: Option<&str>| Item { elem: e.into(), score, by: by.map(Into::into) };
        let num = Order { alpha: false, by: false, desc: false, collation: Collation::CString };
        assert_eq!(num.cmp(&it("b", 1.0, None), &it("a", 1.0, None)), Ordering::Greater, "ties by element");
        let by = Order { alpha: true, by: true, desc: true, collation: Collation::CString };
        assert_eq!(by.cmp(&it("a", 0.0, None), &it("b", 0.0, Some(""))), Ordering::Greater, "missing first, reversed");
    }

    #[test]
    fn table_entries() {
        assert!(COMMANDS.iter().all(|s| s.group == "generic" && (s.arity, s.first_key, s.last_key) == (-2, 1, 1)));
        assert_eq!(SORT_ARGS.len(), SORT_RO_ARGS.len() + 1);
    }
}
