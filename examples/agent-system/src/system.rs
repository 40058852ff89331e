//! Who supervises whom, and the run itself: the library's [`Registry`] spawns one breaker actor
//! per configured breaker and one timeout actor per configured timeout (shared by the agents
//! that name them), one supervised agent per configured agent comes from it, and a coordinator
//! drives the workload into them and tallies every outcome.
//!
//! ```text
//! coordinator (this module) ──call──▶ agent `llm_worker` (supervisor + N workers) ──▶ provider
//!                                       │ admits from ─▶ breaker actor `llm`
//!                                       │ races with  ─▶ timeout actor `llm`
//!                                       └ retries within budget `default`
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor_resilience::agent::{AgentHandle, CallError, CallOptions};
use ractor_resilience::breaker::{BreakerHandle, KeyedBreakerEvent, KeyedBreakerHandle};
use ractor_resilience::core::breaker::BreakerState;
use ractor_resilience::metrics::TaskOutcome;
use ractor_resilience::registry::{Registry, RegistryOptions};
use ractor_resilience::task::{CancellationToken, TaskId};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::SystemConfig;
use crate::agent::{LlmAgent, Provider};
use crate::failures::{FailureLog, FailureReason};
use crate::provider::CompletionRequest;
use crate::provider::http::HttpProvider;
use crate::provider::simulated::SimulatedProvider;
use crate::report::{Report, Tally, TransitionRecord};
use crate::settings::ProviderSettings;
use crate::timeline::{Outage, Series, Timeline};

/// Why the system could not start.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// An actor could not be spawned.
    #[error("cannot spawn {what}: {reason}")]
    Spawn {
        /// Which one.
        what: String,
        /// Why.
        reason: String,
    },
    /// The HTTP provider could not be set up (e.g. its API key variable is missing).
    #[error("provider: {0}")]
    Provider(String),
    /// The workload names no agent that exists.
    #[error("the workload has no agent to send tasks to")]
    NoAgents,
}

/// The breakers of a running system, by configured name: replaced after each reload (a reload
/// may add or remove breakers), read by the progress line and the control endpoints.
#[derive(Debug, Clone, Default)]
pub struct BreakerView(Arc<std::sync::RwLock<Breakers>>);

/// The breakers and the keyed breaker families, by name.
#[derive(Debug, Clone, Default)]
struct Breakers {
    single: BTreeMap<String, BreakerHandle>,
    keyed: BTreeMap<String, KeyedBreakerHandle>,
}

impl BreakerView {
    /// A view of `registry`'s breakers now.
    pub fn of(registry: &Registry) -> Self {
        let view = BreakerView::default();
        view.refresh(registry);
        view
    }

    /// Takes `registry`'s breakers again (after a reload).
    pub fn refresh(&self, registry: &Registry) {
        let breakers = Breakers {
            single: registry
                .breakers()
                .map(|(name, b)| (name.to_owned(), b.clone()))
                .collect(),
            keyed: registry
                .key_breakers()
                .map(|(name, k)| (name.to_owned(), k.clone()))
                .collect(),
        };
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = breakers;
    }

    /// The breakers now, by name.
    pub fn get(&self) -> BTreeMap<String, BreakerHandle> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .single
            .clone()
    }

    /// The keyed breaker families now, by name.
    pub fn families(&self) -> BTreeMap<String, KeyedBreakerHandle> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keyed
            .clone()
    }
}

impl From<Vec<BreakerHandle>> for BreakerView {
    fn from(breakers: Vec<BreakerHandle>) -> Self {
        let single = breakers
            .into_iter()
            .map(|b| (b.name().to_owned(), b))
            .collect();
        BreakerView(Arc::new(std::sync::RwLock::new(Breakers {
            single,
            keyed: BTreeMap::new(),
        })))
    }
}

/// Moves the count of retries already put in the series up to `now`; how many that adds.
fn advance(seen: &Mutex<u64>, now: u64) -> u64 {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let sent = now.saturating_sub(*seen);
    *seen = (*seen).max(now);
    sent
}

