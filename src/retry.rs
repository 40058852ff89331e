//! What follows a failed attempt: retry after some delay, or give up and say why.
//!
//! [`plan`] is the one place where the facts known after a failure — the error's
//! classification, the attempts made, the backoff's next step, a server's pushback, the
//! breaker's open period and the task's deadline — are combined into a decision. It is a pure
//! function: no clock, no RNG (the jittered `backoff_step` comes in already drawn), no side
//! effects. Checking the [retry budget](crate::budget) stays with the caller, *after* a
//! [`RetryDecision::Retry`], because withdrawing from a budget changes it.
//!
//! # The rule
//!
//! ```text
//! delay = max(breaker_wait + backoff_step, pushback)
//! ```
//!
//! - **`pushback` is a floor.** A server that says "not before 2 s" (HTTP 429/503
//!   `Retry-After`, gRPC `grpc-retry-pushback-ms`) is obeyed, but a longer backoff still wins: the
//!   pushback is the earliest acceptable instant, not a replacement for our own spread.
//! - **`breaker_wait` is added, not maxed.** While the breaker is open, every attempt that fails
//!   is parked behind the same instant, the end of the open period. With
//!   `max(breaker_wait, backoff_step)` the steps shorter than the wait would all vanish and every
//!   parked retry would fire *at that same instant*, a thundering herd against a half-open
//!   breaker that admits only `half_open_probes` calls (the rest are rejected and park again, in
//!   lock-step). Adding the wait keeps each retry's own jittered step as an offset from the end
//!   of the open period, so the retries arrive spread out exactly as they would have without
//!   the breaker.
//!
//! Sums saturate at [`MAX_DURATION`], which also caps the delay.
//!
//! # Giving up
//!
//! In this order: an error that is not retryable ([`GiveUpReason::NotRetryable`]); no attempt
//! left, because `attempts ≥ max_attempts` or the backoff iterator is exhausted
//! ([`GiveUpReason::AttemptsExhausted`]); a delay that reaches the task's deadline
//! ([`GiveUpReason::DeadlineTooClose`]): the next attempt must be able to *begin* strictly
//! before the deadline, so `delay < deadline_left` is required.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use ractor_resilience_core::retry::{GiveUpReason, RetryDecision, RetryInput, plan};
//!
//! let ms = Duration::from_millis;
//! let failed = RetryInput {
//!     attempts: 1,
//!     max_attempts: 3,
//!     retryable: true,
//!     backoff_step: Some(ms(100)),
//!     pushback: None,
//!     breaker_wait: Some(ms(2_000)), // the breaker is open for 2 s more
//!     deadline_left: Some(ms(5_000)),
//! };
//! assert_eq!(plan(&failed), RetryDecision::Retry { delay: ms(2_100) });
//!
//! // A server pushback longer than that is a floor.
//! let pushed = RetryInput { pushback: Some(ms(3_000)), ..failed };
//! assert_eq!(plan(&pushed), RetryDecision::Retry { delay: ms(3_000) });
//!
//! // The next attempt could not begin before the deadline.
//! let late = RetryInput { deadline_left: Some(ms(2_100)), ..failed };
//! assert_eq!(plan(&late), RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose));
//! ```

use std::fmt;
use std::time::Duration;

use crate::MAX_DURATION;

/// What is known when an attempt failed (or a retry was refused by the breaker).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::retry::{RetryDecision, RetryInput, plan};
///
/// // The minimal failure: retryable, attempts left, nothing else in the way.
/// let input = RetryInput {
///     attempts: 1,
///     max_attempts: 2,
///     retryable: true,
///     backoff_step: Some(Duration::from_millis(250)),
///     pushback: None,
///     breaker_wait: None,
///     deadline_left: None,
/// };
/// assert_eq!(plan(&input), RetryDecision::Retry { delay: Duration::from_millis(250) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryInput {
    /// Attempts made so far, the failed one included (≥ 1).
    pub attempts: u32,
    /// The policy's total attempts, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The error's classification: may it be retried at all?
    pub retryable: bool,
    /// The policy's next (jittered) backoff delay; `None` when the backoff iterator is exhausted.
    pub backoff_step: Option<Duration>,
    /// A server's pushback (e.g. a 429's `Retry-After`): the next attempt not before this.
    pub pushback: Option<Duration>,
    /// The time until the breaker's open period ends, if it is Open now.
    pub breaker_wait: Option<Duration>,
    /// The time left before the task's deadline; `None` when the task has no deadline.
    pub deadline_left: Option<Duration>,
}

/// What [`plan`] decided.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::retry::{GiveUpReason, RetryDecision};
///
/// let retry = RetryDecision::Retry { delay: Duration::from_secs(1) };
/// assert_eq!(retry.delay(), Some(Duration::from_secs(1)));
/// assert_eq!(RetryDecision::GiveUp(GiveUpReason::NotRetryable).delay(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Start the next attempt after `delay` (if the retry budget allows it).
    Retry {
        /// How long to wait before the next attempt.
        delay: Duration,
    },
    /// Do not retry: the failure is final.
    GiveUp(GiveUpReason),
}

impl RetryDecision {
    /// The delay of a [`Retry`](Self::Retry), `None` for a [`GiveUp`](Self::GiveUp).
    pub const fn delay(&self) -> Option<Duration> {
        match self {
            RetryDecision::Retry { delay } => Some(*delay),
            RetryDecision::GiveUp(_) => None,
        }
    }
}

