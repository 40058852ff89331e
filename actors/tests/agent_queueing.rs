//! The front door on tokio's paused clock: workers pull (no task waits behind a busy worker
//! while another is idle), and the two clocks — a task's deadline runs from submission, an
//! attempt's timeout from the moment a worker starts it — so that time spent waiting for a
//! worker never trips the breaker, never causes a retry, and a half-open probe slot is taken
//! only by an attempt that starts. Under sustained overload the queue sheds (CoDel).

mod scripted;

use std::time::Duration;

use ractor_resilience::agent::{AgentBuilder, CallError, CallOptions, OverloadReason};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::core::queue::CodelSettings;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::timeout::TimeoutPolicy;
use scripted::{Script, Seen, Step, ms, never_trips, no_jitter, observed, quiet};
use tokio::time::Instant;

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().with_max_attempts(1).build().unwrap()
}

/// Two workers, one busy with a long call: a short task submitted later goes to the idle one
/// at once (a round-robin push would have queued it behind the long call half the time).
#[tokio::test(start_paused = true)]
async fn no_task_waits_behind_a_busy_worker_while_another_is_idle() {
    let agent = AgentBuilder::new("jiq", quiet)
        .workers(2)
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let long = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.call(Script::ok(1000)).await })
    };
    tokio::task::yield_now().await;
    for _ in 0..10 {
        let t = Instant::now();
        assert!(agent.call(Script::ok(10)).await.is_ok());
        assert_eq!(
            t.elapsed(),
            ms(10),
            "a short task waited behind the long one"
        );
    }
    assert!(long.await.unwrap().is_ok());
    agent.stop();
}

/// One worker and a 100 ms attempt timeout; five 90 ms tasks submitted together. The last one
/// waits 360 ms for the worker, far past 100 ms, yet every attempt takes 90 ms of its own 100:
/// all succeed, and the breaker (which opens at the first failure) never sees one.
#[tokio::test(start_paused = true)]
async fn a_task_waiting_for_a_worker_never_counts_against_the_breaker() {
    let breaker = BreakerSettings::builder()
        .with_max_failures(1)
        .build()
        .unwrap();
    let agent = AgentBuilder::new("patient", quiet)
        .workers(1)
        .queue(None)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", breaker)
        .timeout_policy("t", TimeoutPolicy::Fixed(ms(100)))
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let result = agent.call(Script::ok(90)).await;
                (result, t0.elapsed())
            })
        })
        .collect();
    let mut ended = Vec::new();
    for call in calls {
        let (result, at) = call.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        ended.push(at);
    }
    ended.sort();
    assert_eq!(ended, [90, 180, 270, 360, 450].map(ms));
    let status = agent.breaker().status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window_failures, 0);
    let timeouts = agent.timeout_status().await.unwrap();
    assert_eq!((timeouts.successes, timeouts.timeouts), (5, 0));
    agent.stop();
}

/// A task whose deadline passes while it waits for a worker ends at its deadline, exactly,
/// without taking a worker, and is not retried: not through `call`, not through `cast`.
#[tokio::test(start_paused = true)]
async fn a_task_whose_deadline_passes_in_the_queue_never_reaches_a_worker_and_is_not_retried() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("queued", make)
        .workers(1)
        .queue(None)
        .retry_policy("p", no_jitter(3, 10))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let busy = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.call(Script::ok(1000)).await })
    };
    tokio::task::yield_now().await;
    // Through call.
    let mut queued = Script::ok(10);
    queued.tag = 7;
    let result = agent
        .call_with(
            queued.clone(),
            CallOptions::default().with_deadline(ms(200)),
        )
        .await;
    assert_eq!(
        result,
        Err(CallError::TimedOut {
            after: ms(200),
            attempts: 0
        })
    );
    assert_eq!(t0.elapsed(), ms(200));
    // Through cast.
    let (reply, rx) = ReplyTo::port();
    agent
        .cast(
            queued,
            CallOptions::default().with_deadline(ms(300)),
            Some(reply),
        )
        .unwrap();
    assert_eq!(
        rx.await.unwrap(),
        Err(CallError::TimedOut {
            after: ms(300),
            attempts: 0
        })
    );
    assert_eq!(t0.elapsed(), ms(500));
    assert!(busy.await.unwrap().is_ok());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let started: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        started
            .iter()
            .all(|s| matches!(s, Seen::Started { tag: 0, .. })),
        "the queued task reached a worker: {started:?}"
    );
    assert_eq!((agent.stats().attempts, agent.stats().retries), (1, 0));
    agent.stop();
}

