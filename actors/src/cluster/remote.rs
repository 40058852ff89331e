//! The calling side: [`Remote<A>`], an agent whose attempts run on the replicas of agent `A`
//! served by other nodes. Spawned with the ordinary [`AgentBuilder`], so the caller's
//! admission, queue, attempt timeout, retry supervisor and agent breaker are the usual ones;
//! only the attempt itself crosses the network.
//!
//! ```text
//!  attempt (a worker of the calling agent; its timer races all of this)
//!  1 pick     pg members of agent.<name> on connected nodes whose node and replica breakers
//!             do not reject; one this task has not tried first; round robin
//!  2 permits  node breaker and replica breaker
//!  3 call     IngressMsg::Call(frame), ractor's timeout and the replica's deadline = the
//!             attempt's time left + grace, raced against the node's loss
//!  4 record   node breaker: node loss only; replica breaker: as the agent classifies, plus
//!             node loss, remote timeouts and crashes; the agent breaker (the caller's stack):
//!             as RemoteError classifies — node loss and refusals are ignored
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef};
use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CallOutcome, Permit};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::RemoteAgent;
use super::frame::{Answer, CallTag, Frame, FrameError, FrameKind, RemoteCall};
use super::ingress::{IngressMsg, group_name};
use super::node::{ClusterNode, Membership, NodeId, Session};
use crate::agent::{Agent, AgentBuilder, ErrorClass};
use crate::breaker::{BreakerActor, BreakerHandle, BreakerOptions};
use crate::task::{TaskContext, TaskEnvelope};

/// A task for a remote agent: the task itself, and the replicas its attempts have tried (shared
/// by every attempt of one task, so that a retry goes elsewhere).
///
/// ```
/// use ractor_resilience::cluster::RemoteTask;
///
/// let task: RemoteTask<String> = "hello".to_string().into();
/// assert_eq!(task.task(), "hello");
/// assert!(task.tried().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RemoteTask<T> {
    task: T,
    tried: Arc<Mutex<Tried>>,
}

/// The sessions (node id, node name) a task's attempts went to.
type Tried = Vec<(NodeId, Arc<str>)>;

impl<T> RemoteTask<T> {
    /// A fresh task (no replica tried).
    pub fn new(task: T) -> Self {
        RemoteTask {
            task,
            tried: Arc::default(),
        }
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The nodes its attempts went to, in order.
    pub fn tried(&self) -> Vec<String> {
        self.tried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, name)| name.to_string())
            .collect()
    }
}

impl<T> From<T> for RemoteTask<T> {
    fn from(task: T) -> Self {
        RemoteTask::new(task)
    }
}

/// Why a remote attempt failed.
///
/// ```
/// use ractor_resilience::agent::{Agent, CallOutcome};
/// use ractor_resilience::cluster::{Remote, RemoteError};
/// # use ractor_resilience::task::TaskContext;
/// # #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// # #[error("echo failed")]
/// # struct EchoError;
/// # struct Echo;
/// # impl Agent for Echo {
/// #     type Task = String; type Output = String; type Error = EchoError;
/// #     async fn handle(&mut self, s: String, _: TaskContext) -> Result<String, EchoError> { Ok(s) }
/// # }
///
/// let lost: RemoteError<EchoError> = RemoteError::NodeLost { node: "b".into(), resend: true };
/// let class = <Remote<Echo> as Agent>::classify(&lost);
/// assert!(class.retry, "retried on another replica");
/// assert_eq!(class.breaker, CallOutcome::Ignored, "not the agent's failure");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RemoteError<E> {
    /// The replica's agent returned an error (classified as the agent classifies it).
    #[error("agent error: {0}")]
    Agent(E),
    /// The node was lost (session closed, node left) with the attempt in flight, or could not
    /// be reached. The attempt may have run: a retry is at-least-once. Retryable unless
    /// re-sending after node loss is off; ignored by the agent breaker.
    #[error("node `{node}` lost during the attempt")]
    NodeLost {
        /// The node.
        node: String,
        /// Whether the task may be sent again ([`RemoteOptions::resend_on_node_loss`]).
        resend: bool,
    },
    /// No replica could take the attempt (none connected, or every node or replica breaker
    /// open). Counted by the agent breaker: the service as a whole is unavailable.
    #[error("no replica available")]
    NoReplica,
    /// The replica refused the attempt without running it (its breaker open, its agent full or
    /// stopping), or its node or replica breaker here refused a permit. Retryable elsewhere,
    /// ignored by the agent breaker.
    #[error("replica on `{node}` refused the attempt")]
    Refused {
        /// The node.
        node: String,
        /// When asking that replica again may succeed.
        retry_after: Option<Duration>,
    },
    /// The replica's own attempt timeout passed (or ractor's call timeout, past the grace).
    #[error("replica on `{node}` timed out after {after:?}")]
    TimedOut {
        /// The node.
        node: String,
        /// The timeout applied.
        after: Duration,
    },
    /// The replica's worker crashed during the attempt.
    #[error("replica on `{node}` lost its worker")]
    WorkerLost {
        /// The node.
        node: String,
    },
    /// A frame could not be made or read (on either side: version mismatch, corrupt bytes).
    #[error("bad frame: {0}")]
    Frame(FrameError),
}

