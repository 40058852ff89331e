//! `[timeouts.NAME]`: [`TimeoutSettings`] (fixed, per operation, adaptive) and
//! [`PerOperationTimeouts`], the seed's `TimeoutManager`.

use std::collections::BTreeMap;
use std::time::Duration;

use ractor_resilience_core::InvalidSettings;
use ractor_resilience_core::estimator::{
    AdaptiveTimeoutSettings, AdaptiveTimeoutSettingsBuilder, EstimatorMode,
};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::is_valid_name;
use super::policies::{Setter, build_each};
use super::resolve::DeserializeFrom;
use super::source::{EntryError, FieldError, as_table};
use super::values::duration;

/// The seed's `TimeoutConfig.DefaultTimeout` default.
const SEED_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The seed's `TimeoutConfig.SlowOperationThreshold` default.
const SEED_SLOW_OPERATION_THRESHOLD: Duration = Duration::from_secs(10);

/// How long a call may take, as one `[timeouts.NAME]` section sets it (`kind = …`).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::config::{ResolvedConfig, TimeoutSettings};
///
/// let text = r#"
/// [timeouts.fast]
/// kind = "fixed"
/// duration = "5s"
///
/// [timeouts.llm]
/// kind = "per_operation"
/// default = "60s"
/// slow_operation_threshold = "20s"
/// operations = { summarize = "2m" }
/// "#;
/// let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
/// assert_eq!(config.timeouts["fast"], TimeoutSettings::Fixed(Duration::from_secs(5)));
/// assert_eq!(config.timeouts["llm"].timeout_for("summarize"), Duration::from_secs(120));
/// assert_eq!(config.timeouts["llm"].timeout_for("embed"), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum TimeoutSettings {
    /// `kind = "fixed"`: the same deadline for every call (`duration`, default 30 s, the seed's
    /// `DefaultTimeout`).
    Fixed(Duration),
    /// `kind = "per_operation"`: the seed's `TimeoutManager`.
    PerOperation(PerOperationTimeouts),
    /// `kind = "adaptive"`: a deadline that follows recent latencies (the seed's
    /// `NewAdaptiveTimeout(30s, 0.95)` by default).
    Adaptive(AdaptiveTimeoutSettings),
}

impl TimeoutSettings {
    /// The deadline a call to `operation` starts with: the fixed one, the operation's (or the
    /// default), or the adaptive estimator's `initial` value before it has samples.
    pub fn timeout_for(&self, operation: &str) -> Duration {
        match self {
            TimeoutSettings::Fixed(d) => *d,
            TimeoutSettings::PerOperation(p) => p.timeout_for(operation),
            TimeoutSettings::Adaptive(a) => a.initial(),
        }
    }

    /// The `kind` value that selects this variant in a file.
    pub fn kind(&self) -> &'static str {
        match self {
            TimeoutSettings::Fixed(_) => "fixed",
            TimeoutSettings::PerOperation(_) => "per_operation",
            TimeoutSettings::Adaptive(_) => "adaptive",
        }
    }
}

/// Deadlines per named operation, with a default and a slow-operation threshold (the seed's
/// `TimeoutManager`: `DefaultTimeout`, `SlowOperationThreshold`, `Execute(ctx, "llm-call", 15s,
/// …)`).
///
/// Valid by construction: every duration is greater than zero and every operation name is a
/// valid [name](super::is_valid_name) (operations become metric label values).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::config::PerOperationTimeouts;
///
/// let t = PerOperationTimeouts::new(Duration::from_secs(60), Duration::from_secs(20))?
///     .with_operation("summarize", Duration::from_secs(120))?;
/// assert_eq!(t.timeout_for("summarize"), Duration::from_secs(120));
/// assert_eq!(t.timeout_for("other"), Duration::from_secs(60));
/// assert!(t.is_slow(Duration::from_secs(21)));
/// assert!(t.with_operation("Bad Name", Duration::from_secs(1)).is_err());
/// # Ok::<(), ractor_resilience::core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerOperationTimeouts {
    default: Duration,
    slow_operation_threshold: Duration,
    operations: BTreeMap<String, Duration>,
}

impl PerOperationTimeouts {
    /// A manager with no per-operation entries yet.
    ///
    /// # Errors
    /// `default` or `slow_operation_threshold` if zero.
    pub fn new(
        default: Duration,
        slow_operation_threshold: Duration,
    ) -> Result<Self, InvalidSettings> {
        positive("default", default)?;
        positive("slow_operation_threshold", slow_operation_threshold)?;
        Ok(Self {
            default,
            slow_operation_threshold,
            operations: BTreeMap::new(),
        })
    }

