//! `/metrics` (Prometheus text exposition, histograms with explicit buckets), `/health`
//! (JSON, 200 `ok` / 503 `degraded` with the breakers that are not closed), the breakers'
//! control endpoints (`GET /breakers`, `POST /breakers/{name}/force-open|reset|disable`,
//! `POST /reload`, see [`crate::control`]) and the live status page (`GET /`, reading
//! `GET /breakers` and `GET /status`, see [`crate::status`]), on loopback by default.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
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

/// Whether `ip` is a loopback address: `127.0.0.0/8`, `::1`, or an IPv4-mapped loopback
/// (`::ffff:127.0.0.1`), which [`IpAddr::is_loopback`] alone calls non-loopback.
///
/// ```
/// use agent_system::exporter::is_loopback;
/// assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
/// assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
/// ```
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The JSON `/health` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Breakers open, half-open or forced open; a keyed family's key as `family[key]` (at most
    /// [`OPEN_KEYS_SHOWN`] per family).
    pub open_breakers: Vec<String>,
    /// Keys of keyed families open beyond those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub open_keys_not_listed: usize,
    /// On a cluster node: the nodes seen before whose session is down.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes_down: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The most open keys of one keyed family that `/health` and `GET /breakers` list.
pub const OPEN_KEYS_SHOWN: usize = 20;

/// [`health`], plus the open keys of the keyed families (asked of their actors; a family that
/// does not answer is listed as `family[?]`).
pub async fn health_with_families(
    breakers: &[BreakerHandle],
    families: &[ractor_resilience::breaker::KeyedBreakerHandle],
) -> Health {
    let mut h = health(breakers);
    for family in families {
        match family.not_closed(OPEN_KEYS_SHOWN).await {
            Ok(listing) => {
                let open = |s: BreakerState| {
                    matches!(
                        s,
                        BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
                    )
                };
                for k in listing.keys.iter().filter(|k| open(k.state)) {
                    h.open_breakers
                        .push(format!("{}[{}]", family.name(), k.key));
                }
                if open(listing.overflow) {
                    h.open_breakers.push(format!("{}[overflow]", family.name()));
                }
                h.open_keys_not_listed += listing.more;
            }
            Err(_) => h.open_breakers.push(format!("{}[?]", family.name())),
        }
    }
    if !h.open_breakers.is_empty() || h.open_keys_not_listed > 0 {
        h.status = "degraded";
    }
    h
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
        open_keys_not_listed: 0,
        nodes_down: Vec::new(),
    }
}

#[derive(Clone)]
struct Served {
    metrics: Arc<Renderer>,
    control: crate::control::Control,
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
        // What agents counted in place is handed to the recorder first (it is otherwise up to
        // a second behind): the page is never staler than the scrape.
        let text = match tokio::task::spawn_blocking(move || {
            ractor_resilience::metrics::publish();
            handle.render()
        })
        .await
        {
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
    let families: Vec<_> = s.control.breakers.families().into_values().collect();
    #[allow(unused_mut)]
    let mut h = health_with_families(&s.control.breakers(), &families).await;
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &s.control.cluster {
        cluster_health(&mut h, &cluster.node);
    }
    let code = if h.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(h))
}

/// A cluster node's `/health` also lists the nodes whose session is down, and its open node
/// breakers (`node:NAME`) and replica breakers (`AGENT@NODE`); any of them makes it degraded.
#[cfg(feature = "cluster")]
pub fn cluster_health(h: &mut Health, node: &ractor_resilience::cluster::ClusterNode) {
    let open = |s: BreakerState| {
        matches!(
            s,
            BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
        )
    };
    for n in node.nodes() {
        if !n.connected {
            h.nodes_down.push(n.name.clone());
        }
        if open(n.breaker) {
            h.open_breakers.push(format!("node:{}", n.name));
        }
    }
    for replica in node.replica_breakers() {
        if open(replica.state()) {
            h.open_breakers.push(replica.name().to_owned());
        }
    }
    if !h.open_breakers.is_empty() || !h.nodes_down.is_empty() {
        h.status = "degraded";
    }
}

/// `GET /`: the status page. Its Content-Security-Policy lets it load nothing from anywhere
/// and talk only to this server, so a page that works here works offline.
async fn status_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
            ),
        ],
        crate::status::PAGE,
    )
}

async fn status_json(State(s): State<Served>) -> impl IntoResponse {
    let body = match &s.control.status {
        Some(source) => source.to_json(),
        None => crate::status::without_run(),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body))
}

async fn breakers_page(State(s): State<Served>) -> impl IntoResponse {
    crate::control::list(&s.control).await
}

