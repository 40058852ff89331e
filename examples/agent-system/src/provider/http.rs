//! The OpenAI-compatible HTTP provider (`kind = "http"`): `POST {base_url}/chat/completions`
//! with a bearer key read from an environment variable.
//!
//! Every request ends in a [`Completion`] or a classified [`ProviderError`], within the
//! request timeout (or the attempt's deadline, whichever is sooner) and promptly after the
//! attempt is cancelled:
//!
//! | what happened | error | class |
//! | --- | --- | --- |
//! | 2xx with a chat-completion body | (`Ok`) | |
//! | 429 | `RateLimited { retry_after }` from `Retry-After` (seconds or HTTP-date, capped at 10 min) | transient, with pushback |
//! | 5xx, 408 | `Server` | transient |
//! | 401, 403 | `Unauthorized` | permanent: not retried, counted by the breaker (a bad key fails every call) |
//! | other 4xx (and unexpected 3xx) | `Client` | caller's mistake: not retried, ignored by the breaker |
//! | bad JSON, wrong types, missing fields, truncated or oversized body | `Malformed` | transient |
//! | refused, reset, not HTTP, timeout, cancellation | `Transport` | transient |
//!
//! The key is sent only in the `Authorization` header (marked sensitive). It never appears in
//! the provider's `Debug`, nor in any error message: messages are stripped of it (in case a
//! server echoes it) and truncated to a few hundred characters. Bodies are read incrementally
//! and never buffered past [`HttpProviderSettings::max_body_bytes`].
//!
//! TLS is rustls with the `ring` crypto provider and the bundled Mozilla roots (webpki-roots),
//! so nothing depends on OpenSSL or on the machine's certificate store. HTTP proxies named in
//! the usual environment variables (`HTTPS_PROXY`, `NO_PROXY`, …) are honoured.

mod response;
mod settings;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ractor_resilience::task::TaskContext;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::time::{Instant, timeout_at};

pub use settings::HttpProviderSettings;

use super::{Completion, CompletionRequest, ProviderError};
use response::{
    ERROR_BODY_PREFIX, error_chain, error_message, parse_completion, read_body, read_prefix,
    sanitize, status_error,
};

/// The shortest API key accepted, in characters. Messages are stripped of whole occurrences of
/// the key; a shorter key is refused at startup instead.
pub const MIN_API_KEY_CHARS: usize = 8;

/// Why an [`HttpProvider`] could not be built. Messages name the environment variable, never
/// its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderSetupError {
    /// The API key variable is not set.
    #[error("the API key environment variable `{variable}` is not set")]
    MissingApiKey {
        /// The variable's name.
        variable: String,
    },
    /// The API key variable is set but empty (or only whitespace).
    #[error("the API key environment variable `{variable}` is empty")]
    EmptyApiKey {
        /// The variable's name.
        variable: String,
    },
    /// The key is shorter than [`MIN_API_KEY_CHARS`]: no real provider issues such keys, and
    /// redacting it from messages would redact every occurrence of its few characters.
    #[error(
        "the API key in `{variable}` is shorter than {min} characters: set `{variable}` to the provider's full key"
    )]
    ShortApiKey {
        /// The variable's name.
        variable: String,
        /// The shortest key accepted.
        min: usize,
    },
    /// The key cannot be sent in an HTTP header (not Unicode, or control characters).
    #[error("the API key in `{variable}` is not a valid HTTP header value")]
    InvalidApiKey {
        /// The variable's name.
        variable: String,
    },
    /// A setting is out of range.
    #[error("invalid HTTP provider setting `{field}`: {reason}")]
    InvalidSetting {
        /// The setting's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// A client for an OpenAI-compatible chat-completions endpoint. Cheap to clone (one shared
/// connection pool).
#[derive(Clone)]
pub struct HttpProvider {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HttpProviderSettings,
    endpoint: reqwest::Url,
    client: reqwest::Client,
    /// `Bearer <key>`, marked sensitive.
    authorization: HeaderValue,
    /// The bare key, kept only to strip it from messages.
    key: String,
}

impl fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("HttpProvider")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("model", &s.model)
            .field("api_key_env", &s.api_key_env)
            .field("api_key", &"<redacted>")
            .field("request_timeout", &s.request_timeout)
            .field("max_body_bytes", &s.max_body_bytes)
            .finish()
    }
}

/// Which bound ends a request.
#[derive(Clone, Copy)]
struct Limit {
    at: Instant,
    budget: Duration,
    what: &'static str,
}

impl Limit {
    fn timeout(self, stage: &str) -> ProviderError {
        ProviderError::Transport(format!(
            "timed out {stage} ({} {} passed)",
            humantime::format_duration(Duration::from_millis(self.budget.as_millis() as u64)),
            self.what
        ))
    }
}

impl HttpProvider {
    /// Builds the provider, reading the API key from the environment variable named by
    /// [`HttpProviderSettings::api_key_env`].
    pub fn new(settings: HttpProviderSettings) -> Result<HttpProvider, ProviderSetupError> {
        Self::with_key_lookup(settings, |name| std::env::var_os(name))
    }

