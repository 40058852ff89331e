//! `agent-system check-config FILE`: prints the resolved configuration and exits 0, or prints
//! every mistake (`path:line:column: field: reason`) on stderr and exits 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn agent_system(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(args)
        // Overrides in the caller's environment must not change what the test sees.
        .env_clear()
        .output()
        .expect("the agent-system binary runs")
}

fn profile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name)
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).expect("temp file written");
    path
}

#[test]
fn good_file_prints_the_resolved_values_and_exits_0() {
    let path = profile("production.toml");
    let out = agent_system(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[breakers.llm]\nmax_failures = 5\n"),
        "{stdout}"
    );
    assert!(stdout.contains("open_duration = \"15s\""), "{stdout}");
    assert!(stdout.contains("half_open_max_wait = \"1m\""), "{stdout}");
    assert!(stdout.contains("[agents.llm_worker]"), "{stdout}");
}

#[test]
fn broken_file_names_each_field_and_line_on_stderr_and_exits_2() {
    let path = temp_file(
        "check_config_broken.toml",
        b"[breakers.llm]\nmax_failures = 0\n\n[retry_policies.llm]\nmultiplier = \"fast\"\n",
    );
    let out = agent_system(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    let shown = path.display();
    assert!(
        stderr.contains(&format!(
            "{shown}:2:16: breakers.llm.max_failures: must be at least 1"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{shown}:5:14: retry_policies.llm.multiplier: invalid type"
        )),
        "{stderr}"
    );
}

#[test]
fn environment_overrides_apply_and_bad_ones_name_the_variable() {
    let path = profile("development.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["check-config", path.to_str().unwrap()])
        .env_clear()
        .env("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("$RESILIENCE__BREAKERS__LLM__MAX_FAILURES: breakers.llm.max_failures:"),
        "{stderr}"
    );
}

#[test]
fn garbage_and_missing_files_exit_2_without_panicking() {
    let garbage = temp_file("check_config_garbage.toml", b"\xff\xfe[[[ = \"\n\0");
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_config_missing.toml");
    for path in [garbage, missing] {
        let out = agent_system(&["check-config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn help_lists_the_subcommands_and_the_embedded_default_configuration_runs() {
    let out = agent_system(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for sub in ["run", "simulate", "check-config"] {
        assert!(help.contains(sub), "{help}");
    }
    // No --config: the embedded development profile, here on the virtual clock.
    let out = agent_system(&["--log-level", "error", "simulate", "--duration", "5s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("== summary (simulate, 5.0 s, seed 1) =="),
        "{stdout}"
    );
    assert!(stdout.contains("submitted          100"), "{stdout}");
}
