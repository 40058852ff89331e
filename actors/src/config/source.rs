//! Where a mistake is: byte spans → line/column, spans → dotted key paths, dotted key paths →
//! spans, and the error collector that turns them into [`ConfigError`]s.
//!
//! The document is parsed once into `toml`'s spanned tree (`DeTable`), in which every key and
//! every value carries its byte range. A serde error from a section carries the span of the key
//! or value it is about, which we map back to a key path by walking the tree; a rule broken in
//! the core (`InvalidSettings { field, .. }`) names a key, which we look up in the tree to find
//! its span. Values set by environment overrides get *synthetic* spans past the end of the text
//! (one per override), so an error about such a value names the variable instead of a line.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use ractor_resilience_core::InvalidSettings;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::ConfigError;

/// A mistake inside one section entry, relative to it: the key path below the entry
/// (`["max_failures"]`, `["operations", "summarize"]`; empty for the entry itself).
#[derive(Debug)]
pub(crate) struct FieldError {
    pub(crate) key: Vec<String>,
    pub(crate) reason: String,
    /// Where exactly, when known (a serde error's span); otherwise the span of `key`'s value.
    pub(crate) span: Option<Range<usize>>,
}

impl FieldError {
    pub(crate) fn new(key: &str, reason: impl Into<String>) -> Self {
        Self {
            key: split_key(key),
            reason: reason.into(),
            span: None,
        }
    }
}

impl From<InvalidSettings> for FieldError {
    fn from(e: InvalidSettings) -> Self {
        Self {
            key: split_key(e.field),
            reason: e.reason,
            span: None,
        }
    }
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why a section entry could not be resolved.
#[derive(Debug)]
pub(crate) enum EntryError {
    /// Serde: unknown keys, wrong types, bad durations; each error carries a span.
    Toml(Vec<toml::de::Error>),
    /// Rules broken by values (the core's validation or cross-field rules of ours).
    Field(Vec<FieldError>),
}

impl From<toml::de::Error> for EntryError {
    fn from(e: toml::de::Error) -> Self {
        EntryError::Toml(vec![e])
    }
}

impl From<FieldError> for EntryError {
    fn from(e: FieldError) -> Self {
        EntryError::Field(vec![e])
    }
}

impl From<InvalidSettings> for EntryError {
    fn from(e: InvalidSettings) -> Self {
        EntryError::Field(vec![e.into()])
    }
}

/// Collects the mistakes of one file.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    text: &'a str,
    path: &'a Path,
    /// Line starts, built once, so that each mistake is located in logarithmic time.
    lines: LineIndex,
    /// `(variable, dotted key)` of each applied override; override `i` has the synthetic span
    /// `text.len() + 1 + i`.
    overrides: Vec<(String, String)>,
    errors: Vec<ConfigError>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str, path: &'a Path) -> Self {
        Self {
            text,
            path,
            lines: LineIndex::new(text),
            overrides: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Registers an override and returns the synthetic span its key and value carry.
    pub(crate) fn add_override(&mut self, var: &str, key: String) -> Range<usize> {
        let at = self.text.len() + 1 + self.overrides.len();
        self.overrides.push((var.to_owned(), key));
        at..at
    }

    /// Records a mistake at `span` about `field` (a dotted path). A synthetic span means the
    /// value came from an override: the mistake names its variable and the key it sets.
    pub(crate) fn report(&mut self, span: Range<usize>, field: String, reason: impl Into<String>) {
        let reason = clean_reason(reason.into());
        let error = match span.start.checked_sub(self.text.len() + 1) {
            Some(i) if i < self.overrides.len() => {
                let (var, key) = &self.overrides[i];
                ConfigError::Override {
                    var: var.clone(),
                    field: key.clone(),
                    reason,
                }
            }
            _ => {
                let (line, column) = self.lines.line_column(self.text, span.start);
                ConfigError::Invalid {
                    path: self.path.to_owned(),
                    line,
                    column,
                    field,
                    reason,
                }
            }
        };
        self.errors.push(error);
    }

    /// Records a mistake made by the environment variable `var`.
    pub(crate) fn report_override(&mut self, var: &str, field: String, reason: impl Into<String>) {
        self.errors.push(ConfigError::Override {
            var: var.to_owned(),
            field,
            reason: clean_reason(reason.into()),
        });
    }

    /// Records the failure to resolve the entry `value` found at `prefix`.
    pub(crate) fn report_entry(
        &mut self,
        prefix: &[String],
        value: &Spanned<DeValue<'_>>,
        error: EntryError,
    ) {
        match error {
            EntryError::Toml(errors) => {
                for e in errors {
                    let span = e.span().unwrap_or_else(|| value.span());
                    let mut key = prefix.to_vec();
                    key.extend(path_of_span(value, &span));
                    self.report(span, dotted(&key), e.message());
                }
            }
            EntryError::Field(errors) => {
                for e in errors {
                    let span = e.span.unwrap_or_else(|| span_of_key(value, &e.key));
                    let mut key = prefix.to_vec();
                    key.extend(e.key);
                    self.report(span, dotted(&key), e.reason);
                }
            }
        }
    }

    /// The mistakes recorded so far, if any.
    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// A reason as messages show it: control characters escaped (a file must not be able to put
/// terminal escape sequences into `check-config`'s output, nor break the one-mistake-per-line
/// format), and serde's internal `as i128` / `as u128` notes on huge integers dropped.
pub(crate) fn clean_reason(reason: String) -> String {
    let reason = if reason.contains(" as i128`") || reason.contains(" as u128`") {
        reason
            .replace("` as i128,", "`,")
            .replace("` as u128,", "`,")
    } else {
        reason.replace("` as i128", "`").replace("` as u128", "`")
    };
    if !reason.chars().any(char::is_control) {
        return reason;
    }
    let mut out = String::with_capacity(reason.len() + 8);
    for c in reason.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes between two checkpoints of [`LineIndex`]'s character counts.
const CHAR_STEP: usize = 256;

/// Where each line starts, and character counts at regular byte offsets: locating a mistake
/// costs a binary search and at most [`CHAR_STEP`] bytes of counting, never a rescan of the
/// text (which made reporting quadratic in the number of mistakes).
#[derive(Debug)]
pub(crate) struct LineIndex {
    /// Byte offset of the start of each line; `[0]` is 0.
    starts: Vec<usize>,
    /// `(byte offset, characters before it)` at the char boundary at or below `i * CHAR_STEP`.
    marks: Vec<(usize, usize)>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut marks = Vec::with_capacity(text.len() / CHAR_STEP + 1);
        let (mut at, mut chars) = (0, 0);
        for k in 0..=text.len() / CHAR_STEP {
            let target = floor_boundary(text, k * CHAR_STEP);
            chars += text[at..target].chars().count();
            at = target;
            marks.push((at, chars));
        }
        Self { starts, marks }
    }

    /// Characters in `text[..offset]` (`offset` a char boundary).
    fn chars_before(&self, text: &str, offset: usize) -> usize {
        let (at, chars) = self.marks[offset / CHAR_STEP];
        chars + text[at..offset].chars().count()
    }

    /// 1-based line and column (in characters) of byte `offset` of `text` (the text the index
    /// was built from); clamps past the end.
    pub(crate) fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_boundary(text, offset);
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self.chars_before(text, offset) - self.chars_before(text, start) + 1;
        (line, column)
    }
}

/// The largest char boundary of `text` at or below `offset` (clamped to the end).
fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// 1-based line and column (in characters) of byte `offset`; clamps past the end. For one
/// lookup; [`Source`] keeps a [`LineIndex`] for many.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_column(text, offset)
}

