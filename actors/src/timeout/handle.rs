//! [`TimeoutHandle`]: what callers hold — the published deadline (read without a message), the
//! lock-free record queue, and the actor's address for races and status.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::{ActorRef, MessagingErr};

use super::msg::{Recorded, TimeoutMsg, TimeoutReconfigured, TimeoutUnavailable};
use super::policy::{OperationTable, PolicyKind, TimeoutPolicy};
use super::race::{RaceError, RaceId, RaceStart, TimedOut, race_in_caller, race_pair};
use super::status::TimeoutStatus;
use crate::clock;
use crate::lazy_queue::LazyQueue;
use crate::metrics::TimeoutOutcome;
use crate::reply::ReplyTo;
use crate::task::CancellationToken;

/// How many recorded outcomes wait for the actor before `record` falls back to a message: a
/// millisecond's drain tick at 1 M records/s (32 KiB, allocated by the first record).
pub(crate) const RECORD_QUEUE_CAPACITY: usize = 1024;

/// State shared by a timeout actor and its handles. Only the actor writes `current`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    /// The policy's kind and operation table, replaced whole when the actor is reconfigured
    /// (a reader sees the old table or the new one, never a mix).
    pub(crate) policy: ArcSwap<PublishedPolicy>,
    /// The published deadline in nanoseconds (per-operation policy: the default).
    current: AtomicU64,
    /// Allocated by the first record: a policy nobody has used yet holds no slots.
    pub(crate) queue: LazyQueue<Recorded>,
    /// Whether a `Drain` is queued or a drain tick armed (so records ring the doorbell once).
    pub(crate) drain_scheduled: AtomicBool,
    next_race: AtomicU64,
}

impl Shared {
    pub(crate) fn new(name: &str, policy: &TimeoutPolicy) -> Self {
        let shared = Shared {
            name: Arc::from(name),
            policy: ArcSwap::from_pointee(PublishedPolicy::new(policy)),
            current: AtomicU64::new(0),
            queue: LazyQueue::new(RECORD_QUEUE_CAPACITY),
            drain_scheduled: AtomicBool::new(false),
            next_race: AtomicU64::new(0),
        };
        shared.publish(policy.initial_timeout());
        shared
    }

    pub(crate) fn kind(&self) -> PolicyKind {
        self.policy.load().kind
    }

    pub(crate) fn current(&self) -> Duration {
        Duration::from_nanos(self.current.load(Ordering::Relaxed))
    }

    pub(crate) fn publish(&self, timeout: Duration) {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.current.store(nanos, Ordering::Relaxed);
    }
}

/// What callers read of the policy without a message.
#[derive(Debug)]
pub(crate) struct PublishedPolicy {
    pub(crate) kind: PolicyKind,
    pub(crate) operations: OperationTable,
}

impl PublishedPolicy {
    pub(crate) fn new(policy: &TimeoutPolicy) -> Self {
        PublishedPolicy {
            kind: policy.kind(),
            operations: OperationTable::new(policy),
        }
    }
}

/// A cheap, cloneable handle on a [`TimeoutActor`](super::TimeoutActor).
///
/// - [`timeout_for`](Self::timeout_for) reads the published deadline: no message, no lock.
/// - [`record`](Self::record) queues an outcome lock-free; the actor drains the queue in
///   batches and feeds the policy, metrics and hooks. It never blocks and never drops.
/// - [`execute`](Self::execute) is the seed's `TimeoutManager.Execute`: the deadline, the race
///   in the caller's future, and the record, in one call.
/// - [`race`](Self::race) hands a reply no caller future waits on to the actor, which races it
///   against the deadline with its one timer.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::task::CancellationToken;
/// use ractor_resilience::timeout::{OperationTimeouts, TimeoutActor, TimeoutHooks, TimeoutPolicy};
///
/// tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
///     let ops = OperationTimeouts::new(Duration::from_secs(30)).with_operation("embed", Duration::from_secs(2));
///     let timeouts = TimeoutActor::spawn("llm", TimeoutPolicy::PerOperation(ops), TimeoutHooks::new()).await.unwrap();
///     assert_eq!(timeouts.timeout_for(Some("embed")), Duration::from_secs(2));
///
///     let cancel = CancellationToken::new();
///     let out = timeouts.execute(Some("embed"), None, &cancel, async { Ok::<_, ()>("vector") }).await;
///     assert_eq!(out, Ok(Ok("vector")));
///     assert_eq!(timeouts.status().await.unwrap().successes, 1);
/// });
/// ```
#[derive(Clone)]
pub struct TimeoutHandle {
    actor: ActorRef<TimeoutMsg>,
    shared: Arc<Shared>,
}

