//! [`OutcomeQueue`]: the bounded lock-free queue that callers push outcomes onto and the owning
//! actor drains in batches, with the two flags that schedule its draining (the same protocol
//! as the single breaker's, DESIGN §2: a tick after the first outcome of a batch, a doorbell at
//! once for failures and probe outcomes).
//!
//! **No outcome is stranded.** A caller pushes, then (after a `SeqCst` fence) reads a flag; the
//! actor clears that flag, then (after a `SeqCst` fence) drains. Whichever fence comes first in
//! the single total order, either the actor's drain sees the outcome or the caller sees the flag
//! cleared and schedules another drain.

use std::sync::atomic::{AtomicBool, Ordering, fence};

use super::ring::{Packed, Ring};
use crate::breaker::DrainCause;
use crate::lazy_queue::LazyQueue;

/// Who must be woken after an outcome was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// A drain that will see the outcome is already scheduled.
    Nobody,
    /// Ring the doorbell: ask for an immediate drain.
    Doorbell,
    /// Ask the actor to schedule a tick.
    Tick,
}

/// Two lanes, one set of flags: the fast [`Ring`] of packed outcomes of held keys, and a general
/// queue for the others (new keys, the overflow breaker, probes).
#[derive(Debug)]
pub(super) struct OutcomeQueue<T> {
    queue: LazyQueue<T>,
    ring: Ring,
    /// A tick drain is scheduled (or about to be) and has not started yet.
    tick_pending: AtomicBool,
    /// A doorbell drain is in the mailbox and has not started yet.
    bell_pending: AtomicBool,
}

impl<T> OutcomeQueue<T> {
    /// A ring of `capacity` (rounded up to a power of two) and a general lane of at most
    /// [`GENERAL_LANE`] slots.
    pub(super) fn new(capacity: usize) -> Self {
        OutcomeQueue {
            queue: LazyQueue::new(capacity.min(GENERAL_LANE)),
            ring: Ring::new(capacity),
            tick_pending: AtomicBool::new(false),
            bell_pending: AtomicBool::new(false),
        }
    }

    /// Queues `value`; gives it back when the queue is full. `urgent` outcomes (failures,
    /// probes) ask for a drain at once.
    pub(super) fn push(&self, value: T, urgent: bool) -> Result<Wake, T> {
        self.queue.push(value)?;
        Ok(self.wake(urgent))
    }

    /// [`push`](Self::push) into the fast lane.
    pub(super) fn push_fast(&self, value: Packed, urgent: bool) -> Result<Wake, Packed> {
        self.ring.push(value)?;
        Ok(self.wake(urgent))
    }

    /// Who to wake after a push.
    fn wake(&self, urgent: bool) -> Wake {
        fence(Ordering::SeqCst); // pairs with the fence in `begin_drain`
        let flag = if urgent {
            &self.bell_pending
        } else {
            &self.tick_pending
        };
        // Read before swapping: under load the flag is set and the line stays shared.
        if flag.load(Ordering::Relaxed) || flag.swap(true, Ordering::AcqRel) {
            return Wake::Nobody;
        }
        if urgent { Wake::Doorbell } else { Wake::Tick }
    }

    /// Clears the flag of the drain that starts, so that any outcome queued from now on
    /// schedules another drain. Call before popping.
    pub(super) fn begin_drain(&self, cause: DrainCause) {
        match cause {
            DrainCause::Tick => self.tick_pending.store(false, Ordering::Relaxed),
            DrainCause::Doorbell => self.bell_pending.store(false, Ordering::Relaxed),
        }
        fence(Ordering::SeqCst); // pairs with the fence in `push`
    }

    /// Marks a doorbell drain as pending; `false` if one already was.
    pub(super) fn ring(&self) -> bool {
        !self.bell_pending.swap(true, Ordering::AcqRel)
    }

    pub(super) fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    pub(super) fn pop_fast(&self) -> Option<Packed> {
        self.ring.pop()
    }

    /// Outcomes queued in both lanes.
    pub(super) fn len(&self) -> usize {
        self.queue.len() + self.ring.len()
    }

