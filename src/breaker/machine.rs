//! [`CircuitBreaker`]: the state machine itself.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::settings::BreakerSettings;
use super::state::{
    Admission, BreakerState, CallOutcome, CircuitState, Permit, PermitKind, Rejected, Snapshot,
    Transition, TransitionReason, Transitions,
};
use super::window::{Window, WindowCounts};

/// A circuit breaker: a pure state machine driven by explicit instants.
///
/// Inputs: [`try_acquire`](Self::try_acquire) before a call, then exactly one of
/// [`on_success`](Self::on_success) / [`on_failure`](Self::on_failure) /
/// [`on_ignored`](Self::on_ignored) (or [`on_outcome`](Self::on_outcome)) with the permit;
/// [`advance`](Self::advance) when [`next_deadline`](Self::next_deadline) passes; commands
/// [`force_open`](Self::force_open), [`disable`](Self::disable), [`reset`](Self::reset).
/// Every input returns the [`Transitions`] it caused.
///
/// # Examples
/// The seed's test: three failures open the breaker and the next call is rejected at once.
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::breaker::{BreakerSettings, BreakerState, CircuitBreaker};
///
/// let settings = BreakerSettings::builder()
///     .with_max_failures(3)
///     .with_open_duration(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// let mut cb = CircuitBreaker::new(settings);
/// let now = Instant::now();
/// for _ in 0..3 {
///     let permit = cb.try_acquire(now).decision.unwrap();
///     let _ = cb.on_failure(permit, Duration::from_millis(1), now);
/// }
/// assert_eq!(cb.state().kind(), BreakerState::Open);
/// let rejected = cb.try_acquire(now).decision.unwrap_err();
/// assert_eq!(rejected.retry_after, Some(now + Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: CircuitState,
    generation: u64,
    /// Consecutive openings without a Close in between (grows the open duration).
    reopens: u32,
    window: Window,
    rng: SmallRng,
}

impl CircuitBreaker {
    /// A Closed breaker. Open-duration jitter (if configured) draws from an RNG seeded with 0;
    /// use [`with_seed`](Self::with_seed) to give each breaker its own sequence.
    pub fn new(settings: BreakerSettings) -> Self {
        Self::with_seed(settings, 0)
    }

