//! The run's per-bucket series: tasks ended by outcome, retries, and the latency of successes,
//! in fixed time buckets.
//!
//! Memory is bounded whatever the run's length: a bucket is one second wide, or wider (whole
//! seconds) so that the run's span fits in [`MAX_BUCKETS`]; buckets are allocated as time
//! reaches them, and anything recorded past the last one lands in the last one.
//!
//! Latency quantiles per bucket come from a small fixed log-scale histogram
//! ([`LatencyBins`]: 64 counters, 12 per decade from 1 ms), so p50 and p95 are within ±10 % of
//! the exact value (half a bin), at 256 bytes per bucket.

use std::time::Duration;

use ractor_resilience::metrics::TaskOutcome;

/// The most buckets one run's series holds (a 1 h `simulate` gets 2 s buckets).
pub const MAX_BUCKETS: usize = 2000;

/// Bins per decade of [`LatencyBins`].
const BINS_PER_DECADE: f64 = 12.0;

/// Bins of [`LatencyBins`]: bin 0 holds everything under 1 ms, bin 63 everything from
/// 10^(62/12) ms ≈ 147 s up.
const BINS: usize = 64;

/// A fixed log-scale histogram of latencies: bin `i ≥ 1` counts samples in
/// `[10^((i-1)/12), 10^(i/12))` ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyBins {
    counts: [u32; BINS],
}

impl Default for LatencyBins {
    fn default() -> Self {
        LatencyBins { counts: [0; BINS] }
    }
}

impl LatencyBins {
    /// Counts one sample.
    pub fn record(&mut self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        let bin = if ms < 1.0 {
            0
        } else {
            // Truncation is the bin's floor; the cast saturates for huge values.
            ((ms.log10() * BINS_PER_DECADE) as usize + 1).min(BINS - 1)
        };
        self.counts[bin] = self.counts[bin].saturating_add(1);
    }

    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The `q`-quantile (0 < q ≤ 1), as its bin's geometric middle; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let bin = self
            .counts
            .iter()
            .position(|&c| {
                seen += u64::from(c);
                seen >= rank
            })
            .unwrap_or(BINS - 1);
        let ms = if bin == 0 {
            0.5
        } else {
            10f64.powf((bin as f64 - 0.5) / BINS_PER_DECADE)
        };
        Some(Duration::from_secs_f64(ms / 1000.0))
    }
}

/// One bucket's counts.
#[derive(Debug, Clone, Default)]
struct Bucket {
    outcomes: [u32; TaskOutcome::ALL.len()],
    retries: u32,
    latency: LatencyBins,
}

/// The run's series, bucket by bucket from time zero.
#[derive(Debug, Clone)]
pub struct Series {
    width: Duration,
    capacity: usize,
    buckets: Vec<Bucket>,
    end: Duration,
}

impl Series {
    /// A series for a run expected to span `span` (workload plus drain): 1 s buckets, or the
    /// fewest whole seconds per bucket that keep it within [`MAX_BUCKETS`].
    pub fn new(span: Duration) -> Self {
        let secs = span.as_secs() + u64::from(span.subsec_nanos() > 0);
        let width = secs.div_ceil(MAX_BUCKETS as u64).max(1);
        let capacity = usize::try_from(secs.div_ceil(width))
            .unwrap_or(MAX_BUCKETS)
            .clamp(1, MAX_BUCKETS);
        Series {
            width: Duration::from_secs(width),
            capacity,
            buckets: Vec::new(),
            end: Duration::ZERO,
        }
    }

    /// How wide each bucket is.
    pub fn width(&self) -> Duration {
        self.width
    }

    /// Buckets so far (up to the last one anything was recorded in, or [`finish`](Self::finish)
    /// reached).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Where the series ends: the latest instant recorded or finished at (at most the end of
    /// the last bucket).
    pub fn end(&self) -> Duration {
        self.end
    }

    /// Where the last bucket ends.
    fn limit(&self) -> Duration {
        self.width * u32::try_from(self.capacity).unwrap_or(u32::MAX)
    }

    fn bucket(&mut self, at: Duration) -> &mut Bucket {
        self.end = self.end.max(at.min(self.limit()));
        let i = usize::try_from(at.as_secs() / self.width.as_secs())
            .unwrap_or(usize::MAX)
            .min(self.capacity - 1);
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        &mut self.buckets[i]
    }

    /// Counts a task that ended at `at` (since time zero) with `outcome`; a success's
    /// `latency` goes into the bucket's histogram.
    pub fn record(&mut self, at: Duration, outcome: TaskOutcome, latency: Duration) {
        let bucket = self.bucket(at);
        let i = TaskOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        bucket.outcomes[i] = bucket.outcomes[i].saturating_add(1);
        if outcome == TaskOutcome::Succeeded {
            bucket.latency.record(latency);
        }
    }

