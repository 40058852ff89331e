//! How a breaker actor takes outcomes, on tokio's paused clock: batched on a tick that stops
//! when idle, none lost when the queue overflows, parallel calls not serialised, and the
//! metrics it records.

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::breaker::{BreakerActor, BreakerHandle, BreakerOptions};
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState, CallOutcome};
use support::{ms, secs, settle};
use tokio::time::{Instant, advance};

async fn spawn(settings: BreakerSettings, options: BreakerOptions) -> BreakerHandle {
    BreakerActor::spawn("batch", settings, options)
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn successes_are_drained_one_tick_later_and_an_idle_breaker_does_no_periodic_work() {
    // The queue from the first outcome (by default a breaker takes its first outcomes by
    // message: see the test after this one).
    let eager = BreakerOptions::default().with_queue_after(0);
    let breaker = spawn(BreakerSettings::default(), eager).await;
    for _ in 0..10 {
        let permit = breaker.try_acquire_local().unwrap().unwrap();
        breaker.record(permit, CallOutcome::Success, ms(2));
    }
    settle().await;
    advance(ms(1)).await;
    settle().await;
    let status = breaker.status().await.unwrap();
    assert_eq!(
        (status.drains, status.outcomes),
        (1, 10),
        "one tick, one batch"
    );

    advance(secs(10)).await;
    settle().await;
    assert_eq!(
        breaker.status().await.unwrap().drains,
        1,
        "no tick while idle"
    );

    // The next outcome starts a new batch.
    let permit = breaker.try_acquire_local().unwrap().unwrap();
    breaker.record(permit, CallOutcome::Success, ms(2));
    settle().await;
    advance(ms(1)).await;
    settle().await;
    let status = breaker.status().await.unwrap();
    assert_eq!((status.drains, status.outcomes), (2, 11));
}

#[tokio::test(start_paused = true)]
async fn a_rarely_called_breaker_takes_outcomes_by_message_and_a_burst_allocates_its_queue() {
    let breaker = spawn(BreakerSettings::default(), BreakerOptions::default()).await;
    let record = |n: usize| {
        for _ in 0..n {
            let permit = breaker.try_acquire_local().unwrap().unwrap();
            breaker.record(permit, CallOutcome::Success, ms(2));
        }
    };
    // Slow traffic: 63 outcomes 100 ms apart never make a burst. Each is a message, applied
    // when it arrives: no drain, no tick.
    for _ in 0..(BreakerOptions::DEFAULT_QUEUE_AFTER - 1) {
        record(1);
        settle().await;
        advance(ms(101)).await;
    }
    let status = breaker.status().await.unwrap();
    let slow = u64::from(BreakerOptions::DEFAULT_QUEUE_AFTER - 1);
    assert_eq!((status.drains, status.outcomes), (0, slow));

    // A burst of 64 within 100 ms allocates the queue: later outcomes are batched on the tick.
    record(BreakerOptions::DEFAULT_QUEUE_AFTER as usize);
    settle().await;
    let status = breaker.status().await.unwrap();
    assert_eq!((status.drains, status.outcomes), (0, slow + 64));
    // (A message would be applied at once and schedule no drain: the tick's drain below is
    // the queue's.)
    record(10);
    settle().await;
    advance(ms(1)).await;
    settle().await;
    let status = breaker.status().await.unwrap();
    assert_eq!((status.drains, status.outcomes), (1, slow + 74));
}

#[tokio::test(start_paused = true)]
async fn no_outcome_is_dropped_when_the_queue_overflows() {
    // A rate policy that never trips here, so that the window records every outcome.
    let settings = BreakerSettings::builder()
        .with_max_failures(5)
        .with_failure_rate(1.0)
        .with_count_window(1000)
        .build()
        .unwrap();
    let options = BreakerOptions::new()
        .with_queue_capacity(4)
        .with_queue_after(0);
    let breaker = spawn(settings, options).await;
    for i in 0..100 {
        let permit = breaker.try_acquire_local().unwrap().unwrap();
        let outcome = if i % 2 == 0 {
            CallOutcome::Success
        } else {
            CallOutcome::Failure
        };
        breaker.record(permit, outcome, ms(1));
    }
    let status = breaker.status().await.unwrap();
    assert_eq!(status.outcomes, 100);
    assert_eq!((status.window_calls, status.window_failures), (100, 50));
    assert_eq!(status.state, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn parallel_slow_calls_through_one_breaker_take_one_calls_time() {
    let breaker = spawn(BreakerSettings::default(), BreakerOptions::default()).await;
    let t0 = Instant::now();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                let permit = breaker.acquire().await.unwrap();
                tokio::time::sleep(ms(100)).await; // the call's work, on the paused clock
                breaker.record(permit, CallOutcome::Success, ms(100));
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(t0.elapsed(), ms(100), "not 50 × 100 ms");
    assert_eq!(breaker.status().await.unwrap().outcomes, 50);
}

#[tokio::test(start_paused = true)]
async fn metrics_count_calls_and_transitions_and_one_state_series_is_set() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);

    let settings = BreakerSettings::builder()
        .with_max_failures(2)
        .with_open_duration(secs(5))
        .build()
        .unwrap();
    let breaker = BreakerActor::spawn("m1", settings, BreakerOptions::default())
        .await
        .unwrap();
    for _ in 0..2 {
        let permit = breaker.acquire().await.unwrap();
        breaker.record(permit, CallOutcome::Failure, ms(1));
    }
    settle().await;
    assert!(breaker.try_acquire_local().unwrap().is_err());
    advance(secs(5)).await;
    settle().await;
    let probe = breaker.acquire().await.unwrap();
    breaker.record(probe, CallOutcome::Success, ms(1));
    assert_eq!(breaker.status().await.unwrap().state, BreakerState::Closed);

    let text = metrics.render();
    let series = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix) && l.contains("breaker=\"m1\""))
            .map(str::to_owned)
            .collect()
    };
    let states = series("resilience_circuit_breaker_state{");
    assert_eq!(states.len(), 5, "one series per state: {states:?}");
    let set: Vec<_> = states.iter().filter(|l| l.ends_with(" 1")).collect();
    assert_eq!(set.len(), 1, "{states:?}");
    assert!(set[0].contains("state=\"closed\""), "{states:?}");

    let value = |needle: &[&str]| -> String {
        let lines = series("resilience_circuit_breaker_");
        let line = lines
            .iter()
            .find(|l| needle.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no series with {needle:?} in\n{text}"));
        line.rsplit(' ').next().unwrap().to_owned()
    };
    let transitions = "resilience_circuit_breaker_transitions_total{";
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ] {
        let (from, to) = (format!("from=\"{from}\""), format!("to=\"{to}\""));
        assert_eq!(value(&[transitions, &from, &to]), "1");
    }
    let calls = "resilience_circuit_breaker_calls_total{";
    assert_eq!(value(&[calls, "outcome=\"failure\""]), "2");
    assert_eq!(value(&[calls, "outcome=\"success\""]), "1");
    assert_eq!(value(&[calls, "outcome=\"rejected\""]), "1");
}
