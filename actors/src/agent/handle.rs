//! [`AgentHandle`]: submit tasks with `call` (await the outcome) or `cast` (outcome to a reply
//! target). The happy path of `call` runs entirely in the caller's future.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::ActorRef;
use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::{CallOutcome, Permit, Rejected};
use tokio::time::Instant;
use tracing::Instrument;

use super::deadline::AgentTimeout;
use super::error::{AttemptError, CallError};
use super::supervisor::{Origin, RetryHook, RetryRequest, SupervisorMsg, SupervisorStatus};
use super::worker::WorkerMsg;
use super::{Agent, Outcome};
use crate::breaker::BreakerHandle;
use crate::budget::SharedBudget;
use crate::clock;
use crate::metrics::{AgentMetrics, RetryOutcome, TaskOutcome, TimeoutOutcome};
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskContext, TaskEnvelope, TaskId};
use crate::timeout::{DeadlineWatch, TimeoutHandle, TimeoutStatus, Watch, Watched, race_until};

/// Per-call options.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::agent::CallOptions;
///
/// let opts = CallOptions::default().with_deadline(Duration::from_secs(5)).with_operation("summarise");
/// assert_eq!(opts.deadline, Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default)]
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
}

impl CallOptions {
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
    /// Sets the cancellation signal.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
    /// Options taken from an incoming envelope: same id, remaining deadline, and the
    /// "retry at one layer" flag.
    pub fn from_envelope<T>(envelope: &TaskEnvelope<T>) -> Self {
        CallOptions {
            deadline: envelope.deadline_in,
            operation: None,
            cancel: None,
            id: Some(envelope.id),
            retried_upstream: envelope.retried_upstream,
        }
    }
}

/// The workers, shared by the handle (which picks one per attempt) and the supervisor (which
/// replaces crashed ones).
pub(crate) struct Pool<A: Agent> {
    pub(crate) slots: RwLock<Vec<Option<ActorRef<WorkerMsg<A>>>>>,
    next: AtomicUsize,
}

impl<A: Agent> Pool<A> {
    pub(crate) fn new(size: usize) -> Self {
        Pool {
            slots: RwLock::new(vec![None; size]),
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `msg` to the next live worker (round robin), under the read lock: no clone of the
    /// worker's reference, and no shared counter to bump when the pool has one worker.
    pub(crate) fn send(&self, msg: WorkerMsg<A>) -> Result<(), PoolSendError> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let worker = self.next_live(&slots).ok_or(PoolSendError::NoWorker)?;
        worker.send_message(msg).map_err(|_| PoolSendError::Stopped)
    }

    /// Round robin over the live workers.
    pub(crate) fn pick(&self) -> Option<ActorRef<WorkerMsg<A>>> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        self.next_live(&slots).cloned()
    }

    /// The next live worker of `slots` in round-robin order (the only one, without touching
    /// the shared counter, when the pool has one slot).
    fn next_live<'s>(
        &self,
        slots: &'s [Option<ActorRef<WorkerMsg<A>>>],
    ) -> Option<&'s ActorRef<WorkerMsg<A>>> {
        let n = slots.len();
        if n == 1 {
            return slots[0].as_ref();
        }
        (0..n)
            .map(|_| self.next.fetch_add(1, Ordering::Relaxed) % n)
            .find_map(|i| slots[i].as_ref())
    }
}

/// Why [`Pool::send`] could not hand a message to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolSendError {
    /// Every worker is being restarted.
    NoWorker,
    /// The picked worker had stopped.
    Stopped,
}

