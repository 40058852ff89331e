//! Operating a running system's breakers from the CLI, as a new user would: `breaker list`
//! shows them, `breaker force-open` makes `/health` answer 503 naming the breaker, `breaker
//! reset` brings it back to 200; an unknown breaker and an address where nothing listens exit 2
//! with a message. Every command is counted in the exposition.
//!
//! Like the other loopback tests, this starts the real binary and talks to it over real
//! sockets, which tokio's paused clock cannot drive: every wait is bounded.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{config_file, get, post, start};

const SCENARIO: &str = r#"
[breakers.llm]
max_failures = 5
open_duration = "10s"

[retry_policies.llm]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"

[system]
duration = "20s"
drain_deadline = "1s"

[system.workload]
rate = 10.0

[system.provider]
kind = "simulated"
error_rate = 0.0
rate_limit_rate = 0.0
outages = []
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#;

/// Runs `agent-system breaker ARGS`; its exit code, stdout and stderr.
fn breaker(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["--log-level", "warn", "breaker"])
        .args(args)
        .output()
        .expect("run agent-system breaker");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn breakers_are_listed_forced_open_and_reset_from_the_command_line() {
    let config = config_file("control", SCENARIO);
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    let addr = running.addr.to_string();

    let (code, out, err) = breaker(&["list", "--addr", &addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.starts_with("llm ")), "{out}");
    assert!(out.contains("max_failures=5"), "{out}");
    assert!(out.contains("closed"), "{out}");

    let (code, out, err) = breaker(&["force-open", "llm", "--addr", &addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("forced_open"), "{out}");
    let (status, body) = get(running.addr, "/health").expect("health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"llm\""), "{body}");
    let (status, body) = get(running.addr, "/breakers").expect("breakers");
    assert_eq!(status, 200);
    assert!(body.contains("\"state\":\"forced_open\""), "{body}");

    let (code, out, err) = breaker(&["reset", "llm", "--addr", &addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("-> closed"), "{out}");
    let (status, body) = get(running.addr, "/health").expect("health");
    assert_eq!(status, 200, "{body}");

    let (code, _, err) = breaker(&["disable", "ghost", "--addr", &addr]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown breaker `ghost`"), "{err}");

    let (_, exposition) = get(running.addr, "/metrics").expect("metrics");
    for action in ["force_open", "reset"] {
        let line = format!(
            "resilience_circuit_breaker_operator_actions_total{{breaker=\"llm\",action=\"{action}\"}} 1"
        );
        assert!(exposition.contains(&line), "missing {line}");
    }
    running.sigterm();
    let done = running.wait(Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    // Who asked is logged with each change.
    assert!(
        done.stderr.contains("operator action on a circuit breaker")
            && done.stderr.contains("peer=127.0.0.1:"),
        "{}",
        done.stderr
    );
}

#[test]
fn nothing_listening_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let (code, out, err) = breaker(&["list", "--addr", "127.0.0.1:1"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(err.contains("nothing is listening at 127.0.0.1:1"), "{err}");
}

/// Polls `GET /breakers` (every 50 ms, at most 10 s) until `llm` has `max_failures = want`;
/// returns its JSON.
fn wait_for_max_failures(addr: std::net::SocketAddr, want: u64) -> serde_json::Value {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(addr, "/breakers").expect("breakers");
        let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let llm = list
            .as_array()
            .and_then(|a| a.iter().find(|b| b["name"] == "llm"))
            .cloned()
            .expect("llm listed");
        if llm["settings"]["max_failures"] == want {
            return llm;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "max_failures never became {want}: {llm}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/metrics` until `resilience_config_reloads_total{result}` reaches `want`.
fn wait_for_reloads(addr: std::net::SocketAddr, result: &str, want: u64) {
    let line = format!("resilience_config_reloads_total{{result=\"{result}\"}} {want}");
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, exposition) = get(addr, "/metrics").expect("metrics");
        if exposition.lines().any(|l| l == line) {
            return;
        }
        assert!(std::time::Instant::now() < give_up, "never saw {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

#[test]
fn sighup_reloads_the_file_in_place_and_a_broken_file_changes_nothing() {
    let config = config_file("reload", SCENARIO);
    let running = start(&["--log-level", "info"], &config, &[], &[]);
    let addr = running.addr.to_string();
    let (code, _, err) = breaker(&["force-open", "llm", "--addr", &addr]);
    assert_eq!(code, Some(0), "{err}");
    let before = wait_for_max_failures(running.addr, 5);
    assert_eq!(before["state"], "forced_open");

    // A new max_failures: applied in place, the forced state and the generation kept.
    std::fs::write(
        &config,
        SCENARIO.replace("max_failures = 5", "max_failures = 3"),
    )
    .unwrap();
    sighup(running.pid());
    let after = wait_for_max_failures(running.addr, 3);
    assert_eq!(after["state"], "forced_open", "{after}");
    assert_eq!(after["generation"], before["generation"], "{after}");
    wait_for_reloads(running.addr, "applied", 1);

    // A broken file: nothing changes, the process keeps serving.
    std::fs::write(
        &config,
        SCENARIO.replace("max_failures = 5", "max_failures = 0"),
    )
    .unwrap();
    sighup(running.pid());
    wait_for_reloads(running.addr, "invalid", 1);
    let unchanged = wait_for_max_failures(running.addr, 3);
    assert_eq!(unchanged["state"], "forced_open");
    let (status, body) = get(running.addr, "/health").expect("still serving");
    assert_eq!(status, 503, "{body}");

    // POST /reload says why, naming the file, line and field.
    let (status, body) = post(running.addr, "/reload").expect("reload");
    assert_eq!(status, 422, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["result"], "invalid");
    let error = answer["errors"][0].as_str().unwrap();
    assert!(
        error.contains("reload.toml:3:") && error.contains("max_failures"),
        "{error}"
    );

    // Fixed again, by POST: the answer lists what changed and what was done.
    std::fs::write(
        &config,
        SCENARIO
            .replace("max_failures = 5", "max_failures = 4")
            .replace("rate = 10.0", "rate = 12.0"),
    )
    .unwrap();
    let (status, body) = post(running.addr, "/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["changes"],
        serde_json::json!(["breakers.llm.max_failures: 3 -> 4"])
    );
    assert_eq!(
        answer["actions"],
        serde_json::json!([
            "breakers.llm: reconfigured in place (state, generation and window kept)"
        ])
    );
    assert_eq!(
        answer["not_applied"],
        serde_json::json!(["system.workload.rate: 10.0 -> 12.0 (needs a restart)"])
    );
    wait_for_max_failures(running.addr, 4);

    let (code, _, err) = breaker(&["reset", "llm", "--addr", &addr]);
    assert_eq!(code, Some(0), "{err}");
    running.sigterm();
    let done = running.wait(Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr
            .contains("config changed: breakers.llm.max_failures: 5 -> 3"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("reload refused, nothing changed")
            && done.stderr.contains("requested_by=\"SIGHUP\""),
        "{}",
        done.stderr
    );
}

#[test]
fn health_and_the_breaker_list_show_a_keyed_familys_open_keys() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/scenarios/models.toml"
    ))
    .unwrap()
    .replace(
        "outages = [{ start = \"10s\", length = \"15s\", model = \"model-b\" }]",
        "outages = [{ start = \"0s\", length = \"60s\", model = \"model-b\" }]",
    )
    .replace("duration = \"40s\"", "duration = \"20s\"")
        + "\n[system.exporter]\naddr = \"127.0.0.1:0\"\nlinger = \"0s\"\n";
    let config = config_file("keyed-health", &text);
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    // model-b fails from the start: its breaker opens after three failures (a second or so).
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(running.addr, "/health").expect("health");
        if status == 503 {
            break body;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "never degraded: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["open_breakers"],
        serde_json::json!(["models[model-b]"]),
        "{health}"
    );
    let (_, body) = get(running.addr, "/breakers").expect("breakers");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let models = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "models")
        .expect("the family is listed");
    assert_eq!(models["keyed"], true);
    assert_eq!(models["settings"]["max_keys"], 1000);
    assert_eq!(models["open_keys"][0]["key"], "model-b", "{models}");
    assert_eq!(models["open_keys_not_listed"], 0);
    let llm = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "llm")
        .unwrap();
    assert_eq!(
        llm["state"], "closed",
        "the agent's own breaker is not tripped by one model"
    );
    running.sigterm();
    let done = running.wait(Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
}