/// How a [`Remote`] agent reaches its replicas.
///
/// # Default
/// Grace 50 ms, re-send after node loss on, replica breakers with the default
/// [`BreakerSettings`].
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::cluster::RemoteOptions;
///
/// let opts = RemoteOptions::default().with_resend_on_node_loss(false);
/// assert_eq!(opts.grace, Duration::from_millis(50));
/// assert!(!opts.resend_on_node_loss);
/// ```
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Added to the attempt's time left to make ractor's own call timeout and the replica's
    /// deadline: the caller's timer fires first, so a slow replica is reported as this
    /// attempt's timeout, never as a closed channel or as the replica's own timeout.
    pub grace: Duration,
    /// Whether a task whose attempt was in flight on a lost node may be sent again (it may
    /// have run there: at-least-once). Off for agents that are not idempotent.
    pub resend_on_node_loss: bool,
    /// The policy of the per-(agent, node) replica breakers.
    pub replica_breaker: BreakerSettings,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            grace: Duration::from_millis(50),
            resend_on_node_loss: true,
            replica_breaker: BreakerSettings::default(),
        }
    }
}

impl RemoteOptions {
    /// Sets whether tasks are re-sent after a node loss.
    pub fn with_resend_on_node_loss(mut self, resend: bool) -> Self {
        self.resend_on_node_loss = resend;
        self
    }

    /// Sets the grace added to ractor's call timeout.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// What every worker of one remote agent shares: where the replicas are and their breakers.
struct Replicas {
    agent: Arc<str>,
    group: String,
    membership: Arc<Membership>,
    opts: RemoteOptions,
    next: AtomicUsize,
    /// Drawn at random once: with `seq`, the tags of this agent's attempts.
    caller: u64,
    seq: AtomicU64,
}

/// The calling side of remote agent `A` (see the [module docs](crate::cluster)): an [`Agent`] whose
/// worker sends each attempt to a replica. Spawn it with [`Remote::builder`].
pub struct Remote<A> {
    replicas: Arc<Replicas>,
    _agent: PhantomData<fn() -> A>,
}

impl<A> std::fmt::Debug for Remote<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("agent", &self.replicas.agent)
            .finish_non_exhaustive()
    }
}

impl<A: RemoteAgent> Remote<A> {
    /// An [`AgentBuilder`] for the replicas of agent `name` in `node`'s cluster: set its
    /// workers (how many remote attempts may be in flight), timeout, retry policy and breaker
    /// as for a local agent, then spawn it. Its handle's `call` takes a [`RemoteTask`]
    /// (`task.into()`).
    pub fn builder(node: &ClusterNode, name: &str, opts: RemoteOptions) -> AgentBuilder<Self> {
        let replicas = Arc::new(Replicas {
            agent: name.into(),
            group: group_name(name),
            membership: node.membership.clone(),
            opts,
            next: AtomicUsize::new(0),
            caller: random_u64(),
            seq: AtomicU64::new(0),
        });
        AgentBuilder::new(name, move || Remote {
            replicas: replicas.clone(),
            _agent: PhantomData,
        })
    }
}

