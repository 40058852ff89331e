//! The exporter lingers after the run: once the summary is printed, `/metrics` still answers
//! for `system.exporter.linger`, with the final counters (equal to the report's), and the
//! process exits promptly when the linger ends, or at once on a signal during it.
//!
//! Wall clock, loopback only: these run the real binary (1 s of simulated traffic, lingers of a
//! few seconds) and send it real signals; every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::{assert_adds_up, count, get, start};

/// 1 s of light simulated traffic, some of it failing, and the exporter's `extra` keys.
fn scenario(extra: &str) -> String {
    format!(
        r#"
[breakers.llm]
max_failures = 1000

[retry_policies.llm]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 4

[system]
duration = "1s"
drain_deadline = "2s"

[system.workload]
rate = 40.0

[system.provider]
kind = "simulated"
median_latency = "10ms"
error_rate = 0.2
rate_limit_rate = 0.0
outages = []
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
{extra}
"#
    )
}

/// The value of `resilience_tasks_total{…outcome="OUTCOME"…}` (summed over agents).
fn tasks_total(exposition: &str, outcome: &str) -> u64 {
    exposition
        .lines()
        .filter(|l| l.starts_with("resilience_tasks_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

#[test]
fn the_final_metrics_can_be_scraped_after_the_summary() {
    let linger = Duration::from_secs(3);
    let config = common::config_file("linger-scrape", &scenario("linger = \"3s\""));
    let report = common::report_path("linger-scrape");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    let stdout = running
        .wait_for_stdout("report written to", Duration::from_secs(15))
        .expect("no summary and report within 15 s");
    assert!(stdout.contains("== summary (run"), "{stdout}");
    let lingering = Instant::now();
    let (status, exposition) = get(running.addr, "/metrics").expect("scrape after the summary");
    assert_eq!(status, 200);
    let (status, _) = get(running.addr, "/health").expect("health after the summary");
    assert_eq!(status, 200);

    let report = common::read_report(&report);
    let outcomes = assert_adds_up(&report);
    eprintln!("report: {report}");
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{report:#}");
    for (outcome, n) in [
        "succeeded",
        "failed",
        "rejected",
        "overloaded",
        "timed_out",
        "cancelled",
    ]
    .into_iter()
    .zip(outcomes)
    {
        assert_eq!(
            tasks_total(&exposition, outcome),
            n,
            "resilience_tasks_total{{outcome=\"{outcome}\"}} differs from the report"
        );
    }
    assert_eq!(count(&report, "submitted"), outcomes.iter().sum::<u64>());
    // What the workers count in place reaches the page too (published as they stop, and by
    // every scrape): the attempts and queue waits equal the report's attempts, and nothing is
    // in flight any more.
    let attempts = count(&report, "attempts");
    assert!(attempts > 0, "{report:#}");
    assert_eq!(
        family_total(&exposition, "resilience_retry_attempts_total{"),
        attempts,
        "resilience_retry_attempts_total differs from the report"
    );
    assert_eq!(
        family_total(&exposition, "resilience_agent_queue_wait_seconds_count{"),
        attempts,
        "resilience_agent_queue_wait_seconds_count differs from the report's attempts"
    );
    assert_eq!(
        family_total(&exposition, "resilience_agent_inflight_tasks{"),
        0
    );

    // It says so, and it exits when the linger ends.
    let done = running.wait_since(lingering, Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.stdout.contains(&format!(
            "metrics stay available at http://{}/metrics for 3s",
            done_addr(&done.stdout)
        )),
        "{}",
        done.stdout
    );
    assert!(
        done.elapsed >= linger - Duration::from_millis(500),
        "exited {:?} after the summary, before the 3 s linger",
        done.elapsed
    );
    assert!(
        done.elapsed < linger + Duration::from_secs(2),
        "exited only {:?} after the summary (linger 3 s)",
        done.elapsed
    );
}

/// The sum of every series whose line starts with `prefix` (a family and its `{`).
fn family_total(exposition: &str, prefix: &str) -> u64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// The metrics address from the banner.
fn done_addr(stdout: &str) -> String {
    stdout
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_signal_during_the_linger_exits_at_once() {
    let config = common::config_file("linger-signal", &scenario("linger = \"30s\""));
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    running
        .wait_for_stdout("metrics stay available", Duration::from_secs(15))
        .expect("no linger line within 15 s");
    let signalled = Instant::now();
    running.sigterm();
    let done = running.wait_since(signalled, Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.elapsed < Duration::from_secs(1),
        "a signal during the 30 s linger took {:?} to end the process",
        done.elapsed
    );
}

#[test]
fn a_second_signal_during_the_linger_after_a_drain_exits_at_once() {
    let config = common::config_file(
        "linger-second-signal",
        &scenario("linger = \"30s\"").replace("duration = \"1s\"", "duration = \"60s\""),
    );
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    std::thread::sleep(Duration::from_millis(500));
    running.sigterm();
    running
        .wait_for_stdout("metrics stay available", Duration::from_secs(15))
        .expect("no linger line within 15 s of the first signal");
    let signalled = Instant::now();
    running.sigterm();
    let done = running.wait_since(signalled, Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(130), "stderr:\n{}", done.stderr);
    assert!(
        done.elapsed < Duration::from_secs(1),
        "the second signal took {:?} to end the process",
        done.elapsed
    );
}

#[test]
fn linger_zero_exits_as_soon_as_the_report_is_written() {
    let config = common::config_file("linger-zero", &scenario("linger = \"0s\""));
    let running = start(&["--log-level", "warn"], &config, &[], &[]);
    running
        .wait_for_stdout("== summary", Duration::from_secs(15))
        .expect("no summary within 15 s");
    let done = running.wait(Duration::from_secs(2));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        !done.stdout.contains("metrics stay available"),
        "{}",
        done.stdout
    );
}
