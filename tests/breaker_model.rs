//! Model-based property test: the breaker against a deliberately naive reference model of
//! DESIGN.md §3.1, over random sequences of acquire / report (success, failure, ignored, slow)
//! / advance-time / commands.
//!
//! The model keeps its window as a plain `VecDeque` and recomputes rates from scratch, so it
//! shares no code with the implementation. Besides "same decisions, same transitions, same
//! state", every step checks the invariants by themselves: Open never admits before its
//! deadline, HalfOpen admits at most `half_open_probes`, a stale permit never changes state,
//! only documented transitions occur, and `next_deadline()` agrees with the state.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use ractor_resilience_core::breaker::{
    BreakerSettings, BreakerState, CallOutcome, CircuitBreaker, CircuitState, Permit,
    TransitionReason,
};

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

#[derive(Debug, Clone)]
struct Cfg {
    max_failures: Option<u32>,
    /// (threshold, window size, minimum calls)
    rate: Option<(f64, usize, usize)>,
    /// (threshold, slow above this many ms)
    slow: Option<(f64, u64)>,
    window: usize,
    min_calls: usize,
    open_ms: u64,
    probes: u32,
    successes: u32,
    max_wait_ms: Option<u64>,
}

impl Cfg {
    fn settings(&self) -> BreakerSettings {
        let mut b = BreakerSettings::builder()
            .with_open_duration(Duration::from_millis(self.open_ms))
            .with_half_open_probes(self.probes)
            .with_half_open_max_wait(self.max_wait_ms.map(Duration::from_millis))
            .with_count_window(self.window as u32)
            .with_minimum_calls(self.min_calls as u32);
        b = match self.max_failures {
            Some(n) => b
                .with_max_failures(n)
                .with_half_open_successes(self.successes),
            None => b.without_max_failures(),
        };
        if let Some((threshold, _, _)) = self.rate {
            b = b.with_failure_rate(threshold);
        }
        if let Some((threshold, slow_ms)) = self.slow {
            b = b.with_slow_calls(threshold, Duration::from_millis(slow_ms));
        }
        b.build().expect("generated settings are valid")
    }

    fn has_rate(&self) -> bool {
        self.rate.is_some() || self.slow.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Closed,
    Probe,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Closed {
        consec: u32,
    },
    Open {
        until: u64,
    },
    HalfOpen {
        admitted: u32,
        succ: u32,
        fail: u32,
        slow: u32,
        deadline: Option<u64>,
    },
    Forced,
    Disabled,
}

impl MState {
    fn kind(self) -> BreakerState {
        match self {
            MState::Closed { .. } => BreakerState::Closed,
            MState::Open { .. } => BreakerState::Open,
            MState::HalfOpen { .. } => BreakerState::HalfOpen,
            MState::Forced => BreakerState::ForcedOpen,
            MState::Disabled => BreakerState::Disabled,
        }
    }
}

/// What the model says the last step must have produced.
#[derive(Debug, Clone, Default, PartialEq)]
struct Expected {
    /// `Some(Ok(kind))` for an admission, `Some(Err(retry_after_ms))` for a rejection.
    decision: Option<Result<Kind, Option<u64>>>,
    transitions: Vec<(BreakerState, BreakerState, TransitionReason, u64)>,
}

#[derive(Debug, Clone)]
struct Model {
    cfg: Cfg,
    now: u64,
    state: MState,
    generation: u64,
    window: VecDeque<(bool, bool)>,
    permits: Vec<(u64, Kind)>,
    expected: Expected,
}

#[derive(Debug, Clone)]
enum Step {
    Acquire,
    Report {
        which: Index,
        outcome: CallOutcome,
        duration_ms: u64,
    },
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

impl Model {
    fn enter(&mut self, to: MState, reason: TransitionReason, at: u64) {
        let from = self.state.kind();
        if matches!(to, MState::Closed { .. } | MState::Open { .. }) {
            self.window.clear();
        }
        self.state = to;
        self.generation += 1;
        self.expected
            .transitions
            .push((from, to.kind(), reason, at));
    }

    fn open(&mut self, at: u64, reason: TransitionReason) {
        self.enter(
            MState::Open {
                until: at + self.cfg.open_ms,
            },
            reason,
            at,
        );
    }

