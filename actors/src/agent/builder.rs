//! [`AgentBuilder`]: spawns a supervised agent with its stack (timeout → retry → breaker), from
//! code or from a configuration file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use ractor::{Actor, ActorCell};
use ractor_resilience_core::backoff::RetryPolicy;
use ractor_resilience_core::breaker::BreakerSettings;
use ractor_resilience_core::queue::CodelSettings;

use super::counts::Counts;
use super::deadline::AgentTimeout;
use super::dispatch::Dispatch;
use super::handle::AgentHandle;
use super::shared::{RetryHook, Shared};
use super::supervisor::{SupervisionSettings, SupervisorActor, SupervisorArgs};
use super::worker::AgentFactory;
use super::{Agent, AttemptError};
use crate::breaker::{BreakerActor, BreakerHandle, BreakerOptions, KeyedBreakerHandle};
use crate::budget::SharedBudget;
use crate::metrics::AgentMetrics;
use crate::timeout::{InlineTimeout, TimeoutActor, TimeoutHandle, TimeoutHooks, TimeoutPolicy};

/// Why an agent could not be spawned.
///
/// ```
/// use ractor_resilience::agent::SpawnError;
///
/// let e = SpawnError::UnknownAgent("nope".into());
/// assert_eq!(e.to_string(), "no agent named `nope` in the configuration");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// ractor refused to spawn an actor.
    #[error("cannot spawn `{what}`: {source}")]
    Spawn {
        /// Which actor.
        what: String,
        /// ractor's reason.
        #[source]
        source: ractor::SpawnErr,
    },
    /// The configuration has no agent of that name.
    #[error("no agent named `{0}` in the configuration")]
    UnknownAgent(String),
    /// A builder setting is invalid (named as the configuration spells it).
    #[error("invalid `{setting}`: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Builds a supervised agent.
///
/// Setters never fix a mistake silently: an invalid value (0 workers, an admission bound below
/// the pool size, a breaker given both as settings and as a shared handle) makes
/// [`spawn`](Self::spawn) fail with [`SpawnError::Invalid`] naming the setting.
///
/// # Default
/// 4 workers (the configuration's default), 1000 pending tasks at most, the queue shedding with
/// [`CodelSettings::default`], a breaker with the seed's defaults
/// ([`BreakerSettings::default`]), the seed's retry policy ([`RetryPolicy::default`]), a fixed
/// 30 s timeout, no retry budget, default [`SupervisionSettings`].
///
/// ```
/// use ractor_resilience::agent::{Agent, AgentBuilder};
/// use ractor_resilience::task::TaskContext;
///
/// struct Double;
/// impl Agent for Double {
///     type Task = u64;
///     type Output = u64;
///     type Error = std::io::Error;
///     async fn handle(&mut self, n: u64, _ctx: TaskContext) -> Result<u64, std::io::Error> {
///         Ok(2 * n)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let agent = AgentBuilder::new("double", || Double).workers(2).spawn().await.unwrap();
/// assert_eq!(agent.call(21).await.unwrap(), 42);
/// agent.stop();
/// # });
/// ```
pub struct AgentBuilder<A: Agent> {
    name: Arc<str>,
    make: AgentFactory<A>,
    workers: usize,
    max_pending: usize,
    codel: Option<CodelSettings>,
    breaker: Option<BreakerHandle>,
    breaker_settings: (Arc<str>, BreakerSettings),
    breaker_settings_given: bool,
    keyed: Option<KeyedBreakerHandle>,
    retry: (Arc<str>, RetryPolicy),
    timeout: Option<TimeoutHandle>,
    timeout_policy: (Arc<str>, TimeoutPolicy),
    budget: Option<SharedBudget>,
    supervision: SupervisionSettings,
    on_retry: Option<RetryHook<A::Error>>,
    seed: u64,
    /// The first invalid setting, reported by `spawn`.
    invalid: Option<(&'static str, String)>,
    /// The registry that built this (its reloads reach the agent).
    live: Option<crate::registry::LiveAgents>,
}

impl<A: Agent> std::fmt::Debug for AgentBuilder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl<A: Agent> AgentBuilder<A> {
    /// An agent called `name` whose workers are made by `make` (called again after a restart).
    pub fn new(name: impl Into<Arc<str>>, make: impl Fn() -> A + Send + Sync + 'static) -> Self {
        let name = name.into();
        AgentBuilder {
            make: Arc::new(make),
            workers: crate::config::DEFAULT_WORKERS,
            max_pending: crate::config::DEFAULT_MAX_PENDING,
            codel: Some(CodelSettings::default()),
            breaker: None,
            breaker_settings: (name.clone(), BreakerSettings::default()),
            breaker_settings_given: false,
            keyed: None,
            retry: (name.clone(), RetryPolicy::default()),
            timeout: None,
            timeout_policy: (
                name.clone(),
                TimeoutPolicy::Fixed(std::time::Duration::from_secs(30)),
            ),
            budget: None,
            supervision: SupervisionSettings::default(),
            on_retry: None,
            seed: 0x5eed,
            invalid: None,
            live: None,
            name,
        }
    }

