//! [`CallOptions`]: what a caller may say about one task besides the task itself.

use std::sync::Arc;
use std::time::Duration;

use crate::task::{CancellationToken, TaskEnvelope, TaskId};

/// Per-call options.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::agent::CallOptions;
///
/// let opts = CallOptions::default().with_deadline(Duration::from_secs(5)).with_operation("summarise");
/// assert_eq!(opts.deadline, Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The whole task's deadline, from submission (all attempts and backoff included).
    pub deadline: Option<Duration>,
    /// The operation name, for per-operation timeouts (a configured name, never task data).
    pub operation: Option<Arc<str>>,
    /// The caller's cancellation signal.
    pub cancel: Option<CancellationToken>,
    /// The task id to use (e.g. from an upstream envelope); a fresh one otherwise.
    pub id: Option<TaskId>,
    /// An upstream layer retries this task: make exactly one attempt here.
    pub retried_upstream: bool,
    /// The task's key in the agent's keyed breaker family (wins over
    /// [`Agent::breaker_key`](super::Agent::breaker_key)).
    pub breaker_key: Option<Arc<str>>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self::NONE
    }
}

impl CallOptions {
    /// No options, as a constant ([`Default`] gives it too).
    pub(crate) const NONE: CallOptions = CallOptions {
        deadline: None,
        operation: None,
        cancel: None,
        id: None,
        retried_upstream: false,
        breaker_key: None,
    };

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
    /// Sets the operation name.
    pub fn with_operation(mut self, operation: impl Into<Arc<str>>) -> Self {
        self.operation = Some(operation.into());
        self
    }
    /// Sets the task's key in the agent's keyed breaker family.
    pub fn with_breaker_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.breaker_key = Some(key.into());
        self
    }
    /// Sets the cancellation signal.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
    /// Options taken from an incoming envelope: same id, remaining deadline, operation, and the
    /// "retry at one layer" flag.
    pub fn from_envelope<T>(envelope: &TaskEnvelope<T>) -> Self {
        CallOptions {
            deadline: envelope.deadline_in,
            operation: envelope.operation.clone(),
            cancel: None,
            id: Some(envelope.id),
            retried_upstream: envelope.retried_upstream,
            breaker_key: envelope.breaker_key.clone(),
        }
    }
}
