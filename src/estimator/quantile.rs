//! [`LatencyEstimator`]: a sliding-window quantile over log buckets.

use std::fmt;
use std::time::Duration;

use super::histogram::{self, BUCKETS, Counts};
use super::settings::AdaptiveTimeoutSettings;

/// The windowed-quantile adaptive timeout: `clamp(min, q̂ × (1 + padding), max)`, where `q̂` is
/// the `quantile` of the last `window` observed latencies.
///
/// **The window** is exactly the last `min(samples(), window)` observations — censored ones
/// included — in arrival order; older ones no longer count. **The quantile** is the nearest-rank
/// one: sort the window's `n` values ascending and take the one at 1-based rank
/// `clamp(⌈q·n⌉, 1, n)` (computed as `(q * n as f64).ceil()`). The estimate is that value up to a
/// relative error of at most [`LatencyEstimator::relative_error`] (< 0.3%; plus `Duration`'s 1 ns
/// resolution), for latencies between 1 µs and ≈ 13 h (smaller ones count as 1 µs, larger ones as
/// ≈ 13 h).
///
/// **Censored samples.** [`observe_timeout(waited)`](Self::observe_timeout) records a call that
/// was abandoned after `waited`: its latency is unknown but greater than `waited`, so it enters
/// the window as the smallest representable value strictly above `waited` (one bucket up, i.e.
/// `waited × (1 + α…3α)`). Hence once more than a `1 − q` share of the window timed out, `q̂`
/// exceeds the timeout they were given, and the next timeout is at least `(1 + padding)` times
/// larger: with `window = 1000` and `q = 0.95` every 51 consecutive timeouts raise the timeout by
/// that factor until calls fit again, instead of the death spiral in which timeouts cut latencies
/// short and shrink the estimate. With `padding = 0` the step is one bucket (≈ 0.6%).
///
/// Until `min_samples` latencies were observed, [`timeout`](Self::timeout) is `initial`.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, LatencyEstimator};
///
/// let settings = AdaptiveTimeoutSettings::builder().with_min_samples(10).build().unwrap();
/// let mut est = LatencyEstimator::new(settings);
/// assert_eq!(est.timeout(), Duration::from_secs(30)); // `initial` until 10 samples
///
/// for ms in 1..=100 {
///     est.observe(Duration::from_millis(ms));
/// }
/// // p95 of 1..=100 ms is 95 ms; padded by 50%: ≈ 142.5 ms.
/// let p95 = est.quantile_estimate().unwrap().as_secs_f64();
/// assert!((p95 - 0.095).abs() / 0.095 <= LatencyEstimator::relative_error());
/// let t = est.timeout().as_secs_f64();
/// assert!((t - 0.1425).abs() < 0.001, "{t}");
/// ```
#[derive(Clone)]
pub struct LatencyEstimator {
    settings: AdaptiveTimeoutSettings,
    /// The window's buckets in arrival order; once full, `oldest` is the next slot to overwrite.
    ring: Vec<u16>,
    oldest: usize,
    counts: Counts,
    samples: u64,
}

impl LatencyEstimator {
    /// An empty estimator; allocates its whole memory (see [`heap_bytes`](Self::heap_bytes)) now.
    pub fn new(settings: AdaptiveTimeoutSettings) -> Self {
        Self {
            ring: Vec::with_capacity(settings.window() as usize),
            oldest: 0,
            counts: Counts::new(),
            samples: 0,
            settings,
        }
    }

    /// The worst relative error of [`quantile_estimate`](Self::quantile_estimate) against the
    /// exact nearest-rank quantile of the same window: `α = tanh(0.003) ≈ 0.29999%` (plus 1 ns
    /// of rounding to `Duration`).
    pub fn relative_error() -> f64 {
        histogram::relative_error()
    }

    /// Records the latency of a call that completed (successfully or with an error that says
    /// something about the dependency's speed).
    #[inline]
    pub fn observe(&mut self, latency: Duration) {
        self.push(histogram::bucket_of(latency));
    }

    /// Records a call abandoned after `waited` (normally the [`timeout`](Self::timeout) it was
    /// given): a censored sample, counted as just above `waited` (see the type docs).
    ///
    /// Feed only calls that hit *this* timeout; a call cut short by a tighter caller deadline says
    /// little about the dependency and would drag the estimate down.
    #[inline]
    pub fn observe_timeout(&mut self, waited: Duration) {
        let above = histogram::bucket_of(waited).saturating_add(1);
        self.push(above.min((BUCKETS - 1) as u16));
    }

    /// The estimated `quantile` of the window, or `None` before `min_samples` observations.
    pub fn quantile_estimate(&self) -> Option<Duration> {
        if self.samples < u64::from(self.settings.min_samples()) {
            return None;
        }
        let n = self.ring.len() as u32;
        let rank = ((self.settings.quantile() * f64::from(n)).ceil() as u32).clamp(1, n);
        Some(histogram::value_of(self.counts.bucket_of_rank(rank)))
    }

    /// The timeout to give the next call: `clamp(min, q̂ × (1 + padding), max)`, or `initial`
    /// before `min_samples` observations. Scans at most 128 counters.
    pub fn timeout(&self) -> Duration {
        match self.quantile_estimate() {
            None => self.settings.initial(),
            Some(q) => pad_and_clamp(q, &self.settings),
        }
    }

