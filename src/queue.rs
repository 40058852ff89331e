//! How long a task may wait for a worker: CoDel on the queue's sojourn time, with adaptive LIFO.
//!
//! CoDel (Nichols & Jacobson, "Controlling Queue Delay", ACM Queue 2012) watches how long items
//! *wait*, not how many there are. A queue whose oldest item has waited longer than `target`
//! at every look for a whole `interval` is a *standing* queue: it only adds delay, and no burst
//! explains it. A burst that drains within `interval` is left alone, however long each item
//! takes to serve — what matters is that the waiting persists.
//!
//! Once the queue stands, this controller does what Facebook's "Fail at Scale" (Maurer, ACM
//! Queue 2015) does with its server queues: it sheds every item that has waited longer than
//! `target` (its caller is answered at once instead of after a wait that grows to
//! `capacity / throughput`), and serves the **newest** item first (adaptive LIFO: the newest has
//! the most of its caller's patience left). The queue stops standing when it runs empty.
//!
//! [`Codel`] is that controller: pure, fed the time. The queue owner shows it the wait of the
//! oldest item whenever it takes one ([`observe`](Codel::observe)), tells it when the queue is
//! empty, and asks it which items to shed and which end to serve.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ractor_resilience_core::queue::{Codel, CodelSettings};
//!
//! let ms = Duration::from_millis;
//! let settings = CodelSettings::new(ms(100), ms(1000))?;
//! let t0 = Instant::now();
//! let mut codel = Codel::new(settings);
//!
//! // The oldest item has waited 400 ms: above target, but not yet for a whole interval.
//! codel.observe(ms(400), t0);
//! assert!(!codel.congested());
//! assert!(!codel.shed(ms(400)));
//! // Still above target one interval later: the queue stands.
//! codel.observe(ms(900), t0 + ms(1000));
//! assert!(codel.congested());
//! assert!(codel.shed(ms(150)) && !codel.shed(ms(50)));
//! assert!(codel.lifo());
//! // It ran empty: back to absorbing bursts.
//! codel.queue_empty();
//! assert!(!codel.congested());
//! # Ok::<(), ractor_resilience_core::InvalidSettings>(())
//! ```

use std::time::{Duration, Instant};

use crate::InvalidSettings;
use crate::settings::check_duration;

/// The two delays of [`Codel`] and whether it serves newest-first while the queue stands.
///
/// # Default
/// `target` 100 ms, `interval` 1 s, adaptive LIFO on. CoDel's network defaults (5 ms / 100 ms)
/// suit packets, and Facebook's RPC queues used the same. Agents serve in tens of milliseconds
/// to seconds, so this project scales both by 20 and 10: a standing queue holds no task longer
/// than 100 ms, and waiting must persist for a second to count as standing. A burst that drains
/// is never shed, however slow each call; set `interval` to a few of your service times if a
/// backlog of slow calls should be tolerated longer.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::queue::CodelSettings;
///
/// let s = CodelSettings::default();
/// assert_eq!((s.target(), s.interval(), s.adaptive_lifo()), (Duration::from_millis(100), Duration::from_secs(1), true));
/// let err = CodelSettings::new(Duration::from_secs(2), Duration::from_secs(1)).unwrap_err();
/// assert_eq!(err.field, "queue_target");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodelSettings {
    target: Duration,
    interval: Duration,
    adaptive_lifo: bool,
}

impl CodelSettings {
    /// `target`: the wait above which the oldest item counts as waiting too long, and the
    /// longest wait while the queue stands (> 0, ≤ `interval`); `interval`: how long the oldest
    /// item must keep waiting too long for the queue to count as standing. Adaptive LIFO is on.
    pub fn new(target: Duration, interval: Duration) -> Result<Self, InvalidSettings> {
        check_duration("queue_target", target)?;
        check_duration("queue_interval", interval)?;
        if target.is_zero() {
            return Err(InvalidSettings::new(
                "queue_target",
                "must be greater than 0",
            ));
        }
        if target > interval {
            return Err(InvalidSettings::new(
                "queue_target",
                format!("must be at most queue_interval ({interval:?}), got {target:?}"),
            ));
        }
        Ok(CodelSettings {
            target,
            interval,
            adaptive_lifo: true,
        })
    }

    /// The same settings with adaptive LIFO on or off (off: always first in, first out).
    pub fn with_adaptive_lifo(mut self, on: bool) -> Self {
        self.adaptive_lifo = on;
        self
    }

    /// The wait that counts as too long, and the longest wait while the queue stands.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// How long waiting too long must persist for the queue to stand.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a standing queue serves its newest task first.
    pub fn adaptive_lifo(&self) -> bool {
        self.adaptive_lifo
    }
}

