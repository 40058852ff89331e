//! The errors of this crate, one small enum per boundary.
//!
//! - [`ConfigError`]: one mistake in a configuration file (or in an environment override), and
//!   [`ConfigErrors`]: every mistake found in one file, which is what the loaders return.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One mistake found while loading a configuration file.
///
/// Every mistake that is *in* the file — a syntax error, a wrong type, an unknown key, a bad
/// duration, a value that breaks a rule, an agent that names an unknown policy — has the same
/// shape, [`ConfigError::Invalid`], which names the file, the line and column of the offending
/// key or value, and the dotted key path.
///
/// ```
/// use ractor_resilience::config::ResolvedConfig;
/// use ractor_resilience::error::ConfigError;
///
/// let text = "[breakers.llm]\nmax_failures = 0\n";
/// let errors = ResolvedConfig::from_toml_str(text, "app.toml").unwrap_err();
/// let ConfigError::Invalid { line, column, field, .. } = &errors.as_slice()[0] else {
///     unreachable!()
/// };
/// assert_eq!((*line, *column, field.as_str()), (2, 16, "breakers.llm.max_failures"));
/// assert_eq!(
///     errors.to_string(),
///     "app.toml:2:16: breakers.llm.max_failures: must be at least 1"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`](crate::config::MAX_CONFIG_BYTES); it is
    /// not parsed (and reading it stopped at the limit).
    #[error(
        "{}: the file is larger than the {} limit for configuration files",
        path.display(),
        crate::config::MAX_CONFIG_BYTES_TEXT
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A value in the file is malformed, of the wrong type, unknown, or breaks a rule.
    #[error("{}:{line}:{column}: {field}: {reason}", path.display())]
    Invalid {
        /// The file (as given to the loader; used only in messages).
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column, in characters, of the offending key or value.
        column: usize,
        /// The dotted key path, e.g. `breakers.llm.max_failures` (`toml` for a syntax error
        /// outside any key).
        field: String,
        /// What is wrong, lowercase, no trailing period.
        reason: String,
    },
    /// A value set by an environment variable is malformed or breaks a rule.
    #[error("${var}: {field}: {reason}")]
    Override {
        /// The environment variable, e.g. `RESILIENCE__BREAKERS__LLM__MAX_FAILURES`.
        var: String,
        /// The dotted key path it sets, e.g. `breakers.llm.max_failures`.
        field: String,
        /// What is wrong, lowercase, no trailing period.
        reason: String,
    },
}

impl ConfigError {
    /// The dotted key path the error is about, if it is about one.
    ///
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    ///
    /// let errors = ResolvedConfig::from_toml_str("[budgets.x]\nttl = \"0.5s\"\n", "a.toml")
    ///     .unwrap_err();
    /// assert_eq!(errors.as_slice()[0].field(), Some("budgets.x.ttl"));
    /// ```
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => None,
            ConfigError::Invalid { field, .. } | ConfigError::Override { field, .. } => Some(field),
        }
    }

    /// Why the value is wrong (for [`Read`](Self::Read): the I/O error's message).
    pub fn reason(&self) -> String {
        match self {
            ConfigError::Read { source, .. } => source.to_string(),
            ConfigError::TooLarge { .. } => format!(
                "the file is larger than the {} limit for configuration files",
                crate::config::MAX_CONFIG_BYTES_TEXT
            ),
            ConfigError::Invalid { reason, .. } | ConfigError::Override { reason, .. } => {
                reason.clone()
            }
        }
    }

    /// The 1-based `(line, column)` of the mistake, when it is in the file.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
            ConfigError::Read { .. }
            | ConfigError::TooLarge { .. }
            | ConfigError::Override { .. } => None,
        }
    }
}

/// Every mistake found in one configuration file; never empty.
///
/// `Display` prints one mistake per line, in file order, as `path:line:column: field: reason`
/// (environment overrides as `$VAR: field: reason`).
///
/// ```
/// use ractor_resilience::config::ResolvedConfig;
///
/// let text = "[breakers.a]\nmax_failures = 0\n\n[retry_policies.b]\nmultiplier = 0.5\n";
/// let errors = ResolvedConfig::from_toml_str(text, "app.toml").unwrap_err();
/// assert_eq!(errors.len(), 2);
/// assert_eq!(
///     errors.to_string(),
///     "app.toml:2:16: breakers.a.max_failures: must be at least 1\n\
///      app.toml:5:14: retry_policies.b.multiplier: must be a finite number of at least 1, got 0.5"
/// );
/// ```
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Wraps `errors`, sorted into file order; `None` if there are none.
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Option<Self> {
        if errors.is_empty() {
            return None;
        }
        // Read errors first, then by position; overrides (no position) last, by variable.
        errors.sort_by_cached_key(|e| match e {
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => (0, 0, 0, String::new()),
            ConfigError::Invalid { line, column, .. } => (1, *line, *column, String::new()),
            ConfigError::Override { var, .. } => (2, 0, 0, var.clone()),
        });
        Some(Self(errors))
    }

    /// The mistakes, in file order.
    pub fn as_slice(&self) -> &[ConfigError] {
        &self.0
    }

    /// How many mistakes were found (at least 1).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `ConfigErrors` holds at least one mistake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the mistakes, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// The mistakes, in file order.
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.first().map(|e| e as _)
    }
}