/// Everything the handle and the supervisor share about one agent.
pub(crate) struct Shared<A: Agent> {
    pub(crate) name: Arc<str>,
    pub(crate) pool: Pool<A>,
    pub(crate) breaker: BreakerHandle,
    pub(crate) timeout: AgentTimeout,
    /// The deadlines of the callers' first attempts, expired by the supervisor's one timer.
    pub(crate) watch: DeadlineWatch,
    pub(crate) retry: RetryPolicy,
    pub(crate) budget: Option<SharedBudget>,
    pub(crate) on_retry: Option<RetryHook<A::Error>>,
    pub(crate) max_pending: usize,
    pub(crate) inflight: Arc<AtomicUsize>,
    /// Shared by reference with every admitted task (one reference count per task, not a copy
    /// of every handle: with a recorder installed each handle is reference-counted itself).
    pub(crate) metrics: Arc<AgentMetrics>,
    /// Set once the supervisor has stopped: new tasks are refused at once.
    pub(crate) closed: AtomicBool,
    /// Attempts started (first attempts included).
    pub(crate) attempts: AtomicU64,
    /// Retries scheduled.
    pub(crate) retries: AtomicU64,
    /// Whether the builder spawned (and the handle stops) the breaker and the timeout actor.
    pub(crate) owns: (bool, bool),
}

/// Counters of one agent since it was spawned.
///
/// ```
/// let stats = ractor_resilience::agent::AgentStats::default();
/// assert_eq!(stats.attempts, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStats {
    /// Attempts started, first attempts included.
    pub attempts: u64,
    /// Retries scheduled by the supervisor.
    pub retries: u64,
    /// Tasks admitted and not yet answered.
    pub inflight: usize,
}

/// One admitted task: releases its admission slot when dropped, wherever it ends.
pub(crate) struct Admitted {
    inflight: Arc<AtomicUsize>,
    metrics: Arc<AgentMetrics>,
    pub(crate) submitted: Instant,
    /// When the task's last attempt ended, if that clock read was already taken (the caller's
    /// own first attempt): the task's duration reuses it instead of reading the clock again.
    pub(crate) ended: Option<Instant>,
    /// Whether the task's outcome was counted; a task dropped before that (its caller's future
    /// was dropped) is counted as cancelled, so every admitted task has exactly one outcome.
    finished: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics
                .task(TaskOutcome::Cancelled, self.submitted.elapsed());
        }
        let n = self.inflight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.metrics.inflight(n);
    }
}

/// A breaker permit held by a caller's future: if the future is dropped before the outcome is
/// recorded, the permit is handed back as `Ignored` (a half-open probe slot is never leaked).
struct HeldPermit<'a> {
    breaker: &'a BreakerHandle,
    permit: Option<Permit>,
    started: Instant,
}

impl HeldPermit<'_> {
    fn take(mut self) -> Permit {
        self.permit.take().expect("a held permit is taken once")
    }
}

impl Drop for HeldPermit<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker
                .record(permit, CallOutcome::Ignored, self.started.elapsed());
        }
    }
}

impl<A: Agent> Shared<A> {
    /// Admits a task (or refuses it at once). `retried_upstream`: a layer above retries it.
    fn admit(&self, retried_upstream: bool) -> Result<Admitted, CallError<A::Error>> {
        if self.closed.load(Ordering::Acquire) {
            self.metrics.task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(CallError::Unavailable);
        }
        let n = self.inflight.fetch_add(1, Ordering::AcqRel);
        if n >= self.max_pending {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            self.metrics.task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(CallError::Overloaded {
                max_pending: self.max_pending,
            });
        }
        self.metrics.inflight(n + 1);
        // A task retried upstream is not a new request: the layer that retries it deposited
        // for it already, and it is never retried here. Depositing again would let a budget
        // shared along a call chain grow with the chain's depth (A → B → C sharing a 10% budget
        // would allow 30% of the original requests as retries).
        if let (Some(budget), false) = (&self.budget, retried_upstream) {
            budget.deposit();
        }
        Ok(Admitted {
            inflight: self.inflight.clone(),
            metrics: self.metrics.clone(),
            submitted: Instant::now(),
            ended: None,
            finished: false,
        })
    }

