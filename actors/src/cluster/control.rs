//! Cluster-wide breaker operations: one [`BreakerControl`] actor per node, in the process group
//! [`CONTROL_GROUP`] of its own scope ([`control_scope`]`(cluster)`).
//!
//! ```text
//!  operator ─▶ BreakerControl::command(breaker, op)   (on any node: the origin)
//!               stamp (epoch, origin): epoch = max(now in ms, highest epoch seen + 1)
//!               ControlMsg::Command(frame) ──▶ every member of the group, itself included
//!               ◀── CommandAck(node, applied, state) from each; a live node without an ack
//!                   within the timeout is reported `missing`
//!  each node:   keeps the latest command per breaker; a command older than the one kept is
//!               ignored (last writer wins on (epoch, origin)), a newer one is applied to the
//!               local breaker of that name
//!  a member joins the group ─▶ every node casts it its table (ControlMsg::Snapshot); the same
//!               merge rule applies; tables are also re-pushed every `resync_every`, which
//!               closes the race of a command sent while a node was joining
//! ```
//!
//! Why this design: the commands are idempotent under last-writer-wins, so a node can receive
//! the same state any number of times, from any node, in any order, and converge; that makes
//! the late joiner's case (and a restarted node's, whose table starts empty) the same code as
//! the live case. The epoch is a hybrid clock (wall-clock milliseconds, but never below the
//! highest epoch seen plus one), so a later command wins without synchronised clocks as long as
//! the origin has seen the earlier one, and the node name breaks ties.
//!
//! The group lives in a scope of its own, not the cluster's: the membership treats every
//! member of the cluster scope as an agent ingress (probes, node loss on the last leave).
//!
//! A node keeps (and relays) commands only for breakers it has, so a peer cannot grow the
//! table with names of its choosing; a `reset` arriving by snapshot for a breaker this node
//! never had a command for is recorded but not applied (there is nothing forced to undo, and
//! resetting would only clear the breaker's window).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::pg::GroupChangeMessage;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

use super::frame::{Frame, FrameError, FrameKind};
use super::node::{ClusterNode, Membership};
use crate::breaker::BreakerHandle;

/// The process group every node's [`BreakerControl`] joins, in [`control_scope`].
pub const CONTROL_GROUP: &str = "breaker-control";

/// The process-group scope of the control group of cluster `cluster`.
///
/// ```
/// assert_eq!(ractor_resilience::cluster::control_scope("prod"), "prod.control");
/// ```
pub fn control_scope(cluster: &str) -> String {
    format!("{cluster}.control")
}

/// An operator's command to a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BreakerOp {
    /// Forced open until reset or disabled.
    ForceOpen,
    /// Back to Closed.
    Reset,
    /// Admits everything, counts nothing.
    Disable,
}

impl BreakerOp {
    /// From the spelling of the CLI and the URL (`force-open`, `reset`, `disable`).
    ///
    /// ```
    /// use ractor_resilience::cluster::BreakerOp;
    /// assert_eq!(BreakerOp::parse("force-open"), Some(BreakerOp::ForceOpen));
    /// assert_eq!(BreakerOp::parse("open"), None);
    /// ```
    pub fn parse(action: &str) -> Option<BreakerOp> {
        match action {
            "force-open" => Some(BreakerOp::ForceOpen),
            "reset" => Some(BreakerOp::Reset),
            "disable" => Some(BreakerOp::Disable),
            _ => None,
        }
    }

    /// The CLI's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerOp::ForceOpen => "force-open",
            BreakerOp::Reset => "reset",
            BreakerOp::Disable => "disable",
        }
    }
}

/// A command as it travels: which breaker, what, and its (epoch, origin) stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerCommand {
    /// The breaker's configured name.
    pub breaker: String,
    /// What to do.
    pub op: BreakerOp,
    /// The origin's hybrid clock when it was issued (milliseconds).
    pub epoch: u64,
    /// The node it was issued on (breaks ties between equal epochs).
    pub origin: String,
}

impl BreakerCommand {
    fn newer_than(&self, other: &BreakerCommand) -> bool {
        (self.epoch, self.origin.as_str()) > (other.epoch, other.origin.as_str())
    }
}

/// One node's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAck {
    /// The answering node.
    pub node: String,
    /// Whether it applied the command (`false`: it had a newer one, or no such breaker).
    pub applied: bool,
    /// The breaker's state after it (`absent`: the node has no breaker of that name,
    /// `stopped`: its breaker does not answer).
    pub state: String,
}

