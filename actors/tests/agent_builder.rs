//! Builder mistakes are errors that name the setting, as the core's builders do: nothing is
//! silently fixed.

mod scripted;

use ractor_resilience::agent::{AgentBuilder, SpawnError};
use ractor_resilience::breaker::{BreakerActor, BreakerOptions};
use scripted::{never_trips, quiet};

fn setting(result: Result<impl std::fmt::Debug, SpawnError>) -> (&'static str, String) {
    match result {
        Err(SpawnError::Invalid { setting, reason }) => (setting, reason),
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn builder_mistakes_are_errors_naming_the_setting() {
    let (name, reason) = setting(AgentBuilder::new("a", quiet).workers(0).spawn().await);
    assert_eq!((name, reason.as_str()), ("workers", "must be at least 1"));

    let (name, _) = setting(AgentBuilder::new("a", quiet).max_pending(0).spawn().await);
    assert_eq!(name, "max_pending");

    let (name, reason) = setting(
        AgentBuilder::new("a", quiet)
            .workers(4)
            .max_pending(2)
            .spawn()
            .await,
    );
    assert_eq!(name, "max_pending");
    assert!(reason.contains("at least workers (4)"), "{reason}");

    let shared = BreakerActor::spawn("shared", never_trips(), BreakerOptions::default())
        .await
        .unwrap();
    let (name, _) = setting(
        AgentBuilder::new("a", quiet)
            .breaker_settings("own", never_trips())
            .breaker(shared.clone())
            .spawn()
            .await,
    );
    assert_eq!(name, "breaker");
    let (name, _) = setting(
        AgentBuilder::new("a", quiet)
            .breaker(shared.clone())
            .breaker_settings("own", never_trips())
            .spawn()
            .await,
    );
    assert_eq!(name, "breaker_settings");
    // The error reads like the core's.
    let err = AgentBuilder::new("a", quiet)
        .workers(0)
        .spawn()
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid `workers`: must be at least 1");
    // And a valid builder spawns, with the configuration's default pool of 4.
    let agent = AgentBuilder::new("a", quiet).spawn().await.unwrap();
    assert_eq!(agent.status().await.unwrap().live_workers, 4);
    agent.stop();
    shared.stop();
}
