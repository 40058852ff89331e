//! `[agents.NAME]`: a pool of supervised workers and the named policies that protect it.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;

use ractor_resilience_core::queue::CodelSettings;
use serde::Deserialize;

use super::source::{EntryError, FieldError};
use super::values::{DurationOrOff, duration};

/// Workers per agent pool when `workers` is not set (this project's choice: enough to overlap
/// slow LLM calls on a small machine).
pub const DEFAULT_WORKERS: usize = 4;
/// Admission bound when `max_pending` is not set (this project's choice).
pub const DEFAULT_MAX_PENDING: usize = 1000;
/// The most workers one agent may have: 4096. Each worker is an actor with its own mailbox;
/// far more than a machine's cores and in-flight calls, and far below where spawning them
/// exhausts memory (a billion workers used to pass the check and abort the run).
pub const MAX_WORKERS: usize = 4096;
/// The largest admission bound: 1 000 000 calls queued plus in flight per agent (the queue is
/// preallocated in part; a larger bound has no use but to turn overload into memory pressure).
pub const MAX_MAX_PENDING: usize = 1_000_000;

/// One `[agents.NAME]` section: which named policies protect the agent's calls, and how big its
/// pool is.
///
/// The names are checked against the file's sections when it is loaded, so in a
/// [`ResolvedConfig`](super::ResolvedConfig) they always resolve (see
/// [`ResolvedConfig::policies`](super::ResolvedConfig::policies)).
///
/// ```
/// use ractor_resilience::config::ResolvedConfig;
///
/// let text = r#"
/// [breakers.llm]
/// [retry_policies.llm]
/// [timeouts.llm]
/// [agents.llm_worker]
/// breaker = "llm"
/// retry = "llm"
/// timeout = "llm"
/// workers = 8
/// "#;
/// let config = ResolvedConfig::from_toml_str(text, "app.toml").unwrap();
/// let agent = &config.agents["llm_worker"];
/// assert_eq!(agent.breaker, "llm");
/// assert_eq!(agent.budget, None);
/// assert_eq!(agent.workers.get(), 8);
/// assert_eq!(agent.max_pending.get(), 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The `[breakers.NAME]` the agent's calls go through.
    pub breaker: String,
    /// A `[breakers.NAME]` with `keyed = true` that admits each task by its key as well (see
    /// `AgentBuilder::key_breaker`), if any.
    pub key_breaker: Option<String>,
    /// The `[retry_policies.NAME]` that retries its failed calls.
    pub retry: String,
    /// The `[timeouts.NAME]` that bounds each attempt.
    pub timeout: String,
    /// The `[budgets.NAME]` that caps its retries, if any.
    pub budget: Option<String>,
    /// How many workers the agent's pool runs (default [`DEFAULT_WORKERS`]; 1 to
    /// [`MAX_WORKERS`]).
    pub workers: NonZeroUsize,
    /// Admission bound: calls queued plus in flight beyond which new calls are rejected
    /// (default [`DEFAULT_MAX_PENDING`]); at least `workers`, at most [`MAX_MAX_PENDING`].
    pub max_pending: NonZeroUsize,
    /// How the agent's queue sheds under sustained overload (`queue_target`, `queue_interval`,
    /// `adaptive_lifo`; default [`CodelSettings::default`]); `None` with `queue_target = "off"`:
    /// a FIFO queue that never sheds.
    pub queue: Option<CodelSettings>,
}

/// The section names present in the file (valid or not), for reference checks.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Every `[breakers.NAME]`, single or keyed (valid or not).
    pub(crate) breakers: BTreeSet<String>,
    /// The valid ones with `keyed = true`.
    pub(crate) keyed_breakers: BTreeSet<String>,
    pub(crate) retry_policies: BTreeSet<String>,
    pub(crate) timeouts: BTreeSet<String>,
    pub(crate) budgets: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    breaker: Option<String>,
    retry: Option<String>,
    timeout: Option<String>,
    budget: Option<String>,
    workers: Option<usize>,
    max_pending: Option<usize>,
    queue_target: Option<DurationOrOff>,
    #[serde(default, deserialize_with = "duration")]
    queue_interval: Option<std::time::Duration>,
    adaptive_lifo: Option<bool>,
    key_breaker: Option<String>,
}

