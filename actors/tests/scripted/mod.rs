//! A scripted test agent: each task says, per attempt, how long to take and how to end.
//! Its latencies are `tokio::time::sleep`s, which only ever run on the paused clock of the tests
//! that use it (`start_paused`), so they take no wall time.
#![allow(dead_code)]

use std::time::Duration;

use ractor_resilience::agent::{Agent, ErrorClass};
use ractor_resilience::task::TaskContext;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How one attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ok,
    /// A retryable error counted by the breaker.
    Transient,
    /// A non-retryable error counted by the breaker.
    Permanent,
    /// A caller mistake: not retryable, ignored by the breaker.
    BadRequest,
    /// The worker panics.
    Panic,
}

#[derive(Debug, Clone)]
pub struct Script {
    /// (latency, ending) per attempt; the last entry repeats.
    pub steps: Vec<(Duration, Step)>,
    pub tag: u64,
}

impl Script {
    pub fn new(steps: &[(u64, Step)]) -> Self {
        Script {
            steps: steps
                .iter()
                .map(|&(ms, s)| (Duration::from_millis(ms), s))
                .collect(),
            tag: 0,
        }
    }

    pub fn ok(ms: u64) -> Self {
        Self::new(&[(ms, Step::Ok)])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("transient failure")]
    Transient,
    #[error("permanent failure")]
    Permanent,
    #[error("bad request")]
    BadRequest,
}

/// What the agent saw: one event per attempt started, and whether it was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Started { tag: u64, attempt: u32, at: Instant },
    Cancelled { tag: u64, attempt: u32, at: Instant },
}

pub struct Scripted {
    pub seen: Option<mpsc::UnboundedSender<Seen>>,
}

impl Agent for Scripted {
    type Task = Script;
    type Output = u64;
    type Error = ScriptError;

    async fn handle(&mut self, task: Script, ctx: TaskContext) -> Result<u64, ScriptError> {
        let i = (ctx.attempt as usize)
            .saturating_sub(1)
            .min(task.steps.len() - 1);
        let (latency, step) = task.steps[i];
        if let Some(seen) = &self.seen {
            let _ = seen.send(Seen::Started {
                tag: task.tag,
                attempt: ctx.attempt,
                at: Instant::now(),
            });
        }
        tokio::select! {
            () = tokio::time::sleep(latency) => {}
            () = ctx.cancel().cancelled() => {
                if let Some(seen) = &self.seen {
                    let _ = seen.send(Seen::Cancelled { tag: task.tag, attempt: ctx.attempt, at: Instant::now() });
                }
                return Err(ScriptError::Transient);
            }
        }
        match step {
            Step::Ok => Ok(task.tag),
            Step::Transient => Err(ScriptError::Transient),
            Step::Permanent => Err(ScriptError::Permanent),
            Step::BadRequest => Err(ScriptError::BadRequest),
            Step::Panic => panic!("scripted panic (tag {})", task.tag),
        }
    }

    fn classify(error: &ScriptError) -> ErrorClass {
        match error {
            ScriptError::Transient => ErrorClass::TRANSIENT,
            ScriptError::Permanent => ErrorClass::PERMANENT,
            ScriptError::BadRequest => ErrorClass::CALLER_MISTAKE,
        }
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Exponential ×2 from `initial_ms`, no jitter (exact instants), capped at 10 s.
pub fn no_jitter(attempts: u32, initial_ms: u64) -> ractor_resilience::core::backoff::RetryPolicy {
    ractor_resilience::core::backoff::RetryPolicy::builder()
        .with_max_attempts(attempts)
        .with_initial_delay(ms(initial_ms))
        .with_max_delay(Duration::from_secs(10))
        .with_multiplier(2.0)
        .without_jitter()
        .build()
        .unwrap()
}

/// A breaker that never trips in these tests.
pub fn never_trips() -> ractor_resilience::core::breaker::BreakerSettings {
    ractor_resilience::core::breaker::BreakerSettings::builder()
        .with_max_failures(1_000_000)
        .build()
        .unwrap()
}

/// A scripted agent factory that reports what it sees on the returned channel.
pub fn observed() -> (
    impl Fn() -> Scripted + Send + Sync + 'static,
    mpsc::UnboundedReceiver<Seen>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        move || Scripted {
            seen: Some(tx.clone()),
        },
        rx,
    )
}

pub fn quiet() -> Scripted {
    Scripted { seen: None }
}

/// Keeps the scripted panics (expected by the tests) out of the test output.
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let scripted = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("scripted panic"));
            if !scripted {
                default(info);
            }
        }));
    });
}
