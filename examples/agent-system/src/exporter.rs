//! `/metrics` (Prometheus text exposition, histograms with explicit buckets) and `/health`
//! (JSON, 200 `ok` / 503 `degraded` with the breakers that are not closed), on loopback by
//! default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ractor_resilience::breaker::BreakerHandle;
use ractor_resilience::core::breaker::BreakerState;
use tokio::net::TcpListener;

/// Latency buckets, seconds: 1 ms … 60 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Installs the Prometheus recorder as the process's global `metrics` recorder (once) and
/// returns its handle. Histograms get [`DURATION_BUCKETS`], never summaries.
///
/// # Errors
/// If another global recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &DURATION_BUCKETS)
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    ractor_resilience::metrics::describe();
    Ok(handle)
}

/// The JSON `/health` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Breakers open, half-open or forced open.
    pub open_breakers: Vec<String>,
}

/// Health from the breakers' published states (the seed's HealthCheck).
pub fn health(breakers: &[BreakerHandle]) -> Health {
    let open_breakers: Vec<String> = breakers
        .iter()
        .filter(|b| {
            matches!(
                b.state(),
                BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
            )
        })
        .map(|b| b.name().to_owned())
        .collect();
    Health {
        status: if open_breakers.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        open_breakers,
    }
}

#[derive(Clone)]
struct Served {
    metrics: PrometheusHandle,
    breakers: Arc<Vec<BreakerHandle>>,
}

async fn metrics_page(State(s): State<Served>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn health_page(State(s): State<Served>) -> impl IntoResponse {
    let h = health(&s.breakers);
    let code = if h.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(h))
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// A non-loopback address without the explicit permission.
    #[error(
        "refusing to serve metrics on {0}: not a loopback address (pass --allow-non-loopback or set system.exporter.allow_non_loopback = true)"
    )]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and serves `/metrics` and `/health` in a background task; also runs the
/// recorder's upkeep every 5 s. Returns the bound address (useful with port 0).
///
/// # Errors
/// A non-loopback address without `allow_non_loopback`, or a failed bind.
pub async fn serve(
    addr: SocketAddr,
    allow_non_loopback: bool,
    metrics: PrometheusHandle,
    breakers: Vec<BreakerHandle>,
) -> Result<SocketAddr, ExporterError> {
    if !allow_non_loopback && !addr.ip().is_loopback() {
        return Err(ExporterError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ExporterError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ExporterError::Bind { addr, source })?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/health", get(health_page))
        .with_state(Served {
            metrics,
            breakers: Arc::new(breakers),
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
