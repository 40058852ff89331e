//! [`RestartIntensity`]: OTP's restart intensity and period.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Counts crashes over a sliding window and says when one more is one too many (OTP's
/// `intensity`/`period`: more than `max_restarts` crashes within `restart_window` escalate).
///
/// A crash at `t` counts at `now` while `now − t ≤ window` (it leaves strictly after `window`).
/// Only the newest `max_restarts + 1` crashes are kept: older ones can never change a decision,
/// so memory is bounded by the settings, whatever the crash rate.
///
/// An earlier `now` than one already recorded counts as that latest time: the window never
/// moves back.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::supervision::RestartIntensity;
///
/// // At most 2 restarts within 10 s.
/// let mut intensity = RestartIntensity::new(2, Duration::from_secs(10));
/// let t0 = Instant::now();
/// assert_eq!(intensity.record_crash(t0), Ok(1));
/// assert_eq!(intensity.record_crash(t0 + Duration::from_secs(4)), Ok(2));
/// let err = intensity.record_crash(t0 + Duration::from_secs(8)).unwrap_err();
/// assert_eq!(err.crashes, 3);
/// assert_eq!(err.to_string(), "3 crashes within 10s (max_restarts = 2)");
///
/// // 10 s after the first crash it still counts; strictly after, it has left.
/// assert_eq!(intensity.crashes(t0 + Duration::from_secs(10)), 3);
/// assert_eq!(intensity.crashes(t0 + Duration::from_secs(10) + Duration::from_nanos(1)), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartIntensity {
    max_restarts: u32,
    window: Duration,
    /// Crash instants, oldest first; at most `max_restarts + 1` of them.
    crashes: VecDeque<Instant>,
}

/// More than `max_restarts` crashes within the window: the supervisor should escalate.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::supervision::IntensityExceeded;
///
/// let err = IntensityExceeded { crashes: 6, window: Duration::from_secs(60), max_restarts: 5 };
/// assert_eq!(err.to_string(), "6 crashes within 60s (max_restarts = 5)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{crashes} crashes within {window:?} (max_restarts = {max_restarts})")]
pub struct IntensityExceeded {
    /// Crashes within the window, this one included (at most `max_restarts + 1`: no more are
    /// kept).
    pub crashes: usize,
    /// The intensity window (`restart_window`).
    pub window: Duration,
    /// The crashes tolerated within the window.
    pub max_restarts: u32,
}

// ===== impl RestartIntensity =====

impl RestartIntensity {
    /// Tolerates `max_restarts` crashes within any `window` (`max_restarts = 0`: the first crash
    /// escalates).
    pub const fn new(max_restarts: u32, window: Duration) -> Self {
        Self {
            max_restarts,
            window,
            crashes: VecDeque::new(),
        }
    }

    /// The crashes tolerated within the window.
    pub const fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The intensity window.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// Records a crash at `now`.
    ///
    /// # Errors
    ///
    /// [`IntensityExceeded`] when this crash makes more than `max_restarts` within the window
    /// ending at `now`. Otherwise returns the crashes within that window, this one included.
    pub fn record_crash(&mut self, now: Instant) -> Result<usize, IntensityExceeded> {
        let now = self.crashes.back().map_or(now, |&latest| now.max(latest));
        self.crashes.push_back(now);
        self.prune(now);
        let max = usize::try_from(self.max_restarts).unwrap_or(usize::MAX);
        // Older crashes cannot matter: `max_restarts + 1` in the window already escalate.
        while self.crashes.len() > max.saturating_add(1) {
            self.crashes.pop_front();
        }
        let crashes = self.crashes.len();
        if crashes > max {
            Err(IntensityExceeded {
                crashes,
                window: self.window,
                max_restarts: self.max_restarts,
            })
        } else {
            Ok(crashes)
        }
    }

    /// The recorded crashes still within the window at `now` (at most `max_restarts + 1`).
    pub fn crashes(&self, now: Instant) -> usize {
        self.crashes
            .iter()
            .filter(|&&t| !self.expired(t, now))
            .count()
    }

    /// Forgets every crash.
    pub fn clear(&mut self) {
        self.crashes.clear();
    }

    fn expired(&self, crash: Instant, now: Instant) -> bool {
        now.saturating_duration_since(crash) > self.window
    }

    fn prune(&mut self, now: Instant) {
        while self.crashes.front().is_some_and(|&t| self.expired(t, now)) {
            self.crashes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn zero_max_restarts_escalates_on_the_first_crash() {
        let mut i = RestartIntensity::new(0, ms(1000));
        let err = i.record_crash(Instant::now()).unwrap_err();
        assert_eq!((err.crashes, err.max_restarts), (1, 0));
    }

    #[test]
    fn memory_stays_bounded_under_a_crash_storm() {
        let t0 = Instant::now();
        let mut i = RestartIntensity::new(3, ms(1000));
        for n in 0..10_000 {
            let _ = i.record_crash(t0 + ms(n % 7));
            assert!(i.crashes.len() <= 4);
        }
    }

    #[test]
    fn an_earlier_now_counts_as_the_latest() {
        let t0 = Instant::now();
        let mut i = RestartIntensity::new(5, ms(1000));
        i.record_crash(t0 + ms(5000)).unwrap();
        assert_eq!(i.record_crash(t0), Ok(2));
        assert_eq!(i.crashes(t0 + ms(6000)), 2);
        assert_eq!(i.crashes(t0 + ms(6001)), 0);
    }
}
