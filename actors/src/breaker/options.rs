//! [`BreakerOptions`]: how a breaker actor runs (the policy itself is the core's
//! [`BreakerSettings`](ractor_resilience_core::breaker::BreakerSettings)).

use std::sync::Arc;
use std::time::Duration;

use ractor_resilience_core::breaker::BreakerState;

/// Called with `(from, to)` on every transition, inside the breaker actor: keep it short and
/// never panic in it (a panic fails the actor).
pub type StateChangeHook = Arc<dyn Fn(BreakerState, BreakerState) + Send + Sync>;

/// How a breaker actor runs.
///
/// # Default
/// `seed = 0`, no hook, an outcome queue of [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY)
/// records, allocated once [`DEFAULT_QUEUE_AFTER`](Self::DEFAULT_QUEUE_AFTER) outcomes arrive
/// within [`QUEUE_BURST`](Self::QUEUE_BURST), drained every [`DEFAULT_DRAIN_INTERVAL`](Self::DEFAULT_DRAIN_INTERVAL) while
/// outcomes arrive (and at once on a failure).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ractor_resilience::breaker::BreakerOptions;
///
/// let options = BreakerOptions::new()
///     .with_seed(7)
///     .with_queue_capacity(64)
///     .with_on_state_change(Arc::new(|from, to| eprintln!("{from} -> {to}")));
/// assert_eq!(options.queue_capacity, 64);
/// assert_eq!(options.queue_after, 64); // outcomes by message until a burst of 64 in 100 ms
/// assert_eq!(options.drain_interval, Duration::from_millis(1));
/// ```
#[derive(Clone)]
pub struct BreakerOptions {
    /// Seeds the open-duration jitter (give each breaker its own).
    pub seed: u64,
    /// Called on every transition.
    pub on_state_change: Option<StateChangeHook>,
    /// Outcomes the lock-free queue holds before `record` falls back to a message (at least 1).
    pub queue_capacity: usize,
    /// How many outcomes arriving within [`QUEUE_BURST`](Self::QUEUE_BURST) of each other make
    /// the breaker allocate its queue (`queue_capacity` slots, ≈ 12 KiB by default). Until then
    /// each outcome travels as a message of its own and is applied at once, so a breaker that
    /// is called rarely (most agents of a multi-agent system) never holds the queue; one called
    /// faster than `queue_after` per `QUEUE_BURST` (640 calls/s by default) gets it, and keeps
    /// it. 0 allocates it with the first outcome.
    pub queue_after: u32,
    /// How long after the first queued outcome the queue is drained (failures drain at once).
    pub drain_interval: Duration,
}

impl BreakerOptions {
    /// The default queue capacity: a millisecond of outcomes at 256 k calls/s (≈ 12 KiB, allocated
    /// under load: see [`queue_after`](Self::queue_after)). Past that a full queue sends the outcome as a message, and handling
    /// it drains the queue: nothing is lost, and the benchmark's 64 and 1024 concurrent callers
    /// (≈ 400 k calls/s) lost no throughput against 1024 slots.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
    /// The default [`queue_after`](Self::queue_after).
    pub const DEFAULT_QUEUE_AFTER: u32 = 64;
    /// The window of [`queue_after`](Self::queue_after).
    pub const QUEUE_BURST: Duration = Duration::from_millis(100);
    /// The default batching tick.
    pub const DEFAULT_DRAIN_INTERVAL: Duration = Duration::from_millis(1);

    /// The defaults.
    pub const fn new() -> Self {
        BreakerOptions {
            seed: 0,
            on_state_change: None,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            queue_after: Self::DEFAULT_QUEUE_AFTER,
            drain_interval: Self::DEFAULT_DRAIN_INTERVAL,
        }
    }

    /// Sets the jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the transition hook.
    pub fn with_on_state_change(mut self, hook: StateChangeHook) -> Self {
        self.on_state_change = Some(hook);
        self
    }

    /// Sets the outcome queue's capacity (0 is taken as 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Sets [`queue_after`](Self::queue_after) (0: allocate the queue with the first outcome).
    pub fn with_queue_after(mut self, outcomes: u32) -> Self {
        self.queue_after = outcomes;
        self
    }

    /// Sets the batching tick.
    pub fn with_drain_interval(mut self, interval: Duration) -> Self {
        self.drain_interval = interval;
        self
    }
}

impl Default for BreakerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BreakerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerOptions")
            .field("seed", &self.seed)
            .field("on_state_change", &self.on_state_change.is_some())
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_after", &self.queue_after)
            .field("drain_interval", &self.drain_interval)
            .finish()
    }
}
