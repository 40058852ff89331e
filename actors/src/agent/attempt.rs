//! The attempt lifecycle, in one place: what a worker does with a [`Job`] it takes. The caller's
//! future and the supervisor both submit jobs; neither runs an attempt itself.
//!
//! ```text
//!  1 skip      cancelled, or its caller gone         → Abandoned (never starts)
//!              its task's deadline passed in queue   → DeadlineReached { ran: false }
//!  2 permit    the breaker decides now, at the start (a half-open probe slot is never held by
//!              a task that waits in the queue)       → Rejected
//!  3 race      the agent against the attempt timeout, which starts now (the dependency's
//!              clock), capped by the task's deadline (the caller's); one reusable timer per
//!              worker, moved forward for each attempt
//!  4 record    breaker and timeout policy get the outcome and the latency from the start; a
//!              deadline that cut the attempt short is not the dependency's fault: ignored by the
//!              breaker, not an estimator sample
//!  5 reply     Ran(result) to whoever submitted the job
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::{CallOutcome, Permit};
use tokio::time::{Instant, Sleep};

use super::Agent;
use super::error::AttemptError;
use super::job::{AttemptEnd, Job};
use super::shared::Shared;
use crate::clock;
use crate::metrics::TimeoutOutcome;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskContext};

/// A permit held by a running attempt: if the attempt never reports (its worker panicked or was
/// killed mid-call), the permit is recorded as a failure when it is dropped — a crashed worker
/// is the dependency's failure, and a half-open probe slot is never leaked.
struct HeldPermit<'a> {
    breaker: &'a crate::breaker::BreakerHandle,
    permit: Option<Permit>,
    started: Instant,
}

impl HeldPermit<'_> {
    fn record(mut self, outcome: CallOutcome, took: Duration) {
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, outcome, took);
        }
    }
}

impl Drop for HeldPermit<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker
                .record(permit, CallOutcome::Failure, self.started.elapsed());
        }
    }
}

/// How the race of step 3 ended.
enum Raced<O, E> {
    Answered(Result<O, E>),
    TimedOut,
    Abandoned,
}

