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
use std::sync::Arc;

use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::BreakerState;

use crate::agent::{Agent, AgentBuilder, SpawnError};
use crate::breaker::{BreakerActor, BreakerHandle, BreakerOptions};
use crate::budget::SharedBudget;
use crate::config::{AgentConfig, ResolvedConfig};
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
    timeouts: BTreeMap<String, TimeoutHandle>,
    budgets: BTreeMap<String, SharedBudget>,
    retry_policies: BTreeMap<String, RetryPolicy>,
    agents: BTreeMap<String, AgentConfig>,
    seed: u64,
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
            timeouts: BTreeMap::new(),
            budgets: config
                .budgets
                .iter()
                .map(|(name, settings)| (name.clone(), SharedBudget::new(*settings)))
                .collect(),
            retry_policies: config.retry_policies.clone(),
            agents: config.agents.clone(),
            seed: options.seed,
        };
        let spawn_err = |what: String| move |source| SpawnError::Spawn { what, source };
        for (name, settings) in &config.breakers {
            let mut breaker_options =
                BreakerOptions::new().with_seed(name_seed(options.seed, name));
            if let Some(hook) = &options.on_transition {
                let (hook, name) = (hook.clone(), name.clone());
                breaker_options = breaker_options
                    .with_on_state_change(Arc::new(move |from, to| hook(&name, from, to)));
            }
            match BreakerActor::spawn(name.as_str(), settings.clone(), breaker_options).await {
                Ok(handle) => {
                    registry.breakers.insert(name.clone(), handle);
                }
                Err(e) => {
                    registry.stop();
                    return Err(spawn_err(format!("breaker {name}"))(e));
                }
            }
        }
        for (name, settings) in &config.timeouts {
            let policy = TimeoutPolicy::from(settings);
            match TimeoutActor::spawn(name, policy, options.timeout_hooks.clone()).await {
                Ok(handle) => {
                    registry.timeouts.insert(name.clone(), handle);
                }
                Err(e) => {
                    registry.stop();
                    return Err(spawn_err(format!("timeout {name}"))(e));
                }
            }
        }
        Ok(registry)
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
            .workers(spec.workers.get())
            .max_pending(spec.max_pending.get())
            .queue(spec.queue)
            .breaker(breaker.clone())
            .timeout(timeout.clone())
            .retry_policy(spec.retry.as_str(), retry.clone())
            .seed(name_seed(self.seed, name));
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

    /// The timeout actor named `name`.
    pub fn timeout(&self, name: &str) -> Option<&TimeoutHandle> {
        self.timeouts.get(name)
    }

    /// Every timeout actor, by name.
    pub fn timeouts(&self) -> impl Iterator<Item = (&str, &TimeoutHandle)> {
        self.timeouts.iter().map(|(n, t)| (n.as_str(), t))
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
        for timeout in self.timeouts.values() {
            timeout.actor().stop(None);
        }
    }
}
