//! A log-linear latency histogram: exact below 64 ns, then 32 buckets per
//! power of two (at most about 3% error), in constant memory, for the
//! completion-latency percentiles of a run.

/// Sub-buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 5;
/// Values below this are counted exactly.
const LINEAR: u64 = 64;

/// Counts of latencies in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram covering 0..2^64 ns.
    pub fn new() -> Self {
        let groups = 64 - LINEAR.trailing_zeros() as usize;
        Histogram {
            counts: vec![0; LINEAR as usize + (groups << SUB_BITS)],
            total: 0,
        }
    }

    fn bucket(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= 6
        let sub = (v >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        LINEAR as usize + (((exp - LINEAR.trailing_zeros()) as usize) << SUB_BITS) + sub as usize
    }

    /// The smallest value that falls in bucket `b`.
    fn lower_bound(b: usize) -> u64 {
        if b < LINEAR as usize {
            return b as u64;
        }
        let g = (b - LINEAR as usize) >> SUB_BITS;
        let sub = ((b - LINEAR as usize) & ((1 << SUB_BITS) - 1)) as u64;
        let exp = g as u32 + LINEAR.trailing_zeros();
        (1u64 << exp) | (sub << (exp - SUB_BITS))
    }

    /// Count one value.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
        self.total += 1;
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Nothing recorded yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q`-quantile (0.0..=1.0), as its bucket's lower bound; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(b);
            }
        }
        Self::lower_bound(self.counts.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_three_percent() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=100_000u64 {
            h.record(v);
        }
        assert_eq!(h.len(), 100_000);
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        let mut small = Histogram::new();
        small.record(7);
        assert_eq!(small.quantile(0.999), 7);
        small.record(u64::MAX);
        assert!(small.quantile(1.0) > 1 << 63);
    }
}