    /// Counts attempt number `attempt` of a task (1: its first, a new request at this layer).
    pub(crate) fn count_attempt(&self, attempt: u32) {
        self.metrics.attempt(attempt == 1);
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn max_attempts(&self, retried_upstream: bool) -> u32 {
        if retried_upstream {
            1
        } else {
            self.retry.max_attempts()
        }
    }

    /// Whether a layer retries a task arriving with `retried_upstream`: one above (then this
    /// one makes a single attempt) or this one. A downstream call made for the task is told so,
    /// which keeps every layer below from retrying — also below a layer that does not retry
    /// *because* one above it does (the flag must not be lost after one hop).
    pub(crate) fn retried_at_or_above(&self, retried_upstream: bool) -> bool {
        retried_upstream || self.max_attempts(false) > 1
    }

    /// Records the end of one attempt with the breaker and the timeout actor.
    pub(crate) fn record_attempt(
        &self,
        permit: Permit,
        result: &Result<A::Output, AttemptError<A::Error>>,
        operation: Option<&str>,
        took: Duration,
    ) {
        let (breaker, timeout) = match result {
            Ok(_) => (CallOutcome::Success, TimeoutOutcome::Success),
            Err(AttemptError::Agent(e)) => (A::classify(e).breaker, TimeoutOutcome::Failure),
            Err(AttemptError::TimedOut { .. }) => (CallOutcome::Failure, TimeoutOutcome::Timeout),
            Err(AttemptError::WorkerLost) => (CallOutcome::Failure, TimeoutOutcome::Failure),
            Err(AttemptError::NoWorker) => (CallOutcome::Ignored, TimeoutOutcome::Failure),
        };
        self.breaker.record(permit, breaker, took);
        if !matches!(result, Err(AttemptError::NoWorker)) {
            self.timeout.record(operation, took, timeout);
        }
    }

    pub(crate) fn rejected(&self, r: Rejected) -> CallError<A::Error> {
        let now = clock::now();
        CallError::Rejected {
            breaker: self.breaker.name().into(),
            state: r.state,
            retry_after: r.retry_after.map(|at| at.saturating_duration_since(now)),
        }
    }

    /// Counts a task's final outcome (exactly once per task: see the callers).
    pub(crate) fn finish(&self, admitted: &mut Admitted, attempts: u32, result: &Outcome<A>) {
        admitted.finished = true;
        let outcome = match result {
            Ok(_) => TaskOutcome::Succeeded,
            Err(e) => e.outcome(),
        };
        let ended = admitted.ended.take().unwrap_or_else(Instant::now);
        self.metrics
            .task(outcome, ended.saturating_duration_since(admitted.submitted));
        let retried = attempts > 1;
        match (result, retried) {
            (Ok(_), false) => self.metrics.retry(RetryOutcome::SuccessWithoutRetry),
            (Ok(_), true) => self.metrics.retry(RetryOutcome::SuccessWithRetry),
            (Err(CallError::Failed { .. } | CallError::TimedOut { .. }), false) => {
                self.metrics.retry(RetryOutcome::FailedWithoutRetry)
            }
            (Err(CallError::Failed { .. } | CallError::TimedOut { .. }), true) => {
                self.metrics.retry(RetryOutcome::FailedWithRetry)
            }
            _ => {}
        }
    }

    /// Whether a failed attempt may be handed to the supervisor for another one.
    pub(crate) fn may_retry(
        &self,
        error: &AttemptError<A::Error>,
        attempt: u32,
        retried_upstream: bool,
    ) -> bool {
        let retryable = match error {
            AttemptError::Agent(e) => A::classify(e).retry,
            AttemptError::WorkerLost | AttemptError::NoWorker | AttemptError::TimedOut { .. } => {
                true
            }
        };
        retryable && attempt < self.max_attempts(retried_upstream)
    }

    /// The final error for a failed last attempt.
    pub(crate) fn final_error(error: AttemptError<A::Error>, attempts: u32) -> CallError<A::Error> {
        match error {
            AttemptError::TimedOut { after } => CallError::TimedOut { after, attempts },
            source => CallError::Failed { attempts, source },
        }
    }

    /// The timeout of the next attempt: the policy's, capped by what is left of the deadline.
    pub(crate) fn attempt_timeout(
        &self,
        operation: Option<&str>,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Duration {
        let t = self.timeout.timeout_for(operation);
        match deadline {
            Some(d) => t.min(d.saturating_duration_since(now)),
            None => t,
        }
    }
}

/// A running supervised agent. Cheap to clone; every clone talks to the same agent.
///
/// ```
/// use ractor_resilience::agent::{Agent, AgentBuilder, CallError};
/// use ractor_resilience::task::TaskContext;
///
/// struct Upper;
/// impl Agent for Upper {
///     type Task = String;
///     type Output = String;
///     type Error = std::io::Error;
///     async fn handle(&self, s: String, _ctx: TaskContext) -> Result<String, std::io::Error> {
///         Ok(s.to_uppercase())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let agent = AgentBuilder::new("upper", || Upper).max_pending(8).spawn().await.unwrap();
/// assert_eq!(agent.call("hi".into()).await.unwrap(), "HI");
/// assert_eq!(agent.stats().attempts, 1);
/// assert_eq!(agent.status().await.unwrap().live_workers, 1);
/// agent.stop();
/// # });
/// ```
pub struct AgentHandle<A: Agent> {
    pub(crate) shared: Arc<Shared<A>>,
    pub(crate) supervisor: ActorRef<SupervisorMsg<A>>,
}

impl<A: Agent> Clone for AgentHandle<A> {
    fn clone(&self) -> Self {
        AgentHandle {
            shared: self.shared.clone(),
            supervisor: self.supervisor.clone(),
        }
    }
}

impl<A: Agent> std::fmt::Debug for AgentHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("name", &self.shared.name)
            .field("inflight", &self.inflight())
            .finish()
    }
}