    fn advance(&mut self) {
        if let MState::HalfOpen {
            deadline: Some(d), ..
        } = self.state
        {
            if self.now >= d {
                self.open(d, TransitionReason::HalfOpenTimedOut);
            }
        }
        if let MState::Open { until } = self.state {
            if self.now >= until {
                let fresh = MState::HalfOpen {
                    admitted: 0,
                    succ: 0,
                    fail: 0,
                    slow: 0,
                    deadline: None,
                };
                self.enter(fresh, TransitionReason::OpenElapsed, until);
            }
        }
    }

    /// Failure rate and slow rate of a list of (failed, slow) outcomes.
    fn rates(outcomes: impl Iterator<Item = (bool, bool)>) -> (f64, f64, usize) {
        let (mut n, mut f, mut s) = (0usize, 0usize, 0usize);
        for (failed, slow) in outcomes {
            n += 1;
            f += usize::from(failed);
            s += usize::from(slow);
        }
        (f as f64 / n as f64, s as f64 / n as f64, n)
    }

    fn rate_trip(&self, failure_rate: f64, slow_rate: f64) -> Option<TransitionReason> {
        if self.cfg.rate.is_some_and(|(t, _, _)| failure_rate >= t) {
            Some(TransitionReason::FailureRate)
        } else if self.cfg.slow.is_some_and(|(t, _)| slow_rate >= t) {
            Some(TransitionReason::SlowCallRate)
        } else {
            None
        }
    }

    fn acquire(&mut self) {
        self.advance();
        let decision = match &mut self.state {
            MState::Closed { .. } => Ok(Kind::Closed),
            MState::Disabled => Ok(Kind::Disabled),
            MState::Open { until } => Err(Some(*until)),
            MState::Forced => Err(None),
            MState::HalfOpen {
                admitted, deadline, ..
            } => {
                if *admitted < self.cfg.probes {
                    *admitted += 1;
                    if deadline.is_none() {
                        *deadline = self.cfg.max_wait_ms.map(|w| self.now + w);
                    }
                    Ok(Kind::Probe)
                } else {
                    Err(*deadline)
                }
            }
        };
        if let Ok(kind) = decision {
            self.permits.push((self.generation, kind));
        }
        self.expected.decision = Some(decision);
    }

    fn report(&mut self, index: usize, outcome: CallOutcome, duration_ms: u64) {
        let (generation, kind) = self.permits.remove(index);
        self.advance();
        if generation != self.generation {
            return;
        }
        let failed = outcome == CallOutcome::Failure;
        let slow = self
            .cfg
            .slow
            .is_some_and(|(_, slow_ms)| duration_ms > slow_ms);
        match (kind, outcome, self.state) {
            (Kind::Closed, CallOutcome::Ignored, _) | (Kind::Disabled, _, _) => {}
            (Kind::Closed, _, MState::Closed { consec }) => {
                let consec = if failed { consec + 1 } else { 0 };
                self.state = MState::Closed { consec };
                // The window records only when a rate policy is on (nothing else reads it).
                if self.cfg.has_rate() {
                    if self.window.len() == self.cfg.window {
                        self.window.pop_front();
                    }
                    self.window.push_back((failed, slow));
                }
                if self.cfg.max_failures.is_some_and(|m| consec >= m) {
                    self.open(self.now, TransitionReason::ConsecutiveFailures);
                } else if self.window.len() >= self.cfg.min_calls.min(self.cfg.window) {
                    let (fr, sr, _) = Self::rates(self.window.iter().copied());
                    if let Some(reason) = self.rate_trip(fr, sr) {
                        self.open(self.now, reason);
                    }
                }
            }
            (
                Kind::Probe,
                CallOutcome::Ignored,
                MState::HalfOpen {
                    admitted,
                    succ,
                    fail,
                    slow: s,
                    deadline,
                },
            ) => {
                let admitted = admitted - 1;
                let deadline = if admitted == 0 { None } else { deadline };
                self.state = MState::HalfOpen {
                    admitted,
                    succ,
                    fail,
                    slow: s,
                    deadline,
                };
            }
            (
                Kind::Probe,
                _,
                MState::HalfOpen {
                    admitted,
                    succ,
                    fail,
                    slow: s,
                    deadline,
                },
            ) => {
                let succ = succ + u32::from(!failed);
                let fail = fail + u32::from(failed);
                let s = s + u32::from(slow);
                self.state = MState::HalfOpen {
                    admitted,
                    succ,
                    fail,
                    slow: s,
                    deadline,
                };
                if failed && self.cfg.max_failures.is_some() {
                    self.open(self.now, TransitionReason::ProbeFailed);
                } else if self.cfg.has_rate() {
                    if succ + fail == self.cfg.probes {
                        let fr = f64::from(fail) / f64::from(succ + fail);
                        let sr = f64::from(s) / f64::from(succ + fail);
                        match self.rate_trip(fr, sr) {
                            Some(reason) => self.open(self.now, reason),
                            None => self.enter(
                                MState::Closed { consec: 0 },
                                TransitionReason::ProbesSucceeded,
                                self.now,
                            ),
                        }
                    }
                } else if succ >= self.cfg.successes {
                    self.enter(
                        MState::Closed { consec: 0 },
                        TransitionReason::ProbesSucceeded,
                        self.now,
                    );
                }
            }
            (k, o, s) => {
                unreachable!("permit {k:?} of the current generation reported {o:?} in {s:?}")
            }
        }
    }