/// Why [`plan`] gave up.
///
/// ```
/// use ractor_resilience_core::retry::GiveUpReason;
///
/// assert_eq!(GiveUpReason::DeadlineTooClose.as_str(), "deadline_too_close");
/// assert_eq!(GiveUpReason::AttemptsExhausted.to_string(), "attempts_exhausted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// The error is classified as not retryable.
    NotRetryable,
    /// `attempts ≥ max_attempts`, or the backoff has no delay left.
    AttemptsExhausted,
    /// The next attempt could not begin strictly before the task's deadline.
    DeadlineTooClose,
}

impl GiveUpReason {
    /// A stable `snake_case` name, for metric labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::NotRetryable => "not_retryable",
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::DeadlineTooClose => "deadline_too_close",
        }
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides what follows a failed attempt (see the [module docs](self) for the rule).
///
/// `delay = max(breaker_wait + backoff_step, pushback)`, saturating at
/// [`MAX_DURATION`]; gives up when the error is not retryable, when no
/// attempt is left, or when `delay ≥ deadline_left`.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::retry::{GiveUpReason, RetryDecision, RetryInput, plan};
///
/// let last = RetryInput {
///     attempts: 3,
///     max_attempts: 3,
///     retryable: true,
///     backoff_step: Some(Duration::from_secs(1)),
///     pushback: None,
///     breaker_wait: None,
///     deadline_left: None,
/// };
/// assert_eq!(plan(&last), RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
/// ```
pub fn plan(input: &RetryInput) -> RetryDecision {
    if !input.retryable {
        return RetryDecision::GiveUp(GiveUpReason::NotRetryable);
    }
    let step = match input.backoff_step {
        Some(step) if input.attempts < input.max_attempts => step,
        _ => return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted),
    };
    let parked = saturating_add(input.breaker_wait.unwrap_or(Duration::ZERO), step);
    let delay = parked
        .max(input.pushback.unwrap_or(Duration::ZERO))
        .min(MAX_DURATION);
    match input.deadline_left {
        Some(left) if delay >= left => RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose),
        _ => RetryDecision::Retry { delay },
    }
}

fn saturating_add(a: Duration, b: Duration) -> Duration {
    a.checked_add(b).unwrap_or(Duration::MAX)
}

/// The seed of one task's jitter RNG: `agent_seed ^ task_id × 0x9E37_79B9_7F4A_7C15` (wrapping).
///
/// Why per task? With one RNG shared by every task, a task's jitter depends on how many draws
/// other tasks made before it, i.e. on the interleaving of failures, so a simulation replayed
/// with the same seed can drift as soon as one message is reordered. Seeding each task's RNG from
/// the agent's seed and the task's id makes its delays a function of `(agent_seed, task_id)`
/// alone: same seed, same delays, whatever else happens.
///
/// The multiplier is `⌊2⁶⁴/φ⌋` (Fibonacci hashing; SplitMix64's increment). It is odd, so
/// multiplication by it is a bijection on `u64`: for one agent seed, distinct task ids always
/// get distinct seeds; and it spreads consecutive ids (1, 2, 3…) across all 64 bits. Task 0 gets
/// the agent's seed itself.
///
/// ```
/// use rand::{RngExt, SeedableRng, rngs::SmallRng};
/// use ractor_resilience_core::retry::task_seed;
///
/// assert_eq!(task_seed(42, 0), 42);
/// assert_ne!(task_seed(42, 1), task_seed(42, 2));
///
/// // Deterministic: the same (agent seed, task id) draws the same jitter.
/// let draw = |task| SmallRng::seed_from_u64(task_seed(7, task)).random::<u64>();
/// assert_eq!(draw(1234), draw(1234));
/// ```
pub const fn task_seed(agent_seed: u64, task_id: u64) -> u64 {
    agent_seed ^ task_id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn input() -> RetryInput {
        RetryInput {
            attempts: 1,
            max_attempts: 3,
            retryable: true,
            backoff_step: Some(ms(100)),
            pushback: None,
            breaker_wait: None,
            deadline_left: None,
        }
    }

    #[test]
    fn huge_inputs_saturate_at_max_duration() {
        let i = RetryInput {
            backoff_step: Some(Duration::MAX),
            breaker_wait: Some(Duration::MAX),
            ..input()
        };
        assert_eq!(plan(&i).delay(), Some(MAX_DURATION));
        let i = RetryInput {
            pushback: Some(Duration::MAX),
            ..input()
        };
        assert_eq!(plan(&i).delay(), Some(MAX_DURATION));
    }

    #[test]
    fn not_retryable_wins_over_every_other_reason() {
        let i = RetryInput {
            retryable: false,
            attempts: 9,
            backoff_step: None,
            deadline_left: Some(Duration::ZERO),
            ..input()
        };
        assert_eq!(plan(&i), RetryDecision::GiveUp(GiveUpReason::NotRetryable));
    }

    #[test]
    fn task_seed_matches_the_actor_formula() {
        assert_eq!(task_seed(0, 1), 0x9E37_79B9_7F4A_7C15);
        assert_eq!(task_seed(u64::MAX, 2), !0x3C6E_F372_FE94_F82A);
    }
}
