//! The registry spawns each named policy once: agents that name the same breaker share one
//! breaker actor, so one actor writes its metric series (a second actor under the same name
//! would make two series writers and two independent state machines), and a breaker opened
//! by one agent's failures rejects the other agent's calls.

mod scripted;
mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::agent::CallError;
use ractor_resilience::config::ResolvedConfig;
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::registry::{Registry, RegistryOptions};
use scripted::{Script, Step, quiet};

const CONFIG: &str = r#"
[breakers.llm]
max_failures = 3
open_duration = "10s"

[retry_policies.once]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "1s"

[budgets.shared]

[agents.writer]
breaker = "llm"
retry = "once"
timeout = "llm"
budget = "shared"
workers = 2

[agents.reviewer]
breaker = "llm"
retry = "once"
timeout = "llm"
budget = "shared"
workers = 1
"#;

/// The value of the exposition line that starts with `prefix` (labels included), if any.
fn sample(exposition: &str, prefix: &str) -> Vec<f64> {
    exposition
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn agents_naming_one_breaker_share_one_actor_and_one_series() {
    let recorder = PrometheusBuilder::new().build_recorder();
    support::paused_with_recorder(recorder, |metrics| async move {
        let config = ResolvedConfig::from_toml_str(CONFIG, "registry.toml").unwrap();
        let transitions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = transitions.clone();
        let options =
            RegistryOptions::default()
                .with_seed(3)
                .with_on_transition(move |name, from, to| {
                    seen.lock().unwrap().push((name.to_string(), from, to));
                });
        let registry = Registry::spawn(&config, options).await.unwrap();
        assert_eq!(registry.breakers().count(), 1);
        assert_eq!(registry.timeouts().count(), 1);
        let writer = registry
            .agent("writer", quiet)
            .unwrap()
            .spawn()
            .await
            .unwrap();
        let reviewer = registry
            .agent("reviewer", quiet)
            .unwrap()
            .spawn()
            .await
            .unwrap();
        assert_eq!(
            writer.breaker().actor().get_id(),
            reviewer.breaker().actor().get_id(),
            "one breaker actor"
        );
        assert_eq!(writer.status().await.unwrap().live_workers, 2);
        assert_eq!(reviewer.status().await.unwrap().live_workers, 1);
        // The writer's failures open the breaker the reviewer's calls go through.
        for _ in 0..3 {
            let failed = writer.call(Script::new(&[(0, Step::Permanent)])).await;
            assert!(
                matches!(failed, Err(CallError::Failed { .. })),
                "{failed:?}"
            );
        }
        let _ = writer.breaker().status().await;
        let rejected = reviewer.call(Script::ok(1)).await;
        assert!(
            matches!(rejected, Err(CallError::Rejected { ref breaker, .. }) if &**breaker == "llm"),
            "{rejected:?}"
        );
        // One writer per series: the open state is 1 once and the transition counted once.
        let exposition = metrics.render();
        assert_eq!(
            sample(
                &exposition,
                r#"resilience_circuit_breaker_state{breaker="llm",state="open"}"#
            ),
            vec![1.0],
            "{exposition}"
        );
        assert_eq!(
            sample(
                &exposition,
                r#"resilience_circuit_breaker_transitions_total{breaker="llm",from="closed",to="open"}"#
            ),
            vec![1.0]
        );
        assert_eq!(
            *transitions.lock().unwrap(),
            vec![("llm".to_string(), BreakerState::Closed, BreakerState::Open)]
        );
        // An unknown agent is an error naming it.
        assert!(registry.agent("ghost", quiet).is_err());
        writer.stop();
        reviewer.stop();
        registry.stop();
        tokio::task::yield_now().await;
        assert!(!registry.breaker("llm").unwrap().is_running());
    });
}
