//! Fuzzing the agent system's own loader, `SystemConfig` (the library's sections plus
//! `[system]`): random `[system]` tables — workload, provider (simulated, http, neither),
//! exporter, with extreme and ill-typed values — grafted onto every shipped profile.
//!
//! For every input: no panic; every rejection names a field (a well-formed dotted path under a
//! top-level key of the document, at a line inside it). And what the loader accepts must run:
//! a configuration that loads is driven on tokio's paused clock for a few dozen tasks, without
//! a panic, and its report adds up (a huge `task_deadline`, a tiny `rate`, a zero
//! `progress_interval` or windows that overflow used to load and then panic).
//!
//! Paused clock only, no sockets: a few seconds in a debug build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_system::SystemConfig;
use agent_system::settings::ProviderSettings;
use agent_system::system::System;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use ractor_resilience::config::EnvOverrides;
use ractor_resilience::error::ConfigError;
use ractor_resilience::task::CancellationToken;
use toml::{Table, Value};

fn profiles() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("config/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable profile");
            (p, text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
}

fn spelled(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Loads the document; checks a rejection; returns the configuration if it loaded.
fn load_and_check(doc: &Table) -> Option<SystemConfig> {
    let text = toml::to_string(doc).ok()?;
    match SystemConfig::from_toml_str_with_env(&text, "fuzz.toml", &EnvOverrides::none()) {
        Ok(config) => Some(config),
        Err(errors) => {
            let lines = text.split('\n').count();
            for e in &errors {
                let ConfigError::Invalid {
                    line,
                    column,
                    field,
                    reason,
                    ..
                } = e
                else {
                    panic!("a mistake without a position: {e}")
                };
                assert!((1..=lines).contains(line) && *column >= 1, "{e}");
                assert!(!reason.trim().is_empty(), "{e}");
                assert!(
                    !field.is_empty()
                        && !field.starts_with('.')
                        && !field.ends_with('.')
                        && !field.contains(".."),
                    "not a dotted key path: {field:?} in {e}"
                );
                assert!(
                    doc.keys()
                        .any(|k| field == &spelled(k)
                            || field.starts_with(&format!("{}.", spelled(k)))),
                    "{e}: not under a top-level key of the document\n--- text:\n{text}"
                );
            }
            None
        }
    }
}

/// Runs an accepted configuration with the simulated provider for at most ~40 tasks on the
/// paused clock: no panic, and every task gets exactly one outcome.
fn run_briefly(config: &SystemConfig) {
    if !matches!(config.system.provider, ProviderSettings::Simulated(_)) {
        return; // the HTTP provider needs a server and a key: see security.rs
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let system = match System::spawn(config).await {
            Ok(s) => s,
            Err(_) => return, // e.g. the workload names no configured agent
        };
        let rate = config.system.workload.rate;
        let duration = config
            .system
            .duration
            .min(Duration::from_secs_f64(40.0 / rate));
        let report = system
            .drive(config, "simulate", duration, CancellationToken::new())
            .await;
        system.stop();
        assert!(report.adds_up(), "{report:?}");
        assert!(report.submitted >= 1, "{report:?}");
    });
}

const DURATIONS: [&str; 14] = [
    "1ns",
    "1ms",
    "20ms",
    "1s",
    "10s",
    "0s",
    "5m",
    "100y",
    "101y",
    "500000000000y",
    "584000000000y",
    "-1s",
    "soon",
    "",
];

fn duration() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => select(&DURATIONS[..8]).prop_map(|d| Value::String(d.to_owned())),
        6 => select(&DURATIONS[..]).prop_map(|d| Value::String(d.to_owned())),
        1 => any::<i64>().prop_map(Value::Integer),
        1 => any::<bool>().prop_map(Value::Boolean),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => select(vec![0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 20.0]).prop_map(Value::Float),
        3 => select(vec![0.0, 1e-300, 1e-20, 0.0009, 0.001, 0.5, 1.0, 20.0, 999_999.0, 1_000_000.0,
                         1_000_001.0, -1.0, f64::NAN, f64::INFINITY, 1e308, 5.1])
            .prop_map(Value::Float),
        1 => any::<f64>().prop_map(Value::Float),
        2 => select(vec![0i64, 1, 2, 20, 256, -1, i64::MAX, i64::MIN, 1 << 40]).prop_map(Value::Integer),
        1 => Just(Value::String("20".into())),
    ]
}