    fn command(&mut self, to: MState, reason: TransitionReason) {
        let unchanged = match (self.state, to) {
            (MState::Closed { consec }, MState::Closed { .. }) => {
                consec == 0 && self.window.is_empty()
            }
            (a, b) => a.kind() == b.kind(),
        };
        if !unchanged {
            self.enter(to, reason, self.now);
        }
    }
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        prop::option::of(1u32..5),
        prop::option::of(prop::sample::select(vec![0.25, 0.5, 1.0])),
        prop::option::of((prop::sample::select(vec![0.5, 1.0]), 1u64..50)),
        1usize..6,
        1usize..8,
        (1u64..6).prop_map(|n| n * 10),
        1u32..4,
        any::<Index>(),
        prop::option::of(1u64..100),
    )
        .prop_filter("at least one trip policy", |(m, r, s, ..)| {
            m.is_some() || r.is_some() || s.is_some()
        })
        .prop_map(
            |(max_failures, rate, slow, window, min_calls, open_ms, probes, succ, max_wait_ms)| {
                Cfg {
                    max_failures,
                    rate: rate.map(|t| (t, window, min_calls)),
                    slow,
                    window,
                    min_calls,
                    open_ms,
                    probes,
                    successes: succ.index(probes as usize) as u32 + 1,
                    max_wait_ms,
                }
            },
        )
}

struct BreakerModel;

impl ReferenceStateMachine for BreakerModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        cfg_strategy()
            .prop_map(|cfg| Model {
                cfg,
                now: 0,
                state: MState::Closed { consec: 0 },
                generation: 0,
                window: VecDeque::new(),
                permits: Vec::new(),
                expected: Expected::default(),
            })
            .boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Step> {
        let outcome = prop_oneof![
            3 => Just(CallOutcome::Success),
            3 => Just(CallOutcome::Failure),
            1 => Just(CallOutcome::Ignored),
        ];
        prop_oneof![
            4 => Just(Step::Acquire),
            4 => (any::<Index>(), outcome, 0u64..60)
                .prop_map(|(which, outcome, duration_ms)| Step::Report { which, outcome, duration_ms }),
            3 => (0u64..70).prop_map(Step::Advance),
            1 => Just(Step::ForceOpen),
            1 => Just(Step::Disable),
            1 => Just(Step::Reset),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        !matches!(step, Step::Report { .. }) || !state.permits.is_empty()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.expected = Expected::default();
        match step {
            Step::Acquire => state.acquire(),
            Step::Report {
                which,
                outcome,
                duration_ms,
            } => {
                let i = which.index(state.permits.len());
                state.report(i, *outcome, *duration_ms);
            }
            Step::Advance(ms) => {
                state.now += ms;
                state.advance();
            }
            Step::ForceOpen => state.command(MState::Forced, TransitionReason::ForcedOpen),
            Step::Disable => state.command(MState::Disabled, TransitionReason::Disabled),
            Step::Reset => state.command(MState::Closed { consec: 0 }, TransitionReason::Reset),
        }
        state
    }
}

struct Sut {
    cb: CircuitBreaker,
    permits: Vec<Permit>,
    now: u64,
}

/// The transitions the design allows, as (from, to, reason).
fn documented(from: BreakerState, to: BreakerState, reason: TransitionReason) -> bool {
    use BreakerState::*;
    use TransitionReason as R;
    match reason {
        R::ConsecutiveFailures | R::FailureRate | R::SlowCallRate if from == Closed => to == Open,
        R::FailureRate | R::SlowCallRate | R::ProbeFailed | R::HalfOpenTimedOut => {
            from == HalfOpen && to == Open
        }
        R::ProbesSucceeded => from == HalfOpen && to == Closed,
        R::OpenElapsed => from == Open && to == HalfOpen,
        R::ForcedOpen => to == ForcedOpen && from != ForcedOpen,
        R::Disabled => to == Disabled && from != Disabled,
        R::Reset => to == Closed,
        _ => false,
    }
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = BreakerModel;

    fn init_test(model: &Model) -> Sut {
        Sut {
            cb: CircuitBreaker::new(model.cfg.settings()),
            permits: Vec::new(),
            now: 0,
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let before_state = *sut.cb.state();
        let before_generation = sut.cb.generation();
        let transitions = match step {
            Step::Acquire => {
                let admission = sut.cb.try_acquire(at(sut.now));
                let got = match &admission.decision {
                    Ok(p) => Ok(if p.is_probe() {
                        Kind::Probe
                    } else if sut.cb.state().kind() == BreakerState::Disabled {
                        Kind::Disabled
                    } else {
                        Kind::Closed
                    }),
                    Err(r) => Err(r.retry_after.map(|i| (i - t0()).as_millis() as u64)),
                };
                assert_eq!(Some(got), model.expected.decision, "admission decision");
                // Open never admits before its deadline.
                if let CircuitState::Open { until } = before_state {
                    if at(sut.now) < until {
                        assert!(
                            admission.decision.is_err(),
                            "Open admitted before its deadline"
                        );
                    }
                }
                if let Ok(p) = admission.decision {
                    sut.permits.push(p);
                }
                admission.transitions
            }
            Step::Report {
                which,
                outcome,
                duration_ms,
            } => {
                let permit = sut.permits.remove(which.index(sut.permits.len()));
                let stale = permit.generation() != before_generation;
                let generation_before_advance = sut.cb.generation();
                let out = sut.cb.on_outcome(
                    permit,
                    outcome,
                    Duration::from_millis(duration_ms),
                    at(sut.now),
                );
                if stale {
                    // A stale permit never changes state (time-driven transitions aside, and
                    // reporting does not advance time here).
                    assert!(out.is_empty(), "a stale permit changed state: {out:?}");
                    assert_eq!(sut.cb.generation(), generation_before_advance);
                    assert_eq!(*sut.cb.state(), before_state);
                }
                out
            }
            Step::Advance(ms) => {
                sut.now += ms;
                sut.cb.advance(at(sut.now))
            }
            Step::ForceOpen => sut.cb.force_open(at(sut.now)),
            Step::Disable => sut.cb.disable(at(sut.now)),
            Step::Reset => sut.cb.reset(at(sut.now)),
        };
        let got: Vec<_> = transitions
            .iter()
            .map(|t| (t.from, t.to, t.reason, (t.at - t0()).as_millis() as u64))
            .collect();
        assert_eq!(got, model.expected.transitions, "transitions");
        for t in transitions {
            assert!(
                documented(t.from, t.to, t.reason),
                "undocumented transition {t:?}"
            );
            assert_eq!(t.until.is_some(), t.to == BreakerState::Open);
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        assert_eq!(sut.cb.state().kind(), model.state.kind());
        assert_eq!(sut.cb.generation(), model.generation);
        let deadline = sut
            .cb
            .next_deadline()
            .map(|i| (i - t0()).as_millis() as u64);
        match (*sut.cb.state(), model.state) {
            (
                CircuitState::Closed {
                    consecutive_failures,
                },
                MState::Closed { consec },
            ) => {
                assert_eq!(consecutive_failures, consec);
                assert_eq!(deadline, None);
            }
            (CircuitState::Open { .. }, MState::Open { until }) => {
                assert_eq!(deadline, Some(until))
            }
            (
                CircuitState::HalfOpen {
                    admitted,
                    successes,
                    failures,
                    slow,
                    ..
                },
                MState::HalfOpen {
                    admitted: a,
                    succ,
                    fail,
                    slow: s,
                    deadline: d,
                },
            ) => {
                assert!(
                    admitted <= model.cfg.probes,
                    "HalfOpen admitted more than its probes"
                );
                assert_eq!((admitted, successes, failures, slow), (a, succ, fail, s));
                assert_eq!(deadline, d);
            }
            (CircuitState::ForcedOpen, MState::Forced)
            | (CircuitState::Disabled, MState::Disabled) => {
                assert_eq!(deadline, None)
            }
            (a, b) => panic!("state mismatch: {a:?} vs model {b:?}"),
        }
        assert_eq!(sut.permits.len(), model.permits.len());
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
    #[test]
    fn breaker_matches_reference_model(sequential 1..80 => Sut);
}
