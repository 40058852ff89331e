//! Pre-registered metric handles, one set per breaker, timeout policy and agent: cheap to
//! increment on the hot path (no key lookup per call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use ractor_resilience_core::breaker::BreakerState;

use super::{
    AGENT_INFLIGHT, AGENT_QUEUE_WAIT, AGENT_RESTARTS, AGENT_SHED, BREAKER_CALLS, BREAKER_STATE,
    BREAKER_TRANSITION_PAIRS, BREAKER_TRANSITIONS, BreakerCall, LATE_REPLIES, RETRY_AMPLIFICATION,
    RETRY_ATTEMPTS, RETRY_CALLS, RetryOutcome, SLOW_OPERATIONS, TASK_DURATION, TASKS,
    TIMEOUT_CALLS, TIMEOUT_CURRENT, TaskOutcome, TimeoutOutcome,
};

/// Pre-registered handles for one breaker (cheap to increment on the hot path).
#[derive(Debug, Clone)]
pub(crate) struct BreakerMetrics {
    name: Arc<str>,
    states: [Gauge; 5],
    calls: [Counter; 5],
}

impl BreakerMetrics {
    pub(crate) fn new(name: &Arc<str>) -> Self {
        let states = BreakerState::ALL
            .map(|s| gauge!(BREAKER_STATE, "breaker" => name.to_string(), "state" => s.as_str()));
        let calls = BreakerCall::ALL.map(
            |o| counter!(BREAKER_CALLS, "breaker" => name.to_string(), "outcome" => o.as_str()),
        );
        // Every transition series exists from the start, at 0: a series that first appears at
        // 1 hides its first increment from Prometheus' `increase()` / `rate()`.
        for (from, to) in BREAKER_TRANSITION_PAIRS {
            counter!(BREAKER_TRANSITIONS, "breaker" => name.to_string(), "from" => from.as_str(), "to" => to.as_str())
                .absolute(0);
        }
        BreakerMetrics {
            name: name.clone(),
            states,
            calls,
        }
    }

    /// Sets the state gauges so that exactly `state` is 1.
    pub(crate) fn state(&self, state: BreakerState) {
        for (s, g) in BreakerState::ALL.iter().zip(&self.states) {
            g.set(if *s == state { 1.0 } else { 0.0 });
        }
    }

    pub(crate) fn call(&self, outcome: BreakerCall) {
        self.calls[outcome as usize].increment(1);
    }

    pub(crate) fn transition(&self, from: BreakerState, to: BreakerState) {
        counter!(BREAKER_TRANSITIONS, "breaker" => self.name.to_string(), "from" => from.as_str(), "to" => to.as_str())
            .increment(1);
        self.state(to);
    }
}

/// Pre-registered handles for one timeout policy.
#[derive(Debug, Clone)]
pub(crate) struct TimeoutMetrics {
    calls: [Counter; 3],
    current: Gauge,
    slow: Counter,
    late: Counter,
}

impl TimeoutMetrics {
    pub(crate) fn new(name: &Arc<str>) -> Self {
        let calls = TimeoutOutcome::ALL.map(
            |o| counter!(TIMEOUT_CALLS, "timeout" => name.to_string(), "outcome" => o.as_str()),
        );
        TimeoutMetrics {
            calls,
            current: gauge!(TIMEOUT_CURRENT, "timeout" => name.to_string()),
            slow: counter!(SLOW_OPERATIONS, "timeout" => name.to_string()),
            late: counter!(LATE_REPLIES, "timeout" => name.to_string()),
        }
    }

    pub(crate) fn call(&self, outcome: TimeoutOutcome) {
        self.calls(outcome, 1);
    }

    /// Counts `n` calls with `outcome` (a batch counted in place, or one).
    pub(crate) fn calls(&self, outcome: TimeoutOutcome, n: u64) {
        if n > 0 {
            self.calls[outcome as usize].increment(n);
        }
    }

    pub(crate) fn current(&self, timeout: std::time::Duration) {
        self.current.set(timeout.as_secs_f64());
    }

    pub(crate) fn slow(&self) {
        self.slow.increment(1);
    }

    pub(crate) fn late(&self) {
        self.late.increment(1);
    }
}

/// Attempts and requests (first attempts) of one retry policy, summed over every agent that
/// uses it: the source of [`RETRY_AMPLIFICATION`], kept per policy (not per agent) so that agents
/// sharing a policy do not overwrite each other's ratio.
#[derive(Debug, Default)]
struct PolicyTally {
    /// First attempts, and attempts after a task's first (attempts = their sum).
    counts: Mutex<(u64, u64)>,
}

impl PolicyTally {
    /// The process-wide tally of `policy` (one per configured policy name: bounded).
    fn of(policy: &str) -> Arc<PolicyTally> {
        static TALLIES: OnceLock<Mutex<HashMap<String, Arc<PolicyTally>>>> = OnceLock::new();
        let mut tallies = TALLIES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tallies.entry(policy.to_owned()).or_default().clone()
    }

    /// Adds a batch of attempts and sets `gauge` to attempts ÷ first attempts. Under the
    /// tally's lock (a batch is published about once a second), so that the last value set is
    /// the ratio of everything added.
    fn add(&self, firsts: u64, retries: u64, gauge: &Gauge) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.0 += firsts;
        counts.1 += retries;
        let (firsts, retries) = *counts;
        if firsts > 0 {
            gauge.set((firsts + retries) as f64 / firsts as f64);
        }
    }
}

