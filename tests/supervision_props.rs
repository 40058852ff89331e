//! Properties of `RestartIntensity` and `RestartBackoff`, with explicit instants.

mod support;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use ractor_resilience_core::MAX_DURATION;
use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::supervision::{IntensityExceeded, RestartBackoff, RestartIntensity};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use support::{Timeline, ms, secs};

const NS: Duration = Duration::from_nanos(1);

// ===== RestartIntensity =====

/// The spec read naively: every crash ever, counted while `now − t ≤ window`.
fn naive_count(crashes: &[Instant], window: Duration, now: Instant) -> usize {
    crashes
        .iter()
        .filter(|&&t| now.saturating_duration_since(t) <= window)
        .count()
}

#[test]
fn sixth_crash_within_the_window_escalates_with_the_defaults() {
    let t = Timeline::new();
    let mut intensity = RestartIntensity::new(5, secs(60));
    for n in 0..5 {
        assert_eq!(
            intensity.record_crash(t.at(secs(10 * n))),
            Ok(n as usize + 1)
        );
    }
    assert_eq!(
        intensity.record_crash(t.at(secs(60))),
        Err(IntensityExceeded {
            crashes: 6,
            window: secs(60),
            max_restarts: 5
        }),
        "the first crash, 60 s old, still counts"
    );
}

#[test]
fn a_crash_leaves_the_window_strictly_after_it() {
    let t = Timeline::new();
    let mut intensity = RestartIntensity::new(1, secs(60));
    assert_eq!(intensity.record_crash(t.at(Duration::ZERO)), Ok(1));
    assert_eq!(
        intensity.record_crash(t.at(secs(60) + NS)),
        Ok(1),
        "60 s + 1 ns later the first crash has left"
    );
    let mut intensity = RestartIntensity::new(1, secs(60));
    intensity.record_crash(t.at(Duration::ZERO)).unwrap();
    assert!(intensity.record_crash(t.at(secs(60))).is_err());
}

fn gaps() -> impl Strategy<Value = Vec<u64>> {
    // Milliseconds between crashes: bursts, exact multiples of the window, long quiet spells.
    let gap = prop_oneof![
        4 => 0u64..50,
        2 => prop::sample::select(vec![0u64, 100, 200, 300]),
        1 => 0u64..1_000,
    ];
    prop::collection::vec(gap, 1..120)
}

proptest! {
    #[test]
    fn escalates_exactly_when_the_naive_reference_says_so(
        max_restarts in 0u32..6,
        window_ms in prop::sample::select(vec![0u64, 1, 100, 250]),
        gaps in gaps(),
        queries in prop::collection::vec(0u64..400, 1..5),
    ) {
        let t = Timeline::new();
        let window = ms(window_ms);
        let kept = max_restarts as usize + 1;
        let mut intensity = RestartIntensity::new(max_restarts, window);
        let mut all = Vec::new();
        let mut now = t.t0;
        for gap in gaps {
            now += ms(gap);
            all.push(now);
            let count = naive_count(&all, window, now);
            let expected = if count > max_restarts as usize {
                Err(IntensityExceeded { crashes: count.min(kept), window, max_restarts })
            } else {
                Ok(count)
            };
            prop_assert_eq!(intensity.record_crash(now), expected);
            for &q in &queries {
                let later = now + ms(q);
                prop_assert_eq!(
                    intensity.crashes(later),
                    naive_count(&all, window, later).min(kept)
                );
            }
        }
    }
}

// ===== RestartBackoff =====

/// The documented range of the `n`-th restart delay since a reset.
fn range(min: Duration, max: Duration, n: u32) -> (Duration, Duration) {
    let base = min
        .checked_mul(2u32.checked_pow(n).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX)
        .min(max);
    // 1 ns of slack: `mul_f64` rounds through seconds as f64.
    (base, (base.mul_f64(1.25) + NS).min(max))
}

#[test]
fn delays_double_from_min_to_max_within_a_quarter_of_jitter() {
    let t = Timeline::new();
    let mut backoff = RestartBackoff::new(ms(100), secs(10), secs(30)).unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    let bases = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
    for (n, base) in bases.into_iter().enumerate() {
        let delay = backoff.next_delay(t.at(Duration::ZERO), t.at(secs(1)), &mut rng);
        let (low, high) = (ms(base), ms(base).mul_f64(1.25).min(secs(10)));
        assert!(
            (low..=high).contains(&delay),
            "restart {n}: {delay:?} not in [{low:?}, {high:?}]"
        );
    }
}

