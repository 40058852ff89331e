//! The retry supervisor: owns an agent's worker pool and its failure path.
//!
//! - **Supervision** (Akka's BackoffSupervisor + OTP's intensity/period): workers are spawned
//!   linked; a crashed worker is restarted after an exponential backoff that resets once the
//!   worker has been stable for `reset_after`; more than `max_restarts` crashes within
//!   `restart_window` stop the supervisor with an error, which tells *its* supervisor
//!   (escalation). A crash while the agent's breaker is open does not burn the allowance: the
//!   restart is parked until the open period ends.
//! - **Retries**: a failed attempt handed over by a caller (or any attempt of a cast) is resent
//!   after the core backoff, never past the task's deadline, only while the retry budget allows,
//!   and not before the breaker's `retry_after`; the `on_retry` hook sees each one.
//! - `handle()` never awaits a worker: attempts carry a reply that comes back as
//!   [`SupervisorMsg::AttemptDone`], and every delay and attempt deadline sits in one
//!   [`DeadlineQueue`] behind a single armed timer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_resilience_core::Ratio;
use ractor_resilience_core::backoff::{ExponentialBackoff, Jitter, RetryPolicy};
use ractor_resilience_core::breaker::{BreakerState, CallOutcome, Permit, Rejected};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::error::{AttemptError, CallError};
use super::handle::{Admitted, Shared};
use super::worker::{AgentFactory, WorkerActor, WorkerMsg};
use super::{Agent, Outcome};
use crate::clock;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskContext, TaskId};
use crate::timeout::{DeadlineQueue, TimerId};

/// `on_retry(attempt, error, delay)`: called before each retry is scheduled (the seed's
/// `OnRetry`). `attempt` is the number of the attempt that failed.
pub type RetryHook<E> = Arc<dyn Fn(u32, &AttemptError<E>, Duration) + Send + Sync>;

/// How the supervisor restarts crashed workers.
///
/// # Default
/// Backoff from 100 ms doubling to 10 s (+0–25% jitter), reset after 30 s of stability; at most
/// 5 restarts within 60 s before escalating.
///
/// ```
/// use ractor_resilience::agent::SupervisionSettings;
///
/// let s = SupervisionSettings::default();
/// assert_eq!(s.max_restarts, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionSettings {
    /// First restart delay.
    pub min_backoff: std::time::Duration,
    /// Longest restart delay.
    pub max_backoff: std::time::Duration,
    /// A worker that ran this long without crashing restarts from `min_backoff` again.
    pub reset_after: std::time::Duration,
    /// Crashes tolerated within `restart_window`; one more escalates.
    pub max_restarts: u32,
    /// The intensity window.
    pub restart_window: std::time::Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        SupervisionSettings {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
        }
    }
}

/// Who waits for a task handled by the supervisor.
pub(crate) enum Origin<A: Agent> {
    /// A caller's future: it counts the outcome itself.
    Call(ReplyTo<(u32, Outcome<A>)>),
    /// A cast: the supervisor counts the outcome and delivers it, if anyone listens.
    Cast(Option<ReplyTo<Outcome<A>>>),
}

/// A task handed to the supervisor: a failed first attempt to retry, or a cast to run.
pub struct RetryRequest<A: Agent> {
    pub(crate) task: A::Task,
    pub(crate) id: TaskId,
    /// Attempts made so far (0 for a cast not yet attempted).
    pub(crate) attempt: u32,
    /// The last attempt's error (meaningless when `attempt == 0`).
    pub(crate) error: AttemptError<A::Error>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: CancellationToken,
    pub(crate) operation: Option<Arc<str>>,
    pub(crate) retried_upstream: bool,
    pub(crate) origin: Origin<A>,
    pub(crate) admitted: Option<Admitted>,
}

impl<A: Agent> RetryRequest<A> {
    /// Cancelled by its caller's signal, or its caller's future is gone (its port closed).
    fn abandoned(&self) -> bool {
        self.cancel.is_cancelled()
            || matches!(&self.origin, Origin::Call(reply) if reply.is_closed())
    }
}

impl<A: Agent> std::fmt::Debug for RetryRequest<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RetryRequest({}, after attempt {})",
            self.id, self.attempt
        )
    }
}

