//! The agent system's own `[system]` table: run length, workload, provider and exporter.
//! Every key is optional; the defaults make the embedded configuration show a breaker opening
//! during an outage and closing again within the default 40 s run.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::provider::http::HttpProviderSettings;

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
    /// The models the tasks ask for, round robin (default: none, the provider's own). An
    /// agent with a keyed breaker (`[agents.NAME] key_breaker`) keeps a breaker per model.
    /// At most 64, each 1 to 64 of `[A-Za-z0-9._:-]`.
    pub models: Vec<String>,
}

impl Default for WorkloadSettings {
    fn default() -> Self {
        WorkloadSettings {
            rate: 20.0,
            agents: Vec::new(),
            task_deadline: Duration::from_secs(30),
            max_tokens: 256,
            models: Vec::new(),
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

/// A window of simulated time, from the start of the run; an outage may hit one model only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// When it starts.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub length: Duration,
    /// An outage of this model only (one of `[system.workload] models`); default: every model.
    #[serde(default)]
    pub model: Option<String>,
}

impl Window {
    /// Whether `t` (since the start of the run) falls inside.
    pub fn contains(&self, t: Duration) -> bool {
        t >= self.start && t < self.start + self.length
    }

    /// Whether a request for `model` at `t` falls inside.
    pub fn hits(&self, t: Duration, model: Option<&str>) -> bool {
        self.contains(t) && self.model.as_deref().is_none_or(|m| Some(m) == model)
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
                model: None,
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

mod display;
mod validate;

pub use validate::{MAX_BODY_BYTES_LIMIT, MAX_DURATION, MIN_RATE, check_run_duration};
