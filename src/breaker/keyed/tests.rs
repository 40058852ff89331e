//! Unit tests of the family: independence of keys, eviction, `max_keys`, the overflow breaker,
//! stale ids, ranking, and the per-state indexes.

use std::time::{Duration, Instant};

use super::*;
use crate::breaker::{BreakerSettings, BreakerState, CallOutcome};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn family(max_keys: u32, idle: Option<Duration>) -> BreakerFamily<&'static str> {
    let breaker = BreakerSettings::builder()
        .with_max_failures(1)
        .with_open_duration(ms(1000))
        .build()
        .unwrap();
    let settings = FamilySettings::builder(breaker)
        .with_max_keys(max_keys)
        .with_idle_evict_after(idle)
        .build()
        .unwrap();
    BreakerFamily::new(settings, 7)
}

fn insert(f: &mut BreakerFamily<&'static str>, key: &'static str, now: Instant) -> Member {
    match f.insert(key, now) {
        Insert::Inserted { id, evicted: None } => Member::Key(id),
        other => panic!("expected room for {key}, got {other:?}"),
    }
}

fn fail(f: &mut BreakerFamily<&'static str>, m: Member, now: Instant) {
    let permit = f.try_acquire(m, now).unwrap().decision.unwrap();
    let _ = f.on_outcome(m, permit, CallOutcome::Failure, ms(1), now);
}

fn succeed(f: &mut BreakerFamily<&'static str>, m: Member, now: Instant) {
    let permit = f.try_acquire(m, now).unwrap().decision.unwrap();
    let _ = f.on_outcome(m, permit, CallOutcome::Success, ms(1), now);
}

fn state(f: &BreakerFamily<&'static str>, m: Member) -> BreakerState {
    f.breaker(m).unwrap().state().kind()
}

#[test]
fn one_key_opening_leaves_the_others_closed() {
    let t0 = Instant::now();
    let mut f = family(10, None);
    let (a, b) = (insert(&mut f, "a", t0), insert(&mut f, "b", t0));
    fail(&mut f, a, t0);
    assert_eq!(
        (state(&f, a), state(&f, b)),
        (BreakerState::Open, BreakerState::Closed)
    );
    assert!(f.try_acquire(a, t0).unwrap().decision.is_err());
    assert!(f.try_acquire(b, t0).unwrap().decision.is_ok());
    assert_eq!(
        (
            f.keys_in(BreakerState::Open),
            f.keys_in(BreakerState::Closed)
        ),
        (1, 1)
    );
    assert_eq!(f.next_deadline(), Some(t0 + ms(1000)));
    let moved = f.advance(t0 + ms(1000));
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].0, moved[0].1.to), (a, BreakerState::HalfOpen));
    assert_eq!(f.next_deadline(), None, "half-open waits for a probe");
}

#[test]
fn idle_keys_are_evicted_after_the_idle_period_and_not_before() {
    let t0 = Instant::now();
    let mut f = family(10, Some(ms(500)));
    let a = insert(&mut f, "a", t0);
    let b = insert(&mut f, "b", t0 + ms(100));
    succeed(&mut f, a, t0 + ms(200)); // a is used after b now
    assert_eq!(f.next_deadline(), Some(t0 + ms(600)), "b: inserted at 100");
    assert!(f.evict_idle(t0 + ms(599)).is_empty());
    let gone = f.evict_idle(t0 + ms(600));
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].data, gone[0].reason), ("b", EvictionReason::Idle));
    let Member::Key(b_id) = b else { unreachable!() };
    assert!(!f.contains(b_id));
    assert_eq!(f.next_deadline(), Some(t0 + ms(700)));
    assert_eq!(f.evict_idle(t0 + ms(700)).len(), 1);
    assert!(f.is_empty());
    assert_eq!(f.next_deadline(), None);
}

#[test]
fn open_keys_are_not_evicted_until_their_open_period_ends_and_they_idle() {
    let t0 = Instant::now();
    let mut f = family(10, Some(ms(300)));
    let a = insert(&mut f, "a", t0);
    fail(&mut f, a, t0);
    assert!(f.evict_idle(t0 + ms(900)).is_empty(), "open: protecting");
    assert_eq!(f.advance(t0 + ms(1000)).len(), 1); // half-open, no probe: idle from 1000
    assert!(f.evict_idle(t0 + ms(1299)).is_empty());
    assert_eq!(f.evict_idle(t0 + ms(1300)).len(), 1);
}

