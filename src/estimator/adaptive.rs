//! [`AdaptiveTimeout`]: either estimator behind one API, picked by [`EstimatorMode`].

use std::time::Duration;

use super::quantile::LatencyEstimator;
use super::rfc6298::Rfc6298Estimator;
use super::settings::{AdaptiveTimeoutSettings, EstimatorMode};

/// An adaptive timeout whose estimator is chosen by the settings' [`mode`](AdaptiveTimeoutSettings::mode).
///
/// | method | [`Quantile`](Self::Quantile) | [`Rfc6298`](Self::Rfc6298) |
/// |---|---|---|
/// | [`observe`](Self::observe) | [`LatencyEstimator::observe`] | [`Rfc6298Estimator::observe`] |
/// | [`observe_timeout`](Self::observe_timeout) | censored sample just above `waited` | [`Rfc6298Estimator::on_timeout`] (doubles; `waited` unused) |
/// | [`timeout`](Self::timeout) | [`LatencyEstimator::timeout`] | [`Rfc6298Estimator::rto`] |
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::estimator::{AdaptiveTimeout, AdaptiveTimeoutSettings, EstimatorMode};
///
/// for mode in [EstimatorMode::Quantile, EstimatorMode::Rfc6298] {
///     let settings = AdaptiveTimeoutSettings::builder().with_mode(mode).build().unwrap();
///     let mut timeout = AdaptiveTimeout::new(settings);
///     assert_eq!(timeout.mode(), mode);
///     assert_eq!(timeout.timeout(), Duration::from_secs(30));
///     for _ in 0..100 {
///         timeout.observe(Duration::from_millis(40));
///     }
///     assert!(timeout.timeout() < Duration::from_millis(100));
///     assert_eq!(timeout.samples(), 100);
/// }
/// ```
#[derive(Debug, Clone)]
pub enum AdaptiveTimeout {
    /// The windowed quantile ([`EstimatorMode::Quantile`]).
    Quantile(LatencyEstimator),
    /// RFC 6298's RTO ([`EstimatorMode::Rfc6298`]).
    Rfc6298(Rfc6298Estimator),
}

impl AdaptiveTimeout {
    /// The estimator `settings.mode()` names, empty.
    pub fn new(settings: AdaptiveTimeoutSettings) -> Self {
        match settings.mode() {
            EstimatorMode::Quantile => Self::Quantile(LatencyEstimator::new(settings)),
            EstimatorMode::Rfc6298 => Self::Rfc6298(Rfc6298Estimator::new(settings)),
        }
    }

    /// Records the latency of a completed call (RFC 6298 mode: only calls that were not retried,
    /// per Karn's algorithm).
    #[inline]
    pub fn observe(&mut self, latency: Duration) {
        match self {
            Self::Quantile(e) => e.observe(latency),
            Self::Rfc6298(e) => e.observe(latency),
        }
    }

    /// Records a call abandoned after `waited`: a censored sample (quantile mode) or a backoff
    /// (RFC 6298 mode).
    #[inline]
    pub fn observe_timeout(&mut self, waited: Duration) {
        match self {
            Self::Quantile(e) => e.observe_timeout(waited),
            Self::Rfc6298(e) => e.on_timeout(),
        }
    }

    /// The timeout to give the next call, always within `[min, max]`.
    pub fn timeout(&self) -> Duration {
        match self {
            Self::Quantile(e) => e.timeout(),
            Self::Rfc6298(e) => e.rto(),
        }
    }

    /// How many latencies were observed (quantile mode: censored ones included; RFC 6298 mode:
    /// only [`observe`](Self::observe)d ones).
    pub fn samples(&self) -> u64 {
        match self {
            Self::Quantile(e) => e.samples(),
            Self::Rfc6298(e) => e.samples(),
        }
    }

    /// Which estimator runs.
    pub fn mode(&self) -> EstimatorMode {
        match self {
            Self::Quantile(_) => EstimatorMode::Quantile,
            Self::Rfc6298(_) => EstimatorMode::Rfc6298,
        }
    }

    /// Applies new settings; returns whether the samples were kept. Under the same
    /// [`mode`](AdaptiveTimeoutSettings::mode) the estimator keeps what it learned
    /// ([`LatencyEstimator::reconfigure`], [`Rfc6298Estimator::reconfigure`]); a new mode
    /// starts a new, empty estimator (the two learn different things).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience_core::estimator::{AdaptiveTimeout, AdaptiveTimeoutSettings, EstimatorMode};
    ///
    /// let mut t = AdaptiveTimeout::default();
    /// t.observe(Duration::from_millis(40));
    /// let capped = AdaptiveTimeoutSettings::builder().with_max(Duration::from_secs(5)).with_initial(Duration::from_secs(5)).build().unwrap();
    /// assert!(t.reconfigure(capped));
    /// assert_eq!(t.samples(), 1);
    /// let rfc = AdaptiveTimeoutSettings::builder().with_mode(EstimatorMode::Rfc6298).build().unwrap();
    /// assert!(!t.reconfigure(rfc));
    /// assert_eq!(t.samples(), 0);
    /// ```
    pub fn reconfigure(&mut self, settings: AdaptiveTimeoutSettings) -> bool {
        match self {
            Self::Quantile(e) if settings.mode() == EstimatorMode::Quantile => {
                e.reconfigure(settings);
                true
            }
            Self::Rfc6298(e) if settings.mode() == EstimatorMode::Rfc6298 => {
                e.reconfigure(settings);
                true
            }
            _ => {
                *self = Self::new(settings);
                false
            }
        }
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &AdaptiveTimeoutSettings {
        match self {
            Self::Quantile(e) => e.settings(),
            Self::Rfc6298(e) => e.settings(),
        }
    }
}

impl Default for AdaptiveTimeout {
    /// The quantile estimator with [`AdaptiveTimeoutSettings::default`].
    fn default() -> Self {
        Self::new(AdaptiveTimeoutSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_mode_backs_off_on_timeout() {
        let settings = AdaptiveTimeoutSettings::builder()
            .with_mode(EstimatorMode::Rfc6298)
            .build()
            .unwrap();
        let mut t = AdaptiveTimeout::new(settings);
        t.observe(Duration::from_millis(100));
        let before = t.timeout();
        t.observe_timeout(before);
        assert_eq!(t.timeout(), before * 2);
    }
}
