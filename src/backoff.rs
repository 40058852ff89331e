//! How long to wait before the next attempt: capped exponential backoff with jitter.
//!
//! Why jitter? When many clients fail at once (a dependency restarts, a network partition
//! heals), un-jittered exponential backoff keeps them in lock-step: they all retry at
//! `initial_delay`, again at `2 × initial_delay`, … and every wave hits the recovering service
//! together. Randomising the delay spreads the waves out. Brooker's simulation
//! ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015) shows full jitter more than
//! halves the work done by 100 contending clients.
//!
//! A backoff is *just an iterator of delays* (as in `backon`): [`RetryPolicy::backoff`] returns an
//! [`ExponentialBackoff`] that yields exactly `max_attempts − 1` delays and then `None`, which
//! means "give up". It never sleeps and never reads the clock; the randomness comes from the
//! `R: rand::Rng` you pass in, so a seeded RNG replays the same delays.
//!
//! With `expo(n) = min(max_delay, initial_delay × multiplierⁿ)` for retry `n` (`n = 0` is the
//! wait before the second attempt), the [`Jitter`] kinds draw:
//!
//! | jitter | delay before retry `n` |
//! |---|---|
//! | [`Jitter::None`] | `expo(n)` |
//! | [`Jitter::Proportional(f)`](Jitter::Proportional) | `min(max_delay, expo(n) × (1 + U[0, f]))` (the seed's `+0–25%`) |
//! | [`Jitter::Full`] | `U[0, expo(n)]` |
//! | [`Jitter::Equal`] | `expo(n)/2 + U[0, expo(n)/2]` |
//! | [`Jitter::Decorrelated`] | `sₖ = min(max_delay, U[initial_delay, 3 × sₖ₋₁])`, `s₋₁ = initial_delay` |
//!
//! Every delay is at most `max_delay`, whatever the jitter. A zero `initial_delay` ("retry at
//! once") is accepted only with [`Jitter::None`]: every other kind scales its draw by the base,
//! so a zero base would make it silently do nothing.
//!
//! The seed's `WithOnRetry(attempt, err, delay)` hook is deliberately not here: this module
//! returns delays and knows nothing about errors or attempts in flight. The retry supervisor in
//! the actor layer owns the hook and calls it with each delay it takes from the iterator.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use rand::{SeedableRng, rngs::SmallRng};
//! use ractor_resilience_core::backoff::RetryPolicy;
//!
//! let policy = RetryPolicy::builder()
//!     .with_max_attempts(4)
//!     .with_initial_delay(Duration::from_millis(100))
//!     .with_max_delay(Duration::from_secs(1))
//!     .without_jitter()
//!     .build()?;
//!
//! let delays: Vec<Duration> = policy.backoff(SmallRng::seed_from_u64(7)).collect();
//! assert_eq!(delays, [100, 200, 400].map(Duration::from_millis));
//! # Ok::<(), ractor_resilience_core::InvalidSettings>(())
//! ```

mod exponential;
mod jitter;
mod policy;

pub use exponential::ExponentialBackoff;
pub use jitter::Jitter;
pub use policy::{RetryPolicy, RetryPolicyBuilder};
pub(crate) use policy::{clamp_to_duration, nanos};
