//! [`RetryPolicy`] and its builder.

use std::time::Duration;

use rand::Rng;

use super::{ExponentialBackoff, Jitter};
use crate::InvalidSettings;

/// The seed's defaults (`resilience-phase-2.4`, `RetryPolicy`).
const SEED_MAX_ATTEMPTS: u32 = 3;
const SEED_INITIAL_DELAY: Duration = Duration::from_secs(1);
const SEED_MAX_DELAY: Duration = Duration::from_secs(30);
const SEED_MULTIPLIER: f64 = 2.0;

/// How many times to try an operation and how long to wait between tries.
///
/// Always valid: the only way to build one is [`RetryPolicyBuilder::build`], which checks every
/// rule, or [`RetryPolicy::default`].
///
/// # Default
///
/// The seed's values:
///
/// | setting | default |
/// |---|---|
/// | `max_attempts` | 3 (the first attempt and 2 retries) |
/// | `initial_delay` | 1 s |
/// | `max_delay` | 30 s |
/// | `multiplier` | 2.0 |
/// | `jitter` | [`Jitter::SEED_PROPORTIONAL`] (`+0–25%`) |
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.initial_delay(), Duration::from_secs(1));
/// assert_eq!(policy.max_delay(), Duration::from_secs(30));
/// assert_eq!(policy.multiplier(), 2.0);
/// assert_eq!(policy.jitter(), Jitter::SEED_PROPORTIONAL);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: Jitter,
}

// ===== impl RetryPolicy =====

impl RetryPolicy {
    /// A builder that starts from the [defaults](RetryPolicy#default).
    pub const fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::new()
    }

    /// A builder that starts from this policy's values, to derive a variant of it.
    pub const fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            max_attempts: self.max_attempts,
            initial_delay: self.initial_delay,
            max_delay: self.max_delay,
            multiplier: self.multiplier,
            jitter: self.jitter,
        }
    }

    /// Total attempts including the first, so at most `max_attempts − 1` retries. At least 1.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The un-jittered delay before the first retry. Greater than zero, unless the jitter is
    /// [`Jitter::None`] (then zero means "retry at once", every time).
    pub const fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The cap on every delay, jitter included. At least [`initial_delay`](Self::initial_delay).
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The growth factor between consecutive un-jittered delays. Finite and at least 1.
    pub const fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// How each delay is randomised.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The un-jittered delay before retry `retry` (0-based):
    /// `min(max_delay, initial_delay × multiplier^retry)`.
    ///
    /// Saturates at `max_delay` instead of overflowing, for any `retry`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience_core::backoff::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.base_delay(0), Duration::from_secs(1));
    /// assert_eq!(policy.base_delay(3), Duration::from_secs(8));
    /// assert_eq!(policy.base_delay(10_000), Duration::from_secs(30));
    /// ```
    pub fn base_delay(&self, retry: u32) -> Duration {
        if self.initial_delay.is_zero() {
            // 0 × ∞ would be NaN for huge exponents: zero stays zero.
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let ns = nanos(self.initial_delay) * self.multiplier.powi(exponent);
        clamp_to_duration(ns, nanos(self.max_delay), self.max_delay)
    }

    /// The delays to wait before each retry, drawing jitter from `rng`.
    ///
    /// Pass a seeded RNG (`SmallRng::seed_from_u64`) for reproducible delays, or `&mut rng` to
    /// keep using one generator across several backoffs.
    pub fn backoff<R: Rng>(&self, rng: R) -> ExponentialBackoff<R> {
        ExponentialBackoff::new(self, rng)
    }
}

impl Default for RetryPolicy {
    /// The seed's [defaults](RetryPolicy#default).
    fn default() -> Self {
        RetryPolicyBuilder::new().checked()
    }
}

/// Builds a validated [`RetryPolicy`], backon style: `const fn` `with_*`/`without_*` setters,
/// then [`build`](Self::build).
///
/// # Default
///
/// Starts from the [`RetryPolicy` defaults](RetryPolicy#default) (the seed's values).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .with_max_attempts(5)
///     .with_initial_delay(Duration::from_millis(500))
///     .with_jitter(Jitter::Full)
///     .build()?;
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(policy.max_delay(), Duration::from_secs(30)); // untouched default
///
/// let err = RetryPolicy::builder().with_multiplier(0.5).build().unwrap_err();
/// assert_eq!(err.field, "multiplier");
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct RetryPolicyBuilder {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: Jitter,
}

// ===== impl RetryPolicyBuilder =====

impl RetryPolicyBuilder {
    /// A builder holding the [defaults](RetryPolicy#default).
    pub const fn new() -> Self {
        Self {
            max_attempts: SEED_MAX_ATTEMPTS,
            initial_delay: SEED_INITIAL_DELAY,
            max_delay: SEED_MAX_DELAY,
            multiplier: SEED_MULTIPLIER,
            jitter: Jitter::SEED_PROPORTIONAL,
        }
    }