/// The supervisor's messages.
pub enum SupervisorMsg<A: Agent> {
    /// Take over a task (from a handle).
    Retry(Box<RetryRequest<A>>),
    /// The earliest timer may be due.
    TimerFired,
    /// The breaker answered a probe request for a task.
    PermitDecided {
        /// The task's key.
        key: u64,
        /// The breaker's answer.
        decision: Result<Permit, Rejected>,
    },
    /// A worker answered an attempt (`None`: the worker dropped it — it crashed).
    AttemptDone {
        /// The task's key.
        key: u64,
        /// Which attempt.
        attempt: u32,
        /// The answer.
        result: Option<Result<A::Output, A::Error>>,
    },
    /// Reports counters (tasks held, restarts, parked restarts).
    GetStatus(ReplyTo<SupervisorStatus>),
    /// The oldest deadline of the callers' in-flight attempts may have passed: expire what is
    /// due and re-arm the one timer for the rest (sent by a caller that found it disarmed, and
    /// by that timer). One timer per shard of the watch (one shard per core).
    DeadlinesDue {
        /// The shard of the watch.
        shard: usize,
    },
}

impl<A: Agent> std::fmt::Debug for SupervisorMsg<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SupervisorMsg::Retry(r) => write!(f, "Retry({r:?})"),
            SupervisorMsg::TimerFired => f.write_str("TimerFired"),
            SupervisorMsg::PermitDecided { key, .. } => write!(f, "PermitDecided({key})"),
            SupervisorMsg::AttemptDone { key, attempt, .. } => {
                write!(f, "AttemptDone({key}, {attempt})")
            }
            SupervisorMsg::GetStatus(_) => f.write_str("GetStatus"),
            SupervisorMsg::DeadlinesDue { shard } => write!(f, "DeadlinesDue({shard})"),
        }
    }
}

/// What [`SupervisorMsg::GetStatus`] answers.
///
/// ```
/// use ractor_resilience::agent::SupervisorStatus;
///
/// let s = SupervisorStatus::default();
/// assert_eq!((s.tasks, s.live_workers, s.restarts, s.parked_restarts), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupervisorStatus {
    /// Tasks held by the supervisor (retrying, or casts in flight).
    pub tasks: usize,
    /// Live workers.
    pub live_workers: usize,
    /// Restarts performed.
    pub restarts: u64,
    /// Restarts parked because the breaker was open.
    pub parked_restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Resend(u64),
    AttemptDeadline(u64, u32),
    Restart(usize),
}

struct Running {
    attempt: u32,
    permit: Option<Permit>,
    started: Instant,
    after: Duration,
    cancel: CancellationToken,
    timer: TimerId,
}

struct Pending<A: Agent> {
    req: RetryRequest<A>,
    backoff: Option<ExponentialBackoff<SmallRng>>,
    running: Option<Running>,
}

struct Slot {
    worker: Option<ActorId>,
    started: Instant,
    restarts: u32,
}

pub(crate) struct SupervisorArgs<A: Agent> {
    pub(crate) shared: Arc<Shared<A>>,
    pub(crate) make: AgentFactory<A>,
    pub(crate) workers: usize,
    pub(crate) settings: SupervisionSettings,
    pub(crate) seed: u64,
}

pub(crate) struct SupervisorState<A: Agent> {
    shared: Arc<Shared<A>>,
    make: AgentFactory<A>,
    settings: SupervisionSettings,
    restart_policy: RetryPolicy,
    slots: Vec<Slot>,
    crashes: VecDeque<Instant>,
    tasks: HashMap<u64, Pending<A>>,
    timers: DeadlineQueue<Timer>,
    armed: Option<Instant>,
    rng: SmallRng,
    next_key: u64,
    status: SupervisorStatus,
    /// Seeds each task's retry jitter together with its id (deterministic simulations).
    seed: u64,
}

pub(crate) struct SupervisorActor<A>(std::marker::PhantomData<fn() -> A>);

impl<A> SupervisorActor<A> {
    pub(crate) fn new() -> Self {
        SupervisorActor(std::marker::PhantomData)
    }
}

