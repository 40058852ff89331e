//! What a keyed family's actor shares with its callers without a message: a concurrent map
//! from key to the key's published snapshot, the overflow breaker's snapshot, the "saturated"
//! flag, and the outcome queue. The actor is the only writer of all but the queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use metrics::Counter;
use ractor::OutputPort;
use ractor_resilience_core::breaker::{
    BreakerState, CallOutcome, FamilySettings, KeyId, Permit, Rejected, Snapshot,
};

use super::messages::{KeyedBreakerEvent, KeyedPermit, KeyedRecord, Target};
use super::queue::{OutcomeQueue, Wake};
use crate::clock;
use crate::metrics::{BreakerCall, FamilyMetrics};

/// Hashes keys for the map: foldhash, seeded per process (keys come from traffic).
pub(super) type KeyHasher = foldhash::fast::RandomState;

/// The rejection a stopped family answers with: as if forced open.
pub(super) const STOPPED: Rejected = Rejected {
    state: BreakerState::ForcedOpen,
    retry_after: None,
};

/// One held key in the map: its id and its published state.
#[derive(Debug)]
pub(super) struct Published {
    /// Which key this is (fixed for the entry's life: an evicted key's entry is removed).
    pub(super) id: KeyId,
    pub(super) state: PublishedState,
}

/// One breaker's published state: what callers admit from.
#[derive(Debug)]
pub(super) struct PublishedState {
    /// `Snapshot::to_bits` of the breaker.
    snapshot: AtomicU64,
    /// The end of the open period in nanoseconds after the family's `base`, while Open.
    /// Written before the snapshot.
    open_until: AtomicU64,
    /// The key's `outcome="rejected"` counter while it has series of its own; `None`: the
    /// family's `key="other"` one.
    pub(super) rejected: Option<Counter>,
}

impl PublishedState {
    pub(super) fn new(snapshot: Snapshot, rejected: Option<Counter>) -> Self {
        PublishedState {
            snapshot: AtomicU64::new(snapshot.to_bits()),
            open_until: AtomicU64::new(0),
            rejected,
        }
    }
}

pub(super) struct FamilyShared {
    pub(super) name: Arc<str>,
    pub(super) settings: FamilySettings,
    /// Every held key's published state. Written by the actor only (insert on creation,
    /// remove on eviction, atomics on transitions).
    pub(super) keys: DashMap<Arc<str>, Published, KeyHasher>,
    /// The overflow breaker's published state (its `id` is unused).
    overflow: PublishedState,
    /// New keys go to the overflow breaker: the family is full and no key is idle.
    saturated: AtomicBool,
    stopped: AtomicBool,
    /// The family's spawn: the origin of `open_until` and of event times.
    pub(super) base: Instant,
    pub(super) queue: OutcomeQueue<KeyedRecord>,
    events: OnceLock<OutputPort<KeyedBreakerEvent>>,
    pub(super) metrics: FamilyMetrics,
}

