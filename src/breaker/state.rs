//! The values a [`CircuitBreaker`](super::CircuitBreaker) hands out: its state, the transitions
//! it returns, permits, rejections and snapshots.

use std::fmt;
use std::time::Instant;

/// The five states, without their data: what metrics label and messages carry.
///
/// ```
/// use ractor_resilience_core::breaker::BreakerState;
///
/// assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
/// assert_eq!(BreakerState::ALL.len(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// A limited number of probes decide whether to close or re-open.
    HalfOpen,
    /// Rejects every call until a command (`reset`, `disable`) changes it.
    ForcedOpen,
    /// Admits every call and counts nothing until a command changes it.
    Disabled,
}

impl BreakerState {
    /// Every state, in a fixed order (one gauge series per state).
    pub const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
    ];

    /// The snake_case name used in metrics labels and configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    const fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }

    const fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::Disabled,
            _ => return None,
        })
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state with its data.
///
/// ```
/// use ractor_resilience_core::breaker::{CircuitBreaker, BreakerSettings, CircuitState};
///
/// let cb = CircuitBreaker::new(BreakerSettings::default());
/// assert_eq!(*cb.state(), CircuitState::Closed { consecutive_failures: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls flow.
    Closed {
        /// Counted failures since the last success.
        consecutive_failures: u32,
    },
    /// Rejecting until `until`; HalfOpen from `until` on.
    Open {
        /// When the open period ends.
        until: Instant,
    },
    /// Probing.
    HalfOpen {
        /// Probes admitted this period (ignored outcomes hand theirs back).
        admitted: u32,
        /// Probes that reported success.
        successes: u32,
        /// Probes that reported a counted failure.
        failures: u32,
        /// Probes slower than `slow_call_duration`.
        slow: u32,
        /// Re-open at this instant unless the probes have decided (armed by the first probe).
        deadline: Option<Instant>,
    },
    /// Rejecting until commanded otherwise.
    ForcedOpen,
    /// Admitting everything, counting nothing.
    Disabled,
}

impl CircuitState {
    /// The state without its data.
    pub const fn kind(&self) -> BreakerState {
        match self {
            CircuitState::Closed { .. } => BreakerState::Closed,
            CircuitState::Open { .. } => BreakerState::Open,
            CircuitState::HalfOpen { .. } => BreakerState::HalfOpen,
            CircuitState::ForcedOpen => BreakerState::ForcedOpen,
            CircuitState::Disabled => BreakerState::Disabled,
        }
    }
}

/// Why a transition happened.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, CircuitBreaker, TransitionReason};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::builder().with_max_failures(1).build().unwrap());
/// let permit = cb.try_acquire(now).decision.unwrap();
/// let t = cb.on_failure(permit, Duration::from_millis(1), now).last().unwrap();
/// assert_eq!(t.reason, TransitionReason::ConsecutiveFailures);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// `max_failures` consecutive failures while Closed.
    ConsecutiveFailures,
    /// The failure rate reached its threshold (Closed window, or the half-open probes).
    FailureRate,
    /// The slow-call rate reached its threshold (Closed window, or the half-open probes).
    SlowCallRate,
    /// A probe failed under the consecutive-failures policy.
    ProbeFailed,
    /// The probes succeeded.
    ProbesSucceeded,
    /// The probes did not decide within `half_open_max_wait`.
    HalfOpenTimedOut,
    /// The open period ended.
    OpenElapsed,
    /// The `force_open` command.
    ForcedOpen,
    /// The `disable` command.
    Disabled,
    /// The `reset` command.
    Reset,
}

/// One state change, returned by the method whose input caused it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CircuitBreaker};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::builder().with_max_failures(1).build().unwrap());
/// let permit = cb.try_acquire(now).decision.unwrap();
/// let t = cb.on_failure(permit, Duration::from_millis(1), now).last().unwrap();
/// assert_eq!((t.from, t.to, t.at, t.generation), (BreakerState::Closed, BreakerState::Open, now, 1));
/// assert_eq!(t.until, Some(now + Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When it took effect: the deadline for time-driven transitions, `now` for the others.
    pub at: Instant,
    /// When the new open period ends (`to == Open` only).
    pub until: Option<Instant>,
    /// The generation entered: every transition starts a new one.
    pub generation: u64,
}

/// The transitions one input caused, in order (at most two: a half-open deadline re-opens the
/// breaker, and that open period may itself have ended by `now`).
///
/// ```
/// use ractor_resilience_core::breaker::Transitions;
///
/// let none = Transitions::default();
/// assert!(none.is_empty());
/// assert_eq!(none.into_iter().count(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "transitions must be published (metrics, subscribers, hooks)"]
pub struct Transitions {
    items: [Option<Transition>; 2],
}

impl Transitions {
    pub(crate) fn push(&mut self, t: Transition) {
        let slot = self
            .items
            .iter_mut()
            .find(|s| s.is_none())
            .expect("an input causes at most two transitions");
        *slot = Some(t);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }

    /// How many transitions happened.
    pub fn len(&self) -> usize {
        self.items.iter().flatten().count()
    }

    /// The transitions in order.
    pub fn iter(&self) -> impl Iterator<Item = &Transition> {
        self.items.iter().flatten()
    }

    /// The last transition, if any.
    pub fn last(&self) -> Option<Transition> {
        self.items.iter().flatten().last().copied()
    }
}

