//! Validated building blocks shared by every policy: the [`InvalidSettings`] error and the
//! [`Ratio`] newtype.

use std::fmt;
use std::time::Duration;

/// The longest duration any setting accepts: one year. A longer one is a mistake in practice,
/// and it would overflow `Instant` arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Checks that `d` is at most [`MAX_DURATION`]; `field` names it in the error.
pub(crate) fn check_duration(field: &'static str, d: Duration) -> Result<(), InvalidSettings> {
    if d > MAX_DURATION {
        Err(InvalidSettings::new(
            field,
            format!("must be at most 365 days, got {d:?}"),
        ))
    } else {
        Ok(())
    }
}

/// A settings value that breaks a documented rule.
///
/// `field` is the settings field's name exactly as the configuration file spells it
/// (`max_failures`, `multiplier`, …), so a config loader can point at the offending key.
///
/// ```
/// use ractor_resilience_core::{InvalidSettings, Ratio};
///
/// let err: InvalidSettings = Ratio::new("failure_rate_threshold", 1.5).unwrap_err();
/// assert_eq!(err.field, "failure_rate_threshold");
/// assert_eq!(err.to_string(), "invalid `failure_rate_threshold`: must be within [0, 1], got 1.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct InvalidSettings {
    /// The field's name as configuration files spell it.
    pub field: &'static str,
    /// What rule the value breaks, lowercase, no trailing period.
    pub reason: String,
}

impl InvalidSettings {
    /// Creates an error for `field` with a human-readable `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A fraction in `[0, 1]` (a rate threshold, a jitter factor, a retry percentage ≤ 100%).
///
/// ```
/// use ractor_resilience_core::Ratio;
///
/// let half = Ratio::new("threshold", 0.5).unwrap();
/// assert_eq!(half.get(), 0.5);
/// assert!(Ratio::new("threshold", f64::NAN).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Ratio(f64);

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio(0.0);
    /// One.
    pub const ONE: Ratio = Ratio(1.0);

    /// Checks that `value` is a finite number in `[0, 1]`; `field` names it in the error.
    pub fn new(field: &'static str, value: f64) -> Result<Self, InvalidSettings> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(Ratio(value))
        } else {
            Err(InvalidSettings::new(
                field,
                format!("must be within [0, 1], got {value}"),
            ))
        }
    }

    /// A ratio known at compile time. Values outside `[0, 1]` are clamped (NaN becomes 0).
    pub const fn saturating(value: f64) -> Self {
        if value.is_nan() || value < 0.0 {
            Ratio(0.0)
        } else if value > 1.0 {
            Ratio(1.0)
        } else {
            Ratio(value)
        }
    }

    /// The fraction as an `f64` in `[0, 1]`.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
