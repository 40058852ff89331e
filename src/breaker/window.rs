//! The sliding windows behind the rate policies: a ring of the last `n` outcomes, or
//! [`TIME_WINDOW_BUCKETS`] time buckets. Memory is fixed by the settings, never by traffic.

use std::time::{Duration, Instant};

use super::settings::{SlidingWindow, TIME_WINDOW_BUCKETS};

/// Counts over the window.
///
/// ```
/// use ractor_resilience_core::breaker::WindowCounts;
///
/// let c = WindowCounts { calls: 4, failures: 1, slow: 2 };
/// assert_eq!((c.failure_rate(), c.slow_rate()), (0.25, 0.5));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Recorded calls (successes and failures; ignored outcomes are not recorded).
    pub calls: u32,
    /// Counted failures.
    pub failures: u32,
    /// Calls slower than `slow_call_duration` (successful or not).
    pub slow: u32,
}

impl WindowCounts {
    fn add(&mut self, failure: bool, slow: bool) {
        self.calls += 1;
        self.failures += u32::from(failure);
        self.slow += u32::from(slow);
    }

    fn sub(&mut self, failure: bool, slow: bool) {
        self.calls -= 1;
        self.failures -= u32::from(failure);
        self.slow -= u32::from(slow);
    }

    /// Failures ÷ calls (0 when empty).
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// Slow calls ÷ calls (0 when empty).
    pub fn slow_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

const FAILURE: u8 = 0b01;
const SLOW: u8 = 0b10;

#[derive(Debug, Clone)]
pub(crate) enum Window {
    Count {
        /// Outcome bits, oldest at `head` once full.
        ring: Box<[u8]>,
        head: usize,
        len: usize,
        counts: WindowCounts,
    },
    Time {
        width: Duration,
        /// The instant bucket 0 starts at: the first recorded call's time.
        epoch: Option<Instant>,
        /// (absolute bucket index, counts) per slot.
        buckets: Box<[(u64, WindowCounts); TIME_WINDOW_BUCKETS]>,
    },
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow) -> Self {
        match kind {
            SlidingWindow::Count(n) => Window::Count {
                ring: vec![0; n.get() as usize].into_boxed_slice(),
                head: 0,
                len: 0,
                counts: WindowCounts::default(),
            },
            SlidingWindow::Time(d) => Window::Time {
                width: (d / TIME_WINDOW_BUCKETS as u32).max(Duration::from_nanos(1)),
                epoch: None,
                buckets: Box::new([(0, WindowCounts::default()); TIME_WINDOW_BUCKETS]),
            },
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count {
                head, len, counts, ..
            } => {
                *head = 0;
                *len = 0;
                *counts = WindowCounts::default();
            }
            Window::Time { epoch, buckets, .. } => {
                *epoch = None;
                **buckets = [(0, WindowCounts::default()); TIME_WINDOW_BUCKETS];
            }
        }
    }

    pub(crate) fn record(&mut self, failure: bool, slow: bool, now: Instant) {
        match self {
            Window::Count {
                ring,
                head,
                len,
                counts,
            } => {
                let cap = ring.len();
                let bits = if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 };
                if *len == cap {
                    let old = ring[*head];
                    counts.sub(old & FAILURE != 0, old & SLOW != 0);
                    ring[*head] = bits;
                    *head = if *head + 1 == cap { 0 } else { *head + 1 };
                } else {
                    let i = *head + *len;
                    ring[if i >= cap { i - cap } else { i }] = bits;
                    *len += 1;
                }
                counts.add(failure, slow);
            }
            Window::Time {
                width,
                epoch,
                buckets,
            } => {
                let origin = *epoch.get_or_insert(now);
                let index = bucket_index(origin, *width, now);
                let slot = &mut buckets[(index % TIME_WINDOW_BUCKETS as u64) as usize];
                if slot.0 != index {
                    *slot = (index, WindowCounts::default());
                }
                slot.1.add(failure, slow);
            }
        }
    }

    /// The counts of the calls still inside the window at `now`.
    pub(crate) fn counts(&self, now: Instant) -> WindowCounts {
        match self {
            Window::Count { counts, .. } => *counts,
            Window::Time {
                width,
                epoch,
                buckets,
            } => {
                let Some(origin) = *epoch else {
                    return WindowCounts::default();
                };
                let current = bucket_index(origin, *width, now);
                let oldest = current.saturating_sub(TIME_WINDOW_BUCKETS as u64 - 1);
                let mut total = WindowCounts::default();
                for (index, c) in buckets.iter() {
                    if (oldest..=current).contains(index) {
                        total.calls += c.calls;
                        total.failures += c.failures;
                        total.slow += c.slow;
                    }
                }
                total
            }
        }
    }
}

