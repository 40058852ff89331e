//! [`BreakerFamily`]: one [`CircuitBreaker`] per key, all sharing the family's
//! [`BreakerSettings`](crate::breaker::BreakerSettings), with bounded memory.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use super::settings::FamilySettings;
use super::slots::{Entry, IdleList, KeyId, Link, NIL, Slot, evictable, state_index};
use crate::breaker::{
    Admission, BreakerState, CallOutcome, CircuitBreaker, Permit, Transition, Transitions,
};

/// A breaker of a family: one key's, or the overflow breaker that keys share when the family
/// is full (see [`BreakerFamily::insert`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    /// The breaker of one held key.
    Key(KeyId),
    /// The overflow breaker.
    Overflow,
}

/// What [`BreakerFamily::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert<T> {
    /// The key has its own breaker now; at `max_keys`, the longest-idle key made room.
    Inserted {
        /// The new key's id.
        id: KeyId,
        /// The key evicted to make room, if the family was full.
        evicted: Option<Evicted<T>>,
    },
    /// The family is full and every key is in use (none is [idle](BreakerFamily#eviction)):
    /// the data is given back; the caller's calls go through the overflow breaker.
    Saturated(T),
}

/// A key the family let go of, with its data (its breaker is dropped).
#[derive(Debug, PartialEq, Eq)]
pub struct Evicted<T> {
    /// The id it had (never valid again).
    pub id: KeyId,
    /// The data it was inserted with.
    pub data: T,
    /// Why it was evicted.
    pub reason: EvictionReason,
}

/// Why a key was evicted.
///
/// ```
/// use ractor_resilience_core::breaker::EvictionReason;
///
/// assert_eq!(EvictionReason::Capacity.as_str(), "capacity");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionReason {
    /// Idle for `idle_evict_after`.
    Idle,
    /// The family was at `max_keys` and a new key needed the room.
    Capacity,
}

impl EvictionReason {
    /// Both reasons.
    pub const ALL: [EvictionReason; 2] = [EvictionReason::Idle, EvictionReason::Capacity];

    /// The snake_case name used in metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            EvictionReason::Idle => "idle",
            EvictionReason::Capacity => "capacity",
        }
    }
}

/// A family of circuit breakers, one per key (model, endpoint, tenant), all following one
/// [`FamilySettings::breaker`] policy: a pure state machine like [`CircuitBreaker`], driven by
/// explicit instants.
///
/// Each key's breaker is a [`CircuitBreaker`] of its own (state, generation, window), sharing the
/// family's settings (a reference count, not a copy). The family does not index keys: its user
/// maps each key to the [`KeyId`] that [`insert`](Self::insert) returned, and carries any data
/// `T` per key (the actor layer keeps the key itself there).
///
/// # Eviction
/// A key is **idle** when its breaker is Closed, or HalfOpen with no probe out (its open period
/// ended and nobody has asked for it since). Idle keys are kept in order of their last use (an
/// outcome, an admission or a command through the family, a state change);
/// - [`evict_idle`](Self::evict_idle) drops those unused for `idle_evict_after`;
/// - [`insert`](Self::insert) at `max_keys` drops the longest-unused idle key; if no key is idle
///   (every held key is Open, probing, ForcedOpen or Disabled) it returns
///   [`Insert::Saturated`] and the caller uses the [overflow breaker](Member::Overflow), one
///   breaker shared by every key that found no room.
///
/// Open keys are never evicted (they protect a failing dependency); they become idle by
/// themselves when their open period ends. ForcedOpen and Disabled keys are an operator's and
/// stay until a command changes them.
///
/// # Time
/// [`next_deadline`](Self::next_deadline) is the earliest instant at which
/// [`advance`](Self::advance) (a key's open period or half-open wait ending) or
/// [`evict_idle`](Self::evict_idle) has something to do. `now` must not go backwards.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{
///     BreakerFamily, BreakerSettings, BreakerState, FamilySettings, Insert, Member,
/// };
///
/// let settings = BreakerSettings::builder().with_max_failures(1).build().unwrap();
/// let mut family = BreakerFamily::new(FamilySettings::new(settings), 0);
/// let now = Instant::now();
/// let ids: Vec<_> = ["gpt-4o", "claude"]
///     .into_iter()
///     .map(|key| match family.insert(key, now) {
///         Insert::Inserted { id, .. } => Member::Key(id),
///         Insert::Saturated(_) => unreachable!("room for 10 000 keys"),
///     })
///     .collect();
/// // One failure opens gpt-4o's breaker; claude's still admits.
/// let permit = family.try_acquire(ids[0], now).unwrap().decision.unwrap();
/// let _ = family.on_outcome(ids[0], permit, ractor_resilience_core::breaker::CallOutcome::Failure, Duration::ZERO, now);
/// assert_eq!(family.breaker(ids[0]).unwrap().state().kind(), BreakerState::Open);
/// assert!(family.try_acquire(ids[1], now).unwrap().decision.is_ok());
/// // Ten seconds later the open period is over.
/// let changes = family.advance(now + Duration::from_secs(10));
/// assert_eq!(changes[0].1.to, BreakerState::HalfOpen);
/// ```
#[derive(Debug)]
pub struct BreakerFamily<T> {
    settings: FamilySettings,
    seed: u64,
    slots: Vec<Slot<T>>,
    /// The idle list's links, one per slot.
    links: Vec<Link>,
    free: Vec<u32>,
    len: usize,
    idle: IdleList,
    /// `(at, slot, tag)` for every deadline a breaker took (slot `NIL`: the overflow breaker);
    /// entries whose breaker moved on are skipped when they come due.
    deadlines: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    overflow: CircuitBreaker,
    by_state: [usize; 5],
    /// Slots whose breaker is not Closed (the listing of open keys).
    not_closed: BTreeSet<u32>,
    /// Keys with a non-zero failure score.
    scored: Vec<KeyId>,
}