/// The key path (relative to `root`) of the deepest key or value whose span is `span` or,
/// failing an exact match, contains its start.
pub(crate) fn path_of_span(root: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Vec<String> {
    fn walk(
        value: &DeValue<'_>,
        span: &Range<usize>,
        path: &mut Vec<String>,
        best: &mut (u8, Vec<String>),
    ) {
        let DeValue::Table(table) = value else { return };
        for (k, v) in table.iter() {
            path.push(k.get_ref().to_string());
            let (ks, vs) = (k.span(), v.span());
            let score = if ks == *span || vs == *span {
                2
            } else if ks.contains(&span.start) || vs.contains(&span.start) {
                1
            } else {
                0
            };
            // Deeper matches of the same quality win: they are visited later.
            if score > 0 && score >= best.0 {
                *best = (score, path.clone());
            }
            walk(v.get_ref(), span, path, best);
            path.pop();
        }
    }
    let mut best = (0, Vec::new());
    walk(root.get_ref(), span, &mut Vec::new(), &mut best);
    best.1
}

/// The span of the value at `key` below `root`, or of its deepest existing ancestor.
pub(crate) fn span_of_key(root: &Spanned<DeValue<'_>>, key: &[String]) -> Range<usize> {
    let mut at = root;
    for k in key {
        match at.get_ref() {
            DeValue::Table(t) => match t.get(k.as_str()) {
                Some(v) => at = v,
                None => break,
            },
            _ => break,
        }
    }
    at.span()
}

/// The table held by `value`, if it is one.
pub(crate) fn as_table<'v, 'i>(value: &'v Spanned<DeValue<'i>>) -> Option<&'v DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => None,
    }
}

/// An empty table, for sections that are absent.
pub(crate) fn empty_table<'i>() -> Spanned<DeValue<'i>> {
    Spanned::new(0..0, DeValue::Table(DeTable::new()))
}

/// A key path as TOML spells it: `breakers.llm.max_failures`, quoting keys that are not bare.
pub(crate) fn dotted<S: AsRef<str>>(key: &[S]) -> String {
    let mut out = String::new();
    for (i, k) in key.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&quote_key(k.as_ref()));
    }
    out
}

fn quote_key(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{key:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_and_clamps() {
        let text = "a = 1\néé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 3)); // after "éé" (4 bytes)
        assert_eq!(line_column(text, 7), (2, 1)); // inside a character: its start
        assert_eq!(line_column(text, 999), (3, 1));
        assert_eq!(line_column("", 5), (1, 1));
    }

    #[test]
    fn line_index_agrees_with_a_rescan_across_checkpoints() {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(if i % 3 == 0 {
                "é€ = 1\n"
            } else {
                "abc = 2\n"
            });
            text.push_str(&"x".repeat(i % 7));
        }
        let index = LineIndex::new(&text);
        for offset in 0..=text.len() + 3 {
            let o = floor_boundary(&text, offset);
            let before = &text[..o];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[start..].chars().count() + 1;
            assert_eq!(
                index.line_column(&text, offset),
                (line, column),
                "at {offset}"
            );
        }
    }

    #[test]
    fn reasons_escape_control_characters_and_drop_serde_notes() {
        assert_eq!(
            clean_reason("bad `\u{1b}[31m`\nnext".into()),
            "bad `\\u{1b}[31m`\\nnext"
        );
        assert_eq!(
            clean_reason("invalid type: integer `1` as i128, expected a duration".into()),
            "invalid type: integer `1`, expected a duration"
        );
    }

    #[test]
    fn dotted_quotes_keys_that_are_not_bare() {
        assert_eq!(
            dotted(&["breakers", "llm", "max_failures"]),
            "breakers.llm.max_failures"
        );
        assert_eq!(dotted(&["breakers", "my llm"]), "breakers.\"my llm\"");
        assert_eq!(dotted::<&str>(&[]), "");
    }
}