    /// Counts `n` retries sent in the second before `at`.
    pub fn record_retries(&mut self, at: Duration, n: u64) {
        let at = at.saturating_sub(Duration::from_nanos(1));
        let bucket = self.bucket(at);
        bucket.retries = bucket
            .retries
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Marks the end of the run at `at`: the series covers at least `[0, at)`.
    pub fn finish(&mut self, at: Duration) {
        if !at.is_zero() {
            self.bucket(at.saturating_sub(Duration::from_nanos(1)));
        }
        self.end = self.end.max(at.min(self.limit()));
    }

    /// Where bucket `i` starts, in seconds.
    pub fn start_of(&self, i: usize) -> f64 {
        i as f64 * self.width.as_secs_f64()
    }

    /// Tasks per second that ended with `outcome` in bucket `i`.
    pub fn rate(&self, i: usize, outcome: TaskOutcome) -> f64 {
        let k = TaskOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        self.buckets
            .get(i)
            .map_or(0.0, |b| f64::from(b.outcomes[k]) / self.width.as_secs_f64())
    }

    /// Retries per second in bucket `i`.
    pub fn retry_rate(&self, i: usize) -> f64 {
        self.buckets
            .get(i)
            .map_or(0.0, |b| f64::from(b.retries) / self.width.as_secs_f64())
    }

    /// The `q`-quantile of the latency of bucket `i`'s successes.
    pub fn latency(&self, i: usize, q: f64) -> Option<Duration> {
        self.buckets.get(i).and_then(|b| b.latency.quantile(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn quantiles_are_within_ten_percent() {
        let mut bins = LatencyBins::default();
        for v in 1..=1000 {
            bins.record(ms(v));
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = bins.quantile(q).unwrap().as_secs_f64() * 1000.0;
            assert!(
                (got / exact - 1.0).abs() <= 0.10,
                "q{q}: {got} ms vs {exact} ms"
            );
        }
        assert_eq!(LatencyBins::default().quantile(0.5), None);
    }

    #[test]
    fn extreme_latencies_land_in_the_end_bins() {
        let mut bins = LatencyBins::default();
        bins.record(Duration::from_micros(10));
        assert!(bins.quantile(1.0).unwrap() < ms(1));
        bins.record(Duration::from_secs(100_000));
        assert!(bins.quantile(1.0).unwrap() > Duration::from_secs(100));
        assert_eq!(bins.count(), 2);
    }

    #[test]
    fn a_one_hour_span_stays_within_the_bucket_cap() {
        let s = Series::new(Duration::from_secs(3600) + Duration::from_secs(10));
        assert_eq!(s.width(), Duration::from_secs(2));
        assert!(s.capacity <= MAX_BUCKETS);
        let s = Series::new(Duration::from_secs(100 * 365 * 24 * 3600));
        assert!(s.capacity <= MAX_BUCKETS);
        let s = Series::new(ms(45_500));
        assert_eq!((s.width(), s.capacity), (Duration::from_secs(1), 46));
    }

    #[test]
    fn outcomes_and_retries_go_to_their_second() {
        let mut s = Series::new(Duration::from_secs(10));
        s.record(ms(1500), TaskOutcome::Succeeded, ms(80));
        s.record(ms(1999), TaskOutcome::Rejected, ms(0));
        s.record(ms(2000), TaskOutcome::Rejected, ms(0));
        s.record_retries(Duration::from_secs(2), 3);
        assert_eq!(s.rate(1, TaskOutcome::Succeeded), 1.0);
        assert_eq!(s.rate(1, TaskOutcome::Rejected), 1.0);
        assert_eq!(s.rate(2, TaskOutcome::Rejected), 1.0);
        assert_eq!(s.retry_rate(1), 3.0);
        assert!(s.latency(1, 0.5).unwrap().abs_diff(ms(80)) <= ms(8));
        assert_eq!(s.latency(2, 0.5), None);
    }

    #[test]
    fn past_the_span_lands_in_the_last_bucket_and_finish_extends() {
        let mut s = Series::new(Duration::from_secs(3));
        s.record(Duration::from_secs(50), TaskOutcome::Failed, ms(0));
        assert_eq!(s.len(), 3);
        assert_eq!(s.rate(2, TaskOutcome::Failed), 1.0);
        assert_eq!(s.end(), Duration::from_secs(3));
        let mut s = Series::new(Duration::from_secs(10));
        s.finish(ms(4000));
        assert_eq!((s.len(), s.end()), (4, ms(4000)));
    }
}
