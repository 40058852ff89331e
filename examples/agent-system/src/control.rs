//! Operating a running system: the HTTP side (`GET /breakers`,
//! `POST /breakers/{name}/force-open|reset|disable`, `POST /reload`, served with `/metrics` on
//! the same loopback address) and the CLI side (`agent-system breaker
//! list|force-open|reset|disable`).
//!
//! Every command is logged with who asked (the HTTP peer) and counted in
//! `resilience_circuit_breaker_operator_actions_total{breaker, action}` (reloads in
//! `resilience_config_reloads_total{result}`, see [`crate::reload`]).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use ractor_resilience::breaker::BreakerHandle;
use ractor_resilience::config::breaker_settings_toml;
use ractor_resilience::metrics::OPERATOR_ACTIONS;
use serde_json::{Value, json};

/// What the control endpoints act on: the breakers (current across reloads) and, when the
/// system runs from a file, the reload task.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// The breakers, by name.
    pub breakers: crate::system::BreakerView,
    /// Where `POST /reload` goes; `None`: reload is not available.
    pub reload: Option<crate::reload::ReloadSender>,
    /// What `GET /status` reports (the run's agents, tasks, transitions, sparklines); `None`:
    /// no run on this server (it answers with the same fields, empty).
    pub status: Option<crate::status::StatusSource>,
    /// This node's breaker control (`POST /cluster/breakers/{name}/{action}`); `None`: not a
    /// cluster node.
    #[cfg(feature = "cluster")]
    pub cluster: Option<ClusterControl>,
}

/// A cluster node's side of the control endpoints.
#[cfg(feature = "cluster")]
#[derive(Debug, Clone)]
pub struct ClusterControl {
    /// The node.
    pub node: std::sync::Arc<ractor_resilience::cluster::ClusterNode>,
    /// Its breaker control.
    pub breakers: std::sync::Arc<ractor_resilience::cluster::BreakerControl>,
}

/// `GET /cluster/nodes` (cluster nodes): this node's name, every node it has seen (session up
/// or not, node breaker state, whether its breaker control is reachable from here) and the
/// latest cluster-wide command per breaker.
#[cfg(feature = "cluster")]
pub fn cluster_nodes(control: &Control) -> (StatusCode, Json<Value>) {
    let Some(cluster) = &control.cluster else {
        let error = "this server is not a cluster node";
        return (StatusCode::CONFLICT, Json(json!({ "error": error })));
    };
    let members = cluster.breakers.members();
    let nodes: Vec<Value> = cluster
        .node
        .nodes()
        .into_iter()
        .map(|n| {
            json!({
                "name": n.name,
                "connected": n.connected,
                "node_breaker": n.breaker.to_string(),
                "control": members.contains(&n.name),
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "node": cluster.node.name(),
            "nodes": nodes,
            "commands": cluster.breakers.commands(),
        })),
    )
}

impl Control {
    /// The breakers now.
    pub fn breakers(&self) -> Vec<BreakerHandle> {
        self.breakers.get().into_values().collect()
    }
}

impl From<Vec<BreakerHandle>> for Control {
    fn from(breakers: Vec<BreakerHandle>) -> Self {
        Control {
            breakers: breakers.into(),
            reload: None,
            status: None,
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }
}

/// `POST /reload`: re-reads the configuration file and applies it (see [`crate::reload`]).
/// 200 with the changes applied; 422 with the file's mistakes or 409 when it does not fit what
/// runs (nothing changed then); 409 when the system runs without a file.
pub async fn reload(control: &Control, peer: Peer) -> (StatusCode, Json<Value>) {
    let Some(sender) = &control.reload else {
        let error = "reload is not available on this server";
        return (
            StatusCode::CONFLICT,
            Json(json!({ "result": "unavailable", "errors": [error] })),
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = crate::reload::ReloadRequest {
        who: format!("http {}", peer.0),
        reply: Some(reply),
    };
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "result": "unavailable", "errors": ["the system is shutting down"] })),
        )
    };
    if sender.send(request).await.is_err() {
        return unavailable();
    }
    match answer.await {
        Ok((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(body),
        ),
        Err(_) => unavailable(),
    }
}

/// Who sent a request (the accept loop puts it in every request's extensions).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The commands an operator can send to a breaker, as the URL and the CLI spell them.
pub const ACTIONS: [&str; 3] = ["force-open", "reset", "disable"];

