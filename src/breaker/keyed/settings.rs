//! [`FamilySettings`]: the one breaker policy a family applies per key, and the bounds that keep
//! the family's memory fixed (`max_keys`, `idle_evict_after`).

use std::num::NonZeroU32;
use std::time::Duration;

use crate::InvalidSettings;
use crate::breaker::BreakerSettings;
use crate::settings::check_duration;

/// Validated settings of a [`BreakerFamily`](super::BreakerFamily).
///
/// # Default
/// `max_keys = 10 000` ([`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS)) and
/// `idle_evict_after = 10m` ([`DEFAULT_IDLE_EVICT_AFTER`](Self::DEFAULT_IDLE_EVICT_AFTER)):
/// a tenant-sized family holds a few MiB at most, and a key nobody used for ten minutes carries
/// nothing its first new failure would not teach again.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::{BreakerSettings, FamilySettings};
///
/// let s = FamilySettings::builder(BreakerSettings::default())
///     .with_max_keys(100)
///     .with_idle_evict_after(Some(Duration::from_secs(60)))
///     .build()
///     .unwrap();
/// assert_eq!((s.max_keys(), s.idle_evict_after()), (100, Some(Duration::from_secs(60))));
///
/// let err = FamilySettings::builder(BreakerSettings::default()).with_max_keys(0).build().unwrap_err();
/// assert_eq!(err.field, "max_keys");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySettings {
    breaker: BreakerSettings,
    max_keys: NonZeroU32,
    idle_evict_after: Option<Duration>,
}

impl FamilySettings {
    /// The default cap on keys held at once.
    pub const DEFAULT_MAX_KEYS: u32 = 10_000;
    /// The largest `max_keys` accepted: 2²⁴ keys (a few GiB at most).
    pub const MAX_MAX_KEYS: u32 = 1 << 24;
    /// The default idle period after which an idle key is evicted.
    pub const DEFAULT_IDLE_EVICT_AFTER: Duration = Duration::from_secs(600);

    /// Starts from the defaults (see [`FamilySettings`]) with `breaker` as the per-key policy.
    pub const fn builder(breaker: BreakerSettings) -> FamilySettingsBuilder {
        FamilySettingsBuilder {
            breaker,
            max_keys: Self::DEFAULT_MAX_KEYS,
            idle_evict_after: Some(Self::DEFAULT_IDLE_EVICT_AFTER),
        }
    }

    /// The defaults with `breaker` as the per-key policy.
    pub fn new(breaker: BreakerSettings) -> Self {
        Self::builder(breaker)
            .build()
            .expect("the default family bounds are valid")
    }

    /// The policy every key's breaker follows (shared, not copied per key).
    pub fn breaker(&self) -> &BreakerSettings {
        &self.breaker
    }

    /// The most keys held at once (the overflow breaker excluded).
    pub fn max_keys(&self) -> u32 {
        self.max_keys.get()
    }

    /// How long an idle key (see [`BreakerFamily`](super::BreakerFamily)) is kept; `None`: until
    /// `max_keys` needs its room.
    pub fn idle_evict_after(&self) -> Option<Duration> {
        self.idle_evict_after
    }

    /// A builder holding these settings, to change some of them.
    pub fn to_builder(&self) -> FamilySettingsBuilder {
        FamilySettingsBuilder {
            breaker: self.breaker.clone(),
            max_keys: self.max_keys.get(),
            idle_evict_after: self.idle_evict_after,
        }
    }
}

/// Builds [`FamilySettings`]; every value is checked by [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience_core::breaker::{BreakerSettings, FamilySettings};
///
/// let err = FamilySettings::builder(BreakerSettings::default())
///     .with_idle_evict_after(Some(Duration::ZERO))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field, "idle_evict_after");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct FamilySettingsBuilder {
    breaker: BreakerSettings,
    max_keys: u32,
    idle_evict_after: Option<Duration>,
}

impl FamilySettingsBuilder {
    /// Holds at most `n` keys at once, `1..=`[`MAX_MAX_KEYS`](FamilySettings::MAX_MAX_KEYS).
    pub const fn with_max_keys(mut self, n: u32) -> Self {
        self.max_keys = n;
        self
    }

    /// Evicts idle keys after `idle` (`None`: only when `max_keys` needs the room).
    pub const fn with_idle_evict_after(mut self, idle: Option<Duration>) -> Self {
        self.idle_evict_after = idle;
        self
    }

    /// Replaces the per-key policy.
    pub fn with_breaker(mut self, breaker: BreakerSettings) -> Self {
        self.breaker = breaker;
        self
    }

    /// Checks every value and returns the settings, or the first invalid field.
    pub fn build(self) -> Result<FamilySettings, InvalidSettings> {
        let max_keys = NonZeroU32::new(self.max_keys)
            .filter(|n| n.get() <= FamilySettings::MAX_MAX_KEYS)
            .ok_or_else(|| {
                InvalidSettings::new(
                    "max_keys",
                    format!(
                        "must be between 1 and {}, got {}",
                        FamilySettings::MAX_MAX_KEYS,
                        self.max_keys
                    ),
                )
            })?;
        if let Some(idle) = self.idle_evict_after {
            if idle.is_zero() {
                return Err(InvalidSettings::new(
                    "idle_evict_after",
                    "must be greater than zero (use \"off\" to keep idle keys)",
                ));
            }
            check_duration("idle_evict_after", idle)?;
        }
        Ok(FamilySettings {
            breaker: self.breaker,
            max_keys,
            idle_evict_after: self.idle_evict_after,
        })
    }
}
