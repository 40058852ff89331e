//! The agent's actor — its supervisor: owns the worker pool and the failure path, and takes tasks
//! by message ([`AgentMsg`]).
//!
//! - **Supervision** (Akka's BackoffSupervisor + OTP's intensity/period, both pure core types):
//!   workers are spawned linked; a crashed worker is restarted after an exponential backoff that
//!   resets once the worker has been stable for `reset_after`; more than `max_restarts` crashes
//!   within `restart_window` stop the supervisor with an error, which tells *its* supervisor
//!   (escalation). A crash while the agent's breaker is open does not burn the allowance: the
//!   restart is parked until the open period ends ([`restarts`]).
//! - **Tasks it holds** ([`tasks`]): a caller's failed first attempt to retry, a cast, a task
//!   sent by message. It submits their attempts to the dispatcher like any caller and gets the
//!   workers' answers back as messages; it resends after the retry planner's delay, within the
//!   budget, and answers each task once, at its deadline at the latest.
//! - `handle()` never awaits a worker, and every delay and deadline sits in one
//!   [`DeadlineQueue`] behind a single armed timer.

mod restarts;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::Agent;
use super::error::CallError;
use super::msg::{AgentMsg, InternalMsg};
use super::shared::Shared;
use super::worker::AgentFactory;
use crate::task::TaskEnvelope;
use crate::timeout::DeadlineQueue;
use crate::timer::OneTimer;

pub(crate) use self::tasks::Tasks;
use super::msg::SupervisorStatus;

/// How the supervisor restarts crashed workers.
///
/// # Default
/// Backoff from 100 ms doubling to 10 s (+0–25% jitter), reset after 30 s of stability; at most
/// 5 restarts within 60 s before escalating.
///
/// ```
/// use ractor_resilience::agent::SupervisionSettings;
///
/// let s = SupervisionSettings::default();
/// assert_eq!(s.max_restarts, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionSettings {
    /// First restart delay.
    pub min_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// A worker that ran this long without crashing restarts from `min_backoff` again.
    pub reset_after: Duration,
    /// Crashes tolerated within `restart_window`; one more escalates.
    pub max_restarts: u32,
    /// The intensity window.
    pub restart_window: Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        SupervisionSettings {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
        }
    }
}

/// What the supervisor's one timer queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Resend task `key`.
    Resend(u64),
    /// Task `key`'s deadline.
    Deadline(u64),
    /// Restart the worker of this slot.
    Restart(usize),
}

pub(crate) struct SupervisorArgs<A: Agent> {
    pub(crate) shared: Arc<Shared<A>>,
    pub(crate) make: AgentFactory<A>,
    pub(crate) workers: usize,
    pub(crate) settings: super::SupervisionSettings,
    pub(crate) seed: u64,
}

pub(crate) struct SupervisorState<A: Agent> {
    shared: Arc<Shared<A>>,
    pool: restarts::Pool<A>,
    tasks: Tasks<A>,
    timers: DeadlineQueue<Timer>,
    /// The one armed `send_after`, for the earliest of `timers`.
    timer: OneTimer<AgentMsg<A>>,
    status: SupervisorStatus,
}

pub(crate) struct SupervisorActor<A>(std::marker::PhantomData<fn() -> A>);

impl<A> SupervisorActor<A> {
    pub(crate) fn new() -> Self {
        SupervisorActor(std::marker::PhantomData)
    }
}

impl<A: Agent> Actor for SupervisorActor<A> {
    type Msg = AgentMsg<A>;
    type State = SupervisorState<A>;
    type Arguments = SupervisorArgs<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs<A>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = SupervisorState {
            pool: restarts::Pool::new(args.make, &args.settings, args.workers)?,
            tasks: Tasks::new(args.seed),
            shared: args.shared,
            timers: DeadlineQueue::new(),
            timer: OneTimer::new(),
            status: SupervisorStatus::default(),
        };
        state.pool.rng = SmallRng::seed_from_u64(args.seed);
        // Spawning awaits ractor's spawn futures, which are large; boxed, they are not part of
        // the actor's future, which ractor keeps for the actor's whole life (the same below for
        // the rare paths of `handle`: reconfiguring, restarting a worker).
        for slot in 0..args.workers {
            Box::pin(state.spawn_worker(&myself, slot)).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Call(task, port) => {
                // `call_t!`'s timeout is the caller's patience: the task's deadline.
                let mut envelope = TaskEnvelope::new(task);
                envelope.deadline_in = port.get_timeout();
                state.submit_message(&myself, envelope, port.into())
            }
            AgentMsg::Submit(envelope, reply) => state.submit_message(&myself, envelope, reply),
            AgentMsg::Cancel(id) => state.cancel(id),
            AgentMsg::Status(port) => {
                let _ = port.send(state.status());
            }
            AgentMsg::Reconfigure(update, reply) => {
                let result = Box::pin(state.reconfigure(&myself, *update)).await;
                reply.send(result);
            }
            AgentMsg::Internal(internal) => match internal.0 {
                InternalMsg::Take(req) => state.take_over(&myself, *req),
                InternalMsg::TimerFired { generation } => {
                    if state.timer.fired(generation) {
                        state.fire_timers(&myself).await?;
                    }
                }
                InternalMsg::AttemptDone { key, attempt, end } => {
                    state.attempt_done(key, attempt, end)
                }
            },
        }
        state.rearm(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        state.worker_down(&myself, cell, &reason)?;
        state.rearm(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.abandon_all(|| CallError::Cancelled);
        Ok(())
    }
}

impl<A: Agent> SupervisorState<A> {
    fn status(&self) -> SupervisorStatus {
        let (queued, idle_workers) = self.shared.dispatch.counts();
        SupervisorStatus {
            tasks: self.tasks.len(),
            live_workers: self.pool.live(),
            idle_workers,
            queued,
            ..self.status.clone()
        }
    }

    // ===== the one timer =====

    fn rearm(&mut self, myself: &ActorRef<AgentMsg<A>>) {
        if let Some(next) = self.timers.next_deadline() {
            self.timer.fire_by(myself, next, |generation| {
                InternalMsg::TimerFired { generation }.into()
            });
        }
    }

    async fn fire_timers(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let due: Vec<Timer> = self.timers.pop_expired(now).collect();
        for timer in due {
            match timer {
                Timer::Resend(key) => self.submit_job(myself, key),
                Timer::Deadline(key) => self.deadline_reached(key),
                Timer::Restart(slot) => Box::pin(self.restart(myself, slot)).await?,
            }
        }
        Ok(())
    }

    /// Answers every task still held (shutdown, escalation, or a failure that skipped
    /// `post_stop`) and every queued attempt, and refuses new tasks from now on.
    fn abandon_all(&mut self, error: impl Fn() -> CallError<A::Error>) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.dispatch.close();
        for key in self.tasks.keys() {
            self.finish(key, Err(error()));
        }
    }
}

impl<A: Agent> Drop for SupervisorState<A> {
    fn drop(&mut self) {
        // The supervisor failed without running post_stop: nobody is left waiting unanswered.
        self.abandon_all(|| CallError::Unavailable);
    }
}