    /// The general lane's capacity.
    pub(super) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The fast lane's capacity.
    pub(super) fn fast_capacity(&self) -> usize {
        self.ring.capacity()
    }
}

/// The general lane's size: it takes the outcomes the fast lane cannot (new keys, the overflow
/// breaker, probes), a small share of a family's traffic.
const GENERAL_LANE: usize = 256;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    enum Msg {
        Drain(DrainCause),
        /// The queue was full: the value travels in the message.
        Value,
        ProducerDone,
    }

    /// The same with both lanes: producers alternate between the fast ring and the general
    /// lane, and the consumer drains both on each wake-up.
    #[test]
    fn no_record_is_stranded_in_either_lane() {
        use super::super::ring::Packed;
        use ractor_resilience_core::breaker::{CallOutcome, KeyId};
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        let queue = Arc::new(OutcomeQueue::<usize>::new(8));
        let (tx, rx) = mpsc::channel();
        for p in 0..PRODUCERS {
            let (queue, tx) = (queue.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..EACH {
                    let urgent = (i + p) % 7 == 0;
                    let pushed = if i % 3 == 0 {
                        queue.push(i, urgent).map_err(|_| ())
                    } else {
                        let id = KeyId::from_parts(p as u32, i as u32);
                        let packed = Packed::new(id, 0, CallOutcome::Success, Duration::ZERO);
                        queue.push_fast(packed, urgent).map_err(|_| ())
                    };
                    match pushed {
                        Ok(Wake::Nobody) => {}
                        Ok(Wake::Doorbell) => tx.send(Msg::Drain(DrainCause::Doorbell)).unwrap(),
                        Ok(Wake::Tick) => tx.send(Msg::Drain(DrainCause::Tick)).unwrap(),
                        Err(()) => tx.send(Msg::Value).unwrap(),
                    }
                }
                tx.send(Msg::ProducerDone).unwrap();
            });
        }
        drop(tx);
        let (mut taken, mut done) = (0, 0);
        for msg in rx {
            match msg {
                Msg::Drain(cause) => {
                    queue.begin_drain(cause);
                    while queue.pop().is_some() {
                        taken += 1;
                    }
                    while queue.pop_fast().is_some() {
                        taken += 1;
                    }
                }
                Msg::Value => taken += 1,
                Msg::ProducerDone => done += 1,
            }
        }
        assert_eq!(done, PRODUCERS);
        assert!(
            queue.pop().is_none() && queue.pop_fast().is_none(),
            "stranded"
        );
        assert_eq!(taken, PRODUCERS * EACH);
    }

    /// The flag protocol on real threads: once every wake-up has been handled, every value has
    /// been taken and nothing is left in the queue.
    #[test]
    fn no_value_is_stranded_between_producers_and_the_drainer() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        let queue = Arc::new(OutcomeQueue::new(8));
        let (tx, rx) = mpsc::channel();
        for p in 0..PRODUCERS {
            let (queue, tx) = (queue.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..EACH {
                    match queue.push(i, (i + p) % 7 == 0) {
                        Ok(Wake::Nobody) => {}
                        Ok(Wake::Doorbell) => tx.send(Msg::Drain(DrainCause::Doorbell)).unwrap(),
                        Ok(Wake::Tick) => tx.send(Msg::Drain(DrainCause::Tick)).unwrap(),
                        Err(_value) => tx.send(Msg::Value).unwrap(),
                    }
                }
                tx.send(Msg::ProducerDone).unwrap();
            });
        }
        drop(tx);
        let (mut taken, mut done) = (0, 0);
        for msg in rx {
            match msg {
                Msg::Drain(cause) => {
                    queue.begin_drain(cause);
                    while queue.pop().is_some() {
                        taken += 1;
                    }
                }
                Msg::Value => taken += 1,
                Msg::ProducerDone => done += 1,
            }
        }
        assert_eq!(done, PRODUCERS);
        assert!(queue.pop().is_none(), "a value was stranded in the queue");
        assert_eq!(taken, PRODUCERS * EACH);
    }
}
