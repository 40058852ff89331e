//! Node loss across real processes: three `agent-system node` children on 127.0.0.1 (port 0,
//! addresses read from their banners) serve the `work` agent; this test process is the caller
//! (its one node server) and sends 1200 tasks through the usual stack (timeout, retry, agent
//! breaker) to the replicas, 90 at a time, with about 30 in flight on node n2 when it is
//! killed with SIGKILL.
//!
//! Asserted: the caller's node breaker for n2 opens within 2 s of the kill (event-driven: in
//! milliseconds), every task has exactly one outcome and succeeds, the attempts in flight on
//! n2 end as node-loss failures and are retried on n1/n3, and the agent breaker stays closed.
//! Every wait is bounded; the children are killed on drop; the test takes a few seconds.
#![cfg(feature = "cluster")]

mod cluster_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_system::node::{WorkAgent, WorkDone, WorkTask};
use cluster_common::{NodeProcess, rand_suffix, start_node};
use ractor_resilience::agent::{AttemptError, CallError, CallOptions};
use ractor_resilience::cluster::{ClusterNode, NodeOptions, Remote, RemoteError, RemoteOptions};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::timeout::TimeoutPolicy;
use tokio::sync::Semaphore;

const TASKS: u64 = 1200;
const KILL_AT: u64 = 500;
const IN_FLIGHT: usize = 90;
const WORK_MS: u64 = 100;

/// How one task ended, and where its attempts went.
struct Ended {
    result: Result<WorkDone, CallError<RemoteError<agent_system::node::WorkError>>>,
    tried: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_mid_run_opens_its_breaker_at_once_and_loses_no_task() {
    let test_started = Instant::now();
    let cookie = format!("kill-test-{}-{}", std::process::id(), rand_suffix());
    let nodes: Vec<NodeProcess> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| start_node(name, "kill-test", &cookie, &[]))
        .collect();

    let caller = ClusterNode::start(NodeOptions::new("caller", cookie).with_cluster("kill-test"))
        .await
        .expect("caller node starts");
    for node in &nodes {
        caller.connect(node.addr).await.expect("dial");
    }
    // Bounded wait: three replicas of `work`, on three ready sessions.
    let group = ractor_resilience::cluster::group_name("work");
    let ready_by = Instant::now() + Duration::from_secs(10);
    loop {
        let members = ractor::pg::get_scoped_members(&"kill-test".to_string(), &group);
        let connected = caller.nodes().iter().filter(|n| n.connected).count();
        if members.len() == 3 && connected == 3 {
            break;
        }
        assert!(
            Instant::now() < ready_by,
            "cluster not ready: {} members, nodes {:?}",
            members.len(),
            caller.nodes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Errors of failed attempts, by node (the retry hook sees every retried one).
    let retried: Arc<Mutex<Vec<AttemptError<RemoteError<agent_system::node::WorkError>>>>> =
        Arc::default();
    let seen = retried.clone();
    let agent = Remote::<WorkAgent>::builder(&caller, "work", RemoteOptions::default())
        .workers(IN_FLIGHT + 4)
        .max_pending(2 * TASKS as usize)
        .timeout_policy("work", TimeoutPolicy::Fixed(Duration::from_secs(2)))
        .retry_policy(
            "work",
            RetryPolicy::builder()
                .with_max_attempts(3)
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20))
                .build()
                .unwrap(),
        )
        .on_retry(move |_, error, _| seen.lock().unwrap().push(error.clone()))
        .spawn()
        .await
        .expect("remote agent spawns");

