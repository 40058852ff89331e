//! [`ExponentialBackoff`]: the iterator of delays.

use std::iter::FusedIterator;
use std::time::Duration;

use rand::{Rng, RngExt};

use super::policy::{clamp_to_duration, nanos};
use super::{Jitter, RetryPolicy};

/// The delays before each retry of one operation: an `Iterator<Item = Duration>` that yields
/// exactly `max_attempts − 1` delays, then `None` forever (it is fused).
///
/// Made by [`RetryPolicy::backoff`]. Every delay is at most the policy's `max_delay`. Cloning
/// it clones the RNG too, so the clone replays the same delays.
///
/// ```
/// use std::time::Duration;
/// use rand::{SeedableRng, rngs::SmallRng};
/// use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::builder().with_jitter(Jitter::Full).build()?;
/// let mut backoff = policy.backoff(SmallRng::seed_from_u64(42));
/// assert_eq!(backoff.remaining(), 2);
///
/// let first = backoff.next().unwrap();
/// assert!(first <= Duration::from_secs(1)); // U[0, 1s]
/// assert_eq!(backoff.retries(), 1);
///
/// assert!(backoff.next().unwrap() <= Duration::from_secs(2)); // U[0, 2s]
/// assert_eq!(backoff.next(), None); // 3 attempts: give up
/// assert_eq!(backoff.next(), None);
///
/// // The same seed gives the same delays.
/// let again: Vec<_> = policy.backoff(SmallRng::seed_from_u64(42)).collect();
/// assert_eq!(again[0], first);
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExponentialBackoff<R> {
    rng: R,
    jitter: Jitter,
    /// Retries the policy allows: `max_attempts − 1`.
    total: u32,
    /// Delays yielded so far.
    retries: u32,
    max_delay: Duration,
    cap_ns: f64,
    initial_ns: f64,
    multiplier: f64,
    /// `expo(retries)`, the un-jittered delay of the next retry. Kept as a running product
    /// (no `powf` per call) that saturates at `cap_ns`.
    expo_ns: f64,
    /// The previous decorrelated sleep (`initial_ns` before the first).
    prev_ns: f64,
}

// ===== impl ExponentialBackoff =====

impl<R: Rng> ExponentialBackoff<R> {
    pub(super) fn new(policy: &RetryPolicy, rng: R) -> Self {
        let initial_ns = nanos(policy.initial_delay());
        Self {
            rng,
            jitter: policy.jitter(),
            total: policy.max_attempts() - 1,
            retries: 0,
            max_delay: policy.max_delay(),
            cap_ns: nanos(policy.max_delay()),
            initial_ns,
            multiplier: policy.multiplier(),
            expo_ns: initial_ns,
            prev_ns: initial_ns,
        }
    }

    /// How many delays have been yielded so far (the number of retries started).
    pub const fn retries(&self) -> u32 {
        self.retries
    }

    /// How many delays are left before the iterator gives up.
    pub const fn remaining(&self) -> u32 {
        self.total - self.retries
    }

    /// Starts over from the first delay, keeping the RNG's state.
    ///
    /// For a supervisor that resets its backoff once a restarted worker has stayed up long
    /// enough (Akka's `BackoffSupervisor` reset).
    pub fn reset(&mut self) {
        self.retries = 0;
        self.expo_ns = self.initial_ns;
        self.prev_ns = self.initial_ns;
    }

    /// A uniform draw from `[0, 1)`.
    #[inline]
    fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
}

impl<R: Rng> Iterator for ExponentialBackoff<R> {
    type Item = Duration;

    #[inline]
    fn next(&mut self) -> Option<Duration> {
        if self.retries >= self.total {
            return None;
        }
        self.retries += 1;

        let expo = self.expo_ns;
        // `min` saturates: once at the cap the product stays there, never overflows.
        self.expo_ns = (expo * self.multiplier).min(self.cap_ns);

        let ns = match self.jitter {
            Jitter::None => expo,
            Jitter::Proportional(f) => expo * (1.0 + f.get() * self.unit()),
            Jitter::Full => expo * self.unit(),
            Jitter::Equal => 0.5 * expo * (1.0 + self.unit()),
            Jitter::Decorrelated => {
                // AWS simulator: sleep = min(cap, uniform(base, sleep * 3)).
                let high = self.prev_ns * 3.0;
                let sleep =
                    (self.initial_ns + (high - self.initial_ns) * self.unit()).min(self.cap_ns);
                self.prev_ns = sleep;
                sleep
            }
        };
        Some(clamp_to_duration(ns, self.cap_ns, self.max_delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining() as usize;
        (n, Some(n))
    }
}

impl<R: Rng> ExactSizeIterator for ExponentialBackoff<R> {}

impl<R: Rng> FusedIterator for ExponentialBackoff<R> {}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy::builder()
            .with_max_attempts(6)
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_millis(1000))
            .with_jitter(jitter)
            .build()
            .unwrap()
    }

    #[test]
    fn no_jitter_doubles_then_caps() {
        let delays: Vec<_> = policy(Jitter::None)
            .backoff(SmallRng::seed_from_u64(1))
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000].map(Duration::from_millis)
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = policy(Jitter::None).backoff(SmallRng::seed_from_u64(1));
        backoff.by_ref().take(3).for_each(drop);
        backoff.reset();
        assert_eq!(backoff.remaining(), 5);
        assert_eq!(backoff.next(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn len_tracks_remaining() {
        let mut backoff = policy(Jitter::Full).backoff(SmallRng::seed_from_u64(1));
        assert_eq!(backoff.len(), 5);
        backoff.next();
        assert_eq!((backoff.len(), backoff.retries()), (4, 1));
    }

    #[test]
    fn single_attempt_never_retries() {
        let p = policy(Jitter::None)
            .to_builder()
            .with_max_attempts(1)
            .build()
            .unwrap();
        assert_eq!(p.backoff(SmallRng::seed_from_u64(1)).next(), None);
    }

    #[test]
    fn huge_multiplier_saturates_at_max_delay() {
        let p = policy(Jitter::None)
            .to_builder()
            .with_multiplier(1e6)
            .with_max_delay(crate::MAX_DURATION)
            .with_max_attempts(10_001)
            .build()
            .unwrap();
        let last = p.backoff(SmallRng::seed_from_u64(1)).last();
        assert_eq!(last, Some(crate::MAX_DURATION));
    }

    #[test]
    fn decorrelated_at_cap_equal_to_initial_is_constant() {
        let p = policy(Jitter::Decorrelated)
            .to_builder()
            .with_max_delay(Duration::from_millis(100))
            .build()
            .unwrap();
        assert!(
            p.backoff(SmallRng::seed_from_u64(3))
                .all(|d| d == Duration::from_millis(100))
        );
    }
}
