//! `agent-system`: see the library docs (`src/lib.rs`). This file only parses arguments and
//! dispatches.
//!
//! ```text
//! cargo run --release
//! cargo run -p agent-system -- check-config config/production.toml
//! ```

use std::io;
use std::process::ExitCode;

use agent_system::cli::{Cli, Command};
use agent_system::commands;
use clap::Parser;
use ractor_resilience::config::EnvOverrides;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let overrides = EnvOverrides::from_process_env();
    let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
    let status = match cli.command {
        Some(Command::CheckConfig { file }) => {
            commands::check_config(&file, &overrides, &mut out, &mut err)?
        }
        Some(Command::Run(args)) => commands::run(&args, &overrides, &mut out, &mut err)?,
        None => commands::run(&Default::default(), &overrides, &mut out, &mut err)?,
    };
    Ok(ExitCode::from(status))
}
