//! `simulate_1h_wall_s`: the wall time of `agent-system simulate --duration 1h` (the default
//! scenario), run as a child process. The figure is reported absent — never estimated — when
//! the binary is missing, has no `simulate` subcommand, fails, or overruns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the agent-system binary is expected: beside this one (`target/release/`).
pub(crate) fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("agent-system"))
}

/// Whether `bin` exists and knows `simulate` (its `simulate --help` exits 0).
pub(crate) fn supports_simulate(bin: &Path) -> Result<(), String> {
    if !bin.is_file() {
        return Err(format!(
            "{} not found (build it first: cargo build --release -p agent-system)",
            bin.display()
        ));
    }
    let status = Command::new(bin)
        .args(["simulate", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} has no `simulate` subcommand (`simulate --help` exited with {status})",
            bin.display()
        ))
    }
}

/// One run of `simulate --duration 1h`, killed after `cap`. Its wall time in seconds.
pub(crate) fn run_once(bin: &Path, cap: Duration) -> Result<f64, String> {
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["simulate", "--duration", "1h"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    // Drain stderr on a thread so that a chatty child never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let drain = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut buf);
        buf
    });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let wall = t0.elapsed().as_secs_f64();
                let err = drain.join().unwrap_or_default();
                return if status.success() {
                    Ok(wall)
                } else {
                    let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                    Err(format!(
                        "`simulate --duration 1h` exited with {status}: {tail}"
                    ))
                };
            }
            Ok(None) if t0.elapsed() > cap => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`simulate --duration 1h` did not finish within {} s (killed)",
                    cap.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for simulate: {e}")),
        }
    }
}
