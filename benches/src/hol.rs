//! `hol_p50_ratio`, `hol_p95_ratio`, `hol_p99_ratio`: head-of-line blocking against the ideal
//! M/G/k FIFO queue, from the `resilience-hol` probe (benches/hol), run as a child process.
//!
//! The probe needs tokio's paused clock (`test-util`), which must not reach this harness: with
//! it every `Instant::now()` takes a mutex, and the latency figures would measure that. So it is
//! its own package, built by its own cargo invocation: beside this binary if it is there, else
//! built here when the harness runs under `cargo run` (which tells it where cargo is).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::report::Reporter;
use crate::stats::summarize;

const FIGURES: [&str; 3] = ["hol_p50_ratio", "hol_p95_ratio", "hol_p99_ratio"];

/// Runs the probe and reports its figures (each exact: virtual time, one run).
pub(crate) fn run(out: &mut Reporter) {
    let bin = match locate() {
        Ok(bin) => bin,
        Err(why) => {
            for name in FIGURES {
                out.absent(name, "ratio", &why);
            }
            return;
        }
    };
    let output = match Command::new(&bin).stdin(Stdio::null()).output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            let why = format!(
                "{} exited with {}: {}",
                bin.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return FIGURES
                .iter()
                .for_each(|name| out.absent(name, "ratio", &why));
        }
        Err(e) => {
            let why = format!("cannot run {}: {e}", bin.display());
            return FIGURES
                .iter()
                .for_each(|name| out.absent(name, "ratio", &why));
        }
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(name), Some(value)) = (v["name"].as_str(), v["value"].as_f64()) else {
            continue;
        };
        let unit = if name.ends_with("_ms") { "ms" } else { "ratio" };
        out.figure(name, unit, summarize(&[value]));
    }
}

/// The probe beside this binary, built first if it is missing and cargo is at hand.
fn locate() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let dir = exe.parent().ok_or("this binary has no directory")?;
    let bin = dir.join("resilience-hol");
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").ok_or_else(|| {
        format!(
            "{} not found (build it first: cargo build --release -p resilience-hol)",
            bin.display()
        )
    })?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = if dir.ends_with("release") {
        vec!["--release"]
    } else {
        vec![]
    };
    eprintln!(
        "  building resilience-hol (its own cargo invocation, so that test-util stays out of this binary)"
    );
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "resilience-hol"])
        .args(profile)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() && bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("building resilience-hol failed ({status})"))
    }
}