/// A half-open breaker admits one probe. A task queued while the probe runs does not take (or
/// get refused) a probe slot at submission: it takes its permit when a worker starts it — here
/// after the probe succeeded and closed the breaker — and succeeds.
#[tokio::test(start_paused = true)]
async fn a_half_open_probe_permit_is_taken_when_the_attempt_starts() {
    let breaker = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(ms(500))
        .build()
        .unwrap();
    let agent = AgentBuilder::new("probing", quiet)
        .workers(2)
        .queue(None)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", breaker)
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let long = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.call(Script::ok(2000)).await })
    };
    tokio::task::yield_now().await;
    let failed = agent.call(Script::new(&[(0, Step::Permanent)])).await;
    assert!(
        matches!(failed, Err(CallError::Failed { .. })),
        "{failed:?}"
    );
    tokio::time::sleep(ms(50)).await;
    assert_eq!(agent.breaker().state(), BreakerState::Open);
    tokio::time::sleep_until(t0 + ms(600)).await;
    assert_eq!(agent.breaker().state(), BreakerState::HalfOpen);
    let probe = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.call(Script::ok(1000)).await })
    };
    tokio::time::sleep_until(t0 + ms(700)).await;
    // The probe is out (the breaker answers "ask again later"); both workers are busy.
    assert!(
        agent
            .breaker()
            .status()
            .await
            .unwrap()
            .retry_after
            .is_some()
    );
    let queued = agent.call(Script::ok(10)).await;
    assert_eq!(queued, Ok(0));
    assert_eq!(
        t0.elapsed(),
        ms(1610),
        "ran after the probe, on the freed worker"
    );
    assert!(probe.await.unwrap().is_ok());
    assert_eq!(agent.breaker().state(), BreakerState::Closed);
    assert!(long.await.unwrap().is_ok());
    agent.stop();
}

/// Twice the capacity for ten seconds, one worker serving in 100 ms: once the queue stands, it
/// sheds what waited over the 100 ms target (answered `Overloaded` within a few service times,
/// not after a wait that grows without end) and serves the newest first, so admitted tasks keep
/// a bounded latency while the worker stays busy.
#[tokio::test(start_paused = true)]
async fn under_sustained_overload_the_queue_sheds_and_admitted_latency_stays_bounded() {
    let agent = AgentBuilder::new("codel", quiet)
        .workers(1)
        .max_pending(1000)
        .queue(Some(CodelSettings::default()))
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let calls: Vec<_> = (0..200u64)
        .map(|i| {
            let agent = agent.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(50 * i)).await;
                let began = Instant::now();
                let result = agent.call(Script::ok(100)).await;
                (began - t0, result, began.elapsed())
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for call in calls {
        let (began, result, took) = call.await.unwrap();
        match result {
            Ok(_) => {
                ok += 1;
                if began >= ms(2000) {
                    assert!(
                        took <= ms(200),
                        "a task admitted at {began:?} took {took:?}"
                    );
                }
            }
            Err(CallError::Overloaded {
                reason: OverloadReason::Shed { waited },
            }) => {
                shed += 1;
                assert!(waited <= ms(1300), "shed after waiting {waited:?}");
                if began >= ms(2000) {
                    assert!(took <= ms(250), "shed only after {took:?}");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The worker kept serving: about 10 tasks a second for 10 s.
    assert!(ok >= 95, "only {ok} succeeded ({shed} shed)");
    assert_eq!(ok + shed, 200);
    assert!(shed >= 80, "only {shed} shed");
    assert_eq!(agent.inflight(), 0);
    agent.stop();
}
