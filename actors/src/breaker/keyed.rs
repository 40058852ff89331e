//! Keyed breaker families: one breaker policy applied per key (a model, an endpoint, a
//! tenant), a breaker per key created on first use, all owned by **one** actor, the
//! [`KeyedBreakerActor`], that is the only writer of a core
//! [`BreakerFamily`](ractor_resilience_core::breaker::BreakerFamily). Callers use a
//! [`KeyedBreakerHandle`].
//!
//! ```text
//!  callers (KeyedBreakerHandle)                       KeyedBreakerActor (owns the BreakerFamily)
//!  acquire(key) ─ reads ─▶ map: key → published snapshot ◀─ publishes ─ inserts, transitions,
//!     │  held, Closed/Disabled: permit; Open/ForcedOpen: rejected          evictions
//!     │  not held: permit of a fresh Closed breaker (generation 0)
//!     │  not held, family saturated: the overflow breaker's snapshot decides
//!     └─ HalfOpen, or Open period over ─ Acquire ──────────────▶ try_acquire(key, now)
//!  record ─ push ─▶ bounded lock-free queue ─ drained in batches ──▶ on_outcome(key, ..)
//!     │  (held keys: a ring of 32-byte records; new keys, overflow, probes: a general lane)
//!     ├─ first outcome of a batch ─ ScheduleDrain; a failure/probe ─ Drain (doorbell)
//!     └─ queue full ─ ring, wait for room (bounded spin), then a Record message: no outcome
//!        is dropped
//!                                 one timer: key deadlines + idle eviction ▶ advance(now)
//! ```
//!
//! **Why one actor for all keys.** An actor per key costs about as much memory as a whole
//! agent; a family holds up to `max_keys` keys at a few hundred bytes each (the
//! `keyed_breaker_bytes_per_key` benchmark figure), and admission costs a map lookup and an
//! atomic load (`keyed_breaker_decision_ns`).
//!
//! **Keys are created by their first outcome**, not their first admission: a key not held is
//! admitted as a fresh Closed breaker would admit it (no message), and the actor creates it when
//! the outcome arrives. A key evicted and used again starts fresh in the same way.
//!
//! **Bounded memory** ([`FamilySettings`](ractor_resilience_core::breaker::FamilySettings)):
//! idle keys (Closed, or HalfOpen with no probe out) unused for `idle_evict_after` are evicted
//! by the actor's timer; at `max_keys` a new key evicts the longest-unused idle key; when no key
//! is idle (every one is Open, probing, ForcedOpen or Disabled) new keys share one **overflow
//! breaker** (`key="overflow"` in metrics) until room frees up. Overflow rather than rejection:
//! the family is full of failing keys, so a key nobody has seen fail is let through under a
//! breaker of its own kind instead of being refused for other keys' failures; and overflow
//! rather than growing past `max_keys`: the cap is the memory bound.
//!
//! **Bounded metric labels**: see [`KeyedBreakerOptions`]. Label values come from
//! `metric_keys` (configuration), from the current top `metric_top_keys` keys by failures, or
//! are `"other"` / `"overflow"`.
//!
//! **Operating it**: [`KeyedBreakerHandle::force_open`], [`disable`](KeyedBreakerHandle::disable)
//! and [`reset`](KeyedBreakerHandle::reset) act on one key;
//! [`not_closed`](KeyedBreakerHandle::not_closed) lists the keys that are not Closed, at most
//! `limit` of them and the count of the rest, for `/health`.

mod actor;
mod handle;
mod key;
mod messages;
mod options;
mod queue;
mod ring;
mod shared;

pub use actor::{KeyedBreakerActor, KeyedBreakerArgs, KeyedBreakerState};
pub use handle::KeyedBreakerHandle;
pub use messages::{
    FamilyStatus, KeyCommandError, KeyListing, KeyState, KeyStatus, KeyedBreakerEvent,
    KeyedBreakerMsg, KeyedPermit,
};
pub use options::{KeyedBreakerOptions, METRIC_KEY_RULE, is_metric_key};
pub(crate) use options::{OTHER_KEY, OVERFLOW_KEY};
