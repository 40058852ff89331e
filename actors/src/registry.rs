//! [`Registry`]: one owner of a configuration's named policies — a breaker actor per
//! `[breakers.NAME]`, a timeout actor per `[timeouts.NAME]`, a shared budget per
//! `[budgets.NAME]` — that builds agents sharing them by name (resilience4j's
//! `CircuitBreakerRegistry`, Polly's registry).
//!
//! Agents that name the same breaker share one breaker actor: one actor writes each
//! `breaker="…"` metric series, and a breaker opened by one agent's failures rejects the
//! others' calls. The same holds for timeouts (one estimate, one series) and budgets (one
//! balance).
//!
//! ```
//! use ractor_resilience::agent::Agent;
//! use ractor_resilience::config::ResolvedConfig;
//! use ractor_resilience::registry::{Registry, RegistryOptions};
//! use ractor_resilience::task::TaskContext;
//!
//! struct Echo;
//! impl Agent for Echo {
//!     type Task = String;
//!     type Output = String;
//!     type Error = std::io::Error;
//!     async fn handle(&mut self, s: String, _ctx: TaskContext) -> Result<String, std::io::Error> {
//!         Ok(s)
//!     }
//! }
//!
//! let text = r#"
//! [breakers.llm]
//! [retry_policies.llm]
//! [timeouts.llm]
//! [agents.writer]
//! breaker = "llm"
//! retry = "llm"
//! timeout = "llm"
//! [agents.reviewer]
//! breaker = "llm"
//! retry = "llm"
//! timeout = "llm"
//! "#;
//! let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let registry = Registry::spawn(&config, RegistryOptions::default()).await.unwrap();
//! let writer = registry.agent("writer", || Echo).unwrap().spawn().await.unwrap();
//! let reviewer = registry.agent("reviewer", || Echo).unwrap().spawn().await.unwrap();
//! // One breaker actor for both.
//! assert_eq!(writer.breaker().actor().get_id(), reviewer.breaker().actor().get_id());
//! assert_eq!(registry.breakers().count(), 1);
//! writer.stop();
//! reviewer.stop();
//! registry.stop();
//! # });
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use ractor::{ActorCell, ActorRef, ActorStatus};
use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::{BreakerSettings, BreakerState};

use crate::agent::{Agent, AgentBuilder, AgentMsg, AgentUpdate, ReconfigureError, SpawnError};
use crate::breaker::{
    BreakerActor, BreakerHandle, BreakerOptions, KeyedBreakerActor, KeyedBreakerHandle,
    KeyedBreakerOptions,
};
use crate::budget::SharedBudget;
use crate::config::{AgentConfig, KeyedBreakerConfig, ResolvedConfig, TimeoutSettings};
use crate::reply::ReplyTo;
use crate::timeout::{TimeoutActor, TimeoutHandle, TimeoutHooks, TimeoutPolicy};

/// Called on every transition of every breaker of the registry: `(breaker, from, to)`.
pub type TransitionHook = Arc<dyn Fn(&str, BreakerState, BreakerState) + Send + Sync>;

/// How a [`Registry`] spawns its actors.
///
/// # Default
/// Seed 0, no transition hook, default timeout hooks.
///
/// ```
/// let options = ractor_resilience::registry::RegistryOptions::default().with_seed(7);
/// assert_eq!(options.seed, 7);
/// ```
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Seeds each breaker's open-duration jitter (mixed with its name) and each agent's retry
    /// jitter (mixed with its name): the same seed gives the same run.
    pub seed: u64,
    /// Called on every breaker transition, with the breaker's name.
    pub on_transition: Option<TransitionHook>,
    /// The hooks of every timeout actor (`on_slow`, `on_timeout`).
    pub timeout_hooks: TimeoutHooks,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("seed", &self.seed)
            .field("on_transition", &self.on_transition.is_some())
            .finish_non_exhaustive()
    }
}

