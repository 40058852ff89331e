//! Fuzzing the config loader with structure, where `config_errors.rs` fuzzes it with text:
//! arbitrary TOML *documents* (random trees of tables, keys and values, biased towards the
//! schema's section names, field names and value shapes so that they reach the validation
//! behind the parser), and mutations of *every* shipped profile under `config/` (structural
//! edits of the parsed tree, and byte edits of the text).
//!
//! The properties, for every input: no panic; and every rejection names a field — a non-empty,
//! well-formed dotted key path, at a line and column inside the file — with a reason. For a
//! document that is valid TOML, the path also starts at a top-level key of that document (a
//! mistake is never blamed on a key that is not there), and it is never the `toml` of a
//! syntax error.
//!
//! Pure CPU, no clock, no I/O beyond reading `config/`: a few seconds in a debug build.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use ractor_resilience::config::{EnvOverrides, NoSystem, ResolvedConfig};
use ractor_resilience::error::{ConfigError, ConfigErrors};
use toml::{Table, Value};

// ---------------------------------------------------------------------------------------------
// The properties

/// How a key is spelled in an error's dotted path (bare, or quoted like the loader does).
fn spelled(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The segments of a dotted path: bare keys, or quoted keys with backslash escapes. `None` if
/// the path is malformed (empty, an empty segment, an unterminated quote, junk after a quote).
fn segments(path: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            i += 1;
        } else {
            while i < bytes.len() && bytes[i] != b'.' {
                i += 1;
            }
        }
        if i == start {
            return None;
        }
        out.push(&path[start..i]);
        match bytes.get(i) {
            None => return Some(out),
            Some(b'.') => i += 1,
            Some(_) => return None,
        }
    }
}

/// Checks one load's errors; `top_keys` is `Some` when the text is valid TOML.
fn check_rejection(text: &str, errors: &ConfigErrors, top_keys: Option<&[String]>) {
    let lines = text.split('\n').count();
    assert!(!errors.is_empty());
    let rendered = errors.to_string();
    assert_eq!(rendered.lines().count(), errors.len(), "{rendered}");
    for e in errors {
        let ConfigError::Invalid {
            line,
            column,
            field,
            reason,
            ..
        } = e
        else {
            panic!("a text's mistake without a position: {e}")
        };
        assert!(
            (1..=lines).contains(line) && *column >= 1,
            "{e} (the text has {lines} lines)"
        );
        assert!(!reason.trim().is_empty(), "no reason: {e}");
        let Some(parts) = segments(field) else {
            panic!("the field is not a dotted key path: {field:?} in {e}\n--- text:\n{text}")
        };
        if let Some(keys) = top_keys {
            assert_ne!(
                field, "toml",
                "a syntax error for valid TOML: {e}\n--- text:\n{text}"
            );
            assert!(
                keys.iter().any(|k| spelled(k) == parts[0]),
                "{e}: blames `{}`, not a top-level key of the document ({keys:?})\n--- text:\n{text}",
                parts[0]
            );
        }
    }
}

/// Loads `text` (never panicking) and checks any rejection.
fn load_and_check(text: &str, top_keys: Option<&[String]>) {
    if let Err(errors) = ResolvedConfig::from_toml_str(text, "fuzz.toml") {
        check_rejection(text, &errors, top_keys);
    }
}

/// Serializes a generated document; `None` for the rare tree TOML cannot spell.
fn render(doc: &Table) -> Option<String> {
    toml::to_string(doc).ok()
}

fn load_document(doc: &Table) {
    if let Some(text) = render(doc) {
        let keys: Vec<String> = doc.keys().cloned().collect();
        load_and_check(&text, Some(&keys));
    }
}

// ---------------------------------------------------------------------------------------------
// The schema's vocabulary

const SECTIONS: [&str; 6] = [
    "breakers",
    "retry_policies",
    "timeouts",
    "budgets",
    "agents",
    "system",
];

/// Every key of every section (config/defaults.toml documents them; a few more are optional).
const FIELDS: [&str; 47] = [
    "max_failures",
    "window_size",
    "window_duration",
    "minimum_calls",
    "failure_rate_threshold",
    "slow_call_duration",
    "slow_call_rate_threshold",
    "open_duration",
    "open_jitter",
    "open_backoff_multiplier",
    "max_open_duration",
    "half_open_probes",
    "half_open_successes",
    "half_open_max_wait",
    "max_attempts",
    "initial_delay",
    "max_delay",
    "multiplier",
    "jitter",
    "jitter_factor",
    "kind",
    "duration",
    "default",
    "slow_operation_threshold",
    "operations",
    "mode",
    "initial",
    "quantile",
    "padding",
    "min",
    "max",
    "min_samples",
    "window",
    "granularity",
    "ttl",
    "min_per_second",
    "retry_percent",
    "breaker",
    "retry",
    "timeout",
    "budget",
    "workers",
    "max_pending",
    "workload",
    "rate",
    "seed",
    "fast_op",
];