/// Pre-registered handles for one agent and its retry policy.
#[derive(Debug)]
pub(crate) struct AgentMetrics {
    tasks: [Counter; 6],
    durations: [Histogram; 6],
    queue_wait: Histogram,
    shed: Counter,
    retry_calls: [Counter; 5],
    attempts: Counter,
    amplification: Gauge,
    tally: Arc<PolicyTally>,
    restarts: Counter,
    inflight: Gauge,
}

impl AgentMetrics {
    pub(crate) fn new(agent: &Arc<str>, policy: &Arc<str>) -> Self {
        let tasks = TaskOutcome::ALL
            .map(|o| counter!(TASKS, "agent" => agent.to_string(), "outcome" => o.as_str()));
        let durations = TaskOutcome::ALL.map(
            |o| histogram!(TASK_DURATION, "agent" => agent.to_string(), "outcome" => o.as_str()),
        );
        let retry_calls = [
            RetryOutcome::SuccessWithoutRetry,
            RetryOutcome::SuccessWithRetry,
            RetryOutcome::FailedWithoutRetry,
            RetryOutcome::FailedWithRetry,
            RetryOutcome::BudgetExhausted,
        ]
        .map(|o| counter!(RETRY_CALLS, "policy" => policy.to_string(), "outcome" => o.as_str()));
        AgentMetrics {
            tasks,
            durations,
            retry_calls,
            attempts: counter!(RETRY_ATTEMPTS, "policy" => policy.to_string()),
            amplification: gauge!(RETRY_AMPLIFICATION, "policy" => policy.to_string()),
            tally: PolicyTally::of(policy),
            queue_wait: histogram!(AGENT_QUEUE_WAIT, "agent" => agent.to_string()),
            shed: counter!(AGENT_SHED, "agent" => agent.to_string()),
            restarts: counter!(AGENT_RESTARTS, "agent" => agent.to_string()),
            inflight: gauge!(AGENT_INFLIGHT, "agent" => agent.to_string()),
        }
    }

    pub(crate) fn task(&self, outcome: TaskOutcome, duration: std::time::Duration) {
        self.tasks[outcome as usize].increment(1);
        self.durations[outcome as usize].record(duration.as_secs_f64());
    }

    pub(crate) fn retry(&self, outcome: RetryOutcome) {
        self.retry_calls[outcome as usize].increment(1);
    }

    /// Publishes a batch of attempts: `firsts` first attempts of tasks (new requests) and
    /// `retries` later ones; updates the policy's amplification ratio.
    pub(crate) fn attempts(&self, firsts: u64, retries: u64) {
        self.attempts.increment(firsts + retries);
        self.tally.add(firsts, retries, &self.amplification);
    }

    /// A task's attempt reached a worker after waiting `waited` for one.
    pub(crate) fn queue_wait(&self, waited: std::time::Duration) {
        self.queue_wait.record(waited.as_secs_f64());
    }

    /// `n` attempts reached a worker without waiting (handed to an idle one).
    pub(crate) fn zero_queue_waits(&self, n: u64) {
        if n > 0 {
            self.queue_wait
                .record_many(0.0, usize::try_from(n).unwrap_or(usize::MAX));
        }
    }

    /// The queue shed a task that had waited too long.
    pub(crate) fn shed(&self) {
        self.shed.increment(1);
    }

    pub(crate) fn restart(&self) {
        self.restarts.increment(1);
    }

    pub(crate) fn inflight(&self, n: usize) {
        self.inflight.set(n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The amplification gauge of one policy after batches of (first attempts, retries),
    /// rendered by a recorder of the test's own.
    fn gauge_after(batches: &[(u64, u64)]) -> f64 {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // A policy name of this test's own: tallies are process-wide.
        let policy = format!("tally-{batches:?}");
        metrics::with_local_recorder(&recorder, || {
            // Two agents under the policy: their batches add up.
            let a = AgentMetrics::new(&Arc::from("a"), &Arc::from(policy.as_str()));
            let b = AgentMetrics::new(&Arc::from("b"), &Arc::from(policy.as_str()));
            for (i, &(firsts, retries)) in batches.iter().enumerate() {
                let m = if i % 2 == 0 { &a } else { &b };
                m.attempts(firsts, retries);
            }
        });
        let prefix = format!("{RETRY_AMPLIFICATION}{{policy=\"{policy}\"}} ");
        handle
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
            .expect("the gauge is set")
    }

    #[test]
    fn the_amplification_gauge_is_the_ratio_of_every_batch_of_every_agent() {
        // Never retried: exactly 1.
        assert_eq!(gauge_after(&[(5, 0)]), 1.0);
        // 4 first attempts and 2 retries: 6 / 4.
        assert_eq!(gauge_after(&[(1, 1), (2, 0), (1, 1)]), 1.5);
        // After a retry, later first attempts move it down: 6 first attempts, 1 retry.
        assert_eq!(gauge_after(&[(1, 1), (3, 0), (2, 0)]), 7.0 / 6.0);
    }
}
