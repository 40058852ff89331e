//! The command line. The subcommand names and flags are a contract that outside checks use
//! (DESIGN §7).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Supervised LLM agents behind circuit breakers, retries and timeouts.
#[derive(Debug, Parser)]
#[command(name = "agent-system", version, about)]
pub struct Cli {
    /// What to do; without a subcommand, `run` with its defaults.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log level (error, warn, info, debug, trace) or a `RUST_LOG`-style filter; `RUST_LOG`
    /// wins when set.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the agent system: workload, supervised agents, /metrics and /health, live
    /// progress, a summary at the end. Ctrl-C / SIGTERM drain gracefully; a second one exits.
    Run(RunArgs),
    /// The same scenario on a virtual clock: an hour of traffic in seconds; the same seed
    /// gives the same report.
    Simulate(SimulateArgs),
    /// Validate a configuration file and print the resolved configuration, or every mistake.
    ///
    /// RESILIENCE__* environment variables override single values, as they do for `run`.
    /// Exits with status 2 if the file has mistakes.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Operate the breakers of a running system through its loopback HTTP server: list them,
    /// force one open, reset it, or disable it. Exits 0 on success, 2 with a message otherwise.
    #[command(subcommand)]
    Breaker(BreakerCommand),
    /// Run one cluster node serving the `work` agent to other nodes (feature `cluster`):
    /// prints `NODE name=… addr=… pid=…` first. The cookie comes from `--cookie-file` or
    /// `RESILIENCE_CLUSTER_COOKIE`, never from the command line.
    #[cfg(feature = "cluster")]
    Node(crate::node::NodeArgs),
}

/// `agent-system breaker …`.
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Every breaker's state, settings and counters.
    List(ControlArgs),
    /// Force a breaker open until it is reset or disabled.
    ForceOpen(NamedControlArgs),
    /// Back to Closed with an empty window.
    Reset(NamedControlArgs),
    /// Let every call through and count nothing, until it is forced open or reset.
    Disable(NamedControlArgs),
}

/// Where the running system serves.
#[derive(Debug, Default, Args)]
pub struct ControlArgs {
    /// The running system's metrics/control address (default: the configured
    /// `system.exporter.addr`).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<SocketAddr>,
    /// The configuration whose exporter address is the default (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A breaker's name and where the running system serves.
#[derive(Debug, Args)]
pub struct NamedControlArgs {
    /// The breaker's configured name.
    pub name: String,
    /// Where the running system serves.
    #[command(flatten)]
    pub target: ControlArgs,
    /// Every live node of the cluster (feature `cluster`): `--addr` is one node's control
    /// address (`control=` in its banner), which sends the command to the others. Exits 2
    /// naming the live nodes that did not acknowledge.
    #[cfg(feature = "cluster")]
    #[arg(long)]
    pub cluster: bool,
}

/// The flags of `run`.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Configuration file (default: the embedded config/development.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to drive the workload, e.g. "30s", "5m" (same rule as `system.duration`:
    /// more than zero, at most 100 years).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where to serve /metrics and /health, e.g. 127.0.0.1:9000.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Write the final report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Seed of every random choice (default: the configuration's `system.seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Allow `--metrics-addr` to be a non-loopback address.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Draw the run's timeline to this SVG file: tasks/s by outcome, latency, retries, each
    /// breaker's state, the provider's outages.
    #[arg(long, value_name = "FILE.svg")]
    pub timeline: Option<PathBuf>,
}

/// The flags of `simulate`.
#[derive(Debug, Default, Args)]
pub struct SimulateArgs {
    /// Configuration file (default: the embedded config/development.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How much simulated time to drive the workload, e.g. "1h" (same rule as
    /// `system.duration`: more than zero, at most 100 years).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Write the final report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Seed of every random choice (default: the configuration's `system.seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Draw the run's timeline to this SVG file: tasks/s by outcome, latency, retries, each
    /// breaker's state, the provider's outages (the same seed draws the same bytes).
    #[arg(long, value_name = "FILE.svg")]
    pub timeline: Option<PathBuf>,
}

/// `--duration`: parsed, then held to the rule of `system.duration` in files
/// ([`check_run_duration`](crate::settings::check_run_duration)); clap names the flag.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    crate::settings::check_run_duration(d)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_parse() {
        let cli = Cli::try_parse_from([
            "agent-system",
            "run",
            "--config",
            "c.toml",
            "--duration",
            "90s",
            "--metrics-addr",
            "127.0.0.1:9000",
            "--report-json",
            "r.json",
        ])
        .unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.duration, Some(Duration::from_secs(90)));
        assert_eq!(args.metrics_addr, Some("127.0.0.1:9000".parse().unwrap()));
    }

    #[test]
    fn duration_flag_follows_the_rule_of_the_file() {
        for (flag, reason) in [
            ("0s", "must be greater than zero"),
            ("200years", "must be at most 100years"),
        ] {
            for sub in ["run", "simulate"] {
                let e = Cli::try_parse_from(["agent-system", sub, "--duration", flag]).unwrap_err();
                let text = e.to_string();
                assert!(text.contains("--duration"), "{text}");
                assert!(text.contains(reason), "{text}");
                assert_eq!(e.exit_code(), 2);
            }
        }
    }
}
