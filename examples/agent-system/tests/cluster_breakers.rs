//! Cluster-wide breaker commands, end to end: three `agent-system node` processes in a full
//! mesh; `agent-system breaker force-open llm --cluster --addr <n1's control address>` puts
//! `llm` forced open on every node within 1 s; a fourth node started afterwards comes up
//! forced open from its first instant (it takes its peers' commands before it serves: the
//! first `/breakers` answer already says forced_open, and no task a caller sends it while it
//! starts runs on its `llm`-guarded agent); `reset --cluster`, sent through another
//! node, undoes it everywhere; a frozen node (SIGSTOP) is named as not acknowledging (exit 2)
//! and, once resumed, converges; a node joined to n2 only (unknown to n1) gets the command
//! from the periodic re-push.
#![cfg(feature = "cluster")]

mod cluster_common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agent_system::node::{WorkAgent, WorkTask};
use cluster_common::{NodeProcess, rand_suffix, start_node};
use ractor_resilience::cluster::{ClusterNode, NodeOptions, Remote, RemoteOptions, RemoteTask};
use ractor_resilience::core::backoff::RetryPolicy;
use serde_json::Value;

const CLUSTER: &str = "ops-test";

/// A task the caller sent: the node that ran it (`None`: refused or failed), the nodes tried.
type Sent = (Option<String>, Vec<String>);

/// `agent-system ARGS` to its exit (killed after `bound`): exit code, stdout, stderr.
fn cli(args: &[&str], bound: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-system"))
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent-system starts");
    let until = Instant::now() + bound;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agent-system {args:?} still running after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<Value> {
    agent_system::control::request(addr, "GET", path).ok()
}

/// The state of breaker `name` on the node serving control at `addr`.
fn state(addr: SocketAddr, name: &str) -> Option<String> {
    get(addr, "/breakers")?
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)
        .and_then(|b| b["state"].as_str().map(str::to_owned))
}

