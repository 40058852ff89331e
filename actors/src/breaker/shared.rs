//! What a breaker actor shares with its callers without a message (DESIGN §2): the published
//! snapshot they admit from, the end of the open period they reject with, and the lock-free
//! outcome queue with the two flags that schedule its draining.
//!
//! The actor is the only writer of the snapshot and the open period end. Callers push outcomes;
//! the actor pops them.
//!
//! **No outcome is stranded.** A caller pushes, then (after a `SeqCst` fence) reads a flag; the
//! actor clears that flag, then (after a `SeqCst` fence) drains. Whichever fence comes first in
//! the single total order, either the actor's drain sees the outcome or the caller sees the flag
//! cleared and schedules another drain.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use ractor::OutputPort;
use ractor_resilience_core::breaker::{
    BreakerState, CallOutcome, Permit, Rejected, Snapshot, Transition,
};

use super::messages::{BreakerEvent, CallRecord, DrainCause};
use crate::clock;
use crate::lazy_queue::LazyQueue;
use crate::metrics::BreakerMetrics;

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

pub(super) struct Shared {
    pub(super) name: std::sync::Arc<str>,
    /// `Snapshot::to_bits` of the actor's breaker.
    snapshot: AtomicU64,
    /// The end of the current open period, in nanoseconds after `base` (meaningful while the
    /// snapshot says Open). Written before the snapshot.
    open_until: AtomicU64,
    /// The actor has stopped: nobody will answer or drain any more.
    stopped: AtomicBool,
    /// The instant the breaker was spawned: the origin of `open_until` and of event times.
    base: Instant,
    /// Allocated by the first outcome: a breaker that has never been called holds no slots.
    queue: LazyQueue<CallRecord>,
    /// A tick drain is scheduled (or about to be) and has not started yet.
    tick_pending: AtomicBool,
    /// A doorbell drain is in the mailbox and has not started yet.
    bell_pending: AtomicBool,
    /// Created by the first subscriber: with none, transitions go to metrics, logs and the hook.
    events: OnceLock<OutputPort<BreakerEvent>>,
    pub(super) metrics: BreakerMetrics,
    /// The settings in force (what an operator reads back); only the actor writes them, when
    /// it is reconfigured.
    pub(super) settings: std::sync::Mutex<ractor_resilience_core::breaker::BreakerSettings>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("snapshot", &self.snapshot())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

/// The rejection a stopped breaker answers with: nothing will let calls through again, as if
/// forced open.
pub(super) const STOPPED: Rejected = Rejected {
    state: BreakerState::ForcedOpen,
    retry_after: None,
};

impl Shared {
    pub(super) fn new(
        name: std::sync::Arc<str>,
        initial: Snapshot,
        capacity: usize,
        metrics: BreakerMetrics,
        settings: ractor_resilience_core::breaker::BreakerSettings,
    ) -> Self {
        Shared {
            settings: std::sync::Mutex::new(settings),
            name,
            snapshot: AtomicU64::new(initial.to_bits()),
            open_until: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            base: clock::now(),
            queue: LazyQueue::new(capacity),
            tick_pending: AtomicBool::new(false),
            bell_pending: AtomicBool::new(false),
            events: OnceLock::new(),
            metrics,
        }
    }

    // ===== callers =====

    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot::from_bits(self.snapshot.load(Ordering::Acquire))
            .expect("only the actor writes the snapshot, always with Snapshot::to_bits")
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Decides from the published state alone, or `None` when only the actor can decide
    /// (HalfOpen, or an open period that has ended).
    pub(super) fn admit(&self) -> Option<Result<Permit, Rejected>> {
        if self.is_stopped() {
            return Some(Err(STOPPED));
        }
        let bits = self.snapshot.load(Ordering::Acquire);
        let snapshot = Snapshot::from_bits(bits)?;
        if let Some(permit) = snapshot.admit() {
            return Some(Ok(permit));
        }
        match snapshot.state() {
            BreakerState::ForcedOpen => Some(Err(Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None,
            })),
            BreakerState::Open => {
                let until = self.open_until.load(Ordering::Acquire);
                if self.nanos_since_base(clock::now()) >= until
                    || self.snapshot.load(Ordering::Acquire) != bits
                {
                    return None; // over, or changing under us: the actor decides
                }
                Some(Err(Rejected {
                    state: BreakerState::Open,
                    retry_after: Some(self.base + Duration::from_nanos(until)),
                }))
            }
            _ => None,
        }
    }

    /// Whether the published state rejects now, without making a permit: `None` while Closed,
    /// Disabled or HalfOpen (the common case is one load and a mask).
    pub(super) fn rejects(&self) -> Option<Rejected> {
        let bits = self.snapshot.load(Ordering::Acquire);
        let state = Snapshot::from_bits(bits).map(Snapshot::state);
        if matches!(
            state,
            Some(BreakerState::Closed | BreakerState::Disabled | BreakerState::HalfOpen)
        ) && !self.is_stopped()
        {
            return None;
        }
        match self.admit() {
            Some(Err(rejected)) => Some(rejected),
            _ => None,
        }
    }

