//! The rules of `[system]`: every value checked at load, every mistake named with its field.

use std::time::Duration;

use ractor_resilience::config::{SectionNames, SystemSection};
use ractor_resilience::core::InvalidSettings;

use super::{ProviderSettings, SystemSettings};
use crate::provider::http::ProviderSetupError;

/// The longest duration any `[system]` setting accepts: 100 years, beyond any real run and far
/// from where adding it to a clock reading would overflow (and panic).
pub const MAX_DURATION: Duration = Duration::from_secs(3_155_760_000); // 100 × 365.25 days

/// The most `workload.models`.
const MAX_MODELS: usize = 64;

/// A model name: 1 to 64 of `[A-Za-z0-9._:-]` (they become breaker keys and log fields).
fn is_model_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The lowest workload rate: one task per 1,000 s (a lower one made the interval between
/// arrivals overflow a `Duration`).
pub const MIN_RATE: f64 = 0.001;

fn at_most_max(field: &'static str, d: Duration) -> Result<(), InvalidSettings> {
    if d <= MAX_DURATION {
        Ok(())
    } else {
        Err(InvalidSettings::new(
            field,
            format!(
                "must be at most {}, got {}",
                humantime::format_duration(MAX_DURATION),
                humantime::format_duration(d)
            ),
        ))
    }
}

fn probability(field: &'static str, p: f64) -> Result<(), InvalidSettings> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(InvalidSettings::new(
            field,
            format!("must be a probability in [0, 1], got {p}"),
        ))
    }
}

/// The largest response body the HTTP provider may be allowed to read: 64 MiB (a chat
/// completion is a few KiB; a larger bound only lets a misbehaving server exhaust memory).
pub const MAX_BODY_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// The rule of `system.duration` (and of `--duration`, which overrides it): greater than zero
/// and at most [`MAX_DURATION`].
///
/// # Errors
/// The rule broken, lowercase.
pub fn check_run_duration(d: Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    at_most_max("duration", d).map_err(|e| e.reason)
}

/// Checks `base_url` itself (the provider appends `/chat/completions` to it, and
/// `"http://"` + that path parsed as a URL with host `chat`): http or https, a non-empty host,
/// a port in 1..=65535 if one is given.
fn check_base_url(base_url: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|e| format!("`{base_url}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{base_url}` must be an http:// or https:// URL, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{base_url}` has no host"));
    }
    if url.port() == Some(0) {
        return Err(format!("`{base_url}` has port 0; give a port in 1..=65535"));
    }
    Ok(())
}