/// What a cluster-wide command reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandReport {
    /// The command sent.
    pub command: BreakerCommand,
    /// The answers, by node name.
    pub acks: Vec<CommandAck>,
    /// Live nodes (a session is up, or a control actor is in the group) that did not answer in
    /// time.
    pub missing: Vec<String>,
    /// Nodes seen before whose session is down: not live, they get the command when they join
    /// again.
    pub down: Vec<String>,
}

impl CommandReport {
    /// Whether every live node acknowledged.
    pub fn all_acknowledged(&self) -> bool {
        self.missing.is_empty()
    }
}

/// What [`BreakerControl`] accepts from any node.
#[derive(RactorClusterMessage)]
pub enum ControlMsg {
    /// A [`BreakerCommand`] frame; answered with a [`CommandAck`] frame.
    #[rpc]
    Command(Frame, RpcReplyPort<Frame>),
    /// A peer's table (a `Vec<BreakerCommand>` frame), merged command by command.
    Snapshot(Frame),
    /// This node's table, asked for by a node that is starting
    /// ([`BreakerControl::sync`]); answered with a `Snapshot` frame, empty or not.
    #[rpc]
    Fetch(RpcReplyPort<Frame>),
}

impl std::fmt::Debug for ControlMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlMsg::Command(frame, _) => {
                write!(f, "ControlMsg::Command({} bytes)", frame.len())
            }
            ControlMsg::Snapshot(frame) => write!(f, "ControlMsg::Snapshot({} bytes)", frame.len()),
            ControlMsg::Fetch(_) => f.write_str("ControlMsg::Fetch"),
        }
    }
}

type Lookup = dyn Fn(&str) -> Option<BreakerHandle> + Send + Sync;

#[derive(Default)]
struct Table {
    latest: HashMap<String, BreakerCommand>,
    /// The highest epoch issued or seen.
    clock: u64,
}

/// What to do with a command received.
#[derive(Debug, PartialEq, Eq)]
enum Merge {
    /// Newer than the one kept: kept, and applied to the breaker.
    Apply,
    /// Newer, kept, not applied (a snapshot's reset for a breaker never commanded here).
    Record,
    /// Not newer than the one kept (or no such breaker here): ignored.
    Ignore,
}

impl Table {
    fn merge(&mut self, cmd: &BreakerCommand, known: bool, direct: bool) -> Merge {
        self.clock = self.clock.max(cmd.epoch);
        if !known {
            return Merge::Ignore;
        }
        let merge = match self.latest.get(&cmd.breaker) {
            Some(kept) if !cmd.newer_than(kept) => return Merge::Ignore,
            None if !direct && cmd.op == BreakerOp::Reset => Merge::Record,
            _ => Merge::Apply,
        };
        self.latest.insert(cmd.breaker.clone(), cmd.clone());
        merge
    }

    fn next_epoch(&mut self, now_ms: u64) -> u64 {
        self.clock = now_ms.max(self.clock.saturating_add(1));
        self.clock
    }
}

struct Shared {
    node: String,
    scope: String,
    table: Mutex<Table>,
    breakers: Box<Lookup>,
}

impl Shared {
    fn snapshot(&self) -> Vec<BreakerCommand> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<BreakerCommand> = table.latest.values().cloned().collect();
        all.sort_by(|a, b| a.breaker.cmp(&b.breaker));
        all
    }

    /// Casts this node's table to every remote member of the control group in `cells`.
    fn push_to(&self, cells: impl IntoIterator<Item = ractor::ActorCell>) {
        let snapshot = self.snapshot();
        if snapshot.is_empty() {
            return;
        }
        let Ok(frame) = Frame::encode(FrameKind::Snapshot, &snapshot) else {
            return;
        };
        for cell in cells {
            if cell.get_id().is_local() {
                continue;
            }
            let control: ActorRef<ControlMsg> = cell.into();
            let _ = control.cast(ControlMsg::Snapshot(frame.clone()));
        }
    }

    /// Merges one command and applies it if it is newer.
    async fn receive(&self, cmd: &BreakerCommand, direct: bool) -> CommandAck {
        let breaker = (self.breakers)(&cmd.breaker);
        let merge = self.table.lock().unwrap_or_else(|e| e.into_inner()).merge(
            cmd,
            breaker.is_some(),
            direct,
        );
        let Some(breaker) = breaker else {
            return self.ack(false, "absent");
        };
        let applied = merge == Merge::Apply;
        if applied {
            let sent = match cmd.op {
                BreakerOp::ForceOpen => breaker.force_open(),
                BreakerOp::Reset => breaker.reset(),
                BreakerOp::Disable => breaker.disable(),
            };
            if sent.is_err() {
                return self.ack(false, "stopped");
            }
            let action = cmd.op.as_str().replace('-', "_");
            tracing::warn!(
                breaker = %cmd.breaker,
                action = %action,
                origin = %cmd.origin,
                epoch = cmd.epoch,
                "cluster-wide operator action on a circuit breaker"
            );
            metrics::counter!(crate::metrics::OPERATOR_ACTIONS, "breaker" => cmd.breaker.clone(), "action" => action)
                .increment(1);
        }
        // The breaker applies the command before it answers this status request.
        let state = match tokio::time::timeout(Duration::from_secs(1), breaker.status()).await {
            Ok(Ok(status)) => status.state.to_string(),
            _ => "stopped".to_owned(),
        };
        self.ack(applied, &state)
    }

    fn ack(&self, applied: bool, state: &str) -> CommandAck {
        CommandAck {
            node: self.node.clone(),
            applied,
            state: state.to_owned(),
        }
    }
}

