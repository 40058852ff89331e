//! How a supervisor restarts crashed workers: when it must give up (restart intensity) and how
//! long it waits before each restart (restart backoff).
//!
//! - [`RestartIntensity`] is OTP's intensity/period: a supervisor tolerates `max_restarts`
//!   crashes within `restart_window`; one more means the fault is not transient, so restarting
//!   again would only hide it, and the supervisor escalates (stops and tells *its* supervisor).
//! - [`RestartBackoff`] is Akka's `BackoffSupervisor`: restarts of a crash-looping worker back
//!   off exponentially (with jitter, so workers that crashed together do not restart together)
//!   and the backoff starts over once a worker has stayed up for `reset_after`.
//!
//! Both are plain data driven by explicit instants: the actor layer records each crash with the
//! time it read once, and schedules the restart itself.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::{SeedableRng, rngs::SmallRng};
//! use ractor_resilience_core::supervision::{RestartBackoff, RestartIntensity};
//!
//! let secs = Duration::from_secs;
//! let mut intensity = RestartIntensity::new(5, secs(60));
//! let mut backoff = RestartBackoff::new(Duration::from_millis(100), secs(10), secs(30))?;
//! let mut rng = SmallRng::seed_from_u64(1);
//!
//! let (started, crashed) = (Instant::now(), Instant::now() + secs(3));
//! match intensity.record_crash(crashed) {
//!     Ok(_) => {
//!         let delay = backoff.next_delay(started, crashed, &mut rng);
//!         assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_millis(125));
//!     }
//!     Err(exceeded) => panic!("escalate: {exceeded}"),
//! }
//! # Ok::<(), ractor_resilience_core::InvalidSettings>(())
//! ```

mod intensity;
mod restart_backoff;

pub use intensity::{IntensityExceeded, RestartIntensity};
pub use restart_backoff::RestartBackoff;
