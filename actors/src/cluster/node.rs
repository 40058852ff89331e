//! [`ClusterNode`]: this process's node — a `NodeServer` fed by a listener of its own, and the
//! membership that turns session events and process-group leaves into node breakers.
//!
//! ```text
//!  own TcpListener (port 0 allowed) ── accepted streams ──▶ NodeServer (external transport)
//!  connect(addr) ── dialled stream ─────────────────────▶ NodeServer
//!  NodeServer events ── ready ────────▶ MembershipActor: session table, node breaker by name
//!                   └─ disconnected ─▶ node lost at once (no actor hop): in-flight calls to
//!  pg scope monitor ── last member of a node left ─▶ it fail, its node breaker opens
//! ```
//!
//! ractor_cluster's own listener cannot report the port it bound when asked for port 0, so it
//! is bound to an unused loopback port and the node accepts its own connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::pg::GroupChangeMessage;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServer, NodeServerMessage, RactorMessage};
use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CallOutcome};

use crate::breaker::{BreakerActor, BreakerHandle, BreakerOptions};
use crate::reply::ReplyTo;
use crate::task::CancellationToken;

/// A ractor_cluster session's node id (a per-process counter: a restarted peer gets a new one).
pub(crate) type NodeId = u64;

/// How a [`ClusterNode`] starts.
///
/// # Default
/// Cluster `resilience`, node name `node`, listening on `127.0.0.1:0`, node breakers that open
/// on one node loss for 2 s, dial timeout 2 s, probes every 200 ms with a 300 ms timeout, two
/// misses open the node breaker, lost seeds re-dialled after 100 ms doubling up to 2 s.
///
/// ```
/// use ractor_resilience::cluster::NodeOptions;
///
/// let opts = NodeOptions::new("node-a", "secret cookie").with_cluster("prod");
/// assert_eq!(opts.cluster, "prod");
/// assert_eq!(opts.listen.port(), 0);
/// ```
#[derive(Clone)]
pub struct NodeOptions {
    /// The cluster's name: the process-group scope every agent group lives in.
    pub cluster: String,
    /// This node's name (unique in the cluster; node breakers are kept by name).
    pub node_name: String,
    /// The cookie every node of the cluster shares (authenticates the handshake).
    pub cookie: String,
    /// Where to listen (port 0: any free port; see [`ClusterNode::local_addr`]).
    pub listen: SocketAddr,
    /// The node breakers' policy. Only node loss is counted by them, so the default opens on
    /// the first one.
    pub node_breaker: BreakerSettings,
    /// Bound on dialling a peer.
    pub dial_timeout: Duration,
    /// How often every connected node is probed (a `Ping` to one of its ingress actors);
    /// `None`: no probes. Probes catch frozen or partitioned nodes whose TCP connection stays
    /// up, which no session event reports.
    pub probe_interval: Option<Duration>,
    /// How long a probe may take before it counts as missed.
    pub probe_timeout: Duration,
    /// Consecutive missed probes that open a node's breaker (and every further miss counts one
    /// more failure, so a half-open breaker re-opens while the node stays silent).
    pub probe_misses: u32,
    /// The longest wait between two dials of a lost seed (an address given to
    /// [`ClusterNode::connect`]); the first comes after 100 ms, then the wait doubles.
    pub redial_max_delay: Duration,
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cookie.
        f.debug_struct("NodeOptions")
            .field("cluster", &self.cluster)
            .field("node_name", &self.node_name)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl NodeOptions {
    /// Defaults for node `node_name` with `cookie`.
    pub fn new(node_name: impl Into<String>, cookie: impl Into<String>) -> Self {
        NodeOptions {
            cluster: "resilience".into(),
            node_name: node_name.into(),
            cookie: cookie.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            node_breaker: BreakerSettings::builder()
                .with_max_failures(1)
                .with_open_duration(Duration::from_secs(2))
                .build()
                .expect("node breaker defaults are valid"),
            dial_timeout: Duration::from_secs(2),
            probe_interval: Some(Duration::from_millis(200)),
            probe_timeout: Duration::from_millis(300),
            probe_misses: 2,
            redial_max_delay: Duration::from_secs(2),
        }
    }

    /// Sets the cluster's name.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

/// Why a node could not start or dial.
#[derive(Debug, thiserror::Error)]
pub enum ClusterNodeError {
    /// Binding or dialling failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Dialling took longer than the dial timeout.
    #[error("dialling {0} timed out")]
    DialTimeout(SocketAddr),
    /// ractor refused to spawn an actor.
    #[error("cannot spawn {what}: {source}")]
    Spawn {
        /// Which actor.
        what: &'static str,
        /// ractor's reason.
        #[source]
        source: ractor::SpawnErr,
    },
    /// The node server is gone.
    #[error("node server unavailable")]
    Unavailable,
}

/// One live session with a peer node.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) name: Arc<str>,
    /// Fired when the session is lost: calls in flight to it fail at once.
    pub(crate) lost: CancellationToken,
    pub(crate) breaker: BreakerHandle,
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) sessions: HashMap<NodeId, Session>,
    /// Node breakers by node name (kept across a node's restarts).
    breakers: HashMap<Arc<str>, BreakerHandle>,
    /// Replica breakers by (agent, node name), made by the first attempt that needs one.
    replicas: HashMap<(Arc<str>, Arc<str>), BreakerHandle>,
    /// Addresses this node dialled, with the name of the node found there (once ready): a
    /// session to one of them that is lost is dialled again.
    seeds: HashMap<SocketAddr, Option<Arc<str>>>,
}

