//! Every query of the Grafana dashboard (`config/grafana-dashboard.json`) names metrics that the
//! exposition actually contains once traffic has flowed.

use std::collections::BTreeSet;

use agent_system::cli::SimulateArgs;
use agent_system::{commands, exporter};
use ractor_resilience::config::EnvOverrides;

/// The metric names a PromQL expression refers to, reduced to their family.
fn families_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("resilience_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        out.insert(family);
    }
    out
}

#[test]
fn every_dashboard_query_uses_metrics_the_exposition_contains() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/grafana-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 8, "the dashboard has its panels");

    // Traffic through the default scenario (with its outage), recorded by the real exporter setup.
    let metrics = exporter::install_recorder().unwrap();
    let args = SimulateArgs {
        duration: Some(std::time::Duration::from_secs(30)),
        ..SimulateArgs::default()
    };
    let status = commands::simulate(
        &args,
        &EnvOverrides::default(),
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 0);
    let exposition = metrics.render();

    let mut used = BTreeSet::new();
    for expr in &exprs {
        for family in families_in(expr) {
            assert!(
                exposition.contains(&format!("# TYPE {family} ")),
                "`{family}` (in `{expr}`) is not exported"
            );
            used.insert(family);
        }
    }
    // The latency panels read histogram buckets, which exist only if histograms are not summaries.
    assert!(exposition.contains("resilience_task_duration_seconds_bucket{"));
    for needed in [
        "resilience_circuit_breaker_state",
        "resilience_tasks_total",
        "resilience_retry_attempts_total",
        "resilience_timeout_calls_total",
        "resilience_task_duration_seconds",
        "resilience_agent_restarts_total",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not chart {needed}"
        );
    }
}
