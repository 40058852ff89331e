//! Shutdown of the real binary under load: the first SIGTERM stops admission and drains within
//! `system.drain_deadline`, every task still pending after it ends `cancelled`, the process
//! exits 0 and its report adds up; a second SIGTERM exits at once.
//!
//! Wall clock, on loopback: these tests run the real process and send it real signals. Every
//! scenario is at most a few seconds long (drain deadlines of 1–5 s, signals sent about 1 s
//! after start), and every wait is bounded (`Running::wait` kills the process and fails past
//! its limit).

mod common;

use std::time::{Duration, Instant};

use common::{assert_adds_up, count, get, start, sum_of};

/// A full load that cannot finish: 200 tasks/s into 4 workers whose every call takes 3 s, so
/// hundreds of tasks are queued or in flight when the signal comes, and none can end within
/// the 1 s drain deadline. No retries, no breaker trips, no admission bound in reach: the only
/// way a task can end is by being cancelled.
const STUCK: &str = r#"
[breakers.llm]
max_failures = 100000
open_duration = "1s"

[retry_policies.llm]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "20s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 4
max_pending = 100000

[system]
duration = "60s"
drain_deadline = "DRAIN"

[system.workload]
rate = 200.0
task_deadline = "30s"

[system.provider]
kind = "simulated"
median_latency = "3s"
sigma = 0.0
error_rate = 0.0
rate_limit_rate = 0.0
outages = []
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#;

/// Slack for process exit, report writing and a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Waits (at most 5 s) until the exporter shows more than `min` tasks in flight.
fn wait_for_inflight(addr: std::net::SocketAddr, min: f64) -> f64 {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let inflight = get(addr, "/metrics")
            .map(|(_, body)| sum_of(&body, "resilience_agent_inflight_tasks"))
            .unwrap_or(0.0);
        if inflight > min {
            return inflight;
        }
        assert!(
            Instant::now() < give_up,
            "never more than {min} tasks in flight (last {inflight})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_under_full_load_drains_within_the_deadline_and_cancels_every_pending_task() {
    let drain = Duration::from_secs(1);
    let config = common::config_file("shutdown-stuck", &STUCK.replace("DRAIN", "1s"));
    let report = common::report_path("shutdown-stuck");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    // Full load: far more tasks admitted than the 4 workers can hold.
    let inflight = wait_for_inflight(running.addr, 150.0);

    let signalled = Instant::now();
    running.sigterm();
    let done = running.wait_since(signalled, drain + MARGIN + Duration::from_secs(3));
    eprintln!(
        "drain: {inflight} in flight at SIGTERM, exit {:?} after {:?}",
        done.status, done.elapsed
    );

    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.elapsed <= drain + MARGIN,
        "exit took {:?}, drain deadline {drain:?}",
        done.elapsed
    );
    // It did wait for the in-flight tasks (none could finish) rather than exit at once.
    assert!(
        done.elapsed >= drain.mul_f64(0.9),
        "exited after {:?}, before the drain deadline {drain:?}",
        done.elapsed
    );
    assert!(
        done.stderr.contains("shutdown requested: draining"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("drain deadline passed"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.contains("== summary (run"), "{}", done.stdout);

    let report = common::read_report(&report);
    let [
        succeeded,
        failed,
        rejected,
        overloaded,
        timed_out,
        cancelled,
    ] = assert_adds_up(&report);
    eprintln!("report: {report}");
    let submitted = count(&report, "submitted");
    assert!(submitted as f64 >= inflight, "{report:#}");
    // No task could end by itself: every one of them was pending at the deadline.
    assert!(cancelled > 0, "{report:#}");
    assert_eq!(
        (
            succeeded, failed, rejected, overloaded, timed_out, cancelled
        ),
        (0, 0, 0, 0, 0, submitted),
        "every pending task must end `cancelled`: {report:#}"
    );
    // The run stopped at the signal, not at its configured 60 s.
    assert!(count(&report, "duration_ms") < 10_000, "{report:#}");
}

#[test]
fn sigterm_lets_in_flight_tasks_finish_when_they_can() {
    // 8 workers, 100 ms calls, 40 tasks/s: a handful in flight at the signal, all done well
    // within the 5 s deadline, so the process exits as soon as they are, with nothing cancelled.
    let config_text = STUCK
        .replace("DRAIN", "5s")
        .replace("median_latency = \"3s\"", "median_latency = \"100ms\"")
        .replace("rate = 200.0", "rate = 40.0")
        .replace("workers = 4", "workers = 8");
    let config = common::config_file("shutdown-finish", &config_text);
    let report = common::report_path("shutdown-finish");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    wait_for_inflight(running.addr, 0.0);
    std::thread::sleep(Duration::from_millis(500));

    let signalled = Instant::now();
    running.sigterm();
    let done = running.wait_since(signalled, Duration::from_secs(10));
    eprintln!("exit {:?} after {:?}", done.status, done.elapsed);
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        done.elapsed < Duration::from_secs(2),
        "the in-flight tasks take 100 ms, yet exit took {:?}",
        done.elapsed
    );
    assert!(
        !done.stderr.contains("drain deadline passed"),
        "{}",
        done.stderr
    );
    let report = common::read_report(&report);
    let [succeeded, ..] = assert_adds_up(&report);
    eprintln!("report: {report}");
    assert!(succeeded > 0, "{report:#}");
    assert_eq!(succeeded, count(&report, "submitted"), "{report:#}");
}

#[test]
fn a_sigterm_sent_as_soon_as_the_banner_is_out_still_drains() {
    // The banner is the "ready" line a supervisor waits for: from then on a SIGTERM must be a
    // graceful shutdown, never the default action (death by signal, no report). Five runs of a
    // few hundred milliseconds each, signalled the moment the banner is read.
    let config = common::config_file("shutdown-early", &STUCK.replace("DRAIN", "200ms"));
    for run in 0..5 {
        let report = common::report_path(&format!("shutdown-early-{run}"));
        let running = start(
            &["--log-level", "warn"],
            &config,
            &["--report-json", report.to_str().unwrap()],
            &[],
        );
        running.sigterm();
        let done = running.wait(Duration::from_secs(5));
        assert_eq!(
            done.status.code(),
            Some(0),
            "run {run}: {:?} (a signal before the handler was installed?) stderr:\n{}",
            done.status,
            done.stderr
        );
        assert_adds_up(&common::read_report(&report));
    }
}

#[test]
fn a_second_sigterm_exits_at_once() {
    // A 5 s drain deadline that the second signal must cut short.
    let config = common::config_file("shutdown-twice", &STUCK.replace("DRAIN", "5s"));
    let report = common::report_path("shutdown-twice");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    wait_for_inflight(running.addr, 50.0);

    running.sigterm();
    // Let the first one be handled (the process logs it) before the second.
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    running.sigterm();
    let done = running.wait_since(second, Duration::from_secs(4));
    eprintln!(
        "second signal: exit {:?} after {:?}",
        done.status, done.elapsed
    );
    // 130 = 128 + SIGINT, the shell's convention for an interrupted program, for either signal.
    assert_eq!(done.status.code(), Some(130), "stderr:\n{}", done.stderr);
    assert!(
        done.elapsed < Duration::from_secs(1),
        "the second signal took {:?} to end the process (drain deadline 5 s)",
        done.elapsed
    );
    assert!(done.stderr.contains("second signal"), "{}", done.stderr);
    // Exiting at once means no summary and no report.
    assert!(!report.exists(), "a report was written after a forced exit");
}
