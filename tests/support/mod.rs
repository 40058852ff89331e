//! Small helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// An explicit timeline: one origin taken once, then `t.at(ms(n))`.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub t0: Instant,
}

impl Timeline {
    pub fn new() -> Self {
        Timeline { t0: Instant::now() }
    }

    pub fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }
}
