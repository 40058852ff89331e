//! [`BreakerHandle`]: how callers use a breaker actor. Admission reads the published snapshot
//! and recording pushes onto a lock-free queue, so the happy path sends no message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{ActorRef, Message, MessagingErr};
use ractor_resilience_core::breaker::{BreakerState, CallOutcome, Permit, Rejected};

use super::messages::{BreakerMsg, BreakerStatus, BreakerUnavailable, CallRecord, DrainCause};
use super::shared::{STOPPED, Shared, Wake};
use crate::metrics::BreakerCall;
use crate::reply::ReplyTo;

/// A cheap, cloneable handle to a breaker actor, returned by
/// [`BreakerActor::spawn`](super::BreakerActor::spawn).
///
/// - [`acquire`](Self::acquire) before a call: Closed and Disabled admit from the published
///   snapshot, Open (before its period ends) and ForcedOpen reject from it, all without a
///   message; HalfOpen (and an Open breaker whose period has just ended) asks the actor.
/// - [`record`](Self::record) after it: never blocks, never drops the outcome.
///
/// **If the actor has stopped** (or crashed), every admission is rejected as
/// [`BreakerState::ForcedOpen`] with no `retry_after`: a guard that is gone fails closed rather
/// than let calls through unguarded. [`is_running`](Self::is_running) tells the two apart, and
/// the queries and commands return [`BreakerUnavailable`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState, CallOutcome};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let settings = BreakerSettings::builder().with_max_failures(1).build()?;
/// let breaker = BreakerActor::spawn("db", settings, BreakerOptions::default()).await?;
///
/// let permit = breaker.acquire().await?;
/// breaker.record(permit, CallOutcome::Failure, Duration::from_millis(20));
///
/// assert_eq!(breaker.status().await?.state, BreakerState::Open);
/// let rejected = breaker.acquire().await.unwrap_err();
/// assert_eq!(rejected.state, BreakerState::Open);
/// assert!(rejected.retry_after.is_some());
/// breaker.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct BreakerHandle {
    actor: ActorRef<BreakerMsg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

