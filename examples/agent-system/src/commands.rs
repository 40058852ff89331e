//! What each subcommand does, writing to the given streams and returning the exit status.

use std::io::{self, Write};
use std::path::Path;

use ractor_resilience::config::EnvOverrides;

use ractor_resilience::task::CancellationToken;

use crate::cli::{RunArgs, SimulateArgs};
use crate::report::Report;
use crate::system::System;
use crate::{DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, EXIT_INVALID_CONFIG, SystemConfig};
use crate::{exporter, progress};

/// `check-config FILE`: prints the resolved configuration to `out` and returns 0, or prints
/// every mistake (`path:line:column: field: reason`, one per line) to `err` and returns
/// [`EXIT_INVALID_CONFIG`].
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn check_config(
    file: &Path,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    match SystemConfig::load_with_env(file, overrides) {
        Ok(config) => {
            writeln!(
                out,
                "# {}: valid; resolved configuration (defaults filled in):\n",
                file.display()
            )?;
            write!(out, "{config}")?;
            Ok(0)
        }
        Err(errors) => {
            writeln!(err, "{errors}")?;
            writeln!(err, "{}: {} mistake(s) found", file.display(), errors.len())?;
            Ok(EXIT_INVALID_CONFIG)
        }
    }
}

/// Loads `--config` (or the embedded default) with the environment overrides, printing every
/// mistake to `err`.
fn load(
    config: Option<&Path>,
    overrides: &EnvOverrides,
    err: &mut impl Write,
) -> io::Result<Option<SystemConfig>> {
    let loaded = match config {
        Some(file) => SystemConfig::load_with_env(file, overrides),
        None => {
            SystemConfig::from_toml_str_with_env(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, overrides)
        }
    };
    match loaded {
        Ok(config) => Ok(Some(config)),
        Err(errors) => {
            writeln!(err, "{errors}")?;
            Ok(None)
        }
    }
}

/// `run`: the agent system in real time, serving `/metrics` and `/health`, with live progress,
/// a graceful shutdown on Ctrl-C / SIGTERM (a second signal exits at once), a summary, and the
/// JSON report if asked.
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn run(
    args: &RunArgs,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    let Some(mut config) = load(args.config.as_deref(), overrides, err)? else {
        return Ok(EXIT_INVALID_CONFIG);
    };
    if let Some(seed) = args.seed {
        config.system.seed = seed;
    }
    let duration = args.duration.unwrap_or(config.system.duration);
    let addr = args.metrics_addr.unwrap_or(config.system.exporter.addr);
    let allow = args.allow_non_loopback || config.system.exporter.allow_non_loopback;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let metrics = match exporter::install_recorder() {
            Ok(m) => m,
            Err(e) => {
                writeln!(err, "cannot install the metrics recorder: {e}")?;
                return Ok(1);
            }
        };
        let system = match System::spawn(&config).await {
            Ok(s) => s,
            Err(e) => {
                writeln!(err, "{e}")?;
                return Ok(1);
            }
        };
        let bound = match exporter::serve(addr, allow, metrics, system.breakers.values().cloned().collect()).await {
            Ok(bound) => bound,
            Err(e) => {
                writeln!(err, "{e}")?;
                system.stop();
                return Ok(EXIT_INVALID_CONFIG);
            }
        };
        writeln!(
            out,
            "agent system: {} agent(s), {} tasks/s for {}; metrics on http://{bound}/metrics, health on http://{bound}/health",
            system.agents.len(),
            config.system.workload.rate,
            humantime::format_duration(duration)
        )?;
        out.flush()?;
        let stop = CancellationToken::new();
        spawn_signal_handler(stop.clone());
        let progress = progress::spawn(&system, config.system.progress_interval);
        let report = system.drive(&config, "run", duration, stop).await;
        progress.abort();
        progress::finish_line();
        system.stop();
        finish(&report, args.report_json.as_deref(), out, err)
    })
}

/// `simulate`: the same scenario on tokio's paused clock — an hour of traffic in seconds, and
/// the same seed gives the same report byte for byte. No exporter, no progress line.
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn simulate(
    args: &SimulateArgs,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    let Some(mut config) = load(args.config.as_deref(), overrides, err)? else {
        return Ok(EXIT_INVALID_CONFIG);
    };
    if let Some(seed) = args.seed {
        config.system.seed = seed;
    }
    let duration = args.duration.unwrap_or(config.system.duration);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    let report = runtime.block_on(async {
        let system = System::spawn(&config).await.map_err(|e| e.to_string())?;
        let report = system
            .drive(&config, "simulate", duration, CancellationToken::new())
            .await;
        system.stop();
        Ok::<_, String>(report)
    });
    match report {
        Ok(report) => finish(&report, args.report_json.as_deref(), out, err),
        Err(e) => {
            writeln!(err, "{e}")?;
            Ok(1)
        }
    }
}

fn finish(
    report: &Report,
    json: Option<&Path>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    report.write_summary(out)?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
        if let Err(e) = std::fs::write(path, text + "\n") {
            writeln!(err, "cannot write the report to {}: {e}", path.display())?;
            return Ok(1);
        }
        writeln!(out, "report written to {}", path.display())?;
    }
    if !report.adds_up() {
        writeln!(
            err,
            "internal error: the outcomes do not add up to the submitted tasks"
        )?;
        return Ok(1);
    }
    Ok(0)
}

/// First Ctrl-C / SIGTERM: stop admitting and drain. Second: exit at once.
fn spawn_signal_handler(stop: CancellationToken) {
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            wait_for_signal().await;
            signals += 1;
            if signals == 1 {
                tracing::warn!(
                    "shutdown requested: draining (send the signal again to exit at once)"
                );
                stop.cancel();
            } else {
                tracing::error!("second signal: exiting now");
                std::process::exit(130);
            }
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
