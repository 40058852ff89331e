//! [`Shared`]: what the caller's future, the agent's actor (the supervisor) and the workers share
//! about one agent — its policies, its dispatcher, its admission bound and its counters — and the
//! rules all three apply the same way (admission, retryability, how a task's end is counted).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::Rejected;
use tokio::time::Instant;

use super::counts::Counts;
use super::deadline::AgentTimeout;
use super::dispatch::Dispatch;
use super::error::{AttemptError, CallError, OverloadReason};
use super::{Agent, Outcome};
use crate::breaker::{BreakerHandle, KeyedBreakerHandle};
use crate::budget::SharedBudget;
use crate::clock;
use crate::metrics::{RetryOutcome, TaskOutcome};

/// `on_retry(attempt, error, delay)`: called before each retry is scheduled (the seed's
/// `OnRetry`). `attempt` is the number of the attempt that failed.
pub type RetryHook<E> = Arc<dyn Fn(u32, &AttemptError<E>, Duration) + Send + Sync>;

/// Everything the handle, the supervisor and the workers share about one agent.
pub(crate) struct Shared<A: Agent> {
    pub(crate) name: Arc<str>,
    pub(crate) dispatch: Dispatch<A>,
    pub(crate) breaker: BreakerHandle,
    /// The keyed breaker family a task's key is admitted by, besides the agent's breaker.
    pub(crate) keyed: Option<KeyedBreakerHandle>,
    pub(crate) timeout: AgentTimeout,
    /// The retry policy; a task takes it once, when its first retry is planned (hot reload
    /// swaps it whole).
    pub(crate) retry: ArcSwap<RetryPolicy>,
    /// `retry.max_attempts()`, for the paths that only need that (read without a guard).
    pub(crate) max_attempts: AtomicU32,
    pub(crate) budget: Option<SharedBudget>,
    pub(crate) on_retry: Option<RetryHook<A::Error>>,
    /// The admission bound (hot reload may change it).
    pub(crate) max_pending: AtomicUsize,
    /// Set once the supervisor has stopped: new tasks are refused at once.
    pub(crate) closed: AtomicBool,
    /// Tasks in flight, what each worker counts in a set of its own (attempts, retries, queue
    /// waits, the in-place timeout policy's samples), published in batches, and the agent's
    /// metric handles. Shared by
    /// reference with every admitted task (one reference count for a task that travels in a
    /// message, none for a call's).
    pub(crate) counts: Arc<Counts>,
    /// Whether the builder spawned (and the handle stops) the breaker and the timeout actor.
    pub(crate) owns: (bool, bool),
}

/// Counters of one agent since it was spawned.
///
/// `attempts − retries` is the number of tasks that reached a worker: both count only attempts
/// that started, never a retry the breaker refused or the queue shed.
///
/// ```
/// let stats = ractor_resilience::agent::AgentStats::default();
/// assert_eq!(stats.attempts, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStats {
    /// Attempts started, first attempts included.
    pub attempts: u64,
    /// Attempts started after a task's first (retries sent).
    pub retries: u64,
    /// Tasks admitted and not yet answered.
    pub inflight: usize,
}

/// One admitted task: releases its admission slot when dropped, wherever it ends.
///
/// A call's admission borrows the agent's counters for as long as the call's future runs (no
/// reference counts touched on the happy path); one that travels in a message
/// ([`into_owned`](Self::into_owned)) holds them.
pub(crate) struct Admitted<'a> {
    holder: Holder<'a>,
    pub(crate) submitted: Instant,
    /// The task's duration, if the worker that ran its last attempt measured it already (from
    /// `submitted` to that attempt's end): then no clock is read for it here.
    pub(crate) took: Option<Duration>,
    /// Whether the task's outcome was counted; a task dropped before that (its caller's future
    /// was dropped) is counted as cancelled, so every admitted task has exactly one outcome.
    finished: bool,
}

enum Holder<'a> {
    Borrowed(&'a Arc<Counts>),
    Owned(Arc<Counts>),
}

impl Admitted<'_> {
    fn counts(&self) -> &Arc<Counts> {
        match &self.holder {
            Holder::Borrowed(counts) => counts,
            Holder::Owned(counts) => counts,
        }
    }

    /// The same admission, holding the agent's counters (to travel in a message).
    pub(crate) fn into_owned<A: Agent>(self, shared: &Shared<A>) -> Admitted<'static> {
        let this = std::mem::ManuallyDrop::new(self);
        Admitted {
            holder: Holder::Owned(shared.counts.clone()),
            submitted: this.submitted,
            took: this.took,
            finished: this.finished,
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let (finished, submitted) = (self.finished, self.submitted);
        let counts = self.counts();
        if !finished {
            counts
                .metrics
                .task(TaskOutcome::Cancelled, submitted.elapsed());
        }
        counts.inflight.fetch_sub(1, Ordering::AcqRel);
        // The in-flight gauge is published with the agent's other counts.
        counts.touch();
    }
}

