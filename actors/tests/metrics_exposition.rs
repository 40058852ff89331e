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
