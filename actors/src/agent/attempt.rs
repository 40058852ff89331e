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
//!  4 outcome   for the breaker and timeout policy, with the latency from the start; a deadline
//!              that cut the attempt short is not the dependency's fault: ignored by the breaker,
//!              not an estimator sample
//!  5 record    breaker and timeout policy (lock-free queues), and the worker's own counts
//!              (attempts, queue wait, published in batches); the worker takes its next job
//!              (or parks), then answers Ran(result) to whoever submitted this one
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::{CallOutcome, Permit, Rejected};
use tokio::time::{Instant, Sleep};

use super::Agent;
use super::counts::WorkerCounts;
use super::error::AttemptError;
use super::job::{AttemptEnd, Job, JobReply};
use super::shared::Shared;
use crate::breaker::{KeyedBreakerHandle, KeyedPermit};
use crate::clock;
use crate::metrics::TimeoutOutcome;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, Signal, TaskContext};

/// A permit held by a running attempt: if the attempt never reports (its worker panicked or was
/// killed mid-call), the permit is recorded as a failure when it is dropped — a crashed worker
/// is the dependency's failure, and a half-open probe slot is never leaked.
struct HeldPermit<'a> {
    breaker: &'a crate::breaker::BreakerHandle,
    permit: Option<Permit>,
    /// The key's permit from the agent's keyed breaker family, when it has one (boxed: only
    /// agents with a family pay for its room in the attempt's future).
    keyed: Option<Box<(&'a KeyedBreakerHandle, KeyedPermit)>>,
    started: Instant,
}

impl HeldPermit<'_> {
    fn record(mut self, outcome: CallOutcome, took: Duration) {
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, outcome, took);
        }
        if let Some(keyed) = self.keyed.take() {
            let (family, permit) = *keyed;
            family.record(permit, outcome, took);
        }
    }
}

impl Drop for HeldPermit<'_> {
    fn drop(&mut self) {
        if self.permit.is_none() && self.keyed.is_none() {
            return; // recorded: no clock read on the happy path
        }
        let took = self.started.elapsed();
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, CallOutcome::Failure, took);
        }
        if let Some(keyed) = self.keyed.take() {
            let (family, permit) = *keyed;
            family.record(permit, CallOutcome::Failure, took);
        }
    }
}

/// How the race of step 3 ended.
enum Raced<R> {
    Answered(R),
    TimedOut,
    Abandoned,
}

/// A finished attempt: when it ended (the worker's next dequeue reuses that clock read), and
/// the answer still to deliver — the worker first takes its next job (or parks), then answers,
/// so that the woken submitter does not wait behind this worker's bookkeeping.
pub(crate) struct Finished<A: Agent> {
    pub(crate) ended: Instant,
    /// The answer, and the time from the job's `queued` to `ended`.
    answer: Option<(JobReply<A>, AttemptEnd<A>, Duration)>,
}

impl<A: Agent> Finished<A> {
    fn answered(ended: Instant) -> Self {
        Finished {
            ended,
            answer: None,
        }
    }

    /// Delivers the answer; one nobody waits for any more is dropped and counted late.
    pub(crate) fn deliver(self, shared: &Shared<A>) {
        if let Some((reply, end, held)) = self.answer {
            let ran = matches!(end, AttemptEnd::Ran(_));
            if !reply.send((end, held)) && ran {
                // The caller stopped waiting (its deadline or its cancellation came first).
                shared.timeout.late_reply();
            }
        }
    }
}

