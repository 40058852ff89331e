//! [`AgentUpdate`]: what an agent can change while it runs (hot reload) — its pool size, its
//! admission bound, its queue discipline and its retry policy's settings.
//!
//! Sent as [`AgentMsg::Reconfigure`](super::AgentMsg::Reconfigure) (or
//! [`AgentHandle::reconfigure`](super::AgentHandle::reconfigure)) to the agent's actor, which
//! applies it between two messages:
//!
//! - **Pool.** A larger pool spawns the new workers at once. A smaller one retires the workers
//!   of the highest slots: each finishes the attempt it runs (none is cut short, none is lost),
//!   takes no new job, and stops; the supervisor does not restart it.
//! - **Admission bound and queue.** Tasks already admitted stay admitted (a lower bound refuses
//!   new tasks until the pending ones drop below it); a new queue discipline starts from a
//!   clean CoDel state.
//! - **Retry policy.** Each task plans its retries with one policy, taken when its first retry
//!   is planned: a task already retrying keeps the old schedule to its end, a task whose first
//!   retry comes after the update follows the new one; no task mixes the two.

use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::queue::CodelSettings;

/// The settings of a running agent that [`AgentHandle::reconfigure`](super::AgentHandle::reconfigure)
/// changes in place. Which breaker, timeout actor, budget and retry policy *name* an agent uses
/// is fixed when it is spawned (they label its metrics).
///
/// ```
/// use ractor_resilience::agent::AgentUpdate;
/// use ractor_resilience::core::backoff::RetryPolicy;
///
/// let update = AgentUpdate::new(8, 256, RetryPolicy::default());
/// assert_eq!((update.workers, update.max_pending), (8, 256));
/// assert!(update.queue.is_some(), "CoDel with its defaults, as a new agent");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentUpdate {
    /// Workers in the pool, at least 1.
    pub workers: usize,
    /// Tasks admitted and not yet answered, at least `workers`.
    pub max_pending: usize,
    /// The queue's shedding discipline; `None`: a plain FIFO that never sheds.
    pub queue: Option<CodelSettings>,
    /// The retry policy's settings.
    pub retry: RetryPolicy,
}

impl AgentUpdate {
    /// An update to `workers` workers, an admission bound of `max_pending` and `retry`, with
    /// the default CoDel queue.
    pub fn new(workers: usize, max_pending: usize, retry: RetryPolicy) -> Self {
        AgentUpdate {
            workers,
            max_pending,
            queue: Some(CodelSettings::default()),
            retry,
        }
    }

    /// Sets the queue discipline (`None`: FIFO, never shed).
    #[must_use]
    pub fn with_queue(mut self, queue: Option<CodelSettings>) -> Self {
        self.queue = queue;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ReconfigureError> {
        check_pool(self.workers, self.max_pending)
            .map_err(|(setting, reason)| ReconfigureError::Invalid { setting, reason })
    }
}

/// The pool rules a spawn and a reconfigure share: at least one worker, and room to keep every
/// worker busy.
pub(crate) fn check_pool(workers: usize, max_pending: usize) -> Result<(), (&'static str, String)> {
    if workers == 0 {
        return Err(("workers", "must be at least 1".into()));
    }
    if max_pending < workers {
        return Err((
            "max_pending",
            format!(
                "must be at least workers ({workers}) so every worker can be busy, got {max_pending}"
            ),
        ));
    }
    Ok(())
}

/// Why an agent refused an [`AgentUpdate`] (it then changed nothing).
///
/// ```
/// use ractor_resilience::agent::ReconfigureError;
///
/// let e = ReconfigureError::Invalid { setting: "workers", reason: "must be at least 1".into() };
/// assert_eq!(e.to_string(), "workers: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigureError {
    /// A setting is out of range.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A new worker could not be spawned; the workers spawned before it stay.
    #[error("cannot spawn worker {slot}: {reason}")]
    Spawn {
        /// Its slot.
        slot: usize,
        /// Why.
        reason: String,
    },
    /// The agent is not running.
    #[error("the agent is not running")]
    Unavailable,
}
