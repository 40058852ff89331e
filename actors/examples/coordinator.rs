//! The seed's "Protecting Task Execution in Coordinator", "Protecting Protocol Messages" and
//! `HealthCheck`, with agents that talk only by message.
//!
//! - The **coordinator** is a plain ractor actor. It sends each task to the agent for its
//!   operation as `AgentMsg::Submit(envelope, ReplyTo::to_actor(&myself, …))`, and each outcome
//!   comes back as one of its own messages: its `handle()` never awaits.
//! - The **timeout manager** is one [`TimeoutActor`] with a `PerOperation` policy (a default,
//!   overrides for `plan` and `summarize`, a slow-operation threshold) and hooks that print every
//!   slow and every timed-out call; the `llm` and `search` agents share it.
//! - **Protocol messages**: the `planner` agent asks the `search` agent by message
//!   (`ractor::call!` with an envelope that carries the task's id, remaining deadline and
//!   "retried upstream"). `search` admits one task at a time; when it is full it answers
//!   `Overloaded` at once, and the planner's retry treats that as the seed's
//!   `ErrTooManyRequests`: retryable, after its backoff (20, 40, then 80 ms).
//! - `health_check()` reads each breaker's published state (no message): `ok` while all are
//!   Closed, `degraded` listing each breaker that is Open (or HalfOpen, probing).
//!
//! The run: normal tasks (one slow, one timed out) with health `ok`; three plans at once, two of
//! which find `search` busy and retry; then the `llm` backend goes down, three failures open its
//! breaker, health turns `degraded` and calls to it are refused at once while `search` keeps
//! working; then the backend recovers, the open period ends, a probe succeeds and health is `ok`
//! again. Durations are scaled to milliseconds.
//!
//! ```sh
//! cargo run --example coordinator
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_resilience::agent::{
    Agent, AgentBuilder, AgentHandle, AgentMsg, AttemptError, CallError, ErrorClass, Outcome,
};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::{TaskContext, TaskEnvelope};
use ractor_resilience::timeout::{
    OperationTimeouts, TimeoutActor, TimeoutHandle, TimeoutHooks, TimeoutPolicy,
};
use tokio::sync::mpsc;

// ===== a dependency =====

/// A task for a dependency: a named operation that takes `work` to complete.
#[derive(Debug, Clone)]
struct TaskRequest {
    operation: String,
    work: Duration,
}

impl TaskRequest {
    fn new(operation: &str, work_ms: u64) -> Self {
        TaskRequest {
            operation: operation.into(),
            work: Duration::from_millis(work_ms),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BackendError {
    #[error("backend is down")]
    Down,
    #[error("abandoned")]
    Abandoned,
}

/// A backend the coordinator depends on; `down` simulates an outage.
struct Backend {
    down: Arc<AtomicBool>,
}

impl Agent for Backend {
    type Task = TaskRequest;
    type Output = String;
    type Error = BackendError;

    async fn handle(&mut self, req: TaskRequest, ctx: TaskContext) -> Result<String, BackendError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(BackendError::Down);
        }
        tokio::select! {
            () = tokio::time::sleep(req.work) => Ok(format!("{} done", req.operation)),
            () = ctx.cancel().cancelled() => Err(BackendError::Abandoned),
        }
    }
}

// ===== an agent that asks another agent by message =====

#[derive(Debug, thiserror::Error)]
enum PlanError {
    /// The seed's `ErrTooManyRequests`: the downstream agent is full.
    #[error("search is busy: {0}")]
    Busy(String),
    #[error("search failed: {0}")]
    Search(String),
}

/// Plans by asking the `search` agent first.
struct Planner {
    search: ActorRef<AgentMsg<Backend>>,
}

impl Agent for Planner {
    type Task = TaskRequest;
    type Output = String;
    type Error = PlanError;

    async fn handle(&mut self, req: TaskRequest, ctx: TaskContext) -> Result<String, PlanError> {
        // The envelope carries this task's id, remaining deadline and "retried upstream", so
        // that `search` does not retry what this agent already retries.
        let lookup = ctx.downstream(TaskRequest::new("search", 30));
        let answer = ractor::call!(self.search, |port| AgentMsg::Submit(
            lookup,
            ReplyTo::from(port)
        ))
        .map_err(|e| PlanError::Search(e.to_string()))?;
        match answer {
            Ok(found) => Ok(format!(
                "{} using {found} (attempt {})",
                req.operation, ctx.attempt
            )),
            Err(busy @ CallError::Overloaded { .. }) => Err(PlanError::Busy(busy.to_string())),
            Err(other) => Err(PlanError::Search(other.to_string())),
        }
    }

