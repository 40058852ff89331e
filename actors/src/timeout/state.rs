//! The timeout actor's private state: the policy, the races with their one timer, the counters,
//! and the small functions `handle` dispatches to.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use ractor::ActorRef;
use ractor_resilience_core::estimator::AdaptiveTimeout;
use tokio::time::Instant;

use super::deadline_queue::{DeadlineQueue, TimerId};
use super::handle::Shared;
use super::hooks::TimeoutHooks;
use super::msg::{Recorded, TimeoutMsg};
use super::policy::TimeoutPolicy;
use super::race::{RaceError, RaceId, RaceStart, TimedOut};
use super::status::TimeoutStatus;
use crate::clock;
use crate::metrics::{TimeoutMetrics, TimeoutOutcome};
use crate::timer::OneTimer;

/// Now, from the crate's one clock, as the tokio instant the timers use.
fn now() -> Instant {
    Instant::from_std(clock::now())
}

/// How often the actor drains the record queue while records keep coming.
pub(crate) const DRAIN_TICK: Duration = Duration::from_millis(1);

/// The state of a [`TimeoutActor`](super::TimeoutActor) (opaque).
pub struct TimeoutState {
    shared: Arc<Shared>,
    /// Present only under an adaptive policy: the one estimator, written only here.
    estimator: Option<AdaptiveTimeout>,
    slow_threshold: Option<Duration>,
    hooks: TimeoutHooks,
    metrics: TimeoutMetrics,
    races: HashMap<RaceId, (TimerId, RaceStart)>,
    deadlines: DeadlineQueue<RaceId>,
    /// The one armed `send_after`, for the earliest race deadline.
    timer: OneTimer<TimeoutMsg>,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    samples: u64,
    by_outcome: [u64; 3],
    slow: u64,
    late: u64,
    wakeups: u64,
}

impl TimeoutState {
    pub(crate) fn new(
        shared: Arc<Shared>,
        policy: &TimeoutPolicy,
        slow_threshold: Option<Duration>,
        hooks: TimeoutHooks,
        metrics: TimeoutMetrics,
    ) -> Self {
        let estimator = match policy {
            TimeoutPolicy::Adaptive(settings) => Some(AdaptiveTimeout::new(*settings)),
            TimeoutPolicy::Fixed(_) | TimeoutPolicy::PerOperation(_) => None,
        };
        metrics.current(shared.current());
        Self {
            shared,
            estimator,
            slow_threshold,
            hooks,
            metrics,
            races: HashMap::new(),
            deadlines: DeadlineQueue::new(),
            timer: OneTimer::new(),
            counts: Counts::default(),
        }
    }

    /// Processes one outcome: counts it, feeds the estimator, runs the hooks.
    ///
    /// Fed to an adaptive estimator: successes as latencies, timeouts as censored samples
    /// (`observe_timeout(waited)`, so a slowed-down dependency grows the deadline instead of
    /// timing out forever). Failures are *not* fed (Finagle's rule): a fast failure — connection
    /// refused, rate limited — says nothing about how long a real answer takes and would drag
    /// the quantile, hence the deadline, down exactly when the dependency is in trouble.
    pub(crate) fn observe(&mut self, recorded: Recorded) {
        let Recorded {
            operation,
            latency,
            outcome,
        } = recorded;
        self.counts.samples += 1;
        self.counts.by_outcome[outcome as usize] += 1;
        self.metrics.call(outcome);
        // A record interned under a table that a reload replaced since may name another
        // operation (or the default) in the hooks; its latency and outcome count all the same.
        let policy = self.shared.policy.load();
        let name = policy.operations.name(operation);
        match outcome {
            TimeoutOutcome::Timeout => {
                if let Some(estimator) = &mut self.estimator {
                    estimator.observe_timeout(latency);
                }
                self.hooks.timed_out(name, latency);
            }
            TimeoutOutcome::Success | TimeoutOutcome::Failure => {
                if let (TimeoutOutcome::Success, Some(estimator)) = (outcome, &mut self.estimator) {
                    estimator.observe(latency);
                }
                // Strictly slower, as the breaker's slow calls (DESIGN §3.1).
                if self
                    .slow_threshold
                    .is_some_and(|threshold| latency > threshold)
                {
                    self.counts.slow += 1;
                    self.metrics.slow();
                    self.hooks.slow(name, latency);
                }
            }
        }
    }

    /// Republishes the adaptive deadline (atomic + gauge) after a batch.
    fn publish(&mut self) {
        if let Some(estimator) = &self.estimator {
            let timeout = estimator.timeout();
            self.shared.publish(timeout);
            self.metrics.current(timeout);
        }
    }

    /// Drains at most one queue's worth of records (a bound, so that producers outpacing the
    /// actor cannot starve its mailbox); returns how many.
    pub(crate) fn drain(&mut self) -> usize {
        let mut drained = 0;
        while drained < self.shared.queue.capacity() {
            let Some(recorded) = self.shared.queue.pop() else {
                break;
            };
            self.observe(recorded);
            drained += 1;
        }
        if drained > 0 {
            self.publish();
        }
        drained
    }

