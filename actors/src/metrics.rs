//! Every metric this crate records: names, units, help texts and label keys in one place
//! (DESIGN.md §5). Call sites use the typed helpers here, never a string literal.
//!
//! Label values come only from configuration names (validated at load to `[a-z0-9_-]{1,64}`) and
//! fixed enums, never from task data, so the number of series is bounded by the configuration.
//!
//! What an agent's workers count on every attempt ([`RETRY_ATTEMPTS`], [`RETRY_AMPLIFICATION`],
//! [`AGENT_QUEUE_WAIT`], [`TIMEOUT_CALLS`] of a policy the agent keeps in place) and
//! [`AGENT_INFLIGHT`] are counted in place and published in batches, at most about a second
//! behind: see [`publish`] (a scrape handler calls it before rendering).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use ractor_resilience_core::breaker::BreakerState;

mod handles;
mod keyed;
pub(crate) mod publish;
pub(crate) use handles::{AgentMetrics, BreakerMetrics, TimeoutMetrics};
pub(crate) use keyed::{FamilyMetrics, KeyMetrics};
pub use publish::{PUBLISH_INTERVAL, publish};

/// `resilience_circuit_breaker_state{breaker, state}`: 1 for the current state, 0 for the others.
pub const BREAKER_STATE: &str = "resilience_circuit_breaker_state";
/// `resilience_circuit_breaker_calls_total{breaker, outcome}`.
pub const BREAKER_CALLS: &str = "resilience_circuit_breaker_calls_total";
/// `resilience_circuit_breaker_transitions_total{breaker, from, to}`.
pub const BREAKER_TRANSITIONS: &str = "resilience_circuit_breaker_transitions_total";
/// `resilience_circuit_breaker_keys{breaker, state}`: keys a keyed breaker family holds, per
/// state (its state, calls and transitions series carry a `key` label as well: see
/// [`KeyedBreakerOptions`](crate::breaker::KeyedBreakerOptions)).
pub const BREAKER_KEYS: &str = "resilience_circuit_breaker_keys";
/// `resilience_circuit_breaker_key_evictions_total{breaker, reason}`: keys a keyed family let go
/// of (`reason` = idle, capacity).
pub const BREAKER_KEY_EVICTIONS: &str = "resilience_circuit_breaker_key_evictions_total";
/// `resilience_retry_amplification_ratio{policy}`: attempts ÷ requests (first attempts) under a
/// retry policy, over every agent of the process that uses it, since the process started. 1
/// means nothing was retried; a layer that tries everything three times reads 3, and the product
/// of the ratios along a call chain is the load multiplier at its bottom.
pub const RETRY_AMPLIFICATION: &str = "resilience_retry_amplification_ratio";
/// `resilience_retry_calls_total{policy, outcome}`.
pub const RETRY_CALLS: &str = "resilience_retry_calls_total";
/// `resilience_retry_attempts_total{policy}`: every attempt, first ones included.
pub const RETRY_ATTEMPTS: &str = "resilience_retry_attempts_total";
/// `resilience_timeout_calls_total{timeout, outcome}`.
pub const TIMEOUT_CALLS: &str = "resilience_timeout_calls_total";
/// `resilience_timeout_current_seconds{timeout}`: the deadline currently applied.
pub const TIMEOUT_CURRENT: &str = "resilience_timeout_current_seconds";
/// `resilience_slow_operations_total{timeout}`.
pub const SLOW_OPERATIONS: &str = "resilience_slow_operations_total";
/// `resilience_timeout_late_replies_total{timeout}`: replies that arrived after their deadline.
pub const LATE_REPLIES: &str = "resilience_timeout_late_replies_total";
/// `resilience_task_duration_seconds{agent, outcome}` (histogram).
pub const TASK_DURATION: &str = "resilience_task_duration_seconds";
/// `resilience_agent_restarts_total{agent}`.
pub const AGENT_RESTARTS: &str = "resilience_agent_restarts_total";
/// `resilience_tasks_total{agent, outcome}`.
pub const TASKS: &str = "resilience_tasks_total";
/// `resilience_agent_inflight_tasks{agent}`.
pub const AGENT_INFLIGHT: &str = "resilience_agent_inflight_tasks";
/// `resilience_circuit_breaker_operator_actions_total{breaker, action}`: commands an operator
/// sent to a breaker (`action` = force_open, reset, disable).
pub const OPERATOR_ACTIONS: &str = "resilience_circuit_breaker_operator_actions_total";
/// `resilience_config_reloads_total{result}`: configuration reloads by result (`applied`,
/// `invalid`: the file had mistakes, `refused`: it did not fit what runs; nothing changed on
/// the last two).
pub const CONFIG_RELOADS: &str = "resilience_config_reloads_total";
/// The `result` label values of [`CONFIG_RELOADS`].
pub const RELOAD_RESULTS: [&str; 3] = ["applied", "invalid", "refused"];
/// `resilience_agent_queue_wait_seconds{agent}` (histogram): how long each attempt waited for a
/// worker, from its submission (or its retry's) to the worker starting it.
pub const AGENT_QUEUE_WAIT: &str = "resilience_agent_queue_wait_seconds";
/// `resilience_agent_shed_total{agent}`: tasks the agent's queue shed (CoDel) after waiting too
/// long; each ends `overloaded`.
pub const AGENT_SHED: &str = "resilience_agent_shed_total";

