//! What travels to and from a keyed breaker family: its (opaque) message type, the
//! [`KeyedPermit`] callers record against, and the answers: [`KeyStatus`], [`KeyListing`],
//! [`FamilyStatus`], [`KeyedBreakerEvent`], [`KeyCommandError`].

use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::{
    BreakerState, CallOutcome, KeyId, Permit, Rejected, TransitionReason,
};

use super::key::KeyBuf;
use crate::breaker::DrainCause;
use crate::reply::ReplyTo;

/// The messages of a [`KeyedBreakerActor`](super::KeyedBreakerActor). Opaque: use the
/// [`KeyedBreakerHandle`](super::KeyedBreakerHandle), which sends them (and none at all on the
/// happy path).
#[derive(Debug)]
pub struct KeyedBreakerMsg(pub(super) Msg);

#[derive(Debug)]
pub(super) enum Msg {
    /// A permit for `key` when the published state cannot decide (HalfOpen, an Open period
    /// that has ended).
    Acquire {
        key: Arc<str>,
        reply: ReplyTo<Result<KeyedPermit, Rejected>>,
    },
    /// The same for the overflow breaker (the family was full).
    AcquireOverflow(ReplyTo<Result<KeyedPermit, Rejected>>),
    /// An outcome that did not fit in the full queue: the queue is drained first.
    Record(KeyedRecord),
    /// Outcomes were queued while no drain was scheduled: schedule one tick from now.
    ScheduleDrain,
    /// Apply the queued outcomes now.
    Drain(DrainCause),
    /// The family's timer (key deadlines, idle eviction) fired.
    DeadlineElapsed { timer: u64 },
    /// An operator's command on one key.
    Command {
        key: Arc<str>,
        command: KeyCommand,
        reply: ReplyTo<Result<BreakerState, KeyCommandError>>,
    },
    /// One key's status (`None`: not held, i.e. a fresh Closed breaker).
    KeyStatus {
        key: Arc<str>,
        reply: ReplyTo<Option<KeyStatus>>,
    },
    /// The keys that are not Closed, at most `limit` of them.
    NotClosed {
        limit: usize,
        reply: ReplyTo<KeyListing>,
    },
    /// The family's status.
    Status(ReplyTo<FamilyStatus>),
    /// New settings for every key, applied in place (hot reload); answers how many windows
    /// started empty.
    Reconfigure {
        settings: Box<ractor_resilience_core::breaker::FamilySettings>,
        reply: ReplyTo<usize>,
    },
}

/// Which breaker of the family a permit came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A held key.
    Key(KeyId),
    /// A key not held when the call was admitted: admitted as a fresh Closed breaker admits;
    /// the actor creates the key when the outcome arrives.
    New(KeyBuf),
    /// The overflow breaker.
    Overflow,
}

/// Proof of admission by a keyed family: record the call's outcome against it exactly once,
/// with [`KeyedBreakerHandle::record`](super::KeyedBreakerHandle::record).
///
/// It names the breaker that admitted the call (a key's, or the overflow breaker) and the
/// generation it was in: an outcome never changes a breaker that changed state since (or a key
/// that was evicted since).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "record the call's outcome against its permit"]
pub struct KeyedPermit {
    pub(super) target: Target,
    pub(super) permit: Permit,
    /// `Snapshot::to_bits` of the state that admitted the call (Closed or Disabled; unused for
    /// probes): a held key's outcome travels as these bits in the queue's fast lane.
    pub(super) from: u64,
}

impl KeyedPermit {
    /// Whether this permit is one of a half-open breaker's probes.
    pub fn is_probe(&self) -> bool {
        self.permit.is_probe()
    }

    /// Whether the overflow breaker admitted the call (the family was full of busy keys).
    pub fn is_overflow(&self) -> bool {
        self.target == Target::Overflow
    }
}

/// One finished call, queued for the family's actor.
#[derive(Debug)]
pub(super) struct KeyedRecord {
    pub(super) permit: KeyedPermit,
    pub(super) outcome: CallOutcome,
    pub(super) duration: Duration,
}

/// An operator's command on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyCommand {
    ForceOpen,
    Disable,
    Reset,
}

