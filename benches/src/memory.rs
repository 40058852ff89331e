//! Resident memory per idle actor / agent, and spawn time per agent.
//!
//! Each repetition is a **fresh child process** (this binary with `--rss-probe`): freed memory
//! of an earlier measurement would otherwise be reused by the allocator and hide the cost of
//! the next one. The child warms up (runtime threads, allocator arenas, ractor's registry) by
//! spawning a few hundred of the same kind, reads `VmRSS` from `/proc/self/status`, spawns
//! `count` more one after the other, lets them settle, and reads `VmRSS` again.

use std::process::Command;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use ractor_resilience::agent::{AgentBuilder, AgentHandle};
use ractor_resilience::breaker::{BreakerActor, BreakerHandle, BreakerOptions};
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::timeout::{TimeoutActor, TimeoutHandle, TimeoutHooks, TimeoutPolicy};

use crate::calls;

/// What a probe spawns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProbeKind {
    /// Bare no-op ractor actors.
    Bare,
    /// Supervised agents with their whole stack (breaker actor, supervisor, 1 worker; the fixed
    /// timeout policy is kept in place), never called.
    Agent,
    /// The same, each having answered one call before going idle: its breaker's outcome queue,
    /// allocated by the first outcome, is included.
    AgentUsed,
    /// The same, each having answered 1 000 calls in a row before going idle: fast enough for its
    /// breaker to allocate its outcome queue (see `BreakerOptions::queue_after`).
    AgentHot,
    /// Agents with their own breaker, sharing one timeout actor (anatomy).
    AgentSharedTimeout,
    /// Agents sharing one breaker and one timeout actor: supervisor + 1 worker each (anatomy).
    AgentShared,
    /// Keys held by one keyed breaker family (`count` keys, not actors).
    Keyed,
}

/// What a probe measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) bytes_per: f64,
    pub(crate) spawn_us: f64,
    /// The probe process's whole resident set once everything was spawned and settled.
    pub(crate) rss_after: u64,
}

/// The resident set size of this process, from `/proc/self/status`.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in kB");
    kb * 1024
}

const WARM_UP: usize = 256;
/// Calls made by each agent of an `AgentHot` probe.
const HOT_CALLS: usize = 1000;
const SETTLE: Duration = Duration::from_millis(300);

/// Runs in the child: spawns `count` of `kind` and prints `{"bytes_per":…,"spawn_us":…}`.
pub(crate) fn run_probe(kind: ProbeKind, count: usize) {
    if kind == ProbeKind::Keyed {
        return crate::keyed::run_probe(count);
    }
    let rt = crate::runtime();
    let probe = rt.block_on(async move {
        tokio::spawn(async move {
            match kind {
                ProbeKind::Bare => {
                    let mut keep = Vec::with_capacity(WARM_UP + count);
                    for _ in 0..WARM_UP {
                        keep.push(calls::spawn_bare().await);
                    }
                    tokio::time::sleep(SETTLE).await;
                    let before = rss_bytes();
                    let t0 = Instant::now();
                    for _ in 0..count {
                        keep.push(calls::spawn_bare().await);
                    }
                    let took = t0.elapsed();
                    tokio::time::sleep(SETTLE).await;
                    let after = rss_bytes();
                    for a in &keep {
                        a.stop(None);
                    }
                    per(before, after, took, count)
                }
                ProbeKind::Keyed => unreachable!("measured by keyed::run_probe"),
                kind => {
                    let shared = Shared::new(kind).await;
                    let mut keep = Vec::with_capacity(WARM_UP + count);
                    for i in 0..WARM_UP {
                        keep.push(shared.spawn(&format!("warm-{i}")).await);
                    }
                    tokio::time::sleep(SETTLE).await;
                    let before = rss_bytes();
                    let t0 = Instant::now();
                    for i in 0..count {
                        let agent = shared.spawn(&format!("idle-{i}")).await;
                        let calls = match kind {
                            ProbeKind::AgentUsed => 1,
                            ProbeKind::AgentHot => HOT_CALLS,
                            _ => 0,
                        };
                        for _ in 0..calls {
                            agent.call(false).await.expect("a no-op call succeeds");
                        }
                        keep.push(agent);
                    }
                    let took = t0.elapsed();
                    tokio::time::sleep(SETTLE).await;
                    let after = rss_bytes();
                    for a in &keep {
                        a.stop();
                    }
                    per(before, after, took, count)
                }
            }
        })
        .await
        .expect("the probe task panicked")
    });
    println!(
        "{}",
        serde_json::json!({
            "bytes_per": probe.bytes_per,
            "spawn_us": probe.spawn_us,
            "rss_after": probe.rss_after,
        })
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The actors shared by every agent of an anatomy probe.
struct Shared {
    breaker: Option<BreakerHandle>,
    timeout: Option<TimeoutHandle>,
}

impl Shared {
    async fn new(kind: ProbeKind) -> Self {
        let timeout = match kind {
            ProbeKind::AgentSharedTimeout | ProbeKind::AgentShared => Some(
                TimeoutActor::spawn(
                    "shared",
                    TimeoutPolicy::Fixed(Duration::from_secs(30)),
                    TimeoutHooks::default(),
                )
                .await
                .expect("spawn the shared timeout actor"),
            ),
            _ => None,
        };
        let breaker = match kind {
            ProbeKind::AgentShared => Some(
                BreakerActor::spawn(
                    "shared",
                    BreakerSettings::default(),
                    BreakerOptions::default(),
                )
                .await
                .expect("spawn the shared breaker"),
            ),
            _ => None,
        };
        Shared { breaker, timeout }
    }

    /// One agent with the default policies and a pool of 1, using the shared actors if any.
    async fn spawn(&self, name: &str) -> AgentHandle<calls::Noop> {
        let mut b = AgentBuilder::new(name, || calls::Noop).workers(1);
        if let Some(t) = &self.timeout {
            b = b.timeout(t.clone());
        }
        if let Some(br) = &self.breaker {
            b = b.breaker(br.clone());
        }
        b.spawn().await.expect("spawn the agent")
    }
}

fn per(before: u64, after: u64, took: Duration, count: usize) -> Probe {
    Probe {
        bytes_per: after.saturating_sub(before) as f64 / count as f64,
        spawn_us: took.as_secs_f64() * 1e6 / count as f64,
        rss_after: after,
    }
}

/// Runs one probe in a child process.
pub(crate) fn probe(kind: ProbeKind, count: usize) -> Probe {
    let kind_arg = kind
        .to_possible_value()
        .expect("probe kinds have names")
        .get_name()
        .to_owned();
    let v = child_json(
        &["--rss-probe", &kind_arg, "--count", &count.to_string()],
        &format!("the {kind_arg} memory probe"),
    );
    Probe {
        bytes_per: v["bytes_per"].as_f64().expect("bytes_per"),
        spawn_us: v["spawn_us"].as_f64().expect("spawn_us"),
        rss_after: v["rss_after"].as_u64().unwrap_or(0),
    }
}

/// Runs this binary with `args` (a probe that prints one JSON object) and returns that object;
/// a failed child aborts the run, naming `what`.
pub(crate) fn child_json(args: &[&str], what: &str) -> serde_json::Value {
    let exe = std::env::current_exe().expect("the path of this binary");
    let out = Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{what}'s JSON: {e}"))
}
