//! Per-command statistics, error counts, the slow log and the latency monitor: the data behind
//! INFO commandstats / errorstats / latencystats, SLOWLOG and LATENCY.
//!
//! The hot path is [`Stats::record`], run once per command. It must not take a lock shared by
//! threads, so every worker owns a *slot*: one row of counters per command (calls, time, failed
//! and rejected calls, and a latency histogram). A slot has one writer — the worker thread that
//! set it with [`set_thread_slot`] — which updates it with relaxed loads and stores instead of
//! atomic read-modify-writes (no `lock` prefix, no cache line shared with another writer).
//! Readers (INFO, LATENCY HISTOGRAM) sum the slots; they may see a command's calls a moment
//! before its time, which reporting tolerates. Threads that are not workers (unit tests) share
//! one spare slot and may lose a count in a race; nothing there is exact by contract.
//!
//! Commands are timed with [`Stats::clock`] (see there for why not `Instant`).
//!
//! The histogram is log-linear: each power of two of nanoseconds is cut in 8 equal buckets, so a
//! percentile is known to within 12.5%, and powers of two (which LATENCY HISTOGRAM reports) are
//! bucket boundaries. Errors, slow-log entries and latency samples are rare by nature and go
//! through mutexes.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::config::Config;

/// Bits of sub-bucket precision per power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// The largest power of two (in ns) with buckets of its own: 2^40 ns is about 18 minutes.
const MAX_EXP: u32 = 40;
/// Histogram buckets per command.
pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) * SUB as usize;
/// Distinct error codes counted before new ones are ignored (redis-server stops at 128 too).
const ERROR_CODES_MAX: usize = 128;
/// Latency samples kept per event, one per second at most (redis-server keeps 160).
const LATENCY_SAMPLES: usize = 160;

