//! Keyed breaker families: the cost of one decision for a random key, and the resident memory
//! per key held.
//!
//! - `keyed_breaker_decision_ns`: admission from the published snapshot
//!   (`try_acquire_local`) + `record` of a success, for a key drawn at random among 100 000
//!   held keys, in a tight loop on the main thread while the family's actor applies the
//!   outcomes on the 2-worker runtime. One caller recording as fast as it can keeps the actor
//!   busy, so this is also the family's throughput limit: the slower of the caller's cost and
//!   the actor's cost per outcome (a full queue makes the caller wait for room).
//! - `keyed_breaker_bytes_per_key`: RSS growth per key with 1 000 000 keys held (`tenant-NNNNNNN`
//!   keys, default breaker settings: the consecutive-failures policy and a 100-call count
//!   window), in a fresh child process like the other memory figures (`--rss-probe keyed`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerHandle, KeyedBreakerOptions};
use ractor_resilience::core::breaker::{BreakerSettings, CallOutcome, FamilySettings};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Keys held while deciding.
pub(crate) const DECISION_KEYS: usize = 100_000;
/// Keys held for the memory figure.
pub(crate) const MEMORY_KEYS: usize = 1_000_000;
/// Keys created before the first RSS reading (map shards, slab and allocator arenas warm).
const WARM_UP_KEYS: usize = 10_000;

fn key(i: usize) -> String {
    format!("tenant-{i:07}")
}

async fn spawn_family(max_keys: usize) -> KeyedBreakerHandle {
    let settings = FamilySettings::builder(BreakerSettings::default())
        .with_max_keys(max_keys as u32)
        .with_idle_evict_after(None)
        .build()
        .expect("valid family settings");
    KeyedBreakerActor::spawn("bench-keyed", settings, KeyedBreakerOptions::default())
        .await
        .expect("spawn the family")
}

/// Creates keys `from..to` (a success each, so the actor creates them), waiting for the actor
/// every 1 000 keys so that the outcome queue never overflows.
async fn fill(family: &KeyedBreakerHandle, from: usize, to: usize) {
    let took = Duration::from_micros(50);
    for i in from..to {
        let permit = family
            .try_acquire_local(&key(i))
            .expect("a key not held admits without a message")
            .expect("a fresh key admits");
        family.record(permit, CallOutcome::Success, took);
        if i % 1_000 == 999 {
            family.status().await.expect("the family runs");
        }
    }
    let status = family.status().await.expect("the family runs");
    assert_eq!(status.keys, to, "every key held");
}

/// The keys a caller decides for, in one buffer: a caller holds the key of the task in hand
/// (just built, in cache), not a pointer to chase into a cold heap.
pub(crate) struct Keys {
    text: String,
    width: usize,
}

impl Keys {
    fn new(n: usize) -> Self {
        let width = key(0).len();
        let text: String = (0..n).map(key).collect();
        assert_eq!(text.len(), n * width, "fixed-width keys");
        Keys { text, width }
    }

    fn len(&self) -> usize {
        self.text.len() / self.width
    }

    fn get(&self, i: usize) -> &str {
        &self.text[i * self.width..(i + 1) * self.width]
    }
}

/// A family holding [`DECISION_KEYS`] keys, on `rt`, ready to be measured.
pub(crate) fn decision_family(rt: &tokio::runtime::Runtime) -> (KeyedBreakerHandle, Keys) {
    rt.block_on(async {
        let family = spawn_family(2 * DECISION_KEYS).await;
        fill(&family, 0, DECISION_KEYS).await;
        (family, Keys::new(DECISION_KEYS))
    })
}

/// Mean ns of admit + record for a random key, over `iters` of them in one loop.
pub(crate) fn decision_ns(family: &KeyedBreakerHandle, keys: &Keys, iters: u64) -> f64 {
    let mut rng = SmallRng::seed_from_u64(0x6b65_7965);
    let took = Duration::from_micros(50);
    let t0 = Instant::now();
    for _ in 0..iters {
        let key = keys.get(rng.random_range(0..keys.len()));
        let permit = family
            .try_acquire_local(black_box(key))
            .expect("a Closed key decides without a message")
            .expect("a Closed key admits");
        family.record(permit, CallOutcome::Success, took);
    }
    t0.elapsed().as_nanos() as f64 / iters as f64
}

/// Runs in the child: holds `count` keys and prints `{"bytes_per":…,"spawn_us":…}` (spawn_us:
/// µs per key created).
pub(crate) fn run_probe(count: usize) {
    let rt = crate::runtime();
    let (bytes_per, us_per) = rt.block_on(async move {
        let family = spawn_family(WARM_UP_KEYS + count).await;
        fill(&family, 0, WARM_UP_KEYS).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = crate::memory::rss_bytes();
        let t0 = Instant::now();
        fill(&family, WARM_UP_KEYS, WARM_UP_KEYS + count).await;
        let took = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = crate::memory::rss_bytes();
        family.stop();
        (
            after.saturating_sub(before) as f64 / count as f64,
            took.as_secs_f64() * 1e6 / count as f64,
        )
    });
    println!(
        "{}",
        serde_json::json!({ "bytes_per": bytes_per, "spawn_us": us_per })
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}