impl<A: Agent> Actor for SupervisorActor<A> {
    type Msg = SupervisorMsg<A>;
    type State = SupervisorState<A>;
    type Arguments = SupervisorArgs<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs<A>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let restart_policy = RetryPolicy::builder()
            .with_max_attempts(u32::MAX)
            .with_initial_delay(args.settings.min_backoff)
            .with_max_delay(args.settings.max_backoff)
            .with_multiplier(2.0)
            .with_jitter(Jitter::Proportional(Ratio::saturating(0.25)))
            .build()?;
        let mut state = SupervisorState {
            shared: args.shared,
            make: args.make,
            settings: args.settings,
            restart_policy,
            slots: Vec::with_capacity(args.workers),
            crashes: VecDeque::new(),
            tasks: HashMap::new(),
            timers: DeadlineQueue::new(),
            armed: None,
            rng: SmallRng::seed_from_u64(args.seed),
            next_key: 0,
            status: SupervisorStatus::default(),
            seed: args.seed,
        };
        for slot in 0..args.workers {
            state.slots.push(Slot {
                worker: None,
                started: Instant::now(),
                restarts: 0,
            });
            state.spawn_worker(&myself, slot).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Retry(req) => state.take_over(&myself, *req),
            SupervisorMsg::TimerFired => state.fire_timers(&myself).await?,
            SupervisorMsg::PermitDecided { key, decision } => {
                state.permit_decided(&myself, key, decision)
            }
            SupervisorMsg::AttemptDone {
                key,
                attempt,
                result,
            } => state.attempt_done(&myself, key, attempt, result),
            SupervisorMsg::GetStatus(reply) => {
                let mut status = state.status.clone();
                status.tasks = state.tasks.len();
                status.live_workers = state.slots.iter().filter(|s| s.worker.is_some()).count();
                reply.send(status);
            }
            SupervisorMsg::DeadlinesDue { shard } => {
                let now = Instant::now();
                if let Some(next) = state.shared.watch.expire(shard, now) {
                    // Detached: the shard stays armed until a run finds nothing pending, so at
                    // most one of these timers is out per shard.
                    drop(
                        myself
                            .send_after(next - now, move || SupervisorMsg::DeadlinesDue { shard }),
                    );
                }
            }
        }
        state.rearm(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        state.worker_down(&myself, cell, &reason)?;
        state.rearm(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.abandon_all(|| CallError::Cancelled);
        Ok(())
    }
}

impl<A: Agent> SupervisorState<A> {
    // ===== supervision =====

    async fn spawn_worker(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
        slot: usize,
    ) -> Result<(), ActorProcessingErr> {
        let (worker, _) = Actor::spawn_linked(
            None,
            WorkerActor::<A>::new(),
            (self.make.clone(), self.shared.timeout.clone()),
            myself.get_cell(),
        )
        .await?;
        self.slots[slot].worker = Some(worker.get_id());
        self.slots[slot].started = Instant::now();
        let mut slots = self
            .shared
            .pool
            .slots
            .write()
            .unwrap_or_else(|e| e.into_inner());
        slots[slot] = Some(worker);
        Ok(())
    }

    fn worker_down(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
        cell: ActorCell,
        reason: &str,
    ) -> Result<(), ActorProcessingErr> {
        let id = cell.get_id();
        let Some(slot) = self.slots.iter().position(|s| s.worker == Some(id)) else {
            return Ok(());
        };
        self.slots[slot].worker = None;
        self.shared
            .pool
            .slots
            .write()
            .unwrap_or_else(|e| e.into_inner())[slot] = None;
        let now = Instant::now();
        tracing::warn!(agent = %self.shared.name, slot, %reason, "worker stopped");
        if let Some(until) = self.breaker_open_until() {
            // The dependency is known to be down: wait for the breaker instead of burning the
            // restart allowance on crashes it would cause anyway.
            self.status.parked_restarts += 1;
            self.timers.insert(until.max(now), Timer::Restart(slot));
            return Ok(());
        }
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.settings.restart_window)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() > self.settings.max_restarts as usize {
            tracing::error!(agent = %self.shared.name, crashes = self.crashes.len(), "restart intensity exceeded: escalating");
            self.abandon_all(|| CallError::Unavailable);
            myself.stop_children(Some("supervisor escalated".into()));
            return Err(format!(
                "agent `{}`: {} worker crashes within {:?} (max_restarts = {})",
                self.shared.name,
                self.crashes.len(),
                self.settings.restart_window,
                self.settings.max_restarts
            )
            .into());
        }
        let s = &mut self.slots[slot];
        if now.duration_since(s.started) >= self.settings.reset_after {
            s.restarts = 0;
        }
        let n = s.restarts as usize;
        s.restarts += 1;
        let delay = self
            .restart_policy
            .backoff(&mut self.rng)
            .nth(n)
            .unwrap_or(self.settings.max_backoff);
        self.timers
            .insert(clock::after(now, delay), Timer::Restart(slot));
        Ok(())
    }

