//! 1,000 concurrent scrapes of `/metrics` do not stop task processing: the real binary serves a
//! steady workload while 1,000 connections to its exporter, all opened before any request is
//! sent, ask for `/metrics` at once. Every scrape succeeds, tasks keep completing during the
//! burst, and the run ends with every task succeeded (none timed out or rejected for want of
//! CPU).
//!
//! Wall clock, loopback only (127.0.0.1, port 0): the run lasts about as long as the burst plus
//! a 1 s drain (a few seconds on a 2-core machine in a debug build), the burst is bounded to
//! 1,000 requests, and every connect, read and wait has a timeout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{assert_adds_up, count, get, start, sum_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const RATE: f64 = 100.0;

/// 100 tasks/s of ~20 ms calls into 8 workers: light enough that every task succeeds unless
/// something starves the agents. The run is ended by SIGTERM once the burst is over.
const STEADY: &str = r#"
[breakers.llm]
max_failures = 5

[retry_policies.llm]
max_attempts = 2
initial_delay = "10ms"

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
workers = 8
max_pending = 1000

[system]
duration = "60s"
drain_deadline = "1s"

[system.workload]
rate = 100.0
task_deadline = "3s"

[system.provider]
kind = "simulated"
median_latency = "20ms"
sigma = 0.2
error_rate = 0.0
rate_limit_rate = 0.0
outages = []
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#;

const SCRAPES: usize = 1000;

fn tasks_finished(addr: SocketAddr) -> f64 {
    let (status, body) = get(addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    sum_of(&body, "resilience_tasks_total")
}

/// One scrape on an already open connection: the raw response (parsed after the burst, so
/// that the test's own parsing does not compete with the process under test for the 2 cores).
async fn scrape(mut stream: TcpStream, addr: SocketAddr) -> std::io::Result<Vec<u8>> {
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| std::io::Error::other("no response within 30 s"))?
}

#[test]
fn a_thousand_concurrent_scrapes_do_not_stop_task_processing() {
    let config = common::config_file("scrapes", STEADY);
    let report = common::report_path("scrapes");
    let running = start(
        &["--log-level", "warn"],
        &config,
        &["--report-json", report.to_str().unwrap()],
        &[],
    );
    let addr = running.addr;
    // Warm up: tasks are completing before the burst.
    let give_up = Instant::now() + Duration::from_secs(5);
    while tasks_finished(addr) < 20.0 {
        assert!(Instant::now() < give_up, "no task finished within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (before, started, results) = runtime.block_on(async {
        // Every connection is open (accepted by the kernel, queued for the server) before the
        // first request is written, so all 1,000 requests are outstanding together.
        let mut connecting = JoinSet::new();
        for _ in 0..SCRAPES {
            connecting.spawn(async move {
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
            });
        }
        let mut streams = Vec::with_capacity(SCRAPES);
        while let Some(joined) = connecting.join_next().await {
            let stream = joined
                .unwrap()
                .expect("connect within 10 s")
                .expect("connect to the exporter");
            streams.push(stream);
        }
        let before = tokio::task::spawn_blocking(move || tasks_finished(addr))
            .await
            .unwrap();
        let started = Instant::now();
        let mut scrapes = JoinSet::new();
        for stream in streams {
            scrapes.spawn(scrape(stream, addr));
        }
        let mut results = Vec::with_capacity(SCRAPES);
        while let Some(joined) = scrapes.join_next().await {
            results.push(joined.unwrap());
        }
        (before, started, results)
    });
    let burst = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let after = tasks_finished(addr);
    let window = started.elapsed();

    let mut failures = Vec::new();
    let mut seen = Vec::with_capacity(SCRAPES);
    for result in &results {
        match result {
            Err(e) => failures.push(e.to_string()),
            Ok(raw) => {
                let (status, body) = common::split_response(&String::from_utf8_lossy(raw));
                if status != 200 || !body.contains("# TYPE resilience_tasks_total counter") {
                    failures.push(format!("status {status}, {} bytes", body.len()));
                } else {
                    seen.push(sum_of(&body, "resilience_tasks_total"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SCRAPES} scrapes failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let first = seen.iter().copied().fold(f64::INFINITY, f64::min);
    let last = seen.iter().copied().fold(0.0, f64::max);
    let during = last - before;
    eprintln!(
        "{SCRAPES} scrapes in {burst:?}: tasks finished {before} before, {first} in the \
         stalest answer, {last} in the freshest, {after} after ({during} during the burst, {:.0}/s; \
         workload {RATE}/s); {:.0}/s from the burst's start to 300 ms after it",
        during / burst.as_secs_f64(),
        (after - before) / window.as_secs_f64()
    );
    // Tasks kept completing while the scrapes were served: the answers themselves show more
    // tasks finished than before the burst, and the count went on growing after it.
    assert!(last > before, "no task finished during the burst");
    assert!(
        after > last,
        "no task finished in the 300 ms after the burst"
    );
    // And at a fair share of the workload's rate, judged two ways. From the answers: their
    // freshest count is from a render a little before the burst ended, so this undercounts;
    // with every scrape rendering on the agents' runtime it was 7/s for a 1.8 s burst (now
    // 50–100/s). From the burst's start to 300 ms after its end, where a stall shows as tasks
    // still pending (was 56–69/s; now 100/s).
    if burst >= Duration::from_millis(250) {
        let rate = during / burst.as_secs_f64();
        assert!(
            rate >= RATE * 0.2,
            "only {rate:.0} tasks/s finished during the burst (workload {RATE}/s)"
        );
    }
    let rate = (after - before) / window.as_secs_f64();
    assert!(
        rate >= RATE * 0.75,
        "only {rate:.0} tasks/s finished from the burst's start to 300 ms after it \
         (workload {RATE}/s)"
    );

    let signalled = Instant::now();
    running.sigterm();
    let done = running.wait_since(signalled, Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
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
    assert_eq!(
        (failed, rejected, overloaded, timed_out, cancelled),
        (0, 0, 0, 0, 0),
        "tasks suffered from the scrapes: {report:#}"
    );
    assert_eq!(succeeded, count(&report, "submitted"));
    // No task was held up by the scrapes: calls take ~20 ms (p99 ~32 ms unloaded); with the
    // scrapes rendering on the agents' runtime, p95 was over 800 ms.
    let p99 = report["latency_ms"]["p99"].as_f64().unwrap();
    assert!(
        p99 < 250.0,
        "p99 latency {p99} ms: tasks waited behind the scrapes"
    );
}
