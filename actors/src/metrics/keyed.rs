//! Pre-registered handles of a keyed breaker family: one set per labelled key, one for
//! `key="other"` (every key without series of its own), one for `key="overflow"`, and the
//! family's own gauges and counters.

use metrics::{Counter, Gauge, counter, gauge};
use ractor_resilience_core::breaker::{BreakerState, EvictionReason};

use super::{
    BREAKER_CALLS, BREAKER_KEY_EVICTIONS, BREAKER_KEYS, BREAKER_STATE, BREAKER_TRANSITION_PAIRS,
    BREAKER_TRANSITIONS, BreakerCall,
};

/// The series of one `key` label value of a family.
#[derive(Debug)]
pub(crate) struct KeyMetrics {
    /// `resilience_circuit_breaker_state{breaker, key, state}`; none for `key="other"`, whose
    /// keys are in many states at once.
    states: Option<[Gauge; 5]>,
    calls: [Counter; 5],
    /// One per [`BREAKER_TRANSITION_PAIRS`], registered at 0.
    transitions: [Counter; BREAKER_TRANSITION_PAIRS.len()],
    breaker: String,
    key: String,
}

impl KeyMetrics {
    /// Registers every series of `key` (state gauges only `with_state`), transitions at 0.
    pub(crate) fn new(breaker: &str, key: &str, with_state: bool) -> Self {
        let (b, k) = (breaker.to_owned(), key.to_owned());
        let states = with_state.then(|| {
            BreakerState::ALL.map(|s| {
                gauge!(BREAKER_STATE, "breaker" => b.clone(), "key" => k.clone(), "state" => s.as_str())
            })
        });
        let calls = BreakerCall::ALL.map(|o| {
            counter!(BREAKER_CALLS, "breaker" => b.clone(), "key" => k.clone(), "outcome" => o.as_str())
        });
        let transitions = BREAKER_TRANSITION_PAIRS.map(|(from, to)| {
            let c = counter!(BREAKER_TRANSITIONS, "breaker" => b.clone(), "key" => k.clone(),
                "from" => from.as_str(), "to" => to.as_str());
            c.absolute(0);
            c
        });
        KeyMetrics {
            states,
            calls,
            transitions,
            breaker: b,
            key: k,
        }
    }

    /// Sets the state gauges so that exactly `state` is 1.
    pub(crate) fn state(&self, state: BreakerState) {
        if let Some(gauges) = &self.states {
            for (s, g) in BreakerState::ALL.iter().zip(gauges) {
                g.set(if *s == state { 1.0 } else { 0.0 });
            }
        }
    }

    /// Sets every state gauge to 0: the key is no longer reported on its own (it left the top
    /// keys), and its calls count under `key="other"` from now on.
    pub(crate) fn clear_state(&self) {
        if let Some(gauges) = &self.states {
            for g in gauges {
                g.set(0.0);
            }
        }
    }

    pub(crate) fn call(&self, outcome: BreakerCall) {
        self.calls[outcome as usize].increment(1);
    }

    /// The `outcome="rejected"` counter, for callers that reject without a message.
    pub(crate) fn rejected(&self) -> Counter {
        self.calls[BreakerCall::Rejected as usize].clone()
    }

    pub(crate) fn transition(&self, from: BreakerState, to: BreakerState) {
        match BREAKER_TRANSITION_PAIRS
            .iter()
            .position(|&pair| pair == (from, to))
        {
            Some(i) => self.transitions[i].increment(1),
            // Not a pair the state machine takes; counted all the same.
            None => counter!(BREAKER_TRANSITIONS, "breaker" => self.breaker.clone(),
                "key" => self.key.clone(), "from" => from.as_str(), "to" => to.as_str())
            .increment(1),
        }
        self.state(to);
    }
}

/// The family-wide series: keys per state and evictions.
#[derive(Debug)]
pub(crate) struct FamilyMetrics {
    /// Every key without series of its own.
    pub(crate) other: KeyMetrics,
    /// The overflow breaker.
    pub(crate) overflow: KeyMetrics,
    /// `resilience_circuit_breaker_keys{breaker, state}`.
    keys: [Gauge; 5],
    /// `resilience_circuit_breaker_key_evictions_total{breaker, reason}`.
    evictions: [Counter; 2],
}

impl FamilyMetrics {
    pub(crate) fn new(breaker: &str) -> Self {
        let keys = BreakerState::ALL
            .map(|s| gauge!(BREAKER_KEYS, "breaker" => breaker.to_owned(), "state" => s.as_str()));
        let evictions = EvictionReason::ALL.map(|r| {
            let c = counter!(BREAKER_KEY_EVICTIONS, "breaker" => breaker.to_owned(), "reason" => r.as_str());
            c.absolute(0);
            c
        });
        let overflow = KeyMetrics::new(breaker, crate::breaker::keyed::OVERFLOW_KEY, true);
        overflow.state(BreakerState::Closed);
        FamilyMetrics {
            other: KeyMetrics::new(breaker, crate::breaker::keyed::OTHER_KEY, false),
            overflow,
            keys,
            evictions,
        }
    }

    /// Sets the keys-per-state gauges.
    pub(crate) fn keys(&self, per_state: impl Fn(BreakerState) -> usize) {
        for (s, g) in BreakerState::ALL.iter().zip(&self.keys) {
            g.set(per_state(*s) as f64);
        }
    }

    pub(crate) fn evicted(&self, reason: EvictionReason) {
        let i = EvictionReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("ALL lists every reason");
        self.evictions[i].increment(1);
    }
}
