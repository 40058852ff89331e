//! `agent-system node` (feature `cluster`): one cluster node serving the `work` agent to the
//! other nodes of the cluster.
//!
//! ```text
//! RESILIENCE_CLUSTER_COOKIE=… agent-system node --listen 127.0.0.1:0 --node-name n1
//! RESILIENCE_CLUSTER_COOKIE=… agent-system node --listen 127.0.0.1:0 --node-name n2 --join 127.0.0.1:PORT1
//! ```
//!
//! The first stdout line is the banner, `NODE name=N addr=IP:PORT pid=P control=IP:PORT`, with
//! the real addresses (port 0 allowed): `addr` for other nodes, `control` for the loopback HTTP
//! server of this node (`/metrics`, `/health`, `GET /breakers`, `POST /breakers/{name}/{action}`
//! for this node only, and `POST /cluster/breakers/{name}/{action}` for every live node: what
//! `agent-system breaker force-open|reset|disable NAME --cluster --addr CONTROL` sends).
//!
//! The node runs the breakers of its configuration (`--config`, else the embedded default) — the
//! `work` agent is guarded by its `llm` breaker — and a [`BreakerControl`] that applies
//! cluster-wide commands to them and hands the current forced states to nodes that join later.
//! A node started with `--join` connects first and takes its peers' commands
//! ([`BreakerControl::sync`], bounded by `--breaker-sync-timeout`) before its agent joins the
//! group, before its control endpoint answers and before its banner: it is forced open from
//! its first instant.
//!
//! The cookie comes from `--cookie-file` or `RESILIENCE_CLUSTER_COOKIE`, never from the command
//! line (it would show in `ps`). `--listen` must be a loopback address unless
//! `--allow-non-loopback` is given (the transport is plain TCP with a cookie handshake). The
//! node exits on Ctrl-C / SIGTERM, or after `--lifetime`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ractor_resilience::agent::{Agent, AgentBuilder, ErrorClass};
use ractor_resilience::cluster::{self, BreakerControl, ClusterNode, NodeOptions};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::task::TaskContext;
use serde::{Deserialize, Serialize};

/// The environment variable the cookie is read from when no `--cookie-file` is given.
pub const COOKIE_ENV: &str = "RESILIENCE_CLUSTER_COOKIE";

/// `agent-system node …`.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Where to listen for other nodes (port 0: any free port, printed in the banner).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// A node to connect to (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub join: Vec<SocketAddr>,
    /// This node's name, unique in the cluster (default: `node-<pid>`).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The cluster's name (the process-group scope).
    #[arg(long, value_name = "NAME", default_value = "resilience")]
    pub cluster: String,
    /// A file holding the cookie (else the `RESILIENCE_CLUSTER_COOKIE` environment variable).
    #[arg(long, value_name = "FILE")]
    pub cookie_file: Option<PathBuf>,
    /// Allow `--listen` and `--control-addr` on non-loopback addresses.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// The served `work` agent's workers.
    #[arg(long, default_value_t = 32)]
    pub workers: usize,
    /// Where to serve this node's loopback HTTP control endpoint (`/metrics`, `/health`,
    /// `/breakers`, `/cluster/breakers/…`); port 0: any free port, printed in the banner.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub control_addr: SocketAddr,
    /// The configuration whose breakers this node runs (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// With `--join`: how long the node may wait, before it serves, for its peers' breaker
    /// commands (forced open, disabled); past it, it starts anyway and applies them when they
    /// arrive.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub breaker_sync_timeout: Duration,
    /// Exit after this long (a bound for tests and demos).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub lifetime: Duration,
}

/// A task of the served `work` agent: sleep `work_ms`, answer which node did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkTask {
    /// The caller's number for it.
    pub id: u64,
    /// How long the work takes.
    pub work_ms: u64,
}

/// What the `work` agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkDone {
    /// The task's number.
    pub id: u64,
    /// The node that ran it.
    pub node: String,
}

/// The `work` agent's error (it has none of its own; the type is the wire contract).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("work failed: {0}")]
pub struct WorkError(pub String);

/// The agent a node serves: sleeps as asked (honouring cancellation), answers its node's name.
#[derive(Debug, Clone)]
pub struct WorkAgent {
    /// This node's name.
    pub node: String,
}

impl Agent for WorkAgent {
    type Task = WorkTask;
    type Output = WorkDone;
    type Error = WorkError;

    async fn handle(&mut self, task: WorkTask, ctx: TaskContext) -> Result<WorkDone, WorkError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(task.work_ms)) => Ok(WorkDone {
                id: task.id,
                node: self.node.clone(),
            }),
            () = ctx.cancel().cancelled() => Err(WorkError("cancelled".into())),
        }
    }

    fn classify(_: &WorkError) -> ErrorClass {
        ErrorClass::TRANSIENT
    }
}

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A usage mistake (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// The cookie: from the file (trimmed), else from the environment; never empty.
pub fn cookie(file: Option<&PathBuf>, env: Option<String>) -> Result<String, NodeError> {
    let cookie = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| NodeError::Usage(format!("cookie file {}: {e}", path.display())))?
            .trim()
            .to_owned(),
        None => env.ok_or_else(|| {
            NodeError::Usage(format!(
                "no cookie: give --cookie-file FILE or set {COOKIE_ENV}"
            ))
        })?,
    };
    if cookie.is_empty() {
        return Err(NodeError::Usage("the cookie is empty".into()));
    }
    Ok(cookie)
}

