//! [`diff`]: what changed between two configurations, key by key — the log line of a reload.
//!
//! Both sides are compared in their canonical form (the [`Display`] of [`ResolvedConfig`], every
//! default filled in), so a key written out in one file and left to its default in the other
//! is no change, and `"60s"` equals `"1m"`.

use std::collections::BTreeMap;
use std::fmt::{self, Display};

use super::ResolvedConfig;

/// One changed key (`old` and `new` set), or one section added (`old` empty) or removed
/// (`new` empty).
///
/// ```
/// use ractor_resilience::config::ConfigChange;
///
/// let change = ConfigChange {
///     path: "breakers.llm.max_failures".into(),
///     old: Some("5".into()),
///     new: Some("3".into()),
/// };
/// assert_eq!(change.to_string(), "breakers.llm.max_failures: 5 -> 3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigChange {
    /// `section.name.key` for a changed key, `section.name` for a section added or removed.
    pub path: String,
    /// The value before (TOML), `None` for a section added.
    pub old: Option<String>,
    /// The value after (TOML), `None` for a section removed.
    pub new: Option<String>,
}

impl Display for ConfigChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => write!(f, "{}: {old} -> {new}", self.path),
            (None, _) => write!(f, "{}: added", self.path),
            (Some(_), None) => write!(f, "{}: removed", self.path),
        }
    }
}

/// Every change from `old` to `new`, in file order (sections alphabetically): sections added
/// or removed as a whole, keys changed within a section present in both.
///
/// ```
/// use ractor_resilience::config::{ResolvedConfig, diff};
///
/// let old = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 5\n[breakers.db]\n", "a.toml").unwrap();
/// let new = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 3\n[budgets.x]\n", "a.toml").unwrap();
/// let changes: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
/// assert_eq!(changes, [
///     "breakers.db: removed",
///     "breakers.llm.max_failures: 5 -> 3",
///     "budgets.x: added",
/// ]);
/// ```
pub fn diff<X: Display>(old: &ResolvedConfig<X>, new: &ResolvedConfig<X>) -> Vec<ConfigChange> {
    let (old, new) = (keys(&old.to_string()), keys(&new.to_string()));
    let mut changes = Vec::new();
    let sections: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for section in sections {
        match (old.get(section), new.get(section)) {
            (Some(_), None) => changes.push(ConfigChange {
                path: section.clone(),
                old: Some(String::new()),
                new: None,
            }),
            (None, Some(_)) => changes.push(ConfigChange {
                path: section.clone(),
                old: None,
                new: Some(String::new()),
            }),
            (Some(a), Some(b)) => {
                let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in names {
                    let (before, after) = (a.get(key), b.get(key));
                    if before != after {
                        changes.push(ConfigChange {
                            path: format!("{section}.{key}"),
                            old: Some(before.cloned().unwrap_or_else(|| "(unset)".into())),
                            new: Some(after.cloned().unwrap_or_else(|| "(unset)".into())),
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    changes
}

/// Canonical TOML → section (`breakers.llm`) → key (`max_failures`, or `operations.embed` in a
/// nested table) → value.
fn keys(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let (mut section, mut prefix) = (String::new(), String::new());
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            // `[a.b]` is a section; `[a.b.c]` a table nested in section `a.b`.
            let mut parts = header.splitn(3, '.');
            let (first, second) = (parts.next().unwrap_or(""), parts.next());
            section = match second {
                Some(second) => format!("{first}.{second}"),
                None => first.to_owned(),
            };
            prefix = parts.next().map(|p| format!("{p}.")).unwrap_or_default();
            out.entry(section.clone()).or_default();
        } else if let Some((key, value)) = line.split_once(" = ") {
            out.entry(section.clone())
                .or_default()
                .insert(format!("{prefix}{key}"), value.to_owned());
        }
    }
    out
}
