//! [`DeadlineQueue`]: every pending deadline of an actor in one ordered structure, so that the
//! actor arms a single timer for the earliest one instead of a sleeper per request (quinn's
//! `TimerTable`, tokio's timer wheel in miniature).

use std::collections::BTreeMap;
use std::fmt;

use tokio::time::Instant;

/// A handle on one deadline of a [`DeadlineQueue`], to [`cancel`](DeadlineQueue::cancel) it.
///
/// Ids are never reused: cancelling a deadline that already expired (or was cancelled) is a
/// harmless no-op, never the removal of a newer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId<I = Instant> {
    at: I,
    seq: u64,
}

impl<I: Copy> TimerId<I> {
    /// When this deadline expires.
    pub fn at(&self) -> I {
        self.at
    }
}

/// Deadlines ordered by instant (ties in insertion order), each carrying a key `K`.
///
/// The instant type `I` defaults to tokio's (which follows paused time, like the timers that
/// wake the owner); any `Ord + Copy` type works, which keeps the structure testable with plain
/// numbers.
///
/// A `BTreeMap<(Instant, seq), K>`: `insert`, `cancel` and each popped entry cost O(log n),
/// [`next_deadline`](Self::next_deadline) is O(log n), and memory is exactly the live entries
/// (no lazy-deletion tombstones to bound). The owner re-arms its one timer to
/// `next_deadline()` whenever it changes.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::DeadlineQueue;
///
/// let t0 = tokio::time::Instant::now();
/// let mut queue = DeadlineQueue::new();
/// let late = queue.insert(t0 + Duration::from_secs(2), "late");
/// queue.insert(t0 + Duration::from_secs(1), "early");
/// queue.insert(t0 + Duration::from_secs(3), "cancelled");
/// assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_secs(1)));
///
/// assert_eq!(queue.cancel(late), Some("late"));
/// let expired: Vec<_> = queue.pop_expired(t0 + Duration::from_secs(2)).collect();
/// assert_eq!(expired, ["early"]);
/// assert_eq!(queue.len(), 1);
/// ```
pub struct DeadlineQueue<K, I = Instant> {
    entries: BTreeMap<TimerId<I>, K>,
    next_seq: u64,
}

impl<K, I: Ord + Copy> DeadlineQueue<K, I> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Adds `key`, due at `at`.
    pub fn insert(&mut self, at: I, key: K) -> TimerId<I> {
        let id = TimerId {
            at,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.entries.insert(id, key);
        id
    }

    /// Removes a pending deadline, returning its key (`None` if it already expired or was
    /// cancelled).
    pub fn cancel(&mut self, id: TimerId<I>) -> Option<K> {
        self.entries.remove(&id)
    }

    /// Removes and yields, earliest first, the keys of every deadline at or before `now`.
    ///
    /// The iterator is lazy: entries not yet yielded when it is dropped stay in the queue.
    pub fn pop_expired(&mut self, now: I) -> PopExpired<'_, K, I> {
        PopExpired { queue: self, now }
    }

    /// The earliest pending deadline: the one instant the owner's timer must be armed for.
    pub fn next_deadline(&self) -> Option<I> {
        self.entries.keys().next().map(TimerId::at)
    }

    /// How many deadlines are pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no deadline is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K, I: Ord + Copy> Default for DeadlineQueue<K, I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, I: Ord + Copy + fmt::Debug> fmt::Debug for DeadlineQueue<K, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineQueue")
            .field("len", &self.entries.len())
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

/// The iterator of [`DeadlineQueue::pop_expired`].
pub struct PopExpired<'a, K, I = Instant> {
    queue: &'a mut DeadlineQueue<K, I>,
    now: I,
}

impl<K, I: Ord + Copy + fmt::Debug> fmt::Debug for PopExpired<'_, K, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopExpired")
            .field("queue", &self.queue)
            .field("now", &self.now)
            .finish()
    }
}

impl<K, I: Ord + Copy> Iterator for PopExpired<'_, K, I> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        let entry = self.queue.entries.first_entry()?;
        (entry.key().at <= self.now).then(|| entry.remove())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Instants are plain milliseconds: the queue only needs `Ord + Copy`.

    #[test]
    fn pops_in_deadline_order_with_ties_in_insertion_order() {
        let mut q = DeadlineQueue::new();
        q.insert(30u64, 'c');
        q.insert(10, 'a');
        q.insert(20, 'b');
        q.insert(10, 'A');
        assert_eq!(q.pop_expired(20).collect::<String>(), "aAb");
        assert_eq!(q.next_deadline(), Some(30));
        assert_eq!(
            q.pop_expired(29).count(),
            0,
            "nothing is due before its instant"
        );
        assert_eq!(
            q.pop_expired(30).collect::<String>(),
            "c",
            "due exactly at its instant"
        );
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_removes_once_and_never_touches_a_newer_entry() {
        let mut q = DeadlineQueue::new();
        let a = q.insert(10u64, 1);
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None);
        let b = q.insert(10, 2);
        assert_ne!(a, b, "same instant, distinct ids");
        assert_eq!(q.cancel(a), None);
        assert_eq!(q.len(), 1);
        assert_eq!(b.at(), 10);
    }

    #[test]
    fn a_dropped_iterator_leaves_the_rest_queued() {
        let mut q = DeadlineQueue::new();
        for i in 0..5u64 {
            q.insert(i, i);
        }
        assert_eq!(q.pop_expired(10).take(2).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_deadline(), Some(2));
    }

    #[test]
    fn works_with_tokio_instants() {
        let t0 = Instant::now();
        let mut q: DeadlineQueue<&str> = DeadlineQueue::new();
        q.insert(t0 + std::time::Duration::from_millis(5), "x");
        assert_eq!(q.pop_expired(t0).count(), 0);
        assert_eq!(
            q.pop_expired(t0 + std::time::Duration::from_millis(5))
                .collect::<Vec<_>>(),
            ["x"]
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Pop(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..100u64).prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            1 => (0..100u64).prop_map(Op::Pop),
        ]
    }

    proptest! {
        /// Against a sorted-list model: pops are exactly the due entries in (instant, insertion)
        /// order, cancel removes exactly its entry, and `next_deadline` is always the minimum.
        #[test]
        fn behaves_like_a_sorted_list(ops in prop::collection::vec(op(), 0..200)) {
            let mut q = DeadlineQueue::new();
            let mut model: Vec<(u64, usize)> = Vec::new(); // (instant, key); key = insertion index
            let mut ids = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(at) => {
                        let key = ids.len();
                        ids.push(q.insert(at, key));
                        model.push((at, key));
                    }
                    Op::Cancel(i) if !ids.is_empty() => {
                        let key = i % ids.len();
                        let expected = model.iter().position(|&(_, k)| k == key).map(|p| model.remove(p).1);
                        prop_assert_eq!(q.cancel(ids[key]), expected);
                    }
                    Op::Cancel(_) => {}
                    Op::Pop(now) => {
                        model.sort_unstable();
                        let due: Vec<usize> = model.iter().filter(|&&(at, _)| at <= now).map(|&(_, k)| k).collect();
                        model.retain(|&(at, _)| at > now);
                        prop_assert_eq!(q.pop_expired(now).collect::<Vec<_>>(), due);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.next_deadline(), model.iter().map(|&(at, _)| at).min());
            }
        }
    }
}