#[test]
fn forced_open_and_disabled_keys_stay_until_a_command() {
    let t0 = Instant::now();
    let mut f = family(2, Some(ms(10)));
    let (a, b) = (insert(&mut f, "a", t0), insert(&mut f, "b", t0));
    let _ = f.force_open(a, t0);
    let _ = f.disable(b, t0);
    assert!(f.evict_idle(t0 + ms(10_000)).is_empty());
    assert!(f.is_saturated());
    assert!(matches!(f.insert("c", t0), Insert::Saturated("c")));
    let _ = f.reset(a, t0 + ms(10_000));
    assert!(!f.is_saturated());
    match f.insert("c", t0 + ms(10_001)) {
        Insert::Inserted {
            evicted: Some(e), ..
        } => assert_eq!((e.data, e.reason), ("a", EvictionReason::Capacity)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_max_keys_the_longest_unused_idle_key_makes_room() {
    let t0 = Instant::now();
    let mut f = family(3, None);
    let a = insert(&mut f, "a", t0);
    let _b = insert(&mut f, "b", t0 + ms(1));
    let c = insert(&mut f, "c", t0 + ms(2));
    succeed(&mut f, a, t0 + ms(3)); // b is now the longest unused
    fail(&mut f, c, t0 + ms(4)); // c is open: not a candidate
    match f.insert("d", t0 + ms(5)) {
        Insert::Inserted {
            evicted: Some(e), ..
        } => assert_eq!((e.data, e.reason), ("b", EvictionReason::Capacity)),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.len(), 3);
}

#[test]
fn a_full_family_of_open_keys_is_saturated_and_the_overflow_breaker_decides() {
    let t0 = Instant::now();
    let mut f = family(2, None);
    for key in ["a", "b"] {
        let m = insert(&mut f, key, t0);
        fail(&mut f, m, t0);
    }
    assert!(f.is_saturated());
    assert!(matches!(f.insert("c", t0), Insert::Saturated("c")));
    // The overflow breaker is a breaker like the others, with its own deadline.
    fail(&mut f, Member::Overflow, t0 + ms(10));
    assert_eq!(state(&f, Member::Overflow), BreakerState::Open);
    assert_eq!(
        f.keys_in(BreakerState::Open),
        2,
        "the overflow is not a key"
    );
    let moved = f.advance(t0 + ms(1010));
    assert!(moved.contains(&(Member::Overflow, moved.last().unwrap().1)));
    assert_eq!(state(&f, Member::Overflow), BreakerState::HalfOpen);
    assert!(
        !f.is_saturated(),
        "a and b are half-open with no probe: idle"
    );
}

#[test]
fn an_evicted_id_never_names_the_key_that_reuses_its_slot() {
    let t0 = Instant::now();
    let mut f = family(1, None);
    let a = insert(&mut f, "a", t0);
    let permit = f.try_acquire(a, t0).unwrap().decision.unwrap();
    let Insert::Inserted {
        id: b,
        evicted: Some(_),
    } = f.insert("b", t0)
    else {
        panic!("a is idle")
    };
    let Member::Key(a_id) = a else { unreachable!() };
    assert_eq!(a_id.index(), b.index(), "the slot is reused");
    assert_ne!(a_id, b);
    assert_eq!(
        f.on_outcome(a, permit, CallOutcome::Failure, ms(1), t0),
        None
    );
    assert_eq!(state(&f, Member::Key(b)), BreakerState::Closed);
    assert_eq!(f.data(b), Some(&"b"));
    assert!(f.try_acquire(a, t0).is_none());
}

#[test]
fn ranking_names_the_most_failing_keys_and_forgets_keys_that_stopped() {
    let t0 = Instant::now();
    let breaker = BreakerSettings::builder()
        .with_max_failures(1000)
        .build()
        .unwrap();
    let mut f = BreakerFamily::new(FamilySettings::new(breaker), 0);
    let ids: Vec<Member> = ["a", "b", "c"]
        .into_iter()
        .map(|k| match f.insert(k, t0) {
            Insert::Inserted { id, .. } => Member::Key(id),
            Insert::Saturated(_) => unreachable!(),
        })
        .collect();
    let fail_n = |f: &mut BreakerFamily<&str>, m: Member, n: usize| {
        for _ in 0..n {
            let p = f.try_acquire(m, t0).unwrap().decision.unwrap();
            let _ = f.on_outcome(m, p, CallOutcome::Failure, ms(1), t0);
        }
    };
    fail_n(&mut f, ids[0], 2);
    fail_n(&mut f, ids[1], 8);
    let top = f.rank_by_failures(2);
    let names: Vec<_> = top.iter().map(|id| *f.data(*id).unwrap()).collect();
    assert_eq!(names, ["b", "a"], "c never failed");
    // Scores halve at each ranking: a (2 → 1 → 0) drops out, b (8 → 4 → 2) stays.
    assert_eq!(f.rank_by_failures(2).len(), 2);
    let names: Vec<_> = f
        .rank_by_failures(2)
        .iter()
        .map(|id| *f.data(*id).unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    assert!(f.rank_by_failures(0).is_empty());
}

#[test]
fn the_listing_of_keys_not_closed_follows_their_states() {
    let t0 = Instant::now();
    let mut f = family(10, None);
    let a = insert(&mut f, "a", t0);
    let b = insert(&mut f, "b", t0);
    fail(&mut f, b, t0);
    let _ = f.disable(a, t0);
    let listed: Vec<_> = f
        .not_closed()
        .map(|(_, k, b)| (*k, b.state().kind()))
        .collect();
    assert_eq!(
        listed,
        [("a", BreakerState::Disabled), ("b", BreakerState::Open)]
    );
    let _ = f.reset(a, t0);
    let _ = f.reset(b, t0);
    assert_eq!(f.not_closed_len(), 0);
    assert_eq!(f.keys_in(BreakerState::Closed), 2);
    assert_eq!(f.iter().count(), 2);
}

#[test]
fn keys_share_the_family_settings() {
    let t0 = Instant::now();
    let mut f = family(10, None);
    let a = insert(&mut f, "a", t0);
    let settings = f.breaker(a).unwrap().settings();
    assert_eq!(settings, f.settings().breaker());
    // A key's breaker is small: the settings are a shared reference, not a copy.
    assert!(
        std::mem::size_of::<crate::breaker::CircuitBreaker>() <= 160,
        "{} bytes",
        std::mem::size_of::<crate::breaker::CircuitBreaker>()
    );
}
