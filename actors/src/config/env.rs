//! Environment overrides: `RESILIENCE__BREAKERS__LLM__MAX_FAILURES=3` sets
//! `breakers.llm.max_failures = 3` before anything is validated.

use std::borrow::Cow;
use std::fmt;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::source::{Source, dotted};

/// Single values that override the file, from environment variables (or any `(key, value)`
/// pairs, so tests need not touch the process environment).
///
/// **Scheme.** A variable `RESILIENCE__A__B__C` sets the key `a.b.c`: strip
/// [`PREFIX`](Self::PREFIX), split the rest on `__`, lowercase each part. The value is read as
/// a TOML value when it is one (`3`, `0.5`, `true`, `"quoted"`) and as a string otherwise
/// (`10s`, `llm`, `off`). Only single values can be set: a value that is a TOML array or table
/// is refused. The table that holds the key must exist in the file (`[breakers.llm]` for the
/// example), so a misspelt name cannot silently create a new breaker; the key itself may be new
/// (overriding a default). Overrides are applied before validation, and a mistake in one is
/// reported as [`ConfigError::Override`](crate::error::ConfigError::Override), naming the
/// variable. Section names containing `__` or `-` cannot be addressed from a shell; prefer `_`.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::config::{EnvOverrides, NoSystem, ResolvedConfig};
///
/// let text = "[breakers.llm]\nmax_failures = 5\n";
/// let env = EnvOverrides::from_vars([
///     ("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "3"),
///     ("RESILIENCE__BREAKERS__LLM__OPEN_DURATION", "20s"),
///     ("PATH", "/usr/bin"), // ignored: no prefix
/// ]);
/// let config = ResolvedConfig::<NoSystem>::from_toml_str_with_env(text, "app.toml", &env).unwrap();
/// assert_eq!(config.breakers["llm"].max_failures(), Some(3));
/// assert_eq!(config.breakers["llm"].open_duration(), Duration::from_secs(20));
///
/// let env = EnvOverrides::from_vars([("RESILIENCE__BREAKERS__LLM__MAX_FAILURES", "0")]);
/// let errors = ResolvedConfig::<NoSystem>::from_toml_str_with_env(text, "app.toml", &env).unwrap_err();
/// assert_eq!(
///     errors.to_string(),
///     "$RESILIENCE__BREAKERS__LLM__MAX_FAILURES: breakers.llm.max_failures: must be at least 1"
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    /// `(variable, value)` for the variables that start with the prefix, sorted by variable.
    vars: Vec<(String, String)>,
}

impl EnvOverrides {
    /// Variables that start with this prefix are overrides; all others are ignored.
    pub const PREFIX: &'static str = "RESILIENCE__";

    /// No overrides.
    pub const fn none() -> Self {
        Self { vars: Vec::new() }
    }

    /// The overrides in this process's environment (variables or values that are not valid
    /// Unicode are skipped).
    pub fn from_process_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// The overrides among `vars`: the pairs whose key starts with [`PREFIX`](Self::PREFIX).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with(Self::PREFIX))
            .collect();
        vars.sort();
        Self { vars }
    }

    /// How many overrides there are.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The `(variable, value)` pairs, sorted by variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvOverrides {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_vars(iter)
    }
}

impl fmt::Debug for EnvOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Applies every override to `doc`, reporting the ones that cannot be applied.
pub(crate) fn apply<'i>(doc: &mut DeTable<'i>, overrides: &'i EnvOverrides, src: &mut Source<'_>) {
    for (var, raw) in overrides.iter() {
        let key: Vec<String> = var[EnvOverrides::PREFIX.len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        let field = dotted(&key);
        if key.iter().any(String::is_empty) {
            src.report_override(
                var,
                field,
                "malformed variable: every part between `__` must be a key",
            );
            continue;
        }
        let value = match DeValue::parse(raw) {
            Ok(v) => v.into_inner(),
            Err(_) => DeValue::String(Cow::Borrowed(raw)),
        };
        if matches!(value, DeValue::Array(_) | DeValue::Table(_)) {
            src.report_override(
                var,
                field,
                "only single values can be overridden, not arrays or tables",
            );
            continue;
        }
        let (last, parents) = key.split_last().expect("split yields at least one part");
        let table = match table_at(doc, parents) {
            Ok(table) => table,
            Err(depth) => {
                let parent = dotted(&key[..=depth]);
                src.report_override(
                    var,
                    field,
                    format!("the file has no table `[{parent}]` to override a key in"),
                );
                continue;
            }
        };
        let span = src.add_override(var, field);
        table.insert(
            Spanned::new(span.clone(), Cow::Owned(last.clone())),
            Spanned::new(span, value),
        );
    }
}

/// The table at `path` below `doc`, or the depth of the first part that is not a table.
fn table_at<'t, 'i>(
    doc: &'t mut DeTable<'i>,
    path: &[String],
) -> Result<&'t mut DeTable<'i>, usize> {
    let mut table = doc;
    for (depth, part) in path.iter().enumerate() {
        table = match table.get_mut(part.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => t,
            _ => return Err(depth),
        };
    }
    Ok(table)
}
