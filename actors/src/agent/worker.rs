//! The worker actor: runs the user's [`Agent`] one task at a time.

use std::marker::PhantomData;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::Agent;
use super::deadline::AgentTimeout;
use crate::reply::ReplyTo;
use crate::task::{CancellationToken, TaskContext};

/// Makes a fresh agent for a (re)started worker.
pub(crate) type AgentFactory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// What a worker is sent.
pub enum WorkerMsg<A: Agent> {
    /// Run one attempt of a task and answer `reply` (unless the attempt is abandoned first).
    Run {
        /// The task.
        task: A::Task,
        /// Its id, deadline and cancellation signal.
        ctx: TaskContext,
        /// Where the answer goes.
        reply: ReplyTo<Result<A::Output, A::Error>>,
    },
}

impl<A: Agent> std::fmt::Debug for WorkerMsg<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerMsg::Run { ctx, .. } => {
                write!(f, "WorkerMsg::Run({}, attempt {})", ctx.id, ctx.attempt)
            }
        }
    }
}

pub(crate) struct WorkerActor<A>(PhantomData<fn() -> A>);

impl<A> WorkerActor<A> {
    pub(crate) fn new() -> Self {
        WorkerActor(PhantomData)
    }
}

pub(crate) struct WorkerState<A> {
    agent: A,
    timeout: AgentTimeout,
}

impl<A: Agent> Actor for WorkerActor<A> {
    type Msg = WorkerMsg<A>;
    type State = WorkerState<A>;
    type Arguments = (AgentFactory<A>, AgentTimeout);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (make, timeout): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(WorkerState {
            agent: make(),
            timeout,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerMsg::Run {
            task,
            ctx,
            mut reply,
        } = message;
        // Abandoned while queued: the race is already decided, do not start the work.
        if ctx.cancel.is_cancelled() || reply.is_closed() {
            return Ok(());
        }
        // How the worker learns that nobody waits for the answer any more. A caller's future
        // drops its port's receiver whenever it stops waiting (its deadline, its cancellation —
        // the token is cancelled first — or the future dropped): watching that needs no clone
        // of the token and no waiter on its lock. A callback (an attempt the supervisor drives)
        // is watched through the attempt's token.
        let token = (!reply.is_port()).then(|| ctx.cancel.clone());
        // The worker is the one place that awaits the agent: one task at a time per worker.
        // The agent is polled first so that one honouring `ctx.cancel` sees the signal and
        // answers; one that ignores it is abandoned (dropped) once the signal fires.
        let result = tokio::select! {
            biased;
            result = state.agent.handle(task, ctx) => Some(result),
            () = abandoned(&mut reply, token.as_ref()) => None,
        };
        // The race ended first: the late reply is dropped and counted.
        if result.is_some_and(|result| !reply.send(result)) {
            state.timeout.late_reply();
        }
        Ok(())
    }
}

/// Completes when the attempt is abandoned: `token` cancelled, or without one, `reply`'s
/// receiver dropped.
async fn abandoned<T>(reply: &mut ReplyTo<T>, token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => reply.closed().await,
    }
}
