//! The loader: text → spanned tree → overrides → every section resolved, every mistake kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::agents::{Known, RawAgent};
use super::policies::{BreakerEntry, RawBreaker, RawBudget, RawRetry};
use super::source::{EntryError, FieldError, Source, as_table, dotted, empty_table, path_of_span};
use super::{
    EnvOverrides, NAME_RULE, ResolvedConfig, SectionNames, SystemSection, env, is_valid_name,
    timeouts,
};
use crate::error::{ConfigError, ConfigErrors};

/// The top-level tables a file may have.
const SECTIONS: [&str; 6] = [
    "breakers",
    "retry_policies",
    "timeouts",
    "budgets",
    "agents",
    "system",
];

pub(crate) fn resolve<X: SystemSection>(
    text: &str,
    path: &Path,
    overrides: &EnvOverrides,
) -> Result<ResolvedConfig<X>, ConfigErrors> {
    if text.len() > super::MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        }
        .into());
    }
    let mut src = Source::new(text, path);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The recovered tree may miss whole tables; checking it would only add noise.
        let root = Spanned::new(doc.span(), DeValue::Table(doc.into_inner()));
        for e in syntax {
            let span = e.span().unwrap_or(text.len()..text.len());
            let key = path_of_span(&root, &span);
            let field = if key.is_empty() {
                "toml".to_owned()
            } else {
                dotted(&key)
            };
            src.report(span, field, format!("syntax error: {}", e.message()));
        }
        return Err(finish(src));
    }
    let mut doc = doc.into_inner();
    env::apply(&mut doc, overrides, &mut src);

    for (key, value) in doc.iter() {
        if !SECTIONS.contains(&key.get_ref().as_ref()) {
            let reason = format!(
                "unknown section `{key}`, expected one of {}",
                SECTIONS.join(", ")
            );
            src.report(key.span(), dotted(&[key.get_ref()]), reason);
        } else if key.get_ref() != "system" && as_table(value).is_none() {
            let reason = format!(
                "expected a table of named sections like [{key}.NAME], found {}",
                value.get_ref().type_str()
            );
            src.report(value.span(), dotted(&[key.get_ref()]), reason);
        }
    }

    let mut known = Known::default();
    let entries = section(&doc, "breakers", &mut src, &mut known.breakers, |v| {
        RawBreaker::deserialize_each_key(v)?.resolve()
    });
    let mut breakers = BTreeMap::new();
    let mut keyed_breakers = BTreeMap::new();
    for (name, entry) in entries {
        match entry {
            BreakerEntry::Plain(settings) => {
                breakers.insert(name, settings);
            }
            BreakerEntry::Keyed(family) => {
                known.keyed_breakers.insert(name.clone());
                keyed_breakers.insert(name, family);
            }
        }
    }
    let retry_policies = section(
        &doc,
        "retry_policies",
        &mut src,
        &mut known.retry_policies,
        |v| RawRetry::deserialize_each_key(v)?.resolve(),
    );
    let timeouts = section(
        &doc,
        "timeouts",
        &mut src,
        &mut known.timeouts,
        timeouts::resolve,
    );
    let budgets = section(&doc, "budgets", &mut src, &mut known.budgets, |v| {
        RawBudget::deserialize_each_key(v)?.resolve()
    });
    let mut agent_names = BTreeSet::new();
    let agents = section(&doc, "agents", &mut src, &mut agent_names, |v| {
        RawAgent::deserialize_each_key(v)?.resolve(&known)
    });
    let names = SectionNames {
        breakers: known.breakers,
        retry_policies: known.retry_policies,
        timeouts: known.timeouts,
        budgets: known.budgets,
        agents: agent_names,
    };
    let system = resolve_system::<X>(&doc, &mut src, &names);

    match system {
        Some(system) if !src.has_errors() => Ok(ResolvedConfig {
            breakers,
            keyed_breakers,
            retry_policies,
            timeouts,
            budgets,
            agents,
            system,
        }),
        _ => Err(finish(src)),
    }
}

