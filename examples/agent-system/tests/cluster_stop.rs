//! A frozen node (SIGSTOP: its TCP connection stays up, no session event ever comes): three
//! `agent-system node` children serve the `work` agent, this test process calls them with 60
//! tasks in flight, freezes n2, and resumes it once its node breaker has opened.
//!
//! Asserted: the probes open n2's node breaker within 2 s of the freeze; the attempts stuck on
//! n2 end as timeouts (never as node loss) and are retried on n1/n3; every task has exactly one
//! outcome, a success; after SIGCONT, n2 is probed and serves tasks again without a restart.
//! Every wait is bounded; children are resumed and killed on drop.
#![cfg(feature = "cluster")]

mod cluster_common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_system::node::{WorkAgent, WorkError, WorkTask};
use cluster_common::{rand_suffix, start_node};
use ractor_resilience::agent::{AttemptError, CallOptions};
use ractor_resilience::cluster::{
    ClusterNode, NodeOptions, Remote, RemoteError, RemoteOptions, RemoteTask,
};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::timeout::TimeoutPolicy;
use tokio::sync::Semaphore;

const IN_FLIGHT: usize = 60;

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Resumes a stopped child before it is killed (a stopped process still dies of SIGKILL, but
/// resume it anyway so nothing is left stopped if the kill fails).
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_found_by_probes_reports_timeouts_and_comes_back() {
    let started = Instant::now();
    let cookie = format!("stop-test-{}-{}", std::process::id(), rand_suffix());
    let nodes: Vec<_> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| start_node(name, "stop-test", &cookie, &[]))
        .collect();
    let n2_pid = nodes[1].child.id();
    let _resume = Resume(n2_pid);

    let caller = ClusterNode::start(NodeOptions::new("caller", cookie).with_cluster("stop-test"))
        .await
        .expect("caller node starts");
    for node in &nodes {
        caller.connect(node.addr).await.expect("dial");
    }
    let group = ractor_resilience::cluster::group_name("work");
    wait_until("three replicas", Duration::from_secs(10), || {
        ractor::pg::get_scoped_members(&"stop-test".to_string(), &group).len() == 3
            && caller.nodes().iter().filter(|n| n.connected).count() == 3
    })
    .await;

    let retried: Arc<Mutex<Vec<AttemptError<RemoteError<WorkError>>>>> = Arc::default();
    let seen = retried.clone();
    let opts = RemoteOptions {
        // Short enough that n2 is used again within the test once it answers.
        replica_breaker: BreakerSettings::builder()
            .with_max_failures(5)
            .with_open_duration(Duration::from_millis(500))
            .build()
            .unwrap(),
        ..RemoteOptions::default()
    };
    let agent = Remote::<WorkAgent>::builder(&caller, "work", opts)
        .workers(IN_FLIGHT + 4)
        .max_pending(4 * IN_FLIGHT)
        .timeout_policy("work", TimeoutPolicy::Fixed(Duration::from_millis(400)))
        .retry_policy(
            "work",
            RetryPolicy::builder()
                .with_max_attempts(3)
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20))
                .build()
                .unwrap(),
        )
        // Not under test here (timeouts count against it, as they should).
        .breaker_settings(
            "work",
            BreakerSettings::builder()
                .with_max_failures(10_000)
                .build()
                .unwrap(),
        )
        .on_retry(move |_, error, _| seen.lock().unwrap().push(error.clone()))
        .spawn()
        .await
        .expect("remote agent spawns");

    // The driver: tasks with IN_FLIGHT at a time until told to stop.
    let stop_issuing = Arc::new(AtomicBool::new(false));
    let resumed = Arc::new(AtomicBool::new(false));
    let served_after_resume = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let driver = {
        let (agent, stop_issuing) = (agent.clone(), stop_issuing.clone());
        let (resumed, served) = (resumed.clone(), served_after_resume.clone());
        let (outcomes, failures) = (outcomes.clone(), failures.clone());
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut tasks = tokio::task::JoinSet::new();
            let mut id = 0u64;
            while !stop_issuing.load(Ordering::Acquire) && id < 50_000 {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let (agent, resumed, served) = (agent.clone(), resumed.clone(), served.clone());
                let (outcomes, failures) = (outcomes.clone(), failures.clone());
                tasks.spawn(async move {
                    let opts = CallOptions::default().with_deadline(Duration::from_secs(5));
                    let task = RemoteTask::new(WorkTask { id, work_ms: 50 });
                    let result = agent.call_with(task, opts).await;
                    drop(permit);
                    *outcomes.lock().unwrap().entry(id).or_default() += 1;
                    match result {
                        Ok(done) if done.node == "n2" && resumed.load(Ordering::Acquire) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => failures.lock().unwrap().push(format!("task {id}: {e}")),
                    }
                });
                id += 1;
            }
            while let Some(joined) = tasks.join_next().await {
                joined.expect("task does not panic");
            }
            id
        })
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    let n2 = caller.node_breaker("n2").expect("n2's node breaker");
    assert_eq!(n2.state(), BreakerState::Closed);
    signal(n2_pid, "-STOP");
    let open_after = wait_until("n2's node breaker open", Duration::from_secs(2), || {
        n2.state() == BreakerState::Open
    })
    .await;
    assert!(
        caller.nodes().iter().any(|n| n.name == "n2" && n.connected),
        "a frozen node is not a lost one: its session stays up"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(n2_pid, "-CONT");
    resumed.store(true, Ordering::Release);
    let back_after = wait_until("n2 serving again", Duration::from_secs(10), || {
        served_after_resume.load(Ordering::Relaxed) >= 5
    })
    .await;
    stop_issuing.store(true, Ordering::Release);
    let issued = tokio::time::timeout(Duration::from_secs(15), driver)
        .await
        .expect("every task ends within 15 s")
        .expect("driver does not panic");

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    assert_eq!(outcomes.len() as u64, issued, "a task without an outcome");
    assert!(
        outcomes.values().all(|n| *n == 1),
        "a task with two outcomes"
    );
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let retried = std::mem::take(&mut *retried.lock().unwrap());
    let timeouts = retried
        .iter()
        .filter(|e| matches!(e, AttemptError::TimedOut { .. }))
        .count();
    let lost = retried
        .iter()
        .filter(|e| matches!(e, AttemptError::Agent(RemoteError::NodeLost { .. })))
        .count();
    eprintln!(
        "cluster_stop: {issued} tasks; n2 breaker open {open_after:?} after SIGSTOP; {timeouts} attempts timed out and were retried, {lost} node-loss errors; n2 served again {back_after:?} after SIGCONT; {:?} in all",
        started.elapsed()
    );
    assert!(open_after < Duration::from_secs(2));
    assert!(timeouts >= 1, "attempts stuck on the frozen node time out");
    assert_eq!(
        lost, 0,
        "a frozen node's timeouts are timeouts, not node loss"
    );
    assert_eq!(
        n2.state(),
        BreakerState::Closed,
        "n2 probed and closed again"
    );
    agent.stop();
    caller.stop();
    drop(nodes);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
