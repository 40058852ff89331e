//! [`AgentMsg`]: what the agent's actor accepts. Tasks by message (ractor's own RPC, or a cast
//! whose outcome comes back as one of the sender's messages), and the crate's own internal
//! messages behind an opaque [`Internal`] that nobody outside the crate can build.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;
use tokio::time::Instant;

use super::error::AttemptError;
use super::job::AttemptEnd;
use super::shared::Admitted;
use super::{Agent, Outcome};
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskEnvelope, TaskId};

/// A message to an agent's actor ([`AgentHandle::actor`](super::AgentHandle::actor)).
///
/// - [`Call`](AgentMsg::Call) works with ractor's RPC macros, from any task or actor:
///   `ractor::call!(agent.actor(), AgentMsg::Call, task)`, or `call_t!` with a timeout (which
///   becomes the task's deadline: the agent drops the task when the caller stops waiting).
/// - [`Submit`](AgentMsg::Submit) carries a [`TaskEnvelope`] (id, remaining deadline, operation,
///   "retried upstream") and a [`ReplyTo`]: an RPC port (`ReplyTo::from(port)`), or
///   [`ReplyTo::to_actor`] so that the outcome arrives as one of the sender's own messages and
///   the sender's `handle()` never awaits.
/// - [`Cancel`](AgentMsg::Cancel) cancels a task sent by message, by its id.
///
/// Every task sent ends in exactly one outcome, delivered to its reply: refusals
/// (`Overloaded`, `Rejected`, `Unavailable`) at once.
///
/// ```
/// use ractor_resilience::agent::{Agent, AgentBuilder, AgentMsg};
/// use ractor_resilience::task::TaskContext;
///
/// struct Upper;
/// impl Agent for Upper {
///     type Task = String;
///     type Output = String;
///     type Error = std::io::Error;
///     async fn handle(&mut self, s: String, _ctx: TaskContext) -> Result<String, std::io::Error> {
///         Ok(s.to_uppercase())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let agent = AgentBuilder::new("upper", || Upper).spawn().await.unwrap();
/// let outcome = ractor::call!(agent.actor(), AgentMsg::Call, "hi".to_string()).unwrap();
/// assert_eq!(outcome.unwrap(), "HI");
/// agent.stop();
/// # });
/// ```
///
/// The internal messages cannot be built outside the crate:
///
/// ```compile_fail
/// use ractor_resilience::agent::{AgentMsg, Internal};
/// fn forge<A: ractor_resilience::agent::Agent>() -> AgentMsg<A> {
///     AgentMsg::Internal(Internal(todo!()))
/// }
/// ```
pub enum AgentMsg<A: Agent> {
    /// Run a task with default options; the outcome goes to the RPC port.
    Call(A::Task, RpcReplyPort<Outcome<A>>),
    /// Run a task with the options of its envelope; the outcome goes to `reply`.
    Submit(TaskEnvelope<A::Task>, ReplyTo<Outcome<A>>),
    /// Cancel a task sent by message (ends `Cancelled`, its running attempt is told to stop).
    /// Unknown or finished ids are ignored.
    Cancel(TaskId),
    /// The agent's counters.
    Status(RpcReplyPort<SupervisorStatus>),
    /// Change the pool size, admission bound, queue and retry policy in place (hot reload; see
    /// [`AgentUpdate`](super::AgentUpdate)). Answered once applied; an invalid update changes
    /// nothing.
    Reconfigure(
        Box<super::AgentUpdate>,
        ReplyTo<Result<(), super::ReconfigureError>>,
    ),
    /// The crate's own messages (timers, attempts' answers, retries handed over by callers).
    Internal(Internal<A>),
}

/// An internal message of the agent's actor: opaque, built only inside the crate.
pub struct Internal<A: Agent>(pub(crate) InternalMsg<A>);

pub(crate) enum InternalMsg<A: Agent> {
    /// Take over a task: a caller's failed first attempt to retry, or a cast to run.
    Take(Box<TaskRequest<A>>),
    /// The one timer fired (`generation` tells it from a stale one).
    TimerFired { generation: u64 },
    /// A worker answered a job of task `key` (`None`: the job was dropped unanswered, its worker
    /// crashed).
    AttemptDone {
        key: u64,
        attempt: u32,
        end: Option<AttemptEnd<A>>,
    },
}

