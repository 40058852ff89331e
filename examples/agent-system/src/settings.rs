//! The agent system's own `[system]` table: run length, workload, provider and exporter.
//! Every key is optional; the defaults make the embedded configuration show a breaker opening
//! during an outage and closing again within the default 40 s run.

use std::net::SocketAddr;
use std::time::Duration;

use ractor_resilience::config::{SectionNames, SystemSection};
use ractor_resilience::core::InvalidSettings;
use serde::Deserialize;

use crate::provider::http::{HttpProviderSettings, ProviderSetupError};

/// `[system]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemSettings {
    /// How long `run` / `simulate` drive the workload when `--duration` is not given.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Seeds every random choice (simulated provider, jitter): same seed, same `simulate` report.
    pub seed: u64,
    /// After the workload stops (or on Ctrl-C / SIGTERM), how long in-flight tasks may finish
    /// before the rest are cancelled.
    #[serde(with = "humantime_serde")]
    pub drain_deadline: Duration,
    /// How often the progress is logged when stdout is not a terminal.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// The traffic.
    pub workload: WorkloadSettings,
    /// What the workers call.
    pub provider: ProviderSettings,
    /// Where `/metrics` and `/health` are served.
    pub exporter: ExporterSettings,
}

impl Default for SystemSettings {
    fn default() -> Self {
        SystemSettings {
            duration: Duration::from_secs(40),
            seed: 1,
            drain_deadline: Duration::from_secs(5),
            progress_interval: Duration::from_secs(5),
            workload: WorkloadSettings::default(),
            provider: ProviderSettings::default(),
            exporter: ExporterSettings::default(),
        }
    }
}

/// `[system.workload]`: an open-loop arrival process at `rate` tasks per second.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSettings {
    /// Tasks per second (evenly spaced arrivals).
    pub rate: f64,
    /// The agents the tasks go to, round robin (default: every configured agent). Each must
    /// name an `[agents.NAME]` section, once.
    pub agents: Vec<String>,
    /// Each task's deadline from submission (all attempts and backoff included).
    #[serde(with = "humantime_serde")]
    pub task_deadline: Duration,
    /// `max_tokens` of each request (the simulated provider's latency does not depend on it).
    pub max_tokens: u32,
}

impl Default for WorkloadSettings {
    fn default() -> Self {
        WorkloadSettings {
            rate: 20.0,
            agents: Vec::new(),
            task_deadline: Duration::from_secs(30),
            max_tokens: 256,
        }
    }
}

/// `[system.provider]`: `kind = "simulated"` (default) or `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ProviderTable")]
pub enum ProviderSettings {
    /// The simulated LLM provider.
    Simulated(SimulatedSettings),
    /// A real OpenAI-compatible endpoint. `base_url` must be an http or https URL with a
    /// host (and a port in 1..=65535 if one is given); `max_body_bytes` is at most
    /// [`MAX_BODY_BYTES_LIMIT`] (64 MiB).
    Http(HttpProviderSettings),
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings::Simulated(SimulatedSettings::default())
    }
}

/// `[system.provider]` as written: every key of either kind, so that a value of the wrong type
/// or an unknown key is reported with its own key and line. (An internally tagged enum buffers
/// the table first, and every such mistake was blamed on `system.provider` at its header.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderTable {
    kind: ProviderKind,
    #[serde(default, with = "humantime_serde")]
    median_latency: Option<Duration>,
    sigma: Option<f64>,
    error_rate: Option<f64>,
    rate_limit_rate: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    rate_limit_retry_after: Option<Duration>,
    outages: Option<Vec<Window>>,
    spikes: Option<Vec<Spike>>,
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
    max_body_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProviderKind {
    Simulated,
    Http,
}

impl TryFrom<ProviderTable> for ProviderSettings {
    type Error = String;

