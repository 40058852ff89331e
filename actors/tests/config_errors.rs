//! Every kind of mistake is reported as `path:line:column: field: reason`, naming the dotted key
//! and the line it is on; every mistake of a file is reported; no input panics.

use std::path::Path;

use proptest::prelude::*;
use ractor_resilience::config::{EnvOverrides, NoSystem, ResolvedConfig};
use ractor_resilience::error::{ConfigError, ConfigErrors};

/// `(field, line, column, reason)` of each mistake, in file order.
fn mistakes(errors: &ConfigErrors) -> Vec<(String, usize, usize, String)> {
    errors
        .iter()
        .map(|e| match e {
            ConfigError::Invalid {
                field,
                line,
                column,
                reason,
                ..
            } => (field.clone(), *line, *column, reason.clone()),
            ConfigError::Override { var, field, reason } => {
                (field.clone(), 0, 0, format!("{var}: {reason}"))
            }
            other => panic!("unexpected error kind: {other}"),
        })
        .collect()
}

fn errors_of(text: &str) -> Vec<(String, usize, usize, String)> {
    match ResolvedConfig::from_toml_str(text, "test.toml") {
        Ok(_) => panic!("expected mistakes in:\n{text}"),
        Err(e) => mistakes(&e),
    }
}

/// Asserts the text has exactly one mistake, about `field` on `line`; returns its reason.
#[track_caller]
fn one_mistake(text: &str, field: &str, line: usize) -> String {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (f, l, column, reason) = errors.into_iter().next().unwrap();
    assert_eq!((f.as_str(), l), (field, line), "reason: {reason}");
    assert!(column >= 1);
    reason
}

const AGENT_POLICIES: &str =
    "[breakers.llm]\n[retry_policies.llm]\n[timeouts.llm]\n[budgets.default]\n";

#[test]
fn unknown_key_is_named_with_its_line() {
    let reason = one_mistake(
        "[breakers.llm]\nmax_failures = 3\nmax_failurez = 3\n",
        "breakers.llm.max_failurez",
        3,
    );
    assert!(
        reason.starts_with("unknown field `max_failurez`, expected one of `max_failures`"),
        "{reason}"
    );
}

#[test]
fn unknown_section_is_named() {
    let reason = one_mistake("\n[breaker.llm]\nmax_failures = 3\n", "breaker", 2);
    assert!(
        reason.contains("expected one of breakers, retry_policies"),
        "{reason}"
    );
}

#[test]
fn bad_duration_string_is_named() {
    let reason = one_mistake(
        "[breakers.llm]\n\nopen_duration = \"10 parsecs\"\n",
        "breakers.llm.open_duration",
        3,
    );
    assert!(
        reason.starts_with("invalid duration \"10 parsecs\""),
        "{reason}"
    );
    one_mistake("[timeouts.t]\nduration = 30\n", "timeouts.t.duration", 2);
}

#[test]
fn zero_max_failures_is_rejected() {
    let reason = one_mistake(
        "[breakers.llm]\nopen_duration = \"5s\"\nmax_failures = 0\n",
        "breakers.llm.max_failures",
        3,
    );
    assert_eq!(reason, "must be at least 1");
}

#[test]
fn multiplier_below_one_is_rejected() {
    one_mistake(
        "[retry_policies.llm]\nmultiplier = 0.9\n",
        "retry_policies.llm.multiplier",
        2,
    );
}

#[test]
fn initial_delay_above_max_delay_names_initial_delay() {
    let text = "[retry_policies.llm]\nmax_delay = \"10s\"\ninitial_delay = \"11s\"\n";
    let reason = one_mistake(text, "retry_policies.llm.initial_delay", 3);
    assert!(reason.contains("max_delay"), "{reason}");
}

#[test]
fn quantile_must_lie_strictly_between_zero_and_one() {
    for q in ["0", "0.0", "1", "1.0", "1.5", "-0.5"] {
        let text = format!("[timeouts.llm]\nkind = \"adaptive\"\nquantile = {q}\n");
        one_mistake(&text, "timeouts.llm.quantile", 3);
    }
    assert!(
        ResolvedConfig::from_toml_str(
            "[timeouts.llm]\nkind = \"adaptive\"\nquantile = 0.99\n",
            "t"
        )
        .is_ok()
    );
}

