//! Security basics of the real binary: the HTTP provider's API key never appears in its logs
//! (even at `trace`), its `/metrics` and `/health`, its report or its messages, even when the
//! provider echoes the key back in every way it can; and every label value on `/metrics` is a
//! configured name or one of the fixed enums, never task data. (The exporter's refusal of a
//! non-loopback address is tested in `run_loopback.rs`.)
//!
//! Wall clock, loopback only: each run is 2 s of traffic plus a 0.5 s drain against a scripted
//! HTTP server on 127.0.0.1 (port 0) that stops accepting after the test; every read, write and
//! wait has a timeout.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agent_system::SystemConfig;
use agent_system::exporter::DURATION_BUCKETS;
use common::{assert_adds_up, get, label_pairs, start};
use ractor_resilience::config::EnvOverrides;
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::metrics::{BreakerCall, RetryOutcome, TaskOutcome, TimeoutOutcome};

/// The key: distinctive, so that any occurrence anywhere is a leak.
const KEY: &str = "sk-canary-5RkW9vQm2Lx7-do-not-log";
/// A fragment of it, to catch a key cut by truncation or wrapped in other text.
const KEY_FRAGMENT: &str = "5RkW9vQm2Lx7";
const KEY_VAR: &str = "AGENT_SYSTEM_SECURITY_TEST_KEY";

