//! `--timeline FILE.svg`: `simulate` draws a well-formed SVG that names every breaker and
//! shows the default scenario's outage and breaker states, byte-identical for the same seed
//! (and to the README's `docs/timeline.svg`);
//! `run` draws one too; a path that cannot be written is an error naming it, after the summary
//! and the report are written.

mod common;

use std::path::{Path, PathBuf};

use agent_system::cli::SimulateArgs;
use agent_system::commands;
use ractor_resilience::config::EnvOverrides;

fn artifact(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agent-system-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// `simulate --timeline PATH` (and `--report-json` when given): exit status, stdout, stderr.
fn simulate(
    config: Option<&Path>,
    seed: u64,
    timeline: &Path,
    report: Option<&Path>,
) -> (u8, String, String) {
    let args = SimulateArgs {
        config: config.map(Path::to_owned),
        seed: Some(seed),
        timeline: Some(timeline.to_owned()),
        report_json: report.map(Path::to_owned),
        ..SimulateArgs::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = commands::simulate(&args, &EnvOverrides::default(), &mut out, &mut err).unwrap();
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// The fills of every `<rect>`, and every text, of a well-formed SVG document.
fn parse(svg: &str) -> (Vec<String>, Vec<String>) {
    let doc = roxmltree::Document::parse(svg).expect("the timeline is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert!(root.attribute("width").is_some() && root.attribute("height").is_some());
    let fills = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| n.attribute("fill").map(str::to_owned))
        .collect();
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
        .collect();
    (fills, texts)
}

// The picture's colours (src/timeline/draw.rs).
const OUTAGE: &str = "#FFD6D6";
const CLOSED: &str = "#2CA02C";
const OPEN: &str = "#BE1414";
const HALF_OPEN: &str = "#FFBF00";

#[test]
fn simulate_draws_the_default_scenario_and_the_same_seed_draws_the_same_bytes() {
    let (first, second) = (artifact("t1.svg"), artifact("t2.svg"));
    let (status, out, err) = simulate(None, 1, &first, None);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("timeline written to"), "{out}");
    let svg = std::fs::read_to_string(&first).unwrap();
    let (fills, texts) = parse(&svg);
    assert!(texts.iter().any(|t| t == "llm"), "the llm band is named");
    assert!(
        texts.iter().any(|t| t == "outage"),
        "the outage is labelled"
    );
    let count = |c: &str| fills.iter().filter(|f| f.as_str() == c).count();
    // One legend swatch each, plus what the charts draw: the outage behind four charts, and
    // the llm band closed, then open, half-open (probes) and closed again.
    assert!(count(OUTAGE) >= 5, "outage windows: {}", count(OUTAGE));
    assert!(count(OPEN) >= 2, "open spans: {}", count(OPEN));
    assert!(
        count(HALF_OPEN) >= 2,
        "half-open spans: {}",
        count(HALF_OPEN)
    );
    assert!(count(CLOSED) >= 3, "closed spans: {}", count(CLOSED));

    let (status, _, err) = simulate(None, 1, &second, None);
    assert_eq!(status, 0, "{err}");
    let again = std::fs::read(&second).unwrap();
    assert!(
        again == svg.as_bytes(),
        "two runs with seed 1 drew different files: {} and {}",
        first.display(),
        second.display()
    );
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/timeline.svg");
    assert!(
        std::fs::read(committed).unwrap() == svg.as_bytes(),
        "the README's picture is not what simulate draws now; redraw it from the repository's \
         root with: cargo run --release -- simulate --timeline docs/timeline.svg"
    );
    let (status, _, err) = simulate(None, 2, &second, None);
    assert_eq!(status, 0, "{err}");
    assert_ne!(
        std::fs::read(&second).unwrap(),
        svg.as_bytes(),
        "another seed, another run"
    );
    let _ = (std::fs::remove_file(&first), std::fs::remove_file(&second));
}

#[test]
fn every_breaker_of_a_keyed_scenario_gets_a_band() {
    let config = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/scenarios/models.toml"
    ));
    let path = artifact("models.svg");
    let (status, _, err) = simulate(Some(&config), 1, &path, None);
    assert_eq!(status, 0, "{err}");
    let (_, texts) = parse(&std::fs::read_to_string(&path).unwrap());
    for name in ["llm", "models[model-b]", "outage (model-b)"] {
        assert!(texts.iter().any(|t| t == name), "{name} missing: {texts:?}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_unwritable_timeline_is_an_error_naming_it_after_the_report_is_written() {
    let report = artifact("unwritable-report.json");
    let timeline = PathBuf::from("/nonexistent-directory-for-agent-system/t.svg");
    let (status, out, err) = simulate(None, 1, &timeline, Some(&report));
    assert_eq!(status, 1, "{out}{err}");
    assert!(
        err.contains("cannot write the timeline to /nonexistent-directory-for-agent-system/t.svg"),
        "{err}"
    );
    assert!(out.contains("== summary"), "{out}");
    let report_json = common::read_report(&report);
    common::assert_adds_up(&report_json);
    let _ = std::fs::remove_file(&report);
}

#[test]
fn run_draws_a_timeline_too() {
    let config = common::config_file(
        "timeline-run",
        r#"
[breakers.llm]
max_failures = 3
open_duration = "1s"

[retry_policies.llm]
max_attempts = 1

[timeouts.llm]
kind = "fixed"
duration = "2s"

[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"

[system]
duration = "3s"
drain_deadline = "1s"

[system.workload]
rate = 20.0

[system.provider]
kind = "simulated"
outages = [{ start = "1s", length = "1s" }]
spikes = []

[system.exporter]
addr = "127.0.0.1:0"
linger = "0s"
"#,
    );
    let path = artifact("run.svg");
    let timeline = path.to_str().unwrap();
    let running = common::start(
        &["--log-level", "warn"],
        &config,
        &["--timeline", timeline],
        &[],
    );
    let finished = running.wait(std::time::Duration::from_secs(20));
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stdout.contains("timeline written to"),
        "{}",
        finished.stdout
    );
    let (fills, texts) = parse(&std::fs::read_to_string(&path).unwrap());
    assert!(texts.iter().any(|t| t == "llm"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("agent-system run")),
        "{texts:?}"
    );
    assert!(fills.iter().any(|f| f == OPEN), "the outage opened llm");
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&config));
}