impl<A: Agent> From<InternalMsg<A>> for AgentMsg<A> {
    fn from(msg: InternalMsg<A>) -> Self {
        AgentMsg::Internal(Internal(msg))
    }
}

impl<A: Agent> std::fmt::Debug for AgentMsg<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentMsg::Call(..) => f.write_str("AgentMsg::Call"),
            AgentMsg::Submit(envelope, _) => write!(f, "AgentMsg::Submit({})", envelope.id),
            AgentMsg::Cancel(id) => write!(f, "AgentMsg::Cancel({id})"),
            AgentMsg::Status(_) => f.write_str("AgentMsg::Status"),
            AgentMsg::Reconfigure(update, _) => write!(f, "AgentMsg::Reconfigure({update:?})"),
            AgentMsg::Internal(internal) => internal.fmt(f),
        }
    }
}

impl<A: Agent> std::fmt::Debug for Internal<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            InternalMsg::Take(r) => write!(f, "Internal::Take({})", r.id),
            InternalMsg::TimerFired { generation } => {
                write!(f, "Internal::TimerFired({generation})")
            }
            InternalMsg::AttemptDone { key, attempt, .. } => {
                write!(f, "Internal::AttemptDone({key}, {attempt})")
            }
        }
    }
}

/// What [`AgentMsg::Status`] answers.
///
/// ```
/// use ractor_resilience::agent::SupervisorStatus;
///
/// let s = SupervisorStatus::default();
/// assert_eq!((s.tasks, s.live_workers, s.restarts, s.parked_restarts), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupervisorStatus {
    /// Tasks held by the supervisor (retrying, or casts and tasks sent by message in flight).
    pub tasks: usize,
    /// Live workers.
    pub live_workers: usize,
    /// Workers waiting for work.
    pub idle_workers: usize,
    /// Attempts waiting in the agent's queue.
    pub queued: usize,
    /// Restarts performed.
    pub restarts: u64,
    /// Restarts parked because the breaker was open.
    pub parked_restarts: u64,
}

/// Who waits for a task the agent's actor holds.
pub(crate) enum Origin<A: Agent> {
    /// A caller's future that handed over its failed first attempt: it counts the outcome
    /// itself, and is told how many attempts were made.
    Call(ReplyTo<(u32, Outcome<A>)>),
    /// A cast or a task sent by message: the actor counts the outcome and delivers it, if
    /// anyone listens.
    Cast(Option<ReplyTo<Outcome<A>>>),
}

/// A task handed to the agent's actor.
pub(crate) struct TaskRequest<A: Agent> {
    pub(crate) task: A::Task,
    pub(crate) id: TaskId,
    /// Attempts made so far (0 for a cast not yet attempted).
    pub(crate) attempts: u32,
    /// The last attempt's error, when `attempts > 0`.
    pub(crate) error: Option<AttemptError<A::Error>>,
    pub(crate) deadline: Option<Instant>,
    /// The deadline as given, from submission (what a `TimedOut` reports).
    pub(crate) deadline_in: Option<Duration>,
    pub(crate) cancel: CancellationToken,
    pub(crate) operation: Option<Arc<str>>,
    pub(crate) breaker_key: Option<Arc<str>>,
    pub(crate) retried_upstream: bool,
    pub(crate) origin: Origin<A>,
    pub(crate) admitted: Option<Admitted<'static>>,
}

impl<A: Agent> TaskRequest<A> {
    /// Cancelled by its signal, or its caller's future is gone (its port closed).
    pub(crate) fn abandoned(&self) -> bool {
        self.cancel.is_cancelled()
            || match &self.origin {
                Origin::Call(reply) => reply.is_closed(),
                Origin::Cast(reply) => reply.as_ref().is_some_and(ReplyTo::is_closed),
            }
    }
}

// Local-only under ractor's `cluster` feature (see `breaker::messages`): a remote caller reaches
// an agent through its node's ingress, never with these.
#[cfg(feature = "cluster")]
impl<A: Agent> ractor::Message for AgentMsg<A> {}
