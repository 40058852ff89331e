//! `AgentHandle::call_with`: a task's life in its caller's future. The happy path is one hop —
//! admission here, the job straight to an idle worker (or into the queue), the answer back on a
//! oneshot port. The caller races its task's deadline only while the attempt may still be
//! queued; the attempt's own timeout is the worker's. A retryable failure is handed to the
//! agent's actor, which answers once, at the deadline at the latest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use super::dispatch::Refused;
use super::error::{AttemptError, CallError, OverloadReason};
use super::handle::AgentHandle;
use super::job::{AttemptEnd, Job};
use super::msg::{InternalMsg, Origin, TaskRequest};
use super::options::CallOptions;
use super::shared::{Admitted, Shared};
use super::{Agent, Outcome};
use crate::clock;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskId};

impl<A: Agent> AgentHandle<A> {
    /// Runs `task` with options and waits for its outcome.
    pub async fn call_with(&self, task: A::Task, opts: CallOptions) -> Outcome<A> {
        self.call_ref(task, &opts).await
    }

    /// [`call_with`](Self::call_with) by reference: [`call`](Self::call) passes the default
    /// options from a `static`, so that its future holds a reference, not the options.
    pub(super) async fn call_ref(&self, task: A::Task, opts: &CallOptions) -> Outcome<A> {
        let key = self.shared.key_of(opts.breaker_key.as_deref(), &task);
        let mut admitted = self.shared.admit(opts.retried_upstream, key)?;
        let id = opts.id.unwrap_or_else(TaskId::next);
        let span = tracing::info_span!(
            "task",
            agent = %self.shared.name,
            task = %id,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // Entering and leaving a disabled span on every poll is not free: skip the wrapper when
        // no subscriber wants the span. Neither the span nor the instrumented future (boxed) is
        // held across the plain path's await: every byte this future holds is moved with it.
        if span.is_disabled() {
            drop(span);
            let (attempts, result) = self.run(task, id, opts, &mut admitted).await;
            self.shared.finish(&mut admitted, attempts, &result);
            return result;
        }
        let (attempts, result) = Box::pin(
            self.run(task, id, opts, &mut admitted)
                .instrument(span.clone()),
        )
        .await;
        self.shared.finish(&mut admitted, attempts, &result);
        span.record("attempts", attempts);
        span.record("outcome", outcome_label(&result));
        result
    }

    async fn run(
        &self,
        task: A::Task,
        id: TaskId,
        opts: &CallOptions,
        admitted: &mut Admitted<'_>,
    ) -> (u32, Outcome<A>) {
        let shared = &self.shared;
        let user = opts.cancel.as_ref();
        if user.is_some_and(CancellationToken::is_cancelled) {
            return (0, Err(CallError::Cancelled));
        }
        let deadline = opts.deadline.map(|d| clock::after(admitted.submitted, d));
        // Kept for a retry (a worker that crashes takes the job's copy with it).
        let kept = (shared.max_attempts(opts.retried_upstream) > 1).then(|| task.clone());
        let started = deadline.map(|_| Arc::new(AtomicBool::new(false)));
        let (reply, rx) = ReplyTo::port();
        let job = Box::new(Job {
            task,
            id,
            attempt: 1,
            deadline,
            operation: opts.operation.clone(),
            breaker_key: opts.breaker_key.clone(),
            cancel: user.cloned(),
            retried_upstream: opts.retried_upstream,
            queued: admitted.submitted,
            started: started.clone(),
            reply,
        });
        if let Err(refused) = shared.dispatch.submit(job) {
            return (0, Err(refused_error(shared, refused)));
        }
        // The plain wait in place (no deadline, no token: nothing to race), else the race.
        let waited = if deadline.is_none() && user.is_none() {
            match rx.await {
                Ok(answer) => Waited::Answer(answer),
                Err(_) => Waited::Lost,
            }
        } else {
            Box::pin(race(rx, deadline, user)).await
        };
        let end = match waited {
            Waited::Answer((end, took)) => {
                // The job was queued as the task was admitted: its time is the task's.
                admitted.took = Some(took);
                end
            }
            Waited::Lost => AttemptEnd::Ran(Err(AttemptError::WorkerLost)),
            Waited::Cancelled => return (1, Err(CallError::Cancelled)),
            Waited::Deadline => {
                let ran = started.is_some_and(|s| s.load(Ordering::Acquire));
                AttemptEnd::DeadlineReached { ran }
            }
        };
        let attempts = u32::from(end.ran());
        let error = match end {
            AttemptEnd::Ran(Ok(output)) => return (1, Ok(output)),
            AttemptEnd::Ran(Err(error)) => error,
            end => return (attempts, Err(self.final_without_retry(end, opts))),
        };
        // An attempt that failed because the task was cancelled ends it cancelled, not failed.
        if user.is_some_and(CancellationToken::is_cancelled) {
            return (1, Err(CallError::Cancelled));
        }
        match kept {
            // Boxed: the retry path's state stays out of every call's future.
            Some(task) if shared.may_retry(&error, 1, opts.retried_upstream) => {
                Box::pin(self.hand_over(task, id, error, deadline, opts)).await
            }
            _ => (1, Err(Shared::<A>::final_error(error, 1))),
        }
    }

    /// The final error of a first attempt that did not run to an answer.
    fn final_without_retry(&self, end: AttemptEnd<A>, opts: &CallOptions) -> CallError<A::Error> {
        final_without_retry(&self.shared, end, opts.deadline)
    }

    /// Hands a failed first attempt to the agent's actor, which retries it, and waits for the
    /// final answer (it comes at the deadline at the latest: the actor keeps that timer).
    async fn hand_over(
        &self,
        task: A::Task,
        id: TaskId,
        error: AttemptError<A::Error>,
        deadline: Option<Instant>,
        opts: &CallOptions,
    ) -> (u32, Outcome<A>) {
        let user = opts.cancel.as_ref();
        let (reply, mut rx) = ReplyTo::port();
        let request = TaskRequest {
            task,
            id,
            attempts: 1,
            error: Some(error),
            deadline,
            deadline_in: opts.deadline,
            // The actor stops retrying when this fires, or when this future is dropped (it
            // sees the reply port closed).
            cancel: user.cloned().unwrap_or_default(),
            operation: opts.operation.clone(),
            breaker_key: opts.breaker_key.clone(),
            retried_upstream: opts.retried_upstream,
            origin: Origin::Call(reply),
            admitted: None,
        };
        if self
            .actor
            .send_message(InternalMsg::Take(Box::new(request)).into())
            .is_err()
        {
            return (1, Err(CallError::Unavailable));
        }
        tokio::select! {
            biased;
            answer = &mut rx => answer.unwrap_or((1, Err(CallError::Unavailable))),
            () = cancelled(user) => {
                // Close first: an answer sent before this point is taken, none after it counts.
                rx.close();
                rx.try_recv().unwrap_or((1, Err(CallError::Cancelled)))
            }
        }
    }
}

/// The final error of a first attempt that did not run to an answer (`deadline_in`: the task's
/// deadline as its caller gave it).
pub(super) fn final_without_retry<A: Agent>(
    shared: &Shared<A>,
    end: AttemptEnd<A>,
    deadline_in: Option<std::time::Duration>,
) -> CallError<A::Error> {
    let attempts = u32::from(end.ran());
    match end {
        AttemptEnd::Ran(_) => unreachable!("answers are handled by the caller"),
        AttemptEnd::Rejected(rejected, key) => shared.rejected(rejected, key.as_deref()),
        AttemptEnd::DeadlineReached { .. } => CallError::TimedOut {
            after: deadline_in.unwrap_or_default(),
            attempts,
        },
        AttemptEnd::Shed { waited } => {
            shared.counts.metrics.shed();
            CallError::Overloaded {
                reason: OverloadReason::Shed { waited },
            }
        }
        AttemptEnd::Abandoned => CallError::Cancelled,
        AttemptEnd::Closed => CallError::Unavailable,
    }
}

pub(super) fn refused_error<A: Agent>(
    shared: &Shared<A>,
    refused: Refused<A>,
) -> CallError<A::Error> {
    match refused {
        Refused::Full(_) => CallError::Overloaded {
            reason: OverloadReason::Full {
                max_pending: shared
                    .max_pending
                    .load(std::sync::atomic::Ordering::Relaxed),
            },
        },
        Refused::Closed(_) => CallError::Unavailable,
    }
}

/// How waiting for a first attempt's answer ended.
enum Waited<A: Agent> {
    Answer((AttemptEnd<A>, std::time::Duration)),
    /// The job was dropped unanswered: its worker crashed.
    Lost,
    Cancelled,
    Deadline,
}

/// Waits for the answer, the caller's cancellation, or the task's deadline (the first attempt
/// may still be queued at it; a running one ends there on its own). Closing the receiver tells
/// the worker that nobody waits any more; an answer sent before the close is still taken. Only
/// for a task with a deadline or a token: without, the caller awaits the answer alone (boxed
/// here, so that the race's timer and cancellation wait stay out of the plain call's future).
async fn race<A: Agent>(
    mut rx: oneshot::Receiver<(AttemptEnd<A>, std::time::Duration)>,
    deadline: Option<Instant>,
    user: Option<&CancellationToken>,
) -> Waited<A> {
    let deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let gave_up = tokio::select! {
        biased;
        answer = &mut rx => return answer.map_or(Waited::Lost, Waited::Answer),
        () = cancelled(user) => Waited::Cancelled,
        () = deadline => Waited::Deadline,
    };
    rx.close();
    match rx.try_recv() {
        Ok(end) => Waited::Answer(end),
        Err(_) => gave_up,
    }
}

/// Completes when the caller's signal fires; never, without one.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The `outcome` field of a task span.
fn outcome_label<O, E>(result: &Result<O, CallError<E>>) -> &'static str {
    match result {
        Ok(_) => crate::metrics::TaskOutcome::Succeeded.as_str(),
        Err(e) => e.outcome().as_str(),
    }
}
