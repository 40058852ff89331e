//! [`BreakerSettings`]: which trip policies are on, how long the breaker stays open, and how it
//! probes in half-open. Validated once, by [`BreakerSettingsBuilder::build`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::settings::check_duration;
use crate::{InvalidSettings, Ratio};

/// The sliding window over which failure and slow-call rates are computed.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::{BreakerSettings, SlidingWindow};
///
/// let s = BreakerSettings::builder().with_failure_rate(0.5).with_time_window(Duration::from_secs(60)).build().unwrap();
/// assert_eq!(s.window(), SlidingWindow::Time(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` recorded calls (resilience4j `COUNT_BASED`).
    Count(NonZeroU32),
    /// The calls recorded during the last `duration`, kept in [`TIME_WINDOW_BUCKETS`] buckets of
    /// `duration / TIME_WINDOW_BUCKETS` each (Hystrix's rolling window): the window is the
    /// current bucket and the `TIME_WINDOW_BUCKETS − 1` before it, so a call counts for **more
    /// than `duration × (1 − 1/TIME_WINDOW_BUCKETS)` and at most `duration`** after it was
    /// recorded (0.9 × to 1 × `duration`, as in resilience4j's time-based window). Exactly: a
    /// call leaves when the `TIME_WINDOW_BUCKETS`-th bucket after its own begins; buckets are
    /// aligned on the first call recorded since the window was last cleared, and their width is
    /// rounded down to the nanosecond (so "0.9 ×" may be a few nanoseconds short).
    Time(Duration),
}

/// How many buckets a [`SlidingWindow::Time`] window keeps (memory is constant in the call rate).
pub const TIME_WINDOW_BUCKETS: usize = 10;

/// Exponential growth of the open duration across consecutive re-opens (Akka's
/// `exponentialBackoffFactor` / `maxResetTimeout` / `randomFactor`).
///
/// The k-th consecutive opening (k = 0 for the first one after Closed) stays open for
/// `min(max, open_duration × multiplier^k × (1 + U[0, jitter]))`.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::BreakerSettings;
///
/// let s = BreakerSettings::builder().with_open_backoff(2.0, Duration::from_secs(300), 0.1).build().unwrap();
/// let b = s.open_backoff().unwrap();
/// assert_eq!((b.multiplier, b.max, b.jitter.get()), (2.0, Duration::from_secs(300), 0.1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenBackoff {
    /// Growth factor per consecutive re-open, ≥ 1.
    pub multiplier: f64,
    /// The longest an opening may last.
    pub max: Duration,
    /// Additive random factor: each duration is stretched by up to this fraction.
    pub jitter: Ratio,
}

/// Validated circuit-breaker settings.
///
/// Trip policies combine: the breaker opens when **any** enabled policy trips.
///
/// # Default
/// The seed's `CircuitBreakerConfig` defaults: trips after `max_failures = 5` consecutive
/// failures, stays open `open_duration = 10s`, admits `half_open_probes = 1` probe and re-opens
/// if the probe has not reported within `half_open_max_wait = 30s`. Rate policies are off; when
/// enabled they use resilience4j's defaults (`Count(100)` window, `minimum_calls = 100`,
/// `slow_call_duration = 60s`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::BreakerSettings;
///
/// let settings = BreakerSettings::builder()
///     .with_max_failures(3)
///     .with_failure_rate(0.5)
///     .with_count_window(20)
///     .with_minimum_calls(10)
///     .with_open_duration(Duration::from_secs(15))
///     .build()
///     .unwrap();
/// assert_eq!(settings.max_failures(), Some(3));
///
/// let err = BreakerSettings::builder().with_max_failures(0).build().unwrap_err();
/// assert_eq!(err.field, "max_failures");
/// ```
///
/// # Sharing
/// Cloning is cheap (a reference count): the settings are immutable once built, so a keyed
/// family ([`BreakerFamily`](super::BreakerFamily)) gives every key's breaker the same copy
/// instead of one each.
#[derive(Clone, PartialEq)]
pub struct BreakerSettings(Arc<Fields>);

