//! Tasks and their envelopes: every task carries an id, an optional deadline and a cancellation
//! signal; the parts that may cross nodes later are serde-serialisable.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// A task's identity, unique within the process.
///
/// ```
/// use ractor_resilience::task::TaskId;
///
/// let (a, b) = (TaskId::next(), TaskId::next());
/// assert_ne!(a, b);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TaskId(pub u64);

impl TaskId {
    /// A fresh id: unique within the process (not ordered across threads). Each thread takes
    /// blocks of ids from one global counter, so that calls on different cores do not contend
    /// on it.
    pub fn next() -> Self {
        const BLOCK: u64 = 1024;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (next, end) = range.get();
            if next < end {
                range.set((next + 1, end));
                TaskId(next)
            } else {
                let start = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
                range.set((start + 1, start + BLOCK));
                TaskId(start)
            }
        })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

/// What travels with a task between agents (and, later, nodes): its id, the attempt number,
/// the time left before its deadline, and whether a layer upstream already retries it
/// ("retry at one layer": a downstream agent that sees `retried_upstream` makes one attempt).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::task::{TaskEnvelope, TaskId};
///
/// let env = TaskEnvelope::new("hello").with_deadline(Duration::from_secs(2));
/// assert_eq!(env.attempt, 1);
/// assert_eq!(env.map(str::len).task, 5);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskEnvelope<T> {
    /// The task's id.
    pub id: TaskId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Time left before the task's deadline when the envelope was sent.
    pub deadline_in: Option<Duration>,
    /// Whether an upstream layer retries this request (then this layer does not).
    pub retried_upstream: bool,
    /// The operation, for per-operation timeouts (a configured name, never task data).
    #[serde(default)]
    pub operation: Option<std::sync::Arc<str>>,
    /// The task's key in the agent's keyed breaker family (see
    /// [`Agent::breaker_key`](crate::agent::Agent::breaker_key)).
    #[serde(default)]
    pub breaker_key: Option<std::sync::Arc<str>>,
    /// The task itself.
    pub task: T,
}

impl<T> TaskEnvelope<T> {
    /// A fresh envelope: a new id, first attempt, no deadline, no operation, not retried
    /// upstream.
    pub fn new(task: T) -> Self {
        TaskEnvelope {
            id: TaskId::next(),
            attempt: 1,
            deadline_in: None,
            retried_upstream: false,
            operation: None,
            breaker_key: None,
            task,
        }
    }

    /// The same envelope with the task's key in the agent's keyed breaker family.
    pub fn with_breaker_key(mut self, key: impl Into<std::sync::Arc<str>>) -> Self {
        self.breaker_key = Some(key.into());
        self
    }

    /// The same envelope with `deadline` left before the task's deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline_in = Some(deadline);
        self
    }

    /// The same envelope for operation `operation`.
    pub fn with_operation(mut self, operation: impl Into<std::sync::Arc<str>>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// The same envelope around another task.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> TaskEnvelope<U> {
        TaskEnvelope {
            id: self.id,
            attempt: self.attempt,
            deadline_in: self.deadline_in,
            retried_upstream: self.retried_upstream,
            operation: self.operation,
            breaker_key: self.breaker_key,
            task: f(self.task),
        }
    }
}

/// What a worker sees besides the task: the envelope's metadata, the deadline of this attempt
/// and the cancellation signal ([`cancel`](Self::cancel), fired on timeout, caller
/// cancellation or shutdown).
///
/// ```
/// use ractor_resilience::task::{CancellationToken, TaskContext, TaskId};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let ctx = TaskContext::new(TaskId(3), 1, None, CancellationToken::new(), true);
/// let downstream = ctx.downstream("sub-task");
/// assert_eq!((downstream.id, downstream.retried_upstream, downstream.deadline_in), (TaskId(3), true, None));
/// assert!(!ctx.cancel().is_cancelled());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task's id.
    pub id: TaskId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When this attempt times out (tokio's clock).
    pub deadline: Option<tokio::time::Instant>,
    /// Whether a downstream call made for this task should be told that a layer above it retries
    /// it (this layer, or one further up that told this one).
    pub retries_here: bool,
    /// The operation the task was submitted for ([`CallOptions::operation`]), so that an agent
    /// that forwards the task (a remote agent's attempt) can forward it too.
    ///
    /// [`CallOptions::operation`]: crate::agent::CallOptions::operation
    pub operation: Option<Arc<str>>,
    /// The breaker key its caller gave ([`CallOptions::breaker_key`]; `None` when the caller
    /// gave none and the key, if any, comes from the task itself).
    ///
    /// [`CallOptions::breaker_key`]: crate::agent::CallOptions::breaker_key
    pub breaker_key: Option<Arc<str>>,
    signal: Arc<Signal>,
}

/// An attempt's cancellation signal, shared by its worker and its context. The token is made
/// on first use: an agent that never asks for it costs no token (no allocation, no lock), and
/// a worker reuses the signal from one attempt to the next while nothing else holds it.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// The task's own signal: the attempt's token is its child.
    parent: Option<CancellationToken>,
    token: OnceLock<CancellationToken>,
}

impl Signal {
    fn token(&self) -> &CancellationToken {
        self.token.get_or_init(|| {
            self.parent
                .as_ref()
                .map_or_else(CancellationToken::new, CancellationToken::child_token)
        })
    }

