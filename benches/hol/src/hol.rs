//! `resilience-hol`: head-of-line blocking, measured on tokio's paused clock.
//!
//! The scenario of the front-door issue: 4 workers, lognormal service times (median 80 ms,
//! σ 1.0), Poisson arrivals at 70% utilisation, 4000 tasks. The same arrivals and service times
//! (one seeded draw) go through
//! - **the agent** (4 workers, its queue in plain FIFO mode so that nothing is shed, no retries,
//!   a breaker that never trips, a one-hour attempt timeout), and
//! - **ractor's factory** with queued routing (`QueuerRouting` + `DefaultQueue`), the reference
//!   behaviour,
//!
//! and both are compared with the **ideal M/G/k FIFO queue** computed from the same numbers: each
//! task, in arrival order, starts on the first worker to be free. A ratio of 1.0 means no task
//! waited behind a busy worker while another was idle.
//!
//! Prints one JSON object per line, `{"name", "value", "unit"}`: `hol_p50_ratio`,
//! `hol_p95_ratio`, `hol_p99_ratio` (agent ÷ ideal), `factory_hol_p{50,95,99}_ratio`, the
//! control `round_robin_hol_p{50,95,99}_ratio` (computed: each task pushed round robin into one
//! worker's own FIFO, as the pool did before workers pulled), and the milliseconds behind them. Everything runs on virtual time: the result is exact and the same
//! on every run with the same seed (`--seed N`, default 1).
//!
//! ```text
//! cargo build --release -p resilience-hol && target/release/resilience-hol
//! ```

use std::time::Duration;

use ractor::Actor;
use ractor::ActorProcessingErr;
use ractor::RpcReplyPort;
use ractor::factory::{
    Factory, FactoryArguments, FactoryRef, Job, Worker, WorkerId, queues, routing, worker_builder,
};
use ractor_resilience::agent::{Agent, AgentBuilder, ErrorClass};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::task::TaskContext;
use ractor_resilience::timeout::TimeoutPolicy;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

const WORKERS: usize = 4;
const TASKS: usize = 4000;
const MEDIAN_MS: f64 = 80.0;
const SIGMA: f64 = 1.0;
const UTILISATION: f64 = 0.7;

/// Arrival offsets and service times, in nanoseconds (whole milliseconds).
struct Workload {
    arrivals: Vec<u64>,
    services: Vec<u64>,
}

impl Workload {
    fn draw(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mean_service_s = MEDIAN_MS / 1000.0 * (SIGMA * SIGMA / 2.0).exp();
        let rate = UTILISATION * WORKERS as f64 / mean_service_s; // arrivals per second
        let mut t = 0.0f64;
        let (mut arrivals, mut services) = (Vec::new(), Vec::new());
        for _ in 0..TASKS {
            let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            t += -u.ln() / rate;
            // Whole milliseconds: tokio's timer has millisecond resolution, and the ideal queue
            // must see the very durations the paused clock runs.
            arrivals.push((t * 1e3).round() as u64 * 1_000_000);
            // Box–Muller for a standard normal.
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            services.push((MEDIAN_MS * (SIGMA * z).exp()).round().max(1.0) as u64 * 1_000_000);
        }
        Workload { arrivals, services }
    }

    /// The ideal M/G/k FIFO queue: in arrival order, each task starts on the first free worker.
    fn ideal_latencies(&self) -> Vec<u64> {
        let mut free = [0u64; WORKERS];
        self.arrivals
            .iter()
            .zip(&self.services)
            .map(|(&arrival, &service)| {
                let first = (0..WORKERS).min_by_key(|&w| free[w]).expect("workers");
                let start = arrival.max(free[first]);
                free[first] = start + service;
                start + service - arrival
            })
            .collect()
    }

    /// The control: each task pushed round robin into one worker's own FIFO, as the agent's pool
    /// did before workers pulled. Computed, not run: it shows what the figure looks like when
    /// tasks do wait behind busy workers.
    fn round_robin_latencies(&self) -> Vec<u64> {
        let mut free = [0u64; WORKERS];
        self.arrivals
            .iter()
            .zip(&self.services)
            .enumerate()
            .map(|(i, (&arrival, &service))| {
                let w = i % WORKERS;
                let start = arrival.max(free[w]);
                free[w] = start + service;
                start + service - arrival
            })
            .collect()
    }
}

// ===== the agent =====

/// Works for the task's service time.
struct Sleeper;

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

impl Agent for Sleeper {
    type Task = Duration;
    type Output = ();
    type Error = Never;

    async fn handle(&mut self, service: Duration, _ctx: TaskContext) -> Result<(), Never> {
        tokio::time::sleep(service).await;
        Ok(())
    }

    fn classify(_: &Never) -> ErrorClass {
        ErrorClass::PERMANENT
    }
}

async fn agent_latencies(w: &Workload) -> Vec<u64> {
    let agent = AgentBuilder::new("hol", || Sleeper)
        .workers(WORKERS)
        .max_pending(TASKS)
        .queue(None)
        .retry_policy(
            "hol",
            RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
        )
        .breaker_settings(
            "hol",
            BreakerSettings::builder()
                .with_max_failures(u32::MAX)
                .build()
                .unwrap(),
        )
        .timeout_policy("hol", TimeoutPolicy::Fixed(Duration::from_secs(3600)))
        .spawn()
        .await
        .expect("spawn the agent");
    let latencies = drive(w, |service| {
        let agent = agent.clone();
        async move { agent.call(service).await.is_ok() }
    })
    .await;
    agent.stop();
    latencies
}

