//! The runnable `ractor-resilience` agent system: a coordinator and a pool of supervised worker
//! agents behind the full resilience stack (timeout → retry → breaker), driven against a
//! simulated LLM provider.
//!
//! Today it provides the command line and configuration checking; the running system arrives
//! with the runnable-system work. `main.rs` only parses arguments and calls into this library.
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

pub mod cli;
pub mod commands;

use ractor_resilience::config::{NoSystem, ResolvedConfig};

/// The agent system's configuration: the library's sections plus its own `[system]` table
/// (none yet; the runnable-system work adds workload, provider and exporter settings there).
pub type SystemConfig = ResolvedConfig<NoSystem>;

/// The configuration used when no `--config` is given: `config/development.toml`, embedded.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/development.toml");

/// How [`DEFAULT_CONFIG`] is named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded config/development.toml>";

/// Exit status for a configuration with mistakes (and for command-line usage errors, as clap
/// uses).
pub const EXIT_INVALID_CONFIG: u8 = 2;