impl std::fmt::Debug for FamilyShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyShared")
            .field("name", &self.name)
            .field("keys", &self.keys.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl FamilyShared {
    pub(super) fn new(
        name: Arc<str>,
        settings: FamilySettings,
        overflow: Snapshot,
        capacity: usize,
    ) -> Self {
        let metrics = FamilyMetrics::new(&name);
        let overflow_rejected = Some(metrics.overflow.rejected());
        FamilyShared {
            keys: DashMap::with_hasher(KeyHasher::default()),
            overflow: PublishedState::new(overflow, overflow_rejected),
            saturated: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            base: clock::now(),
            queue: OutcomeQueue::new(capacity),
            events: OnceLock::new(),
            metrics,
            name,
            settings,
        }
    }

    // ===== callers =====

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Decides for `key` from the published state alone, or `None` when only the actor can
    /// (HalfOpen, or an Open period that has ended). Rejections are counted.
    pub(super) fn admit(&self, key: &str) -> Option<Result<KeyedPermit, Rejected>> {
        if self.is_stopped() {
            self.metrics.other.call(BreakerCall::Rejected);
            return Some(Err(STOPPED));
        }
        if let Some(entry) = self.keys.get(key) {
            let id = entry.id;
            return self.decide(&entry.state).map(|d| {
                d.map(|permit| KeyedPermit {
                    target: Target::Key(id),
                    permit,
                })
            });
        }
        if self.saturated.load(Ordering::Acquire) {
            return self.decide(&self.overflow).map(|d| {
                d.map(|permit| KeyedPermit {
                    target: Target::Overflow,
                    permit,
                })
            });
        }
        Some(Ok(fresh_permit(Arc::from(key))))
    }

    /// The published state of `key` (Closed when it is not held and the family has room).
    pub(super) fn state(&self, key: &str) -> BreakerState {
        let p = self.keys.get(key);
        let published = match &p {
            Some(entry) => &entry.state,
            None if self.saturated.load(Ordering::Acquire) => &self.overflow,
            None => return BreakerState::Closed,
        };
        snapshot(published).state()
    }

    pub(super) fn is_saturated(&self) -> bool {
        self.saturated.load(Ordering::Acquire)
    }

    fn decide(&self, p: &PublishedState) -> Option<Result<Permit, Rejected>> {
        let bits = p.snapshot.load(Ordering::Acquire);
        let snap = Snapshot::from_bits(bits)?;
        if let Some(permit) = snap.admit() {
            return Some(Ok(permit));
        }
        let rejected = match snap.state() {
            BreakerState::ForcedOpen => Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None,
            },
            BreakerState::Open => {
                let until = p.open_until.load(Ordering::Acquire);
                if self.nanos_since_base(clock::now()) >= until
                    || p.snapshot.load(Ordering::Acquire) != bits
                {
                    return None; // over, or changing under us: the actor decides
                }
                Rejected {
                    state: BreakerState::Open,
                    retry_after: Some(self.base + Duration::from_nanos(until)),
                }
            }
            _ => return None,
        };
        match &p.rejected {
            Some(counter) => counter.increment(1),
            None => self.metrics.other.call(BreakerCall::Rejected),
        }
        Some(Err(rejected))
    }

    /// Queues an outcome; gives it back when the queue is full.
    pub(super) fn push(&self, record: KeyedRecord) -> Result<Wake, KeyedRecord> {
        let urgent = record.outcome == CallOutcome::Failure || record.permit.is_probe();
        self.queue.push(record, urgent)
    }

    // ===== the actor =====

    /// Publishes a breaker's new state: the open period's end first, so a caller that sees
    /// `Open` reads this period's end (or a later one).
    pub(super) fn publish(
        &self,
        p: &PublishedState,
        snapshot: Snapshot,
        open_until: Option<Instant>,
    ) {
        if let Some(until) = open_until {
            p.open_until
                .store(self.nanos_since_base(until), Ordering::Release);
        }
        p.snapshot.store(snapshot.to_bits(), Ordering::Release);
    }

    pub(super) fn overflow(&self) -> &PublishedState {
        &self.overflow
    }

    pub(super) fn set_saturated(&self, saturated: bool) {
        if self.saturated.load(Ordering::Relaxed) != saturated {
            self.saturated.store(saturated, Ordering::Release);
        }
    }

    pub(super) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    pub(super) fn events(&self) -> &OutputPort<KeyedBreakerEvent> {
        self.events.get_or_init(OutputPort::default)
    }

    pub(super) fn has_subscribers(&self) -> Option<&OutputPort<KeyedBreakerEvent>> {
        self.events.get()
    }

    fn nanos_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

fn snapshot(p: &PublishedState) -> Snapshot {
    Snapshot::from_bits(p.snapshot.load(Ordering::Acquire))
        .expect("only the actor writes snapshots, always with Snapshot::to_bits")
}

/// The permit of a key that is not held: admitted as a fresh Closed breaker admits (generation
/// 0); the actor creates the key when the outcome arrives.
pub(super) fn fresh_permit(key: Arc<str>) -> KeyedPermit {
    let permit = Snapshot::from_bits(0)
        .and_then(Snapshot::admit)
        .expect("generation 0, Closed, admits");
    KeyedPermit {
        target: Target::New(key),
        permit,
    }
}
