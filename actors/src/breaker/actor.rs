//! [`BreakerActor`]: the only writer of one core [`CircuitBreaker`]. It applies queued outcomes
//! in batches, grants probes, fires time-driven transitions from its own timer, and publishes
//! every transition (snapshot, subscribers, hook, metrics, log).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use ractor_resilience_core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, CircuitBreaker, CircuitState, Permit, Reconfigured,
    Rejected, Transition, Transitions,
};

use super::handle::BreakerHandle;
use super::messages::{BreakerMsg, BreakerStatus, CallRecord, DrainCause};
use super::options::{BreakerOptions, StateChangeHook};
use super::shared::Shared;
use crate::clock;
use crate::metrics::{BreakerCall, BreakerMetrics};
use crate::reply::ReplyTo;
use crate::timer::OneTimer;

/// The breaker actor. Spawn it with [`spawn`](Self::spawn) (or [`spawn_linked`](Self::spawn_linked))
/// and use the returned [`BreakerHandle`].
///
/// ```
/// use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let breaker =
///     BreakerActor::spawn("payments", BreakerSettings::default(), BreakerOptions::default()).await?;
/// assert_eq!(breaker.name(), "payments");
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// breaker.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BreakerActor;

/// What a breaker actor starts from: its core machine, options, and the state it shares with
/// its [`BreakerHandle`]. Built by [`BreakerActor::spawn`], which returns that handle.
///
/// ```
/// use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
/// use ractor_resilience::core::breaker::BreakerSettings;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let options = BreakerOptions::new().with_seed(42); // the args are settings + options
/// let breaker = BreakerActor::spawn("db", BreakerSettings::default(), options).await?;
/// breaker.stop();
/// # Ok::<(), ractor::SpawnErr>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct BreakerArgs {
    core: CircuitBreaker,
    options: BreakerOptions,
    shared: Arc<Shared>,
}

impl BreakerArgs {
    fn new(name: Arc<str>, settings: BreakerSettings, options: BreakerOptions) -> Self {
        let core = CircuitBreaker::with_seed(settings.clone(), options.seed);
        let metrics = BreakerMetrics::new(&name);
        let shared = Shared::new(
            name,
            core.snapshot(),
            options.queue_capacity,
            metrics,
            settings,
        );
        BreakerArgs {
            core,
            options,
            shared: Arc::new(shared),
        }
    }
}

impl BreakerActor {
    /// Spawns a breaker actor named `name` (used in metrics labels, logs and events; not
    /// registered with ractor).
    pub async fn spawn(
        name: impl Into<Arc<str>>,
        settings: BreakerSettings,
        options: BreakerOptions,
    ) -> Result<BreakerHandle, SpawnErr> {
        let args = BreakerArgs::new(name.into(), settings, options);
        let shared = args.shared.clone();
        let (actor, _) = Actor::spawn(None, BreakerActor, args).await?;
        Ok(BreakerHandle::new(actor, shared))
    }

    /// [`spawn`](Self::spawn), supervised by `supervisor`.
    pub async fn spawn_linked(
        name: impl Into<Arc<str>>,
        settings: BreakerSettings,
        options: BreakerOptions,
        supervisor: ActorCell,
    ) -> Result<BreakerHandle, SpawnErr> {
        let args = BreakerArgs::new(name.into(), settings, options);
        let shared = args.shared.clone();
        let (actor, _) = Actor::spawn_linked(None, BreakerActor, args, supervisor).await?;
        Ok(BreakerHandle::new(actor, shared))
    }
}

/// The actor's state: the core machine and what it publishes to.
pub struct BreakerActorState {
    core: CircuitBreaker,
    shared: Arc<Shared>,
    on_state_change: Option<StateChangeHook>,
    drain_interval: Duration,
    /// The one timer, armed for `core.next_deadline()`.
    timer: OneTimer<BreakerMsg>,
    outcomes: u64,
    drains: u64,
    /// Outcomes taken by message (the queue not allocated) in the current burst window, and
    /// when that window began; `queue_after` of them within `QUEUE_BURST` allocate the queue.
    burst: (u32, Instant),
    queue_after: u32,
}

impl std::fmt::Debug for BreakerActorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerActorState")
            .field("core", &self.core)
            .field("timer", &self.timer)
            .field("outcomes", &self.outcomes)
            .field("drains", &self.drains)
            .finish_non_exhaustive()
    }
}

impl Drop for BreakerActorState {
    fn drop(&mut self) {
        // However the actor ends (stop, kill, panic), callers stop admitting from its snapshot.
        self.shared.mark_stopped();
        self.timer.disarm();
    }
}

