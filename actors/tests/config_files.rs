//! Every file under `config/` loads, the profiles carry the seed's recommended values, and
//! `config/defaults.toml` is exactly the built-in defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ractor_resilience::config::{ResolvedConfig, TimeoutSettings};
use ractor_resilience::core::backoff::{Jitter, RetryPolicy};
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::core::budget::BudgetSettings;
use ractor_resilience::core::estimator::AdaptiveTimeoutSettings;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn load(name: &str) -> ResolvedConfig {
    let path = config_dir().join(name);
    ResolvedConfig::load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_file_in_config_dir_resolves() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir())
        .expect("config/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the three profiles and defaults.toml, found {files:?}"
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| ResolvedConfig::load(p).err().map(|e| e.to_string()))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_profile_has_the_llm_policies_and_the_llm_worker() {
    for name in ["development.toml", "staging.toml", "production.toml"] {
        let config = load(name);
        let p = config
            .policies("llm_worker")
            .unwrap_or_else(|| panic!("{name}: llm_worker"));
        assert_eq!(p.agent.breaker, "llm", "{name}");
        assert!(p.budget.is_some(), "{name}: a budget");
        let kinds: Vec<&str> = config
            .timeouts
            .values()
            .map(TimeoutSettings::kind)
            .collect();
        for kind in ["fixed", "per_operation", "adaptive"] {
            assert!(kinds.contains(&kind), "{name}: a {kind} timeout example");
        }
    }
}

#[test]
fn development_profile_has_the_seed_values() {
    let c = load("development.toml");
    let b = &c.breakers["llm"];
    assert_eq!(b.max_failures(), Some(2));
    assert_eq!(b.open_duration(), secs(5));
    let r = &c.retry_policies["llm"];
    assert_eq!(r.max_attempts(), 2);
    assert_eq!(r.initial_delay(), ms(100));
    assert_eq!(c.timeouts["llm"].timeout_for("anything"), secs(10));
}

#[test]
fn staging_profile_has_the_seed_values() {
    let c = load("staging.toml");
    let b = &c.breakers["llm"];
    assert_eq!(b.max_failures(), Some(3));
    assert_eq!(b.open_duration(), secs(10));
    let r = &c.retry_policies["llm"];
    assert_eq!(r.max_attempts(), 3);
    assert_eq!(r.initial_delay(), secs(1));
    assert_eq!(c.timeouts["llm"].timeout_for("anything"), secs(30));
}

#[test]
fn production_profile_has_the_seed_values() {
    let c = load("production.toml");
    let b = &c.breakers["llm"];
    assert_eq!(b.max_failures(), Some(5));
    assert_eq!(b.open_duration(), secs(15));
    assert_eq!(b.half_open_max_wait(), Some(secs(60)));
    let r = &c.retry_policies["llm"];
    assert_eq!(r.max_attempts(), 3);
    assert_eq!(r.initial_delay(), secs(1));
    assert_eq!(r.max_delay(), secs(30));
    assert_ne!(r.jitter(), Jitter::None);
    let TimeoutSettings::PerOperation(t) = &c.timeouts["llm"] else {
        panic!("production llm timeout is per_operation");
    };
    assert_eq!(t.default_timeout(), secs(60));
    assert_eq!(t.slow_operation_threshold(), secs(20));
    assert_eq!(t.timeout_for("slow_op"), secs(300));
}

#[test]
fn defaults_file_is_exactly_the_builtin_defaults() {
    let c = load("defaults.toml");
    assert_eq!(c.breakers["example"], BreakerSettings::default());
    assert_eq!(c.retry_policies["example"], RetryPolicy::default());
    assert_eq!(c.budgets["example"], BudgetSettings::default());
    assert_eq!(
        c.timeouts["example_adaptive"],
        TimeoutSettings::Adaptive(AdaptiveTimeoutSettings::default())
    );
    assert_eq!(
        c.timeouts["example_fixed"],
        TimeoutSettings::Fixed(secs(30))
    );
    let agent = &c.agents["example"];
    assert_eq!(
        agent.workers.get(),
        ractor_resilience::config::DEFAULT_WORKERS
    );
    assert_eq!(
        agent.max_pending.get(),
        ractor_resilience::config::DEFAULT_MAX_PENDING
    );
    assert_eq!(
        agent.queue,
        Some(ractor_resilience::core::queue::CodelSettings::default())
    );

    // And an empty section resolves to the same values.
    let empty = ResolvedConfig::from_toml_str(
        "[breakers.e]\n[retry_policies.e]\n[budgets.e]\n[timeouts.e]\n[timeouts.a]\nkind = \"adaptive\"\n\
         [timeouts.p]\nkind = \"per_operation\"\n",
        "empty.toml",
    )
    .unwrap();
    assert_eq!(empty.breakers["e"], c.breakers["example"]);
    assert_eq!(empty.retry_policies["e"], c.retry_policies["example"]);
    assert_eq!(empty.budgets["e"], c.budgets["example"]);
    assert_eq!(empty.timeouts["e"], c.timeouts["example_fixed"]);
    assert_eq!(empty.timeouts["a"], c.timeouts["example_adaptive"]);
    assert_eq!(empty.timeouts["p"], c.timeouts["example_per_operation"]);
}

#[test]
fn printed_configuration_loads_back_to_the_same_configuration() {
    for name in [
        "development.toml",
        "staging.toml",
        "production.toml",
        "defaults.toml",
    ] {
        let config = load(name);
        let printed = config.to_string();
        let again = ResolvedConfig::from_toml_str(&printed, "printed.toml")
            .unwrap_or_else(|e| panic!("{name} printed:\n{printed}\n{e}"));
        assert_eq!(again, config, "{name} printed:\n{printed}");
    }
}

#[test]
fn a_rich_configuration_prints_and_loads_back() {
    let text = r#"
[breakers.rates]
max_failures = "off"
failure_rate_threshold = 0.5
slow_call_rate_threshold = 0.8
slow_call_duration = "2s"
window_duration = "30s"
minimum_calls = 20
open_backoff_multiplier = 2
max_open_duration = "5m"
open_jitter = 0.1
half_open_probes = 3
half_open_successes = 2
half_open_max_wait = "off"

[retry_policies.full]
jitter = "full"
[retry_policies.decorrelated]
jitter = "decorrelated"
[retry_policies.equal]
jitter = "equal"
initial_delay = "1.5s"

[timeouts.rfc]
kind = "adaptive"
mode = "rfc6298"
"#;
    let config = ResolvedConfig::from_toml_str(text, "rich.toml").unwrap();
    assert_eq!(config.breakers["rates"].max_failures(), None);
    assert_eq!(config.breakers["rates"].half_open_max_wait(), None);
    let printed = config.to_string();
    let again = ResolvedConfig::from_toml_str(&printed, "printed.toml")
        .unwrap_or_else(|e| panic!("{printed}\n{e}"));
    assert_eq!(again, config, "{printed}");
}
