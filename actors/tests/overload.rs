//! Overload, on tokio's paused clock: arrivals at 10× an agent's capacity for 60 simulated
//! seconds. Admission control (`max_pending`) answers the excess `Overloaded` at once, the tasks
//! it admits keep their latency (p99 within 2× of the unloaded p99), and resident memory stays
//! within a fixed bound ([`MEMORY_BOUND`]) of its value before the overload.
//!
//! A control run floods an agent with a deep queue the same way and shows its admitted p99
//! leaving the bound: the test can see the failure it guards against.

mod scripted;
mod support;

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ractor_resilience::agent::{AgentBuilder, AgentHandle, CallError};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::queue::CodelSettings;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use scripted::{Script, Scripted, quiet};
use tokio::time::Instant;

/// The agent: 8 workers, each task taking 40–60 ms (50 ms on average)...
const WORKERS: usize = 8;
const SERVICE_MS: std::ops::Range<u64> = 40..61;
/// ...so it serves 8 / 50 ms = 160 tasks per second.
const CAPACITY_PER_SECOND: u64 = 160;
/// Admission bound: as many tasks as workers, so an admitted task never queues behind a
/// backlog it cannot see.
const MAX_PENDING: usize = WORKERS;

/// Peak resident memory during the overload minute may exceed resident memory before it by
/// at most this much. The agent holds at most `MAX_PENDING` tasks whatever the arrival rate;
/// 2 MiB leaves room for allocator noise, not for anything that grows with the 96,000 arrivals
/// (22 bytes kept per arrival would exceed it).
const MEMORY_BOUND: u64 = 2 << 20;

/// Resident memory in bytes (`/proc/self/statm`'s resident pages × 4 KiB pages).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Latencies of admitted tasks, per millisecond up to 10 s (the paused clock's timers have
/// millisecond resolution). Fixed size and touched when made, so that recording allocates
/// nothing during the measured minute.
#[derive(Debug)]
struct Latencies(Vec<u64>);

impl Latencies {
    const MAX_MS: usize = 10_000;

    fn new() -> Self {
        let mut counts = vec![1; Self::MAX_MS + 1];
        counts.fill(0);
        Latencies(counts)
    }

    fn record(&mut self, took: Duration) {
        self.0[(took.as_millis() as usize).min(Self::MAX_MS)] += 1;
    }

    fn len(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The 99th percentile, to the millisecond.
    fn p99(&self) -> Duration {
        let rank = (self.len() * 99).div_ceil(100);
        let mut seen = 0;
        for (ms, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_millis(ms as u64);
            }
        }
        unreachable!("rank <= len")
    }
}

/// What one phase of arrivals saw.
#[derive(Debug)]
struct Phase {
    admitted: Latencies,
    overloaded: u64,
    /// `Overloaded` answers that took any (simulated) time at all.
    overloaded_late: u64,
    /// Any other outcome.
    other: u64,
    /// The most tasks admitted and unanswered at once (sampled every 10 ms).
    peak_inflight: usize,
    /// The highest resident memory (sampled every 10 ms).
    peak_rss: u64,
}

impl Phase {
    fn new() -> Self {
        Phase {
            admitted: Latencies::new(),
            overloaded: 0,
            overloaded_late: 0,
            other: 0,
            peak_inflight: 0,
            peak_rss: 0,
        }
    }

    fn arrivals(&self) -> u64 {
        self.admitted.len() + self.overloaded + self.other
    }

    fn take(&mut self, (result, took): (Result<u64, CallError<scripted::ScriptError>>, Duration)) {
        match result {
            Ok(_) => self.admitted.record(took),
            Err(CallError::Overloaded { .. }) => {
                self.overloaded += 1;
                self.overloaded_late += u64::from(!took.is_zero());
            }
            Err(_) => self.other += 1,
        }
    }
}

/// Sends `per_second` calls per second for `length` (a batch every 10 ms), each timed from
/// `call` to its outcome, and records them in `out`. Runs the recorder's upkeep every second.
async fn phase(
    agent: &AgentHandle<Scripted>,
    rng: &mut SmallRng,
    per_second: u64,
    length: Duration,
    metrics: &PrometheusHandle,
    out: &mut Phase,
) {
    let tick = Duration::from_millis(10);
    let ticks = (length.as_millis() / tick.as_millis()) as u64;
    let per_tick = per_second as f64 / 100.0;
    let mut owed = 0.0;
    // Outcomes come back on a channel drained every tick, so a finished call is freed at once
    // (holding 96,000 join handles would measure the test's memory, not the agent's).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sent = 0u64;
    for t in 0..ticks {
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            sent += 1;
            let agent = agent.clone();
            let tx = tx.clone();
            let script = Script::ok(rng.random_range(SERVICE_MS));
            tokio::spawn(async move {
                let t0 = Instant::now();
                let result = agent.call(script).await;
                let _ = tx.send((result, t0.elapsed()));
            });
        }
        out.peak_inflight = out.peak_inflight.max(agent.inflight());
        out.peak_rss = out.peak_rss.max(rss());
        if t % 100 == 99 {
            metrics.run_upkeep();
        }
        tokio::time::sleep(tick).await;
        while let Ok(outcome) = rx.try_recv() {
            out.take(outcome);
        }
    }
    drop(tx);
    while let Some(outcome) = rx.recv().await {
        out.take(outcome);
    }
    out.peak_rss = out.peak_rss.max(rss());
    assert_eq!(out.arrivals(), sent, "every call answered once");
}