/// Registers the help text and unit of every metric with the installed recorder.
pub fn describe() {
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 1 for the current state, 0 otherwise"
    );
    describe_counter!(BREAKER_CALLS, "Calls seen by a circuit breaker, by outcome");
    describe_counter!(BREAKER_TRANSITIONS, "Circuit breaker state transitions");
    describe_gauge!(
        BREAKER_KEYS,
        "Keys held by a keyed circuit breaker family, by state"
    );
    describe_counter!(
        BREAKER_KEY_EVICTIONS,
        "Keys evicted from a keyed circuit breaker family, by reason"
    );
    describe_counter!(RETRY_CALLS, "Tasks by retry outcome");
    describe_counter!(RETRY_ATTEMPTS, "Attempts made, first attempts included");
    describe_gauge!(
        RETRY_AMPLIFICATION,
        "Attempts per request (first attempt) under a retry policy: 1 when nothing is retried"
    );
    describe_counter!(
        TIMEOUT_CALLS,
        "Attempts raced against a timeout, by outcome"
    );
    describe_gauge!(
        TIMEOUT_CURRENT,
        Unit::Seconds,
        "The timeout currently applied"
    );
    describe_counter!(
        SLOW_OPERATIONS,
        "Operations slower than the slow-operation threshold"
    );
    describe_counter!(
        LATE_REPLIES,
        "Replies dropped because they arrived after their deadline"
    );
    describe_histogram!(
        TASK_DURATION,
        Unit::Seconds,
        "Task duration from submission to outcome"
    );
    describe_counter!(AGENT_RESTARTS, "Worker restarts by a supervisor");
    describe_counter!(TASKS, "Tasks by final outcome");
    describe_gauge!(AGENT_INFLIGHT, "Tasks admitted and not yet answered");
    describe_histogram!(
        AGENT_QUEUE_WAIT,
        Unit::Seconds,
        "Time an attempt waited for a worker"
    );
    describe_counter!(
        AGENT_SHED,
        "Tasks shed by an agent's queue after waiting too long"
    );
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result");
}

/// The outcomes a breaker counts (`outcome` label of [`BREAKER_CALLS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerCall {
    /// A success.
    Success,
    /// A counted failure.
    Failure,
    /// An ignored outcome.
    Ignored,
    /// Rejected without calling.
    Rejected,
    /// Slower than the breaker's `slow_call_duration`.
    Slow,
}

impl BreakerCall {
    const ALL: [BreakerCall; 5] = [
        BreakerCall::Success,
        BreakerCall::Failure,
        BreakerCall::Ignored,
        BreakerCall::Rejected,
        BreakerCall::Slow,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerCall::Success => "success",
            BreakerCall::Failure => "failure",
            BreakerCall::Ignored => "ignored",
            BreakerCall::Rejected => "rejected",
            BreakerCall::Slow => "slow",
        }
    }
}

/// Every `(from, to)` transition the breaker state machine can take: failures open it, the
/// open duration ends in half-open, probes close or reopen it; `force_open` and `disable` reach
/// their state from any other, and `reset` closes it from any state (a closed breaker with a
/// non-empty window included).
pub const BREAKER_TRANSITION_PAIRS: [(BreakerState, BreakerState); 16] = {
    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    [
        (Closed, Open),
        (Open, HalfOpen),
        (HalfOpen, Closed),
        (HalfOpen, Open),
        (Closed, ForcedOpen),
        (Open, ForcedOpen),
        (HalfOpen, ForcedOpen),
        (Disabled, ForcedOpen),
        (Closed, Disabled),
        (Open, Disabled),
        (HalfOpen, Disabled),
        (ForcedOpen, Disabled),
        (Closed, Closed),
        (Open, Closed),
        (ForcedOpen, Closed),
        (Disabled, Closed),
    ]
};

