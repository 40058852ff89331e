//! What a keyed family's actor shares with its callers without a message: a concurrent map
//! from key to the key's published snapshot, the overflow breaker's snapshot, the "saturated"
//! flag, and the outcome queue. The actor is the only writer of all but the queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use metrics::Counter;
use ractor::OutputPort;
use ractor_resilience_core::breaker::{
    BreakerState, FamilySettings, KeyId, Permit, Rejected, Snapshot,
};

use super::key::KeyBuf;
use super::messages::{KeyedBreakerEvent, KeyedPermit, KeyedRecord, Target};
use super::queue::OutcomeQueue;
use crate::clock;
use crate::metrics::{BreakerCall, FamilyMetrics};

/// Hashes keys for the map: foldhash, seeded per process (keys come from traffic).
pub(super) type KeyHasher = foldhash::fast::RandomState;

/// The rejection a stopped family answers with: as if forced open.
pub(super) const STOPPED: Rejected = Rejected {
    state: BreakerState::ForcedOpen,
    retry_after: None,
};

/// A held key's entry in the map: its id and its published snapshot, in one bucket (one cache
/// miss per admission).
#[derive(Debug)]
pub(super) struct Published {
    /// Which key this is (fixed for the entry's life: an evicted key's entry is removed).
    pub(super) id: KeyId,
    /// `Snapshot::to_bits` of the key's breaker.
    snapshot: AtomicU64,
}

impl Published {
    pub(super) fn new(id: KeyId, snapshot: Snapshot) -> Self {
        Published {
            id,
            snapshot: AtomicU64::new(snapshot.to_bits()),
        }
    }
}

/// Slots per segment of [`OpenUntil`].
const SEGMENT: usize = 1024;

