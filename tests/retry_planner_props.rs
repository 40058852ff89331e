//! Properties of the retry planner (`retry::plan`) and of `retry::task_seed`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use ractor_resilience_core::MAX_DURATION;
use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::retry::{GiveUpReason, RetryDecision, RetryInput, plan, task_seed};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use support::{ms, secs};

const NS: Duration = Duration::from_nanos(1);

fn failed() -> RetryInput {
    RetryInput {
        attempts: 1,
        max_attempts: 3,
        retryable: true,
        backoff_step: Some(ms(100)),
        pushback: None,
        breaker_wait: None,
        deadline_left: None,
    }
}

fn retry(delay: Duration) -> RetryDecision {
    RetryDecision::Retry { delay }
}

fn give_up(reason: GiveUpReason) -> RetryDecision {
    RetryDecision::GiveUp(reason)
}

// ===== examples =====

/// The reason the breaker's wait is added: retries parked behind one open period keep the
/// spread of their jittered steps instead of all firing when the period ends.
#[test]
fn retries_parked_behind_an_open_breaker_keep_their_spread() {
    let delays: Vec<_> = [100, 150, 230]
        .map(|step| {
            plan(&RetryInput {
                backoff_step: Some(ms(step)),
                breaker_wait: Some(secs(2)),
                ..failed()
            })
        })
        .into_iter()
        .collect();
    assert_eq!(delays, [retry(ms(2100)), retry(ms(2150)), retry(ms(2230))]);
}

#[test]
fn pushback_is_a_floor_not_an_addition() {
    let with = |pushback| {
        plan(&RetryInput {
            pushback: Some(pushback),
            ..failed()
        })
    };
    assert_eq!(with(ms(500)), retry(ms(500)));
    assert_eq!(with(ms(40)), retry(ms(100)), "a longer backoff wins");
    // With the breaker open as well, the pushback competes with wait + step.
    let both = RetryInput {
        pushback: Some(ms(1000)),
        breaker_wait: Some(ms(950)),
        ..failed()
    };
    assert_eq!(plan(&both), retry(ms(1050)));
}

#[test]
fn an_attempt_must_be_able_to_begin_strictly_before_the_deadline() {
    let with = |left| {
        plan(&RetryInput {
            deadline_left: Some(left),
            ..failed()
        })
    };
    assert_eq!(with(ms(100)), give_up(GiveUpReason::DeadlineTooClose));
    assert_eq!(with(ms(100) + NS), retry(ms(100)));
    assert_eq!(
        with(Duration::ZERO),
        give_up(GiveUpReason::DeadlineTooClose)
    );
}

#[test]
fn attempts_are_exhausted_by_the_count_or_by_the_backoff() {
    let last = RetryInput {
        attempts: 3,
        ..failed()
    };
    assert_eq!(plan(&last), give_up(GiveUpReason::AttemptsExhausted));
    let never = RetryInput {
        attempts: 1,
        max_attempts: 1,
        ..failed()
    };
    assert_eq!(plan(&never), give_up(GiveUpReason::AttemptsExhausted));
    let drained = RetryInput {
        backoff_step: None,
        ..failed()
    };
    assert_eq!(plan(&drained), give_up(GiveUpReason::AttemptsExhausted));
    // Exhaustion is reported before a deadline problem.
    let both = RetryInput {
        deadline_left: Some(Duration::ZERO),
        ..last
    };
    assert_eq!(plan(&both), give_up(GiveUpReason::AttemptsExhausted));
}

#[test]
fn not_retryable_is_final_even_with_attempts_left() {
    let input = RetryInput {
        retryable: false,
        ..failed()
    };
    assert_eq!(plan(&input), give_up(GiveUpReason::NotRetryable));
}

