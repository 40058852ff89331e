//! `remote_call_p50_ratio` (feature `cluster`): a call through the stack to an agent on another
//! node, against a bare ractor_cluster remote call in the same run.
//!
//! ```text
//!  this process: ClusterNode "bench-caller"              child process (this binary,
//!                                                         --remote-serve): ClusterNode "bench-serve"
//!  bare:  call!(remote ActorRef<EchoMsg>, Echo(64 B)) ──▶ EchoActor (pg scope bench.bare)
//!  stack: AgentHandle<Remote<Echo>>::call(64 B)        ──▶ Ingress ─▶ AgentHandle<Echo> (1 worker)
//!         admission, agent breaker, attempt timeout,        one attempt, its own breaker and
//!         retry supervisor, node + replica breakers         timeout
//! ```
//!
//! The other node is a child process, not a second `NodeServer` in this one: ractor's pid and
//! process-group registries are process-global, so two servers in one process share (and
//! confuse) actor identities (SCALE-OUT.md §2.3). Both subjects go over the same session (one
//! TCP connection) to the same process, carry the same 64-byte payload and get it back; every
//! reply is checked. The repetitions of the two are interleaved (the order alternates) and the
//! ratio is taken per repetition, as for every other figure.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle};
use ractor_resilience::cluster::{self, ClusterNode, NodeOptions, Remote, RemoteOptions};
use ractor_resilience::task::TaskContext;
use serde::{Deserialize, Serialize};

use crate::calls::{Caller, MAX_PENDING};

/// The cluster's name (process-group scope of the agent's ingress).
const CLUSTER: &str = "bench";
/// The scope of the bare echo actor: not the cluster's, whose members the membership probes
/// as ingress actors.
const BARE_SCOPE: &str = "bench.bare";
const BARE_GROUP: &str = "echo";
/// The agent's name (its ingress group is `agent.echo`).
const AGENT: &str = "echo";
/// The payload of every call, both ways.
pub(crate) const PAYLOAD: usize = 64;
/// The child's cookie travels in the environment, never on the command line.
const COOKIE_ENV: &str = "RESILIENCE_BENCH_COOKIE";

// ===== the bare baseline: a ractor_cluster echo actor =====

/// The bare echo actor's message: a remote-callable `call!` with a byte payload.
#[derive(RactorClusterMessage)]
pub(crate) enum EchoMsg {
    /// Answer the payload.
    #[rpc]
    Echo(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

struct EchoActor;

impl Actor for EchoActor {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<EchoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        ractor::pg::join_scoped(
            BARE_SCOPE.to_owned(),
            BARE_GROUP.to_owned(),
            vec![myself.get_cell()],
        );
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<EchoMsg>,
        msg: EchoMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let EchoMsg::Echo(payload, port) = msg;
        let _ = port.send(payload);
        Ok(())
    }
}

// ===== the subject: the same echo as an agent =====

/// The echo agent's error (it has none; the type is the wire contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EchoError;

impl std::fmt::Display for EchoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("echo failed")
    }
}

impl std::error::Error for EchoError {}

/// Answers its payload.
pub(crate) struct Echo;

impl Agent for Echo {
    type Task = Vec<u8>;
    type Output = Vec<u8>;
    type Error = EchoError;

    async fn handle(&mut self, payload: Vec<u8>, _ctx: TaskContext) -> Result<Vec<u8>, EchoError> {
        Ok(payload)
    }
}

// ===== the serving child =====

