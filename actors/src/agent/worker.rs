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
use super::counts::WorkerCounts;
use super::job::WorkerMsg;
use super::shared::Shared;
use crate::task::Signal;

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
    /// Its slot in the pool.
    slot: usize,
    /// The attempt timeout's timer, reused from attempt to attempt.
    timer: Option<Pin<Box<Sleep>>>,
    /// The attempts' cancellation signal, reused likewise.
    signal: Arc<Signal>,
    /// What this worker counted (only it writes these).
    counts: Arc<crossbeam_utils::CachePadded<WorkerCounts>>,
}

impl<A: Agent> Drop for WorkerState<A> {
    /// However the worker ends (stopped, retired, crashed), what it counted stays counted.
    fn drop(&mut self) {
        self.shared.counts.leave(&self.counts);
    }
}

impl<A: Agent> Actor for WorkerActor<A> {
    type Msg = WorkerMsg<A>;
    type State = WorkerState<A>;
    type Arguments = (AgentFactory<A>, Arc<Shared<A>>, usize);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (make, shared, slot): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(WorkerState {
            agent: make(),
            counts: shared.counts.join(),
            shared,
            slot,
            timer: None,
            signal: Arc::default(),
        })
    }

    /// Runs the job of `message` (if any), then queued ones, up to a batch. The body is here,
    /// not in a function it awaits: ractor moves this future with every message, and a nested
    /// one would hold the message and references twice.
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerState {
            agent,
            shared,
            slot,
            timer,
            signal,
            counts,
        } = state;
        // A job handed over directly starts as it was submitted (a mailbox hop later); one
        // taken from the queue starts when the previous one ended (the same clock read).
        let (mut job, mut now) = match message {
            WorkerMsg::Run(job) => (Some(job), None),
            WorkerMsg::Pull => (None, Some(Instant::now())),
            WorkerMsg::Retire => {
                // Its slot is gone (the pool shrank): the dispatcher hands it nothing more.
                myself.stop(Some("retired".into()));
                return Ok(());
            }
        };
        for _ in 0..BATCH {
            let finished = match job.take() {
                Some(job) => {
                    Some(attempt::run(agent, timer, signal, counts, shared, job, now).await)
                }
                None => None,
            };
            let at = finished
                .as_ref()
                .map(|f| f.ended)
                .or(now)
                .unwrap_or_else(Instant::now);
            let next = shared.dispatch.next(*slot, myself.get_id(), at);
            if let Some(finished) = finished {
                finished.deliver(shared);
            }
            match next {
                Some(next) => {
                    // Boxed here, by the worker that frees it: see `WorkerMsg::Run`.
                    job = Some(Box::new(next));
                    now = Some(at);
                }
                None => return Ok(()),
            }
        }
        if let Some(job) = job {
            // A whole batch ran: yield to the mailbox, keeping the job taken.
            shared.dispatch.yield_job(*slot, &myself, job);
        }
        Ok(())
    }
}
