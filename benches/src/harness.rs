//! `resilience-bench`: the benchmark harness of BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p agent-system          # for simulate_1h_wall_s (on its own: built
//!                                                 # together, its tokio test-util reaches this)
//! cargo run --release -p resilience-bench -- --json [--quick] [--only latency,throughput]
//! cargo run --release -p resilience-bench --features cluster -- --json --quick --only remote
//! ```
//!
//! `remote` (remote_call_p50_ratio) needs the `cluster` feature; without it its figures are
//! reported absent, with the reason on stderr.
//!
//! Absolute times drift on a shared 2-core machine, so every target is a **ratio against a
//! baseline measured in the same run**: the repetitions of the baseline and of the measured
//! subject are interleaved (their order rotates every repetition), each ratio is computed per
//! repetition from the pair, and every figure is the median of its repetitions after a
//! discarded warm-up repetition, printed with its min and max.
//!
//! Actor figures run on a multi-thread tokio runtime with 2 worker threads (the machine's
//! cores); the core figures run on the main thread with the runtime idle.

mod anatomy;
mod calls;
mod core_ops;
mod exporter;
mod hol;
mod keyed;
mod memory;
mod peer;
#[cfg(feature = "cluster")]
mod remote;
mod report;
mod simulate;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::calls::{BareCaller, Caller, RejectCaller, StackCaller};
use crate::memory::ProbeKind;
use crate::peer::PeerCaller;
use crate::report::Reporter;
use crate::stats::{ratios, summarize};

/// Benchmarks of ractor-resilience, as ratios against baselines measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "resilience-bench", version, about)]
struct Cli {
    /// Print one JSON object per line: {"name": …, "value": …, "unit": …}.
    #[arg(long)]
    json: bool,
    /// Shorter repetitions (under 2 minutes in all; without it, under 10).
    #[arg(long)]
    quick: bool,
    /// Run only these groups (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
    /// Repetitions per figure (default 5 with --quick, 9 without; fewer than 5 is for
    /// development only).
    #[arg(long)]
    reps: Option<usize>,
    /// The agent-system binary for simulate_1h_wall_s (default: beside this binary).
    #[arg(long, value_name = "PATH")]
    agent_system: Option<PathBuf>,
    /// Profiling aid: call this subject in a loop for --seconds and print calls/s.
    #[arg(long, value_enum)]
    profile: Option<Subject>,
    /// With --profile: how long.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// With --profile: concurrent callers (1: sequential calls).
    #[arg(long, default_value_t = 1)]
    callers: usize,
    /// Profiling aid (feature `cluster`): make sequential remote calls to one subject for
    /// --seconds (the serving node is a child process, as in `--only remote`) and print calls/s.
    #[arg(long, value_enum)]
    profile_remote: Option<RemoteSubject>,
    /// Internal: run one memory probe in this process and print its JSON.
    #[arg(long, value_enum, hide = true)]
    rss_probe: Option<ProbeKind>,
    /// Internal: run the exporter probe in this process and print its JSON (with --reps and
    /// --count: sequential calls per repetition).
    #[arg(long, hide = true)]
    exporter_probe: bool,
    /// Internal: serve the remote group's agent and echo actor as a cluster node (feature
    /// `cluster`) until stdin closes.
    #[arg(long, hide = true)]
    remote_serve: bool,
    /// Internal: how many actors or agents the memory probe spawns.
    #[arg(long, hide = true, default_value_t = 10_000)]
    count: usize,
}

/// The subjects of `--profile-remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RemoteSubject {
    /// `call!` to the ractor_cluster echo actor on the other node.
    Bare,
    /// `AgentHandle<Remote<Echo>>::call` to the echo agent on the other node.
    Stack,
    /// `IngressMsg::Call` with a frame straight to the echo agent's ingress on the other node
    /// (the serving side and the frames, without the calling stack).
    Ingress,
}

