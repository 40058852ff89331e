//! The one place the actor layer reads the clock.
//!
//! The core takes `now: std::time::Instant` as an argument. Here it comes from tokio's clock,
//! which follows `tokio::time::pause()` / `advance()`, so every actor is exactly testable on
//! paused time. Never call `std::time::Instant::now()` elsewhere in this crate.

use std::time::Instant;

/// Now, on tokio's (possibly paused) clock, as a `std::time::Instant` for the core.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// `at + d`, saturating at a year past `at` instead of overflowing (durations come from
/// configuration and callers; a huge one means "practically never").
pub(crate) fn after(at: tokio::time::Instant, d: std::time::Duration) -> tokio::time::Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + ractor_resilience_core::MAX_DURATION)
}