// ===== ractor's factory, queued routing =====

struct FactoryWorker;

struct Work(Duration, RpcReplyPort<()>);

#[cfg(feature = "cluster")]
impl ractor::Message for Work {}

impl Worker for FactoryWorker {
    type Key = ();
    type Message = Work;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &FactoryRef<(), Work>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &FactoryRef<(), Work>,
        Job { msg, key, .. }: Job<(), Work>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let Work(service, reply) = msg;
        tokio::time::sleep(service).await;
        let _ = reply.send(());
        Ok(key)
    }
}

async fn factory_latencies(w: &Workload) -> Vec<u64> {
    let factory_def = Factory::<
        (),
        Work,
        (),
        FactoryWorker,
        routing::QueuerRouting<(), Work>,
        queues::DefaultQueue<(), Work>,
    >::default();
    let args = FactoryArguments::builder()
        .worker_builder(Box::new(worker_builder(|_wid| (FactoryWorker, ()))))
        .queue(Default::default())
        .router(Default::default())
        .num_initial_workers(WORKERS)
        .build();
    let (factory, _) = Actor::spawn(None, factory_def, args)
        .await
        .expect("spawn the factory");
    let latencies = drive(w, |service| {
        let factory = factory.clone();
        async move {
            factory
                .call_job((), |reply| Work(service, reply), None)
                .await
                .is_ok()
        }
    })
    .await;
    factory.stop(None);
    latencies
}

// ===== the driver =====

/// Submits each task at its arrival instant and returns each one's latency, in nanoseconds.
async fn drive<F, Fut>(w: &Workload, call: F) -> Vec<u64>
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(TASKS);
    for (&arrival, &service) in w.arrivals.iter().zip(&w.services) {
        tokio::time::sleep_until(t0 + Duration::from_nanos(arrival)).await;
        let call = call(Duration::from_nanos(service));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = call.await;
            (ok, started.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(TASKS);
    for task in tasks {
        let (ok, took) = task.await.expect("the task ran");
        assert!(ok, "a task failed: the scenario has no failures");
        latencies.push(took.as_nanos() as u64);
    }
    latencies
}

/// The nearest-rank quantile, in milliseconds.
fn quantile_ms(latencies: &[u64], q: f64) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

fn print(name: &str, value: f64, unit: &str) {
    println!(r#"{{"name":"{name}","value":{value:.4},"unit":"{unit}"}}"#);
}

/// The agent system's binary is built with tokio's `test-util` (for `simulate`), so every
/// `tokio::time::Instant::now()` of `run` checks whether the clock is paused. This binary has
/// `test-util` too: it times that read against `std::time::Instant::now()` on a runtime that
/// never paused, median of 9 rounds of 2 000 000 reads each.
fn test_util_clock_cost() {
    const READS: u32 = 2_000_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let per_read = |f: &dyn Fn() -> std::time::Instant| {
        let mut rounds: Vec<f64> = (0..9)
            .map(|_| {
                let t0 = std::time::Instant::now();
                let mut last = t0;
                for _ in 0..READS {
                    last = std::hint::black_box(f());
                }
                std::hint::black_box(last);
                t0.elapsed().as_nanos() as f64 / f64::from(READS)
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[4]
    };
    let (tokio_ns, std_ns) = rt.block_on(async {
        let tokio_ns = per_read(&|| tokio::time::Instant::now().into_std());
        let std_ns = per_read(&std::time::Instant::now);
        (tokio_ns, std_ns)
    });
    print("tokio_instant_now_test_util_ns", tokio_ns, "ns");
    print("std_instant_now_ns", std_ns, "ns");
    print("test_util_now_overhead_ns", tokio_ns - std_ns, "ns");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seed = 1;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--seed", Some(n)) => seed = n.parse().expect("--seed takes a number"),
            _ => {
                eprintln!("usage: resilience-hol [--seed N]");
                std::process::exit(2);
            }
        }
    }
    // First, before any runtime pauses its clock in this process (tokio keeps a process-wide
    // "a clock was paused" flag): what `test-util` costs a clock read that is never paused.
    test_util_clock_cost();
    let w = Workload::draw(seed);
    let ideal = w.ideal_latencies();
    let round_robin = w.round_robin_latencies();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let agent = rt.block_on(agent_latencies(&w));
    let factory = rt.block_on(factory_latencies(&w));
    for (q, label) in [(0.50, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let (i, a, f) = (
            quantile_ms(&ideal, q),
            quantile_ms(&agent, q),
            quantile_ms(&factory, q),
        );
        print(&format!("hol_{label}_ratio"), a / i, "ratio");
        print(&format!("factory_hol_{label}_ratio"), f / i, "ratio");
        let r = quantile_ms(&round_robin, q);
        print(&format!("round_robin_hol_{label}_ratio"), r / i, "ratio");
        print(&format!("hol_ideal_{label}_ms"), i, "ms");
        print(&format!("hol_agent_{label}_ms"), a, "ms");
        print(&format!("hol_factory_{label}_ms"), f, "ms");
    }
}