#[test]
fn unknown_policy_name_lists_the_known_names() {
    let text = format!(
        "{AGENT_POLICIES}[breakers.search]\n\n[agents.worker]\nbreaker = \"nope\"\nretry = \"llm\"\ntimeout = \"llm\"\n"
    );
    let reason = one_mistake(&text, "agents.worker.breaker", 8);
    assert_eq!(reason, "unknown breaker \"nope\"; known: llm, search");

    let text = format!(
        "{AGENT_POLICIES}[agents.worker]\nbreaker = \"llm\"\nretry = \"llm\"\ntimeout = \"llm\"\nbudget = \"big\"\n"
    );
    let reason = one_mistake(&text, "agents.worker.budget", 9);
    assert_eq!(reason, "unknown budget \"big\"; known: default");
}

#[test]
fn missing_agent_reference_is_named() {
    let text = format!("{AGENT_POLICIES}[agents.worker]\nbreaker = \"llm\"\ntimeout = \"llm\"\n");
    // The key is absent, so the agent's header line is reported.
    let reason = one_mistake(&text, "agents.worker.retry", 5);
    assert!(reason.starts_with("is required"), "{reason}");
    assert!(reason.contains("known: llm"), "{reason}");
}

#[test]
fn string_for_an_integer_is_a_type_error() {
    let reason = one_mistake(
        "[retry_policies.llm]\nmax_attempts = \"3\"\n",
        "retry_policies.llm.max_attempts",
        2,
    );
    assert!(reason.starts_with("invalid type: string \"3\""), "{reason}");
    let text = format!(
        "{AGENT_POLICIES}[agents.w]\nbreaker = \"llm\"\nretry = \"llm\"\ntimeout = \"llm\"\nworkers = \"four\"\n"
    );
    one_mistake(&text, "agents.w.workers", 9);
}

#[test]
fn failure_rate_threshold_above_one_is_rejected() {
    let reason = one_mistake(
        "[breakers.llm]\nfailure_rate_threshold = 1.5\n",
        "breakers.llm.failure_rate_threshold",
        2,
    );
    assert!(reason.contains("[0, 1]"), "{reason}");
    one_mistake(
        "[breakers.llm]\nfailure_rate_threshold = 0\n",
        "breakers.llm.failure_rate_threshold",
        2,
    );
}

#[test]
fn zero_half_open_probes_is_rejected() {
    one_mistake(
        "[breakers.llm]\nhalf_open_probes = 0\n",
        "breakers.llm.half_open_probes",
        2,
    );
}

#[test]
fn half_open_successes_above_probes_is_rejected() {
    let text = "[breakers.llm]\nhalf_open_probes = 2\nhalf_open_successes = 3\n";
    one_mistake(text, "breakers.llm.half_open_successes", 3);
}

#[test]
fn budget_ttl_must_be_between_one_and_sixty_seconds() {
    for ttl in ["0.5s", "61s", "500ms"] {
        let text = format!("[budgets.default]\nretry_percent = 0.1\nttl = \"{ttl}\"\n");
        one_mistake(&text, "budgets.default.ttl", 3);
    }
}

#[test]
fn section_names_must_be_metric_label_values() {
    let reason = one_mistake(
        "[breakers.\"my llm\"]\nmax_failures = 3\n",
        "breakers.\"my llm\"",
        1,
    );
    assert!(reason.contains("a-z, 0-9"), "{reason}");
    one_mistake("[retry_policies.LLM]\n", "retry_policies.LLM", 1);
    let long = "x".repeat(65);
    one_mistake(
        &format!("\n[timeouts.{long}]\n"),
        &format!("timeouts.{long}"),
        2,
    );
    let text = "[timeouts.t]\nkind = \"per_operation\"\n[timeouts.t.operations]\nok = \"1s\"\n\"Bad Op\" = \"2s\"\n";
    one_mistake(text, "timeouts.t.operations.\"Bad Op\"", 5);
}