/// Records a keyed family's transitions in the run's transition list.
struct KeyedLog;

impl ractor::Actor for KeyedLog {
    type Msg = KeyedBreakerEvent;
    type State = (Arc<Mutex<Vec<TransitionRecord>>>, Instant);
    type Arguments = (Arc<Mutex<Vec<TransitionRecord>>>, Instant);

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<KeyedBreakerEvent>,
        args: Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<KeyedBreakerEvent>,
        e: KeyedBreakerEvent,
        (log, start): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        let key = e.key.as_deref().unwrap_or("overflow");
        let record = TransitionRecord {
            breaker: format!("{}[{key}]", e.breaker),
            from: e.from.to_string(),
            to: e.to.to_string(),
            at_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        log.lock().unwrap_or_else(|e| e.into_inner()).push(record);
        Ok(())
    }
}

/// The running system.
#[derive(Debug)]
pub struct System {
    /// The agents, in workload order.
    pub agents: Vec<AgentHandle<LlmAgent>>,
    /// Every breaker, by configured name (kept current across reloads).
    pub breakers: BreakerView,
    /// The configuration's named policies; a reload reconfigures them through it.
    pub registry: Arc<tokio::sync::Mutex<Registry>>,
    /// The actors that log the keyed families' transitions.
    logs: Vec<ractor::ActorCell>,
    /// Transitions seen so far.
    pub transitions: Arc<Mutex<Vec<TransitionRecord>>>,
    /// Outcomes so far.
    pub tally: Arc<Mutex<Tally>>,
    /// Time zero of the run.
    pub start: Instant,
}

impl System {
    /// Spawns every actor the configuration describes.
    pub async fn spawn(config: &SystemConfig) -> Result<System, SystemError> {
        let settings = &config.system;
        let start = Instant::now();
        let provider = match &settings.provider {
            ProviderSettings::Simulated(s) => {
                Provider::Simulated(SimulatedProvider::new(s.clone(), settings.seed, start))
            }
            ProviderSettings::Http(h) => Provider::Http(Arc::new(
                HttpProvider::new(h.clone()).map_err(|e| SystemError::Provider(e.to_string()))?,
            )),
        };
        let names: Vec<String> = if settings.workload.agents.is_empty() {
            config.agents.keys().cloned().collect()
        } else {
            settings.workload.agents.clone()
        };
        let transitions = Arc::new(Mutex::new(Vec::new()));
        // One registry of the configuration's named policies: every agent that names a breaker,
        // a timeout or a budget shares the one the registry spawned for that name.
        let log = transitions.clone();
        let options = RegistryOptions::default()
            .with_seed(settings.seed)
            .with_on_transition(move |breaker: &str, from: BreakerState, to: BreakerState| {
                let at_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                let record = TransitionRecord {
                    breaker: breaker.to_owned(),
                    from: from.to_string(),
                    to: to.to_string(),
                    at_ms,
                };
                log.lock().unwrap_or_else(|e| e.into_inner()).push(record);
            });
        let registry = Registry::spawn(config, options)
            .await
            .map_err(|e| SystemError::Spawn {
                what: "the configured policies".into(),
                reason: e.to_string(),
            })?;
        // The keyed families' transitions go to the report too, as `family[key]`.
        let mut logs = Vec::new();
        for (_, family) in registry.key_breakers() {
            let (log, _) = ractor::Actor::spawn(None, KeyedLog, (transitions.clone(), start))
                .await
                .map_err(|e| SystemError::Spawn {
                    what: "the keyed breakers' transition log".into(),
                    reason: e.to_string(),
                })?;
            logs.push(log.get_cell());
            family.subscribe(log, Some);
        }
        let mut agents = Vec::new();
        for name in &names {
            if !config.agents.contains_key(name) {
                continue;
            }
            let make = {
                let provider = provider.clone();
                move || LlmAgent {
                    provider: provider.clone(),
                }
            };
            let spawned = match registry.agent(name, make) {
                Ok(builder) => builder.spawn().await,
                Err(e) => Err(e),
            };
            let agent = spawned.map_err(|e| SystemError::Spawn {
                what: format!("agent {name}"),
                reason: e.to_string(),
            })?;
            agents.push(agent);
        }
        if agents.is_empty() {
            registry.stop();
            return Err(SystemError::NoAgents);
        }
        Ok(System {
            agents,
            breakers: BreakerView::of(&registry),
            registry: Arc::new(tokio::sync::Mutex::new(registry)),
            logs,
            transitions,
            tally: Arc::new(Mutex::new(Tally::default())),
            start,
        })
    }

