//! [`KeyedBreakerOptions`]: how a keyed family's actor runs and which keys get metric series of
//! their own (the policy itself is the core's
//! [`FamilySettings`](ractor_resilience_core::breaker::FamilySettings)).

use std::time::Duration;

/// How a keyed family's actor runs.
///
/// # Default
/// `seed = 0`; an outcome queue of [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY)
/// records drained every millisecond while outcomes arrive (at once on a failure); no
/// `metric_keys`; the [`DEFAULT_METRIC_TOP_KEYS`](Self::DEFAULT_METRIC_TOP_KEYS) keys with the
/// most recent failures get series of their own, re-ranked every
/// [`DEFAULT_RANK_INTERVAL`](Self::DEFAULT_RANK_INTERVAL).
///
/// # Metric labels
/// Every series of a family carries `breaker` and `key`. `key` is one of the `metric_keys`
/// (series registered at spawn), one of the current top `metric_top_keys` keys by failures
/// (series registered when a key enters the top), `"other"` (every other key, aggregated), or
/// `"overflow"` (the overflow breaker). So a family has at most
/// `metric_keys + metric_top_keys + 2` label values, however many keys its traffic brings. A
/// key enters the top only if it is 1 to 128 visible ASCII characters without `"` or `\`, and
/// is not `other` or `overflow`.
///
/// ```
/// use ractor_resilience::breaker::KeyedBreakerOptions;
///
/// let options = KeyedBreakerOptions::new()
///     .with_metric_keys(["gpt-4o", "claude"])
///     .with_metric_top_keys(5);
/// assert_eq!(options.metric_keys, ["gpt-4o", "claude"]);
/// assert_eq!(options.queue_capacity, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedBreakerOptions {
    /// Seeds every key's open-duration jitter (mixed with the key's slot).
    pub seed: u64,
    /// Outcomes the lock-free queue holds (rounded up to a power of two, at least 2) before
    /// `record` waits for room and then falls back to a message.
    pub queue_capacity: usize,
    /// How long after the first queued outcome the queue is drained (failures drain at once).
    pub drain_interval: Duration,
    /// Keys that always have series of their own (from the configuration: bounded). At most
    /// [`MAX_METRIC_KEYS`](Self::MAX_METRIC_KEYS), each a valid label key (see above).
    pub metric_keys: Vec<String>,
    /// How many of the keys with the most recent failures get series of their own, at most
    /// [`MAX_METRIC_TOP_KEYS`](Self::MAX_METRIC_TOP_KEYS).
    pub metric_top_keys: usize,
    /// How often the top keys are re-ranked (while outcomes arrive); each ranking halves the
    /// failure scores, so "recent" decays by half per interval.
    pub rank_interval: Duration,
}

impl KeyedBreakerOptions {
    /// The default queue capacity: a family's keys share one queue, so it is larger than a
    /// single breaker's: about 0.4 ms of outcomes at 10 M/s, more than one caller thread
    /// records (128 KiB of 32-byte records for held keys, plus a general lane of at most 256
    /// records for new keys, probes and the overflow breaker; allocated by the first outcome).
    pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
    /// The default batching tick.
    pub const DEFAULT_DRAIN_INTERVAL: Duration = Duration::from_millis(1);
    /// The default number of top keys by failures with series of their own.
    pub const DEFAULT_METRIC_TOP_KEYS: usize = 10;
    /// The default re-ranking interval.
    pub const DEFAULT_RANK_INTERVAL: Duration = Duration::from_secs(10);
    /// The most `metric_keys` a family accepts.
    pub const MAX_METRIC_KEYS: usize = 1000;
    /// The most `metric_top_keys` a family accepts.
    pub const MAX_METRIC_TOP_KEYS: usize = 100;

    /// The defaults.
    pub const fn new() -> Self {
        KeyedBreakerOptions {
            seed: 0,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            drain_interval: Self::DEFAULT_DRAIN_INTERVAL,
            metric_keys: Vec::new(),
            metric_top_keys: Self::DEFAULT_METRIC_TOP_KEYS,
            rank_interval: Self::DEFAULT_RANK_INTERVAL,
        }
    }

    /// Sets the jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the outcome queue's capacity (0 is taken as 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Sets the batching tick.
    pub fn with_drain_interval(mut self, interval: Duration) -> Self {
        self.drain_interval = interval;
        self
    }

    /// Sets the keys that always have series of their own.
    pub fn with_metric_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.metric_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how many top keys by failures have series of their own.
    pub fn with_metric_top_keys(mut self, n: usize) -> Self {
        self.metric_top_keys = n;
        self
    }

    /// Sets the re-ranking interval.
    pub fn with_rank_interval(mut self, interval: Duration) -> Self {
        self.rank_interval = interval;
        self
    }

    /// The first rule these options break, if any: checked when the actor starts (a family
    /// with invalid options fails to spawn).
    pub fn check(&self) -> Result<(), String> {
        if self.metric_keys.len() > Self::MAX_METRIC_KEYS {
            return Err(format!(
                "metric_keys: at most {} keys, got {}",
                Self::MAX_METRIC_KEYS,
                self.metric_keys.len()
            ));
        }
        for (i, key) in self.metric_keys.iter().enumerate() {
            if !is_metric_key(key) {
                return Err(format!("metric_keys: {key:?} {METRIC_KEY_RULE}"));
            }
            if self.metric_keys[..i].contains(key) {
                return Err(format!("metric_keys: {key:?} is listed twice"));
            }
        }
        if self.metric_top_keys > Self::MAX_METRIC_TOP_KEYS {
            return Err(format!(
                "metric_top_keys: at most {}, got {}",
                Self::MAX_METRIC_TOP_KEYS,
                self.metric_top_keys
            ));
        }
        if self.rank_interval.is_zero() {
            return Err("rank_interval: must be greater than zero".into());
        }
        Ok(())
    }
}

impl Default for KeyedBreakerOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The label value of every key without series of its own.
pub(crate) const OTHER_KEY: &str = "other";
/// The label value of the overflow breaker.
pub(crate) const OVERFLOW_KEY: &str = "overflow";

/// The rule a key follows to be a `key` label value, as messages state it.
pub const METRIC_KEY_RULE: &str = "must be 1 to 128 visible ASCII characters without `\"` or `\\`, \
     and not `other` or `overflow` (label values the family uses itself)";

/// Whether `key` may be a `key` label value (see [`KeyedBreakerOptions`]).
///
/// ```
/// use ractor_resilience::breaker::is_metric_key;
///
/// assert!(is_metric_key("gpt-4o"));
/// assert!(is_metric_key("meta-llama/Llama-3-70b@eu:1"));
/// assert!(!is_metric_key("other"));
/// assert!(!is_metric_key("two words"));
/// assert!(!is_metric_key(""));
/// ```
pub fn is_metric_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        && key != OTHER_KEY
        && key != OVERFLOW_KEY
}