/// `GET /breakers`: each breaker's name, state, settings (with their configuration names) and
/// counters.
///
/// A keyed family is listed with `"keyed": true`, its per-key settings and bounds, the keys it
/// holds and its open keys (at most [`OPEN_KEYS_SHOWN`](crate::exporter::OPEN_KEYS_SHOWN), with
/// the count of the others).
pub async fn list(control: &Control) -> (StatusCode, Json<Value>) {
    let breakers = control.breakers();
    let families = control.breakers.families();
    let mut out = Vec::with_capacity(breakers.len() + families.len());
    for b in &breakers {
        out.push(describe(b).await);
    }
    for family in families.values() {
        out.push(describe_family(family).await);
    }
    (StatusCode::OK, Json(Value::Array(out)))
}

async fn describe_family(f: &ractor_resilience::breaker::KeyedBreakerHandle) -> Value {
    let settings = f.settings();
    let mut table: Value =
        toml::from_str::<toml::Table>(&breaker_settings_toml(settings.breaker()))
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or(Value::Null);
    if let Some(t) = table.as_object_mut() {
        t.insert("keyed".into(), json!(true));
        t.insert("max_keys".into(), json!(settings.max_keys()));
        t.insert(
            "idle_evict_after".into(),
            json!(settings.idle_evict_after().map_or_else(
                || "off".to_owned(),
                |d| humantime::format_duration(d).to_string()
            )),
        );
    }
    let listing = f.not_closed(crate::exporter::OPEN_KEYS_SHOWN).await;
    let status = f.status().await;
    match (listing, status) {
        (Ok(listing), Ok(status)) => json!({
            "name": f.name(),
            "keyed": true,
            "state": if listing.keys.is_empty() && listing.more == 0 { "closed" } else { "degraded" },
            "settings": table,
            "keys": status.keys,
            "open_keys": listing.keys.iter().map(|k| json!({
                "key": k.key,
                "state": k.state.to_string(),
                "retry_after_ms": k.retry_after.map(|d| d.as_millis() as u64),
            })).collect::<Vec<_>>(),
            "open_keys_not_listed": listing.more,
            "overflow": listing.overflow.to_string(),
            "evicted_idle": status.evicted_idle,
            "evicted_capacity": status.evicted_capacity,
        }),
        _ => json!({ "name": f.name(), "keyed": true, "state": "stopped", "settings": table }),
    }
}

async fn describe(b: &BreakerHandle) -> Value {
    let settings: Value = toml::from_str::<toml::Table>(&breaker_settings_toml(&b.settings()))
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null);
    match b.status().await {
        Ok(s) => json!({
            "name": b.name(),
            "state": s.state.to_string(),
            "generation": s.generation,
            "retry_after_ms": s.retry_after.map(|d| d.as_millis() as u64),
            "settings": settings,
            "counters": {
                "window_calls": s.window_calls,
                "window_failures": s.window_failures,
                "window_slow": s.window_slow,
                "outcomes": s.outcomes,
            },
        }),
        Err(_) => json!({ "name": b.name(), "state": "stopped", "settings": settings }),
    }
}

/// `POST /breakers/{name}/{action}`.
pub async fn act(
    breakers: &[BreakerHandle],
    name: &str,
    action: &str,
    peer: Peer,
) -> (StatusCode, Json<Value>) {
    let Some(breaker) = breakers.iter().find(|b| b.name() == name) else {
        let known: Vec<&str> = breakers.iter().map(BreakerHandle::name).collect();
        let error = format!("unknown breaker `{name}`; known: {}", known.join(", "));
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error })));
    };
    let sent = match action {
        "force-open" => breaker.force_open(),
        "reset" => breaker.reset(),
        "disable" => breaker.disable(),
        other => {
            let error = format!("unknown action `{other}`; one of: {}", ACTIONS.join(", "));
            return (StatusCode::NOT_FOUND, Json(json!({ "error": error })));
        }
    };
    if let Err(e) = sent {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": e.to_string() })),
        );
    }
    let label = action.replace('-', "_");
    tracing::warn!(breaker = name, action = %label, peer = %peer.0, "operator action on a circuit breaker");
    metrics::counter!(OPERATOR_ACTIONS, "breaker" => name.to_owned(), "action" => label)
        .increment(1);
    // The actor applies the command before it answers this status request.
    let state = breaker
        .status()
        .await
        .map(|s| s.state.to_string())
        .unwrap_or_else(|_| "stopped".into());
    (
        StatusCode::OK,
        Json(json!({ "breaker": name, "action": action, "state": state })),
    )
}