impl Actor for BreakerActor {
    type Msg = BreakerMsg;
    type State = BreakerActorState;
    type Arguments = BreakerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<BreakerMsg>,
        args: BreakerArgs,
    ) -> Result<BreakerActorState, ActorProcessingErr> {
        args.shared.metrics.state(args.core.state().kind());
        if args.options.queue_after == 0 {
            args.shared.allocate_queue();
        }
        Ok(BreakerActorState {
            core: args.core,
            shared: args.shared,
            on_state_change: args.options.on_state_change,
            drain_interval: args.options.drain_interval,
            timer: OneTimer::new(),
            outcomes: 0,
            drains: 0,
            burst: (0, clock::now()),
            queue_after: args.options.queue_after,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<BreakerMsg>,
        message: BreakerMsg,
        state: &mut BreakerActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            BreakerMsg::Acquire(reply) => state.acquire(reply),
            BreakerMsg::Record(record) => state.record(&myself, record),
            BreakerMsg::ScheduleDrain => state.schedule_drain(&myself),
            BreakerMsg::Drain(cause) => state.drain(&myself, cause),
            BreakerMsg::DeadlineElapsed { timer } => state.deadline_elapsed(timer),
            BreakerMsg::GetState(reply) => state.status(&myself, reply),
            BreakerMsg::ForceOpen => state.command(&myself, CircuitBreaker::force_open),
            BreakerMsg::Disable => state.command(&myself, CircuitBreaker::disable),
            BreakerMsg::Reset => state.command(&myself, CircuitBreaker::reset),
            BreakerMsg::Reconfigure(settings, reply) => {
                state.reconfigure(&myself, *settings, reply);
            }
        }
        // Any input may have moved the next deadline (a transition, the first probe).
        state.arm_deadline(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<BreakerMsg>,
        state: &mut BreakerActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.shared.mark_stopped();
        Ok(())
    }
}

impl BreakerActorState {
    fn acquire(&mut self, reply: ReplyTo<Result<Permit, Rejected>>) {
        if reply.is_closed() {
            return; // the caller left: granting a probe now would waste it
        }
        let admission = self.core.try_acquire(clock::now());
        self.publish(admission.transitions);
        if admission.decision.is_err() {
            self.shared.metrics.call(BreakerCall::Rejected);
        }
        reply.send(admission.decision);
    }

    fn record(&mut self, myself: &ActorRef<BreakerMsg>, record: CallRecord) {
        let now = clock::now();
        if !self.shared.queue_allocated() {
            self.count_burst(now);
        }
        // Outcomes queued before this one (the queue was full) go first.
        self.drain_queue(myself);
        self.apply(record, now);
    }

    /// Counts an outcome that came by message while the queue is not allocated, and allocates
    /// it once `queue_after` of them arrive within `QUEUE_BURST`: from then on outcomes are
    /// queued lock-free and applied in batches.
    fn count_burst(&mut self, now: Instant) {
        let (count, since) = &mut self.burst;
        if now.saturating_duration_since(*since) > BreakerOptions::QUEUE_BURST {
            (*count, *since) = (0, now);
        }
        *count += 1;
        if *count >= self.queue_after {
            self.shared.allocate_queue();
        }
    }

    fn schedule_drain(&mut self, myself: &ActorRef<BreakerMsg>) {
        // Detached: the tick's flag stays set until it runs, so at most one is pending.
        drop(myself.send_after(self.drain_interval, || BreakerMsg::Drain(DrainCause::Tick)));
    }

    fn drain(&mut self, myself: &ActorRef<BreakerMsg>, cause: DrainCause) {
        self.drains += 1;
        self.shared.begin_drain(cause);
        self.drain_queue(myself);
    }

    /// Applies up to one queue's worth of outcomes; if more keep coming, rings the doorbell so
    /// other messages are not starved.
    fn drain_queue(&mut self, myself: &ActorRef<BreakerMsg>) {
        let now = clock::now();
        for _ in 0..self.shared.capacity() {
            let Some(record) = self.shared.pop() else {
                return;
            };
            self.apply(record, now);
        }
        if self.shared.ring() {
            let _ = myself.cast(BreakerMsg::Drain(DrainCause::Doorbell));
        }
    }

    fn apply(&mut self, record: CallRecord, now: Instant) {
        let CallRecord {
            permit,
            outcome,
            duration,
        } = record;
        self.outcomes += 1;
        self.count(outcome, duration);
        let transitions = self.core.on_outcome(permit, outcome, duration, now);
        self.publish(transitions);
    }

    fn count(&self, outcome: CallOutcome, duration: Duration) {
        let metrics = &self.shared.metrics;
        metrics.call(match outcome {
            CallOutcome::Success => BreakerCall::Success,
            CallOutcome::Failure => BreakerCall::Failure,
            CallOutcome::Ignored => BreakerCall::Ignored,
        });
        let settings = self.core.settings();
        if outcome != CallOutcome::Ignored
            && settings.slow_call_rate_threshold().is_some()
            && duration > settings.slow_call_duration()
        {
            metrics.call(BreakerCall::Slow);
        }
    }

    fn deadline_elapsed(&mut self, timer: u64) {
        if !self.timer.fired(timer) {
            return; // stale: the deadline moved since this timer was armed
        }
        // Fired; `arm_deadline` re-arms if it is not due yet.
        let transitions = self.core.advance(clock::now());
        self.publish(transitions);
    }

    fn status(&mut self, myself: &ActorRef<BreakerMsg>, reply: ReplyTo<BreakerStatus>) {
        self.drain_queue(myself);
        let now = clock::now();
        let transitions = self.core.advance(now);
        self.publish(transitions);
        let snapshot = self.core.snapshot();
        let window = self.core.window_counts(now);
        let retry_after = match *self.core.state() {
            CircuitState::Open { until } => Some(until),
            CircuitState::HalfOpen {
                admitted, deadline, ..
            } if admitted >= self.core.settings().half_open_probes() => deadline,
            _ => None,
        };
        reply.send(BreakerStatus {
            name: self.shared.name.to_string(),
            state: snapshot.state(),
            generation: snapshot.generation(),
            retry_after: retry_after.map(|at| at.saturating_duration_since(now)),
            window_calls: window.calls,
            window_failures: window.failures,
            window_slow: window.slow,
            outcomes: self.outcomes,
            drains: self.drains,
        });
    }

    fn command(
        &mut self,
        myself: &ActorRef<BreakerMsg>,
        command: fn(&mut CircuitBreaker, Instant) -> Transitions,
    ) {
        self.drain_queue(myself);
        let transitions = command(&mut self.core, clock::now());
        self.publish(transitions);
    }

    fn reconfigure(
        &mut self,
        myself: &ActorRef<BreakerMsg>,
        settings: BreakerSettings,
        reply: ReplyTo<Reconfigured>,
    ) {
        self.drain_queue(myself);
        let report = self.core.reconfigure(settings.clone(), clock::now());
        *self
            .shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
        if report.window_kept {
            tracing::info!(breaker = %self.shared.name, state = %self.core.state().kind(), "circuit breaker reconfigured; state and window kept");
        } else {
            tracing::warn!(breaker = %self.shared.name, state = %self.core.state().kind(), dropped_calls = report.window_calls_dropped, "circuit breaker reconfigured; the window changed shape and starts empty");
        }
        reply.send(report);
    }

    /// Publishes transitions: the snapshot first (callers fail fast at once), then metrics,
    /// the hook, subscribers and the log.
    fn publish(&mut self, transitions: Transitions) {
        let Some(last) = transitions.last() else {
            return;
        };
        self.shared.publish(self.core.snapshot(), last.until);
        for t in transitions {
            self.shared.metrics.transition(t.from, t.to);
            if let Some(hook) = &self.on_state_change {
                hook(t.from, t.to);
            }
            self.shared.send_event(&t);
            log(&self.shared.name, &t);
        }
    }

    /// Keeps exactly one timer armed for the core's next deadline, if it has one.
    fn arm_deadline(&mut self, myself: &ActorRef<BreakerMsg>) {
        let next = self
            .core
            .next_deadline()
            .map(tokio::time::Instant::from_std);
        self.timer
            .set(myself, next, |timer| BreakerMsg::DeadlineElapsed { timer });
    }
}

fn log(name: &str, t: &Transition) {
    if matches!(t.to, BreakerState::Open | BreakerState::ForcedOpen) {
        // How long it stays open, from when it opened: an `Instant` prints as an opaque clock
        // reading. Forced open has no end (until reset).
        match t.until.map(|until| until.saturating_duration_since(t.at)) {
            Some(open_for) => tracing::warn!(
                breaker = name, from = %t.from, to = %t.to, reason = ?t.reason,
                open_for = ?open_for, "circuit breaker opened"
            ),
            None => tracing::warn!(
                breaker = name, from = %t.from, to = %t.to, reason = ?t.reason,
                "circuit breaker opened"
            ),
        }
    } else {
        tracing::info!(
            breaker = name, from = %t.from, to = %t.to, reason = ?t.reason,
            "circuit breaker is {}", t.to
        );
    }
}