/// What the membership shares with callers (read-mostly; written by the membership actor and
/// by the session-event callback).
pub(crate) struct Membership {
    pub(crate) scope: String,
    pub(crate) table: RwLock<Table>,
    /// Seeds whose session was lost, for the re-dial task.
    redial: tokio::sync::mpsc::UnboundedSender<SocketAddr>,
}

impl Membership {
    pub(crate) fn session(&self, node: NodeId) -> Option<Session> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .get(&node)
            .cloned()
    }

    pub(crate) fn replica_breaker(&self, agent: &str, node: &str) -> Option<BreakerHandle> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table
            .replicas
            .iter()
            .find(|((a, n), _)| &**a == agent && &**n == node)
            .map(|(_, b)| b.clone())
    }

    /// Keeps `breaker` as the replica breaker of (`agent`, `node`) unless one is kept already;
    /// returns the one kept.
    pub(crate) fn keep_replica_breaker(
        &self,
        agent: &Arc<str>,
        node: &Arc<str>,
        breaker: BreakerHandle,
    ) -> BreakerHandle {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        table
            .replicas
            .entry((agent.clone(), node.clone()))
            .or_insert(breaker)
            .clone()
    }

    /// The names of the nodes with a live session, and of those seen before whose session is
    /// gone (sorted, no duplicates).
    pub(crate) fn node_names(&self) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let mut live: Vec<Arc<str>> = table.sessions.values().map(|s| s.name.clone()).collect();
        live.sort();
        live.dedup();
        let mut down: Vec<Arc<str>> = table
            .breakers
            .keys()
            .filter(|name| live.binary_search(name).is_err())
            .cloned()
            .collect();
        down.sort();
        (live, down)
    }

    /// Whether a session with the node found at seed `addr` is up.
    fn seed_connected(&self, addr: SocketAddr) -> bool {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        match table.seeds.get(&addr) {
            Some(Some(name)) => table.sessions.values().any(|s| s.name == *name),
            _ => false,
        }
    }

    /// The session is gone: fail its calls in flight and open its node breaker, now.
    fn node_lost(&self, node: NodeId, cause: &'static str) {
        let session = self
            .table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .remove(&node);
        let Some(session) = session else { return };
        session.lost.cancel();
        tracing::warn!(node = %session.name, cause, "node lost");
        trip(&session.breaker);
    }
}

