//! No task is lost: 10,000 seeded tasks with random failures, panics and latencies through the
//! whole stack — every `call` returns exactly once, every cast's reply target is answered
//! exactly once, and the outcome counts add up to the number submitted, in the metrics too.

mod scripted;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::agent::{AgentBuilder, CallError, CallOptions, SupervisionSettings};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::core::breaker::BreakerSettings;
use ractor_resilience::metrics::TaskOutcome;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::timeout::TimeoutPolicy;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use scripted::{Script, Step, ms, quiet};

fn random_script(rng: &mut SmallRng, tag: u64) -> Script {
    let steps = (0..3)
        .map(|_| {
            let latency = ms(rng.random_range(0..110));
            let step = match rng.random_range(0..100) {
                0..70 => Step::Ok,
                70..90 => Step::Transient,
                90..94 => Step::Permanent,
                94..97 => Step::BadRequest,
                _ => Step::Panic,
            };
            (latency, step)
        })
        .collect();
    Script { steps, tag }
}

fn outcome_of(result: &Result<u64, CallError<scripted::ScriptError>>) -> TaskOutcome {
    match result {
        Ok(_) => TaskOutcome::Succeeded,
        Err(e) => e.outcome(),
    }
}

/// Reads `resilience_tasks_total{agent="...",outcome="..."}` series from an exposition.
fn task_counters(exposition: &str) -> HashMap<String, u64> {
    exposition
        .lines()
        .filter(|l| l.starts_with("resilience_tasks_total{"))
        .filter_map(|l| {
            let outcome = l.split("outcome=\"").nth(1)?.split('"').next()?.to_string();
            let value: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((outcome, value as u64))
        })
        .collect()
}

#[test]
fn ten_thousand_random_tasks_each_end_in_exactly_one_outcome() {
    scripted::quiet_panics();
    let recorder = PrometheusBuilder::new().build_recorder();
    let (counts, handle) = support::paused_with_recorder(recorder, |handle| async move {
        let agent = AgentBuilder::new("chaos", quiet)
            .workers(16)
            .max_pending(20_000)
            .retry_policy(
                "p",
                RetryPolicy::builder()
                    .with_max_attempts(3)
                    .with_initial_delay(ms(10))
                    .build()
                    .unwrap(),
            )
            .breaker_settings(
                "b",
                BreakerSettings::builder()
                    .with_max_failures(30)
                    .with_open_duration(ms(500))
                    .build()
                    .unwrap(),
            )
            .timeout_policy("t", TimeoutPolicy::Fixed(ms(100)))
            .supervision(SupervisionSettings {
                max_restarts: 1_000_000,
                min_backoff: ms(5),
                ..SupervisionSettings::default()
            })
            .seed(7)
            .spawn()
            .await
            .unwrap();
        let mut rng = SmallRng::seed_from_u64(42);
        let (cast_tx, mut cast_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut calls = Vec::new();
        let total = 10_000u64;
        let mut casts = 0u64;
        let mut cast_refused = HashMap::<TaskOutcome, u64>::new();
        for tag in 0..total {
            // An operator forces the breaker open for a second: those tasks are rejected.
            if tag == 4000 {
                agent.breaker().force_open().unwrap();
            }
            if tag == 4100 {
                agent.breaker().reset().unwrap();
            }
            let script = random_script(&mut rng, tag);
            if tag % 4 == 0 {
                let tx = cast_tx.clone();
                let reply = ReplyTo::callback(move |answer| {
                    let _ = tx.send((tag, answer));
                });
                match agent.cast(script, CallOptions::default(), Some(reply)) {
                    Ok(_) => casts += 1,
                    Err(e) => *cast_refused.entry(e.outcome()).or_default() += 1,
                }
            } else {
                let agent = agent.clone();
                // Every tenth call has a tight deadline of its own.
                let opts = if tag % 10 == 1 {
                    CallOptions::default().with_deadline(ms(60))
                } else {
                    CallOptions::default()
                };
                calls.push(tokio::spawn(
                    async move { agent.call_with(script, opts).await },
                ));
            }
            // About 100 tasks per second, evenly spaced: well within the pool's capacity.
            tokio::time::sleep(ms(10)).await;
        }
        let mut counts = cast_refused;
        for call in calls {
            *counts.entry(outcome_of(&call.await.unwrap())).or_default() += 1;
        }
        let mut answered = HashMap::new();
        for _ in 0..casts {
            let (tag, answer) = cast_rx.recv().await.unwrap();
            let answer = answer.expect("a cast's reply is answered, never dropped");
            assert!(
                answered.insert(tag, ()).is_none(),
                "cast {tag} answered twice"
            );
            *counts.entry(outcome_of(&answer)).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(cast_rx.try_recv().is_err(), "no second answer to any cast");
        assert_eq!(counts.values().sum::<u64>(), total);
        assert_eq!(agent.inflight(), 0);
        agent.stop();
        (counts, handle)
    });
    // Every outcome happened (the mix exercises each path) and the metrics agree exactly.
    for outcome in [
        TaskOutcome::Succeeded,
        TaskOutcome::Failed,
        TaskOutcome::TimedOut,
        TaskOutcome::Rejected,
        TaskOutcome::Overloaded,
    ] {
        assert!(
            counts.get(&outcome).copied().unwrap_or(0) > 0,
            "no {outcome:?} in {counts:?}"
        );
        eprintln!("{outcome:?}: {}", counts[&outcome]);
    }
    let exported = task_counters(&handle.render());
    for (outcome, n) in &counts {
        assert_eq!(
            exported.get(outcome.as_str()).copied().unwrap_or(0),
            *n,
            "metric for {outcome:?}"
        );
    }
}
