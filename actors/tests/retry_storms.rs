//! Retry storms, on tokio's paused clock: a chain of real agents A → B → C → D where D is down
//! (every call fails, retryably) and A, B and C each allow 3 attempts. Each layer's `handle`
//! calls the next agent with `CallOptions::from_envelope(&ctx.downstream(task))`, so the
//! "retry at one layer" flag travels in the task envelope. 1000 requests at 100/s; the breakers
//! never open, so the retries alone decide D's load.
//!
//! - naive nesting (the flag dropped at every hop): D receives exactly 3 × 3 × 3 = 27 requests
//!   per original request — the baseline that shows the measurement can see a storm;
//! - the flag propagated: only A retries, D receives ≤ 3 per request (exactly 3 here);
//! - the flag and one 10% retry budget shared by A, B and C: D receives ≤ 1.1 × the requests
//!   plus what the budget's reserve can fund over the test window;
//! - that budget without the flag: every hop deposits and retries, so retries stay within 10% of
//!   all admissions plus the reserve — bounded, but above 1.1×.
//!
//! Each case also reads `resilience_retry_amplification_ratio{policy}` (attempts ÷ first
//! attempts) from a Prometheus recorder: one gauge per layer, whose product along the chain is
//! D's load multiplier. The gauge is per policy and process-wide, so each case names its own
//! policies.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, CallError, CallOptions};
use ractor_resilience::budget::SharedBudget;
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::core::budget::BudgetSettings;
use ractor_resilience::task::TaskContext;

/// How a layer passes the task down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// `CallOptions::from_envelope(&ctx.downstream(task))`: id, deadline and the flag.
    Envelope,
    /// Same id and deadline, but `retried_upstream: false`: every layer retries on its own.
    Naive,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
struct HopError(String);

/// One layer of the chain: calls `next`, or (D, the end of the chain) fails after 1 ms.
struct Hop {
    next: Option<AgentHandle<Hop>>,
    propagation: Propagation,
    /// Calls this layer's workers received (attempts that reached the agent's code).
    received: Arc<AtomicU64>,
}

impl Agent for Hop {
    /// The original request's number, passed down the chain.
    type Task = u64;
    type Output = ();
    type Error = HopError;

    async fn handle(&mut self, task: u64, ctx: TaskContext) -> Result<(), HopError> {
        self.received.fetch_add(1, Ordering::Relaxed);
        let Some(next) = &self.next else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Err(HopError("503 from D".into()));
        };
        let envelope = ctx.downstream(task);
        let mut opts = CallOptions::from_envelope(&envelope);
        if self.propagation == Propagation::Naive {
            opts.retried_upstream = false;
        }
        next.call_with(envelope.task, opts)
            .await
            .map_err(|e: CallError<HopError>| HopError(e.to_string()))
    }
    // Default classification: every error is transient (retryable, counted by the breaker).
}

fn three_attempts() -> RetryPolicy {
    RetryPolicy::builder()
        .with_max_attempts(3)
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// The breakers never open: the retries alone decide D's load.
fn never_trips() -> BreakerSettings {
    BreakerSettings::builder()
        .with_max_failures(u32::MAX)
        .build()
        .unwrap()
}

struct Chain {
    a: AgentHandle<Hop>,
    b: AgentHandle<Hop>,
    c: AgentHandle<Hop>,
    d: AgentHandle<Hop>,
    d_received: Arc<AtomicU64>,
}

impl Chain {
    /// Spawns D, then C, B and A on top of it. The layers' retry policies are named
    /// `<case>_a`, `<case>_b`, `<case>_c` (the gauge's label).
    async fn spawn(case: &str, propagation: Propagation, budget: Option<SharedBudget>) -> Chain {
        let d_received = Arc::new(AtomicU64::new(0));
        let received = d_received.clone();
        let d = AgentBuilder::new("d", move || Hop {
            next: None,
            propagation,
            received: received.clone(),
        })
        .workers(64)
        .max_pending(1_000_000)
        .retry_policy(
            format!("{case}_d"),
            RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
        )
        .breaker_settings("d", never_trips())
        .spawn()
        .await
        .unwrap();
        let layer = |name: &'static str, next: AgentHandle<Hop>| {
            let mut builder = AgentBuilder::new(name, move || Hop {
                next: Some(next.clone()),
                propagation,
                received: Arc::new(AtomicU64::new(0)),
            })
            .workers(256)
            .max_pending(1_000_000)
            .retry_policy(format!("{case}_{name}"), three_attempts())
            .breaker_settings(name, never_trips());
            if let Some(budget) = &budget {
                builder = builder.budget(budget.clone());
            }
            builder.spawn()
        };
        let c = layer("c", d.clone()).await.unwrap();
        let b = layer("b", c.clone()).await.unwrap();
        let a = layer("a", b.clone()).await.unwrap();
        Chain {
            a,
            b,
            c,
            d,
            d_received,
        }
    }

    /// Sends `requests` to A, `per_second` of them per second, and waits for every outcome.
    /// Returns the test window: from the first request to the last outcome.
    async fn run(&self, requests: u64, per_second: u64) -> Duration {
        let t0 = tokio::time::Instant::now();
        let gap = Duration::from_secs(1) / per_second as u32;
        let mut calls = Vec::with_capacity(requests as usize);
        for n in 0..requests {
            let a = self.a.clone();
            calls.push(tokio::spawn(async move { a.call(n).await }));
            tokio::time::sleep(gap).await;
        }
        for call in calls {
            assert!(call.await.unwrap().is_err(), "D is down: nothing succeeds");
        }
        t0.elapsed()
    }

    /// Requests D received, checked against D's own attempt counter.
    fn d_received(&self) -> u64 {
        let received = self.d_received.load(Ordering::Relaxed);
        assert_eq!(self.d.stats().attempts, received);
        received
    }

    fn stop(&self) {
        for agent in [&self.a, &self.b, &self.c, &self.d] {
            agent.stop();
        }
    }
}

