//! Supervised agents: implement [`Agent`] for your worker, spawn it with [`AgentBuilder`], and
//! talk to it through the returned [`AgentHandle`].
//!
//! ```text
//!  caller's future (AgentHandle::call), or          the agent's actor (AgentMsg): its supervisor
//!  the agent's actor for a task sent by message     ├── owns the worker pool (linked), restarts
//!  1 admit    bounded admission, breaker snapshot   │   crashed workers with backoff, escalates
//!  2 dispatch to an idle worker, else into the      ├── holds casts, tasks by message and
//!             agent's one bounded queue (CoDel)     │   retries: backoff, budget, deadline,
//!  3 attempt  the worker takes the probe permit,    │   breaker retry_after (the core's planner)
//!             starts the attempt timeout, races it  └── answers each task once
//!  4 record   outcome + latency, lock-free, to the breaker and timeout policy
//!  5 failure  a retryable failure is handed to the actor
//! ```
//!
//! The happy path is one mailbox hop (caller → worker). Workers pull: no task waits behind a busy
//! worker while another is idle. The task's deadline (the caller's patience) runs from
//! submission; the attempt's timeout (the dependency's) from the moment a worker starts it, so
//! time spent queueing never trips the breaker, feeds the estimator, or causes a retry. The
//! actor never awaits a worker inside `handle()`: attempts go out with a reply that comes back
//! as a message, and delays and deadlines live in one timer queue.

mod attempt;
mod builder;
mod call;
mod counts;
mod deadline;
mod dispatch;
mod error;
mod handle;
mod job;
mod msg;
mod options;
mod reconfigure;
#[cfg(feature = "cluster")]
mod serve_once;
mod shared;
mod supervisor;
mod worker;

use std::future::Future;
use std::time::Duration;

pub use builder::{AgentBuilder, SpawnError};
pub use error::{AttemptError, CallError, OverloadReason};
pub use handle::AgentHandle;
pub use msg::{AgentMsg, Internal, SupervisorStatus};
pub use options::CallOptions;
pub use ractor_resilience_core::breaker::CallOutcome;
pub use reconfigure::{AgentUpdate, ReconfigureError};
pub use shared::{AgentStats, RetryHook};
pub use supervisor::SupervisionSettings;

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
/// Because each worker owns its instance, `handle` takes `&mut self`: an agent may keep
/// per-worker state (a connection, a conversation, a cache) with no lock.
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
///     async fn handle(&mut self, task: String, _ctx: TaskContext) -> Result<String, EchoError> {
///         Ok(task)
///     }
///
///     fn classify(_error: &EchoError) -> ErrorClass {
///         ErrorClass::TRANSIENT
///     }
/// }
/// ```
pub trait Agent: Send + 'static {
    /// What the agent is asked to do. Cloned for each attempt.
    type Task: Clone + Send + Sync + 'static;
    /// What it answers.
    type Output: Send + 'static;
    /// How it fails.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Does the work. `ctx.cancel()` fires when the attempt is abandoned (timeout, cancellation,
    /// shutdown): stop early when it does.
    fn handle(
        &mut self,
        task: Self::Task,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Classifies an error (a pure function of the error). Default: [`ErrorClass::TRANSIENT`].
    fn classify(error: &Self::Error) -> ErrorClass {
        let _ = error;
        ErrorClass::TRANSIENT
    }

    /// The key of `task` in the agent's keyed breaker family, if it has one
    /// ([`AgentBuilder::key_breaker`]): the model, endpoint or tenant the task calls. A key
    /// given in [`CallOptions::breaker_key`] wins; a task with neither uses
    /// [`DEFAULT_BREAKER_KEY`]. Default: none.
    ///
    /// Keys are breaker keys, not metric labels: the family decides which keys get series of
    /// their own (configured ones and the top few), so any string is safe here.
    fn breaker_key(task: &Self::Task) -> Option<&str> {
        let _ = task;
        None
    }
}

/// The key of a task that names none, in an agent with a keyed breaker family.
pub const DEFAULT_BREAKER_KEY: &str = "default";