    /// Sets the deadline of `operation`.
    ///
    /// # Errors
    /// `operations` if the name is not a valid name or the timeout is zero.
    pub fn with_operation(
        mut self,
        operation: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, InvalidSettings> {
        let operation = operation.into();
        if !is_valid_name(&operation) {
            return Err(InvalidSettings::new(
                "operations",
                format!("invalid operation name {operation:?}: {}", super::NAME_RULE),
            ));
        }
        positive("operations", timeout)?;
        self.operations.insert(operation, timeout);
        Ok(self)
    }

    /// The deadline of operations without an entry.
    pub fn default_timeout(&self) -> Duration {
        self.default
    }

    /// Calls that take longer than this are reported as slow.
    pub fn slow_operation_threshold(&self) -> Duration {
        self.slow_operation_threshold
    }

    /// The per-operation deadlines.
    pub fn operations(&self) -> &BTreeMap<String, Duration> {
        &self.operations
    }

    /// The deadline of `operation`: its own, or the default.
    pub fn timeout_for(&self, operation: &str) -> Duration {
        self.operations
            .get(operation)
            .copied()
            .unwrap_or(self.default)
    }

    /// Whether a call that took `elapsed` was slow (strictly longer than the threshold).
    pub fn is_slow(&self, elapsed: Duration) -> bool {
        elapsed > self.slow_operation_threshold
    }
}

fn positive(field: &'static str, d: Duration) -> Result<(), InvalidSettings> {
    if d.is_zero() {
        return Err(InvalidSettings::new(field, "must be greater than zero"));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixed {
    #[serde(rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "duration")]
    duration: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerOperation {
    #[serde(rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "duration")]
    default: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    slow_operation_threshold: Option<Duration>,
    #[serde(default)]
    operations: BTreeMap<String, Operation>,
}

#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct Operation(#[serde(deserialize_with = "duration")] Option<Duration>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdaptive {
    #[serde(rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    mode: Option<EstimatorMode>,
    #[serde(default, deserialize_with = "duration")]
    initial: Option<Duration>,
    quantile: Option<f64>,
    padding: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    min: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max: Option<Duration>,
    min_samples: Option<u32>,
    window: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    granularity: Option<Duration>,
}

/// Resolves one `[timeouts.NAME]` table: `kind` (default `"fixed"`) picks the shape, then the
/// shape's own keys are checked, so an unknown key lists only the keys of that kind.
pub(crate) fn resolve(value: &Spanned<DeValue<'_>>) -> Result<TimeoutSettings, EntryError> {
    let kind = match as_table(value).and_then(|t| t.get("kind")) {
        None => "fixed",
        Some(k) => match k.get_ref() {
            DeValue::String(s) => match s.as_ref() {
                kind @ ("fixed" | "per_operation" | "adaptive") => kind,
                other => {
                    return Err(FieldError::new(
                        "kind",
                        format!("unknown kind {other:?}, expected one of \"fixed\", \"per_operation\", \"adaptive\""),
                    )
                    .into());
                }
            },
            other => {
                return Err(FieldError::new(
                    "kind",
                    format!("expected a string, found {}", other.type_str()),
                )
                .into());
            }
        },
    };
    match kind {
        "per_operation" => {
            let raw = RawPerOperation::deserialize_each_key(value)?;
            let mut t = PerOperationTimeouts::new(
                raw.default.unwrap_or(SEED_DEFAULT_TIMEOUT),
                raw.slow_operation_threshold
                    .unwrap_or(SEED_SLOW_OPERATION_THRESHOLD),
            )?;
            for (name, Operation(timeout)) in raw.operations {
                let key = vec!["operations".to_owned(), name.clone()];
                let timeout = timeout.unwrap_or_default();
                t = t.with_operation(name, timeout).map_err(|e| FieldError {
                    key,
                    reason: e.reason,
                    span: None,
                })?;
            }
            Ok(TimeoutSettings::PerOperation(t))
        }
        "adaptive" => {
            let raw = RawAdaptive::deserialize_each_key(value)?;
            type B = AdaptiveTimeoutSettingsBuilder;
            let mut fields: Vec<Setter<'_, B>> = Vec::new();
            if let Some(v) = raw.mode {
                fields.push((&["mode"], Box::new(move |b| b.with_mode(v))));
            }
            if let Some(v) = raw.initial {
                fields.push((&["initial"], Box::new(move |b| b.with_initial(v))));
            }
            if let Some(v) = raw.quantile {
                fields.push((&["quantile"], Box::new(move |b| b.with_quantile(v))));
            }
            if let Some(v) = raw.padding {
                fields.push((&["padding"], Box::new(move |b| b.with_padding(v))));
            }
            if let Some(v) = raw.min {
                fields.push((&["min"], Box::new(move |b| b.with_min(v))));
            }
            if let Some(v) = raw.max {
                fields.push((&["max"], Box::new(move |b| b.with_max(v))));
            }
            if let Some(v) = raw.min_samples {
                fields.push((&["min_samples"], Box::new(move |b| b.with_min_samples(v))));
            }
            if let Some(v) = raw.window {
                fields.push((&["window"], Box::new(move |b| b.with_window(v))));
            }
            if let Some(v) = raw.granularity {
                fields.push((&["granularity"], Box::new(move |b| b.with_granularity(v))));
            }
            build_each(
                AdaptiveTimeoutSettings::builder,
                fields,
                B::build,
                Vec::new(),
            )
            .map(TimeoutSettings::Adaptive)
        }
        _ => {
            let raw = RawFixed::deserialize_each_key(value)?;
            let d = raw.duration.unwrap_or(SEED_DEFAULT_TIMEOUT);
            positive("duration", d)?;
            Ok(TimeoutSettings::Fixed(d))
        }
    }
}
