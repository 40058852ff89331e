//! Output: one JSON object per line (`--json`) as each figure is measured, or a table at the
//! end; the targets of the issue are checked on stderr either way.

use std::io::Write;

use crate::stats::Summary;

/// One figure: a summary, or `None` when it could not be measured (e.g. `simulate` missing).
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) name: String,
    pub(crate) unit: &'static str,
    pub(crate) value: Option<Summary>,
}

/// A target of the issue: `name` compared with a bound.
struct Target {
    name: &'static str,
    at_most: bool,
    bound: f64,
}

// The bars of the performance issue (#14) where it set one, else the first wave's.
const TARGETS: &[Target] = &[
    Target {
        name: "stack_latency_ratio",
        at_most: true,
        bound: 1.5,
    },
    Target {
        name: "stack_throughput_ratio_64",
        at_most: false,
        bound: 0.7,
    },
    Target {
        name: "stack_throughput_ratio_1024",
        at_most: false,
        bound: 0.7,
    },
    Target {
        name: "stack_vs_peer_latency_ratio",
        at_most: true,
        bound: 1.0,
    },
    Target {
        name: "stack_vs_peer_throughput_ratio_64",
        at_most: false,
        bound: 1.0,
    },
    Target {
        name: "stack_vs_peer_throughput_ratio_1024",
        at_most: false,
        bound: 1.0,
    },
    Target {
        name: "reject_vs_bare_throughput_ratio",
        at_most: false,
        bound: 1.5,
    },
    Target {
        name: "agent_stack_idle_ratio",
        at_most: true,
        bound: 4.0,
    },
    Target {
        name: "agent_stack_used_idle_ratio",
        at_most: true,
        bound: 4.0,
    },
    Target {
        name: "agent_spawn_us",
        at_most: true,
        bound: 100.0,
    },
    Target {
        name: "exporter_latency_ratio",
        at_most: true,
        bound: 1.15,
    },
    Target {
        name: "agents_100k_spawn_s",
        at_most: true,
        bound: 5.0,
    },
    Target {
        name: "breaker_decision_ns",
        at_most: true,
        bound: 50.0,
    },
    Target {
        name: "estimator_observe_ns",
        at_most: true,
        bound: 100.0,
    },
    Target {
        name: "backoff_next_ns",
        at_most: true,
        bound: 30.0,
    },
    Target {
        name: "simulate_1h_wall_s",
        at_most: true,
        bound: 5.0,
    },
    Target {
        name: "keyed_breaker_decision_ns",
        at_most: true,
        bound: 100.0,
    },
    Target {
        name: "keyed_breaker_bytes_per_key",
        at_most: true,
        bound: 1024.0,
    },
    Target {
        name: "remote_call_p50_ratio",
        at_most: true,
        bound: 1.5,
    },
    Target {
        name: "hol_p50_ratio",
        at_most: true,
        bound: 1.1,
    },
    Target {
        name: "hol_p95_ratio",
        at_most: true,
        bound: 1.1,
    },
    Target {
        name: "hol_p99_ratio",
        at_most: true,
        bound: 1.1,
    },
];

/// Collects figures and prints them.
#[derive(Debug)]
pub(crate) struct Reporter {
    json: bool,
    figures: Vec<Figure>,
}

impl Reporter {
    pub(crate) fn new(json: bool) -> Self {
        Reporter {
            json,
            figures: Vec::new(),
        }
    }

    /// Records a measured figure (and prints it at once with `--json`).
    pub(crate) fn figure(&mut self, name: &str, unit: &'static str, value: Summary) {
        self.push(Figure {
            name: name.to_owned(),
            unit,
            value: Some(value),
        });
    }

    /// Records a figure that could not be measured; `why` goes to stderr.
    pub(crate) fn absent(&mut self, name: &str, unit: &'static str, why: &str) {
        eprintln!("note: {name} is absent: {why}");
        self.push(Figure {
            name: name.to_owned(),
            unit,
            value: None,
        });
    }

    fn push(&mut self, figure: Figure) {
        if self.json {
            let mut out = std::io::stdout().lock();
            for (name, value) in lines(&figure) {
                let line = serde_json::json!({ "name": name, "value": value, "unit": figure.unit });
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        } else if let Some(s) = figure.value {
            eprintln!(
                "  {:<36} {:>14} {:<8} (min {}, max {}, {} reps)",
                figure.name,
                fmt(s.median),
                figure.unit,
                fmt(s.min),
                fmt(s.max),
                s.reps
            );
        }
        self.figures.push(figure);
    }

    /// Prints the table (without `--json`) and the target checks (stderr).
    pub(crate) fn finish(&self) {
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "| figure | median | min | max | unit | reps |\n|---|---:|---:|---:|---|---:|"
            );
            for f in &self.figures {
                let _ = match f.value {
                    Some(s) => writeln!(
                        out,
                        "| `{}` | {} | {} | {} | {} | {} |",
                        f.name,
                        fmt(s.median),
                        fmt(s.min),
                        fmt(s.max),
                        f.unit,
                        s.reps
                    ),
                    None => writeln!(out, "| `{}` | absent | | | {} | 0 |", f.name, f.unit),
                };
            }
        }
        eprintln!("targets (the performance issue's bars where it set one), on the medians:");
        for t in TARGETS {
            let Some(f) = self.figures.iter().find(|f| f.name == t.name) else {
                continue;
            };
            let op = if t.at_most { "<=" } else { ">=" };
            match f.value {
                Some(s) => {
                    let holds = if t.at_most {
                        s.median <= t.bound
                    } else {
                        s.median >= t.bound
                    };
                    eprintln!(
                        "  {:<34} {:>12} {op} {:<6} {}",
                        t.name,
                        fmt(s.median),
                        t.bound,
                        if holds { "holds" } else { "MISSED" }
                    );
                }
                None => eprintln!(
                    "  {:<34} {:>12} {op} {:<6} not measured",
                    t.name, "-", t.bound
                ),
            }
        }
    }
}

/// The three JSON lines of a figure: the median, then `_min` and `_max`.
fn lines(f: &Figure) -> [(String, serde_json::Value); 3] {
    let v = |x: Option<f64>| x.map_or(serde_json::Value::Null, |x| serde_json::json!(round(x)));
    [
        (f.name.clone(), v(f.value.map(|s| s.median))),
        (format!("{}_min", f.name), v(f.value.map(|s| s.min))),
        (format!("{}_max", f.name), v(f.value.map(|s| s.max))),
    ]
}

/// Three decimals below 1000, whole numbers above: enough for figures that drift by percents.
fn round(x: f64) -> f64 {
    if x.abs() >= 1000.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

fn fmt(x: f64) -> String {
    let r = round(x);
    if r.abs() >= 1000.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}