/// Section and agent names, good and bad (they become metric label values).
const NAMES: [&str; 14] = [
    "llm",
    "llm_worker",
    "default",
    "protocol",
    "b",
    "x-2",
    "LLM",
    "my llm",
    "",
    "a.b",
    "é",
    "\u{0}",
    "0123456789012345678901234567890123456789012345678901234567890123",
    "01234567890123456789012345678901234567890123456789012345678901234",
];

/// Strings the fields parse: durations, "off", enum values, names.
const STRINGS: [&str; 30] = [
    "10s",
    "0s",
    "1ms",
    "500ms",
    "5m",
    "1h",
    "61s",
    "0.5s",
    "1 fortnight",
    "10 parsecs",
    "-1s",
    "99999999999h",
    "off",
    "on",
    "fixed",
    "per_operation",
    "adaptive",
    "sliding",
    "quantile",
    "rfc6298",
    "none",
    "proportional",
    "full",
    "equal",
    "decorrelated",
    "llm",
    "default",
    "nope",
    "",
    "LLM",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&FIELDS[..]).prop_map(str::to_owned),
        2 => select(&NAMES[..]).prop_map(str::to_owned),
        1 => select(&SECTIONS[..]).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
        1 => ".{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => select(&STRINGS[..]).prop_map(|s| Value::String(s.to_owned())),
        1 => "[0-9]{1,4}(ns|us|ms|s|m|h|d|w| ?years|x)?".prop_map(Value::String),
        1 => ".{0,10}".prop_map(Value::String),
        2 => select(vec![0i64, 1, 2, 3, 4, 5, 8, 10, 64, 100, 1000, 1_048_577, -1, i64::MAX, i64::MIN])
            .prop_map(Value::Integer),
        1 => any::<i64>().prop_map(Value::Integer),
        2 => select(vec![0.0, 0.05, 0.2, 0.5, 0.95, 0.99, 1.0, 1.5, 2.0, -0.5, 1e300, f64::NAN,
                         f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE])
            .prop_map(Value::Float),
        1 => any::<f64>().prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Boolean),
        1 => select(vec!["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T00:32:00.999999-07:00"])
            .prop_map(|d| Value::Datetime(d.parse().unwrap())),
    ]
}

/// Any value: scalars, and arrays and tables of values, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A document shaped like the schema: sections of named tables of fields, with stray values and
/// keys at every level.
fn schema_document() -> impl Strategy<Value = Table> {
    let fields = prop::collection::btree_map(key(), prop_oneof![4 => scalar(), 1 => value()], 0..6)
        .prop_map(|m| Value::Table(m.into_iter().collect()));
    let named = prop::collection::btree_map(
        select(&NAMES[..]).prop_map(str::to_owned),
        prop_oneof![6 => fields, 1 => value()],
        0..3,
    )
    .prop_map(|m| Value::Table(m.into_iter().collect()));
    let section_key = prop_oneof![
        8 => select(&SECTIONS[..]).prop_map(str::to_owned),
        1 => key(),
    ];
    prop::collection::btree_map(section_key, prop_oneof![6 => named, 1 => value()], 0..6)
        .prop_map(|m| m.into_iter().collect())
}

/// A document of anything: random keys to random values.
fn any_document() -> impl Strategy<Value = Table> {
    prop::collection::btree_map(key(), value(), 0..6).prop_map(|m| m.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// The shipped profiles and their mutations

fn profiles() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("config/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable profile");
            (p, text)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected defaults.toml and three profiles: {files:?}"
    );
    files
}

