//! Timeouts as an actor: the [`TimeoutActor`] owns a deadline policy (fixed, per operation — the
//! seed's `TimeoutManager` — or adaptive), publishes the current deadline, and races the replies
//! that no caller future waits on.
//!
//! # Why the race usually happens in the caller, and when it does not
//!
//! Routing every reply through one actor's mailbox serialises all calls (3.6× the latency of a
//! bare call, a third of the throughput — DESIGN §2). So on the happy path nothing goes through
//! the actor:
//!
//! ```text
//!  caller ──timeout_for(op)──► published deadline (one atomic load; no message)
//!    │  race_in_caller(deadline, cancel, reply)   (tokio::time::timeout in the caller's future)
//!    └─record(op, latency, outcome)──► lock-free queue ══ drained in batches ══► TimeoutActor
//!                                                       (1 ms tick, stops when idle)
//!                                          estimator · metrics · on_slow / on_timeout hooks
//!                                          └──► republishes the deadline
//! ```
//!
//! Where no caller future exists (a `cast` with a reply target, a remote caller) the actor races
//! the reply itself — with **one timer for all races**, not a sleeper per request:
//!
//! ```text
//!  race(op, after, cancel, dest) ──Race{id}──► races: id → (dest, cancel)
//!        └─► worker's ReplyTo<T>                deadlines: DeadlineQueue<id> ──► one send_after,
//!              value → typed slot,                armed for the earliest deadline only
//!              Replied{id} ──────────────────► first of {Replied, deadline} removes id:
//!                                                 value → dest, or TimedOut → dest + cancel
//!                                              unknown id later → late reply, dropped, counted
//! ```
//!
//! Each race's destination is consumed by the first event the actor processes for its id, so it
//! is answered exactly once; a worker that drops its reply unsent is answered
//! [`RaceError::Lost`] at once.
//!
//! # What feeds an adaptive deadline
//!
//! Successes (as latencies) and timeouts (as censored samples: "longer than the time waited"),
//! never failures — a fast failure would pull the quantile down just when the dependency is in
//! trouble (Finagle records only successes and timeouts for the same reason). Under the RFC 6298
//! estimator, record only attempts that were not retried (Karn's algorithm).

mod actor;
mod deadline_queue;
mod handle;
mod hooks;
mod inline;
mod msg;
mod policy;
mod race;
mod state;
mod status;

pub use self::actor::{TimeoutActor, TimeoutArgs, TimeoutStart};
pub use self::deadline_queue::{DeadlineQueue, PopExpired, TimerId};
pub use self::handle::TimeoutHandle;
pub use self::hooks::{Hook, TimeoutHooks};
pub(crate) use self::inline::InlineTimeout;
pub use self::msg::{Recorded, TimeoutMsg};
pub use self::policy::{DEFAULT_OPERATION, OperationTimeouts, PolicyKind, TimeoutPolicy};
pub use self::race::{RaceError, RaceId, RaceStart, TimedOut, race_in_caller};
pub use self::state::TimeoutState;
pub use self::status::TimeoutStatus;
pub use crate::metrics::TimeoutOutcome;
