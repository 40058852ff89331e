//! The breaker actor on tokio's paused clock: timers, opening, rejecting without a message,
//! half-opening by itself, the failure doorbell, commands, the hook and subscribers.
//! (Batching, idleness, no lost outcome, parallelism and metrics: `breaker_batching.rs`.)

mod support;

use std::sync::Arc;

use ractor_resilience::breaker::{BreakerActor, BreakerEvent, BreakerHandle, BreakerOptions};
use ractor_resilience::core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, Rejected, TransitionReason,
};
use ractor_resilience::reply::ReplyTo;
use support::{drain, ms, probe, secs, settle};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::{Instant, advance};

fn trips_after(max_failures: u32) -> BreakerSettings {
    BreakerSettings::builder()
        .with_max_failures(max_failures)
        .with_open_duration(secs(10))
        .build()
        .unwrap()
}

async fn spawn(settings: BreakerSettings) -> BreakerHandle {
    // The outcome queue from the first outcome (batching is what some tests here check).
    BreakerActor::spawn(
        "test",
        settings,
        BreakerOptions::default().with_queue_after(0),
    )
    .await
    .unwrap()
}

/// Subscribes a probe actor to the breaker's transitions.
async fn events(breaker: &BreakerHandle) -> UnboundedReceiver<BreakerEvent> {
    let (actor, rx) = probe::<BreakerEvent>().await;
    breaker.subscribe(actor, Some);
    rx
}

async fn fail(breaker: &BreakerHandle, n: usize) {
    for _ in 0..n {
        let permit = breaker.acquire().await.unwrap();
        breaker.record(permit, CallOutcome::Failure, ms(5));
    }
}

fn moves(events: &[BreakerEvent]) -> Vec<(BreakerState, BreakerState)> {
    events.iter().map(|e| (e.from, e.to)).collect()
}

#[tokio::test(start_paused = true)]
async fn ractor_send_after_follows_paused_time() {
    let (actor, mut rx) = probe::<u32>().await;
    let t0 = Instant::now();
    actor.send_after(ms(100), || 7);
    settle().await; // the timer's task starts its sleep now, at t0

    advance(ms(99)).await;
    settle().await;
    assert!(rx.try_recv().is_err(), "not before 100 ms");

    advance(ms(1)).await;
    settle().await;
    assert_eq!(rx.try_recv(), Ok(7));
    assert_eq!(t0.elapsed(), ms(100));
}

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_failures_and_rejects_without_a_message() {
    let breaker = spawn(trips_after(3)).await;
    fail(&breaker, 2).await;
    settle().await;
    assert_eq!(breaker.state(), BreakerState::Closed);

    let opened_at = Instant::now();
    fail(&breaker, 1).await;
    settle().await;
    assert_eq!(breaker.state(), BreakerState::Open);

    let expected = Rejected {
        state: BreakerState::Open,
        retry_after: Some((opened_at + secs(10)).into_std()),
    };
    // Decided from the published state alone: no message to the actor.
    assert_eq!(breaker.try_acquire_local(), Some(Err(expected)));
    assert_eq!(breaker.acquire().await, Err(expected));
    assert_eq!(breaker.open_until(), expected.retry_after);

    advance(secs(3)).await;
    let status = breaker.status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.retry_after, Some(secs(7)));
    assert_eq!(breaker.try_acquire_local(), Some(Err(expected)));
}