    // Watch the n2 node breaker and the agent breaker from the moment of the kill.
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let n2_open_after: Arc<Mutex<Option<Duration>>> = Arc::default();
    let agent_breaker_left_closed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (killed_at, n2_open_after) = (killed_at.clone(), n2_open_after.clone());
        let (left, done) = (agent_breaker_left_closed.clone(), done.clone());
        let n2 = caller.node_breaker("n2").expect("n2 has a node breaker");
        let agent_breaker = agent.breaker().clone();
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                if agent_breaker.state() != BreakerState::Closed {
                    left.store(true, Ordering::Release);
                }
                let killed = *killed_at.lock().unwrap();
                if let Some(at) = killed {
                    let mut open = n2_open_after.lock().unwrap();
                    if open.is_none() && n2.state() == BreakerState::Open {
                        *open = Some(at.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    let mut nodes = nodes;
    let mut n2 = Some(nodes.remove(1));
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let ended: Arc<Mutex<HashMap<u64, Vec<Ended>>>> = Arc::default();
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..TASKS {
        let permit = permits.clone().acquire_owned().await.unwrap();
        if id == KILL_AT {
            let mut victim = n2.take().expect("n2 still running");
            victim.child.kill().expect("kill -9 n2");
            *killed_at.lock().unwrap() = Some(Instant::now());
            let _ = victim.child.wait();
            drop(victim);
        }
        issued.fetch_add(1, Ordering::Relaxed);
        let (agent, ended) = (agent.clone(), ended.clone());
        tasks.spawn(async move {
            let task = ractor_resilience::cluster::RemoteTask::new(WorkTask {
                id,
                work_ms: WORK_MS,
            });
            let kept = task.clone();
            let opts = CallOptions::default().with_deadline(Duration::from_secs(5));
            let result = agent.call_with(task, opts).await;
            drop(permit);
            ended.lock().unwrap().entry(id).or_default().push(Ended {
                result,
                tried: kept.tried(),
            });
        });
    }
    // Bounded: every task has a 5 s deadline; give the set 15 s in all.
    let all_ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("task does not panic");
        }
    })
    .await;
    done.store(true, Ordering::Release);
    let _ = watcher.await;
    assert!(all_ended.is_ok(), "tasks still pending after 15 s");

    // Every task: exactly one outcome, a success.
    let ended = std::mem::take(&mut *ended.lock().unwrap());
    assert_eq!(issued.load(Ordering::Relaxed), TASKS);
    assert_eq!(ended.len() as u64, TASKS, "a task without an outcome");
    let mut by_node: HashMap<String, u64> = HashMap::new();
    let mut rerouted_from_n2 = 0;
    for (id, outcomes) in &ended {
        assert_eq!(outcomes.len(), 1, "task {id}: {} outcomes", outcomes.len());
        let Ended { result, tried } = &outcomes[0];
        let done = match result {
            Ok(done) => done,
            Err(e) => panic!("task {id} failed: {e} (tried {tried:?})"),
        };
        assert_eq!(done.id, *id);
        assert_eq!(
            tried.last(),
            Some(&done.node),
            "task {id}: answered by its last replica"
        );
        *by_node.entry(done.node.clone()).or_default() += 1;
        if tried.len() > 1 && tried[0] == "n2" {
            rerouted_from_n2 += 1;
            assert!(
                tried[1..].iter().all(|n| n != "n2"),
                "task {id}: a retry went back to the lost node: {tried:?}"
            );
        }
    }
    // The attempts in flight on n2 ended as node loss, and were retried elsewhere.
    let retried = std::mem::take(&mut *retried.lock().unwrap());
    let lost_on_n2 = retried
        .iter()
        .filter(|e| {
            matches!(e, AttemptError::Agent(RemoteError::NodeLost { node, resend: true }) if node == "n2")
        })
        .count();
    let other: Vec<_> = retried
        .iter()
        .filter(|e| !matches!(e, AttemptError::Agent(RemoteError::NodeLost { .. })))
        .collect();
    let open_after = n2_open_after
        .lock()
        .unwrap()
        .expect("n2's node breaker never opened");
    eprintln!(
        "cluster_kill: {TASKS} tasks, by node {by_node:?}; {lost_on_n2} attempts lost on n2, {rerouted_from_n2} tasks re-routed from n2; n2 breaker open {open_after:?} after the kill; other retried errors {}; {:?} in all",
        other.len(),
        test_started.elapsed()
    );
    assert!(
        open_after < Duration::from_secs(2),
        "n2 open after {open_after:?}"
    );
    assert!(
        lost_on_n2 >= 10,
        "only {lost_on_n2} attempts were in flight on n2"
    );
    assert_eq!(
        rerouted_from_n2, lost_on_n2,
        "every lost attempt was retried elsewhere"
    );
    assert!(other.is_empty(), "retried for other reasons: {other:?}");
    assert!(
        !agent_breaker_left_closed.load(Ordering::Acquire),
        "the agent breaker left Closed"
    );
    assert_eq!(agent.breaker().state(), BreakerState::Closed);
    assert!(
        by_node.get("n2").copied().unwrap_or(0) > 0,
        "n2 served before the kill"
    );
    assert!(
        by_node.get("n1").copied().unwrap_or(0) > 0 && by_node.get("n3").copied().unwrap_or(0) > 0
    );
    assert_eq!(agent.inflight(), 0);
    agent.stop();
    caller.stop();
    drop(nodes);
    assert!(
        test_started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        test_started.elapsed()
    );
}
