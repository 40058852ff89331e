//! The timeline picture of a run (`run --timeline FILE.svg`, `simulate --timeline FILE.svg`):
//! tasks per second by outcome, stacked; p50 and p95 latency of successes; retries per second;
//! one band per breaker coloured by its state; the simulated provider's outage windows shaded
//! across all of them.
//!
//! The data is collected during the run in a bounded [`Series`] (fixed buckets, see
//! [`series`]) and the breaker transitions the report already keeps; [`Timeline::svg`] draws
//! it with `plotters`' SVG backend. Nothing in the drawing depends on the wall clock or on hash
//! order (bands are sorted by name), so `simulate` with the same seed writes the same bytes.

use std::path::Path;
use std::time::Duration;

use crate::report::TransitionRecord;

mod draw;
pub mod series;

pub use series::{LatencyBins, Series};

/// The most breaker bands drawn; the others are counted in the picture's title line.
pub const MAX_BANDS: usize = 16;

/// What the picture shows.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The title line (mode, seed, duration).
    pub title: String,
    /// Tasks, retries and latency per bucket.
    pub series: Series,
    /// One band per breaker, sorted by name (at most [`MAX_BANDS`]).
    pub bands: Vec<BreakerBand>,
    /// Breakers that had no room for a band.
    pub bands_not_shown: usize,
    /// The simulated provider's outage windows.
    pub outages: Vec<Outage>,
}

/// One breaker's states over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerBand {
    /// The breaker's name (`family[key]` for a key of a keyed family).
    pub name: String,
    /// Consecutive spans of one state each, from time zero to the end of the run.
    pub spans: Vec<StateSpan>,
}

/// A span of time in one breaker state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSpan {
    /// Where it starts (since time zero).
    pub from: Duration,
    /// Where it ends.
    pub to: Duration,
    /// The state, as the report spells it (`closed`, `open`, `half_open`, `forced_open`,
    /// `disabled`).
    pub state: String,
}

/// An outage window of the simulated provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// Where it starts.
    pub start: Duration,
    /// Where it ends.
    pub end: Duration,
    /// The model it hits, if only one.
    pub model: Option<String>,
}

/// The timeline could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// Drawing failed (a plotters error).
    #[error("cannot draw the timeline: {0}")]
    Draw(String),
    /// The file could not be written.
    #[error("cannot write the timeline to {path}: {source}")]
    Write {
        /// The path given.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Timeline {
    /// Builds the bands from the run's breakers and transitions.
    ///
    /// `breakers` are the configured breaker names; `families` the keyed families' names. A
    /// family gets one band per key that changed state (`family[key]`), or one band of its own
    /// name when none did. Every band starts closed at time zero.
    pub fn new(
        title: String,
        series: Series,
        breakers: &[String],
        families: &[String],
        transitions: &[TransitionRecord],
        outages: Vec<Outage>,
    ) -> Self {
        let mut names: Vec<String> = breakers.to_vec();
        names.extend(transitions.iter().map(|t| t.breaker.clone()));
        for family in families {
            let prefix = format!("{family}[");
            if !transitions.iter().any(|t| t.breaker.starts_with(&prefix)) {
                names.push(family.clone());
            }
        }
        names.sort();
        names.dedup();
        let bands_not_shown = names.len().saturating_sub(MAX_BANDS);
        names.truncate(MAX_BANDS);
        let end = series.end();
        let bands = names
            .into_iter()
            .map(|name| {
                let mut spans = Vec::new();
                let (mut from, mut state) = (Duration::ZERO, "closed".to_owned());
                for t in transitions.iter().filter(|t| t.breaker == name) {
                    let at = Duration::from_millis(t.at_ms).min(end);
                    if at > from {
                        spans.push(StateSpan {
                            from,
                            to: at,
                            state: state.clone(),
                        });
                    }
                    (from, state) = (at, t.to.clone());
                }
                if end > from {
                    spans.push(StateSpan {
                        from,
                        to: end,
                        state,
                    });
                }
                BreakerBand { name, spans }
            })
            .collect();
        Timeline {
            title,
            series,
            bands,
            bands_not_shown,
            outages,
        }
    }

    /// The picture, as an SVG document.
    ///
    /// # Errors
    /// [`TimelineError::Draw`] if plotters fails to draw.
    pub fn svg(&self) -> Result<String, TimelineError> {
        draw::svg(self).map_err(TimelineError::Draw)
    }

    /// Draws the picture and writes it to `path`.
    ///
    /// # Errors
    /// [`TimelineError::Write`] naming `path` if it cannot be written; a drawing error.
    pub fn write(&self, path: &Path) -> Result<(), TimelineError> {
        let svg = self.svg()?;
        std::fs::write(path, svg).map_err(|source| TimelineError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(breaker: &str, from: &str, to: &str, at_ms: u64) -> TransitionRecord {
        TransitionRecord {
            breaker: breaker.into(),
            from: from.into(),
            to: to.into(),
            at_ms,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn bands_follow_the_transitions_and_cover_the_run() {
        let mut series = Series::new(secs(40));
        series.finish(secs(40));
        let transitions = [
            t("llm", "closed", "open", 10_000),
            t("llm", "open", "half_open", 15_000),
            t("llm", "half_open", "closed", 15_100),
            t("models[b]", "closed", "open", 12_000),
        ];
        let timeline = Timeline::new(
            "t".into(),
            series,
            &["llm".into(), "db".into()],
            &["models".into(), "idle".into()],
            &transitions,
            Vec::new(),
        );
        let names: Vec<&str> = timeline.bands.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["db", "idle", "llm", "models[b]"]);
        let llm = &timeline.bands[2];
        let states: Vec<(u64, &str)> = llm
            .spans
            .iter()
            .map(|s| (s.from.as_millis() as u64, s.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                (0, "closed"),
                (10_000, "open"),
                (15_000, "half_open"),
                (15_100, "closed")
            ]
        );
        assert_eq!(llm.spans.last().unwrap().to, secs(40));
        assert_eq!(timeline.bands[0].spans.len(), 1);
    }

    #[test]
    fn bands_beyond_the_cap_are_counted() {
        let names: Vec<String> = (0..MAX_BANDS + 3).map(|i| format!("b{i:02}")).collect();
        let timeline = Timeline::new("t".into(), Series::new(secs(1)), &names, &[], &[], vec![]);
        assert_eq!(timeline.bands.len(), MAX_BANDS);
        assert_eq!(timeline.bands_not_shown, 3);
    }
}