impl TimeoutHandle {
    pub(crate) fn new(actor: ActorRef<TimeoutMsg>, shared: Arc<Shared>) -> Self {
        Self { actor, shared }
    }

    /// The actor's address (to stop it, or to link it).
    pub fn actor(&self) -> &ActorRef<TimeoutMsg> {
        &self.actor
    }

    /// The policy's configured name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The deadline for a call to `operation`, read from what the actor published: the fixed
    /// value, the operation's own deadline (or the default for an unknown or absent one), or
    /// the current adaptive estimate.
    pub fn timeout_for(&self, operation: Option<&str>) -> Duration {
        self.shared
            .policy
            .load()
            .operations
            .timeout_of(operation)
            .unwrap_or_else(|| self.shared.current())
    }

    /// Records how a call to `operation` ended: its latency, or for a
    /// [`Timeout`](TimeoutOutcome::Timeout) how long it was waited for.
    ///
    /// Lock-free and non-blocking; never dropped: when the queue is full the outcome travels as
    /// a [`TimeoutMsg::Record`] message instead.
    pub fn record(&self, operation: Option<&str>, latency: Duration, outcome: TimeoutOutcome) {
        let recorded = Recorded {
            operation: self.shared.policy.load().operations.intern(operation),
            latency,
            outcome,
        };
        if let Err(recorded) = self.shared.queue.push(recorded) {
            // A stopped actor has nobody left to tell: dropping is the only option then.
            let _ = self.actor.cast(TimeoutMsg::Record(recorded));
            return;
        }
        // The fence pairs with the actor's SeqCst `store(false)` + emptiness check (see
        // `State::on_drain`): either it sees this record, or this load sees `false` and the swap
        // rings the doorbell. Loading first keeps the flag's cache line shared on the hot path.
        std::sync::atomic::fence(Ordering::SeqCst);
        if !self.shared.drain_scheduled.load(Ordering::Relaxed)
            && !self.shared.drain_scheduled.swap(true, Ordering::SeqCst)
        {
            let _ = self.actor.cast(TimeoutMsg::Drain);
        }
    }

    /// Counts a reply the caller dropped because it arrived after its deadline.
    pub fn late_reply(&self) {
        let _ = self.actor.cast(TimeoutMsg::LateReply);
    }

    /// The seed's `TimeoutManager.Execute(ctx, operation, timeout, fn)`: races `fut` in this
    /// future against `after` (or, if `None`, [`timeout_for(operation)`](Self::timeout_for)),
    /// cancels `cancel` on timeout, and records the outcome (`Ok` → success, `Err` → failure).
    ///
    /// # Errors
    /// [`TimedOut`] when the deadline came first.
    pub async fn execute<T, E, F>(
        &self,
        operation: Option<&str>,
        after: Option<Duration>,
        cancel: &CancellationToken,
        fut: F,
    ) -> Result<Result<T, E>, TimedOut>
    where
        F: Future<Output = Result<T, E>>,
    {
        let deadline = after.unwrap_or_else(|| self.timeout_for(operation));
        let started = clock::now();
        let result = race_in_caller(deadline, cancel, fut).await;
        let (latency, outcome) = match &result {
            Ok(Ok(_)) => (clock::now() - started, TimeoutOutcome::Success),
            Ok(Err(_)) => (clock::now() - started, TimeoutOutcome::Failure),
            Err(timed_out) => (timed_out.after, TimeoutOutcome::Timeout),
        };
        self.record(operation, latency, outcome);
        result
    }

