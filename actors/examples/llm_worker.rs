//! The seed's "Protecting LLM Calls in Workers": a pool of worker agents calls a flaky simulated
//! LLM provider behind the full stack — a circuit breaker (3 consecutive failures open it), a
//! retry policy (3 attempts, exponential backoff with jitter, honouring a rate limit's
//! `retry_after`) and a timeout.
//!
//! The fake provider answers in 20–120 ms; about 30% of its calls fail (5% hang past the
//! timeout, 10% are rate-limited with a `retry_after`, 15% are 503s), and calls #20–#23 hit a
//! short outage, which opens the breaker. Fifty tasks arrive 30 ms apart and run concurrently
//! on 8 workers. The example prints every retry (attempt, delay, error) and every breaker
//! transition as they happen, then a tally of how the 50 tasks ended.
//!
//! Durations are the seed's scaled down ~50× so the run takes about two seconds: the breaker
//! stays open 300 ms (seed: 15 s) then admits one probe, retries start at 50 ms (seed: 1 s),
//! calls time out after 250 ms.
//! The provider's randomness is seeded, so which calls fail is the same on every run (the
//! interleaving of concurrent calls, and so the exact lines, may vary a little).
//!
//! ```sh
//! cargo run --example llm_worker
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor_resilience::agent::{Agent, AgentBuilder, AttemptError, CallError, ErrorClass};
use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
use ractor_resilience::core::backoff::{Jitter, RetryPolicy};
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::task::TaskContext;
use ractor_resilience::timeout::TimeoutPolicy;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;

const TASKS: usize = 50;
const ARRIVAL_GAP: Duration = Duration::from_millis(30);
/// Provider calls (1-based) that fail during the outage.
const OUTAGE: std::ops::RangeInclusive<u32> = 20..=23;

// ===== the fake provider =====

/// How a provider call fails.
#[derive(Debug, Clone, thiserror::Error)]
enum LlmError {
    #[error("429 rate limited, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("503 service unavailable")]
    Unavailable,
    #[error("call abandoned")]
    Abandoned,
}

/// A simulated LLM provider: random latency, ~30% failures, and an outage.
struct FakeLlm {
    rng: Mutex<SmallRng>,
    calls: AtomicU32,
}

impl FakeLlm {
    fn new(seed: u64) -> Self {
        FakeLlm {
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            calls: AtomicU32::new(0),
        }
    }

    async fn complete(&self, prompt: &str) -> Result<String, LlmError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let (latency, roll) = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            (rng.random_range(20..120u64), rng.random_range(0..100u32))
        };
        let latency = Duration::from_millis(latency);
        if OUTAGE.contains(&call) {
            tokio::time::sleep(latency / 4).await;
            return Err(LlmError::Unavailable);
        }
        match roll {
            0..5 => {
                // Hangs: only the caller's timeout ends this call.
                tokio::time::sleep(Duration::from_secs(10)).await;
                Err(LlmError::Unavailable)
            }
            5..15 => Err(LlmError::RateLimited {
                retry_after: Duration::from_millis(150),
            }),
            15..30 => {
                tokio::time::sleep(latency).await;
                Err(LlmError::Unavailable)
            }
            _ => {
                tokio::time::sleep(latency).await;
                Ok(format!("completion of {prompt:?}"))
            }
        }
    }
}

// ===== the worker agent =====

/// What a worker answers: the completion and the attempt that produced it.
#[derive(Debug)]
struct Completion {
    text: String,
    attempt: u32,
}

/// The worker: one task is one LLM call.
struct LlmWorker {
    provider: Arc<FakeLlm>,
}

impl Agent for LlmWorker {
    type Task = String;
    type Output = Completion;
    type Error = LlmError;

    async fn handle(&mut self, prompt: String, ctx: TaskContext) -> Result<Completion, LlmError> {
        tokio::select! {
            result = self.provider.complete(&prompt) => result.map(|text| Completion { text, attempt: ctx.attempt }),
            () = ctx.cancel().cancelled() => Err(LlmError::Abandoned),
        }
    }