#[derive(Debug, PartialEq)]
struct Fields {
    max_failures: Option<NonZeroU32>,
    failure_rate_threshold: Option<Ratio>,
    slow_call_rate_threshold: Option<Ratio>,
    slow_call_duration: Duration,
    window: SlidingWindow,
    minimum_calls: NonZeroU32,
    open_duration: Duration,
    open_backoff: Option<OpenBackoff>,
    half_open_probes: NonZeroU32,
    half_open_successes: Option<NonZeroU32>,
    half_open_max_wait: Option<Duration>,
}

impl std::fmt::Debug for BreakerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As `#[derive(Debug)]` printed it before the fields moved behind the `Arc`.
        let Fields {
            max_failures,
            failure_rate_threshold,
            slow_call_rate_threshold,
            slow_call_duration,
            window,
            minimum_calls,
            open_duration,
            open_backoff,
            half_open_probes,
            half_open_successes,
            half_open_max_wait,
        } = &*self.0;
        f.debug_struct("BreakerSettings")
            .field("max_failures", max_failures)
            .field("failure_rate_threshold", failure_rate_threshold)
            .field("slow_call_rate_threshold", slow_call_rate_threshold)
            .field("slow_call_duration", slow_call_duration)
            .field("window", window)
            .field("minimum_calls", minimum_calls)
            .field("open_duration", open_duration)
            .field("open_backoff", open_backoff)
            .field("half_open_probes", half_open_probes)
            .field("half_open_successes", half_open_successes)
            .field("half_open_max_wait", half_open_max_wait)
            .finish()
    }
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings::builder()
            .build()
            .expect("default breaker settings are valid")
    }
}

impl BreakerSettings {
    /// Starts from the defaults (see [`BreakerSettings`]).
    pub const fn builder() -> BreakerSettingsBuilder {
        BreakerSettingsBuilder::new()
    }

    /// Consecutive failures that open the breaker, if that policy is on.
    pub fn max_failures(&self) -> Option<u32> {
        self.0.max_failures.map(NonZeroU32::get)
    }
    /// Failure rate (≥) that opens the breaker, if that policy is on.
    pub fn failure_rate_threshold(&self) -> Option<Ratio> {
        self.0.failure_rate_threshold
    }
    /// Slow-call rate (≥) that opens the breaker, if that policy is on.
    pub fn slow_call_rate_threshold(&self) -> Option<Ratio> {
        self.0.slow_call_rate_threshold
    }
    /// A call is slow when it lasts strictly longer than this.
    pub fn slow_call_duration(&self) -> Duration {
        self.0.slow_call_duration
    }
    /// The window the rates are computed over.
    pub fn window(&self) -> SlidingWindow {
        self.0.window
    }
    /// Rates are not evaluated while the window holds fewer calls than this (capped at a count
    /// window's size).
    pub fn minimum_calls(&self) -> u32 {
        match self.0.window {
            SlidingWindow::Count(n) => self.0.minimum_calls.get().min(n.get()),
            SlidingWindow::Time(_) => self.0.minimum_calls.get(),
        }
    }
    /// How long the first opening lasts.
    pub fn open_duration(&self) -> Duration {
        self.0.open_duration
    }
    /// Growth of the open duration across consecutive re-opens, if on.
    pub fn open_backoff(&self) -> Option<OpenBackoff> {
        self.0.open_backoff
    }
    /// Probes admitted per half-open period.
    pub fn half_open_probes(&self) -> u32 {
        self.0.half_open_probes.get()
    }
    /// Successful probes that close the breaker under the consecutive-failures policy alone
    /// (defaults to all probes). Rate policies decide once every probe has reported instead.
    pub fn half_open_successes(&self) -> u32 {
        self.0
            .half_open_successes
            .map_or(self.0.half_open_probes.get(), NonZeroU32::get)
    }
    /// Re-open if the probes have not decided within this long after the first probe was
    /// admitted (`None`: wait for them indefinitely).
    pub fn half_open_max_wait(&self) -> Option<Duration> {
        self.0.half_open_max_wait
    }
    /// Whether a rate policy (failure rate or slow-call rate) is on.
    pub fn has_rate_policy(&self) -> bool {
        self.0.failure_rate_threshold.is_some() || self.0.slow_call_rate_threshold.is_some()
    }
}

