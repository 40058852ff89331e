//! [`TimeoutHooks`]: the seed's `OnTimeout` and `OnSlowOperation` callbacks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A hook: called with the operation name and a duration.
pub type Hook = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// Callbacks run by the [`TimeoutActor`](super::TimeoutActor), in its own task, when it
/// processes an outcome (so at most one tick after it was recorded). Keep them short and
/// non-blocking — a metric, a log line, a `cast` — and do not panic: a panicking hook stops
/// the actor.
///
/// - `on_timeout(operation, waited)`: a call timed out after `waited`.
/// - `on_slow(operation, took)`: a call *completed* (success or failure) after more than the
///   slow-operation threshold. A timed-out call calls `on_timeout` only.
///
/// `operation` is the operation's configured name, or [`DEFAULT_OPERATION`](super::DEFAULT_OPERATION)
/// for calls with no operation or one the policy does not list.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use ractor_resilience::timeout::TimeoutHooks;
///
/// let (tx, rx) = mpsc::channel();
/// let hooks = TimeoutHooks::new().on_timeout(move |op, waited| tx.send((op.to_owned(), waited)).unwrap());
/// hooks.timed_out("llm-call", Duration::from_secs(5));
/// hooks.slow("llm-call", Duration::from_secs(9)); // no `on_slow` hook: nothing happens
/// assert_eq!(rx.try_recv().unwrap(), ("llm-call".to_owned(), Duration::from_secs(5)));
/// ```
#[derive(Clone, Default)]
pub struct TimeoutHooks {
    on_timeout: Option<Hook>,
    on_slow: Option<Hook>,
}

impl TimeoutHooks {
    /// No hooks.
    pub const fn new() -> Self {
        Self {
            on_timeout: None,
            on_slow: None,
        }
    }

    /// Sets the hook called when a call times out (the seed's `OnTimeout`).
    #[must_use]
    pub fn on_timeout(mut self, hook: impl Fn(&str, Duration) + Send + Sync + 'static) -> Self {
        self.on_timeout = Some(Arc::new(hook));
        self
    }

    /// Sets the hook called when a call completes slower than the threshold (the seed's
    /// `OnSlowOperation`).
    #[must_use]
    pub fn on_slow(mut self, hook: impl Fn(&str, Duration) + Send + Sync + 'static) -> Self {
        self.on_slow = Some(Arc::new(hook));
        self
    }

    /// Runs the `on_timeout` hook, if any.
    pub fn timed_out(&self, operation: &str, waited: Duration) {
        if let Some(hook) = &self.on_timeout {
            hook(operation, waited);
        }
    }

    /// Runs the `on_slow` hook, if any.
    pub fn slow(&self, operation: &str, took: Duration) {
        if let Some(hook) = &self.on_slow {
            hook(operation, took);
        }
    }
}

impl fmt::Debug for TimeoutHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutHooks")
            .field("on_timeout", &self.on_timeout.is_some())
            .field("on_slow", &self.on_slow.is_some())
            .finish()
    }
}
