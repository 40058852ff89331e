//! The tasks the agent's actor holds: callers' failed first attempts to retry, casts, and tasks
//! sent by message. Their attempts go through the dispatcher like a caller's; the workers'
//! answers come back as [`InternalMsg::AttemptDone`]; what follows a failure is the core's retry
//! planner's decision ([`ractor_resilience_core::retry::plan`]), within the retry budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ractor::ActorRef;
use ractor_resilience_core::backoff::{ExponentialBackoff, RetryPolicy};
use ractor_resilience_core::breaker::Rejected;
use ractor_resilience_core::retry::{RetryDecision, RetryInput, plan, task_seed};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::super::dispatch::Refused;
use super::super::error::{AttemptError, CallError, OverloadReason};
use super::super::job::{AttemptEnd, Job};
use super::super::msg::{AgentMsg, InternalMsg, Origin, TaskRequest};
use super::super::shared::Shared;
use super::super::{Agent, Outcome};
use super::{SupervisorState, Timer};
use crate::clock;
use crate::metrics::RetryOutcome;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskEnvelope, TaskId};
use crate::timeout::TimerId;

/// The held tasks, by key.
pub(crate) struct Tasks<A: Agent> {
    held: HashMap<u64, Held<A>>,
    by_id: HashMap<TaskId, u64>,
    next_key: u64,
    /// Seeds each task's retry jitter together with its id (deterministic simulations).
    seed: u64,
}

struct Held<A: Agent> {
    req: TaskRequest<A>,
    /// The retry policy this task plans with, and its backoff schedule: taken when its first
    /// retry is planned, kept to its end (a reload never mixes two policies in one task).
    backoff: Option<(Arc<RetryPolicy>, ExponentialBackoff<SmallRng>)>,
    /// The attempt a worker has (or will take), the signal that abandons it, and whether a
    /// worker started it.
    running: Option<(u32, CancellationToken, Arc<AtomicBool>)>,
    deadline_timer: Option<TimerId>,
}

impl<A: Agent> Held<A> {
    /// Attempts made: those answered, and one a worker has started but not answered yet.
    fn attempts_made(&self) -> u32 {
        match &self.running {
            Some((attempt, _, started)) if started.load(Ordering::Acquire) => *attempt,
            _ => self.req.attempts,
        }
    }
}

