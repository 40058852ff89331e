//! Calls and casts through the whole stack on tokio's paused clock: timeouts at the exact
//! deadline through `call` and through `cast` with a reply target, cancellation reaching the
//! worker, overload rejected at once, parallel calls not serialised.

mod scripted;

use std::time::Duration;

use ractor_resilience::agent::{AgentBuilder, CallError, CallOptions, OverloadReason};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::CancellationToken;
use ractor_resilience::timeout::TimeoutPolicy;
use scripted::{Script, Seen, Step, ms, never_trips, observed, quiet};
use tokio::time::Instant;

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().with_max_attempts(1).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_slow_worker_times_out_exactly_at_the_deadline_through_call_and_observes_cancellation() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("slow", make)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .timeout_policy("t", TimeoutPolicy::Fixed(ms(100)))
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let result = agent.call(Script::ok(500)).await;
    assert_eq!(
        result,
        Err(CallError::TimedOut {
            after: ms(100),
            attempts: 1
        })
    );
    assert_eq!(t0.elapsed(), ms(100));
    tokio::task::yield_now().await;
    let events: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(events[1], Seen::Cancelled { at, .. } if at - t0 == ms(100)),
        "{events:?}"
    );
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_slow_worker_times_out_exactly_at_the_deadline_through_cast_with_a_reply_target() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("slow-cast", make)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .timeout_policy("t", TimeoutPolicy::Fixed(ms(100)))
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let (reply, rx) = ReplyTo::port();
    agent
        .cast(Script::ok(500), CallOptions::default(), Some(reply))
        .unwrap();
    assert_eq!(
        rx.await.unwrap(),
        Err(CallError::TimedOut {
            after: ms(100),
            attempts: 1
        })
    );
    assert_eq!(t0.elapsed(), ms(100));
    tokio::task::yield_now().await;
    let events: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        matches!(events.last(), Some(Seen::Cancelled { at, .. }) if *at - t0 == ms(100)),
        "{events:?}"
    );
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_cast_succeeds_and_is_answered_once() {
    let agent = AgentBuilder::new("cast", quiet)
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reply = ReplyTo::callback(move |answer| {
        let _ = tx.send(answer);
    });
    let mut task = Script::ok(20);
    task.tag = 9;
    agent
        .cast(task, CallOptions::default(), Some(reply))
        .unwrap();
    assert_eq!(rx.recv().await, Some(Some(Ok(9))));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err(), "answered exactly once");
    assert_eq!(agent.inflight(), 0);
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn caller_cancellation_ends_the_task_cancelled_and_reaches_the_worker() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("cancel", make)
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let call = tokio::spawn({
        let agent = agent.clone();
        let cancel = cancel.clone();
        async move {
            agent
                .call_with(Script::ok(1000), CallOptions::default().with_cancel(cancel))
                .await
        }
    });
    tokio::time::sleep(ms(30)).await;
    cancel.cancel();
    assert_eq!(call.await.unwrap(), Err(CallError::Cancelled));
    tokio::task::yield_now().await;
    let events: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        matches!(events.last(), Some(Seen::Cancelled { .. })),
        "{events:?}"
    );
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn submitting_ten_times_the_admission_bound_rejects_the_excess_at_once() {
    let bound = 10;
    let agent = AgentBuilder::new("bounded", quiet)
        .max_pending(bound)
        .queue(None) // the admission bound alone, no shedding by the queue
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let calls: Vec<_> = (0..bound * 10)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let r = agent.call(Script::ok(1000)).await;
                (r, Instant::now())
            })
        })
        .collect();
    let mut overloaded = 0;
    let mut succeeded = 0;
    for call in calls {
        match call.await.unwrap() {
            (
                Err(CallError::Overloaded {
                    reason: OverloadReason::Full { max_pending },
                }),
                at,
            ) => {
                assert_eq!(max_pending, bound);
                assert_eq!(at, t0, "rejected immediately");
                overloaded += 1;
            }
            (Ok(_), _) => succeeded += 1,
            (other, _) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((overloaded, succeeded), (bound * 9, bound));
    assert_eq!(agent.inflight(), 0);
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn n_slow_calls_in_parallel_take_one_calls_time_not_n() {
    let n = 50;
    let agent = AgentBuilder::new("parallel", quiet)
        .workers(n)
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move { agent.call(Script::ok(100)).await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    assert_eq!(t0.elapsed(), ms(100));
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_with_retry_after() {
    let breaker = BreakerSettings::builder()
        .with_max_failures(2)
        .with_open_duration(Duration::from_secs(10))
        .build()
        .unwrap();
    let agent = AgentBuilder::new("tripping", quiet)
        .retry_policy("p", one_attempt())
        .breaker_settings("llm", breaker)
        .spawn()
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = agent.call(Script::new(&[(5, Step::Transient)])).await;
    }
    tokio::task::yield_now().await;
    match agent.call(Script::ok(1)).await {
        Err(CallError::Rejected {
            breaker,
            retry_after,
            ..
        }) => {
            assert_eq!(&*breaker, "llm");
            assert_eq!(retry_after, Some(Duration::from_secs(10)));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_in_flight_hands_back_its_probe_and_stops_its_worker() {
    let breaker = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(Duration::from_secs(1))
        .with_half_open_max_wait(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("dropped", make)
        .workers(2)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", breaker)
        .spawn()
        .await
        .unwrap();
    let _ = agent.call(Script::new(&[(1, Step::Transient)])).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The only probe goes to a call that its caller abandons after 50 ms.
    let abandoned = tokio::time::timeout(ms(50), agent.call(Script::ok(10_000))).await;
    assert!(abandoned.is_err());
    tokio::task::yield_now().await;
    // The probe slot came back: the next call is admitted, succeeds and closes the breaker.
    assert_eq!(agent.call(Script::ok(10)).await, Ok(0));
    let events: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Seen::Cancelled { attempt: 1, .. })),
        "the abandoned attempt's worker was told to stop: {events:?}"
    );
    agent.stop();
}

/// A fixed policy of the agent's own runs in place (no timeout actor) and still counts what a
/// timeout actor would: the success, the timeout, and the late reply of the abandoned worker.
/// An adaptive policy gets an actor of its own; a shared one given to the builder is used.
#[tokio::test(start_paused = true)]
async fn a_static_timeout_policy_needs_no_actor_and_still_counts_outcomes() {
    use ractor_resilience::core::estimator::AdaptiveTimeoutSettings;
    use ractor_resilience::timeout::{PolicyKind, TimeoutActor, TimeoutHooks};

    let agent = AgentBuilder::new("fixed", scripted::quiet)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .timeout_policy("t", TimeoutPolicy::Fixed(ms(100)))
        .spawn()
        .await
        .unwrap();
    assert!(agent.timeout().is_none(), "a fixed policy spawned an actor");
    agent.call(Script::ok(10)).await.unwrap();
    // Cancelled at the deadline, the worker still answers (an error): too late, and counted.
    let late = Script::ok(300);
    assert!(matches!(
        agent.call(late).await,
        Err(CallError::TimedOut { .. })
    ));
    tokio::time::sleep(ms(300)).await;
    let status = agent.timeout_status().await.unwrap();
    assert_eq!(status.kind, PolicyKind::Fixed);
    assert_eq!(status.current, ms(100));
    assert_eq!(
        (status.successes, status.failures, status.timeouts),
        (1, 0, 1)
    );
    assert_eq!(status.late_replies, 1);
    agent.stop();

    let adaptive = AgentBuilder::new("adaptive", scripted::quiet)
        .timeout_policy(
            "learned",
            TimeoutPolicy::Adaptive(AdaptiveTimeoutSettings::default()),
        )
        .spawn()
        .await
        .unwrap();
    let own = adaptive.timeout().expect("an adaptive policy has an actor");
    assert_eq!(own.name(), "learned");
    adaptive.stop();
    tokio::task::yield_now().await;
    assert_eq!(own.actor().get_status(), ractor::ActorStatus::Stopped);

    let shared = TimeoutActor::spawn("shared", TimeoutPolicy::Fixed(ms(50)), TimeoutHooks::new())
        .await
        .unwrap();
    let user = AgentBuilder::new("user", scripted::quiet)
        .timeout(shared.clone())
        .spawn()
        .await
        .unwrap();
    assert_eq!(user.timeout().unwrap().name(), "shared");
    user.call(Script::ok(10)).await.unwrap();
    assert_eq!(shared.status().await.unwrap().successes, 1);
    user.stop();
    tokio::task::yield_now().await;
    assert_ne!(
        shared.actor().get_status(),
        ractor::ActorStatus::Stopped,
        "stopping an agent stopped a timeout actor it did not own"
    );
    shared.actor().stop(None);
}

/// Two clocks: an attempt's timeout runs from the moment a worker starts it, so time spent
/// waiting for a worker never counts against it. A shorter per-operation timeout started after
/// a longer one still fires at its own instant.
#[tokio::test(start_paused = true)]
async fn attempt_timeouts_run_from_the_attempts_start_not_from_submission() {
    use ractor_resilience::timeout::OperationTimeouts;

    let ops = OperationTimeouts::new(ms(1000)).with_operation("fast", ms(100));
    let agent = AgentBuilder::new("mixed", scripted::quiet)
        .workers(2)
        .queue(None)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .timeout_policy("t", TimeoutPolicy::PerOperation(ops))
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let slow = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let result = agent.call(Script::ok(5000)).await;
            (result, t0.elapsed())
        })
    };
    tokio::task::yield_now().await; // the 1000 ms attempt starts first
    let fast = agent
        .call_with(
            Script::ok(5000),
            CallOptions::default().with_operation("fast"),
        )
        .await;
    assert_eq!(
        fast,
        Err(CallError::TimedOut {
            after: ms(100),
            attempts: 1
        })
    );
    assert_eq!(t0.elapsed(), ms(100), "the shorter timeout was late");
    let (slow, took) = slow.await.unwrap();
    assert_eq!(
        slow,
        Err(CallError::TimedOut {
            after: ms(1000),
            attempts: 1
        })
    );
    assert_eq!(took, ms(1000), "the longer timeout was late");
    // 20 calls 10 ms apart on 2 workers: each waits for a worker, then times out exactly
    // 1000 ms after its attempt started. Call i starts when call i − 2 timed out.
    let t1 = Instant::now();
    let calls: Vec<_> = (0..20u64)
        .map(|i| {
            let agent = agent.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(10 * i)).await;
                let result = agent.call(Script::ok(5000)).await;
                (i, result, t1.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (i, result, ended) = call.await.unwrap();
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                after: ms(1000),
                attempts: 1
            }),
            "call {i}"
        );
        assert_eq!(ended, ms(1000 * (i / 2 + 1) + 10 * (i % 2)), "call {i}");
    }
    agent.stop();
}