/// The child's side (`--remote-serve`): a node serving the echo agent and the bare echo actor;
/// prints `SERVING addr=IP:PORT`, then runs until its stdin closes (the parent exited or
/// dropped it).
pub(crate) fn serve_child() {
    let cookie = std::env::var(COOKIE_ENV).expect("the cookie in the environment");
    let rt = crate::runtime();
    rt.block_on(async move {
        let node =
            ClusterNode::start(NodeOptions::new("bench-serve", cookie).with_cluster(CLUSTER))
                .await
                .expect("the serving node starts");
        let agent = AgentBuilder::new(AGENT, || Echo)
            .workers(1)
            .max_pending(MAX_PENDING)
            .spawn()
            .await
            .expect("spawn the echo agent");
        let ingress = cluster::serve(agent.clone(), CLUSTER, node.name())
            .await
            .expect("serve the echo agent");
        let (bare, _) = Actor::spawn(None, EchoActor, ())
            .await
            .expect("spawn the bare echo actor");
        println!("SERVING addr={}", node.local_addr());
        let _ = std::io::stdout().flush();
        // Until the parent goes away.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        })
        .await
        .expect("the stdin watcher");
        ingress.stop(None);
        bare.stop(None);
        agent.stop();
        node.stop();
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The serving child, killed when dropped.
pub(crate) struct ServingChild(Child);

impl Drop for ServingChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary as the serving node and reads its address (at most 20 s).
fn start_child(cookie: &str) -> Result<(ServingChild, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let mut child = Command::new(exe)
        .arg("--remote-serve")
        .env(COOKIE_ENV, cookie)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start the serving node: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let child = ServingChild(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the serving node printed no address within 20 s".to_owned())?;
    let addr = line
        .strip_prefix("SERVING addr=")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected line from the serving node: {line:?}"))?;
    Ok((child, addr))
}

// ===== the calling side =====

/// `call!` to the bare echo actor on the other node: must answer the payload.
#[derive(Clone)]
pub(crate) struct BareRemoteCaller {
    actor: ActorRef<EchoMsg>,
    payload: Vec<u8>,
}

impl Caller for BareRemoteCaller {
    async fn call(&mut self) {
        match ractor::call!(self.actor, EchoMsg::Echo, self.payload.clone()) {
            Ok(answer) if answer == self.payload => {}
            Ok(answer) => panic!("bare remote call answered {} wrong bytes", answer.len()),
            Err(e) => panic!("bare remote call failed: {e}"),
        }
    }
}

/// `AgentHandle::call` through the stack to the echo agent on the other node: must answer the
/// payload.
#[derive(Clone)]
pub(crate) struct StackRemoteCaller {
    agent: AgentHandle<Remote<Echo>>,
    payload: Vec<u8>,
}

impl Caller for StackRemoteCaller {
    async fn call(&mut self) {
        match self.agent.call(self.payload.clone().into()).await {
            Ok(answer) if answer == self.payload => {}
            Ok(answer) => panic!("remote stack call answered {} wrong bytes", answer.len()),
            Err(e) => panic!("remote stack call failed: {e}"),
        }
    }
}

/// `IngressMsg::Call` straight to the other node's ingress (a call frame in, an answer frame
/// out), without the calling stack: what the serving side and the frames cost alone
/// (`--profile-remote ingress`; not a figure).
#[derive(Clone)]
pub(crate) struct IngressCaller {
    ingress: ActorRef<cluster::IngressMsg>,
    payload: Vec<u8>,
}

impl Caller for IngressCaller {
    async fn call(&mut self) {
        let call = cluster::RemoteCall::new(
            ractor_resilience::task::TaskEnvelope::new(self.payload.clone())
                .with_deadline(Duration::from_secs(30)),
        );
        let frame = cluster::Frame::encode(cluster::FrameKind::Call, &call).expect("encode");
        let reply = ractor::call!(self.ingress, cluster::IngressMsg::Call, frame)
            .expect("the ingress answers");
        match reply.decode::<cluster::Answer<Vec<u8>, EchoError>>(cluster::FrameKind::Answer) {
            Ok(cluster::Answer::Ok(answer)) if answer == self.payload => {}
            other => panic!("ingress call answered {other:?}"),
        }
    }
}

/// The two subjects, the calling node, and the child serving them.
pub(crate) struct RemoteSubjects {
    pub(crate) bare: BareRemoteCaller,
    pub(crate) ingress: IngressCaller,
    pub(crate) stack: StackRemoteCaller,
    node: ClusterNode,
    _child: ServingChild,
}

impl RemoteSubjects {
    /// Starts the serving child, joins it, and waits (at most 10 s) until both of its actors
    /// are visible here over a ready session.
    pub(crate) async fn start() -> Result<RemoteSubjects, String> {
        let cookie = format!(
            "bench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let (child, addr) = start_child(&cookie)?;
        let node =
            ClusterNode::start(NodeOptions::new("bench-caller", cookie).with_cluster(CLUSTER))
                .await
                .map_err(|e| format!("the calling node: {e}"))?;
        node.connect(addr)
            .await
            .map_err(|e| format!("join the serving node: {e}"))?;
        let group = cluster::group_name(AGENT);
        let until = Instant::now() + Duration::from_secs(10);
        let (bare, ingress) = loop {
            let remote = |scope: &str, group: &str| {
                ractor::pg::get_scoped_members(&scope.to_owned(), &group.to_owned())
                    .into_iter()
                    .find(|cell| !cell.get_id().is_local())
            };
            let ready = node.nodes().iter().any(|n| n.connected);
            if let (true, Some(bare), Some(ingress)) = (
                ready,
                remote(BARE_SCOPE, BARE_GROUP),
                remote(CLUSTER, &group),
            ) {
                break (ActorRef::<EchoMsg>::from(bare), ActorRef::from(ingress));
            }
            if Instant::now() > until {
                return Err("the serving node's actors were not visible within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let agent = Remote::<Echo>::builder(&node, AGENT, RemoteOptions::default())
            .workers(1)
            .max_pending(MAX_PENDING)
            .spawn()
            .await
            .map_err(|e| format!("spawn the remote agent: {e}"))?;
        let payload: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
        Ok(RemoteSubjects {
            bare: BareRemoteCaller {
                actor: bare,
                payload: payload.clone(),
            },
            ingress: IngressCaller {
                ingress,
                payload: payload.clone(),
            },
            stack: StackRemoteCaller { agent, payload },
            node,
            _child: child,
        })
    }

    pub(crate) fn stop(self) {
        self.stack.agent.stop();
        self.node.stop();
    }

    /// Stops, letting the serving child exit on its own (its stdin closed) within `bound`
    /// before it is killed: a child run under a profiler writes its profile as it exits.
    pub(crate) fn stop_gracefully(self, bound: Duration) {
        let RemoteSubjects {
            stack,
            node,
            _child: mut child,
            ..
        } = self;
        stack.agent.stop();
        node.stop();
        drop(child.0.stdin.take());
        let until = Instant::now() + bound;
        while Instant::now() < until {
            if !matches!(child.0.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Killed on drop if still running.
    }
}