impl<A: Agent> Shared<A> {
    /// Admits a task (or refuses it at once): the agent is running, the admission bound has
    /// room, and the breaker's published state does not reject (an Open or forced-open breaker
    /// fails fast here; a half-open one is asked when a worker starts the attempt).
    /// `retried_upstream`: a layer above retries it.
    /// `key`: the task's key in the keyed family (see [`key_of`](Self::key_of)).
    pub(crate) fn admit(
        &self,
        retried_upstream: bool,
        key: Option<&str>,
    ) -> Result<Admitted<'_>, CallError<A::Error>> {
        if self.closed.load(Ordering::Acquire) {
            self.counts
                .metrics
                .task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(CallError::Unavailable);
        }
        if let Err(rejected) = self.breaker.precheck() {
            self.counts
                .metrics
                .task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(self.rejected(rejected, None));
        }
        if let (Some(family), Some(key)) = (&self.keyed, key) {
            if let Err(rejected) = family.precheck(key) {
                self.counts
                    .metrics
                    .task(TaskOutcome::Rejected, Duration::ZERO);
                return Err(self.rejected(rejected, Some(key)));
            }
        }
        let inflight = &self.counts.inflight;
        let n = inflight.fetch_add(1, Ordering::AcqRel);
        let max_pending = self.max_pending.load(Ordering::Relaxed);
        if n >= max_pending {
            inflight.fetch_sub(1, Ordering::AcqRel);
            self.counts
                .metrics
                .task(TaskOutcome::Overloaded, Duration::ZERO);
            return Err(CallError::Overloaded {
                reason: OverloadReason::Full { max_pending },
            });
        }
        self.counts.touch();
        // A task retried upstream is not a new request: the layer that retries it deposited
        // for it already, and it is never retried here. Depositing again would let a budget
        // shared along a call chain grow with the chain's depth (A → B → C sharing a 10% budget
        // would allow 30% of the original requests as retries).
        if let (Some(budget), false) = (&self.budget, retried_upstream) {
            budget.deposit();
        }
        Ok(Admitted {
            holder: Holder::Borrowed(&self.counts),
            submitted: Instant::now(),
            took: None,
            finished: false,
        })
    }

    pub(crate) fn max_attempts(&self, retried_upstream: bool) -> u32 {
        if retried_upstream {
            1
        } else {
            self.max_attempts.load(Ordering::Relaxed)
        }
    }

    /// Whether a layer retries a task arriving with `retried_upstream`: one above (then this
    /// one makes a single attempt) or this one. A downstream call made for the task is told so,
    /// which keeps every layer below from retrying — also below a layer that does not retry
    /// *because* one above it does (the flag must not be lost after one hop).
    pub(crate) fn retried_at_or_above(&self, retried_upstream: bool) -> bool {
        retried_upstream || self.max_attempts(false) > 1
    }

    /// The task's key in the keyed breaker family: the one its caller gave, else the task's
    /// own, else [`DEFAULT_BREAKER_KEY`](super::DEFAULT_BREAKER_KEY); `None` without a family.
    #[inline]
    pub(crate) fn key_of<'a>(&self, given: Option<&'a str>, task: &'a A::Task) -> Option<&'a str> {
        self.keyed.as_ref()?;
        Some(
            given
                .or_else(|| A::breaker_key(task))
                .unwrap_or(super::DEFAULT_BREAKER_KEY),
        )
    }

    /// The error of a refusal by the agent's breaker, or (with `key`) by its keyed family: the
    /// family's breaker for a key is named `family[key]`.
    pub(crate) fn rejected(&self, r: Rejected, key: Option<&str>) -> CallError<A::Error> {
        let now = clock::now();
        let breaker: Arc<str> = match (key, &self.keyed) {
            (Some(key), Some(family)) => format!("{}[{key}]", family.name()).into(),
            _ => self.breaker.name().into(),
        };
        CallError::Rejected {
            breaker,
            state: r.state,
            retry_after: r.retry_after.map(|at| at.saturating_duration_since(now)),
        }
    }

    /// Counts a task's final outcome (exactly once per task: see the callers).
    pub(crate) fn finish(&self, admitted: &mut Admitted<'_>, attempts: u32, result: &Outcome<A>) {
        admitted.finished = true;
        let outcome = match result {
            Ok(_) => TaskOutcome::Succeeded,
            Err(e) => e.outcome(),
        };
        let took = admitted
            .took
            .unwrap_or_else(|| admitted.submitted.elapsed());
        self.counts.metrics.task(outcome, took);
        let retried = attempts > 1;
        match (result, retried) {
            (Ok(_), false) => self.counts.metrics.retry(RetryOutcome::SuccessWithoutRetry),
            (Ok(_), true) => self.counts.metrics.retry(RetryOutcome::SuccessWithRetry),
            (Err(CallError::Failed { .. } | CallError::TimedOut { .. }), false) => {
                self.counts.metrics.retry(RetryOutcome::FailedWithoutRetry)
            }
            (Err(CallError::Failed { .. } | CallError::TimedOut { .. }), true) => {
                self.counts.metrics.retry(RetryOutcome::FailedWithRetry)
            }
            _ => {}
        }
    }

    /// Whether an attempt's error may be retried (the task's attempt count aside).
    pub(crate) fn retryable(error: &AttemptError<A::Error>) -> bool {
        match error {
            AttemptError::Agent(e) => A::classify(e).retry,
            AttemptError::WorkerLost | AttemptError::NoWorker | AttemptError::TimedOut { .. } => {
                true
            }
        }
    }

    /// Whether a failed attempt may be followed by another one.
    pub(crate) fn may_retry(
        &self,
        error: &AttemptError<A::Error>,
        attempt: u32,
        retried_upstream: bool,
    ) -> bool {
        Self::retryable(error) && attempt < self.max_attempts(retried_upstream)
    }

    /// The final error for a failed last attempt.
    pub(crate) fn final_error(error: AttemptError<A::Error>, attempts: u32) -> CallError<A::Error> {
        match error {
            AttemptError::TimedOut { after } => CallError::TimedOut { after, attempts },
            source => CallError::Failed { attempts, source },
        }
    }

    /// When the breaker's open period ends, if it is open now.
    pub(crate) fn breaker_open_until(&self) -> Option<Instant> {
        match self.breaker.state() {
            ractor_resilience_core::breaker::BreakerState::Open => Some(
                self.breaker
                    .open_until()
                    .map_or_else(Instant::now, Instant::from_std),
            ),
            _ => None,
        }
    }
}
