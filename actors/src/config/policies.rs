//! `[breakers.NAME]`, `[retry_policies.NAME]` and `[budgets.NAME]`: the file's shape of each
//! core settings type, and its conversion into it (validated by the core's builders).

use std::time::Duration;

use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::breaker::{BreakerSettings, FamilySettings};
use ractor_resilience_core::budget::BudgetSettings;
use ractor_resilience_core::{InvalidSettings, Ratio};
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
    // A keyed family: this policy per key.
    keyed: Option<bool>,
    max_keys: Option<u32>,
    idle_evict_after: Option<DurationOrOff>,
    metric_keys: Option<Vec<String>>,
    metric_top_keys: Option<usize>,
}

/// A `[breakers.NAME]` section: one breaker, or (`keyed = true`) a family of one per key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BreakerEntry {
    Plain(BreakerSettings),
    Keyed(KeyedBreakerConfig),
}

/// A `[breakers.NAME]` section with `keyed = true`: the per-key policy (every key of a plain
/// breaker section), the family's bounds, and which keys get metric series of their own.
///
/// ```
/// use ractor_resilience::config::ResolvedConfig;
///
/// let text = "[breakers.models]\nkeyed = true\nmax_failures = 3\nmax_keys = 500\nmetric_keys = [\"gpt-4o\"]\n";
/// let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
/// let models = &config.keyed_breakers["models"];
/// assert_eq!(models.family.max_keys(), 500);
/// assert_eq!(models.family.breaker().max_failures(), Some(3));
/// assert_eq!(models.metric_keys, ["gpt-4o"]);
/// assert!(config.breakers.is_empty(), "a family is not a plain breaker");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedBreakerConfig {
    /// The per-key policy and the family's bounds (`max_keys`, `idle_evict_after`).
    pub family: FamilySettings,
    /// Keys with metric series of their own, always (`metric_keys`).
    pub metric_keys: Vec<String>,
    /// How many of the keys with the most recent failures get series of their own
    /// (`metric_top_keys`); every other key is counted under `key="other"`.
    pub metric_top_keys: usize,
}

impl RawBreaker {
    pub(crate) fn resolve(mut self) -> Result<BreakerEntry, EntryError> {
        let family = (
            self.keyed.take(),
            self.max_keys.take(),
            self.idle_evict_after.take(),
            self.metric_keys.take(),
            self.metric_top_keys.take(),
        );
        let breaker = self.resolve_breaker();
        let (keyed, max_keys, idle, metric_keys, metric_top_keys) = family;
        if keyed != Some(true) {
            let (settings, mut errors) = match breaker {
                Ok(settings) => (Some(settings), Vec::new()),
                Err(EntryError::Field(errors)) => (None, errors),
                Err(other) => return Err(other),
            };
            for (key, given) in [
                ("max_keys", max_keys.is_some()),
                ("idle_evict_after", idle.is_some()),
                ("metric_keys", metric_keys.is_some()),
                ("metric_top_keys", metric_top_keys.is_some()),
            ] {
                if given {
                    errors.push(FieldError::new(key, "has no effect without keyed = true"));
                }
            }
            return match settings {
                Some(settings) if errors.is_empty() => Ok(BreakerEntry::Plain(settings)),
                _ => Err(EntryError::Field(errors)),
            };
        }
        let (settings, mut errors) = match breaker {
            Ok(settings) => (Some(settings), Vec::new()),
            Err(EntryError::Field(errors)) => (None, errors),
            Err(other) => return Err(other),
        };
        let options = crate::breaker::KeyedBreakerOptions::new()
            .with_metric_keys(metric_keys.clone().unwrap_or_default())
            .with_metric_top_keys(
                metric_top_keys
                    .unwrap_or(crate::breaker::KeyedBreakerOptions::DEFAULT_METRIC_TOP_KEYS),
            );
        if let Err(reason) = options.check() {
            let (key, reason) = reason
                .split_once(": ")
                .map_or(("metric_keys", reason.as_str()), |(k, r)| (k, r));
            let key = if key == "metric_top_keys" {
                "metric_top_keys"
            } else {
                "metric_keys"
            };
            errors.push(FieldError::new(key, reason.to_owned()));
        }
        let Some(settings) = settings else {
            return Err(EntryError::Field(errors));
        };
        let mut builder = FamilySettings::builder(settings);
        if let Some(n) = max_keys {
            builder = builder.with_max_keys(n);
        }
        match idle {
            None => {}
            Some(DurationOrOff::Off) => builder = builder.with_idle_evict_after(None),
            Some(DurationOrOff::On(d)) => builder = builder.with_idle_evict_after(Some(d)),
        }
        match builder.build() {
            Ok(family) if errors.is_empty() => Ok(BreakerEntry::Keyed(KeyedBreakerConfig {
                family,
                metric_keys: options.metric_keys,
                metric_top_keys: options.metric_top_keys,
            })),
            Ok(_) => Err(EntryError::Field(errors)),
            Err(e) => {
                errors.push(e.into());
                Err(EntryError::Field(errors))
            }
        }
    }

