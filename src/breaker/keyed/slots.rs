//! The family's storage: a slab of slots addressed by [`KeyId`], and the intrusive list of idle
//! keys through them, oldest use first (so both idle eviction and `max_keys` find their victim
//! at the head, in O(1)).

use std::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker, CircuitState};

/// No slot (the end of a list).
pub(super) const NIL: u32 = u32::MAX;

/// Names one key's breaker in a [`BreakerFamily`](super::BreakerFamily): a slot, and the
/// incarnation of that slot (slots are reused after an eviction; an id of an evicted key never
/// names its successor).
///
/// ```
/// use std::time::Instant;
/// use ractor_resilience_core::breaker::{BreakerFamily, BreakerSettings, FamilySettings, Insert};
///
/// let mut family = BreakerFamily::new(FamilySettings::new(BreakerSettings::default()), 0);
/// let Insert::Inserted { id, .. } = family.insert("gpt-4o", Instant::now()) else { unreachable!() };
/// assert_eq!(family.data(id), Some(&"gpt-4o"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    pub(super) index: u32,
    pub(super) tag: u32,
}

impl KeyId {
    /// The slot: stable while the key is held, reused after it is evicted.
    pub fn index(self) -> u32 {
        self.index
    }

    /// The slot's incarnation.
    pub fn tag(self) -> u32 {
        self.tag
    }
}

/// One held key.
#[derive(Debug)]
pub(super) struct Entry<T> {
    pub(super) breaker: CircuitBreaker,
    pub(super) data: T,
    /// The last use: an outcome, an admission by the family, a command, a state change.
    pub(super) last_active: Instant,
    /// Neighbours in the idle list, while `linked`.
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) linked: bool,
    /// Recent counted failures (halved at each ranking).
    pub(super) score: u32,
}

#[derive(Debug)]
pub(super) struct Slot<T> {
    pub(super) tag: u32,
    pub(super) entry: Option<Entry<T>>,
}

/// Whether a breaker may be evicted: Closed, or HalfOpen with no probe out (nobody has asked
/// for the key since its open period ended). Open keys become HalfOpen by themselves;
/// ForcedOpen and Disabled keys stay until a command.
pub(super) fn evictable(breaker: &CircuitBreaker) -> bool {
    match breaker.state() {
        CircuitState::Closed { .. } => true,
        CircuitState::HalfOpen { admitted, .. } => *admitted == 0,
        _ => false,
    }
}

/// The idle list: evictable keys, least recently used at the head.
#[derive(Debug)]
pub(super) struct IdleList {
    pub(super) head: u32,
    tail: u32,
}

impl IdleList {
    pub(super) const fn new() -> Self {
        IdleList {
            head: NIL,
            tail: NIL,
        }
    }

    /// Appends slot `i` (not linked) at the tail.
    pub(super) fn push_back<T>(&mut self, slots: &mut [Slot<T>], i: u32) {
        let tail = self.tail;
        let e = entry(slots, i);
        debug_assert!(!e.linked);
        e.prev = tail;
        e.next = NIL;
        e.linked = true;
        if tail == NIL {
            self.head = i;
        } else {
            entry(slots, tail).next = i;
        }
        self.tail = i;
    }

    /// Unlinks slot `i` if it is linked.
    pub(super) fn remove<T>(&mut self, slots: &mut [Slot<T>], i: u32) {
        let e = entry(slots, i);
        if !e.linked {
            return;
        }
        let (prev, next) = (e.prev, e.next);
        e.linked = false;
        e.prev = NIL;
        e.next = NIL;
        if prev == NIL {
            self.head = next;
        } else {
            entry(slots, prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            entry(slots, next).prev = prev;
        }
    }

    /// Moves slot `i` to the tail (links it if it was not).
    pub(super) fn touch<T>(&mut self, slots: &mut [Slot<T>], i: u32) {
        if self.tail == i {
            return;
        }
        self.remove(slots, i);
        self.push_back(slots, i);
    }
}

/// The entry of an occupied slot (the list only links occupied slots).
fn entry<T>(slots: &mut [Slot<T>], i: u32) -> &mut Entry<T> {
    slots[i as usize]
        .entry
        .as_mut()
        .expect("the idle list links occupied slots only")
}

/// Index of `state` in per-state counters (the order of [`BreakerState::ALL`]).
pub(super) fn state_index(state: BreakerState) -> usize {
    match state {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
        BreakerState::ForcedOpen => 3,
        BreakerState::Disabled => 4,
    }
}
