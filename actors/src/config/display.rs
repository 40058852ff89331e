//! `Display` for [`ResolvedConfig`]: the effective configuration as TOML, every default filled
//! in, in a form that loads back to an equal configuration.

use std::fmt::{self, Display, Formatter, Write as _};

use ractor_resilience_core::backoff::{Jitter, RetryPolicy};
use ractor_resilience_core::breaker::{BreakerSettings, SlidingWindow};
use ractor_resilience_core::budget::BudgetSettings;
use ractor_resilience_core::estimator::EstimatorMode;

use super::values::human;
use super::{AgentConfig, KeyedBreakerConfig, ResolvedConfig, TimeoutSettings};

impl<X: Display> Display for ResolvedConfig<X> {
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    ///
    /// let config = ResolvedConfig::from_toml_str("[budgets.default]\nttl = \"20s\"\n", "a.toml").unwrap();
    /// assert_eq!(
    ///     config.to_string(),
    ///     "[budgets.default]\nttl = \"20s\"\nmin_per_second = 10\nretry_percent = 0.2\n"
    /// );
    /// ```
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = Sections::default();
        // Single and keyed breakers share the [breakers.NAME] namespace: in name order.
        let mut names: Vec<&String> = self
            .breakers
            .keys()
            .chain(self.keyed_breakers.keys())
            .collect();
        names.sort();
        for name in names {
            let s = out.start("breakers", name);
            match (self.breakers.get(name), self.keyed_breakers.get(name)) {
                (Some(b), _) => breaker(s, b),
                (None, Some(k)) => keyed(s, k),
                (None, None) => {}
            }
        }
        for (name, r) in &self.retry_policies {
            retry(out.start("retry_policies", name), r);
        }
        for (name, t) in &self.timeouts {
            timeout(&mut out, name, t);
        }
        for (name, b) in &self.budgets {
            budget(out.start("budgets", name), b);
        }
        for (name, a) in &self.agents {
            agent(out.start("agents", name), a);
        }
        f.write_str(&out.0)?;
        let system = self.system.to_string();
        if !system.is_empty() {
            if !out.0.is_empty() {
                f.write_str("\n")?;
            }
            f.write_str(&system)?;
        }
        Ok(())
    }
}

/// TOML text being built, one `[table]` after another with a blank line between.
#[derive(Default)]
struct Sections(String);

impl Sections {
    fn start(&mut self, section: &str, name: &str) -> &mut String {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        // Names are validated as bare keys, so they need no quoting.
        let _ = writeln!(self.0, "[{section}.{name}]");
        &mut self.0
    }
}

// Writing to a `String` cannot fail; the `let _ =` below discard an always-`Ok`.
fn line(out: &mut String, key: &str, value: impl Display) {
    let _ = writeln!(out, "{key} = {value}");
}

fn duration(out: &mut String, key: &str, d: std::time::Duration) {
    let _ = writeln!(out, "{key} = \"{}\"", human(d));
}

/// `{:?}` keeps a decimal point (`2.0`), so the value reads back as a float.
fn float(out: &mut String, key: &str, v: f64) {
    let _ = writeln!(out, "{key} = {v:?}");
}

/// A breaker's settings as the `key = value` lines of its `[breakers.NAME]` section, every
/// default filled in (what an operator reads back from a running system).
///
/// ```
/// use ractor_resilience::config::breaker_settings_toml;
/// use ractor_resilience::core::breaker::BreakerSettings;
///
/// assert!(breaker_settings_toml(&BreakerSettings::default()).contains("max_failures = 5"));
/// ```
pub fn breaker_settings_toml(b: &BreakerSettings) -> String {
    let mut out = String::new();
    breaker(&mut out, b);
    out
}