impl BreakerHandle {
    pub(super) fn new(actor: ActorRef<BreakerMsg>, shared: Arc<Shared>) -> Self {
        BreakerHandle { actor, shared }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The settings in force: those it was spawned with, or the last
    /// [`reconfigure`](Self::reconfigure)d ones.
    pub fn settings(&self) -> ractor_resilience_core::breaker::BreakerSettings {
        self.shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The actor, e.g. to link or monitor it.
    pub fn actor(&self) -> &ActorRef<BreakerMsg> {
        &self.actor
    }

    /// The last published state (no message). An Open breaker whose period has ended reads
    /// Open until its timer fires or a caller asks.
    pub fn state(&self) -> BreakerState {
        self.shared.snapshot().state()
    }

    /// When the current open period ends, while the published state is Open (no message).
    pub fn open_until(&self) -> Option<Instant> {
        self.shared.open_until()
    }

    /// Whether the actor is still running.
    pub fn is_running(&self) -> bool {
        !self.shared.is_stopped()
            && matches!(
                self.actor.get_status(),
                ractor::ActorStatus::Running | ractor::ActorStatus::Starting
            )
    }

    /// Decides from the published state alone: `Some` when no message is needed (Closed,
    /// Disabled, ForcedOpen, Open before its period ends, or a stopped breaker), `None` when
    /// the actor must decide (HalfOpen, or an Open period that has ended): use
    /// [`acquire`](Self::acquire) or [`acquire_with`](Self::acquire_with) then.
    pub fn try_acquire_local(&self) -> Option<Result<Permit, Rejected>> {
        let decision = self.shared.admit()?;
        if decision.is_err() {
            self.shared.metrics.call(BreakerCall::Rejected);
        }
        Some(decision)
    }

    /// Whether the published state rejects a call now (Open before its period ends, ForcedOpen,
    /// or a stopped breaker), without taking a permit: for work that is admitted now and
    /// acquires its permit later, when it starts (a queued task must not hold a half-open probe
    /// slot while it waits). A rejection is counted like one from [`acquire`](Self::acquire).
    pub fn precheck(&self) -> Result<(), Rejected> {
        match self.shared.rejects() {
            Some(rejected) => {
                self.shared.metrics.call(BreakerCall::Rejected);
                Err(rejected)
            }
            None => Ok(()),
        }
    }

    /// A permit for one call, or why not. Asks the actor only when the published state cannot
    /// decide. Never fails otherwise: a stopped breaker rejects (see [`BreakerHandle`]).
    pub async fn acquire(&self) -> Result<Permit, Rejected> {
        if let Some(decision) = self.try_acquire_local() {
            return decision;
        }
        let (reply, answer) = ReplyTo::port();
        if self.actor.cast(BreakerMsg::Acquire(reply)).is_err() {
            return Err(self.gone());
        }
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    /// [`acquire`](Self::acquire) for callers that must not await (actors): the answer goes to
    /// `reply`, at once when the published state decides. If the actor stops before answering,
    /// a port's receiver sees the channel close and a callback is called with `None`.
    pub fn acquire_with(&self, reply: ReplyTo<Result<Permit, Rejected>>) {
        if let Some(decision) = self.try_acquire_local() {
            reply.send(decision);
            return;
        }
        if let Err(MessagingErr::SendErr(BreakerMsg::Acquire(reply))) =
            self.actor.cast(BreakerMsg::Acquire(reply))
        {
            reply.send(Err(self.gone()));
        }
    }

    /// Reports the outcome of the call admitted with `permit`. Never blocks or awaits: the
    /// outcome is queued lock-free and applied in the next batch (at once for failures and
    /// probe outcomes); if the queue is full it is sent as a message instead, so none is
    /// dropped while the actor runs.
    pub fn record(&self, permit: Permit, outcome: CallOutcome, duration: Duration) {
        let record = CallRecord {
            permit,
            outcome,
            duration,
        };
        let wake = match self.shared.push(record) {
            Ok(wake) => wake,
            Err(record) => {
                // The queue is full, or not allocated yet (a breaker called rarely takes its
                // outcomes by message). A stopped actor counts nothing any more: there is
                // nowhere else to put it.
                let _ = self.actor.cast(BreakerMsg::Record(record));
                return;
            }
        };
        let _ = match wake {
            Wake::Nobody => Ok(()),
            Wake::Doorbell => self.send(BreakerMsg::Drain(DrainCause::Doorbell)),
            Wake::Tick => self.send(BreakerMsg::ScheduleDrain),
        };
    }

    /// The actor's view: state, window counts, drain counters (queued outcomes applied first).
    pub async fn status(&self) -> Result<BreakerStatus, BreakerUnavailable> {
        let (reply, answer) = ReplyTo::port();
        self.send(BreakerMsg::GetState(reply))?;
        answer.await.map_err(|_| self.unavailable())
    }

    /// Applies new settings in place, keeping the state, the generation and (when its shape is
    /// unchanged) the window: see [`CircuitBreaker::reconfigure`] for what is kept. Outcomes
    /// queued before are applied under the old settings first; every decision after the
    /// answer uses the new ones.
    ///
    /// [`CircuitBreaker::reconfigure`]: ractor_resilience_core::breaker::CircuitBreaker::reconfigure
    ///
    /// ```
    /// use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
    /// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let breaker = BreakerActor::spawn("db", BreakerSettings::default(), BreakerOptions::default()).await?;
    /// breaker.force_open()?;
    /// let stricter = BreakerSettings::builder().with_max_failures(2).build()?;
    /// let report = breaker.reconfigure(stricter).await?;
    /// assert!(report.window_kept);
    /// assert_eq!(breaker.settings().max_failures(), Some(2));
    /// assert_eq!(breaker.status().await?.state, BreakerState::ForcedOpen, "state kept");
    /// breaker.stop();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn reconfigure(
        &self,
        settings: ractor_resilience_core::breaker::BreakerSettings,
    ) -> Result<ractor_resilience_core::breaker::Reconfigured, BreakerUnavailable> {
        let (reply, answer) = ReplyTo::port();
        self.send(BreakerMsg::Reconfigure(Box::new(settings), reply))?;
        answer.await.map_err(|_| self.unavailable())
    }

    /// Forces the breaker open until [`disable`](Self::disable) or [`reset`](Self::reset).
    pub fn force_open(&self) -> Result<(), BreakerUnavailable> {
        self.send(BreakerMsg::ForceOpen)
    }

    /// Admits every call and counts nothing until [`force_open`](Self::force_open) or
    /// [`reset`](Self::reset).
    pub fn disable(&self) -> Result<(), BreakerUnavailable> {
        self.send(BreakerMsg::Disable)
    }

    /// Back to Closed with an empty window and the open duration back at its base.
    pub fn reset(&self) -> Result<(), BreakerUnavailable> {
        self.send(BreakerMsg::Reset)
    }

    /// Forwards every transition, in order, to `receiver` through `converter` (`None` skips
    /// one). Transitions from the moment this returns are forwarded.
    pub fn subscribe<M, F>(&self, receiver: ActorRef<M>, converter: F)
    where
        M: Message,
        F: Fn(super::BreakerEvent) -> Option<M> + Send + 'static,
    {
        self.shared.events().subscribe(receiver, converter);
    }

    /// Stops the actor (queued outcomes not yet drained are not applied). Dropping every
    /// handle does not stop it: ractor actors run until stopped or their supervisor stops.
    pub fn stop(&self) {
        self.actor.stop(None);
    }

    fn send(&self, msg: BreakerMsg) -> Result<(), BreakerUnavailable> {
        self.actor.cast(msg).map_err(|_| self.unavailable())
    }

    fn unavailable(&self) -> BreakerUnavailable {
        BreakerUnavailable {
            breaker: self.shared.name.clone(),
        }
    }

    fn gone(&self) -> Rejected {
        self.shared.metrics.call(BreakerCall::Rejected);
        STOPPED
    }
}
