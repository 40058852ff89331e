//! The serving side: one [`Ingress`] actor per agent per node, the only actor of the agent that
//! other nodes can reach. It joins the process group `agent.<name>` of the cluster's scope and
//! speaks one non-generic message, [`IngressMsg`], whose payloads are [`Frame`]s.
//!
//! ```text
//!  remote caller ── IngressMsg::Call(frame) ──▶ Ingress (decode; no await in handle)
//!                                                 └─ the agent's dispatcher: one attempt,
//!                                                    deadline = the time it had left, straight
//!                                                    to an idle worker (not through the
//!                                                    agent's actor)
//!  remote caller ◀── Frame(Answer) ─────────────── the worker, as the attempt ends (encode)
//! ```
//!
//! A frame that does not decode is answered [`Answer::BadRequest`]: the caller never waits for
//! a reply that will not come. The serving node runs exactly one attempt
//! (`retried_upstream = true`): the caller retries, on another replica. The call's operation and
//! breaker key apply here as they would to a local call (per-operation timeouts, the key's
//! breaker in a keyed family). A call with a [`CallTag`] gets a cancellation signal of its own:
//! `IngressMsg::Cancel` naming that tag (the caller gave up: its timeout, its cancellation, its
//! deadline) fires it, and the attempt here stops as a local cancelled one does.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use ractor_cluster::RactorClusterMessage;

use super::RemoteAgent;
use super::frame::{Answer, CallTag, Frame, FrameError, FrameKind, RemoteCall};
use crate::agent::{AgentHandle, AttemptError, CallError, CallOptions, Outcome};
use crate::task::CancellationToken;

/// What an [`Ingress`] accepts from any node of the cluster. One protocol for every agent: the
/// payloads are versioned [`Frame`]s, so no user type needs `BytesConvertable`.
#[derive(RactorClusterMessage)]
pub enum IngressMsg {
    /// Run one attempt of a [`RemoteCall`] frame; answered with an [`Answer`] frame.
    #[rpc]
    Call(Frame, RpcReplyPort<Frame>),
    /// A liveness probe; answered with a `Pong` frame holding the node's name.
    #[rpc]
    Ping(RpcReplyPort<Frame>),
    /// The caller gave up the attempt whose [`CallTag`] this `Cancel` frame names: fire its
    /// cancellation signal (nothing if it already ended). Not answered. A node older than
    /// frame version 2 drops it undecoded; the attempt there then ends at its own deadline.
    Cancel(Frame),
}

impl std::fmt::Debug for IngressMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngressMsg::Call(frame, _) => write!(f, "IngressMsg::Call({} bytes)", frame.len()),
            IngressMsg::Ping(_) => f.write_str("IngressMsg::Ping"),
            IngressMsg::Cancel(_) => f.write_str("IngressMsg::Cancel"),
        }
    }
}

/// The process group an agent's ingress actors join: `agent.<name>`.
///
/// ```
/// assert_eq!(ractor_resilience::cluster::group_name("llm"), "agent.llm");
/// ```
pub fn group_name(agent: &str) -> String {
    format!("agent.{agent}")
}

/// The ingress actor of one agent on one node (see the [module docs](crate::cluster)).
pub struct Ingress<A>(PhantomData<fn() -> A>);

impl<A> std::fmt::Debug for Ingress<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ingress")
    }
}

/// The cancellation signals of the tagged calls in flight, removed by each call's outcome.
type InFlight = Arc<Mutex<HashMap<CallTag, CancellationToken>>>;

/// An [`Ingress`]'s state: the agent it serves and where it is registered.
pub struct IngressState<A: RemoteAgent> {
    agent: AgentHandle<A>,
    scope: String,
    group: String,
    node: String,
    in_flight: InFlight,
}

impl<A: RemoteAgent> std::fmt::Debug for IngressState<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressState")
            .field("scope", &self.scope)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Spawns the ingress of `agent` and joins it to `agent.<name>` in process-group scope `scope`
/// (the cluster's name). `node` is what probes answer. Stop the returned actor to stop serving
/// (it leaves the group first; the agent keeps running).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::agent::{Agent, AgentBuilder};
/// use ractor_resilience::cluster::{self, Answer, Frame, FrameKind, IngressMsg, RemoteCall};
/// use ractor_resilience::task::{TaskContext, TaskEnvelope};
///
/// #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// #[error("upper failed")]
/// struct UpperError;
///
/// struct Upper;
/// impl Agent for Upper {
///     type Task = String;
///     type Output = String;
///     type Error = UpperError;
///     async fn handle(&mut self, s: String, _ctx: TaskContext) -> Result<String, UpperError> {
///         Ok(s.to_uppercase())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let agent = AgentBuilder::new("upper", || Upper).spawn().await.unwrap();
/// let ingress = cluster::serve(agent.clone(), "doc-cluster", "node-a").await.unwrap();
/// let call = RemoteCall::new(TaskEnvelope::new("hi".to_string()).with_deadline(Duration::from_secs(1)));
/// let frame = Frame::encode(FrameKind::Call, &call).unwrap();
/// let reply = ingress
///     .call(|port| IngressMsg::Call(frame, port), Some(Duration::from_secs(2)))
///     .await
///     .unwrap()
///     .unwrap();
/// let answer: Answer<String, UpperError> = reply.decode(FrameKind::Answer).unwrap();
/// assert!(matches!(answer, Answer::Ok(s) if s == "HI"));
/// ingress.stop(None);
/// agent.stop();
/// # });
/// ```
///
/// # Errors
/// ractor's, if the actor cannot be spawned.
pub async fn serve<A: RemoteAgent>(
    agent: AgentHandle<A>,
    scope: &str,
    node: &str,
) -> Result<ActorRef<IngressMsg>, SpawnErr> {
    let state = IngressState {
        group: group_name(agent.name()),
        agent,
        scope: scope.to_owned(),
        node: node.to_owned(),
        in_flight: InFlight::default(),
    };
    let (actor, _) = Actor::spawn(None, Ingress::<A>(PhantomData), state).await?;
    Ok(actor)
}

