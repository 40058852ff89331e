//! Hot reload through the registry, on the paused clock: every policy is reconfigured in place
//! by its owner, keeping its state (breaker state, generation and window; budget balance;
//! estimator samples), running agents resize without losing a task, a task's retries follow
//! one whole policy, and a configuration that does not fit what runs changes nothing.

mod scripted;
mod support;

use std::time::Duration;

use ractor_resilience::agent::{AgentHandle, CallError};
use ractor_resilience::config::ResolvedConfig;
use ractor_resilience::core::breaker::{BreakerState, CallOutcome};
use ractor_resilience::registry::{Registry, RegistryOptions};
use ractor_resilience::timeout::TimeoutOutcome;
use scripted::{Script, Seen, Step, observed, quiet};
use support::{ms, secs, settle};
use tokio::time::Instant;

fn config(text: &str) -> ResolvedConfig {
    ResolvedConfig::from_toml_str(text, "reload.toml").unwrap()
}

async fn spawn(config: &ResolvedConfig) -> Registry {
    Registry::spawn(config, RegistryOptions::default())
        .await
        .unwrap()
}

async fn writer(registry: &Registry) -> AgentHandle<scripted::Scripted> {
    registry
        .agent("writer", quiet)
        .unwrap()
        .spawn()
        .await
        .unwrap()
}

/// `n` one-second tasks tagged 0..n, each called from a task of its own.
fn one_second_calls(
    agent: &AgentHandle<scripted::Scripted>,
    n: u64,
) -> Vec<tokio::task::JoinHandle<Result<u64, CallError<scripted::ScriptError>>>> {
    (0..n)
        .map(|tag| {
            let agent = agent.clone();
            tokio::spawn(async move {
                agent
                    .call(Script {
                        tag,
                        ..Script::ok(1_000)
                    })
                    .await
            })
        })
        .collect()
}

const RATE_BREAKER: &str = r#"
[breakers.llm]
max_failures = "off"
failure_rate_threshold = THRESHOLD
window_size = 10
minimum_calls = 10
"#;

