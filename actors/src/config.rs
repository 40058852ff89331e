//! Loading configuration files: TOML → validated core settings, with every mistake reported by
//! file, line, column and key.
//!
//! # The file
//!
//! Named policy sections, and agents that refer to them by name. Every key is optional and
//! defaults to the seed's value (or the core's, where the seed has none); only the names are
//! yours. Durations are strings (`"500ms"`, `"10s"`, `"2m"`). Unknown keys are errors.
//! `config/defaults.toml` documents every key with its default.
//!
//! ```toml
//! [breakers.llm]
//! max_failures = 5              # consecutive failures that open it ("off" disables the policy)
//! open_duration = "15s"
//! half_open_max_wait = "60s"
//!
//! [retry_policies.llm]
//! max_attempts = 3
//! initial_delay = "1s"
//! max_delay = "30s"
//! jitter = "proportional"       # none | proportional | full | equal | decorrelated
//!
//! [timeouts.llm]
//! kind = "per_operation"        # fixed | per_operation | adaptive
//! default = "60s"
//! slow_operation_threshold = "20s"
//! [timeouts.llm.operations]
//! summarize = "2m"
//!
//! [budgets.default]
//! retry_percent = 0.2
//!
//! [agents.llm_worker]
//! breaker = "llm"               # must name a [breakers.NAME] section
//! retry = "llm"
//! timeout = "llm"
//! budget = "default"            # optional
//! workers = 4
//! max_pending = 1000            # admission bound: queued + in flight
//! ```
//!
//! Names (`llm`, `llm_worker`, operation names) become metric label values, so they must match
//! `[a-z0-9_-]{1,64}` ([`is_valid_name`]).
//!
//! # Loading
//!
//! [`ResolvedConfig::load`] / [`ResolvedConfig::from_toml_str`] return a [`ResolvedConfig`] whose
//! settings are the core's validated types (parse, don't validate later), or **every** mistake
//! found, as [`ConfigErrors`]: each one is `path:line:column: field: reason`, with `field` the
//! dotted key (`breakers.llm.max_failures`). Syntax errors, wrong types, unknown keys, bad
//! durations, values the core rejects, cross-field rules and unknown policy names all have that
//! shape. Every mistake is reported: every key of a section is checked, each value the core
//! rejects is named (the loader drops it and checks the rest again), and every section is
//! checked. Files larger than [`MAX_CONFIG_BYTES`] (1 MiB) are refused.
//!
//! ```
//! use std::time::Duration;
//! use ractor_resilience::config::ResolvedConfig;
//!
//! let text = r#"
//! [breakers.llm]
//! max_failures = 3
//!
//! [retry_policies.llm]
//! initial_delay = "45s"
//!
//! [timeouts.llm]
//!
//! [agents.worker]
//! breaker = "nope"
//! retry = "llm"
//! timeout = "llm"
//! "#;
//! let errors = ResolvedConfig::from_toml_str(text, "app.toml").unwrap_err();
//! assert_eq!(errors.to_string(), "\
//! app.toml:6:17: retry_policies.llm.initial_delay: must not exceed max_delay (30s), got 45s
//! app.toml:11:11: agents.worker.breaker: unknown breaker \"nope\"; known: llm");
//!
//! let ok = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 3\n", "app.toml").unwrap();
//! assert_eq!(ok.breakers["llm"].max_failures(), Some(3));
//! assert_eq!(ok.breakers["llm"].open_duration(), Duration::from_secs(10)); // the seed's default
//! ```
//!
//! Environment variables can override single values before validation: see [`EnvOverrides`].
//!
//! # Extending the file: `[system]`
//!
//! An application that needs its own settings in the same file (the agent system's workload,
//! simulated provider, exporter) puts them under one `[system]` table and names a type for it:
//! `ResolvedConfig<X>` deserializes `[system]` into `X` (a [`SystemSection`]). `X` keeps
//! unknown-key rejection by using `#[serde(deny_unknown_fields)]`, gets its mistakes reported
//! with line and key like every other section, and may add rules in
//! [`SystemSection::validate`] (or [`SystemSection::validate_all`], to report every broken rule
//! and check names of the file's other sections). The default, [`NoSystem`], accepts only an empty or absent
//! `[system]`. One reserved table rather than arbitrary extra top-level tables keeps the
//! "unknown section" error precise for the library's own sections.
//!
//! ```
//! use ractor_resilience::config::{EnvOverrides, ResolvedConfig, SystemSection};
//! use ractor_resilience::core::InvalidSettings;
//!
//! #[derive(Debug, Default, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Demo {
//!     #[serde(default)]
//!     requests_per_second: u32,
//! }
//!
//! impl SystemSection for Demo {
//!     fn validate(&self) -> Result<(), InvalidSettings> {
//!         if self.requests_per_second == 0 {
//!             return Err(InvalidSettings::new("requests_per_second", "must be at least 1"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let text = "[system]\nrequests_per_second = 50\n";
//! let config = ResolvedConfig::<Demo>::from_toml_str_with_env(text, "demo.toml", &EnvOverrides::none())
//!     .unwrap();
//! assert_eq!(config.system.requests_per_second, 50);
//!
//! let errors = ResolvedConfig::<Demo>::from_toml_str_with_env("[system]\nrps = 5\n", "demo.toml", &EnvOverrides::none())
//!     .unwrap_err();
//! assert_eq!(errors.to_string(), "demo.toml:2:1: system.rps: unknown field `rps`, expected `requests_per_second`");
//! ```