    fn try_from(t: ProviderTable) -> Result<Self, String> {
        let not_for = |kind: &str, keys: &[(&str, bool)]| match keys.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("`{key}` is not a setting of kind = \"{kind}\"")),
            None => Ok(()),
        };
        match t.kind {
            ProviderKind::Simulated => {
                not_for(
                    "simulated",
                    &[
                        ("base_url", t.base_url.is_some()),
                        ("model", t.model.is_some()),
                        ("api_key_env", t.api_key_env.is_some()),
                        ("request_timeout", t.request_timeout.is_some()),
                        ("max_body_bytes", t.max_body_bytes.is_some()),
                    ],
                )?;
                let d = SimulatedSettings::default();
                Ok(ProviderSettings::Simulated(SimulatedSettings {
                    median_latency: t.median_latency.unwrap_or(d.median_latency),
                    sigma: t.sigma.unwrap_or(d.sigma),
                    error_rate: t.error_rate.unwrap_or(d.error_rate),
                    rate_limit_rate: t.rate_limit_rate.unwrap_or(d.rate_limit_rate),
                    rate_limit_retry_after: t
                        .rate_limit_retry_after
                        .unwrap_or(d.rate_limit_retry_after),
                    outages: t.outages.unwrap_or(d.outages),
                    spikes: t.spikes.unwrap_or(d.spikes),
                }))
            }
            ProviderKind::Http => {
                not_for(
                    "http",
                    &[
                        ("median_latency", t.median_latency.is_some()),
                        ("sigma", t.sigma.is_some()),
                        ("error_rate", t.error_rate.is_some()),
                        ("rate_limit_rate", t.rate_limit_rate.is_some()),
                        ("rate_limit_retry_after", t.rate_limit_retry_after.is_some()),
                        ("outages", t.outages.is_some()),
                        ("spikes", t.spikes.is_some()),
                    ],
                )?;
                let required = |key: &str, v: Option<String>| {
                    v.ok_or_else(|| {
                        format!("missing field `{key}` (required with kind = \"http\")")
                    })
                };
                let mut h = HttpProviderSettings::new(
                    required("base_url", t.base_url)?,
                    required("model", t.model)?,
                    required("api_key_env", t.api_key_env)?,
                );
                if let Some(timeout) = t.request_timeout {
                    h.request_timeout = timeout;
                }
                if let Some(bytes) = t.max_body_bytes {
                    h.max_body_bytes = bytes;
                }
                Ok(ProviderSettings::Http(h))
            }
        }
    }
}

/// A window of simulated time, from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// When it starts.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub length: Duration,
}

impl Window {
    /// Whether `t` (since the start of the run) falls inside.
    pub fn contains(&self, t: Duration) -> bool {
        t >= self.start && t < self.start + self.length
    }
}

/// A latency spike: latencies multiplied by `factor` during the window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// When it starts.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub length: Duration,
    /// Latency multiplier, ≥ 1.
    pub factor: f64,
}

/// The simulated provider's behaviour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatedSettings {
    /// Median latency of the lognormal distribution.
    #[serde(with = "humantime_serde")]
    pub median_latency: Duration,
    /// σ of the underlying normal (log-space spread).
    pub sigma: f64,
    /// Probability of a 500.
    pub error_rate: f64,
    /// Probability of a 429.
    pub rate_limit_rate: f64,
    /// The `Retry-After` a 429 carries.
    #[serde(with = "humantime_serde")]
    pub rate_limit_retry_after: Duration,
    /// Windows during which every request fails fast (the provider is down).
    pub outages: Vec<Window>,
    /// Windows during which latencies are multiplied.
    pub spikes: Vec<Spike>,
}

impl Default for SimulatedSettings {
    fn default() -> Self {
        SimulatedSettings {
            median_latency: Duration::from_millis(80),
            sigma: 0.5,
            error_rate: 0.01,
            rate_limit_rate: 0.005,
            rate_limit_retry_after: Duration::from_secs(1),
            outages: vec![Window {
                start: Duration::from_secs(10),
                length: Duration::from_secs(8),
            }],
            spikes: vec![Spike {
                start: Duration::from_secs(30),
                length: Duration::from_secs(4),
                factor: 4.0,
            }],
        }
    }
}

