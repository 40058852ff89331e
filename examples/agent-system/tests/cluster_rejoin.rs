//! A restarted node comes back by itself: the caller (this test process) dialled n1 and n2;
//! n2 is killed with SIGKILL and started again on the same address (a port picked free at run
//! time, not a fixed one). The caller re-dials it with backoff — the test never dials again —
//! and, once n2's node breaker has let a probe call through, n2 serves tasks again.
#![cfg(feature = "cluster")]

mod cluster_common;

use std::time::{Duration, Instant};

use agent_system::node::{WorkAgent, WorkTask};
use cluster_common::{rand_suffix, start_node, start_node_at};
use ractor_resilience::agent::{AgentHandle, CallOptions};
use ractor_resilience::cluster::{ClusterNode, NodeOptions, Remote, RemoteOptions, RemoteTask};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::timeout::TimeoutPolicy;

/// Calls until a task is answered by `node` (bounded by `bound`); how long that took.
async fn until_served_by(agent: &AgentHandle<Remote<WorkAgent>>, node: &str, bound: Duration) {
    let t0 = Instant::now();
    let mut id = 0;
    loop {
        id += 1;
        let task = RemoteTask::new(WorkTask { id, work_ms: 1 });
        let opts = CallOptions::default().with_deadline(Duration::from_secs(2));
        if let Ok(done) = agent.call_with(task, opts).await {
            if done.node == node {
                return;
            }
        }
        assert!(
            t0.elapsed() < bound,
            "{node} did not serve within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_redialled_and_serves_again() {
    let started = Instant::now();
    let cookie = format!("rejoin-test-{}-{}", std::process::id(), rand_suffix());
    let n2_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").to_string()
    };
    let n1 = start_node("n1", "rejoin-test", &cookie, &[]);
    let mut n2 = start_node_at("n2", "rejoin-test", &cookie, &n2_addr, &[]);

    let caller =
        ClusterNode::start(NodeOptions::new("caller", cookie.clone()).with_cluster("rejoin-test"))
            .await
            .expect("caller node starts");
    caller.connect(n1.addr).await.expect("dial n1");
    caller.connect(n2.addr).await.expect("dial n2");
    let connected = |name: &str| caller.nodes().iter().any(|n| n.name == name && n.connected);
    let t0 = Instant::now();
    while !(connected("n1") && connected("n2")) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not connected: {:?}",
            caller.nodes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let agent = Remote::<WorkAgent>::builder(&caller, "work", RemoteOptions::default())
        .workers(4)
        .timeout_policy("work", TimeoutPolicy::Fixed(Duration::from_millis(500)))
        .retry_policy(
            "work",
            RetryPolicy::builder().with_max_attempts(3).build().unwrap(),
        )
        .spawn()
        .await
        .expect("remote agent spawns");
    until_served_by(&agent, "n2", Duration::from_secs(10)).await;

    n2.child.kill().expect("kill -9 n2");
    let _ = n2.child.wait();
    let breaker = caller.node_breaker("n2").expect("n2's node breaker");
    let t0 = Instant::now();
    while breaker.state() != BreakerState::Open {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "n2's breaker did not open"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(n2);
    // Meanwhile n1 serves.
    until_served_by(&agent, "n1", Duration::from_secs(5)).await;

    let restarted = Instant::now();
    let _n2 = start_node_at("n2", "rejoin-test", &cookie, &n2_addr, &[]);
    while !connected("n2") {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "n2 not re-dialled: {:?}",
            caller.nodes()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reconnected = restarted.elapsed();
    until_served_by(&agent, "n2", Duration::from_secs(10)).await;
    let serving = restarted.elapsed();
    eprintln!(
        "cluster_rejoin: n2 re-dialled {reconnected:?} after its restart, serving again after {serving:?}; {:?} in all",
        started.elapsed()
    );
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "n2's node breaker closed again"
    );
    agent.stop();
    caller.stop();
    drop(n1);
    assert!(started.elapsed() < Duration::from_secs(30));
}