    fn classify(error: &LlmError) -> ErrorClass {
        match error {
            // Server pushback: retry, but not before the provider said.
            LlmError::RateLimited { retry_after } => {
                ErrorClass::TRANSIENT.with_retry_after(*retry_after)
            }
            LlmError::Unavailable | LlmError::Abandoned => ErrorClass::TRANSIENT,
        }
    }
}

// ===== the run =====

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let at = move || format!("[{:>5}ms]", start.elapsed().as_millis());

    // The seed's MaxFailures 3, Timeout 15 s, ResetTimeout 60 s — scaled down.
    let settings = BreakerSettings::builder()
        .with_max_failures(3)
        .with_open_duration(Duration::from_millis(300))
        .with_half_open_max_wait(Some(Duration::from_millis(1200)))
        .build()?;
    let options = BreakerOptions::new()
        .with_seed(1)
        .with_on_state_change(Arc::new(move |from, to| {
            println!("{} breaker `llm`: {from} -> {to}", at());
        }));
    let breaker = BreakerActor::spawn("llm", settings, options).await?;

    // The seed's MaxAttempts 3, InitialDelay 1 s, MaxDelay 10 s, Multiplier 2, Jitter — scaled.
    let retry = RetryPolicy::builder()
        .with_max_attempts(3)
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_multiplier(2.0)
        .with_jitter(Jitter::SEED_PROPORTIONAL)
        .build()?;

    let provider = Arc::new(FakeLlm::new(2));
    let agent = AgentBuilder::new("llm-worker", move || LlmWorker {
        provider: provider.clone(),
    })
    .workers(8)
    .breaker(breaker.clone())
    .retry_policy("llm", retry)
    .timeout_policy("llm", TimeoutPolicy::Fixed(Duration::from_millis(250)))
    .on_retry(move |attempt, error: &AttemptError<LlmError>, delay| {
        println!(
            "{} retry: attempt {attempt} failed ({error}), next in {delay:.0?}",
            at()
        );
    })
    .seed(7)
    .spawn()
    .await?;
    println!(
        "{} {TASKS} tasks arriving every {ARRIVAL_GAP:?} on 8 workers",
        at()
    );

    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        let agent = agent.clone();
        tasks.spawn(async move {
            let submitted = Instant::now();
            let outcome = agent.call(format!("prompt #{i}")).await;
            (i, outcome, submitted.elapsed())
        });
        tokio::time::sleep(ARRIVAL_GAP).await;
    }

    let mut tally: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let mut sample = None;
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome, took) = joined?;
        if let Err(error @ (CallError::Failed { .. } | CallError::TimedOut { .. })) = &outcome {
            failures.insert(i, error.to_string());
        }
        if let Ok(Completion { text, .. }) = &outcome {
            sample.get_or_insert_with(|| text.clone());
        }
        let bucket = match outcome {
            Ok(Completion { attempt: 1, .. }) => "succeeded on the first attempt",
            Ok(_) => "succeeded after retrying",
            // Refused by the breaker's published state without a message: microseconds.
            Err(CallError::Rejected { .. }) if took < Duration::from_millis(5) => {
                "rejected at once by the breaker"
            }
            // A retry parked behind the open breaker fires once it half-opens; if the one probe
            // is already out, the breaker refuses it and the task ends there.
            Err(CallError::Rejected { .. }) => "rejected by the breaker on a retry",
            Err(CallError::TimedOut { .. }) => "timed out on the last attempt",
            Err(CallError::Failed { .. }) => "failed after retrying",
            Err(_) => "other",
        };
        tally.entry(bucket).or_default().push(i);
    }

    println!(
        "{} all {TASKS} tasks ended; breaker is {}",
        at(),
        breaker.state()
    );
    for (bucket, mut ids) in tally {
        ids.sort_unstable();
        println!("  {:>2} {bucket}: {ids:?}", ids.len());
    }
    for (i, error) in failures {
        println!("  task {i}: {error}");
    }
    if let Some(text) = sample {
        println!("  a sample answer: {text}");
    }
    agent.stop();
    breaker.stop();
    Ok(())
}
