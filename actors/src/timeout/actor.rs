//! [`TimeoutActor`]: the actor, its arguments, and spawning.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use super::handle::{Shared, TimeoutHandle};
use super::hooks::TimeoutHooks;
use super::msg::TimeoutMsg;
use super::policy::TimeoutPolicy;
use super::state::TimeoutState;
use crate::metrics::TimeoutMetrics;

/// The owner of one deadline policy: the only writer of its adaptive estimate, the publisher of
/// its current deadline, the runner of its hooks and the racer of replies no caller waits on.
///
/// Spawn it with [`spawn`](Self::spawn) / [`spawn_linked`](Self::spawn_linked) and use the
/// returned [`TimeoutHandle`]; `handle` never awaits anything downstream.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::{TimeoutActor, TimeoutArgs, TimeoutHooks, TimeoutOutcome, TimeoutPolicy};
///
/// tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
///     let args = TimeoutArgs::new(TimeoutPolicy::Fixed(Duration::from_secs(5)))
///         .with_slow_operation_threshold(Duration::from_secs(2));
///     let hooks = TimeoutHooks::new().on_slow(|op, took| assert_eq!((op, took), ("default", Duration::from_secs(3))));
///     let timeouts = TimeoutActor::spawn("coordinator", args, hooks).await.unwrap();
///     timeouts.record(None, Duration::from_secs(3), TimeoutOutcome::Success);
///     assert_eq!(timeouts.status().await.unwrap().slow_operations, 1);
///     timeouts.actor().stop(None);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeoutActor;

/// What a [`TimeoutActor`] is configured with: the policy and the slow-operation threshold
/// (the seed's `SlowOperationThreshold`, for any policy kind). A [`TimeoutPolicy`] converts into
/// it with the policy's own threshold (a per-operation policy's, else none).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::timeout::{OperationTimeouts, TimeoutArgs, TimeoutPolicy};
///
/// let fixed: TimeoutArgs = TimeoutPolicy::Fixed(Duration::from_secs(5)).into();
/// assert_eq!(fixed.slow_operation_threshold, None);
/// let fixed = fixed.with_slow_operation_threshold(Duration::from_secs(2));
/// assert_eq!(fixed.slow_operation_threshold, Some(Duration::from_secs(2)));
///
/// let ops = OperationTimeouts::new(Duration::from_secs(30)).with_slow_operation_threshold(Duration::from_secs(10));
/// let manager = TimeoutArgs::from(TimeoutPolicy::PerOperation(ops));
/// assert_eq!(manager.slow_operation_threshold, Some(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TimeoutArgs {
    /// The deadline policy.
    pub policy: TimeoutPolicy,
    /// Completed calls strictly slower than this are slow (counted, `on_slow`); `None`: never.
    pub slow_operation_threshold: Option<Duration>,
}

impl TimeoutArgs {
    /// `policy`, with the policy's own slow-operation threshold.
    pub const fn new(policy: TimeoutPolicy) -> Self {
        let slow_operation_threshold = policy.slow_operation_threshold();
        Self {
            policy,
            slow_operation_threshold,
        }
    }

    /// Sets (or overrides) the slow-operation threshold.
    #[must_use]
    pub const fn with_slow_operation_threshold(mut self, threshold: Duration) -> Self {
        self.slow_operation_threshold = Some(threshold);
        self
    }
}

impl From<TimeoutPolicy> for TimeoutArgs {
    fn from(policy: TimeoutPolicy) -> Self {
        Self::new(policy)
    }
}

/// The actor's start-up arguments, built by [`TimeoutActor::spawn`] (opaque).
#[derive(Debug)]
pub struct TimeoutStart {
    args: TimeoutArgs,
    hooks: TimeoutHooks,
    shared: Arc<Shared>,
    metrics: TimeoutMetrics,
}

impl TimeoutActor {
    /// Spawns an unsupervised timeout actor for the policy named `name` (the `timeout` metric
    /// label and the name status reports), with `args` (a [`TimeoutPolicy`] will do) and
    /// `hooks`.
    ///
    /// The actor is not registered under `name` in ractor's global registry, so several
    /// pools may share one configured policy name.
    ///
    /// # Errors
    /// ractor's [`SpawnErr`] if the actor fails to start.
    pub async fn spawn(
        name: &str,
        args: impl Into<TimeoutArgs>,
        hooks: TimeoutHooks,
    ) -> Result<TimeoutHandle, SpawnErr> {
        let (start, shared) = Self::start(name, args.into(), hooks);
        let (actor, _) = <Self as Actor>::spawn(None, TimeoutActor, start).await?;
        Ok(TimeoutHandle::new(actor, shared))
    }

    /// [`spawn`](Self::spawn), linked to `supervisor`.
    ///
    /// # Errors
    /// ractor's [`SpawnErr`] if the actor fails to start.
    pub async fn spawn_linked(
        name: &str,
        args: impl Into<TimeoutArgs>,
        hooks: TimeoutHooks,
        supervisor: ActorCell,
    ) -> Result<TimeoutHandle, SpawnErr> {
        let (start, shared) = Self::start(name, args.into(), hooks);
        let (actor, _) =
            <Self as Actor>::spawn_linked(None, TimeoutActor, start, supervisor).await?;
        Ok(TimeoutHandle::new(actor, shared))
    }

    fn start(name: &str, args: TimeoutArgs, hooks: TimeoutHooks) -> (TimeoutStart, Arc<Shared>) {
        let shared = Arc::new(Shared::new(name, &args.policy));
        // Registered in the caller's context, where its (possibly local) recorder is installed.
        let metrics = TimeoutMetrics::new(&shared.name);
        (
            TimeoutStart {
                args,
                hooks,
                shared: shared.clone(),
                metrics,
            },
            shared,
        )
    }
}

impl Actor for TimeoutActor {
    type Msg = TimeoutMsg;
    type State = TimeoutState;
    type Arguments = TimeoutStart;

    async fn pre_start(
        &self,
        _myself: ActorRef<TimeoutMsg>,
        start: TimeoutStart,
    ) -> Result<TimeoutState, ActorProcessingErr> {
        let TimeoutStart {
            args,
            hooks,
            shared,
            metrics,
        } = start;
        Ok(TimeoutState::new(
            shared,
            &args.policy,
            args.slow_operation_threshold,
            hooks,
            metrics,
        ))
    }

    async fn handle(
        &self,
        myself: ActorRef<TimeoutMsg>,
        message: TimeoutMsg,
        state: &mut TimeoutState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            TimeoutMsg::Drain => state.on_drain(&myself),
            TimeoutMsg::Record(recorded) => state.on_record(recorded),
            TimeoutMsg::Race(race) => state.on_race(&myself, race),
            TimeoutMsg::Replied(id) => state.on_replied(id, false),
            TimeoutMsg::ReplyLost(id) => state.on_replied(id, true),
            TimeoutMsg::TimerFired { generation } => state.on_timer(&myself, generation),
            TimeoutMsg::LateReply => state.on_late_reply(),
            TimeoutMsg::GetStatus(reply) => {
                state.drain();
                reply.send(state.status());
            }
            TimeoutMsg::Reconfigure(args, reply) => {
                reply.send(state.reconfigure(&args));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TimeoutMsg>,
        state: &mut TimeoutState,
    ) -> Result<(), ActorProcessingErr> {
        state.shut_down();
        Ok(())
    }
}
