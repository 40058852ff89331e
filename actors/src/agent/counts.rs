//! [`Counts`]: what an agent counts in place — its tasks in flight and, per worker, its
//! attempts, their queue waits and its fixed timeout policy's outcomes — and publishes to the
//! metrics recorder in batches ([`crate::metrics::publish`]).
//!
//! Each worker counts its own attempts in a set only it writes, so counting is a load and a
//! store (no read-modify-write on the happy path: on two cores each one costs as much as 8 ns of
//! a 650 ns call); a reader sums the sets under a lock, and a worker that stops folds its set
//! into the agent's total first, so that nothing it counted is lost or counted twice. Publishing
//! turns what was counted since the last time into counter increments, histogram samples and
//! the in-flight gauge's value, under the same lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::metrics::publish::{Dirty, Publish};
use crate::metrics::{AgentMetrics, TimeoutMetrics, TimeoutOutcome};

/// Queue waits a worker keeps before they are published (a full buffer is published by the
/// worker itself). Waits of zero — an attempt handed straight to an idle worker, the common
/// case — are only counted.
const WAITS: usize = 64;

/// One worker's counts. Written only by its worker (one task): `bump` is not atomic as a
/// whole, and needs not be. Kept on cache lines of their own (`CachePadded`): written on every
/// attempt, they must share no line with what another thread writes.
#[derive(Debug)]
pub(crate) struct WorkerCounts {
    /// Tasks' first attempts, and the attempts after a first: two counters that never need to
    /// agree with each other, so a reader between the worker's writes reads no impossible pair
    /// (a sum and a part of it read apart could).
    firsts: AtomicU64,
    retries: AtomicU64,
    /// Attempts by timeout outcome (success, failure, timeout), for a policy the agent keeps in
    /// place (an actor-kept one counts its own).
    samples: [AtomicU64; 3],
    /// Attempts that started as they were queued: a queue wait of zero.
    zero_waits: AtomicU64,
    /// How many of `zero_waits` were published (written by the publisher, under the lock).
    zero_waits_published: AtomicU64,
    /// The other queue waits (ns) not yet published: a ring the worker writes at `head` and
    /// the publisher, under the agent's lock, drains from `tail`.
    head: AtomicUsize,
    tail: AtomicUsize,
    waits: [AtomicU64; WAITS],
}

