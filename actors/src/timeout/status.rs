//! [`TimeoutStatus`]: what a timeout actor reports about itself.

use std::time::Duration;

use super::policy::PolicyKind;

/// A snapshot of a [`TimeoutActor`](super::TimeoutActor), from
/// [`TimeoutHandle::status`](super::TimeoutHandle::status). Serialisable for health endpoints;
/// durations are humantime strings (`"1s 500ms"`).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::{TimeoutActor, TimeoutHooks, TimeoutPolicy};
///
/// tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
///     let timeouts = TimeoutActor::spawn("llm", TimeoutPolicy::Fixed(Duration::from_secs(5)), TimeoutHooks::new()).await.unwrap();
///     let status = timeouts.status().await.unwrap();
///     assert_eq!(status.name, "llm");
///     assert_eq!(status.current, Duration::from_secs(5));
///     assert_eq!(status.races_pending, 0);
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeoutStatus {
    /// The policy's configured name (the `timeout` metric label).
    pub name: String,
    /// Which kind of policy runs.
    pub kind: PolicyKind,
    /// The published deadline: the fixed one, the per-operation default, or the adaptive
    /// estimate.
    #[serde(with = "humantime_serde")]
    pub current: Duration,
    /// Outcomes processed (recorded by callers or raced by the actor).
    pub samples: u64,
    /// Of which successes.
    pub successes: u64,
    /// Of which failures (including workers that dropped their reply).
    pub failures: u64,
    /// Of which timeouts.
    pub timeouts: u64,
    /// Completed calls slower than the slow-operation threshold.
    pub slow_operations: u64,
    /// Replies that arrived after their deadline and were dropped.
    pub late_replies: u64,
    /// Races the actor is currently running.
    pub races_pending: usize,
    /// How many times the actor armed its deadline timer (one timer for all races: this grows
    /// with distinct earliest deadlines, not with races).
    pub timers_armed: u64,
    /// How many timer wakeups expired races (stale wakeups not counted).
    pub timer_wakeups: u64,
}
