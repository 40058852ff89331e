//! [`OneTimer`]: an actor's one armed `send_after`, and the check that drops a stale wakeup.
//!
//! Each actor that schedules work (the breaker for its next transition, the timeout actor for
//! its earliest race, an agent's actor for its earliest retry, deadline or restart) keeps a
//! single timer armed for the earliest thing it waits for, instead of a sleeper per item. A
//! re-armed timer aborts the old one, and every wakeup carries the generation it was armed
//! with: one already in the mailbox when the timer moved is recognised as stale and ignored.

use ractor::{ActorRef, Message, MessagingErr};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One armed `send_after` (see the module documentation).
pub(crate) struct OneTimer<M: Message> {
    armed: Option<Armed<M>>,
    generation: u64,
    /// Timers armed since the actor started (a counter for status reports).
    armed_count: u64,
}

struct Armed<M> {
    at: Instant,
    generation: u64,
    task: JoinHandle<Result<(), MessagingErr<M>>>,
}

impl<M: Message> OneTimer<M> {
    pub(crate) fn new() -> Self {
        OneTimer {
            armed: None,
            generation: 0,
            armed_count: 0,
        }
    }

    /// When the armed timer fires, if one is armed.
    pub(crate) fn at(&self) -> Option<Instant> {
        self.armed.as_ref().map(|a| a.at)
    }

    /// Timers armed so far.
    pub(crate) fn armed_count(&self) -> u64 {
        self.armed_count
    }

    /// Armed exactly for `at` (re-armed if it was armed for another instant), or disarmed for
    /// `None`. `wakeup` builds the message from the timer's generation.
    pub(crate) fn set(
        &mut self,
        myself: &ActorRef<M>,
        at: Option<Instant>,
        wakeup: impl FnOnce(u64) -> M + Send + 'static,
    ) {
        if at == self.at() {
            return;
        }
        self.disarm();
        if let Some(at) = at {
            self.arm(myself, at, wakeup);
        }
    }

    /// Makes sure the timer fires by `at`: re-armed only for an earlier instant.
    pub(crate) fn fire_by(
        &mut self,
        myself: &ActorRef<M>,
        at: Instant,
        wakeup: impl FnOnce(u64) -> M + Send + 'static,
    ) {
        if self.at().is_some_and(|armed| armed <= at) {
            return;
        }
        self.disarm();
        self.arm(myself, at, wakeup);
    }

    /// A wakeup of `generation` arrived: `true` if it is the armed timer's (which is now spent),
    /// `false` for a stale one (re-armed or disarmed since).
    pub(crate) fn fired(&mut self, generation: u64) -> bool {
        if self
            .armed
            .as_ref()
            .is_some_and(|a| a.generation == generation)
        {
            self.armed = None;
            true
        } else {
            false
        }
    }

    /// Disarms the timer (a wakeup already in the mailbox is then stale).
    pub(crate) fn disarm(&mut self) {
        if let Some(armed) = self.armed.take() {
            armed.task.abort();
        }
    }

    fn arm(
        &mut self,
        myself: &ActorRef<M>,
        at: Instant,
        wakeup: impl FnOnce(u64) -> M + Send + 'static,
    ) {
        self.generation += 1;
        self.armed_count += 1;
        let generation = self.generation;
        let delay = at.saturating_duration_since(Instant::now());
        let task = myself.send_after(delay, move || wakeup(generation));
        self.armed = Some(Armed {
            at,
            generation,
            task,
        });
    }
}

impl<M: Message> Drop for OneTimer<M> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl<M: Message> std::fmt::Debug for OneTimer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimer")
            .field("at", &self.at())
            .field("generation", &self.generation)
            .finish()
    }
}