async fn breaker_action(
    State(s): State<Served>,
    Path((name, action)): Path<(String, String)>,
    axum::Extension(peer): axum::Extension<crate::control::Peer>,
) -> impl IntoResponse {
    crate::control::act(&s.control.breakers(), &name, &action, peer).await
}

#[cfg(feature = "cluster")]
async fn cluster_nodes_page(State(s): State<Served>) -> impl IntoResponse {
    crate::control::cluster_nodes(&s.control)
}

#[cfg(feature = "cluster")]
async fn cluster_breaker_action(
    State(s): State<Served>,
    Path((name, action)): Path<(String, String)>,
    axum::Extension(peer): axum::Extension<crate::control::Peer>,
) -> impl IntoResponse {
    crate::control::act_cluster(&s.control, &name, &action, peer).await
}

async fn reload_page(
    State(s): State<Served>,
    axum::Extension(peer): axum::Extension<crate::control::Peer>,
) -> impl IntoResponse {
    crate::control::reload(&s.control, peer).await
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

/// Bounds on the exporter's HTTP server, so that idle or half-open connections cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a connection may take to send a request's headers, counted from when it
    /// opens (or, kept alive, from the end of its previous response); past it the connection
    /// is closed. Idle connections are closed after this long too.
    pub header_read_timeout: Duration,
    /// Connections held open at once. At the limit, a new connection replaces the oldest one
    /// with no request in progress (open for at least 250 ms, or the header-read timeout if
    /// shorter); if there is none, it waits in the listen backlog until one ends (a scrape
    /// waits, it is not refused).
    pub max_connections: usize,
}

impl ServerLimits {
    /// Default [`header_read_timeout`](Self::header_read_timeout): 5 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default [`max_connections`](Self::max_connections): 1,024, above the 1,000 concurrent
    /// scrapes the exporter is tested to serve at once.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// [`serve_with`] the default [`ServerLimits`].
///
/// # Errors
/// A non-loopback address without `allow_non_loopback`, a failed bind, or no thread.
pub async fn serve(
    addr: SocketAddr,
    allow_non_loopback: bool,
    metrics: PrometheusHandle,
    control: impl Into<crate::control::Control>,
) -> Result<SocketAddr, ExporterError> {
    serve_with(
        addr,
        allow_non_loopback,
        metrics,
        control,
        ServerLimits::default(),
    )
    .await
}

/// Binds `addr` and serves `/metrics` and `/health` on a thread of their own (with its own
/// single-threaded runtime), until the runtime that called this shuts down; also runs the
/// recorder's upkeep every 5 s. Returns the bound address (useful with port 0). At most
/// `limits.max_connections` connections are served at once, and each must send its request
/// headers within `limits.header_read_timeout`.
///
/// The exporter does not share the agents' runtime: a flood of scrapes competes with them for
/// the CPU as one more thread under the OS scheduler, instead of queueing ahead of every hop of
/// every task on the runtime's workers.
///
/// # Errors
/// A non-loopback address without `allow_non_loopback`, a failed bind, or no thread.
pub async fn serve_with(
    addr: SocketAddr,
    allow_non_loopback: bool,
    metrics: PrometheusHandle,
    control: impl Into<crate::control::Control>,
    limits: ServerLimits,
) -> Result<SocketAddr, ExporterError> {
    if !allow_non_loopback && !is_loopback(addr.ip()) {
        return Err(ExporterError::NotLoopback(addr));
    }
    let bind_error = |source| ExporterError::Bind { addr, source };
    let listener = bind(addr).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let listener = listener.into_std().map_err(bind_error)?;
    let app = Router::new()
        .route("/", get(status_page))
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_page))
        .route("/health", get(health_page))
        .route("/breakers", get(breakers_page))
        .route("/breakers/{name}/{action}", post(breaker_action))
        .route("/reload", post(reload_page));
    #[cfg(feature = "cluster")]
    let app = app
        .route(
            "/cluster/breakers/{name}/{action}",
            post(cluster_breaker_action),
        )
        .route("/cluster/nodes", get(cluster_nodes_page));
    let app = app.with_state(Served {
        metrics: Arc::new(Renderer {
            handle: metrics.clone(),
            latest: tokio::sync::Mutex::new(None),
        }),
        control: control.into(),
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
                    () = accept_loop(listener, app, limits) => {}
                    _ = caller_gone => {}
                }
            });
        })
        .map_err(ExporterError::Thread)?;
    Ok(bound)
}