mod agents;
mod diff;
mod display;
pub use diff::{ConfigChange, diff};
pub use display::breaker_settings_toml;
mod env;
mod policies;
pub use policies::KeyedBreakerConfig;
mod resolve;
mod source;
mod timeouts;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ractor_resilience_core::InvalidSettings;
use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::BreakerSettings;
use ractor_resilience_core::budget::BudgetSettings;

pub use agents::{AgentConfig, DEFAULT_MAX_PENDING, DEFAULT_WORKERS, MAX_MAX_PENDING, MAX_WORKERS};
pub use env::EnvOverrides;
pub use timeouts::{PerOperationTimeouts, TimeoutSettings};

use crate::error::{ConfigError, ConfigErrors};

/// The largest configuration file the loaders accept: 1 MiB, far above any real configuration
/// (the profiles are a few KiB). A larger file is refused with [`ConfigError::TooLarge`]
/// before it is parsed, and [`ResolvedConfig::load`] stops reading at the limit, so a path such
/// as `/dev/zero` ends promptly with that error instead of exhausting memory.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// [`MAX_CONFIG_BYTES`] as messages spell it.
pub(crate) const MAX_CONFIG_BYTES_TEXT: &str = "1 MiB";

/// The rule every section and operation name follows, as error messages state it.
const NAME_RULE: &str =
    "names must be 1 to 64 characters from a-z, 0-9, `_` and `-` (they become metric label values)";

/// Whether `name` may name a section or an operation: `[a-z0-9_-]{1,64}`.
///
/// ```
/// use ractor_resilience::config::is_valid_name;
///
/// assert!(is_valid_name("llm_worker-2"));
/// assert!(!is_valid_name("LLM"));
/// assert!(!is_valid_name("my llm"));
/// assert!(!is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A loaded, validated configuration: named core settings, agents that refer to them, and the
/// application's own `[system]` table (`X`, see [the module docs](self#extending-the-file-system)).
///
/// `Display` prints it back as TOML with every default filled in (what `check-config` shows);
/// that text loads back to an equal configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig<X = NoSystem> {
    /// `[breakers.NAME]`: the single breakers.
    pub breakers: BTreeMap<String, BreakerSettings>,
    /// `[breakers.NAME]` with `keyed = true`: the keyed breaker families.
    pub keyed_breakers: BTreeMap<String, KeyedBreakerConfig>,
    /// `[retry_policies.NAME]`.
    pub retry_policies: BTreeMap<String, RetryPolicy>,
    /// `[timeouts.NAME]`.
    pub timeouts: BTreeMap<String, TimeoutSettings>,
    /// `[budgets.NAME]`.
    pub budgets: BTreeMap<String, BudgetSettings>,
    /// `[agents.NAME]`; their policy names resolve in the maps above.
    pub agents: BTreeMap<String, AgentConfig>,
    /// `[system]`.
    pub system: X,
}

/// The policies of one agent, looked up by [`ResolvedConfig::policies`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentPolicies<'a> {
    /// The agent's own section.
    pub agent: &'a AgentConfig,
    /// Its breaker.
    pub breaker: &'a BreakerSettings,
    /// Its retry policy.
    pub retry: &'a RetryPolicy,
    /// Its timeout.
    pub timeout: &'a TimeoutSettings,
    /// Its retry budget, if it has one.
    pub budget: Option<&'a BudgetSettings>,
}

impl<X> ResolvedConfig<X> {
    /// The settings `agent` refers to; `None` if there is no such agent (or, for a value built
    /// by hand rather than loaded, if one of its names does not resolve).
    ///
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    ///
    /// let text = "[breakers.b]\n[retry_policies.r]\n[timeouts.t]\n\
    ///             [agents.a]\nbreaker = \"b\"\nretry = \"r\"\ntimeout = \"t\"\n";
    /// let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
    /// let p = config.policies("a").unwrap();
    /// assert_eq!(p.breaker.max_failures(), Some(5));
    /// assert!(p.budget.is_none());
    /// ```
    pub fn policies(&self, agent: &str) -> Option<AgentPolicies<'_>> {
        let agent = self.agents.get(agent)?;
        let budget = match &agent.budget {
            None => None,
            Some(name) => Some(self.budgets.get(name)?),
        };
        Some(AgentPolicies {
            agent,
            breaker: self.breakers.get(&agent.breaker)?,
            retry: self.retry_policies.get(&agent.retry)?,
            timeout: self.timeouts.get(&agent.timeout)?,
            budget,
        })
    }
}