/// This node's breaker control: an actor in the process group [`CONTROL_GROUP`] of scope
/// [`control_scope`]`(cluster)`, applying cluster-wide commands to this node's breakers.
///
/// [`command`](Self::command) stamps a command with (epoch, this node) — the epoch is
/// wall-clock milliseconds, never below the highest epoch seen plus one — and calls every
/// member of the group, this one included. Each node keeps the latest command per breaker it
/// has (last writer wins on (epoch, node)) and applies a newer one; the whole table is cast to
/// every node whose control joins the group, and to all of them every `resync_every`, so late
/// joiners and restarted nodes converge through the same merge. Stops its actor when
/// [`stop`](Self::stop)ped; the re-push task ends when dropped.
pub struct BreakerControl {
    actor: ActorRef<ControlMsg>,
    shared: Arc<Shared>,
    membership: Arc<Membership>,
    resync: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for BreakerControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerControl")
            .field("node", &self.shared.node)
            .field("scope", &self.shared.scope)
            .finish_non_exhaustive()
    }
}

/// The control actor.
struct ControlActor;

impl BreakerControl {
    /// How often each node pushes its table to the others by default.
    pub const DEFAULT_RESYNC: Duration = Duration::from_secs(2);

    /// Spawns `node`'s breaker control, acting on the breakers `breakers` finds by name, and
    /// joins the control group; its table is pushed to every node that joins, and to all of
    /// them every `resync_every`.
    ///
    /// # Errors
    /// ractor's, if the actor cannot be spawned.
    pub async fn spawn(
        node: &ClusterNode,
        breakers: impl Fn(&str) -> Option<BreakerHandle> + Send + Sync + 'static,
        resync_every: Duration,
    ) -> Result<BreakerControl, SpawnErr> {
        let shared = Arc::new(Shared {
            node: node.name().to_owned(),
            scope: control_scope(node.cluster()),
            table: Mutex::new(Table::default()),
            breakers: Box::new(breakers),
        });
        let (actor, _) = Actor::spawn(None, ControlActor, shared.clone()).await?;
        let pushing = shared.clone();
        let resync = tokio::spawn(async move {
            let mut tick = tokio::time::interval(resync_every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                pushing.push_to(ractor::pg::get_scoped_members(
                    &pushing.scope,
                    &CONTROL_GROUP.to_owned(),
                ));
            }
        });
        Ok(BreakerControl {
            actor,
            shared,
            membership: node.membership.clone(),
            resync,
        })
    }