/// How long `POST /cluster/breakers/…` waits for each node's answer.
#[cfg(feature = "cluster")]
pub const CLUSTER_ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// `POST /cluster/breakers/{name}/{action}` (cluster nodes): the command goes to every live
/// node of the cluster through this node's breaker control. 200 with what each node answered
/// and the live nodes that did not (`missing`), whether or not all answered: the CLI decides
/// its exit status from `missing`. 404 for an unknown action or a breaker this node does not
/// have; 409 on a node without breaker control.
#[cfg(feature = "cluster")]
pub async fn act_cluster(
    control: &Control,
    name: &str,
    action: &str,
    peer: Peer,
) -> (StatusCode, Json<Value>) {
    let Some(cluster) = &control.cluster else {
        let error = "this server is not a cluster node";
        return (StatusCode::CONFLICT, Json(json!({ "error": error })));
    };
    let Some(op) = ractor_resilience::cluster::BreakerOp::parse(action) else {
        let error = format!("unknown action `{action}`; one of: {}", ACTIONS.join(", "));
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error })));
    };
    let breakers = control.breakers.get();
    if !breakers.contains_key(name) {
        let known: Vec<&str> = breakers.keys().map(String::as_str).collect();
        let error = format!("unknown breaker `{name}`; known: {}", known.join(", "));
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error })));
    }
    tracing::warn!(breaker = name, action, peer = %peer.0, "cluster-wide operator action requested");
    match cluster
        .breakers
        .command(name, op, CLUSTER_ACK_TIMEOUT)
        .await
    {
        Ok(report) => {
            let mut body = json!(report);
            body["breaker"] = json!(name);
            body["action"] = json!(action);
            (StatusCode::OK, Json(body))
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": e.to_string() })),
        ),
    }
}

/// The `breaker … --cluster` lines for a `act_cluster` answer, and whether every live node
/// acknowledged.
pub fn format_cluster(answer: &Value) -> (String, bool) {
    let mut out = String::new();
    let breaker = answer["breaker"].as_str().unwrap_or("?");
    let action = answer["action"].as_str().unwrap_or("?");
    for ack in answer["acks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} breaker `{breaker}`: {action} -> {}{}\n",
            ack["node"].as_str().unwrap_or("?"),
            ack["state"].as_str().unwrap_or("?"),
            if ack["applied"].as_bool() == Some(true) {
                ""
            } else {
                " (not applied)"
            },
        ));
    }
    let names = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    let down = names("down");
    if !down.is_empty() {
        out.push_str(&format!(
            "down (not live; they get it when they join again): {}\n",
            down.join(", ")
        ));
    }
    let missing = names("missing");
    (out, missing.is_empty() && answer["acks"].is_array())
}

/// The live nodes of a `act_cluster` answer that did not acknowledge.
pub fn missing_nodes(answer: &Value) -> Vec<String> {
    answer["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// Why a `breaker` command failed (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing answered at the address.
    #[error("nothing is listening at {addr} (is `agent-system run` serving there?): {reason}")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// The connection error.
        reason: String,
    },
    /// The server refused the command (unknown breaker or action, breaker stopped).
    #[error("{0}")]
    Refused(String),
}

/// Sends one request to a running system's control endpoints and returns its JSON answer.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<Value, ControlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ControlError::Refused(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let tls = crate::provider::http::tls_config(rustls::RootCertStore::empty())
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        let url = format!("http://{addr}{path}");
        let request = match method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        };
        let response = request
            .send()
            .await
            .map_err(|e| ControlError::Unreachable {
                addr,
                reason: e.to_string(),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ControlError::Refused(format!("reading the answer: {e}")))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ControlError::Refused(format!("not a control endpoint's answer: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            let error = body["error"].as_str().unwrap_or("refused").to_owned();
            Err(ControlError::Refused(error))
        }
    })
}

/// The `breaker list` table.
pub fn format_list(answer: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<12} {:>14} {:>10} {:>10}  settings\n",
        "breaker", "state", "retry_after_ms", "calls", "failures"
    );
    for b in answer.as_array().into_iter().flatten() {
        let settings = b["settings"]
            .as_object()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<16} {:<12} {:>14} {:>10} {:>10}  {settings}\n",
            b["name"].as_str().unwrap_or("?"),
            b["state"].as_str().unwrap_or("?"),
            b["retry_after_ms"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            b["counters"]["window_calls"].as_u64().unwrap_or(0),
            b["counters"]["window_failures"].as_u64().unwrap_or(0),
        ));
    }
    out
}