/// `resilience_retry_amplification_ratio{policy="<policy>"}` from an exposition.
fn amplification(metrics: &PrometheusHandle, policy: &str) -> f64 {
    let prefix = format!("resilience_retry_amplification_ratio{{policy=\"{policy}\"}} ");
    // Attempts are counted in place by the workers: published before reading.
    ractor_resilience::metrics::publish();
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("no amplification gauge for {policy}"))
}

/// Runs `body` on a paused current-thread runtime with a Prometheus recorder of its own.
fn simulate<F: std::future::Future<Output = ()>>(body: impl FnOnce(PrometheusHandle) -> F) {
    support::paused_with_recorder(PrometheusBuilder::new().build_recorder(), body);
}

const REQUESTS: u64 = 1000;
const PER_SECOND: u64 = 100;

/// The three layers' gauges, and checks that their product is D's load multiplier.
fn layer_gauges(metrics: &PrometheusHandle, case: &str, received: u64) -> [f64; 3] {
    let gauges = ["a", "b", "c"].map(|layer| amplification(metrics, &format!("{case}_{layer}")));
    let product: f64 = gauges.iter().product();
    let multiplier = received as f64 / REQUESTS as f64;
    assert!(
        (product - multiplier).abs() < 1e-9,
        "the gauges {gauges:?} multiply to {product}, D saw {multiplier}×"
    );
    assert_eq!(amplification(metrics, &format!("{case}_d")), 1.0);
    gauges
}

#[test]
fn naive_nesting_multiplies_the_load_on_d_by_27() {
    simulate(|metrics| async move {
        let chain = Chain::spawn("naive", Propagation::Naive, None).await;
        chain.run(REQUESTS, PER_SECOND).await;
        let received = chain.d_received();
        let gauges = layer_gauges(&metrics, "naive", received);
        eprintln!(
            "naive nesting: D received {received} for {REQUESTS} requests; per layer {gauges:?}"
        );
        assert_eq!(received, 27 * REQUESTS, "3 × 3 × 3 attempts reach D");
        assert_eq!(gauges, [3.0, 3.0, 3.0]);
        chain.stop();
    });
}

#[test]
fn retry_at_one_layer_caps_the_load_on_d_at_3() {
    simulate(|metrics| async move {
        let chain = Chain::spawn("flag", Propagation::Envelope, None).await;
        chain.run(REQUESTS, PER_SECOND).await;
        let received = chain.d_received();
        let gauges = layer_gauges(&metrics, "flag", received);
        eprintln!(
            "retry at one layer: D received {received} for {REQUESTS} requests; per layer {gauges:?}"
        );
        assert!(received <= 3 * REQUESTS, "{received} > 3 × {REQUESTS}");
        assert_eq!(gauges, [3.0, 1.0, 1.0], "only A retries");
        chain.stop();
    });
}

