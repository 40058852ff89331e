//! [`AdaptiveTimeoutSettings`], its builder and [`EstimatorMode`].

use std::time::Duration;

use crate::InvalidSettings;

/// Which estimator an [`AdaptiveTimeout`](super::AdaptiveTimeout) runs.
///
/// Configuration files spell the variants `"quantile"` and `"rfc6298"`.
///
/// ```
/// use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, EstimatorMode};
///
/// assert_eq!(EstimatorMode::default(), EstimatorMode::Quantile);
/// let s = AdaptiveTimeoutSettings::builder().with_mode(EstimatorMode::Rfc6298).build().unwrap();
/// assert_eq!(s.mode(), EstimatorMode::Rfc6298);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
///
/// ```
/// use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, EstimatorMode};
///
/// let s = AdaptiveTimeoutSettings::builder().with_mode(EstimatorMode::Rfc6298).build().unwrap();
/// assert_eq!(s.mode(), EstimatorMode::Rfc6298);
/// assert_eq!(EstimatorMode::default(), EstimatorMode::Quantile);
/// ```
#[serde(rename_all = "snake_case")]
pub enum EstimatorMode {
    /// `clamp(min, quantile(last window samples) × (1 + padding), max)`: the
    /// [`LatencyEstimator`](super::LatencyEstimator). The default.
    #[default]
    Quantile,
    /// RFC 6298's `SRTT + max(G, 4·RTTVAR)` with exponential backoff on timeouts: the
    /// [`Rfc6298Estimator`](super::Rfc6298Estimator).
    Rfc6298,
}

/// Validated settings of an adaptive timeout; build them with [`AdaptiveTimeoutSettings::builder`].
///
/// # Default
///
/// | field | default | rule |
/// |---|---|---|
/// | `mode` | [`EstimatorMode::Quantile`] | |
/// | `initial` | 30 s (the seed's `NewAdaptiveTimeout(30s, 0.95)`) | `0 < initial`, `min ≤ initial ≤ max` |
/// | `quantile` | 0.95 | `0 < quantile < 1` |
/// | `padding` | 0.5 | finite, `≥ 0` |
/// | `min` | 10 ms | `min ≤ max` |
/// | `max` | 5 min | `max > 0` |
/// | `min_samples` | 20 | `≥ 1` |
/// | `window` | 1000 samples | `max(min_samples, 10) ≤ window ≤ 1 048 576` |
/// | `granularity` | 1 ms (quinn's `TIMER_GRANULARITY`) | any; RFC 6298 mode only |
///
/// **Why `padding = 0.5`.** A timeout at exactly the p95 cuts off ~5% of *healthy* calls — each
/// one a wasted attempt and, behind a retry policy, extra load. Multiplying by 1.5 puts the
/// timeout at ≈ the p99.3 of a lognormal latency with σ = 0.5 and ≈ the p98 with σ = 1.0
/// (heavy-tailed LLM latencies), which matches the Builders' Library advice to pick the timeout
/// from an acceptable *false-timeout* rate (≈ 1%) rather than from a percentile alone.
///
/// **Why `initial` must lie in `[min, max]`.** The initial value is served verbatim until
/// `min_samples` latencies were seen; a value outside the clamp is almost always a config mistake
/// (for example lowering `max` and forgetting `initial`), so it is rejected rather than clamped.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::estimator::AdaptiveTimeoutSettings;
///
/// let s = AdaptiveTimeoutSettings::default();
/// assert_eq!(s.initial(), Duration::from_secs(30));
/// assert_eq!(s.quantile(), 0.95);
///
/// let err = AdaptiveTimeoutSettings::builder().with_quantile(1.0).build().unwrap_err();
/// assert_eq!(err.field, "quantile");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveTimeoutSettings {
    mode: EstimatorMode,
    initial: Duration,
    quantile: f64,
    padding: f64,
    min: Duration,
    max: Duration,
    min_samples: u32,
    window: u32,
    granularity: Duration,
}