/// The end of each slot's current open period, in nanoseconds after the family's `base`: read
/// only when a key's snapshot says Open, so it lives beside the map rather than in it. Segments
/// are allocated when a slot first opens and never move: callers index them lock-free.
#[derive(Debug)]
pub(super) struct OpenUntil {
    segments: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl OpenUntil {
    fn new(max_keys: u32) -> Self {
        let n = (max_keys as usize).div_ceil(SEGMENT);
        OpenUntil {
            segments: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Slot `index`'s word, allocating its segment (the actor, before publishing Open).
    fn slot(&self, index: u32) -> &AtomicU64 {
        let index = index as usize;
        let segment = self.segments[index / SEGMENT]
            .get_or_init(|| (0..SEGMENT).map(|_| AtomicU64::new(0)).collect());
        &segment[index % SEGMENT]
    }

    /// Slot `index`'s word if its segment exists (it does once the slot has opened).
    fn get(&self, index: u32) -> Option<&AtomicU64> {
        let index = index as usize;
        Some(&self.segments.get(index / SEGMENT)?.get()?[index % SEGMENT])
    }
}

pub(super) struct FamilyShared {
    pub(super) name: Arc<str>,
    /// The settings in force (only the actor writes them, when it is reconfigured).
    pub(super) settings: std::sync::RwLock<FamilySettings>,
    /// Every held key's id and snapshot. Written by the actor only (insert on creation, remove
    /// on eviction before the slot is reused, the snapshot on transitions).
    pub(super) keys: DashMap<KeyBuf, Published, KeyHasher>,
    /// Every slot's open period end (written by the actor only).
    open_until: OpenUntil,
    /// The `outcome="rejected"` counters of the keys with series of their own, by slot; the
    /// others count under `key="other"`. Read only when a call is rejected.
    pub(super) rejected: RwLock<HashMap<u32, Counter>>,
    /// The overflow breaker's snapshot and open period end.
    overflow: AtomicU64,
    overflow_until: AtomicU64,
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
        FamilyShared {
            keys: DashMap::with_hasher(KeyHasher::default()),
            open_until: OpenUntil::new(settings.max_keys()),
            rejected: RwLock::new(HashMap::new()),
            overflow: AtomicU64::new(overflow.to_bits()),
            overflow_until: AtomicU64::new(0),
            saturated: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            base: clock::now(),
            queue: OutcomeQueue::new(capacity),
            events: OnceLock::new(),
            metrics,
            name,
            settings: std::sync::RwLock::new(settings),
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
        if let Some(entry) = self.keys.get(key.as_bytes()) {
            // Read while the entry is held: the slot cannot be reused for another key before
            // the actor has removed this entry.
            let id = entry.id;
            let until = || self.open_until.get(id.index());
            return self
                .decide(&entry.snapshot, until, Some(id.index()))
                .map(|d| {
                    d.map(|(permit, from)| KeyedPermit {
                        target: Target::Key(id),
                        permit,
                        from,
                    })
                });
        }
        if self.saturated.load(Ordering::Acquire) {
            let until = || Some(&self.overflow_until);
            return self.decide(&self.overflow, until, None).map(|d| {
                d.map(|(permit, from)| KeyedPermit {
                    target: Target::Overflow,
                    permit,
                    from,
                })
            });
        }
        Some(Ok(fresh_permit(KeyBuf::new(key))))
    }

    /// The published state of `key` (Closed when it is not held and the family has room).
    pub(super) fn state(&self, key: &str) -> BreakerState {
        let entry = self.keys.get(key.as_bytes());
        let word = match entry.as_deref() {
            Some(published) => &published.snapshot,
            None if self.saturated.load(Ordering::Acquire) => &self.overflow,
            None => return BreakerState::Closed,
        };
        snapshot(word).state()
    }

    pub(super) fn is_saturated(&self) -> bool {
        self.saturated.load(Ordering::Acquire)
    }

    /// Decides from a breaker's snapshot word (and its open period end, read only if Open);
    /// `slot`: the key's (`None`: the overflow breaker), to count a rejection.
    fn decide<'a>(
        &self,
        word: &AtomicU64,
        open_until: impl FnOnce() -> Option<&'a AtomicU64>,
        slot: Option<u32>,
    ) -> Option<Result<(Permit, u64), Rejected>> {
        let bits = word.load(Ordering::Acquire);
        let snap = Snapshot::from_bits(bits)?;
        if let Some(permit) = snap.admit() {
            return Some(Ok((permit, bits)));
        }
        let rejected = match snap.state() {
            BreakerState::ForcedOpen => Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None,
            },
            BreakerState::Open => {
                let until = open_until()?.load(Ordering::Acquire);
                if self.nanos_since_base(clock::now()) >= until
                    || word.load(Ordering::Acquire) != bits
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
        match slot {
            None => self.metrics.overflow.call(BreakerCall::Rejected),
            Some(slot) => {
                let labelled = self.rejected.read().unwrap_or_else(|e| e.into_inner());
                match labelled.get(&slot) {
                    Some(counter) => counter.increment(1),
                    None => self.metrics.other.call(BreakerCall::Rejected),
                }
            }
        }
        Some(Err(rejected))
    }

    // ===== the actor =====

    /// Publishes a held key's new state: the open period's end first, so a caller that sees
    /// `Open` reads this period's end (or a later one).
    pub(super) fn publish_key(
        &self,
        key: &KeyBuf,
        slot: u32,
        snapshot: Snapshot,
        open_until: Option<Instant>,
    ) {
        if let Some(until) = open_until {
            self.open_until
                .slot(slot)
                .store(self.nanos_since_base(until), Ordering::Release);
        }
        if let Some(entry) = self.keys.get(key.as_bytes()) {
            entry.snapshot.store(snapshot.to_bits(), Ordering::Release);
        }
    }

    /// [`publish_key`](Self::publish_key) for the overflow breaker.
    pub(super) fn publish_overflow(&self, snapshot: Snapshot, open_until: Option<Instant>) {
        if let Some(until) = open_until {
            self.overflow_until
                .store(self.nanos_since_base(until), Ordering::Release);
        }
        self.overflow.store(snapshot.to_bits(), Ordering::Release);
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

fn snapshot(word: &AtomicU64) -> Snapshot {
    Snapshot::from_bits(word.load(Ordering::Acquire))
        .expect("only the actor writes snapshots, always with Snapshot::to_bits")
}

/// The permit of a key that is not held: admitted as a fresh Closed breaker admits (generation
/// 0); the actor creates the key when the outcome arrives.
pub(super) fn fresh_permit(key: KeyBuf) -> KeyedPermit {
    let permit = Snapshot::from_bits(0)
        .and_then(Snapshot::admit)
        .expect("generation 0, Closed, admits");
    KeyedPermit {
        target: Target::New(key),
        permit,
        from: 0,
    }
}
