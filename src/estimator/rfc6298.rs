//! [`Rfc6298Estimator`]: TCP's retransmission timeout, the shape of quinn's `RttEstimator`.

use std::time::Duration;

use super::settings::AdaptiveTimeoutSettings;

/// The largest backoff exponent kept: `2^32 ×` any timeout ≥ 1 ns exceeds every sane `max`.
const MAX_BACKOFF_EXPONENT: u32 = 32;

/// RFC 6298's retransmission timeout (RTO): `SRTT + max(G, 4·RTTVAR)`, clamped to
/// `[min, max]`, doubled on every timeout.
///
/// Uses `initial`, `min`, `max` and `granularity` (`G`) from [`AdaptiveTimeoutSettings`];
/// `quantile`, `padding`, `min_samples` and `window` do not apply (the RFC uses the first
/// sample, §2.2). RFC 6298 tracks mean + 4 × mean deviation, which is **not** a percentile: prefer
/// the [`LatencyEstimator`](super::LatencyEstimator) unless TCP-like behaviour is wanted.
///
/// **Karn's algorithm (RFC 6298 §3):** never [`observe`](Self::observe) the latency of an
/// attempt that was retried — the reply may answer an earlier attempt — and keep the backed-off
/// RTO until a non-retried attempt yields a sample.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, Rfc6298Estimator};
///
/// let ms = Duration::from_millis;
/// let settings = AdaptiveTimeoutSettings::builder()
///     .with_min(Duration::ZERO)
///     .with_granularity(Duration::ZERO)
///     .build()
///     .unwrap();
/// let mut rto = Rfc6298Estimator::new(settings);
/// assert_eq!(rto.rto(), Duration::from_secs(30)); // (2.1) `initial` before any sample
/// rto.observe(ms(100));
/// assert_eq!(rto.rto(), ms(300)); // (2.2) 100 + 4 × 50
/// rto.observe(ms(200));
/// assert_eq!(rto.rttvar(), Some(Duration::from_micros(62_500))); // (2.3)
/// assert_eq!(rto.srtt(), Some(Duration::from_micros(112_500)));
/// assert_eq!(rto.rto(), Duration::from_micros(362_500));
/// rto.on_timeout();
/// assert_eq!(rto.rto(), Duration::from_micros(725_000)); // (5.5) back off
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rfc6298Estimator {
    settings: AdaptiveTimeoutSettings,
    /// `(SRTT, RTTVAR)`, `None` before the first sample.
    smoothed: Option<(Duration, Duration)>,
    /// How many times the RTO was doubled since the last sample (RFC 6298 §5.5).
    backoff: u32,
    samples: u64,
}

impl Rfc6298Estimator {
    /// An estimator that has seen no sample: its RTO is `initial` (RFC 6298 §2.1, with the
    /// configured value instead of 1 s).
    pub const fn new(settings: AdaptiveTimeoutSettings) -> Self {
        Self {
            settings,
            smoothed: None,
            backoff: 0,
            samples: 0,
        }
    }

    /// Feeds a round-trip time measured on a call that was *not* retried (Karn), and collapses
    /// any backoff: "the computations outlined in Section 2 are performed, including the
    /// computation of RTO, which may result in 'collapsing' RTO back down" (RFC 6298 §5).
    pub fn observe(&mut self, rtt: Duration) {
        self.samples += 1;
        self.backoff = 0;
        self.smoothed = Some(match self.smoothed {
            // (2.2) SRTT <- R, RTTVAR <- R/2
            None => (rtt, rtt / 2),
            // (2.3) RTTVAR <- (1 - β)·RTTVAR + β·|SRTT - R'| with β = 1/4, using the *old* SRTT,
            //       then SRTT <- (1 - α)·SRTT + α·R' with α = 1/8 (quinn's integer form).
            Some((srtt, rttvar)) => {
                let rttvar = rttvar.saturating_mul(3).saturating_add(srtt.abs_diff(rtt)) / 4;
                let srtt = srtt.saturating_mul(7).saturating_add(rtt) / 8;
                (srtt, rttvar)
            }
        });
    }

    /// Records that the timer expired: RTO = 2·RTO, capped at `max` (RFC 6298 §5.5, with the
    /// §2.5 maximum).
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF_EXPONENT);
    }

    /// The current retransmission timeout: `clamp(min, SRTT + max(G, K·RTTVAR), max)` with
    /// `K = 4` (RFC 6298 §2.2–2.5, the §2.4 1 s floor replaced by `min`), or `initial` before
    /// any sample, then doubled per unanswered timeout and capped at `max` (§5.5).
    pub fn rto(&self) -> Duration {
        let s = &self.settings;
        let base = match self.smoothed {
            None => s.initial(),
            Some((srtt, rttvar)) => {
                srtt.saturating_add(s.granularity().max(rttvar.saturating_mul(4)))
            }
        };
        let base = base.clamp(s.min(), s.max());
        base.saturating_mul(1u32.checked_shl(self.backoff).unwrap_or(u32::MAX))
            .min(s.max())
    }

    /// The smoothed round-trip time `SRTT`, `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.smoothed.map(|(srtt, _)| srtt)
    }

    /// The round-trip time variation `RTTVAR`, `None` before the first sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.smoothed.map(|(_, rttvar)| rttvar)
    }

    /// How many timeouts since the last sample (the exponent of the current backoff).
    pub const fn backoff(&self) -> u32 {
        self.backoff
    }

    /// How many round-trip times were observed since construction.
    pub const fn samples(&self) -> u64 {
        self.samples
    }

    /// Applies new settings, keeping `SRTT`, `RTTVAR`, the backoff and the sample count: the
    /// new clamp, granularity and `initial` apply to the next [`rto`](Self::rto) at once.
    pub fn reconfigure(&mut self, settings: AdaptiveTimeoutSettings) {
        self.settings = settings;
    }

    /// The settings this estimator was built with.
    pub const fn settings(&self) -> &AdaptiveTimeoutSettings {
        &self.settings
    }
}

impl Default for Rfc6298Estimator {
    /// An estimator with [`AdaptiveTimeoutSettings::default`].
    fn default() -> Self {
        Self::new(AdaptiveTimeoutSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn granularity_floors_the_variance_term() {
        let s = AdaptiveTimeoutSettings::builder()
            .with_min(Duration::ZERO)
            .with_granularity(ms(50))
            .build()
            .unwrap();
        let mut est = Rfc6298Estimator::new(s);
        for _ in 0..200 {
            est.observe(ms(10)); // RTTVAR decays towards 0
        }
        assert_eq!(est.srtt(), Some(ms(10)));
        assert!(est.rttvar().unwrap() < Duration::from_micros(1));
        assert_eq!(est.rto(), ms(60));
    }

    #[test]
    fn a_sample_collapses_the_backoff() {
        let mut est = Rfc6298Estimator::default();
        est.observe(ms(100));
        let rto = est.rto();
        est.on_timeout();
        est.on_timeout();
        assert_eq!(est.backoff(), 2);
        assert_eq!(est.rto(), rto * 4);
        est.observe(ms(100));
        assert_eq!(est.backoff(), 0);
        assert!(est.rto() <= rto);
    }

    #[test]
    fn backoff_saturates_without_overflow() {
        let mut est = Rfc6298Estimator::default();
        for _ in 0..100 {
            est.on_timeout();
        }
        assert_eq!(est.rto(), est.settings().max());
        est.observe(Duration::MAX);
        est.observe(Duration::MAX);
        assert_eq!(est.rto(), est.settings().max());
    }
}