impl IntoIterator for Transitions {
    type Item = Transition;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Transition>, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().flatten()
    }
}

/// What kind of admission a [`Permit`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    Closed,
    Probe,
    Disabled,
}

/// Proof of admission: report the call's outcome against it exactly once.
///
/// A permit remembers the *generation* it was issued in. An outcome reported against a permit
/// from an earlier generation (a call admitted before the breaker last changed state) is
/// ignored, so a slow call admitted while Closed can never close a HalfOpen breaker.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, CircuitBreaker};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::default());
/// let permit = cb.try_acquire(now).decision.unwrap();
/// assert_eq!(permit.generation(), 0);
/// let _ = cb.on_success(permit, Duration::from_millis(3), now);
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "report the call's outcome against its permit"]
pub struct Permit {
    pub(crate) generation: u64,
    pub(crate) kind: PermitKind,
}

impl Permit {
    /// The generation the permit was issued in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this permit is one of the half-open probes.
    pub fn is_probe(&self) -> bool {
        self.kind == PermitKind::Probe
    }
}

/// Admission refused: the breaker is Open, ForcedOpen, or HalfOpen with every probe taken.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CircuitBreaker};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::default());
/// let _ = cb.force_open(now);
/// let rejected = cb.try_acquire(now).decision.unwrap_err();
/// assert_eq!(rejected.state, BreakerState::ForcedOpen);
/// assert_eq!(rejected.retry_after, None);
/// assert_eq!(rejected.to_string(), "circuit breaker is forced_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is {state}")]
pub struct Rejected {
    /// The state that refused.
    pub state: BreakerState,
    /// When asking again may succeed: the end of the open period, or the half-open deadline.
    /// `None` when unknown (ForcedOpen, or HalfOpen probes without a deadline).
    pub retry_after: Option<Instant>,
}

/// The result of [`CircuitBreaker::try_acquire`](super::CircuitBreaker::try_acquire).
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CircuitBreaker};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::builder().with_max_failures(1).build().unwrap());
/// let permit = cb.try_acquire(now).decision.unwrap();
/// let _ = cb.on_failure(permit, Duration::from_millis(1), now);
/// // Ten seconds later the open period has ended: the admission reports Open -> HalfOpen.
/// let admission = cb.try_acquire(now + Duration::from_secs(10));
/// assert!(admission.decision.unwrap().is_probe());
/// assert_eq!(admission.transitions.last().unwrap().to, BreakerState::HalfOpen);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    /// A permit, or why not.
    pub decision: Result<Permit, Rejected>,
    /// Time-driven transitions that happened before deciding (Open → HalfOpen, say).
    pub transitions: Transitions,
}

/// How the user classified a call's result.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, CallOutcome, CircuitBreaker, CircuitState};
///
/// let now = Instant::now();
/// let mut cb = CircuitBreaker::new(BreakerSettings::builder().with_max_failures(1).build().unwrap());
/// let permit = cb.try_acquire(now).decision.unwrap();
/// // A caller's bad request: not recorded, so it cannot trip the breaker.
/// assert!(cb.on_outcome(permit, CallOutcome::Ignored, Duration::ZERO, now).is_empty());
/// assert_eq!(*cb.state(), CircuitState::Closed { consecutive_failures: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Counts as a success (it may still be slow).
    Success,
    /// Counts as a failure.
    Failure,
    /// Not recorded at all (a caller's bad request must not trip the breaker); a half-open
    /// probe reporting `Ignored` hands its slot back.
    Ignored,
}

/// The breaker's state and generation packed in one word, for publishing to callers that admit
/// without asking the owner (an `AtomicU64`).
///
/// ```
/// use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CircuitBreaker, Snapshot};
///
/// let cb = CircuitBreaker::new(BreakerSettings::default());
/// let snap = cb.snapshot();
/// assert_eq!(Snapshot::from_bits(snap.to_bits()), Some(snap));
/// assert_eq!(snap.state(), BreakerState::Closed);
/// assert!(snap.admit().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    generation: u64,
    state: BreakerState,
}

impl Snapshot {
    pub(crate) const fn new(generation: u64, state: BreakerState) -> Self {
        Snapshot { generation, state }
    }

    /// The generation.
    pub const fn generation(self) -> u64 {
        self.generation
    }

    /// The state.
    pub const fn state(self) -> BreakerState {
        self.state
    }

    /// A permit for a call admitted from this snapshot, when the state admits without asking
    /// the owner (Closed, Disabled). Open, ForcedOpen and HalfOpen (probes are counted by the
    /// owner) return `None`: ask the owner's [`try_acquire`](super::CircuitBreaker::try_acquire).
    pub const fn admit(self) -> Option<Permit> {
        let kind = match self.state {
            BreakerState::Closed => PermitKind::Closed,
            BreakerState::Disabled => PermitKind::Disabled,
            _ => return None,
        };
        Some(Permit {
            generation: self.generation,
            kind,
        })
    }

    /// Packs into one word: generation in the high 61 bits, state in the low 3.
    pub const fn to_bits(self) -> u64 {
        (self.generation << 3) | self.state.code()
    }

    /// Unpacks [`to_bits`](Self::to_bits).
    pub const fn from_bits(bits: u64) -> Option<Self> {
        match BreakerState::from_code(bits & 0b111) {
            Some(state) => Some(Snapshot {
                generation: bits >> 3,
                state,
            }),
            None => None,
        }
    }
}