    fn resolve_breaker(self) -> Result<BreakerSettings, EntryError> {
        type B = ractor_resilience_core::breaker::BreakerSettingsBuilder;
        let mut errors = Vec::new();
        let mut fields: Vec<Setter<'_, B>> = Vec::new();
        match self.max_failures {
            None => {}
            Some(CountOrOff::Off) => {
                fields.push((&["max_failures"], Box::new(B::without_max_failures)))
            }
            Some(CountOrOff::On(n)) => {
                fields.push((&["max_failures"], Box::new(move |b| b.with_max_failures(n))));
            }
        }
        if let Some(t) = self.failure_rate_threshold {
            fields.push((
                &["failure_rate_threshold"],
                Box::new(move |b| b.with_failure_rate(t)),
            ));
        }
        match (self.slow_call_rate_threshold, self.slow_call_duration) {
            (Some(t), d) => fields.push((
                &["slow_call_rate_threshold", "slow_call_duration"],
                Box::new(move |b| b.with_slow_calls(t, d.unwrap_or(DEFAULT_SLOW_CALL_DURATION))),
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "slow_call_duration",
                "has no effect without slow_call_rate_threshold",
            )),
            (None, None) => {}
        }
        match (self.window_size, self.window_duration) {
            (Some(_), Some(_)) => errors.push(FieldError::new(
                "window_duration",
                "conflicts with window_size: set window_size for a count-based window or \
                 window_duration for a time-based one, not both",
            )),
            (Some(n), None) => {
                fields.push((&["window_size"], Box::new(move |b| b.with_count_window(n))));
            }
            (None, Some(d)) => {
                fields.push((
                    &["window_duration"],
                    Box::new(move |b| b.with_time_window(d)),
                ));
            }
            (None, None) => {}
        }
        if let Some(n) = self.minimum_calls {
            fields.push((
                &["minimum_calls"],
                Box::new(move |b| b.with_minimum_calls(n)),
            ));
        }
        if let Some(d) = self.open_duration {
            fields.push((
                &["open_duration"],
                Box::new(move |b| b.with_open_duration(d)),
            ));
        }
        match (
            self.open_backoff_multiplier,
            self.max_open_duration,
            self.open_jitter,
        ) {
            (Some(multiplier), Some(max), jitter) => fields.push((
                &["open_backoff_multiplier", "max_open_duration", "open_jitter"],
                Box::new(move |b| b.with_open_backoff(multiplier, max, jitter.unwrap_or(0.0))),
            )),
            (Some(_), None, _) => errors.push(FieldError::new(
                "max_open_duration",
                "is required when open_backoff_multiplier is set (the cap of the growing open duration)",
            )),
            (None, max, jitter) => {
                for (key, given) in [
                    ("max_open_duration", max.is_some()),
                    ("open_jitter", jitter.is_some()),
                ] {
                    if given {
                        errors.push(FieldError::new(
                            key,
                            "has no effect without open_backoff_multiplier",
                        ));
                    }
                }
            }
        }
        if let Some(n) = self.half_open_probes {
            fields.push((
                &["half_open_probes"],
                Box::new(move |b| b.with_half_open_probes(n)),
            ));
        }
        if let Some(n) = self.half_open_successes {
            fields.push((
                &["half_open_successes"],
                Box::new(move |b| b.with_half_open_successes(n)),
            ));
        }
        match self.half_open_max_wait {
            None => {}
            Some(DurationOrOff::Off) => fields.push((
                &["half_open_max_wait"],
                Box::new(|b| b.with_half_open_max_wait(None)),
            )),
            Some(DurationOrOff::On(d)) => fields.push((
                &["half_open_max_wait"],
                Box::new(move |b| b.with_half_open_max_wait(Some(d))),
            )),
        }
        build_each(BreakerSettings::builder, fields, B::build, errors)
    }
}