/// Runs one job to its end (see [`Finished`]). `taken`: when the worker took it from the
/// queue; `None` for a job handed over by its submitter, which starts as it was submitted (a
/// mailbox hop later: no clock read).
pub(crate) async fn run<A: Agent>(
    agent: &mut A,
    timer: &mut Option<Pin<Box<Sleep>>>,
    signal: &mut Arc<Signal>,
    counts: &WorkerCounts,
    shared: &Arc<Shared<A>>,
    mut job: Box<Job<A>>,
    taken: Option<Instant>,
) -> Finished<A> {
    // 1. skip
    let mut now = taken.unwrap_or(job.queued);
    if job.abandoned() {
        job.answer(AttemptEnd::Abandoned, now);
        return Finished::answered(now);
    }
    if job.deadline.is_some_and(|d| now >= d) {
        job.answer(AttemptEnd::DeadlineReached { ran: false }, now);
        return Finished::answered(now);
    }
    // 2. permit
    let mut asked = false;
    let decision = match shared.breaker.try_acquire_local() {
        Some(decision) => decision,
        None => {
            // HalfOpen (or an open period that just ended): only the breaker actor decides.
            // Boxed: a rare path, kept out of the attempt future's size.
            let decision = Box::pin(shared.breaker.acquire()).await;
            now = Instant::now();
            asked = true;
            decision
        }
    };
    let mut permit = match decision {
        Ok(permit) => HeldPermit {
            breaker: &shared.breaker,
            permit: Some(permit),
            keyed: None,
            started: now,
        },
        Err(rejected) => {
            job.answer(AttemptEnd::Rejected(rejected, None), now);
            return Finished::answered(now);
        }
    };
    if let Some(key) = shared.key_of(job.breaker_key.as_deref(), &job.task) {
        // The agent's breaker admitted it; the key's breaker decides too. Boxed: only agents
        // with a keyed family take this path.
        match Box::pin(acquire_key(shared, key, &mut now, &mut asked)).await {
            Ok(keyed) => permit.keyed = Some(Box::new(keyed)),
            Err(rejected) => {
                // Not a call: the agent's permit goes back unused.
                let key: Arc<str> = key.into();
                permit.record(CallOutcome::Ignored, Duration::ZERO);
                job.answer(AttemptEnd::Rejected(rejected, Some(key)), now);
                return Finished::answered(now);
            }
        }
    }
    if asked && job.abandoned() {
        // Abandoned while the breaker decided: hand the permit back.
        permit.record(CallOutcome::Ignored, Duration::ZERO);
        job.answer(AttemptEnd::Abandoned, now);
        return Finished::answered(now);
    }
    // The job stays in its box and its fields are used in place (moved out one by one):
    // copied into locals, they would sit in this future, which ractor moves with every
    // message.
    // 3. race (a job handed straight to a worker starts as it was queued: no subtraction)
    let waited = if now == job.queued {
        Duration::ZERO
    } else {
        now.saturating_duration_since(job.queued)
    };
    if !counts.wait(waited) {
        // Its buffer of waits is full: publish it (and the rest), then count.
        shared.counts.publish_now();
        let counted = counts.wait(waited);
        debug_assert!(counted, "an emptied buffer has room");
    }
    let policy = shared.timeout.timeout_for(job.operation.as_deref());
    let left = job.deadline.map(|d| d.saturating_duration_since(now));
    // The deadline cuts this attempt short when it comes first: then reaching it is the
    // caller's patience running out, not the dependency being slow.
    let (after, cut) = match left {
        Some(left) if left < policy => (left, true),
        _ => (policy, false),
    };
    let at = clock::after(now, after);
    // The attempt's signal: the worker's own, reused while the last context is gone; its
    // token is made only if the agent asks for it (or the attempt is abandoned).
    let ctx = TaskContext::for_attempt(
        signal,
        job.cancel.as_ref(),
        job.id,
        job.attempt,
        Some(at),
        shared.retried_at_or_above(job.retried_upstream),
        // For an agent that forwards the task (a remote attempt); a reference count at most.
        job.operation.clone(),
        job.breaker_key.take(),
    );
    counts.attempt(job.attempt > 1);
    // Listed now, not only when the attempt ends (it may take minutes): a scrape meanwhile
    // sees that it started.
    shared.counts.touch();
    if let Some(started) = job.started.take() {
        started.store(true, std::sync::atomic::Ordering::Release);
    }
    let raced = {
        let work = agent.handle(job.task, ctx);
        tokio::pin!(work);
        // An answer ready at the first poll needs no timer; only then is the timer armed.
        let raced = match poll_once(work.as_mut()).await {
            Some(result) => Raced::Answered(result),
            // Boxed: the race's state (the timer, the abandonment watch) stays out of the
            // attempt future, which ractor moves with every message.
            None => {
                Box::pin(race(
                    work.as_mut(),
                    timer,
                    at,
                    job.cancel.as_ref(),
                    &mut job.reply,
                ))
                .await
            }
        };
        if !matches!(raced, Raced::Answered(_)) {
            // Tell the agent, and give one that honours the signal a last poll to see it;
            // one that ignores it is dropped here.
            signal.cancel();
            if poll_once(work.as_mut()).await.is_some() {
                shared.timeout.late_reply();
            }
        }
        raced
    };
    // 4. the outcome, for the breaker and the timeout policy
    let ended = Instant::now();
    let took = ended.saturating_duration_since(now);
    let (end, breaker, sample) = match raced {
        Raced::Answered(Ok(output)) => (
            AttemptEnd::Ran(Ok(output)),
            CallOutcome::Success,
            Some((took, TimeoutOutcome::Success)),
        ),
        Raced::Answered(Err(error)) => {
            let breaker = A::classify(&error).breaker;
            (
                AttemptEnd::Ran(Err(AttemptError::Agent(error))),
                breaker,
                Some((took, TimeoutOutcome::Failure)),
            )
        }
        Raced::TimedOut if cut => (
            AttemptEnd::DeadlineReached { ran: true },
            CallOutcome::Ignored,
            None,
        ),
        Raced::TimedOut => (
            AttemptEnd::Ran(Err(AttemptError::TimedOut { after })),
            CallOutcome::Failure,
            Some((after, TimeoutOutcome::Timeout)),
        ),
        Raced::Abandoned => (AttemptEnd::Abandoned, CallOutcome::Ignored, None),
    };
    tracing::debug!(
        task = %job.id,
        attempt = job.attempt,
        outcome = end_label(&end),
        "attempt finished"
    );
    // 5. record (lock-free queues); the worker answers after taking its next job
    permit.record(breaker, took);
    if let Some((latency, outcome)) = sample {
        shared
            .timeout
            .record(job.operation.as_deref(), latency, outcome, counts);
    }
    // Its timeout sample too is published with the agent's next batch.
    shared.counts.touch();
    // The task's time in our hands: the attempt's latency when it started as it was queued.
    let held = if waited.is_zero() {
        took
    } else {
        ended.saturating_duration_since(job.queued)
    };
    Finished {
        ended,
        answer: Some((job.reply, end, held)),
    }
}

