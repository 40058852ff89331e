//! The live status page: `GET /` serves one self-contained HTML page ([`PAGE`]: inline styles
//! and script, no external fonts, scripts or images, so it works offline) that reads
//! `GET /breakers` and `GET /status` every second and shows every agent and breaker with its
//! state, the rest of an open period, counts, the last transitions, and a sparkline of each
//! breaker's last minute.
//!
//! `GET /status` (JSON) is what the page needs beyond `GET /breakers`:
//!
//! | field | what |
//! |---|---|
//! | `mode` | `run` (`null` on a server without a run, e.g. a cluster node) |
//! | `elapsed_ms`, `duration_ms`, `finished` | time since the run started, its planned length, whether it has ended |
//! | `tasks` | `submitted` and the six outcomes so far |
//! | `agents` | `[{name, state, breaker, breaker_state, key_breaker, inflight, attempts, retries}]` |
//! | `sparklines` | `{breaker: [{at_s, state, outcomes}]}`: one sample a second, the last [`SPARKLINE_SECONDS`] (`outcomes`: outcomes the breaker counted in that second) |
//! | `transitions` | the last [`TRANSITIONS_SHOWN`] breaker transitions, oldest first (`{breaker, from, to, at_ms}`) |
//! | `transitions_total` | every transition so far |
//!
//! Memory is bounded: one sample per breaker per second, [`SPARKLINE_SECONDS`] kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::ActorStatus;
use ractor_resilience::agent::AgentHandle;
use ractor_resilience::metrics::TaskOutcome;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::agent::LlmAgent;
use crate::report::{Tally, TransitionRecord};
use crate::system::{BreakerView, System};

/// The page `GET /` serves.
pub const PAGE: &str = include_str!("status/page.html");

/// Seconds of history each breaker's sparkline keeps.
pub const SPARKLINE_SECONDS: usize = 60;

/// Transitions `GET /status` lists (the latest).
pub const TRANSITIONS_SHOWN: usize = 20;

/// One second of a breaker's sparkline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    /// Seconds since the start of the run.
    pub at_s: u64,
    /// The state at the sample.
    pub state: String,
    /// Outcomes the breaker counted since the previous sample.
    pub outcomes: u64,
}

/// The breakers' last minute, sampled once a second by [`spawn_sampler`].
#[derive(Debug, Clone, Default)]
pub struct Sparklines(Arc<Mutex<BTreeMap<String, Line>>>);

#[derive(Debug, Clone, Default)]
struct Line {
    samples: VecDeque<Sample>,
    /// The breaker's outcome counter at the previous sample.
    outcomes: Option<u64>,
}

impl Sparklines {
    /// Adds one sample of breaker `name`: its state and outcome counter (`None`: stopped).
    fn push(&self, at_s: u64, name: &str, state: String, outcomes: Option<u64>) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let line = lines.entry(name.to_owned()).or_default();
        let delta = match (line.outcomes, outcomes) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        line.outcomes = outcomes.or(line.outcomes);
        if line.samples.len() == SPARKLINE_SECONDS {
            line.samples.pop_front();
        }
        line.samples.push_back(Sample {
            at_s,
            state,
            outcomes: delta,
        });
    }

    /// Forgets the breakers not in `keep` (a reload removed them).
    fn retain(&self, keep: &BTreeMap<String, ractor_resilience::breaker::BreakerHandle>) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.retain(|name, _| keep.contains_key(name));
    }

    /// Every breaker's samples, oldest first.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<Sample>> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .map(|(name, line)| (name.clone(), line.samples.iter().cloned().collect()))
            .collect()
    }
}

/// Samples every breaker of `breakers` once a second into `sparklines`, until aborted.
pub fn spawn_sampler(
    breakers: BreakerView,
    start: Instant,
    sparklines: Sparklines,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let at_s = start.elapsed().as_secs();
            let current = breakers.get();
            for (name, breaker) in &current {
                match breaker.status().await {
                    Ok(s) => sparklines.push(at_s, name, s.state.to_string(), Some(s.outcomes)),
                    Err(_) => sparklines.push(at_s, name, "stopped".into(), None),
                }
            }
            sparklines.retain(&current);
        }
    })
}

/// What `GET /status` reads: the run's tally, transitions, agents and sparklines.
#[derive(Debug, Clone)]
pub struct StatusSource {
    mode: String,
    duration: Duration,
    start: Instant,
    tally: Arc<Mutex<Tally>>,
    transitions: Arc<Mutex<Vec<TransitionRecord>>>,
    agents: Vec<AgentHandle<LlmAgent>>,
    sparklines: Sparklines,
    finished: Arc<Mutex<Option<Duration>>>,
}

