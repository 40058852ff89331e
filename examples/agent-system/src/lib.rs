//! The runnable `ractor-resilience` agent system: a coordinator and a pool of supervised worker
//! agents behind the full resilience stack (timeout → retry → breaker), driven against a
//! simulated LLM provider.
//!
//! `main.rs` only parses arguments and calls into this library: [`commands`] runs a
//! subcommand, [`system`] spawns and drives the actors, [`exporter`] serves `/metrics`,
//! `/health` and the status page ([`status`]), [`report`] tallies outcomes, [`timeline`] draws
//! the run.
//!
//! ```text
//! cargo run --release                                    # run with the embedded default config
//! cargo run -p agent-system -- check-config config/production.toml
//! ```
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod agent;
pub mod cli;
pub mod commands;
pub mod control;
pub mod exporter;
pub mod failures;
#[cfg(feature = "cluster")]
pub mod node;
pub mod progress;
pub mod provider;
pub mod reload;
pub mod report;
pub mod settings;
pub mod status;
pub mod system;
pub mod timeline;

use ractor_resilience::config::ResolvedConfig;

/// The agent system's configuration: the library's sections plus its own `[system]` table
/// (workload, provider, exporter; every key optional, see [`settings::SystemSettings`]).
pub type SystemConfig = ResolvedConfig<settings::SystemSettings>;

/// The configuration used when no `--config` is given: `config/development.toml`, embedded.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/development.toml");

/// How [`DEFAULT_CONFIG`] is named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded config/development.toml>";

/// Exit status for a configuration with mistakes (and for command-line usage errors, as clap
/// uses).
pub const EXIT_INVALID_CONFIG: u8 = 2;