/// Waits (at most `bound`) until every node sees every other with a session up and its
/// breaker control in the group.
fn wait_mesh(nodes: &[(&str, &NodeProcess)], bound: Duration) {
    let t0 = Instant::now();
    loop {
        let meshed = nodes.iter().all(|(me, node)| {
            let Some(view) = get(node.control, "/cluster/nodes") else {
                return false;
            };
            nodes
                .iter()
                .filter(|(other, _)| other != me)
                .all(|(other, _)| {
                    view["nodes"].as_array().into_iter().flatten().any(|n| {
                        n["name"] == *other && n["connected"] == true && n["control"] == true
                    })
                })
        });
        if meshed {
            return;
        }
        assert!(t0.elapsed() < bound, "no full mesh within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `bound`) until `name` is in `want` on every node; how long it took.
fn wait_state(nodes: &[&NodeProcess], name: &str, want: &str, bound: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let states: Vec<Option<String>> = nodes.iter().map(|n| state(n.control, name)).collect();
        if states.iter().all(|s| s.as_deref() == Some(want)) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < bound,
            "`{name}` not {want} everywhere within {bound:?}: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `GET /health` of the node serving control at `addr` (whatever its status code).
fn health(addr: SocketAddr) -> Option<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Waits (at most `bound`) until `/health` of `addr` satisfies `ok`.
fn wait_health(addr: SocketAddr, bound: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let h = health(addr);
        if let Some(h) = h.as_ref().filter(|h| ok(h)) {
            return h.clone();
        }
        assert!(
            t0.elapsed() < bound,
            "/health not as expected within {bound:?}: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listed(h: &Value, key: &str, what: &str) -> bool {
    h[key].as_array().into_iter().flatten().any(|v| v == what)
}

fn signal(node: &NodeProcess, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &node.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig}");
}

#[test]
fn force_open_reaches_every_node_and_late_joiners_reset_undoes_it() {
    let started = Instant::now();
    let cookie = format!("ops-test-{}-{}", std::process::id(), rand_suffix());
    let n1 = start_node("n1", CLUSTER, &cookie, &[]);
    let a1 = n1.addr.to_string();
    let n2 = start_node("n2", CLUSTER, &cookie, &["--join", &a1]);
    let a2 = n2.addr.to_string();
    let n3 = start_node("n3", CLUSTER, &cookie, &["--join", &a1, "--join", &a2]);
    let a3 = n3.addr.to_string();
    wait_mesh(
        &[("n1", &n1), ("n2", &n2), ("n3", &n3)],
        Duration::from_secs(10),
    );
    assert_eq!(state(n1.control, "llm").as_deref(), Some("closed"));

    // Force open through n1: every live node answers, forced open.
    let t0 = Instant::now();
    let c1 = n1.control.to_string();
    let (code, out, err) = cli(
        &["breaker", "force-open", "llm", "--cluster", "--addr", &c1],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    for name in ["n1", "n2", "n3"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.ends_with("force-open -> forced_open")),
            "{name} acknowledged: {out}"
        );
    }
    wait_state(
        &[&n1, &n2, &n3],
        "llm",
        "forced_open",
        Duration::from_secs(1),
    );
    let everywhere = t0.elapsed();
    assert!(
        everywhere < Duration::from_secs(1),
        "forced open everywhere after {everywhere:?}"
    );
    eprintln!(
        "force-open --cluster: forced open on 3 nodes {everywhere:?} after the command started"
    );

    // A node that joins afterwards starts forced open, from its first instant. A caller (this
    // process, a node of its own that n4 joins first) sends `work` tasks — guarded by each
    // node's `llm` breaker — all along while n4 starts: every node refuses them (llm forced
    // open), and n4 must too, from the moment its agent can be reached.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let caller = rt
        .block_on(ClusterNode::start(
            NodeOptions::new("caller", cookie.clone()).with_cluster(CLUSTER),
        ))
        .expect("the caller's node starts");
    let ac = caller.local_addr().to_string();
    for node in [&n1, &n2, &n3] {
        rt.block_on(caller.connect(node.addr))
            .expect("the caller dials");
    }
    let group = ractor_resilience::cluster::group_name("work");
    let ready_by = Instant::now() + Duration::from_secs(10);
    while ractor::pg::get_scoped_members(&CLUSTER.to_string(), &group).len() < 3
        || caller.nodes().iter().filter(|n| n.connected).count() < 3
    {
        assert!(Instant::now() < ready_by, "the caller sees no 3 replicas");
        std::thread::sleep(Duration::from_millis(10));
    }
    let agent = rt
        .block_on(
            Remote::<WorkAgent>::builder(&caller, "work", RemoteOptions::default())
                .workers(16)
                .max_pending(1024)
                .retry_policy(
                    "work",
                    RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
                )
                .spawn(),
        )
        .expect("the remote agent spawns");
    // The refusals are the replicas' (ignored by it), but the caller's own breaker is not what
    // is tested here.
    agent
        .breaker()
        .disable()
        .expect("the caller's agent breaker runs");
    let sending = Arc::new(AtomicBool::new(true));
    // (node that ran it, or None) and the nodes tried, per task.
    let outcomes: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (agent, sending, outcomes) = (agent.clone(), sending.clone(), outcomes.clone());
            rt.spawn(async move {
                let mut id = 0;
                while sending.load(Ordering::Acquire) {
                    id += 1;
                    let task = RemoteTask::new(WorkTask { id, work_ms: 1 });
                    let result = agent.call(task.clone()).await;
                    let ran_on = result.ok().map(|done| done.node);
                    outcomes.lock().unwrap().push((ran_on, task.tried()));
                    // Refusals come back at once: do not spin.
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        })
        .collect();
    let n4 = start_node(
        "n4",
        CLUSTER,
        &cookie,
        &["--join", &ac, "--join", &a1, "--join", &a2, "--join", &a3],
    );
    // Its very first answer.
    assert_eq!(
        state(n4.control, "llm").as_deref(),
        Some("forced_open"),
        "the late joiner serves forced open from its first answer"
    );
    // Keep sending until n4's agent has been tried a while.
    let t0 = Instant::now();
    loop {
        let tried_n4 = outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, tried)| tried.iter().any(|n| n == "n4"))
            .count();
        if tried_n4 >= 20 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the caller sent only {tried_n4} tasks to n4 within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sending.store(false, Ordering::Release);
    for sender in senders {
        rt.block_on(sender).expect("a sender task");
    }
    let outcomes = outcomes.lock().unwrap();
    let ran: Vec<&String> = outcomes.iter().filter_map(|(n, _)| n.as_ref()).collect();
    assert!(
        ran.is_empty(),
        "with llm forced open everywhere no task may run, but {} ran (on {:?})",
        ran.len(),
        ran
    );
    eprintln!(
        "late joiner n4: forced open at its first answer; {} tasks sent while it started, none ran",
        outcomes.len()
    );
    drop(outcomes);
    agent.stop();
    caller.stop();
    rt.shutdown_timeout(Duration::from_secs(1));

    // Reset through another node undoes it everywhere (a later epoch wins).
    wait_mesh(
        &[("n1", &n1), ("n2", &n2), ("n3", &n3), ("n4", &n4)],
        Duration::from_secs(10),
    );
    let c2 = n2.control.to_string();
    let (code, out, err) = cli(
        &["breaker", "reset", "llm", "--cluster", "--addr", &c2],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with("reset -> closed"))
            .count(),
        4,
        "four acknowledgements (the caller that left is listed down): {out}"
    );
    wait_state(
        &[&n1, &n2, &n3, &n4],
        "llm",
        "closed",
        Duration::from_secs(1),
    );

    // A node outside the mesh (joined to n2 only: n1 does not know it) gets what n1 sends from
    // n2's periodic re-push.
    let n5 = start_node("n5", CLUSTER, &cookie, &["--join", &a2]);
    wait_mesh(&[("n2", &n2), ("n5", &n5)], Duration::from_secs(10));

    // A frozen node does not acknowledge: named, exit 2; the others are disabled.
    signal(&n3, "-STOP");
    let (code, out, err) = cli(
        &["breaker", "disable", "llm", "--cluster", "--addr", &c1],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("no acknowledgement") && err.contains("n3"),
        "names n3: {err}"
    );
    assert!(
        !err.contains("n1") && !err.contains("n2") && !err.contains("n4"),
        "{err}"
    );
    assert!(!out.contains("n5"), "n1 has no session with n5: {out}");
    // n1's probes find the frozen node: its node breaker is open in n1's /health.
    let h = wait_health(n1.control, Duration::from_secs(3), |h| {
        listed(h, "open_breakers", "node:n3")
    });
    assert_eq!(h["status"], "degraded", "{h}");
    wait_state(&[&n1, &n2, &n4], "llm", "disabled", Duration::from_secs(1));
    // Resumed, it converges (it got the command late, or the next re-push).
    signal(&n3, "-CONT");
    wait_state(&[&n3], "llm", "disabled", Duration::from_secs(5));
    let relayed = wait_state(&[&n5], "llm", "disabled", Duration::from_secs(5));
    eprintln!("n5 (joined to n2 only): disabled by the re-push, seen after {relayed:?}");

    // A killed node is listed down in the others' /health.
    let mut n4 = n4;
    n4.child.kill().expect("kill -9 n4");
    let h = wait_health(n2.control, Duration::from_secs(3), |h| {
        listed(h, "nodes_down", "n4")
    });
    assert!(listed(&h, "open_breakers", "node:n4"), "{h}");

    // An unknown breaker is refused by the node asked, nothing is sent.
    let (code, _, err) = cli(
        &["breaker", "force-open", "nope", "--cluster", "--addr", &c1],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown breaker"), "{err}");

    drop((n1, n2, n3, n4, n5));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
