//! [`KeyedBreakerHandle`]: how callers use a keyed family. Admission reads the key's published
//! snapshot from a concurrent map and recording pushes onto a lock-free queue, so the happy
//! path sends no message.

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, Message, MessagingErr};
use ractor_resilience_core::breaker::{BreakerState, CallOutcome, FamilySettings, Rejected};

use super::messages::{
    FamilyStatus, KeyCommand, KeyCommandError, KeyListing, KeyStatus, KeyedBreakerEvent,
    KeyedBreakerMsg, KeyedPermit, KeyedRecord, Msg, Target,
};
use super::queue::Wake;
use super::ring::Packed;
use super::shared::{FamilyShared, STOPPED};
use crate::breaker::{BreakerUnavailable, DrainCause};
use crate::metrics::BreakerCall;
use crate::reply::ReplyTo;

/// A cheap, cloneable handle to a keyed family, returned by
/// [`KeyedBreakerActor::spawn`](super::KeyedBreakerActor::spawn).
///
/// - [`acquire`](Self::acquire)`(key)` before a call: a held key that is Closed or Disabled
///   admits from its published snapshot, Open (before its period ends) and ForcedOpen reject
///   from it, a key not held admits as a fresh breaker would, all without a message; HalfOpen
///   (and an Open key whose period has just ended) asks the actor.
/// - [`record`](Self::record) after it: never awaits, never drops the outcome (a saturated
///   actor makes it wait a few microseconds for room).
///
/// **If the actor has stopped**, every admission is rejected as [`BreakerState::ForcedOpen`]
/// with no `retry_after` (fail closed), and queries and commands return an error.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, BreakerState, CallOutcome, FamilySettings};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let per_model = BreakerSettings::builder().with_max_failures(1).build()?;
/// let models = KeyedBreakerActor::spawn(
///     "models",
///     FamilySettings::new(per_model),
///     KeyedBreakerOptions::default(),
/// )
/// .await?;
///
/// let permit = models.acquire("gpt-4o").await?;
/// models.record(permit, CallOutcome::Failure, Duration::from_millis(20));
/// assert_eq!(models.key_status("gpt-4o").await?.unwrap().state, BreakerState::Open);
///
/// // gpt-4o is open; claude is not.
/// assert_eq!(models.acquire("gpt-4o").await.unwrap_err().state, BreakerState::Open);
/// let permit = models.acquire("claude").await?;
/// models.record(permit, CallOutcome::Success, Duration::from_millis(20));
/// models.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct KeyedBreakerHandle {
    actor: ActorRef<KeyedBreakerMsg>,
    shared: Arc<FamilyShared>,
}

impl std::fmt::Debug for KeyedBreakerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedBreakerHandle")
            .field("name", &self.shared.name)
            .field("keys", &self.shared.keys.len())
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

impl KeyedBreakerHandle {
    /// How many times [`record`](Self::record) retries a full queue before it sends the
    /// outcome as a message.
    pub const FULL_QUEUE_SPINS: u32 = 1024;