    fn invalid(&mut self, setting: &'static str, reason: String) {
        self.invalid.get_or_insert((setting, reason));
    }

    /// Pool size: how many tasks run at once (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        if n == 0 {
            self.invalid("workers", "must be at least 1".into());
        }
        self.workers = n;
        self
    }

    /// Admission bound (queued + in flight, at least `workers`); beyond it callers get
    /// `Overloaded` at once.
    pub fn max_pending(mut self, n: usize) -> Self {
        if n == 0 {
            self.invalid("max_pending", "must be at least 1".into());
        }
        self.max_pending = n;
        self
    }

    /// How the queue sheds under sustained overload: CoDel with these settings, or `None` for a
    /// plain FIFO queue that never sheds (tasks then wait up to their deadline).
    pub fn queue(mut self, codel: Option<CodelSettings>) -> Self {
        self.codel = codel;
        self
    }

    /// A breaker of its own, named `name` (a metrics label). Not together with
    /// [`breaker`](Self::breaker).
    pub fn breaker_settings(
        mut self,
        name: impl Into<Arc<str>>,
        settings: BreakerSettings,
    ) -> Self {
        if self.breaker.is_some() {
            self.invalid(
                "breaker_settings",
                "the agent already shares a breaker (`breaker`): give one or the other".into(),
            );
        }
        self.breaker_settings = (name.into(), settings);
        self.breaker_settings_given = true;
        self
    }

    /// An existing breaker, shared with other agents. Not together with
    /// [`breaker_settings`](Self::breaker_settings).
    pub fn breaker(mut self, breaker: BreakerHandle) -> Self {
        if self.breaker_settings_given {
            self.invalid(
                "breaker",
                "the agent already has breaker settings of its own (`breaker_settings`): give one or the other".into(),
            );
        }
        self.breaker = Some(breaker);
        self
    }

    /// A keyed breaker family (shareable) that admits each task by its key — the model,
    /// endpoint or tenant it calls ([`Agent::breaker_key`](super::Agent::breaker_key), or
    /// [`CallOptions::breaker_key`](super::CallOptions::breaker_key)) — besides the agent's own
    /// breaker: one key's breaker opening rejects that key's tasks while the others keep
    /// running. Every attempt is recorded by both.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience::agent::{Agent, AgentBuilder, CallError, CallOptions};
    /// use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerOptions};
    /// use ractor_resilience::core::breaker::{BreakerSettings, FamilySettings};
    /// use ractor_resilience::task::TaskContext;
    ///
    /// struct Llm;
    /// impl Agent for Llm {
    ///     type Task = (String, String); // (model, prompt)
    ///     type Output = String;
    ///     type Error = std::io::Error;
    ///     async fn handle(&mut self, (model, _): (String, String), _ctx: TaskContext) -> Result<String, std::io::Error> {
    ///         if model == "broken" { Err(std::io::Error::other("down")) } else { Ok(model) }
    ///     }
    ///     fn breaker_key((model, _): &(String, String)) -> Option<&str> {
    ///         Some(model)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let one_failure = BreakerSettings::builder().with_max_failures(1).build().unwrap();
    /// let models = KeyedBreakerActor::spawn("models", FamilySettings::new(one_failure), KeyedBreakerOptions::default()).await.unwrap();
    /// let agent = AgentBuilder::new("llm", || Llm).key_breaker(models.clone()).spawn().await.unwrap();
    /// let task = |m: &str| (m.to_string(), "hi".to_string());
    /// assert!(agent.call(task("broken")).await.is_err());
    /// # tokio::time::sleep(Duration::from_millis(20)).await; // the family applies the failure
    /// match agent.call(task("broken")).await {
    ///     Err(CallError::Rejected { breaker, .. }) => assert_eq!(&*breaker, "models[broken]"),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(agent.call(task("fine")).await.unwrap(), "fine");
    /// agent.stop();
    /// models.stop();
    /// # });
    /// ```
    pub fn key_breaker(mut self, family: KeyedBreakerHandle) -> Self {
        self.keyed = Some(family);
        self
    }

    /// The retry policy, named `name` (a metrics label).
    pub fn retry_policy(mut self, name: impl Into<Arc<str>>, policy: RetryPolicy) -> Self {
        self.retry = (name.into(), policy);
        self
    }

    /// Its own timeout policy, named `name` (the `timeout` metric label). An adaptive policy
    /// gets a [`TimeoutActor`] of its own (the estimate has one writer); a fixed or
    /// per-operation policy has nothing to learn, so the agent keeps it in place, with no actor.
    pub fn timeout_policy(mut self, name: impl Into<Arc<str>>, policy: TimeoutPolicy) -> Self {
        self.timeout_policy = (name.into(), policy);
        self
    }

    /// An existing timeout actor, shared with other agents.
    pub fn timeout(mut self, timeout: TimeoutHandle) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A retry budget (shareable: clone one [`SharedBudget`] into several agents).
    pub fn budget(mut self, budget: SharedBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Worker restart policy.
    pub fn supervision(mut self, settings: SupervisionSettings) -> Self {
        self.supervision = settings;
        self
    }

    /// `on_retry(attempt, error, delay)`, called before each retry is scheduled.
    pub fn on_retry(
        mut self,
        hook: impl Fn(u32, &AttemptError<A::Error>, std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    /// Seeds the jitter of retries and restarts (deterministic simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The configured agent `agent`, wired by `registry` to the breaker, timeout actor and
    /// budget it names — shared with every other agent that names them — with its pool size,
    /// admission bound, queue and retry policy from the configuration. The same as
    /// [`Registry::agent`](crate::registry::Registry::agent).
    pub fn from_config(
        registry: &crate::registry::Registry,
        agent: &str,
        make: impl Fn() -> A + Send + Sync + 'static,
    ) -> Result<Self, SpawnError> {
        registry.agent(agent, make)
    }

    /// Registers the spawned agent with a registry, so that its reloads reach it.
    pub(crate) fn register_with(mut self, live: crate::registry::LiveAgents) -> Self {
        self.live = Some(live);
        self
    }

    /// Spawns the breaker actor and, for an adaptive policy, the timeout actor (unless shared
    /// ones were given), then the supervisor and its workers.
    pub async fn spawn(self) -> Result<AgentHandle<A>, SpawnError> {
        self.spawn_inner(None).await
    }

    /// Like [`spawn`](Self::spawn), with the supervisor linked to `parent` (which is told when
    /// the supervisor escalates).
    pub async fn spawn_linked(self, parent: ActorCell) -> Result<AgentHandle<A>, SpawnError> {
        self.spawn_inner(Some(parent)).await
    }

    async fn spawn_inner(self, parent: Option<ActorCell>) -> Result<AgentHandle<A>, SpawnError> {
        if let Some((setting, reason)) = self.invalid {
            return Err(SpawnError::Invalid { setting, reason });
        }
        if let Err((setting, reason)) =
            super::reconfigure::check_pool(self.workers, self.max_pending)
        {
            return Err(SpawnError::Invalid { setting, reason });
        }
        let spawn_err = |what: &str| {
            let what = what.to_owned();
            move |source| SpawnError::Spawn { what, source }
        };
        let owns = (self.breaker.is_none(), self.timeout.is_none());
        let breaker = match self.breaker {
            Some(b) => b,
            None => {
                let (name, settings) = self.breaker_settings;
                let options = BreakerOptions {
                    seed: self.seed,
                    ..BreakerOptions::default()
                };
                BreakerActor::spawn(name, settings, options)
                    .await
                    .map_err(spawn_err("breaker"))?
            }
        };
        let timeout = match self.timeout {
            Some(t) => AgentTimeout::Actor(t),
            None => {
                let (name, policy) = self.timeout_policy;
                match InlineTimeout::new(&name, &policy) {
                    // A fixed or per-operation policy: nothing to learn, no hooks, no actor.
                    Some(inline) => AgentTimeout::Inline(Arc::new(inline)),
                    None => AgentTimeout::Actor(
                        TimeoutActor::spawn(&name, policy, TimeoutHooks::default())
                            .await
                            .map_err(spawn_err("timeout"))?,
                    ),
                }
            }
        };
        let (policy_name, retry) = self.retry;
        let metrics = Arc::new(AgentMetrics::new(&self.name, &policy_name));
        let inline_timeout = match &timeout {
            AgentTimeout::Inline(inline) => Some(inline.metrics()),
            AgentTimeout::Actor(_) => None,
        };
        let shared = Arc::new(Shared {
            counts: Arc::new(Counts::new(metrics, inline_timeout)),
            name: self.name.clone(),
            dispatch: Dispatch::new(self.workers, self.max_pending, self.codel),
            breaker,
            keyed: self.keyed,
            timeout,
            max_attempts: std::sync::atomic::AtomicU32::new(retry.max_attempts()),
            retry: arc_swap::ArcSwap::from_pointee(retry),
            budget: self.budget,
            on_retry: self.on_retry,
            max_pending: AtomicUsize::new(self.max_pending),
            closed: AtomicBool::new(false),
            owns,
        });
        let args = SupervisorArgs {
            shared: shared.clone(),
            make: self.make,
            workers: self.workers,
            settings: self.supervision,
            seed: self.seed,
        };
        // Not registered under the agent's name: several systems (or tests) in one process
        // may run agents of the same name.
        let (supervisor, _) = match parent {
            Some(parent) => {
                Actor::spawn_linked(None, SupervisorActor::<A>::new(), args, parent).await
            }
            None => Actor::spawn(None, SupervisorActor::<A>::new(), args).await,
        }
        .map_err(spawn_err("supervisor"))?;
        if let Some(live) = &self.live {
            live.push(&self.name, &supervisor);
        }
        Ok(AgentHandle {
            shared,
            actor: supervisor,
        })
    }
}
