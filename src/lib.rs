//! Deterministic resilience policies: the pure core of `ractor-resilience`.
//!
//! This crate contains no networking, no async runtime and no actors, and it **never reads the
//! clock**: every time-dependent method takes `now: Instant`, and every random choice draws from
//! an RNG that the caller injects or seeds. That makes each policy a plain state machine that can
//! be driven step by step, property-tested against a reference model, and simulated for an hour
//! of virtual time in milliseconds. The `ractor-resilience` crate puts each machine inside an
//! actor that owns it and feeds it the time.
//!
//! | module | what it decides |
//! |---|---|
//! | [`breaker`] | whether a call may go ahead: the Closed / Open / Half-Open circuit breaker |
//! | [`backoff`] | how long to wait before the next attempt: exponential backoff with jitter |
//! | [`budget`] | whether a retry is affordable: Finagle-style token-bucket retry budgets |
//! | [`estimator`] | how long to wait for a reply: windowed-quantile adaptive timeouts |
//! | [`queue`] | how long a task may wait for a worker: CoDel with adaptive LIFO |
//! | [`retry`] | what follows a failed attempt: retry after which delay, or give up and why |
//! | [`supervision`] | when to restart a crashed worker, and when to stop trying: restart backoff and intensity |
//!
//! Invariants every module keeps:
//! - inputs are `on_*`/`try_*` methods that take `now`; outputs (transitions, delays, decisions)
//!   are *returned*, never called back;
//! - memory is bounded by the settings, never by the number of calls;
//! - settings are validated once, at construction, with an [`InvalidSettings`] error that names
//!   the field as configuration files spell it.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod estimator;
pub mod queue;
pub mod retry;
mod settings;
pub mod supervision;

pub use settings::{InvalidSettings, MAX_DURATION, Ratio};