impl<T> BreakerFamily<T> {
    /// An empty family. Each key's open-duration jitter draws from an RNG seeded from `seed`
    /// and the key's id.
    pub fn new(settings: FamilySettings, seed: u64) -> Self {
        let overflow = CircuitBreaker::with_seed(settings.breaker().clone(), mix(seed, u64::MAX));
        BreakerFamily {
            settings,
            seed,
            slots: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            len: 0,
            idle: IdleList::new(),
            deadlines: BinaryHeap::new(),
            overflow,
            by_state: [0; 5],
            not_closed: BTreeSet::new(),
            scored: Vec::new(),
        }
    }

    // ===== queries =====

    /// Applies new settings at `now`, keeping every key and its state: each key's breaker (and
    /// the overflow breaker) is reconfigured in place ([`CircuitBreaker::reconfigure`]: state,
    /// generation and, when the window's shape is unchanged, window kept). A lower `max_keys`
    /// takes effect as keys leave (nothing is evicted to make it hold at once); a new
    /// `idle_evict_after` applies from the next sweep. Returns how many windows had to start
    /// empty (the window changed shape).
    ///
    /// ```
    /// use std::time::Instant;
    /// use ractor_resilience_core::breaker::{BreakerFamily, BreakerSettings, FamilySettings, Insert};
    ///
    /// let now = Instant::now();
    /// let mut family = BreakerFamily::new(FamilySettings::new(BreakerSettings::default()), 0);
    /// let Insert::Inserted { id, .. } = family.insert("gpt-4o", now) else { unreachable!() };
    /// let stricter = BreakerSettings::builder().with_max_failures(1).build().unwrap();
    /// assert_eq!(family.reconfigure(FamilySettings::new(stricter), now), 0);
    /// assert!(family.contains(id), "the key is kept");
    /// assert_eq!(family.settings().breaker().max_failures(), Some(1));
    /// ```
    pub fn reconfigure(&mut self, settings: FamilySettings, now: Instant) -> usize {
        let mut windows_reset = 0;
        let breakers = self
            .slots
            .iter_mut()
            .filter_map(|slot| slot.entry.as_mut().map(|e| &mut e.breaker))
            .chain(std::iter::once(&mut self.overflow));
        for breaker in breakers {
            if !breaker
                .reconfigure(settings.breaker().clone(), now)
                .window_kept
            {
                windows_reset += 1;
            }
        }
        self.settings = settings;
        windows_reset
    }

