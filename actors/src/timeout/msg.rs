//! [`TimeoutMsg`]: everything the timeout actor handles.

use std::time::Duration;

use super::policy::OpIndex;
use super::race::{RaceId, RaceStart};
use super::status::TimeoutStatus;
use crate::metrics::TimeoutOutcome;
use crate::reply::ReplyTo;

/// The messages of a [`TimeoutActor`](super::TimeoutActor). Most are sent by its
/// [`TimeoutHandle`](super::TimeoutHandle), which is the API to use; the payloads that carry
/// internal state are opaque.
#[derive(Debug)]
pub enum TimeoutMsg {
    /// Drain the queue of recorded outcomes (the first record after an idle period, then a
    /// short tick while records keep coming).
    Drain,
    /// A recorded outcome that did not fit in the full queue (never dropped).
    Record(Recorded),
    /// Race a worker's reply against a deadline (from
    /// [`TimeoutHandle::race`](super::TimeoutHandle::race)).
    Race(RaceStart),
    /// The worker of race `id` answered; its value waits in the race's slot.
    Replied(RaceId),
    /// The worker of race `id` dropped its reply unsent.
    ReplyLost(RaceId),
    /// The one armed deadline timer fired; stale generations are ignored.
    TimerFired {
        /// The arming this wakeup belongs to.
        generation: u64,
    },
    /// A caller dropped a reply that came after its deadline (counted).
    LateReply,
    /// Report the actor's [`TimeoutStatus`] (after draining pending records).
    GetStatus(ReplyTo<TimeoutStatus>),
    /// A new policy, applied in place (hot reload; see
    /// [`TimeoutHandle::reconfigure`](super::TimeoutHandle::reconfigure)).
    Reconfigure(Box<super::TimeoutArgs>, ReplyTo<TimeoutReconfigured>),
}

/// What [`TimeoutHandle::reconfigure`](super::TimeoutHandle::reconfigure) kept.
///
/// ```
/// let r = ractor_resilience::timeout::TimeoutReconfigured { estimator_kept: true };
/// assert!(r.estimator_kept);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutReconfigured {
    /// The adaptive estimator kept its samples (adaptive before and after, same mode). `false`
    /// when a new estimator started empty, or when the policy is not adaptive.
    pub estimator_kept: bool,
}

/// The timeout actor is not running.
///
/// ```
/// let e = ractor_resilience::timeout::TimeoutUnavailable { timeout: "llm".into() };
/// assert_eq!(e.to_string(), "timeout actor `llm` is not running");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeout actor `{timeout}` is not running")]
pub struct TimeoutUnavailable {
    /// Its name.
    pub timeout: std::sync::Arc<str>,
}

/// One recorded outcome: operation, latency (or time waited, for a timeout) and outcome.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    pub(crate) operation: OpIndex,
    pub(crate) latency: Duration,
    pub(crate) outcome: TimeoutOutcome,
}

// Local-only under ractor's `cluster` feature (see `breaker::messages`).
#[cfg(feature = "cluster")]
impl ractor::Message for TimeoutMsg {}