impl<A: Agent> Tasks<A> {
    pub(crate) fn new(seed: u64) -> Self {
        Tasks {
            held: HashMap::new(),
            by_id: HashMap::new(),
            next_key: 0,
            seed,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn keys(&self) -> Vec<u64> {
        self.held.keys().copied().collect()
    }
}

impl<A: Agent> SupervisorState<A> {
    /// A task sent by message: admitted here (refusals answered at once), then held.
    pub(super) fn submit_message(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
        envelope: TaskEnvelope<A::Task>,
        reply: ReplyTo<Outcome<A>>,
    ) {
        let key = self
            .shared
            .key_of(envelope.breaker_key.as_deref(), &envelope.task);
        let admitted = match self.shared.admit(envelope.retried_upstream, key) {
            Ok(admitted) => admitted,
            Err(refused) => {
                reply.send(Err(refused));
                return;
            }
        };
        let deadline = envelope
            .deadline_in
            .map(|d| clock::after(admitted.submitted, d));
        self.take_over(
            myself,
            TaskRequest {
                task: envelope.task,
                id: envelope.id,
                attempts: 0,
                error: None,
                deadline,
                deadline_in: envelope.deadline_in,
                cancel: CancellationToken::new(),
                operation: envelope.operation,
                breaker_key: envelope.breaker_key,
                retried_upstream: envelope.retried_upstream,
                origin: Origin::Cast(Some(reply)),
                admitted: Some(admitted.into_owned(&self.shared)),
            },
        );
    }

    /// Cancels a held task by id.
    pub(super) fn cancel(&mut self, id: TaskId) {
        if let Some(&key) = self.tasks.by_id.get(&id) {
            self.finish(key, Err(CallError::Cancelled));
        }
    }

    pub(super) fn take_over(&mut self, myself: &ActorRef<AgentMsg<A>>, mut req: TaskRequest<A>) {
        let key = self.tasks.next_key;
        self.tasks.next_key += 1;
        let error = req.error.take();
        let deadline_timer = req
            .deadline
            .map(|at| self.timers.insert(at, Timer::Deadline(key)));
        self.tasks.by_id.insert(req.id, key);
        self.tasks.held.insert(
            key,
            Held {
                req,
                backoff: None,
                running: None,
                deadline_timer,
            },
        );
        match error {
            None => self.submit_job(myself, key),
            Some(error) => self.after_failure(key, error),
        }
    }

    /// Submits the next attempt of task `key`.
    pub(super) fn submit_job(&mut self, myself: &ActorRef<AgentMsg<A>>, key: u64) {
        let Some(h) = self.tasks.held.get_mut(&key) else {
            return;
        };
        if h.req.abandoned() {
            return self.finish(key, Err(CallError::Cancelled));
        }
        let attempt = h.req.attempts + 1;
        let cancel = h.req.cancel.child_token();
        let started = Arc::new(AtomicBool::new(false));
        h.running = Some((attempt, cancel.clone(), started.clone()));
        let me = myself.clone();
        let job = Box::new(Job {
            task: h.req.task.clone(),
            id: h.req.id,
            attempt,
            deadline: h.req.deadline,
            operation: h.req.operation.clone(),
            breaker_key: h.req.breaker_key.clone(),
            cancel: Some(cancel),
            retried_upstream: h.req.retried_upstream,
            queued: Instant::now(),
            started: Some(started),
            reply: ReplyTo::callback(
                move |answer: Option<(AttemptEnd<A>, std::time::Duration)>| {
                    let end = answer.map(|(end, _)| end);
                    let _ = me.send_message(InternalMsg::AttemptDone { key, attempt, end }.into());
                },
            ),
        });
        match self.shared.dispatch.submit(job) {
            Ok(()) => {}
            // The job (and its reply, which reports nothing for a task already answered) is
            // dropped after the answer.
            Err(Refused::Full(_job)) => {
                let max_pending = self.shared.max_pending.load(Ordering::Relaxed);
                let reason = OverloadReason::Full { max_pending };
                self.finish(key, Err(CallError::Overloaded { reason }));
            }
            Err(Refused::Closed(_job)) => {
                self.finish(key, Err(CallError::Unavailable));
            }
        }
    }

    pub(super) fn attempt_done(&mut self, key: u64, attempt: u32, end: Option<AttemptEnd<A>>) {
        let Some(h) = self.tasks.held.get_mut(&key) else {
            return;
        };
        if h.running.as_ref().is_none_or(|(a, ..)| *a != attempt) {
            return;
        }
        h.running = None;
        let end = end.unwrap_or(AttemptEnd::Ran(Err(AttemptError::WorkerLost)));
        if end.ran() {
            h.req.attempts = attempt;
        }
        match end {
            AttemptEnd::Ran(Ok(output)) => self.finish(key, Ok(output)),
            AttemptEnd::Ran(Err(error)) => self.after_failure(key, error),
            AttemptEnd::Rejected(rejected, by) => self.after_rejection(key, rejected, by),
            AttemptEnd::DeadlineReached { .. } => self.deadline_reached(key),
            AttemptEnd::Shed { waited } => {
                self.shared.counts.metrics.shed();
                let reason = OverloadReason::Shed { waited };
                self.finish(key, Err(CallError::Overloaded { reason }));
            }
            AttemptEnd::Abandoned => self.finish(key, Err(CallError::Cancelled)),
            AttemptEnd::Closed => self.finish(key, Err(CallError::Unavailable)),
        }
    }

    /// The task's deadline passed: it ends `TimedOut`, whatever it was doing.
    pub(super) fn deadline_reached(&mut self, key: u64) {
        let Some(h) = self.tasks.held.get(&key) else {
            return;
        };
        let after = h.req.deadline_in.unwrap_or_default();
        let attempts = h.attempts_made();
        self.finish(key, Err(CallError::TimedOut { after, attempts }));
    }

    /// The breaker refused an attempt as a worker was about to start it. A retry waits for its
    /// next backoff step (past the open period) rather than giving up; a task not yet attempted
    /// ends `Rejected`, as it would have at admission.
    fn after_rejection(&mut self, key: u64, rejected: Rejected, by: Option<Arc<str>>) {
        let now = Instant::now();
        let breaker_wait = rejected
            .retry_after
            .filter(|_| rejected.state == ractor_resilience_core::breaker::BreakerState::Open)
            .map(|at| Instant::from_std(at).saturating_duration_since(now));
        match self.plan(key, true, None, breaker_wait, now) {
            Some(RetryDecision::Retry { delay }) if self.held_attempts(key) > 0 => {
                self.timers
                    .insert(clock::after(now, delay), Timer::Resend(key));
            }
            _ => {
                let error = self.shared.rejected(rejected, by.as_deref());
                self.finish(key, Err(error));
            }
        }
    }

    fn held_attempts(&self, key: u64) -> u32 {
        self.tasks.held.get(&key).map_or(0, |h| h.req.attempts)
    }

    /// Runs the retry planner for task `key` (taking its next backoff step).
    fn plan(
        &mut self,
        key: u64,
        retryable: bool,
        pushback: Option<Duration>,
        breaker_wait: Option<Duration>,
        now: Instant,
    ) -> Option<RetryDecision> {
        let seed = self.tasks.seed;
        let shared = &self.shared;
        let h = self.tasks.held.get_mut(&key)?;
        let (policy, backoff) = h.backoff.get_or_insert_with(|| {
            let seed = task_seed(seed, h.req.id.0);
            let policy = shared.retry.load_full();
            let backoff = policy.backoff(SmallRng::seed_from_u64(seed));
            (policy, backoff)
        });
        let step = backoff.next();
        let max_attempts = if h.req.retried_upstream {
            1
        } else {
            policy.max_attempts()
        };
        Some(plan(&RetryInput {
            attempts: h.req.attempts,
            max_attempts,
            retryable,
            backoff_step: step,
            pushback,
            breaker_wait,
            deadline_left: h.req.deadline.map(|d| d.saturating_duration_since(now)),
        }))
    }

    /// Decides what follows a failed attempt: a scheduled retry, or the final answer.
    fn after_failure(&mut self, key: u64, error: AttemptError<A::Error>) {
        let Some(h) = self.tasks.held.get(&key) else {
            return;
        };
        if h.req.abandoned() {
            return self.finish(key, Err(CallError::Cancelled));
        }
        let attempts = h.req.attempts;
        let id = h.req.id;
        let now = Instant::now();
        let pushback = match &error {
            AttemptError::Agent(e) => A::classify(e).retry_after,
            _ => None,
        };
        let breaker_wait = self
            .shared
            .breaker_open_until()
            .map(|until| until.saturating_duration_since(now));
        let decision = self.plan(
            key,
            Shared::<A>::retryable(&error),
            pushback,
            breaker_wait,
            now,
        );
        let Some(RetryDecision::Retry { delay }) = decision else {
            tracing::debug!(task = %id, ?decision, "no further attempt");
            return self.finish(key, Err(Shared::<A>::final_error(error, attempts)));
        };
        if let Some(budget) = &self.shared.budget {
            if !budget.try_withdraw() {
                self.shared
                    .counts
                    .metrics
                    .retry(RetryOutcome::BudgetExhausted);
                return self.finish(key, Err(Shared::<A>::final_error(error, attempts)));
            }
        }
        if let Some(hook) = &self.shared.on_retry {
            hook(attempts, &error, delay);
        }
        tracing::debug!(agent = %self.shared.name, task = %id, attempt = attempts, ?delay, %error, "retrying");
        self.timers
            .insert(clock::after(now, delay), Timer::Resend(key));
    }

    /// Delivers a task's final answer and forgets it.
    pub(super) fn finish(&mut self, key: u64, result: Outcome<A>) {
        let Some(mut h) = self.tasks.held.remove(&key) else {
            return;
        };
        if self.tasks.by_id.get(&h.req.id) == Some(&key) {
            self.tasks.by_id.remove(&h.req.id);
        }
        let attempts = h.attempts_made();
        if let Some((_, cancel, _)) = h.running.take() {
            // Queued: a worker skips it. Running: the worker stops it and hands its permit back.
            cancel.cancel();
        }
        if let Some(timer) = h.deadline_timer.take() {
            self.timers.cancel(timer);
        }
        match std::mem::replace(&mut h.req.origin, Origin::Cast(None)) {
            Origin::Call(reply) => {
                reply.send((attempts, result));
            }
            Origin::Cast(reply) => {
                if let Some(mut admitted) = h.req.admitted.take() {
                    self.shared.finish(&mut admitted, attempts, &result);
                    // Released before the answer goes out: whoever gets it sees the slot free.
                    drop(admitted);
                }
                if let Some(reply) = reply {
                    reply.send(result);
                }
            }
        }
    }
}
