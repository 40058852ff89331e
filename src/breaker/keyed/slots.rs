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
    /// The id with these parts (as [`index`](Self::index) and [`tag`](Self::tag) return them),
    /// for a user that stores ids in a compact form. An id that no [`insert`] returned names no
    /// key: the family's methods answer `None` for it.
    ///
    /// [`insert`]: super::BreakerFamily::insert
    pub const fn from_parts(index: u32, tag: u32) -> Self {
        KeyId { index, tag }
    }

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
///
/// The field order is a measured layout, not a rule: an outcome reads the slot's tag, the
/// score, `last_active` and the breaker's state, generation and settings (the middle of a
/// [`CircuitBreaker`]; its window and RNG are cold for outcomes while Closed), and the data not
/// at all. With slots aligned on 64 bytes, those are two cache lines per outcome instead of up
/// to four. A different layout is correct, only slower on a family larger than the caches.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Entry<T> {
    /// Recent counted failures (halved at each ranking).
    pub(super) score: u32,
    /// The last use: an outcome, an admission by the family, a command, a state change.
    pub(super) last_active: Instant,
    pub(super) breaker: CircuitBreaker,
    pub(super) data: T,
}

/// A slot's neighbours in the idle list. Kept apart from the entries, in a dense array of 8
/// bytes per slot: moving a key to the tail on each outcome touches its neighbours, and in
/// this array they are cache hits rather than misses on large entries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    /// Not in the list.
    pub(super) const UNLINKED: Link = Link {
        prev: UNLINKED,
        next: NIL,
    };

    fn linked(self) -> bool {
        self.prev != UNLINKED
    }
}

/// `Link::prev` of a slot that is not in the list.
const UNLINKED: u32 = u32::MAX - 1;

/// A slot of the slab: its incarnation, and the key it holds (see [`Entry`] for the layout).
#[derive(Debug)]
#[repr(C, align(64))]
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
    pub(super) fn push_back(&mut self, links: &mut [Link], i: u32) {
        debug_assert!(!links[i as usize].linked());
        links[i as usize] = Link {
            prev: self.tail,
            next: NIL,
        };
        if self.tail == NIL {
            self.head = i;
        } else {
            links[self.tail as usize].next = i;
        }
        self.tail = i;
    }

    /// Unlinks slot `i` if it is linked.
    pub(super) fn remove(&mut self, links: &mut [Link], i: u32) {
        let link = links[i as usize];
        if !link.linked() {
            return;
        }
        links[i as usize] = Link::UNLINKED;
        if link.prev == NIL {
            self.head = link.next;
        } else {
            links[link.prev as usize].next = link.next;
        }
        if link.next == NIL {
            self.tail = link.prev;
        } else {
            links[link.next as usize].prev = link.prev;
        }
    }

    /// Moves slot `i` to the tail (links it if it was not).
    pub(super) fn touch(&mut self, links: &mut [Link], i: u32) {
        if self.tail == i {
            return;
        }
        self.remove(links, i);
        self.push_back(links, i);
    }
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