/// Latency buckets, in seconds, of every histogram this crate records (their names end in
/// `_seconds`): 1 ms … 60 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// A Prometheus exporter builder that renders every histogram of this crate
/// ([`TASK_DURATION`], [`AGENT_QUEUE_WAIT`]) as a histogram with [`DURATION_BUCKETS`].
///
/// A bare `PrometheusBuilder::new()` renders histograms as *summaries*, which have no `_bucket`
/// series: Grafana's `histogram_quantile(… _bucket …)` queries then return nothing. Start from
/// this builder and add your own settings (listener, more buckets) to it.
///
/// ```
/// use ractor_resilience::metrics::{TASK_DURATION, prometheus_builder};
///
/// let recorder = prometheus_builder().build_recorder();
/// let handle = recorder.handle();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::histogram!(TASK_DURATION, "agent" => "a", "outcome" => "succeeded").record(0.2);
/// });
/// assert!(handle.render().contains(
///     "resilience_task_duration_seconds_bucket{agent=\"a\",outcome=\"succeeded\",le=\"0.25\"} 1"
/// ));
/// ```
pub fn prometheus_builder() -> metrics_exporter_prometheus::PrometheusBuilder {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    [TASK_DURATION, AGENT_QUEUE_WAIT]
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, name| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), &DURATION_BUCKETS)
                .expect("DURATION_BUCKETS is not empty")
        })
}

/// Retry outcomes (`outcome` label of [`RETRY_CALLS`]), resilience4j's kinds plus the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Succeeded at the first attempt.
    SuccessWithoutRetry,
    /// Succeeded after at least one retry.
    SuccessWithRetry,
    /// Failed without being retried (not retryable, or one attempt allowed).
    FailedWithoutRetry,
    /// Failed after at least one retry.
    FailedWithRetry,
    /// A retry was refused by the retry budget.
    BudgetExhausted,
}

impl RetryOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryOutcome::SuccessWithoutRetry => "success_without_retry",
            RetryOutcome::SuccessWithRetry => "success_with_retry",
            RetryOutcome::FailedWithoutRetry => "failed_without_retry",
            RetryOutcome::FailedWithRetry => "failed_with_retry",
            RetryOutcome::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// How a raced attempt ended (`outcome` label of [`TIMEOUT_CALLS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutOutcome {
    /// Replied in time with a success.
    Success,
    /// Replied in time with a failure.
    Failure,
    /// The deadline came first.
    Timeout,
}

impl TimeoutOutcome {
    /// Every outcome, in the order of their discriminants.
    pub const ALL: [TimeoutOutcome; 3] = [
        TimeoutOutcome::Success,
        TimeoutOutcome::Failure,
        TimeoutOutcome::Timeout,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeoutOutcome::Success => "success",
            TimeoutOutcome::Failure => "failure",
            TimeoutOutcome::Timeout => "timeout",
        }
    }
}

/// Final task outcomes (`outcome` label of [`TASKS`] and [`TASK_DURATION`]).
///
/// ```
/// use ractor_resilience::metrics::TaskOutcome;
///
/// assert_eq!(TaskOutcome::TimedOut.as_str(), "timed_out");
/// assert_eq!(TaskOutcome::Overloaded.as_str(), "overloaded");
/// assert_eq!(TaskOutcome::ALL.len(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    /// The agent returned an output.
    Succeeded,
    /// The last attempt failed (or the error was not retryable).
    Failed,
    /// Not attempted: the breaker refused it, or the agent was gone.
    Rejected,
    /// Not attempted: the agent's admission bound was full, or its queue shed the task.
    Overloaded,
    /// The deadline passed first.
    TimedOut,
    /// Cancelled by the caller or by shutdown.
    Cancelled,
}

impl TaskOutcome {
    /// Every outcome.
    pub const ALL: [TaskOutcome; 6] = [
        TaskOutcome::Succeeded,
        TaskOutcome::Failed,
        TaskOutcome::Rejected,
        TaskOutcome::Overloaded,
        TaskOutcome::TimedOut,
        TaskOutcome::Cancelled,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskOutcome::Succeeded => "succeeded",
            TaskOutcome::Failed => "failed",
            TaskOutcome::Rejected => "rejected",
            TaskOutcome::Overloaded => "overloaded",
            TaskOutcome::TimedOut => "timed_out",
            TaskOutcome::Cancelled => "cancelled",
        }
    }
}
