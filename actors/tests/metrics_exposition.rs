//! What a Prometheus scrape shows of this crate's metrics: breaker transition series exist from
//! the start (so `increase()` sees the first transition), and the library's builder gives every
//! duration histogram buckets (never a summary).

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
use ractor_resilience::core::breaker::BreakerSettings;

#[test]
fn every_breaker_transition_series_starts_at_zero() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = support::paused_with_recorder(recorder, |handle| async move {
        let breaker =
            BreakerActor::spawn("x", BreakerSettings::default(), BreakerOptions::default())
                .await
                .unwrap();
        support::settle().await;
        let text = handle.render();
        breaker.stop();
        text
    });
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("half_open", "open"),
        ("closed", "forced_open"),
        ("forced_open", "closed"),
        ("closed", "disabled"),
        ("disabled", "closed"),
    ] {
        let line = format!(
            "resilience_circuit_breaker_transitions_total{{breaker=\"x\",from=\"{from}\",to=\"{to}\"}} 0\n"
        );
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
    // Only pairs the state machine can take: nothing opens from half-open's absence.
    assert!(!text.contains("from=\"closed\",to=\"half_open\""), "{text}");
}

#[test]
fn the_library_builder_gives_task_durations_buckets() {
    let recorder = ractor_resilience::metrics::prometheus_builder().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::histogram!(ractor_resilience::metrics::TASK_DURATION, "agent" => "a", "outcome" => "succeeded")
            .record(0.2);
        metrics::histogram!(ractor_resilience::metrics::AGENT_QUEUE_WAIT, "agent" => "a")
            .record(0.01);
    });
    let text = handle.render();
    assert!(
        text.contains("resilience_task_duration_seconds_bucket{agent=\"a\",outcome=\"succeeded\",le=\"0.25\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("resilience_agent_queue_wait_seconds_bucket{"),
        "{text}"
    );
    assert!(!text.contains("quantile="), "{text}");
}

/// The task-duration histogram counts a task's whole time from admission (its time in the
/// queue included), and the queue-wait histogram exactly that queueing: one worker, two
/// 100 ms tasks submitted together — the first is handed straight to the worker (100 ms, no
/// wait), the second waits for it (100 ms queued, 200 ms in all).
#[test]
fn task_durations_include_the_queue_and_queue_waits_are_exact() {
    use ractor_resilience::agent::{Agent, AgentBuilder};
    use ractor_resilience::task::TaskContext;

    struct Sleepy;
    impl Agent for Sleepy {
        type Task = u64;
        type Output = ();
        type Error = std::io::Error;
        async fn handle(&mut self, ms: u64, _ctx: TaskContext) -> Result<(), std::io::Error> {
            tokio::time::sleep(support::ms(ms)).await;
            Ok(())
        }
    }

    let recorder = ractor_resilience::metrics::prometheus_builder().build_recorder();
    let text = support::paused_with_recorder(recorder, |handle| async move {
        let agent = AgentBuilder::new("held", || Sleepy)
            .workers(1)
            .spawn()
            .await
            .unwrap();
        let (a, b) = tokio::join!(agent.call(100), agent.call(100));
        assert!(a.is_ok() && b.is_ok());
        // Queue waits are counted in place by the worker: published before reading.
        ractor_resilience::metrics::publish();
        let text = handle.render();
        agent.stop();
        text
    });
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    let durations = "resilience_task_duration_seconds_sum{agent=\"held\",outcome=\"succeeded\"}";
    let count = "resilience_task_duration_seconds_count{agent=\"held\",outcome=\"succeeded\"}";
    let waits = "resilience_agent_queue_wait_seconds_sum{agent=\"held\"}";
    let waited = "resilience_agent_queue_wait_seconds_count{agent=\"held\"}";
    assert_eq!(value(count), 2.0);
    assert!(
        (value(durations) - 0.3).abs() < 1e-6,
        "{}",
        value(durations)
    );
    assert_eq!(value(waited), 2.0);
    assert!((value(waits) - 0.1).abs() < 1e-6, "{}", value(waits));
}

/// What workers count in place (attempts, queue waits, a fixed timeout policy's outcomes) and
/// the in-flight gauge reach the recorder exactly once each when published: one worker, a
/// 50 ms timeout, two attempts per task. Task 0 succeeds, task 1 fails once then succeeds,
/// task 2 is too slow twice (two timeouts), and task 3 is held while the gauge is read.
#[test]
fn counted_in_place_then_published_exactly() {
    use ractor_resilience::agent::{Agent, AgentBuilder};
    use ractor_resilience::core::backoff::RetryPolicy;
    use ractor_resilience::task::TaskContext;
    use ractor_resilience::timeout::TimeoutPolicy;

    #[derive(Default)]
    struct Scripted {
        failed_once: bool,
    }
    impl Agent for Scripted {
        type Task = u64;
        type Output = ();
        type Error = std::io::Error;
        async fn handle(&mut self, task: u64, _ctx: TaskContext) -> Result<(), std::io::Error> {
            match task {
                1 if !self.failed_once => {
                    self.failed_once = true;
                    return Err(std::io::Error::other("once"));
                }
                2 => tokio::time::sleep(support::ms(100)).await,
                3 => tokio::time::sleep(support::ms(30)).await,
                _ => {}
            }
            Ok(())
        }
    }

    let recorder = ractor_resilience::metrics::prometheus_builder().build_recorder();
    let (held, done) = support::paused_with_recorder(recorder, |handle| async move {
        let retry = RetryPolicy::builder()
            .with_max_attempts(2)
            .with_initial_delay(support::ms(10))
            .build()
            .unwrap();
        let agent = AgentBuilder::new("in-place", Scripted::default)
            .workers(1)
            .retry_policy("in-place-retry", retry)
            .timeout_policy("in-place-timeout", TimeoutPolicy::Fixed(support::ms(50)))
            .spawn()
            .await
            .unwrap();
        for task in 0..3 {
            let _ = agent.call(task).await;
        }
        let call = agent.call(3);
        tokio::pin!(call);
        // Admitted and running: the gauge says so once published.
        assert!(futures_poll_once(call.as_mut()).await.is_none());
        support::settle().await;
        ractor_resilience::metrics::publish();
        let held = handle.render();
        call.await.unwrap();
        ractor_resilience::metrics::publish();
        ractor_resilience::metrics::publish(); // nothing new: nothing counted twice
        let done = handle.render();
        agent.stop();
        (held, done)
    });
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    let inflight = "resilience_agent_inflight_tasks{agent=\"in-place\"}";
    assert_eq!(value(&held, inflight), 1.0);
    assert_eq!(value(&done, inflight), 0.0);
    // Attempts: 1 + 2 + 2 + 1, of which 2 retries (4 requests).
    let attempts = "resilience_retry_attempts_total{policy=\"in-place-retry\"}";
    assert_eq!(value(&done, attempts), 6.0);
    let ratio = "resilience_retry_amplification_ratio{policy=\"in-place-retry\"}";
    assert_eq!(value(&done, ratio), 1.5);
    let calls = |outcome: &str| {
        value(
            &done,
            &format!(
                "resilience_timeout_calls_total{{timeout=\"in-place-timeout\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(
        (calls("success"), calls("failure"), calls("timeout")),
        (3.0, 1.0, 2.0)
    );
    // Every attempt started with a queue wait (each was handed straight to the idle worker).
    let waits = "resilience_agent_queue_wait_seconds_count{agent=\"in-place\"}";
    assert_eq!(value(&done, waits), 6.0);
    assert_eq!(
        value(
            &done,
            "resilience_agent_queue_wait_seconds_sum{agent=\"in-place\"}"
        ),
        0.0
    );
}

/// Polls `f` once.
async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
    let mut f = f;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
