//! [`Counts`]: an agent's attempt counters, kept per worker. Each worker counts its own
//! attempts in a set only it writes, so counting is a load and a store (no read-modify-write
//! on the happy path: on two cores each one costs as much as 8 ns of a 650 ns call); a reader
//! sums the sets under a lock, and a worker that stops folds its set into the agent's total
//! first, so that nothing it counted is lost or counted twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;

use crate::metrics::TimeoutOutcome;

/// One worker's counts. Written only by its worker (one task): `bump` is not atomic as a
/// whole, and needs not be. Kept on cache lines of their own (`CachePadded`): written on every
/// attempt, they must share no line with what another thread writes.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounts {
    attempts: AtomicU64,
    retries: AtomicU64,
    /// Attempts by timeout outcome (success, failure, timeout), for a policy the agent keeps in
    /// place (an actor-kept one counts its own).
    samples: [AtomicU64; 3],
}

impl WorkerCounts {
    fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// An attempt starts (`retry`: not the task's first).
    pub(crate) fn attempt(&self, retry: bool) {
        Self::bump(&self.attempts);
        if retry {
            Self::bump(&self.retries);
        }
    }

    /// An attempt ended with a sample for the timeout policy.
    pub(crate) fn sample(&self, outcome: TimeoutOutcome) {
        Self::bump(&self.samples[outcome as usize]);
    }

    fn read(&self) -> Totals {
        Totals {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            samples: [0, 1, 2].map(|i| self.samples[i].load(Ordering::Relaxed)),
        }
    }
}

/// What an agent's workers counted, together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) attempts: u64,
    pub(crate) retries: u64,
    /// By timeout outcome: success, failure, timeout.
    pub(crate) samples: [u64; 3],
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.attempts += other.attempts;
        self.retries += other.retries;
        for (mine, theirs) in self.samples.iter_mut().zip(other.samples) {
            *mine += theirs;
        }
    }
}

/// The counts of every worker an agent has had.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: Vec<Arc<CachePadded<WorkerCounts>>>,
    /// What stopped workers counted.
    gone: Totals,
}

impl Counts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's set.
    pub(crate) fn join(&self) -> Arc<CachePadded<WorkerCounts>> {
        let counts = Arc::new(CachePadded::new(WorkerCounts::default()));
        self.lock().live.push(counts.clone());
        counts
    }

    /// A worker stops: its counts join the total (by its own task, after its last write).
    pub(crate) fn leave(&self, counts: &Arc<CachePadded<WorkerCounts>>) {
        let mut inner = self.lock();
        if let Some(i) = inner.live.iter().position(|c| Arc::ptr_eq(c, counts)) {
            inner.live.swap_remove(i);
            inner.gone += counts.read();
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
                attempts: 3,
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
        assert_eq!((totals.attempts, totals.retries), (40_000, 4_000));
    }
}
