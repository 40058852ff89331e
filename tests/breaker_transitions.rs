//! Example-based tests of the breaker's documented transitions, on explicit instants.

mod support;

use std::time::Duration;

use ractor_resilience_core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, CircuitBreaker, CircuitState, Permit,
    TransitionReason,
};
use support::{Timeline, ms, secs};

fn fail(cb: &mut CircuitBreaker, now: std::time::Instant) {
    let permit = cb.try_acquire(now).decision.expect("admitted");
    let _ = cb.on_failure(permit, ms(1), now);
}

fn succeed(cb: &mut CircuitBreaker, now: std::time::Instant) {
    let permit = cb.try_acquire(now).decision.expect("admitted");
    let _ = cb.on_success(permit, ms(1), now);
}

#[test]
fn seed_test_three_failures_open_and_next_call_fails_fast() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(3)
            .with_open_duration(secs(1))
            .with_half_open_max_wait(Some(secs(5)))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        fail(&mut cb, t.t0);
    }
    assert_eq!(cb.state().kind(), BreakerState::Open);
    let rejected = cb.try_acquire(t.t0).decision.unwrap_err();
    assert_eq!(rejected.state, BreakerState::Open);
    assert_eq!(rejected.retry_after, Some(t.at(secs(1))));
}

#[test]
fn success_resets_the_consecutive_failure_count() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(3)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    succeed(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    assert_eq!(
        *cb.state(),
        CircuitState::Closed {
            consecutive_failures: 2
        }
    );
}

#[test]
fn open_admits_nothing_before_until_and_half_opens_at_until() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_open_duration(secs(10))
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    assert_eq!(cb.next_deadline(), Some(t.at(secs(10))));
    assert!(
        cb.try_acquire(t.at(secs(10) - Duration::from_nanos(1)))
            .decision
            .is_err()
    );
    let admission = cb.try_acquire(t.at(secs(10)));
    assert!(admission.decision.unwrap().is_probe());
    let transition = admission.transitions.last().unwrap();
    assert_eq!(
        (transition.from, transition.to),
        (BreakerState::Open, BreakerState::HalfOpen)
    );
    assert_eq!(transition.at, t.at(secs(10)));
    assert_eq!(transition.reason, TransitionReason::OpenElapsed);
}

#[test]
fn advance_half_opens_without_traffic() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    assert!(cb.advance(t.at(secs(9))).is_empty());
    let transitions = cb.advance(t.at(secs(10)));
    assert_eq!(transitions.len(), 1);
    assert_eq!(cb.state().kind(), BreakerState::HalfOpen);
    // No probe out: nothing to wait for.
    assert_eq!(cb.next_deadline(), None);
}

#[test]
fn half_open_admits_at_most_n_probes_and_closes_when_all_succeed() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_half_open_probes(3)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let now = t.at(secs(10));
    let probes: Vec<Permit> = (0..3)
        .map(|_| cb.try_acquire(now).decision.unwrap())
        .collect();
    let rejected = cb.try_acquire(now).decision.unwrap_err();
    assert_eq!(rejected.state, BreakerState::HalfOpen);
    assert_eq!(
        rejected.retry_after,
        Some(now + secs(30)),
        "the half-open deadline"
    );
    let mut last = None;
    for p in probes {
        last = cb.on_success(p, ms(5), now).last();
    }
    let closed = last.expect("the last success closes");
    assert_eq!(
        (closed.from, closed.to),
        (BreakerState::HalfOpen, BreakerState::Closed)
    );
    assert_eq!(closed.reason, TransitionReason::ProbesSucceeded);
}

#[test]
fn a_finished_probe_does_not_free_a_slot_but_an_ignored_one_does() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_half_open_probes(2)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let now = t.at(secs(10));
    let a = cb.try_acquire(now).decision.unwrap();
    let b = cb.try_acquire(now).decision.unwrap();
    let _ = cb.on_success(a, ms(1), now);
    assert!(
        cb.try_acquire(now).decision.is_err(),
        "a finished probe keeps its slot"
    );
    let _ = cb.on_ignored(b, now);
    let c = cb
        .try_acquire(now)
        .decision
        .expect("the ignored probe handed its slot back");
    let closed = cb.on_success(c, ms(1), now);
    assert_eq!(closed.last().unwrap().to, BreakerState::Closed);
}

#[test]
fn any_probe_failure_reopens_under_the_consecutive_policy() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_half_open_probes(3)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let now = t.at(secs(10));
    let a = cb.try_acquire(now).decision.unwrap();
    let b = cb.try_acquire(now).decision.unwrap();
    let _ = cb.on_success(a, ms(1), now);
    let reopened = cb.on_failure(b, ms(1), now).last().unwrap();
    assert_eq!(reopened.reason, TransitionReason::ProbeFailed);
    assert_eq!(reopened.until, Some(now + secs(10)));
}

