//! Round-trip samples of a latency case, kept in an HDR histogram: every round is
//! recorded (no cap, no vector of every sample), to 3 significant digits, in memory
//! that depends on the range of values, not on their number.

use hdrhistogram::Histogram;

/// The round trips of one or more trials, ns.
#[derive(Debug, Clone)]
pub struct Samples(Histogram<u64>);

impl Default for Samples {
    fn default() -> Self {
        Self::new()
    }
}

impl Samples {
    /// No samples yet (values auto-range from 1 ns up).
    pub fn new() -> Self {
        let mut h = Histogram::new(3).expect("3 significant digits is a valid precision");
        h.auto(true);
        Samples(h)
    }

    /// Records one round trip of `ns` nanoseconds (0 counts as 1).
    pub fn record(&mut self, ns: u64) {
        // Auto-ranging: recording never fails for a u64 value.
        let _ = self.0.record(ns.max(1));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Samples) {
        // Both auto-range with the same precision, so adding never fails.
        let _ = self.0.add(&other.0);
    }

    /// Rounds recorded.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether no round was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-quantile (0..=1), ns.
    pub fn quantile(&self, p: f64) -> f64 {
        self.0.value_at_quantile(p) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_hold_three_digits() {
        let mut s = Samples::new();
        for v in 1..=1000u64 {
            s.record(v * 1000);
        }
        assert_eq!(s.len(), 1000);
        let near = |got: f64, want: f64| (got - want).abs() <= want / 1000.0;
        assert!(near(s.quantile(0.5), 500_000.0), "{}", s.quantile(0.5));
        assert!(near(s.quantile(0.99), 990_000.0), "{}", s.quantile(0.99));
        assert!(near(s.quantile(0.999), 999_000.0), "{}", s.quantile(0.999));
        let mut t = Samples::new();
        t.record(7);
        s.merge(&t);
        assert_eq!(s.len(), 1001);
        assert_eq!(Samples::new().quantile(0.5), 0.0);
    }
}
