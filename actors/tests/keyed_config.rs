//! Keyed breaker families from a configuration file: `[breakers.NAME] keyed = true` makes a
//! family (the section's breaker keys are the per-key policy), `[agents.NAME] key_breaker`
//! names one, every mistake names its field and line, the registry spawns each family once and
//! the agents it builds admit each task by its key; a reload reconfigures every key in place.

mod support;

use ractor_resilience::agent::{Agent, CallError, ErrorClass};
use ractor_resilience::config::ResolvedConfig;
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::error::ConfigError;
use ractor_resilience::registry::{Registry, RegistryOptions};
use ractor_resilience::task::TaskContext;
use support::{ms, settle};

const FILE: &str = r#"
[breakers.llm]
max_failures = 1000

[breakers.models]
keyed = true
max_failures = 2
open_duration = "30s"
max_keys = 100
idle_evict_after = "5m"
metric_keys = ["model-a"]
metric_top_keys = 3

[retry_policies.once]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "5s"

[agents.writer]
breaker = "llm"
key_breaker = "models"
retry = "once"
timeout = "llm"
"#;

/// `(field, line, reason)` of each mistake.
fn mistakes(text: &str) -> Vec<(String, usize, String)> {
    match ResolvedConfig::from_toml_str(text, "keyed.toml") {
        Ok(_) => panic!("expected mistakes in:\n{text}"),
        Err(errors) => errors
            .iter()
            .map(|e| match e {
                ConfigError::Invalid {
                    field,
                    line,
                    reason,
                    ..
                } => (field.clone(), *line, reason.clone()),
                other => panic!("unexpected error: {other}"),
            })
            .collect(),
    }
}

#[test]
fn a_keyed_section_is_a_family_with_its_bounds_and_metric_keys() {
    let config = ResolvedConfig::from_toml_str(FILE, "keyed.toml").unwrap();
    assert_eq!(config.breakers.keys().collect::<Vec<_>>(), ["llm"]);
    let models = &config.keyed_breakers["models"];
    assert_eq!(models.family.breaker().max_failures(), Some(2));
    assert_eq!(models.family.max_keys(), 100);
    assert_eq!(
        models.family.idle_evict_after(),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(models.metric_keys, ["model-a"]);
    assert_eq!(models.metric_top_keys, 3);
    assert_eq!(
        config.agents["writer"].key_breaker.as_deref(),
        Some("models")
    );
    // The printed configuration loads back to the same one.
    let again = ResolvedConfig::from_toml_str(&config.to_string(), "again.toml").unwrap();
    assert_eq!(again, config);
}

#[test]
fn mistakes_name_the_field_and_line() {
    let swapped = FILE
        .replace("breaker = \"llm\"", "breaker = \"models\"")
        .replace("key_breaker = \"models\"", "key_breaker = \"llm\"");
    let found = mistakes(&swapped);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1),
        ("agents.writer.breaker", 22)
    );
    assert!(
        found[0].2.contains("is a keyed breaker family"),
        "{}",
        found[0].2
    );
    assert_eq!(
        (found[1].0.as_str(), found[1].1),
        ("agents.writer.key_breaker", 23)
    );
    assert!(
        found[1].2.contains("is not a keyed family"),
        "{}",
        found[1].2
    );

    let found = mistakes("[breakers.b]\nmax_keys = 10\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "breakers.b.max_keys");
    assert!(
        found[0].2.contains("without keyed = true"),
        "{}",
        found[0].2
    );

    let found = mistakes("[breakers.b]\nkeyed = true\nmax_keys = 0\n");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.as_str(), found[0].1),
        ("breakers.b.max_keys", 3)
    );

    let found = mistakes("[breakers.b]\nkeyed = true\nmetric_keys = [\"has \\\"quote\"]\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "breakers.b.metric_keys");
}

#[derive(Debug, Clone)]
struct Ask(&'static str, bool);

#[derive(Debug, thiserror::Error)]
#[error("down")]
struct Down;

struct Llm;

impl Agent for Llm {
    type Task = Ask;
    type Output = &'static str;
    type Error = Down;
    async fn handle(&mut self, task: Ask, _ctx: TaskContext) -> Result<&'static str, Down> {
        if task.1 { Err(Down) } else { Ok(task.0) }
    }
    fn classify(_: &Down) -> ErrorClass {
        ErrorClass::TRANSIENT
    }
    fn breaker_key(task: &Ask) -> Option<&str> {
        Some(task.0)
    }
}

#[tokio::test(start_paused = true)]
async fn the_registry_spawns_the_family_once_and_its_agents_admit_by_key() {
    let config = ResolvedConfig::from_toml_str(FILE, "keyed.toml").unwrap();
    let mut registry = Registry::spawn(&config, RegistryOptions::default())
        .await
        .unwrap();
    assert_eq!(registry.key_breakers().count(), 1);
    let writer = registry
        .agent("writer", || Llm)
        .unwrap()
        .spawn()
        .await
        .unwrap();
    let family = registry.key_breaker("models").unwrap().clone();
    assert_eq!(
        writer.key_breaker().unwrap().actor().get_id(),
        family.actor().get_id(),
        "the registry's family, not one of the agent's own"
    );
    for _ in 0..2 {
        assert!(writer.call(Ask("model-b", true)).await.is_err());
    }
    settle().await;
    tokio::time::sleep(ms(5)).await;
    assert_eq!(family.state("model-b"), BreakerState::Open);
    assert!(matches!(
        writer.call(Ask("model-b", false)).await,
        Err(CallError::Rejected { .. })
    ));
    assert_eq!(writer.call(Ask("model-a", false)).await.unwrap(), "model-a");

    // A reload that changes the family's policy reconfigures every key in place: model-b
    // stays open, and the new max_failures applies to model-c's failures.
    let changed = ResolvedConfig::from_toml_str(
        &FILE.replace("max_failures = 2", "max_failures = 3"),
        "keyed.toml",
    )
    .unwrap();
    let report = registry.reconfigure(&changed).await.unwrap();
    assert_eq!(
        report.actions,
        ["breakers.models: reconfigured in place (every key keeps its state and window)"],
        "{report:?}"
    );
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(family.state("model-b"), BreakerState::Open);
    assert_eq!(family.settings().breaker().max_failures(), Some(3));
    for _ in 0..2 {
        assert!(writer.call(Ask("model-c", true)).await.is_err());
    }
    settle().await;
    tokio::time::sleep(ms(5)).await;
    assert_eq!(
        family.state("model-c"),
        BreakerState::Closed,
        "two failures: under the new 3"
    );
    assert!(writer.call(Ask("model-c", true)).await.is_err());
    settle().await;
    tokio::time::sleep(ms(5)).await;
    assert_eq!(family.state("model-c"), BreakerState::Open);
    writer.stop();
    registry.stop();
}
