//! [`AgentHandle`]: a running agent, addressed directly (`call`, `cast`: the happy path runs in
//! the caller's future, one hop to a worker) or by message through its actor ([`AgentMsg`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::ActorRef;

use super::Outcome;
use super::msg::{AgentMsg, InternalMsg, Origin, SupervisorStatus, TaskRequest};
use super::options::CallOptions;
use super::shared::{AgentStats, Shared};
use super::{Agent, CallError};
use crate::breaker::BreakerHandle;
use crate::clock;
use crate::metrics::TaskOutcome;
use crate::reply::ReplyTo;
use crate::task::TaskId;
use crate::timeout::{TimeoutHandle, TimeoutStatus};

/// A running supervised agent. Cheap to clone; every clone talks to the same agent.
///
/// ```
/// use ractor_resilience::agent::{Agent, AgentBuilder, CallError};
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
/// let agent = AgentBuilder::new("upper", || Upper).max_pending(8).spawn().await.unwrap();
/// assert_eq!(agent.call("hi".into()).await.unwrap(), "HI");
/// assert_eq!(agent.stats().attempts, 1);
/// assert_eq!(agent.status().await.unwrap().live_workers, 4);
/// agent.stop();
/// # });
/// ```
pub struct AgentHandle<A: Agent> {
    pub(crate) shared: Arc<Shared<A>>,
    pub(crate) actor: ActorRef<AgentMsg<A>>,
}

impl<A: Agent> Clone for AgentHandle<A> {
    fn clone(&self) -> Self {
        AgentHandle {
            shared: self.shared.clone(),
            actor: self.actor.clone(),
        }
    }
}

impl<A: Agent> std::fmt::Debug for AgentHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("name", &self.shared.name)
            .field("inflight", &self.inflight())
            .finish()
    }
}

impl<A: Agent> AgentHandle<A> {
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Tasks admitted and not yet answered.
    pub fn inflight(&self) -> usize {
        self.shared.counts.inflight.load(Ordering::Acquire)
    }

    /// Attempts, retries and tasks in flight so far.
    pub fn stats(&self) -> AgentStats {
        let totals = self.shared.counts.totals();
        AgentStats {
            attempts: totals.attempts(),
            retries: totals.retries,
            inflight: self.inflight(),
        }
    }

    /// The breaker guarding this agent.
    pub fn breaker(&self) -> &BreakerHandle {
        &self.shared.breaker
    }

    /// The keyed breaker family that admits each task by its key, if the agent has one
    /// ([`AgentBuilder::key_breaker`](super::AgentBuilder::key_breaker)).
    pub fn key_breaker(&self) -> Option<&crate::breaker::KeyedBreakerHandle> {
        self.shared.keyed.as_ref()
    }

    /// The timeout actor this agent's workers race their attempts with, if it has one: one given
    /// to the builder ([`AgentBuilder::timeout`](super::AgentBuilder::timeout)), or its own for
    /// an adaptive policy. `None` when the agent keeps a fixed or per-operation policy of its own
    /// in place: such a policy has nothing to learn, so it needs no actor (see
    /// [`timeout_status`](Self::timeout_status)).
    pub fn timeout(&self) -> Option<&TimeoutHandle> {
        self.shared.timeout.handle()
    }

    /// The agent's timeout policy counters ([`TimeoutStatus`]), whether an actor or the agent
    /// itself keeps the policy; `None` if its timeout actor has stopped.
    pub async fn timeout_status(&self) -> Option<TimeoutStatus> {
        self.shared
            .timeout
            .status(self.shared.counts.totals().samples)
            .await
    }

    /// The agent's actor (its supervisor): send it tasks by message ([`AgentMsg`]), link to it,
    /// or stop it.
    pub fn actor(&self) -> &ActorRef<AgentMsg<A>> {
        &self.actor
    }