impl RawAgent {
    /// Checks every reference and count, reporting all the mistakes of the agent at once.
    pub(crate) fn resolve(self, known: &Known) -> Result<AgentConfig, EntryError> {
        let mut errors = Vec::new();
        let mut check = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).ok();
        let breaker = check(
            reference(
                ("breaker", "breaker"),
                "breakers",
                self.breaker,
                &known.breakers,
            )
            .and_then(|name| {
                if known.keyed_breakers.contains(&name) {
                    Err(FieldError::new(
                        "breaker",
                        format!(
                            "{name:?} is a keyed breaker family (keyed = true): name it in key_breaker, and a single breaker here"
                        ),
                    ))
                } else {
                    Ok(name)
                }
            }),
        );
        let key_breaker = match self.key_breaker {
            None => Some(None),
            some => check(
                reference(
                    ("key_breaker", "breaker"),
                    "breakers",
                    some,
                    &known.breakers,
                )
                .and_then(|name| {
                    if known.keyed_breakers.contains(&name) {
                        Ok(name)
                    } else {
                        Err(FieldError::new(
                            "key_breaker",
                            format!(
                                "[breakers.{name}] is not a keyed family: set keyed = true there"
                            ),
                        ))
                    }
                }),
            )
            .map(Some),
        };
        let retry = check(reference(
            ("retry", "retry policy"),
            "retry_policies",
            self.retry,
            &known.retry_policies,
        ));
        let timeout = check(reference(
            ("timeout", "timeout"),
            "timeouts",
            self.timeout,
            &known.timeouts,
        ));
        let budget = match self.budget {
            None => Some(None),
            some => check(reference(
                ("budget", "budget"),
                "budgets",
                some,
                &known.budgets,
            ))
            .map(Some),
        };
        let workers = self.workers.unwrap_or(DEFAULT_WORKERS);
        let workers = if workers > MAX_WORKERS {
            errors.push(FieldError::new(
                "workers",
                format!("must be at most {MAX_WORKERS}, got {workers}"),
            ));
            None
        } else {
            let w = NonZeroUsize::new(workers);
            if w.is_none() {
                errors.push(FieldError::new("workers", "must be at least 1"));
            }
            w
        };
        let given = self.max_pending.unwrap_or(DEFAULT_MAX_PENDING);
        let max_pending = if given > MAX_MAX_PENDING {
            errors.push(FieldError::new(
                "max_pending",
                format!("must be at most {MAX_MAX_PENDING}, got {given}"),
            ));
            None
        } else {
            let m = NonZeroUsize::new(given).filter(|m| workers.is_none_or(|w| *m >= w));
            if m.is_none() {
                let workers = workers.map_or(0, NonZeroUsize::get);
                errors.push(FieldError::new(
                    "max_pending",
                    format!(
                        "must be at least workers ({workers}) so every worker can be busy, got {given}"
                    ),
                ));
            }
            m
        };
        let queue = match self.queue_target {
            Some(DurationOrOff::Off) => {
                for (key, given) in [
                    ("queue_interval", self.queue_interval.is_some()),
                    ("adaptive_lifo", self.adaptive_lifo.is_some()),
                ] {
                    if given {
                        errors.push(FieldError::new(
                            key,
                            "has no effect with queue_target = \"off\"",
                        ));
                    }
                }
                Some(None)
            }
            target => {
                let default = CodelSettings::default();
                let target = match target {
                    Some(DurationOrOff::On(d)) => d,
                    _ => default.target(),
                };
                let interval = self.queue_interval.unwrap_or(default.interval());
                match CodelSettings::new(target, interval) {
                    Ok(s) => Some(Some(s.with_adaptive_lifo(
                        self.adaptive_lifo.unwrap_or(default.adaptive_lifo()),
                    ))),
                    Err(e) => {
                        errors.push(FieldError::new(e.field, e.reason));
                        None
                    }
                }
            }
        };
        match (
            breaker,
            retry,
            timeout,
            budget,
            workers,
            max_pending,
            queue,
            key_breaker,
        ) {
            (
                Some(breaker),
                Some(retry),
                Some(timeout),
                Some(budget),
                Some(workers),
                Some(max_pending),
                Some(queue),
                Some(key_breaker),
            ) if errors.is_empty() => Ok(AgentConfig {
                breaker,
                key_breaker,
                retry,
                timeout,
                budget,
                workers,
                max_pending,
                queue,
            }),
            _ => Err(EntryError::Field(errors)),
        }
    }
}

/// Checks that `value` (the agent's `key`, naming a `noun`) names one of `known` (the sections
/// of `[section.NAME]`).
fn reference(
    (key, noun): (&str, &str),
    section: &str,
    value: Option<String>,
    known: &BTreeSet<String>,
) -> Result<String, FieldError> {
    let names = || {
        if known.is_empty() {
            format!("the file has no [{section}.NAME] sections")
        } else {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            format!("known: {}", list.join(", "))
        }
    };
    match value {
        None => Err(FieldError::new(
            key,
            format!(
                "is required: name one of the [{section}.NAME] sections ({})",
                names()
            ),
        )),
        Some(name) if known.contains(&name) => Ok(name),
        Some(name) => Err(FieldError::new(
            key,
            format!("unknown {noun} {name:?}; {}", names()),
        )),
    }
}