#[tokio::test(start_paused = true)]
async fn a_breaker_keeps_its_window_state_and_generation_across_a_reload() {
    let old = config(&RATE_BREAKER.replace("THRESHOLD", "0.5"));
    let mut registry = spawn(&old).await;
    let llm = registry.breaker("llm").unwrap().clone();
    // Nine calls, four failures: below the floor of ten calls, nothing is judged yet.
    for n in 0..9 {
        let permit = llm.acquire().await.unwrap();
        let outcome = if n < 4 {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        };
        llm.record(permit, outcome, ms(5));
    }
    let before = llm.status().await.unwrap();
    assert_eq!((before.window_calls, before.window_failures), (9, 4));

    let report = registry
        .reconfigure(&config(&RATE_BREAKER.replace("THRESHOLD", "0.3")))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        ["breakers.llm: reconfigured in place (state, generation and window kept)"]
    );
    let after = llm.status().await.unwrap();
    assert_eq!(after.generation, before.generation);
    assert_eq!(after.state, BreakerState::Closed);
    assert_eq!((after.window_calls, after.window_failures), (9, 4));
    assert_eq!(llm.settings().failure_rate_threshold().unwrap().get(), 0.3);

    // The tenth call is a success: 4 / 10 = 0.4 trips the new threshold only because the
    // nine calls before the reload are still in the window.
    let permit = llm.acquire().await.unwrap();
    llm.record(permit, CallOutcome::Success, ms(5));
    assert_eq!(llm.status().await.unwrap().state, BreakerState::Open);
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn a_new_window_shape_is_reported_and_a_forced_state_survives() {
    let old = config(&RATE_BREAKER.replace("THRESHOLD", "0.5"));
    let mut registry = spawn(&old).await;
    let llm = registry.breaker("llm").unwrap().clone();
    let permit = llm.acquire().await.unwrap();
    llm.record(permit, CallOutcome::Success, ms(5));
    llm.force_open().unwrap();
    let generation = llm.status().await.unwrap().generation;
    let wider = RATE_BREAKER
        .replace("THRESHOLD", "0.5")
        .replace("window_size = 10", "window_size = 20");
    let report = registry.reconfigure(&config(&wider)).await.unwrap();
    assert_eq!(
        report.actions,
        [
            "breakers.llm: reconfigured in place (state and generation kept; the window changed shape and starts empty, 1 calls dropped)"
        ],
    );
    let status = llm.status().await.unwrap();
    assert_eq!(
        (status.state, status.generation),
        (BreakerState::ForcedOpen, generation)
    );
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn a_budget_keeps_its_balance_across_a_reload() {
    let text = r#"
[budgets.shared]
ttl = "10s"
min_per_second = 0
retry_percent = PERCENT
"#;
    let mut registry = spawn(&config(&text.replace("PERCENT", "0.5"))).await;
    let budget = registry.budget("shared").unwrap().clone();
    for _ in 0..10 {
        budget.deposit();
    }
    assert!(budget.try_withdraw());
    assert_eq!(budget.available(), 4);
    let report = registry
        .reconfigure(&config(&text.replace("PERCENT", "1.0")))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        ["budgets.shared: reconfigured in place (balance kept)"]
    );
    // Ten deposits minus one retry at the old price (2 000 tokens): 8 000 tokens, 8 retries
    // at the new price. A budget rebuilt from scratch would have none.
    assert_eq!(budget.available(), 8);
    assert_eq!(
        registry.budget("shared").unwrap().available(),
        8,
        "the same budget"
    );
    // The deposits still age out one ttl after they were made.
    tokio::time::advance(secs(12)).await;
    assert_eq!(budget.available(), 0);
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn an_estimator_keeps_its_samples_across_a_reload() {
    let text = r#"
[timeouts.llm]
kind = "adaptive"
initial = "30s"
min = "10ms"
min_samples = 10
padding = PADDING
"#;
    let mut registry = spawn(&config(&text.replace("PADDING", "0.5"))).await;
    let llm = registry.timeout("llm").unwrap().clone();
    for _ in 0..20 {
        llm.record(None, ms(100), TimeoutOutcome::Success);
    }
    llm.status().await.unwrap(); // drained
    let near = |d: Duration, want_ms: f64| (d.as_secs_f64() * 1000.0 - want_ms).abs() < 1.0;
    assert!(
        near(llm.timeout_for(None), 150.0),
        "{:?}",
        llm.timeout_for(None)
    );

    let report = registry
        .reconfigure(&config(&text.replace("PADDING", "1.0")))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        ["timeouts.llm: reconfigured in place (estimator samples kept)"]
    );
    // The same twenty samples, padded by the new 100%: not the 30 s initial of an empty one.
    assert!(
        near(llm.timeout_for(None), 200.0),
        "{:?}",
        llm.timeout_for(None)
    );

    // A new mode learns something else: it starts empty, and says so.
    let rfc = text.replace("PADDING", "1.0") + "mode = \"rfc6298\"\n";
    let report = registry.reconfigure(&config(&rfc)).await.unwrap();
    assert_eq!(
        report.actions,
        ["timeouts.llm: reconfigured in place (a new estimator starts empty)"]
    );
    assert_eq!(llm.timeout_for(None), secs(30));
    registry.stop();
}

const AGENT: &str = r#"
[breakers.llm]
max_failures = 1000000

[retry_policies.r]
max_attempts = ATTEMPTS
initial_delay = "DELAY"
multiplier = 1.0
jitter = "none"

[timeouts.llm]
kind = "fixed"
duration = "TIMEOUT"

[agents.writer]
breaker = "llm"
retry = "r"
timeout = "llm"
workers = WORKERS
max_pending = 100
"#;

fn agent_config(attempts: u32, delay: &str, timeout: &str, workers: usize) -> ResolvedConfig {
    config(
        &AGENT
            .replace("ATTEMPTS", &attempts.to_string())
            .replace("DELAY", delay)
            .replace("TIMEOUT", timeout)
            .replace("WORKERS", &workers.to_string()),
    )
}