/// Runs `body` on a paused current-thread runtime with a Prometheus recorder of its own,
/// configured like the agent system's exporter (histograms with explicit buckets).
fn simulate<F: std::future::Future<Output = ()>>(body: impl FnOnce(PrometheusHandle) -> F) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0],
        )
        .unwrap()
        .build_recorder();
    support::paused_with_recorder(recorder, body);
}

async fn spawn_agent(
    name: &str,
    max_pending: usize,
    queue: Option<CodelSettings>,
) -> AgentHandle<Scripted> {
    AgentBuilder::new(name, quiet)
        .workers(WORKERS)
        .max_pending(max_pending)
        .queue(queue)
        .retry_policy(
            name,
            RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
        )
        .spawn()
        .await
        .unwrap()
}

/// `resilience_tasks_total{agent="<agent>",outcome="<outcome>"}` from an exposition.
fn tasks_total(metrics: &PrometheusHandle, agent: &str, outcome: &str) -> u64 {
    let prefix = format!("resilience_tasks_total{{agent=\"{agent}\",outcome=\"{outcome}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or(0)
}

#[test]
fn ten_times_capacity_for_a_minute() {
    simulate(|metrics| async move {
        let agent = spawn_agent("overload", MAX_PENDING, Some(CodelSettings::default())).await;
        let mut rng = SmallRng::seed_from_u64(10);
        let (mut unloaded, mut overload, mut flooded) = (Phase::new(), Phase::new(), Phase::new());

        // Unloaded (and warm-up): 10% of capacity for 30 s.
        let light = CAPACITY_PER_SECOND / 10;
        let minute = Duration::from_secs(60);
        phase(&agent, &mut rng, light, minute / 2, &metrics, &mut unloaded).await;
        assert_eq!((unloaded.overloaded, unloaded.other), (0, 0));
        let unloaded_p99 = unloaded.admitted.p99();
        let baseline = rss();

        // 10× capacity for 60 s.
        let heavy = 10 * CAPACITY_PER_SECOND;
        phase(&agent, &mut rng, heavy, minute, &metrics, &mut overload).await;
        let (arrivals, admitted) = (overload.arrivals(), overload.admitted.len());
        let loaded_p99 = overload.admitted.p99();
        let peak = overload.peak_rss;
        eprintln!(
            "unloaded: {} tasks, p99 {unloaded_p99:?}; 10× overload for 60 s: {arrivals} \
             arrivals, {admitted} admitted (p99 {loaded_p99:?}, at most {} at once), {} \
             overloaded ({} not immediate), {} other; RSS before {} KiB, peak {} KiB (+{} KiB, \
             bound +{} KiB)",
            unloaded.admitted.len(),
            overload.peak_inflight,
            overload.overloaded,
            overload.overloaded_late,
            overload.other,
            baseline / 1024,
            peak / 1024,
            peak.saturating_sub(baseline) / 1024,
            MEMORY_BOUND / 1024,
        );
        assert_eq!(arrivals, 60 * heavy);
        // The excess gets `Overloaded`, at once; nothing else fails; the bound holds.
        assert_eq!(overload.other, 0);
        assert_eq!(
            overload.overloaded_late, 0,
            "Overloaded answered after a wait"
        );
        assert_eq!(admitted + overload.overloaded, arrivals);
        assert!(overload.peak_inflight <= MAX_PENDING);
        // Shedding does not starve the agent: it keeps serving near its capacity.
        assert!(
            admitted >= 60 * CAPACITY_PER_SECOND * 8 / 10,
            "only {admitted} admitted"
        );
        // Admitted tasks keep their latency.
        assert!(
            loaded_p99 <= 2 * unloaded_p99,
            "admitted p99 {loaded_p99:?} > 2 × unloaded p99 {unloaded_p99:?}"
        );
        assert!(
            peak <= baseline + MEMORY_BOUND,
            "peak RSS {peak} B > {baseline} B + {MEMORY_BOUND} B"
        );
        // The metrics agree.
        let succeeded = admitted + unloaded.admitted.len();
        assert_eq!(tasks_total(&metrics, "overload", "succeeded"), succeeded);
        assert_eq!(
            tasks_total(&metrics, "overload", "overloaded"),
            overload.overloaded
        );
        agent.stop();

        // Control: the same overload, for 10 s, against a queue 100× the pool. It admits what
        // it cannot serve in time and its admitted p99 leaves the bound: the bound above is
        // admission control's doing, and this measurement sees it fail when it is missing.
        let deep = spawn_agent("deep_queue", 100 * WORKERS, None).await;
        phase(&deep, &mut rng, heavy, minute / 6, &metrics, &mut flooded).await;
        let deep_p99 = flooded.admitted.p99();
        eprintln!(
            "control, max_pending {}: {} admitted, p99 {deep_p99:?}",
            100 * WORKERS,
            flooded.admitted.len()
        );
        assert!(deep_p99 > 2 * unloaded_p99);
        deep.stop();
    });
}
