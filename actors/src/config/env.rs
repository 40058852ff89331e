//! Environment overrides: `RESILIENCE__BREAKERS__LLM__MAX_FAILURES=3` sets
//! `breakers.llm.max_failures = 3` before anything is validated.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

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
/// is refused. In the library's sections the table that holds the key must exist in the file
/// (`[breakers.llm]` for the example), so a misspelt name cannot silently create a new breaker;
/// the key itself may be new (overriding a default). Under `[system]` — whose keys all have
/// defaults, and whose type rejects unknown keys itself — missing tables are created, so
/// `RESILIENCE__SYSTEM__EXPORTER__ADDR` works with a file that has no `[system]` table.
/// Overrides are applied before validation, and a mistake in one is reported as
/// [`ConfigError::Override`](crate::error::ConfigError::Override), naming the variable; so is a
/// prefixed variable whose value is not valid UTF-8. Section names containing `__` or `-`
/// cannot be addressed from a shell; prefer `_`.
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
    /// Prefixed variables whose value is not valid UTF-8 (names shown lossily), sorted.
    not_utf8: Vec<String>,
}

impl EnvOverrides {
    /// Variables that start with this prefix are overrides; all others are ignored.
    pub const PREFIX: &'static str = "RESILIENCE__";

    /// No overrides.
    pub const fn none() -> Self {
        Self {
            vars: Vec::new(),
            not_utf8: Vec::new(),
        }
    }

    /// The overrides in this process's environment (see [`from_vars_os`](Self::from_vars_os)).
    pub fn from_process_env() -> Self {
        Self::from_vars_os(std::env::vars_os())
    }

    /// The overrides among `vars`, which need not be Unicode: a prefixed variable whose name or
    /// value is not valid UTF-8 is kept as a mistake, reported when the overrides are applied
    /// (naming the variable, lossily decoded); other variables are ignored.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// use ractor_resilience::config::{EnvOverrides, NoSystem, ResolvedConfig};
    ///
    /// # #[cfg(unix)] {
    /// use std::os::unix::ffi::OsStringExt;
    /// let env = EnvOverrides::from_vars_os([(
    ///     OsString::from("RESILIENCE__BREAKERS__LLM__MAX_FAILURES"),
    ///     OsString::from_vec(b"\xff3".to_vec()),
    /// )]);
    /// let errors = ResolvedConfig::<NoSystem>::from_toml_str_with_env("[breakers.llm]\n", "a.toml", &env)
    ///     .unwrap_err();
    /// assert_eq!(
    ///     errors.to_string(),
    ///     "$RESILIENCE__BREAKERS__LLM__MAX_FAILURES: breakers.llm.max_failures: the value is not valid UTF-8"
    /// );
    /// # }
    /// ```
    pub fn from_vars_os<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        let mut valid = Vec::new();
        let mut not_utf8 = Vec::new();
        for (k, v) in vars {
            let (k, v) = (k.into(), v.into());
            if !k.as_encoded_bytes().starts_with(Self::PREFIX.as_bytes()) {
                continue;
            }
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => valid.push((k, v)),
                (k, _) => not_utf8.push(match k {
                    Ok(k) => k,
                    Err(k) => k.to_string_lossy().into_owned(),
                }),
            }
        }
        let mut overrides = Self::from_vars(valid);
        not_utf8.sort();
        overrides.not_utf8 = not_utf8;
        overrides
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
        Self {
            vars,
            not_utf8: Vec::new(),
        }
    }

    /// How many overrides there are (those that are not valid UTF-8 included).
    pub fn len(&self) -> usize {
        self.vars.len() + self.not_utf8.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `(variable, value)` pairs that are valid UTF-8, sorted by variable.
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
    let key_of = |var: &str| -> Vec<String> {
        var.get(EnvOverrides::PREFIX.len()..)
            .unwrap_or_default()
            .split("__")
            .map(str::to_lowercase)
            .collect()
    };
    for var in &overrides.not_utf8 {
        src.report_override(var, dotted(&key_of(var)), "the value is not valid UTF-8");
    }
    for (var, raw) in overrides.iter() {
        let key = key_of(var);
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
        // Under [system] every key has a default: create the tables on the way.
        // Created tables carry the override's span, so a mistake about them names the variable.
        let create = parents.first().is_some_and(|p| p == "system");
        let span = src.add_override(var, field.clone());
        let table = match table_at(doc, parents, create.then_some(&span)) {
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
        table.insert(
            Spanned::new(span.clone(), Cow::Owned(last.clone())),
            Spanned::new(span, value),
        );
    }
}

/// The table at `path` below `doc`, or the depth of the first part that is not a table.
/// With `create`, missing tables on the way are created (empty), with that span.
fn table_at<'t, 'i>(
    doc: &'t mut DeTable<'i>,
    path: &[String],
    create: Option<&Range<usize>>,
) -> Result<&'t mut DeTable<'i>, usize> {
    let mut table = doc;
    for (depth, part) in path.iter().enumerate() {
        if let Some(span) = create.filter(|_| table.get(part.as_str()).is_none()) {
            table.insert(
                Spanned::new(span.clone(), Cow::Owned(part.clone())),
                Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
            );
        }
        table = match table.get_mut(part.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => t,
            _ => return Err(depth),
        };
    }
    Ok(table)
}