    fn classify(error: &PlanError) -> ErrorClass {
        match error {
            PlanError::Busy(_) => ErrorClass::TRANSIENT,
            PlanError::Search(_) => ErrorClass::PERMANENT,
        }
    }
}

// ===== the coordinator: a plain actor =====

/// The seed's `HealthStatus`.
#[derive(Debug)]
struct HealthStatus {
    status: &'static str,
    errors: Vec<String>,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "health: {}", self.status)?;
        for error in &self.errors {
            write!(f, "\n          - {error}")?;
        }
        Ok(())
    }
}

enum CoordinatorMsg {
    /// The seed's `ExecuteTask`: send it to the agent of its operation, by message.
    Execute(TaskRequest),
    /// An outcome, delivered by the agent as this actor's own message.
    Done(String, Result<String, String>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for CoordinatorMsg {}

struct Coordinator;

struct Dependencies {
    llm: AgentHandle<Backend>,
    search: AgentHandle<Backend>,
    planner: AgentHandle<Planner>,
    /// Tells `main` that a task has finished.
    finished: mpsc::UnboundedSender<()>,
}

/// The outcome as the coordinator prints it.
fn printable<A: Agent>(outcome: Outcome<A>) -> Result<A::Output, String> {
    outcome.map_err(|e| match e {
        CallError::Failed {
            source: AttemptError::Agent(e),
            attempts,
        } => format!("{e} (after {attempts} attempt(s))"),
        other => other.to_string(),
    })
}

impl Actor for Coordinator {
    type Msg = CoordinatorMsg;
    type State = Dependencies;
    type Arguments = Dependencies;

    async fn pre_start(
        &self,
        _myself: ActorRef<CoordinatorMsg>,
        deps: Dependencies,
    ) -> Result<Dependencies, ActorProcessingErr> {
        Ok(deps)
    }

    async fn handle(
        &self,
        myself: ActorRef<CoordinatorMsg>,
        message: CoordinatorMsg,
        deps: &mut Dependencies,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CoordinatorMsg::Execute(req) => {
                let label = format!("{} ({:?} of work)", req.operation, req.work);
                let envelope = TaskEnvelope::new(req.clone()).with_operation(req.operation.clone());
                let done = move |outcome| CoordinatorMsg::Done(label, outcome);
                match req.operation.as_str() {
                    "search" => deps.search.actor().send_message(AgentMsg::Submit(
                        envelope,
                        ReplyTo::to_actor(&myself, move |o| done(printable::<Backend>(o))),
                    ))?,
                    "plan" => deps.planner.actor().send_message(AgentMsg::Submit(
                        envelope,
                        ReplyTo::to_actor(&myself, move |o| done(printable::<Planner>(o))),
                    ))?,
                    _ => deps.llm.actor().send_message(AgentMsg::Submit(
                        envelope,
                        ReplyTo::to_actor(&myself, move |o| done(printable::<Backend>(o))),
                    ))?,
                }
            }
            CoordinatorMsg::Done(label, outcome) => {
                match outcome {
                    Ok(output) => println!("task {label:<28} -> ok: {output}"),
                    Err(error) => println!("task {label:<28} -> error: {error}"),
                }
                let _ = deps.finished.send(());
            }
        }
        Ok(())
    }
}

/// The seed's `HealthCheck`: degraded while any breaker is not letting calls through.
fn health_check(breakers: &[&ractor_resilience::breaker::BreakerHandle]) -> HealthStatus {
    let mut errors = Vec::new();
    for breaker in breakers {
        match breaker.state() {
            BreakerState::Open | BreakerState::ForcedOpen => {
                errors.push(format!("circuit breaker `{}` is open", breaker.name()))
            }
            BreakerState::HalfOpen => errors.push(format!(
                "circuit breaker `{}` is half-open (probing)",
                breaker.name()
            )),
            BreakerState::Closed | BreakerState::Disabled => {}
        }
    }
    HealthStatus {
        status: if errors.is_empty() { "ok" } else { "degraded" },
        errors,
    }
}

/// The timeout manager: the seed's TimeoutManager (DefaultTimeout + SlowOperationThreshold +
/// callbacks), with per-operation deadlines.
async fn timeout_manager() -> Result<TimeoutHandle, Box<dyn std::error::Error>> {
    let manager = OperationTimeouts::new(Duration::from_millis(150))
        .with_operation("plan", Duration::from_millis(60))
        .with_operation("summarize", Duration::from_millis(300))
        .with_slow_operation_threshold(Duration::from_millis(100));
    let hooks = TimeoutHooks::new()
        .on_slow(|operation, took| {
            println!("  [on_slow]    operation `{operation}` was slow: {took:.0?}")
        })
        .on_timeout(|operation, waited| {
            println!("  [on_timeout] operation `{operation}` timed out after {waited:.0?}")
        });
    Ok(TimeoutActor::spawn("coordinator", TimeoutPolicy::PerOperation(manager), hooks).await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let timeouts = timeout_manager().await?;
    let breaker = BreakerSettings::builder()
        .with_max_failures(3)
        .with_open_duration(Duration::from_millis(300))
        .build()?;
    // The coordinator reports failures to its caller instead of retrying them.
    let no_retry = RetryPolicy::builder().with_max_attempts(1).build()?;
    let llm_down = Arc::new(AtomicBool::new(false));
    let llm = AgentBuilder::new("llm", {
        let down = llm_down.clone();
        move || Backend { down: down.clone() }
    })
    .breaker_settings("llm", breaker.clone())
    .retry_policy("coordinator", no_retry.clone())
    .timeout(timeouts.clone())
    .spawn()
    .await?;
    // One task at a time: a second one is answered `Overloaded` at once.
    let search = AgentBuilder::new("search", || Backend {
        down: Arc::new(AtomicBool::new(false)),
    })
    .workers(1)
    .max_pending(1)
    .breaker_settings("search", breaker)
    .retry_policy("coordinator", no_retry)
    .timeout(timeouts.clone())
    .spawn()
    .await?;
    // The seed's "Protecting Protocol Messages" (scaled): 4 attempts, 20 ms doubling, no jitter.
    let protocol = RetryPolicy::builder()
        .with_max_attempts(4)
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(100))
        .without_jitter()
        .build()?;
    let planner = AgentBuilder::new("planner", {
        let search = search.actor().clone();
        move || Planner {
            search: search.clone(),
        }
    })
    .workers(3)
    .retry_policy("protocol", protocol)
    .spawn()
    .await?;
    let (finished, mut done) = mpsc::unbounded_channel();
    let (coordinator, _) = Actor::spawn(
        None,
        Coordinator,
        Dependencies {
            llm: llm.clone(),
            search: search.clone(),
            planner: planner.clone(),
            finished,
        },
    )
    .await?;
    let breakers = [llm.breaker(), search.breaker()];
    // Sends tasks by message and waits until each has printed its outcome.
    let run = |tasks: Vec<TaskRequest>| {
        let n = tasks.len();
        for task in tasks {
            let _ = coordinator.send_message(CoordinatorMsg::Execute(task));
        }
        n
    };
    async fn settle(done: &mut mpsc::UnboundedReceiver<()>, n: usize, timeouts: &TimeoutHandle) {
        for _ in 0..n {
            let _ = done.recv().await;
        }
        // The timeout actor applies queued outcomes (and runs its hooks) before it answers.
        let _ = timeouts.status().await;
    }
    println!("{}", health_check(&breakers));

    println!(
        "\n== normal operation (timeouts: plan 60ms, summarize 300ms, default 150ms; slow > 100ms)"
    );
    for task in [
        TaskRequest::new("search", 30),
        TaskRequest::new("summarize", 180),
        TaskRequest::new("translate", 200),
        TaskRequest::new("summarize", 20),
    ] {
        let n = run(vec![task]);
        settle(&mut done, n, &timeouts).await;
    }
    println!("{}", health_check(&breakers));

    println!(
        "\n== three plans at once: `search` takes one task at a time, the others are told `overloaded` and retry"
    );
    let n = run((0..3).map(|_| TaskRequest::new("plan", 0)).collect());
    settle(&mut done, n, &timeouts).await;

    println!("\n== the llm backend goes down");
    llm_down.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        let n = run(vec![TaskRequest::new("summarize", 20)]);
        settle(&mut done, n, &timeouts).await;
        let _ = llm.breaker().status().await;
    }
    println!("{}", health_check(&breakers));
    let n = run(vec![
        TaskRequest::new("summarize", 20),
        TaskRequest::new("search", 30),
    ]);
    settle(&mut done, n, &timeouts).await;

    println!("\n== the llm backend recovers");
    llm_down.store(false, Ordering::Relaxed);
    let open_for = llm.breaker().status().await?.retry_after;
    let wait = open_for.unwrap_or_default() + Duration::from_millis(10);
    println!("waiting {wait:.0?} for the open period to end");
    tokio::time::sleep(wait).await;
    println!("{}", health_check(&breakers));
    let n = run(vec![TaskRequest::new("summarize", 20)]);
    settle(&mut done, n, &timeouts).await;
    let _ = llm.breaker().status().await;
    println!("{}", health_check(&breakers));

    if let Some(status) = timeouts.status().await {
        println!(
            "\ntimeout manager `{}`: {} calls, {} timed out, {} slow",
            status.name, status.samples, status.timeouts, status.slow_operations
        );
    }
    coordinator.stop(None);
    for agent in [&llm, &search] {
        agent.stop();
    }
    planner.stop();
    timeouts.actor().stop(None);
    Ok(())
}
