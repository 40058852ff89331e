//! Supervision: a worker that panics is restarted by its agent's supervisor with a growing
//! backoff, a task that crashed its worker is retried on the restarted one, and crashing more
//! than `max_restarts` times escalates to the supervisor's own parent.
//!
//! 1. **Restart with backoff** — an agent making one attempt per task, so each crash is a call
//!    result: three crashes in a row, each followed by the supervisor's status (restarts, live
//!    workers) and how long the worker took to come back: a backoff of 100, 200, 400 ms (+0–25%
//!    jitter), plus the task's own 5 ms and scheduling.
//! 2. **Retry on the restarted worker** — an agent making up to 3 attempts: the task panics on
//!    its first attempt and succeeds on the second, on a fresh worker.
//! 3. **Escalation** — an agent spawned linked under a small parent actor, `max_restarts = 2`:
//!    the third crash stops the supervisor, the parent's `handle_supervisor_evt` is told
//!    (`ActorFailed`), and a later call returns `Unavailable`.
//!
//! The expected panics are kept out of the output by a panic hook.
//!
//! ```sh
//! cargo run --example supervision
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_resilience::agent::{
    Agent, AgentBuilder, AgentHandle, SupervisionSettings, SupervisorStatus,
};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::task::TaskContext;
use tokio::sync::mpsc;
use tokio::time::Instant;

const PANIC_PREFIX: &str = "simulated crash";

// ===== the agent =====

#[derive(Debug, Clone, Copy)]
enum Job {
    /// Panics on every attempt.
    Crash,
    /// Panics on the first attempt only.
    CrashOnce,
    /// Succeeds.
    Work,
}

#[derive(Debug, thiserror::Error)]
#[error("never returned: this agent only panics or succeeds")]
struct Never;

/// Each worker gets a fresh instance, numbered so the output shows which one ran a task.
struct Fragile {
    incarnation: u32,
}

impl Agent for Fragile {
    type Task = Job;
    type Output = String;
    type Error = Never;

    async fn handle(&mut self, job: Job, ctx: TaskContext) -> Result<String, Never> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match job {
            Job::Crash => panic!("{PANIC_PREFIX} (worker #{})", self.incarnation),
            Job::CrashOnce if ctx.attempt == 1 => {
                panic!("{PANIC_PREFIX} (worker #{})", self.incarnation)
            }
            Job::CrashOnce | Job::Work => Ok(format!(
                "done by worker #{} on attempt {}",
                self.incarnation, ctx.attempt
            )),
        }
    }
}

/// A factory numbering the workers it makes: 1 at spawn, 2 after the first restart, …
fn numbered() -> impl Fn() -> Fragile + Send + Sync + 'static {
    let made = Arc::new(AtomicU32::new(0));
    move || Fragile {
        incarnation: made.fetch_add(1, Ordering::Relaxed) + 1,
    }
}

/// An agent of one worker whose restart backoff starts at 100 ms.
fn builder(
    name: &str,
    attempts: u32,
    max_restarts: u32,
) -> Result<AgentBuilder<Fragile>, Box<dyn std::error::Error>> {
    let supervision = SupervisionSettings {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        reset_after: Duration::from_secs(30),
        max_restarts,
        restart_window: Duration::from_secs(60),
    };
    let retry = RetryPolicy::builder()
        .with_max_attempts(attempts)
        .with_initial_delay(Duration::from_millis(150))
        .without_jitter()
        .build()?;
    // Crashes count as breaker failures: keep the breaker out of this demo.
    let breaker = BreakerSettings::builder()
        .with_max_failures(1_000)
        .build()?;
    Ok(AgentBuilder::new(name, numbered())
        .workers(1)
        .retry_policy("demo", retry)
        .breaker_settings(name, breaker)
        .supervision(supervision)
        .seed(3))
}

// ===== helpers =====

/// The supervisor's counters, or `None` once it has stopped.
async fn status<A: Agent>(agent: &AgentHandle<A>) -> Option<SupervisorStatus> {
    agent.status().await
}

fn show(status: &SupervisorStatus) -> String {
    format!(
        "restarts = {}, live workers = {}",
        status.restarts, status.live_workers
    )
}

/// Waits until the worker is back; returns the supervisor's status then.
async fn worker_back<A: Agent>(agent: &AgentHandle<A>) -> Option<SupervisorStatus> {
    loop {
        let status = status(agent).await?;
        if status.live_workers > 0 {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Stops the agent and the breaker and timeout actors its builder spawned for it.
fn stop<A: Agent>(agent: &AgentHandle<A>) {
    agent.stop(); // also stops the breaker actor the builder spawned for it
}

/// Keeps the expected panics out of the output; any other panic is reported as usual.
fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if !message.is_some_and(|m| m.starts_with(PANIC_PREFIX)) {
            default(info);
        }
    }));
}

// ===== the parent =====

/// A parent actor that prints, and forwards, what it is told about its children.
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = mpsc::UnboundedSender<ActorId>;
    type Arguments = mpsc::UnboundedSender<ActorId>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        told: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(told)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        told: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(child, error) = event {
            println!(
                "  parent: ActorFailed from actor {}: {error}",
                child.get_id()
            );
            let _ = told.send(child.get_id());
        }
        Ok(())
    }
}

// ===== the run =====

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    quiet_expected_panics();

    println!("== 1. restart with backoff (one attempt per task)");
    let agent = builder("phoenix", 1, 10)?.spawn().await?;
    for crash in 1..=3 {
        let crashed_at = Instant::now();
        let outcome = agent.call(Job::Crash).await;
        println!("crash {crash}: call -> {outcome:?}");
        if let Some(s) = status(&agent).await {
            println!("  just after: {}", show(&s));
        }
        if let Some(s) = worker_back(&agent).await {
            let after = crashed_at.elapsed();
            println!("  restarted after {after:.0?}: {}", show(&s));
        }
    }
    println!("next call -> {:?}", agent.call(Job::Work).await);
    stop(&agent);

    println!("\n== 2. the crashed task is retried on the restarted worker (3 attempts)");
    let agent = builder("phoenix-retry", 3, 10)?.spawn().await?;
    let started = Instant::now();
    let outcome = agent.call(Job::CrashOnce).await;
    println!("call -> {outcome:?} after {:.0?}", started.elapsed());
    if let Some(s) = status(&agent).await {
        println!("  supervisor: {}", show(&s));
    }
    stop(&agent);

    println!("\n== 3. escalation past max_restarts = 2 (spawned linked under a parent)");
    let (told, mut parent_was_told) = mpsc::unbounded_channel();
    let (parent, _) = Actor::spawn(None, Parent, told).await?;
    let agent = builder("fragile", 1, 2)?
        .spawn_linked(parent.get_cell())
        .await?;
    for crash in 1..=3 {
        let outcome = agent.call(Job::Crash).await;
        println!("crash {crash}: call -> {outcome:?}");
        match worker_back(&agent).await {
            Some(s) => println!("  worker back: {}", show(&s)),
            None => println!("  the supervisor has stopped"),
        }
    }
    if let Some(child) = parent_was_told.recv().await {
        let is_supervisor = child == agent.actor().get_id();
        println!(
            "the parent was told that actor {child} failed (agent `fragile`'s supervisor: {is_supervisor})"
        );
    }
    println!("later call -> {:?}", agent.call(Job::Work).await);

    stop(&agent);
    parent.stop(None);
    Ok(())
}
