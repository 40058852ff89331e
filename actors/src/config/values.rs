//! Value types that TOML spells in more than one way: a count or `"off"`, a duration or
//! `"off"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// A positive count, or `"off"` to turn the policy it sets off (`max_failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountOrOff {
    Off,
    On(u32),
}

impl<'de> serde::Deserialize<'de> for CountOrOff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CountOrOff;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or \"off\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CountOrOff, E> {
                u32::try_from(v)
                    .map(CountOrOff::On)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CountOrOff, E> {
                u32::try_from(v)
                    .map(CountOrOff::On)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<CountOrOff, E> {
                Err(E::invalid_value(
                    Unexpected::Other(&format!("integer `{v}`")),
                    &self,
                ))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<CountOrOff, E> {
                Err(E::invalid_value(
                    Unexpected::Other(&format!("integer `{v}`")),
                    &self,
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CountOrOff, E> {
                if v == "off" {
                    Ok(CountOrOff::Off)
                } else {
                    Err(E::invalid_value(Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration such as `"30s"`, or `"off"` for no limit (`half_open_max_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationOrOff {
    Off,
    On(Duration),
}

impl<'de> serde::Deserialize<'de> for DurationOrOff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(DurationVisitor { allow_off: true })
    }
}

/// Parses humantime strings itself rather than through `humantime_serde`, whose message drops
/// humantime's reason ("unknown time unit …").
struct DurationVisitor {
    allow_off: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = DurationOrOff;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"500ms\", \"10s\" or \"2m\"")?;
        if self.allow_off {
            f.write_str(", or \"off\"")?;
        }
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationOrOff, E> {
        if self.allow_off && v == "off" {
            return Ok(DurationOrOff::Off);
        }
        humantime::parse_duration(v)
            .map(DurationOrOff::On)
            .map_err(|e| E::custom(format!("invalid duration {v:?}: {e}")))
    }
}

/// `deserialize_with` for `Option<Duration>` fields (use with `#[serde(default)]`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match d.deserialize_str(DurationVisitor { allow_off: false })? {
        DurationOrOff::On(v) => Ok(Some(v)),
        // Not produced with `allow_off: false`; an error rather than a panic all the same.
        DurationOrOff::Off => Err(de::Error::custom("\"off\" is not allowed here")),
    }
}

/// Formats a duration the way the files spell it (`"1m 30s"`, `"500ms"`).
pub(crate) fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
