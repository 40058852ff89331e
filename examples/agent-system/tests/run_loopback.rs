//! `run` for a few seconds on loopback, against the real binary: `/metrics` parses and has every
//! family of DESIGN §5, `/health` says `degraded` while the breaker is open and `ok` after.
//!
//! Like the other tests that start the real binary (`shutdown.rs`, `scrapes.rs`, `security.rs`),
//! it runs on the wall clock, deliberately: it checks the real HTTP endpoints of a real process.
//! Its scenario is a few seconds long and every wait in it is bounded.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{config_file, get};

const SCENARIO: &str = r#"
[breakers.llm]
max_failures = 2
open_duration = "1s"

[retry_policies.llm]
max_attempts = 2
initial_delay = "50ms"

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 4
max_pending = 200

[system]
duration = "5s"
drain_deadline = "1s"

[system.workload]
rate = 50.0

[system.provider]
kind = "simulated"
outages = [{ start = "1s", length = "1500ms" }]
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#;

const FAMILIES: [&str; 12] = [
    "resilience_circuit_breaker_state",
    "resilience_circuit_breaker_calls_total",
    "resilience_circuit_breaker_transitions_total",
    "resilience_retry_calls_total",
    "resilience_retry_attempts_total",
    "resilience_timeout_calls_total",
    "resilience_timeout_current_seconds",
    "resilience_slow_operations_total",
    "resilience_task_duration_seconds",
    "resilience_agent_restarts_total",
    "resilience_tasks_total",
    "resilience_agent_inflight_tasks",
];

#[test]
fn run_serves_metrics_and_health_that_follow_the_breaker() {
    let config = config_file("loopback", SCENARIO);
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(["--log-level", "warn", "run", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {first:?}"));

    let started = Instant::now();
    let (mut saw_degraded, mut ok_after_degraded, mut exposition) = (false, false, String::new());
    while started.elapsed() < Duration::from_secs(5) && !ok_after_degraded {
        if let Ok((status, body)) = get(addr, "/health") {
            let degraded = body.contains("\"status\":\"degraded\"");
            if degraded {
                assert_eq!(status, 503, "{body}");
                assert!(body.contains("\"open_breakers\":[\"llm\"]"), "{body}");
                saw_degraded = true;
            } else if saw_degraded {
                assert_eq!(
                    (status, body.as_str()),
                    (200, "{\"status\":\"ok\",\"open_breakers\":[]}")
                );
                ok_after_degraded = true;
                exposition = get(addr, "/metrics").unwrap().1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        saw_degraded,
        "/health never said degraded during the outage"
    );
    assert!(
        ok_after_degraded,
        "/health never said ok again after the outage"
    );

    for family in FAMILIES {
        assert!(
            exposition.contains(&format!("# TYPE {family} ")),
            "{family} missing from /metrics"
        );
    }
    for line in exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(series.starts_with("resilience_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
    }
    assert!(
        exposition.contains("resilience_task_duration_seconds_bucket{"),
        "histograms, not summaries"
    );

    let status = child.wait().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("== summary (run"), "{rest}");
    let _ = std::fs::remove_file(config);
}

#[test]
fn a_non_loopback_metrics_address_is_refused_without_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args([
            "--log-level",
            "error",
            "run",
            "--duration",
            "1s",
            "--metrics-addr",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
