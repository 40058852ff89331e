//! [`BudgetSettings`]: validated retry-budget parameters.

use std::time::Duration;

use crate::InvalidSettings;

const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60);
const MAX_RETRY_PERCENT: f64 = 1000.0;

/// The parameters of a [`RetryBudget`](super::RetryBudget), validated.
///
/// * `ttl` - how long a deposit counts, within `[1s, 60s]` (Finagle's bounds).
/// * `min_per_second` - retries allowed per second even without deposits (the reserve).
/// * `retry_percent` - retries allowed per deposit, as a ratio within `[0, 1000]`: `0.2` lets
///   one request in five be retried, `2.0` lets each request be retried twice.
///
/// # Default
///
/// Finagle's and tower's default: `ttl` 10 s, `min_per_second` 10, `retry_percent` 0.2.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::budget::BudgetSettings;
///
/// let settings = BudgetSettings::default();
/// assert_eq!(settings.ttl(), Duration::from_secs(10));
/// assert_eq!(settings.min_per_second(), 10);
/// assert_eq!(settings.retry_percent(), 0.2);
///
/// let err = BudgetSettings::new(Duration::from_millis(500), 10, 0.2).unwrap_err();
/// assert_eq!(err.field, "ttl");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    ttl: Duration,
    min_per_second: u32,
    retry_percent: f64,
}

// ===== impl BudgetSettings =====

impl BudgetSettings {
    /// Checks the parameters (see the [type docs](BudgetSettings)).
    ///
    /// # Errors
    ///
    /// [`InvalidSettings`] for `ttl` outside `[1s, 60s]`, or `retry_percent` NaN, infinite or
    /// outside `[0, 1000]`.
    pub fn new(
        ttl: Duration,
        min_per_second: u32,
        retry_percent: f64,
    ) -> Result<Self, InvalidSettings> {
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(InvalidSettings::new(
                "ttl",
                format!("must be within [1s, 60s], got {ttl:?}"),
            ));
        }
        if !(0.0..=MAX_RETRY_PERCENT).contains(&retry_percent) {
            return Err(InvalidSettings::new(
                "retry_percent",
                format!("must be a number within [0, 1000], got {retry_percent}"),
            ));
        }
        Ok(Self {
            ttl,
            min_per_second,
            retry_percent,
        })
    }

    /// How long a deposit counts: at least `ttl`, at most `ttl × 1.1` (slot granularity).
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Retries allowed per second without any deposit.
    pub const fn min_per_second(&self) -> u32 {
        self.min_per_second
    }

    /// Retries allowed per deposit, within `[0, 1000]`.
    pub const fn retry_percent(&self) -> f64 {
        self.retry_percent
    }
}

impl Default for BudgetSettings {
    /// `ttl` 10 s, `min_per_second` 10, `retry_percent` 0.2.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_per_second: 10,
            retry_percent: 0.2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds_are_inclusive() {
        assert!(BudgetSettings::new(MIN_TTL, 0, 0.2).is_ok());
        assert!(BudgetSettings::new(MAX_TTL, 0, 0.2).is_ok());
        assert!(BudgetSettings::new(MAX_TTL + Duration::from_nanos(1), 0, 0.2).is_err());
    }

    #[test]
    fn retry_percent_must_be_finite_and_in_range() {
        for bad in [f64::NAN, f64::INFINITY, -0.1, 1000.5] {
            let err = BudgetSettings::new(MIN_TTL, 0, bad).unwrap_err();
            assert_eq!(err.field, "retry_percent", "{bad}");
        }
        assert!(BudgetSettings::new(MIN_TTL, 0, 1000.0).is_ok());
        assert!(BudgetSettings::new(MIN_TTL, 0, 0.0).is_ok());
    }
}