    /// Fires the attempt's signal (made now if nobody asked for it yet, so that a late ask
    /// sees it fired).
    pub(crate) fn cancel(&self) {
        self.token().cancel();
    }
}

impl TaskContext {
    /// A context with a signal of its own (for tests and for running an agent by hand).
    pub fn new(
        id: TaskId,
        attempt: u32,
        deadline: Option<tokio::time::Instant>,
        cancel: CancellationToken,
        retries_here: bool,
    ) -> Self {
        TaskContext {
            id,
            attempt,
            deadline,
            retries_here,
            operation: None,
            breaker_key: None,
            signal: Arc::new(Signal {
                parent: None,
                token: OnceLock::from(cancel),
            }),
        }
    }

    /// The same context for operation `operation`.
    pub fn with_operation(mut self, operation: impl Into<Arc<str>>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// The same context with the breaker key its caller gave.
    pub fn with_breaker_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.breaker_key = Some(key.into());
        self
    }

    /// A worker's context for one attempt, reusing `signal` when nothing else holds it (the
    /// previous attempt's context is gone), else a fresh one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_attempt(
        signal: &mut Arc<Signal>,
        parent: Option<&CancellationToken>,
        id: TaskId,
        attempt: u32,
        deadline: Option<tokio::time::Instant>,
        retries_here: bool,
        operation: Option<Arc<str>>,
        breaker_key: Option<Arc<str>>,
    ) -> Self {
        // The common case: nothing else holds the signal and the last attempt never used it
        // (no token made, no parent), so it is as good as new, with no write at all. No
        // `Weak` of a signal is ever made, so a count of one means this worker holds the only
        // reference; the fence makes what the last holder did before dropping its own
        // (making the token, say) visible to the check that follows.
        let as_new = parent.is_none() && Arc::strong_count(signal) == 1 && {
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            signal.parent.is_none() && signal.token.get().is_none()
        };
        if !as_new {
            let fresh = Signal {
                parent: parent.cloned(),
                token: OnceLock::new(),
            };
            match Arc::get_mut(signal) {
                Some(reusable) => *reusable = fresh,
                None => *signal = Arc::new(fresh),
            }
        }
        TaskContext {
            id,
            attempt,
            deadline,
            retries_here,
            operation,
            breaker_key,
            signal: signal.clone(),
        }
    }

    /// Fires when the attempt is abandoned (its timeout, its caller's cancellation or
    /// deadline, shutdown): a well-behaved agent stops its work. Made on first use.
    pub fn cancel(&self) -> &CancellationToken {
        self.signal.token()
    }

    /// The envelope to put around a downstream task sent while handling this one, carrying the
    /// id, the remaining deadline and the "retry at one layer" flag.
    pub fn downstream<U>(&self, task: U) -> TaskEnvelope<U> {
        TaskEnvelope {
            id: self.id,
            attempt: 1,
            deadline_in: self
                .deadline
                .map(|d| d.saturating_duration_since(tokio::time::Instant::now())),
            retried_upstream: self.retries_here,
            operation: None,
            breaker_key: None,
            task,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(signal: &mut Arc<Signal>, parent: Option<&CancellationToken>) -> TaskContext {
        TaskContext::for_attempt(signal, parent, TaskId(1), 1, None, false, None, None)
    }

    #[test]
    fn an_unused_signal_is_reused_as_it_is() {
        let mut signal = Arc::new(Signal::default());
        let first = Arc::as_ptr(&signal);
        drop(attempt(&mut signal, None));
        let ctx = attempt(&mut signal, None);
        assert_eq!(
            Arc::as_ptr(&signal),
            first,
            "same allocation, nothing reset"
        );
        assert!(!ctx.cancel().is_cancelled());
    }

    #[test]
    fn a_used_signal_is_reset_before_the_next_attempt() {
        let mut signal = Arc::new(Signal::default());
        let ctx = attempt(&mut signal, None);
        let token = ctx.cancel().clone();
        signal.cancel();
        assert!(token.is_cancelled());
        drop(ctx);
        let next = attempt(&mut signal, None);
        assert!(
            !next.cancel().is_cancelled(),
            "the last attempt's cancellation must not leak into this one"
        );
    }

    #[test]
    fn a_signal_still_held_is_never_reused() {
        let mut signal = Arc::new(Signal::default());
        let kept = attempt(&mut signal, None); // an agent kept its context
        let next = attempt(&mut signal, None);
        kept.cancel().cancel();
        assert!(!next.cancel().is_cancelled());
        assert!(!Arc::ptr_eq(&kept.signal, &next.signal));
    }

    #[test]
    fn a_parent_signal_is_never_skipped() {
        let mut signal = Arc::new(Signal::default());
        drop(attempt(&mut signal, None));
        let parent = CancellationToken::new();
        let ctx = attempt(&mut signal, Some(&parent));
        parent.cancel();
        assert!(
            ctx.cancel().is_cancelled(),
            "the attempt's token is the task's child"
        );
        drop(ctx);
        let next = attempt(&mut signal, None);
        assert!(
            !next.cancel().is_cancelled(),
            "the parent went with its attempt"
        );
    }
}
