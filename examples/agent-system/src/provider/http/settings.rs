//! [`HttpProviderSettings`]: where the endpoint is, which model, where the key comes from, and
//! the bounds on one request.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProviderSetupError;

/// Settings of the OpenAI-compatible HTTP provider (`kind = "http"`).
///
/// The API key itself is never part of the settings: only the name of the environment variable
/// holding it.
///
/// ```
/// use agent_system::provider::http::HttpProviderSettings;
///
/// let s = HttpProviderSettings::new("https://api.example.invalid/v1", "small-model", "LLM_API_KEY");
/// assert_eq!(s.max_body_bytes, HttpProviderSettings::DEFAULT_MAX_BODY_BYTES);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderSettings {
    /// The API root, e.g. `https://api.openai.com/v1`; requests go to
    /// `{base_url}/chat/completions`. `http` and `https` only.
    pub base_url: String,
    /// The model name sent with every request.
    pub model: String,
    /// The name of the environment variable that holds the API key.
    pub api_key_env: String,
    /// Bound on one whole request: connect, send, headers and body. Humantime in config
    /// (`"30s"`, `"1m 30s"`).
    #[serde(
        default = "default_request_timeout",
        serialize_with = "ser_duration",
        deserialize_with = "de_duration"
    )]
    pub request_timeout: Duration,
    /// Largest response body accepted; a longer one is a malformed response, and it is never
    /// buffered past this bound.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl HttpProviderSettings {
    /// Default [`request_timeout`](Self::request_timeout).
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default [`max_body_bytes`](Self::max_body_bytes): 1 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    /// Settings with the default timeout and body limit.
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        api_key_env: impl Into<String>,
    ) -> Self {
        HttpProviderSettings {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: api_key_env.into(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The chat-completions URL, after checking every setting.
    pub(crate) fn validate(&self) -> Result<reqwest::Url, ProviderSetupError> {
        let invalid = |field: &'static str, reason: String| ProviderSetupError::InvalidSetting {
            field,
            reason,
        };
        if self.model.trim().is_empty() {
            return Err(invalid("model", "must not be empty".into()));
        }
        if self.api_key_env.trim().is_empty() || self.api_key_env.contains(['=', '\0']) {
            return Err(invalid(
                "api_key_env",
                "must name an environment variable (non-empty, no `=`)".into(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid(
                "request_timeout",
                "must be greater than zero".into(),
            ));
        }
        if self.request_timeout > crate::settings::MAX_DURATION {
            return Err(invalid(
                "request_timeout",
                format!(
                    "must be at most {}",
                    humantime::format_duration(crate::settings::MAX_DURATION)
                ),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid(
                "max_body_bytes",
                "must be greater than zero".into(),
            ));
        }
        let endpoint = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&endpoint).map_err(|e| {
            invalid(
                "base_url",
                format!("`{}` is not a valid URL: {e}", self.base_url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "base_url",
                format!(
                    "`{}` must be an http:// or https:// URL with a host",
                    self.base_url
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "base_url",
                "must not carry credentials (the key comes from `api_key_env`)".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "base_url",
                format!("`{}` must not carry a query or fragment", self.base_url),
            ));
        }
        Ok(url)
    }
}

/// The settings as the TOML lines of `[system.provider]` (without `kind`), one per line: the
/// variable's name, never the key.
impl fmt::Display for HttpProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "base_url = {:?}", self.base_url)?;
        writeln!(f, "model = {:?}", self.model)?;
        writeln!(f, "api_key_env = {:?}", self.api_key_env)?;
        writeln!(
            f,
            "request_timeout = \"{}\"",
            humantime::format_duration(self.request_timeout)
        )?;
        writeln!(f, "max_body_bytes = {}", self.max_body_bytes)
    }
}

fn default_request_timeout() -> Duration {
    HttpProviderSettings::DEFAULT_REQUEST_TIMEOUT
}

fn default_max_body_bytes() -> usize {
    HttpProviderSettings::DEFAULT_MAX_BODY_BYTES
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}