impl Replicas {
    /// A fresh tag for an attempt.
    fn tag(&self) -> CallTag {
        CallTag {
            caller: self.caller,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn breaker(&self, node: &str) -> Option<BreakerHandle> {
        self.membership.replica_breaker(&self.agent, node)
    }

    /// The replica breaker of `node`, spawned (and kept in the membership) by the first
    /// attempt that needs it.
    async fn breaker_for(&self, node: &Arc<str>) -> Option<BreakerHandle> {
        if let Some(b) = self.breaker(node) {
            return Some(b);
        }
        let spawned = BreakerActor::spawn(
            format!("{}@{node}", self.agent),
            self.opts.replica_breaker.clone(),
            BreakerOptions::default(),
        )
        .await
        .ok()?;
        let kept = self
            .membership
            .keep_replica_breaker(&self.agent, node, spawned.clone());
        if kept.actor().get_id() != spawned.actor().get_id() {
            // Another attempt made it first.
            spawned.stop();
        }
        Some(kept)
    }

    /// A replica for an attempt: on a connected node, node and replica breakers not rejecting
    /// now, preferring nodes this task has not tried; round robin (see [`choose`]).
    /// With it, the replica's breaker if it has one yet (looked up once per attempt).
    fn pick(&self, tried: &Tried) -> Option<(ActorCell, Session, Option<BreakerHandle>)> {
        let members = ractor::pg::get_scoped_members(&self.membership.scope, &self.group);
        let now = std::time::Instant::now();
        let candidates = members.into_iter().filter_map(|cell| {
            let id = cell.get_id();
            if id.is_local() {
                return None;
            }
            // Not ready yet, or lost: not a candidate.
            let session = self.membership.session(id.node())?;
            let replica = self.breaker(&session.name);
            let admits = !session.lost.is_cancelled()
                && !rejects(&session.breaker, now)
                && !replica.as_ref().is_some_and(|b| rejects(b, now));
            Some((id.node(), admits, (cell, session, replica)))
        });
        let tried: Vec<NodeId> = tried.iter().map(|(node, _)| *node).collect();
        choose(
            candidates,
            &tried,
            self.next.fetch_add(1, Ordering::Relaxed),
        )
    }
}

/// The routing rule, pure: among the candidates that admit, those on nodes not in `tried`
/// (else, all that admit); the `turn`-th of them, round robin. `None` when none admits.
fn choose<T>(
    candidates: impl IntoIterator<Item = (NodeId, bool, T)>,
    tried: &[NodeId],
    turn: usize,
) -> Option<T> {
    let mut fresh = Vec::new();
    let mut again = Vec::new();
    for (node, admits, candidate) in candidates {
        if !admits {
            continue;
        }
        if tried.contains(&node) {
            again.push(candidate);
        } else {
            fresh.push(candidate);
        }
    }
    let mut pool = if fresh.is_empty() { again } else { fresh };
    if pool.is_empty() {
        return None;
    }
    let i = turn % pool.len();
    Some(pool.swap_remove(i))
}

/// Whether a breaker's published state rejects now (no permit taken, nothing counted).
fn rejects(breaker: &BreakerHandle, now: std::time::Instant) -> bool {
    match breaker.state() {
        BreakerState::ForcedOpen => true,
        BreakerState::Open => breaker.open_until().is_none_or(|until| until > now),
        _ => false,
    }
}

/// The node and replica permits of one attempt. Dropped unrecorded (the caller's attempt
/// timeout or cancellation dropped the attempt): the node did nothing wrong (ignored), the
/// replica failed if the attempt's deadline had passed (a timeout), else it is ignored.
struct Permits {
    node: Option<(BreakerHandle, Permit)>,
    replica: Option<(BreakerHandle, Permit)>,
    started: Instant,
    deadline: Option<Instant>,
}

impl Permits {
    fn record(mut self, node: CallOutcome, replica: CallOutcome) {
        let took = self.started.elapsed();
        if let Some((b, p)) = self.node.take() {
            b.record(p, node, took);
        }
        if let Some((b, p)) = self.replica.take() {
            b.record(p, replica, took);
        }
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        let now = Instant::now();
        let took = now.saturating_duration_since(self.started);
        if let Some((b, p)) = self.node.take() {
            b.record(p, CallOutcome::Ignored, took);
        }
        if let Some((b, p)) = self.replica.take() {
            let timed_out = self.deadline.is_some_and(|d| now >= d);
            let outcome = if timed_out {
                CallOutcome::Failure
            } else {
                CallOutcome::Ignored
            };
            b.record(p, outcome, took);
        }
    }
}

/// When an attempt has no deadline (a worker always gives one): ractor's call still needs one.
const NO_DEADLINE_BOUND: Duration = Duration::from_secs(300);

/// The call a remote attempt sends: the task with its id, attempt, the deadline the serving
/// node gets, the operation and breaker key its caller gave (per-operation timeouts and keyed
/// breakers apply there too), and the tag a `Cancel` names. The serving node makes one attempt.
fn remote_call<T>(
    task: T,
    ctx: &TaskContext,
    deadline_in: Option<Duration>,
    tag: CallTag,
) -> RemoteCall<T> {
    let mut envelope = TaskEnvelope::new(task);
    envelope.id = ctx.id;
    envelope.attempt = ctx.attempt;
    envelope.deadline_in = deadline_in;
    envelope.retried_upstream = true;
    envelope.operation = ctx.operation.clone();
    envelope.breaker_key = ctx.breaker_key.clone();
    RemoteCall::new(envelope).with_tag(tag)
}

/// A number no other process (and no other remote agent here) is likely to draw: std's
/// randomly keyed hasher (its keys come from the OS) over the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish()
}

/// Casts `Cancel(tag)` to the serving node's ingress when dropped armed: the attempt was given
/// up before its answer.
struct CancelOnDrop {
    ingress: Option<(ActorRef<IngressMsg>, CallTag)>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((ingress, tag)) = self.ingress.take() {
            if let Ok(frame) = Frame::encode(FrameKind::Cancel, &tag) {
                // The node may be gone: then there is nothing to stop.
                let _ = ingress.cast(IngressMsg::Cancel(frame));
            }
        }
    }
}