/// One field (or fields set together) of a core builder, as given in the file: the keys it
/// sets and how it sets them.
pub(crate) type Setter<'a, B> = (&'static [&'static str], Box<dyn Fn(B) -> B + 'a>);

/// Builds with every given field; when the core names one of them as invalid, records the
/// mistake, drops that field and builds again — so every invalid field is reported (the core's
/// builders stop at the first), and each is checked against the *other* values of the file, not
/// against defaults. `errors` are mistakes found before building (cross-field rules of ours);
/// with any, the result is `Err` even if the build succeeds.
pub(crate) fn build_each<B, T>(
    new: impl Fn() -> B,
    mut fields: Vec<Setter<'_, B>>,
    build: impl Fn(B) -> Result<T, InvalidSettings>,
    mut errors: Vec<FieldError>,
) -> Result<T, EntryError> {
    loop {
        let builder = fields.iter().fold(new(), |b, (_, set)| set(b));
        match build(builder) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => return Err(EntryError::Field(errors)),
            Err(e) => {
                let given = fields.iter().position(|(keys, _)| keys.contains(&e.field));
                errors.push(e.into());
                match given {
                    Some(i) => drop(fields.remove(i)),
                    // A rule about a default value: nothing to drop, nothing more to learn.
                    None => return Err(EntryError::Field(errors)),
                }
            }
        }
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
        type B = ractor_resilience_core::backoff::RetryPolicyBuilder;
        let mut errors = Vec::new();
        let mut fields: Vec<Setter<'_, B>> = Vec::new();
        if let Some(n) = self.max_attempts {
            fields.push((&["max_attempts"], Box::new(move |b| b.with_max_attempts(n))));
        }
        if let Some(d) = self.initial_delay {
            fields.push((
                &["initial_delay"],
                Box::new(move |b| b.with_initial_delay(d)),
            ));
        }
        if let Some(d) = self.max_delay {
            fields.push((&["max_delay"], Box::new(move |b| b.with_max_delay(d))));
        }
        if let Some(m) = self.multiplier {
            fields.push((&["multiplier"], Box::new(move |b| b.with_multiplier(m))));
        }
        let kind = self.jitter.unwrap_or(JitterKind::Proportional);
        let jitter = match (kind, self.jitter_factor) {
            (JitterKind::Proportional, factor) => {
                match Ratio::new("jitter_factor", factor.unwrap_or(DEFAULT_JITTER_FACTOR)) {
                    Ok(r) => Some(Jitter::Proportional(r)),
                    Err(e) => {
                        errors.push(e.into());
                        None
                    }
                }
            }
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "jitter_factor",
                    "is only used with jitter = \"proportional\"",
                ));
                None
            }
            (JitterKind::None, None) => Some(Jitter::None),
            (JitterKind::Full, None) => Some(Jitter::Full),
            (JitterKind::Equal, None) => Some(Jitter::Equal),
            (JitterKind::Decorrelated, None) => Some(Jitter::Decorrelated),
        };
        if let Some(jitter) = jitter {
            fields.push((
                &["jitter", "jitter_factor"],
                Box::new(move |b| b.with_jitter(jitter)),
            ));
        }
        build_each(RetryPolicy::builder, fields, B::build, errors)
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
        type B = (Duration, u32, f64);
        let mut fields: Vec<Setter<'_, B>> = Vec::new();
        if let Some(ttl) = self.ttl {
            fields.push((&["ttl"], Box::new(move |b: B| (ttl, b.1, b.2))));
        }
        if let Some(n) = self.min_per_second {
            fields.push((&["min_per_second"], Box::new(move |b: B| (b.0, n, b.2))));
        }
        if let Some(p) = self.retry_percent {
            fields.push((&["retry_percent"], Box::new(move |b: B| (b.0, b.1, p))));
        }
        let d = BudgetSettings::default();
        build_each(
            || (d.ttl(), d.min_per_second(), d.retry_percent()),
            fields,
            |(ttl, min, percent)| BudgetSettings::new(ttl, min, percent),
            Vec::new(),
        )
    }
}