    /// Builds the provider with the API key from `lookup(api_key_env)` instead of the process
    /// environment (tests, secret stores). `None` means the variable is not set.
    pub fn with_key_lookup<V: Into<std::ffi::OsString>>(
        settings: HttpProviderSettings,
        lookup: impl FnOnce(&str) -> Option<V>,
    ) -> Result<HttpProvider, ProviderSetupError> {
        let endpoint = settings.validate()?;
        let variable = || settings.api_key_env.clone();
        let raw = lookup(&settings.api_key_env)
            .ok_or_else(|| ProviderSetupError::MissingApiKey {
                variable: variable(),
            })?
            .into();
        let key = raw
            .into_string()
            .map_err(|_| ProviderSetupError::InvalidApiKey {
                variable: variable(),
            })?
            .trim()
            .to_owned();
        if key.is_empty() {
            return Err(ProviderSetupError::EmptyApiKey {
                variable: variable(),
            });
        }
        if key.chars().count() < MIN_API_KEY_CHARS {
            return Err(ProviderSetupError::ShortApiKey {
                variable: variable(),
                min: MIN_API_KEY_CHARS,
            });
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            ProviderSetupError::InvalidApiKey {
                variable: variable(),
            }
        })?;
        authorization.set_sensitive(true);

        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = tls_config(roots).map_err(|e| ProviderSetupError::Client(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("agent-system/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderSetupError::Client(sanitize(&error_chain(&e), &key)))?;
        Ok(HttpProvider {
            inner: Arc::new(Inner {
                settings,
                endpoint,
                client,
                authorization,
                key,
            }),
        })
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &HttpProviderSettings {
        &self.inner.settings
    }

    /// Asks for one completion. Ends within the request timeout or by `ctx.deadline`,
    /// whichever is sooner, and as soon as `ctx.cancel()` fires; never panics on a bad response.
    pub fn complete(
        &self,
        req: CompletionRequest,
        ctx: &TaskContext,
    ) -> impl Future<Output = Result<Completion, ProviderError>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let cancel = ctx.cancel().clone();
        let attempt_deadline = ctx.deadline;
        async move {
            let now = Instant::now();
            let budget = inner.settings.request_timeout;
            let mut limit = Limit {
                at: now + budget,
                budget,
                what: "request_timeout",
            };
            if let Some(deadline) = attempt_deadline.filter(|d| *d < limit.at) {
                let budget = deadline.saturating_duration_since(now);
                limit = Limit {
                    at: deadline,
                    budget,
                    what: "until the attempt's deadline",
                };
            }
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    Err(ProviderError::Transport("request cancelled (attempt abandoned)".into()))
                }
                result = inner.request(&req, limit) => result,
            };
            result.map_err(|e| inner.clean(e))
        }
    }
}

impl Inner {
    async fn request(
        &self,
        req: &CompletionRequest,
        limit: Limit,
    ) -> Result<Completion, ProviderError> {
        let body = serde_json::json!({
            // The task's model when the workload names models; the endpoint's own otherwise.
            "model": req.model.as_deref().unwrap_or(&self.settings.model),
            "messages": [{ "role": "user", "content": req.prompt }],
            "max_tokens": req.max_tokens,
        })
        .to_string();
        let sent = self
            .client
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body)
            .send();
        let response = match timeout_at(limit.at, sent).await {
            Err(_) => return Err(limit.timeout("waiting for the response")),
            Ok(Err(e)) => return Err(self.send_error(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            let body = match timeout_at(limit.at, read_body(response, self.settings.max_body_bytes))
                .await
            {
                Err(_) => return Err(limit.timeout("reading the response body")),
                Ok(result) => result.map_err(response::BodyError::into_provider_error)?,
            };
            return parse_completion(&body);
        }
        let headers = response.headers().clone();
        let message = match timeout_at(limit.at, read_prefix(response, ERROR_BODY_PREFIX)).await {
            Ok(body) => error_message(&body),
            Err(_) => "(error body not received before the timeout)".to_owned(),
        };
        Err(status_error(status, &headers, message))
    }

    fn send_error(&self, e: &reqwest::Error) -> ProviderError {
        let host = match (
            self.endpoint.host_str(),
            self.endpoint.port_or_known_default(),
        ) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => "the provider".to_owned(),
        };
        // reqwest's own message only repeats the URL; the causes say what happened.
        let causes = std::error::Error::source(e).map_or_else(|| e.to_string(), error_chain);
        let stage = if e.is_connect() {
            "could not connect to"
        } else {
            "request failed to"
        };
        ProviderError::Transport(format!("{stage} {host}: {causes}"))
    }

    /// The last step for every error: strip the key, bound the length.
    fn clean(&self, error: ProviderError) -> ProviderError {
        let clean = |m: String| sanitize(&m, &self.key);
        match error {
            ProviderError::Server { status, message } => ProviderError::Server {
                status,
                message: clean(message),
            },
            ProviderError::Unauthorized { status, message } => ProviderError::Unauthorized {
                status,
                message: clean(message),
            },
            ProviderError::Client { status, message } => ProviderError::Client {
                status,
                message: clean(message),
            },
            ProviderError::Malformed(m) => ProviderError::Malformed(clean(m)),
            ProviderError::Transport(m) => ProviderError::Transport(clean(m)),
            other @ (ProviderError::RateLimited { .. } | ProviderError::Outage) => other,
        }
    }
}

/// rustls on the `ring` provider with `roots`: what every HTTP client of this crate uses (the
/// provider with the bundled Mozilla roots, the `breaker` commands with none: plain HTTP on
/// loopback, but reqwest still wants its TLS configured).
pub(crate) fn tls_config(
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}