impl ResolvedConfig {
    /// Parses and validates `text`; `path` only names the file in messages.
    ///
    /// # Errors
    /// Every mistake in the text (see [`ConfigErrors`]).
    ///
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    ///
    /// let config = ResolvedConfig::from_toml_str("[budgets.default]\n", "app.toml").unwrap();
    /// assert_eq!(config.budgets["default"].retry_percent(), 0.2);
    /// ```
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Self, ConfigErrors> {
        Self::from_toml_str_with_env(text, path, &EnvOverrides::none())
    }

    /// Reads, parses and validates the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if it cannot be read; otherwise every mistake in it.
    ///
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    ///
    /// let errors = ResolvedConfig::load("no/such/file.toml").unwrap_err();
    /// assert!(errors.to_string().starts_with("no/such/file.toml: cannot read the file"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigErrors> {
        Self::load_with_env(path, &EnvOverrides::none())
    }
}

impl<X: SystemSection> ResolvedConfig<X> {
    /// Parses `text`, applies `overrides`, and validates the result; `path` only names the file
    /// in messages.
    ///
    /// # Errors
    /// Every mistake in the text or the overrides (see [`ConfigErrors`]);
    /// [`ConfigError::TooLarge`] for a text longer than [`MAX_CONFIG_BYTES`].
    ///
    /// ```
    /// use ractor_resilience::config::{EnvOverrides, NoSystem, ResolvedConfig};
    ///
    /// let env = EnvOverrides::from_vars([("RESILIENCE__RETRY_POLICIES__LLM__MAX_ATTEMPTS", "5")]);
    /// let config = ResolvedConfig::<NoSystem>::from_toml_str_with_env("[retry_policies.llm]\n", "app.toml", &env)
    ///     .unwrap();
    /// assert_eq!(config.retry_policies["llm"].max_attempts(), 5);
    /// ```
    pub fn from_toml_str_with_env(
        text: &str,
        path: impl AsRef<Path>,
        overrides: &EnvOverrides,
    ) -> Result<Self, ConfigErrors> {
        resolve::resolve(text, path.as_ref(), overrides)
    }

    /// Reads the file at `path`, applies `overrides` (typically
    /// [`EnvOverrides::from_process_env`]), and validates the result.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if it cannot be read, [`ConfigError::TooLarge`] if it is larger
    /// than [`MAX_CONFIG_BYTES`] (reading stops there); otherwise every mistake in it or in the
    /// overrides. A file that is not UTF-8 is reported at its first invalid byte.
    pub fn load_with_env(
        path: impl AsRef<Path>,
        overrides: &EnvOverrides,
    ) -> Result<Self, ConfigErrors> {
        use std::io::Read as _;
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| {
                // One byte more than the limit tells a file at the limit from a larger one.
                file.take(MAX_CONFIG_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(read_error)?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            }
            .into());
        }
        match String::from_utf8(bytes) {
            Ok(text) => Self::from_toml_str_with_env(&text, path, overrides),
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                // `valid` is UTF-8 by definition; the lossy conversion never replaces anything.
                let (line, column) =
                    source::line_column(&String::from_utf8_lossy(valid), valid.len());
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line,
                    column,
                    field: "toml".to_owned(),
                    reason: "the file is not valid UTF-8".to_owned(),
                }
                .into())
            }
        }
    }
}

/// The application's own `[system]` table in a configuration file (see
/// [the module docs](self#extending-the-file-system)).
///
/// `[system]` is deserialized into the implementing type — from an empty table when the file has
/// none, so serde defaults apply — and then [`validate`](Self::validate)d. Use
/// `#[serde(deny_unknown_fields)]` to keep unknown keys errors.
pub trait SystemSection: serde::de::DeserializeOwned {
    /// Checks rules serde cannot express. The error's `field` is the key path below `[system]`,
    /// dotted (`"workload.rate"`), so the loader can point at its line.
    ///
    /// # Errors
    /// The first rule broken.
    fn validate(&self) -> Result<(), InvalidSettings> {
        Ok(())
    }

    /// Every rule broken (the loader reports each, with its line), including rules about the
    /// file's other sections, whose names are in `names` (a workload that names an agent,
    /// say). This is what the loader calls; the default returns [`validate`](Self::validate)'s
    /// error, if any. Implement it to report every mistake rather than the first.
    fn validate_all(&self, names: &SectionNames) -> Vec<InvalidSettings> {
        let _ = names;
        self.validate().err().into_iter().collect()
    }
}

/// The names of the sections of a file (valid or not), for the rules of a [`SystemSection`]
/// that refer to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SectionNames {
    /// `[breakers.NAME]`.
    pub breakers: std::collections::BTreeSet<String>,
    /// `[retry_policies.NAME]`.
    pub retry_policies: std::collections::BTreeSet<String>,
    /// `[timeouts.NAME]`.
    pub timeouts: std::collections::BTreeSet<String>,
    /// `[budgets.NAME]`.
    pub budgets: std::collections::BTreeSet<String>,
    /// `[agents.NAME]`.
    pub agents: std::collections::BTreeSet<String>,
}

/// No `[system]` settings: the table must be absent or empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSystem {}

impl SystemSection for NoSystem {}

impl fmt::Display for NoSystem {
    /// Nothing: there is no `[system]` table to print.
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}
