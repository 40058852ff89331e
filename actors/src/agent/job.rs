//! [`Job`]: one attempt of a task waiting for (or running on) a worker, and [`AttemptEnd`], how
//! it ended. Whoever submits a job keeps the task for a retry (a worker that crashes takes its
//! copy with it). The caller's future and the supervisor both submit jobs and read the
//! same answers: the attempt lifecycle itself lives in one place, the worker
//! ([`super::attempt`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ractor_resilience_core::breaker::Rejected;
use tokio::time::Instant;

use super::Agent;
use super::error::AttemptError;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskId};

/// One attempt of a task, as the dispatcher queues it and a worker runs it.
pub(crate) struct Job<A: Agent> {
    pub(crate) task: A::Task,
    pub(crate) id: TaskId,
    /// The number this attempt gets if it runs (attempts already made + 1).
    pub(crate) attempt: u32,
    /// The task's deadline (the caller's patience, from submission).
    pub(crate) deadline: Option<Instant>,
    pub(crate) operation: Option<Arc<str>>,
    /// The key its caller gave for the keyed breaker family (else the task's own).
    pub(crate) breaker_key: Option<Arc<str>>,
    /// The task's cancellation signal (the attempt's own token is a child of it).
    pub(crate) cancel: Option<CancellationToken>,
    /// An upstream layer retries this task (one attempt here).
    pub(crate) retried_upstream: bool,
    /// When it was handed to the dispatcher: the origin of its queueing time.
    pub(crate) queued: Instant,
    /// Set when a worker starts it, for a caller that may stop waiting before the answer (its
    /// deadline) and must still say how many attempts were made.
    pub(crate) started: Option<Arc<AtomicBool>>,
    /// The job's end, and how long after `queued` it ended (the task's duration reuses the
    /// worker's clock read and, for a job handed straight to a worker, its attempt's latency).
    pub(crate) reply: JobReply<A>,
}

/// Where a job's end goes, with the time from its `queued` to its end.
pub(crate) type JobReply<A> = ReplyTo<(AttemptEnd<A>, Duration)>;

impl<A: Agent> Job<A> {
    /// Nobody waits for it any more: its task was cancelled, or its caller's future is gone.
    pub(crate) fn abandoned(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
            || self.reply.is_closed()
    }

    /// Answers without running it, as of `at`.
    pub(crate) fn answer(self, end: AttemptEnd<A>, at: Instant) {
        let held = at.saturating_duration_since(self.queued);
        self.reply.send((end, held));
    }
}

impl<A: Agent> std::fmt::Debug for Job<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({}, attempt {})", self.id, self.attempt)
    }
}

/// How a job ended.
pub(crate) enum AttemptEnd<A: Agent> {
    /// It ran: the agent's answer, its error, or the attempt's own timeout (the dependency's
    /// clock, from the attempt's start).
    Ran(Result<A::Output, AttemptError<A::Error>>),
    /// The breaker refused it when a worker was about to start it: not an attempt. With the
    /// key, when the agent's keyed breaker family refused it.
    Rejected(Rejected, Option<Arc<str>>),
    /// The task's deadline passed: while it waited (it never ran), or during the attempt where
    /// the deadline came before the attempt's own timeout. The caller's patience ran out, not the
    /// dependency's: no breaker failure, no estimator sample, no retry.
    DeadlineReached {
        /// Whether it had started.
        ran: bool,
    },
    /// Shed by the queue (CoDel) after waiting this long: not an attempt.
    Shed {
        /// Its time in the queue.
        waited: Duration,
    },
    /// Its task was cancelled (or its caller left) before it finished.
    Abandoned,
    /// The agent is shutting down: no worker will take it.
    Closed,
}

impl<A: Agent> AttemptEnd<A> {
    /// Whether a worker started it (an attempt was made).
    pub(crate) fn ran(&self) -> bool {
        matches!(
            self,
            AttemptEnd::Ran(_) | AttemptEnd::DeadlineReached { ran: true }
        )
    }
}

/// The `outcome` field of an attempt span.
pub(crate) fn attempt_label<O, E>(result: &Result<O, AttemptError<E>>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(AttemptError::Agent(_)) => "error",
        Err(AttemptError::WorkerLost) => "worker_lost",
        Err(AttemptError::NoWorker) => "no_worker",
        Err(AttemptError::TimedOut { .. }) => "timed_out",
    }
}

/// What a worker is sent.
pub(crate) enum WorkerMsg<A: Agent> {
    /// Run this job (it was handed to this worker because it was idle). Boxed: inline, a
    /// job's 120 bytes (and its task's) are held by the worker's future, which ractor moves
    /// with every message — boxing took the stack's p50 from 1.56 to 1.50 × a bare call. A job
    /// that waits in the queue stays inline there and is boxed by the worker that takes it, so
    /// that under load one thread allocates and frees it.
    Run(Box<Job<A>>),
    /// Look for queued work (after a start or restart, and to yield between batches).
    Pull,
    /// The pool shrank and this worker's slot is gone: stop (after whatever came before).
    Retire,
}

impl<A: Agent> std::fmt::Debug for WorkerMsg<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerMsg::Run(job) => write!(f, "WorkerMsg::Run({job:?})"),
            WorkerMsg::Pull => f.write_str("WorkerMsg::Pull"),
            WorkerMsg::Retire => f.write_str("WorkerMsg::Retire"),
        }
    }
}

#[cfg(feature = "cluster")]
impl<A: Agent> ractor::Message for WorkerMsg<A> {}
