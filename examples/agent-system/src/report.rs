//! The run's tally and its final report: counts per outcome, attempts and retries, latency
//! quantiles, and every breaker transition.

use std::io::{self, Write};
use std::time::Duration;

use hdrhistogram::Histogram;
use ractor_resilience::agent::CallError;
use ractor_resilience::metrics::TaskOutcome;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::failures::{FailureCounts, FailureReason};

/// Outcomes counted as tasks end (fixed memory: counters and a histogram).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Tasks submitted.
    pub submitted: u64,
    counts: [u64; TaskOutcome::ALL.len()],
    /// Latency of succeeded tasks, microseconds (1 µs .. 1 h, 3 significant digits).
    latency: Histogram<u64>,
    /// Failed tasks by reason.
    failures: FailureCounts,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            submitted: 0,
            counts: [0; TaskOutcome::ALL.len()],
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            failures: FailureCounts::default(),
        }
    }
}

impl Tally {
    /// Counts a task's outcome (`latency` from submission to outcome).
    pub fn record<T, E>(&mut self, result: &Result<T, CallError<E>>, latency: Duration) {
        let outcome = match result {
            Ok(_) => TaskOutcome::Succeeded,
            Err(e) => e.outcome(),
        };
        self.counts[index(outcome)] += 1;
        if outcome == TaskOutcome::Succeeded {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, 3_600_000_000);
            self.latency.saturating_record(micros);
        }
    }

    /// Counts the reason of a task that ended `failed` (see [`FailureReason::of`]).
    pub fn record_failure(&mut self, reason: FailureReason) {
        self.failures.add(reason);
    }

    /// Failed tasks by reason.
    pub fn failures(&self) -> &FailureCounts {
        &self.failures
    }

    /// Tasks that ended with `outcome`.
    pub fn count(&self, outcome: TaskOutcome) -> u64 {
        self.counts[index(outcome)]
    }

    /// Tasks that have ended.
    pub fn finished(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

fn index(outcome: TaskOutcome) -> usize {
    TaskOutcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .expect("every outcome is listed")
}

/// One breaker transition, `at_ms` after the start of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionRecord {
    /// The breaker's configured name.
    pub breaker: String,
    /// The state left.
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Milliseconds since the run started.
    pub at_ms: u64,
}

/// Latency quantiles of succeeded tasks, from submission to answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The JSON report (`--report-json`). `submitted` equals the sum of the five outcomes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `run` or `simulate`.
    pub mode: String,
    /// The seed of the random choices.
    pub seed: u64,
    /// How long the workload ran (simulated time for `simulate`).
    pub duration_ms: u64,
    /// Tasks submitted.
    pub submitted: u64,
    /// Tasks that returned an output.
    pub succeeded: u64,
    /// Tasks whose last attempt failed.
    pub failed: u64,
    /// Tasks not attempted: breaker open, agent unavailable.
    pub rejected: u64,
    /// Tasks not attempted: the agent's admission bound was full, or its queue shed them.
    pub overloaded: u64,
    /// Tasks whose deadline or last timeout passed first.
    pub timed_out: u64,
    /// Tasks cancelled at shutdown.
    pub cancelled: u64,
    /// Attempts started, first attempts included.
    pub attempts: u64,
    /// Retries sent (attempts after a task's first): `attempts − retries` tasks reached a
    /// worker.
    pub retries: u64,
    /// Latency quantiles of succeeded tasks, in milliseconds.
    pub latency_ms: Quantiles,
    /// Every breaker transition, in order.
    pub breaker_transitions: Vec<TransitionRecord>,
    /// Failed tasks by reason: an object with one key per [`FailureReason`] (zeros included),
    /// so its keys are a fixed set.
    pub failures_by_reason: FailureCounts,
}

impl Serialize for FailureCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(FailureReason::ALL.len()))?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

impl Report {
    /// Builds the report from the tally and the counters.
    pub fn new(
        mode: &str,
        seed: u64,
        duration: Duration,
        tally: &Tally,
        attempts: u64,
        retries: u64,
        breaker_transitions: Vec<TransitionRecord>,
    ) -> Self {
        Report {
            mode: mode.into(),
            seed,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            submitted: tally.submitted,
            succeeded: tally.count(TaskOutcome::Succeeded),
            failed: tally.count(TaskOutcome::Failed),
            rejected: tally.count(TaskOutcome::Rejected),
            overloaded: tally.count(TaskOutcome::Overloaded),
            timed_out: tally.count(TaskOutcome::TimedOut),
            cancelled: tally.count(TaskOutcome::Cancelled),
            attempts,
            retries,
            latency_ms: Quantiles {
                p50: tally.quantile_ms(0.50),
                p95: tally.quantile_ms(0.95),
                p99: tally.quantile_ms(0.99),
            },
            breaker_transitions,
            failures_by_reason: *tally.failures(),
        }
    }

    /// Whether the outcomes add up to the submitted tasks.
    pub fn adds_up(&self) -> bool {
        self.submitted
            == self.succeeded
                + self.failed
                + self.rejected
                + self.overloaded
                + self.timed_out
                + self.cancelled
    }

    /// The human summary table.
    pub fn write_summary(&self, out: &mut impl Write) -> io::Result<()> {
        let pct = |n: u64| {
            if self.submitted == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.submitted as f64
            }
        };
        writeln!(
            out,
            "\n== summary ({}, {:.1} s, seed {}) ==",
            self.mode,
            self.duration_ms as f64 / 1000.0,
            self.seed
        )?;
        writeln!(out, "{:<12} {:>9} {:>7}", "outcome", "tasks", "share")?;
        for (name, n) in [
            ("succeeded", self.succeeded),
            ("failed", self.failed),
            ("rejected", self.rejected),
            ("overloaded", self.overloaded),
            ("timed_out", self.timed_out),
            ("cancelled", self.cancelled),
        ] {
            writeln!(out, "{name:<12} {n:>9} {:>6.1}%", pct(n))?;
        }
        writeln!(out, "{:<12} {:>9}", "submitted", self.submitted)?;
        writeln!(
            out,
            "attempts {} (retries {}); latency of successes p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            self.attempts,
            self.retries,
            self.latency_ms.p50,
            self.latency_ms.p95,
            self.latency_ms.p99
        )?;
        let reasons: Vec<String> = self
            .failures_by_reason
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(reason, n)| format!("{} {n}", reason.as_str()))
            .collect();
        if !reasons.is_empty() {
            writeln!(out, "failures by reason: {}", reasons.join(", "))?;
        }
        writeln!(
            out,
            "breaker transitions: {}",
            self.breaker_transitions.len()
        )?;
        for t in &self.breaker_transitions {
            writeln!(
                out,
                "  {:>9.3} s  {:<10} {} -> {}",
                t.at_ms as f64 / 1000.0,
                t.breaker,
                t.from,
                t.to
            )?;
        }
        Ok(())
    }
}