/// Runs the node until Ctrl-C / SIGTERM or its lifetime ends. Exit status 0, or 2 for a usage
/// mistake.
pub fn run(args: &NodeArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(serve(args, out)) {
        Ok(()) => Ok(0),
        Err(NodeError::Usage(message)) => {
            writeln!(err, "agent-system node: {message}")?;
            Ok(crate::EXIT_INVALID_CONFIG)
        }
        Err(NodeError::Failed(message)) => {
            writeln!(err, "agent-system node: {message}")?;
            Ok(1)
        }
    }
}

async fn serve(args: &NodeArgs, out: &mut dyn Write) -> Result<(), NodeError> {
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        return Err(NodeError::Usage(format!(
            "--listen {} is not a loopback address: add --allow-non-loopback (the transport is plain TCP with a cookie handshake)",
            args.listen
        )));
    }
    if args.workers == 0 {
        return Err(NodeError::Usage("--workers must be at least 1".into()));
    }
    let cookie = cookie(args.cookie_file.as_ref(), std::env::var(COOKIE_ENV).ok())?;
    // RESILIENCE__* overrides apply, as they do for `run`.
    let overrides = ractor_resilience::config::EnvOverrides::from_process_env();
    let config = match &args.config {
        Some(file) => crate::SystemConfig::load_with_env(file, &overrides),
        None => crate::SystemConfig::from_toml_str_with_env(
            crate::DEFAULT_CONFIG,
            crate::DEFAULT_CONFIG_NAME,
            &overrides,
        ),
    }
    .map_err(|e| NodeError::Usage(e.to_string()))?;
    let metrics = crate::exporter::install_recorder().map_err(NodeError::Failed)?;
    let registry = ractor_resilience::registry::Registry::spawn(
        &config,
        ractor_resilience::registry::RegistryOptions::default(),
    )
    .await
    .map_err(|e| NodeError::Failed(e.to_string()))?;
    let breakers = crate::system::BreakerView::of(&registry);
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(|| format!("node-{}", std::process::id()));
    let opts = NodeOptions::new(name.clone(), cookie)
        .with_cluster(args.cluster.clone())
        .with_listen(args.listen);
    let node = ClusterNode::start(opts)
        .await
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    let lookup = breakers.clone();
    let control = BreakerControl::spawn(
        &node,
        move |name| lookup.get().get(name).cloned(),
        BreakerControl::DEFAULT_RESYNC,
    )
    .await
    .map_err(|e| NodeError::Failed(e.to_string()))?;
    // Join first, and take the cluster's breaker commands before serving: a node that joins
    // after `breaker force-open llm --cluster` is forced open before its agent is in the
    // group (no task reaches it) and before its banner and control endpoint exist.
    for peer in &args.join {
        if let Err(e) = node.connect(*peer).await {
            tracing::warn!(%peer, error = %e, "could not join");
        }
    }
    if !args.join.is_empty() {
        let answered = control.sync(args.breaker_sync_timeout).await;
        if answered.is_empty() {
            tracing::warn!(
                bound = ?args.breaker_sync_timeout,
                "no peer sent its breaker commands in time: serving now, applying them when they arrive"
            );
        } else {
            tracing::info!(from = ?answered, "breaker commands taken from peers");
        }
    }
    let served = name.clone();
    let mut agent = AgentBuilder::new("work", move || WorkAgent {
        node: served.clone(),
    });
    // The work stands for a call to the LLM: the `llm` breaker of the configuration guards it
    // (so a cluster-wide force-open of `llm` stops this node's work too).
    if let Some(llm) = breakers.get().get("llm").cloned() {
        agent = agent.breaker(llm);
    }
    let agent = agent
        .workers(args.workers)
        .max_pending(args.workers * 8)
        // The caller retries: one attempt here (the ingress says so on every call anyway).
        .retry_policy(
            "work",
            RetryPolicy::builder()
                .with_max_attempts(1)
                .build()
                .map_err(|e| NodeError::Failed(e.to_string()))?,
        )
        .spawn()
        .await
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    let ingress = cluster::serve(agent.clone(), node.cluster(), &name)
        .await
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    let control = Arc::new(control);
    let node = Arc::new(node);
    let served_control = crate::control::Control {
        breakers,
        reload: None,
        status: None,
        cluster: Some(crate::control::ClusterControl {
            node: node.clone(),
            breakers: control.clone(),
        }),
    };
    let control_addr = crate::exporter::serve(
        args.control_addr,
        args.allow_non_loopback,
        metrics,
        served_control,
    )
    .await
    .map_err(|e| NodeError::Usage(e.to_string()))?;
    let banner = format!(
        "NODE name={name} addr={} pid={} control={control_addr}",
        node.local_addr(),
        std::process::id()
    );
    writeln!(out, "{banner}")
        .and_then(|()| out.flush())
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    tokio::select! {
        () = tokio::time::sleep(args.lifetime) => tracing::info!("lifetime over"),
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    // Leave the group first (callers stop routing here), then stop.
    ingress.stop(None);
    control.stop();
    agent.stop();
    registry.stop();
    node.stop();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_comes_from_the_file_first_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("node-cookie-{}", std::process::id()));
        std::fs::write(&dir, "  from-file\n").unwrap();
        assert_eq!(cookie(Some(&dir), Some("env".into())).unwrap(), "from-file");
        assert_eq!(cookie(None, Some("env".into())).unwrap(), "env");
        assert!(matches!(cookie(None, None), Err(NodeError::Usage(_))));
        assert!(matches!(
            cookie(None, Some(String::new())),
            Err(NodeError::Usage(_))
        ));
        let _ = std::fs::remove_file(&dir);
    }
}
