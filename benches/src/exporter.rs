//! `exporter_latency_ratio`: what a call through the stack costs when the Prometheus exporter is
//! installed, as every production user runs it.
//!
//! `metrics` has one global recorder, installed once per process, and an agent takes its metric
//! handles (counters, histograms) when it is spawned. So the probe runs in a **child process**
//! (this binary with `--exporter-probe`), which spawns one agent before installing the recorder
//! (its handles are no-ops, as in every other figure) and one after it (its handles are the
//! exporter's, built with the library's bucket setup, [`prometheus_builder`]), then measures the
//! two in turn, in an order that rotates every repetition, exactly as the latency group does. A
//! thread runs the exporter's upkeep once a second (what its HTTP listener does between scrapes)
//! and renders the text page every 5 s (a scrape, which publishes what agents counted in place
//! first, as the agent system's `/metrics` does), so histogram samples do not pile up.
//!
//! [`prometheus_builder`]: ractor_resilience::metrics::prometheus_builder

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::calls::{self, StackCaller};

/// The samples of one probe: per repetition, the p50 (ns) without and with the exporter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub(crate) plain: Vec<f64>,
    pub(crate) exported: Vec<f64>,
}

/// Runs in the child: prints `{"plain": […], "exported": […]}` (warm-up repetition dropped).
pub(crate) fn run_probe(reps: usize, calls: usize) {
    let rt = crate::runtime();
    let samples = rt.block_on(async move {
        tokio::spawn(async move {
            let plain = StackCaller(calls::spawn_stack("exporter-plain", 1).await);
            let recorder = ractor_resilience::metrics::prometheus_builder().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("no recorder installed before");
            let exported = StackCaller(calls::spawn_stack("exporter-installed", 1).await);
            let stop = Arc::new(AtomicBool::new(false));
            let upkeep = {
                let (stop, handle) = (stop.clone(), handle.clone());
                std::thread::spawn(move || {
                    let mut ticks = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_secs(1));
                        handle.run_upkeep();
                        ticks += 1;
                        if ticks % 5 == 0 {
                            // A scrape, as the agent system's `/metrics` makes it.
                            ractor_resilience::metrics::publish();
                            std::hint::black_box(handle.render());
                        }
                    }
                })
            };
            let mut s = Samples::default();
            for rep in 0..=reps {
                let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
                for which in order {
                    let caller = if which == 0 { &plain } else { &exported };
                    let v = calls::p50_ns(caller.clone(), calls).await;
                    if rep > 0 {
                        if which == 0 {
                            s.plain.push(v);
                        } else {
                            s.exported.push(v);
                        }
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            upkeep.join().expect("the upkeep thread panicked");
            // The exporter must have counted the installed agent's calls, and none of the
            // plain one's: otherwise the ratio would compare two uninstrumented stacks.
            ractor_resilience::metrics::publish();
            let page = handle.render();
            // Counted where the task ends (its outcome) and in place by the worker (its queue
            // wait, published in batches): both must have reached the exporter.
            let value = |prefix: &str, labels: &[&str]| {
                page.lines()
                    .find(|l| l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let agent = "agent=\"exporter-installed\"";
            let wait_count = format!("{}_count", ractor_resilience::metrics::AGENT_QUEUE_WAIT);
            for (prefix, labels) in [
                (
                    ractor_resilience::metrics::TASKS,
                    &[agent, "outcome=\"succeeded\""][..],
                ),
                (wait_count.as_str(), &[agent][..]),
            ] {
                let counted = value(prefix, labels);
                assert!(
                    counted >= ((reps + 1) * calls) as f64,
                    "the exporter counted {counted} of the installed agent's calls in {prefix}"
                );
            }
            assert!(
                !page.contains("exporter-plain"),
                "the plain agent reached the exporter"
            );
            calls::stop_stack(&plain.0);
            calls::stop_stack(&exported.0);
            s
        })
        .await
        .expect("the exporter probe panicked")
    });
    println!(
        "{}",
        serde_json::json!({ "plain": samples.plain, "exported": samples.exported })
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Runs the probe in a child process.
pub(crate) fn probe(reps: usize, calls: usize) -> Samples {
    let v = crate::memory::child_json(
        &[
            "--exporter-probe",
            "--reps",
            &reps.to_string(),
            "--count",
            &calls.to_string(),
        ],
        "the exporter probe",
    );
    let list = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .expect("an array of p50s")
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect()
    };
    Samples {
        plain: list("plain"),
        exported: list("exported"),
    }
}