    /// Has the actor race a reply no caller future waits on (a `cast` with a reply target, a
    /// remote caller) against `after` (or, if `None`, the operation's deadline). Returns the
    /// reply to give the worker; `reply` then gets exactly one answer:
    ///
    /// - the worker's value, if it came first (counted as a success);
    /// - [`RaceError::TimedOut`] at the deadline: `cancel` is cancelled, `on_timeout` runs, and
    ///   a value sent later is dropped and counted as a late reply;
    /// - [`RaceError::Lost`] at once if the worker drops its reply unsent;
    /// - [`RaceError::Unavailable`] at once if the actor is not running.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience::reply::ReplyTo;
    /// use ractor_resilience::task::CancellationToken;
    /// use ractor_resilience::timeout::{RaceError, TimedOut, TimeoutActor, TimeoutHooks, TimeoutPolicy};
    ///
    /// tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
    ///     let timeouts = TimeoutActor::spawn("jobs", TimeoutPolicy::Fixed(Duration::from_secs(1)), TimeoutHooks::new()).await.unwrap();
    ///     let (reply, answer) = ReplyTo::port();
    ///     let worker_reply = timeouts.race(None, None, CancellationToken::new(), reply);
    ///     tokio::spawn(async move {
    ///         tokio::time::sleep(Duration::from_secs(3)).await; // too slow
    ///         worker_reply.send("done");
    ///     });
    ///     let after = Duration::from_secs(1);
    ///     assert_eq!(answer.await.unwrap(), Err(RaceError::TimedOut(TimedOut { after })));
    /// });
    /// ```
    #[must_use = "give this reply to the worker: dropping it answers `RaceError::Lost` at once"]
    pub fn race<T: Send + 'static>(
        &self,
        operation: Option<&str>,
        after: Option<Duration>,
        cancel: CancellationToken,
        reply: ReplyTo<Result<T, RaceError>>,
    ) -> ReplyTo<T> {
        self.race_classified(operation, after, cancel, reply, |_| TimeoutOutcome::Success)
    }

    /// [`race`](Self::race) for a worker that answers a `Result`: an in-time `Err` is delivered
    /// like an `Ok` but counted as a failure (and, like every failure, not fed to an adaptive
    /// estimator).
    #[must_use = "give this reply to the worker: dropping it answers `RaceError::Lost` at once"]
    pub fn race_result<T: Send + 'static, E: Send + 'static>(
        &self,
        operation: Option<&str>,
        after: Option<Duration>,
        cancel: CancellationToken,
        reply: ReplyTo<Result<Result<T, E>, RaceError>>,
    ) -> ReplyTo<Result<T, E>> {
        self.race_classified(operation, after, cancel, reply, |value| match value {
            Ok(_) => TimeoutOutcome::Success,
            Err(_) => TimeoutOutcome::Failure,
        })
    }

    fn race_classified<T: Send + 'static>(
        &self,
        operation: Option<&str>,
        after: Option<Duration>,
        cancel: CancellationToken,
        reply: ReplyTo<Result<T, RaceError>>,
        classify: fn(&T) -> TimeoutOutcome,
    ) -> ReplyTo<T> {
        let id = RaceId(self.shared.next_race.fetch_add(1, Ordering::Relaxed));
        let after = after.unwrap_or_else(|| self.timeout_for(operation));
        let (answer, worker_reply) = race_pair(self.actor.clone(), id, reply, classify);
        let start = RaceStart {
            id,
            operation: self.shared.policy.load().operations.intern(operation),
            started: tokio::time::Instant::from_std(clock::now()),
            after,
            cancel,
            answer,
        };
        // `Race` is queued before the worker can possibly reply: the mailbox keeps that order,
        // so `Replied(id)` never overtakes it.
        if let Err(MessagingErr::SendErr(TimeoutMsg::Race(start))) =
            self.actor.cast(TimeoutMsg::Race(start))
        {
            start.answer.fail(RaceError::Unavailable);
        }
        worker_reply
    }

    /// Applies a new policy in place (hot reload). An adaptive estimator keeps its samples when
    /// the new policy is adaptive with the same mode
    /// ([`AdaptiveTimeout::reconfigure`](ractor_resilience_core::estimator::AdaptiveTimeout::reconfigure));
    /// races already running keep the deadline they were given; every deadline read after the
    /// answer comes from the new policy. Outcomes recorded before are applied first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience::timeout::{TimeoutActor, TimeoutHooks, TimeoutPolicy};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let t = TimeoutActor::spawn("llm", TimeoutPolicy::Fixed(Duration::from_secs(30)), TimeoutHooks::new()).await?;
    /// t.reconfigure(TimeoutPolicy::Fixed(Duration::from_secs(5))).await?;
    /// assert_eq!(t.timeout_for(None), Duration::from_secs(5));
    /// t.actor().stop(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`TimeoutUnavailable`] if the actor is not running.
    pub async fn reconfigure(
        &self,
        args: impl Into<super::TimeoutArgs>,
    ) -> Result<TimeoutReconfigured, TimeoutUnavailable> {
        let (reply, answer) = ReplyTo::port();
        let unavailable = || TimeoutUnavailable {
            timeout: self.shared.name.clone(),
        };
        self.actor
            .cast(TimeoutMsg::Reconfigure(Box::new(args.into()), reply))
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())
    }

    /// The actor's [`TimeoutStatus`], after it drained every outcome recorded before this call
    /// (so it also works as a flush). `None` if the actor is not running.
    pub async fn status(&self) -> Option<TimeoutStatus> {
        let (reply, answer) = ReplyTo::port();
        self.actor.cast(TimeoutMsg::GetStatus(reply)).ok()?;
        answer.await.ok()
    }
}

impl fmt::Debug for TimeoutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutHandle")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind())
            .field("current", &self.shared.current())
            .field("actor", &self.actor.get_id())
            .finish()
    }
}