#[test]
fn cross_field_rules_name_the_key_that_breaks_them() {
    let text = "[breakers.b]\nwindow_size = 10\nwindow_duration = \"10s\"\n";
    one_mistake(text, "breakers.b.window_duration", 3);
    one_mistake(
        "[breakers.b]\nslow_call_duration = \"1s\"\n",
        "breakers.b.slow_call_duration",
        2,
    );
    one_mistake(
        "[breakers.b]\nopen_jitter = 0.1\n",
        "breakers.b.open_jitter",
        2,
    );
    one_mistake(
        "[breakers.b]\nopen_backoff_multiplier = 2.0\n",
        "breakers.b.max_open_duration",
        1,
    );
    one_mistake(
        "[breakers.b]\nmax_failures = \"off\"\n",
        "breakers.b.max_failures",
        2,
    );
    one_mistake(
        "[retry_policies.r]\njitter = \"full\"\njitter_factor = 0.5\n",
        "retry_policies.r.jitter_factor",
        3,
    );
    let text = format!(
        "{AGENT_POLICIES}[agents.w]\nbreaker = \"llm\"\nretry = \"llm\"\ntimeout = \"llm\"\nworkers = 8\nmax_pending = 4\n"
    );
    one_mistake(&text, "agents.w.max_pending", 10);
    one_mistake(
        "[timeouts.t]\nkind = \"adaptive\"\nmax = \"1s\"\n",
        "timeouts.t.initial",
        1,
    );
}

#[test]
fn unknown_enum_values_are_named() {
    one_mistake("[timeouts.t]\nkind = \"sliding\"\n", "timeouts.t.kind", 2);
    one_mistake(
        "[retry_policies.r]\njitter = \"yes\"\n",
        "retry_policies.r.jitter",
        2,
    );
    one_mistake(
        "[timeouts.t]\nkind = \"adaptive\"\nmode = \"p2\"\n",
        "timeouts.t.mode",
        3,
    );
    // Keys of another kind are unknown for this kind.
    one_mistake(
        "[timeouts.t]\nkind = \"fixed\"\nquantile = 0.9\n",
        "timeouts.t.quantile",
        3,
    );
}

#[test]
fn system_table_is_rejected_without_a_system_section_type() {
    one_mistake("[system]\nworkload = 1\n", "system.workload", 2);
}

/// An application's own `[system]` table, as the agent system will add one.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoSystem {
    workload: Workload,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Workload {
    rate: u32,
}