/// The groups of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// breaker_decision_ns, estimator_observe_ns, backoff_next_ns (no actors).
    Core,
    /// Sequential p50 latencies: bare, stack, peer, open-breaker rejection.
    Latency,
    /// Calls/s with 64 and 1024 concurrent callers.
    Throughput,
    /// Idle RSS per bare actor and per agent, spawn time per agent.
    Memory,
    /// Wall time of `agent-system simulate --duration 1h`.
    Simulate,
    /// Head-of-line blocking against the ideal M/G/k FIFO queue (paused clock, child process).
    Hol,
    /// exporter_latency_ratio: the stack's p50 with the Prometheus exporter installed ÷ without
    /// (child process: the recorder is global).
    Exporter,
    /// agents_100k_spawn_s, agents_100k_rss_mb: 100 000 agents with their whole stack, spawned
    /// one after the other (child process).
    Agents,
    /// Keyed breaker families: decision cost for a random key among 100 000, RSS per key with
    /// 1 000 000 held.
    Keyed,
    /// Remote calls (feature `cluster`): the stack to an agent on another node (a child
    /// process) against a bare ractor_cluster `call!` to an echo actor there.
    Remote,
    /// Not in the default run: the stack's overhead rebuilt step by step, and the per-agent
    /// memory split between its actors.
    Anatomy,
}

/// What is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Subject {
    /// `call!` to a no-op ractor actor.
    Bare,
    /// The supervised stack, pool of 1 worker (the contract's figures).
    Stack,
    /// The supervised stack, pool of 2 workers (one per core).
    StackW2,
    /// tower retry + timeout + recloser around the bare call.
    Peer,
    /// The stack with its breaker open.
    Reject,
}

/// How long each measurement runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    reps: usize,
    /// Sequential calls per latency repetition (per subject).
    calls: usize,
    /// Throughput window per repetition (per subject and caller count).
    window: Duration,
    /// Sequential calls per remote latency repetition (per subject): a remote call takes
    /// hundreds of microseconds, not one.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    remote_calls: usize,
    /// Operations per core repetition.
    core_iters: u64,
    /// Memory probes: actors / agents per probe.
    mem_count: usize,
    /// Memory probes: repetitions (each is two child processes).
    mem_reps: usize,
    /// agents_100k: repetitions (each a child process).
    many_reps: usize,
    /// simulate: longest single run before it is killed.
    sim_cap: Duration,
    /// simulate: all runs together (warm-up included) stop being started past this.
    sim_budget: Duration,
}

impl Plan {
    fn new(quick: bool, reps: Option<usize>) -> Self {
        let plan = if quick {
            Plan {
                reps: 5,
                calls: 50_000,
                remote_calls: 5_000,
                window: Duration::from_millis(400),
                core_iters: 2_000_000,
                mem_count: 10_000,
                mem_reps: 5,
                many_reps: 3,
                sim_cap: Duration::from_secs(45),
                sim_budget: Duration::from_secs(40),
            }
        } else {
            Plan {
                reps: 9,
                calls: 200_000,
                remote_calls: 20_000,
                window: Duration::from_secs(1),
                core_iters: 10_000_000,
                mem_count: 10_000,
                mem_reps: 7,
                many_reps: 5,
                sim_cap: Duration::from_secs(120),
                sim_budget: Duration::from_secs(240),
            }
        };
        match reps {
            Some(r) => Plan {
                reps: r.max(1),
                mem_reps: r.max(1),
                ..plan
            },
            None => plan,
        }
    }
}

/// The runtime of every actor figure: multi-thread, 2 workers.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

fn main() {
    let cli = Cli::parse();
    if let Some(kind) = cli.rss_probe {
        memory::run_probe(kind, cli.count);
        return;
    }
    if cli.exporter_probe {
        exporter::run_probe(cli.reps.unwrap_or(5), cli.count);
        return;
    }
    if cli.remote_serve {
        #[cfg(feature = "cluster")]
        remote::serve_child();
        #[cfg(not(feature = "cluster"))]
        eprintln!("--remote-serve needs the `cluster` feature");
        return;
    }
    if let Some(subject) = cli.profile_remote {
        profile_remote(subject, cli.seconds);
        return;
    }
    if let Some(subject) = cli.profile {
        profile(subject, cli.seconds, cli.callers);
        return;
    }
    let plan = Plan::new(cli.quick, cli.reps);
    if plan.reps < 5 {
        eprintln!(
            "warning: {} repetitions: the contract asks for at least 5",
            plan.reps
        );
    }
    let groups: Vec<Group> = if cli.only.is_empty() {
        let all = Group::value_variants().iter().copied();
        all.filter(|g| *g != Group::Anatomy).collect()
    } else {
        cli.only.clone()
    };
    let started = Instant::now();
    let mut out = Reporter::new(cli.json);
    eprintln!(
        "resilience-bench: {} mode, {} repetitions after a warm-up; groups {:?}",
        if cli.quick { "quick" } else { "full" },
        plan.reps,
        groups
    );
    for group in groups {
        let t = Instant::now();
        eprintln!("[{group:?}]");
        match group {
            Group::Core => core(&plan, &mut out),
            Group::Latency | Group::Throughput => actors(group, &plan, &mut out),
            Group::Memory => memory(&plan, &mut out),
            Group::Simulate => simulate(&plan, cli.agent_system.clone(), &mut out),
            Group::Hol => hol::run(&mut out),
            Group::Keyed => keyed(&plan, &mut out),
            Group::Exporter => exporter_group(&plan, &mut out),
            Group::Agents => agents(&plan, &mut out),
            Group::Remote => remote(&plan, &mut out),
            Group::Anatomy => anatomy(&plan, &mut out),
        }
        eprintln!("[{group:?}] {:.1} s", t.elapsed().as_secs_f64());
    }
    out.finish();
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
}

