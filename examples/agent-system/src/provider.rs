//! LLM providers the worker agents call: the simulated one (latency distribution, errors, rate
//! limits, outages, spikes) and a real OpenAI-compatible HTTP endpoint. Both end every request
//! in a [`Completion`] or a classified [`ProviderError`].

pub mod http;
pub mod simulated;

use std::time::Duration;

use ractor_resilience::agent::ErrorClass;
use serde::{Deserialize, Serialize};

/// One chat-completion request (the task a worker agent runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The user prompt.
    pub prompt: String,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// The model asked for (`[system.workload] models`); `None`: the provider's own.
    pub model: Option<std::sync::Arc<str>>,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Tokens used, as reported by the provider (0 if unknown).
    pub tokens: u32,
}

/// How a provider call failed. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// 429: rate limited; retry after the server's delay if it gave one.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 5xx or 408, or the simulated provider's injected error.
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// A short description (truncated).
        message: String,
    },
    /// 401 or 403: the API key is wrong, revoked or not allowed to use the model. Not a
    /// mistake of one request: every call fails the same way until the key is fixed.
    #[error("unauthorized {status}: {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// A short description (truncated).
        message: String,
    },
    /// Another 4xx: the request is wrong; not retryable, not the provider's fault.
    #[error("client error {status}: {message}")]
    Client {
        /// HTTP status.
        status: u16,
        /// A short description (truncated).
        message: String,
    },
    /// The body could not be understood.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("transport error: {0}")]
    Transport(String),
    /// The simulated provider is in an outage window.
    #[error("provider unavailable (outage)")]
    Outage,
}

impl ProviderError {
    /// Retry and breaker classification:
    ///
    /// - 429, 5xx, 408 (and outages, transport errors, malformed bodies) are
    ///   [`TRANSIENT`](ErrorClass::TRANSIENT): retried, and counted by the breaker.
    /// - 401 / 403 are [`PERMANENT`](ErrorClass::PERMANENT): retrying cannot help, but they are
    ///   not one caller's mistake either — a wrong or revoked key fails every call — so the
    ///   breaker counts them, opens, and stops sending doomed requests (each with the key) until
    ///   a probe succeeds.
    /// - Other 4xx (and unexpected 3xx) are [`CALLER_MISTAKE`](ErrorClass::CALLER_MISTAKE):
    ///   not retried, ignored by the breaker.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::RateLimited { retry_after } => {
                let class = ErrorClass::TRANSIENT;
                match retry_after {
                    Some(d) => class.with_retry_after(*d),
                    None => class,
                }
            }
            ProviderError::Server { .. } | ProviderError::Transport(_) | ProviderError::Outage => {
                ErrorClass::TRANSIENT
            }
            ProviderError::Malformed(_) => ErrorClass::TRANSIENT,
            ProviderError::Unauthorized { .. } => ErrorClass::PERMANENT,
            ProviderError::Client { .. } => ErrorClass::CALLER_MISTAKE,
        }
    }
}