/// Connections the kernel completes and queues for the server while it is at
/// [`ServerLimits::max_connections`] (capped by the system's `somaxconn`): a burst of scrapes
/// beyond the limit waits there instead of having its connection attempts dropped.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections and serves each as HTTP/1 with the header-read timeout, holding at
/// most `limits.max_connections` open. At the limit, a new connection takes the place of the
/// oldest one that has no request in progress and has been open for at least
/// [`EVICT_AFTER`] (or the header-read timeout, if shorter): idle and half-sent connections
/// cannot keep a scrape out. If every connection is busy (or younger), new ones wait in the
/// listen backlog until one ends. Never returns.
async fn accept_loop(listener: TcpListener, app: Router, limits: ServerLimits) {
    let max = limits.max_connections.max(1);
    let evict_after = EVICT_AFTER.min(limits.header_read_timeout);
    let open: Arc<std::sync::Mutex<Vec<Slot>>> = Arc::default();
    let freed = Arc::new(tokio::sync::Notify::new());
    let mut next_id = 0u64;
    loop {
        // Make room before accepting.
        loop {
            let notified = freed.notified();
            {
                let mut slots = open.lock().unwrap_or_else(|e| e.into_inner());
                if slots.len() < max {
                    break;
                }
                let oldest_idle = slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.busy.load(Ordering::Relaxed) == 0 && s.opened.elapsed() >= evict_after
                    })
                    .min_by_key(|(_, s)| s.opened)
                    .map(|(i, _)| i);
                if let Some(i) = oldest_idle {
                    // Dropping its sender closes the connection.
                    slots.swap_remove(i);
                    break;
                }
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: not
                // the server's end. Pause so that a persistent error does not spin.
                tracing::debug!(error = %e, "metrics server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let (evict, evicted) = tokio::sync::oneshot::channel::<()>();
        open.lock().unwrap_or_else(|e| e.into_inner()).push(Slot {
            id,
            opened: std::time::Instant::now(),
            busy: busy.clone(),
            _evict: evict,
        });
        let tower = hyper_util::service::TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            let busy = busy.clone();
            // Who asked, for the control endpoints' log lines.
            request.extensions_mut().insert(crate::control::Peer(peer));
            let response = hyper::service::Service::call(&tower, request);
            async move {
                busy.fetch_add(1, Ordering::Relaxed);
                let response = response.await;
                busy.fetch_sub(1, Ordering::Relaxed);
                response
            }
        });
        let (open, freed) = (open.clone(), freed.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                served = connection => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "metrics server: connection ended");
                    }
                }
                // Evicted (its slot, and so the sender, is already gone).
                _ = evicted => {}
            }
            open.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|s| s.id != id);
            freed.notify_one();
        });
    }
}

/// How long a connection with no request in progress is safe from eviction when the server is
/// at its connection limit.
/// (A client sends its request as soon as it has connected: this only has to cover a round
/// trip.)
const EVICT_AFTER: Duration = Duration::from_millis(250);

/// An open connection, as the accept loop tracks it.
struct Slot {
    id: u64,
    opened: std::time::Instant,
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Dropped to close it.
    _evict: tokio::sync::oneshot::Sender<()>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor_resilience::agent::{Agent, AgentBuilder};
    use ractor_resilience::task::TaskContext;

    struct Echo;
    impl Agent for Echo {
        type Task = ();
        type Output = ();
        type Error = std::io::Error;
        async fn handle(&mut self, _task: (), _ctx: TaskContext) -> Result<(), std::io::Error> {
            Ok(())
        }
    }

    /// The sum of every series whose line starts with `prefix`.
    fn family_total(page: &str, prefix: &str) -> f64 {
        page.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    /// A scrape publishes what workers counted in place before it renders: the page shows
    /// every attempt made before it, not what the once-a-second publication last saw.
    #[tokio::test]
    async fn a_scrape_shows_every_attempt_made_before_it() {
        let recorder = ractor_resilience::metrics::prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let agent = AgentBuilder::new("scraped", || Echo).spawn().await.unwrap();
        let renderer = Renderer {
            handle,
            latest: tokio::sync::Mutex::new(None),
        };
        for n in 1..=3 {
            agent.call(()).await.unwrap();
            let page = renderer.render().await;
            let page = std::str::from_utf8(&page).unwrap();
            assert_eq!(
                family_total(page, "resilience_retry_attempts_total{"),
                f64::from(n),
                "{page}"
            );
            assert_eq!(
                family_total(page, "resilience_agent_queue_wait_seconds_count{"),
                f64::from(n),
                "{page}"
            );
        }
        agent.stop();
    }
}