/// 10% of requests, a reserve of 1 retry per second, deposits counting for 10 s.
fn ten_percent() -> BudgetSettings {
    BudgetSettings::new(Duration::from_secs(10), 1, 0.1).unwrap()
}

/// The most retries the reserve can fund over `window`: `min_per_second × ttl` tokens at any
/// time, each spent one back once its retry leaves the budget's window (after at least `ttl`).
fn reserve_over(settings: BudgetSettings, window: Duration) -> u64 {
    (f64::from(settings.min_per_second()) * (settings.ttl() + window).as_secs_f64()).ceil() as u64
}

#[test]
fn a_shared_budget_caps_the_load_on_d_at_1_1_plus_the_reserve() {
    simulate(|metrics| async move {
        let budget = SharedBudget::new(ten_percent());
        let chain = Chain::spawn("budget", Propagation::Envelope, Some(budget)).await;
        let window = chain.run(REQUESTS, PER_SECOND).await;
        let received = chain.d_received();
        let gauges = layer_gauges(&metrics, "budget", received);
        let reserve = reserve_over(ten_percent(), window);
        let bound = REQUESTS + REQUESTS / 10 + reserve;
        eprintln!(
            "retry at one layer + shared 10% budget: D received {received} for {REQUESTS} \
             requests over {window:?} (bound {bound} = 1.1 × {REQUESTS} + reserve {reserve}); \
             per layer {gauges:?}"
        );
        assert!(received <= bound, "{received} > {bound}");
        assert!(received > REQUESTS, "the budget allows some retries");
        assert_eq!(gauges[1..], [1.0, 1.0], "only A retries");
        chain.stop();
    });
}

/// Without the flag every layer retries and every layer's admissions deposit into the shared
/// budget, so it allows 10% of the requests *per hop*: still bounded (retries ≤ 10% of all
/// admissions plus the reserve), far from 27×, but above 1.1× — the flag is what makes the
/// budget count original requests only.
#[test]
fn a_shared_budget_without_the_flag_still_bounds_the_storm() {
    simulate(|metrics| async move {
        let budget = SharedBudget::new(ten_percent());
        let chain = Chain::spawn("budget_naive", Propagation::Naive, Some(budget)).await;
        let window = chain.run(REQUESTS, PER_SECOND).await;
        let received = chain.d_received();
        let gauges = layer_gauges(&metrics, "budget_naive", received);
        // Every D request is an original request or follows exactly one retry somewhere.
        let retries = chain.a.stats().retries + chain.b.stats().retries + chain.c.stats().retries;
        assert_eq!(received, REQUESTS + retries);
        // Admissions: the requests at A, one per A attempt at B, one per B attempt at C.
        let deposits = REQUESTS + chain.a.stats().attempts + chain.b.stats().attempts;
        let reserve = reserve_over(ten_percent(), window);
        eprintln!(
            "naive nesting + shared 10% budget: D received {received} for {REQUESTS} requests \
             ({retries} retries for {deposits} admissions, reserve {reserve}); per layer {gauges:?}"
        );
        assert!(retries <= deposits / 10 + reserve, "{retries} retries");
        assert!(received < 2 * REQUESTS);
        chain.stop();
    });
}

/// The flag must survive a layer that does not retry because of it: B, told that A retries,
/// makes one attempt, and must in turn tell C that a layer above retries (otherwise C retries
/// again and the chain amplifies 3 × 1 × 3 = 9 instead of 3).
#[test]
fn the_flag_survives_a_layer_that_does_not_retry() {
    struct Peek(tokio::sync::mpsc::UnboundedSender<bool>);
    impl Agent for Peek {
        type Task = ();
        type Output = ();
        type Error = HopError;
        async fn handle(&mut self, task: (), ctx: TaskContext) -> Result<(), HopError> {
            let _ = self.0.send(ctx.downstream(task).retried_upstream);
            Ok(())
        }
    }
    simulate(|_| async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let b = AgentBuilder::new("b", move || Peek(tx.clone()))
            .retry_policy("peek", three_attempts())
            .spawn()
            .await
            .unwrap();
        let upstream_retries = CallOptions {
            retried_upstream: true,
            ..CallOptions::default()
        };
        b.call_with((), upstream_retries).await.unwrap();
        b.call(()).await.unwrap();
        assert_eq!(
            (rx.recv().await, rx.recv().await),
            (Some(true), Some(true)),
            "retried upstream, or retried here: either way the next layer must not retry"
        );
        b.stop();
    });
}