/// `[system.exporter]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterSettings {
    /// Address of `/metrics` and `/health`.
    pub addr: SocketAddr,
    /// Binding a non-loopback address must be asked for explicitly.
    pub allow_non_loopback: bool,
    /// How long `run` keeps serving `/metrics` and `/health` after the summary, so that the
    /// last interval's counters can be scraped (`0s`: stop at once). A signal ends it early.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        ExporterSettings {
            addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            allow_non_loopback: false,
            linger: Duration::from_secs(5),
        }
    }
}

/// The longest duration any `[system]` setting accepts: 100 years, beyond any real run and far
/// from where adding it to a clock reading would overflow (and panic).
pub const MAX_DURATION: Duration = Duration::from_secs(3_155_760_000); // 100 × 365.25 days

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

impl std::fmt::Display for SystemSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "[system]")?;
        writeln!(
            f,
            "duration = \"{}\"",
            humantime::format_duration(self.duration)
        )?;
        writeln!(f, "seed = {}", self.seed)?;
        writeln!(
            f,
            "drain_deadline = \"{}\"",
            humantime::format_duration(self.drain_deadline)
        )?;
        writeln!(
            f,
            "progress_interval = \"{}\"",
            humantime::format_duration(self.progress_interval)
        )?;
        writeln!(f, "\n[system.workload]")?;
        writeln!(f, "rate = {:?}", self.workload.rate)?;
        writeln!(f, "agents = {:?}", self.workload.agents)?;
        writeln!(
            f,
            "task_deadline = \"{}\"",
            humantime::format_duration(self.workload.task_deadline)
        )?;
        writeln!(f, "max_tokens = {}", self.workload.max_tokens)?;
        writeln!(f, "\n[system.provider]")?;
        match &self.provider {
            ProviderSettings::Simulated(s) => {
                writeln!(f, "kind = \"simulated\"")?;
                writeln!(
                    f,
                    "median_latency = \"{}\"",
                    humantime::format_duration(s.median_latency)
                )?;
                writeln!(f, "sigma = {:?}", s.sigma)?;
                writeln!(f, "error_rate = {:?}", s.error_rate)?;
                writeln!(f, "rate_limit_rate = {:?}", s.rate_limit_rate)?;
                writeln!(
                    f,
                    "rate_limit_retry_after = \"{}\"",
                    humantime::format_duration(s.rate_limit_retry_after)
                )?;
                let outages: Vec<String> = s
                    .outages
                    .iter()
                    .map(|w| {
                        format!(
                            "{{ start = \"{}\", length = \"{}\" }}",
                            humantime::format_duration(w.start),
                            humantime::format_duration(w.length)
                        )
                    })
                    .collect();
                writeln!(f, "outages = [{}]", outages.join(", "))?;
                let spikes: Vec<String> = s
                    .spikes
                    .iter()
                    .map(|sp| {
                        format!(
                            "{{ start = \"{}\", length = \"{}\", factor = {:?} }}",
                            humantime::format_duration(sp.start),
                            humantime::format_duration(sp.length),
                            sp.factor
                        )
                    })
                    .collect();
                writeln!(f, "spikes = [{}]", spikes.join(", "))?;
            }
            ProviderSettings::Http(h) => {
                writeln!(f, "kind = \"http\"")?;
                writeln!(f, "base_url = {:?}", h.base_url)?;
                writeln!(f, "model = {:?}", h.model)?;
                writeln!(f, "api_key_env = {:?}", h.api_key_env)?;
                writeln!(
                    f,
                    "request_timeout = \"{}\"",
                    humantime::format_duration(h.request_timeout)
                )?;
                writeln!(f, "max_body_bytes = {}", h.max_body_bytes)?;
            }
        }
        writeln!(f, "\n[system.exporter]")?;
        writeln!(f, "addr = \"{}\"", self.exporter.addr)?;
        writeln!(
            f,
            "allow_non_loopback = {}",
            self.exporter.allow_non_loopback
        )?;
        writeln!(
            f,
            "linger = \"{}\"",
            humantime::format_duration(self.exporter.linger)
        )
    }
}
