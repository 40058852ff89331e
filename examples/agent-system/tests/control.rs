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

use common::{config_file, get, start};

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
