//! `/metrics` (Prometheus text exposition, histograms with explicit buckets) and `/health`
//! (JSON, 200 `ok` / 503 `degraded` with the breakers that are not closed), on loopback by
//! default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusHandle};
use ractor_resilience::breaker::BreakerHandle;
use ractor_resilience::core::breaker::BreakerState;
use tokio::net::TcpListener;

/// Latency buckets, seconds: 1 ms … 60 s (the library's).
pub const DURATION_BUCKETS: [f64; 16] = ractor_resilience::metrics::DURATION_BUCKETS;

/// Installs the Prometheus recorder as the process's global `metrics` recorder (once) and
/// returns its handle. Histograms get [`DURATION_BUCKETS`], never summaries.
///
/// # Errors
/// If another global recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    // The library's builder gives its histograms buckets; `_seconds` histograms of our own get
    // the same ones.
    let recorder = ractor_resilience::metrics::prometheus_builder()
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
    metrics: Arc<Renderer>,
    breakers: Arc<Vec<BreakerHandle>>,
}

/// Renders the exposition for `/metrics`, at most one render at a time, off the async workers,
/// shared by the scrapes that wait for it.
///
/// Rendering is CPU work that grows with the number of series; done in every request on the
/// runtime that also runs the agents, a burst of concurrent scrapes queued ahead of the agents'
/// tasks and stalled them (1,000 scrapes cut task completions from 100/s to under 10/s). Now
/// scrapes queue on a lock without using CPU, and a scrape is answered with a render that
/// *started after it arrived* — never staler than a render of its own — so a burst of N
/// concurrent scrapes costs about two renders, not N.
struct Renderer {
    handle: PrometheusHandle,
    latest: tokio::sync::Mutex<Option<(std::time::Instant, Bytes)>>,
}

impl Renderer {
    async fn render(&self) -> Bytes {
        let arrived = std::time::Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some((started, text)) = &*latest {
            if *started >= arrived {
                return text.clone();
            }
        }
        let started = std::time::Instant::now();
        let handle = self.handle.clone();
        let text = match tokio::task::spawn_blocking(move || handle.render()).await {
            Ok(text) => Bytes::from(text),
            // Only if rendering panicked: answer with nothing rather than fail the server.
            Err(_) => Bytes::new(),
        };
        *latest = Some((started, text.clone()));
        text
    }
}

async fn metrics_page(State(s): State<Served>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render().await,
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
    /// The exporter's thread or runtime could not be started.
    #[error("cannot start the metrics exporter thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Binds `addr` and serves `/metrics` and `/health` on a thread of their own (with its own
/// single-threaded runtime), until the runtime that called this shuts down; also runs the
/// recorder's upkeep every 5 s. Returns the bound address (useful with port 0).
///
/// The exporter does not share the agents' runtime: a flood of scrapes competes with them for
/// the CPU as one more thread under the OS scheduler, instead of queueing ahead of every hop of
/// every task on the runtime's workers.
///
/// # Errors
/// A non-loopback address without `allow_non_loopback`, a failed bind, or no thread.
pub async fn serve(
    addr: SocketAddr,
    allow_non_loopback: bool,
    metrics: PrometheusHandle,
    breakers: Vec<BreakerHandle>,
) -> Result<SocketAddr, ExporterError> {
    if !allow_non_loopback && !addr.ip().is_loopback() {
        return Err(ExporterError::NotLoopback(addr));
    }
    let bind_error = |source| ExporterError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let listener = listener.into_std().map_err(bind_error)?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/health", get(health_page))
        .with_state(Served {
            metrics: Arc::new(Renderer {
                handle: metrics.clone(),
                latest: tokio::sync::Mutex::new(None),
            }),
            breakers: Arc::new(breakers),
        });
    // Held by a task of the calling runtime: dropped (and the server stopped) when it shuts down.
    let (alive, caller_gone) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await;
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExporterError::Thread)?;
    std::thread::Builder::new()
        .name("metrics-exporter".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        metrics.run_upkeep();
                    }
                });
                let listener = match TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "metrics server could not start");
                        return;
                    }
                };
                tokio::select! {
                    served = axum::serve(listener, app) => {
                        if let Err(e) = served {
                            tracing::error!(error = %e, "metrics server stopped");
                        }
                    }
                    _ = caller_gone => {}
                }
            });
        })
        .map_err(ExporterError::Thread)?;
    Ok(bound)
}