/// Builds [`BreakerSettings`]; every value is checked by [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::BreakerSettings;
///
/// let err = BreakerSettings::builder().with_half_open_probes(2).with_half_open_successes(3).build().unwrap_err();
/// assert_eq!(err.field, "half_open_successes");
/// assert!(BreakerSettings::builder().with_open_duration(Duration::from_secs(15)).build().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct BreakerSettingsBuilder {
    max_failures: Option<u32>,
    failure_rate_threshold: Option<f64>,
    slow_call: Option<(f64, Duration)>,
    window: Option<(Option<u32>, Option<Duration>)>,
    minimum_calls: u32,
    open_duration: Duration,
    open_backoff: Option<(f64, Duration, f64)>,
    half_open_probes: u32,
    half_open_successes: Option<u32>,
    half_open_max_wait: Option<Duration>,
}

impl Default for BreakerSettingsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BreakerSettingsBuilder {
    /// The defaults listed on [`BreakerSettings`].
    pub const fn new() -> Self {
        Self {
            max_failures: Some(5),
            failure_rate_threshold: None,
            slow_call: None,
            window: None,
            minimum_calls: 100,
            open_duration: Duration::from_secs(10),
            open_backoff: None,
            half_open_probes: 1,
            half_open_successes: None,
            half_open_max_wait: Some(Duration::from_secs(30)),
        }
    }