    /// The settings.
    pub fn settings(&self) -> &FamilySettings {
        &self.settings
    }

    /// Keys held (the overflow breaker excluded).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a new key would get [`Insert::Saturated`]: `max_keys` are held and none is idle.
    pub fn is_saturated(&self) -> bool {
        self.len >= self.settings.max_keys() as usize && self.idle.head == NIL
    }

    /// How many held keys are in `state`.
    pub fn keys_in(&self, state: BreakerState) -> usize {
        self.by_state[state_index(state)]
    }

    /// The breaker of `member`, or `None` for an evicted key.
    pub fn breaker(&self, member: Member) -> Option<&CircuitBreaker> {
        match member {
            Member::Overflow => Some(&self.overflow),
            Member::Key(id) => self.entry(id).map(|e| &e.breaker),
        }
    }

    /// Whether `id` names a held key.
    pub fn contains(&self, id: KeyId) -> bool {
        self.entry(id).is_some()
    }

    /// The data of a held key.
    pub fn data(&self, id: KeyId) -> Option<&T> {
        self.entry(id).map(|e| &e.data)
    }

    /// The data of a held key, to change it.
    pub fn data_mut(&mut self, id: KeyId) -> Option<&mut T> {
        self.entry_mut(id).map(|e| &mut e.data)
    }

    /// When a held key was last used (see [Eviction](Self#eviction)).
    pub fn last_active(&self, id: KeyId) -> Option<Instant> {
        self.entry(id).map(|e| e.last_active)
    }

