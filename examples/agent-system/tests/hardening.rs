//! Issue #13 ("Hardening") against the real binary: an absurd `Content-Length` does not abort
//! the run, a wrong API key is logged and counted by reason and trips the breaker, the final
//! metrics stay scrapeable for the exporter's linger, and `attempts − retries` counts the tasks
//! that reached the provider when the breaker rejects retries.
//!
//! Wall clock, loopback only: each run is one or two seconds of traffic against a scripted
//! HTTP server on 127.0.0.1 (port 0) (see `common::ScriptedServer`); every wait is bounded.

mod common;

use std::time::Duration;

use common::{
    ScriptedServer, assert_adds_up, completion_body, count, http_config, http_response, start,
};

/// A distinctive key that must never be logged.
const KEY: &str = "sk-hardening-Zq81Lm4T-never-log";
const KEY_VAR: &str = "AGENT_SYSTEM_HARDENING_TEST_KEY";

#[test]
fn an_absurd_content_length_under_the_largest_body_limit_does_not_abort_the_run() {
    // Every answer declares almost 10^18 bytes and sends a short body: each request ends in a
    // classified error (a truncated body), and the run ends normally with its report. The body
    // limit is the largest the configuration accepts (64 MiB; `max_body_bytes` beyond it is
    // refused at load): nothing is allocated from the declared length beyond a small bound.
    let server = ScriptedServer::start(|_, _| {
        let body = completion_body("hi");
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\nConnection: close\r\n\r\n{body}"
        )
        .into_bytes()
    });
    let config_text = http_config(
        &server.base_url(),
        KEY_VAR,
        1000,
        1,
        10.0,
        "1s",
        "linger = \"0s\"",
    )
    .replace(
        "request_timeout = \"1s\"",
        "request_timeout = \"1s\"\nmax_body_bytes = 67108864",
    );
    let config = common::config_file("hardening-content-length", &config_text);
    let report = common::report_path("hardening-content-length");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[(KEY_VAR, KEY)],
    );
    let done = running.wait(Duration::from_secs(15));
    assert_eq!(
        done.status.code(),
        Some(0),
        "stderr tail:\n{}",
        common::tail(&done.stderr)
    );
    assert!(
        !done.stderr.contains("memory allocation"),
        "{}",
        common::tail(&done.stderr)
    );
    let report = common::read_report(&report);
    let [succeeded, failed, ..] = assert_adds_up(&report);
    assert!(server.request_count() > 0, "no request reached the server");
    assert_eq!(succeeded, 0, "{report:#}");
    assert_eq!(failed, count(&report, "submitted"), "{report:#}");
}

#[test]
fn a_breaker_opening_logs_how_long_it_stays_open_not_a_clock_reading() {
    // The simulated provider's outage opens the breaker (open_duration 300ms) within a second.
    let config = common::config_file(
        "hardening-open-for",
        r#"
[breakers.llm]
max_failures = 2
open_duration = "300ms"

[retry_policies.llm]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "1s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 2

[system]
duration = "1s"
drain_deadline = "1s"

[system.workload]
rate = 40.0

[system.provider]
kind = "simulated"
median_latency = "5ms"
outages = [{ start = "200ms", length = "500ms" }]
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#,
    );
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    let done = running.wait(Duration::from_secs(15));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    let opened: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("circuit breaker opened"))
        .collect();
    assert!(
        !opened.is_empty(),
        "the breaker never opened:\n{}",
        done.stderr
    );
    for line in opened {
        assert!(!line.contains("Instant"), "a clock reading in: {line}");
        assert!(
            line.contains("open_for=300ms"),
            "no open_for=300ms in: {line}"
        );
    }
}

