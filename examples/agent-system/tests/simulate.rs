//! `simulate` end to end, on the virtual clock: the default outage opens the breaker and it
//! recovers; no task is lost; the same seed gives the same report byte for byte.

use std::path::PathBuf;

use agent_system::cli::SimulateArgs;
use agent_system::commands;
use ractor_resilience::config::EnvOverrides;
use serde_json::Value;

fn simulate(duration: &str, seed: u64, name: &str) -> (Value, String) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("agent-system-{}-{name}.json", std::process::id()));
    let args = SimulateArgs {
        config: None,
        duration: Some(humantime::parse_duration(duration).unwrap()),
        report_json: Some(path.clone()),
        seed: Some(seed),
        timeline: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = commands::simulate(&args, &EnvOverrides::default(), &mut out, &mut err).unwrap();
    assert_eq!(status, 0, "stderr: {}", String::from_utf8_lossy(&err));
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    (serde_json::from_str(&text).unwrap(), text)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn the_default_outage_opens_the_breaker_which_half_opens_and_closes_after_it_ends() {
    let (report, _) = simulate("40s", 1, "outage");
    // The embedded default: outage from 10 s for 8 s; development profile: open for 5 s.
    let (outage_start, outage_end, open_ms) = (10_000, 18_000, 5_000);
    let transitions = report["breaker_transitions"].as_array().unwrap();
    let at = |t: &Value| t["at_ms"].as_u64().unwrap();
    let opened = transitions
        .iter()
        .find(|t| t["to"] == "open" && at(t) >= outage_start)
        .expect("the breaker opens during the outage");
    assert!(
        at(opened) <= outage_start + 5_000,
        "opened at {} ms",
        at(opened)
    );
    let closed = transitions
        .iter()
        .find(|t| t["from"] == "half_open" && t["to"] == "closed" && at(t) >= outage_end)
        .expect("the breaker closes after the outage");
    assert!(
        at(closed) <= outage_end + 2 * open_ms,
        "closed at {} ms",
        at(closed)
    );
    let half_opened = transitions.iter().any(|t| {
        t["from"] == "open" && t["to"] == "half_open" && at(t) >= outage_end && at(t) <= at(closed)
    });
    assert!(half_opened, "half-open before closing: {transitions:?}");
    // No task lost.
    let outcomes: u64 = [
        "succeeded",
        "failed",
        "rejected",
        "overloaded",
        "timed_out",
        "cancelled",
    ]
    .iter()
    .map(|k| n(&report, k))
    .sum();
    assert_eq!(n(&report, "submitted"), outcomes);
    assert_eq!(n(&report, "submitted"), 800, "20 tasks/s for 40 s");
    assert!(n(&report, "attempts") >= n(&report, "succeeded"));
    assert!(
        n(&report, "rejected") > 0,
        "the open breaker rejected calls"
    );
}

#[test]
fn the_same_seed_gives_the_same_report_byte_for_byte() {
    let (_, a) = simulate("60s", 7, "a");
    let (_, b) = simulate("60s", 7, "b");
    assert_eq!(a, b);
    let (_, c) = simulate("60s", 8, "c");
    assert_ne!(a, c, "another seed, another run");
}

/// Overload against a healthy dependency (the front-door issue's scenario): the development
/// profile at 100 tasks/s for 60 s against a simulated provider that never fails, about 2.3×
/// the agent's capacity (4 workers at ~90 ms). Time spent waiting for a worker is not the
/// dependency's fault: the breaker never moves, nothing is retried for it, the workers stay busy,
/// admitted tasks keep their latency, and the excess is answered `overloaded`.
#[test]
fn overload_against_a_healthy_dependency_sheds_load_and_never_opens_the_breaker() {
    let config =
        std::env::temp_dir().join(format!("agent-system-{}-overload.toml", std::process::id()));
    let profile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/development.toml"),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "{profile}\n[system]\nduration = \"60s\"\n\n[system.workload]\nrate = 100.0\n\n\
             [system.provider]\nkind = \"simulated\"\nerror_rate = 0.0\nrate_limit_rate = 0.0\n\
             outages = []\nspikes = []\n"
        ),
    )
    .unwrap();
    let path =
        std::env::temp_dir().join(format!("agent-system-{}-overload.json", std::process::id()));
    let args = SimulateArgs {
        config: Some(config.clone()),
        duration: None,
        report_json: Some(path.clone()),
        seed: Some(1),
        timeline: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = commands::simulate(&args, &EnvOverrides::default(), &mut out, &mut err).unwrap();
    assert_eq!(status, 0, "stderr: {}", String::from_utf8_lossy(&err));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&config));
    eprintln!("{report:#}");
    let submitted = n(&report, "submitted");
    assert_eq!(submitted, 6000, "100 tasks/s for 60 s");
    assert!(
        report["breaker_transitions"].as_array().unwrap().is_empty(),
        "the breaker moved: {report:#}"
    );
    assert!(n(&report, "succeeded") >= 2500, "{report:#}");
    assert!(
        n(&report, "retries") * 100 <= submitted * 5,
        "retries above 5% of submitted: {report:#}"
    );
    let p95 = report["latency_ms"]["p95"].as_f64().unwrap();
    assert!(p95 <= 1000.0, "p95 of successes {p95} ms");
    assert_eq!(
        n(&report, "succeeded") + n(&report, "overloaded"),
        submitted,
        "the excess is answered overloaded, nothing else: {report:#}"
    );
}

/// `config/scenarios/models.toml`: three models behind one agent with a keyed breaker; model-b is down
/// from 10 s to 25 s.
#[test]
fn one_models_outage_opens_its_key_while_the_other_models_keep_serving() {
    let path: PathBuf =
        std::env::temp_dir().join(format!("agent-system-{}-models.json", std::process::id()));
    let args = SimulateArgs {
        config: Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/scenarios/models.toml"
        ))),
        duration: None,
        report_json: Some(path.clone()),
        seed: None,
        timeline: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = commands::simulate(&args, &EnvOverrides::default(), &mut out, &mut err).unwrap();
    assert_eq!(status, 0, "stderr: {}", String::from_utf8_lossy(&err));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let transitions = report["breaker_transitions"].as_array().unwrap();
    assert!(
        transitions
            .iter()
            .all(|t| t["breaker"] == "models[model-b]"),
        "only model-b's breaker moves; the agent's llm breaker stays closed: {transitions:?}"
    );
    let at = |t: &Value| t["at_ms"].as_u64().unwrap();
    let opened = transitions
        .iter()
        .find(|t| t["to"] == "open")
        .expect("model-b's breaker opens");
    assert!((10_000..=11_000).contains(&at(opened)), "{opened}");
    let closed = transitions.last().unwrap();
    assert_eq!(
        (closed["from"].as_str(), closed["to"].as_str()),
        (Some("half_open"), Some("closed"))
    );
    assert!(
        at(closed) >= 25_000,
        "closed only after the outage: {closed}"
    );
    // While model-b is open its tasks are refused at once; a third of 20 tasks/s for about
    // 15 s is about 100 of them. Everything else succeeds.
    let rejected = n(&report, "rejected");
    assert!((80..=110).contains(&rejected), "rejected {rejected}");
    assert_eq!(
        n(&report, "succeeded") + n(&report, "failed") + rejected,
        n(&report, "submitted")
    );
    assert!(n(&report, "failed") <= 5, "{report}");
}
