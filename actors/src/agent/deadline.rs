//! [`AgentTimeout`]: where an agent's attempt deadlines come from — a timeout actor (shared, or
//! its own for a policy that needs an owner), or, for a static policy it owns, the policy kept
//! in place.

use std::sync::Arc;
use std::time::Duration;

use super::counts::WorkerCounts;
use crate::metrics::TimeoutOutcome;
use crate::timeout::{InlineTimeout, TimeoutHandle, TimeoutStatus};

/// An agent's deadline policy.
#[derive(Debug, Clone)]
pub(crate) enum AgentTimeout {
    /// A [`TimeoutActor`](crate::timeout::TimeoutActor): given to the builder (shared), or
    /// spawned for an adaptive policy (its estimate needs one writer).
    Actor(TimeoutHandle),
    /// A fixed or per-operation policy the agent owns: nothing to learn and no hooks, so no
    /// actor (see [`InlineTimeout`]).
    Inline(Arc<InlineTimeout>),
}

impl AgentTimeout {
    pub(crate) fn timeout_for(&self, operation: Option<&str>) -> Duration {
        match self {
            AgentTimeout::Actor(handle) => handle.timeout_for(operation),
            AgentTimeout::Inline(inline) => inline.timeout_for(operation),
        }
    }

    /// An attempt's sample; a policy kept in place counts it in the worker's own `counts`.
    pub(crate) fn record(
        &self,
        operation: Option<&str>,
        latency: Duration,
        outcome: TimeoutOutcome,
        counts: &WorkerCounts,
    ) {
        match self {
            AgentTimeout::Actor(handle) => handle.record(operation, latency, outcome),
            AgentTimeout::Inline(inline) => {
                counts.sample(outcome);
                inline.observe(latency, outcome);
            }
        }
    }

    pub(crate) fn late_reply(&self) {
        match self {
            AgentTimeout::Actor(handle) => handle.late_reply(),
            AgentTimeout::Inline(inline) => inline.late_reply(),
        }
    }

    pub(crate) fn handle(&self) -> Option<&TimeoutHandle> {
        match self {
            AgentTimeout::Actor(handle) => Some(handle),
            AgentTimeout::Inline(_) => None,
        }
    }

    /// The policy's counters; `samples`: what the workers counted for a policy kept in place.
    pub(crate) async fn status(&self, samples: [u64; 3]) -> Option<TimeoutStatus> {
        match self {
            AgentTimeout::Actor(handle) => handle.status().await,
            AgentTimeout::Inline(inline) => Some(inline.status_with(samples)),
        }
    }
}
