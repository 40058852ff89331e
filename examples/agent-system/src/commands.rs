//! What each subcommand does, writing to the given streams and returning the exit status.

use std::io::{self, Write};
use std::path::Path;

use ractor_resilience::config::EnvOverrides;

use ractor_resilience::task::CancellationToken;

use crate::cli::{RunArgs, SimulateArgs};
use crate::report::Report;
use crate::system::System;
use crate::timeline::Timeline;
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
/// `--seed` and `--duration` override the configuration's `system.seed` and `system.duration`.
fn load(
    config: Option<&Path>,
    seed: Option<u64>,
    duration: Option<std::time::Duration>,
    overrides: &EnvOverrides,
    err: &mut impl Write,
) -> io::Result<Option<(SystemConfig, std::time::Duration)>> {
    let loaded = match config {
        Some(file) => SystemConfig::load_with_env(file, overrides),
        None => {
            SystemConfig::from_toml_str_with_env(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, overrides)
        }
    };
    match loaded {
        Ok(mut config) => {
            if let Some(seed) = seed {
                config.system.seed = seed;
            }
            let duration = duration.unwrap_or(config.system.duration);
            Ok(Some((config, duration)))
        }
        Err(errors) => {
            writeln!(err, "{errors}")?;
            Ok(None)
        }
    }
}

/// `run`: the agent system in real time, serving `/metrics` and `/health`, with live progress,
/// a graceful shutdown on Ctrl-C / SIGTERM (a second signal exits at once), a summary, and the
/// JSON report if asked; then the exporter lingers for `system.exporter.linger`.
///
/// # Errors
/// Only if writing to `out` or `err` fails.
pub fn run(
    args: &RunArgs,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    let Some((config, duration)) = load(
        args.config.as_deref(),
        args.seed,
        args.duration,
        overrides,
        err,
    )?
    else {
        return Ok(EXIT_INVALID_CONFIG);
    };
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
        let reloads = crate::reload::spawn(crate::reload::Reloader {
            file: args.config.clone(),
            overrides: overrides.clone(),
            current: config.clone(),
            registry: system.registry.clone(),
            breakers: system.breakers.clone(),
        });
        let sparklines = crate::status::Sparklines::default();
        let status = crate::status::StatusSource::new(&system, "run", duration, sparklines.clone());
        let control = crate::control::Control {
            breakers: system.breakers.clone(),
            reload: Some(reloads.clone()),
            status: Some(status.clone()),
            #[cfg(feature = "cluster")]
            cluster: None,
        };
        let bound = match exporter::serve(addr, allow, metrics, control).await {
            Ok(bound) => bound,
            Err(e) => {
                writeln!(err, "{e}")?;
                system.stop();
                return Ok(EXIT_INVALID_CONFIG);
            }
        };
        // Before the banner: a supervisor that sees it may signal at once, and a signal that
        // came before the handlers were installed would kill the process (no drain, no report).
        let stop = CancellationToken::new();
        spawn_signal_handler(stop.clone());
        spawn_hangup_handler(reloads);
        writeln!(
            out,
            "agent system: {} agent(s), {} tasks/s for {}; metrics on http://{bound}/metrics, health on http://{bound}/health, status page on http://{bound}/",
            system.agents.len(),
            config.system.workload.rate,
            humantime::format_duration(duration)
        )?;
        out.flush()?;
        let progress = progress::spawn(&system, config.system.progress_interval);
        let sampler =
            crate::status::spawn_sampler(system.breakers.clone(), system.start, sparklines);
        let signalled = stop.clone();
        let (report, timeline) = system.drive_recorded(&config, "run", duration, stop).await;
        progress.abort();
        sampler.abort();
        status.finish();
        progress::finish_line();
        system.stop();
        let code = finish(&report, args.report_json.as_deref(), out, err)?;
        let code = code.max(write_timeline(&timeline, args.timeline.as_deref(), out, err)?);
        linger(config.system.exporter.linger, bound, &signalled, out).await?;
        Ok(code)
    })
}