    /// Every held key, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (KeyId, &T, &CircuitBreaker)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let e = slot.entry.as_ref()?;
            Some((id_of(i as u32, slot), &e.data, &e.breaker))
        })
    }

    /// The held keys whose breaker is not Closed, in slot order, without scanning the others.
    pub fn not_closed(&self) -> impl Iterator<Item = (KeyId, &T, &CircuitBreaker)> + '_ {
        self.not_closed.iter().filter_map(move |&i| {
            let slot = &self.slots[i as usize];
            let e = slot.entry.as_ref()?;
            Some((id_of(i, slot), &e.data, &e.breaker))
        })
    }

    /// How many held keys are not Closed.
    pub fn not_closed_len(&self) -> usize {
        self.not_closed.len()
    }

    /// The earliest instant at which [`advance`](Self::advance) or
    /// [`evict_idle`](Self::evict_idle) may have work (possibly earlier: a deadline a breaker
    /// has since left wakes the caller once for nothing).
    pub fn next_deadline(&self) -> Option<Instant> {
        let key = self.deadlines.peek().map(|Reverse((at, _, _))| *at);
        let idle = match (self.settings.idle_evict_after(), self.idle.head) {
            (Some(after), head) if head != NIL => self.slots[head as usize]
                .entry
                .as_ref()
                .map(|e| e.last_active + after),
            _ => None,
        };
        match (key, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads `member`'s entry and returns a value of no meaning: a performance hint for a
    /// caller about to apply a batch of inputs to keys spread over a large family. Calling it
    /// for every input of the batch first lets the processor fetch the entries in parallel
    /// (their loads do not depend on each other), so that applying the batch then finds them in
    /// cache instead of waiting for one memory access after another.
    pub fn prefetch(&self, member: Member) -> u64 {
        let Member::Key(id) = member else {
            return 0;
        };
        let Some(slot) = self.slots.get(id.index as usize) else {
            return 0;
        };
        match &slot.entry {
            Some(e) => {
                // The fields an outcome reads, whichever cache lines they are on.
                std::hint::black_box(e.last_active);
                u64::from(slot.tag)
                    ^ e.breaker.generation()
                    ^ e.breaker.state().kind() as u64
                    ^ u64::from(e.score)
                    ^ u64::from(e.breaker.settings().half_open_probes())
            }
            None => u64::from(slot.tag),
        }
    }

    // ===== inputs =====

    /// Gives a new key its own Closed breaker, with `data` attached. At `max_keys`, first
    /// evicts the longest-unused idle key; with none idle, returns [`Insert::Saturated`].
    ///
    /// The family does not check that the key is new: one key inserted twice has two breakers.
    pub fn insert(&mut self, data: T, now: Instant) -> Insert<T> {
        let mut evicted = None;
        if self.len >= self.settings.max_keys() as usize {
            if self.idle.head == NIL {
                return Insert::Saturated(data);
            }
            evicted = Some(self.evict(self.idle.head, EvictionReason::Capacity));
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                tag: 0,
                entry: None,
            });
            self.links.push(Link::UNLINKED);
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[index as usize];
        let id = KeyId {
            index,
            tag: slot.tag,
        };
        let seed = mix(self.seed, (u64::from(index) << 32) | u64::from(slot.tag));
        slot.entry = Some(Entry {
            breaker: CircuitBreaker::with_seed(self.settings.breaker().clone(), seed),
            data,
            last_active: now,
            score: 0,
        });
        self.len += 1;
        self.by_state[state_index(BreakerState::Closed)] += 1;
        self.idle.push_back(&mut self.links, index);
        Insert::Inserted { id, evicted }
    }

    /// [`CircuitBreaker::try_acquire`] on `member`; `None` for an evicted key.
    pub fn try_acquire(&mut self, member: Member, now: Instant) -> Option<Admission> {
        self.operate(member, now, |b| b.try_acquire(now))
    }

    /// [`CircuitBreaker::on_outcome`] on `member`; `None` for an evicted key (the outcome is
    /// not applied: the breaker that admitted the call is gone). Counted failures raise the
    /// key's [failure score](Self::rank_by_failures).
    pub fn on_outcome(
        &mut self,
        member: Member,
        permit: Permit,
        outcome: CallOutcome,
        duration: Duration,
        now: Instant,
    ) -> Option<Transitions> {
        let transitions = self.operate(member, now, |b| {
            b.on_outcome(permit, outcome, duration, now)
        })?;
        if let (Member::Key(id), CallOutcome::Failure) = (member, outcome) {
            let e = self.entry_mut(id).expect("operate found the key");
            let first = e.score == 0;
            e.score = e.score.saturating_add(1);
            if first {
                self.scored.push(id);
            }
        }
        Some(transitions)
    }

    /// [`CircuitBreaker::force_open`] on `member`; `None` for an evicted key.
    pub fn force_open(&mut self, member: Member, now: Instant) -> Option<Transitions> {
        self.operate(member, now, |b| b.force_open(now))
    }

    /// [`CircuitBreaker::disable`] on `member`; `None` for an evicted key.
    pub fn disable(&mut self, member: Member, now: Instant) -> Option<Transitions> {
        self.operate(member, now, |b| b.disable(now))
    }

    /// [`CircuitBreaker::reset`] on `member`; `None` for an evicted key.
    pub fn reset(&mut self, member: Member, now: Instant) -> Option<Transitions> {
        self.operate(member, now, |b| b.reset(now))
    }

    /// Applies every deadline due at or before `now` (open periods ending, half-open waits
    /// running out), in deadline order; returns the transitions with the breaker they belong to.
    pub fn advance(&mut self, now: Instant) -> Vec<(Member, Transition)> {
        let mut out = Vec::new();
        while let Some(&Reverse((at, index, tag))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let member = if index == NIL {
                Member::Overflow
            } else {
                Member::Key(KeyId { index, tag })
            };
            let due = self
                .breaker(member)
                .and_then(CircuitBreaker::next_deadline)
                .is_some_and(|d| d <= now);
            if !due {
                continue; // the breaker left that deadline (or the key is gone)
            }
            if let Some(transitions) = self.operate(member, now, |b| b.advance(now)) {
                out.extend(transitions.into_iter().map(|t| (member, t)));
            }
        }
        out
    }

    /// Evicts every key idle for `idle_evict_after` or longer at `now` (nothing when it is off).
    pub fn evict_idle(&mut self, now: Instant) -> Vec<Evicted<T>> {
        let mut out = Vec::new();
        let Some(after) = self.settings.idle_evict_after() else {
            return out;
        };
        while self.idle.head != NIL {
            let head = self.idle.head;
            let last = self.slots[head as usize]
                .entry
                .as_ref()
                .expect("the idle list links held keys")
                .last_active;
            if now.saturating_duration_since(last) < after {
                break;
            }
            out.push(self.evict(head, EvictionReason::Idle));
        }
        out
    }

    /// The (at most) `n` held keys with the most counted failures recently, most first (ties
    /// by id); keys without a failure are never ranked. Each call then halves every score, so
    /// that a key that stopped failing leaves the top after a few rankings ("recently" is a
    /// decay by half per call).
    pub fn rank_by_failures(&mut self, n: usize) -> Vec<KeyId> {
        let mut ranked: Vec<(u32, KeyId)> = Vec::with_capacity(self.scored.len());
        for &id in &self.scored {
            if let Some(e) = self.entry(id).filter(|e| e.score > 0) {
                ranked.push((e.score, id));
            }
        }
        let order = |a: &(u32, KeyId), b: &(u32, KeyId)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if ranked.len() > n && n > 0 {
            ranked.select_nth_unstable_by(n - 1, order);
        }
        let mut top: Vec<(u32, KeyId)> = ranked.iter().take(n).copied().collect();
        top.sort_unstable_by(order);
        self.scored.clear();
        for (_, id) in ranked {
            let e = self.entry_mut(id).expect("ranked keys are held");
            e.score /= 2;
            if e.score > 0 {
                self.scored.push(id);
            }
        }
        top.into_iter().map(|(_, id)| id).collect()
    }

    // ===== internals =====

    fn entry(&self, id: KeyId) -> Option<&Entry<T>> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.tag != id.tag {
            return None;
        }
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, id: KeyId) -> Option<&mut Entry<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.tag != id.tag {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Runs `f` on `member`'s breaker and keeps the family's indexes right after it: per-state
    /// counts, the idle list (any input is a use), and the deadline heap.
    fn operate<R>(
        &mut self,
        member: Member,
        now: Instant,
        f: impl FnOnce(&mut CircuitBreaker) -> R,
    ) -> Option<R> {
        let id = match member {
            Member::Overflow => {
                let before = self.overflow.next_deadline();
                let r = f(&mut self.overflow);
                if let Some(at) = self.overflow.next_deadline().filter(|&d| Some(d) != before) {
                    self.deadlines.push(Reverse((at, NIL, 0)));
                }
                return Some(r);
            }
            Member::Key(id) => id,
        };
        let e = self.entry_mut(id)?;
        let (was, deadline_before) = (e.breaker.state().kind(), e.breaker.next_deadline());
        let r = f(&mut e.breaker);
        e.last_active = now; // a store, not a load: `now` does not go backwards
        let (state, deadline) = (e.breaker.state().kind(), e.breaker.next_deadline());
        let idle = evictable(&e.breaker);
        if state != was {
            self.by_state[state_index(was)] -= 1;
            self.by_state[state_index(state)] += 1;
            if state == BreakerState::Closed {
                self.not_closed.remove(&id.index);
            } else {
                self.not_closed.insert(id.index);
            }
        }
        if idle {
            self.idle.touch(&mut self.links, id.index);
        } else {
            self.idle.remove(&mut self.links, id.index);
        }
        if let Some(at) = deadline.filter(|&d| Some(d) != deadline_before) {
            self.deadlines.push(Reverse((at, id.index, id.tag)));
        }
        Some(r)
    }

    fn evict(&mut self, index: u32, reason: EvictionReason) -> Evicted<T> {
        self.idle.remove(&mut self.links, index);
        let slot = &mut self.slots[index as usize];
        let id = KeyId {
            index,
            tag: slot.tag,
        };
        let e = slot.entry.take().expect("only held keys are evicted");
        slot.tag = slot.tag.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        let state = e.breaker.state().kind();
        self.by_state[state_index(state)] -= 1;
        if state != BreakerState::Closed {
            self.not_closed.remove(&index);
        }
        Evicted {
            id,
            data: e.data,
            reason,
        }
    }
}

fn id_of<T>(index: u32, slot: &Slot<T>) -> KeyId {
    KeyId {
        index,
        tag: slot.tag,
    }
}

/// SplitMix64 of `seed` and `x`: distinct, well-spread seeds per key.
fn mix(seed: u64, x: u64) -> u64 {
    let mut z = seed ^ x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
