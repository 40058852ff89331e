//! Small helpers shared by the actor tests: durations, letting spawned work run on the paused
//! clock, a paused runtime with a metrics recorder of its own, and a probe actor that forwards
//! what it receives to a channel the test reads.
#![allow(dead_code)]

use std::marker::PhantomData;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use ractor::{Actor, ActorProcessingErr, ActorRef, Message};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Runs `body` on a paused current-thread runtime with `recorder` installed as this thread's
/// metrics recorder; `body` gets the recorder's handle, to render what was recorded.
pub fn paused_with_recorder<F: std::future::Future>(
    recorder: PrometheusRecorder,
    body: impl FnOnce(PrometheusHandle) -> F,
) -> F::Output {
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(body(handle))
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Lets every task that is ready run (actors, timers' tasks, subscriptions) without letting
/// the paused clock move: yielding keeps the runtime busy, so it never auto-advances.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// An actor that forwards every message it receives to a channel.
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T: Message> Actor for Probe<T> {
    type Msg = T;
    type State = UnboundedSender<T>;
    type Arguments = UnboundedSender<T>;

    async fn pre_start(
        &self,
        _myself: ActorRef<T>,
        tx: UnboundedSender<T>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _myself: ActorRef<T>,
        message: T,
        tx: &mut UnboundedSender<T>,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send(message);
        Ok(())
    }
}

/// Spawns a [`Probe`]: its reference, and the channel its messages arrive on.
pub async fn probe<T: Message>() -> (ActorRef<T>, UnboundedReceiver<T>) {
    let (tx, rx) = unbounded_channel();
    let (actor, _) = Actor::spawn(None, Probe(PhantomData), tx)
        .await
        .expect("the probe starts");
    (actor, rx)
}

/// Everything received so far, without waiting.
pub fn drain<T>(rx: &mut UnboundedReceiver<T>) -> Vec<T> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}