impl Default for CodelSettings {
    fn default() -> Self {
        CodelSettings {
            target: Duration::from_millis(100),
            interval: Duration::from_secs(1),
            adaptive_lifo: true,
        }
    }
}

/// The controller (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Codel {
    settings: CodelSettings,
    /// When the oldest item's wait, above target since then, makes the queue a standing one.
    first_above: Option<Instant>,
    congested: bool,
}

impl Codel {
    /// A controller for an empty queue.
    pub fn new(settings: CodelSettings) -> Self {
        Codel {
            settings,
            first_above: None,
            congested: false,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &CodelSettings {
        &self.settings
    }

    /// Replaces the settings, keeping what it knows of the queue.
    pub fn set_settings(&mut self, settings: CodelSettings) {
        self.settings = settings;
    }

    /// The oldest queued item has waited `waited` at `now` (shown whenever an item is taken):
    /// CoDel's persistence test. Above `target` at every look for a whole `interval`, the queue
    /// stands; at or below it once, the clock starts over.
    pub fn observe(&mut self, waited: Duration, now: Instant) {
        if waited <= self.settings.target {
            self.first_above = None;
            return;
        }
        match self.first_above {
            None => self.first_above = Some(now + self.settings.interval),
            Some(at) if now >= at => self.congested = true,
            Some(_) => {}
        }
    }

    /// The queue is empty: whatever stood has drained.
    pub fn queue_empty(&mut self) {
        self.first_above = None;
        self.congested = false;
    }

    /// Whether the queue stands.
    pub fn congested(&self) -> bool {
        self.congested
    }

    /// Whether an item that has waited `waited` is shed: the queue stands and it waited longer
    /// than `target`.
    pub fn shed(&self, waited: Duration) -> bool {
        self.congested && waited > self.settings.target
    }

    /// Whether the newest item is served first (adaptive LIFO, while the queue stands).
    pub fn lifo(&self) -> bool {
        self.settings.adaptive_lifo && self.congested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_that_drains_is_never_shed_however_long_it_waited() {
        let t0 = Instant::now();
        let mut codel = Codel::new(CodelSettings::default());
        // Five tasks of 10 s on four workers: the fifth waits 10 s, then the queue is empty.
        codel.observe(ms(10_000), t0 + ms(10_000));
        assert!(!codel.shed(ms(10_000)));
        codel.queue_empty();
        codel.observe(ms(10_000), t0 + ms(20_000));
        assert!(!codel.congested());
    }

    #[test]
    fn one_look_at_or_below_target_starts_the_interval_over() {
        let t0 = Instant::now();
        let mut codel = Codel::new(CodelSettings::default());
        codel.observe(ms(200), t0);
        codel.observe(ms(100), t0 + ms(500)); // exactly target: not above
        codel.observe(ms(200), t0 + ms(1000));
        assert!(!codel.congested(), "the clock restarted at 1000 ms");
        codel.observe(ms(200), t0 + ms(1999));
        assert!(!codel.congested());
        codel.observe(ms(200), t0 + ms(2000));
        assert!(
            codel.congested(),
            "a whole interval above target from 1000 ms"
        );
    }

    #[test]
    fn a_standing_queue_stays_standing_until_it_runs_empty() {
        let t0 = Instant::now();
        let mut codel = Codel::new(CodelSettings::default());
        codel.observe(ms(300), t0);
        codel.observe(ms(300), t0 + ms(1000));
        assert!(codel.congested() && codel.lifo());
        // Shedding leaves young items at the front: the queue still stands.
        codel.observe(ms(10), t0 + ms(1100));
        assert!(codel.congested());
        assert!(codel.shed(ms(101)) && !codel.shed(ms(100)));
        codel.queue_empty();
        assert!(!codel.congested() && !codel.lifo());
    }

    #[test]
    fn lifo_can_be_turned_off() {
        let t0 = Instant::now();
        let settings = CodelSettings::default().with_adaptive_lifo(false);
        let mut codel = Codel::new(settings);
        codel.observe(ms(300), t0);
        codel.observe(ms(300), t0 + ms(1000));
        assert!(codel.congested() && !codel.lifo());
    }

    #[test]
    fn settings_name_the_field() {
        assert_eq!(
            CodelSettings::new(Duration::ZERO, ms(1)).unwrap_err().field,
            "queue_target"
        );
        assert_eq!(
            CodelSettings::new(ms(1), Duration::from_secs(400 * 24 * 3600))
                .unwrap_err()
                .field,
            "queue_interval"
        );
    }
}