    /// Total attempts including the first (`max_attempts`, at least 1; 1 means never retry).
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The un-jittered delay before the first retry (`initial_delay`, at most `max_delay`).
    ///
    /// Zero is allowed only with [`Jitter::None`], and then means "retry at once": every delay
    /// is `0 × multiplierⁿ = 0`. Every other jitter draws from a range scaled by this base
    /// (decorrelated's lower bound *is* `initial_delay`, and it grows from `3 ×` the previous
    /// delay), so with a zero base every delay would be zero and the jitter would silently do
    /// nothing; [`build`](Self::build) refuses that combination instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rand::{SeedableRng, rngs::SmallRng};
    /// use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
    ///
    /// let at_once = RetryPolicy::builder()
    ///     .with_initial_delay(Duration::ZERO)
    ///     .without_jitter()
    ///     .build()?;
    /// assert!(at_once.backoff(SmallRng::seed_from_u64(0)).all(|d| d.is_zero()));
    ///
    /// let err = RetryPolicy::builder()
    ///     .with_initial_delay(Duration::ZERO)
    ///     .with_jitter(Jitter::Full)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field, "initial_delay");
    /// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
    /// ```
    pub const fn with_initial_delay(mut self, initial_delay: Duration) -> Self {
        self.initial_delay = initial_delay;
        self
    }

    /// The cap on every delay, jitter included (`max_delay`, at least `initial_delay`).
    pub const fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The growth factor between consecutive delays (`multiplier`, finite and at least 1).
    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// How each delay is randomised (`jitter`).
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Plain exponential delays: the same as `with_jitter(Jitter::None)`.
    pub const fn without_jitter(self) -> Self {
        self.with_jitter(Jitter::None)
    }

    /// Checks every rule and returns the policy.
    ///
    /// # Errors
    ///
    /// [`InvalidSettings`] naming the first offending field: `max_attempts` if 0,
    /// `initial_delay` if zero with a jitter other than [`Jitter::None`] or greater than
    /// `max_delay`, `max_delay` if above [`MAX_DURATION`](crate::MAX_DURATION), `multiplier`
    /// if NaN, infinite or below 1.
    pub fn build(self) -> Result<RetryPolicy, InvalidSettings> {
        if self.max_attempts == 0 {
            return Err(InvalidSettings::new(
                "max_attempts",
                "must be at least 1, got 0",
            ));
        }
        // A zero base is "retry at once" without jitter; with jitter it would scale every
        // draw to zero and silently disable the jitter (see `with_initial_delay`).
        if self.initial_delay.is_zero() && !matches!(self.jitter, Jitter::None) {
            return Err(InvalidSettings::new(
                "initial_delay",
                "must be greater than zero unless jitter is none (every jitter scales it)",
            ));
        }
        if self.initial_delay > self.max_delay {
            return Err(InvalidSettings::new(
                "initial_delay",
                format!(
                    "must not exceed max_delay ({:?}), got {:?}",
                    self.max_delay, self.initial_delay
                ),
            ));
        }
        crate::settings::check_duration("max_delay", self.max_delay)?;
        // NaN is not finite, so the first test rejects it.
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(InvalidSettings::new(
                "multiplier",
                format!(
                    "must be a finite number of at least 1, got {}",
                    self.multiplier
                ),
            ));
        }
        Ok(self.checked())
    }

    /// The policy without re-validation: only for values known to be valid.
    fn checked(self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_delay: self.initial_delay,
            max_delay: self.max_delay,
            multiplier: self.multiplier,
            jitter: self.jitter,
        }
    }
}

impl Default for RetryPolicyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A duration in nanoseconds as `f64` (exact up to 2⁵³ ns ≈ 104 days).
pub(crate) fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// Converts `ns` to a `Duration`, saturating at `cap` (`cap_ns` is `nanos(cap)`); NaN and
/// infinities also give `cap`.
#[inline]
pub(crate) fn clamp_to_duration(ns: f64, cap_ns: f64, cap: Duration) -> Duration {
    if ns < cap_ns {
        // `as u64` saturates; the `min` guards against rounding above a cap beyond 2⁵³ ns.
        Duration::from_nanos(ns.round() as u64).min(cap)
    } else {
        cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_delay_saturates_for_huge_exponents_and_multipliers() {
        let policy = RetryPolicy::builder()
            .with_multiplier(1e6)
            .with_max_delay(crate::MAX_DURATION)
            .build()
            .unwrap();
        assert_eq!(policy.base_delay(0), Duration::from_secs(1));
        assert_eq!(policy.base_delay(10_000), crate::MAX_DURATION);
        assert_eq!(policy.base_delay(u32::MAX), crate::MAX_DURATION);
        let err = RetryPolicy::builder()
            .with_max_delay(Duration::MAX)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "max_delay");
    }

    #[test]
    fn multiplier_one_keeps_the_delay_constant() {
        let policy = RetryPolicy::builder().with_multiplier(1.0).build().unwrap();
        assert_eq!(policy.base_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn to_builder_round_trips() {
        let policy = RetryPolicy::builder()
            .with_jitter(Jitter::Equal)
            .build()
            .unwrap();
        assert_eq!(policy.to_builder().build().unwrap(), policy);
    }

    #[test]
    fn infinite_multiplier_is_rejected() {
        let err = RetryPolicy::builder()
            .with_multiplier(f64::INFINITY)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "multiplier");
    }
}
