//! Live progress: one line redrawn in place on a terminal, periodic log lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use ractor_resilience::metrics::TaskOutcome;
use tokio::task::JoinHandle;

use crate::system::System;

/// Starts reporting progress until aborted.
pub fn spawn(system: &System, log_every: Duration) -> JoinHandle<()> {
    let snapshot = SystemView {
        tally: system.tally.clone(),
        breakers: system.breakers.clone(),
        start: system.start,
    };
    tokio::spawn(async move {
        let tty = std::io::stdout().is_terminal();
        let period = if tty {
            Duration::from_millis(250)
        } else {
            log_every
        };
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let text = snapshot.line();
            if tty {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r{text}\x1b[K");
                let _ = out.flush();
            } else {
                tracing::info!("{text}");
            }
        }
    })
}

/// Ends the in-place line on a terminal.
pub fn finish_line() {
    if std::io::stdout().is_terminal() {
        println!();
    }
}

struct SystemView {
    tally: std::sync::Arc<std::sync::Mutex<crate::report::Tally>>,
    breakers: crate::system::BreakerView,
    start: tokio::time::Instant,
}

impl SystemView {
    fn line(&self) -> String {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let breakers: Vec<String> = self
            .breakers
            .get()
            .iter()
            .map(|(n, b)| format!("{n}={}", b.state()))
            .collect();
        format!(
            "{:>6.1}s submitted {} ok {} failed {} rejected {} overloaded {} timed_out {} | {}",
            self.start.elapsed().as_secs_f64(),
            t.submitted,
            t.count(TaskOutcome::Succeeded),
            t.count(TaskOutcome::Failed),
            t.count(TaskOutcome::Rejected),
            t.count(TaskOutcome::Overloaded),
            t.count(TaskOutcome::TimedOut),
            breakers.join(" ")
        )
    }
}
