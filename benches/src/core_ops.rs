//! The pure core's hot operations, without actors: each returns the mean cost of one operation
//! in ns over `iters` of them (a tight loop, `black_box`ed inputs and outputs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::{BreakerSettings, CircuitBreaker};
use ractor_resilience_core::estimator::AdaptiveTimeout;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

fn per_op(t0: Instant, ops: u64) -> f64 {
    t0.elapsed().as_nanos() as f64 / ops as f64
}

/// `try_acquire` + `on_success` on a Closed breaker with the default settings (the breaker
/// actor's work per call), the clock advancing 1 µs per call.
pub(crate) fn breaker_decision_ns(iters: u64) -> f64 {
    let mut cb = CircuitBreaker::new(BreakerSettings::default());
    let mut now = Instant::now();
    let step = Duration::from_micros(1);
    let took = Duration::from_micros(50);
    let t0 = Instant::now();
    for _ in 0..iters {
        now += step;
        let admission = cb.try_acquire(black_box(now));
        let permit = admission.decision.expect("a Closed breaker admits");
        let _ = black_box(admission.transitions);
        let _ = black_box(cb.on_success(permit, black_box(took), now));
    }
    per_op(t0, iters)
}

/// Latencies spread log-uniformly over 100 µs … 10 s, so that every observation lands in a
/// different bucket region (a constant latency would hit one cached counter).
fn latencies(n: usize) -> Vec<Duration> {
    let mut rng = SmallRng::seed_from_u64(0xbe7c);
    (0..n)
        .map(|_| {
            let exp: f64 = rng.random_range(0.0..5.0);
            Duration::from_secs_f64(1e-4 * 10f64.powf(exp))
        })
        .collect()
}

/// `observe` of the default adaptive timeout (windowed p95 over the last 1000 latencies).
pub(crate) fn estimator_observe_ns(iters: u64) -> f64 {
    let samples = latencies(4096);
    let mut est = AdaptiveTimeout::default();
    for &x in &samples {
        est.observe(x); // fill the window: measure the steady state, with evictions
    }
    let t0 = Instant::now();
    for i in 0..iters as usize {
        est.observe(black_box(samples[i & 4095]));
    }
    let ns = per_op(t0, iters);
    black_box(est.timeout());
    ns
}

/// `timeout()` of the same estimator (the quantile query that republishes the deadline).
pub(crate) fn estimator_timeout_ns(iters: u64) -> f64 {
    let samples = latencies(4096);
    let mut est = AdaptiveTimeout::default();
    for &x in &samples {
        est.observe(x);
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        black_box(black_box(&est).timeout());
    }
    per_op(t0, iters)
}

/// `next()` of the default retry policy's backoff (1 s doubling to 30 s, +0–25% jitter from a
/// `SmallRng`), with `max_attempts` raised so that one iterator yields 8 delays (1 s … 30 s,
/// the cap included) before `reset()`; the reset is amortised over those 8.
pub(crate) fn backoff_next_ns(iters: u64) -> f64 {
    let policy = RetryPolicy::default()
        .to_builder()
        .with_max_attempts(9)
        .build()
        .expect("valid policy");
    let mut rng = SmallRng::seed_from_u64(7);
    let mut backoff = policy.backoff(&mut rng);
    let t0 = Instant::now();
    for _ in 0..iters {
        match backoff.next() {
            Some(d) => {
                black_box(d);
            }
            None => {
                backoff.reset();
                black_box(backoff.next());
            }
        }
    }
    per_op(t0, iters)
}

/// One task's whole backoff with the default policy: build the iterator and drain it (2
/// delays, then `None`) — what the retry supervisor does for a task that uses every retry.
pub(crate) fn backoff_task_ns(iters: u64) -> f64 {
    let policy = RetryPolicy::default();
    let mut rng = SmallRng::seed_from_u64(7);
    let t0 = Instant::now();
    for _ in 0..iters {
        for d in black_box(&policy).backoff(&mut rng) {
            black_box(d);
        }
    }
    per_op(t0, iters)
}