    /// How many observations (censored ones included) were recorded since construction.
    pub const fn samples(&self) -> u64 {
        self.samples
    }

    /// How many observations the window holds now: `min(samples(), window)`.
    pub fn window_len(&self) -> usize {
        self.ring.len()
    }

    /// The heap memory held, in bytes: `2·window` for the ring plus 16.25 KiB of bucket counters,
    /// allocated at construction and constant afterwards.
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<u16>() + self.counts.heap_bytes()
    }

    /// The settings this estimator was built with.
    pub const fn settings(&self) -> &AdaptiveTimeoutSettings {
        &self.settings
    }

    /// Applies new settings, keeping the samples: the newest `min(window_len(), window)` of
    /// them stay in the window (a smaller window drops the oldest), and
    /// [`samples`](Self::samples) keeps counting. A new `quantile`, `padding`, clamp or
    /// `min_samples` applies to the next [`timeout`](Self::timeout) at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, LatencyEstimator};
    ///
    /// let mut est = LatencyEstimator::new(AdaptiveTimeoutSettings::default());
    /// for _ in 0..100 {
    ///     est.observe(Duration::from_millis(40));
    /// }
    /// let wider = AdaptiveTimeoutSettings::builder().with_padding(1.0).build().unwrap();
    /// est.reconfigure(wider);
    /// assert_eq!(est.samples(), 100);
    /// assert!((est.timeout().as_secs_f64() - 0.080).abs() < 0.001); // 40 ms × (1 + 1.0)
    /// ```
    pub fn reconfigure(&mut self, settings: AdaptiveTimeoutSettings) {
        let window = settings.window() as usize;
        if window != self.settings.window() as usize {
            // Arrival order: once the ring is full, `oldest` is where it starts.
            let (newer, older) = self.ring.split_at(self.oldest);
            let ordered: Vec<u16> = older.iter().chain(newer).copied().collect();
            let kept = &ordered[ordered.len().saturating_sub(window)..];
            let mut ring = Vec::with_capacity(window);
            ring.extend_from_slice(kept);
            let mut counts = Counts::new();
            for &bucket in kept {
                counts.increment(bucket);
            }
            self.ring = ring;
            self.counts = counts;
            self.oldest = 0;
        }
        self.settings = settings;
    }

    #[inline]
    fn push(&mut self, bucket: u16) {
        self.samples += 1;
        let window = self.settings.window() as usize;
        if self.ring.len() < window {
            self.ring.push(bucket);
            self.counts.increment(bucket);
            return;
        }
        let evicted = std::mem::replace(&mut self.ring[self.oldest], bucket);
        self.oldest += 1;
        if self.oldest == window {
            self.oldest = 0;
        }
        if evicted != bucket {
            self.counts.decrement(evicted);
            self.counts.increment(bucket);
        }
    }
}

/// `clamp(min, estimate × (1 + padding), max)`; an overflowing product saturates to `max`.
pub(super) fn pad_and_clamp(estimate: Duration, s: &AdaptiveTimeoutSettings) -> Duration {
    Duration::try_from_secs_f64(estimate.as_secs_f64() * (1.0 + s.padding()))
        .unwrap_or(Duration::MAX)
        .clamp(s.min(), s.max())
}

impl Default for LatencyEstimator {
    /// An estimator with [`AdaptiveTimeoutSettings::default`].
    fn default() -> Self {
        Self::new(AdaptiveTimeoutSettings::default())
    }
}

impl fmt::Debug for LatencyEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyEstimator")
            .field("samples", &self.samples)
            .field("window_len", &self.ring.len())
            .field("quantile_estimate", &self.quantile_estimate())
            .field("timeout", &self.timeout())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn settings(min_samples: u32, window: u32) -> AdaptiveTimeoutSettings {
        AdaptiveTimeoutSettings::builder()
            .with_min_samples(min_samples)
            .with_window(window)
            .build()
            .unwrap()
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut est = LatencyEstimator::new(settings(10, 10));
        for _ in 0..10 {
            est.observe(ms(1000));
        }
        for _ in 0..10 {
            est.observe(ms(10));
        }
        let q = est.quantile_estimate().unwrap().as_secs_f64();
        assert!((q - 0.010).abs() < 0.0001, "{q}");
        assert_eq!(est.window_len(), 10);
        assert_eq!(est.samples(), 20);
    }

    #[test]
    fn censored_sample_ranks_above_its_waited_time() {
        let mut est = LatencyEstimator::new(settings(1, 10));
        est.observe_timeout(ms(200));
        assert!(est.quantile_estimate().unwrap() > ms(200));
        let mut est = LatencyEstimator::new(settings(1, 10));
        est.observe_timeout(Duration::MAX);
        assert_eq!(est.timeout(), est.settings().max());
    }

    #[test]
    fn huge_padding_saturates_to_max() {
        let s = AdaptiveTimeoutSettings::builder()
            .with_padding(1e300)
            .with_min_samples(1)
            .build()
            .unwrap();
        let mut est = LatencyEstimator::new(s);
        est.observe(ms(5));
        assert_eq!(est.timeout(), s.max());
    }

    #[test]
    fn debug_is_a_summary() {
        let text = format!("{:?}", LatencyEstimator::default());
        assert!(text.starts_with("LatencyEstimator { samples: 0"), "{text}");
        assert!(text.len() < 1000);
    }
}
