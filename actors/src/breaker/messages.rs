//! What travels to and from a breaker actor: [`BreakerMsg`], the queued [`CallRecord`], the
//! published [`BreakerEvent`], the [`BreakerStatus`] answer, and [`BreakerUnavailable`].

use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, Permit, Reconfigured, Rejected, TransitionReason,
};

use crate::reply::ReplyTo;

/// The messages a breaker actor handles. Most callers never send one: they use
/// [`BreakerHandle`](super::BreakerHandle), which admits and records without a message on the
/// happy path and sends these only when the actor must decide.
///
/// ```
/// use ractor_resilience::breaker::{BreakerActor, BreakerMsg, BreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
/// use ractor_resilience::reply::ReplyTo;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let breaker =
///     BreakerActor::spawn("db", BreakerSettings::default(), BreakerOptions::default()).await?;
/// breaker.actor().cast(BreakerMsg::ForceOpen)?;
/// let (reply, status) = ReplyTo::port();
/// breaker.actor().cast(BreakerMsg::GetState(reply))?;
/// assert_eq!(status.await?.state, BreakerState::ForcedOpen);
/// breaker.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub enum BreakerMsg {
    /// Asks for a permit (HalfOpen probes, or an Open breaker whose period has ended).
    Acquire(ReplyTo<Result<Permit, Rejected>>),
    /// One outcome that did not fit in the full outcome queue; the actor drains the queue
    /// first, so no outcome is dropped and few are reordered.
    Record(CallRecord),
    /// Outcomes were queued while no drain was scheduled: schedule one tick from now. Sent by
    /// [`BreakerHandle::record`](super::BreakerHandle::record).
    ScheduleDrain,
    /// Apply the queued outcomes now. Sent by the tick timer and by the failure doorbell.
    Drain(DrainCause),
    /// A timer armed for [`CircuitBreaker::next_deadline`] fired (the actor sends it to itself;
    /// `timer` tells a current timer from a stale one).
    ///
    /// [`CircuitBreaker::next_deadline`]: ractor_resilience_core::breaker::CircuitBreaker::next_deadline
    DeadlineElapsed {
        /// Which timer fired.
        timer: u64,
    },
    /// Asks for the [`BreakerStatus`] (queued outcomes are applied first).
    GetState(ReplyTo<BreakerStatus>),
    /// Forces the breaker open until `Disable` or `Reset`.
    ForceOpen,
    /// Admits everything and counts nothing until `ForceOpen` or `Reset`.
    Disable,
    /// Back to Closed with an empty window.
    Reset,
    /// New settings, applied in place (hot reload): the state, the generation and, when its
    /// shape is unchanged, the window are kept. Queued outcomes are applied first, under the
    /// old settings.
    Reconfigure(Box<BreakerSettings>, ReplyTo<Reconfigured>),
}

/// Why a [`BreakerMsg::Drain`] was sent.
///
/// ```
/// use ractor_resilience::breaker::DrainCause;
///
/// assert_ne!(DrainCause::Tick, DrainCause::Doorbell);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCause {
    /// The batching tick: outcomes were queued one tick ago.
    Tick,
    /// A failure or a probe outcome was queued: it may change the state, so drain at once.
    Doorbell,
}

/// One finished call, queued for the breaker actor.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::breaker::CallRecord;
/// use ractor_resilience::core::breaker::{BreakerSettings, CallOutcome, CircuitBreaker};
///
/// let mut cb = CircuitBreaker::new(BreakerSettings::default());
/// let permit = cb.try_acquire(std::time::Instant::now()).decision.unwrap();
/// let record = CallRecord { permit, outcome: CallOutcome::Success, duration: Duration::from_millis(3) };
/// assert_eq!(record.outcome, CallOutcome::Success);
/// ```
#[derive(Debug)]
pub struct CallRecord {
    /// The permit the call was admitted with.
    pub permit: Permit,
    /// How the caller classified the result.
    pub outcome: CallOutcome,
    /// How long the call took.
    pub duration: Duration,
}

/// One state transition, as published to subscribers
/// ([`BreakerHandle::subscribe`](super::BreakerHandle::subscribe)).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::breaker::BreakerEvent;
/// use ractor_resilience::core::breaker::{BreakerState, TransitionReason};
///
/// let event = BreakerEvent {
///     breaker: "db".into(),
///     from: BreakerState::Closed,
///     to: BreakerState::Open,
///     reason: TransitionReason::ConsecutiveFailures,
///     generation: 1,
///     at: Duration::from_secs(3),
///     open_for: Some(Duration::from_secs(10)),
/// };
/// let text = toml::to_string(&event).unwrap();
/// assert!(text.contains("reason = \"consecutive_failures\""));
/// assert_eq!(toml::from_str::<BreakerEvent>(&text).unwrap(), event);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerEvent {
    /// The breaker's name.
    pub breaker: String,
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// The generation entered.
    pub generation: u64,
    /// When the transition took effect, measured from the breaker's spawn (time-driven
    /// transitions take effect at their deadline).
    pub at: Duration,
    /// How long the new open period lasts (`to == Open` only).
    pub open_for: Option<Duration>,
}

/// A breaker's state as the actor sees it, answered to [`BreakerMsg::GetState`].
///
/// ```
/// use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let breaker =
///     BreakerActor::spawn("db", BreakerSettings::default(), BreakerOptions::default()).await?;
/// let status = breaker.status().await?;
/// assert_eq!((status.name.as_str(), status.state), ("db", BreakerState::Closed));
/// assert_eq!(status.retry_after, None);
/// breaker.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerStatus {
    /// The breaker's name.
    pub name: String,
    /// The current state.
    pub state: BreakerState,
    /// The current generation (one per transition since spawn).
    pub generation: u64,
    /// How long until asking again may succeed: the rest of the open period, or of the
    /// half-open wait once every probe is out. `None` when admitting or unknown.
    pub retry_after: Option<Duration>,
    /// Calls in the Closed window.
    pub window_calls: u32,
    /// Counted failures in the Closed window.
    pub window_failures: u32,
    /// Slow calls in the Closed window.
    pub window_slow: u32,
    /// Outcomes applied since spawn (stale and ignored ones included).
    pub outcomes: u64,
    /// Drain messages handled since spawn (ticks and doorbells); constant while idle.
    pub drains: u64,
}

/// The breaker actor is not running (stopped or crashed), so it cannot answer.
///
/// ```
/// use ractor_resilience::breaker::BreakerUnavailable;
///
/// let e = BreakerUnavailable { breaker: "db".into() };
/// assert_eq!(e.to_string(), "circuit breaker `db` is not running");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker `{breaker}` is not running")]
pub struct BreakerUnavailable {
    /// The breaker's name.
    pub breaker: Arc<str>,
}

// With ractor's `cluster` feature the blanket `Message` impl is gone: these stay local-only
// messages (they carry callbacks and instants, nothing that crosses a node).
#[cfg(feature = "cluster")]
impl ractor::Message for BreakerMsg {}
#[cfg(feature = "cluster")]
impl ractor::Message for BreakerEvent {}