#[tokio::test(start_paused = true)]
async fn an_agent_resizes_its_pool_without_losing_a_task() {
    let mut registry = spawn(&agent_config(1, "1s", "10s", 2)).await;
    let agent = writer(&registry).await;
    registry
        .reconfigure(&agent_config(1, "1s", "10s", 5))
        .await
        .unwrap();
    assert_eq!(agent.status().await.unwrap().live_workers, 5);

    // Five one-second tasks, one per worker; the pool shrinks to one while they run.
    let started = Instant::now();
    let calls = one_second_calls(&agent, 5);
    settle().await;
    let report = registry
        .reconfigure(&agent_config(1, "1s", "10s", 1))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        ["agents.writer: reconfigured (1 workers, max_pending 100, retry policy `r`)"]
    );
    for (tag, call) in calls.into_iter().enumerate() {
        assert_eq!(
            call.await.unwrap().unwrap(),
            tag as u64,
            "no attempt cut short"
        );
    }
    assert_eq!(
        started.elapsed(),
        secs(1),
        "the retiring workers finished theirs"
    );
    settle().await;
    let status = agent.status().await.unwrap();
    assert_eq!(
        (status.live_workers, status.restarts),
        (1, 0),
        "retired, not restarted"
    );

    // One worker now: two tasks run one after the other.
    let started = Instant::now();
    let (a, b) = tokio::join!(agent.call(Script::ok(1_000)), agent.call(Script::ok(1_000)));
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(started.elapsed(), secs(2));
    agent.stop();
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn each_task_retries_under_one_whole_policy_across_a_reload() {
    let mut registry = spawn(&agent_config(3, "1s", "10s", 2)).await;
    let (make, mut seen) = observed();
    let agent = registry
        .agent("writer", make)
        .unwrap()
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let failing = |tag| Script {
        tag,
        ..Script::new(&[(10, Step::Transient)])
    };
    // Task 1 fails at 10 ms; its first retry is planned under the old policy (1 s apart, 3
    // attempts).
    let old_task = tokio::spawn({
        let agent = agent.clone();
        async move { agent.call(failing(1)).await }
    });
    tokio::time::sleep(ms(500)).await;
    registry
        .reconfigure(&agent_config(5, "100ms", "10s", 2))
        .await
        .unwrap();
    tokio::time::sleep(ms(100)).await;
    // Task 2 starts after the reload: 5 attempts, 100 ms apart.
    let new_task = agent.call(failing(2)).await;
    let old_task = old_task.await.unwrap();
    assert!(
        matches!(old_task, Err(CallError::Failed { attempts: 3, .. })),
        "{old_task:?}"
    );
    assert!(
        matches!(new_task, Err(CallError::Failed { attempts: 5, .. })),
        "{new_task:?}"
    );

    let mut starts = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    while let Ok(event) = seen.try_recv() {
        if let Seen::Started { tag, at, .. } = event {
            let at = u64::try_from((at - t0).as_millis()).unwrap();
            starts.entry(tag).or_default().push(at);
        }
    }
    assert_eq!(starts[&1], [0, 1_010, 2_020], "the old schedule to its end");
    assert_eq!(
        starts[&2],
        [600, 710, 820, 930, 1_040],
        "the new schedule from its first retry"
    );
    agent.stop();
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn an_attempt_keeps_the_timeout_it_started_with() {
    let mut registry = spawn(&agent_config(1, "1s", "1s", 2)).await;
    let agent = writer(&registry).await;
    let running = tokio::spawn({
        let agent = agent.clone();
        async move { agent.call(Script::ok(500)).await }
    });
    settle().await;
    registry
        .reconfigure(&agent_config(1, "1s", "100ms", 2))
        .await
        .unwrap();
    assert!(
        running.await.unwrap().is_ok(),
        "started under 1 s: not cut at 100 ms"
    );
    let after = agent.call(Script::ok(500)).await;
    assert!(
        matches!(after, Err(CallError::TimedOut { after, .. }) if after == ms(100)),
        "{after:?}"
    );
    agent.stop();
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn a_configuration_that_does_not_fit_the_running_agents_changes_nothing() {
    let mut registry = spawn(&agent_config(3, "1s", "10s", 2)).await;
    let agent = writer(&registry).await;
    // Another breaker for the running agent, and a changed llm breaker in the same file.
    let moved = AGENT
        .replace("ATTEMPTS", "3")
        .replace("DELAY", "1s")
        .replace("TIMEOUT", "10s")
        .replace("WORKERS", "2")
        .replace("max_failures = 1000000", "max_failures = 7")
        .replace("breaker = \"llm\"", "breaker = \"other\"")
        + "[breakers.other]\n";
    let err = registry.reconfigure(&config(&moved)).await.unwrap_err();
    assert_eq!(err.reasons.len(), 1);
    assert!(
        err.reasons[0].starts_with("agents.writer.breaker: changed from `llm` to `other`"),
        "{err}"
    );
    assert_eq!(
        registry.breaker("llm").unwrap().settings().max_failures(),
        Some(1_000_000),
        "nothing applied"
    );
    assert!(registry.breaker("other").is_none());

    // Removing a running agent is refused too; once it stopped, the same file applies.
    let without = config("[breakers.llm]\nmax_failures = 7\n");
    let err = registry.reconfigure(&without).await.unwrap_err();
    assert!(
        err.reasons[0].starts_with("agents.writer: removed"),
        "{err}"
    );
    agent.stop();
    settle().await;
    let report = registry.reconfigure(&without).await.unwrap();
    assert_eq!(
        report.actions,
        [
            "breakers.llm: reconfigured in place (state, generation and window kept)",
            "timeouts.llm: stopped",
        ]
    );
    assert_eq!(registry.timeouts().count(), 0);
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn a_pool_that_shrinks_and_grows_back_mid_attempt_keeps_one_worker_per_slot() {
    let mut registry = spawn(&agent_config(1, "1s", "10s", 3)).await;
    let agent = writer(&registry).await;
    let started = Instant::now();
    let calls = one_second_calls(&agent, 3);
    settle().await;
    // Two workers retire mid-attempt, and two new ones take their slots at once.
    registry
        .reconfigure(&agent_config(1, "1s", "10s", 1))
        .await
        .unwrap();
    registry
        .reconfigure(&agent_config(1, "1s", "10s", 3))
        .await
        .unwrap();
    for (tag, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), tag as u64);
    }
    assert_eq!(started.elapsed(), secs(1));
    settle().await;
    let status = agent.status().await.unwrap();
    assert_eq!(
        (status.live_workers, status.idle_workers, status.restarts),
        (3, 3, 0),
        "the retired workers stopped without taking a slot back"
    );
    // Three at once again: one per worker, no task behind another.
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        agent.call(Script::ok(1_000)),
        agent.call(Script::ok(1_000)),
        agent.call(Script::ok(1_000))
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(started.elapsed(), secs(1));
    agent.stop();
    registry.stop();
}

#[tokio::test(start_paused = true)]
async fn a_retired_worker_never_offers_the_slot_a_new_worker_took() {
    let mut registry = spawn(&agent_config(1, "1s", "10s", 2)).await;
    let agent = writer(&registry).await;
    let t0 = Instant::now();
    let call = |ms: u64| {
        let agent = agent.clone();
        tokio::spawn(async move { agent.call(Script::ok(ms)).await })
    };
    // The most recently parked worker is handed work first: slot 1 runs 1 s and is retired,
    // then its slot is given to a new worker that takes a 2 s task; slot 0 runs 900 ms.
    let first = call(1_000);
    settle().await;
    let second = call(900);
    settle().await;
    registry
        .reconfigure(&agent_config(1, "1s", "10s", 1))
        .await
        .unwrap();
    registry
        .reconfigure(&agent_config(1, "1s", "10s", 2))
        .await
        .unwrap();
    tokio::time::sleep(ms(100)).await;
    let long = call(2_000);
    // At 1 s the retired worker finishes: it must not register slot 1 idle, whose new worker
    // is busy until 2.1 s. A task at 1.5 s then goes to slot 0's worker, idle since 0.9 s.
    tokio::time::sleep_until(t0 + ms(1_500)).await;
    let late = agent.call(Script::ok(1_000)).await;
    assert!(late.is_ok());
    assert_eq!(
        t0.elapsed(),
        ms(2_500),
        "not queued behind the busy new worker"
    );
    for done in [first, second, long] {
        assert!(done.await.unwrap().is_ok());
    }
    agent.stop();
    registry.stop();
}
