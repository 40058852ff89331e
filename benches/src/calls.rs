//! What is called: a bare no-op ractor actor, the same no-op work behind the supervised stack
//! (healthy, and with its breaker open), and how calls are timed — one caller for latency,
//! many for throughput.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, CallError, CallOptions};
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::task::TaskContext;

use crate::stats;

/// The admission bound of every benchmarked agent: above the largest caller count (1024), so
/// that no call is turned away with `Overloaded` (the default, 1000, would refuse 24 of 1024
/// callers at once and inflate the throughput with instant refusals).
pub(crate) const MAX_PENDING: usize = 4096;

// ===== the bare baseline =====

/// A no-op ractor actor: answers every ping at once.
#[derive(Debug)]
pub(crate) struct BareWorker;

/// The bare worker's only message.
#[derive(Debug)]
pub(crate) enum BareMsg {
    /// Answer `()` at once.
    Ping(RpcReplyPort<()>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for BareMsg {}

impl Actor for BareWorker {
    type Msg = BareMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let BareMsg::Ping(reply) = message;
        let _ = reply.send(());
        Ok(())
    }
}

/// Spawns one bare worker.
pub(crate) async fn spawn_bare() -> ActorRef<BareMsg> {
    let (actor, _) = Actor::spawn(None, BareWorker, ())
        .await
        .expect("spawn the bare worker");
    actor
}

// ===== the supervised stack =====

/// The no-op agent: `handle` answers at once; `true` asks it to fail (only used to trip a
/// breaker open).
#[derive(Debug)]
pub(crate) struct Noop;

impl Agent for Noop {
    type Task = bool;
    type Output = ();
    type Error = io::Error;

    async fn handle(&mut self, fail: bool, _ctx: TaskContext) -> Result<(), io::Error> {
        if fail {
            Err(io::Error::other("induced failure"))
        } else {
            Ok(())
        }
    }
}

/// A supervised no-op agent with the default policies (breaker, retry, 30 s fixed timeout,
/// supervision) and a pool of `workers`. Names must be unique in the process (the supervisor
/// registers `agent:{name}`).
pub(crate) async fn spawn_stack(name: &str, workers: usize) -> AgentHandle<Noop> {
    AgentBuilder::new(name, || Noop)
        .workers(workers)
        .max_pending(MAX_PENDING)
        .spawn()
        .await
        .expect("spawn the supervised agent")
}

/// A supervised no-op agent (pool of 1) whose breaker has been tripped Open by real failures.
/// Default policies except the open period, one hour, so that the breaker stays Open for the
/// whole run (Open decides from the published snapshot and the clock either way).
pub(crate) async fn spawn_open_stack(name: &str) -> AgentHandle<Noop> {
    let settings = BreakerSettings::builder()
        .with_open_duration(Duration::from_secs(3600))
        .build()
        .expect("valid breaker settings");
    let agent = AgentBuilder::new(name, || Noop)
        .workers(1)
        .max_pending(MAX_PENDING)
        .breaker_settings(name, settings)
        .spawn()
        .await
        .expect("spawn the supervised agent");
    let once = CallOptions {
        retried_upstream: true,
        ..CallOptions::default()
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while agent.breaker().state() != BreakerState::Open {
        assert!(Instant::now() < give_up, "the breaker did not open");
        if agent.call_with(true, once.clone()).await.is_ok() {
            panic!("an induced failure succeeded");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    agent
}

/// Stops an agent and the actors its builder spawned for it.
pub(crate) fn stop_stack(agent: &AgentHandle<Noop>) {
    agent.stop();
}

// ===== callers =====

/// One way of making a call; each concurrent caller owns a clone.
pub(crate) trait Caller: Clone + Send + 'static {
    /// Makes one call and checks its outcome (a wrong outcome aborts the run).
    fn call(&mut self) -> impl Future<Output = ()> + Send;
}

/// `call!` to the bare worker.
#[derive(Debug, Clone)]
pub(crate) struct BareCaller(pub(crate) ActorRef<BareMsg>);

impl Caller for BareCaller {
    async fn call(&mut self) {
        if let Err(e) = ractor::call!(self.0, BareMsg::Ping) {
            panic!("bare call failed: {e}");
        }
    }
}

/// `AgentHandle::call` on a healthy stack: must succeed.
#[derive(Debug, Clone)]
pub(crate) struct StackCaller(pub(crate) AgentHandle<Noop>);

impl Caller for StackCaller {
    async fn call(&mut self) {
        if let Err(e) = self.0.call(false).await {
            panic!("stack call failed: {e}");
        }
    }
}

/// `AgentHandle::call` on a stack whose breaker is open: must be rejected.
#[derive(Debug, Clone)]
pub(crate) struct RejectCaller(pub(crate) AgentHandle<Noop>);

impl Caller for RejectCaller {
    async fn call(&mut self) {
        match self.0.call(false).await {
            Err(CallError::Rejected { .. }) => {}
            other => panic!("expected a rejection from the open breaker, got {other:?}"),
        }
    }
}

// ===== timing =====

/// The p50 latency in ns of `calls` sequential calls by one caller task.
pub(crate) async fn p50_ns<C: Caller>(caller: C, calls: usize) -> f64 {
    p50_p99_ns(caller, calls).await.0
}

/// The p50 and p99 latencies in ns of `calls` sequential calls by one caller task.
pub(crate) async fn p50_p99_ns<C: Caller>(mut caller: C, calls: usize) -> (f64, f64) {
    let task = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            caller.call().await;
            samples.push(t.elapsed().as_nanos() as u64);
        }
        let p50 = stats::quantile(&mut samples, 0.5);
        (p50, stats::quantile(&mut samples, 0.99))
    });
    task.await.expect("the latency task panicked")
}

/// Calls per second completed by `callers` concurrent caller tasks during `window`.
///
/// Every caller waits at a barrier, then calls in a loop; a call counts if it completed before
/// the window closed (the calls still in flight then are not counted). The window is closed by
/// a plain thread, not a tokio timer: a caller whose calls never wait (a rejection decided
/// synchronously) never yields its worker, and a tokio timer would then never fire.
pub(crate) async fn throughput<C: Caller>(caller: &C, callers: usize, window: Duration) -> f64 {
    let barrier = Arc::new(tokio::sync::Barrier::new(callers + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let mut caller = caller.clone();
        let (barrier, stop, done) = (barrier.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut n = 0u64;
            loop {
                caller.call().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                n += 1;
            }
            done.fetch_add(n, Ordering::Relaxed);
        }));
    }
    barrier.wait().await;
    let t0 = Instant::now();
    let timer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(window);
            stop.store(true, Ordering::Relaxed);
            t0.elapsed()
        })
    };
    for task in tasks {
        task.await.expect("a caller task panicked");
    }
    let elapsed = timer.join().expect("the window thread panicked");
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}
