//! Agents on several nodes, on ractor's distribution layer `ractor_cluster` (feature `cluster`).
//!
//! ```text
//!  calling node                                            serving node (one per replica)
//!  AgentHandle<Remote<A>>::call                            Ingress (pg group agent.<name>)
//!  1 admit, agent breaker, queue (the usual stack)            │ decode the frame
//!  2 worker: Remote<A>::handle                                │ straight to a worker of A (as
//!      pick a replica: not tried by this task, node and       │   a local call goes): one
//!      replica breakers not open                              │   attempt, deadline = the time
//!                                                             │   the caller had left
//!      IngressMsg::Call(frame) ── ractor_cluster ───────────▶ │
//!      ◀────────────────────────────── Frame(Answer) ──────── │ encode the outcome
//!  3 the worker's attempt timeout races the reply (ractor's own call timeout is that plus a
//!    grace, so a timeout is reported as a timeout, never as a closed channel)
//!  4 retry (the usual supervisor) → another replica
//! ```
//!
//! - [`ClusterNode`]: one per process — the `NodeServer` with a listener of its own (port 0
//!   allowed, the real address reported), and the membership: node sessions, their node
//!   breakers, and node loss from session events and process-group leaves.
//! - [`serve`]: makes a local agent callable from other nodes (its [`Ingress`]).
//! - [`Remote`]: the calling side, an [`Agent`](crate::agent::Agent) whose attempts go to
//!   replicas; spawn it with the ordinary [`AgentBuilder`](crate::agent::AgentBuilder), so the
//!   caller's admission, timeout, retry and agent breaker apply unchanged.
//! - [`BreakerControl`]: cluster-wide breaker commands (force open, reset, disable) with
//!   last-writer-wins and a snapshot pushed to nodes that join.
//! - [`Frame`]: the versioned payload codec; decoding never panics.
//!
//! A node lost with calls in flight fails them at once as [`RemoteError::NodeLost`]:
//! retryable (on another replica: at-least-once, the task id travels as the idempotency key),
//! counted by the node and replica breakers, ignored by the agent breaker.
//!
//! Never model several nodes as several `NodeServer`s in one process (ractor's pid and process
//! group registries are process-global): one [`ClusterNode`] per process.

mod control;
mod frame;
mod ingress;
mod node;
mod remote;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use control::{
    BreakerCommand, BreakerControl, BreakerOp, CONTROL_GROUP, CommandAck, CommandReport,
    ControlMsg, control_scope,
};
pub use frame::{
    Answer, CallTag, FRAME_VERSION, Frame, FrameError, FrameKind, MAX_BODY, MIN_FRAME_VERSION,
    RemoteCall,
};
pub use ingress::{Ingress, IngressMsg, IngressState, group_name, serve};
pub use node::{ClusterNode, ClusterNodeError, NodeOptions, NodeView};
pub use remote::{Remote, RemoteError, RemoteOptions, RemoteTask};

/// An [`Agent`](crate::agent::Agent) that can be served to, and called from, other nodes: its
/// task, output and error are serde types. Implemented for every such agent.
pub trait RemoteAgent:
    crate::agent::Agent<
        Task: Serialize + DeserializeOwned,
        Output: Serialize + DeserializeOwned,
        Error: Serialize + DeserializeOwned,
    >
{
}

impl<A> RemoteAgent for A
where
    A: crate::agent::Agent,
    A::Task: Serialize + DeserializeOwned,
    A::Output: Serialize + DeserializeOwned,
    A::Error: Serialize + DeserializeOwned,
{
}
