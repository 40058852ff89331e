//! Supervision of the worker pool: spawn linked, restart a crashed worker after its backoff,
//! escalate past the restart intensity, park restarts while the breaker is open. The arithmetic
//! (backoff with reset, intensity window) is the core's
//! ([`ractor_resilience_core::supervision`]); this is the actor side.

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef};
use ractor_resilience_core::supervision::{RestartBackoff, RestartIntensity};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::super::Agent;
use super::super::error::CallError;
use super::super::job::WorkerMsg;
use super::super::msg::AgentMsg;
use super::super::reconfigure::{AgentUpdate, ReconfigureError};
use super::super::worker::{AgentFactory, WorkerActor};
use super::{SupervisionSettings, SupervisorState, Timer};
use crate::clock;

/// The pool's slots and what restarting them needs.
pub(crate) struct Pool<A: Agent> {
    make: AgentFactory<A>,
    slots: Vec<Slot>,
    /// A new slot's backoff (the pool grows on reload).
    fresh: RestartBackoff,
    intensity: RestartIntensity,
    pub(super) rng: SmallRng,
}

struct Slot {
    worker: Option<ActorId>,
    started: Instant,
    backoff: RestartBackoff,
}

impl<A: Agent> Pool<A> {
    pub(super) fn new(
        make: AgentFactory<A>,
        settings: &SupervisionSettings,
        workers: usize,
    ) -> Result<Self, ActorProcessingErr> {
        let backoff = RestartBackoff::new(
            settings.min_backoff,
            settings.max_backoff,
            settings.reset_after,
        )?;
        Ok(Pool {
            fresh: backoff.clone(),
            make,
            slots: (0..workers)
                .map(|_| Slot {
                    worker: None,
                    started: Instant::now(),
                    backoff: backoff.clone(),
                })
                .collect(),
            intensity: RestartIntensity::new(settings.max_restarts, settings.restart_window),
            rng: SmallRng::seed_from_u64(0),
        })
    }

    pub(super) fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.worker.is_some()).count()
    }
}

impl<A: Agent> SupervisorState<A> {
    pub(super) async fn spawn_worker(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
        slot: usize,
    ) -> Result<(), ActorProcessingErr> {
        let (worker, _) = Actor::spawn_linked(
            None,
            WorkerActor::<A>::new(),
            (self.pool.make.clone(), self.shared.clone(), slot),
            myself.get_cell(),
        )
        .await?;
        let s = &mut self.pool.slots[slot];
        s.worker = Some(worker.get_id());
        s.started = Instant::now();
        self.shared.dispatch.set_worker(slot, Some(worker));
        Ok(())
    }

    /// Applies an [`AgentUpdate`]: limits and retry policy first, then the pool's size (see
    /// [`super::super::reconfigure`]).
    pub(super) async fn reconfigure(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
        update: AgentUpdate,
    ) -> Result<(), ReconfigureError> {
        use std::sync::atomic::Ordering;
        update.validate()?;
        let shared = &self.shared;
        shared
            .max_pending
            .store(update.max_pending, Ordering::Relaxed);
        shared.dispatch.set_limits(update.max_pending, update.queue);
        shared
            .max_attempts
            .store(update.retry.max_attempts(), Ordering::Relaxed);
        shared.retry.store(std::sync::Arc::new(update.retry));
        let before = self.pool.slots.len();
        let after = update.workers;
        if after < before {
            for worker in shared.dispatch.resize(after) {
                // Behind any job already in its mailbox: that job runs first.
                let _ = worker.send_message(WorkerMsg::Retire);
            }
            self.pool.slots.truncate(after);
        } else if after > before {
            shared.dispatch.resize(after);
            for _ in before..after {
                self.pool.slots.push(Slot {
                    worker: None,
                    started: Instant::now(),
                    backoff: self.pool.fresh.clone(),
                });
            }
            for slot in before..after {
                self.spawn_worker(myself, slot)
                    .await
                    .map_err(|e| ReconfigureError::Spawn {
                        slot,
                        reason: e.to_string(),
                    })?;
            }
        }
        tracing::info!(
            agent = %self.shared.name,
            workers_before = before,
            workers = after,
            max_pending = update.max_pending,
            "agent reconfigured"
        );
        Ok(())
    }

    pub(super) fn worker_down(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
        cell: ActorCell,
        reason: &str,
    ) -> Result<(), ActorProcessingErr> {
        let id = cell.get_id();
        let Some(slot) = self.pool.slots.iter().position(|s| s.worker == Some(id)) else {
            return Ok(());
        };
        self.pool.slots[slot].worker = None;
        self.shared.dispatch.set_worker(slot, None);
        let now = Instant::now();
        tracing::warn!(agent = %self.shared.name, slot, %reason, "worker stopped");
        if let Some(until) = self.shared.breaker_open_until() {
            // The dependency is known to be down: wait for the breaker instead of burning the
            // restart allowance on crashes it would cause anyway.
            self.status.parked_restarts += 1;
            self.timers.insert(until.max(now), Timer::Restart(slot));
            return Ok(());
        }
        if let Err(exceeded) = self.pool.intensity.record_crash(now.into_std()) {
            tracing::error!(agent = %self.shared.name, crashes = exceeded.crashes, "restart intensity exceeded: escalating");
            self.abandon_all(|| CallError::Unavailable);
            myself.stop_children(Some("supervisor escalated".into()));
            return Err(format!(
                "agent `{}`: {} worker crashes within {:?} (max_restarts = {})",
                self.shared.name, exceeded.crashes, exceeded.window, exceeded.max_restarts
            )
            .into());
        }
        let s = &mut self.pool.slots[slot];
        let delay = s
            .backoff
            .next_delay(s.started.into_std(), now.into_std(), &mut self.pool.rng);
        self.timers
            .insert(clock::after(now, delay), Timer::Restart(slot));
        Ok(())
    }

    pub(super) async fn restart(
        &mut self,
        myself: &ActorRef<AgentMsg<A>>,
        slot: usize,
    ) -> Result<(), ActorProcessingErr> {
        if self.pool.slots.get(slot).is_none_or(|s| s.worker.is_some()) {
            return Ok(()); // alive, or the pool shrank past it
        }
        if let Some(until) = self.shared.breaker_open_until() {
            self.timers.insert(until, Timer::Restart(slot));
            return Ok(());
        }
        self.spawn_worker(myself, slot).await?;
        self.status.restarts += 1;
        self.shared.counts.metrics.restart();
        tracing::info!(agent = %self.shared.name, slot, "worker restarted");
        Ok(())
    }
}