    /// The nodes whose breaker control this node sees in the control group, itself included
    /// (sorted): those a command from here reaches.
    pub fn members(&self) -> Vec<String> {
        let mut names: Vec<String> =
            ractor::pg::get_scoped_members(&self.shared.scope, &CONTROL_GROUP.to_owned())
                .iter()
                .filter_map(|cell| {
                    let id = cell.get_id();
                    if id.is_local() {
                        Some(self.shared.node.clone())
                    } else {
                        self.membership
                            .session(id.node())
                            .map(|s| s.name.to_string())
                    }
                })
                .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The latest command this node knows for each breaker (sorted by breaker).
    pub fn commands(&self) -> Vec<BreakerCommand> {
        self.shared.snapshot()
    }

    /// Sends `op` on `breaker` to every node's control (this one's included) and waits at most
    /// `ack_timeout` for their answers.
    ///
    /// # Errors
    /// [`FrameError`] if the command does not encode (a name beyond [`MAX_BODY`](super::MAX_BODY)).
    pub async fn command(
        &self,
        breaker: &str,
        op: BreakerOp,
        ack_timeout: Duration,
    ) -> Result<CommandReport, FrameError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let epoch = self
            .shared
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_epoch(now_ms);
        let command = BreakerCommand {
            breaker: breaker.to_owned(),
            op,
            epoch,
            origin: self.shared.node.clone(),
        };
        let frame = Frame::encode(FrameKind::Command, &command)?;
        let (live, down) = self.membership.node_names();
        let mut expected: BTreeSet<String> = live.iter().map(|n| n.to_string()).collect();
        expected.insert(self.shared.node.clone());
        let mut calls = tokio::task::JoinSet::new();
        for cell in ractor::pg::get_scoped_members(&self.shared.scope, &CONTROL_GROUP.to_owned()) {
            let id = cell.get_id();
            let name = if id.is_local() {
                Some(self.shared.node.clone())
            } else {
                self.membership
                    .session(id.node())
                    .map(|s| s.name.to_string())
            };
            if let Some(name) = &name {
                expected.insert(name.clone());
            }
            let control: ActorRef<ControlMsg> = cell.into();
            let frame = frame.clone();
            calls.spawn(async move {
                let call = control.call(|port| ControlMsg::Command(frame, port), Some(ack_timeout));
                let ack = match tokio::time::timeout(ack_timeout, call).await {
                    Ok(Ok(ractor::rpc::CallResult::Success(reply))) => {
                        reply.decode::<CommandAck>(FrameKind::Ack).ok()
                    }
                    _ => None,
                };
                (name, ack)
            });
        }
        let mut acks = Vec::new();
        while let Some(joined) = calls.join_next().await {
            if let Ok((_, Some(ack))) = joined {
                acks.push(ack);
            }
        }
        acks.sort_by(|a, b| a.node.cmp(&b.node));
        acks.dedup_by(|a, b| a.node == b.node);
        let missing = expected
            .into_iter()
            .filter(|n| acks.iter().all(|a| &a.node != n))
            .collect();
        Ok(CommandReport {
            command,
            acks,
            missing,
            down: down.iter().map(|n| n.to_string()).collect(),
        })
    }

    /// Obtains the cluster's current commands before this node serves: asks the control of
    /// every peer visible in the control group for its table (waiting, within `bound`, for the
    /// first to appear once sessions are up) and applies what is newer, as a snapshot pushed to
    /// it would be. Returns once at least one peer answered and every peer asked has answered or
    /// failed, or when `bound` has passed; the push on join and the periodic re-push still apply
    /// anything that arrives later. A node started before any other has nobody to ask: call
    /// this only when it joined peers.
    ///
    /// Returns the names of the nodes that answered (empty: none within `bound`).
    pub async fn sync(&self, bound: Duration) -> Vec<String> {
        let until = tokio::time::Instant::now() + bound;
        let mut asked: BTreeSet<ractor::ActorId> = BTreeSet::new();
        let mut calls = tokio::task::JoinSet::new();
        let mut answered = Vec::new();
        loop {
            for cell in
                ractor::pg::get_scoped_members(&self.shared.scope, &CONTROL_GROUP.to_owned())
            {
                let id = cell.get_id();
                if id.is_local() || !asked.insert(id) {
                    continue;
                }
                let name = self
                    .membership
                    .session(id.node())
                    .map_or_else(|| format!("{id}"), |s| s.name.to_string());
                let control: ActorRef<ControlMsg> = cell.into();
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                calls.spawn(async move {
                    let call = control.call(ControlMsg::Fetch, Some(left));
                    let table = match tokio::time::timeout(left, call).await {
                        Ok(Ok(ractor::rpc::CallResult::Success(frame))) => frame
                            .decode::<Vec<BreakerCommand>>(FrameKind::Snapshot)
                            .ok(),
                        _ => None,
                    };
                    (name, table)
                });
            }
            let tick = tokio::time::sleep(Duration::from_millis(10));
            tokio::select! {
                joined = calls.join_next(), if !calls.is_empty() => {
                    if let Some(Ok((name, Some(table)))) = joined {
                        for cmd in &table {
                            self.shared.receive(cmd, false).await;
                        }
                        answered.push(name);
                    }
                }
                () = tick => {}
            }
            if (!answered.is_empty() && calls.is_empty()) || tokio::time::Instant::now() >= until {
                break;
            }
        }
        calls.abort_all();
        answered.sort();
        answered
    }

