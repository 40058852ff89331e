//! Reconfiguring in place (hot reload): what the core keeps, as properties.
//!
//! - A breaker reconfigured mid-run to *the same* settings behaves exactly as one that was not:
//!   state, generation, counts and window are all kept.
//! - A breaker reconfigured to settings with the same window shape keeps its window: a rate
//!   policy sees the calls recorded before the reload.
//! - An estimator reconfigured to a smaller window estimates exactly as one fed only the newest
//!   samples; to the same window, exactly as one never reconfigured.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CallOutcome, CircuitBreaker};
use ractor_resilience_core::estimator::{AdaptiveTimeoutSettings, LatencyEstimator};
use support::{Timeline, ms};

#[derive(Debug, Clone, Copy)]
enum Input {
    Call(CallOutcome, u64),
    Advance(u64),
}

fn inputs() -> impl Strategy<Value = Vec<Input>> {
    let outcome = prop_oneof![
        Just(CallOutcome::Success),
        Just(CallOutcome::Failure),
        Just(CallOutcome::Ignored)
    ];
    prop::collection::vec(
        prop_oneof![
            4 => (outcome, 0u64..200).prop_map(|(o, d)| Input::Call(o, d)),
            1 => (0u64..3_000).prop_map(Input::Advance),
        ],
        0..120,
    )
}

fn settings() -> BreakerSettings {
    BreakerSettings::builder()
        .with_max_failures(4)
        .with_failure_rate(0.5)
        .with_count_window(10)
        .with_minimum_calls(5)
        .with_open_duration(ms(1_000))
        .with_half_open_probes(2)
        .build()
        .unwrap()
}

/// Runs `inputs` on `cb`, one millisecond apart plus the advances; returns what it saw.
fn run(
    cb: &mut CircuitBreaker,
    inputs: &[Input],
    t: Timeline,
    start: u64,
) -> Vec<(u64, BreakerState)> {
    let mut now = start;
    let mut seen = Vec::new();
    for input in inputs {
        now += 1;
        match *input {
            Input::Call(outcome, d) => {
                if let Ok(permit) = cb.try_acquire(t.at(ms(now))).decision {
                    let _ = cb.on_outcome(permit, outcome, ms(d), t.at(ms(now)));
                }
            }
            Input::Advance(d) => {
                now += d;
                let _ = cb.advance(t.at(ms(now)));
            }
        }
        seen.push((cb.generation(), cb.state().kind()));
    }
    seen
}

