//! The circuit-breaker actor: one [`BreakerActor`] owns one core
//! [`CircuitBreaker`](ractor_resilience_core::breaker::CircuitBreaker) and is its only writer;
//! callers use a [`BreakerHandle`].
//!
//! ```text
//!  callers (BreakerHandle)                          BreakerActor (owns the CircuitBreaker)
//!  acquire ── reads ──▶ snapshot word ◀─ publishes ─ every transition (+ open period end)
//!     │  Closed/Disabled: permit; Open/ForcedOpen: rejected      ▲
//!     └─ HalfOpen, or Open period over ── Acquire ──────────────▶ try_acquire(now)
//!  record ── push ──▶ lock-free queue ── drained in batches ───▶ on_outcome(.., now)
//!     ├─ first outcome of a batch ───── ScheduleDrain ──────────▶ tick: Drain after 1 ms
//!     ├─ a failure or probe outcome ── Drain (doorbell) ────────▶ drains at once
//!     └─ queue full ─────────────────── Record ─────────────────▶ drains, then applies it
//!                                        own timer: DeadlineElapsed ▶ advance(now)
//! ```
//!
//! The happy path sends no message: a Closed breaker admits from an atomic snapshot, an Open one
//! rejects from it with `retry_after`, and outcomes go into a bounded lock-free queue. The actor
//! drains that queue one tick (1 ms by default) after the first outcome of a batch, and at once
//! when a failure or a probe outcome arrives, so a burst of failures opens the breaker within
//! one failure's processing. While nothing is recorded, no timer runs. Open → HalfOpen (and the
//! half-open timeout) fire from the actor's own timer, so state and metrics are right with no
//! traffic.
//!
//! For a policy applied per key (a model, an endpoint, a tenant), one [`KeyedBreakerActor`]
//! owns a whole family of breakers with the same discipline (see its module docs).
//!
//! Every transition updates the snapshot, the metrics (`resilience_circuit_breaker_*`), calls
//! the `on_state_change` hook, is sent to every subscriber as a [`BreakerEvent`], and is logged.

mod actor;
mod handle;
pub(crate) mod keyed;
mod messages;
mod options;
mod shared;

pub use actor::{BreakerActor, BreakerArgs};
pub use handle::BreakerHandle;
pub use keyed::{
    FamilyStatus, KeyCommandError, KeyListing, KeyState, KeyStatus, KeyedBreakerActor,
    KeyedBreakerArgs, KeyedBreakerEvent, KeyedBreakerHandle, KeyedBreakerMsg, KeyedBreakerOptions,
    KeyedBreakerState, KeyedPermit, METRIC_KEY_RULE, is_metric_key,
};
pub use messages::{
    BreakerEvent, BreakerMsg, BreakerStatus, BreakerUnavailable, CallRecord, DrainCause,
};
pub use options::{BreakerOptions, StateChangeHook};

// Local-only under ractor's `cluster` feature (see `messages`).
#[cfg(feature = "cluster")]
impl ractor::Message for keyed::KeyedBreakerMsg {}
#[cfg(feature = "cluster")]
impl ractor::Message for keyed::KeyedBreakerEvent {}