impl<A: Agent> AgentHandle<A> {
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Tasks admitted and not yet answered.
    pub fn inflight(&self) -> usize {
        self.shared.inflight.load(Ordering::Acquire)
    }

    /// Attempts, retries and tasks in flight so far.
    pub fn stats(&self) -> AgentStats {
        AgentStats {
            attempts: self.shared.attempts.load(Ordering::Relaxed),
            retries: self.shared.retries.load(Ordering::Relaxed),
            inflight: self.inflight(),
        }
    }

    /// The breaker guarding this agent.
    pub fn breaker(&self) -> &BreakerHandle {
        &self.shared.breaker
    }

    /// The timeout actor this agent races its attempts with, if it has one: one given to the
    /// builder ([`AgentBuilder::timeout`](super::AgentBuilder::timeout)), or its own for an
    /// adaptive policy. `None` when the agent keeps a fixed or per-operation policy of its own
    /// in place: such a policy has nothing to learn, so it needs no actor (see
    /// [`timeout_status`](Self::timeout_status)).
    pub fn timeout(&self) -> Option<&TimeoutHandle> {
        self.shared.timeout.handle()
    }

    /// The agent's timeout policy counters ([`TimeoutStatus`]), whether an actor or the agent
    /// itself keeps the policy; `None` if its timeout actor has stopped.
    pub async fn timeout_status(&self) -> Option<TimeoutStatus> {
        self.shared.timeout.status().await
    }

    /// The supervisor actor (link to it, or stop it).
    pub fn supervisor(&self) -> &ActorRef<SupervisorMsg<A>> {
        &self.supervisor
    }

    /// Runs `task` and waits for its outcome.
    pub async fn call(&self, task: A::Task) -> Outcome<A> {
        self.call_with(task, CallOptions::default()).await
    }