/// Runs one job to its end and answers it; returns the instant it ended (the worker's next
/// dequeue reuses that clock read).
pub(crate) async fn run<A: Agent>(
    agent: &mut A,
    timer: &mut Option<Pin<Box<Sleep>>>,
    shared: &Arc<Shared<A>>,
    job: Job<A>,
) -> Instant {
    // 1. skip
    let mut now = Instant::now();
    if job.abandoned() {
        job.answer(AttemptEnd::Abandoned);
        return now;
    }
    if job.deadline.is_some_and(|d| now >= d) {
        job.answer(AttemptEnd::DeadlineReached { ran: false });
        return now;
    }
    // 2. permit
    let decision = match shared.breaker.try_acquire_local() {
        Some(decision) => decision,
        None => {
            // HalfOpen (or an open period that just ended): only the breaker actor decides.
            let decision = shared.breaker.acquire().await;
            now = Instant::now();
            decision
        }
    };
    let permit = match decision {
        Ok(permit) => HeldPermit {
            breaker: &shared.breaker,
            permit: Some(permit),
            started: now,
        },
        Err(rejected) => {
            job.answer(AttemptEnd::Rejected(rejected));
            return now;
        }
    };
    if job.abandoned() {
        permit.record(CallOutcome::Ignored, Duration::ZERO);
        job.answer(AttemptEnd::Abandoned);
        return now;
    }
    let Job {
        task,
        id,
        attempt,
        deadline,
        operation,
        cancel: task_cancel,
        retried_upstream,
        queued,
        started,
        mut reply,
    } = job;
    // 3. race
    shared
        .metrics
        .queue_wait(now.saturating_duration_since(queued));
    let operation = operation.as_deref();
    let policy = shared.timeout.timeout_for(operation);
    let left = deadline.map(|d| d.saturating_duration_since(now));
    // The deadline cuts this attempt short when it comes first: then reaching it is the
    // caller's patience running out, not the dependency being slow.
    let (after, cut) = match left {
        Some(left) if left < policy => (left, true),
        _ => (policy, false),
    };
    let at = clock::after(now, after);
    let cancel = task_cancel
        .as_ref()
        .map_or_else(CancellationToken::new, CancellationToken::child_token);
    let ctx = TaskContext {
        id,
        attempt,
        deadline: Some(at),
        cancel: cancel.clone(),
        retries_here: shared.retried_at_or_above(retried_upstream),
    };
    shared.count_attempt(attempt);
    if let Some(started) = started {
        started.store(true, std::sync::atomic::Ordering::Release);
    }
    let timer = arm(timer, at);
    let raced = {
        let work = agent.handle(task, ctx);
        tokio::pin!(work);
        let raced = tokio::select! {
            biased;
            result = &mut work => Raced::Answered(result),
            () = timer => Raced::TimedOut,
            () = abandoned(task_cancel.as_ref(), &mut reply) => Raced::Abandoned,
        };
        if !matches!(raced, Raced::Answered(_)) {
            // Tell the agent, and give one that honours the signal a last poll to see it;
            // one that ignores it is dropped here.
            cancel.cancel();
            if poll_once(work.as_mut()).await.is_some() {
                shared.timeout.late_reply();
            }
        }
        raced
    };
    // 4. record
    let ended = Instant::now();
    let took = ended.saturating_duration_since(now);
    let end = match raced {
        Raced::Answered(Ok(output)) => {
            permit.record(CallOutcome::Success, took);
            shared
                .timeout
                .record(operation, took, TimeoutOutcome::Success);
            AttemptEnd::Ran(Ok(output))
        }
        Raced::Answered(Err(error)) => {
            permit.record(A::classify(&error).breaker, took);
            shared
                .timeout
                .record(operation, took, TimeoutOutcome::Failure);
            AttemptEnd::Ran(Err(AttemptError::Agent(error)))
        }
        Raced::TimedOut if cut => {
            permit.record(CallOutcome::Ignored, took);
            AttemptEnd::DeadlineReached { ran: true }
        }
        Raced::TimedOut => {
            permit.record(CallOutcome::Failure, took);
            shared
                .timeout
                .record(operation, after, TimeoutOutcome::Timeout);
            AttemptEnd::Ran(Err(AttemptError::TimedOut { after }))
        }
        Raced::Abandoned => {
            permit.record(CallOutcome::Ignored, took);
            AttemptEnd::Abandoned
        }
    };
    tracing::debug!(
        task = %id,
        attempt,
        outcome = end_label(&end),
        "attempt finished"
    );
    // 5. reply
    let answered = matches!(end, AttemptEnd::Ran(_));
    if !reply.send(end) && answered {
        // The caller stopped waiting (its deadline or its cancellation came first).
        shared.timeout.late_reply();
    }
    ended
}

/// The worker's one timer, moved to `at` (a later deadline only extends its registration, with
/// no lock on the timer wheel), created on first use.
fn arm(timer: &mut Option<Pin<Box<Sleep>>>, at: Instant) -> Pin<&mut Sleep> {
    match timer {
        Some(sleep) => sleep.as_mut().reset(at),
        None => *timer = Some(Box::pin(tokio::time::sleep_until(at))),
    }
    timer.as_mut().expect("armed above").as_mut()
}

/// Completes when nobody waits for the job any more: a caller's future dropped its port's
/// receiver (it does on its deadline and on its cancellation), or, for a job the supervisor
/// drives, the job's signal fired.
async fn abandoned<T>(cancel: Option<&CancellationToken>, reply: &mut ReplyTo<T>) {
    match cancel {
        Some(cancel) if !reply.is_port() => cancel.cancelled().await,
        _ => reply.closed().await,
    }
}

/// Polls `fut` once.
async fn poll_once<F: std::future::Future + ?Sized>(fut: Pin<&mut F>) -> Option<F::Output> {
    let mut fut = Some(fut);
    std::future::poll_fn(move |cx| {
        let fut = fut.take().expect("polled once");
        std::task::Poll::Ready(match fut.poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

fn end_label<A: Agent>(end: &AttemptEnd<A>) -> &'static str {
    match end {
        AttemptEnd::Ran(result) => super::job::attempt_label(result),
        AttemptEnd::DeadlineReached { .. } => "deadline",
        AttemptEnd::Abandoned => "abandoned",
        AttemptEnd::Rejected(_) => "rejected",
        AttemptEnd::Shed { .. } => "shed",
        AttemptEnd::Closed => "closed",
    }
}
