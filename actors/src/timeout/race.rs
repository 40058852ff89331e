//! Racing a reply against a deadline: in the caller's own future ([`race_in_caller`]), or inside
//! the timeout actor for replies no caller future waits on (the typed slot and the answer the
//! actor delivers exactly once).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::msg::TimeoutMsg;
use super::policy::OpIndex;
use crate::metrics::TimeoutOutcome;
use crate::reply::ReplyTo;
use crate::task::CancellationToken;

/// The deadline passed before the reply.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::TimedOut;
///
/// let err = TimedOut { after: Duration::from_millis(1500) };
/// assert_eq!(err.to_string(), "timed out after 1.5s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("timed out after {after:?}")]
pub struct TimedOut {
    /// How long the reply was waited for.
    pub after: Duration,
}

/// Why a race run by the timeout actor did not deliver the worker's value.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::{RaceError, TimedOut};
///
/// let err = RaceError::from(TimedOut { after: Duration::from_secs(2) });
/// assert_eq!(err.to_string(), "timed out after 2s");
/// assert_eq!(RaceError::Lost.to_string(), "the worker dropped its reply without answering");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RaceError {
    /// The deadline came first; the task's cancellation token was cancelled.
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
    /// The worker dropped its reply unsent (it crashed or gave up): reported at once, not at
    /// the deadline.
    #[error("the worker dropped its reply without answering")]
    Lost,
    /// The timeout actor is not running, so nothing could race the reply.
    #[error("the timeout actor is not running")]
    Unavailable,
}

/// Races `fut` against `deadline` in the caller's own future: no actor hop, one tokio timer.
///
/// On timeout `fut` is dropped, `cancel` is cancelled (so a worker watching the same token
/// stops), and the error says how long was waited.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::task::CancellationToken;
/// use ractor_resilience::timeout::{race_in_caller, TimedOut};
///
/// tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
///     let cancel = CancellationToken::new();
///     assert_eq!(race_in_caller(Duration::from_secs(1), &cancel, async { 7 }).await, Ok(7));
///     assert!(!cancel.is_cancelled());
///
///     let slow = tokio::time::sleep(Duration::from_secs(5));
///     let err = race_in_caller(Duration::from_secs(1), &cancel, slow).await.unwrap_err();
///     assert_eq!(err, TimedOut { after: Duration::from_secs(1) });
///     assert!(cancel.is_cancelled());
/// });
/// ```
pub async fn race_in_caller<F: Future>(
    deadline: Duration,
    cancel: &CancellationToken,
    fut: F,
) -> Result<F::Output, TimedOut> {
    let at = crate::clock::after(Instant::now(), deadline);
    race_until(at, deadline, cancel, fut).await
}

/// [`race_in_caller`] with the deadline given as an instant `at` (= start + `after`), for a
/// caller that already read the clock: `timeout_at` reads it no more.
pub(crate) async fn race_until<F: Future>(
    at: Instant,
    after: Duration,
    cancel: &CancellationToken,
    fut: F,
) -> Result<F::Output, TimedOut> {
    match tokio::time::timeout_at(at, fut).await {
        Ok(value) => Ok(value),
        Err(_elapsed) => {
            cancel.cancel();
            Err(TimedOut { after })
        }
    }
}

/// The correlation id of one race run by the timeout actor; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RaceId(pub(crate) u64);

/// A race handed to the timeout actor (built by
/// [`TimeoutHandle::race`](super::TimeoutHandle::race); opaque).
pub struct RaceStart {
    pub(crate) id: RaceId,
    pub(crate) operation: OpIndex,
    pub(crate) started: Instant,
    pub(crate) after: Duration,
    pub(crate) cancel: CancellationToken,
    pub(crate) answer: Box<dyn Answer>,
}

impl fmt::Debug for RaceStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaceStart")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// The destination of a race with its value type erased, so that one actor holds races of any
/// type. Consumed by exactly one of its methods: that is what makes the answer unique.
pub(crate) trait Answer: Send {
    /// Sends the worker's value (taken from its slot) to the destination and classifies it;
    /// `None`, after sending [`RaceError::Lost`], if the worker dropped its reply unsent.
    fn deliver(self: Box<Self>) -> Option<TimeoutOutcome>;

    /// Sends `error` to the destination; a value that might still arrive is dropped.
    fn fail(self: Box<Self>, error: RaceError);
}

/// The typed side of a race: the slot the worker's value lands in and the final destination.
struct TypedAnswer<T> {
    slot: oneshot::Receiver<T>,
    /// Taken by the one answer; still here on drop only if the race was lost with its actor.
    reply: Option<ReplyTo<Result<T, RaceError>>>,
    classify: fn(&T) -> TimeoutOutcome,
}

impl<T: Send + 'static> Answer for TypedAnswer<T> {
    fn deliver(mut self: Box<Self>) -> Option<TimeoutOutcome> {
        let reply = self.reply.take()?;
        match self.slot.try_recv() {
            Ok(value) => {
                let outcome = (self.classify)(&value);
                reply.send(Ok(value));
                Some(outcome)
            }
            Err(_) => {
                reply.send(Err(RaceError::Lost));
                None
            }
        }
    }

    fn fail(mut self: Box<Self>, error: RaceError) {
        if let Some(reply) = self.reply.take() {
            reply.send(Err(error));
        }
    }
}

impl<T> Drop for TypedAnswer<T> {
    /// A race dropped unanswered (its `Race` message died in the mailbox of a stopping actor)
    /// still gets an answer.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply.send(Err(RaceError::Unavailable));
        }
    }
}

/// Builds the two ends of a race: the erased answer for the actor, and the typed reply the
/// worker answers into. The worker's value goes into a oneshot slot and only the id travels
/// through the actor's mailbox, as [`TimeoutMsg::Replied`] (or [`TimeoutMsg::ReplyLost`] when
/// the reply is dropped unsent).
pub(crate) fn race_pair<T: Send + 'static>(
    actor: ActorRef<TimeoutMsg>,
    id: RaceId,
    reply: ReplyTo<Result<T, RaceError>>,
    classify: fn(&T) -> TimeoutOutcome,
) -> (Box<dyn Answer>, ReplyTo<T>) {
    let (tx, slot) = oneshot::channel();
    let worker_reply = ReplyTo::callback(move |value: Option<T>| {
        let msg = match value {
            // A failed send means the race already timed out and dropped its slot: the actor
            // still hears `Replied` and counts the late reply.
            Some(value) => {
                let _ = tx.send(value);
                TimeoutMsg::Replied(id)
            }
            None => TimeoutMsg::ReplyLost(id),
        };
        // If the actor is gone, so is the destination (it answered `Unavailable` when stopping).
        let _ = actor.cast(msg);
    });
    (
        Box::new(TypedAnswer {
            slot,
            reply: Some(reply),
            classify,
        }),
        worker_reply,
    )
}