/// Counts one failure on a node breaker (which opens on the first, by default) without
/// awaiting: from the session-event callback, inside the node server.
fn trip(breaker: &BreakerHandle) {
    let b = breaker.clone();
    breaker.acquire_with(ReplyTo::callback(move |decision| {
        if let Some(Ok(permit)) = decision {
            b.record(permit, CallOutcome::Failure, Duration::ZERO);
        }
    }));
}

/// A node's state as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// Whether a session with it is up.
    pub connected: bool,
    /// Its node breaker's state.
    pub breaker: BreakerState,
}

/// This process's cluster node (see the [module docs](crate::cluster)). Stops its actors and listener
/// when [`stop`](Self::stop)ped or dropped.
pub struct ClusterNode {
    node_server: ActorRef<NodeServerMessage>,
    membership_actor: ActorRef<MembershipMsg>,
    pub(crate) membership: Arc<Membership>,
    local_addr: SocketAddr,
    name: String,
    dial_timeout: Duration,
    accept: tokio::task::JoinHandle<()>,
    probes: Option<tokio::task::JoinHandle<()>>,
    redial: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    /// Starts the node: binds `opts.listen`, starts the node server and the membership.
    ///
    /// ```
    /// use ractor_resilience::cluster::{ClusterNode, NodeOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let node = ClusterNode::start(NodeOptions::new("doc-node", "cookie")).await.unwrap();
    /// assert_ne!(node.local_addr().port(), 0, "the real port, not 0");
    /// assert!(node.nodes().is_empty());
    /// node.stop();
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`ClusterNodeError`] if the address cannot be bound or an actor cannot be spawned.
    pub async fn start(opts: NodeOptions) -> Result<ClusterNode, ClusterNodeError> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| ClusterNodeError::Io {
                what: format!("bind {}", opts.listen),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ClusterNodeError::Io {
                what: "local address".into(),
                source,
            })?;
        // ractor_cluster always starts a listener of its own: an unused loopback port.
        let server = NodeServer::new(
            0,
            opts.cookie.clone(),
            opts.node_name.clone(),
            local_addr.ip().to_string(),
            None,
            None,
        )
        .with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let (node_server, _) =
            Actor::spawn(None, server, ())
                .await
                .map_err(|source| ClusterNodeError::Spawn {
                    what: "node server",
                    source,
                })?;
        let (redial_tx, redial_rx) = tokio::sync::mpsc::unbounded_channel();
        let membership = Arc::new(Membership {
            scope: opts.cluster.clone(),
            table: RwLock::new(Table::default()),
            redial: redial_tx,
        });
        let (membership_actor, _) = Actor::spawn(
            None,
            MembershipActor,
            (membership.clone(), opts.node_breaker.clone()),
        )
        .await
        .map_err(|source| ClusterNodeError::Spawn {
            what: "membership",
            source,
        })?;
        node_server
            .cast(NodeServerMessage::SubscribeToEvents {
                id: "ractor-resilience-membership".into(),
                subscription: Box::new(Events {
                    membership: membership.clone(),
                    actor: membership_actor.clone(),
                }),
            })
            .map_err(|_| ClusterNodeError::Unavailable)?;
        let accept = tokio::spawn(accept_loop(listener, node_server.clone()));
        let probes = opts.probe_interval.map(|every| {
            tokio::spawn(probe_loop(
                membership.clone(),
                every,
                opts.probe_timeout,
                opts.probe_misses.max(1),
            ))
        });
        let redial = tokio::spawn(redial_loop(
            redial_rx,
            membership.clone(),
            node_server.clone(),
            opts.dial_timeout,
            opts.redial_max_delay,
        ));
        Ok(ClusterNode {
            node_server,
            membership_actor,
            membership,
            local_addr,
            name: opts.node_name,
            dial_timeout: opts.dial_timeout,
            accept,
            probes,
            redial,
        })
    }

    /// The address this node listens on (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster's name (the process-group scope).
    pub fn cluster(&self) -> &str {
        &self.membership.scope
    }

    /// The node server, e.g. to subscribe to its events.
    pub fn node_server(&self) -> &ActorRef<NodeServerMessage> {
        &self.node_server
    }

    /// Dials a peer (bounded by the dial timeout) and hands the connection to the node server;
    /// the session becomes ready (or fails authentication) asynchronously.
    ///
    /// # Errors
    /// [`ClusterNodeError`] if the peer cannot be reached in time.
    pub async fn connect(&self, addr: SocketAddr) -> Result<(), ClusterNodeError> {
        self.membership
            .table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .seeds
            .entry(addr)
            .or_insert(None);
        dial(&self.node_server, addr, self.dial_timeout).await
    }

    /// The node breaker of the node named `name`, once a session with it has been ready.
    pub fn node_breaker(&self, name: &str) -> Option<BreakerHandle> {
        self.membership
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .breakers
            .get(name)
            .cloned()
    }

    /// The replica breaker of agent `agent` on node `node`, once an attempt has used it.
    pub fn replica_breaker(&self, agent: &str, node: &str) -> Option<BreakerHandle> {
        self.membership.replica_breaker(agent, node)
    }

    /// Every replica breaker made so far (named `agent@node`), sorted by name.
    pub fn replica_breakers(&self) -> Vec<BreakerHandle> {
        let table = self
            .membership
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<BreakerHandle> = table.replicas.values().cloned().collect();
        drop(table);
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Every node seen so far, by name, with its session and breaker state.
    pub fn nodes(&self) -> Vec<NodeView> {
        let table = self
            .membership
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut nodes: Vec<NodeView> = table
            .breakers
            .iter()
            .map(|(name, breaker)| NodeView {
                name: name.to_string(),
                connected: table.sessions.values().any(|s| s.name == *name),
                breaker: breaker.state(),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// Stops the listener, the membership (with the node and replica breakers) and the node
    /// server.
    pub fn stop(&self) {
        self.accept.abort();
        self.redial.abort();
        if let Some(probes) = &self.probes {
            probes.abort();
        }
        self.membership_actor.stop(None);
        self.node_server.stop(None);
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.accept.abort();
        self.redial.abort();
        if let Some(probes) = &self.probes {
            probes.abort();
        }
    }
}

/// Probes every connected node each `every` (one `Ping` to one of its ingress actors in the
/// cluster's scope, bounded by `timeout`); from `misses` consecutive misses on, each miss counts
/// a failure on the node's breaker. A node with no ingress is not probed (nothing to call).
async fn probe_loop(membership: Arc<Membership>, every: Duration, timeout: Duration, misses: u32) {
    let mut missed: HashMap<NodeId, u32> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sessions: HashMap<NodeId, Session> = membership
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .clone();
        missed.retain(|node, _| sessions.contains_key(node));
        // One ingress actor per node.
        let mut targets: HashMap<NodeId, ractor::ActorCell> = HashMap::new();
        for group in ractor::pg::which_scoped_groups(&membership.scope) {
            for cell in ractor::pg::get_scoped_members(&membership.scope, &group) {
                let id = cell.get_id();
                if !id.is_local() && sessions.contains_key(&id.node()) {
                    targets.entry(id.node()).or_insert(cell);
                }
            }
        }
        let mut probes = tokio::task::JoinSet::new();
        for (node, cell) in targets {
            let ingress: ActorRef<super::IngressMsg> = cell.into();
            probes.spawn(async move {
                let answer = ingress.call(super::IngressMsg::Ping, Some(timeout));
                let ok = matches!(
                    tokio::time::timeout(timeout, answer).await,
                    Ok(Ok(ractor::rpc::CallResult::Success(_)))
                );
                (node, ok)
            });
        }
        while let Some(joined) = probes.join_next().await {
            let Ok((node, ok)) = joined else { continue };
            if ok {
                missed.remove(&node);
                continue;
            }
            let n = missed.entry(node).or_default();
            *n += 1;
            if *n >= misses {
                if let Some(session) = sessions.get(&node) {
                    if *n == misses {
                        tracing::warn!(node = %session.name, missed = *n, "node not answering probes");
                    }
                    trip(&session.breaker);
                }
            }
        }
    }
}

/// Dials `addr` (bounded by `timeout`) and hands the stream to the node server.
async fn dial(
    node_server: &ActorRef<NodeServerMessage>,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), ClusterNodeError> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| ClusterNodeError::DialTimeout(addr))?
        .map_err(|source| ClusterNodeError::Io {
            what: format!("connect {addr}"),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    ractor_cluster::client_connect_external(node_server, Box::new(Tcp(stream)))
        .await
        .map_err(|_| ClusterNodeError::Unavailable)
}

/// Dials lost seeds again, each until a session with its node is up again: after 100 ms, then
/// doubling up to `max_delay` (ractor_cluster does not reconnect by itself). A seed already
/// being re-dialled is not dialled twice.
async fn redial_loop(
    mut lost: tokio::sync::mpsc::UnboundedReceiver<SocketAddr>,
    membership: Arc<Membership>,
    node_server: ActorRef<NodeServerMessage>,
    timeout: Duration,
    max_delay: Duration,
) {
    let mut dialling = tokio::task::JoinSet::new();
    let mut busy: std::collections::HashSet<SocketAddr> = std::collections::HashSet::new();
    loop {
        tokio::select! {
            addr = lost.recv() => {
                let Some(addr) = addr else { return };
                if !busy.insert(addr) {
                    continue;
                }
                let (membership, node_server) = (membership.clone(), node_server.clone());
                dialling.spawn(async move {
                    let mut delay = Duration::from_millis(100);
                    loop {
                        tokio::time::sleep(delay).await;
                        if membership.seed_connected(addr) {
                            return addr;
                        }
                        match dial(&node_server, addr, timeout).await {
                            Ok(()) => {
                                // Give the handshake a moment before judging it.
                                tokio::time::sleep(timeout.min(Duration::from_millis(500))).await;
                                if membership.seed_connected(addr) {
                                    tracing::info!(%addr, "re-dialled a lost node");
                                    return addr;
                                }
                            }
                            Err(e) => tracing::debug!(%addr, error = %e, "re-dial failed"),
                        }
                        delay = (delay * 2).min(max_delay);
                    }
                });
            }
            Some(Ok(addr)) = dialling.join_next(), if !dialling.is_empty() => {
                busy.remove(&addr);
            }
        }
    }
}

/// Accepts connections and hands them to the node server, until aborted.
async fn accept_loop(listener: tokio::net::TcpListener, node_server: ActorRef<NodeServerMessage>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off a little, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let opened = NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(Tcp(stream)),
            is_server: true,
        };
        if node_server.cast(opened).is_err() {
            return;
        }
    }
}

