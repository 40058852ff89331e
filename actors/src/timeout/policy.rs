//! [`TimeoutPolicy`]: how long a call may take — fixed, per named operation (the seed's
//! `TimeoutManager`), or adaptive — and the immutable operation table callers read it from.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::estimator::AdaptiveTimeoutSettings;

use crate::config::TimeoutSettings;

/// The deadline policy a [`TimeoutActor`](super::TimeoutActor) owns.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::core::estimator::AdaptiveTimeoutSettings;
/// use ractor_resilience::timeout::{OperationTimeouts, PolicyKind, TimeoutPolicy};
///
/// let fixed = TimeoutPolicy::Fixed(Duration::from_secs(5));
/// assert_eq!(fixed.kind(), PolicyKind::Fixed);
/// assert_eq!(fixed.initial_timeout(), Duration::from_secs(5));
///
/// let manager = TimeoutPolicy::PerOperation(
///     OperationTimeouts::new(Duration::from_secs(30)).with_operation("summarize", Duration::from_secs(120)),
/// );
/// assert_eq!(manager.initial_timeout(), Duration::from_secs(30)); // the default
///
/// let adaptive = TimeoutPolicy::Adaptive(AdaptiveTimeoutSettings::default());
/// assert_eq!(adaptive.initial_timeout(), Duration::from_secs(30)); // `initial`, until it has data
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum TimeoutPolicy {
    /// The same deadline for every call.
    Fixed(Duration),
    /// A deadline per named operation, with a default (the seed's `TimeoutManager`).
    PerOperation(OperationTimeouts),
    /// A deadline estimated from recent latencies
    /// ([`AdaptiveTimeout`](ractor_resilience_core::estimator::AdaptiveTimeout)).
    Adaptive(AdaptiveTimeoutSettings),
}

impl TimeoutPolicy {
    /// Which kind of policy this is.
    pub const fn kind(&self) -> PolicyKind {
        match self {
            TimeoutPolicy::Fixed(_) => PolicyKind::Fixed,
            TimeoutPolicy::PerOperation(_) => PolicyKind::PerOperation,
            TimeoutPolicy::Adaptive(_) => PolicyKind::Adaptive,
        }
    }

    /// The policy's own slow-operation threshold (only a per-operation policy has one).
    pub const fn slow_operation_threshold(&self) -> Option<Duration> {
        match self {
            TimeoutPolicy::PerOperation(ops) => ops.slow_operation_threshold,
            TimeoutPolicy::Fixed(_) | TimeoutPolicy::Adaptive(_) => None,
        }
    }

    /// The deadline published before any sample: the fixed value, the per-operation default,
    /// or the adaptive `initial`.
    pub fn initial_timeout(&self) -> Duration {
        match self {
            TimeoutPolicy::Fixed(d) => *d,
            TimeoutPolicy::PerOperation(ops) => ops.default,
            TimeoutPolicy::Adaptive(settings) => settings.initial(),
        }
    }
}

/// The kind of a [`TimeoutPolicy`], as reported in [`TimeoutStatus`](super::TimeoutStatus).
///
/// ```
/// use ractor_resilience::timeout::PolicyKind;
///
/// assert_eq!(PolicyKind::PerOperation.as_str(), "per_operation");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// [`TimeoutPolicy::Fixed`].
    Fixed,
    /// [`TimeoutPolicy::PerOperation`].
    PerOperation,
    /// [`TimeoutPolicy::Adaptive`].
    Adaptive,
}

impl PolicyKind {
    /// The name used in configuration files and status reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Fixed => "fixed",
            PolicyKind::PerOperation => "per_operation",
            PolicyKind::Adaptive => "adaptive",
        }
    }
}

/// Deadlines per named operation with a default and a slow-operation threshold: the seed's
/// `TimeoutManager` (`DefaultTimeout`, `SlowOperationThreshold`, and the per-call override of
/// `Execute(ctx, name, timeout, fn)` made configurable per name).
///
/// The threshold is the manager's own; any policy kind can be given one (or have this one
/// overridden) through [`TimeoutArgs::with_slow_operation_threshold`](super::TimeoutArgs::with_slow_operation_threshold).
///
/// Operation names come from configuration, so the table (and the hook arguments built from it)
/// is bounded; a name not in it gets the default.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::OperationTimeouts;
///
/// let ops = OperationTimeouts::new(Duration::from_secs(30))
///     .with_operation("embed", Duration::from_secs(5))
///     .with_slow_operation_threshold(Duration::from_secs(10));
/// assert_eq!(ops.timeout_for(Some("embed")), Duration::from_secs(5));
/// assert_eq!(ops.timeout_for(Some("unknown")), Duration::from_secs(30));
/// assert_eq!(ops.timeout_for(None), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationTimeouts {
    /// The deadline of calls with no operation or an operation not listed.
    pub default: Duration,
    /// The deadline of each named operation.
    pub operations: BTreeMap<String, Duration>,
    /// Completed calls strictly slower than this are slow; `None`: never.
    pub slow_operation_threshold: Option<Duration>,
}