impl StatusSource {
    /// The source for `system`'s run in `mode`, planned for `duration`.
    pub fn new(system: &System, mode: &str, duration: Duration, sparklines: Sparklines) -> Self {
        StatusSource {
            mode: mode.to_owned(),
            duration,
            start: system.start,
            tally: system.tally.clone(),
            transitions: system.transitions.clone(),
            agents: system.agents.clone(),
            sparklines,
            finished: Arc::default(),
        }
    }

    /// Marks the run as ended now: `elapsed_ms` stops there.
    pub fn finish(&self) {
        *self.finished.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.start.elapsed());
    }

    /// The `GET /status` body.
    pub fn to_json(&self) -> Value {
        let finished = *self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = finished.unwrap_or_else(|| self.start.elapsed());
        let tally = self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut tasks = serde_json::Map::new();
        tasks.insert("submitted".into(), json!(tally.submitted));
        for outcome in TaskOutcome::ALL {
            tasks.insert(outcome.as_str().into(), json!(tally.count(outcome)));
        }
        let (transitions, total) = {
            let all = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
            let from = all.len().saturating_sub(TRANSITIONS_SHOWN);
            (all[from..].to_vec(), all.len())
        };
        json!({
            "mode": self.mode,
            "elapsed_ms": millis(elapsed),
            "duration_ms": millis(self.duration),
            "finished": finished.is_some(),
            "tasks": tasks,
            "agents": self.agents.iter().map(agent_json).collect::<Vec<_>>(),
            "sparklines": self.sparklines.snapshot(),
            "transitions": transitions,
            "transitions_total": total,
        })
    }
}

/// `GET /status` without a run (e.g. a cluster node): the same shape, empty.
pub fn without_run() -> Value {
    json!({
        "mode": null,
        "elapsed_ms": null,
        "duration_ms": null,
        "finished": false,
        "tasks": {},
        "agents": [],
        "sparklines": {},
        "transitions": [],
        "transitions_total": 0,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn agent_json(agent: &AgentHandle<LlmAgent>) -> Value {
    let state = match agent.actor().get_status() {
        ActorStatus::Unstarted | ActorStatus::Starting => "starting",
        ActorStatus::Running | ActorStatus::Upgrading => "running",
        ActorStatus::Draining => "draining",
        ActorStatus::Stopping => "stopping",
        ActorStatus::Stopped => "stopped",
    };
    let stats = agent.stats();
    json!({
        "name": agent.name(),
        "state": state,
        "breaker": agent.breaker().name(),
        "breaker_state": agent.breaker().state().to_string(),
        "key_breaker": agent.key_breaker().map(|k| k.name().to_owned()),
        "inflight": stats.inflight,
        "attempts": stats.attempts,
        "retries": stats.retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_keeps_the_last_minute_of_outcome_deltas() {
        let lines = Sparklines::default();
        for s in 0..(SPARKLINE_SECONDS as u64 + 10) {
            lines.push(s, "llm", "closed".into(), Some(s * 3));
        }
        let snapshot = lines.snapshot();
        let llm = &snapshot["llm"];
        assert_eq!(llm.len(), SPARKLINE_SECONDS);
        assert_eq!(llm[0].at_s, 10);
        assert!(llm.iter().all(|s| s.outcomes == 3), "{llm:?}");
        // A sample that could not read the counter (69 × 3 = 207 before it) counts nothing;
        // the next one counts both seconds.
        lines.push(70, "llm", "stopped".into(), None);
        lines.push(71, "llm", "closed".into(), Some(213));
        let llm = &lines.snapshot()["llm"];
        assert_eq!(
            llm[llm.len() - 2..]
                .iter()
                .map(|s| s.outcomes)
                .collect::<Vec<_>>(),
            [0, 6]
        );
    }

    #[test]
    fn the_page_is_self_contained() {
        // The SVG namespace the sparklines are created in is a name, not a request.
        let lower = PAGE
            .replace("\"http://www.w3.org/2000/svg\"", "SVG_NS")
            .to_ascii_lowercase();
        for outside in ["http://", "https://", "<link", "src=", "@import", "url("] {
            assert!(
                !lower.contains(outside),
                "the page refers outside: {outside}"
            );
        }
        for reads in ["getJson(\"/breakers\")", "getJson(\"/status\")"] {
            assert!(PAGE.contains(reads), "the page does not {reads}");
        }
        assert!(PAGE.contains("data-breaker") && PAGE.contains("data-state"));
    }
}
