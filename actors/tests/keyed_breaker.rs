//! Keyed breaker families on tokio's paused clock: one key open while the others admit without
//! a message, open → half-open per key by the actor's timer, idle eviction, `max_keys` and the
//! overflow breaker, commands and the bounded listing, no lost outcome with a full queue, and a
//! stopped family failing closed. (Metric labels: `keyed_breaker_metrics.rs`.)

mod support;

use ractor_resilience::breaker::{
    KeyCommandError, KeyedBreakerActor, KeyedBreakerHandle, KeyedBreakerOptions,
};
use ractor_resilience::core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, FamilySettings,
};
use support::{ms, secs, settle};
use tokio::time::advance;

fn family(max_keys: u32, idle: Option<std::time::Duration>) -> FamilySettings {
    let per_key = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(secs(10))
        .build()
        .unwrap();
    FamilySettings::builder(per_key)
        .with_max_keys(max_keys)
        .with_idle_evict_after(idle)
        .build()
        .unwrap()
}

async fn spawn(settings: FamilySettings) -> KeyedBreakerHandle {
    KeyedBreakerActor::spawn("models", settings, KeyedBreakerOptions::default())
        .await
        .unwrap()
}

/// One call on `key`, its outcome applied before returning (a query drains the queue first,
/// so the outcome counts at this instant rather than one drain tick later).
async fn call(f: &KeyedBreakerHandle, key: &str, outcome: CallOutcome) {
    let permit = f.acquire(key).await.unwrap();
    f.record(permit, outcome, ms(5));
    f.status().await.unwrap();
}

async fn keys(f: &KeyedBreakerHandle) -> usize {
    f.status().await.unwrap().keys
}

