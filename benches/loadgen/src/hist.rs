//! A fixed-size log-linear latency histogram (the HdrHistogram idea, in a few lines).
//!
//! Values below 256 ns get a bucket each; above that every power of two is split into 128
//! buckets, so a reported percentile is at most 1/128 (< 0.8 %) above the true value, for any
//! value up to u64::MAX, in 7,424 counters (58 KiB). Recording is a `leading_zeros`, a shift
//! and an increment — cheap enough to do for every reply. The road not taken: keeping every
//! sample and sorting, which costs memory proportional to the run and a sort at the end.

/// Values below `1 << SUB_BITS` are stored exactly.
const SUB_BITS: u32 = 8;
/// Buckets per power of two above the exact range.
const HALF: usize = 1 << (SUB_BITS - 1);
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * HALF + HALF;

/// Counts of latencies in nanoseconds.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, sum: 0, max: 0 }
    }
}

fn index(v: u64) -> usize {
    if v < 1 << SUB_BITS {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - (SUB_BITS - 1);
    // The top SUB_BITS bits of v, in [HALF, 2 * HALF).
    let mantissa = (v >> shift) as usize;
    ((shift as usize) << (SUB_BITS - 1)) + mantissa
}

/// The largest value that lands in bucket `i` (what a percentile reports, as HdrHistogram does).
fn highest_in(i: usize) -> u64 {
    if i < 1 << SUB_BITS {
        return i as u64;
    }
    let shift = (i >> (SUB_BITS - 1)) - 1;
    let mantissa = (i & (HALF - 1)) + HALF;
    let low = (mantissa as u64) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.sum += u128::from(nanos);
        self.max = self.max.max(nanos);
    }

    /// The largest value recorded, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The arithmetic mean, exactly.
    pub fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }

    /// The value below or at which a fraction `q` (0..=1) of the recorded values lie.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest_in(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(i >= last || v > 1_000_000, "index went down at {v}");
            last = i;
            let hi = highest_in(i);
            assert!(hi >= v, "{v}: bucket top {hi} below the value");
            assert!((hi - v) as f64 <= v as f64 / 128.0 + 1.0, "{v}: bucket top {hi}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let within = |got: u64, want: u64| assert!(got >= want && got as f64 <= want as f64 * 1.01, "{got} vs {want}");
        within(h.percentile(0.5), 5_000_000);
        within(h.percentile(0.99), 9_900_000);
        within(h.percentile(0.999), 9_990_000);
        assert_eq!(h.percentile(1.0), 10_000_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.mean(), 5_000_500);
        assert_eq!(h.total, 10_000);
    }

    #[test]
    fn empty_reports_zero() {
        let h = Histogram::default();
        assert_eq!((h.percentile(0.5), h.max(), h.mean()), (0, 0, 0));
    }
}