/// Why a command on a key was not carried out.
///
/// ```
/// use ractor_resilience::breaker::KeyCommandError;
///
/// let e = KeyCommandError::Full { breaker: "models".into(), key: "gpt-4o".into() };
/// assert_eq!(
///     e.to_string(),
///     "circuit breaker `models` holds max_keys keys and none is idle: no room for key `gpt-4o`"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyCommandError {
    /// The family's actor is not running.
    #[error("circuit breaker `{breaker}` is not running")]
    Unavailable {
        /// The family's name.
        breaker: Arc<str>,
    },
    /// Forcing open or disabling a key the family does not hold needs room for it, and the
    /// family is full of keys that are not idle.
    #[error(
        "circuit breaker `{breaker}` holds max_keys keys and none is idle: no room for key `{key}`"
    )]
    Full {
        /// The family's name.
        breaker: Arc<str>,
        /// The key.
        key: String,
    },
}

/// One key's breaker as the family's actor sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyStatus {
    /// The key.
    pub key: String,
    /// The current state.
    pub state: BreakerState,
    /// The current generation (one per transition since the key was created).
    pub generation: u64,
    /// How long until asking again may succeed (the rest of the open period, or of the
    /// half-open wait once every probe is out); `None` when admitting or unknown.
    pub retry_after: Option<Duration>,
    /// Calls in the Closed window.
    pub window_calls: u32,
    /// Counted failures in the Closed window.
    pub window_failures: u32,
    /// How long since the key was last used (outcome, admission by the actor, command,
    /// state change).
    pub idle_for: Duration,
}

/// One key that is not Closed, in a [`KeyListing`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyState {
    /// The key.
    pub key: String,
    /// Its state.
    pub state: BreakerState,
    /// How long until asking again may succeed, when known.
    pub retry_after: Option<Duration>,
}

/// The keys of a family that are not Closed (Open, HalfOpen, ForcedOpen, Disabled): at most the
/// `limit` asked for, with the count of the others, so that `/health` stays small however many
/// keys a family holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyListing {
    /// The keys shown (in the family's slot order).
    pub keys: Vec<KeyState>,
    /// Keys not Closed beyond those shown.
    pub more: usize,
    /// The overflow breaker's state (Closed unless the family filled up with busy keys).
    pub overflow: BreakerState,
}

/// A family as its actor sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FamilyStatus {
    /// The family's name.
    pub name: String,
    /// Keys held.
    pub keys: usize,
    /// The cap on keys held.
    pub max_keys: u32,
    /// Keys held per state, in the order of [`BreakerState::ALL`].
    pub by_state: Vec<(BreakerState, usize)>,
    /// The overflow breaker's state.
    pub overflow: BreakerState,
    /// Whether new keys go to the overflow breaker now (full, none idle).
    pub saturated: bool,
    /// Keys evicted as idle since spawn.
    pub evicted_idle: u64,
    /// Keys evicted to make room since spawn.
    pub evicted_capacity: u64,
    /// Outcomes that arrived for a key evicted after their call was admitted (not applied).
    pub outcomes_for_evicted: u64,
    /// Outcomes applied since spawn.
    pub outcomes: u64,
    /// Drains since spawn (ticks and doorbells); constant while idle.
    pub drains: u64,
    /// The keys with series of their own right now (`metric_keys` and the current top keys by
    /// failures), sorted.
    pub labelled_keys: Vec<String>,
}

/// One transition of one breaker of a family, as published to subscribers.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::breaker::KeyedBreakerEvent;
/// use ractor_resilience::core::breaker::{BreakerState, TransitionReason};
///
/// let event = KeyedBreakerEvent {
///     breaker: "models".into(),
///     key: Some("gpt-4o".into()),
///     from: BreakerState::Closed,
///     to: BreakerState::Open,
///     reason: TransitionReason::ConsecutiveFailures,
///     generation: 1,
///     at: Duration::from_secs(3),
///     open_for: Some(Duration::from_secs(10)),
/// };
/// assert_eq!(toml::from_str::<KeyedBreakerEvent>(&toml::to_string(&event).unwrap()).unwrap(), event);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyedBreakerEvent {
    /// The family's name.
    pub breaker: String,
    /// The key; `None` for the overflow breaker.
    pub key: Option<String>,
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// The generation entered.
    pub generation: u64,
    /// When it took effect, measured from the family's spawn.
    pub at: Duration,
    /// How long the new open period lasts (`to == Open` only).
    pub open_for: Option<Duration>,
}