/// The histogram bucket of a duration in nanoseconds.
pub fn bucket(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros();
    if e > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (ns >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The largest duration (ns) that falls in bucket `idx`.
pub fn bucket_high(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < SUB {
        return idx;
    }
    let e = (idx / SUB) as u32 + SUB_BITS - 1;
    let low = (SUB + idx % SUB) << (e - SUB_BITS);
    low + (1u64 << (e - SUB_BITS)) - 1
}

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Makes the calling thread the writer of slot `slot` (a worker's index).
pub fn set_thread_slot(slot: usize) {
    SLOT.with(|s| s.set(slot));
}

/// One command's counters in one slot.
struct CmdCounters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Allocated on the command's first call in this slot, so the commands a server never
    /// runs cost no histogram memory (1.2 KB each per worker).
    hist: OnceLock<Box<[AtomicU32]>>,
}

impl CmdCounters {
    fn new() -> CmdCounters {
        CmdCounters {
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: OnceLock::new(),
        }
    }
}

/// Single-writer increment: see the module documentation.
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

/// Summed counters of one command, for reports.
#[derive(Debug, Clone, Default)]
pub struct CmdTotals {
    /// Completed calls.
    pub calls: u64,
    /// Total time, microseconds.
    pub usec: u64,
    /// Refused before running (wrong arity …).
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
    /// Histogram counts by bucket (empty when latency tracking recorded nothing).
    pub hist: Vec<u64>,
}

impl CmdTotals {
    /// The duration (µs, fractional) under which `pct` percent of the calls fall.
    pub fn percentile_us(&self, pct: f64) -> f64 {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = ((pct / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                return bucket_high(i) as f64 / 1000.0;
            }
        }
        0.0
    }

    /// Cumulative counts at power-of-two bounds from 1024 ns, as LATENCY HISTOGRAM reports
    /// them: (bound in µs, calls at or under it), only where the count grew.
    pub fn power_of_two_buckets(&self) -> Vec<(u64, u64)> {
        let total: u64 = self.hist.iter().sum();
        let mut out = Vec::new();
        let (mut seen, mut reported, mut idx) = (0u64, 0u64, 0usize);
        let mut bound: u64 = 1024;
        while reported < total && idx < self.hist.len() {
            while idx < self.hist.len() && bucket_high(idx) < bound {
                seen += self.hist[idx];
                idx += 1;
            }
            if seen > reported {
                out.push((bound / 1000, seen));
                reported = seen;
            }
            bound = bound.saturating_mul(2);
        }
        out
    }
}

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    /// Increasing id.
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: u64,
    /// Duration in microseconds.
    pub micros: u64,
    /// The arguments, already shortened as redis-server shortens them.
    pub args: Vec<Vec<u8>>,
    /// Client `ip:port`.
    pub peer: String,
    /// Client name.
    pub name: Vec<u8>,
}

/// The slow log, newest entry first.
#[derive(Default)]
pub struct SlowLog {
    /// Entries, newest at the front.
    pub entries: VecDeque<SlowEntry>,
    next_id: u64,
}

/// Largest number of arguments an entry keeps, and bytes per argument (redis-server's limits).
const SLOWLOG_ARGS: usize = 32;
const SLOWLOG_ARG_BYTES: usize = 128;

impl SlowLog {
    /// Adds an entry, shortening the arguments, and drops the oldest beyond `max_len`.
    pub fn push(&mut self, args: &mut dyn Iterator<Item = &[u8]>, argc: usize, e: SlowEntry, max_len: usize) {
        let mut kept = Vec::with_capacity(argc.min(SLOWLOG_ARGS));
        let shown = if argc > SLOWLOG_ARGS { SLOWLOG_ARGS - 1 } else { argc };
        for a in args.take(shown) {
            if a.len() > SLOWLOG_ARG_BYTES {
                let mut s = a[..SLOWLOG_ARG_BYTES].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", a.len() - SLOWLOG_ARG_BYTES).as_bytes());
                kept.push(s);
            } else {
                kept.push(a.to_vec());
            }
        }
        if argc > SLOWLOG_ARGS {
            kept.push(format!("... ({} more arguments)", argc - shown).into_bytes());
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(SlowEntry { id, args: kept, ..e });
        self.entries.truncate(max_len);
    }

    /// Empties the log (ids keep increasing, as in redis-server).
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// One latency monitor event's samples.
#[derive(Debug, Default, Clone)]
pub struct LatencyEvent {
    /// (unix seconds, milliseconds), oldest first; one per second, the worst of that second.
    pub samples: VecDeque<(u64, u64)>,
    /// Worst latency ever seen for the event (ms).
    pub max: u64,
}

/// The latency monitor: events by name.
#[derive(Default)]
pub struct Latency {
    /// Events with at least one sample.
    pub events: BTreeMap<&'static str, LatencyEvent>,
}

impl Latency {
    /// Records `ms` for `event` at `now` (unix seconds).
    pub fn add(&mut self, event: &'static str, now: u64, ms: u64) {
        let ev = self.events.entry(event).or_default();
        ev.max = ev.max.max(ms);
        match ev.samples.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => {
                ev.samples.push_back((now, ms));
                if ev.samples.len() > LATENCY_SAMPLES {
                    ev.samples.pop_front();
                }
            }
        }
    }
}

/// See the module documentation.
pub struct Stats {
    /// The clock commands are timed with: a calibrated TSC where the CPU has an invariant one
    /// (a start/end pair costs a third of two `Instant::now()` calls), the OS clock otherwise.
    pub clock: quanta::Clock,
    slots: Vec<Box<[CmdCounters]>>,
    errors: Mutex<BTreeMap<String, u64>>,
    total_errors: AtomicU64,
    /// The slow log.
    pub slowlog: Mutex<SlowLog>,
    /// The latency monitor.
    pub latency: Mutex<Latency>,
    /// Copies of the configuration the hot path reads, kept in step by [`Stats::sync_config`].
    slower_than: AtomicI64,
    slowlog_max: AtomicU64,
    latency_threshold: AtomicU64,
    tracking: AtomicBool,
}

impl Stats {
    /// Counters for `commands` commands and `workers` worker slots (plus one spare slot).
    pub fn new(commands: usize, workers: usize, cfg: &Config) -> Stats {
        let slots = (0..=workers).map(|_| (0..commands).map(|_| CmdCounters::new()).collect()).collect();
        let s = Stats {
            clock: quanta::Clock::new(),
            slots,
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
            slowlog: Mutex::new(SlowLog::default()),
            latency: Mutex::new(Latency::default()),
            slower_than: AtomicI64::new(-1),
            slowlog_max: AtomicU64::new(0),
            latency_threshold: AtomicU64::new(0),
            tracking: AtomicBool::new(true),
        };
        s.sync_config(cfg);
        s
    }

    /// Takes the directives the hot path needs from the configuration (after CONFIG SET).
    pub fn sync_config(&self, cfg: &Config) {
        self.slower_than.store(cfg.slowlog_log_slower_than, Ordering::Relaxed);
        self.slowlog_max.store(cfg.slowlog_max_len, Ordering::Relaxed);
        self.latency_threshold.store(cfg.latency_monitor_threshold, Ordering::Relaxed);
        self.tracking.store(cfg.latency_tracking, Ordering::Relaxed);
        let max = usize::try_from(cfg.slowlog_max_len).unwrap_or(usize::MAX);
        self.slowlog.lock().unwrap_or_else(|p| p.into_inner()).entries.truncate(max);
    }

    fn slot(&self) -> &[CmdCounters] {
        let i = SLOT.with(Cell::get).min(self.slots.len() - 1);
        &self.slots[i]
    }

    /// Counts one completed call of command `idx` that took `nanos`.
    pub fn record(&self, idx: usize, nanos: u64, failed: bool) {
        let Some(c) = self.slot().get(idx) else { return };
        bump(&c.calls, 1);
        bump(&c.nanos, nanos);
        if failed {
            bump(&c.failed, 1);
        }
        if self.tracking.load(Ordering::Relaxed) {
            let hist = c.hist.get_or_init(|| (0..BUCKETS).map(|_| AtomicU32::new(0)).collect());
            let h = &hist[bucket(nanos)];
            h.store(h.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// Counts a call of command `idx` refused before it ran.
    pub fn rejected(&self, idx: usize) {
        if let Some(c) = self.slot().get(idx) {
            bump(&c.rejected, 1);
        }
    }

    /// Counts an error reply by its code (the first word: `ERR`, `WRONGTYPE` …).
    pub fn error(&self, message: &str) {
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        let code = message.split(' ').next().unwrap_or("");
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < ERROR_CODES_MAX {
            errors.insert(code.to_owned(), 1);
        }
    }

    /// Error replies sent since start (INFO stats `total_error_replies`).
    pub fn total_errors(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// Error counts by code, sorted by code.
    pub fn error_counts(&self) -> Vec<(String, u64)> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Command `idx`'s counters summed over all slots; `hist` only when `with_hist`.
    pub fn totals(&self, idx: usize, with_hist: bool) -> CmdTotals {
        let mut t = CmdTotals::default();
        let mut nanos = 0u64;
        if with_hist {
            t.hist = vec![0; BUCKETS];
        }
        for slot in &self.slots {
            let Some(c) = slot.get(idx) else { continue };
            t.calls += c.calls.load(Ordering::Relaxed);
            nanos += c.nanos.load(Ordering::Relaxed);
            t.rejected += c.rejected.load(Ordering::Relaxed);
            t.failed += c.failed.load(Ordering::Relaxed);
            if let (true, Some(hist)) = (with_hist, c.hist.get()) {
                for (acc, h) in t.hist.iter_mut().zip(hist.iter()) {
                    *acc += u64::from(h.load(Ordering::Relaxed));
                }
            }
        }
        t.usec = nanos / 1000;
        t
    }

    /// Forgets every count (CONFIG RESETSTAT). Racing writers may keep a count or two.
    pub fn reset(&self) {
        for slot in &self.slots {
            for c in slot.iter() {
                for a in [&c.calls, &c.nanos, &c.rejected, &c.failed] {
                    a.store(0, Ordering::Relaxed);
                }
                for h in c.hist.get().map_or(&[][..], |h| &h[..]) {
                    h.store(0, Ordering::Relaxed);
                }
            }
        }
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// `slowlog-log-slower-than` (µs; negative: off).
    pub fn slower_than(&self) -> i64 {
        self.slower_than.load(Ordering::Relaxed)
    }

    /// `slowlog-max-len`.
    pub fn slowlog_max(&self) -> usize {
        usize::try_from(self.slowlog_max.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// `latency-monitor-threshold` (ms; 0: off).
    pub fn latency_threshold(&self) -> u64 {
        self.latency_threshold.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_cover_their_values() {
        let mut prev = 0;
        for ns in (0..5000u64).chain([1 << 20, (1 << 20) + 1, 123_456_789, 1 << 40, u64::MAX]) {
            let b = bucket(ns);
            assert!(b < BUCKETS);
            assert!(b >= prev || ns > 5000, "monotonic");
            prev = b;
            if b < BUCKETS - 1 {
                assert!(bucket_high(b) >= ns, "{ns} in bucket {b} with high {}", bucket_high(b));
                assert!(b == 0 || bucket_high(b - 1) < ns);
            }
        }
        for e in 3..=MAX_EXP {
            assert_eq!(bucket_high(bucket(1 << e) - 1), (1 << e) - 1, "powers of two are boundaries");
        }
    }

    #[test]
    fn percentiles_and_power_of_two_buckets() {
        let mut t = CmdTotals { hist: vec![0; BUCKETS], ..Default::default() };
        for ns in [500, 1500, 1500, 3000, 100_000] {
            t.hist[bucket(ns)] += 1;
        }
        assert_eq!(t.power_of_two_buckets(), vec![(1, 1), (2, 3), (4, 4), (131, 5)]);
        assert!((t.percentile_us(50.0) - 1.535).abs() < 0.01, "{}", t.percentile_us(50.0));
        assert!(t.percentile_us(100.0) >= 100.0);
    }

    #[test]
    fn slowlog_shortens_as_redis_does() {
        let mut log = SlowLog::default();
        let long = [b'x'; 200];
        let args: Vec<&[u8]> = (0..40).map(|_| &long[..]).collect();
        let e = SlowEntry { id: 0, time: 1, micros: 2, args: vec![], peer: "a".into(), name: vec![] };
        log.push(&mut args.iter().copied(), args.len(), e.clone(), 2);
        let got = &log.entries[0].args;
        assert_eq!(got.len(), 32);
        assert!(got[0].ends_with(b"... (72 more bytes)") && got[0].len() == 128 + 19);
        assert_eq!(got[31], b"... (9 more arguments)");
        log.push(&mut std::iter::empty(), 0, e.clone(), 2);
        log.push(&mut std::iter::empty(), 0, e, 2);
        assert_eq!(log.entries.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 1]);
    }
}
