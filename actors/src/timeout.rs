//! Timeouts as an actor: the [`TimeoutActor`] owns a deadline policy (fixed, per operation — the
//! seed's `TimeoutManager` — or adaptive), publishes the current deadline, and can race replies
//! that no future waits on.
//!
//! # Where the race happens
//!
//! Routing every reply through one actor's mailbox serialises all calls (3.6× the latency of a
//! bare call, a third of the throughput — DESIGN §2). So on the happy path nothing goes through
//! the actor. An agent's attempt timeout starts when a worker starts the attempt (the
//! dependency's clock, not the caller's), so the worker races it, with one timer of its own that
//! it moves forward from attempt to attempt; a task's deadline is raced by its caller's future,
//! or by the agent's actor for a task it holds (a cast, a task sent by message, a retry). A
//! caller outside an agent races in its own future with [`race_in_caller`] or
//! [`TimeoutHandle::execute`]:
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
//! For replies that no future waits on and that no agent owns (work you dispatch yourself with a
//! reply target), [`TimeoutHandle::race`] has the actor race the reply itself — with **one timer
//! for all races**, not a sleeper per request:
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
pub use self::msg::{Recorded, TimeoutMsg, TimeoutReconfigured, TimeoutUnavailable};
pub use self::policy::{DEFAULT_OPERATION, OperationTimeouts, PolicyKind, TimeoutPolicy};
pub use self::race::{RaceError, RaceId, RaceStart, TimedOut, race_in_caller};
pub use self::state::TimeoutState;
pub use self::status::TimeoutStatus;
pub use crate::metrics::TimeoutOutcome;