impl Default for WorkerCounts {
    fn default() -> Self {
        WorkerCounts {
            firsts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            samples: Default::default(),
            zero_waits: AtomicU64::new(0),
            zero_waits_published: AtomicU64::new(0),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            waits: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerCounts {
    fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// An attempt starts (`retry`: not the task's first).
    pub(crate) fn attempt(&self, retry: bool) {
        Self::bump(if retry { &self.retries } else { &self.firsts });
    }

    /// An attempt ended with a sample for the timeout policy.
    pub(crate) fn sample(&self, outcome: TimeoutOutcome) {
        Self::bump(&self.samples[outcome as usize]);
    }

    /// An attempt started after waiting `waited` for a worker. `false`: the buffer of waits is
    /// full and nothing was counted (publish, then count again).
    #[must_use]
    pub(crate) fn wait(&self, waited: Duration) -> bool {
        if waited.is_zero() {
            Self::bump(&self.zero_waits);
            return true;
        }
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail.load(Ordering::Acquire)) >= WAITS {
            return false;
        }
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.waits[head % WAITS].store(nanos, Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Takes the waits counted since the last call: `each` gets every nonzero one; returns how
    /// many were zero. Only under the agent's lock (one reader at a time).
    fn take_waits(&self, mut each: impl FnMut(Duration)) -> u64 {
        let zeros = self.zero_waits.load(Ordering::Relaxed);
        let new_zeros = zeros - self.zero_waits_published.load(Ordering::Relaxed);
        self.zero_waits_published.store(zeros, Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let mut i = tail;
        while i != head {
            each(Duration::from_nanos(
                self.waits[i % WAITS].load(Ordering::Relaxed),
            ));
            i = i.wrapping_add(1);
        }
        self.tail.store(head, Ordering::Release);
        new_zeros
    }

    fn read(&self) -> Totals {
        Totals {
            firsts: self.firsts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            samples: [0, 1, 2].map(|i| self.samples[i].load(Ordering::Relaxed)),
        }
    }
}

/// What an agent's workers counted, together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// First attempts of tasks.
    pub(crate) firsts: u64,
    /// Attempts after a task's first.
    pub(crate) retries: u64,
    /// By timeout outcome: success, failure, timeout.
    pub(crate) samples: [u64; 3],
}

impl Totals {
    /// Every attempt, first ones included.
    pub(crate) fn attempts(&self) -> u64 {
        self.firsts + self.retries
    }
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.firsts += other.firsts;
        self.retries += other.retries;
        for (mine, theirs) in self.samples.iter_mut().zip(other.samples) {
            *mine += theirs;
        }
    }
}

/// What one agent counts in place: the counts of every worker it has had, and its tasks in
/// flight; the metric handles they are published to.
#[derive(Debug)]
pub(crate) struct Counts {
    inner: Mutex<Inner>,
    /// Tasks admitted and not yet answered. On a cache line of its own: callers write it twice
    /// per task, and workers read `dirty` on every attempt.
    pub(crate) inflight: CachePadded<AtomicUsize>,
    pub(crate) metrics: Arc<AgentMetrics>,
    /// The call counters of a timeout policy the agent keeps in place (its workers count the
    /// policy's outcomes).
    timeout: Option<TimeoutMetrics>,
    dirty: Dirty,
}

#[derive(Debug, Default)]
struct Inner {
    live: Vec<Arc<CachePadded<WorkerCounts>>>,
    /// What stopped workers counted.
    gone: Totals,
    /// What the metric handles were given.
    published: Totals,
}

impl Counts {
    pub(crate) fn new(metrics: Arc<AgentMetrics>, timeout: Option<TimeoutMetrics>) -> Self {
        Counts {
            inner: Mutex::default(),
            inflight: CachePadded::new(AtomicUsize::new(0)),
            metrics,
            timeout,
            dirty: Dirty::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's set.
    pub(crate) fn join(&self) -> Arc<CachePadded<WorkerCounts>> {
        let counts = Arc::new(CachePadded::new(WorkerCounts::default()));
        self.lock().live.push(counts.clone());
        counts
    }

    /// A worker stops: its counts join the total and everything is published (by its own
    /// task, after its last write).
    pub(crate) fn leave(&self, counts: &Arc<CachePadded<WorkerCounts>>) {
        let mut inner = self.lock();
        if let Some(i) = inner.live.iter().position(|c| Arc::ptr_eq(c, counts)) {
            self.publish_waits(counts);
            inner.live.swap_remove(i);
            inner.gone += counts.read();
            self.publish_locked(&mut inner);
        }
    }

    /// Everything counted so far.
    pub(crate) fn totals(&self) -> Totals {
        let inner = self.lock();
        let mut totals = inner.gone;
        for counts in &inner.live {
            totals += counts.read();
        }
        totals
    }

    /// Called after counting something: lists the agent to be published.
    #[inline]
    pub(crate) fn touch(self: &Arc<Self>) {
        self.dirty.mark(|| self.clone());
    }

    /// Publishes now (a worker whose buffer of waits is full).
    pub(crate) fn publish_now(&self) {
        let mut inner = self.lock();
        self.publish_locked(&mut inner);
    }

    fn publish_waits(&self, counts: &WorkerCounts) {
        let zeros = counts.take_waits(|waited| self.metrics.queue_wait(waited));
        self.metrics.zero_queue_waits(zeros);
    }

    fn publish_locked(&self, inner: &mut Inner) {
        let mut totals = inner.gone;
        for counts in &inner.live {
            self.publish_waits(counts);
            totals += counts.read();
        }
        let before = std::mem::replace(&mut inner.published, totals);
        let firsts = totals.firsts - before.firsts;
        let retries = totals.retries - before.retries;
        if firsts + retries > 0 {
            self.metrics.attempts(firsts, retries);
        }
        if let Some(timeout) = &self.timeout {
            for outcome in TimeoutOutcome::ALL {
                let i = outcome as usize;
                timeout.calls(outcome, totals.samples[i] - before.samples[i]);
            }
        }
        self.metrics.inflight(self.inflight.load(Ordering::Acquire));
    }
}

impl Publish for Counts {
    fn dirty(&self) -> &Dirty {
        &self.dirty
    }

    fn publish(&self) {
        self.publish_now();
    }
}

impl Drop for Counts {
    /// The agent is gone: whatever it counted last is published.
    fn drop(&mut self) {
        self.publish_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Default for Counts {
        /// Counts whose metric handles go nowhere (no recorder).
        fn default() -> Self {
            Counts::new(Arc::new(AgentMetrics::new(&"a".into(), &"p".into())), None)
        }
    }

    #[test]
    fn a_stopped_workers_counts_stay_and_are_counted_once() {
        let counts = Counts::default();
        let a = counts.join();
        let b = counts.join();
        a.attempt(false);
        a.attempt(true);
        a.sample(TimeoutOutcome::Success);
        b.attempt(false);
        b.sample(TimeoutOutcome::Timeout);
        let before = counts.totals();
        assert_eq!(
            before,
            Totals {
                firsts: 2,
                retries: 1,
                samples: [1, 0, 1]
            }
        );
        counts.leave(&a);
        counts.leave(&a); // twice: still once
        assert_eq!(counts.totals(), before);
        let c = counts.join();
        c.sample(TimeoutOutcome::Failure);
        counts.leave(&b);
        assert_eq!(counts.totals().samples, [1, 1, 1]);
    }

    #[test]
    fn workers_count_concurrently_without_losing_any() {
        let counts = Arc::new(Counts::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    let mine = counts.join();
                    for i in 0..10_000 {
                        mine.attempt(i % 10 == 0);
                    }
                    if t % 2 == 0 {
                        counts.leave(&mine); // half of them stop, half still run
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let totals = counts.totals();
        assert_eq!((totals.attempts(), totals.retries), (40_000, 4_000));
    }

    /// The value of the series `name{labels}` on a rendered page.
    fn value(page: &str, series: &str) -> f64 {
        page.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{page}"))
    }

    #[test]
    fn published_counts_reach_the_recorder_once_each() {
        let recorder = crate::metrics::prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let counts = metrics::with_local_recorder(&recorder, || {
            let inline = crate::timeout::TimeoutPolicy::Fixed(Duration::from_secs(1));
            let inline = crate::timeout::InlineTimeout::new("t-publish", &inline).unwrap();
            Arc::new(Counts::new(
                Arc::new(AgentMetrics::new(&"a-publish".into(), &"p-publish".into())),
                Some(inline.metrics()),
            ))
        });
        let (a, b) = (counts.join(), counts.join());
        // 3 waits of zero, and more nonzero ones than a buffer holds: a full buffer refuses,
        // is published, then takes the wait.
        let mut published_early = 0;
        for i in 0..(WAITS as u64 + 10) {
            let waited = Duration::from_millis(1 + i % 3);
            if !a.wait(waited) {
                counts.publish_now();
                published_early += 1;
                assert!(a.wait(waited));
            }
            a.attempt(false);
            a.sample(TimeoutOutcome::Success);
        }
        assert_eq!(published_early, 1);
        for _ in 0..3 {
            assert!(b.wait(Duration::ZERO));
            b.attempt(true);
            b.sample(TimeoutOutcome::Timeout);
        }
        counts.inflight.store(2, Ordering::Relaxed);
        counts.publish_now();
        counts.publish_now(); // nothing new: nothing counted twice
        let page = handle.render();
        let n = WAITS as f64 + 10.0;
        assert_eq!(
            value(
                &page,
                "resilience_agent_queue_wait_seconds_count{agent=\"a-publish\"}"
            ),
            n + 3.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_agent_queue_wait_seconds_bucket{agent=\"a-publish\",le=\"0.001\"}"
            ),
            3.0 + (n / 3.0).ceil(),
            "the zeros and the 1 ms waits"
        );
        assert_eq!(
            value(
                &page,
                "resilience_retry_attempts_total{policy=\"p-publish\"}"
            ),
            n + 3.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_timeout_calls_total{timeout=\"t-publish\",outcome=\"success\"}"
            ),
            n
        );
        assert_eq!(
            value(
                &page,
                "resilience_timeout_calls_total{timeout=\"t-publish\",outcome=\"timeout\"}"
            ),
            3.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_agent_inflight_tasks{agent=\"a-publish\"}"
            ),
            2.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_retry_amplification_ratio{policy=\"p-publish\"}"
            ),
            (n + 3.0) / n
        );
        // A worker that stops publishes what it counted last; the agent's end publishes the
        // in-flight gauge's last value.
        b.attempt(false);
        assert!(b.wait(Duration::from_millis(7)));
        counts.leave(&b);
        counts.inflight.store(0, Ordering::Relaxed);
        drop(counts);
        let page = handle.render();
        assert_eq!(
            value(
                &page,
                "resilience_agent_queue_wait_seconds_count{agent=\"a-publish\"}"
            ),
            n + 4.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_retry_attempts_total{policy=\"p-publish\"}"
            ),
            n + 4.0
        );
        assert_eq!(
            value(
                &page,
                "resilience_agent_inflight_tasks{agent=\"a-publish\"}"
            ),
            0.0
        );
    }
}