proptest! {
    #[test]
    fn reconfigure_to_the_same_settings_changes_nothing(before in inputs(), after in inputs()) {
        let t = Timeline::new();
        let mut plain = CircuitBreaker::new(settings());
        let mut reloaded = CircuitBreaker::new(settings());
        run(&mut plain, &before, t, 0);
        run(&mut reloaded, &before, t, 0);
        let at = t.at(ms(100_000));
        let report = reloaded.reconfigure(settings(), at);
        prop_assert!(report.window_kept);
        prop_assert_eq!(report.window_calls_dropped, 0);
        prop_assert_eq!(plain.snapshot(), reloaded.snapshot());
        prop_assert_eq!(run(&mut plain, &after, t, 100_000), run(&mut reloaded, &after, t, 100_000));
    }

    #[test]
    fn a_kept_window_still_counts_the_calls_before_the_reload(failures in 0u32..10) {
        // Nine calls before the reload, then one after: the rate is judged over all ten.
        let t = Timeline::new();
        let rate_only = |threshold: f64| BreakerSettings::builder()
            .without_max_failures()
            .with_failure_rate(threshold)
            .with_count_window(10)
            .with_minimum_calls(10)
            .build()
            .unwrap();
        let mut cb = CircuitBreaker::new(rate_only(0.9));
        for n in 0..9u64 {
            let permit = cb.try_acquire(t.at(ms(n))).decision.unwrap();
            let outcome = if u32::try_from(n).unwrap() < failures { CallOutcome::Failure } else { CallOutcome::Success };
            let _ = cb.on_outcome(permit, outcome, ms(1), t.at(ms(n)));
        }
        prop_assert_eq!(cb.state().kind(), BreakerState::Closed);
        let report = cb.reconfigure(rate_only(0.3), t.at(ms(9)));
        prop_assert!(report.window_kept);
        prop_assert_eq!(cb.window_counts(t.at(ms(9))).calls, 9);
        let permit = cb.try_acquire(t.at(ms(10))).decision.unwrap();
        let _ = cb.on_outcome(permit, CallOutcome::Success, ms(1), t.at(ms(10)));
        let opened = f64::from(failures.min(9)) / 10.0 >= 0.3;
        prop_assert_eq!(cb.state().kind() == BreakerState::Open, opened);
    }

    #[test]
    fn a_smaller_window_keeps_the_newest_samples(
        samples in prop::collection::vec(1u64..5_000, 0..400),
        old_window in 10u32..300,
        new_window in 10u32..300,
    ) {
        let with = |window: u32| AdaptiveTimeoutSettings::builder()
            .with_window(window)
            .with_min_samples(1)
            .build()
            .unwrap();
        let mut reloaded = LatencyEstimator::new(with(old_window));
        for &s in &samples {
            reloaded.observe(ms(s));
        }
        reloaded.reconfigure(with(new_window));
        let kept = samples.len().min(old_window as usize).min(new_window as usize);
        let mut fresh = LatencyEstimator::new(with(new_window));
        for &s in &samples[samples.len() - kept..] {
            fresh.observe(ms(s));
        }
        prop_assert_eq!(reloaded.window_len(), kept);
        prop_assert_eq!(reloaded.samples(), samples.len() as u64);
        prop_assert_eq!(reloaded.quantile_estimate(), fresh.quantile_estimate());
        // And both go on alike.
        for s in [3u64, 4_000, 17, 250] {
            reloaded.observe(ms(s));
            fresh.observe(ms(s));
            prop_assert_eq!(reloaded.quantile_estimate(), fresh.quantile_estimate());
        }
    }
}

#[test]
fn a_new_window_shape_is_reported_and_starts_empty() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(settings());
    for n in 0..3 {
        let permit = cb.try_acquire(t.at(ms(n))).decision.unwrap();
        let _ = cb.on_success(permit, ms(1), t.at(ms(n)));
    }
    let wider = BreakerSettings::builder()
        .with_max_failures(4)
        .with_failure_rate(0.5)
        .with_count_window(20)
        .build()
        .unwrap();
    let report = cb.reconfigure(wider, t.at(ms(5)));
    assert!(!report.window_kept);
    assert_eq!(report.window_calls_dropped, 3);
    assert_eq!(cb.window_counts(t.at(ms(5))).calls, 0);
}

#[test]
fn an_open_period_already_decided_keeps_its_end() {
    let t = Timeline::new();
    let mut cb = CircuitBreaker::new(settings());
    for n in 0..4 {
        let permit = cb.try_acquire(t.at(ms(n))).decision.unwrap();
        let _ = cb.on_failure(permit, ms(1), t.at(ms(n)));
    }
    assert_eq!(cb.state().kind(), BreakerState::Open);
    let generation = cb.generation();
    let longer = BreakerSettings::builder()
        .with_max_failures(4)
        .with_failure_rate(0.5)
        .with_count_window(10)
        .with_open_duration(Duration::from_secs(60))
        .build()
        .unwrap();
    cb.reconfigure(longer, t.at(ms(10)));
    assert_eq!(cb.generation(), generation, "no transition");
    assert_eq!(cb.next_deadline(), Some(t.at(ms(3 + 1_000))));
    let _ = cb.advance(t.at(ms(1_003)));
    assert_eq!(cb.state().kind(), BreakerState::HalfOpen);
    // The next opening uses the new duration.
    let permit = cb.try_acquire(t.at(ms(1_004))).decision.unwrap();
    let _ = cb.on_failure(permit, ms(1), t.at(ms(1_004)));
    assert_eq!(cb.next_deadline(), Some(t.at(ms(1_004 + 60_000))));
}
