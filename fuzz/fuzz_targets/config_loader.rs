//! Feeds arbitrary bytes, as text, to both configuration loaders — the library's
//! `ResolvedConfig::from_toml_str` and the agent system's `SystemConfig` (the same file with its
//! `[system]` table) — and checks what the issue asks of them: no panic, ever, and every
//! rejection names a field: a non-empty, well-formed dotted key path (`toml` for a syntax
//! error), at a line and column inside the text, with a reason.

#![no_main]

use agent_system::SystemConfig;
use libfuzzer_sys::fuzz_target;
use ractor_resilience::config::{EnvOverrides, ResolvedConfig};
use ractor_resilience::error::{ConfigError, ConfigErrors};

fuzz_target!(|data: &[u8]| {
    // Bytes as text: invalid UTF-8 is replaced, so every input reaches the parser.
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = ResolvedConfig::from_toml_str(&text, "fuzz.toml") {
        check(&text, &errors);
    }
    if let Err(errors) =
        SystemConfig::from_toml_str_with_env(&text, "fuzz.toml", &EnvOverrides::none())
    {
        check(&text, &errors);
    }
});

fn check(text: &str, errors: &ConfigErrors) {
    let lines = text.split('\n').count();
    assert!(!errors.is_empty(), "a rejection without a mistake");
    for e in errors {
        let ConfigError::Invalid {
            line,
            column,
            field,
            reason,
            ..
        } = e
        else {
            panic!("a mistake in a text without a position: {e}");
        };
        assert!(
            (1..=lines).contains(line) && *column >= 1,
            "{e}: outside the text ({lines} lines)"
        );
        assert!(!reason.trim().is_empty(), "{e}: no reason");
        assert!(is_dotted_path(field), "{e}: {field:?} is not a dotted key path");
    }
    assert!(!errors.to_string().is_empty());
}

/// Bare keys (`[A-Za-z0-9_-]+`) or quoted ones (`"…"`, backslash escapes), joined by dots.
fn is_dotted_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return false,
                    Some(b'\\') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
        } else {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
            {
                i += 1;
            }
        }
        if i == start {
            return false;
        }
        match bytes.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(_) => return false,
        }
    }
}
