//! The timeout actor on tokio's paused clock: races in the caller and in the actor (one timer,
//! exactly one answer, late replies counted), the per-operation manager with its hooks, the
//! adaptive deadline following latencies, and the metrics it records.

use std::sync::mpsc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::core::estimator::AdaptiveTimeoutSettings;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::CancellationToken;
use ractor_resilience::timeout::{
    OperationTimeouts, RaceError, TimedOut, TimeoutActor, TimeoutArgs, TimeoutHandle, TimeoutHooks,
    TimeoutOutcome, TimeoutPolicy, race_in_caller,
};
use tokio::sync::mpsc as tmpsc;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn fixed(name: &str, timeout: Duration) -> TimeoutHandle {
    TimeoutActor::spawn(name, TimeoutPolicy::Fixed(timeout), TimeoutHooks::new())
        .await
        .unwrap()
}

/// Every answer a destination got (`None`: dropped unsent).
type Answers<T> = tmpsc::UnboundedReceiver<Option<Result<T, RaceError>>>;

/// A destination that forwards every answer to a channel, so a test can check that exactly one
/// arrives.
fn destination<T: Send + 'static>() -> (ReplyTo<Result<T, RaceError>>, Answers<T>) {
    let (tx, rx) = tmpsc::unbounded_channel();
    (
        ReplyTo::callback(move |answer| {
            let _ = tx.send(answer);
        }),
        rx,
    )
}

// ===== racing in the caller's future =====

