//! The seed's "Protecting Task Execution in Coordinator" and its `HealthCheck`: a coordinator
//! runs each task under a per-operation timeout manager and reports its health from the state
//! of the circuit breakers guarding its dependencies.
//!
//! - The timeout manager is one [`TimeoutActor`] with a `PerOperation` policy (a default,
//!   overrides for `plan` and `summarize`, a slow-operation threshold) and hooks that print
//!   `(operation, duration)` for every slow and every timed-out call. Both dependency agents
//!   (`llm` and `search`) share it, so each attempt gets its operation's deadline.
//! - `health_check()` reads each breaker's published state (no message): `ok` while all are
//!   Closed, `degraded` listing each breaker that is Open (or HalfOpen, probing).
//!
//! The run: normal tasks (one slow, one timed out) with health `ok`; then the `llm` backend
//! goes down, three failures open its breaker, health turns `degraded` and calls to it are
//! refused at once while `search` keeps working; then the backend recovers, the open period
//! ends, a probe succeeds and health is `ok` again. Durations are scaled to milliseconds.
//!
//! ```sh
//! cargo run --example coordinator
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, CallError, CallOptions};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::task::TaskContext;
use ractor_resilience::timeout::{
    OperationTimeouts, TimeoutActor, TimeoutHandle, TimeoutHooks, TimeoutPolicy,
};

// ===== a dependency =====

/// A task for a dependency: a named operation that takes `work` to complete.
#[derive(Debug, Clone)]
struct TaskRequest {
    operation: &'static str,
    work: Duration,
}

impl TaskRequest {
    const fn new(operation: &'static str, work_ms: u64) -> Self {
        TaskRequest {
            operation,
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
            () = ctx.cancel.cancelled() => Err(BackendError::Abandoned),
        }
    }
}

// ===== the coordinator =====

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

/// Runs tasks on its dependencies under one per-operation timeout manager.
struct Coordinator {
    timeouts: TimeoutHandle,
    llm: AgentHandle<Backend>,
    search: AgentHandle<Backend>,
}

impl Coordinator {
    async fn spawn(llm_down: Arc<AtomicBool>) -> Result<Self, Box<dyn std::error::Error>> {
        // The seed's TimeoutManager: DefaultTimeout + SlowOperationThreshold + callbacks, with
        // per-operation deadlines instead of one per call site.
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
        let timeouts =
            TimeoutActor::spawn("coordinator", TimeoutPolicy::PerOperation(manager), hooks).await?;

        let breaker = BreakerSettings::builder()
            .with_max_failures(3)
            .with_open_duration(Duration::from_millis(300))
            .build()?;
        // The coordinator reports failures to its caller instead of retrying them.
        let no_retry = RetryPolicy::builder().with_max_attempts(1).build()?;
        let search_down = Arc::new(AtomicBool::new(false));
        let llm = AgentBuilder::new("llm", move || Backend {
            down: llm_down.clone(),
        })
        .breaker_settings("llm", breaker.clone())
        .retry_policy("coordinator", no_retry.clone())
        .timeout(timeouts.clone())
        .spawn()
        .await?;
        let search = AgentBuilder::new("search", move || Backend {
            down: search_down.clone(),
        })
        .breaker_settings("search", breaker)
        .retry_policy("coordinator", no_retry)
        .timeout(timeouts.clone())
        .spawn()
        .await?;
        Ok(Coordinator {
            timeouts,
            llm,
            search,
        })
    }

    /// The seed's `ExecuteTask`: the operation's deadline comes from the timeout manager, the
    /// dependency's breaker guards the call.
    async fn execute_task(&self, req: TaskRequest) -> Result<String, CallError<BackendError>> {
        let agent = match req.operation {
            "search" => &self.search,
            _ => &self.llm,
        };
        let opts = CallOptions::default().with_operation(req.operation);
        let result = agent.call_with(req, opts).await;
        // Both actors apply queued outcomes before answering a status request: waiting for
        // them keeps the printed hooks and health checks in step with the calls.
        let _ = agent.breaker().status().await;
        let _ = self.timeouts.status().await;
        result
    }

    /// The seed's `HealthCheck`: degraded while any breaker is not letting calls through.
    fn health_check(&self) -> HealthStatus {
        let mut errors = Vec::new();
        for breaker in [self.llm.breaker(), self.search.breaker()] {
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

    fn stop(&self) {
        for agent in [&self.llm, &self.search] {
            agent.stop();
            agent.breaker().stop();
        }
        self.timeouts.actor().stop(None);
    }
}

async fn run(coordinator: &Coordinator, req: TaskRequest) {
    let label = format!("{} ({:?} of work)", req.operation, req.work);
    match coordinator.execute_task(req).await {
        Ok(output) => println!("task {label:<28} -> ok: {output}"),
        Err(error) => println!("task {label:<28} -> error: {error}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let llm_down = Arc::new(AtomicBool::new(false));
    let coordinator = Coordinator::spawn(llm_down.clone()).await?;
    println!("{}", coordinator.health_check());

    println!(
        "\n== normal operation (timeouts: plan 60ms, summarize 300ms, default 150ms; slow > 100ms)"
    );
    run(&coordinator, TaskRequest::new("plan", 20)).await;
    run(&coordinator, TaskRequest::new("search", 30)).await;
    run(&coordinator, TaskRequest::new("summarize", 180)).await;
    run(&coordinator, TaskRequest::new("plan", 200)).await;
    run(&coordinator, TaskRequest::new("plan", 20)).await;
    println!("{}", coordinator.health_check());

    println!("\n== the llm backend goes down");
    llm_down.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        run(&coordinator, TaskRequest::new("summarize", 20)).await;
    }
    println!("{}", coordinator.health_check());
    run(&coordinator, TaskRequest::new("summarize", 20)).await;
    run(&coordinator, TaskRequest::new("search", 30)).await;

    println!("\n== the llm backend recovers");
    llm_down.store(false, Ordering::Relaxed);
    let open_for = coordinator.llm.breaker().status().await?.retry_after;
    let wait = open_for.unwrap_or_default() + Duration::from_millis(10);
    println!("waiting {wait:.0?} for the open period to end");
    tokio::time::sleep(wait).await;
    println!("{}", coordinator.health_check());
    run(&coordinator, TaskRequest::new("plan", 20)).await;
    println!("{}", coordinator.health_check());

    if let Some(status) = coordinator.timeouts.status().await {
        println!(
            "\ntimeout manager `{}`: {} calls, {} timed out, {} slow",
            status.name, status.samples, status.timeouts, status.slow_operations
        );
    }
    coordinator.stop();
    Ok(())
}
