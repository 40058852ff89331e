//! The keyed family against standalone breakers: while a key is held, its breaker behaves
//! exactly as a [`CircuitBreaker`] fed the same inputs since the key was inserted; the family
//! never holds more than `max_keys`; it evicts only idle keys (the longest-unused one first, at
//! capacity; every key idle for `idle_evict_after`, and none sooner, by time); it is saturated
//! exactly when it is full of keys that are not idle; its per-state counts are right.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ractor_resilience_core::breaker::{
    BreakerFamily, BreakerSettings, BreakerState, CallOutcome, CircuitBreaker, CircuitState,
    EvictionReason, FamilySettings, Insert, KeyId, Member,
};
use support::ms;

const KEYS: u8 = 6;
const MAX_KEYS: u32 = 3;
const IDLE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
enum Op {
    Call(u8, CallOutcome),
    Advance(u64),
    ForceOpen(u8),
    Disable(u8),
    Reset(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        Just(CallOutcome::Success),
        Just(CallOutcome::Failure),
        Just(CallOutcome::Ignored)
    ];
    prop_oneof![
        6 => (0..KEYS, outcome).prop_map(|(k, o)| Op::Call(k, o)),
        3 => (1u64..40).prop_map(Op::Advance),
        1 => (0..KEYS).prop_map(Op::ForceOpen),
        1 => (0..KEYS).prop_map(Op::Disable),
        1 => (0..KEYS).prop_map(Op::Reset),
    ]
}

fn settings() -> FamilySettings {
    let breaker = BreakerSettings::builder()
        .with_max_failures(2)
        .with_open_duration(ms(30))
        .with_half_open_probes(2)
        .with_half_open_max_wait(Some(ms(20)))
        .build()
        .unwrap();
    FamilySettings::builder(breaker)
        .with_max_keys(MAX_KEYS)
        .with_idle_evict_after(Some(IDLE))
        .build()
        .unwrap()
}

/// The user's side: key → id, and a standalone breaker per held key with its last use.
struct Shadow {
    ids: HashMap<u8, KeyId>,
    breakers: HashMap<u8, (CircuitBreaker, Instant)>,
    overflow: CircuitBreaker,
}

fn idle(b: &CircuitBreaker) -> bool {
    match b.state() {
        CircuitState::Closed { .. } => true,
        CircuitState::HalfOpen { admitted, .. } => *admitted == 0,
        _ => false,
    }
}

impl Shadow {
    fn check_evicted(&self, key: u8, reason: EvictionReason, now: Instant) {
        let (b, last) = &self.breakers[&key];
        assert!(idle(b), "evicted key {key} was {:?}", b.state());
        match reason {
            EvictionReason::Idle => assert!(now - *last >= IDLE, "key {key} evicted early"),
            EvictionReason::Capacity => {
                for (other, (ob, olast)) in &self.breakers {
                    if idle(ob) {
                        assert!(last <= olast, "{key} evicted before longer-unused {other}");
                    }
                }
            }
        }
    }

    fn forget(&mut self, data: u8) {
        self.ids.remove(&data);
        self.breakers.remove(&data);
    }

    /// The member serving `key`, inserting it if needed.
    fn member(&mut self, f: &mut BreakerFamily<u8>, key: u8, now: Instant) -> Member {
        if let Some(id) = self.ids.get(&key) {
            return Member::Key(*id);
        }
        match f.insert(key, now) {
            Insert::Inserted { id, evicted } => {
                if let Some(e) = evicted {
                    self.check_evicted(e.data, e.reason, now);
                    assert_eq!(e.reason, EvictionReason::Capacity);
                    self.forget(e.data);
                }
                self.ids.insert(key, id);
                let b = CircuitBreaker::new(f.settings().breaker().clone());
                self.breakers.insert(key, (b, now));
                Member::Key(id)
            }
            Insert::Saturated(k) => {
                assert_eq!(k, key);
                assert_eq!(self.breakers.len(), MAX_KEYS as usize);
                assert!(self.breakers.values().all(|(b, _)| !idle(b)));
                Member::Overflow
            }
        }
    }

    fn shadow(&mut self, key: u8, member: Member) -> (&mut CircuitBreaker, Option<&mut Instant>) {
        match member {
            Member::Overflow => (&mut self.overflow, None),
            Member::Key(_) => {
                let (b, last) = self.breakers.get_mut(&key).unwrap();
                (b, Some(last))
            }
        }
    }
}