    /// A Closed breaker whose open-duration jitter is seeded with `seed`.
    pub fn with_seed(settings: BreakerSettings, seed: u64) -> Self {
        CircuitBreaker {
            window: Window::new(settings.window()),
            settings,
            state: CircuitState::Closed {
                consecutive_failures: 0,
            },
            generation: 0,
            reopens: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    // ===== queries =====

    /// The settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The current state, as of the last input (call [`advance`](Self::advance) first to apply
    /// deadlines that have passed).
    pub fn state(&self) -> &CircuitState {
        &self.state
    }

    /// The current generation: it grows by one on every transition.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// State and generation in one copyable word, for publishing.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.generation, self.state.kind())
    }

    /// The earliest instant at which the state changes without any other input: the end of the
    /// open period, or the half-open deadline once a probe is out. `None` otherwise.
    #[inline]
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            CircuitState::Open { until } => Some(until),
            CircuitState::HalfOpen { deadline, .. } => deadline,
            _ => None,
        }
    }

    /// The Closed window's counts at `now` (empty in other states, and always empty when no
    /// rate policy is on: then nothing reads the window, so nothing is recorded).
    pub fn window_counts(&self, now: Instant) -> WindowCounts {
        self.window.counts(now)
    }

    // ===== inputs =====

    /// Applies every time-driven transition due at or before `now`.
    #[inline]
    pub fn advance(&mut self, now: Instant) -> Transitions {
        // The common case (Closed, or a deadline still ahead) does nothing more than this check;
        // it is inlined so that the empty result is built in the caller's frame (returning it
        // through an out-of-line call cost a store-forwarding stall on every decision).
        if self.next_deadline().is_none_or(|d| now < d) {
            return Transitions::default();
        }
        self.advance_due(now)
    }

    /// [`advance`](Self::advance) once a deadline has passed.
    #[cold]
    #[inline(never)]
    fn advance_due(&mut self, now: Instant) -> Transitions {
        let mut out = Transitions::default();
        if let CircuitState::HalfOpen {
            deadline: Some(deadline),
            ..
        } = self.state
        {
            if now >= deadline {
                out.push(self.open(deadline, TransitionReason::HalfOpenTimedOut));
            }
        }
        if let CircuitState::Open { until } = self.state {
            if now >= until {
                out.push(self.enter(
                    CircuitState::HalfOpen {
                        admitted: 0,
                        successes: 0,
                        failures: 0,
                        slow: 0,
                        deadline: None,
                    },
                    TransitionReason::OpenElapsed,
                    until,
                ));
            }
        }
        out
    }

    /// Asks to start a call at `now`.
    pub fn try_acquire(&mut self, now: Instant) -> Admission {
        let transitions = self.advance(now);
        let generation = self.generation;
        let decision = match &mut self.state {
            CircuitState::Closed { .. } => Ok(Permit {
                generation,
                kind: PermitKind::Closed,
            }),
            CircuitState::Disabled => Ok(Permit {
                generation,
                kind: PermitKind::Disabled,
            }),
            CircuitState::Open { until } => Err(Rejected {
                state: BreakerState::Open,
                retry_after: Some(*until),
            }),
            CircuitState::ForcedOpen => Err(Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None,
            }),
            CircuitState::HalfOpen {
                admitted, deadline, ..
            } => {
                if *admitted < self.settings.half_open_probes() {
                    *admitted += 1;
                    if deadline.is_none() {
                        *deadline = self.settings.half_open_max_wait().map(|w| now + w);
                    }
                    Ok(Permit {
                        generation,
                        kind: PermitKind::Probe,
                    })
                } else {
                    Err(Rejected {
                        state: BreakerState::HalfOpen,
                        retry_after: *deadline,
                    })
                }
            }
        };
        Admission {
            decision,
            transitions,
        }
    }

    /// Reports a successful call that took `duration`.
    pub fn on_success(&mut self, permit: Permit, duration: Duration, now: Instant) -> Transitions {
        self.on_outcome(permit, CallOutcome::Success, duration, now)
    }

    /// Reports a counted failure after `duration`.
    pub fn on_failure(&mut self, permit: Permit, duration: Duration, now: Instant) -> Transitions {
        self.on_outcome(permit, CallOutcome::Failure, duration, now)
    }

    /// Reports a call whose outcome must not count (a half-open probe hands its slot back).
    pub fn on_ignored(&mut self, permit: Permit, now: Instant) -> Transitions {
        self.on_outcome(permit, CallOutcome::Ignored, Duration::ZERO, now)
    }

    /// Reports the outcome of the call admitted with `permit`. Outcomes of permits from an earlier
    /// generation change nothing.
    pub fn on_outcome(
        &mut self,
        permit: Permit,
        outcome: CallOutcome,
        duration: Duration,
        now: Instant,
    ) -> Transitions {
        let mut out = self.advance(now);
        if permit.generation != self.generation {
            return out; // stale: admitted before the last transition
        }
        let failure = outcome == CallOutcome::Failure;
        let slow = self.settings.slow_call_rate_threshold().is_some()
            && duration > self.settings.slow_call_duration();
        let transition = match (permit.kind, outcome) {
            (PermitKind::Disabled, _) | (PermitKind::Closed, CallOutcome::Ignored) => None,
            (PermitKind::Closed, _) => self.record_closed(failure, slow, now),
            (PermitKind::Probe, _) => self.record_probe(outcome, slow, now),
        };
        if let Some(t) = transition {
            out.push(t);
        }
        out
    }

    /// Forces the breaker open until [`reset`](Self::reset) or [`disable`](Self::disable).
    pub fn force_open(&mut self, now: Instant) -> Transitions {
        self.command(CircuitState::ForcedOpen, TransitionReason::ForcedOpen, now)
    }

    /// Admits everything and counts nothing until [`reset`](Self::reset) or
    /// [`force_open`](Self::force_open).
    pub fn disable(&mut self, now: Instant) -> Transitions {
        self.command(CircuitState::Disabled, TransitionReason::Disabled, now)
    }

    /// Back to Closed with an empty window and the open duration back at its base.
    pub fn reset(&mut self, now: Instant) -> Transitions {
        self.command(
            CircuitState::Closed {
                consecutive_failures: 0,
            },
            TransitionReason::Reset,
            now,
        )
    }

    // ===== internals =====

    fn command(&mut self, to: CircuitState, reason: TransitionReason, now: Instant) -> Transitions {
        let mut out = Transitions::default();
        let already = match (self.state, to) {
            (
                CircuitState::Closed {
                    consecutive_failures,
                },
                CircuitState::Closed { .. },
            ) => {
                // Reset on a clean Closed breaker changes nothing.
                consecutive_failures == 0 && self.window.counts(now).calls == 0
            }
            (a, b) => a.kind() == b.kind(),
        };
        if !already {
            out.push(self.enter(to, reason, now));
        }
        out
    }

    fn record_closed(&mut self, failure: bool, slow: bool, now: Instant) -> Option<Transition> {
        let CircuitState::Closed {
            consecutive_failures,
        } = &mut self.state
        else {
            return None;
        };
        *consecutive_failures = if failure {
            consecutive_failures.saturating_add(1)
        } else {
            0
        };
        let consecutive = *consecutive_failures;
        // The window only feeds the rate policies: without one there is nothing to record.
        if self.settings.has_rate_policy() {
            self.window.record(failure, slow, now);
        }
        let reason = if self
            .settings
            .max_failures()
            .is_some_and(|max| consecutive >= max)
        {
            Some(TransitionReason::ConsecutiveFailures)
        } else if self.settings.has_rate_policy() {
            let counts = self.window.counts(now);
            if counts.calls < self.settings.minimum_calls() {
                None
            } else {
                self.rate_trip(counts)
            }
        } else {
            None
        };
        reason.map(|r| self.open(now, r))
    }

    /// Which rate policy trips on `counts`, if any (rates trip at ≥ their threshold).
    fn rate_trip(&self, counts: WindowCounts) -> Option<TransitionReason> {
        if self
            .settings
            .failure_rate_threshold()
            .is_some_and(|t| counts.failure_rate() >= t.get())
        {
            Some(TransitionReason::FailureRate)
        } else if self
            .settings
            .slow_call_rate_threshold()
            .is_some_and(|t| counts.slow_rate() >= t.get())
        {
            Some(TransitionReason::SlowCallRate)
        } else {
            None
        }
    }

    fn record_probe(
        &mut self,
        outcome: CallOutcome,
        slow: bool,
        now: Instant,
    ) -> Option<Transition> {
        let CircuitState::HalfOpen {
            admitted,
            successes,
            failures,
            slow: slow_count,
            deadline,
        } = &mut self.state
        else {
            return None;
        };
        match outcome {
            CallOutcome::Ignored => {
                *admitted -= 1;
                if *admitted == 0 {
                    // Nothing is out any more: nothing to wait for.
                    *deadline = None;
                }
                return None;
            }
            CallOutcome::Success => *successes += 1,
            CallOutcome::Failure => *failures += 1,
        }
        *slow_count += u32::from(slow);
        let counts = WindowCounts {
            calls: *successes + *failures,
            failures: *failures,
            slow: *slow_count,
        };
        let probes = self.settings.half_open_probes();
        if outcome == CallOutcome::Failure && self.settings.max_failures().is_some() {
            return Some(self.open(now, TransitionReason::ProbeFailed));
        }
        if self.settings.has_rate_policy() {
            if counts.calls < probes {
                return None;
            }
            return Some(match self.rate_trip(counts) {
                Some(reason) => self.open(now, reason),
                None => self.close(now),
            });
        }
        (*successes >= self.settings.half_open_successes()).then(|| self.close(now))
    }

    fn close(&mut self, now: Instant) -> Transition {
        self.enter(
            CircuitState::Closed {
                consecutive_failures: 0,
            },
            TransitionReason::ProbesSucceeded,
            now,
        )
    }

    /// Opens at `at` for the duration the consecutive-reopen count calls for.
    fn open(&mut self, at: Instant, reason: TransitionReason) -> Transition {
        if self.state.kind() == BreakerState::HalfOpen {
            self.reopens = self.reopens.saturating_add(1);
        } else {
            self.reopens = 0;
        }
        let until = at + self.open_duration();
        self.enter(CircuitState::Open { until }, reason, at)
    }

    fn open_duration(&mut self) -> Duration {
        let base = self.settings.open_duration();
        let Some(b) = self.settings.open_backoff() else {
            return base;
        };
        let grown =
            base.as_secs_f64() * b.multiplier.powi(self.reopens.min(i32::MAX as u32) as i32);
        let jitter = if b.jitter.get() > 0.0 {
            self.rng.random_range(0.0..=b.jitter.get())
        } else {
            0.0
        };
        let secs = (grown * (1.0 + jitter)).min(b.max.as_secs_f64());
        Duration::try_from_secs_f64(secs).map_or(b.max, |d| d.min(b.max))
    }

    fn enter(&mut self, to: CircuitState, reason: TransitionReason, at: Instant) -> Transition {
        let from = self.state.kind();
        if matches!(to, CircuitState::Closed { .. }) {
            self.reopens = 0;
        }
        if matches!(to, CircuitState::Closed { .. } | CircuitState::Open { .. }) {
            self.window.clear();
        }
        self.state = to;
        self.generation += 1;
        Transition {
            from,
            to: to.kind(),
            reason,
            at,
            until: match to {
                CircuitState::Open { until } => Some(until),
                _ => None,
            },
            generation: self.generation,
        }
    }
}