#[tokio::test(start_paused = true)]
async fn half_opens_by_itself_after_the_open_duration_then_closes_on_a_successful_probe() {
    let breaker = spawn(trips_after(1)).await;
    let mut events = events(&breaker).await;
    let t0 = Instant::now();
    fail(&breaker, 1).await;
    settle().await;
    let opened = drain(&mut events);
    assert_eq!(moves(&opened), [(BreakerState::Closed, BreakerState::Open)]);
    assert_eq!(opened[0].open_for, Some(secs(10)));

    advance(secs(10) - ms(1)).await;
    settle().await;
    assert!(
        drain(&mut events).is_empty(),
        "still open 1 ms before the end"
    );
    assert_eq!(breaker.state(), BreakerState::Open);

    advance(ms(1)).await;
    settle().await;
    let half = drain(&mut events);
    assert_eq!(moves(&half), [(BreakerState::Open, BreakerState::HalfOpen)]);
    assert_eq!(half[0].reason, TransitionReason::OpenElapsed);
    assert_eq!(half[0].at, secs(10));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(
        breaker.status().await.unwrap().state,
        BreakerState::HalfOpen
    );

    // The probe is granted by the actor (a reply port, as an actor caller would use).
    assert_eq!(breaker.try_acquire_local(), None);
    let (reply, answer) = ReplyTo::port();
    breaker.acquire_with(reply);
    let probe = answer.await.unwrap().unwrap();
    assert!(probe.is_probe());
    let second = breaker.acquire().await.unwrap_err();
    assert_eq!(second.state, BreakerState::HalfOpen, "one probe only");

    breaker.record(probe, CallOutcome::Success, ms(5));
    settle().await; // a probe outcome rings the doorbell: no tick to wait for
    let closed = drain(&mut events);
    assert_eq!(
        moves(&closed),
        [(BreakerState::HalfOpen, BreakerState::Closed)]
    );
    assert_eq!(closed[0].reason, TransitionReason::ProbesSucceeded);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(t0.elapsed(), secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_failures_opens_within_one_drain_before_any_tick() {
    let breaker = spawn(trips_after(5)).await;
    let t0 = Instant::now();
    for _ in 0..5 {
        let permit = breaker.try_acquire_local().unwrap().unwrap();
        breaker.record(permit, CallOutcome::Failure, ms(1));
    }
    settle().await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        Instant::now(),
        t0,
        "no time passed: the doorbell, not the tick"
    );

    let status = breaker.status().await.unwrap();
    assert_eq!(status.drains, 1, "one doorbell drained the whole burst");
    assert_eq!(status.outcomes, 5);
    assert_eq!(Instant::now(), t0);
}

#[tokio::test(start_paused = true)]
async fn commands_hook_and_subscribers_see_every_transition_in_order() {
    let (tx, mut hook_calls) = unbounded_channel();
    let options = BreakerOptions::new().with_on_state_change(Arc::new(move |from, to| {
        let _ = tx.send((from, to));
    }));
    let breaker = BreakerActor::spawn("cmd", trips_after(1), options)
        .await
        .unwrap();
    let mut events = events(&breaker).await;

    breaker.force_open().unwrap();
    assert_eq!(
        breaker.status().await.unwrap().state,
        BreakerState::ForcedOpen
    );
    let forced = Rejected {
        state: BreakerState::ForcedOpen,
        retry_after: None,
    };
    assert_eq!(breaker.try_acquire_local(), Some(Err(forced)));

    breaker.disable().unwrap();
    assert_eq!(
        breaker.status().await.unwrap().state,
        BreakerState::Disabled
    );
    fail(&breaker, 3).await; // counted by nothing
    breaker.reset().unwrap();
    let status = breaker.status().await.unwrap();
    assert_eq!(
        (status.state, status.window_calls),
        (BreakerState::Closed, 0)
    );

    fail(&breaker, 1).await;
    settle().await;
    advance(secs(10)).await;
    settle().await;
    let probe = breaker.acquire().await.unwrap();
    breaker.record(probe, CallOutcome::Failure, ms(1));
    let status = breaker.status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.generation, 6);

    use BreakerState::*;
    let expected = [
        (Closed, ForcedOpen),
        (ForcedOpen, Disabled),
        (Disabled, Closed),
        (Closed, Open),
        (Open, HalfOpen),
        (HalfOpen, Open),
    ];
    settle().await;
    let events = drain(&mut events);
    assert_eq!(moves(&events), expected);
    let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            TransitionReason::ForcedOpen,
            TransitionReason::Disabled,
            TransitionReason::Reset,
            TransitionReason::ConsecutiveFailures,
            TransitionReason::OpenElapsed,
            TransitionReason::ProbeFailed,
        ]
    );
    assert!(events.iter().all(|e| e.breaker == "cmd"));
    let generations: Vec<_> = events.iter().map(|e| e.generation).collect();
    assert_eq!(generations, [1, 2, 3, 4, 5, 6]);
    assert_eq!(drain(&mut hook_calls), expected);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_breaker_rejects_and_reports_unavailable() {
    let breaker = spawn(trips_after(5)).await;
    let actor = breaker.actor().clone();
    breaker.stop();
    actor.get_cell().wait(None).await.unwrap();
    assert!(!breaker.is_running());

    let stopped = Rejected {
        state: BreakerState::ForcedOpen,
        retry_after: None,
    };
    assert_eq!(breaker.try_acquire_local(), Some(Err(stopped)));
    assert_eq!(breaker.acquire().await, Err(stopped));
    let err = breaker.status().await.unwrap_err();
    assert_eq!(err.to_string(), "circuit breaker `test` is not running");
    assert!(breaker.reset().is_err());
}