impl OperationTimeouts {
    /// Only a default, no named operation yet.
    pub const fn new(default: Duration) -> Self {
        Self {
            default,
            operations: BTreeMap::new(),
            slow_operation_threshold: None,
        }
    }

    /// Sets the slow-operation threshold.
    #[must_use]
    pub const fn with_slow_operation_threshold(mut self, threshold: Duration) -> Self {
        self.slow_operation_threshold = Some(threshold);
        self
    }

    /// Sets the deadline of `operation`.
    #[must_use]
    pub fn with_operation(mut self, operation: impl Into<String>, timeout: Duration) -> Self {
        self.operations.insert(operation.into(), timeout);
        self
    }

    /// The deadline of `operation`, or the default.
    pub fn timeout_for(&self, operation: Option<&str>) -> Duration {
        operation
            .and_then(|op| self.operations.get(op))
            .copied()
            .unwrap_or(self.default)
    }
}

/// The name hooks receive for calls made with no operation, or one the policy does not list.
pub const DEFAULT_OPERATION: &str = "default";

/// An interned operation: an index into the [`OperationTable`]; 0 is [`DEFAULT_OPERATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpIndex(u32);

/// The immutable operation table shared by the actor and its handles: names (for hooks) and,
/// under a per-operation policy, their deadlines.
#[derive(Debug)]
pub(crate) struct OperationTable {
    /// Index → name; index 0 is [`DEFAULT_OPERATION`].
    names: Vec<Arc<str>>,
    /// Name → (index, deadline).
    by_name: BTreeMap<String, (OpIndex, Duration)>,
}

impl OperationTable {
    pub(crate) fn new(policy: &TimeoutPolicy) -> Self {
        let mut names = vec![Arc::from(DEFAULT_OPERATION)];
        let mut by_name = BTreeMap::new();
        if let TimeoutPolicy::PerOperation(ops) = policy {
            for (name, &timeout) in &ops.operations {
                let index = OpIndex(u32::try_from(names.len()).unwrap_or(u32::MAX));
                names.push(Arc::from(name.as_str()));
                by_name.insert(name.clone(), (index, timeout));
            }
        }
        Self { names, by_name }
    }

    /// The index of `operation`; unknown or absent names map to the default.
    pub(crate) fn intern(&self, operation: Option<&str>) -> OpIndex {
        operation
            .and_then(|op| self.by_name.get(op))
            .map_or(OpIndex(0), |&(index, _)| index)
    }

    /// The operation's own deadline, if the policy lists it.
    pub(crate) fn timeout_of(&self, operation: Option<&str>) -> Option<Duration> {
        operation
            .and_then(|op| self.by_name.get(op))
            .map(|&(_, timeout)| timeout)
    }

    pub(crate) fn name(&self, index: OpIndex) -> &str {
        self.names
            .get(index.0 as usize)
            .map_or(DEFAULT_OPERATION, |name| name)
    }
}

/// A `[timeouts.NAME]` section of a configuration file, as a policy (a per-operation section
/// keeps its slow-operation threshold).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::config::ResolvedConfig;
/// use ractor_resilience::timeout::TimeoutPolicy;
///
/// let text = "[timeouts.llm]\nkind = \"per_operation\"\ndefault = \"60s\"\nslow_operation_threshold = \"20s\"\n";
/// let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
/// let policy = TimeoutPolicy::from(&config.timeouts["llm"]);
/// assert_eq!(policy.initial_timeout(), Duration::from_secs(60));
/// assert_eq!(policy.slow_operation_threshold(), Some(Duration::from_secs(20)));
/// ```
impl From<&TimeoutSettings> for TimeoutPolicy {
    fn from(settings: &TimeoutSettings) -> Self {
        match settings {
            TimeoutSettings::Fixed(timeout) => TimeoutPolicy::Fixed(*timeout),
            TimeoutSettings::PerOperation(ops) => TimeoutPolicy::PerOperation(OperationTimeouts {
                default: ops.default_timeout(),
                operations: ops.operations().clone(),
                slow_operation_threshold: Some(ops.slow_operation_threshold()),
            }),
            TimeoutSettings::Adaptive(settings) => TimeoutPolicy::Adaptive(*settings),
        }
    }
}
