//! Why tasks failed: a fixed set of reasons (bounded report keys, never task data), and a log of
//! failures that says every reason without flooding — at most one line per reason per
//! [`FailureLog::EVERY`], with a count of the lines left out.

use std::time::Duration;

use ractor_resilience::agent::{AttemptError, CallError, ErrorClass};
use serde::Serialize;
use tokio::time::Instant;

use crate::provider::ProviderError;

/// Why a task ended `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// 401 / 403: the API key is wrong, revoked or not allowed.
    Unauthorized,
    /// 429.
    RateLimited,
    /// 5xx (and 408), or the simulated provider's injected error.
    ServerError,
    /// Another 4xx: the request itself is wrong.
    ClientError,
    /// A 3xx: `base_url` points at something that redirects.
    Redirect,
    /// The body could not be understood.
    Malformed,
    /// The connection failed, or the request timed out at the provider.
    Transport,
    /// The simulated provider's outage.
    Outage,
    /// The attempt's timeout passed first and no retry was allowed.
    AttemptTimedOut,
    /// The worker crashed, or no worker could take the attempt.
    WorkerLost,
}

impl FailureReason {
    /// Every reason, in report order.
    pub const ALL: [FailureReason; 10] = [
        FailureReason::Unauthorized,
        FailureReason::RateLimited,
        FailureReason::ServerError,
        FailureReason::ClientError,
        FailureReason::Redirect,
        FailureReason::Malformed,
        FailureReason::Transport,
        FailureReason::Outage,
        FailureReason::AttemptTimedOut,
        FailureReason::WorkerLost,
    ];

    /// Its name in logs, the summary and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Unauthorized => "unauthorized",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::ServerError => "server_error",
            FailureReason::ClientError => "client_error",
            FailureReason::Redirect => "redirect",
            FailureReason::Malformed => "malformed",
            FailureReason::Transport => "transport",
            FailureReason::Outage => "outage",
            FailureReason::AttemptTimedOut => "attempt_timed_out",
            FailureReason::WorkerLost => "worker_lost",
        }
    }

    /// The reason of a provider error.
    pub fn of_provider(error: &ProviderError) -> FailureReason {
        match error {
            ProviderError::Unauthorized { .. } => FailureReason::Unauthorized,
            ProviderError::RateLimited { .. } => FailureReason::RateLimited,
            ProviderError::Server { .. } => FailureReason::ServerError,
            ProviderError::Client { status, .. } if (300..400).contains(status) => {
                FailureReason::Redirect
            }
            ProviderError::Client { .. } => FailureReason::ClientError,
            ProviderError::Malformed(_) => FailureReason::Malformed,
            ProviderError::Transport(_) => FailureReason::Transport,
            ProviderError::Outage => FailureReason::Outage,
        }
    }

    /// The reason of a task that ended `failed` (`None` for any other outcome).
    pub fn of<T>(result: &Result<T, CallError<ProviderError>>) -> Option<FailureReason> {
        match result {
            Err(CallError::Failed { source, .. }) => Some(match source {
                AttemptError::Agent(e) => FailureReason::of_provider(e),
                AttemptError::TimedOut { .. } => FailureReason::AttemptTimedOut,
                AttemptError::WorkerLost | AttemptError::NoWorker => FailureReason::WorkerLost,
            }),
            _ => None,
        }
    }

    fn index(self) -> usize {
        FailureReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("every reason is listed")
    }
}

/// How an error class reads in a log line.
pub fn class_name(class: &ErrorClass) -> &'static str {
    match (class.retry, class.breaker) {
        (true, _) => "transient",
        (false, ractor_resilience::agent::CallOutcome::Failure) => "permanent",
        (false, _) => "caller_mistake",
    }
}

/// Decides which failures are logged: the first of each reason, then at most one per reason
/// every [`EVERY`](Self::EVERY); the others are counted and reported with the next line of
/// their reason (or by [`flush`](Self::flush) at the end of the run).
#[derive(Debug, Default)]
pub struct FailureLog {
    /// Per reason: when its last line was written, and how many were left out since.
    reasons: [(Option<Instant>, u64); FailureReason::ALL.len()],
}