impl RegistryOptions {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the transition hook.
    pub fn with_on_transition(
        mut self,
        hook: impl Fn(&str, BreakerState, BreakerState) + Send + Sync + 'static,
    ) -> Self {
        self.on_transition = Some(Arc::new(hook));
        self
    }

    /// Sets the timeout actors' hooks.
    pub fn with_timeout_hooks(mut self, hooks: TimeoutHooks) -> Self {
        self.timeout_hooks = hooks;
        self
    }
}

/// The named policies of one configuration, each spawned once (see the module documentation).
pub struct Registry {
    breakers: BTreeMap<String, BreakerHandle>,
    keyed: BTreeMap<String, (KeyedBreakerHandle, KeyedBreakerConfig)>,
    timeouts: BTreeMap<String, (TimeoutHandle, TimeoutSettings)>,
    budgets: BTreeMap<String, SharedBudget>,
    retry_policies: BTreeMap<String, RetryPolicy>,
    agents: BTreeMap<String, AgentConfig>,
    options: RegistryOptions,
    /// The agents built from this registry and spawned, for [`reconfigure`](Self::reconfigure).
    live: LiveAgents,
}

/// Sends an [`AgentUpdate`] to one running agent, whatever its task type.
type Reconfigure = Arc<
    dyn Fn(AgentUpdate) -> Pin<Box<dyn Future<Output = Result<(), ReconfigureError>> + Send>>
        + Send
        + Sync,
>;

/// One agent spawned from a registry's builder.
struct LiveAgent {
    name: String,
    cell: ActorCell,
    reconfigure: Reconfigure,
}

impl LiveAgent {
    fn is_running(&self) -> bool {
        matches!(
            self.cell.get_status(),
            ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
        )
    }
}

/// The agents a registry's builders spawned (shared with those builders).
#[derive(Clone, Default)]
pub(crate) struct LiveAgents(Arc<Mutex<Vec<LiveAgent>>>);