fn finish(src: Source<'_>) -> ConfigErrors {
    let errors = src.into_errors();
    ConfigErrors::new(errors).unwrap_or_else(|| {
        // Unreachable by construction (we only get here with errors); still no panic.
        ConfigError::Invalid {
            path: Default::default(),
            line: 1,
            column: 1,
            field: "toml".into(),
            reason: "invalid configuration".into(),
        }
        .into()
    })
}

/// Deserializes a section struct from its spanned value.
pub(crate) trait DeserializeFrom: serde::de::DeserializeOwned {
    fn deserialize_from(value: &Spanned<DeValue<'_>>) -> Result<Self, toml::de::Error> {
        // The tree borrows from the text; the raw structs own their data.
        Self::deserialize(ValueDeserializer::from(value.clone()))
    }

    /// Like [`deserialize_from`](Self::deserialize_from), but on failure finds the mistake of
    /// *every* key, by deserializing each key alone. Only for structs whose fields are all
    /// optional (the raw sections), so that a one-key table is complete.
    fn deserialize_each_key(value: &Spanned<DeValue<'_>>) -> Result<Self, EntryError> {
        let first = match Self::deserialize_from(value) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let mut errors = Vec::new();
        for (k, v) in as_table(value).into_iter().flat_map(|t| t.iter()) {
            let mut one = DeTable::new();
            one.insert(k.clone(), v.clone());
            let one = Spanned::new(value.span(), DeValue::Table(one));
            if let Err(e) = Self::deserialize_from(&one) {
                // Located in the one-key table, not the whole entry: the cost of a mistake
                // does not grow with the number of keys (or of mistakes).
                let span = e.span().unwrap_or_else(|| v.span());
                errors.push(FieldError {
                    key: path_of_span(&one, &span),
                    reason: e.message().to_owned(),
                    span: Some(span),
                });
            }
        }
        if errors.is_empty() {
            return Err(EntryError::Toml(vec![first]));
        }
        Err(EntryError::Field(errors))
    }
}

impl<T: serde::de::DeserializeOwned> DeserializeFrom for T {}

/// Resolves every `[name.ENTRY]` of one section with `resolve`, reporting invalid names and
/// values; records every entry name (valid or not) in `names`.
fn section<T>(
    doc: &DeTable<'_>,
    name: &str,
    src: &mut Source<'_>,
    names: &mut BTreeSet<String>,
    resolve: impl Fn(&Spanned<DeValue<'_>>) -> Result<T, EntryError>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(table) = doc.get(name).and_then(as_table) else {
        return out;
    };
    for (entry, value) in table.iter() {
        let entry_name = entry.get_ref().to_string();
        let prefix = [name.to_owned(), entry_name.clone()];
        names.insert(entry_name.clone());
        let valid_name = is_valid_name(&entry_name);
        if !valid_name {
            src.report(
                entry.span(),
                dotted(&prefix),
                format!("invalid name {entry_name:?}: {NAME_RULE}"),
            );
        }
        if as_table(value).is_none() {
            let reason = format!(
                "expected a table like [{name}.{entry_name}], found {}",
                value.get_ref().type_str()
            );
            src.report(value.span(), dotted(&prefix), reason);
            continue;
        }
        match resolve(value) {
            Ok(v) if valid_name => {
                out.insert(entry_name, v);
            }
            Ok(_) => {}
            Err(e) => src.report_entry(&prefix, value, e),
        }
    }
    out
}

/// The `[system]` table (absent: an empty one), deserialized and checked by `X`.
fn resolve_system<X: SystemSection>(
    doc: &DeTable<'_>,
    src: &mut Source<'_>,
    names: &SectionNames,
) -> Option<X> {
    let empty = empty_table();
    let value = doc.get("system").unwrap_or(&empty);
    let prefix = ["system".to_owned()];
    let system = match X::deserialize_from(value) {
        Ok(system) => system,
        Err(e) => {
            src.report_entry(&prefix, value, EntryError::Toml(vec![e]));
            return None;
        }
    };
    let errors = system.validate_all(names);
    if errors.is_empty() {
        return Some(system);
    }
    let errors = errors.into_iter().map(FieldError::from).collect();
    src.report_entry(&prefix, value, EntryError::Field(errors));
    None
}
