//! Actor-based resilience for [ractor]: breaker actors, retry supervisors, timeout actors and
//! supervised agents, built on the pure policies of [`ractor_resilience_core`] (re-exported as
//! [`core`]).
//!
//! The layers point one way: the **core** decides (breaker state machine, backoff with jitter,
//! retry budgets, adaptive timeouts; no clock, no I/O), this crate's **actors** own one core
//! machine each and feed it time and outcomes, and the **agent system** (the runnable example)
//! wires them into a supervised pool.
//!
//! This crate provides:
//! - [`agent`]: supervised agent pools — workers behind one bounded, CoDel-shedding queue,
//!   each call through timeout → retry → breaker, restarted by a supervisor;
//! - [`breaker`]: the circuit breaker actor and its cheap, cloneable handle, and keyed breaker
//!   families (one breaker per model, endpoint or tenant, with bounded memory and labels);
//! - [`budget`]: retry budgets that several supervisors share, and that nest;
//! - `cluster` (feature `cluster`): agents served to and called from other nodes on
//!   `ractor_cluster`, with node and replica breakers;
//! - [`config`]: TOML configuration files → validated core settings, with every mistake
//!   reported by file, line, column and key, environment overrides, and named agents;
//! - [`error`]: the errors of those boundaries;
//! - [`metrics`]: every metric recorded, by name, and a Prometheus builder with their buckets;
//! - [`registry`]: one owner of a configuration's named policies, which builds agents sharing
//!   them and reconfigures them all in place on a reload, keeping their state;
//! - [`reply`]: where an answer goes — a caller's future, an RPC port, an actor, a callback;
//! - [`task`]: tasks and their envelopes: ids, deadlines and cancellation;
//! - [`timeout`]: the timeout actor (fixed, per-operation and adaptive deadlines).
//!
//! ```
//! use ractor_resilience::config::ResolvedConfig;
//!
//! let config = ResolvedConfig::from_toml_str("[breakers.llm]\nmax_failures = 5\n", "app.toml")?;
//! assert_eq!(config.breakers["llm"].max_failures(), Some(5));
//! # Ok::<(), ractor_resilience::error::ConfigErrors>(())
//! ```
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod agent;
pub mod breaker;
pub mod budget;
mod clock;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod error;
mod lazy_queue;
pub mod metrics;
pub mod registry;
pub mod reply;
pub mod task;
pub mod timeout;
mod timer;

pub use ractor_resilience_core as core;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