#[tokio::test(start_paused = true)]
async fn race_in_caller_times_out_exactly_at_the_deadline_and_cancels_the_worker() {
    let cancel = CancellationToken::new();
    let worker_cancel = cancel.clone();
    let worker = tokio::spawn(async move {
        worker_cancel.cancelled().await;
        Instant::now()
    });
    let start = Instant::now();
    let raced = race_in_caller(ms(250), &cancel, sleep(Duration::from_secs(10))).await;
    assert_eq!(raced, Err(TimedOut { after: ms(250) }));
    assert_eq!(start.elapsed(), ms(250));
    assert_eq!(
        worker.await.unwrap() - start,
        ms(250),
        "the worker observes cancellation at the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn race_in_caller_returns_a_fast_value_without_cancelling() {
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let raced = race_in_caller(ms(250), &cancel, async {
        sleep(ms(40)).await;
        "fast"
    })
    .await;
    assert_eq!(raced, Ok("fast"));
    assert_eq!(start.elapsed(), ms(40));
    assert!(!cancel.is_cancelled());
}

// ===== racing in the actor (a cast with a reply target) =====

#[tokio::test(start_paused = true)]
async fn actor_race_answers_timed_out_at_the_deadline_then_drops_and_counts_the_late_reply() {
    let timeouts = fixed("slow", Duration::from_secs(1)).await;
    let (dest, mut answers) = destination::<&str>();
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let worker_reply = timeouts.race(None, None, cancel.clone(), dest);
    let worker = tokio::spawn(async move {
        cancel.cancelled().await;
        let observed = Instant::now();
        sleep(Duration::from_secs(2)).await; // finishes anyway, far too late
        worker_reply.send("late");
        observed
    });

    let answer = answers.recv().await.unwrap();
    assert_eq!(
        answer,
        Some(Err(RaceError::TimedOut(TimedOut {
            after: Duration::from_secs(1)
        })))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(
        worker.await.unwrap() - start,
        Duration::from_secs(1),
        "the worker observes cancellation"
    );

    let status = timeouts.status().await.unwrap();
    assert_eq!(status.late_replies, 1);
    assert_eq!(status.timeouts, 1);
    assert_eq!(status.races_pending, 0);
    sleep(Duration::from_secs(10)).await;
    assert!(answers.try_recv().is_err(), "never a second answer");
}

#[tokio::test(start_paused = true)]
async fn actor_race_delivers_a_fast_value_once() {
    let timeouts = fixed("fast", Duration::from_secs(1)).await;
    let (dest, mut answers) = destination::<u32>();
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let worker_reply = timeouts.race(None, None, cancel.clone(), dest);
    tokio::spawn(async move {
        sleep(ms(120)).await;
        worker_reply.send(42);
    });

    assert_eq!(answers.recv().await.unwrap(), Some(Ok(42)));
    assert_eq!(start.elapsed(), ms(120));
    sleep(Duration::from_secs(5)).await; // well past the deadline
    assert!(
        answers.try_recv().is_err(),
        "the deadline does not answer again"
    );
    assert!(!cancel.is_cancelled());
    let status = timeouts.status().await.unwrap();
    assert_eq!(
        (
            status.successes,
            status.timeouts,
            status.late_replies,
            status.races_pending
        ),
        (1, 0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn actor_race_counts_an_in_time_error_as_a_failure_but_delivers_it() {
    let timeouts = fixed("errors", Duration::from_secs(1)).await;
    let (dest, mut answers) = destination::<Result<u32, String>>();
    let worker_reply = timeouts.race_result(None, None, CancellationToken::new(), dest);
    worker_reply.send(Err("boom".to_owned()));
    assert_eq!(
        answers.recv().await.unwrap(),
        Some(Ok(Err("boom".to_owned())))
    );
    let status = timeouts.status().await.unwrap();
    assert_eq!((status.successes, status.failures), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_worker_reply_is_answered_lost_at_once_not_at_the_deadline() {
    let timeouts = fixed("lost", Duration::from_secs(1)).await;
    let (dest, mut answers) = destination::<u32>();
    let start = Instant::now();
    let worker_reply = timeouts.race(None, None, CancellationToken::new(), dest);
    tokio::spawn(async move {
        sleep(ms(200)).await;
        drop(worker_reply); // the worker crashed
    });
    assert_eq!(answers.recv().await.unwrap(), Some(Err(RaceError::Lost)));
    assert_eq!(start.elapsed(), ms(200));
    sleep(Duration::from_secs(2)).await;
    assert!(answers.try_recv().is_err());
    let status = timeouts.status().await.unwrap();
    assert_eq!(
        (status.failures, status.timeouts, status.late_replies),
        (1, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_thousand_races_with_one_deadline_share_one_timer_and_one_wakeup() {
    let timeouts = fixed("many", ms(500)).await;
    let (tx, mut answers) = tmpsc::unbounded_channel();
    let mut workers = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..1000 {
        let tx = tx.clone();
        let dest = ReplyTo::callback(move |answer: Option<Result<u32, RaceError>>| {
            let _ = tx.send((i, answer));
        });
        let cancel = CancellationToken::new();
        workers.push(timeouts.race(None, None, cancel.clone(), dest));
        tokens.push(cancel);
    }
    let start = Instant::now();
    for _ in 0..1000 {
        let (_, answer) = answers.recv().await.unwrap();
        assert_eq!(
            answer,
            Some(Err(RaceError::TimedOut(TimedOut { after: ms(500) })))
        );
    }
    assert_eq!(start.elapsed(), ms(500));
    assert!(tokens.iter().all(CancellationToken::is_cancelled));

    drop(workers); // dropped after the deadline: nothing to answer, not late replies either
    let status = timeouts.status().await.unwrap();
    assert_eq!(status.timeouts, 1000);
    assert_eq!(status.races_pending, 0);
    assert_eq!(status.late_replies, 0);
    assert_eq!(status.timers_armed, 1, "one armed timer for all races");
    assert_eq!(status.timer_wakeups, 1, "one wakeup expired them all");
    assert!(answers.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_rearms_the_one_timer_and_each_race_times_out_at_its_own() {
    let timeouts = fixed("rearm", Duration::from_secs(5)).await;
    let start = Instant::now();
    let (long_dest, mut long) = destination::<u32>();
    let (short_dest, mut short) = destination::<u32>();
    let _long_worker = timeouts.race(None, None, CancellationToken::new(), long_dest);
    let _short_worker = timeouts.race(
        None,
        Some(Duration::from_secs(1)),
        CancellationToken::new(),
        short_dest,
    );

    assert_eq!(
        short.recv().await.unwrap(),
        Some(Err(TimedOut {
            after: Duration::from_secs(1)
        }
        .into()))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(
        long.recv().await.unwrap(),
        Some(Err(TimedOut {
            after: Duration::from_secs(5)
        }
        .into()))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let status = timeouts.status().await.unwrap();
    // 5 s armed, re-armed for 1 s, then armed again for 5 s; the aborted first arming never wakes.
    assert_eq!((status.timers_armed, status.timer_wakeups), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn stopping_the_actor_answers_pending_races_unavailable() {
    let timeouts = fixed("stopping", Duration::from_secs(60)).await;
    let (dest, mut answers) = destination::<u32>();
    let _worker = timeouts.race(None, None, CancellationToken::new(), dest);
    timeouts.status().await.unwrap(); // the race is registered
    timeouts.actor().stop_and_wait(None, None).await.unwrap();
    assert_eq!(
        answers.recv().await.unwrap(),
        Some(Err(RaceError::Unavailable))
    );

    let (dest, mut answers) = destination::<u32>();
    let _worker = timeouts.race(None, None, CancellationToken::new(), dest);
    assert_eq!(
        answers.recv().await.unwrap(),
        Some(Err(RaceError::Unavailable)),
        "at once when not running"
    );
    assert!(timeouts.status().await.is_none());
}

// ===== the per-operation manager and its hooks =====

fn manager() -> TimeoutPolicy {
    TimeoutPolicy::PerOperation(
        OperationTimeouts::new(Duration::from_secs(30))
            .with_operation("summarize", Duration::from_secs(120))
            .with_operation("embed", Duration::from_secs(2))
            .with_slow_operation_threshold(Duration::from_secs(10)),
    )
}

#[derive(Debug, PartialEq)]
enum Hooked {
    Slow(String, Duration),
    TimedOut(String, Duration),
}

fn capturing_hooks() -> (TimeoutHooks, mpsc::Receiver<Hooked>) {
    let (tx, rx) = mpsc::channel();
    let slow_tx = tx.clone();
    let hooks = TimeoutHooks::new()
        .on_slow(move |op, took| slow_tx.send(Hooked::Slow(op.to_owned(), took)).unwrap())
        .on_timeout(move |op, waited| tx.send(Hooked::TimedOut(op.to_owned(), waited)).unwrap());
    (hooks, rx)
}

#[tokio::test(start_paused = true)]
async fn per_operation_deadlines_use_the_operation_or_the_default() {
    let timeouts = TimeoutActor::spawn("llm", manager(), TimeoutHooks::new())
        .await
        .unwrap();
    assert_eq!(
        timeouts.timeout_for(Some("summarize")),
        Duration::from_secs(120)
    );
    assert_eq!(timeouts.timeout_for(Some("embed")), Duration::from_secs(2));
    assert_eq!(
        timeouts.timeout_for(Some("unknown")),
        Duration::from_secs(30)
    );
    assert_eq!(timeouts.timeout_for(None), Duration::from_secs(30));
    assert_eq!(
        timeouts.status().await.unwrap().current,
        Duration::from_secs(30)
    );
}

#[tokio::test(start_paused = true)]
async fn slow_and_timed_out_operations_run_the_hooks_with_operation_and_duration() {
    let (hooks, hooked) = capturing_hooks();
    let timeouts = TimeoutActor::spawn("llm", manager(), hooks).await.unwrap();
    timeouts.record(
        Some("summarize"),
        Duration::from_secs(11),
        TimeoutOutcome::Success,
    );
    timeouts.record(
        Some("summarize"),
        Duration::from_secs(10),
        TimeoutOutcome::Success,
    ); // not strictly slower
    timeouts.record(
        Some("mystery"),
        Duration::from_secs(12),
        TimeoutOutcome::Failure,
    );
    timeouts.record(
        Some("summarize"),
        Duration::from_secs(120),
        TimeoutOutcome::Timeout,
    );

    let status = timeouts.status().await.unwrap();
    assert_eq!(status.slow_operations, 2);
    assert_eq!(
        (status.successes, status.failures, status.timeouts),
        (2, 1, 1)
    );
    let seen: Vec<Hooked> = hooked.try_iter().collect();
    assert_eq!(
        seen,
        [
            Hooked::Slow("summarize".into(), Duration::from_secs(11)),
            Hooked::Slow("default".into(), Duration::from_secs(12)),
            Hooked::TimedOut("summarize".into(), Duration::from_secs(120)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn execute_races_with_the_operation_deadline_and_reports_the_timeout() {
    let (hooks, hooked) = capturing_hooks();
    let timeouts = TimeoutActor::spawn("llm", manager(), hooks).await.unwrap();
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let out = timeouts
        .execute(Some("embed"), None, &cancel, async {
            sleep(Duration::from_secs(60)).await;
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(
        out,
        Err(TimedOut {
            after: Duration::from_secs(2)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(cancel.is_cancelled());

    let out = timeouts
        .execute(
            Some("embed"),
            Some(Duration::from_secs(9)),
            &CancellationToken::new(),
            async {
                sleep(Duration::from_secs(5)).await;
                Err::<(), _>("refused")
            },
        )
        .await;
    assert_eq!(
        out,
        Ok(Err("refused")),
        "an override replaces the operation's deadline"
    );

    let status = timeouts.status().await.unwrap();
    assert_eq!((status.timeouts, status.failures), (1, 1));
    assert_eq!(
        hooked.try_iter().collect::<Vec<_>>(),
        [Hooked::TimedOut("embed".into(), Duration::from_secs(2))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_threshold_applies_to_a_fixed_policy_too() {
    let (hooks, hooked) = capturing_hooks();
    let args = TimeoutArgs::new(TimeoutPolicy::Fixed(Duration::from_secs(5)))
        .with_slow_operation_threshold(ms(300));
    let timeouts = TimeoutActor::spawn("fixed", args, hooks).await.unwrap();
    timeouts.record(None, ms(301), TimeoutOutcome::Success);
    timeouts.record(None, ms(299), TimeoutOutcome::Success);
    assert_eq!(timeouts.status().await.unwrap().slow_operations, 1);
    assert_eq!(
        hooked.try_iter().collect::<Vec<_>>(),
        [Hooked::Slow("default".into(), ms(301))]
    );
}

// ===== the adaptive deadline =====

/// `n` latencies spread deterministically over `[base - 10 ms, base + 10 ms]`, with the exact
/// nearest-rank p95 of them.
fn latencies(base_ms: u64, n: usize) -> (Vec<Duration>, Duration) {
    let samples: Vec<Duration> = (0..n as u64)
        .map(|i| Duration::from_micros(base_ms * 1000 - 10_000 + (i * 7_919) % 20_001))
        .collect();
    let mut sorted = samples.clone();
    sorted.sort();
    let rank = (0.95 * n as f64).ceil() as usize;
    (samples, sorted[rank - 1])
}

fn assert_close(actual: Duration, expected: Duration) {
    let ratio = actual.as_secs_f64() / expected.as_secs_f64();
    assert!(
        (0.99..=1.01).contains(&ratio),
        "{actual:?} is not within 1% of {expected:?}"
    );
}

async fn adaptive(name: &str) -> TimeoutHandle {
    let policy = TimeoutPolicy::Adaptive(AdaptiveTimeoutSettings::default());
    TimeoutActor::spawn(name, policy, TimeoutHooks::new())
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_deadline_starts_at_initial_and_follows_a_latency_shift() {
    let timeouts = adaptive("adaptive").await;
    assert_eq!(
        timeouts.timeout_for(None),
        Duration::from_secs(30),
        "no data yet: `initial`"
    );

    let (fast, fast_p95) = latencies(50, 1000);
    for &latency in &fast {
        timeouts.record(None, latency, TimeoutOutcome::Success);
    }
    timeouts.status().await.unwrap();
    assert_close(timeouts.timeout_for(None), fast_p95.mul_f64(1.5));

    // The dependency slows to ≈200 ms: the deadline covers it well within one window.
    let (slow, slow_p95) = latencies(200, 1000);
    let mut covered_after = None;
    for (i, chunk) in slow.chunks(10).enumerate() {
        for &latency in chunk {
            timeouts.record(None, latency, TimeoutOutcome::Success);
        }
        timeouts.status().await.unwrap();
        if covered_after.is_none() && timeouts.timeout_for(None) >= ms(210) {
            covered_after = Some((i + 1) * 10);
        }
    }
    let covered_after = covered_after.expect("the deadline grew to cover the new latencies");
    assert!(
        covered_after <= 60,
        "covered after {covered_after} samples (> 5% of the window)"
    );
    assert_close(timeouts.timeout_for(None), slow_p95.mul_f64(1.5));
}

#[tokio::test(start_paused = true)]
async fn censored_timeouts_grow_the_adaptive_deadline() {
    let timeouts = adaptive("censored").await;
    for _ in 0..1000 {
        timeouts.record(None, ms(50), TimeoutOutcome::Success);
    }
    timeouts.status().await.unwrap();
    let healthy = timeouts.timeout_for(None);
    assert_close(healthy, ms(75));

    // Every call now times out: without censored samples the deadline would never move.
    for _ in 0..20 {
        for _ in 0..10 {
            timeouts.record(None, timeouts.timeout_for(None), TimeoutOutcome::Timeout);
        }
        timeouts.status().await.unwrap();
    }
    let grown = timeouts.timeout_for(None);
    assert!(
        grown >= healthy.mul_f64(1.5 * 1.5),
        "{grown:?} did not grow from {healthy:?}"
    );
    assert_eq!(timeouts.status().await.unwrap().timeouts, 200);
}

#[tokio::test(start_paused = true)]
async fn fast_failures_do_not_drag_the_adaptive_deadline_down() {
    let timeouts = adaptive("failures").await;
    for _ in 0..1000 {
        timeouts.record(None, ms(100), TimeoutOutcome::Success);
    }
    for _ in 0..1000 {
        timeouts.record(None, ms(1), TimeoutOutcome::Failure);
    }
    timeouts.status().await.unwrap();
    assert_close(timeouts.timeout_for(None), ms(150));
}

// ===== metrics =====

fn sample(rendered: &str, metric: &str, labels: &[&str]) -> f64 {
    rendered
        .lines()
        .find(|line| {
            line.starts_with(&format!("{metric}{{")) && labels.iter().all(|l| line.contains(l))
        })
        .and_then(|line| line.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{rendered}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn metrics_count_calls_by_outcome_and_publish_the_current_deadline() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let args = TimeoutArgs::new(TimeoutPolicy::Adaptive(AdaptiveTimeoutSettings::default()))
        .with_slow_operation_threshold(ms(90));
    let timeouts = TimeoutActor::spawn("metered", args, TimeoutHooks::new())
        .await
        .unwrap();
    let initial = sample(
        &handle.render(),
        "resilience_timeout_current_seconds",
        &[r#"timeout="metered""#],
    );
    assert_eq!(initial, 30.0);

    for i in 0..30 {
        timeouts.record(None, ms(80 + i), TimeoutOutcome::Success);
    }
    for _ in 0..5 {
        timeouts.record(None, ms(5), TimeoutOutcome::Failure);
    }
    for _ in 0..2 {
        timeouts.record(None, ms(150), TimeoutOutcome::Timeout);
    }
    timeouts.late_reply();
    let status = timeouts.status().await.unwrap();

    let rendered = handle.render();
    let calls = |outcome: &str| {
        sample(
            &rendered,
            "resilience_timeout_calls_total",
            &[r#"timeout="metered""#, &format!(r#"outcome="{outcome}""#)],
        )
    };
    assert_eq!(
        (calls("success"), calls("failure"), calls("timeout")),
        (30.0, 5.0, 2.0)
    );
    // 91..=109 ms are strictly slower than 90 ms; the 5 ms failures are not, and timeouts
    // call `on_timeout`, never `on_slow`.
    assert_eq!(
        sample(
            &rendered,
            "resilience_slow_operations_total",
            &[r#"timeout="metered""#]
        ),
        19.0
    );
    assert_eq!(
        sample(
            &rendered,
            "resilience_timeout_late_replies_total",
            &[r#"timeout="metered""#]
        ),
        1.0
    );
    let current = sample(
        &rendered,
        "resilience_timeout_current_seconds",
        &[r#"timeout="metered""#],
    );
    assert_eq!(current, timeouts.timeout_for(None).as_secs_f64());
    assert_eq!(current, status.current.as_secs_f64());
    assert!(
        status.current < Duration::from_secs(1),
        "the estimate replaced `initial`"
    );
}
