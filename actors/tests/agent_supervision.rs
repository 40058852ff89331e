//! Supervision on tokio's paused clock: a worker that panics mid-task is restarted after its
//! backoff and the task is retried; too many crashes stop the supervisor and tell its parent.

mod scripted;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_resilience::agent::{
    AgentBuilder, AgentMsg, AttemptError, CallError, SupervisionSettings,
};
use ractor_resilience::core::breaker::BreakerSettings;
use scripted::{Script, Seen, Step, ms, never_trips, no_jitter, observed, quiet};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn supervision(max_restarts: u32) -> SupervisionSettings {
    SupervisionSettings {
        min_backoff: ms(100),
        max_backoff: Duration::from_secs(5),
        reset_after: Duration::from_secs(30),
        max_restarts,
        restart_window: Duration::from_secs(60),
    }
}

async fn status<A: ractor_resilience::agent::Agent>(
    actor: &ActorRef<AgentMsg<A>>,
) -> ractor_resilience::agent::SupervisorStatus {
    ractor::call!(actor, AgentMsg::Status).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_panicking_worker_is_restarted_after_its_backoff_and_the_task_retried() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("phoenix", make)
        .workers(1)
        .retry_policy("p", no_jitter(3, 200))
        .breaker_settings("b", never_trips())
        .supervision(supervision(5))
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let task = Script::new(&[(10, Step::Panic), (10, Step::Ok)]);
    assert_eq!(agent.call(task).await, Ok(0));
    let mut attempts = Vec::new();
    while let Ok(Seen::Started { attempt, at, .. }) = seen.try_recv() {
        attempts.push((attempt, (at - t0).as_millis()));
    }
    // Crash at 10 ms; restart at 10 + 100 ms; retry at 10 + 200 ms on the new worker.
    assert_eq!(attempts, vec![(1, 0), (2, 210)]);
    let s = status(agent.actor()).await;
    assert_eq!((s.restarts, s.live_workers, s.tasks), (1, 1, 0));
    // Each worker counts its own attempts: the crashed one's count outlives it.
    let stats = agent.stats();
    assert_eq!((stats.attempts, stats.retries), (2, 1));
    let timeouts = agent.timeout_status().await.unwrap();
    assert_eq!(
        (timeouts.samples, timeouts.successes),
        (1, 1),
        "the crash is no sample"
    );
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn restart_backoff_grows_then_resets_after_a_stable_period() {
    let agent = AgentBuilder::new("backoff", quiet)
        .workers(1)
        .retry_policy("p", no_jitter(1, 10))
        .breaker_settings("b", never_trips())
        .supervision(supervision(100))
        .spawn()
        .await
        .unwrap();
    let mut restarted_after = Vec::new();
    for _ in 0..3 {
        let crash = Instant::now();
        let result = agent.call(Script::new(&[(0, Step::Panic)])).await;
        assert_eq!(
            result,
            Err(CallError::Failed {
                attempts: 1,
                source: AttemptError::WorkerLost
            })
        );
        // Poll (on the paused clock) until the worker is back.
        while status(agent.actor()).await.live_workers == 0 {
            tokio::time::sleep(ms(1)).await;
        }
        restarted_after.push(crash.elapsed().as_millis());
    }
    // 100 ms, 200 ms, 400 ms (+0–25% jitter each, checked as ranges).
    for (got, base) in restarted_after.iter().zip([100u128, 200, 400]) {
        assert!(
            (base..=base * 5 / 4 + 1).contains(got),
            "restart after {got} ms, expected {base} ms + jitter"
        );
    }
    // Stable for longer than reset_after: the next restart starts from the minimum again.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let crash = Instant::now();
    let _ = agent.call(Script::new(&[(0, Step::Panic)])).await;
    while status(agent.actor()).await.live_workers == 0 {
        tokio::time::sleep(ms(1)).await;
    }
    assert!(
        crash.elapsed() <= ms(126),
        "backoff reset: {:?}",
        crash.elapsed()
    );
    agent.stop();
}

/// A parent that forwards the supervision events it receives.
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = mpsc::UnboundedSender<String>;
    type Arguments = mpsc::UnboundedSender<String>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let text = match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                format!("failed {}: {err}", cell.get_id())
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                format!("terminated {}: {reason:?}", cell.get_id())
            }
            _ => return Ok(()),
        };
        let _ = tx.send(text);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn exceeding_the_restart_limit_stops_the_supervisor_and_tells_its_parent() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (parent, _) = Actor::spawn(None, Parent, tx).await.unwrap();
    let agent = AgentBuilder::new("fragile", quiet)
        .workers(1)
        .retry_policy("p", no_jitter(1, 10))
        .breaker_settings("b", never_trips())
        .supervision(supervision(2))
        .spawn_linked(parent.get_cell())
        .await
        .unwrap();
    for crash in 1..=3 {
        let result = agent.call(Script::new(&[(0, Step::Panic)])).await;
        assert_eq!(
            result,
            Err(CallError::Failed {
                attempts: 1,
                source: AttemptError::WorkerLost
            }),
            "crash {crash}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let event = events.recv().await.unwrap();
    assert!(
        event.starts_with(&format!("failed {}:", agent.actor().get_id())),
        "{event}"
    );
    assert!(event.contains("3 worker crashes"), "{event}");
    // The agent is gone: calls end at once, never hang.
    let result = agent.call(Script::ok(1)).await;
    assert!(matches!(result, Err(CallError::Unavailable)), "{result:?}");
    parent.stop(None);
}

#[tokio::test(start_paused = true)]
async fn restarts_wait_while_the_breaker_is_open_instead_of_burning_the_allowance() {
    let breaker = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(Duration::from_secs(10))
        .build()
        .unwrap();
    // No crash is tolerated while the breaker is closed: without parking, one crash escalates.
    let agent = AgentBuilder::new("parked", quiet)
        .workers(1)
        .workers(2)
        .retry_policy("p", no_jitter(1, 10))
        .breaker_settings("b", breaker)
        .supervision(supervision(0))
        .spawn()
        .await
        .unwrap();
    let crashing = tokio::spawn({
        let agent = agent.clone();
        async move { agent.call(Script::new(&[(50, Step::Panic)])).await }
    });
    tokio::task::yield_now().await;
    // Opens the breaker at 10 ms, while the first task is still running.
    let failing = agent.call(Script::new(&[(10, Step::Transient)])).await;
    assert!(matches!(failing, Err(CallError::Failed { .. })));
    let crashed = crashing.await.unwrap();
    assert_eq!(
        crashed,
        Err(CallError::Failed {
            attempts: 1,
            source: AttemptError::WorkerLost
        })
    );
    let s = status(agent.actor()).await;
    assert_eq!(
        (s.parked_restarts, s.restarts, s.live_workers),
        (1, 0, 1),
        "parked, not escalated"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = status(agent.actor()).await;
    assert_eq!(
        (s.restarts, s.live_workers),
        (1, 2),
        "restarted once the open period ended"
    );
    agent.stop();
}