/// The planner driven by a real backoff: the steps come from the policy's iterator, and the
/// plan ends exactly when the policy says so.
#[test]
fn a_policy_backoff_drives_the_planner_to_exhaustion() {
    let policy = RetryPolicy::builder()
        .with_max_attempts(4)
        .with_initial_delay(ms(100))
        .without_jitter()
        .build()
        .unwrap();
    let mut backoff = policy.backoff(SmallRng::seed_from_u64(0));
    let mut decisions = Vec::new();
    for attempts in 1..=4 {
        decisions.push(plan(&RetryInput {
            attempts,
            max_attempts: policy.max_attempts(),
            backoff_step: backoff.next(),
            ..failed()
        }));
    }
    assert_eq!(
        decisions,
        [
            retry(ms(100)),
            retry(ms(200)),
            retry(ms(400)),
            give_up(GiveUpReason::AttemptsExhausted)
        ]
    );
}

// ===== properties =====

/// Mostly small durations, sometimes the edges (zero, the cap, beyond it).
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        8 => (0u64..10_000).prop_map(ms),
        1 => Just(Duration::ZERO),
        1 => prop_oneof![
            Just(MAX_DURATION),
            Just(MAX_DURATION + NS),
            Just(Duration::MAX),
            (0u64..u64::MAX).prop_map(Duration::from_nanos),
        ],
    ]
}

fn input() -> impl Strategy<Value = RetryInput> {
    (
        (0u32..6, 0u32..6, prop::bool::weighted(0.8)),
        prop::option::weighted(0.9, duration()),
        prop::option::of(duration()),
        prop::option::of(duration()),
        prop::option::of(duration()),
    )
        .prop_map(
            |((attempts, max_attempts, retryable), step, pushback, wait, left)| RetryInput {
                attempts,
                max_attempts,
                retryable,
                backoff_step: step,
                pushback,
                breaker_wait: wait,
                deadline_left: left,
            },
        )
}

fn nanos(d: Option<Duration>) -> u128 {
    d.map_or(0, |d| d.as_nanos())
}

/// The spec, written independently in `u128` nanoseconds (no saturation needed).
fn reference(i: &RetryInput) -> RetryDecision {
    if !i.retryable {
        return give_up(GiveUpReason::NotRetryable);
    }
    if i.attempts >= i.max_attempts || i.backoff_step.is_none() {
        return give_up(GiveUpReason::AttemptsExhausted);
    }
    let delay = (nanos(i.breaker_wait) + nanos(i.backoff_step))
        .max(nanos(i.pushback))
        .min(MAX_DURATION.as_nanos());
    if i.deadline_left.is_some_and(|left| delay >= left.as_nanos()) {
        return give_up(GiveUpReason::DeadlineTooClose);
    }
    retry(Duration::from_nanos(delay as u64))
}

/// `d` grown by `extra` (saturating), `None` counting as zero.
fn grow(d: Option<Duration>, extra: Duration) -> Option<Duration> {
    Some(
        d.unwrap_or(Duration::ZERO)
            .checked_add(extra)
            .unwrap_or(Duration::MAX),
    )
}

/// `after` is "no earlier" than `before`: a retry no sooner, or a give-up for the deadline.
fn no_earlier(before: RetryDecision, after: RetryDecision) -> Result<(), TestCaseError> {
    match (before, after) {
        (RetryDecision::Retry { delay: a }, RetryDecision::Retry { delay: b }) => {
            prop_assert!(b >= a, "delay shrank from {:?} to {:?}", a, b);
        }
        (RetryDecision::Retry { .. }, RetryDecision::GiveUp(reason)) => {
            prop_assert_eq!(reason, GiveUpReason::DeadlineTooClose);
        }
        (RetryDecision::GiveUp(a), b) => prop_assert_eq!(give_up(a), b),
    }
    Ok(())
}