/// Echoes the `Authorization` value it receives, the `i`-th request the `i % 6`-th way: in an
/// error body, a `WWW-Authenticate` header, a 429's header, a malformed success, a redirect's
/// `Location`, a successful answer.
fn echo(i: usize, request: &common::Request) -> Vec<u8> {
    let auth = request.header("authorization").unwrap_or_default();
    let (status, extra, body) = match i % 6 {
        0 => (
            "500 Internal Server Error",
            String::new(),
            format!(r#"{{"error":{{"message":"upstream rejected {auth}"}}}}"#),
        ),
        1 => (
            "401 Unauthorized",
            format!("WWW-Authenticate: {auth}\r\n"),
            format!("invalid credentials: {auth}"),
        ),
        2 => (
            "429 Too Many Requests",
            format!("Retry-After: 0\r\nX-Echo: {auth}\r\n"),
            format!(r#"{{"message":"slow down, {auth}"}}"#),
        ),
        3 => (
            "200 OK",
            String::new(),
            // Malformed: a wrong type whose value the JSON error would quote.
            format!(r#"{{"choices":[{{"message":{{"content":["{auth}"]}}}}]}}"#),
        ),
        4 => (
            "302 Found",
            format!("Location: http://127.0.0.1:1/{auth}\r\n"),
            String::new(),
        ),
        _ => (
            "200 OK",
            format!("X-Echo: {auth}\r\n"),
            format!(
                r#"{{"choices":[{{"message":{{"role":"assistant","content":"you said {auth}"}}}}],"usage":{{"total_tokens":3}}}}"#
            ),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn http_config(base_url: &str) -> String {
    format!(
        r#"
[breakers.llm]
max_failures = 4
open_duration = "200ms"

[retry_policies.llm]
max_attempts = 2
initial_delay = "10ms"

[timeouts.llm]
kind = "fixed"
duration = "1s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 2
max_pending = 100

[system]
duration = "2s"
drain_deadline = "500ms"

[system.workload]
rate = 40.0
task_deadline = "2s"

[system.provider]
kind = "http"
base_url = "{base_url}"
model = "test-model"
api_key_env = "{KEY_VAR}"
request_timeout = "1s"

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#
    )
}

#[track_caller]
fn assert_no_key(what: &str, text: &str) {
    for needle in [KEY, KEY_FRAGMENT] {
        if let Some(at) = text.find(needle) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            let context: String = text[from..].chars().take(400).collect();
            panic!("the API key leaked into {what}: …{context}…");
        }
    }
}

#[test]
fn the_api_key_never_appears_in_logs_metrics_health_reports_or_messages() {
    let server = common::ScriptedServer::start(echo);
    let base_url = server.base_url();
    let config_text = http_config(&base_url);
    let config = common::config_file("security-http", &config_text);
    let report = common::report_path("security-http");
    let running = start(
        &["--log-level", "trace"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[(KEY_VAR, KEY)],
    );
    assert_no_key("the banner", &running.banner);
    // Scrape while the traffic flows, and once more near the end.
    std::thread::sleep(Duration::from_millis(1000));
    let (_, metrics_mid) = get(running.addr, "/metrics").expect("scrape");
    let (_, health_mid) = get(running.addr, "/health").expect("health");
    std::thread::sleep(Duration::from_millis(700));
    let (_, metrics_end) = get(running.addr, "/metrics").expect("scrape");
    let (_, health_end) = get(running.addr, "/health").expect("health");
    let done = running.wait(Duration::from_secs(10));
    let seen: BTreeSet<String> = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .collect();
    let requests = server.request_count();
    drop(server);

    // The canary did reach the server, every echo path was exercised, and the logs are the
    // verbose ones: otherwise finding nothing would prove nothing.
    assert!(
        requests >= 12,
        "only {requests} requests reached the echo server"
    );
    assert!(
        seen.contains(&format!("Bearer {KEY}")),
        "the server never saw the key: {seen:?}"
    );
    assert_eq!(
        done.status.code(),
        Some(0),
        "stderr tail:\n{}",
        common::tail(&done.stderr)
    );
    assert!(done.stderr.contains("TRACE"), "not trace logs");
    assert!(
        done.stderr.contains("<redacted>"),
        "no redacted echo in the logs: were the errors logged at all?"
    );

    assert_no_key("stdout", &done.stdout);
    assert_no_key("stderr (trace logs)", &done.stderr);
    assert_no_key("/metrics", &metrics_mid);
    assert_no_key("/metrics", &metrics_end);
    assert_no_key("/health", &health_mid);
    assert_no_key("/health", &health_end);
    let report_text = std::fs::read_to_string(&report).expect("report written");
    assert_no_key("the report", &report_text);
    let report = common::read_report(&report);
    let [_, failed, ..] = assert_adds_up(&report);
    eprintln!(
        "{requests} requests answered; report {report}; {} bytes of trace logs",
        done.stderr.len()
    );
    assert!(failed > 0, "{report:#}");

    // The label values too.
    assert_labels_are_bounded(&metrics_end, &config_text);

    // check-config prints the variable's name, never its value.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .env_clear()
        .env(KEY_VAR, KEY)
        .args(["--log-level", "trace", "check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(printed.contains(KEY_VAR), "{printed}");
    assert_no_key("check-config", &printed);
    assert_no_key("check-config", &String::from_utf8_lossy(&check.stderr));
}

/// A simulated run that reaches every outcome: errors, 429s, an outage that opens the
/// breaker, timeouts, overload, two agents with their own policies and a shared budget.
const BUSY: &str = r#"
[breakers.llm]
max_failures = 3
open_duration = "300ms"

[breakers.search-api]
max_failures = 3
open_duration = "300ms"
slow_call_duration = "50ms"
slow_call_rate_threshold = 0.5

[retry_policies.llm]
max_attempts = 3
initial_delay = "10ms"
max_delay = "50ms"

[retry_policies.search_retry]
# No retry: the outage's first failures end `failed` before the breaker opens. With a retry,
# they were retried into the open breaker and ended `rejected`, and `failed` came only from a
# rare double 500 (none in some runs).
max_attempts = 1
initial_delay = "5ms"

[timeouts.llm]
kind = "per_operation"
default = "150ms"
slow_operation_threshold = "60ms"

[timeouts.adaptive-t]
kind = "adaptive"
initial = "200ms"
quantile = 0.9
max = "400ms"

[budgets.shared]
retry_percent = 0.2

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
budget = "shared"
workers = 2
max_pending = 8

[agents.searcher-2]
breaker = "search-api"
retry = "search_retry"
timeout = "adaptive-t"
budget = "shared"
workers = 2
max_pending = 8

[system]
duration = "2s"
drain_deadline = "300ms"

[system.workload]
rate = 150.0
task_deadline = "400ms"

[system.provider]
kind = "simulated"
median_latency = "40ms"
sigma = 1.0
error_rate = 0.1
rate_limit_rate = 0.05
rate_limit_retry_after = "20ms"
outages = [{ start = "600ms", length = "400ms" }]
spikes = [{ start = "1200ms", length = "300ms", factor = 5.0 }]

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#;

#[test]
fn every_label_value_is_a_configured_name_or_a_fixed_enum() {
    let config = common::config_file("security-labels", BUSY);
    let report = common::report_path("security-labels");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    std::thread::sleep(Duration::from_millis(1700));
    let (status, exposition) = get(running.addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    let done = running.wait(Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    let report = common::read_report(&report);
    let outcomes = assert_adds_up(&report);
    eprintln!("report {report}");
    // The traffic did reach every kind of outcome but `cancelled`, so many label values exist.
    // (Not `overloaded`: this traffic stays within the agent's capacity.)
    assert!([0, 1, 2, 4].iter().all(|&i| outcomes[i] > 0), "{report:#}");
    let checked = assert_labels_are_bounded(&exposition, BUSY);
    assert!(checked > 100, "only {checked} labelled samples");
}

/// Asserts every label value of `exposition` is allowed for its key: a name from `config` for
/// the name labels, a variant of the fixed enum for the others, a configured bucket bound for
/// `le`. Returns how many samples carried labels.
fn assert_labels_are_bounded(exposition: &str, config: &str) -> usize {
    let config = SystemConfig::from_toml_str_with_env(config, "labels.toml", &EnvOverrides::none())
        .expect("the test config loads");
    let names = |keys: Vec<&String>| -> BTreeSet<String> { keys.into_iter().cloned().collect() };
    let outcomes: BTreeSet<String> = TaskOutcome::ALL
        .iter()
        .map(|o| o.as_str())
        .chain(
            [
                BreakerCall::Success,
                BreakerCall::Failure,
                BreakerCall::Ignored,
                BreakerCall::Rejected,
                BreakerCall::Slow,
            ]
            .map(BreakerCall::as_str),
        )
        .chain(
            [
                RetryOutcome::SuccessWithoutRetry,
                RetryOutcome::SuccessWithRetry,
                RetryOutcome::FailedWithoutRetry,
                RetryOutcome::FailedWithRetry,
                RetryOutcome::BudgetExhausted,
            ]
            .map(RetryOutcome::as_str),
        )
        .chain(
            [
                TimeoutOutcome::Success,
                TimeoutOutcome::Failure,
                TimeoutOutcome::Timeout,
            ]
            .map(TimeoutOutcome::as_str),
        )
        .map(str::to_owned)
        .collect();
    let states: BTreeSet<String> = BreakerState::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let allowed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
        ("agent", names(config.agents.keys().collect())),
        ("breaker", names(config.breakers.keys().collect())),
        ("policy", names(config.retry_policies.keys().collect())),
        ("timeout", names(config.timeouts.keys().collect())),
        ("budget", names(config.budgets.keys().collect())),
        ("outcome", outcomes),
        ("state", states.clone()),
        ("from", states.clone()),
        ("to", states),
        (
            "result",
            ractor_resilience::metrics::RELOAD_RESULTS
                .map(str::to_owned)
                .into(),
        ),
    ]);
    let pairs = label_pairs(exposition);
    for (key, value, line) in &pairs {
        if key == "le" {
            let bound = value == "+Inf"
                || value
                    .parse::<f64>()
                    .is_ok_and(|v| DURATION_BUCKETS.contains(&v));
            assert!(bound, "`le` {value:?} is not a configured bucket: {line}");
            continue;
        }
        let Some(values) = allowed.get(key.as_str()) else {
            panic!(
                "label `{key}` is new: check that its values are bounded (names or an enum), \
                 then add it to this test: {line}"
            );
        };
        assert!(
            values.contains(value),
            "label {key}={value:?} is neither a configured name nor a fixed enum value \
             (allowed: {values:?}): {line}"
        );
    }
    pairs
        .iter()
        .map(|(_, _, line)| line)
        .collect::<BTreeSet<_>>()
        .len()
}