    /// The drain tick: keeps ticking while records arrive, stops when a tick finds none.
    pub(crate) fn on_drain(&mut self, myself: &ActorRef<TimeoutMsg>) {
        if self.drain() > 0 {
            myself.send_after(DRAIN_TICK, || TimeoutMsg::Drain);
            return;
        }
        self.shared.drain_scheduled.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // A record pushed after the last pop may have seen the flag still set and not rung.
        if !self.shared.queue.is_empty()
            && !self.shared.drain_scheduled.swap(true, Ordering::SeqCst)
        {
            myself.send_after(DRAIN_TICK, || TimeoutMsg::Drain);
        }
    }

    /// A record that came by message because the queue was full.
    pub(crate) fn on_record(&mut self, recorded: Recorded) {
        self.observe(recorded);
        self.publish();
    }

    pub(crate) fn on_late_reply(&mut self) {
        self.counts.late += 1;
        self.metrics.late();
    }

    pub(crate) fn on_race(&mut self, myself: &ActorRef<TimeoutMsg>, race: RaceStart) {
        let at = race.started + race.after;
        let timer = self.deadlines.insert(at, race.id);
        self.races.insert(race.id, (timer, race));
        self.arm(myself, at);
    }

    /// The worker answered (`lost`: dropped its reply). First event for this race wins; an
    /// unknown id means the deadline won earlier, so a value is a late reply.
    pub(crate) fn on_replied(&mut self, id: RaceId, lost: bool) {
        let Some((timer, race)) = self.races.remove(&id) else {
            if !lost {
                self.on_late_reply();
            }
            return;
        };
        self.deadlines.cancel(timer);
        if self.deadlines.is_empty() {
            self.timer.disarm();
        }
        let latency = now().saturating_duration_since(race.started);
        let outcome = race.answer.deliver().unwrap_or(TimeoutOutcome::Failure);
        self.observe(Recorded {
            operation: race.operation,
            latency,
            outcome,
        });
        self.publish();
    }

    /// The armed timer fired: time out every race due by now, then re-arm for the next.
    pub(crate) fn on_timer(&mut self, myself: &ActorRef<TimeoutMsg>, generation: u64) {
        if !self.timer.fired(generation) {
            return; // stale: re-armed or disarmed since
        }
        self.counts.wakeups += 1;
        let now = now();
        let due: Vec<RaceId> = self.deadlines.pop_expired(now).collect();
        for id in due {
            let Some((_, race)) = self.races.remove(&id) else {
                continue;
            };
            // Cancel before answering: whoever gets the error may check the token at once.
            race.cancel.cancel();
            race.answer
                .fail(RaceError::TimedOut(TimedOut { after: race.after }));
            self.observe(Recorded {
                operation: race.operation,
                latency: race.after,
                outcome: TimeoutOutcome::Timeout,
            });
        }
        self.publish();
        if let Some(next) = self.deadlines.next_deadline() {
            self.arm(myself, next);
        }
    }

    /// Makes sure the one timer fires by `at`: re-arms only for an earlier deadline.
    fn arm(&mut self, myself: &ActorRef<TimeoutMsg>, at: Instant) {
        self.timer
            .fire_by(myself, at, |generation| TimeoutMsg::TimerFired {
                generation,
            });
    }

    pub(crate) fn status(&self) -> TimeoutStatus {
        let [successes, failures, timeouts] = self.counts.by_outcome;
        TimeoutStatus {
            name: self.shared.name.to_string(),
            kind: self.shared.kind(),
            current: self.shared.current(),
            samples: self.counts.samples,
            successes,
            failures,
            timeouts,
            slow_operations: self.counts.slow,
            late_replies: self.counts.late,
            races_pending: self.races.len(),
            timers_armed: self.timer.armed_count(),
            timer_wakeups: self.counts.wakeups,
        }
    }

    /// A new policy: published for callers, the estimator kept where it can be.
    pub(crate) fn reconfigure(&mut self, args: &super::TimeoutArgs) -> super::TimeoutReconfigured {
        // Outcomes recorded under the old policy are applied to the old estimator first.
        self.drain();
        let policy = &args.policy;
        let estimator_kept = match (policy, &mut self.estimator) {
            (TimeoutPolicy::Adaptive(settings), Some(estimator)) => {
                estimator.reconfigure(*settings)
            }
            (TimeoutPolicy::Adaptive(settings), None) => {
                self.estimator = Some(AdaptiveTimeout::new(*settings));
                false
            }
            (TimeoutPolicy::Fixed(_) | TimeoutPolicy::PerOperation(_), _) => {
                self.estimator = None;
                false
            }
        };
        self.slow_threshold = args.slow_operation_threshold;
        self.shared
            .policy
            .store(Arc::new(super::handle::PublishedPolicy::new(policy)));
        let current = self
            .estimator
            .as_ref()
            .map_or_else(|| policy.initial_timeout(), AdaptiveTimeout::timeout);
        self.shared.publish(current);
        self.metrics.current(current);
        tracing::info!(timeout = %self.shared.name, kind = policy.kind().as_str(), ?current, estimator_kept, "timeout policy reconfigured");
        super::TimeoutReconfigured { estimator_kept }
    }

    /// On stop: every pending race is answered [`RaceError::Unavailable`], never left hanging.
    pub(crate) fn shut_down(&mut self) {
        self.timer.disarm();
        for (_, (_, race)) in self.races.drain() {
            race.answer.fail(RaceError::Unavailable);
        }
    }
}

impl std::fmt::Debug for TimeoutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutState")
            .field("name", &self.shared.name)
            .field("races", &self.races.len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}