fn breaker(out: &mut String, b: &BreakerSettings) {
    match b.max_failures() {
        Some(n) => line(out, "max_failures", n),
        None => line(out, "max_failures", "\"off\""),
    }
    if let Some(t) = b.failure_rate_threshold() {
        float(out, "failure_rate_threshold", t.get());
    }
    if let Some(t) = b.slow_call_rate_threshold() {
        float(out, "slow_call_rate_threshold", t.get());
        duration(out, "slow_call_duration", b.slow_call_duration());
    }
    match b.window() {
        SlidingWindow::Count(n) => line(out, "window_size", n),
        SlidingWindow::Time(d) => duration(out, "window_duration", d),
    }
    line(out, "minimum_calls", b.minimum_calls());
    duration(out, "open_duration", b.open_duration());
    if let Some(o) = b.open_backoff() {
        float(out, "open_backoff_multiplier", o.multiplier);
        duration(out, "max_open_duration", o.max);
        float(out, "open_jitter", o.jitter.get());
    }
    line(out, "half_open_probes", b.half_open_probes());
    // Unset means "all probes"; printing it only when it differs keeps the text loading back
    // to an equal value.
    if b.half_open_successes() != b.half_open_probes() {
        line(out, "half_open_successes", b.half_open_successes());
    }
    match b.half_open_max_wait() {
        Some(d) => duration(out, "half_open_max_wait", d),
        None => line(out, "half_open_max_wait", "\"off\""),
    }
}

fn keyed(out: &mut String, k: &KeyedBreakerConfig) {
    line(out, "keyed", true);
    breaker(out, k.family.breaker());
    line(out, "max_keys", k.family.max_keys());
    match k.family.idle_evict_after() {
        Some(d) => duration(out, "idle_evict_after", d),
        None => line(out, "idle_evict_after", "\"off\""),
    }
    let _ = writeln!(out, "metric_keys = {:?}", k.metric_keys);
    line(out, "metric_top_keys", k.metric_top_keys);
}

fn retry(out: &mut String, r: &RetryPolicy) {
    line(out, "max_attempts", r.max_attempts());
    duration(out, "initial_delay", r.initial_delay());
    duration(out, "max_delay", r.max_delay());
    float(out, "multiplier", r.multiplier());
    let kind = match r.jitter() {
        Jitter::None => "none",
        Jitter::Proportional(factor) => {
            line(out, "jitter", "\"proportional\"");
            float(out, "jitter_factor", factor.get());
            return;
        }
        Jitter::Full => "full",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
    };
    let _ = writeln!(out, "jitter = \"{kind}\"");
}

fn timeout(out: &mut Sections, name: &str, t: &TimeoutSettings) {
    let s = out.start("timeouts", name);
    let _ = writeln!(s, "kind = \"{}\"", t.kind());
    match t {
        TimeoutSettings::Fixed(d) => duration(s, "duration", *d),
        TimeoutSettings::PerOperation(p) => {
            duration(s, "default", p.default_timeout());
            duration(s, "slow_operation_threshold", p.slow_operation_threshold());
            if !p.operations().is_empty() {
                let _ = writeln!(s, "\n[timeouts.{name}.operations]");
                for (op, d) in p.operations() {
                    duration(s, op, *d);
                }
            }
        }
        TimeoutSettings::Adaptive(a) => {
            let mode = match a.mode() {
                EstimatorMode::Quantile => "quantile",
                EstimatorMode::Rfc6298 => "rfc6298",
            };
            let _ = writeln!(s, "mode = \"{mode}\"");
            duration(s, "initial", a.initial());
            float(s, "quantile", a.quantile());
            float(s, "padding", a.padding());
            duration(s, "min", a.min());
            duration(s, "max", a.max());
            line(s, "min_samples", a.min_samples());
            line(s, "window", a.window());
            duration(s, "granularity", a.granularity());
        }
    }
}

fn budget(out: &mut String, b: &BudgetSettings) {
    duration(out, "ttl", b.ttl());
    line(out, "min_per_second", b.min_per_second());
    float(out, "retry_percent", b.retry_percent());
}

fn agent(out: &mut String, a: &AgentConfig) {
    let _ = writeln!(out, "breaker = \"{}\"", a.breaker);
    if let Some(k) = &a.key_breaker {
        let _ = writeln!(out, "key_breaker = \"{k}\"");
    }
    let _ = writeln!(out, "retry = \"{}\"", a.retry);
    let _ = writeln!(out, "timeout = \"{}\"", a.timeout);
    if let Some(b) = &a.budget {
        let _ = writeln!(out, "budget = \"{b}\"");
    }
    line(out, "workers", a.workers);
    line(out, "max_pending", a.max_pending);
    match &a.queue {
        None => {
            let _ = writeln!(out, "queue_target = \"off\"");
        }
        Some(q) => {
            duration(out, "queue_target", q.target());
            duration(out, "queue_interval", q.interval());
            line(out, "adaptive_lifo", q.adaptive_lifo());
        }
    }
}