    /// Runs `task` and waits for its outcome.
    pub fn call(&self, task: A::Task) -> impl Future<Output = Outcome<A>> + Send + '_ {
        // A `static`, not a constant: a constant's reference would be a temporary (the options
        // hold types with destructors). And no `async` wrapper: the caller awaits `call_ref`'s
        // own future, one state machine less on every poll.
        static NONE: CallOptions = CallOptions::NONE;
        self.call_ref(task, &NONE)
    }

    /// Submits `task` without waiting; the outcome goes to `reply` (if given): a port, an RPC
    /// port, or [`ReplyTo::to_actor`]. The agent's actor holds the task and answers it once, at
    /// its deadline at the latest.
    ///
    /// Returns the task's id, or a refusal (`Overloaded`, `Rejected`, `Unavailable`) at once —
    /// then `reply` is not called: the refusal is the task's one outcome.
    pub fn cast(
        &self,
        task: A::Task,
        opts: CallOptions,
        reply: Option<ReplyTo<Outcome<A>>>,
    ) -> Result<TaskId, CallError<A::Error>> {
        let key = self.shared.key_of(opts.breaker_key.as_deref(), &task);
        let admitted = match self.shared.admit(opts.retried_upstream, key) {
            Ok(admitted) => admitted,
            Err(refused) => {
                if let Some(reply) = reply {
                    reply.forget();
                }
                return Err(refused);
            }
        };
        let id = opts.id.unwrap_or_else(TaskId::next);
        let request = TaskRequest {
            task,
            id,
            attempts: 0,
            error: None,
            deadline: opts.deadline.map(|d| clock::after(admitted.submitted, d)),
            deadline_in: opts.deadline,
            cancel: opts.cancel.unwrap_or_default(),
            operation: opts.operation,
            breaker_key: opts.breaker_key,
            retried_upstream: opts.retried_upstream,
            origin: Origin::Cast(reply),
            admitted: Some(admitted.into_owned(&self.shared)),
        };
        if let Err(undelivered) = self
            .actor
            .send_message(InternalMsg::Take(Box::new(request)).into())
        {
            // The request (and its admission) came back undelivered and is dropped here; its
            // reply is not called: the refusal returned is the task's one outcome.
            if let ractor::MessagingErr::SendErr(AgentMsg::Internal(internal)) = undelivered {
                if let InternalMsg::Take(request) = internal.0 {
                    if let Origin::Cast(Some(reply)) = request.origin {
                        reply.forget();
                    }
                }
            }
            self.shared
                .counts
                .metrics
                .task(TaskOutcome::Rejected, Duration::ZERO);
            return Err(CallError::Unavailable);
        }
        Ok(id)
    }

    /// Stops the agent: its actor and workers, and the breaker and timeout actors the builder
    /// spawned for it (shared ones given to the builder keep running). Pending tasks end
    /// `Cancelled`.
    pub fn stop(&self) {
        self.actor.stop(Some("stopped by its handle".into()));
        if self.shared.owns.0 {
            self.shared.breaker.stop();
        }
        if let (true, Some(timeout)) = (self.shared.owns.1, self.timeout()) {
            timeout.actor().stop(None);
        }
    }

    /// The supervisor's counters (tasks held, workers live and idle, queued attempts,
    /// restarts), or `None` if it has stopped.
    pub async fn status(&self) -> Option<SupervisorStatus> {
        ractor::call!(self.actor, AgentMsg::Status).ok()
    }

    /// Changes the pool size, admission bound, queue and retry policy of the running agent
    /// (see [`AgentUpdate`](super::AgentUpdate) for what happens to work in flight). Returns
    /// once applied; an invalid update changes nothing.
    ///
    /// ```
    /// use ractor_resilience::agent::{Agent, AgentBuilder, AgentUpdate};
    /// use ractor_resilience::core::backoff::RetryPolicy;
    /// use ractor_resilience::task::TaskContext;
    ///
    /// struct Echo;
    /// impl Agent for Echo {
    ///     type Task = u32;
    ///     type Output = u32;
    ///     type Error = std::io::Error;
    ///     async fn handle(&mut self, n: u32, _ctx: TaskContext) -> Result<u32, std::io::Error> {
    ///         Ok(n)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let agent = AgentBuilder::new("echo", || Echo).workers(2).spawn().await.unwrap();
    /// agent.reconfigure(AgentUpdate::new(6, 100, RetryPolicy::default())).await.unwrap();
    /// assert_eq!(agent.status().await.unwrap().live_workers, 6);
    /// let too_small = AgentUpdate::new(6, 3, RetryPolicy::default());
    /// assert!(agent.reconfigure(too_small).await.is_err());
    /// assert_eq!(agent.call(7).await.unwrap(), 7);
    /// agent.stop();
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`ReconfigureError`](super::ReconfigureError): an invalid setting, a worker that could
    /// not be spawned, or an agent that is not running.
    pub async fn reconfigure(
        &self,
        update: super::AgentUpdate,
    ) -> Result<(), super::ReconfigureError> {
        let (reply, answer) = ReplyTo::port();
        self.actor
            .cast(AgentMsg::Reconfigure(Box::new(update), reply))
            .map_err(|_| super::ReconfigureError::Unavailable)?;
        answer
            .await
            .map_err(|_| super::ReconfigureError::Unavailable)?
    }
}