    /// Leaves the control group and stops.
    pub fn stop(&self) {
        self.resync.abort();
        self.actor.stop(None);
    }
}

impl Drop for BreakerControl {
    fn drop(&mut self) {
        self.resync.abort();
    }
}

impl Actor for ControlActor {
    type Msg = ControlMsg;
    type State = Arc<Shared>;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<ControlMsg>,
        shared: Arc<Shared>,
    ) -> Result<Arc<Shared>, ActorProcessingErr> {
        ractor::pg::monitor_scope(shared.scope.clone(), myself.get_cell());
        ractor::pg::join_scoped(
            shared.scope.clone(),
            CONTROL_GROUP.to_owned(),
            vec![myself.get_cell()],
        );
        Ok(shared)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ControlMsg>,
        shared: &mut Arc<Shared>,
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::leave_scoped(
            shared.scope.clone(),
            CONTROL_GROUP.to_owned(),
            vec![myself.get_cell()],
        );
        ractor::pg::demonitor_scope(shared.scope.clone(), myself.get_id());
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControlMsg>,
        msg: ControlMsg,
        shared: &mut Arc<Shared>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlMsg::Command(frame, port) => {
                match frame.decode::<BreakerCommand>(FrameKind::Command) {
                    Ok(cmd) => {
                        let ack = shared.receive(&cmd, true).await;
                        if let Ok(reply) = Frame::encode(FrameKind::Ack, &ack) {
                            let _ = port.send(reply);
                        }
                    }
                    // No answer: the caller's timeout reports this node as missing.
                    Err(e) => tracing::debug!(error = %e, "bad breaker command frame"),
                }
            }
            ControlMsg::Fetch(port) => {
                if let Ok(frame) = Frame::encode(FrameKind::Snapshot, &shared.snapshot()) {
                    let _ = port.send(frame);
                }
            }
            ControlMsg::Snapshot(frame) => {
                match frame.decode::<Vec<BreakerCommand>>(FrameKind::Snapshot) {
                    Ok(commands) => {
                        for cmd in &commands {
                            shared.receive(cmd, false).await;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "bad breaker snapshot frame"),
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ControlMsg>,
        event: SupervisionEvent,
        shared: &mut Arc<Shared>,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ProcessGroupChanged(GroupChangeMessage::Join(_, group, cells)) =
            event
        {
            if group == CONTROL_GROUP {
                shared.push_to(cells);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(op: BreakerOp, epoch: u64, origin: &str) -> BreakerCommand {
        BreakerCommand {
            breaker: "llm".into(),
            op,
            epoch,
            origin: origin.into(),
        }
    }

    #[test]
    fn the_last_writer_wins_on_epoch_then_origin() {
        let mut t = Table::default();
        assert_eq!(
            t.merge(&cmd(BreakerOp::ForceOpen, 5, "a"), true, true),
            Merge::Apply
        );
        assert_eq!(
            t.merge(&cmd(BreakerOp::Reset, 4, "z"), true, true),
            Merge::Ignore
        );
        assert_eq!(
            t.merge(&cmd(BreakerOp::ForceOpen, 5, "a"), true, false),
            Merge::Ignore,
            "the same command again"
        );
        assert_eq!(
            t.merge(&cmd(BreakerOp::Reset, 5, "b"), true, false),
            Merge::Apply,
            "tie: origin b > a"
        );
        assert_eq!(t.latest["llm"].op, BreakerOp::Reset);
        assert_eq!(t.next_epoch(0), 6, "never below what was seen");
        assert_eq!(t.next_epoch(100), 100, "wall clock when ahead");
    }

    #[test]
    fn a_snapshot_reset_for_a_breaker_never_commanded_is_recorded_not_applied() {
        let mut t = Table::default();
        assert_eq!(
            t.merge(&cmd(BreakerOp::Reset, 5, "a"), true, false),
            Merge::Record
        );
        assert_eq!(
            t.merge(&cmd(BreakerOp::ForceOpen, 6, "a"), true, false),
            Merge::Apply
        );
        let mut direct = Table::default();
        assert_eq!(
            direct.merge(&cmd(BreakerOp::Reset, 5, "a"), true, true),
            Merge::Apply
        );
    }

    #[test]
    fn commands_for_breakers_this_node_lacks_are_not_kept() {
        let mut t = Table::default();
        assert_eq!(
            t.merge(&cmd(BreakerOp::ForceOpen, 7, "a"), false, true),
            Merge::Ignore
        );
        assert!(t.latest.is_empty());
        assert_eq!(t.clock, 7, "the clock still moves");
    }
}
