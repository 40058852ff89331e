//! What a Prometheus scrape shows of a keyed family: series of their own only for
//! `metric_keys` and the current top keys by failures, everything else under `key="other"`, the
//! overflow breaker under `key="overflow"`; transition series at 0 from the moment a key gets
//! series; keys per state; and an exposition that `promtool check metrics` accepts.

mod support;

use std::collections::BTreeSet;

use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerHandle, KeyedBreakerOptions};
use ractor_resilience::core::breaker::{BreakerSettings, CallOutcome, FamilySettings};
use support::{ms, secs, settle};
use tokio::time::advance;

fn settings(max_failures: u32) -> FamilySettings {
    let per_key = BreakerSettings::builder()
        .with_max_failures(max_failures)
        .build()
        .unwrap();
    FamilySettings::new(per_key)
}

async fn fail(f: &KeyedBreakerHandle, key: &str, times: usize) {
    for _ in 0..times {
        // Once the key opens, its calls are rejected (and counted as such).
        if let Ok(permit) = f.acquire(key).await {
            f.record(permit, CallOutcome::Failure, ms(5));
        }
    }
    settle().await;
}

/// Every `key` label value of the family's series.
fn key_labels(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("resilience_circuit_breaker") && l.contains("breaker=\"models\""))
        .filter_map(|l| {
            let start = l.find("key=\"")? + 5;
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

fn recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    ractor_resilience::metrics::prometheus_builder().build_recorder()
}

#[test]
fn configured_keys_have_series_from_spawn_and_the_rest_aggregate_under_other() {
    let text = support::paused_with_recorder(recorder(), |handle| async move {
        let options = KeyedBreakerOptions::new()
            .with_metric_keys(["gpt-4o"])
            .with_metric_top_keys(0);
        let f = KeyedBreakerActor::spawn("models", settings(1), options)
            .await
            .unwrap();
        settle().await;
        let at_spawn = handle.render();
        for i in 0..50 {
            fail(&f, &format!("tenant-{i}"), 1).await;
        }
        fail(&f, "gpt-4o", 1).await;
        f.status().await.unwrap();
        let text = handle.render();
        f.stop();
        (at_spawn, text)
    });
    let (at_spawn, text) = text;
    for line in [
        "resilience_circuit_breaker_transitions_total{breaker=\"models\",key=\"gpt-4o\",from=\"closed\",to=\"open\"} 0",
        "resilience_circuit_breaker_state{breaker=\"models\",key=\"gpt-4o\",state=\"closed\"} 1",
        "resilience_circuit_breaker_state{breaker=\"models\",key=\"overflow\",state=\"closed\"} 1",
        "resilience_circuit_breaker_transitions_total{breaker=\"models\",key=\"other\",from=\"closed\",to=\"open\"} 0",
        "resilience_circuit_breaker_key_evictions_total{breaker=\"models\",reason=\"idle\"} 0",
    ] {
        assert!(
            at_spawn.contains(line),
            "missing {line:?} at spawn in:\n{at_spawn}"
        );
    }
    for line in [
        "resilience_circuit_breaker_transitions_total{breaker=\"models\",key=\"other\",from=\"closed\",to=\"open\"} 50",
        "resilience_circuit_breaker_calls_total{breaker=\"models\",key=\"other\",outcome=\"failure\"} 50",
        "resilience_circuit_breaker_transitions_total{breaker=\"models\",key=\"gpt-4o\",from=\"closed\",to=\"open\"} 1",
        "resilience_circuit_breaker_state{breaker=\"models\",key=\"gpt-4o\",state=\"open\"} 1",
        "resilience_circuit_breaker_keys{breaker=\"models\",state=\"open\"} 51",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let labels = key_labels(&text);
    assert_eq!(
        labels,
        BTreeSet::from(["gpt-4o".into(), "other".into(), "overflow".into()]),
        "no label value from task data outside the top"
    );
    // No state series for the aggregate: "exactly one is 1" cannot hold for many keys.
    assert!(!text.contains("key=\"other\",state="), "{text}");
}

#[test]
fn the_top_keys_by_failures_get_series_and_lose_them_when_they_stop_failing() {
    let (first, later, labelled) = support::paused_with_recorder(recorder(), |handle| async move {
        let options = KeyedBreakerOptions::new()
            .with_metric_top_keys(2)
            .with_rank_interval(secs(10));
        // Keys stay Closed: the ranking is by failures, not by state.
        let f = KeyedBreakerActor::spawn("models", settings(1000), options)
            .await
            .unwrap();
        fail(&f, "hot", 16).await;
        fail(&f, "warm", 4).await;
        for i in 0..30 {
            fail(&f, &format!("cold-{i}"), 1).await;
        }
        advance(secs(10)).await;
        fail(&f, "hot", 1).await; // a drain after the interval re-ranks
        f.status().await.unwrap();
        let first = handle.render();
        // warm stops failing; its score halves at each ranking (4 → 2 → 1 → 0).
        for _ in 0..4 {
            advance(secs(10)).await;
            fail(&f, "hot", 1).await;
        }
        f.status().await.unwrap();
        let later = handle.render();
        let labelled = f.status().await.unwrap().labelled_keys;
        f.stop();
        (first, later, labelled)
    });
    assert_eq!(
        key_labels(&first),
        BTreeSet::from([
            "hot".into(),
            "warm".into(),
            "other".into(),
            "overflow".into()
        ])
    );
    assert!(
        first.contains(
            "resilience_circuit_breaker_state{breaker=\"models\",key=\"warm\",state=\"closed\"} 1"
        ),
        "{first}"
    );
    assert_eq!(labelled, ["hot"]);
    // warm's series stay (the facade cannot remove one) but no longer claim a state.
    assert!(
        later.contains(
            "resilience_circuit_breaker_state{breaker=\"models\",key=\"warm\",state=\"closed\"} 0"
        ),
        "{later}"
    );
    assert!(
        later.contains(
            "resilience_circuit_breaker_state{breaker=\"models\",key=\"hot\",state=\"closed\"} 1"
        ),
        "{later}"
    );
}

#[test]
fn the_exposition_passes_promtool() {
    let text = support::paused_with_recorder(recorder(), |handle| async move {
        ractor_resilience::metrics::describe();
        let options = KeyedBreakerOptions::new()
            .with_metric_keys(["gpt-4o", "claude"])
            .with_metric_top_keys(3)
            .with_rank_interval(secs(1));
        let f = KeyedBreakerActor::spawn("models", settings(2), options)
            .await
            .unwrap();
        for i in 0..20 {
            fail(&f, &format!("tenant-{i}"), 1 + i % 3).await;
        }
        fail(&f, "gpt-4o", 3).await;
        advance(secs(1)).await;
        fail(&f, "tenant-1", 1).await;
        f.status().await.unwrap();
        let text = handle.render();
        f.stop();
        text
    });
    assert!(key_labels(&text).len() <= 2 + 3 + 2, "{text}");
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipping its check");
        return;
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