#[test]
fn a_stable_run_of_reset_after_starts_over_and_a_shorter_one_does_not() {
    let t = Timeline::new();
    let started = t.at(Duration::ZERO);
    let mut backoff = RestartBackoff::new(secs(1), secs(60), secs(30)).unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    for _ in 0..3 {
        backoff.next_delay(started, t.at(secs(1)), &mut rng);
    }
    let almost = backoff.next_delay(started, t.at(secs(30) - NS), &mut rng);
    assert!(almost >= secs(8), "30 s − 1 ns is not stable: {almost:?}");
    assert_eq!(backoff.restarts(), 4);
    let stable = backoff.next_delay(started, t.at(secs(30)), &mut rng);
    assert!(stable <= ms(1250), "30 s is stable: {stable:?}");
    assert_eq!(backoff.restarts(), 1);
}

#[test]
fn settings_errors_name_the_field() {
    let field = |min, max, reset| RestartBackoff::new(min, max, reset).unwrap_err().field;
    assert_eq!(field(Duration::ZERO, secs(1), secs(1)), "min_backoff");
    assert_eq!(field(secs(2), secs(1), secs(1)), "min_backoff");
    assert_eq!(field(secs(1), MAX_DURATION + NS, secs(1)), "max_backoff");
    assert_eq!(field(secs(1), secs(2), MAX_DURATION + NS), "reset_after");
    assert!(RestartBackoff::new(secs(1), secs(1), Duration::ZERO).is_ok());
}

proptest! {
    /// The same arithmetic as the policy the supervisor used: with one RNG, the sequence of
    /// restart delays is the policy's sequence of delays, draw for draw.
    #[test]
    fn delays_are_the_seed_proportional_policy_s(
        min_ms in 1u64..5_000,
        extra_ms in 0u64..100_000,
        seed in any::<u64>(),
    ) {
        let (min, max) = (ms(min_ms), ms(min_ms + extra_ms));
        let policy = RetryPolicy::builder()
            .with_max_attempts(u32::MAX)
            .with_initial_delay(min)
            .with_max_delay(max)
            .with_multiplier(2.0)
            .with_jitter(Jitter::SEED_PROPORTIONAL)
            .build()
            .unwrap();
        let expected: Vec<_> = policy.backoff(SmallRng::seed_from_u64(seed)).take(40).collect();
        let t = Timeline::new();
        let mut backoff = RestartBackoff::new(min, max, secs(30)).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let actual: Vec<_> = (0..40)
            .map(|_| backoff.next_delay(t.t0, t.at(secs(1)), &mut rng))
            .collect();
        prop_assert_eq!(actual, expected);
    }

    /// Random runs before each crash: the restart count follows the reset rule and every delay
    /// lies in its documented range, within `[min_backoff, max_backoff]`.
    #[test]
    fn every_delay_is_in_range_and_resets_follow_stable_runs(
        min_ms in 1u64..2_000,
        extra_ms in 0u64..60_000,
        reset_after_ms in 0u64..10_000,
        runs in prop::collection::vec(0u64..12_000, 1..60),
        seed in any::<u64>(),
    ) {
        let (min, max, reset_after) = (ms(min_ms), ms(min_ms + extra_ms), ms(reset_after_ms));
        let mut backoff = RestartBackoff::new(min, max, reset_after).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut now = Timeline::new().t0;
        let mut n = 0u32; // the model's restart count
        for run in runs {
            let started = now;
            now += ms(run);
            if ms(run) >= reset_after {
                n = 0;
            }
            let delay = backoff.next_delay(started, now, &mut rng);
            let (low, high) = range(min, max, n);
            prop_assert!(
                (low..=high).contains(&delay),
                "restart {}: {:?} not in [{:?}, {:?}]", n, delay, low, high
            );
            prop_assert!(delay >= min && delay <= max);
            n += 1;
            prop_assert_eq!(backoff.restarts(), n);
            now += delay;
        }
    }
}

#[test]
fn a_huge_restart_count_saturates_at_max_backoff() {
    let t = Timeline::new();
    let mut backoff = RestartBackoff::new(ms(1), MAX_DURATION, MAX_DURATION).unwrap();
    let mut rng = SmallRng::seed_from_u64(0);
    let mut last = Duration::ZERO;
    for _ in 0..2_000 {
        last = backoff.next_delay(t.t0, t.at(secs(1)), &mut rng);
    }
    assert_eq!(last, MAX_DURATION);
}