/// One structural edit of a parsed document.
#[derive(Debug, Clone)]
enum Edit {
    /// Remove the entry at the path.
    Remove,
    /// Replace the value at the path.
    Replace(Value),
    /// Add `key = value` to the table at the path (or beside the value at the path).
    Insert(String, Value),
    /// Rename the entry at the path.
    Rename(String),
    /// Copy the entry at the path under another name beside it (a section under a new name).
    Copy(String),
    /// Turn the value into a string of itself (`3` → `"3"`, `"10s"` → `"\"10s\""`).
    Stringify,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => Just(Edit::Remove),
        4 => prop_oneof![3 => scalar(), 1 => value()].prop_map(Edit::Replace),
        2 => (key(), prop_oneof![3 => scalar(), 1 => value()]).prop_map(|(k, v)| Edit::Insert(k, v)),
        1 => key().prop_map(Edit::Rename),
        1 => select(&NAMES[..]).prop_map(|n| Edit::Copy(n.to_owned())),
        1 => Just(Edit::Stringify),
    ]
}

/// Every path to an entry of the tree (tables' entries and arrays' tables are walked).
fn paths(table: &Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in table {
        prefix.push(k.clone());
        out.push(prefix.clone());
        if let Value::Table(t) = v {
            paths(t, prefix, out);
        }
        prefix.pop();
    }
}

/// The table that holds the entry at `path`.
fn parent_of<'a>(root: &'a mut Table, path: &[String]) -> Option<&'a mut Table> {
    let mut table = root;
    for k in &path[..path.len() - 1] {
        table = match table.get_mut(k)? {
            Value::Table(t) => t,
            _ => return None,
        };
    }
    Some(table)
}

