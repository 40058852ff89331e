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

// ===== issue #13, hardening =====

/// `check-config` on `contents`: (exit status, stderr).
fn check(name: &str, contents: &str) -> (Option<i32>, String) {
    let path = temp_file(name, contents.as_bytes());
    let out = agent_system(&["check-config", path.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The development profile with `extra` appended.
fn development_with(extra: &str) -> String {
    let base = std::fs::read_to_string(profile("development.toml")).unwrap();
    format!("{base}\n{extra}")
}

/// The 1-based line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

#[test]
fn huge_pools_and_bodies_are_refused_with_field_and_line() {
    let text: String = std::fs::read_to_string(profile("development.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("workers = ") {
                "workers = 1000000000\n".to_owned()
            } else if l.starts_with("max_pending = ") {
                "max_pending = 1000000000\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let (code, stderr) = check("check_config_huge_pool.toml", &text);
    assert_eq!(code, Some(2), "{stderr}");
    let line = line_of(&text, "workers = 1000000000");
    assert!(
        stderr.contains(&format!(
            ":{line}:11: agents.llm_worker.workers: must be at most 4096"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            ":{}:15: agents.llm_worker.max_pending: must be at most 1000000",
            line + 1
        )),
        "{stderr}"
    );

    let text = development_with(
        "[system.provider]\nkind = \"http\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"m\"\napi_key_env = \"KEY\"\nmax_body_bytes = 100000000000\n",
    );
    let (code, stderr) = check("check_config_huge_body.toml", &text);
    assert_eq!(code, Some(2), "{stderr}");
    let line = line_of(&text, "max_body_bytes");
    assert!(
        stderr.contains(&format!(
            ":{line}:18: system.provider.max_body_bytes: must be at most 67108864 (64 MiB)"
        )),
        "{stderr}"
    );
}

#[test]
fn unknown_and_duplicate_workload_agents_are_named() {
    let text = development_with(
        "[system.workload]\nagents = [\"llm_worker\", \"ghost\", \"llm_worker\"]\n",
    );
    let (code, stderr) = check("check_config_ghost_agent.toml", &text);
    assert_eq!(code, Some(2), "{stderr}");
    let line = line_of(&text, "agents = ");
    assert!(
        stderr.contains(&format!(
            ":{line}:10: system.workload.agents: unknown agent \"ghost\"; known: llm_worker"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            ":{line}:10: system.workload.agents: agent \"llm_worker\" is listed twice"
        )),
        "{stderr}"
    );
}

#[test]
fn base_url_without_a_host_is_refused() {
    for url in [
        "http://",
        "https://",
        "ftp://example.com",
        "http://example.com:99999",
        "http://example.com:0",
    ] {
        let text = development_with(&format!(
            "[system.provider]\nkind = \"http\"\nbase_url = \"{url}\"\nmodel = \"m\"\napi_key_env = \"KEY\"\n"
        ));
        let (code, stderr) = check("check_config_base_url.toml", &text);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        let line = line_of(&text, "base_url");
        assert!(
            stderr.contains(&format!(":{line}:12: system.provider.base_url: ")),
            "{url}: {stderr}"
        );
    }
}

#[test]
fn every_bad_system_value_is_reported() {
    let text = development_with("[system]\nduration = \"0s\"\n[system.workload]\nrate = -1.0\n");
    let (code, stderr) = check("check_config_two_system_mistakes.toml", &text);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("system.duration: must be greater than zero"),
        "{stderr}"
    );
    assert!(
        stderr.contains("system.workload.rate: must be in"),
        "{stderr}"
    );
    assert!(stderr.contains("2 mistake(s) found"), "{stderr}");
}

#[test]
fn duration_flag_follows_the_file_rules() {
    for (flag, reason) in [
        ("0s", "must be greater than zero"),
        ("200years", "must be at most 100years"),
    ] {
        let out = agent_system(&["--log-level", "error", "simulate", "--duration", flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("--duration"), "{flag}: {stderr}");
        assert!(stderr.contains(reason), "{flag}: {stderr}");
        assert!(out.stdout.is_empty(), "{flag}");
    }
}

#[test]
fn system_overrides_work_with_the_embedded_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["--log-level", "error", "simulate", "--duration", "2s"])
        .env_clear()
        .env("RESILIENCE__SYSTEM__WORKLOAD__RATE", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("succeeded           10 "), "{stdout}");
}

#[cfg(unix)]
#[test]
fn a_non_utf8_override_is_an_error_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let path = profile("development.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["check-config", path.to_str().unwrap()])
        .env_clear()
        .env(
            "RESILIENCE__SYSTEM__SEED",
            std::ffi::OsStr::from_bytes(b"\xff7"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("$RESILIENCE__SYSTEM__SEED: system.seed: the value is not valid UTF-8"),
        "{stderr}"
    );
}