fn window(with_factor: bool) -> impl Strategy<Value = Value> {
    (
        duration(),
        duration(),
        number(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(start, length, factor, drop_one, extra)| {
            let mut t = Table::new();
            t.insert("start".into(), start);
            if !drop_one {
                t.insert("length".into(), length);
            }
            if with_factor {
                t.insert("factor".into(), factor);
            }
            if extra {
                t.insert("end".into(), Value::Integer(1));
            }
            Value::Table(t)
        })
}

/// A table of some of `entries` (each present with probability ~1/2), plus maybe a stray key.
fn table_of(entries: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = entries
        .into_iter()
        .map(|(k, s)| prop::option::of(s.prop_map(move |v| (k.to_owned(), v))).boxed())
        .collect();
    (parts, prop::option::weighted(0.03, "[a-z_]{1,8}"))
        .prop_map(|(entries, stray)| {
            let mut t: Table = entries.into_iter().flatten().collect();
            if let Some(k) = stray {
                t.insert(k, Value::Integer(1));
            }
            Value::Table(t)
        })
        .boxed()
}

fn string_of(options: &'static [&'static str]) -> BoxedStrategy<Value> {
    select(options)
        .prop_map(|s| Value::String(s.to_owned()))
        .boxed()
}

fn system_table() -> impl Strategy<Value = Value> {
    let workload = table_of(vec![
        ("rate", number().boxed()),
        ("task_deadline", duration().boxed()),
        ("max_tokens", number().boxed()),
        (
            "agents",
            prop::collection::vec(
                select(vec!["llm_worker", "example", "nope", ""])
                    .prop_map(|s| Value::String(s.into())),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
    ]);
    let provider = table_of(vec![
        (
            "kind",
            prop_oneof![
                8 => Just(Value::String("simulated".into())),
                2 => Just(Value::String("http".into())),
                1 => string_of(&["grpc", ""]),
            ]
            .boxed(),
        ),
        ("median_latency", duration().boxed()),
        ("sigma", number().boxed()),
        ("error_rate", number().boxed()),
        ("rate_limit_rate", number().boxed()),
        ("rate_limit_retry_after", duration().boxed()),
        (
            "outages",
            prop::collection::vec(window(false), 0..3)
                .prop_map(Value::Array)
                .boxed(),
        ),
        (
            "spikes",
            prop::collection::vec(window(true), 0..3)
                .prop_map(Value::Array)
                .boxed(),
        ),
        (
            "base_url",
            string_of(&[
                "http://127.0.0.1:1/v1",
                "https://x.invalid",
                "ftp://x",
                "http://u:p@h/",
                "",
                "::",
            ]),
        ),
        ("model", string_of(&["m", "", " "])),
        ("api_key_env", string_of(&["KEY", "", "A=B"])),
        ("request_timeout", duration().boxed()),
        ("max_body_bytes", number().boxed()),
    ]);
    let exporter = table_of(vec![
        (
            "addr",
            string_of(&[
                "127.0.0.1:0",
                "[::1]:9464",
                "[::ffff:127.0.0.1]:9464",
                "0.0.0.0:9464",
                "10.1.2.3:80",
                "localhost:1",
                "127.0.0.1",
                "",
            ]),
        ),
        (
            "allow_non_loopback",
            any::<bool>().prop_map(Value::Boolean).boxed(),
        ),
        ("linger", duration().boxed()),
    ]);
    table_of(vec![
        ("duration", duration().boxed()),
        ("seed", number().boxed()),
        ("drain_deadline", duration().boxed()),
        ("progress_interval", duration().boxed()),
        ("workload", workload),
        ("provider", provider),
        ("exporter", exporter),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A random `[system]` on a shipped profile: loaded or rejected by field; and if loaded,
    /// it runs.
    #[test]
    fn random_system_tables_on_every_profile_load_by_field_and_run(
        which in any::<Index>(),
        system in system_table(),
    ) {
        let profiles = profiles();
        let mut doc: Table = profiles[which.index(profiles.len())].1.parse().unwrap();
        doc.insert("system".into(), system);
        if let Some(config) = load_and_check(&doc) {
            run_briefly(&config);
        }
    }
}

/// Each of the values that used to load and then panic is now a mistake naming its field.
#[test]
fn values_that_used_to_panic_at_run_time_are_rejected_by_field() {
    let base = &profiles()
        .into_iter()
        .find(|(p, _)| p.ends_with("development.toml"))
        .unwrap()
        .1;
    for (system, field) in [
        ("[system.workload]\nrate = 1e-300\n", "system.workload.rate"),
        (
            "[system.workload]\ntask_deadline = \"500000000000y\"\n",
            "system.workload.task_deadline",
        ),
        (
            "[system]\nprogress_interval = \"0s\"\n",
            "system.progress_interval",
        ),
        (
            "[system.provider]\nkind = \"simulated\"\nrate_limit_retry_after = \"500000000000y\"\n",
            "system.provider.rate_limit_retry_after",
        ),
        (
            "[system.provider]\nkind = \"simulated\"\nspikes = [{ start = \"1000000000y\", length = \"584000000000y\", factor = 2.0 }]\n",
            "system.provider.spikes",
        ),
        (
            "[system.provider]\nkind = \"http\"\nbase_url = \"http://h\"\nmodel = \"m\"\napi_key_env = \"K\"\nrequest_timeout = \"500000000000y\"\n",
            "system.provider.request_timeout",
        ),
        (
            "[system.provider]\nkind = \"http\"\nbase_url = \"ftp://h\"\nmodel = \"m\"\napi_key_env = \"K\"\n",
            "system.provider.base_url",
        ),
    ] {
        let text = format!("{base}\n{system}");
        let errors = SystemConfig::from_toml_str_with_env(&text, "t.toml", &EnvOverrides::none())
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{system}"));
        let fields: Vec<&str> = errors.iter().filter_map(ConfigError::field).collect();
        assert_eq!(fields, [field], "{errors}");
    }
    // The bounds themselves are accepted, and run.
    let text = format!(
        "{base}\n[system]\nduration = \"100y\"\nprogress_interval = \"1ns\"\n[system.workload]\nrate = 0.001\ntask_deadline = \"100y\"\n"
    );
    let config = SystemConfig::from_toml_str_with_env(&text, "t.toml", &EnvOverrides::none())
        .unwrap_or_else(|e| panic!("{e}"));
    run_briefly(&config);
}

/// The generator is not vacuous: over a fixed sample, some configurations load (and run), and
/// rejections name many different fields.
#[test]
fn the_generated_tables_reach_the_validation_and_the_run() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let profiles = profiles();
    let (mut loaded, mut fields) = (0, BTreeSet::new());
    for i in 0..300 {
        let mut doc: Table = profiles[i % profiles.len()].1.parse().unwrap();
        doc.insert(
            "system".into(),
            system_table().new_tree(&mut runner).unwrap().current(),
        );
        let text = toml::to_string(&doc).unwrap();
        match SystemConfig::from_toml_str_with_env(&text, "f.toml", &EnvOverrides::none()) {
            Ok(_) => loaded += 1,
            Err(errors) => {
                fields.extend(errors.iter().filter_map(|e| e.field().map(str::to_owned)))
            }
        }
    }
    eprintln!(
        "{loaded} of 300 loaded; {} fields rejected: {fields:?}",
        fields.len()
    );
    assert!(loaded >= 10, "only {loaded} of 300 loaded");
    assert!(fields.len() >= 15, "{fields:?}");
}