#[test]
fn half_open_max_wait_reopens_when_probes_do_not_report() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_open_duration(secs(10))
            .with_half_open_max_wait(Some(secs(30)))
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let probe = cb.try_acquire(t.at(secs(12))).decision.unwrap();
    assert_eq!(cb.next_deadline(), Some(t.at(secs(42))));
    let reopened = cb.advance(t.at(secs(42)));
    let tr = reopened.last().unwrap();
    assert_eq!(tr.reason, TransitionReason::HalfOpenTimedOut);
    assert_eq!(tr.until, Some(t.at(secs(52))));
    // The late probe belongs to an older generation: it changes nothing.
    assert!(cb.on_success(probe, ms(30_000), t.at(secs(43))).is_empty());
    assert_eq!(cb.state().kind(), BreakerState::Open);
}

#[test]
fn a_late_deadline_can_reopen_and_half_open_again_in_one_advance() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_open_duration(secs(10))
            .with_half_open_max_wait(Some(secs(5)))
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let _probe = cb.try_acquire(t.at(secs(10))).decision.unwrap();
    let transitions: Vec<_> = cb.advance(t.at(secs(100))).into_iter().collect();
    assert_eq!(transitions.len(), 2);
    assert_eq!(transitions[0].at, t.at(secs(15)));
    assert_eq!(transitions[1].at, t.at(secs(25)));
    assert_eq!(cb.state().kind(), BreakerState::HalfOpen);
}

#[test]
fn stale_closed_permit_never_closes_a_half_open_breaker() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .build()
            .unwrap(),
    );
    let slow_call = cb.try_acquire(t.t0).decision.unwrap();
    fail(&mut cb, t.t0);
    let _ = cb.advance(t.at(secs(10)));
    assert_eq!(cb.state().kind(), BreakerState::HalfOpen);
    assert!(
        cb.on_success(slow_call, secs(11), t.at(secs(11)))
            .is_empty()
    );
    assert_eq!(cb.state().kind(), BreakerState::HalfOpen);
}

#[test]
fn failure_rate_trips_at_threshold_only_after_minimum_calls() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .without_max_failures()
            .with_failure_rate(0.5)
            .with_count_window(10)
            .with_minimum_calls(4)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    succeed(&mut cb, t.t0);
    assert_eq!(
        cb.state().kind(),
        BreakerState::Closed,
        "3 calls < minimum_calls"
    );
    // 4th call: 2 failures of 4 = 50% ≥ 50% → open.
    let permit = cb.try_acquire(t.t0).decision.unwrap();
    let tr = cb.on_success(permit, ms(1), t.t0).last().unwrap();
    assert_eq!(tr.reason, TransitionReason::FailureRate);
}

#[test]
fn minimum_calls_is_capped_at_the_count_window_size() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .without_max_failures()
            .with_failure_rate(1.0)
            .with_count_window(3)
            .with_minimum_calls(100)
            .build()
            .unwrap(),
    );
    assert_eq!(cb.settings().minimum_calls(), 3);
    for _ in 0..3 {
        fail(&mut cb, t.t0);
    }
    assert_eq!(cb.state().kind(), BreakerState::Open);
}

#[test]
fn slow_calls_trip_when_strictly_slower_than_the_threshold() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .without_max_failures()
            .with_slow_calls(1.0, ms(100))
            .with_count_window(2)
            .with_minimum_calls(2)
            .build()
            .unwrap(),
    );
    for _ in 0..2 {
        let p = cb.try_acquire(t.t0).decision.unwrap();
        let _ = cb.on_success(p, ms(100), t.t0); // exactly the threshold: not slow
    }
    assert_eq!(cb.state().kind(), BreakerState::Closed);
    let mut last = None;
    for _ in 0..2 {
        let p = cb.try_acquire(t.t0).decision.unwrap();
        last = cb.on_success(p, ms(101), t.t0).last();
    }
    assert_eq!(last.unwrap().reason, TransitionReason::SlowCallRate);
}

#[test]
fn time_window_forgets_old_failures() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .without_max_failures()
            .with_failure_rate(0.5)
            .with_time_window(secs(10))
            .with_minimum_calls(3)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    // 20 s later the two failures have left the window: 1 call, below minimum.
    succeed(&mut cb, t.at(secs(20)));
    assert_eq!(cb.window_counts(t.at(secs(20))).calls, 1);
    succeed(&mut cb, t.at(secs(20)));
    fail(&mut cb, t.at(secs(20)));
    // 1 failure of 3 = 33% < 50%.
    assert_eq!(cb.state().kind(), BreakerState::Closed);
}

