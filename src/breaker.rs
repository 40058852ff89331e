//! The circuit breaker as a pure state machine.
//!
//! ```text
//!                 trip policy fires                open period ends
//!    ┌────────┐ ─────────────────────▶ ┌──────┐ ──────────────────▶ ┌──────────┐
//!    │ Closed │                        │ Open │                     │ HalfOpen │
//!    └────────┘ ◀──────────┐           └──────┘ ◀────────────────── └──────────┘
//!         ▲                │                     a probe fails / probe      │
//!         │                │                     rates ≥ threshold /        │
//!         │                │                     half_open_max_wait passes  │
//!         │                └────────────────────────────────────────────────┘
//!         │                          the probes succeed
//!    reset│            ┌────────────┐        ┌──────────┐
//!         └─── any ───▶│ ForcedOpen │  any ─▶│ Disabled │   (commands; left only by command)
//!                      └────────────┘        └──────────┘
//! ```
//!
//! **Trip policies** (any may be on; the breaker opens when one fires):
//! - `max_failures` consecutive counted failures (the seed's rule, default 5);
//! - failure rate ≥ `failure_rate_threshold` over a [`SlidingWindow`];
//! - slow-call rate ≥ `slow_call_rate_threshold`, a call being slow when it lasts **>**
//!   `slow_call_duration`.
//!
//! Rates are evaluated after every recorded outcome and never while the window holds fewer than
//! `minimum_calls` (capped at a count window's size). Ignored outcomes are not recorded.
//!
//! **Open** admits nothing before `until` and is HalfOpen from `until` on; the open duration can
//! grow across consecutive re-opens ([`OpenBackoff`]). **HalfOpen** admits at most
//! `half_open_probes` calls in total (a finished probe does not free a slot; an ignored one
//! does). Under the consecutive-failures policy a probe failure re-opens at once; with a rate
//! policy, the probes' rates decide once all have reported (≥ threshold re-opens, otherwise the
//! breaker closes with an empty window); with the consecutive policy alone,
//! `half_open_successes` successes close it. If the probes have not decided within
//! `half_open_max_wait` after the first one was admitted, the breaker re-opens.
//!
//! **Generations**: every transition starts a new generation, and each [`Permit`] carries the one
//! it was issued in; outcomes of older permits never change the current state's counts.

mod keyed;
mod machine;
mod settings;
mod state;
mod window;

pub use keyed::{
    BreakerFamily, Evicted, EvictionReason, FamilySettings, FamilySettingsBuilder, Insert, KeyId,
    Member,
};
pub use machine::{CircuitBreaker, Reconfigured};
pub use settings::{
    BreakerSettings, BreakerSettingsBuilder, OpenBackoff, SlidingWindow, TIME_WINDOW_BUCKETS,
};
pub use state::{
    Admission, BreakerState, CallOutcome, CircuitState, Permit, Rejected, Snapshot, Transition,
    TransitionReason, Transitions,
};
pub use window::WindowCounts;