fn bucket_index(origin: Instant, width: Duration, now: Instant) -> u64 {
    let elapsed = now.saturating_duration_since(origin);
    (elapsed.as_nanos() / width.as_nanos()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn count_window_keeps_only_the_last_n_outcomes() {
        let now = Instant::now();
        let mut w = Window::new(SlidingWindow::Count(NonZeroU32::new(3).unwrap()));
        w.record(true, false, now);
        w.record(true, true, now);
        w.record(false, false, now);
        assert_eq!(
            w.counts(now),
            WindowCounts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        w.record(false, false, now); // evicts the first failure
        assert_eq!(
            w.counts(now),
            WindowCounts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        w.record(false, false, now); // evicts the slow failure
        assert_eq!(
            w.counts(now),
            WindowCounts {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_forgets_calls_older_than_the_window() {
        let t0 = Instant::now();
        let mut w = Window::new(SlidingWindow::Time(ms(1000)));
        w.record(true, false, t0);
        w.record(false, false, t0 + ms(950));
        assert_eq!(w.counts(t0 + ms(950)).calls, 2);
        // Bucket width 100 ms: the first call's bucket [0, 100) leaves at 1000 ms.
        assert_eq!(w.counts(t0 + ms(999)).failures, 1);
        assert_eq!(
            w.counts(t0 + ms(1000)),
            WindowCounts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        // A slot reused after a long gap starts from zero.
        w.record(true, false, t0 + ms(5000));
        assert_eq!(
            w.counts(t0 + ms(5000)),
            WindowCounts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    /// `SlidingWindow::Time`'s documented bound: a call counts for more than 9 buckets
    /// (`0.9 × duration`) and at most `duration`; exactly, until the 10th bucket after its own
    /// begins.
    #[test]
    fn time_window_counts_a_call_between_nine_tenths_and_all_of_duration() {
        let ns = Duration::from_nanos;
        // 1 s divides into 100 ms buckets; 1 s + 7 ns leaves 7 ns over (the window is 10 buckets).
        for d in [ms(1000), ms(1000) + ns(7)] {
            let w = d / TIME_WINDOW_BUCKETS as u32;
            for offset in [ns(0), ns(1), ms(50), w - ns(1)] {
                let t0 = Instant::now();
                let mut window = Window::new(SlidingWindow::Time(d));
                window.record(false, false, t0); // buckets are aligned on the first call
                let t = t0 + 3 * w + offset;
                window.record(true, false, t);
                let counted = |at: Instant| window.counts(at).failures == 1;
                let case = format!("duration {d:?}, offset {offset:?} into bucket 3");
                assert!(counted(t), "{case}: at t");
                // More than 9 buckets: 0.9 × duration when it divides into nanosecond buckets.
                assert!(counted(t + 9 * w), "{case}: at t + 9 buckets");
                if w * TIME_WINDOW_BUCKETS as u32 == d {
                    assert!(counted(t + d.mul_f64(0.9)), "{case}: at t + 0.9·d");
                }
                // Exact edge: bucket 3 leaves when bucket 13 starts.
                assert!(
                    counted(t0 + 13 * w - ns(1)),
                    "{case}: last instant of bucket 12"
                );
                assert!(!counted(t0 + 13 * w), "{case}: first instant of bucket 13");
                assert!(!counted(t + d), "{case}: at t + duration");
            }
        }
    }
}