#[test]
fn rate_policy_decides_half_open_when_all_probes_report() {
    let t = Timeline::new();
    let settings = BreakerSettings::builder()
        .without_max_failures()
        .with_failure_rate(0.5)
        .with_count_window(2)
        .with_minimum_calls(2)
        .with_half_open_probes(4)
        .build()
        .unwrap();
    let mut cb = CircuitBreaker::new(settings);
    fail(&mut cb, t.t0);
    fail(&mut cb, t.t0);
    assert_eq!(cb.state().kind(), BreakerState::Open);
    let now = t.at(secs(10));
    let probes: Vec<Permit> = (0..4)
        .map(|_| cb.try_acquire(now).decision.unwrap())
        .collect();
    let outcomes = [
        CallOutcome::Failure,
        CallOutcome::Success,
        CallOutcome::Success,
        CallOutcome::Success,
    ];
    let mut transitions = Vec::new();
    for (p, o) in probes.into_iter().zip(outcomes) {
        transitions.extend(cb.on_outcome(p, o, ms(1), now));
    }
    // 1 of 4 failed (25% < 50%): closed, and only when the last probe reported.
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].to, BreakerState::Closed);
    assert_eq!(
        cb.window_counts(now).calls,
        0,
        "closed with an empty window"
    );
}

#[test]
fn open_duration_grows_across_consecutive_reopens_up_to_the_cap() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .with_open_duration(secs(10))
            .with_open_backoff(2.0, secs(35), 0.0)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let mut now = t.t0;
    let mut durations = Vec::new();
    for _ in 0..4 {
        let until = cb.next_deadline().unwrap();
        durations.push(until - now);
        now = until;
        let probe = cb.try_acquire(now).decision.unwrap();
        let _ = cb.on_failure(probe, ms(1), now);
    }
    assert_eq!(durations, vec![secs(10), secs(20), secs(35), secs(35)]);
    // Closing resets the growth.
    let now = cb.next_deadline().unwrap();
    let probe = cb.try_acquire(now).decision.unwrap();
    let closed = cb.on_success(probe, ms(1), now);
    assert_eq!(closed.last().unwrap().to, BreakerState::Closed);
    fail(&mut cb, now);
    assert_eq!(cb.next_deadline().unwrap() - now, secs(10));
}

#[test]
fn open_duration_jitter_stays_within_its_factor() {
    let t = Timeline::new();
    let settings = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(secs(10))
        .with_open_backoff(1.0, secs(100), 0.5)
        .build()
        .unwrap();
    for seed in 0..200 {
        let mut cb = CircuitBreaker::with_seed(settings.clone(), seed);
        fail(&mut cb, t.t0);
        let d = cb.next_deadline().unwrap() - t.t0;
        assert!((secs(10)..=secs(15)).contains(&d), "{d:?}");
    }
}

#[test]
fn forced_open_and_disabled_leave_only_by_command() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .build()
            .unwrap(),
    );
    let tr = cb.force_open(t.t0).last().unwrap();
    assert_eq!(
        (tr.from, tr.to),
        (BreakerState::Closed, BreakerState::ForcedOpen)
    );
    assert!(cb.advance(t.at(secs(3600))).is_empty());
    assert_eq!(cb.next_deadline(), None);
    assert!(cb.try_acquire(t.at(secs(3600))).decision.is_err());

    let _ = cb.disable(t.t0);
    for _ in 0..100 {
        fail(&mut cb, t.t0);
    }
    assert_eq!(cb.state().kind(), BreakerState::Disabled);

    let tr = cb.reset(t.t0).last().unwrap();
    assert_eq!(
        (tr.from, tr.to, tr.reason),
        (
            BreakerState::Disabled,
            BreakerState::Closed,
            TransitionReason::Reset
        )
    );
    assert!(
        cb.force_open(t.t0).len() == 1 && cb.force_open(t.t0).is_empty(),
        "repeating a command is a no-op"
    );
}

#[test]
fn ignored_outcomes_are_not_recorded_in_closed() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(2)
            .with_failure_rate(1.0)
            .with_count_window(10)
            .build()
            .unwrap(),
    );
    fail(&mut cb, t.t0);
    let p = cb.try_acquire(t.t0).decision.unwrap();
    let _ = cb.on_ignored(p, t.t0);
    assert_eq!(
        *cb.state(),
        CircuitState::Closed {
            consecutive_failures: 1
        }
    );
    assert_eq!(cb.window_counts(t.t0).calls, 1);
}

#[test]
fn every_transition_starts_a_new_generation() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(1)
            .build()
            .unwrap(),
    );
    assert_eq!(cb.generation(), 0);
    fail(&mut cb, t.t0);
    assert_eq!(cb.generation(), 1);
    let _ = cb.advance(t.at(secs(10)));
    assert_eq!(cb.generation(), 2);
    assert_eq!(cb.snapshot().generation(), 2);
    assert!(
        cb.snapshot().admit().is_none(),
        "half-open probes are granted by the owner"
    );
}

#[test]
fn snapshot_permits_count_while_closed() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(
        BreakerSettings::builder()
            .with_max_failures(2)
            .build()
            .unwrap(),
    );
    let snap = cb.snapshot();
    let a = snap.admit().unwrap();
    let b = snap.admit().unwrap();
    let _ = cb.on_failure(a, ms(1), t.t0);
    let tr = cb.on_failure(b, ms(1), t.t0);
    assert_eq!(tr.last().unwrap().to, BreakerState::Open);
    // A permit from that old snapshot is stale now.
    assert!(cb.on_failure(snap.admit().unwrap(), ms(1), t.t0).is_empty());
    let _ = Duration::ZERO;
}