impl<A: RemoteAgent> Actor for Ingress<A> {
    type Msg = IngressMsg;
    type State = IngressState<A>;
    type Arguments = IngressState<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<IngressMsg>,
        state: IngressState<A>,
    ) -> Result<IngressState<A>, ActorProcessingErr> {
        ractor::pg::join_scoped(
            state.scope.clone(),
            state.group.clone(),
            vec![myself.get_cell()],
        );
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<IngressMsg>,
        state: &mut IngressState<A>,
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::leave_scoped(
            state.scope.clone(),
            state.group.clone(),
            vec![myself.get_cell()],
        );
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IngressMsg>,
        msg: IngressMsg,
        state: &mut IngressState<A>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            IngressMsg::Call(frame, port) => {
                serve_call(&state.agent, &state.in_flight, &frame, port);
            }
            IngressMsg::Ping(port) => {
                if let Ok(pong) = Frame::encode(FrameKind::Pong, &state.node) {
                    let _ = port.send(pong);
                }
            }
            IngressMsg::Cancel(frame) => match frame.decode::<CallTag>(FrameKind::Cancel) {
                Ok(tag) => {
                    let token = lock(&state.in_flight).remove(&tag);
                    if let Some(token) = token {
                        token.cancel();
                    }
                }
                Err(e) => tracing::debug!(error = %e, "bad remote cancel frame"),
            },
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Decodes a call and hands it to the agent's dispatcher as one attempt (straight to an idle
/// worker, as a local `call` does: not through the agent's actor); the outcome (or the refusal,
/// or the decoding error) goes back on `port`, from the worker that ran it. Never awaits.
fn serve_call<A: RemoteAgent>(
    agent: &AgentHandle<A>,
    in_flight: &InFlight,
    frame: &Frame,
    port: RpcReplyPort<Frame>,
) {
    let call = match RemoteCall::<A::Task>::from_frame(frame) {
        Ok(call) => call,
        Err(e) => {
            tracing::debug!(agent = agent.name(), error = %e, "bad remote call frame");
            answer::<A>(port, Answer::BadRequest(e));
            return;
        }
    };
    // The envelope's id, deadline left, operation and breaker key; the caller retries (on
    // another replica): one attempt here.
    let mut opts = CallOptions::from_envelope(&call.envelope);
    opts.retried_upstream = true;
    // A tagged call can be cancelled by its caller: its signal is kept until its outcome.
    let tag = call.tag.map(|tag| {
        let token = CancellationToken::new();
        opts.cancel = Some(token.clone());
        lock(in_flight).insert(tag, token);
        (tag, in_flight.clone())
    });
    // Called exactly once: at once if the task is refused, else with the attempt's outcome.
    agent.attempt_once(call.envelope.task, opts, move |outcome: Outcome<A>| {
        if let Some((tag, in_flight)) = &tag {
            lock(in_flight).remove(tag);
        }
        answer::<A>(port, answer_of::<A>(outcome));
    });
}

type AnswerOf<A> = Answer<<A as crate::agent::Agent>::Output, <A as crate::agent::Agent>::Error>;

fn answer<A: RemoteAgent>(port: RpcReplyPort<Frame>, answer: AnswerOf<A>) {
    let frame = Frame::encode(FrameKind::Answer, &answer).or_else(|e| {
        // The output or error would not encode (or is too large): say so, in a frame that does.
        Frame::encode(
            FrameKind::Answer,
            &AnswerOf::<A>::BadRequest(FrameError::Body(format!("answer: {e}"))),
        )
    });
    if let Ok(frame) = frame {
        // The caller may have gone (its timeout): nobody to tell.
        let _ = port.send(frame);
    }
}

/// The answer for a serving node's outcome of one attempt.
pub(crate) fn answer_of<A: RemoteAgent>(outcome: Outcome<A>) -> AnswerOf<A> {
    match outcome {
        Ok(output) => Answer::Ok(output),
        Err(CallError::Failed { source, .. }) => match source {
            AttemptError::Agent(e) => Answer::Agent(e),
            AttemptError::WorkerLost => Answer::WorkerLost,
            AttemptError::NoWorker => Answer::Unavailable,
            AttemptError::TimedOut { after } => Answer::TimedOut { after },
        },
        Err(CallError::TimedOut { after, .. }) => Answer::TimedOut { after },
        Err(CallError::Rejected { retry_after, .. }) => Answer::Rejected { retry_after },
        Err(CallError::Overloaded { .. }) => Answer::Overloaded,
        Err(CallError::Cancelled | CallError::Unavailable) => Answer::Unavailable,
    }
}
