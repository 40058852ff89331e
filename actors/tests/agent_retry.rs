//! Retries driven by the supervisor, on tokio's paused clock: attempt instants follow the
//! policy exactly; non-retryable errors, the deadline and the budget stop retries.

mod scripted;

use std::time::Duration;

use ractor_resilience::agent::{AgentBuilder, AttemptError, CallError, CallOptions};
use ractor_resilience::budget::SharedBudget;
use ractor_resilience::core::budget::BudgetSettings;
use scripted::{Script, ScriptError, Seen, Step, ms, never_trips, no_jitter, observed, quiet};
use tokio::time::Instant;

fn started(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> Vec<(u32, Instant)> {
    let mut out = Vec::new();
    while let Ok(seen) = rx.try_recv() {
        if let Seen::Started { attempt, at, .. } = seen {
            out.push((attempt, at));
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn attempt_instants_follow_the_policy_exactly() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("retry", make)
        .retry_policy("p", no_jitter(4, 100))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let task = Script::new(&[
        (10, Step::Transient),
        (10, Step::Transient),
        (10, Step::Transient),
        (10, Step::Ok),
    ]);
    assert_eq!(agent.call(task).await, Ok(0));
    let attempts = started(&mut seen);
    // attempt n+1 starts when attempt n ended (10 ms) plus 100 ms × 2^(n-1).
    let expected = [(1, 0), (2, 110), (3, 320), (4, 730)];
    let got: Vec<(u32, u64)> = attempts
        .iter()
        .map(|(a, at)| (*a, (*at - t0).as_millis() as u64))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(t0.elapsed(), ms(740));
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn on_retry_hook_sees_attempt_error_and_delay() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let agent = AgentBuilder::new("hooked", quiet)
        .retry_policy("p", no_jitter(3, 50))
        .breaker_settings("b", never_trips())
        .on_retry(move |attempt, error, delay| {
            let _ = tx.send((attempt, error.to_string(), delay));
        })
        .spawn()
        .await
        .unwrap();
    let result = agent.call(Script::new(&[(1, Step::Transient)])).await;
    assert!(matches!(
        result,
        Err(CallError::Failed {
            attempts: 3,
            source: AttemptError::Agent(ScriptError::Transient)
        })
    ));
    let mut hooks = Vec::new();
    while let Ok(h) = rx.try_recv() {
        hooks.push(h);
    }
    assert_eq!(
        hooks,
        vec![
            (1, "agent error: transient failure".to_string(), ms(50)),
            (2, "agent error: transient failure".to_string(), ms(100))
        ]
    );
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_not_retried() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("permanent", make)
        .retry_policy("p", no_jitter(5, 10))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let result = agent.call(Script::new(&[(5, Step::Permanent)])).await;
    assert_eq!(
        result,
        Err(CallError::Failed {
            attempts: 1,
            source: AttemptError::Agent(ScriptError::Permanent)
        })
    );
    let result = agent.call(Script::new(&[(5, Step::BadRequest)])).await;
    assert_eq!(
        result,
        Err(CallError::Failed {
            attempts: 1,
            source: AttemptError::Agent(ScriptError::BadRequest)
        })
    );
    assert_eq!(started(&mut seen).len(), 2);
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retries() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("deadline", make)
        .retry_policy("p", no_jitter(5, 100))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let opts = CallOptions::default().with_deadline(ms(250));
    let result = agent
        .call_with(Script::new(&[(10, Step::Transient)]), opts)
        .await;
    // attempt 1 at 0, attempt 2 at 110 (ends 120); a third would start at 320 > 250.
    assert_eq!(
        result,
        Err(CallError::Failed {
            attempts: 2,
            source: AttemptError::Agent(ScriptError::Transient)
        })
    );
    assert_eq!(
        t0.elapsed(),
        ms(120),
        "gave up as soon as the next attempt could not start in time"
    );
    assert_eq!(started(&mut seen).len(), 2);
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_is_capped_by_the_remaining_deadline() {
    let agent = AgentBuilder::new("capped", quiet)
        .retry_policy("p", no_jitter(1, 100))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let t0 = Instant::now();
    let result = agent
        .call_with(
            Script::ok(10_000),
            CallOptions::default().with_deadline(ms(300)),
        )
        .await;
    assert_eq!(
        result,
        Err(CallError::TimedOut {
            after: ms(300),
            attempts: 1
        })
    );
    assert_eq!(t0.elapsed(), ms(300));
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_under_a_total_outage() {
    let (make, mut seen) = observed();
    // 10% of requests may be retried, no reserve.
    let budget = SharedBudget::new(BudgetSettings::new(Duration::from_secs(10), 0, 0.1).unwrap());
    let agent = AgentBuilder::new("outage", make)
        .workers(4)
        .max_pending(10_000)
        .retry_policy("p", no_jitter(3, 10))
        .breaker_settings("b", never_trips())
        .budget(budget)
        .spawn()
        .await
        .unwrap();
    let requests = 1000;
    let calls: Vec<_> = (0..requests)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move { agent.call(Script::new(&[(1, Step::Transient)])).await })
        })
        .collect();
    for call in calls {
        assert!(matches!(call.await.unwrap(), Err(CallError::Failed { .. })));
    }
    let attempts = started(&mut seen).len();
    let retries = attempts - requests;
    assert!(
        retries <= requests / 10,
        "{retries} retries for {requests} requests exceeds the 10% budget"
    );
    assert!(retries > 0, "the budget allows some retries");
    agent.stop();
}

#[tokio::test(start_paused = true)]
async fn retry_at_one_layer_makes_a_single_attempt_when_upstream_retries() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("downstream", make)
        .retry_policy("p", no_jitter(3, 10))
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let opts = CallOptions {
        retried_upstream: true,
        ..CallOptions::default()
    };
    let result = agent
        .call_with(Script::new(&[(1, Step::Transient)]), opts)
        .await;
    assert!(matches!(result, Err(CallError::Failed { attempts: 1, .. })));
    assert_eq!(started(&mut seen).len(), 1);
    agent.stop();
}