proptest! {
    #[test]
    fn plan_matches_the_reference(i in input()) {
        prop_assert_eq!(plan(&i), reference(&i));
    }

    #[test]
    fn a_retry_respects_every_bound(i in input()) {
        if let RetryDecision::Retry { delay } = plan(&i) {
            prop_assert!(i.retryable);
            prop_assert!(i.attempts < i.max_attempts);
            let step = i.backoff_step.expect("no retry without a backoff step");
            let floor = i.pushback.unwrap_or_default().min(MAX_DURATION);
            prop_assert!(delay >= floor, "{:?} < pushback {:?}", delay, floor);
            let parked = i.breaker_wait.unwrap_or_default().saturating_add(step).min(MAX_DURATION);
            prop_assert!(delay >= parked, "{:?} < wait + step {:?}", delay, parked);
            prop_assert!(delay <= MAX_DURATION);
            if let Some(left) = i.deadline_left {
                prop_assert!(delay < left, "{:?} does not begin before {:?}", delay, left);
            }
        }
    }

    #[test]
    fn never_retries_without_attempts_or_retryability(i in input()) {
        let decision = plan(&i);
        if !i.retryable {
            prop_assert_eq!(decision, give_up(GiveUpReason::NotRetryable));
        } else if i.attempts >= i.max_attempts || i.backoff_step.is_none() {
            prop_assert_eq!(decision, give_up(GiveUpReason::AttemptsExhausted));
        }
    }

    #[test]
    fn more_pushback_wait_or_step_never_retries_sooner(i in input(), extra in duration()) {
        let before = plan(&i);
        no_earlier(before, plan(&RetryInput { pushback: grow(i.pushback, extra), ..i }))?;
        no_earlier(before, plan(&RetryInput { breaker_wait: grow(i.breaker_wait, extra), ..i }))?;
        if i.backoff_step.is_some() {
            no_earlier(before, plan(&RetryInput { backoff_step: grow(i.backoff_step, extra), ..i }))?;
        }
    }

    #[test]
    fn more_time_before_the_deadline_never_gives_up_sooner(i in input(), extra in duration()) {
        let before = plan(&i);
        // `None` is no deadline at all: more time than any `Some`.
        let grown = i.deadline_left.and_then(|left| left.checked_add(extra));
        for later in [grown, None] {
            let after = plan(&RetryInput { deadline_left: later, ..i });
            match before {
                RetryDecision::Retry { .. } => prop_assert_eq!(after, before),
                RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose) => {
                    prop_assert!(after == before || after.delay().is_some());
                }
                RetryDecision::GiveUp(_) => prop_assert_eq!(after, before),
            }
        }
    }

    #[test]
    fn more_attempts_made_never_turn_a_give_up_into_a_retry(i in input(), more in 0u32..4) {
        let after = plan(&RetryInput { attempts: i.attempts.saturating_add(more), ..i });
        if plan(&i).delay().is_none() {
            prop_assert_eq!(after.delay(), None);
        }
    }

    #[test]
    fn task_seeds_of_one_agent_never_collide(agent in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
        prop_assume!(a != b);
        prop_assert_ne!(task_seed(agent, a), task_seed(agent, b));
    }
}

/// Same agent seed and task id, same jittered delays, whatever the other tasks drew; and
/// consecutive ids do not share delays.
#[test]
fn per_task_seeds_give_reproducible_and_distinct_jitter() {
    let policy = RetryPolicy::builder()
        .with_max_attempts(5)
        .with_jitter(Jitter::Full)
        .build()
        .unwrap();
    let delays = |task: u64| -> Vec<Duration> {
        policy
            .backoff(SmallRng::seed_from_u64(task_seed(2024, task)))
            .collect()
    };
    let first: Vec<_> = (0..1000).map(delays).collect();
    // Replayed in reverse order (another interleaving), each task draws the same delays.
    for task in (0..1000).rev() {
        assert_eq!(delays(task), first[task as usize], "task {task}");
    }
    let distinct: HashSet<_> = first.iter().map(|d| d[0]).collect();
    assert!(
        distinct.len() > 990,
        "{} distinct first delays",
        distinct.len()
    );
}