impl SystemSection for SystemSettings {
    /// The first broken rule; the workload's agent names are not checked (there are none to
    /// check them against).
    fn validate(&self) -> Result<(), InvalidSettings> {
        match self.rules(None).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every broken rule, not only the first, the workload's agent names included.
    fn validate_all(&self, names: &SectionNames) -> Vec<InvalidSettings> {
        self.rules(Some(names))
    }
}

impl SystemSettings {
    /// Every broken rule; `names`, when given, checks `workload.agents` against the file's
    /// agents.
    fn rules(&self, names: Option<&SectionNames>) -> Vec<InvalidSettings> {
        let mut errors = Vec::new();
        let mut check = |r: Result<(), InvalidSettings>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        check(check_run_duration(self.duration).map_err(|r| InvalidSettings::new("duration", r)));
        check(at_most_max("drain_deadline", self.drain_deadline));
        if self.progress_interval.is_zero() {
            check(Err(InvalidSettings::new(
                "progress_interval",
                "must be greater than zero",
            )));
        } else {
            check(at_most_max("progress_interval", self.progress_interval));
        }
        let w = &self.workload;
        if !(w.rate.is_finite() && (MIN_RATE..=1_000_000.0).contains(&w.rate)) {
            check(Err(InvalidSettings::new(
                "workload.rate",
                format!(
                    "must be in [{MIN_RATE}, 1000000] tasks per second, got {:?}",
                    w.rate
                ),
            )));
        }
        if w.task_deadline.is_zero() {
            check(Err(InvalidSettings::new(
                "workload.task_deadline",
                "must be greater than zero",
            )));
        } else {
            check(at_most_max("workload.task_deadline", w.task_deadline));
        }
        if w.models.len() > MAX_MODELS {
            check(Err(InvalidSettings::new(
                "workload.models",
                format!("at most {MAX_MODELS} models, got {}", w.models.len()),
            )));
        }
        let mut models = std::collections::BTreeSet::new();
        for model in &w.models {
            if !is_model_name(model) {
                check(Err(InvalidSettings::new(
                    "workload.models",
                    format!("{model:?} is not a model name: 1 to 64 of [A-Za-z0-9._:-]"),
                )));
            }
            if !models.insert(model) {
                check(Err(InvalidSettings::new(
                    "workload.models",
                    format!("model {model:?} is listed twice"),
                )));
            }
        }
        if let ProviderSettings::Simulated(s) = &self.provider {
            for model in s.outages.iter().filter_map(|o| o.model.as_ref()) {
                if !models.contains(model) {
                    check(Err(InvalidSettings::new(
                        "provider.outages",
                        format!(
                            "the outage of model {model:?} names no model of [system.workload] models ({:?})",
                            w.models
                        ),
                    )));
                }
            }
        }
        if let Some(names) = names {
            let known = if names.agents.is_empty() {
                "the file has no [agents.NAME] sections".to_owned()
            } else {
                let list: Vec<&str> = names.agents.iter().map(String::as_str).collect();
                format!("known: {}", list.join(", "))
            };
            let mut seen = std::collections::BTreeSet::new();
            for agent in &w.agents {
                if !names.agents.contains(agent) {
                    check(Err(InvalidSettings::new(
                        "workload.agents",
                        format!("unknown agent {agent:?}; {known}"),
                    )));
                }
                if !seen.insert(agent) {
                    check(Err(InvalidSettings::new(
                        "workload.agents",
                        format!("agent {agent:?} is listed twice"),
                    )));
                }
            }
        }
        if let ProviderSettings::Http(h) = &self.provider {
            let mut local = false;
            if let Err(reason) = check_base_url(&h.base_url) {
                check(Err(InvalidSettings::new("provider.base_url", reason)));
                local = true;
            }
            if h.max_body_bytes > MAX_BODY_BYTES_LIMIT {
                check(Err(InvalidSettings::new(
                    "provider.max_body_bytes",
                    format!(
                        "must be at most {MAX_BODY_BYTES_LIMIT} (64 MiB), got {}",
                        h.max_body_bytes
                    ),
                )));
                local = true;
            }
            // Checked here too, not only when the provider is built, so that `check-config`
            // reports a bad value with its line like every other mistake.
            if let (false, Err(e)) = (local, h.validate()) {
                let field = match &e {
                    ProviderSetupError::InvalidSetting { field, .. } => match *field {
                        "base_url" => "provider.base_url",
                        "model" => "provider.model",
                        "api_key_env" => "provider.api_key_env",
                        "request_timeout" => "provider.request_timeout",
                        "max_body_bytes" => "provider.max_body_bytes",
                        _ => "provider",
                    },
                    _ => "provider",
                };
                let reason = match e {
                    ProviderSetupError::InvalidSetting { reason, .. } => reason,
                    other => other.to_string(),
                };
                check(Err(InvalidSettings::new(field, reason)));
            }
        }
        if let ProviderSettings::Simulated(s) = &self.provider {
            check(at_most_max("provider.median_latency", s.median_latency));
            check(at_most_max(
                "provider.rate_limit_retry_after",
                s.rate_limit_retry_after,
            ));
            if let Some(e) = s
                .outages
                .iter()
                .flat_map(|w| [w.start, w.length])
                .find_map(|d| at_most_max("provider.outages", d).err())
            {
                check(Err(e));
            }
            if let Some(e) = s
                .spikes
                .iter()
                .flat_map(|sp| [sp.start, sp.length])
                .find_map(|d| at_most_max("provider.spikes", d).err())
            {
                check(Err(e));
            }
            if s.median_latency.is_zero() {
                check(Err(InvalidSettings::new(
                    "provider.median_latency",
                    "must be greater than zero",
                )));
            }
            if !(s.sigma.is_finite() && (0.0..=5.0).contains(&s.sigma)) {
                check(Err(InvalidSettings::new(
                    "provider.sigma",
                    format!("must be within [0, 5], got {}", s.sigma),
                )));
            }
            let error_rate = probability("provider.error_rate", s.error_rate);
            let rate_limit_rate = probability("provider.rate_limit_rate", s.rate_limit_rate);
            let both = error_rate.is_ok() && rate_limit_rate.is_ok();
            check(error_rate);
            check(rate_limit_rate);
            if both && s.error_rate + s.rate_limit_rate > 1.0 {
                check(Err(InvalidSettings::new(
                    "provider.rate_limit_rate",
                    "error_rate + rate_limit_rate must not exceed 1",
                )));
            }
            if let Some(spike) = s
                .spikes
                .iter()
                .find(|sp| !(sp.factor.is_finite() && sp.factor >= 1.0))
            {
                check(Err(InvalidSettings::new(
                    "provider.spikes",
                    format!("factor must be a finite number ≥ 1, got {}", spike.factor),
                )));
            }
        }
        check(at_most_max("exporter.linger", self.exporter.linger));
        if !self.exporter.allow_non_loopback
            && !crate::exporter::is_loopback(self.exporter.addr.ip())
        {
            check(Err(InvalidSettings::new(
                "exporter.addr",
                format!(
                    "{} is not a loopback address; set system.exporter.allow_non_loopback = true to expose metrics",
                    self.exporter.addr
                ),
            )));
        }
        errors
    }
}