/// A TCP stream as ractor_cluster's external transport.
struct Tcp(tokio::net::TcpStream);

impl ractor_cluster::ClusterBidiStream for Tcp {
    fn split(self: Box<Self>) -> (ractor_cluster::BoxRead, ractor_cluster::BoxWrite) {
        let (r, w) = self.0.into_split();
        (Box::new(r), Box::new(w))
    }

    fn peer_label(&self) -> Option<String> {
        self.0.peer_addr().ok().map(|a| a.to_string())
    }

    fn local_label(&self) -> Option<String> {
        self.0.local_addr().ok().map(|a| a.to_string())
    }
}

/// The node server's events: a disconnect is handled here at once (no actor hop), a ready
/// session goes to the membership actor (which may spawn a node breaker).
struct Events {
    membership: Arc<Membership>,
    actor: ActorRef<MembershipMsg>,
}

/// The peer's node name as it was configured: ractor_cluster announces `name@hostname`.
fn peer_name(ses: &NodeServerSessionInformation) -> Arc<str> {
    match &ses.peer_name {
        Some(n) => n
            .name
            .rsplit_once('@')
            .map_or(n.name.as_str(), |(name, _)| name)
            .into(),
        None => ses.peer_addr.as_str().into(),
    }
}

impl NodeEventSubscription for Events {
    fn node_session_opened(&self, _ses: NodeServerSessionInformation) {}

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.membership
            .node_lost(ses.node_id, "session_disconnected");
        if let Ok(addr) = ses.peer_addr.parse::<SocketAddr>() {
            let seed = self
                .membership
                .table
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .seeds
                .contains_key(&addr);
            if seed {
                let _ = self.membership.redial.send(addr);
            }
        }
    }

    fn node_session_authenticated(&self, _ses: NodeServerSessionInformation) {}

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self.actor.cast(MembershipMsg::Ready {
            node: ses.node_id,
            name: peer_name(&ses),
            addr: ses.peer_addr.parse().ok(),
        });
    }
}

