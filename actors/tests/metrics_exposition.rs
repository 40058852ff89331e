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
