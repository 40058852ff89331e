//! The [`Jitter`] enum.

use crate::Ratio;

/// How an [`ExponentialBackoff`](super::ExponentialBackoff) randomises each delay.
///
/// See the [module docs](super) for the formula of each kind. Whatever the kind, a delay never
/// exceeds the policy's `max_delay`.
///
/// # Default
///
/// [`Jitter::SEED_PROPORTIONAL`]: `+0–25%` of the un-jittered delay, the seed's `Jitter: true`.
///
/// ```
/// use ractor_resilience_core::{Ratio, backoff::Jitter};
///
/// assert_eq!(Jitter::default(), Jitter::Proportional(Ratio::new("jitter", 0.25)?));
/// assert_eq!(Jitter::default(), Jitter::SEED_PROPORTIONAL);
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// No randomness: `expo(n)`.
    None,
    /// Adds up to a fraction `f` of the delay: `min(max_delay, expo(n) × (1 + U[0, f]))`.
    ///
    /// This is the seed's additive jitter (`1s + 0–250ms`), with one deliberate difference:
    /// the seed let a jittered delay exceed `max_delay` by up to 25% (`Max: 30s + jitter`),
    /// whereas here the cap always holds.
    Proportional(Ratio),
    /// AWS "Full Jitter": `U[0, expo(n)]`. Least total work under contention.
    Full,
    /// AWS "Equal Jitter": `expo(n)/2 + U[0, expo(n)/2]`. Never shorter than half the delay.
    Equal,
    /// AWS "Decorrelated Jitter": `sₖ = min(max_delay, U[initial_delay, 3 × sₖ₋₁])`.
    ///
    /// Each delay depends on the previous one (the state lives in the iterator); the first is
    /// drawn from `U[initial_delay, 3 × initial_delay]`, as in the AWS simulator. The growth
    /// factor is the formula's `3`: the policy's `multiplier` is not used. The lower bound is
    /// `initial_delay` (the simulator's `uniform(base, sleep * 3)`, not the post's `0`).
    Decorrelated,
}

impl Jitter {
    /// The seed's default jitter: up to 25% added to each delay.
    pub const SEED_PROPORTIONAL: Jitter = Jitter::Proportional(Ratio::saturating(0.25));
}

impl Default for Jitter {
    /// [`Jitter::SEED_PROPORTIONAL`].
    fn default() -> Self {
        Jitter::SEED_PROPORTIONAL
    }
}