#[tokio::test(start_paused = true)]
async fn one_key_open_leaves_the_others_admitting_without_a_message() {
    let f = spawn(family(100, None)).await;
    call(&f, "gpt-4o", CallOutcome::Success).await;
    call(&f, "claude", CallOutcome::Success).await;
    call(&f, "gpt-4o", CallOutcome::Failure).await;
    settle().await; // the failure rang the doorbell: applied at once

    assert_eq!(f.state("gpt-4o"), BreakerState::Open);
    let rejected = f.try_acquire_local("gpt-4o").unwrap().unwrap_err();
    assert_eq!(rejected.state, BreakerState::Open);
    assert!(rejected.retry_after.is_some());
    // Decided from the published snapshot: no message needed.
    assert!(f.try_acquire_local("claude").unwrap().is_ok());
    assert!(f.try_acquire_local("never-seen").unwrap().is_ok());
    assert!(f.precheck("gpt-4o").is_err());
    assert_eq!(f.state("claude"), BreakerState::Closed);
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn an_open_key_half_opens_by_itself_and_a_probe_closes_it() {
    let f = spawn(family(100, None)).await;
    call(&f, "a", CallOutcome::Failure).await;
    call(&f, "b", CallOutcome::Failure).await;
    settle().await;
    advance(secs(9)).await;
    settle().await;
    assert_eq!(f.state("a"), BreakerState::Open, "not before 10 s");
    advance(secs(1)).await;
    settle().await;
    // The actor's timer moved both keys, with no traffic.
    assert_eq!(f.state("a"), BreakerState::HalfOpen);
    assert_eq!(f.state("b"), BreakerState::HalfOpen);
    assert!(
        f.try_acquire_local("a").is_none(),
        "probes are granted by the actor"
    );

    let probe = f.acquire("a").await.unwrap();
    assert!(probe.is_probe());
    assert_eq!(
        f.acquire("a").await.unwrap_err().state,
        BreakerState::HalfOpen,
        "one probe at a time"
    );
    f.record(probe, CallOutcome::Success, ms(5));
    settle().await; // probe outcomes ring the doorbell
    assert_eq!(f.state("a"), BreakerState::Closed);
    assert_eq!(f.state("b"), BreakerState::HalfOpen);
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_evicted_by_the_actors_timer() {
    let f = spawn(family(100, Some(secs(60)))).await;
    call(&f, "a", CallOutcome::Success).await;
    advance(secs(30)).await;
    call(&f, "b", CallOutcome::Success).await;
    assert_eq!(keys(&f).await, 2);

    advance(secs(29)).await;
    settle().await;
    assert_eq!(keys(&f).await, 2, "a: 59 s idle");
    advance(secs(1)).await;
    settle().await;
    assert_eq!(f.len(), 1, "a evicted at 60 s, by the timer");
    advance(secs(30)).await;
    settle().await;
    let status = f.status().await.unwrap();
    assert_eq!((status.keys, status.evicted_idle), (0, 2));
    // An evicted key comes back as a fresh breaker.
    call(&f, "a", CallOutcome::Success).await;
    assert_eq!(f.key_status("a").await.unwrap().unwrap().generation, 0);
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn open_keys_are_kept_past_the_idle_period() {
    let per_key = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(secs(120))
        .build()
        .unwrap();
    let settings = FamilySettings::builder(per_key)
        .with_idle_evict_after(Some(secs(60)))
        .build()
        .unwrap();
    let f = spawn(settings).await;
    call(&f, "a", CallOutcome::Failure).await;
    advance(secs(100)).await;
    settle().await;
    assert_eq!(f.state("a"), BreakerState::Open, "protecting: not evicted");
    advance(secs(20)).await; // half-open at 120 s, idle from then
    settle().await;
    assert_eq!(f.state("a"), BreakerState::HalfOpen);
    advance(secs(60)).await;
    settle().await;
    assert_eq!(keys(&f).await, 0);
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn at_max_keys_the_longest_idle_key_makes_room() {
    let f = spawn(family(2, None)).await;
    call(&f, "a", CallOutcome::Success).await;
    advance(ms(10)).await;
    call(&f, "b", CallOutcome::Success).await;
    advance(ms(10)).await;
    call(&f, "a", CallOutcome::Success).await; // b is now the longest idle
    advance(ms(10)).await;
    call(&f, "c", CallOutcome::Success).await;
    let status = f.status().await.unwrap();
    assert_eq!((status.keys, status.evicted_capacity), (2, 1));
    assert!(f.key_status("b").await.unwrap().is_none());
    assert!(f.key_status("a").await.unwrap().is_some());
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn a_family_full_of_open_keys_sends_new_keys_to_the_overflow_breaker() {
    let f = spawn(family(2, None)).await;
    call(&f, "a", CallOutcome::Failure).await;
    call(&f, "b", CallOutcome::Failure).await;
    settle().await;
    let status = f.status().await.unwrap();
    assert!(status.saturated);

    let permit = f.acquire("c").await.unwrap();
    assert!(permit.is_overflow());
    f.record(permit, CallOutcome::Failure, ms(5));
    settle().await;
    // The overflow breaker opened: every key without room is rejected; a and b stay open.
    assert_eq!(f.state("d"), BreakerState::Open);
    assert_eq!(f.acquire("d").await.unwrap_err().state, BreakerState::Open);
    let status = f.status().await.unwrap();
    assert_eq!((status.keys, status.overflow), (2, BreakerState::Open));
    // A forced command needs room too.
    assert!(matches!(
        f.force_open("e").await,
        Err(KeyCommandError::Full { .. })
    ));

    // Open periods end: a and b are half-open with no probe (idle), so new keys get room.
    advance(secs(10)).await;
    settle().await;
    assert!(!f.status().await.unwrap().saturated);
    let permit = f.acquire("e").await.unwrap();
    assert!(!permit.is_overflow());
    f.record(permit, CallOutcome::Success, ms(5));
    assert!(f.key_status("e").await.unwrap().is_some());
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn commands_act_on_one_key_and_the_listing_is_bounded() {
    let f = spawn(family(100, Some(secs(60)))).await;
    assert_eq!(
        f.force_open("gpt-4o").await.unwrap(),
        BreakerState::ForcedOpen
    );
    let rejected = f.try_acquire_local("gpt-4o").unwrap().unwrap_err();
    assert_eq!(
        (rejected.state, rejected.retry_after),
        (BreakerState::ForcedOpen, None)
    );
    assert_eq!(f.disable("claude").await.unwrap(), BreakerState::Disabled);
    for key in ["k1", "k2", "k3"] {
        call(&f, key, CallOutcome::Failure).await;
    }
    let listing = f.not_closed(2).await.unwrap();
    assert_eq!(listing.keys.len(), 2);
    assert_eq!(listing.more, 3);
    assert_eq!(listing.keys[0].key, "gpt-4o");
    assert_eq!(listing.keys[0].state, BreakerState::ForcedOpen);
    assert_eq!(listing.overflow, BreakerState::Closed);

    // Forced and disabled keys are an operator's: never evicted as idle (the open ones become
    // half-open at 10 s, idle from then, and are evicted at 70 s).
    advance(secs(10)).await;
    settle().await;
    advance(secs(3600)).await;
    settle().await;
    assert_eq!(f.state("gpt-4o"), BreakerState::ForcedOpen);
    assert_eq!(f.state("claude"), BreakerState::Disabled);
    assert_eq!(f.reset("gpt-4o").await.unwrap(), BreakerState::Closed);
    assert_eq!(f.reset("not-held").await.unwrap(), BreakerState::Closed);
    assert!(f.try_acquire_local("gpt-4o").unwrap().is_ok());
    let listing = f.not_closed(10).await.unwrap();
    assert_eq!(listing.keys.len(), 1);
    assert_eq!(listing.keys[0].key, "claude");
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn no_outcome_is_lost_when_the_queue_is_full() {
    let options = KeyedBreakerOptions::new().with_queue_capacity(2);
    let f = KeyedBreakerActor::spawn("models", family(1000, None), options)
        .await
        .unwrap();
    for i in 0..300 {
        let key = format!("k{}", i % 100);
        let permit = f.try_acquire_local(&key).unwrap().unwrap();
        f.record(permit, CallOutcome::Success, ms(1));
    }
    let status = f.status().await.unwrap();
    assert_eq!((status.outcomes, status.keys), (300, 100));
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn an_outcome_for_a_key_evicted_since_its_admission_is_not_applied() {
    let f = spawn(family(1, None)).await;
    call(&f, "a", CallOutcome::Success).await;
    assert_eq!(keys(&f).await, 1);
    let permit = f.acquire("a").await.unwrap();
    call(&f, "b", CallOutcome::Success).await; // evicts a: max_keys = 1
    f.record(permit, CallOutcome::Failure, ms(5));
    let status = f.status().await.unwrap();
    assert_eq!(status.outcomes_for_evicted, 1);
    assert_eq!(f.state("b"), BreakerState::Closed, "b is not a's successor");
    f.stop();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_family_fails_closed() {
    let f = spawn(family(10, None)).await;
    call(&f, "a", CallOutcome::Success).await;
    f.stop();
    settle().await;
    assert!(!f.is_running());
    let rejected = f.acquire("a").await.unwrap_err();
    assert_eq!(
        (rejected.state, rejected.retry_after),
        (BreakerState::ForcedOpen, None)
    );
    assert!(f.status().await.is_err());
    assert!(matches!(
        f.force_open("a").await,
        Err(KeyCommandError::Unavailable { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn invalid_options_fail_the_spawn() {
    let options = KeyedBreakerOptions::new().with_metric_keys(["other"]);
    let err = KeyedBreakerActor::spawn("models", family(10, None), options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("metric_keys"), "{err}");
}