impl<A: RemoteAgent> Agent for Remote<A> {
    type Task = RemoteTask<A::Task>;
    type Output = A::Output;
    type Error = RemoteError<A::Error>;

    async fn handle(
        &mut self,
        task: RemoteTask<A::Task>,
        ctx: TaskContext,
    ) -> Result<A::Output, RemoteError<A::Error>> {
        let replicas = &self.replicas;
        let started = Instant::now();
        // 1 pick
        let picked = {
            let tried = task.tried.lock().unwrap_or_else(|e| e.into_inner());
            replicas.pick(&tried)
        };
        let Some((cell, session, replica)) = picked else {
            return Err(RemoteError::NoReplica);
        };
        task.tried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((cell.get_id().node(), session.name.clone()));
        // The node's name as the errors carry it: made only for an error.
        let node = || session.name.to_string();
        // 2 permits
        let refused = |retry_after| RemoteError::Refused {
            node: node(),
            retry_after,
        };
        let mut permits = Permits {
            node: None,
            replica: None,
            started,
            deadline: ctx.deadline,
        };
        match session.breaker.acquire().await {
            Ok(p) => permits.node = Some((session.breaker.clone(), p)),
            Err(r) => {
                return Err(refused(
                    r.retry_after
                        .map(|at| at.saturating_duration_since(std::time::Instant::now())),
                ));
            }
        }
        let replica = match replica {
            Some(replica) => Some(replica),
            // Boxed: spawning a breaker actor is a large future, and only a replica's first
            // attempt takes this path (the attempt's future stays small for every other).
            None => Box::pin(replicas.breaker_for(&session.name)).await,
        };
        if let Some(replica) = replica {
            match replica.acquire().await {
                Ok(p) => permits.replica = Some((replica, p)),
                Err(r) => {
                    return Err(refused(
                        r.retry_after
                            .map(|at| at.saturating_duration_since(std::time::Instant::now())),
                    ));
                }
            }
        }
        // 3 call
        let left = ctx
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        // The replica's deadline is the time left plus the grace, like ractor's timeout below:
        // this attempt's own timer fires first, so running out of the caller's time is reported
        // here as the attempt's timeout, never as the replica's (measured: with the bare time
        // left, the replica's answer sometimes won the race).
        let grace = replicas.opts.grace;
        let tag = replicas.tag();
        let call = remote_call(task.task, &ctx, left.map(|left| left + grace), tag);
        let frame = match Frame::encode(FrameKind::Call, &call) {
            Ok(frame) => frame,
            Err(e) => {
                permits.record(CallOutcome::Ignored, CallOutcome::Ignored);
                return Err(RemoteError::Frame(e));
            }
        };
        let timeout = left.unwrap_or(NO_DEADLINE_BOUND) + grace;
        let ingress: ActorRef<IngressMsg> = cell.into();
        // If this attempt is given up before the answer (its timeout, the caller's
        // cancellation or deadline drop this future), the serving node is told to stop it.
        let mut cancel = CancelOnDrop {
            ingress: Some((ingress.clone(), tag)),
        };
        let call = ingress.call(|port| IngressMsg::Call(frame, port), Some(timeout));
        let reply = tokio::select! {
            biased;
            () = session.lost.cancelled() => None,
            reply = call => Some(reply),
        };
        if !matches!(reply, Some(Ok(CallResult::Timeout))) {
            // Answered, or the node is gone: nothing to stop there.
            cancel.ingress = None;
        }
        drop(cancel);
        // 4 record
        let lost = || RemoteError::NodeLost {
            node: node(),
            resend: replicas.opts.resend_on_node_loss,
        };
        let frame = match reply {
            Some(Ok(CallResult::Success(frame))) => frame,
            Some(Ok(CallResult::Timeout)) => {
                permits.record(CallOutcome::Ignored, CallOutcome::Failure);
                return Err(RemoteError::TimedOut {
                    node: node(),
                    after: timeout,
                });
            }
            // The session closed the reply port, the shim is gone, or the node's loss came
            // first: the node is lost (with the grace, a slow replica never ends here).
            None | Some(Ok(CallResult::SenderError)) | Some(Err(_)) => {
                permits.record(CallOutcome::Failure, CallOutcome::Failure);
                return Err(lost());
            }
        };
        let answer: Answer<A::Output, A::Error> = match frame.decode(FrameKind::Answer) {
            Ok(answer) => answer,
            Err(e) => {
                permits.record(CallOutcome::Success, CallOutcome::Failure);
                return Err(RemoteError::Frame(e));
            }
        };
        let (replica, result) = match answer {
            Answer::Ok(output) => (CallOutcome::Success, Ok(output)),
            Answer::Agent(e) => (A::classify(&e).breaker, Err(RemoteError::Agent(e))),
            Answer::TimedOut { after } => (
                CallOutcome::Failure,
                Err(RemoteError::TimedOut {
                    node: node(),
                    after,
                }),
            ),
            Answer::Rejected { retry_after } => (CallOutcome::Ignored, Err(refused(retry_after))),
            Answer::Overloaded | Answer::Unavailable => (CallOutcome::Ignored, Err(refused(None))),
            Answer::WorkerLost => (
                CallOutcome::Failure,
                Err(RemoteError::WorkerLost { node: node() }),
            ),
            Answer::BadRequest(e) => (CallOutcome::Failure, Err(RemoteError::Frame(e))),
        };
        // The node answered: it is alive.
        permits.record(CallOutcome::Success, replica);
        result
    }

