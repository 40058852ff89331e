//! [`InlineTimeout`]: a deadline policy with nothing to own — a fixed or per-operation deadline
//! without hooks — kept by the agent itself instead of by a [`TimeoutActor`](super::TimeoutActor).
//!
//! Such a policy never changes, so there is no estimate to write and nobody to serialise: the
//! deadline is read from the policy, and outcomes are counted where they happen (by the worker
//! that made the attempt, in counters only it writes, published to the same metric series a
//! timeout actor exports). An agent that owns its
//! timeout policy runs it this way unless the policy is adaptive; what it saves is one actor and
//! its outcome queue per agent, and the queue push of every call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::policy::{OperationTable, PolicyKind, TimeoutPolicy};
use super::status::TimeoutStatus;
use crate::metrics::{TimeoutMetrics, TimeoutOutcome};

/// A static deadline policy, counted in place (see the module documentation).
#[derive(Debug)]
pub(crate) struct InlineTimeout {
    name: Arc<str>,
    kind: PolicyKind,
    default: Duration,
    operations: OperationTable,
    slow_threshold: Option<Duration>,
    metrics: TimeoutMetrics,
    slow: AtomicU64,
    late: AtomicU64,
}

impl InlineTimeout {
    /// `None` for a policy that needs an owner (adaptive: its estimate is written by one actor).
    pub(crate) fn new(name: &str, policy: &TimeoutPolicy) -> Option<Self> {
        if policy.kind() == PolicyKind::Adaptive {
            return None;
        }
        let name: Arc<str> = Arc::from(name);
        let metrics = TimeoutMetrics::new(&name);
        let default = policy.initial_timeout();
        metrics.current(default);
        Some(InlineTimeout {
            kind: policy.kind(),
            default,
            operations: OperationTable::new(policy),
            slow_threshold: policy.slow_operation_threshold(),
            metrics,
            slow: AtomicU64::new(0),
            late: AtomicU64::new(0),
            name,
        })
    }

    pub(crate) fn timeout_for(&self, operation: Option<&str>) -> Duration {
        self.operations
            .timeout_of(operation)
            .unwrap_or(self.default)
    }

    /// The policy's metric handles: the agent publishes the outcomes its workers count to
    /// their call counters.
    pub(crate) fn metrics(&self) -> TimeoutMetrics {
        self.metrics.clone()
    }

    /// What [`TimeoutState::observe`](super::TimeoutState) does for a static policy besides
    /// counting the outcome: for a completed call strictly slower than the threshold, a slow
    /// operation. The caller counts the outcome itself (an agent's worker, in a set of its own
    /// that the agent publishes: see `status_with`).
    pub(crate) fn observe(&self, latency: Duration, outcome: TimeoutOutcome) {
        if outcome != TimeoutOutcome::Timeout
            && self
                .slow_threshold
                .is_some_and(|threshold| latency > threshold)
        {
            self.slow.fetch_add(1, Ordering::Relaxed);
            self.metrics.slow();
        }
    }

    pub(crate) fn late_reply(&self) {
        self.late.fetch_add(1, Ordering::Relaxed);
        self.metrics.late();
    }

    /// The counters, with `samples` counted elsewhere (success, failure, timeout).
    pub(crate) fn status_with(&self, samples: [u64; 3]) -> TimeoutStatus {
        let [successes, failures, timeouts] = samples;
        TimeoutStatus {
            name: self.name.to_string(),
            kind: self.kind,
            current: self.default,
            samples: successes + failures + timeouts,
            successes,
            failures,
            timeouts,
            slow_operations: self.slow.load(Ordering::Relaxed),
            late_replies: self.late.load(Ordering::Relaxed),
            races_pending: 0,
            timers_armed: 0,
            timer_wakeups: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeout::OperationTimeouts;

    #[test]
    fn an_adaptive_policy_needs_an_actor() {
        let adaptive = TimeoutPolicy::Adaptive(Default::default());
        assert!(InlineTimeout::new("a", &adaptive).is_none());
    }

    #[test]
    fn counts_outcomes_slow_operations_and_late_replies() {
        let ops = OperationTimeouts::new(Duration::from_secs(30))
            .with_operation("embed", Duration::from_secs(2))
            .with_slow_operation_threshold(Duration::from_secs(1));
        let inline = InlineTimeout::new("llm", &TimeoutPolicy::PerOperation(ops)).unwrap();
        assert_eq!(inline.timeout_for(Some("embed")), Duration::from_secs(2));
        assert_eq!(inline.timeout_for(Some("other")), Duration::from_secs(30));
        assert_eq!(inline.timeout_for(None), Duration::from_secs(30));
        // The agent's workers count samples by outcome; the policy counts the rest.
        let mut samples = [0; 3];
        let mut record = |latency, outcome: TimeoutOutcome| {
            samples[outcome as usize] += 1;
            inline.observe(latency, outcome);
        };
        record(Duration::from_millis(10), TimeoutOutcome::Success);
        record(Duration::from_secs(1), TimeoutOutcome::Success); // not strictly slower
        record(Duration::from_millis(1001), TimeoutOutcome::Failure); // slow
        record(Duration::from_secs(30), TimeoutOutcome::Timeout); // never slow
        inline.late_reply();
        let status = inline.status_with(samples);
        assert_eq!(status.kind, PolicyKind::PerOperation);
        assert_eq!(status.current, Duration::from_secs(30));
        assert_eq!(
            (
                status.samples,
                status.successes,
                status.failures,
                status.timeouts
            ),
            (4, 2, 1, 1)
        );
        assert_eq!((status.slow_operations, status.late_replies), (1, 1));
    }
}
