//! The worker actor: owns one instance of the user's [`Agent`] and runs one attempt at a time
//! ([`super::attempt`]). It is the only place that awaits the agent. A worker that finishes
//! takes the next job from the agent's queue, or registers itself idle ([`super::dispatch`]).

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::{Instant, Sleep};

use super::Agent;
use super::attempt;
use super::job::WorkerMsg;
use super::shared::Shared;

/// Makes a fresh agent for a (re)started worker.
pub(crate) type AgentFactory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// Jobs a worker runs back to back from the queue before it yields to its mailbox (so that a
/// stop request is seen between batches under sustained load).
const BATCH: usize = 32;

pub(crate) struct WorkerActor<A>(PhantomData<fn() -> A>);

impl<A> WorkerActor<A> {
    pub(crate) fn new() -> Self {
        WorkerActor(PhantomData)
    }
}

pub(crate) struct WorkerState<A: Agent> {
    agent: A,
    shared: Arc<Shared<A>>,
    /// The attempt timeout's timer, reused from attempt to attempt.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<A: Agent> Actor for WorkerActor<A> {
    type Msg = WorkerMsg<A>;
    type State = WorkerState<A>;
    type Arguments = (AgentFactory<A>, Arc<Shared<A>>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (make, shared): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(WorkerState {
            agent: make(),
            shared,
            timer: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Work may have queued while no worker was there (at start, or while this one was
        // being restarted).
        let _ = myself.send_message(WorkerMsg::Pull);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerState {
            agent,
            shared,
            timer,
        } = state;
        let (mut job, mut now) = match message {
            WorkerMsg::Run(job) => (Some(job), None),
            WorkerMsg::Pull => (None, None),
        };
        for _ in 0..BATCH {
            if let Some(job) = job.take() {
                now = Some(attempt::run(agent, timer, shared, job).await);
            }
            let at = now.take().unwrap_or_else(Instant::now);
            match shared.dispatch.next(&myself, at) {
                Some(next) => job = Some(next),
                None => return Ok(()),
            }
        }
        if let Some(job) = job {
            // A whole batch ran: yield to the mailbox, keeping the job taken.
            let _ = myself.send_message(WorkerMsg::Run(job));
        }
        Ok(())
    }
}
