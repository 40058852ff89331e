//! Supervised agents: implement [`Agent`] for your worker, spawn it with [`AgentBuilder`], and
//! talk to it through the returned [`AgentHandle`].
//!
//! ```text
//!  caller's future (AgentHandle::call)                      supervisor actor (per agent)
//!  1 admit   bounded admission, then the breaker snapshot   ├── owns the worker pool (linked)
//!  2 send    to a pool worker; race its reply against the   │   restarts crashed workers with
//!            timeout actor's published deadline             │   backoff, escalates past the limit
//!  3 record  outcome + latency, lock-free, to the breaker   ├── drives retries: backoff, budget,
//!            and timeout actors                             │   deadline, breaker retry_after
//!  4 failure a retryable failure is handed to the  ───────▶ └── drives casts (no caller future)
//!            supervisor, which answers the caller once
//! ```
//!
//! The happy path is one mailbox hop (caller → worker). Only the failure path and casts pass
//! through the supervisor, which never awaits a worker inside `handle()`: attempts go out with
//! a reply that comes back as a message, and delays and deadlines live in one timer queue.

mod builder;
mod deadline;
mod error;
mod handle;
mod supervisor;
mod worker;

use std::future::Future;
use std::time::Duration;

pub use builder::{AgentBuilder, SpawnError};
pub use error::{AttemptError, CallError};
pub use handle::{AgentHandle, AgentStats, CallOptions};
pub use ractor_resilience_core::breaker::CallOutcome;
pub use supervisor::{
    RetryHook, RetryRequest, SupervisionSettings, SupervisorMsg, SupervisorStatus,
};
pub use worker::WorkerMsg;

use crate::task::TaskContext;

/// A task's final outcome: the agent's output, or how it ended otherwise.
pub type Outcome<A> = Result<<A as Agent>::Output, CallError<<A as Agent>::Error>>;

/// How an error of the agent is treated: whether it may be retried and how the circuit breaker
/// counts it.
///
/// ```
/// use ractor_resilience::agent::{CallOutcome, ErrorClass};
///
/// assert!(ErrorClass::TRANSIENT.retry);
/// assert_eq!(ErrorClass::CALLER_MISTAKE.breaker, CallOutcome::Ignored);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClass {
    /// May the task be attempted again?
    pub retry: bool,
    /// How the breaker counts the attempt: `Failure`, `Ignored` (a bad request must not trip
    /// the breaker) or `Success`.
    pub breaker: CallOutcome,
    /// Server pushback: do not retry before this long (e.g. a 429's `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ErrorClass {
    /// Retryable, counted by the breaker (timeouts, 5xx, rate limits).
    pub const TRANSIENT: ErrorClass = ErrorClass {
        retry: true,
        breaker: CallOutcome::Failure,
        retry_after: None,
    };
    /// Not retryable, counted by the breaker (the dependency is broken for this request).
    pub const PERMANENT: ErrorClass = ErrorClass {
        retry: false,
        breaker: CallOutcome::Failure,
        retry_after: None,
    };
    /// Not retryable and ignored by the breaker (a 4xx: the caller's mistake).
    pub const CALLER_MISTAKE: ErrorClass = ErrorClass {
        retry: false,
        breaker: CallOutcome::Ignored,
        retry_after: None,
    };

    /// The same class with server pushback.
    pub const fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

/// Your agent: the unit of work a supervised worker runs.
///
/// One instance is made per worker (and again after a restart) by the factory given to
/// [`AgentBuilder::new`]. A worker runs one task at a time; the pool size sets concurrency.
///
/// ```
/// use ractor_resilience::agent::{Agent, ErrorClass};
/// use ractor_resilience::task::TaskContext;
///
/// struct Echo;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("echo failed")]
/// struct EchoError;
///
/// impl Agent for Echo {
///     type Task = String;
///     type Output = String;
///     type Error = EchoError;
///
///     async fn handle(&self, task: String, _ctx: TaskContext) -> Result<String, EchoError> {
///         Ok(task)
///     }
///
///     fn classify(_error: &EchoError) -> ErrorClass {
///         ErrorClass::TRANSIENT
///     }
/// }
/// ```
pub trait Agent: Send + Sync + 'static {
    /// What the agent is asked to do. Cloned for each attempt.
    type Task: Clone + Send + Sync + 'static;
    /// What it answers.
    type Output: Send + 'static;
    /// How it fails.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Does the work. `ctx.cancel` fires when the attempt is abandoned (timeout, cancellation,
    /// shutdown): stop early when it does.
    fn handle(
        &self,
        task: Self::Task,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Classifies an error (a pure function of the error: the caller's future and the
    /// supervisor call it, not the worker). Default: [`ErrorClass::TRANSIENT`].
    fn classify(error: &Self::Error) -> ErrorClass {
        let _ = error;
        ErrorClass::TRANSIENT
    }
}