/// What [`CircuitBreaker::reconfigure`] kept and what it had to reset.
///
/// ```
/// use std::time::Instant;
/// use ractor_resilience_core::breaker::{BreakerSettings, CircuitBreaker};
///
/// let mut cb = CircuitBreaker::new(BreakerSettings::default());
/// let new = BreakerSettings::builder().with_max_failures(9).build().unwrap();
/// let report = cb.reconfigure(new, Instant::now());
/// assert!(report.window_kept);
/// assert_eq!(cb.settings().max_failures(), Some(9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconfigured {
    /// The sliding window was kept (its shape — count or time, and its size — is unchanged);
    /// `false`: it was replaced by an empty window of the new shape.
    pub window_kept: bool,
    /// Calls the replaced window held (0 when it was kept).
    pub window_calls_dropped: u32,
}

impl CircuitBreaker {
    /// Applies new settings in place at `now`, keeping what an operator would not want to lose:
    ///
    /// - the state and the generation (no transition, so permits already handed out stay
    ///   valid); an open period, a half-open deadline and the re-open count already decided
    ///   keep their values — the new `open_duration`, `half_open_max_wait` and backoff apply
    ///   from the next opening or probe on;
    /// - the consecutive-failure count;
    /// - the sliding window, when its shape (count or time, and size) is unchanged; otherwise
    ///   it is replaced by an empty window of the new shape ([`Reconfigured::window_kept`] says
    ///   which).
    ///
    /// The new thresholds are evaluated from the next recorded outcome on, as after any other
    /// outcome (a breaker whose count already exceeds a lowered `max_failures` opens on its
    /// next failure, not on the reload itself: a configuration change is not a failure of the
    /// dependency).
    pub fn reconfigure(&mut self, settings: BreakerSettings, now: Instant) -> Reconfigured {
        let window_kept = settings.window() == self.settings.window();
        let window_calls_dropped = if window_kept {
            0
        } else {
            let dropped = self.window.counts(now).calls;
            self.window = Window::new(settings.window());
            dropped
        };
        self.settings = settings;
        Reconfigured {
            window_kept,
            window_calls_dropped,
        }
    }
}
