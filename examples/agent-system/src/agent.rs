//! The worker agent: one LLM call per task, through whichever provider the configuration names.

use std::sync::Arc;

use ractor_resilience::agent::{Agent, ErrorClass};
use ractor_resilience::task::TaskContext;

use crate::provider::http::HttpProvider;
use crate::provider::simulated::SimulatedProvider;
use crate::provider::{Completion, CompletionRequest, ProviderError};

/// The provider a worker calls.
#[derive(Debug, Clone)]
pub enum Provider {
    /// The simulated one.
    Simulated(SimulatedProvider),
    /// A real HTTP endpoint (one client shared by every worker).
    Http(Arc<HttpProvider>),
}

/// A worker agent: sends its task to the provider.
#[derive(Debug, Clone)]
pub struct LlmAgent {
    /// What it calls.
    pub provider: Provider,
}

impl Agent for LlmAgent {
    type Task = CompletionRequest;
    type Output = Completion;
    type Error = ProviderError;

    async fn handle(
        &mut self,
        task: CompletionRequest,
        ctx: TaskContext,
    ) -> Result<Completion, ProviderError> {
        match &self.provider {
            Provider::Simulated(p) => p.complete(&task, &ctx).await,
            Provider::Http(p) => p.complete(task, &ctx).await,
        }
    }

    fn classify(error: &ProviderError) -> ErrorClass {
        error.class()
    }

    /// A breaker per model, when the agent has a keyed breaker.
    fn breaker_key(task: &CompletionRequest) -> Option<&str> {
        task.model.as_deref()
    }
}