    /// The end of the published open period, while the snapshot says Open.
    pub(super) fn open_until(&self) -> Option<Instant> {
        (self.snapshot().state() == BreakerState::Open)
            .then(|| self.base + Duration::from_nanos(self.open_until.load(Ordering::Acquire)))
    }

    /// Queues an outcome; gives it back when the queue is full or not allocated yet (the caller
    /// then sends it as a message).
    pub(super) fn push(&self, record: CallRecord) -> Result<Wake, CallRecord> {
        let urgent = record.outcome == CallOutcome::Failure || record.permit.is_probe();
        self.queue.push_if_allocated(record)?;
        fence(Ordering::SeqCst); // pairs with the fence in `begin_drain`
        let flag = if urgent {
            &self.bell_pending
        } else {
            &self.tick_pending
        };
        // Read before swapping: under load the flag is set and the line stays shared.
        if flag.load(Ordering::Relaxed) || flag.swap(true, Ordering::AcqRel) {
            return Ok(Wake::Nobody);
        }
        Ok(if urgent { Wake::Doorbell } else { Wake::Tick })
    }

    // ===== the actor =====

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

    pub(super) fn pop(&self) -> Option<CallRecord> {
        self.queue.pop()
    }

    /// Allocates the outcome queue (the actor decides when: see `BreakerOptions::queue_after`).
    pub(super) fn allocate_queue(&self) {
        self.queue.allocate();
    }

    /// Whether the outcome queue is allocated.
    pub(super) fn queue_allocated(&self) -> bool {
        self.queue.is_allocated()
    }

    pub(super) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The transitions' output port, created on first use.
    pub(super) fn events(&self) -> &OutputPort<BreakerEvent> {
        self.events.get_or_init(OutputPort::default)
    }

    /// Sends `event` to the subscribers, if there are any.
    pub(super) fn send_event(&self, t: &Transition) {
        if let Some(port) = self.events.get() {
            port.send(self.event(t));
        }
    }

    /// Publishes a new state: the open period's end first, so a caller that sees `Open` reads
    /// this period's end (or a later one).
    pub(super) fn publish(&self, snapshot: Snapshot, open_until: Option<Instant>) {
        if let Some(until) = open_until {
            self.open_until
                .store(self.nanos_since_base(until), Ordering::Release);
        }
        self.snapshot.store(snapshot.to_bits(), Ordering::Release);
    }

    pub(super) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    pub(super) fn event(&self, t: &Transition) -> BreakerEvent {
        BreakerEvent {
            breaker: self.name.to_string(),
            from: t.from,
            to: t.to,
            reason: t.reason,
            generation: t.generation,
            at: t.at.saturating_duration_since(self.base),
            open_for: t.until.map(|until| until.saturating_duration_since(t.at)),
        }
    }

    fn nanos_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;

    use ractor_resilience_core::breaker::{BreakerSettings, CircuitBreaker};

    use super::*;

    enum Msg {
        Drain(DrainCause),
        /// The queue was full: the record travels in the message (the actor applies it).
        Record,
        ProducerDone,
    }

    /// The flag protocol on real threads: producers push (falling back to a message when the
    /// queue is full) and wake the "actor" only as `push` says; once every wake-up has been
    /// handled, every outcome has been taken and nothing is left in the queue.
    #[test]
    fn no_outcome_is_stranded_between_producers_and_the_drainer() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        let core = CircuitBreaker::new(BreakerSettings::default());
        let metrics = BreakerMetrics::new(&Arc::from("t"));
        let shared = Arc::new(Shared::new(
            "t".into(),
            core.snapshot(),
            8,
            metrics,
            BreakerSettings::default(),
        ));
        shared.allocate_queue();
        let (tx, rx) = mpsc::channel();
        for p in 0..PRODUCERS {
            let (shared, tx) = (shared.clone(), tx.clone());
            let snapshot = core.snapshot();
            thread::spawn(move || {
                for i in 0..EACH {
                    let outcome = if (i + p) % 7 == 0 {
                        CallOutcome::Failure
                    } else {
                        CallOutcome::Success
                    };
                    let record = CallRecord {
                        permit: snapshot.admit().unwrap(),
                        outcome,
                        duration: Duration::ZERO,
                    };
                    match shared.push(record) {
                        Ok(Wake::Nobody) => {}
                        Ok(Wake::Doorbell) => tx.send(Msg::Drain(DrainCause::Doorbell)).unwrap(),
                        Ok(Wake::Tick) => tx.send(Msg::Drain(DrainCause::Tick)).unwrap(),
                        Err(_record) => tx.send(Msg::Record).unwrap(),
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
                    shared.begin_drain(cause);
                    while shared.pop().is_some() {
                        taken += 1;
                    }
                }
                Msg::Record => taken += 1,
                Msg::ProducerDone => done += 1,
            }
        }
        assert_eq!(done, PRODUCERS);
        assert!(
            shared.pop().is_none(),
            "an outcome was stranded in the queue"
        );
        assert_eq!(taken, PRODUCERS * EACH);
    }
}