impl LiveAgents {
    /// Called by a builder once its agent runs.
    pub(crate) fn push<A: Agent>(&self, name: &str, actor: &ActorRef<AgentMsg<A>>) {
        let target = actor.clone();
        let reconfigure: Reconfigure = Arc::new(move |update| {
            let target = target.clone();
            Box::pin(async move {
                let (reply, answer) = ReplyTo::port();
                target
                    .cast(AgentMsg::Reconfigure(Box::new(update), reply))
                    .map_err(|_| ReconfigureError::Unavailable)?;
                answer.await.map_err(|_| ReconfigureError::Unavailable)?
            })
        });
        let mut live = self.lock();
        live.retain(LiveAgent::is_running);
        live.push(LiveAgent {
            name: name.to_owned(),
            cell: actor.get_cell(),
            reconfigure,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LiveAgent>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running ones: (name, how to reconfigure it).
    fn running(&self) -> Vec<(String, Reconfigure)> {
        let mut live = self.lock();
        live.retain(LiveAgent::is_running);
        live.iter()
            .map(|a| (a.name.clone(), a.reconfigure.clone()))
            .collect()
    }
}

/// Why [`Registry::reconfigure`] refused a configuration. Nothing was changed.
///
/// ```
/// use ractor_resilience::registry::ReloadError;
///
/// let e = ReloadError { reasons: vec!["agents.writer: removed, but it is running".into()] };
/// assert_eq!(e.to_string(), "agents.writer: removed, but it is running");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", reasons.join("; "))]
pub struct ReloadError {
    /// Each problem, `field: reason`.
    pub reasons: Vec<String>,
}

/// What [`Registry::reconfigure`] did, one line per policy touched (for the reload's log).
///
/// ```
/// use ractor_resilience::registry::ReloadReport;
///
/// let report = ReloadReport::default();
/// assert!(report.actions.is_empty() && report.failures.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// What was done: `breakers.llm: reconfigured in place (state and window kept)`,
    /// `timeouts.fast: spawned`, `budgets.old: removed`, `agents.writer: resized to 8 workers`.
    pub actions: Vec<String>,
    /// Policies that could not be changed (an actor that stopped meanwhile), `policy: reason`.
    /// The rest of the configuration was applied.
    pub failures: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.breakers.keys().collect::<Vec<_>>())
            .field("timeouts", &self.timeouts.keys().collect::<Vec<_>>())
            .field("budgets", &self.budgets.keys().collect::<Vec<_>>())
            .field("agents", &self.agents.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The names `have` holds and `want` does not.
fn gone<V, W>(have: &BTreeMap<String, V>, want: &BTreeMap<String, W>) -> Vec<String> {
    have.keys()
        .filter(|name| !want.contains_key(*name))
        .cloned()
        .collect()
}

/// A stable 64-bit mix of a name (FNV-1a): seeds that differ per name, the same on every run.
fn name_seed(seed: u64, name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    seed ^ hash
}

impl Registry {
    /// Spawns a breaker actor per `[breakers.NAME]` and a timeout actor per `[timeouts.NAME]`
    /// of `config`, and makes a budget per `[budgets.NAME]`. On an error, whatever was spawned
    /// is stopped again.
    pub async fn spawn<X>(
        config: &ResolvedConfig<X>,
        options: RegistryOptions,
    ) -> Result<Self, SpawnError> {
        let mut registry = Registry {
            breakers: BTreeMap::new(),
            keyed: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            budgets: config
                .budgets
                .iter()
                .map(|(name, settings)| (name.clone(), SharedBudget::new(*settings)))
                .collect(),
            retry_policies: config.retry_policies.clone(),
            agents: config.agents.clone(),
            options,
            live: LiveAgents::default(),
        };
        for (name, settings) in &config.breakers {
            match registry.spawn_breaker(name, settings).await {
                Ok(handle) => {
                    registry.breakers.insert(name.clone(), handle);
                }
                Err(e) => {
                    registry.stop();
                    return Err(e);
                }
            }
        }
        for (name, family) in &config.keyed_breakers {
            match registry.spawn_family(name, family).await {
                Ok(handle) => {
                    registry
                        .keyed
                        .insert(name.clone(), (handle, family.clone()));
                }
                Err(e) => {
                    registry.stop();
                    return Err(e);
                }
            }
        }
        for (name, settings) in &config.timeouts {
            match registry.spawn_timeout(name, settings).await {
                Ok(handle) => {
                    registry
                        .timeouts
                        .insert(name.clone(), (handle, settings.clone()));
                }
                Err(e) => {
                    registry.stop();
                    return Err(e);
                }
            }
        }
        Ok(registry)
    }

    async fn spawn_breaker(
        &self,
        name: &str,
        settings: &BreakerSettings,
    ) -> Result<BreakerHandle, SpawnError> {
        let options = &self.options;
        let mut breaker_options = BreakerOptions::new().with_seed(name_seed(options.seed, name));
        if let Some(hook) = &options.on_transition {
            let (hook, name) = (hook.clone(), name.to_owned());
            breaker_options = breaker_options
                .with_on_state_change(Arc::new(move |from, to| hook(&name, from, to)));
        }
        BreakerActor::spawn(name, settings.clone(), breaker_options)
            .await
            .map_err(|source| SpawnError::Spawn {
                what: format!("breaker {name}"),
                source,
            })
    }

    async fn spawn_family(
        &self,
        name: &str,
        config: &KeyedBreakerConfig,
    ) -> Result<KeyedBreakerHandle, SpawnError> {
        let options = KeyedBreakerOptions::new()
            .with_seed(name_seed(self.options.seed, name))
            .with_metric_keys(config.metric_keys.iter().cloned())
            .with_metric_top_keys(config.metric_top_keys);
        KeyedBreakerActor::spawn(name, config.family.clone(), options)
            .await
            .map_err(|source| SpawnError::Spawn {
                what: format!("keyed breaker {name}"),
                source,
            })
    }

    async fn spawn_timeout(
        &self,
        name: &str,
        settings: &TimeoutSettings,
    ) -> Result<TimeoutHandle, SpawnError> {
        let policy = TimeoutPolicy::from(settings);
        TimeoutActor::spawn(name, policy, self.options.timeout_hooks.clone())
            .await
            .map_err(|source| SpawnError::Spawn {
                what: format!("timeout {name}"),
                source,
            })
    }

    /// Applies a new configuration to the running policies, in place (hot reload), keeping
    /// their state:
    ///
    /// - a breaker keeps its state, generation and (same shape) window
    ///   ([`BreakerHandle::reconfigure`]);
    /// - a timeout actor keeps its estimator's samples ([`TimeoutHandle::reconfigure`]);
    /// - a budget keeps its balance ([`SharedBudget::reconfigure`]);
    /// - every running agent built from this registry gets its new pool size, admission bound,
    ///   queue and retry policy ([`AgentUpdate`]);
    /// - policies the file adds are spawned, policies it removes are stopped.
    ///
    /// It is checked first against what runs, and refused as a whole ([`ReloadError`],
    /// nothing changed) if a running agent was removed or would use another breaker, timeout,
    /// budget or retry policy *name* (fixed at spawn: stop the agent first). Unchanged
    /// policies are not touched.
    ///
    /// ```
    /// use ractor_resilience::config::ResolvedConfig;
    /// use ractor_resilience::registry::{Registry, RegistryOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let old = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 5\n", "a.toml").unwrap();
    /// let mut registry = Registry::spawn(&old, RegistryOptions::default()).await.unwrap();
    /// registry.breaker("llm").unwrap().force_open().unwrap();
    ///
    /// let new = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 3\n[breakers.db]\n", "a.toml").unwrap();
    /// let report = registry.reconfigure(&new).await.unwrap();
    /// assert_eq!(report.actions, [
    ///     "breakers.db: spawned",
    ///     "breakers.llm: reconfigured in place (state, generation and window kept)",
    /// ]);
    /// let llm = registry.breaker("llm").unwrap();
    /// assert_eq!(llm.settings().max_failures(), Some(3));
    /// assert_eq!(llm.status().await.unwrap().state.to_string(), "forced_open");
    /// registry.stop();
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`ReloadError`] when the new configuration does not fit the running agents.
    pub async fn reconfigure<X>(
        &mut self,
        config: &ResolvedConfig<X>,
    ) -> Result<ReloadReport, ReloadError> {
        let running = self.live.running();
        self.check_running(config, &running)?;
        let mut report = ReloadReport::default();
        self.reload_breakers(config, &mut report).await;
        self.reload_families(config, &mut report).await;
        self.reload_timeouts(config, &mut report).await;
        self.reload_budgets(config, &mut report);
        self.reload_agents(config, &running, &mut report).await;
        self.retry_policies = config.retry_policies.clone();
        self.agents = config.agents.clone();
        for line in &report.actions {
            tracing::info!(change = %line, "reload");
        }
        for line in &report.failures {
            tracing::warn!(failure = %line, "reload");
        }
        Ok(report)
    }

    /// A running agent must stay in the file and keep the policy names it was built with.
    fn check_running<X>(
        &self,
        config: &ResolvedConfig<X>,
        running: &[(String, Reconfigure)],
    ) -> Result<(), ReloadError> {
        let mut reasons = Vec::new();
        let names: std::collections::BTreeSet<&String> = running.iter().map(|(n, _)| n).collect();
        for name in names {
            let (Some(old), new) = (self.agents.get(name), config.agents.get(name)) else {
                continue;
            };
            let Some(new) = new else {
                reasons.push(format!(
                    "agents.{name}: removed from the configuration, but the agent is running (stop it first)"
                ));
                continue;
            };
            let fields = [
                ("breaker", Some(&old.breaker), Some(&new.breaker)),
                (
                    "key_breaker",
                    old.key_breaker.as_ref(),
                    new.key_breaker.as_ref(),
                ),
                ("retry", Some(&old.retry), Some(&new.retry)),
                ("timeout", Some(&old.timeout), Some(&new.timeout)),
                ("budget", old.budget.as_ref(), new.budget.as_ref()),
            ];
            for (field, before, after) in fields {
                if before != after {
                    let show =
                        |v: Option<&String>| v.map_or("none".to_owned(), |v| format!("`{v}`"));
                    reasons.push(format!(
                        "agents.{name}.{field}: changed from {} to {}; which {field} a running agent uses is fixed when it is spawned (restart it to change this)",
                        show(before),
                        show(after)
                    ));
                }
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(ReloadError { reasons })
        }
    }

    async fn reload_breakers<X>(&mut self, config: &ResolvedConfig<X>, report: &mut ReloadReport) {
        for name in gone(&self.breakers, &config.breakers) {
            if let Some(handle) = self.breakers.remove(&name) {
                handle.stop();
                report.actions.push(format!("breakers.{name}: stopped"));
            }
        }
        for (name, settings) in &config.breakers {
            match self.breakers.get(name) {
                None => match self.spawn_breaker(name, settings).await {
                    Ok(handle) => {
                        self.breakers.insert(name.clone(), handle);
                        report.actions.push(format!("breakers.{name}: spawned"));
                    }
                    Err(e) => report.failures.push(format!("breakers.{name}: {e}")),
                },
                Some(handle) if handle.settings() != *settings => {
                    match handle.reconfigure(settings.clone()).await {
                        Ok(r) if r.window_kept => report.actions.push(format!(
                            "breakers.{name}: reconfigured in place (state, generation and window kept)"
                        )),
                        Ok(r) => report.actions.push(format!(
                            "breakers.{name}: reconfigured in place (state and generation kept; the window changed shape and starts empty, {} calls dropped)",
                            r.window_calls_dropped
                        )),
                        Err(e) => report.failures.push(format!("breakers.{name}: {e}")),
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Keyed families: added ones are spawned, removed ones stopped, changed ones reconfigured
    /// in place (every key keeps its state). New metric label options wait for a restart.
    async fn reload_families<X>(&mut self, config: &ResolvedConfig<X>, report: &mut ReloadReport) {
        for name in gone(&self.keyed, &config.keyed_breakers) {
            if let Some((handle, _)) = self.keyed.remove(&name) {
                handle.stop();
                report.actions.push(format!("breakers.{name}: stopped"));
            }
        }
        for (name, family) in &config.keyed_breakers {
            match self.keyed.get(name) {
                None => match self.spawn_family(name, family).await {
                    Ok(handle) => {
                        self.keyed.insert(name.clone(), (handle, family.clone()));
                        report.actions.push(format!("breakers.{name}: spawned"));
                    }
                    Err(e) => report.failures.push(format!("breakers.{name}: {e}")),
                },
                Some((handle, current)) if current != family => {
                    if (&current.metric_keys, current.metric_top_keys)
                        != (&family.metric_keys, family.metric_top_keys)
                    {
                        report.failures.push(format!(
                            "breakers.{name}: metric_keys and metric_top_keys apply on a restart (the series already registered stay)"
                        ));
                    }
                    if current.family != family.family {
                        match handle.reconfigure(family.family.clone()).await {
                            Ok(0) => report.actions.push(format!(
                                "breakers.{name}: reconfigured in place (every key keeps its state and window)"
                            )),
                            Ok(n) => report.actions.push(format!(
                                "breakers.{name}: reconfigured in place (every key keeps its state; {n} windows changed shape and start empty)"
                            )),
                            Err(e) => {
                                report.failures.push(format!("breakers.{name}: {e}"));
                                continue;
                            }
                        }
                    }
                    if let Some((_, kept)) = self.keyed.get_mut(name) {
                        kept.family = family.family.clone();
                    }
                }
                Some(_) => {}
            }
        }
    }

    async fn reload_timeouts<X>(&mut self, config: &ResolvedConfig<X>, report: &mut ReloadReport) {
        for name in gone(&self.timeouts, &config.timeouts) {
            if let Some((handle, _)) = self.timeouts.remove(&name) {
                handle.actor().stop(None);
                report.actions.push(format!("timeouts.{name}: stopped"));
            }
        }
        for (name, settings) in &config.timeouts {
            match self.timeouts.get_mut(name) {
                None => match self.spawn_timeout(name, settings).await {
                    Ok(handle) => {
                        self.timeouts
                            .insert(name.clone(), (handle, settings.clone()));
                        report.actions.push(format!("timeouts.{name}: spawned"));
                    }
                    Err(e) => report.failures.push(format!("timeouts.{name}: {e}")),
                },
                Some((handle, current)) if current != settings => {
                    match handle.reconfigure(TimeoutPolicy::from(settings)).await {
                        Ok(r) => {
                            *current = settings.clone();
                            report.actions.push(if r.estimator_kept {
                                format!("timeouts.{name}: reconfigured in place (estimator samples kept)")
                            } else if matches!(settings, TimeoutSettings::Adaptive(_)) {
                                format!("timeouts.{name}: reconfigured in place (a new estimator starts empty)")
                            } else {
                                format!("timeouts.{name}: reconfigured in place")
                            });
                        }
                        Err(e) => report.failures.push(format!("timeouts.{name}: {e}")),
                    }
                }
                Some(_) => {}
            }
        }
    }

    fn reload_budgets<X>(&mut self, config: &ResolvedConfig<X>, report: &mut ReloadReport) {
        for name in gone(&self.budgets, &config.budgets) {
            self.budgets.remove(&name);
            report.actions.push(format!("budgets.{name}: removed"));
        }
        for (name, settings) in &config.budgets {
            match self.budgets.get(name) {
                None => {
                    self.budgets
                        .insert(name.clone(), SharedBudget::new(*settings));
                    report.actions.push(format!("budgets.{name}: created"));
                }
                Some(budget) if budget.settings() != *settings => {
                    report.actions.push(if budget.reconfigure(*settings) {
                        format!("budgets.{name}: reconfigured in place (balance kept)")
                    } else {
                        format!("budgets.{name}: reconfigured in place (retry_percent switched to or from 0: the balance starts empty)")
                    });
                }
                Some(_) => {}
            }
        }
    }

    async fn reload_agents<X>(
        &self,
        config: &ResolvedConfig<X>,
        running: &[(String, Reconfigure)],
        report: &mut ReloadReport,
    ) {
        for (name, reconfigure) in running {
            let (Some(old), Some(new)) = (self.agents.get(name), config.agents.get(name)) else {
                continue;
            };
            let (Some(old_retry), Some(new_retry)) = (
                self.retry_policies.get(&old.retry),
                config.retry_policies.get(&new.retry),
            ) else {
                continue;
            };
            if old == new && old_retry == new_retry {
                continue;
            }
            let update =
                AgentUpdate::new(new.workers.get(), new.max_pending.get(), new_retry.clone())
                    .with_queue(new.queue);
            match reconfigure(update).await {
                Ok(()) => report.actions.push(format!(
                    "agents.{name}: reconfigured ({} workers, max_pending {}, retry policy `{}`)",
                    new.workers, new.max_pending, new.retry
                )),
                Err(e) => report.failures.push(format!("agents.{name}: {e}")),
            }
        }
    }

    /// A builder for the configured agent `name`, wired to the registry's shared breaker,
    /// timeout actor and budget, with its pool size, admission bound, queue and retry policy
    /// from the configuration. The agent's retry jitter is seeded from the registry's seed and
    /// its name.
    pub fn agent<A: Agent>(
        &self,
        name: &str,
        make: impl Fn() -> A + Send + Sync + 'static,
    ) -> Result<AgentBuilder<A>, SpawnError> {
        let spec = self
            .agents
            .get(name)
            .ok_or_else(|| SpawnError::UnknownAgent(name.to_owned()))?;
        // A loaded configuration resolves every name; a hand-built one may not.
        let missing = |what: &str, key: &str| SpawnError::Invalid {
            setting: "agents",
            reason: format!(
                "agent `{name}` names {what} `{key}`, which the registry does not have"
            ),
        };
        let breaker = self
            .breakers
            .get(&spec.breaker)
            .ok_or_else(|| missing("breaker", &spec.breaker))?;
        let timeout = self
            .timeouts
            .get(&spec.timeout)
            .ok_or_else(|| missing("timeout", &spec.timeout))?;
        let retry = self
            .retry_policies
            .get(&spec.retry)
            .ok_or_else(|| missing("retry policy", &spec.retry))?;
        let mut builder = AgentBuilder::new(name, make)
            .register_with(self.live.clone())
            .workers(spec.workers.get())
            .max_pending(spec.max_pending.get())
            .queue(spec.queue)
            .breaker(breaker.clone())
            .timeout(timeout.0.clone())
            .retry_policy(spec.retry.as_str(), retry.clone())
            .seed(name_seed(self.options.seed, name));
        if let Some(family) = &spec.key_breaker {
            let (family, _) = self
                .keyed
                .get(family)
                .ok_or_else(|| missing("keyed breaker", family))?;
            builder = builder.key_breaker(family.clone());
        }
        if let Some(budget) = &spec.budget {
            let budget = self
                .budgets
                .get(budget)
                .ok_or_else(|| missing("budget", budget))?;
            builder = builder.budget(budget.clone());
        }
        Ok(builder)
    }

    /// The breaker named `name`.
    pub fn breaker(&self, name: &str) -> Option<&BreakerHandle> {
        self.breakers.get(name)
    }

    /// Every breaker, by name.
    pub fn breakers(&self) -> impl Iterator<Item = (&str, &BreakerHandle)> {
        self.breakers.iter().map(|(n, b)| (n.as_str(), b))
    }

    /// The keyed breaker family named `name`.
    pub fn key_breaker(&self, name: &str) -> Option<&KeyedBreakerHandle> {
        self.keyed.get(name).map(|(k, _)| k)
    }

    /// Every keyed breaker family, by name.
    pub fn key_breakers(&self) -> impl Iterator<Item = (&str, &KeyedBreakerHandle)> {
        self.keyed.iter().map(|(n, (k, _))| (n.as_str(), k))
    }

    /// The timeout actor named `name`.
    pub fn timeout(&self, name: &str) -> Option<&TimeoutHandle> {
        self.timeouts.get(name).map(|(t, _)| t)
    }

    /// Every timeout actor, by name.
    pub fn timeouts(&self) -> impl Iterator<Item = (&str, &TimeoutHandle)> {
        self.timeouts.iter().map(|(n, (t, _))| (n.as_str(), t))
    }

    /// The budget named `name`.
    pub fn budget(&self, name: &str) -> Option<&SharedBudget> {
        self.budgets.get(name)
    }

    /// The configured agents' names.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// Stops every breaker and timeout actor (agents built from the registry are stopped by
    /// their handles; a stopped breaker fails closed, so stop agents first).
    pub fn stop(&self) {
        for breaker in self.breakers.values() {
            breaker.stop();
        }
        for (family, _) in self.keyed.values() {
            family.stop();
        }
        for (timeout, _) in self.timeouts.values() {
            timeout.actor().stop(None);
        }
    }
}