    /// Breakers not closed (open, half-open, forced open), by name.
    pub fn open_breakers(&self) -> Vec<String> {
        self.breakers
            .get()
            .iter()
            .filter(|(_, b)| {
                matches!(
                    b.state(),
                    BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
                )
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A copy of the tally.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drives the workload for `duration` (or until `stop` fires), then drains: in-flight tasks
    /// get `drain_deadline` to finish, and every task still pending after that is cancelled.
    /// Returns the report once every submitted task has its outcome.
    pub async fn drive(
        &self,
        config: &SystemConfig,
        mode: &str,
        duration: Duration,
        stop: CancellationToken,
    ) -> Report {
        self.drive_recorded(config, mode, duration, stop).await.0
    }

    /// [`drive`](Self::drive), and the run's [`Timeline`]: every task's outcome (and a
    /// success's latency) in the bucket of the second it ended, the agents' retries sampled
    /// once a second, every breaker's transitions, the simulated provider's outage windows.
    pub async fn drive_recorded(
        &self,
        config: &SystemConfig,
        mode: &str,
        duration: Duration,
        stop: CancellationToken,
    ) -> (Report, Timeline) {
        let settings = &config.system;
        let series = Arc::new(Mutex::new(Series::new(
            duration.saturating_add(settings.drain_deadline),
        )));
        // The agents' retries already added to the series.
        let sampled = Arc::new(Mutex::new(0u64));
        let sampler = self.sample_retries(series.clone(), sampled.clone());
        let interval = Duration::from_secs_f64(1.0 / settings.workload.rate);
        let cancel_pending = CancellationToken::new();
        let models: Vec<Arc<str>> = settings
            .workload
            .models
            .iter()
            .map(|m| Arc::from(m.as_str()))
            .collect();
        let failure_log = Arc::new(Mutex::new(FailureLog::default()));
        let mut tasks = JoinSet::new();
        let mut n: u64 = 0;
        loop {
            let offset = interval.mul_f64(n as f64);
            if offset >= duration {
                break;
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(self.start + offset) => {}
            }
            let agent = self.agents[(n % self.agents.len() as u64) as usize].clone();
            let opts = CallOptions {
                deadline: Some(settings.workload.task_deadline),
                id: Some(TaskId(n + 1)),
                cancel: Some(cancel_pending.clone()),
                ..CallOptions::default()
            };
            let request = CompletionRequest {
                prompt: format!("task {n}: summarise the incident report"),
                max_tokens: settings.workload.max_tokens,
                model: (!models.is_empty())
                    .then(|| models[(n % models.len() as u64) as usize].clone()),
            };
            let tally = self.tally.clone();
            tally.lock().unwrap_or_else(|e| e.into_inner()).submitted += 1;
            let (series, start) = (series.clone(), self.start);
            let cancelled = cancel_pending.clone();
            let failure_log = failure_log.clone();
            tasks.spawn(async move {
                let submitted = Instant::now();
                // Once the drain deadline passes, a task still pending ends `cancelled`, whatever
                // its call would have said next: the agent's own answer to the signal can be a
                // queued attempt's dropped reply (counted `failed`, worker lost) or a provider
                // that stopped early and answered anyway (counted `succeeded`). Dropping the
                // call here stops its attempt, and the agent counts it cancelled too.
                let result = tokio::select! {
                    biased;
                    () = cancelled.cancelled() => Err(CallError::Cancelled),
                    result = agent.call_with(request, opts) => result,
                };
                {
                    let outcome = result
                        .as_ref()
                        .map_or_else(CallError::outcome, |_| TaskOutcome::Succeeded);
                    series.lock().unwrap_or_else(|e| e.into_inner()).record(
                        start.elapsed(),
                        outcome,
                        submitted.elapsed(),
                    );
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    tally.record(&result, submitted.elapsed());
                    if let Some(reason) = FailureReason::of(&result) {
                        tally.record_failure(reason);
                    }
                }
                failure_log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .log(&result, Instant::now());
            });
            while tasks.try_join_next().is_some() {}
            n += 1;
        }
        let ran_for = if stop.is_cancelled() {
            self.start.elapsed().min(duration)
        } else {
            duration
        };
        // Drain: admission has stopped; give in-flight tasks until the deadline, then cancel.
        let drained = tokio::time::timeout(settings.drain_deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                pending = tasks.len(),
                "drain deadline passed: cancelling the tasks still pending"
            );
            cancel_pending.cancel();
            while tasks.join_next().await.is_some() {}
        }
        failure_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log_flush();
        let (attempts, retries) = self
            .agents
            .iter()
            .map(|a| a.stats())
            .fold((0, 0), |(a, r), s| (a + s.attempts, r + s.retries));
        sampler.abort();
        // The retries since the last sample (a sample still in progress on another worker
        // thread counts only what this one does not: both move `sampled` forward, never back).
        let sent = advance(&sampled, retries);
        let mut series = series.lock().unwrap_or_else(|e| e.into_inner()).clone();
        series.record_retries(self.start.elapsed(), sent);
        series.finish(self.start.elapsed());
        let transitions = self
            .transitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let timeline = self.timeline(config, mode, ran_for, series, &transitions);
        let report = Report::new(
            mode,
            settings.seed,
            ran_for,
            &self.tally(),
            attempts,
            retries,
            transitions,
        );
        (report, timeline)
    }

    /// Adds the agents' retries to `series` once a second (the difference from the last
    /// sample), until aborted.
    fn sample_retries(
        &self,
        series: Arc<Mutex<Series>>,
        seen: Arc<Mutex<u64>>,
    ) -> tokio::task::JoinHandle<()> {
        let (agents, start) = (self.agents.clone(), self.start);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now: u64 = agents.iter().map(|a| a.stats().retries).sum();
                let sent = advance(&seen, now);
                series
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record_retries(start.elapsed(), sent);
            }
        })
    }

    /// The run's timeline from its series and transitions.
    fn timeline(
        &self,
        config: &SystemConfig,
        mode: &str,
        ran_for: Duration,
        series: Series,
        transitions: &[TransitionRecord],
    ) -> Timeline {
        let breakers: Vec<String> = self.breakers.get().into_keys().collect();
        let families: Vec<String> = self.breakers.families().into_keys().collect();
        let outages = match &config.system.provider {
            ProviderSettings::Simulated(s) => s
                .outages
                .iter()
                .map(|w| Outage {
                    start: w.start,
                    end: w.start + w.length,
                    model: w.model.clone(),
                })
                .collect(),
            ProviderSettings::Http(_) => Vec::new(),
        };
        let title = format!(
            "agent-system {mode}: {} tasks/s for {}, seed {}",
            config.system.workload.rate,
            humantime::format_duration(Duration::from_millis(
                u64::try_from(ran_for.as_millis()).unwrap_or(u64::MAX)
            )),
            config.system.seed
        );
        Timeline::new(title, series, &breakers, &families, transitions, outages)
    }

    /// Stops every actor.
    pub fn stop(&self) {
        for agent in &self.agents {
            agent.stop();
        }
        for log in &self.logs {
            log.stop(None);
        }
        match self.registry.try_lock() {
            Ok(registry) => registry.stop(),
            // A reload holds it: stop what the last view saw (the reload's own actors are
            // stopped with the runtime).
            Err(_) => {
                for breaker in self.breakers.get().values() {
                    breaker.stop();
                }
            }
        }
    }
}
