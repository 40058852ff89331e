//! [`RestartBackoff`]: the delay before restarting a crashed worker.

use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use crate::InvalidSettings;
use crate::backoff::{clamp_to_duration, nanos};
use crate::settings::check_duration;

/// The multiplier between consecutive restart delays.
const MULTIPLIER: f64 = 2.0;
/// The most jitter adds: `+0–25%` (the seed's proportional jitter).
const JITTER: f64 = 0.25;

/// The delay before restarting one crashed worker (one slot): exponential from `min_backoff`,
/// doubling up to `max_backoff`, plus `0–25%` proportional jitter, reset to `min_backoff` once a
/// worker has run for `reset_after` before crashing (Akka's `BackoffSupervisor`).
///
/// The `n`-th restart since the last reset (`n = 0` first) waits
/// `min(max_backoff, min(max_backoff, min_backoff × 2ⁿ) × (1 + U[0, 0.25]))`: the `n`-th delay of
/// a [`RetryPolicy`](crate::backoff::RetryPolicy) with `multiplier` 2 and
/// [`Jitter::SEED_PROPORTIONAL`](crate::backoff::Jitter::SEED_PROPORTIONAL) (the same
/// arithmetic), computed in `O(1)` from one random draw instead of `n + 1`. As everywhere in
/// this crate, jitter never takes a delay above `max_backoff`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rand::{SeedableRng, rngs::SmallRng};
/// use ractor_resilience_core::supervision::RestartBackoff;
///
/// let secs = Duration::from_secs;
/// let mut backoff = RestartBackoff::new(secs(1), secs(10), secs(30))?;
/// let mut rng = SmallRng::seed_from_u64(7);
/// let t0 = Instant::now();
///
/// // Crash loops: 1 s, 2 s, 4 s, 8 s, then 10 s, each up to 25% longer but never above 10 s.
/// let first = backoff.next_delay(t0, t0 + secs(1), &mut rng);
/// assert!(first >= secs(1) && first <= Duration::from_millis(1250));
/// let second = backoff.next_delay(t0, t0 + secs(2), &mut rng);
/// assert!(second >= secs(2) && second <= Duration::from_millis(2500));
/// assert_eq!(backoff.restarts(), 2);
///
/// // A worker that ran 30 s before crashing starts over from 1 s.
/// let after_stable_run = backoff.next_delay(t0, t0 + secs(30), &mut rng);
/// assert!(after_stable_run <= Duration::from_millis(1250));
/// assert_eq!(backoff.restarts(), 1);
///
/// assert_eq!(RestartBackoff::new(secs(0), secs(10), secs(30)).unwrap_err().field, "min_backoff");
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RestartBackoff {
    min_backoff: Duration,
    max_backoff: Duration,
    reset_after: Duration,
    /// Restarts since the last reset.
    restarts: u32,
}

// ===== impl RestartBackoff =====

impl RestartBackoff {
    /// Validates the settings.
    ///
    /// * `min_backoff` - the first restart delay, greater than zero (a zero delay would restart
    ///   a crash-looping worker at once, and the proportional jitter needs a positive base).
    /// * `max_backoff` - the longest restart delay, at least `min_backoff`.
    /// * `reset_after` - a worker that ran this long before crashing restarts from
    ///   `min_backoff` again (zero: every restart waits `min_backoff`).
    ///
    /// # Errors
    ///
    /// [`InvalidSettings`] naming `min_backoff` (zero, or above `max_backoff`), `max_backoff`
    /// or `reset_after` (above [`MAX_DURATION`](crate::MAX_DURATION)).
    pub fn new(
        min_backoff: Duration,
        max_backoff: Duration,
        reset_after: Duration,
    ) -> Result<Self, InvalidSettings> {
        if min_backoff.is_zero() {
            return Err(InvalidSettings::new(
                "min_backoff",
                "must be greater than zero",
            ));
        }
        if min_backoff > max_backoff {
            return Err(InvalidSettings::new(
                "min_backoff",
                format!("must not exceed max_backoff ({max_backoff:?}), got {min_backoff:?}"),
            ));
        }
        check_duration("max_backoff", max_backoff)?;
        check_duration("reset_after", reset_after)?;
        Ok(Self {
            min_backoff,
            max_backoff,
            reset_after,
            restarts: 0,
        })
    }

    /// The first restart delay.
    pub const fn min_backoff(&self) -> Duration {
        self.min_backoff
    }

    /// The longest restart delay, jitter included.
    pub const fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// How long a worker must run before a crash for the backoff to start over.
    pub const fn reset_after(&self) -> Duration {
        self.reset_after
    }

    /// Restarts since the last reset (the exponent of the next delay, unless it resets).
    pub const fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Starts over from `min_backoff`.
    pub fn reset(&mut self) {
        self.restarts = 0;
    }

    /// The delay before restarting a worker that started at `started` and crashed at `now`.
    ///
    /// If it ran for at least `reset_after` (`now − started ≥ reset_after`), the backoff starts
    /// over first. Draws one `f64` from `rng`.
    pub fn next_delay<R: Rng + ?Sized>(
        &mut self,
        started: Instant,
        now: Instant,
        rng: &mut R,
    ) -> Duration {
        if now.saturating_duration_since(started) >= self.reset_after {
            self.restarts = 0;
        }
        let exponent = i32::try_from(self.restarts).unwrap_or(i32::MAX);
        self.restarts = self.restarts.saturating_add(1);
        // `ExponentialBackoff`'s arithmetic in f64 nanoseconds: powers of two are exact, so
        // `min_ns × 2ⁿ` equals its running product; an infinite power is capped by `min`.
        let cap_ns = nanos(self.max_backoff);
        let expo_ns = (nanos(self.min_backoff) * MULTIPLIER.powi(exponent)).min(cap_ns);
        let ns = expo_ns * (1.0 + JITTER * rng.random::<f64>());
        clamp_to_duration(ns, cap_ns, self.max_backoff)
    }
}
