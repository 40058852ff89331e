//! `agent-system node` as a process: what it refuses to start with, and a slow replica seen
//! from a caller (this test process, its one node server): an attempt that outlives the
//! caller's attempt timeout is reported as a timeout — never as node loss, because ractor's own
//! call timeout is the attempt's time left plus a grace — and leaves the node breaker closed.
#![cfg(feature = "cluster")]

mod cluster_common;

use std::time::{Duration, Instant};

use agent_system::node::{COOKIE_ENV, WorkAgent, WorkTask};
use cluster_common::{rand_suffix, run_to_exit, start_node};
use ractor_resilience::agent::{CallError, CallOptions};
use ractor_resilience::cluster::{ClusterNode, NodeOptions, Remote, RemoteOptions, RemoteTask};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState};
use ractor_resilience::timeout::TimeoutPolicy;

#[test]
fn a_non_loopback_listen_address_needs_the_flag() {
    let (status, stderr) = run_to_exit(
        &["node", "--listen", "0.0.0.0:0", "--lifetime", "1s"],
        &[(COOKIE_ENV, "c")],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
}

#[test]
fn a_non_loopback_control_address_needs_the_flag() {
    let (status, stderr) = run_to_exit(
        &["node", "--control-addr", "0.0.0.0:0", "--lifetime", "1s"],
        &[(COOKIE_ENV, "c")],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
}

#[test]
fn a_node_without_a_cookie_does_not_start() {
    let (status, stderr) = run_to_exit(&["node", "--lifetime", "1s"], &[], Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(COOKIE_ENV), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_replica_is_a_timeout_not_a_lost_node() {
    let started = Instant::now();
    let cookie = format!("slow-test-{}-{}", std::process::id(), rand_suffix());
    let node = start_node("s1", "slow-test", &cookie, &[]);
    let caller = ClusterNode::start(NodeOptions::new("caller", cookie).with_cluster("slow-test"))
        .await
        .expect("caller node starts");
    caller.connect(node.addr).await.expect("dial");
    let group = ractor_resilience::cluster::group_name("work");
    let ready_by = Instant::now() + Duration::from_secs(10);
    while ractor::pg::get_scoped_members(&"slow-test".to_string(), &group).is_empty()
        || caller.node_breaker("s1").is_none()
    {
        assert!(Instant::now() < ready_by, "no replica after 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The replica breaker opens on the 4th consecutive failure: the 4 timeouts below.
    let opts = RemoteOptions {
        replica_breaker: BreakerSettings::builder()
            .with_max_failures(4)
            .build()
            .unwrap(),
        ..RemoteOptions::default()
    };
    let agent = Remote::<WorkAgent>::builder(&caller, "work", opts)
        .workers(8)
        .timeout_policy("work", TimeoutPolicy::Fixed(Duration::from_millis(150)))
        .retry_policy(
            "work",
            RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
        )
        .breaker_settings(
            "work",
            BreakerSettings::builder()
                .with_max_failures(100)
                .build()
                .unwrap(),
        )
        .spawn()
        .await
        .expect("remote agent spawns");

    // A fast task first: the replica answers.
    let ok = agent
        .call_with(
            RemoteTask::new(WorkTask { id: 0, work_ms: 1 }),
            CallOptions::default().with_deadline(Duration::from_secs(2)),
        )
        .await
        .expect("a fast task succeeds");
    assert_eq!(ok.node, "s1");

    let slow = (1..=4).map(|id| {
        let agent = agent.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let result = agent
                .call_with(
                    RemoteTask::new(WorkTask { id, work_ms: 2_000 }),
                    CallOptions::default().with_deadline(Duration::from_secs(5)),
                )
                .await;
            (result, t0.elapsed())
        })
    });
    for joined in slow.collect::<Vec<_>>() {
        let (result, took) = joined.await.unwrap();
        assert!(
            matches!(result, Err(CallError::TimedOut { attempts: 1, .. })),
            "a timeout, not node loss: {result:?}"
        );
        assert!(
            took < Duration::from_millis(1_000),
            "ended by the attempt timeout: {took:?}"
        );
    }
    let n = caller.node_breaker("s1").expect("s1's node breaker");
    assert_eq!(
        n.state(),
        BreakerState::Closed,
        "a slow node is not a lost node"
    );
    let replica = caller
        .replica_breaker("work", "s1")
        .expect("the replica breaker was used");
    let status = replica.status().await.expect("replica breaker status");
    assert_eq!(status.outcomes, 5, "every attempt counted once: {status:?}");
    assert_eq!(
        status.state,
        BreakerState::Open,
        "the 4 timeouts count against the replica: {status:?}"
    );
    // A node's /health lists the open replica breaker, not the (closed) node breaker.
    let mut h = agent_system::exporter::health(&[]);
    agent_system::exporter::cluster_health(&mut h, &caller);
    assert_eq!(h.open_breakers, vec!["work@s1".to_owned()], "{h:?}");
    assert!(h.nodes_down.is_empty(), "{h:?}");
    assert_eq!(h.status, "degraded");
    agent.stop();
    caller.stop();
    drop(node);
    assert!(started.elapsed() < Duration::from_secs(30));
}