/// A permit from the agent's keyed family for `key`: from the published state, or from the
/// family's actor (HalfOpen), which moves `now` on.
async fn acquire_key<'a, A: Agent>(
    shared: &'a Shared<A>,
    key: &str,
    now: &mut Instant,
    asked: &mut bool,
) -> Result<(&'a KeyedBreakerHandle, KeyedPermit), Rejected> {
    let family = shared
        .keyed
        .as_ref()
        .expect("key_of gives a key only with a family");
    let decision = match family.try_acquire_local(key) {
        Some(decision) => decision,
        None => {
            let decision = family.acquire(key).await;
            *now = Instant::now();
            *asked = true;
            decision
        }
    };
    decision.map(|permit| (family, permit))
}

/// Races a pending attempt against its timeout and its abandonment.
async fn race<F: std::future::Future, T>(
    mut work: Pin<&mut F>,
    timer: &mut Option<Pin<Box<Sleep>>>,
    at: Instant,
    cancel: Option<&CancellationToken>,
    reply: &mut ReplyTo<T>,
) -> Raced<F::Output> {
    tokio::select! {
        biased;
        result = &mut work => Raced::Answered(result),
        () = arm(timer, at) => Raced::TimedOut,
        () = abandoned(cancel, reply) => Raced::Abandoned,
    }
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
        AttemptEnd::Rejected(..) => "rejected",
        AttemptEnd::Shed { .. } => "shed",
        AttemptEnd::Closed => "closed",
    }
}