    pub(super) fn new(actor: ActorRef<KeyedBreakerMsg>, shared: Arc<FamilyShared>) -> Self {
        KeyedBreakerHandle { actor, shared }
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The settings in force: those it was spawned with, or the last
    /// [`reconfigure`](Self::reconfigure)d ones.
    pub fn settings(&self) -> FamilySettings {
        self.shared
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies new settings to every key in place (hot reload): each key keeps its state,
    /// generation and (same shape) window ([`BreakerFamily::reconfigure`]). Returns how many
    /// windows had to start empty.
    ///
    /// [`BreakerFamily::reconfigure`]: ractor_resilience_core::breaker::BreakerFamily::reconfigure
    ///
    /// # Errors
    /// [`BreakerUnavailable`] if the actor is not running.
    pub async fn reconfigure(&self, settings: FamilySettings) -> Result<usize, BreakerUnavailable> {
        self.ask(|reply| Msg::Reconfigure {
            settings: Box::new(settings),
            reply,
        })
        .await
    }

    /// The actor, e.g. to link or monitor it.
    pub fn actor(&self) -> &ActorRef<KeyedBreakerMsg> {
        &self.actor
    }

    /// Whether the actor is still running.
    pub fn is_running(&self) -> bool {
        !self.shared.is_stopped()
            && matches!(
                self.actor.get_status(),
                ractor::ActorStatus::Running | ractor::ActorStatus::Starting
            )
    }

    /// Outcomes recorded and not yet applied by the actor (no message).
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    /// Keys held right now (no message).
    pub fn len(&self) -> usize {
        self.shared.keys.len()
    }

    /// Whether no key is held (no message).
    pub fn is_empty(&self) -> bool {
        self.shared.keys.is_empty()
    }

    /// The last published state of `key` (no message): Closed for a key not held, the overflow
    /// breaker's while the family is saturated.
    pub fn state(&self, key: &str) -> BreakerState {
        self.shared.state(key)
    }

    /// Decides for `key` from the published state alone: `Some` when no message is needed,
    /// `None` when the actor must decide (HalfOpen, or an Open period that has ended): use
    /// [`acquire`](Self::acquire) or [`acquire_with`](Self::acquire_with) then.
    pub fn try_acquire_local(&self, key: &str) -> Option<Result<KeyedPermit, Rejected>> {
        self.shared.admit(key)
    }

    /// Whether the published state of `key` rejects a call now, without taking a permit (for
    /// work admitted now that acquires its permit when it starts). A rejection is counted like
    /// one from [`acquire`](Self::acquire).
    pub fn precheck(&self, key: &str) -> Result<(), Rejected> {
        match self.shared.admit(key) {
            Some(Err(rejected)) => Err(rejected),
            _ => Ok(()),
        }
    }

    /// A permit for one call on `key`, or why not. Asks the actor only when the published
    /// state cannot decide. A stopped family rejects (see [`KeyedBreakerHandle`]).
    pub async fn acquire(&self, key: &str) -> Result<KeyedPermit, Rejected> {
        if let Some(decision) = self.try_acquire_local(key) {
            return decision;
        }
        let (reply, answer) = ReplyTo::port();
        if self.actor.cast(self.acquire_msg(key, reply)).is_err() {
            return Err(self.gone());
        }
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    /// [`acquire`](Self::acquire) for callers that must not await (actors): the answer goes to
    /// `reply`, at once when the published state decides.
    pub fn acquire_with(&self, key: &str, reply: ReplyTo<Result<KeyedPermit, Rejected>>) {
        if let Some(decision) = self.try_acquire_local(key) {
            reply.send(decision);
            return;
        }
        if let Err(MessagingErr::SendErr(KeyedBreakerMsg(
            Msg::Acquire { reply, .. } | Msg::AcquireOverflow(reply),
        ))) = self.actor.cast(self.acquire_msg(key, reply))
        {
            reply.send(Err(self.gone()));
        }
    }

    fn acquire_msg(
        &self,
        key: &str,
        reply: ReplyTo<Result<KeyedPermit, Rejected>>,
    ) -> KeyedBreakerMsg {
        // A key not held while the family is saturated is decided by the overflow breaker.
        if !self.shared.keys.contains_key(key.as_bytes()) && self.shared.is_saturated() {
            return KeyedBreakerMsg(Msg::AcquireOverflow(reply));
        }
        KeyedBreakerMsg(Msg::Acquire {
            key: Arc::from(key),
            reply,
        })
    }

    /// Reports the outcome of the call admitted with `permit`. Never awaits and never drops the
    /// outcome: it is queued lock-free and applied in the next batch (at once for failures and
    /// probe outcomes). If the queue is full, the actor is saturated: the caller rings for a
    /// drain and waits for room for at most [`FULL_QUEUE_SPINS`](Self::FULL_QUEUE_SPINS) spins
    /// (a few microseconds; backpressure instead of a growing mailbox), then sends the outcome
    /// as a message.
    pub fn record(&self, permit: KeyedPermit, outcome: CallOutcome, duration: Duration) {
        let failure = outcome == CallOutcome::Failure;
        let record = KeyedRecord {
            permit,
            outcome,
            duration,
        };
        // A held key admitted from its snapshot: the fast lane, as four words.
        if let Target::Key(id) = record.permit.target {
            if !record.permit.is_probe() {
                let packed = Packed::new(id, record.permit.from, outcome, duration);
                if self.retry_full(|| self.shared.queue.push_fast(packed, failure).ok()) {
                    return;
                }
                return self.send_record(record);
            }
        }
        let urgent = failure || record.permit.is_probe();
        let mut slot = Some(record);
        let pushed = self.retry_full(|| {
            let record = slot.take().expect("put back after each full attempt");
            match self.shared.queue.push(record, urgent) {
                Ok(wake) => Some(wake),
                Err(back) => {
                    slot = Some(back);
                    None
                }
            }
        });
        if !pushed {
            self.send_record(slot.expect("not pushed"));
        }
    }

    /// Runs `push` until it gives a [`Wake`] (then wakes the actor as it says and answers
    /// `true`), retrying a full queue up to [`FULL_QUEUE_SPINS`](Self::FULL_QUEUE_SPINS)
    /// times after ringing for a drain; `false` if it stayed full.
    fn retry_full(&self, mut push: impl FnMut() -> Option<Wake>) -> bool {
        for spin in 0..=Self::FULL_QUEUE_SPINS {
            if let Some(wake) = push() {
                let _ = match wake {
                    Wake::Nobody => Ok(()),
                    Wake::Doorbell => self
                        .actor
                        .cast(KeyedBreakerMsg(Msg::Drain(DrainCause::Doorbell))),
                    Wake::Tick => self.actor.cast(KeyedBreakerMsg(Msg::ScheduleDrain)),
                };
                return true;
            }
            if spin == 0 {
                if self.shared.is_stopped() {
                    return false; // nobody will make room
                }
                if self.shared.queue.ring() {
                    let _ = self
                        .actor
                        .cast(KeyedBreakerMsg(Msg::Drain(DrainCause::Doorbell)));
                }
            }
            std::hint::spin_loop();
        }
        false
    }

    /// The fallback for a queue that stayed full: the outcome as a message (the actor drains
    /// the queue first). A stopped actor counts nothing any more: there is nowhere else to put it.
    fn send_record(&self, record: KeyedRecord) {
        let _ = self.actor.cast(KeyedBreakerMsg(Msg::Record(record)));
    }

    /// Forces `key` open until [`disable`](Self::disable) or [`reset`](Self::reset) (a key not
    /// held is created for it). Answers the key's state after the command.
    ///
    /// # Errors
    /// [`KeyCommandError::Full`] if the key is not held and the family has no room;
    /// [`KeyCommandError::Unavailable`] if the actor is not running.
    pub async fn force_open(&self, key: &str) -> Result<BreakerState, KeyCommandError> {
        self.command(key, KeyCommand::ForceOpen).await
    }

    /// Admits every call on `key` and counts nothing until [`force_open`](Self::force_open) or
    /// [`reset`](Self::reset) (a key not held is created for it).
    ///
    /// # Errors
    /// As [`force_open`](Self::force_open).
    pub async fn disable(&self, key: &str) -> Result<BreakerState, KeyCommandError> {
        self.command(key, KeyCommand::Disable).await
    }

    /// `key` back to Closed with an empty window (a key not held already is).
    ///
    /// # Errors
    /// [`KeyCommandError::Unavailable`] if the actor is not running.
    pub async fn reset(&self, key: &str) -> Result<BreakerState, KeyCommandError> {
        self.command(key, KeyCommand::Reset).await
    }

    async fn command(
        &self,
        key: &str,
        command: KeyCommand,
    ) -> Result<BreakerState, KeyCommandError> {
        let unavailable = || KeyCommandError::Unavailable {
            breaker: self.shared.name.clone(),
        };
        let (reply, answer) = ReplyTo::port();
        let msg = KeyedBreakerMsg(Msg::Command {
            key: Arc::from(key),
            command,
            reply,
        });
        self.actor.cast(msg).map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    /// One key's status as the actor sees it (queued outcomes applied first); `None` when the
    /// key is not held (a fresh Closed breaker).
    pub async fn key_status(&self, key: &str) -> Result<Option<KeyStatus>, BreakerUnavailable> {
        self.ask(|reply| Msg::KeyStatus {
            key: Arc::from(key),
            reply,
        })
        .await
    }

    /// The keys that are not Closed, at most `limit` of them, with the count of the others
    /// (bounded output for `/health` and `GET /breakers`).
    pub async fn not_closed(&self, limit: usize) -> Result<KeyListing, BreakerUnavailable> {
        self.ask(|reply| Msg::NotClosed { limit, reply }).await
    }

    /// The family's status: keys per state, evictions, the overflow breaker, labelled keys.
    pub async fn status(&self) -> Result<FamilyStatus, BreakerUnavailable> {
        self.ask(Msg::Status).await
    }

    async fn ask<T: Send + 'static>(
        &self,
        msg: impl FnOnce(ReplyTo<T>) -> Msg,
    ) -> Result<T, BreakerUnavailable> {
        let unavailable = || BreakerUnavailable {
            breaker: self.shared.name.clone(),
        };
        let (reply, answer) = ReplyTo::port();
        self.actor
            .cast(KeyedBreakerMsg(msg(reply)))
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())
    }

    /// Forwards every transition of every key, in order, to `receiver` through `converter`
    /// (`None` skips one).
    pub fn subscribe<M, F>(&self, receiver: ActorRef<M>, converter: F)
    where
        M: Message,
        F: Fn(KeyedBreakerEvent) -> Option<M> + Send + 'static,
    {
        self.shared.events().subscribe(receiver, converter);
    }

    /// Stops the actor (queued outcomes not yet drained are not applied).
    pub fn stop(&self) {
        self.actor.stop(None);
    }

    fn gone(&self) -> Rejected {
        self.shared.metrics.other.call(BreakerCall::Rejected);
        STOPPED
    }
}
