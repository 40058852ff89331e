//! Keyed breaker families: one breaker policy applied per key (a model, an endpoint, a tenant),
//! so that one key failing opens only its own breaker (Finagle and Envoy break per endpoint).
//!
//! **Why a family, not a breaker per key spawned on demand.** Keys come from traffic, so
//! their number is not known in advance; what must be known is the memory they can take. A
//! [`BreakerFamily`] holds at most `max_keys` keys, each a [`CircuitBreaker`](super::CircuitBreaker)
//! that shares the family's settings, and lets go of idle ones:
//!
//! ```text
//!   insert(key) ──▶ Closed breaker ──(idle for idle_evict_after)──▶ evicted
//!        │                                                            ▲
//!        └─ at max_keys: evict the longest-unused idle key ───────────┘
//!           none idle (all Open / probing / forced / disabled): Saturated → overflow breaker
//! ```
//!
//! A key that is evicted and comes back starts as a fresh Closed breaker, exactly as it did the
//! first time. The family also ranks keys by recent failures
//! ([`BreakerFamily::rank_by_failures`]), so that metrics can name the worst few keys and
//! aggregate the rest.

mod family;
mod settings;
mod slots;
#[cfg(test)]
mod tests;

pub use family::{BreakerFamily, Evicted, EvictionReason, Insert, Member};
pub use settings::{FamilySettings, FamilySettingsBuilder};
pub use slots::KeyId;