impl ractor_resilience::config::SystemSection for DemoSystem {
    fn validate(&self) -> Result<(), ractor_resilience::core::InvalidSettings> {
        if self.workload.rate == 0 {
            return Err(ractor_resilience::core::InvalidSettings::new(
                "workload.rate",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[test]
fn system_section_mistakes_are_located_like_the_others() {
    let load = |text: &str| {
        ResolvedConfig::<DemoSystem>::from_toml_str_with_env(
            text,
            "demo.toml",
            &EnvOverrides::none(),
        )
    };
    let config = load("[system.workload]\nrate = 5\n").unwrap();
    assert_eq!(config.system.workload.rate, 5);

    let located = |text: &str| -> Vec<(String, usize)> {
        mistakes(&load(text).unwrap_err())
            .into_iter()
            .map(|(f, l, ..)| (f, l))
            .collect()
    };
    assert_eq!(
        located("[breakers.b]\n\n[system.workload]\nrate = 0\n"),
        [("system.workload.rate".to_owned(), 4)]
    );
    assert_eq!(
        located("[system.workload]\nrate = 1\nburst = 2\n"),
        [("system.workload.burst".to_owned(), 3)]
    );
    assert_eq!(
        located("[system.workload]\nrate = -1\n"),
        [("system.workload.rate".to_owned(), 2)]
    );
    // Overrides reach [system] too.
    let env = EnvOverrides::from_vars([("RESILIENCE__SYSTEM__WORKLOAD__RATE", "9")]);
    let config = ResolvedConfig::<DemoSystem>::from_toml_str_with_env(
        "[system.workload]\nrate = 1\n",
        "d",
        &env,
    )
    .unwrap();
    assert_eq!(config.system.workload.rate, 9);
}

#[test]
fn a_file_with_three_mistakes_reports_all_three_in_file_order() {
    let text = "\
[breakers.llm]
max_failures = 0

[retry_policies.llm]
initial_delay = \"1 fortnight\"

[agents.worker]
breaker = \"llm\"
retry = \"llm\"
timeout = \"missing\"
";
    let errors = errors_of(text);
    let located: Vec<(&str, usize)> = errors.iter().map(|(f, l, _, _)| (f.as_str(), *l)).collect();
    assert_eq!(
        located,
        [
            ("breakers.llm.max_failures", 2),
            ("retry_policies.llm.initial_delay", 5),
            ("agents.worker.timeout", 10)
        ]
    );
}

#[test]
fn several_mistakes_in_one_section_are_all_reported() {
    let text = "[breakers.llm]\nmax_failures = \"x\"\nopen_duration = 5\nbogus = 1\n";
    let fields: Vec<String> = errors_of(text).into_iter().map(|(f, ..)| f).collect();
    assert_eq!(
        fields,
        [
            "breakers.llm.max_failures",
            "breakers.llm.open_duration",
            "breakers.llm.bogus"
        ]
    );

    let text = format!("{AGENT_POLICIES}[agents.w]\nbreaker = \"a\"\nretry = \"b\"\nworkers = 0\n");
    let fields: Vec<String> = errors_of(&text).into_iter().map(|(f, ..)| f).collect();
    assert_eq!(fields.len(), 4, "{fields:?}"); // breaker, retry, timeout (missing), workers
}

#[test]
fn syntax_errors_report_line_and_column() {
    let errors = errors_of("[breakers.llm]\nmax_failures = = 3\n");
    let (field, line, column, reason) = &errors[0];
    assert_eq!((field.as_str(), *line, *column), ("toml", 2, 16));
    assert!(reason.starts_with("syntax error"), "{reason}");

    let errors = errors_of("[breakers.llm\nmax_failures = 3\n");
    assert_eq!(errors[0].1, 1);
    // Duplicate keys are syntax errors too.
    let errors = errors_of("[breakers.llm]\nmax_failures = 3\nmax_failures = 4\n");
    assert_eq!(errors[0].1, 3, "{errors:?}");
}

#[test]
fn display_lists_each_mistake_as_path_line_column_field_reason() {
    let errors =
        ResolvedConfig::from_toml_str("[breakers.llm]\nhalf_open_probes = 0\n", "config/app.toml")
            .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "config/app.toml:2:20: breakers.llm.half_open_probes: must be at least 1"
    );
}

fn with_env(text: &str, vars: &[(&str, &str)]) -> Result<ResolvedConfig, ConfigErrors> {
    ResolvedConfig::<NoSystem>::from_toml_str_with_env(
        text,
        "env.toml",
        &EnvOverrides::from_vars(vars.iter().copied()),
    )
}

#[test]
fn env_override_replaces_a_value_before_validation() {
    let text = "[breakers.llm]\nmax_failures = 0\n";
    let config = with_env(text, &[("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "4")]).unwrap();
    assert_eq!(config.breakers["llm"].max_failures(), Some(4));
    let config = with_env(
        text,
        &[
            ("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "off"),
            ("RESILIENCE__BREAKERS__LLM__FAILURE_RATE_THRESHOLD", "0.5"),
        ],
    )
    .unwrap();
    assert_eq!(config.breakers["llm"].max_failures(), None);
}

#[test]
fn env_override_with_a_bad_value_names_the_variable() {
    let text = "[breakers.llm]\nmax_failures = 3\n[retry_policies.llm]\n";
    let var = "RESILIENCE__BREAKERS__LLM__MAX_FAILURES";
    for (value, expect) in [
        ("0", "must be at least 1"),
        ("three", "invalid value"),
        ("-1", "invalid value"),
    ] {
        let errors = with_env(text, &[(var, value)]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors}");
        let ConfigError::Override {
            var: v,
            field,
            reason,
        } = &errors.as_slice()[0]
        else {
            panic!("{errors}")
        };
        assert_eq!(
            (v.as_str(), field.as_str()),
            (var, "breakers.llm.max_failures")
        );
        assert!(reason.starts_with(expect), "{reason}");
        assert!(
            errors
                .to_string()
                .starts_with(&format!("${var}: breakers.llm.max_failures: "))
        );
    }
    // A cross-field rule broken by an override names the variable too.
    let errors = with_env(
        text,
        &[("RESILIENCE__RETRY_POLICIES__LLM__INITIAL_DELAY", "1h")],
    )
    .unwrap_err();
    assert!(
        matches!(&errors.as_slice()[0], ConfigError::Override { field, .. } if field == "retry_policies.llm.initial_delay"),
        "{errors}"
    );
}

#[test]
fn env_override_of_a_missing_table_or_unknown_key_is_an_error() {
    let text = "[breakers.llm]\n";
    let errors = with_env(text, &[("RESILIENCE__BREAKERS__LMM__MAX_FAILURES", "3")]).unwrap_err();
    assert!(
        errors.to_string().contains("no table `[breakers.lmm]`"),
        "{errors}"
    );
    let errors = with_env(text, &[("RESILIENCE__BREAKERS__LLM__MAX_FAILUREZ", "3")]).unwrap_err();
    assert!(
        errors.to_string().starts_with(
            "$RESILIENCE__BREAKERS__LLM__MAX_FAILUREZ: breakers.llm.max_failurez: unknown field"
        ),
        "{errors}"
    );
    let errors = with_env(text, &[("RESILIENCE__BREAKERS____X", "3")]).unwrap_err();
    assert!(
        errors.to_string().contains("malformed variable"),
        "{errors}"
    );
    let errors = with_env(
        text,
        &[("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "[1, 2]")],
    )
    .unwrap_err();
    assert!(
        errors.to_string().contains("only single values"),
        "{errors}"
    );
    // Variables without the prefix are ignored.
    assert!(with_env(text, &[("BREAKERS__LLM__MAX_FAILURES", "0")]).is_ok());
}

#[test]
fn file_errors_and_override_errors_are_reported_together() {
    let text = "[breakers.llm]\nopen_duration = \"0s\"\n[retry_policies.r]\nmultiplier = 0.1\n";
    let errors = with_env(text, &[("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "0")]).unwrap_err();
    // Both of the breaker's mistakes (the file's and the override's) and the retry policy's.
    assert_eq!(errors.len(), 3, "{errors}");
}

#[test]
fn unreadable_and_non_utf8_files_are_reported() {
    let errors = ResolvedConfig::load("does/not/exist.toml").unwrap_err();
    assert!(matches!(errors.as_slice()[0], ConfigError::Read { .. }));

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("config_errors_non_utf8.toml");
    std::fs::write(&path, b"[breakers.llm]\nmax_failures = \xff3\n").unwrap();
    let errors = ResolvedConfig::load(&path).unwrap_err();
    assert_eq!(errors.as_slice()[0].position(), Some((2, 16)), "{errors}");
    assert!(errors.to_string().contains("not valid UTF-8"));
}

/// Fragments that make random documents reach deep into the loader.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "[breakers.llm]\n",
        "[retry_policies.llm]\n",
        "[timeouts.llm]\n",
        "[budgets.b]\n",
        "[agents.a]\n",
        "[system]\n",
        "[timeouts.llm.operations]\n",
        "[[breakers]]\n",
        "[breakers]\n",
        "max_failures = ",
        "open_duration = ",
        "kind = ",
        "\"adaptive\"",
        "\"per_operation\"",
        "quantile = ",
        "breaker = ",
        "\"llm\"",
        "retry = ",
        "timeout = ",
        "workers = ",
        "0",
        "1",
        "-1",
        "1.5",
        "1e400",
        "\"10s\"",
        "\"off\"",
        "\"\"",
        "true",
        "{ a = 1 }",
        "[1, 2]",
        "\n",
        " = ",
        "=",
        "\"",
        "'",
        "[",
        "]",
        "#",
        "a.b.c = 1\n",
        "\u{0}",
        "é",
        "\r\n",
        "llm = 5\n",
        "window_size = ",
        "jitter = \"full\"\n",
        "ttl = ",
        "1979-05-27T07:32:00Z",
        "nan",
        "inf",
        "0x10",
        "99999999999999999999",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics_and_errors_point_inside_the_file(text in ".{0,200}") {
        check_never_panics(&text);
    }

    #[test]
    fn random_fragment_documents_never_panic(parts in prop::collection::vec(fragment(), 0..40)) {
        check_never_panics(&parts.concat());
    }

    #[test]
    fn byte_mutations_of_a_profile_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8)
    ) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/production.toml");
        let mut bytes = std::fs::read(path).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        check_never_panics(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_overrides_never_panic(
        key in "RESILIENCE__(BREAKERS|AGENTS|TIMEOUTS|X|)(__(LLM|LLM_WORKER|OPERATIONS|)){0,3}(__[A-Z_]{0,12})?",
        value in ".{0,12}",
    ) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/production.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let env = EnvOverrides::from_vars([(key, value)]);
        let _ = ResolvedConfig::<NoSystem>::from_toml_str_with_env(&text, "p.toml", &env);
    }
}

fn check_never_panics(text: &str) {
    if let Err(errors) = ResolvedConfig::from_toml_str(text, "fuzz.toml") {
        let lines = text.split('\n').count();
        for e in &errors {
            let (line, column) = e.position().expect("file mistakes have a position");
            assert!(
                (1..=lines).contains(&line) && column >= 1,
                "{e} (file has {lines} lines)"
            );
            assert!(e.field().is_some_and(|f| !f.is_empty()), "{e}");
        }
        assert!(!errors.to_string().is_empty());
    }
}

// ===== issue #13, hardening =====

#[test]
fn workers_and_max_pending_have_upper_bounds() {
    let text = format!(
        "{AGENT_POLICIES}[agents.w]\nbreaker = \"llm\"\nretry = \"llm\"\ntimeout = \"llm\"\nworkers = 1000000000\nmax_pending = 1000000000\n"
    );
    let errors = errors_of(&text);
    let located: Vec<(&str, usize)> = errors.iter().map(|(f, l, ..)| (f.as_str(), *l)).collect();
    assert_eq!(
        located,
        [("agents.w.workers", 9), ("agents.w.max_pending", 10)],
        "{errors:#?}"
    );
    assert_eq!(errors[0].3, "must be at most 4096, got 1000000000");
    assert_eq!(errors[1].3, "must be at most 1000000, got 1000000000");
    // The bounds themselves are accepted.
    let text = format!(
        "{AGENT_POLICIES}[agents.w]\nbreaker = \"llm\"\nretry = \"llm\"\ntimeout = \"llm\"\nworkers = 4096\nmax_pending = 1000000\n"
    );
    let config = ResolvedConfig::from_toml_str(&text, "t.toml").unwrap();
    assert_eq!(config.agents["w"].workers.get(), 4096);
}

#[test]
fn every_invalid_adaptive_key_is_reported_with_its_line() {
    let text = "[timeouts.t]\nkind = \"adaptive\"\nquantile = 1.5\npadding = -1.0\nmin_samples = 0\nwindow = 1\n";
    let errors = errors_of(text);
    let located: Vec<(&str, usize)> = errors.iter().map(|(f, l, ..)| (f.as_str(), *l)).collect();
    assert_eq!(
        located,
        [
            ("timeouts.t.quantile", 3),
            ("timeouts.t.padding", 4),
            ("timeouts.t.min_samples", 5),
            ("timeouts.t.window", 6)
        ],
        "{errors:#?}"
    );
}

#[test]
fn every_invalid_breaker_and_retry_value_is_reported() {
    let text = "[breakers.b]\nmax_failures = 0\nminimum_calls = 0\nhalf_open_probes = 0\n\
                [retry_policies.r]\nmax_attempts = 0\nmultiplier = 0.5\n";
    let fields: Vec<String> = errors_of(text).into_iter().map(|(f, ..)| f).collect();
    assert_eq!(
        fields,
        [
            "breakers.b.max_failures",
            "breakers.b.minimum_calls",
            "breakers.b.half_open_probes",
            "retry_policies.r.max_attempts",
            "retry_policies.r.multiplier"
        ]
    );
    // A valid value is not blamed for another's mistake: `max` makes `min` valid.
    let text = "[timeouts.t]\nkind = \"adaptive\"\nquantile = 2\nmin = \"90s\"\nmax = \"120s\"\ninitial = \"100s\"\n";
    let fields: Vec<String> = errors_of(text).into_iter().map(|(f, ..)| f).collect();
    assert_eq!(fields, ["timeouts.t.quantile"]);
}

/// `n` mistakes, one per line: unknown keys of one breaker.
fn many_mistakes(n: usize) -> String {
    let mut text = String::from("[breakers.b]\n");
    for i in 0..n {
        text.push_str(&format!("x{i} = 0\n"));
    }
    text
}

#[test]
fn error_reporting_is_linear_in_the_number_of_errors() {
    let time = |n: usize| {
        let text = many_mistakes(n);
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                let errors = ResolvedConfig::from_toml_str(&text, "t.toml").unwrap_err();
                assert_eq!(errors.len(), n);
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let small = time(5_000);
    let large = time(40_000);
    // Linear: ×8 errors costs about ×8; quadratic costs ×64. A generous factor for noise.
    assert!(
        large < small * 20 + std::time::Duration::from_millis(100),
        "5 000 errors: {small:?}, 40 000 errors: {large:?}"
    );
    let errors = ResolvedConfig::from_toml_str(&many_mistakes(40_000), "t.toml").unwrap_err();
    let last = errors.as_slice().last().unwrap();
    assert_eq!(last.position(), Some((40_001, 1)));
    assert_eq!(last.field(), Some("breakers.b.x39999"));
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("config_errors_too_large.toml");
    let mut text = String::from("[breakers.llm]\n");
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).unwrap();
    let errors = ResolvedConfig::load(&path).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    let message = errors.to_string();
    assert!(message.contains("larger than the 1 MiB limit"), "{message}");
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    let errors = ResolvedConfig::from_toml_str(&text, "big.toml").unwrap_err();
    assert!(errors.to_string().contains("1 MiB"), "{errors}");
}

#[cfg(unix)]
#[test]
fn reading_an_endless_file_stops_at_the_size_limit() {
    let start = std::time::Instant::now();
    let errors = ResolvedConfig::load("/dev/zero").unwrap_err();
    assert!(
        errors.to_string().contains("larger than the 1 MiB limit"),
        "{errors}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn env_overrides_create_missing_system_tables() {
    let env = EnvOverrides::from_vars([("RESILIENCE__SYSTEM__WORKLOAD__RATE", "7")]);
    let config =
        ResolvedConfig::<DemoSystem>::from_toml_str_with_env("[breakers.b]\n", "d.toml", &env)
            .unwrap();
    assert_eq!(config.system.workload.rate, 7);
    // A misspelt subtable is still an error, from [system]'s own unknown-key rule.
    let env = EnvOverrides::from_vars([("RESILIENCE__SYSTEM__WORKLAOD__RATE", "7")]);
    let errors = ResolvedConfig::<DemoSystem>::from_toml_str_with_env(
        "[system.workload]\nrate = 1\n",
        "d.toml",
        &env,
    )
    .unwrap_err();
    assert!(
        errors.to_string().starts_with(
            "$RESILIENCE__SYSTEM__WORKLAOD__RATE: system.worklaod.rate: unknown field `worklaod`"
        ),
        "{errors}"
    );
}

#[test]
fn huge_integers_are_reported_without_serde_internals() {
    for text in [
        "[breakers.b]\nmax_failures = 99999999999999999999999\n",
        "[breakers.b]\nopen_duration = 99999999999999999999999\n",
        "[agents.a]\nworkers = 99999999999999999999999\n",
    ] {
        for (_, _, _, reason) in errors_of(text) {
            assert!(!reason.contains("as i128"), "{reason}");
            assert!(!reason.contains("as u128"), "{reason}");
        }
    }
}
