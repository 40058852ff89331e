//! `agent-system`: see the library docs (`src/lib.rs`). This file only parses arguments and
//! dispatches.
//!
//! ```text
//! cargo run --release
//! cargo run -p agent-system -- check-config config/production.toml
//! ```

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use agent_system::cli::{Cli, Command};
use agent_system::commands;
use clap::Parser;
use ractor_resilience::config::EnvOverrides;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    let overrides = EnvOverrides::from_process_env();
    // Unlocked handles: the progress line and the logs write from other threads meanwhile.
    let (mut out, mut err) = (io::stdout(), io::stderr());
    let status = match cli.command {
        Some(Command::CheckConfig { file }) => {
            commands::check_config(&file, &overrides, &mut out, &mut err)
        }
        Some(Command::Run(args)) => commands::run(&args, &overrides, &mut out, &mut err),
        Some(Command::Simulate(args)) => commands::simulate(&args, &overrides, &mut out, &mut err),
        Some(Command::Breaker(command)) => {
            commands::breaker(&command, &overrides, &mut out, &mut err)
        }
        #[cfg(feature = "cluster")]
        Some(Command::Node(args)) => agent_system::node::run(&args, &mut out, &mut err),
        None => commands::run(&Default::default(), &overrides, &mut out, &mut err),
    };
    match status {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-system: {e}");
            ExitCode::FAILURE
        }
    }
}