// ===== core =====

fn core(plan: &Plan, out: &mut Reporter) {
    type Op = fn(u64) -> f64;
    let ops: [(&str, Op); 5] = [
        ("breaker_decision_ns", core_ops::breaker_decision_ns),
        ("estimator_observe_ns", core_ops::estimator_observe_ns),
        ("estimator_timeout_ns", core_ops::estimator_timeout_ns),
        ("backoff_next_ns", core_ops::backoff_next_ns),
        ("backoff_task_ns", core_ops::backoff_task_ns),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    for rep in 0..=plan.reps {
        for (i, (_, op)) in ops.iter().enumerate() {
            let ns = op(plan.core_iters);
            if rep > 0 {
                samples[i].push(ns); // rep 0 is the warm-up
            }
        }
    }
    for ((name, _), s) in ops.iter().zip(&samples) {
        out.figure(name, "ns", summarize(s));
    }
}

// ===== latency and throughput =====

/// Everything the actor figures call, spawned once per group.
struct Subjects<P> {
    bare: BareCaller,
    stack: StackCaller,
    stack_w2: StackCaller,
    peer: PeerCaller<P>,
    reject: RejectCaller,
}

impl<P> Subjects<P>
where
    PeerCaller<P>: Caller,
{
    async fn p50(&self, s: Subject, calls: usize) -> f64 {
        match s {
            Subject::Bare => calls::p50_ns(self.bare.clone(), calls).await,
            Subject::Stack => calls::p50_ns(self.stack.clone(), calls).await,
            Subject::StackW2 => calls::p50_ns(self.stack_w2.clone(), calls).await,
            Subject::Peer => calls::p50_ns(self.peer.clone(), calls).await,
            Subject::Reject => calls::p50_ns(self.reject.clone(), calls).await,
        }
    }

    async fn throughput(&self, s: Subject, callers: usize, window: Duration) -> f64 {
        match s {
            Subject::Bare => calls::throughput(&self.bare, callers, window).await,
            Subject::Stack => calls::throughput(&self.stack, callers, window).await,
            Subject::StackW2 => calls::throughput(&self.stack_w2, callers, window).await,
            Subject::Peer => calls::throughput(&self.peer, callers, window).await,
            Subject::Reject => calls::throughput(&self.reject, callers, window).await,
        }
    }

    fn stop(&self) {
        self.bare.0.stop(None);
        calls::stop_stack(&self.stack.0);
        calls::stop_stack(&self.stack_w2.0);
        calls::stop_stack(&self.reject.0);
    }
}

/// One measurement: which subject, and with how many callers (`None`: sequential p50).
type Key = (Option<usize>, Subject);

fn actors(group: Group, plan: &Plan, out: &mut Reporter) {
    use Subject::*;
    let rt = runtime();
    let plan = *plan;
    let samples = rt.block_on(async move {
        let bare = calls::spawn_bare().await;
        let subjects = Subjects {
            bare: BareCaller(bare.clone()),
            stack: StackCaller(calls::spawn_stack("bench-stack-w1", 1).await),
            stack_w2: StackCaller(calls::spawn_stack("bench-stack-w2", 2).await),
            peer: PeerCaller(peer::peer_service(calls::spawn_bare().await)),
            reject: RejectCaller(calls::spawn_open_stack("bench-open").await),
        };
        let runs: Vec<(Option<usize>, Vec<Subject>)> = match group {
            Group::Latency => vec![(None, vec![Bare, Stack, StackW2, Peer, Reject])],
            _ => vec![
                (Some(64), vec![Bare, Stack, StackW2, Peer, Reject]),
                (Some(1024), vec![Bare, Stack, StackW2, Peer]),
            ],
        };
        let mut samples: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
        for (callers, list) in &runs {
            for rep in 0..=plan.reps {
                // Rotate the order every repetition: no subject always runs first or after
                // the same neighbour.
                let n = list.len();
                for k in 0..n {
                    let s = list[(rep + k) % n];
                    let v = match callers {
                        None => subjects.p50(s, plan.calls).await,
                        Some(c) => subjects.throughput(s, *c, plan.window).await,
                    };
                    if rep > 0 {
                        samples.entry((*callers, s)).or_default().push(v);
                    }
                }
            }
        }
        subjects.stop();
        samples
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let get = |callers: Option<usize>, s: Subject| -> &Vec<f64> { &samples[&(callers, s)] };
    match group {
        Group::Latency => {
            let (b, st, w2, p, r) = (
                get(None, Bare),
                get(None, Stack),
                get(None, StackW2),
                get(None, Peer),
                get(None, Reject),
            );
            out.figure("bare_call_p50_ns", "ns", summarize(b));
            out.figure("stack_call_p50_ns", "ns", summarize(st));
            out.figure("stack_latency_ratio", "ratio", summarize(&ratios(st, b)));
            out.figure("peer_call_p50_ns", "ns", summarize(p));
            out.figure(
                "stack_vs_peer_latency_ratio",
                "ratio",
                summarize(&ratios(st, p)),
            );
            out.figure("peer_latency_ratio", "ratio", summarize(&ratios(p, b)));
            out.figure("stack_w2_call_p50_ns", "ns", summarize(w2));
            out.figure("stack_w2_latency_ratio", "ratio", summarize(&ratios(w2, b)));
            out.figure("open_reject_p50_ns", "ns", summarize(r));
        }
        _ => {
            for c in [64, 1024] {
                let k = Some(c);
                let (b, st, w2, p) = (get(k, Bare), get(k, Stack), get(k, StackW2), get(k, Peer));
                out.figure(&format!("bare_throughput_{c}"), "calls/s", summarize(b));
                out.figure(&format!("stack_throughput_{c}"), "calls/s", summarize(st));
                out.figure(
                    &format!("stack_throughput_ratio_{c}"),
                    "ratio",
                    summarize(&ratios(st, b)),
                );
                out.figure(
                    &format!("stack_w2_throughput_{c}"),
                    "calls/s",
                    summarize(w2),
                );
                out.figure(
                    &format!("stack_w2_throughput_ratio_{c}"),
                    "ratio",
                    summarize(&ratios(w2, b)),
                );
                out.figure(&format!("peer_throughput_{c}"), "calls/s", summarize(p));
                out.figure(
                    &format!("stack_vs_peer_throughput_ratio_{c}"),
                    "ratio",
                    summarize(&ratios(st, p)),
                );
                if c == 64 {
                    let r = get(k, Reject);
                    out.figure("open_reject_throughput_64", "calls/s", summarize(r));
                    out.figure(
                        "reject_vs_bare_throughput_ratio",
                        "ratio",
                        summarize(&ratios(r, b)),
                    );
                }
            }
        }
    }
}

// ===== remote =====

/// The remote figures' names and units, in the order they are reported.
const REMOTE_FIGURES: [(&str, &str); 6] = [
    ("remote_bare_call_p50_ns", "ns"),
    ("remote_stack_call_p50_ns", "ns"),
    ("remote_call_p50_ratio", "ratio"),
    ("remote_bare_call_p99_ns", "ns"),
    ("remote_stack_call_p99_ns", "ns"),
    ("remote_call_p99_ratio", "ratio"),
];

#[cfg(not(feature = "cluster"))]
fn remote(_plan: &Plan, out: &mut Reporter) {
    let why = "built without the `cluster` feature (cargo run --release -p resilience-bench \
               --features cluster -- --only remote)";
    for (name, unit) in REMOTE_FIGURES {
        out.absent(name, unit, why);
    }
}

#[cfg(feature = "cluster")]
fn remote(plan: &Plan, out: &mut Reporter) {
    let rt = runtime();
    let plan = *plan;
    let measured = rt.block_on(async move {
        let subjects = remote::RemoteSubjects::start().await?;
        // [bare p50, stack p50, bare p99, stack p99] per repetition.
        let mut samples: [Vec<f64>; 4] = Default::default();
        for rep in 0..=plan.reps {
            // Alternate which subject runs first.
            let mut bare = (0.0, 0.0);
            let mut stack = (0.0, 0.0);
            for k in 0..2 {
                if (rep + k) % 2 == 0 {
                    bare = calls::p50_p99_ns(subjects.bare.clone(), plan.remote_calls).await;
                } else {
                    stack = calls::p50_p99_ns(subjects.stack.clone(), plan.remote_calls).await;
                }
            }
            if rep > 0 {
                samples[0].push(bare.0);
                samples[1].push(stack.0);
                samples[2].push(bare.1);
                samples[3].push(stack.1);
            }
        }
        subjects.stop();
        Ok::<_, String>(samples)
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let [bare50, stack50, bare99, stack99] = match measured {
        Ok(samples) => samples,
        Err(why) => {
            for (name, unit) in REMOTE_FIGURES {
                out.absent(name, unit, &why);
            }
            return;
        }
    };
    let values = [
        summarize(&bare50),
        summarize(&stack50),
        summarize(&ratios(&stack50, &bare50)),
        summarize(&bare99),
        summarize(&stack99),
        summarize(&ratios(&stack99, &bare99)),
    ];
    for ((name, unit), value) in REMOTE_FIGURES.into_iter().zip(values) {
        out.figure(name, unit, value);
    }
}

// ===== memory =====

fn memory(plan: &Plan, out: &mut Reporter) {
    let (mut bare_b, mut agent_b, mut bare_us, mut agent_us, mut used_b, mut hot_b) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for rep in 0..=plan.mem_reps {
        // Alternate which kind goes first.
        let mut kinds = [
            ProbeKind::Bare,
            ProbeKind::Agent,
            ProbeKind::AgentUsed,
            ProbeKind::AgentHot,
        ];
        if rep % 2 == 1 {
            kinds.reverse();
        }
        for kind in kinds {
            // A hot agent makes 1 000 calls: a tenth as many of them keeps the probe short.
            let count = match kind {
                ProbeKind::AgentHot => plan.mem_count / 10,
                _ => plan.mem_count,
            };
            let p = memory::probe(kind, count);
            if rep == 0 {
                continue; // warm-up
            }
            match kind {
                ProbeKind::Bare => {
                    bare_b.push(p.bytes_per);
                    bare_us.push(p.spawn_us);
                }
                ProbeKind::AgentUsed => used_b.push(p.bytes_per),
                ProbeKind::AgentHot => hot_b.push(p.bytes_per),
                _ => {
                    agent_b.push(p.bytes_per);
                    agent_us.push(p.spawn_us);
                }
            }
        }
    }
    out.figure("bare_actor_idle_bytes", "bytes", summarize(&bare_b));
    out.figure("agent_stack_idle_bytes", "bytes", summarize(&agent_b));
    out.figure(
        "agent_stack_idle_ratio",
        "ratio",
        summarize(&ratios(&agent_b, &bare_b)),
    );
    out.figure("agent_stack_used_idle_bytes", "bytes", summarize(&used_b));
    out.figure(
        "agent_stack_used_idle_ratio",
        "ratio",
        summarize(&ratios(&used_b, &bare_b)),
    );
    out.figure("agent_stack_hot_idle_bytes", "bytes", summarize(&hot_b));
    out.figure(
        "agent_stack_hot_idle_ratio",
        "ratio",
        summarize(&ratios(&hot_b, &bare_b)),
    );
    out.figure("agent_spawn_us", "us", summarize(&agent_us));
    out.figure("bare_actor_spawn_us", "us", summarize(&bare_us));
}

// ===== exporter =====

fn exporter_group(plan: &Plan, out: &mut Reporter) {
    let s = exporter::probe(plan.reps, plan.calls);
    out.figure("exporter_plain_call_p50_ns", "ns", summarize(&s.plain));
    out.figure("exporter_call_p50_ns", "ns", summarize(&s.exported));
    out.figure(
        "exporter_latency_ratio",
        "ratio",
        summarize(&ratios(&s.exported, &s.plain)),
    );
}

// ===== many agents =====

/// How many agents `agents_100k_*` spawns.
const MANY_AGENTS: usize = 100_000;

fn agents(plan: &Plan, out: &mut Reporter) {
    let (mut spawn_s, mut rss_mb, mut per) = (Vec::new(), Vec::new(), Vec::new());
    // Each probe is a child process of its own holding 100 000 agents (a few GB): no warm-up
    // repetition beyond the probe's own warm-up spawns.
    for _ in 0..plan.many_reps {
        let p = memory::probe(ProbeKind::Agent, MANY_AGENTS);
        spawn_s.push(p.spawn_us * MANY_AGENTS as f64 / 1e6);
        rss_mb.push(p.rss_after as f64 / 1e6);
        per.push(p.bytes_per);
    }
    out.figure("agents_100k_spawn_s", "s", summarize(&spawn_s));
    out.figure("agents_100k_rss_mb", "MB", summarize(&rss_mb));
    out.figure("agents_100k_bytes_per_agent", "bytes", summarize(&per));
}

// ===== keyed =====

fn keyed(plan: &Plan, out: &mut Reporter) {
    let rt = runtime();
    let (family, keys) = keyed::decision_family(&rt);
    let mut decision = Vec::new();
    for rep in 0..=plan.reps {
        let ns = keyed::decision_ns(&family, &keys, plan.core_iters);
        if rep > 0 {
            decision.push(ns); // rep 0 is the warm-up
        }
    }
    family.stop();
    rt.shutdown_timeout(Duration::from_secs(2));
    out.figure("keyed_breaker_decision_ns", "ns", summarize(&decision));

    let mut bytes = Vec::new();
    for rep in 0..=plan.mem_reps {
        let p = memory::probe(ProbeKind::Keyed, keyed::MEMORY_KEYS);
        if rep > 0 {
            bytes.push(p.bytes_per);
        }
    }
    out.figure("keyed_breaker_bytes_per_key", "bytes", summarize(&bytes));
}

// ===== simulate =====

fn simulate(plan: &Plan, bin: Option<PathBuf>, out: &mut Reporter) {
    const NAME: &str = "simulate_1h_wall_s";
    let Some(bin) = bin.or_else(simulate::default_binary) else {
        out.absent(NAME, "s", "cannot locate the agent-system binary");
        return;
    };
    if let Err(why) = simulate::supports_simulate(&bin) {
        out.absent(NAME, "s", &why);
        return;
    }
    let started = Instant::now();
    let warm = match simulate::run_once(&bin, plan.sim_cap) {
        Ok(wall) => wall,
        Err(why) => return out.absent(NAME, "s", &why),
    };
    eprintln!("  warm-up run: {warm:.2} s");
    if started.elapsed() + Duration::from_secs_f64(warm) > plan.sim_budget {
        // So slow that a second run does not fit: the warm-up run is the only sample.
        eprintln!(
            "note: {NAME}: one run takes {warm:.1} s, over the {} s budget: the warm-up run is \
             reported alone",
            plan.sim_budget.as_secs()
        );
        return out.figure(NAME, "s", summarize(&[warm]));
    }
    let mut walls: Vec<f64> = Vec::new();
    while walls.len() < plan.reps {
        if let Some(last) = walls.last() {
            if started.elapsed() + Duration::from_secs_f64(*last) > plan.sim_budget {
                eprintln!(
                    "note: {NAME}: the {} s budget allows {} repetition(s) after the warm-up",
                    plan.sim_budget.as_secs(),
                    walls.len()
                );
                break;
            }
        }
        match simulate::run_once(&bin, plan.sim_cap) {
            Ok(wall) => walls.push(wall),
            Err(why) => return out.absent(NAME, "s", &why),
        }
    }
    out.figure(NAME, "s", summarize(&walls));
}

// ===== anatomy =====

fn anatomy(plan: &Plan, out: &mut Reporter) {
    use anatomy::{Step, StepCaller};
    let rt = runtime();
    let plan = *plan;
    let (steps, stack) = rt.block_on(async move {
        let bare = calls::spawn_bare().await;
        let select = anatomy::spawn_select().await;
        let stack = StackCaller(calls::spawn_stack("anatomy-stack", 1).await);
        let mut steps: BTreeMap<Step, Vec<f64>> = BTreeMap::new();
        let mut stack_p50 = Vec::new();
        let n = Step::ALL.len() + 1;
        for rep in 0..=plan.reps {
            for k in 0..n {
                let i = (rep + k) % n;
                let v = match Step::ALL.get(i) {
                    Some(&step) => {
                        let caller = StepCaller {
                            step,
                            bare: bare.clone(),
                            select: select.clone(),
                        };
                        calls::p50_ns(caller, plan.calls).await
                    }
                    None => calls::p50_ns(stack.clone(), plan.calls).await,
                };
                if rep > 0 {
                    match Step::ALL.get(i) {
                        Some(&step) => steps.entry(step).or_default().push(v),
                        None => stack_p50.push(v),
                    }
                }
            }
        }
        bare.stop(None);
        select.stop(None);
        calls::stop_stack(&stack.0);
        (steps, stack_p50)
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    for (step, v) in &steps {
        out.figure(step.name(), "ns", summarize(v));
    }
    out.figure("anatomy_stack_p50_ns", "ns", summarize(&stack));
    out.figure(
        "anatomy_stack_vs_clocks_ratio",
        "ratio",
        summarize(&ratios(&stack, &steps[&Step::Clocks])),
    );

    let kinds = [
        ProbeKind::Bare,
        ProbeKind::Agent,
        ProbeKind::AgentSharedTimeout,
        ProbeKind::AgentShared,
    ];
    let mut bytes: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for rep in 0..=plan.mem_reps {
        for (i, kind) in kinds.iter().enumerate() {
            let p = memory::probe(*kind, plan.mem_count);
            if rep > 0 {
                bytes.entry(i).or_default().push(p.bytes_per);
            }
        }
    }
    let names = [
        "anatomy_bare_actor_idle_bytes",
        "anatomy_agent_idle_bytes",
        "anatomy_agent_shared_timeout_idle_bytes",
        "anatomy_agent_shared_breaker_timeout_idle_bytes",
    ];
    for (i, name) in names.iter().enumerate() {
        out.figure(name, "bytes", summarize(&bytes[&i]));
    }
}

// ===== profiling aid =====

#[cfg(not(feature = "cluster"))]
fn profile_remote(_subject: RemoteSubject, _seconds: f64) {
    eprintln!("--profile-remote needs the `cluster` feature");
    std::process::exit(2);
}

#[cfg(feature = "cluster")]
fn profile_remote(subject: RemoteSubject, seconds: f64) {
    use calls::Caller;
    let rt = runtime();
    rt.block_on(async move {
        let subjects = match remote::RemoteSubjects::start().await {
            Ok(subjects) => subjects,
            Err(why) => {
                eprintln!("{why}");
                std::process::exit(1);
            }
        };
        async fn run(mut caller: impl Caller, window: Duration) -> u64 {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < window {
                caller.call().await;
                n += 1;
            }
            n
        }
        let window = Duration::from_secs_f64(seconds);
        let (n, (p50, p99)) = match subject {
            RemoteSubject::Bare => (
                run(subjects.bare.clone(), window).await,
                calls::p50_p99_ns(subjects.bare.clone(), 5_000).await,
            ),
            RemoteSubject::Stack => (
                run(subjects.stack.clone(), window).await,
                calls::p50_p99_ns(subjects.stack.clone(), 5_000).await,
            ),
            RemoteSubject::Ingress => (
                run(subjects.ingress.clone(), window).await,
                calls::p50_p99_ns(subjects.ingress.clone(), 5_000).await,
            ),
        };
        println!(
            "remote {subject:?}: {n} sequential calls, {:.0} ns/call; then 5000 more: p50 \
             {p50:.0} ns, p99 {p99:.0} ns",
            window.as_nanos() as f64 / n as f64
        );
        subjects.stop_gracefully(Duration::from_secs(60));
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

fn profile(subject: Subject, seconds: f64, callers: usize) {
    let rt = runtime();
    rt.block_on(async move {
        let window = Duration::from_secs_f64(seconds);
        let subjects = Subjects {
            bare: BareCaller(calls::spawn_bare().await),
            stack: StackCaller(calls::spawn_stack("profile-stack-w1", 1).await),
            stack_w2: StackCaller(calls::spawn_stack("profile-stack-w2", 2).await),
            peer: PeerCaller(peer::peer_service(calls::spawn_bare().await)),
            reject: RejectCaller(calls::spawn_open_stack("profile-open").await),
        };
        let rate = subjects.throughput(subject, callers, window).await;
        println!(
            "{subject:?} with {callers} caller(s): {rate:.0} calls/s ({:.0} ns/call per caller)",
            1e9 * callers as f64 / rate
        );
        subjects.stop();
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