/// The smallest accepted `window`: below it a high quantile is just the window's maximum.
pub const MIN_WINDOW: u32 = 10;
/// The largest accepted `window` (2²⁰ samples, 2 MiB of ring buffer): bounds memory.
pub const MAX_WINDOW: u32 = 1 << 20;

impl AdaptiveTimeoutSettings {
    /// A builder that starts from the defaults (see the table above).
    pub const fn builder() -> AdaptiveTimeoutSettingsBuilder {
        AdaptiveTimeoutSettingsBuilder::new()
    }

    /// Which estimator to run.
    pub const fn mode(&self) -> EstimatorMode {
        self.mode
    }

    /// The timeout served until `min_samples` latencies were observed (RFC 6298 mode: until the
    /// first one).
    pub const fn initial(&self) -> Duration {
        self.initial
    }

    /// The latency quantile `q` the timeout tracks, `0 < q < 1`.
    pub const fn quantile(&self) -> f64 {
        self.quantile
    }

    /// The relative headroom: `timeout = quantile × (1 + padding)`, before the clamp.
    pub const fn padding(&self) -> f64 {
        self.padding
    }

    /// The smallest timeout ever returned.
    pub const fn min(&self) -> Duration {
        self.min
    }

    /// The largest timeout ever returned.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// How many latencies (censored ones included) must be observed before the estimate replaces
    /// `initial`.
    pub const fn min_samples(&self) -> u32 {
        self.min_samples
    }

    /// How many of the most recent latencies the quantile is computed over.
    pub const fn window(&self) -> u32 {
        self.window
    }

    /// RFC 6298's clock granularity `G`: the floor of the variance term (RFC 6298 mode only).
    pub const fn granularity(&self) -> Duration {
        self.granularity
    }
}

impl Default for AdaptiveTimeoutSettings {
    fn default() -> Self {
        let b = AdaptiveTimeoutSettingsBuilder::new();
        Self {
            mode: b.mode,
            initial: b.initial,
            quantile: b.quantile,
            padding: b.padding,
            min: b.min,
            max: b.max,
            min_samples: b.min_samples,
            window: b.window,
            granularity: b.granularity,
        }
    }
}

/// Builds [`AdaptiveTimeoutSettings`]; nothing is checked until [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::estimator::AdaptiveTimeoutSettings;
///
/// let s = AdaptiveTimeoutSettings::builder()
///     .with_initial(Duration::from_secs(2))
///     .with_quantile(0.99)
///     .with_padding(0.2)
///     .with_min(Duration::from_millis(50))
///     .with_max(Duration::from_secs(10))
///     .with_min_samples(50)
///     .with_window(5000)
///     .build()
///     .unwrap();
/// assert_eq!(s.window(), 5000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveTimeoutSettingsBuilder {
    mode: EstimatorMode,
    initial: Duration,
    quantile: f64,
    padding: f64,
    min: Duration,
    max: Duration,
    min_samples: u32,
    window: u32,
    granularity: Duration,
}

impl AdaptiveTimeoutSettingsBuilder {
    /// The defaults listed on [`AdaptiveTimeoutSettings`].
    pub const fn new() -> Self {
        Self {
            mode: EstimatorMode::Quantile,
            initial: Duration::from_secs(30),
            quantile: 0.95,
            padding: 0.5,
            min: Duration::from_millis(10),
            max: Duration::from_secs(300),
            min_samples: 20,
            window: 1000,
            granularity: Duration::from_millis(1),
        }
    }

