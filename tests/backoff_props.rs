//! Properties of `ExponentialBackoff`: ranges, means, determinism, cap, length.

use std::time::Duration;

use proptest::prelude::*;
use ractor_resilience_core::Ratio;
use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const DRAWS: usize = 100_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 100 ms × 2ⁿ capped at 3 s: 100, 200, 400, 800, 1600, 3000, 3000.
fn policy(jitter: Jitter) -> RetryPolicy {
    RetryPolicy::builder()
        .with_max_attempts(8)
        .with_initial_delay(ms(100))
        .with_max_delay(ms(3000))
        .with_multiplier(2.0)
        .with_jitter(jitter)
        .build()
        .unwrap()
}

const ALL: [Jitter; 5] = [
    Jitter::None,
    Jitter::SEED_PROPORTIONAL,
    Jitter::Full,
    Jitter::Equal,
    Jitter::Decorrelated,
];

/// The documented range of retry `n`'s delay, given the previous delay (for decorrelated).
fn range(policy: &RetryPolicy, n: u32, previous: Option<Duration>) -> (Duration, Duration) {
    let expo = policy.base_delay(n);
    let cap = policy.max_delay();
    match policy.jitter() {
        Jitter::None => (expo, expo),
        Jitter::Proportional(f) => (expo, expo.mul_f64(1.0 + f.get()).min(cap)),
        Jitter::Full => (Duration::ZERO, expo),
        Jitter::Equal => (expo / 2, expo),
        Jitter::Decorrelated => {
            let previous = previous.unwrap_or(policy.initial_delay());
            (policy.initial_delay(), (previous * 3).min(cap))
        }
    }
}

#[test]
fn every_jitter_kind_stays_in_its_documented_range() {
    for jitter in ALL {
        let policy = policy(jitter);
        let mut rng = SmallRng::seed_from_u64(11);
        let mut draws = 0;
        while draws < DRAWS {
            let mut previous = None;
            for (n, delay) in policy.backoff(&mut rng).enumerate() {
                let (low, high) = range(&policy, n as u32, previous);
                assert!(
                    low <= delay && delay <= high,
                    "{jitter:?} retry {n}: {delay:?} ∉ [{low:?}, {high:?}]"
                );
                previous = Some(delay);
                draws += 1;
            }
        }
    }
}

/// The mean of retry 3's delay (expo = 800 ms) over 10⁵ independent backoffs.
fn mean_of_retry_3(jitter: Jitter) -> f64 {
    let policy = policy(jitter);
    let mut rng = SmallRng::seed_from_u64(5);
    let sum: f64 = (0..DRAWS)
        .map(|_| policy.backoff(&mut rng).nth(3).unwrap().as_secs_f64())
        .sum();
    sum / DRAWS as f64
}

// With 10⁵ uniform samples the standard error of the mean is under 0.2% of it, so 2% is > 10σ.
#[test]
fn full_jitter_mean_is_half_the_delay() {
    let mean = mean_of_retry_3(Jitter::Full);
    assert!((mean / 0.4 - 1.0).abs() < 0.02, "mean {mean}");
}

#[test]
fn equal_jitter_mean_is_three_quarters_of_the_delay() {
    let mean = mean_of_retry_3(Jitter::Equal);
    assert!((mean / 0.6 - 1.0).abs() < 0.02, "mean {mean}");
}

#[test]
fn proportional_jitter_mean_adds_half_the_fraction() {
    let mean = mean_of_retry_3(Jitter::SEED_PROPORTIONAL);
    assert!((mean / (0.8 * 1.125) - 1.0).abs() < 0.02, "mean {mean}");
}

#[test]
fn same_seed_gives_the_same_delays() {
    for jitter in ALL {
        let policy = policy(jitter);
        let run = |seed| -> Vec<Duration> {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..100)
                .flat_map(|_| policy.backoff(&mut rng).collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(run(99), run(99), "{jitter:?}");
        if jitter != Jitter::None {
            assert_ne!(run(99), run(100), "{jitter:?}");
        }
    }
}

fn jitter_strategy() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        (0.0..=1.0f64).prop_map(|f| Jitter::Proportional(Ratio::new("jitter", f).unwrap())),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

fn policy_strategy() -> impl Strategy<Value = RetryPolicy> {
    (
        1u32..=40,
        1u64..=10_000_000_000,    // initial delay, ns: 1 ns … 10 s
        0u64..=3_600_000_000_000, // max − initial, ns: up to 1 h
        prop_oneof![1.0..=3.0f64, 1.0..=1e6f64],
        jitter_strategy(),
    )
        .prop_map(|(attempts, initial, extra, multiplier, jitter)| {
            RetryPolicy::builder()
                .with_max_attempts(attempts)
                .with_initial_delay(Duration::from_nanos(initial))
                .with_max_delay(Duration::from_nanos(initial + extra))
                .with_multiplier(multiplier)
                .with_jitter(jitter)
                .build()
                .unwrap()
        })
}

proptest! {
    #[test]
    fn no_delay_exceeds_max_delay(policy in policy_strategy(), seed: u64) {
        for delay in policy.backoff(SmallRng::seed_from_u64(seed)) {
            prop_assert!(delay <= policy.max_delay(), "{delay:?}");
        }
    }

    #[test]
    fn without_jitter_delays_never_decrease(policy in policy_strategy(), seed: u64) {
        let policy = policy.to_builder().without_jitter().build().unwrap();
        let delays: Vec<_> = policy.backoff(SmallRng::seed_from_u64(seed)).collect();
        prop_assert_eq!(delays.first().copied().unwrap_or(policy.initial_delay()), policy.initial_delay());
        prop_assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    }

    #[test]
    fn yields_max_attempts_minus_one_delays_then_none(policy in policy_strategy(), seed: u64) {
        let mut backoff = policy.backoff(SmallRng::seed_from_u64(seed));
        for yielded in 0..policy.max_attempts() - 1 {
            prop_assert_eq!(backoff.remaining(), policy.max_attempts() - 1 - yielded);
            prop_assert!(backoff.next().is_some());
        }
        for _ in 0..3 {
            prop_assert_eq!(backoff.next(), None);
        }
        prop_assert_eq!(backoff.retries(), policy.max_attempts() - 1);
    }

    #[test]
    fn decorrelated_never_goes_below_initial_delay(policy in policy_strategy(), seed: u64) {
        let policy = policy.to_builder().with_jitter(Jitter::Decorrelated).build().unwrap();
        for delay in policy.backoff(SmallRng::seed_from_u64(seed)) {
            prop_assert!(delay >= policy.initial_delay() && delay <= policy.max_delay());
        }
    }

    #[test]
    fn jittered_delays_stay_in_range_for_any_policy(policy in policy_strategy(), seed: u64) {
        let mut previous = None;
        for (n, delay) in policy.backoff(SmallRng::seed_from_u64(seed)).enumerate() {
            let (low, high) = range(&policy, n as u32, previous);
            // `base_delay` uses `powi`, the iterator a running product: allow 1 µs of rounding.
            let slack = Duration::from_micros(1);
            prop_assert!(low.saturating_sub(slack) <= delay && delay <= high + slack,
                "retry {}: {:?} ∉ [{:?}, {:?}]", n, delay, low, high);
            previous = Some(delay);
        }
    }
}