fn apply(doc: &mut Table, at: Index, edit: Edit) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    if all.is_empty() {
        if let Edit::Insert(k, v) = edit {
            doc.insert(k, v);
        }
        return;
    }
    let path = &all[at.index(all.len())];
    let last = path.last().unwrap().clone();
    let Some(parent) = parent_of(doc, path) else {
        return;
    };
    match edit {
        Edit::Remove => {
            parent.remove(&last);
        }
        Edit::Replace(v) => {
            parent.insert(last, v);
        }
        Edit::Insert(k, v) => match parent.get_mut(&last) {
            Some(Value::Table(t)) => {
                t.insert(k, v);
            }
            _ => {
                parent.insert(k, v);
            }
        },
        Edit::Rename(k) => {
            if let Some(v) = parent.remove(&last) {
                parent.insert(k, v);
            }
        }
        Edit::Copy(k) => {
            if let Some(v) = parent.get(&last).cloned() {
                parent.insert(k, v);
            }
        }
        Edit::Stringify => {
            if let Some(v) = parent.get(&last).cloned() {
                parent.insert(last, Value::String(v.to_string()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn every_profile_is_valid_before_it_is_mutated() {
    for (path, text) in profiles() {
        if let Err(e) = ResolvedConfig::from_toml_str(&text, &path) {
            panic!("{}:\n{e}", path.display());
        }
        // And it survives the round trip through the parsed tree the mutations edit.
        let doc: Table = text.parse().expect("a profile is TOML");
        let again = render(&doc).expect("a profile re-serializes");
        ResolvedConfig::from_toml_str(&again, &path)
            .unwrap_or_else(|e| panic!("{} after a round trip:\n{e}", path.display()));
    }
}

#[test]
fn the_checks_catch_what_they_should() {
    assert_eq!(
        segments("breakers.llm.max_failures"),
        Some(vec!["breakers", "llm", "max_failures"])
    );
    assert_eq!(
        segments(r#"breakers."my llm".x"#),
        Some(vec!["breakers", r#""my llm""#, "x"])
    );
    assert_eq!(segments(r#""a.\"b""#), Some(vec![r#""a.\"b""#]));
    for bad in ["", ".", "a.", ".a", "a..b", r#""a"#, r#""a"b"#] {
        assert_eq!(segments(bad), None, "{bad:?}");
    }
    assert_eq!(spelled("my llm"), "\"my llm\"");
    // An unknown section is blamed on itself; a missing agent reference on its agent.
    let errors = ResolvedConfig::from_toml_str("[breaker.llm]\n", "t.toml").unwrap_err();
    check_rejection("[breaker.llm]\n", &errors, Some(&["breaker".to_owned()]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random trees shaped like the schema.
    #[test]
    fn schema_shaped_documents_are_loaded_or_rejected_by_field(doc in schema_document()) {
        load_document(&doc);
    }

    /// Random trees of anything.
    #[test]
    fn arbitrary_documents_are_loaded_or_rejected_by_field(doc in any_document()) {
        load_document(&doc);
    }

    /// Structural edits of every shipped profile: 1 to 4 of them, each at a random entry.
    #[test]
    fn structural_mutations_of_every_profile_are_loaded_or_rejected_by_field(
        which in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), edit()), 1..5),
    ) {
        let profiles = profiles();
        let (_, text) = &profiles[which.index(profiles.len())];
        let mut doc: Table = text.parse().unwrap();
        for (at, e) in edits {
            apply(&mut doc, at, e);
        }
        load_document(&doc);
    }

    /// Byte edits of every shipped profile (the text may no longer be TOML, or UTF-8).
    #[test]
    fn byte_mutations_of_every_profile_are_loaded_or_rejected_by_field(
        which in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let profiles = profiles();
        let (_, text) = &profiles[which.index(profiles.len())];
        let mut bytes = text.clone().into_bytes();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        load_and_check(&String::from_utf8_lossy(&bytes), None);
    }

    /// Environment overrides of random keys and values over every profile: an override's
    /// mistake names its variable and the field it sets.
    #[test]
    fn overrides_of_every_profile_are_applied_or_rejected_by_field(
        which in any::<Index>(),
        section in select(&SECTIONS[..]),
        name in select(&NAMES[..]),
        field in select(&FIELDS[..]),
        value in prop_oneof![select(&STRINGS[..]).prop_map(str::to_owned), ".{0,8}", "-?[0-9]{1,3}(\\.[0-9])?"],
    ) {
        let profiles = profiles();
        let (_, text) = &profiles[which.index(profiles.len())];
        let var = format!(
            "RESILIENCE__{}__{}__{}",
            section.to_uppercase(),
            name.to_uppercase(),
            field.to_uppercase()
        );
        let env = EnvOverrides::from_vars([(var.clone(), value)]);
        if let Err(errors) = ResolvedConfig::<NoSystem>::from_toml_str_with_env(text, "p.toml", &env) {
            for e in &errors {
                let field = e.field().unwrap_or_else(|| panic!("no field: {e}"));
                prop_assert!(segments(field).is_some(), "malformed field {field:?}: {e}");
                prop_assert!(!e.reason().trim().is_empty(), "no reason: {e}");
            }
        }
    }
}

/// The generators are not vacuous: over a fixed sample, the documents reach the validation of
/// many different fields (not just the parser), and some of them load.
#[test]
fn the_generated_documents_reach_deep_into_the_loader() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let profiles = profiles();
    let (mut loaded, mut fields) = (0, BTreeSet::new());
    let mut record = |doc: &Table| {
        let Some(text) = render(doc) else { return };
        match ResolvedConfig::from_toml_str(&text, "fuzz.toml") {
            Ok(_) => loaded += 1,
            Err(errors) => {
                for e in &errors {
                    let field = e.field().unwrap();
                    // The field's own name: the last segment.
                    fields.insert(segments(field).unwrap().last().unwrap().to_string());
                }
            }
        }
    };
    for _ in 0..300 {
        record(&schema_document().new_tree(&mut runner).unwrap().current());
        let (which, edits) = (
            any::<Index>().new_tree(&mut runner).unwrap().current(),
            prop::collection::vec((any::<Index>(), edit()), 1..3)
                .new_tree(&mut runner)
                .unwrap()
                .current(),
        );
        let mut doc: Table = profiles[which.index(profiles.len())].1.parse().unwrap();
        for (at, e) in edits {
            apply(&mut doc, at, e);
        }
        record(&doc);
    }
    let known: BTreeSet<&str> = FIELDS.iter().copied().collect();
    let reached: Vec<&String> = fields
        .iter()
        .filter(|f| known.contains(f.as_str()))
        .collect();
    eprintln!("{loaded} of 600 loaded; fields rejected: {fields:?}");
    assert!(loaded >= 30, "only {loaded} of 600 documents loaded");
    assert!(
        reached.len() >= 25,
        "only {} schema fields rejected: {reached:?}",
        reached.len()
    );
}

/// Known gap, found by the generators above: a reason quotes the offending key or value as the
/// file spells it, control characters included, so a configuration file can put terminal escape
/// sequences into `check-config`'s output (the field path is escaped; the reason is not). Run
/// with `--ignored` once reasons escape control characters.
#[test]
fn reasons_carry_no_control_characters() {
    let text = "[breakers.llm]\n\"\\u001b[31mred\" = 1\n";
    let errors = ResolvedConfig::from_toml_str(text, "t.toml").unwrap_err();
    for e in &errors {
        assert!(
            !e.reason().chars().any(char::is_control),
            "raw control character in {:?}",
            e.reason()
        );
    }
}