/// The membership actor's messages (local only).
#[derive(RactorMessage)]
pub(crate) enum MembershipMsg {
    /// A session is ready: record it (and make its node's breaker if new).
    Ready {
        node: NodeId,
        name: Arc<str>,
        /// The peer's address, when it is one (a dialled seed's is).
        addr: Option<SocketAddr>,
    },
}

/// Owns the node breakers; records ready sessions; watches the cluster's process groups.
struct MembershipActor;

impl Actor for MembershipActor {
    type Msg = MembershipMsg;
    type State = (Arc<Membership>, BreakerSettings);
    type Arguments = (Arc<Membership>, BreakerSettings);

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::monitor_scope(args.0.scope.clone(), myself.get_cell());
        Ok(args)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<MembershipMsg>,
        (membership, _): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::demonitor_scope(membership.scope.clone(), myself.get_id());
        let table = membership.table.read().unwrap_or_else(|e| e.into_inner());
        let breakers: Vec<BreakerHandle> = table
            .breakers
            .values()
            .chain(table.replicas.values())
            .cloned()
            .collect();
        drop(table);
        for breaker in breakers {
            breaker.stop();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        (membership, settings): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let MembershipMsg::Ready { node, name, addr } = msg;
        let existing = membership
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .breakers
            .get(&name)
            .cloned();
        let breaker = match existing {
            // A node seen before (restarted, reconnected): its breaker keeps its state, and an
            // open one lets the node back through its half-open probes.
            Some(breaker) => breaker,
            None => {
                let options = BreakerOptions::default().with_seed(node);
                BreakerActor::spawn(format!("node:{name}"), settings.clone(), options).await?
            }
        };
        let mut table = membership.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(seed) = addr.and_then(|a| table.seeds.get_mut(&a)) {
            *seed = Some(name.clone());
        }
        table.breakers.insert(name.clone(), breaker.clone());
        table.sessions.insert(
            node,
            Session {
                name: name.clone(),
                lost: CancellationToken::new(),
                breaker,
            },
        );
        drop(table);
        tracing::info!(node = %name, id = node, "node session ready");
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<MembershipMsg>,
        event: SupervisionEvent,
        (membership, _): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ProcessGroupChanged(GroupChangeMessage::Leave(scope, _, cells)) =
            event
        {
            let mut nodes: Vec<NodeId> = cells
                .iter()
                .map(|c| c.get_id())
                .filter(|id| !id.is_local())
                .map(|id| id.node())
                .collect();
            nodes.dedup();
            for node in nodes {
                let left = ractor::pg::which_scoped_groups(&scope)
                    .iter()
                    .flat_map(|group| ractor::pg::get_scoped_members(&scope, group))
                    .any(|c| !c.get_id().is_local() && c.get_id().node() == node);
                if !left {
                    membership.node_lost(node, "process_group_leave");
                }
            }
        }
        Ok(())
    }
}
