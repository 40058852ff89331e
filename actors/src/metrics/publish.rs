//! Metrics counted in place and handed to the recorder in batches: what is counted this way,
//! when it is published and why are in [`publish`]'s documentation. Owners ([`Publish`]) list
//! themselves with a [`Dirty`] flag when they count something; a round publishes the list.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

/// How often the background thread publishes.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Something that counts in place and publishes on demand.
pub(crate) trait Publish: Send + Sync {
    /// Set while it waits to be published.
    fn dirty(&self) -> &Dirty;
    /// Hands what was counted since the last call to the metric handles.
    fn publish(&self);
}

/// Whether its owner waits in the list of those to publish.
#[derive(Debug, Default)]
pub(crate) struct Dirty(AtomicBool);

impl Dirty {
    /// Called after counting something: the first call since the owner was last published puts
    /// it in the list (`owner` is called then only); the others cost one load.
    #[inline]
    pub(crate) fn mark(&self, owner: impl FnOnce() -> Arc<dyn Publish>) {
        if !self.0.load(Ordering::Relaxed) {
            self.mark_slow(owner);
        }
    }

    #[cold]
    fn mark_slow(&self, owner: impl FnOnce() -> Arc<dyn Publish>) {
        if !self.0.swap(true, Ordering::AcqRel) {
            enqueue(owner());
        }
    }

    fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// An owner to publish, and how many more rounds it stays listed after the next.
type Entry = (Arc<dyn Publish>, u8);

/// Owners with something to publish. Bounded by twice the number of agents that counted
/// something in the last two rounds: an owner is listed once when it is marked, and kept one
/// round more after being published.
static PENDING: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Held for a whole round: a [`publish`] that returns has published everything that was
/// counted before it was called, even if the background thread had taken the list.
static ROUND: Mutex<()> = Mutex::new(());
static THREAD: Once = Once::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn enqueue(owner: Arc<dyn Publish>) {
    lock(&PENDING).push((owner, 1));
    THREAD.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("resilience-metrics".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(PUBLISH_INTERVAL);
                    // A recorder that panics must not end the publishing for good.
                    if std::panic::catch_unwind(publish).is_err() {
                        tracing::error!("publishing metrics panicked; retrying next round");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics publishing thread: metrics are published only by `metrics::publish`");
        }
    });
}

/// Publishes now everything this process's agents counted in place and have not handed to the
/// metrics recorder yet: call it before reading a recorder — a scrape handler before it
/// renders, as the agent system's `/metrics` does.
///
/// An agent's workers count what every attempt does — that it started (the attempts counter and
/// the retry policy's amplification ratio), how long it waited in the queue, how a timeout
/// policy the agent keeps in place saw it — in sets only they write, and the agent's admission
/// counts its tasks in flight. Handing each of these to the Prometheus exporter as it happens
/// costs about 20 atomic read-modify-writes per call; counted in place they cost a few plain
/// stores, and are published — turned into the same counter increments, histogram samples and
/// gauge values — in batches:
///
/// - every [`PUBLISH_INTERVAL`], by a background thread (`resilience-metrics`), for every agent
///   that counted something since it was last published;
/// - by a worker whose buffer of queue waits is full;
/// - by this function.
///
/// A recorder read without publishing first is therefore at most about a second behind;
/// nothing is lost or published twice. A task's outcome and duration, sheds, restarts and the
/// breaker series are recorded as they happen.
///
/// It blocks while it publishes (and while a round of the background thread it waits for
/// does): call it from a blocking context (`spawn_blocking`) in an async server.
///
/// ```
/// use ractor_resilience::metrics;
///
/// let recorder = metrics::prometheus_builder().build_recorder();
/// let handle = recorder.handle();
/// // … agents spawned with `recorder` installed run calls …
/// metrics::publish();
/// let page = handle.render();
/// # let _ = page;
/// ```
pub fn publish() {
    let _round = lock(&ROUND);
    let taken = std::mem::take(&mut *lock(&PENDING));
    if taken.is_empty() {
        return;
    }
    // Every flag cleared first: what is counted from here on lists its owner again (even if
    // publishing one of them below panics). A count made just before that, which this round
    // does not see yet, is seen by the next one, where each owner stays listed for.
    for (owner, _) in &taken {
        owner.dirty().clear();
    }
    let mut again = Vec::new();
    for (owner, left) in taken {
        owner.publish();
        if left > 0 {
            again.push((owner, left - 1));
        }
    }
    lock(&PENDING).extend(again);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Probe {
        dirty: Dirty,
        counted: AtomicU64,
        published: AtomicU64,
        rounds: AtomicU64,
    }

    impl Publish for Probe {
        fn dirty(&self) -> &Dirty {
            &self.dirty
        }
        fn publish(&self) {
            self.rounds.fetch_add(1, Ordering::Relaxed);
            self.published
                .store(self.counted.load(Ordering::Acquire), Ordering::Relaxed);
        }
    }

    fn count(p: &Arc<Probe>) {
        p.counted.fetch_add(1, Ordering::Release);
        p.dirty.mark(|| p.clone());
    }

    #[test]
    fn a_marked_owner_is_published_then_let_go() {
        let _serial = lock(&SERIAL);
        let p = Arc::new(Probe::default());
        count(&p);
        count(&p); // already listed: no second entry
        publish();
        assert_eq!(p.published.load(Ordering::Relaxed), 2);
        // Listed one round more (this test's or the background thread's), then let go.
        publish();
        publish();
        assert!(p.rounds.load(Ordering::Relaxed) >= 2);
        assert_eq!(Arc::strong_count(&p), 1, "the list lets it go");
        count(&p); // counting again lists it again
        publish();
        assert_eq!(p.published.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn counts_from_many_threads_are_all_published() {
        let _serial = lock(&SERIAL);
        let p = Arc::new(Probe::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        count(&p);
                        if i % 1000 == 0 {
                            publish();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        publish();
        assert_eq!(p.published.load(Ordering::Relaxed), 40_000);
    }

    /// Publishes once with a panic, then never again.
    #[derive(Default)]
    struct Panicky {
        dirty: Dirty,
        panicked: AtomicBool,
    }

    impl Publish for Panicky {
        fn dirty(&self) -> &Dirty {
            &self.dirty
        }
        fn publish(&self) {
            if !self.panicked.swap(true, Ordering::Relaxed) {
                panic!("a recorder that panics");
            }
        }
    }

    #[test]
    fn a_panic_while_publishing_one_owner_leaves_the_others_listable() {
        let _serial = lock(&SERIAL);
        let bad = Arc::new(Panicky::default());
        let good = Arc::new(Probe::default());
        bad.dirty.mark(|| bad.clone());
        count(&good);
        // This round (or the background thread's) panics on `bad`, maybe before `good`.
        let _ = std::panic::catch_unwind(publish);
        // `good` counts again: it is listed again, whatever the panic skipped.
        count(&good);
        publish();
        publish();
        assert_eq!(good.published.load(Ordering::Relaxed), 2);
    }

    /// The tests of this module share the process-wide list.
    static SERIAL: Mutex<()> = Mutex::new(());
}
