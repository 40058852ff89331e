//! Hot reload of a running system: `run --config FILE` re-reads FILE on SIGHUP and on
//! `POST /reload`.
//!
//! The new file is loaded and validated in full first (with the same environment overrides
//! as at start). If it has mistakes nothing changes, the process keeps running, and every
//! mistake (`file:line:column: field: reason`) is logged and returned. If it is valid, the
//! library's [`Registry::reconfigure`](ractor_resilience::registry::Registry::reconfigure)
//! applies it in place — every breaker, timeout actor, budget and agent keeps its state — and
//! the reload is logged as a diff of what changed.
//!
//! What a running system cannot change without a restart is reported as `not_applied` and
//! left alone: the `[system]` table (workload, provider, exporter, seed) and the set of
//! agents (the workload drives the agents spawned at start). A file that would move a running agent to another breaker,
//! timeout, budget or retry policy is refused as a whole.
//!
//! Reloads run one at a time, on the agents' runtime (the HTTP server only forwards the
//! request), and are counted in `resilience_config_reloads_total{result}`.

use std::path::PathBuf;
use std::sync::Arc;

use ractor_resilience::config::{EnvOverrides, diff};
use ractor_resilience::metrics::{CONFIG_RELOADS, RELOAD_RESULTS};
use ractor_resilience::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::SystemConfig;
use crate::system::BreakerView;

/// One request to reload: who asked (`SIGHUP`, or the HTTP peer), and where the answer goes.
#[derive(Debug)]
pub struct ReloadRequest {
    /// Who asked, for the log.
    pub who: String,
    /// The outcome: an HTTP status and a JSON body.
    pub reply: Option<oneshot::Sender<(u16, Value)>>,
}

/// Where reload requests are sent (cheap to clone).
pub type ReloadSender = mpsc::Sender<ReloadRequest>;

/// What a reload needs to know about the running system.
#[derive(Debug)]
pub struct Reloader {
    /// The file to re-read; `None`: the system runs on the embedded configuration.
    pub file: Option<PathBuf>,
    /// The environment overrides applied at start (applied again to each new file).
    pub overrides: EnvOverrides,
    /// The configuration in force.
    pub current: SystemConfig,
    /// The registry to reconfigure.
    pub registry: Arc<Mutex<Registry>>,
    /// The breakers the control endpoints show, refreshed after each reload.
    pub breakers: BreakerView,
}

/// Starts the reload task on the current runtime; requests queue (at most 8) and run one at
/// a time.
pub fn spawn(mut reloader: Reloader) -> ReloadSender {
    for result in RELOAD_RESULTS {
        metrics::counter!(CONFIG_RELOADS, "result" => result).absolute(0);
    }
    let (tx, mut rx) = mpsc::channel::<ReloadRequest>(8);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            let (status, body) = reloader.reload(&request.who).await;
            if let Some(reply) = request.reply {
                let _ = reply.send((status, body));
            }
        }
    });
    tx
}

impl Reloader {
    /// Re-reads the file and applies it; returns the HTTP status and JSON body of the outcome.
    pub async fn reload(&mut self, who: &str) -> (u16, Value) {
        let Some(file) = self.file.clone() else {
            let error = "this run was started without --config: there is no file to re-read";
            tracing::warn!(requested_by = who, "reload: {error}");
            return (409, json!({ "result": "unavailable", "errors": [error] }));
        };
        tracing::info!(requested_by = who, file = %file.display(), "reloading the configuration");
        let new = match SystemConfig::load_with_env(&file, &self.overrides) {
            Ok(new) => new,
            Err(errors) => {
                let errors: Vec<String> = errors.to_string().lines().map(str::to_owned).collect();
                for e in &errors {
                    tracing::error!("reload refused, nothing changed: {e}");
                }
                count("invalid");
                return (422, json!({ "result": "invalid", "errors": errors }));
            }
        };
        let changes = diff(&self.current, &new);
        let not_applied: Vec<String> = changes
            .iter()
            .filter(|c| !self.applies(&c.path))
            .map(|c| format!("{c} (needs a restart)"))
            .collect();
        let report = {
            let mut registry = self.registry.lock().await;
            let report = registry.reconfigure(&new).await;
            self.breakers.refresh(&registry);
            report
        };
        let report = match report {
            Ok(report) => report,
            Err(refused) => {
                for reason in &refused.reasons {
                    tracing::error!("reload refused, nothing changed: {reason}");
                }
                count("refused");
                return (
                    409,
                    json!({ "result": "refused", "errors": refused.reasons }),
                );
            }
        };
        let changes: Vec<String> = changes
            .iter()
            .filter(|c| self.applies(&c.path))
            .map(ToString::to_string)
            .collect();
        for change in &changes {
            tracing::info!("config changed: {change}");
        }
        for change in &not_applied {
            tracing::warn!("config change not applied: {change}");
        }
        if changes.is_empty() && not_applied.is_empty() {
            tracing::info!("reload: no change");
        }
        count("applied");
        // What runs now is the new file, except what needs a restart.
        let system = std::mem::replace(&mut self.current.system, new.system.clone());
        self.current = new;
        self.current.system = system;
        (
            200,
            json!({
                "result": "applied",
                "changes": changes,
                "actions": report.actions,
                "failures": report.failures,
                "not_applied": not_applied,
            }),
        )
    }

    /// Whether a change at `path` (`section.name[.key]`) is applied by a reload.
    fn applies(&self, path: &str) -> bool {
        if path == "system" || path.starts_with("system.") {
            return false;
        }
        // The agents the workload drives are spawned at start: a section added is not driven
        // until a restart (a running agent's section removed is refused by the registry).
        if let Some(agent) = path.strip_prefix("agents.") {
            return agent.contains('.');
        }
        true
    }
}

fn count(result: &'static str) {
    metrics::counter!(CONFIG_RELOADS, "result" => result).increment(1);
}