fn check(f: &BreakerFamily<u8>, s: &Shadow) {
    assert!(f.len() <= MAX_KEYS as usize);
    assert_eq!(f.len(), s.breakers.len());
    for (key, (b, last)) in &s.breakers {
        let id = s.ids[key];
        let fb = f.breaker(Member::Key(id)).unwrap();
        assert_eq!(fb.state(), b.state(), "key {key}");
        assert_eq!(fb.generation(), b.generation(), "key {key}");
        assert_eq!(f.last_active(id), Some(*last), "key {key}");
    }
    assert_eq!(
        f.breaker(Member::Overflow).unwrap().state(),
        s.overflow.state()
    );
    for state in BreakerState::ALL {
        let n = s
            .breakers
            .values()
            .filter(|(b, _)| b.state().kind() == state)
            .count();
        assert_eq!(f.keys_in(state), n, "{state}");
    }
    let saturated =
        s.breakers.len() == MAX_KEYS as usize && s.breakers.values().all(|(b, _)| !idle(b));
    assert_eq!(f.is_saturated(), saturated);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn family_keys_behave_as_standalone_breakers(ops in prop::collection::vec(op(), 1..120)) {
        let mut now = Instant::now();
        let mut f = BreakerFamily::new(settings(), 1);
        let mut s = Shadow {
            ids: HashMap::new(),
            breakers: HashMap::new(),
            overflow: CircuitBreaker::new(settings().breaker().clone()),
        };
        for op in ops {
            match op {
                Op::Call(key, outcome) => {
                    let m = s.member(&mut f, key, now);
                    let got = f.try_acquire(m, now).unwrap();
                    let (b, last) = s.shadow(key, m);
                    let want = b.try_acquire(now);
                    if let Some(last) = last {
                        *last = now;
                    }
                    prop_assert_eq!(got.transitions, want.transitions);
                    match (got.decision, want.decision) {
                        (Ok(p), Ok(q)) => {
                            let got = f.on_outcome(m, p, outcome, ms(1), now).unwrap();
                            let (b, _) = s.shadow(key, m);
                            prop_assert_eq!(got, b.on_outcome(q, outcome, ms(1), now));
                        }
                        (Err(a), Err(b)) => prop_assert_eq!(a, b),
                        (a, b) => prop_assert!(false, "family {:?}, standalone {:?}", a, b),
                    }
                }
                Op::Advance(n) => {
                    now += ms(n);
                    let moved = f.advance(now);
                    let mut want = Vec::new();
                    for (key, (b, last)) in s.breakers.iter_mut() {
                        let ts = b.advance(now);
                        if !ts.is_empty() {
                            *last = now;
                        }
                        want.extend(ts.into_iter().map(|t| (Member::Key(s.ids[key]), t)));
                    }
                    want.extend(s.overflow.advance(now).into_iter().map(|t| (Member::Overflow, t)));
                    prop_assert_eq!(moved.len(), want.len());
                    for m in &moved {
                        prop_assert!(want.contains(m), "{:?} not expected in {:?}", m, want);
                    }
                    for e in f.evict_idle(now) {
                        s.check_evicted(e.data, e.reason, now);
                        prop_assert_eq!(e.reason, EvictionReason::Idle);
                        s.forget(e.data);
                    }
                    for (key, (b, last)) in &s.breakers {
                        prop_assert!(!(idle(b) && now - *last >= IDLE), "key {} kept", key);
                    }
                    if let Some(d) = f.next_deadline() {
                        prop_assert!(d > now);
                    }
                }
                Op::ForceOpen(key) | Op::Disable(key) | Op::Reset(key) => {
                    let Some(&id) = s.ids.get(&key) else { continue };
                    let m = Member::Key(id);
                    let (b, last) = s.breakers.get_mut(&key).unwrap();
                    *last = now;
                    let (got, want) = match op {
                        Op::ForceOpen(_) => (f.force_open(m, now), b.force_open(now)),
                        Op::Disable(_) => (f.disable(m, now), b.disable(now)),
                        _ => (f.reset(m, now), b.reset(now)),
                    };
                    prop_assert_eq!(got.unwrap(), want);
                }
            }
            check(&f, &s);
        }
    }
}