    /// Runs `task` with options and waits for its outcome.
    pub async fn call_with(&self, task: A::Task, opts: CallOptions) -> Outcome<A> {
        let mut admitted = self.shared.admit(opts.retried_upstream)?;
        let id = opts.id.unwrap_or_else(TaskId::next);
        let deadline = opts.deadline.map(|d| clock::after(admitted.submitted, d));
        let span = tracing::info_span!(
            "task",
            agent = %self.shared.name,
            task = %id,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let attempt = self.first_attempt(task, id, deadline, &opts, &mut admitted);
        // Entering and leaving a disabled span on every poll is not free: skip the wrapper when
        // no subscriber wants the span.
        let (attempts, result) = if span.is_disabled() {
            attempt.await
        } else {
            attempt.instrument(span.clone()).await
        };
        self.shared.finish(&mut admitted, attempts, &result);
        span.record("attempts", attempts);
        span.record("outcome", outcome_label(&result));
        result
    }

    async fn first_attempt(
        &self,
        task: A::Task,
        id: TaskId,
        deadline: Option<Instant>,
        opts: &CallOptions,
        admitted: &mut Admitted,
    ) -> (u32, Outcome<A>) {
        let shared = &self.shared;
        let user = opts.cancel.as_ref();
        if user.is_some_and(CancellationToken::is_cancelled) {
            return (0, Err(CallError::Cancelled));
        }
        // One clock read for the whole first attempt (tokio's clock is not free).
        let now = admitted.submitted;
        // 1. admit
        let permit = match shared.breaker.try_acquire_local() {
            Some(decision) => decision,
            None => shared.breaker.acquire().await,
        };
        let permit = match permit {
            Ok(p) => HeldPermit {
                breaker: &shared.breaker,
                permit: Some(p),
                started: now,
            },
            Err(r) => return (0, Err(shared.rejected(r))),
        };
        // 2. send, racing the reply against the deadline in this future. The attempt's signal
        // fires on timeout, on the caller's cancellation, and if this future is dropped (so an
        // abandoned call stops its worker); one token, made only here.
        let operation = opts.operation.as_deref();
        let after = shared.attempt_timeout(operation, deadline, now);
        // The attempt's deadline as an instant, from the one clock read (raced with
        // `timeout_at`, which reads the clock no more).
        let at = clock::after(now, after);
        let attempt_cancel =
            user.map_or_else(CancellationToken::new, CancellationToken::child_token);
        // Borrows the token (a `DropGuard` would take a clone of its own: each clone and drop of
        // a token locks its node).
        let cancel_on_drop = attempt_cancel.drop_guard_ref();
        let ctx = TaskContext {
            id,
            attempt: 1,
            deadline: Some(at),
            cancel: attempt_cancel.clone(),
            retries_here: shared.retried_at_or_above(opts.retried_upstream),
        };
        shared.count_attempt(1);
        let attempt_span = tracing::debug_span!("attempt", task = %id, attempt = 1u32, outcome = tracing::field::Empty);
        let (reply, rx) = ReplyTo::port();
        let sent = shared.pool.send(WorkerMsg::Run {
            task: task.clone(),
            ctx,
            reply,
        });
        let result = match sent {
            Err(PoolSendError::NoWorker) => Err(AttemptError::NoWorker),
            Err(PoolSendError::Stopped) => Err(AttemptError::WorkerLost),
            Ok(()) => {
                let wait = async {
                    let raced: Result<_, AttemptError<A::Error>> = match shared.watch.watch(at) {
                        // The usual case: the supervisor's one timer watches this deadline.
                        Watch::Queued { ticket, shard, arm } => {
                            if arm
                                && self
                                    .supervisor
                                    .send_message(SupervisorMsg::DeadlinesDue { shard })
                                    .is_err()
                            {
                                shared.watch.close(); // no supervisor: nobody would expire it
                            }
                            match ticket.race(rx).await {
                                Watched::Replied(reply) => Ok(reply),
                                Watched::TimedOut => {
                                    attempt_cancel.cancel();
                                    Err(AttemptError::TimedOut { after })
                                }
                                Watched::Closed => Err(AttemptError::WorkerLost),
                            }
                        }
                        // Out of order (a shorter deadline than one queued): a timer of its own.
                        Watch::Refused => race_until(at, after, &attempt_cancel, rx)
                            .await
                            .map_err(|_elapsed| AttemptError::TimedOut { after }),
                    };
                    match raced? {
                        Ok(Ok(output)) => Ok(output),
                        Ok(Err(e)) => Err(AttemptError::Agent(e)),
                        Err(_closed) => Err(AttemptError::WorkerLost),
                    }
                };
                tokio::select! {
                    biased;
                    result = wait => result,
                    () = cancelled(user) => {
                        attempt_cancel.cancel();
                        drop(permit); // handed back as Ignored
                        return (1, Err(CallError::Cancelled));
                    }
                }
            }
        };
        let _ = cancel_on_drop.disarm();
        // An attempt that failed because the task was cancelled (its worker dropped the queued
        // attempt, or answered early) ends the task cancelled, not failed.
        if result.is_err() && user.is_some_and(CancellationToken::is_cancelled) {
            drop(permit); // handed back as Ignored
            return (1, Err(CallError::Cancelled));
        }
        // 3. record
        attempt_span.record("outcome", attempt_label(&result));
        let ended = Instant::now();
        admitted.ended = Some(ended);
        shared.record_attempt(
            permit.take(),
            &result,
            operation,
            ended.saturating_duration_since(now),
        );
        // 4. failure path
        let error = match result {
            Ok(output) => return (1, Ok(output)),
            Err(e) => e,
        };
        if !shared.may_retry(&error, 1, opts.retried_upstream) {
            return (1, Err(Shared::<A>::final_error(error, 1)));
        }
        let (reply, rx) = ReplyTo::port();
        let request = RetryRequest {
            task,
            id,
            attempt: 1,
            error,
            deadline,
            // The supervisor stops retrying when this fires, or when this future is dropped
            // (it sees the reply port closed).
            cancel: user.cloned().unwrap_or_default(),
            operation: opts.operation.clone(),
            retried_upstream: opts.retried_upstream,
            origin: Origin::Call(reply),
            admitted: None,
        };
        if self
            .supervisor
            .send_message(SupervisorMsg::Retry(Box::new(request)))
            .is_err()
        {
            return (1, Err(CallError::Unavailable));
        }
        let mut rx = rx;
        tokio::select! {
            biased;
            answer = &mut rx => match answer {
                Ok(answer) => answer,
                Err(_) => (1, Err(CallError::Unavailable)),
            },
            () = cancelled(user) => {
                // Close first: an answer sent before this point is taken, none after it counts.
                rx.close();
                match rx.try_recv() {
                    Ok(answer) => answer,
                    Err(_) => (1, Err(CallError::Cancelled)),
                }
            }
        }
    }

    /// Submits `task` without waiting; the outcome goes to `reply` (if given). The supervisor
    /// drives every attempt, racing each against the timeout in its timer queue.
    ///
    /// Returns the task's id, or `Overloaded` / `Unavailable` at once.
    pub fn cast(
        &self,
        task: A::Task,
        opts: CallOptions,
        reply: Option<ReplyTo<Outcome<A>>>,
    ) -> Result<TaskId, CallError<A::Error>> {
        let admitted = self.shared.admit(opts.retried_upstream)?;
        let id = opts.id.unwrap_or_else(TaskId::next);
        let request = RetryRequest {
            task,
            id,
            attempt: 0,
            error: AttemptError::NoWorker,
            deadline: opts.deadline.map(|d| clock::after(admitted.submitted, d)),
            cancel: opts.cancel.unwrap_or_default(),
            operation: opts.operation,
            retried_upstream: opts.retried_upstream,
            origin: Origin::Cast(reply),
            admitted: Some(admitted),
        };
        if self
            .supervisor
            .send_message(SupervisorMsg::Retry(Box::new(request)))
            .is_err()
        {
            // The request (and its admission) came back undelivered and is dropped here.
            self.shared
                .metrics
                .task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(CallError::Unavailable);
        }
        Ok(id)
    }

    /// Stops the agent: its supervisor and workers, and the breaker and timeout actors the
    /// builder spawned for it (shared ones given to the builder keep running). Pending tasks end
    /// `Cancelled`.
    pub fn stop(&self) {
        self.supervisor.stop(Some("stopped by its handle".into()));
        if self.shared.owns.0 {
            self.shared.breaker.stop();
        }
        if let (true, Some(timeout)) = (self.shared.owns.1, self.shared.timeout.handle()) {
            timeout.actor().stop(None);
        }
    }

    /// The supervisor's counters (tasks held, live workers, restarts), or `None` if it has
    /// stopped.
    pub async fn status(&self) -> Option<SupervisorStatus> {
        let (reply, rx) = ReplyTo::port();
        self.supervisor
            .send_message(SupervisorMsg::GetStatus(reply))
            .ok()?;
        rx.await.ok()
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
pub(crate) fn outcome_label<O, E>(result: &Result<O, CallError<E>>) -> &'static str {
    match result {
        Ok(_) => TaskOutcome::Succeeded.as_str(),
        Err(e) => e.outcome().as_str(),
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
