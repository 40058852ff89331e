//! The errors a task can end with.

use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::BreakerState;

use crate::metrics::TaskOutcome;

/// Why one attempt failed.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::agent::AttemptError;
///
/// let e: AttemptError<std::io::Error> = AttemptError::TimedOut { after: Duration::from_secs(2) };
/// assert_eq!(e.to_string(), "attempt timed out after 2s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AttemptError<E> {
    /// The agent returned an error.
    #[error("agent error: {0}")]
    Agent(E),
    /// The worker stopped (panicked or was killed) before answering.
    #[error("worker crashed before answering")]
    WorkerLost,
    /// No worker could take the attempt (all restarting).
    #[error("no worker available")]
    NoWorker,
    /// The attempt's timeout passed first.
    #[error("attempt timed out after {after:?}")]
    TimedOut {
        /// The timeout that was applied.
        after: Duration,
    },
}

/// How a task ended when it did not succeed. Every submitted task ends in exactly one outcome:
/// an output, or one of these.
///
/// ```
/// use ractor_resilience::agent::{AttemptError, CallError};
/// use ractor_resilience::metrics::TaskOutcome;
///
/// let err: CallError<std::io::Error> = CallError::Failed {
///     attempts: 3,
///     source: AttemptError::WorkerLost,
/// };
/// assert_eq!(err.outcome(), TaskOutcome::Failed);
/// assert_eq!(err.to_string(), "failed after 3 attempt(s): worker crashed before answering");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CallError<E> {
    /// The circuit breaker refused the call.
    #[error("rejected by circuit breaker `{breaker}` ({state})")]
    Rejected {
        /// The breaker's name.
        breaker: Arc<str>,
        /// Its state when it refused.
        state: BreakerState,
        /// When asking again may succeed.
        retry_after: Option<Duration>,
    },
    /// The agent cannot take the task: its admission bound is full, or its queue has stood
    /// for too long and shed the task (see [`OverloadReason`]). Retryable by the sender, with
    /// backoff (the seed's `ErrTooManyRequests`).
    #[error("overloaded: {reason}")]
    Overloaded {
        /// Which limit refused it.
        reason: OverloadReason,
    },
    /// The task's deadline (or its last attempt's timeout) passed first.
    #[error("timed out after {attempts} attempt(s), last timeout {after:?}")]
    TimedOut {
        /// The timeout of the last attempt.
        after: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The last attempt failed and no retry was allowed (not retryable, attempts exhausted,
    /// deadline too close, or the retry budget refused).
    #[error("failed after {attempts} attempt(s): {source}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: AttemptError<E>,
    },
    /// Cancelled by the caller or by shutdown.
    #[error("cancelled")]
    Cancelled,
    /// The agent is gone (its supervisor stopped).
    #[error("agent unavailable")]
    Unavailable,
}

impl<E> CallError<E> {
    /// The outcome category (metrics label, report bucket).
    pub fn outcome(&self) -> TaskOutcome {
        match self {
            CallError::Rejected { .. } | CallError::Unavailable => TaskOutcome::Rejected,
            CallError::Overloaded { .. } => TaskOutcome::Overloaded,
            CallError::TimedOut { .. } => TaskOutcome::TimedOut,
            CallError::Failed { .. } => TaskOutcome::Failed,
            CallError::Cancelled => TaskOutcome::Cancelled,
        }
    }

    /// The agent's own error, if the last attempt ended with one.
    pub fn agent_error(&self) -> Option<&E> {
        match self {
            CallError::Failed {
                source: AttemptError::Agent(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// Why an agent answered [`CallError::Overloaded`].
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::agent::OverloadReason;
///
/// assert_eq!(OverloadReason::Full { max_pending: 8 }.to_string(), "8 tasks already pending");
/// let shed = OverloadReason::Shed { waited: Duration::from_millis(120) };
/// assert_eq!(shed.to_string(), "shed by the queue after waiting 120ms");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub enum OverloadReason {
    /// Its admission bound (queued + in flight) was reached: refused at once.
    #[error("{max_pending} tasks already pending")]
    Full {
        /// The admission bound.
        max_pending: usize,
    },
    /// Its queue stood (CoDel) and the task had waited longer than the queue allows.
    #[error("shed by the queue after waiting {waited:?}")]
    Shed {
        /// How long it had waited for a worker.
        waited: Duration,
    },
}
