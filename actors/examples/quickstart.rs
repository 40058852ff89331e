//! Quick start: implement [`Agent`] for a tiny agent, spawn it supervised with [`AgentBuilder`]
//! (explicit breaker settings, retry policy and a fixed timeout), then send it tasks.
//!
//! With `call` (await the outcome) it runs one task that succeeds, one that fails transiently and
//! succeeds on the retry, one that fails permanently (not retried), and one that is too slow
//! and times out on every attempt; then one `cast` whose outcome goes to a reply target. Every
//! outcome is printed, then the breaker's state.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use ractor_resilience::agent::{Agent, AgentBuilder, CallOptions, ErrorClass};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::TaskContext;
use ractor_resilience::timeout::TimeoutPolicy;
use tokio::time::Instant;

/// What the agent is asked to do.
#[derive(Debug, Clone)]
enum Job {
    /// Upper-cases the text.
    Shout(String),
    /// Fails with a transient error on the first `failures` attempts, then shouts.
    Flaky { failures: u32, text: String },
    /// Always fails with a permanent error.
    Broken,
    /// Takes this long (longer than the timeout).
    Sleep(Duration),
}

/// How the agent fails.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("service unavailable (attempt {0})")]
    Unavailable(u32),
    #[error("unsupported job")]
    Unsupported,
    #[error("abandoned")]
    Abandoned,
}

/// The agent: one instance per worker, made again after a restart.
struct Shouter;

impl Agent for Shouter {
    type Task = Job;
    type Output = String;
    type Error = JobError;

    async fn handle(&mut self, job: Job, ctx: TaskContext) -> Result<String, JobError> {
        match job {
            Job::Shout(text) => Ok(text.to_uppercase()),
            Job::Flaky { failures, .. } if ctx.attempt <= failures => {
                Err(JobError::Unavailable(ctx.attempt))
            }
            Job::Flaky { text, .. } => {
                Ok(format!("{} (attempt {})", text.to_uppercase(), ctx.attempt))
            }
            Job::Broken => Err(JobError::Unsupported),
            Job::Sleep(d) => {
                // A well-behaved agent stops when its attempt is abandoned.
                tokio::select! {
                    () = tokio::time::sleep(d) => Ok("woke up".to_owned()),
                    () = ctx.cancel().cancelled() => Err(JobError::Abandoned),
                }
            }
        }
    }

    fn classify(error: &JobError) -> ErrorClass {
        match error {
            JobError::Unavailable(_) | JobError::Abandoned => ErrorClass::TRANSIENT,
            JobError::Unsupported => ErrorClass::PERMANENT,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let breaker = BreakerSettings::builder()
        .with_max_failures(5)
        .with_open_duration(Duration::from_secs(1))
        .build()?;
    let retry = RetryPolicy::builder()
        .with_max_attempts(3)
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_multiplier(2.0)
        .build()?;
    // The same stack can come from a configuration file instead:
    // `Registry::spawn(&ResolvedConfig::load(..)?, options).await?.agent("shouter", || Shouter)?`.
    let agent = AgentBuilder::new("shouter", || Shouter)
        .workers(2)
        .breaker_settings("shouter", breaker)
        .retry_policy("quick", retry)
        .timeout_policy("quick", TimeoutPolicy::Fixed(Duration::from_millis(100)))
        .on_retry(|attempt, error, delay| {
            println!("    retry: attempt {attempt} failed ({error}), next in {delay:.0?}");
        })
        .seed(7)
        .spawn()
        .await?;
    println!(
        "spawned agent `{}`: breaker {}",
        agent.name(),
        agent.breaker().state()
    );

    let jobs = [
        ("succeeds", Job::Shout("hello".into())),
        (
            "fails once, then succeeds",
            Job::Flaky {
                failures: 1,
                text: "flaky".into(),
            },
        ),
        ("fails permanently", Job::Broken),
        ("too slow", Job::Sleep(Duration::from_secs(5))),
    ];
    for (what, job) in jobs {
        println!("call: {what} — {job:?}");
        let started = Instant::now();
        let outcome = agent.call(job).await;
        let took = started.elapsed();
        match outcome {
            Ok(output) => println!("  -> ok: {output:?} in {took:.0?}"),
            Err(error) => println!("  -> error: {error} in {took:.0?}"),
        }
    }

    // A cast returns at once with the task's id; the outcome goes to the reply target.
    let (reply, answer) = ReplyTo::port();
    let id = agent.cast(
        Job::Shout("cast".into()),
        CallOptions::default(),
        Some(reply),
    )?;
    println!("cast: submitted {id}");
    match answer.await? {
        Ok(output) => println!("  -> {id} answered ok: {output:?}"),
        Err(error) => println!("  -> {id} answered error: {error}"),
    }

    let status = agent.breaker().status().await?;
    println!(
        "breaker `{}`: {} ({} outcomes applied)",
        status.name, status.state, status.outcomes
    );
    agent.stop(); // also stops the breaker actor the builder spawned for it
    Ok(())
}