/// Keeps the exporter serving for `linger` after the summary, so that the final counters can
/// be scraped. A signal ends it: the first one (if the run ended by itself) returns at once;
/// after a signal-stopped run, the signal handler exits the process at the second.
async fn linger(
    linger: std::time::Duration,
    bound: std::net::SocketAddr,
    stop: &CancellationToken,
    out: &mut impl Write,
) -> io::Result<()> {
    if linger.is_zero() {
        return Ok(());
    }
    writeln!(
        out,
        "metrics stay available at http://{bound}/metrics for {} (a signal ends the wait)",
        humantime::format_duration(linger)
    )?;
    out.flush()?;
    let signal = async {
        if stop.is_cancelled() {
            std::future::pending::<()>().await;
        }
        stop.cancelled().await;
    };
    tokio::select! {
        () = tokio::time::sleep(linger) => {}
        () = signal => {}
    }
    Ok(())
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
    let Some((config, duration)) = load(
        args.config.as_deref(),
        args.seed,
        args.duration,
        overrides,
        err,
    )?
    else {
        return Ok(EXIT_INVALID_CONFIG);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    let report = runtime.block_on(async {
        let system = System::spawn(&config).await.map_err(|e| e.to_string())?;
        let recorded = system
            .drive_recorded(&config, "simulate", duration, CancellationToken::new())
            .await;
        system.stop();
        Ok::<_, String>(recorded)
    });
    match report {
        Ok((report, timeline)) => {
            let code = finish(&report, args.report_json.as_deref(), out, err)?;
            Ok(code.max(write_timeline(
                &timeline,
                args.timeline.as_deref(),
                out,
                err,
            )?))
        }
        Err(e) => {
            writeln!(err, "{e}")?;
            Ok(1)
        }
    }
}

/// Writes the timeline to `path` if one was asked for: 0, or 1 with a message naming the path.
fn write_timeline(
    timeline: &Timeline,
    path: Option<&Path>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    let Some(path) = path else {
        return Ok(0);
    };
    match timeline.write(path) {
        Ok(()) => {
            writeln!(out, "timeline written to {}", path.display())?;
            Ok(0)
        }
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

/// First Ctrl-C / SIGTERM: stop admitting and drain. Second: exit at once. The handlers are
/// installed before this returns, and stay installed, so no signal is missed in between.
fn spawn_signal_handler(stop: CancellationToken) {
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            signals.recv().await;
            count += 1;
            if count == 1 {
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

/// SIGHUP: reload the configuration file (see [`crate::reload`]). Installed before the banner:
/// SIGHUP's default action would end the process.
#[cfg(unix)]
fn spawn_hangup_handler(reloads: crate::reload::ReloadSender) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload with POST /reload instead");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let request = crate::reload::ReloadRequest {
                who: "SIGHUP".into(),
                reply: None,
            };
            if reloads.send(request).await.is_err() {
                return;
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_hangup_handler(_reloads: crate::reload::ReloadSender) {}

/// SIGTERM and SIGINT (Ctrl-C), registered once.
#[cfg(unix)]
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn recv(&mut self) {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            // A stream that cannot be had (or has ended) never fires.
            if let Some(s) = signal {
                if s.recv().await.is_some() {
                    return;
                }
            }
            std::future::pending().await
        }
        tokio::select! {
            () = next(&mut self.term) => {}
            () = next(&mut self.int) => {}
        }
    }
}

/// Ctrl-C.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Signals
    }

    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Whether a breaker command has `--cluster`.
#[cfg(feature = "cluster")]
fn cluster_wide(command: &crate::cli::BreakerCommand) -> bool {
    use crate::cli::BreakerCommand;
    match command {
        BreakerCommand::List(_) => false,
        BreakerCommand::ForceOpen(n) | BreakerCommand::Reset(n) | BreakerCommand::Disable(n) => {
            n.cluster
        }
    }
}

/// `agent-system breaker list|force-open|reset|disable`: one request to a running system's
/// control endpoints. Exit 0 on success; 2 with a message naming what went wrong (an unknown
/// breaker, nothing listening, a configuration that does not load).
pub fn breaker(
    command: &crate::cli::BreakerCommand,
    overrides: &EnvOverrides,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<u8> {
    use crate::cli::BreakerCommand;
    let (target, request) = match command {
        BreakerCommand::List(target) => (target, None),
        BreakerCommand::ForceOpen(n) => (&n.target, Some((n.name.as_str(), "force-open"))),
        BreakerCommand::Reset(n) => (&n.target, Some((n.name.as_str(), "reset"))),
        BreakerCommand::Disable(n) => (&n.target, Some((n.name.as_str(), "disable"))),
    };
    let addr = match target.addr {
        Some(addr) => addr,
        None => match load(target.config.as_deref(), None, None, overrides, err)? {
            Some((config, _)) => config.system.exporter.addr,
            None => return Ok(2),
        },
    };
    #[cfg(feature = "cluster")]
    if let (Some((name, action)), true) = (request, cluster_wide(command)) {
        let answer =
            crate::control::request(addr, "POST", &format!("/cluster/breakers/{name}/{action}"));
        return match answer {
            Ok(answer) => {
                let (lines, all) = crate::control::format_cluster(&answer);
                write!(out, "{lines}")?;
                if all {
                    Ok(0)
                } else {
                    let missing = crate::control::missing_nodes(&answer);
                    writeln!(
                        err,
                        "agent-system breaker: no acknowledgement from live node(s): {}",
                        missing.join(", ")
                    )?;
                    Ok(2)
                }
            }
            Err(e) => {
                writeln!(err, "agent-system breaker: {e}")?;
                Ok(2)
            }
        };
    }
    let answer = match request {
        None => crate::control::request(addr, "GET", "/breakers"),
        Some((name, action)) => {
            crate::control::request(addr, "POST", &format!("/breakers/{name}/{action}"))
        }
    };
    match answer {
        Ok(answer) if request.is_none() => {
            write!(out, "{}", crate::control::format_list(&answer))?;
            Ok(0)
        }
        Ok(answer) => {
            writeln!(
                out,
                "breaker `{}`: {} -> {}",
                answer["breaker"].as_str().unwrap_or("?"),
                answer["action"].as_str().unwrap_or("?"),
                answer["state"].as_str().unwrap_or("?")
            )?;
            Ok(0)
        }
        Err(e) => {
            writeln!(err, "agent-system breaker: {e}")?;
            Ok(2)
        }
    }
}