impl FailureLog {
    /// At most one line per reason this often.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// A failure of `reason` at `now`: `Some(left out since the last line)` if it is to be
    /// logged, `None` if it is only counted.
    pub fn note(&mut self, reason: FailureReason, now: Instant) -> Option<u64> {
        let (last, suppressed) = &mut self.reasons[reason.index()];
        if last.is_some_and(|at| now.saturating_duration_since(at) < Self::EVERY) {
            *suppressed += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(suppressed))
    }

    /// The failures left out and not yet reported, by reason (and forgets them).
    pub fn flush(&mut self) -> Vec<(FailureReason, u64)> {
        FailureReason::ALL
            .iter()
            .zip(self.reasons.iter_mut())
            .filter(|(_, (_, n))| *n > 0)
            .map(|(r, (_, n))| (*r, std::mem::take(n)))
            .collect()
    }

    /// Logs the failure of a task (one that ended `failed`) if its reason is due: a WARN with
    /// the reason, the error's class and its message (providers strip the API key from
    /// messages).
    pub fn log<T>(&mut self, result: &Result<T, CallError<ProviderError>>, now: Instant) {
        let Some(reason) = FailureReason::of(result) else {
            return;
        };
        let Some(suppressed) = self.note(reason, now) else {
            return;
        };
        let Err(CallError::Failed { attempts, source }) = result else {
            return;
        };
        let class = match source {
            AttemptError::Agent(e) => class_name(&e.class()),
            _ => "transient",
        };
        tracing::warn!(
            reason = %reason.as_str(),
            class = %class,
            attempts,
            suppressed,
            error = %source,
            "task failed (at most one line per reason every {}s; `suppressed` counts those left out)",
            Self::EVERY.as_secs()
        );
    }

    /// Logs the count of every reason's failures left out since its last line.
    pub fn log_flush(&mut self) {
        for (reason, suppressed) in self.flush() {
            tracing::warn!(
                reason = %reason.as_str(),
                suppressed,
                "more tasks failed for this reason than were logged"
            );
        }
    }
}

/// Failed tasks counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts([u64; FailureReason::ALL.len()]);

impl FailureCounts {
    /// Counts one.
    pub fn add(&mut self, reason: FailureReason) {
        self.0[reason.index()] += 1;
    }

    /// How many failed for `reason`.
    pub fn get(&self, reason: FailureReason) -> u64 {
        self.0[reason.index()]
    }

    /// Every reason with its count, in report order (zeros included).
    pub fn iter(&self) -> impl Iterator<Item = (FailureReason, u64)> + '_ {
        FailureReason::ALL
            .iter()
            .copied()
            .zip(self.0.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_interval_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        let (a, b) = (FailureReason::Unauthorized, FailureReason::ServerError);
        assert_eq!(log.note(a, t0), Some(0));
        assert_eq!(log.note(b, t0), Some(0), "reasons are limited separately");
        for i in 1..=5 {
            assert_eq!(log.note(a, t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(log.note(b, t0 + Duration::from_millis(9_999)), None);
        // Ten seconds after the last line: logged, with the count left out since.
        assert_eq!(log.note(a, t0 + FailureLog::EVERY), Some(5));
        assert_eq!(log.note(a, t0 + FailureLog::EVERY), None);
        assert_eq!(log.flush(), vec![(a, 1), (b, 1)]);
        assert_eq!(log.flush(), vec![]);
    }

    #[test]
    fn reasons_of_provider_errors() {
        let client = |status| ProviderError::Client {
            status,
            message: String::new(),
        };
        assert_eq!(
            FailureReason::of_provider(&client(404)),
            FailureReason::ClientError
        );
        assert_eq!(
            FailureReason::of_provider(&client(302)),
            FailureReason::Redirect
        );
        let unauthorized = ProviderError::Unauthorized {
            status: 401,
            message: String::new(),
        };
        assert_eq!(
            FailureReason::of_provider(&unauthorized),
            FailureReason::Unauthorized
        );
        assert_eq!(class_name(&unauthorized.class()), "permanent");
        assert_eq!(class_name(&client(400).class()), "caller_mistake");
        assert_eq!(class_name(&ProviderError::Outage.class()), "transient");
        let names: std::collections::BTreeSet<_> =
            FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), FailureReason::ALL.len());
    }
}
