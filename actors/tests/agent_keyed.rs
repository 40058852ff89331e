//! An agent with a keyed breaker family, on the paused clock: each task is admitted by its key
//! (the model it calls) besides the agent's own breaker. One model failing opens that model's
//! breaker only: its tasks are rejected, named `family[key]`, while the other models keep
//! serving and the agent's breaker stays closed; the key comes from the task, from the call's
//! options (which win), or is the default one.

mod support;

use std::time::Duration;

use ractor_resilience::agent::{
    Agent, AgentBuilder, AgentHandle, CallError, CallOptions, DEFAULT_BREAKER_KEY, ErrorClass,
};
use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerHandle, KeyedBreakerOptions};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::{BreakerSettings, BreakerState, FamilySettings};
use ractor_resilience::task::TaskContext;
use support::{ms, secs, settle};

/// A task: which model, and whether that model is down.
#[derive(Debug, Clone)]
struct Ask {
    model: String,
    down: bool,
}

fn ask(model: &str, down: bool) -> Ask {
    Ask {
        model: model.into(),
        down,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("model down")]
struct Down;

struct Llm;

impl Agent for Llm {
    type Task = Ask;
    type Output = String;
    type Error = Down;

    async fn handle(&mut self, task: Ask, _ctx: TaskContext) -> Result<String, Down> {
        tokio::time::sleep(ms(10)).await;
        if task.down { Err(Down) } else { Ok(task.model) }
    }

    fn classify(_: &Down) -> ErrorClass {
        ErrorClass::TRANSIENT
    }

    fn breaker_key(task: &Ask) -> Option<&str> {
        Some(&task.model)
    }
}

async fn family(max_failures: u32) -> KeyedBreakerHandle {
    let per_key = BreakerSettings::builder()
        .with_max_failures(max_failures)
        .with_open_duration(secs(10))
        .build()
        .unwrap();
    KeyedBreakerActor::spawn(
        "models",
        FamilySettings::new(per_key),
        KeyedBreakerOptions::default(),
    )
    .await
    .unwrap()
}

async fn agent(models: &KeyedBreakerHandle, attempts: u32) -> AgentHandle<Llm> {
    let never = BreakerSettings::builder()
        .with_max_failures(1_000_000)
        .build()
        .unwrap();
    let retry = RetryPolicy::builder()
        .with_max_attempts(attempts)
        .with_initial_delay(ms(100))
        .without_jitter()
        .build()
        .unwrap();
    AgentBuilder::new("llm", || Llm)
        .workers(2)
        .breaker_settings("llm", never)
        .retry_policy("llm", retry)
        .key_breaker(models.clone())
        .spawn()
        .await
        .unwrap()
}

/// Lets the family's actor apply what was recorded (its drain tick is 1 ms).
async fn applied() {
    settle().await;
    tokio::time::sleep(ms(5)).await;
    settle().await;
}

#[tokio::test(start_paused = true)]
async fn one_model_failing_opens_its_key_only() {
    let models = family(3).await;
    let agent = agent(&models, 1).await;
    for _ in 0..3 {
        assert!(matches!(
            agent.call(ask("gpt-b", true)).await,
            Err(CallError::Failed { .. })
        ));
    }
    applied().await;
    assert_eq!(models.state("gpt-b"), BreakerState::Open);
    match agent.call(ask("gpt-b", false)).await {
        Err(CallError::Rejected {
            breaker,
            state,
            retry_after,
        }) => {
            assert_eq!(&*breaker, "models[gpt-b]");
            assert_eq!(state, BreakerState::Open);
            assert!(
                retry_after.is_some_and(|d| d <= secs(10)),
                "{retry_after:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The other models keep serving; the agent's own breaker never saw a rejection as a failure.
    for model in ["gpt-a", "gpt-c"] {
        assert_eq!(agent.call(ask(model, false)).await.unwrap(), model);
    }
    assert_eq!(agent.breaker().state(), BreakerState::Closed);
    let status = agent.breaker().status().await.unwrap();
    assert_eq!(status.window_failures, 0, "count policy only: no window");
    assert_eq!(
        agent.key_breaker().unwrap().state("gpt-a"),
        BreakerState::Closed
    );

    // After the open period the key probes and closes on a success.
    tokio::time::advance(secs(10)).await;
    assert_eq!(agent.call(ask("gpt-b", false)).await.unwrap(), "gpt-b");
    applied().await;
    assert_eq!(models.state("gpt-b"), BreakerState::Closed);
    agent.stop();
    models.stop();
}

#[tokio::test(start_paused = true)]
async fn the_key_comes_from_the_options_first_then_the_task_then_the_default() {
    let models = family(1).await;
    let agent = agent(&models, 1).await;
    // The options' key wins over the task's: the failure opens "override", not "gpt-a".
    let opts = CallOptions::default().with_breaker_key("override");
    assert!(agent.call_with(ask("gpt-a", true), opts).await.is_err());
    applied().await;
    assert_eq!(models.state("override"), BreakerState::Open);
    assert_eq!(models.state("gpt-a"), BreakerState::Closed);
    let rejected = agent
        .call_with(
            ask("gpt-a", false),
            CallOptions::default().with_breaker_key("override"),
        )
        .await;
    assert!(
        matches!(&rejected, Err(CallError::Rejected { breaker, .. }) if &**breaker == "models[override]"),
        "{rejected:?}"
    );
    assert_eq!(agent.call(ask("gpt-a", false)).await.unwrap(), "gpt-a");
    agent.stop();

    // An agent whose tasks name no key uses the default one.
    struct Keyless;
    impl Agent for Keyless {
        type Task = bool;
        type Output = ();
        type Error = Down;
        async fn handle(&mut self, fail: bool, _ctx: TaskContext) -> Result<(), Down> {
            if fail { Err(Down) } else { Ok(()) }
        }
    }
    let keyless = AgentBuilder::new("keyless", || Keyless)
        .retry_policy(
            "once",
            RetryPolicy::builder().with_max_attempts(1).build().unwrap(),
        )
        .key_breaker(models.clone())
        .spawn()
        .await
        .unwrap();
    assert!(keyless.call(true).await.is_err());
    applied().await;
    assert_eq!(models.state(DEFAULT_BREAKER_KEY), BreakerState::Open);
    keyless.stop();
    models.stop();
}

#[tokio::test(start_paused = true)]
async fn a_retry_rejected_by_its_key_waits_for_the_open_period_and_keeps_its_key() {
    let models = family(2).await;
    let agent = agent(&models, 3).await;
    // Two failed attempts open the key; the third attempt is refused by the key's breaker at
    // the worker. A retry would wait for the key's open period (10 s), past the task's 5 s
    // deadline: the planner gives up at once, and the task ends as the key's rejection.
    let opts = CallOptions::default().with_deadline(Duration::from_secs(5));
    let t0 = tokio::time::Instant::now();
    let result = agent.call_with(ask("gpt-b", true), opts).await;
    assert!(
        t0.elapsed() < secs(1),
        "ended at once, not at the deadline: {:?}",
        t0.elapsed()
    );
    assert!(
        matches!(&result, Err(CallError::Rejected { breaker, .. }) if &**breaker == "models[gpt-b]"),
        "{result:?}"
    );
    assert_eq!(models.state("gpt-b"), BreakerState::Open);
    let status = models.key_status("gpt-b").await.unwrap().unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(models.state("gpt-a"), BreakerState::Closed);
    agent.stop();
    models.stop();
}
