//! The seed's (`resilience-phase-2.4`) retry behaviour: defaults, timeline and validation.

use std::time::Duration;

use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::{InvalidSettings, Ratio};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn default_policy_has_the_seed_values() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts(), 3);
    assert_eq!(policy.initial_delay(), Duration::from_secs(1));
    assert_eq!(policy.max_delay(), Duration::from_secs(30));
    assert_eq!(policy.multiplier(), 2.0);
    assert_eq!(
        policy.jitter(),
        Jitter::Proportional(Ratio::new("jitter", 0.25).unwrap())
    );
    assert_eq!(RetryPolicy::builder().build(), Ok(policy));
}

/// The seed's protocol `Send` policy (2 attempts, 100 ms … 1 s, ×2) with one more attempt.
#[test]
fn seed_timeline_without_jitter_is_exact() {
    let policy = RetryPolicy::builder()
        .with_max_attempts(3)
        .with_initial_delay(ms(100))
        .with_max_delay(ms(1000))
        .with_multiplier(2.0)
        .without_jitter()
        .build()
        .unwrap();
    let mut backoff = policy.backoff(SmallRng::seed_from_u64(0));
    assert_eq!(backoff.next(), Some(ms(100)));
    assert_eq!(backoff.next(), Some(ms(200)));
    assert_eq!(backoff.next(), None);
    assert_eq!(backoff.next(), None);
}

/// The seed's table: "Attempt 1: 1s + jitter (0-250ms) … Max: 30s + jitter"; here the cap holds.
#[test]
fn seed_default_jitter_adds_up_to_a_quarter_within_the_cap() {
    let policy = RetryPolicy::builder()
        .with_max_attempts(10)
        .build()
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(2024);
    for _ in 0..1000 {
        for (n, delay) in policy.backoff(&mut rng).enumerate() {
            let base = Duration::from_secs(1 << n.min(5)).min(Duration::from_secs(30));
            assert!(
                delay >= base && delay <= base.mul_f64(1.25),
                "retry {n}: {delay:?}"
            );
            assert!(delay <= Duration::from_secs(30), "retry {n}: {delay:?}");
        }
    }
}

fn field_of(result: Result<RetryPolicy, InvalidSettings>) -> &'static str {
    result.unwrap_err().field
}

#[test]
fn zero_attempts_is_rejected() {
    assert_eq!(
        field_of(RetryPolicy::builder().with_max_attempts(0).build()),
        "max_attempts"
    );
}

#[test]
fn shrinking_multiplier_is_rejected() {
    assert_eq!(
        field_of(RetryPolicy::builder().with_multiplier(0.5).build()),
        "multiplier"
    );
}

#[test]
fn nan_multiplier_is_rejected() {
    assert_eq!(
        field_of(RetryPolicy::builder().with_multiplier(f64::NAN).build()),
        "multiplier"
    );
}

#[test]
fn initial_delay_above_max_delay_is_rejected() {
    let result = RetryPolicy::builder()
        .with_initial_delay(Duration::from_secs(31))
        .with_max_delay(Duration::from_secs(30))
        .build();
    let err = result.unwrap_err();
    assert_eq!(err.field, "initial_delay");
    assert_eq!(
        err.to_string(),
        "invalid `initial_delay`: must not exceed max_delay (30s), got 31s"
    );
}

#[test]
fn zero_initial_delay_is_rejected() {
    assert_eq!(
        field_of(
            RetryPolicy::builder()
                .with_initial_delay(Duration::ZERO)
                .build()
        ),
        "initial_delay"
    );
}

#[test]
fn one_attempt_means_no_retry() {
    let policy = RetryPolicy::builder().with_max_attempts(1).build().unwrap();
    assert_eq!(policy.backoff(SmallRng::seed_from_u64(0)).count(), 0);
}

/// "Retry at once": a zero `initial_delay` without jitter gives zero delays, every time.
#[test]
fn zero_initial_delay_without_jitter_retries_at_once() {
    let policy = RetryPolicy::builder()
        .with_max_attempts(4)
        .with_initial_delay(Duration::ZERO)
        .without_jitter()
        .build()
        .expect("zero initial_delay with jitter none is valid");
    assert_eq!(policy.initial_delay(), Duration::ZERO);
    let delays: Vec<_> = policy.backoff(SmallRng::seed_from_u64(0)).collect();
    assert_eq!(delays, [Duration::ZERO; 3]);
    assert_eq!(policy.base_delay(u32::MAX), Duration::ZERO);
}

/// Every jitter kind scales the base delay, so a zero base would silently turn it off: the
/// builder asks for jitter none instead, naming `initial_delay`.
#[test]
fn zero_initial_delay_with_any_jitter_is_rejected() {
    for jitter in [
        Jitter::SEED_PROPORTIONAL,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let err = RetryPolicy::builder()
            .with_initial_delay(Duration::ZERO)
            .with_jitter(jitter)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "initial_delay", "{jitter:?}");
        assert!(err.reason.contains("jitter"), "{jitter:?}: {err}");
    }
}