    fn breaker_key(task: &RemoteTask<A::Task>) -> Option<&str> {
        A::breaker_key(&task.task)
    }

    fn classify(error: &RemoteError<A::Error>) -> ErrorClass {
        let elsewhere = |retry_after: Option<Duration>| ErrorClass {
            retry: true,
            breaker: CallOutcome::Ignored,
            retry_after,
        };
        match error {
            RemoteError::Agent(e) => A::classify(e),
            RemoteError::NodeLost { resend, .. } => ErrorClass {
                retry: *resend,
                breaker: CallOutcome::Ignored,
                retry_after: None,
            },
            // Another replica need not wait for this one's pushback.
            RemoteError::Refused { .. } => elsewhere(None),
            RemoteError::Frame(_) => elsewhere(None),
            RemoteError::NoReplica
            | RemoteError::TimedOut { .. }
            | RemoteError::WorkerLost { .. } => ErrorClass::TRANSIENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CancelOnDrop, choose, remote_call};
    use crate::agent::{Agent, AgentBuilder, CallOptions};
    use crate::cluster::{Answer, CallTag, Frame, FrameKind, IngressMsg, RemoteCall};
    use crate::task::{CancellationToken, TaskContext, TaskEnvelope, TaskId};

    #[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
    #[error("never")]
    struct Never;

    /// Answers what its context carries, or waits for its cancellation.
    struct Probe;

    impl Agent for Probe {
        type Task = bool;
        type Output = String;
        type Error = Never;

        async fn handle(&mut self, wait: bool, ctx: TaskContext) -> Result<String, Never> {
            if wait {
                ctx.cancel().cancelled().await;
                return Ok("cancelled".into());
            }
            Ok(format!(
                "{}/{}",
                ctx.operation.as_deref().unwrap_or("-"),
                ctx.breaker_key.as_deref().unwrap_or("-")
            ))
        }
    }

    #[test]
    fn the_remote_call_carries_the_attempts_operation_key_and_tag() {
        let ctx = TaskContext::new(TaskId(5), 2, None, CancellationToken::new(), true)
            .with_operation("summarise")
            .with_breaker_key("gpt-4o");
        let tag = CallTag { caller: 3, seq: 4 };
        let call = remote_call("t", &ctx, Some(Duration::from_millis(80)), tag);
        assert_eq!(call.tag, Some(tag));
        let env = &call.envelope;
        assert_eq!((env.id, env.attempt), (TaskId(5), 2));
        assert_eq!(env.deadline_in, Some(Duration::from_millis(80)));
        assert!(env.retried_upstream, "one attempt there");
        assert_eq!(env.operation.as_deref(), Some("summarise"));
        assert_eq!(env.breaker_key.as_deref(), Some("gpt-4o"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempts_context_carries_its_callers_operation_and_key() {
        let agent = AgentBuilder::new("ctx-probe", || Probe)
            .spawn()
            .await
            .unwrap();
        let opts = CallOptions::default()
            .with_operation("summarise")
            .with_breaker_key("gpt-4o");
        assert_eq!(
            agent.call_with(false, opts).await.unwrap(),
            "summarise/gpt-4o"
        );
        assert_eq!(agent.call(false).await.unwrap(), "-/-");
        agent.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_given_up_tells_the_serving_node_to_stop() {
        let agent = AgentBuilder::new("cancel-probe", || Probe)
            .spawn()
            .await
            .unwrap();
        let ingress = crate::cluster::serve(agent.clone(), "remote-cancel-test", "n")
            .await
            .unwrap();
        let tag = CallTag { caller: 1, seq: 1 };
        let call = RemoteCall::new(TaskEnvelope::new(true).with_deadline(Duration::from_secs(60)))
            .with_tag(tag);
        let frame = Frame::encode(FrameKind::Call, &call).unwrap();
        let serving = ingress.clone();
        let answer = tokio::spawn(async move {
            serving
                .call(
                    |port| IngressMsg::Call(frame, port),
                    Some(Duration::from_secs(120)),
                )
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Disarmed (the attempt was answered): nothing is sent.
        drop(CancelOnDrop { ingress: None });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!answer.is_finished());
        // Armed, as when the caller's timeout drops the attempt.
        let started = tokio::time::Instant::now();
        drop(CancelOnDrop {
            ingress: Some((ingress.clone(), tag)),
        });
        let reply = answer.await.unwrap().unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        let answer: Answer<String, Never> = reply.decode(FrameKind::Answer).unwrap();
        // The agent saw its signal (it answers at once when it fires, before the race of its
        // attempt looks at the signal itself).
        assert_eq!(answer, Answer::Ok("cancelled".into()), "cancelled there");
        ingress.stop(None);
        agent.stop();
    }

    #[test]
    fn an_untried_replica_comes_first() {
        let candidates = [(1, true, "a"), (2, true, "b"), (3, true, "c")];
        for turn in 0..6 {
            let picked = choose(candidates, &[1, 3], turn);
            assert_eq!(picked, Some("b"), "turn {turn}");
        }
    }

    #[test]
    fn replicas_whose_breakers_reject_are_skipped() {
        let candidates = [(1, false, "a"), (2, true, "b"), (3, false, "c")];
        assert_eq!(choose(candidates, &[], 0), Some("b"));
        assert_eq!(choose(candidates, &[], 1), Some("b"));
        assert_eq!(
            choose(candidates, &[2], 0),
            Some("b"),
            "tried, but the only one"
        );
    }

    #[test]
    fn no_replica_admitting_is_none() {
        assert_eq!(choose([(1, false, "a"), (2, false, "b")], &[], 0), None);
        assert_eq!(choose(Vec::<(u64, bool, &str)>::new(), &[], 0), None);
    }

    #[test]
    fn untried_replicas_take_turns() {
        let candidates = [(1, true, "a"), (2, true, "b"), (3, true, "c")];
        let picked: Vec<_> = (0..6).filter_map(|t| choose(candidates, &[], t)).collect();
        for name in ["a", "b", "c"] {
            assert_eq!(
                picked.iter().filter(|p| **p == name).count(),
                2,
                "{picked:?}"
            );
        }
    }

    #[test]
    fn when_every_admitting_replica_was_tried_they_take_turns() {
        let candidates = [(1, true, "a"), (2, true, "b"), (3, false, "c")];
        let picked: Vec<_> = (0..4)
            .filter_map(|t| choose(candidates, &[1, 2], t))
            .collect();
        assert_eq!(picked.len(), 4);
        assert!(picked.contains(&"a") && picked.contains(&"b"));
    }
}