#[test]
fn a_wrong_api_key_is_logged_counted_by_reason_and_trips_the_breaker() {
    // 401 to everything, echoing the key: the operator must see why every task fails.
    let server = ScriptedServer::start(|_, request| {
        let auth = request.header("authorization").unwrap_or_default();
        http_response(
            "401 Unauthorized",
            &[],
            &format!(r#"{{"error":{{"message":"invalid api key ({auth})"}}}}"#),
        )
    });
    let config_text = http_config(
        &server.base_url(),
        KEY_VAR,
        3,
        2,
        20.0,
        "1500ms",
        "linger = \"0s\"",
    );
    let config = common::config_file("hardening-401", &config_text);
    let report_path = common::report_path("hardening-401");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report_path.to_str().unwrap()],
        &[(KEY_VAR, KEY)],
    );
    let done = running.wait(Duration::from_secs(15));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    for (what, text) in [("stdout", &done.stdout), ("stderr", &done.stderr)] {
        assert!(!text.contains(KEY), "the key leaked into {what}:\n{text}");
        assert!(
            !text.contains("Zq81Lm4T"),
            "the key leaked into {what}:\n{text}"
        );
    }
    let report = common::read_report(&report_path);
    let [_, failed, rejected, ..] = assert_adds_up(&report);
    eprintln!("report {report:#}\nstderr:\n{}", done.stderr);

    // Logged: a WARN naming the reason and the status, rate limited (one line per reason per
    // 10 s), with the rest counted.
    let failures: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("task failed"))
        .collect();
    assert!(!failures.is_empty(), "no failure logged:\n{}", done.stderr);
    assert!(
        failures[0].contains("reason=unauthorized") && failures[0].contains("401"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("<redacted>"), "{}", failures[0]);
    assert_eq!(failures.len(), 1, "not rate limited: {failures:#?}");
    if failed > 1 {
        assert!(
            done.stderr.contains(&format!("suppressed={}", failed - 1)),
            "no count of the failures not logged:\n{}",
            done.stderr
        );
    }

    // Counted by reason, in the summary and the report.
    assert!(failed > 0, "{report:#}");
    assert!(
        done.stdout
            .contains(&format!("failures by reason: unauthorized {failed}")),
        "{}",
        done.stdout
    );
    assert_eq!(
        report["failures_by_reason"]["unauthorized"].as_u64(),
        Some(failed),
        "{report:#}"
    );

    // And the breaker counted them: it opened and stopped the traffic.
    assert!(
        !report["breaker_transitions"].as_array().unwrap().is_empty(),
        "the breaker never opened: {report:#}"
    );
    assert!(rejected > 0, "{report:#}");
    // Not retried: one request per task that reached the provider.
    assert_eq!(count(&report, "retries"), 0, "{report:#}");
    assert_eq!(server.request_count() as u64, count(&report, "attempts"));
}

#[test]
fn attempts_minus_retries_is_the_number_of_tasks_that_reached_the_provider() {
    // Four answers in five are 500s: tasks are retried, the breaker opens and rejects tasks and
    // retries alike. Only attempts that started count, so the server's own count of requests
    // (one per attempt) is `attempts`, and the distinct tasks it saw (by prompt) are
    // `attempts − retries`.
    let server = ScriptedServer::start(|i, _| {
        if i % 5 == 4 {
            http_response("200 OK", &[], &completion_body("ok"))
        } else {
            http_response("500 Internal Server Error", &[], r#"{"error":"boom"}"#)
        }
    });
    let config_text = http_config(
        &server.base_url(),
        KEY_VAR,
        3,
        3,
        40.0,
        "1500ms",
        "linger = \"0s\"",
    );
    let config = common::config_file("hardening-retries", &config_text);
    let report_path = common::report_path("hardening-retries");
    let running = start(
        &["--log-level", "error"],
        &config,
        &["--report-json", report_path.to_str().unwrap()],
        &[(KEY_VAR, KEY)],
    );
    let done = running.wait(Duration::from_secs(15));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    let report = common::read_report(&report_path);
    let [succeeded, failed, rejected, _, timed_out, cancelled] = assert_adds_up(&report);
    eprintln!("report {report:#}");
    let requests = server.requests.lock().unwrap().clone();
    let tasks: std::collections::BTreeSet<String> = requests
        .iter()
        .map(|r| r.prompt().expect("a chat-completion request"))
        .collect();
    let (attempts, retries) = (count(&report, "attempts"), count(&report, "retries"));
    // The scenario did what it is for: retries, and a breaker that opened and rejected.
    assert!(retries > 0, "{report:#}");
    assert!(rejected > 0, "{report:#}");
    assert!(
        !report["breaker_transitions"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(cancelled, 0, "{report:#}");
    // Some tasks reached the provider and still ended `rejected`: the breaker refused their
    // retry. Those refused retries must not be counted.
    assert!(
        tasks.len() as u64 > succeeded + failed + timed_out,
        "no retry was rejected by the breaker: {} tasks reached the provider; {report:#}",
        tasks.len()
    );
    assert_eq!(
        attempts,
        requests.len() as u64,
        "attempts vs requests received"
    );
    assert_eq!(
        attempts - retries,
        tasks.len() as u64,
        "attempts − retries vs distinct tasks the provider saw"
    );
}