    /// Sets `mode`.
    pub const fn with_mode(mut self, mode: EstimatorMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets `initial`.
    pub const fn with_initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// Sets `quantile`.
    pub const fn with_quantile(mut self, quantile: f64) -> Self {
        self.quantile = quantile;
        self
    }

    /// Sets `padding`.
    pub const fn with_padding(mut self, padding: f64) -> Self {
        self.padding = padding;
        self
    }

    /// Sets `min`.
    pub const fn with_min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// Sets `max`.
    pub const fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets `min_samples`.
    pub const fn with_min_samples(mut self, min_samples: u32) -> Self {
        self.min_samples = min_samples;
        self
    }

    /// Sets `window`.
    pub const fn with_window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// Sets `granularity`.
    pub const fn with_granularity(mut self, granularity: Duration) -> Self {
        self.granularity = granularity;
        self
    }

    /// Checks every rule of the table on [`AdaptiveTimeoutSettings`].
    ///
    /// # Errors
    ///
    /// An [`InvalidSettings`] naming the first offending field, checked in this order:
    /// `quantile`, `padding`, `max`, `min`, `initial`, `min_samples`, `window`.
    pub fn build(self) -> Result<AdaptiveTimeoutSettings, InvalidSettings> {
        // `min` and `initial` must not exceed `max`, so bounding `max` bounds them too.
        crate::settings::check_duration("max", self.max)?;
        crate::settings::check_duration("granularity", self.granularity)?;
        let q = self.quantile;
        if !(q.is_finite() && 0.0 < q && q < 1.0) {
            return Err(InvalidSettings::new(
                "quantile",
                format!("must be within (0, 1), got {q}"),
            ));
        }
        let p = self.padding;
        if !(p.is_finite() && p >= 0.0) {
            return Err(InvalidSettings::new(
                "padding",
                format!("must be a finite number ≥ 0, got {p}"),
            ));
        }
        if self.max.is_zero() {
            return Err(InvalidSettings::new("max", "must be greater than 0"));
        }
        if self.min > self.max {
            return Err(InvalidSettings::new(
                "min",
                format!("must be ≤ max ({:?}), got {:?}", self.max, self.min),
            ));
        }
        if self.initial.is_zero() || self.initial < self.min || self.initial > self.max {
            return Err(InvalidSettings::new(
                "initial",
                format!(
                    "must be > 0 and within [min, max] = [{:?}, {:?}], got {:?}",
                    self.min, self.max, self.initial
                ),
            ));
        }
        if self.min_samples == 0 {
            return Err(InvalidSettings::new("min_samples", "must be ≥ 1, got 0"));
        }
        let floor = self.min_samples.max(MIN_WINDOW);
        if !(floor..=MAX_WINDOW).contains(&self.window) {
            return Err(InvalidSettings::new(
                "window",
                format!(
                    "must be within [max(min_samples, {MIN_WINDOW}), {MAX_WINDOW}] = [{floor}, {MAX_WINDOW}], got {}",
                    self.window
                ),
            ));
        }
        Ok(AdaptiveTimeoutSettings {
            mode: self.mode,
            initial: self.initial,
            quantile: self.quantile,
            padding: self.padding,
            min: self.min,
            max: self.max,
            min_samples: self.min_samples,
            window: self.window,
            granularity: self.granularity,
        })
    }
}

impl Default for AdaptiveTimeoutSettingsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let built = AdaptiveTimeoutSettings::builder().build().unwrap();
        assert_eq!(built, AdaptiveTimeoutSettings::default());
    }

    #[test]
    fn window_floor_follows_min_samples() {
        let err = AdaptiveTimeoutSettings::builder()
            .with_min_samples(100)
            .with_window(99)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "window");
        let err = AdaptiveTimeoutSettings::builder()
            .with_min_samples(1)
            .with_window(MIN_WINDOW - 1)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "window");
        assert!(
            AdaptiveTimeoutSettings::builder()
                .with_window(MAX_WINDOW + 1)
                .build()
                .is_err()
        );
    }

    #[test]
    fn mode_is_spelled_in_snake_case() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};

        let parse = |s: &'static str| {
            let d: StrDeserializer<'_, Error> = s.into_deserializer();
            EstimatorMode::deserialize(d)
        };
        assert_eq!(parse("quantile").unwrap(), EstimatorMode::Quantile);
        assert_eq!(parse("rfc6298").unwrap(), EstimatorMode::Rfc6298);
        assert!(parse("p2").is_err());
    }
}
