//! `[breakers.NAME]`, `[retry_policies.NAME]` and `[budgets.NAME]`: the file's shape of each
//! core settings type, and its conversion into it (validated by the core's builders).

use std::time::Duration;

use ractor_resilience_core::Ratio;
use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::breaker::BreakerSettings;
use ractor_resilience_core::budget::BudgetSettings;
use serde::Deserialize;

use super::source::{EntryError, FieldError};
use super::values::{CountOrOff, DurationOrOff, duration};

/// The slow-call duration the core uses when none is given (resilience4j's default).
const DEFAULT_SLOW_CALL_DURATION: Duration = Duration::from_secs(60);
/// The seed's `Jitter: true` adds up to 25% to each delay.
const DEFAULT_JITTER_FACTOR: f64 = 0.25;

/// `[breakers.NAME]`; every key optional, defaults from [`BreakerSettings`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    max_failures: Option<CountOrOff>,
    failure_rate_threshold: Option<f64>,
    slow_call_rate_threshold: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    slow_call_duration: Option<Duration>,
    window_size: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    window_duration: Option<Duration>,
    minimum_calls: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    open_duration: Option<Duration>,
    open_backoff_multiplier: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    max_open_duration: Option<Duration>,
    open_jitter: Option<f64>,
    half_open_probes: Option<u32>,
    half_open_successes: Option<u32>,
    half_open_max_wait: Option<DurationOrOff>,
}

impl RawBreaker {
    pub(crate) fn resolve(self) -> Result<BreakerSettings, EntryError> {
        let mut b = BreakerSettings::builder();
        b = match self.max_failures {
            None => b,
            Some(CountOrOff::Off) => b.without_max_failures(),
            Some(CountOrOff::On(n)) => b.with_max_failures(n),
        };
        if let Some(t) = self.failure_rate_threshold {
            b = b.with_failure_rate(t);
        }
        match (self.slow_call_rate_threshold, self.slow_call_duration) {
            (Some(t), d) => b = b.with_slow_calls(t, d.unwrap_or(DEFAULT_SLOW_CALL_DURATION)),
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "slow_call_duration",
                    "has no effect without slow_call_rate_threshold",
                )
                .into());
            }
            (None, None) => {}
        }
        match (self.window_size, self.window_duration) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "window_duration",
                    "conflicts with window_size: set window_size for a count-based window or \
                     window_duration for a time-based one, not both",
                )
                .into());
            }
            (Some(n), None) => b = b.with_count_window(n),
            (None, Some(d)) => b = b.with_time_window(d),
            (None, None) => {}
        }
        if let Some(n) = self.minimum_calls {
            b = b.with_minimum_calls(n);
        }
        if let Some(d) = self.open_duration {
            b = b.with_open_duration(d);
        }
        match (
            self.open_backoff_multiplier,
            self.max_open_duration,
            self.open_jitter,
        ) {
            (Some(multiplier), Some(max), jitter) => {
                b = b.with_open_backoff(multiplier, max, jitter.unwrap_or(0.0));
            }
            (Some(_), None, _) => {
                return Err(FieldError::new(
                    "max_open_duration",
                    "is required when open_backoff_multiplier is set (the cap of the growing open duration)",
                )
                .into());
            }
            (None, max, jitter) => {
                let stray = if max.is_some() {
                    Some("max_open_duration")
                } else if jitter.is_some() {
                    Some("open_jitter")
                } else {
                    None
                };
                if let Some(key) = stray {
                    return Err(FieldError::new(
                        key,
                        "has no effect without open_backoff_multiplier",
                    )
                    .into());
                }
            }
        }
        if let Some(n) = self.half_open_probes {
            b = b.with_half_open_probes(n);
        }
        if let Some(n) = self.half_open_successes {
            b = b.with_half_open_successes(n);
        }
        match self.half_open_max_wait {
            None => {}
            Some(DurationOrOff::Off) => b = b.with_half_open_max_wait(None),
            Some(DurationOrOff::On(d)) => b = b.with_half_open_max_wait(Some(d)),
        }
        Ok(b.build()?)
    }
}

/// The spelling of [`Jitter`] kinds in files.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JitterKind {
    None,
    Proportional,
    Full,
    Equal,
    Decorrelated,
}

/// `[retry_policies.NAME]`; every key optional, defaults from [`RetryPolicy`] (the seed's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    initial_delay: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max_delay: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<JitterKind>,
    jitter_factor: Option<f64>,
}

impl RawRetry {
    pub(crate) fn resolve(self) -> Result<RetryPolicy, EntryError> {
        let mut b = RetryPolicy::builder();
        if let Some(n) = self.max_attempts {
            b = b.with_max_attempts(n);
        }
        if let Some(d) = self.initial_delay {
            b = b.with_initial_delay(d);
        }
        if let Some(d) = self.max_delay {
            b = b.with_max_delay(d);
        }
        if let Some(m) = self.multiplier {
            b = b.with_multiplier(m);
        }
        let kind = self.jitter.unwrap_or(JitterKind::Proportional);
        let jitter = match (kind, self.jitter_factor) {
            (JitterKind::Proportional, factor) => Jitter::Proportional(Ratio::new(
                "jitter_factor",
                factor.unwrap_or(DEFAULT_JITTER_FACTOR),
            )?),
            (_, Some(_)) => {
                return Err(FieldError::new(
                    "jitter_factor",
                    "is only used with jitter = \"proportional\"",
                )
                .into());
            }
            (JitterKind::None, None) => Jitter::None,
            (JitterKind::Full, None) => Jitter::Full,
            (JitterKind::Equal, None) => Jitter::Equal,
            (JitterKind::Decorrelated, None) => Jitter::Decorrelated,
        };
        Ok(b.with_jitter(jitter).build()?)
    }
}

/// `[budgets.NAME]`; every key optional, defaults from [`BudgetSettings`] (Finagle's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    #[serde(default, deserialize_with = "duration")]
    ttl: Option<Duration>,
    min_per_second: Option<u32>,
    retry_percent: Option<f64>,
}

impl RawBudget {
    pub(crate) fn resolve(self) -> Result<BudgetSettings, EntryError> {
        let d = BudgetSettings::default();
        Ok(BudgetSettings::new(
            self.ttl.unwrap_or(d.ttl()),
            self.min_per_second.unwrap_or(d.min_per_second()),
            self.retry_percent.unwrap_or(d.retry_percent()),
        )?)
    }
}