    /// Opens after `n` consecutive counted failures (the seed's `MaxFailures`).
    pub const fn with_max_failures(mut self, n: u32) -> Self {
        self.max_failures = Some(n);
        self
    }
    /// Turns the consecutive-failures policy off (a rate policy must then be on).
    pub const fn without_max_failures(mut self) -> Self {
        self.max_failures = None;
        self
    }
    /// Opens when the failure rate over the window is ≥ `threshold` (in `(0, 1]`).
    pub const fn with_failure_rate(mut self, threshold: f64) -> Self {
        self.failure_rate_threshold = Some(threshold);
        self
    }
    /// Opens when the rate of calls slower than `duration` is ≥ `threshold` (in `(0, 1]`).
    pub const fn with_slow_calls(mut self, threshold: f64, duration: Duration) -> Self {
        self.slow_call = Some((threshold, duration));
        self
    }
    /// Rates over the last `n` calls.
    pub const fn with_count_window(mut self, n: u32) -> Self {
        self.window = Some((Some(n), None));
        self
    }
    /// Rates over the calls of the last `duration`.
    pub const fn with_time_window(mut self, duration: Duration) -> Self {
        self.window = Some((None, Some(duration)));
        self
    }
    /// No rate is evaluated before the window holds `n` calls.
    pub const fn with_minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }
    /// How long an opening lasts (the seed's `Timeout`).
    pub const fn with_open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = duration;
        self
    }
    /// Grows the open duration by `multiplier` per consecutive re-open, up to `max`, stretched
    /// by up to `jitter` (a fraction).
    pub const fn with_open_backoff(mut self, multiplier: f64, max: Duration, jitter: f64) -> Self {
        self.open_backoff = Some((multiplier, max, jitter));
        self
    }
    /// Admits `n` probes per half-open period.
    pub const fn with_half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }
    /// Closes after `n` successful probes (consecutive-failures policy alone; ≤ probes).
    pub const fn with_half_open_successes(mut self, n: u32) -> Self {
        self.half_open_successes = Some(n);
        self
    }
    /// Re-opens when probes have not decided within `wait` (`None`: no limit). The seed's
    /// `ResetTimeout`.
    pub const fn with_half_open_max_wait(mut self, wait: Option<Duration>) -> Self {
        self.half_open_max_wait = wait;
        self
    }

    /// Checks every value and returns the settings, or the first invalid field.
    pub fn build(self) -> Result<BreakerSettings, InvalidSettings> {
        let max_failures = match self.max_failures {
            None => None,
            Some(n) => Some(
                NonZeroU32::new(n)
                    .ok_or_else(|| InvalidSettings::new("max_failures", "must be at least 1"))?,
            ),
        };
        let failure_rate_threshold = self
            .failure_rate_threshold
            .map(|t| threshold("failure_rate_threshold", t))
            .transpose()?;
        let (slow_call_rate_threshold, slow_call_duration) = match self.slow_call {
            None => (None, Duration::from_secs(60)),
            Some((t, d)) => {
                if d.is_zero() {
                    return Err(InvalidSettings::new(
                        "slow_call_duration",
                        "must be greater than zero",
                    ));
                }
                (Some(threshold("slow_call_rate_threshold", t)?), d)
            }
        };
        if max_failures.is_none()
            && failure_rate_threshold.is_none()
            && slow_call_rate_threshold.is_none()
        {
            return Err(InvalidSettings::new(
                "max_failures",
                "no trip policy is enabled: set max_failures, failure_rate_threshold or slow_call_rate_threshold",
            ));
        }
        let window = match self.window {
            None => SlidingWindow::Count(NonZeroU32::new(100).expect("non-zero")),
            Some((Some(n), _)) => SlidingWindow::Count(
                NonZeroU32::new(n)
                    .ok_or_else(|| InvalidSettings::new("window_size", "must be at least 1"))?,
            ),
            Some((None, Some(d))) => {
                if d.is_zero() {
                    return Err(InvalidSettings::new(
                        "window_duration",
                        "must be greater than zero",
                    ));
                }
                SlidingWindow::Time(d)
            }
            Some((None, None)) => unreachable!("the builder always sets one window kind"),
        };
        let minimum_calls = NonZeroU32::new(self.minimum_calls)
            .ok_or_else(|| InvalidSettings::new("minimum_calls", "must be at least 1"))?;
        if self.open_duration.is_zero() {
            return Err(InvalidSettings::new(
                "open_duration",
                "must be greater than zero",
            ));
        }
        let open_backoff = match self.open_backoff {
            None => None,
            Some((multiplier, max, jitter)) => {
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(InvalidSettings::new(
                        "open_backoff_multiplier",
                        format!("must be a finite number ≥ 1.0, got {multiplier}"),
                    ));
                }
                if max < self.open_duration {
                    return Err(InvalidSettings::new(
                        "max_open_duration",
                        format!(
                            "must be ≥ open_duration ({:?}), got {max:?}",
                            self.open_duration
                        ),
                    ));
                }
                Some(OpenBackoff {
                    multiplier,
                    max,
                    jitter: Ratio::new("open_jitter", jitter)?,
                })
            }
        };
        let half_open_probes = NonZeroU32::new(self.half_open_probes)
            .ok_or_else(|| InvalidSettings::new("half_open_probes", "must be at least 1"))?;
        let half_open_successes = match self.half_open_successes {
            None => None,
            Some(n) if n == 0 || n > half_open_probes.get() => {
                return Err(InvalidSettings::new(
                    "half_open_successes",
                    format!("must be between 1 and half_open_probes ({half_open_probes}), got {n}"),
                ));
            }
            Some(n) => NonZeroU32::new(n),
        };
        if self.half_open_max_wait.is_some_and(|w| w.is_zero()) {
            return Err(InvalidSettings::new(
                "half_open_max_wait",
                "must be greater than zero",
            ));
        }
        check_duration("open_duration", self.open_duration)?;
        check_duration("slow_call_duration", slow_call_duration)?;
        if let SlidingWindow::Time(d) = window {
            check_duration("window_duration", d)?;
        }
        if let Some(b) = &open_backoff {
            check_duration("max_open_duration", b.max)?;
        }
        if let Some(w) = self.half_open_max_wait {
            check_duration("half_open_max_wait", w)?;
        }
        Ok(BreakerSettings(Arc::new(Fields {
            max_failures,
            failure_rate_threshold,
            slow_call_rate_threshold,
            slow_call_duration,
            window,
            minimum_calls,
            open_duration: self.open_duration,
            open_backoff,
            half_open_probes,
            half_open_successes,
            half_open_max_wait: self.half_open_max_wait,
        })))
    }
}

/// A rate threshold: a ratio that is not zero (a zero threshold would trip on every call).
fn threshold(field: &'static str, value: f64) -> Result<Ratio, InvalidSettings> {
    let ratio = Ratio::new(field, value)?;
    if ratio.get() == 0.0 {
        return Err(InvalidSettings::new(field, "must be greater than zero"));
    }
    Ok(ratio)
}