    async fn restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
        slot: usize,
    ) -> Result<(), ActorProcessingErr> {
        if self.slots[slot].worker.is_some() {
            return Ok(());
        }
        if let Some(until) = self.breaker_open_until() {
            self.timers.insert(until, Timer::Restart(slot));
            return Ok(());
        }
        self.spawn_worker(myself, slot).await?;
        self.status.restarts += 1;
        self.shared.metrics.restart();
        tracing::info!(agent = %self.shared.name, slot, "worker restarted");
        Ok(())
    }

    /// When the breaker's open period ends, if it is open now.
    fn breaker_open_until(&self) -> Option<Instant> {
        match self.shared.breaker.state() {
            BreakerState::Open => Some(
                self.shared
                    .breaker
                    .open_until()
                    .map_or_else(Instant::now, Instant::from_std),
            ),
            _ => None,
        }
    }

    // ===== timers =====

    fn rearm(&mut self, myself: &ActorRef<SupervisorMsg<A>>) {
        let Some(next) = self.timers.next_deadline() else {
            return;
        };
        if self.armed.is_some_and(|armed| armed <= next) {
            return;
        }
        self.armed = Some(next);
        myself.send_after(next.saturating_duration_since(Instant::now()), || {
            SupervisorMsg::TimerFired
        });
    }

    async fn fire_timers(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        if self.armed.is_some_and(|armed| armed <= now) {
            self.armed = None;
        }
        let due: Vec<Timer> = self.timers.pop_expired(now).collect();
        for timer in due {
            match timer {
                Timer::Resend(key) => self.start_attempt(myself, key),
                Timer::AttemptDeadline(key, attempt) => {
                    self.attempt_timed_out(myself, key, attempt)
                }
                Timer::Restart(slot) => self.restart(myself, slot).await?,
            }
        }
        Ok(())
    }

    // ===== tasks =====

    fn take_over(&mut self, myself: &ActorRef<SupervisorMsg<A>>, mut req: RetryRequest<A>) {
        let key = self.next_key;
        self.next_key += 1;
        let error = std::mem::replace(&mut req.error, AttemptError::NoWorker);
        let error = (req.attempt > 0).then_some(error);
        self.tasks.insert(
            key,
            Pending {
                req,
                backoff: None,
                running: None,
            },
        );
        match error {
            None => self.start_attempt(myself, key),
            Some(error) => self.after_failure(myself, key, error),
        }
    }

    /// Decides what follows a failed attempt: a scheduled retry, or the final answer.
    fn after_failure(
        &mut self,
        _myself: &ActorRef<SupervisorMsg<A>>,
        key: u64,
        error: AttemptError<A::Error>,
    ) {
        let seed = self.seed
            ^ self
                .tasks
                .get(&key)
                .map_or(0, |p| p.req.id.0)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let Some(p) = self.tasks.get_mut(&key) else {
            return;
        };
        let attempt = p.req.attempt;
        let shared = &self.shared;
        if p.req.abandoned() {
            return self.finish(key, Err(CallError::Cancelled));
        }
        if !shared.may_retry(&error, attempt, p.req.retried_upstream) {
            return self.finish(key, Err(Shared::<A>::final_error(error, attempt)));
        }
        let now = Instant::now();
        let policy_delay = p
            .backoff
            .get_or_insert_with(|| shared.retry.backoff(SmallRng::seed_from_u64(seed)))
            .next()
            .unwrap_or(shared.retry.max_delay());
        let pushback = match &error {
            AttemptError::Agent(e) => A::classify(e).retry_after.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let breaker_wait = self
            .breaker_open_until()
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        // After an open period every parked retry would fire at the same instant: keep each
        // one's own (jittered) backoff on top of the wait so they spread out.
        let delay = if breaker_wait.is_zero() {
            policy_delay.max(pushback)
        } else {
            (breaker_wait + policy_delay).max(pushback)
        };
        let p = self.tasks.get_mut(&key).expect("present");
        if p.req
            .deadline
            .is_some_and(|d| clock::after(now, delay) >= d)
        {
            tracing::debug!(task = %p.req.id, ?delay, "the deadline leaves no room for another attempt");
            return self.finish(key, Err(Shared::<A>::final_error(error, attempt)));
        }
        if let Some(budget) = &self.shared.budget {
            if !budget.try_withdraw() {
                self.shared
                    .metrics
                    .retry(crate::metrics::RetryOutcome::BudgetExhausted);
                return self.finish(key, Err(Shared::<A>::final_error(error, attempt)));
            }
        }
        if let Some(hook) = &self.shared.on_retry {
            hook(attempt, &error, delay);
        }
        tracing::debug!(agent = %self.shared.name, task = %p.req.id, attempt, ?delay, %error, "retrying");
        self.shared
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.timers
            .insert(clock::after(now, delay), Timer::Resend(key));
    }

    fn start_attempt(&mut self, myself: &ActorRef<SupervisorMsg<A>>, key: u64) {
        let Some(p) = self.tasks.get_mut(&key) else {
            return;
        };
        if p.req.abandoned() {
            return self.finish(key, Err(CallError::Cancelled));
        }
        match self.shared.breaker.try_acquire_local() {
            Some(decision) => self.permit_decided(myself, key, decision),
            None => {
                let me = myself.clone();
                self.shared
                    .breaker
                    .acquire_with(ReplyTo::callback(move |decision| {
                        let decision = decision.unwrap_or(Err(Rejected {
                            state: BreakerState::ForcedOpen,
                            retry_after: None,
                        }));
                        let _ = me.send_message(SupervisorMsg::PermitDecided { key, decision });
                    }));
            }
        }
    }

    fn permit_decided(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
        key: u64,
        decision: Result<Permit, Rejected>,
    ) {
        let Some(p) = self.tasks.get_mut(&key) else {
            if let Ok(permit) = decision {
                self.shared
                    .breaker
                    .record(permit, CallOutcome::Ignored, Duration::ZERO);
            }
            return;
        };
        let permit = match decision {
            Ok(permit) => permit,
            Err(rejected) => {
                // A retry that finds the breaker still probing (or open again) waits for its
                // next backoff step, not less than the breaker's retry_after, instead of giving
                // up; each wait spends a step, so the waits are bounded by the policy.
                let now = Instant::now();
                let step = p.backoff.as_mut().and_then(Iterator::next);
                if let Some(step) = step.filter(|_| p.req.attempt > 0) {
                    // Open: not before its end. HalfOpen: its retry_after is the probes'
                    // max-wait deadline, far later than their usual answer; the step is enough.
                    let breaker_wait = rejected
                        .retry_after
                        .filter(|_| rejected.state == BreakerState::Open)
                        .map_or(Duration::ZERO, |at| {
                            Instant::from_std(at).saturating_duration_since(now)
                        });
                    let wait = step.max(breaker_wait);
                    if p.req.deadline.is_none_or(|d| clock::after(now, wait) < d) {
                        self.timers
                            .insert(clock::after(now, wait), Timer::Resend(key));
                        return;
                    }
                }
                let err = self.shared.rejected(rejected);
                return self.finish(key, Err(err));
            }
        };
        p.req.attempt += 1;
        let attempt = p.req.attempt;
        let shared = self.shared.clone();
        let now = Instant::now();
        let after = shared.attempt_timeout(p.req.operation.as_deref(), p.req.deadline, now);
        let cancel = p.req.cancel.child_token();
        let timer = self.timers.insert(
            clock::after(now, after),
            Timer::AttemptDeadline(key, attempt),
        );
        shared.count_attempt(attempt);
        let Some(worker) = shared.pool.pick() else {
            self.timers.cancel(timer);
            shared.record_attempt(permit, &Err(AttemptError::NoWorker), None, Duration::ZERO);
            return self.after_failure(myself, key, AttemptError::NoWorker);
        };
        let ctx = TaskContext {
            id: p.req.id,
            attempt,
            deadline: Some(clock::after(now, after)),
            cancel: cancel.clone(),
            retries_here: shared.retried_at_or_above(p.req.retried_upstream),
        };
        let me = myself.clone();
        let reply = ReplyTo::callback(move |result| {
            let _ = me.send_message(SupervisorMsg::AttemptDone {
                key,
                attempt,
                result,
            });
        });
        let task = p.req.task.clone();
        p.running = Some(Running {
            attempt,
            permit: Some(permit),
            started: now,
            after,
            cancel,
            timer,
        });
        // A failed send drops the message and with it the reply, whose callback reports the
        // worker as lost: the usual path handles it.
        let _ = worker.send_message(WorkerMsg::Run { task, ctx, reply });
    }

    fn attempt_done(
        &mut self,
        myself: &ActorRef<SupervisorMsg<A>>,
        key: u64,
        attempt: u32,
        result: Option<Result<A::Output, A::Error>>,
    ) {
        let current = self
            .tasks
            .get(&key)
            .and_then(|p| p.running.as_ref())
            .is_some_and(|r| r.attempt == attempt);
        if !current {
            // The deadline came first: drop the late reply, count it, never deliver it.
            if result.is_some() {
                self.shared.timeout.late_reply();
            }
            return;
        }
        let p = self.tasks.get_mut(&key).expect("checked above");
        let mut running = p.running.take().expect("checked above");
        self.timers.cancel(running.timer);
        let result = match result {
            Some(Ok(output)) => Ok(output),
            Some(Err(e)) => Err(AttemptError::Agent(e)),
            None => Err(AttemptError::WorkerLost),
        };
        let operation = p.req.operation.clone();
        tracing::debug!(
            task = %p.req.id,
            attempt,
            outcome = super::handle::attempt_label(&result),
            "attempt finished"
        );
        if let Some(permit) = running.permit.take() {
            self.shared.record_attempt(
                permit,
                &result,
                operation.as_deref(),
                running.started.elapsed(),
            );
        }
        match result {
            Ok(output) => self.finish(key, Ok(output)),
            Err(error) => self.after_failure(myself, key, error),
        }
    }

    fn attempt_timed_out(&mut self, myself: &ActorRef<SupervisorMsg<A>>, key: u64, attempt: u32) {
        let Some(p) = self.tasks.get_mut(&key) else {
            return;
        };
        if p.running.as_ref().is_none_or(|r| r.attempt != attempt) {
            return;
        }
        let mut running = p.running.take().expect("checked above");
        running.cancel.cancel();
        let error = AttemptError::TimedOut {
            after: running.after,
        };
        let result: Result<A::Output, _> = Err(AttemptError::TimedOut {
            after: running.after,
        });
        let operation = p.req.operation.clone();
        if let Some(permit) = running.permit.take() {
            self.shared
                .record_attempt(permit, &result, operation.as_deref(), running.after);
        }
        self.after_failure(myself, key, error);
    }

    /// Delivers a task's final answer and forgets it.
    fn finish(&mut self, key: u64, result: Outcome<A>) {
        let Some(mut p) = self.tasks.remove(&key) else {
            return;
        };
        if let Some(running) = p.running.take() {
            self.timers.cancel(running.timer);
            running.cancel.cancel();
            if let Some(permit) = running.permit {
                self.shared
                    .breaker
                    .record(permit, CallOutcome::Ignored, running.started.elapsed());
            }
        }
        let attempts = p.req.attempt;
        match std::mem::replace(&mut p.req.origin, Origin::Cast(None)) {
            Origin::Call(reply) => {
                reply.send((attempts, result));
            }
            Origin::Cast(reply) => {
                if let Some(admitted) = &mut p.req.admitted {
                    self.shared.finish(admitted, attempts, &result);
                }
                if let Some(reply) = reply {
                    reply.send(result);
                }
            }
        }
    }

    /// Answers every task still held (shutdown, escalation, or a failure that skipped
    /// `post_stop`), and ends the callers' watched first attempts: nobody will expire their
    /// deadlines any more.
    fn abandon_all(&mut self, error: impl Fn() -> CallError<A::Error>) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.watch.close();
        let keys: Vec<u64> = self.tasks.keys().copied().collect();
        for key in keys {
            self.finish(key, Err(error()));
        }
    }
}

impl<A: Agent> Drop for SupervisorState<A> {
    fn drop(&mut self) {
        // The supervisor failed without running post_stop: nobody is left waiting unanswered.
        self.abandon_all(|| CallError::Unavailable);
    }
}
