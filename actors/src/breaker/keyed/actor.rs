//! [`KeyedBreakerActor`]: the only writer of one core [`BreakerFamily`]. It creates keys when
//! their first outcome arrives, applies queued outcomes in batches, grants probes, fires every
//! key's time-driven transitions and idle evictions from one timer, publishes every transition
//! (the key's snapshot, metrics, subscribers, log), and re-ranks the keys that get metric series
//! of their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use ractor_resilience_core::breaker::{
    BreakerFamily, BreakerState, CallOutcome, CircuitState, Evicted, EvictionReason,
    FamilySettings, Insert, Member, Permit, Rejected, Snapshot, Transition, Transitions,
};

use super::handle::KeyedBreakerHandle;
use super::key::KeyBuf;
use super::messages::{
    FamilyStatus, KeyCommand, KeyCommandError, KeyListing, KeyState, KeyStatus, KeyedBreakerEvent,
    KeyedBreakerMsg, KeyedPermit, KeyedRecord, Msg, Target,
};
use super::options::{KeyedBreakerOptions, is_metric_key};
use super::ring::Packed;
use super::shared::{FamilyShared, Published, fresh_permit};
use crate::breaker::DrainCause;
use crate::clock;
use crate::metrics::{BreakerCall, KeyMetrics};
use crate::reply::ReplyTo;
use crate::timer::OneTimer;

/// The keyed family's actor. Spawn it with [`spawn`](Self::spawn) (or
/// [`spawn_linked`](Self::spawn_linked)) and use the returned [`KeyedBreakerHandle`].
///
/// ```
/// use ractor_resilience::breaker::{KeyedBreakerActor, KeyedBreakerOptions};
/// use ractor_resilience::core::breaker::{BreakerSettings, FamilySettings};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let settings = FamilySettings::new(BreakerSettings::default());
/// let models = KeyedBreakerActor::spawn("models", settings, KeyedBreakerOptions::default()).await?;
/// assert_eq!(models.name(), "models");
/// models.stop();
/// # Ok::<(), ractor::SpawnErr>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedBreakerActor;

/// What a keyed family's actor starts from (built by [`KeyedBreakerActor::spawn`]).
#[derive(Debug)]
pub struct KeyedBreakerArgs {
    family: BreakerFamily<KeyData>,
    options: KeyedBreakerOptions,
    shared: Arc<FamilyShared>,
}

/// What the family keeps per key: the key (its series, when it has some of its own, are in
/// the actor's `labelled` map: looking them up there keeps this cold on the outcome path).
#[derive(Debug)]
struct KeyData {
    key: KeyBuf,
}

impl KeyedBreakerArgs {
    fn new(name: Arc<str>, settings: FamilySettings, options: KeyedBreakerOptions) -> Self {
        let family = BreakerFamily::new(settings.clone(), options.seed);
        let overflow = family
            .breaker(Member::Overflow)
            .expect("the overflow breaker always exists")
            .snapshot();
        let shared = FamilyShared::new(name, settings, overflow, options.queue_capacity);
        KeyedBreakerArgs {
            family,
            options,
            shared: Arc::new(shared),
        }
    }
}

impl KeyedBreakerActor {
    /// Spawns a keyed family named `name` (the `breaker` label of its series, in logs and
    /// events; not registered with ractor).
    ///
    /// # Errors
    /// [`SpawnErr::StartupFailed`] if `options` break a rule of [`KeyedBreakerOptions::check`].
    pub async fn spawn(
        name: impl Into<Arc<str>>,
        settings: FamilySettings,
        options: KeyedBreakerOptions,
    ) -> Result<KeyedBreakerHandle, SpawnErr> {
        let args = KeyedBreakerArgs::new(name.into(), settings, options);
        let shared = args.shared.clone();
        let (actor, _) = Actor::spawn(None, KeyedBreakerActor, args).await?;
        Ok(KeyedBreakerHandle::new(actor, shared))
    }

    /// [`spawn`](Self::spawn), supervised by `supervisor`.
    pub async fn spawn_linked(
        name: impl Into<Arc<str>>,
        settings: FamilySettings,
        options: KeyedBreakerOptions,
        supervisor: ActorCell,
    ) -> Result<KeyedBreakerHandle, SpawnErr> {
        let args = KeyedBreakerArgs::new(name.into(), settings, options);
        let shared = args.shared.clone();
        let (actor, _) = Actor::spawn_linked(None, KeyedBreakerActor, args, supervisor).await?;
        Ok(KeyedBreakerHandle::new(actor, shared))
    }
}

/// The actor's state: the core family and what it publishes to.
pub struct KeyedBreakerState {
    family: BreakerFamily<KeyData>,
    shared: Arc<FamilyShared>,
    options: KeyedBreakerOptions,
    /// `metric_keys`: series registered at spawn, kept while the family runs.
    configured: HashMap<KeyBuf, Arc<KeyMetrics>>,
    /// The current top keys by failures with series of their own.
    top: HashMap<KeyBuf, Arc<KeyMetrics>>,
    /// The series of every held key that has some of its own, by slot.
    labelled: HashMap<u32, Arc<KeyMetrics>>,
    next_rank: Instant,
    failed_since_rank: bool,
    /// The one timer, armed for the family's next deadline.
    timer: OneTimer<KeyedBreakerMsg>,
    /// A chunk of the fast lane being applied (kept to reuse its allocation).
    batch: Vec<Packed>,
    evicted_idle: u64,
    evicted_capacity: u64,
    outcomes_for_evicted: u64,
    outcomes: u64,
    drains: u64,
}

impl std::fmt::Debug for KeyedBreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedBreakerState")
            .field("name", &self.shared.name)
            .field("keys", &self.family.len())
            .field("timer", &self.timer)
            .field("outcomes", &self.outcomes)
            .finish_non_exhaustive()
    }
}

impl Drop for KeyedBreakerState {
    fn drop(&mut self) {
        // However the actor ends, callers stop admitting from its snapshots.
        self.shared.mark_stopped();
        self.timer.disarm();
    }
}

impl Actor for KeyedBreakerActor {
    type Msg = KeyedBreakerMsg;
    type State = KeyedBreakerState;
    type Arguments = KeyedBreakerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<KeyedBreakerMsg>,
        args: KeyedBreakerArgs,
    ) -> Result<KeyedBreakerState, ActorProcessingErr> {
        if let Err(why) = args.options.check() {
            args.shared.mark_stopped();
            return Err(format!("keyed breaker `{}`: {why}", args.shared.name).into());
        }
        let configured = args
            .options
            .metric_keys
            .iter()
            .map(|key| {
                let m = KeyMetrics::new(&args.shared.name, key, true);
                m.state(BreakerState::Closed);
                (KeyBuf::new(key), Arc::new(m))
            })
            .collect();
        let now = clock::now();
        Ok(KeyedBreakerState {
            next_rank: now + args.options.rank_interval,
            family: args.family,
            shared: args.shared,
            options: args.options,
            configured,
            top: HashMap::new(),
            labelled: HashMap::new(),
            failed_since_rank: false,
            timer: OneTimer::new(),
            batch: Vec::new(),
            evicted_idle: 0,
            evicted_capacity: 0,
            outcomes_for_evicted: 0,
            outcomes: 0,
            drains: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<KeyedBreakerMsg>,
        KeyedBreakerMsg(message): KeyedBreakerMsg,
        state: &mut KeyedBreakerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Msg::Acquire { key, reply } => state.acquire(key, reply),
            Msg::AcquireOverflow(reply) => state.acquire_member(Member::Overflow, reply),
            Msg::Record(record) => {
                state.drain_queue(&myself); // outcomes queued before this one go first
                let now = clock::now();
                state.apply(record, now);
                state.after_batch(now);
            }
            Msg::ScheduleDrain => {
                // Detached: the tick's flag stays set until it runs, so at most one is pending.
                drop(myself.send_after(state.options.drain_interval, || {
                    KeyedBreakerMsg(Msg::Drain(DrainCause::Tick))
                }));
            }
            Msg::Drain(cause) => {
                state.drains += 1;
                state.shared.queue.begin_drain(cause);
                state.drain_queue(&myself);
            }
            Msg::DeadlineElapsed { timer } => state.deadline_elapsed(timer),
            Msg::Command {
                key,
                command,
                reply,
            } => state.command(&myself, key, command, reply),
            Msg::KeyStatus { key, reply } => {
                state.catch_up(&myself);
                reply.send(state.key_status(&key));
            }
            Msg::NotClosed { limit, reply } => {
                state.catch_up(&myself);
                reply.send(state.listing(limit));
            }
            Msg::Status(reply) => {
                state.catch_up(&myself);
                reply.send(state.status());
            }
            Msg::Reconfigure { settings, reply } => {
                // Outcomes queued under the old settings are applied under them first.
                state.catch_up(&myself);
                let settings = *settings;
                let reset = state.family.reconfigure(settings.clone(), clock::now());
                *state
                    .shared
                    .settings
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = settings;
                tracing::info!(breaker = %state.shared.name, keys = state.family.len(), windows_reset = reset, "keyed circuit breaker reconfigured; every key keeps its state");
                reply.send(reset);
            }
        }
        state.arm_deadline(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<KeyedBreakerMsg>,
        state: &mut KeyedBreakerState,
    ) -> Result<(), ActorProcessingErr> {
        state.shared.mark_stopped();
        Ok(())
    }
}

impl KeyedBreakerState {
    // ===== admission =====

    fn acquire(&mut self, key: Arc<str>, reply: ReplyTo<Result<KeyedPermit, Rejected>>) {
        if reply.is_closed() {
            return; // the caller left: granting a probe now would waste it
        }
        let member = match self.shared.keys.get(key.as_bytes()).map(|p| p.id) {
            Some(id) => Member::Key(id),
            None if self.family.is_saturated() => Member::Overflow,
            None => {
                reply.send(Ok(fresh_permit(KeyBuf::new(&key))));
                return;
            }
        };
        self.acquire_member(member, reply);
    }

    fn acquire_member(&mut self, member: Member, reply: ReplyTo<Result<KeyedPermit, Rejected>>) {
        if reply.is_closed() {
            return;
        }
        let now = clock::now();
        let admission = self
            .family
            .try_acquire(member, now)
            .expect("the member was looked up in this message");
        self.publish(member, admission.transitions);
        if admission.decision.is_err() {
            self.metrics_of(member).call(BreakerCall::Rejected);
        }
        let from = self
            .family
            .breaker(member)
            .map_or(0, |b| b.snapshot().to_bits());
        reply.send(admission.decision.map(|permit| KeyedPermit {
            target: target_of(member),
            permit,
            from,
        }));
    }

    // ===== outcomes =====

    /// Applies up to one queue's worth of outcomes; if more keep coming, rings the doorbell so
    /// that other messages are not starved.
    fn drain_queue(&mut self, myself: &ActorRef<KeyedBreakerMsg>) {
        /// Outcomes fetched ahead: enough to overlap their memory accesses, few enough that
        /// their entries are still in cache when applied.
        const CHUNK: usize = 32;
        let now = clock::now();
        // The general lane first: it creates keys the fast lane's outcomes may follow.
        let capacity = self.shared.queue.capacity();
        let mut general = 0;
        while general < capacity {
            let Some(record) = self.shared.queue.pop() else {
                break;
            };
            self.apply(record, now);
            general += 1;
        }
        let mut batch = std::mem::take(&mut self.batch);
        let fast_capacity = self.shared.queue.fast_capacity();
        let (mut popped, mut more) = (0, true);
        while more && popped < fast_capacity {
            while batch.len() < CHUNK.min(fast_capacity - popped) {
                match self.shared.queue.pop_fast() {
                    Some(record) => batch.push(record),
                    None => {
                        more = false;
                        break;
                    }
                }
            }
            popped += batch.len();
            // Fetch the chunk's entries first (independent loads overlap), then apply: on a
            // large family each entry is a cache miss, paid once per chunk, not per outcome.
            let mut hint = 0;
            for packed in &batch {
                let id = packed.id();
                hint ^= self.family.prefetch(Member::Key(id));
            }
            std::hint::black_box(hint);
            for packed in batch.drain(..) {
                self.outcomes += 1;
                // The permit the call was admitted with, from the snapshot that admitted it.
                match Snapshot::from_bits(packed.snapshot).and_then(Snapshot::admit) {
                    Some(permit) => self.apply_member(
                        Member::Key(packed.id()),
                        permit,
                        packed.outcome(),
                        packed.duration(),
                        now,
                    ),
                    None => self.outcomes_for_evicted += 1,
                }
            }
        }
        self.batch = batch;
        // Busy (at least a chunk arrived since the last drain, or a lane was left full): drain
        // again right after the messages already waiting rather than a tick later, so that a
        // steady stream of outcomes keeps the actor draining instead of filling the queue; a
        // trickle waits for the tick.
        let busy = more || general == capacity || popped >= CHUNK;
        if busy && self.shared.queue.ring() {
            let _ = myself.cast(KeyedBreakerMsg(Msg::Drain(DrainCause::Doorbell)));
        }
        self.after_batch(now);
    }

    fn apply(&mut self, record: KeyedRecord, now: Instant) {
        let KeyedRecord {
            permit: KeyedPermit { target, permit, .. },
            outcome,
            duration,
        } = record;
        self.outcomes += 1;
        let (member, permit) = match target {
            Target::Key(id) => (Member::Key(id), permit),
            Target::Overflow => (Member::Overflow, permit),
            Target::New(key) => match self.member_for(key, now) {
                Member::Key(id) => (Member::Key(id), permit),
                // Admitted as a new key, but the family filled up with busy keys meanwhile: the
                // call counts for the overflow breaker as if admitted by it now (when it admits;
                // otherwise like an outcome of an earlier generation, not applied).
                Member::Overflow => match self
                    .family
                    .breaker(Member::Overflow)
                    .and_then(|b| b.snapshot().admit())
                {
                    Some(p) => (Member::Overflow, p),
                    None => {
                        self.outcomes_for_evicted += 1;
                        return;
                    }
                },
            },
        };
        self.apply_member(member, permit, outcome, duration, now);
    }

    fn apply_member(
        &mut self,
        member: Member,
        permit: Permit,
        outcome: CallOutcome,
        duration: Duration,
        now: Instant,
    ) {
        if outcome == CallOutcome::Failure {
            self.failed_since_rank = true;
        }
        match self
            .family
            .on_outcome(member, permit, outcome, duration, now)
        {
            // The key was evicted after its call was admitted: that breaker is gone.
            None => self.outcomes_for_evicted += 1,
            Some(transitions) => {
                self.count(member, outcome, duration);
                self.publish(member, transitions);
            }
        }
    }

    fn count(&self, member: Member, outcome: CallOutcome, duration: Duration) {
        let metrics = self.metrics_of(member);
        metrics.call(match outcome {
            CallOutcome::Success => BreakerCall::Success,
            CallOutcome::Failure => BreakerCall::Failure,
            CallOutcome::Ignored => BreakerCall::Ignored,
        });
        let settings = self.family.settings().breaker();
        if outcome != CallOutcome::Ignored
            && settings.slow_call_rate_threshold().is_some()
            && duration > settings.slow_call_duration()
        {
            metrics.call(BreakerCall::Slow);
        }
    }

    /// The member serving `key`: its breaker if held, a new one if there is room, else the
    /// overflow breaker.
    fn member_for(&mut self, key: KeyBuf, now: Instant) -> Member {
        if let Some(id) = self.shared.keys.get(key.as_bytes()).map(|p| p.id) {
            return Member::Key(id);
        }
        let metrics = self.configured.get(&key).cloned();
        let data = KeyData { key: key.clone() };
        match self.family.insert(data, now) {
            Insert::Inserted { id, evicted } => {
                if let Some(e) = evicted {
                    self.evicted(e);
                }
                let snapshot = self
                    .family
                    .breaker(Member::Key(id))
                    .expect("just inserted")
                    .snapshot();
                if let Some(m) = metrics {
                    m.state(BreakerState::Closed);
                    self.set_rejected(id.index(), Some(&m));
                    self.labelled.insert(id.index(), m);
                }
                self.shared.keys.insert(key, Published::new(id, snapshot));
                Member::Key(id)
            }
            Insert::Saturated(_) => Member::Overflow,
        }
    }

    fn evicted(&mut self, e: Evicted<KeyData>) {
        // Removed before the slot can be reused (callers read a slot's state while they hold
        // the key's entry).
        self.shared.keys.remove(e.data.key.as_bytes());
        let metrics = self.labelled.remove(&e.id.index());
        if metrics.is_some() {
            self.set_rejected(e.id.index(), None);
        }
        self.shared.metrics.evicted(e.reason);
        match e.reason {
            EvictionReason::Idle => self.evicted_idle += 1,
            EvictionReason::Capacity => self.evicted_capacity += 1,
        }
        if let Some(m) = &metrics {
            if self.configured.contains_key(&e.data.key) {
                m.state(BreakerState::Closed); // as the key is when it comes back
            } else {
                m.clear_state();
                self.top.remove(&e.data.key);
            }
        }
    }

    /// After a batch of inputs: publish the saturated flag and the per-state key gauges, and
    /// re-rank the top keys when due.
    fn after_batch(&mut self, now: Instant) {
        self.shared.set_saturated(self.family.is_saturated());
        let family = &self.family;
        self.shared.metrics.keys(|s| family.keys_in(s));
        if self.options.metric_top_keys > 0
            && now >= self.next_rank
            && (self.failed_since_rank || !self.top.is_empty())
        {
            self.next_rank = now + self.options.rank_interval;
            self.failed_since_rank = false;
            self.rank();
        }
    }

    /// Gives the current top keys by failures series of their own, and takes them from keys
    /// that left the top (their calls count under `key="other"` again).
    fn rank(&mut self) {
        let n = self.options.metric_top_keys;
        let ranked = self.family.rank_by_failures(n + self.configured.len());
        let mut top = HashMap::with_capacity(n);
        for id in ranked {
            let Some(data) = self.family.data(id) else {
                continue;
            };
            if top.len() == n {
                break;
            }
            if self.configured.contains_key(&data.key) || !is_metric_key(data.key.as_str()) {
                continue;
            }
            let key = data.key.clone();
            let m = self.top.remove(&key).unwrap_or_else(|| {
                Arc::new(KeyMetrics::new(&self.shared.name, key.as_str(), true))
            });
            top.insert(key, m);
        }
        for (key, m) in std::mem::take(&mut self.top) {
            m.clear_state();
            self.set_key_metrics(&key, None);
        }
        for (key, m) in &top {
            self.set_key_metrics(key, Some(m.clone()));
        }
        self.top = top;
    }

    fn set_key_metrics(&mut self, key: &KeyBuf, metrics: Option<Arc<KeyMetrics>>) {
        let Some(id) = self.shared.keys.get(key.as_bytes()).map(|p| p.id) else {
            return;
        };
        self.set_rejected(id.index(), metrics.as_deref());
        let state = self
            .family
            .breaker(Member::Key(id))
            .map(|b| b.state().kind());
        if let (Some(m), Some(state)) = (&metrics, state) {
            m.state(state);
        }
        match metrics {
            Some(m) => self.labelled.insert(id.index(), m),
            None => self.labelled.remove(&id.index()),
        };
    }

    /// Where callers count a rejection of the key in `slot`: its own series, or `other`.
    fn set_rejected(&self, slot: u32, metrics: Option<&KeyMetrics>) {
        let mut labelled = self
            .shared
            .rejected
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match metrics {
            Some(m) => labelled.insert(slot, m.rejected()),
            None => labelled.remove(&slot),
        };
    }

    // ===== time =====

    fn deadline_elapsed(&mut self, timer: u64) {
        if !self.timer.fired(timer) {
            return; // stale: the deadline moved since this timer was armed
        }
        self.advance(clock::now());
    }

    /// Applies every deadline and idle eviction due now.
    fn advance(&mut self, now: Instant) {
        for (member, t) in self.family.advance(now) {
            self.publish_snapshot(member, t.until);
            self.announce(member, &t);
        }
        for e in self.family.evict_idle(now) {
            self.evicted(e);
        }
        self.after_batch(now);
    }

    /// Applies queued outcomes and due deadlines before answering a query.
    fn catch_up(&mut self, myself: &ActorRef<KeyedBreakerMsg>) {
        self.drain_queue(myself);
        self.advance(clock::now());
    }

    /// Keeps one timer armed by the family's next deadline (a deadline that moved later
    /// wakes the actor once for nothing, cheaper than re-arming on every outcome).
    fn arm_deadline(&mut self, myself: &ActorRef<KeyedBreakerMsg>) {
        if let Some(next) = self.family.next_deadline() {
            self.timer
                .fire_by(myself, tokio::time::Instant::from_std(next), |timer| {
                    KeyedBreakerMsg(Msg::DeadlineElapsed { timer })
                });
        }
    }

    // ===== commands and queries =====

    fn command(
        &mut self,
        myself: &ActorRef<KeyedBreakerMsg>,
        key: Arc<str>,
        command: KeyCommand,
        reply: ReplyTo<Result<BreakerState, KeyCommandError>>,
    ) {
        self.drain_queue(myself);
        let now = clock::now();
        let member = match self.shared.keys.get(key.as_bytes()).map(|p| p.id) {
            Some(id) => Member::Key(id),
            // A key not held is a fresh Closed breaker: nothing to reset.
            None if command == KeyCommand::Reset => {
                reply.send(Ok(BreakerState::Closed));
                return;
            }
            None => match self.member_for(KeyBuf::new(&key), now) {
                Member::Key(id) => Member::Key(id),
                Member::Overflow => {
                    reply.send(Err(KeyCommandError::Full {
                        breaker: self.shared.name.clone(),
                        key: key.to_string(),
                    }));
                    return;
                }
            },
        };
        let transitions = match command {
            KeyCommand::ForceOpen => self.family.force_open(member, now),
            KeyCommand::Disable => self.family.disable(member, now),
            KeyCommand::Reset => self.family.reset(member, now),
        }
        .expect("the key is held");
        self.publish(member, transitions);
        tracing::info!(breaker = %self.shared.name, key = %key, command = ?command, "keyed breaker command");
        let state = self.family.breaker(member).map(|b| b.state().kind());
        reply.send(Ok(state.unwrap_or(BreakerState::Closed)));
        self.after_batch(now);
    }

    fn key_status(&self, key: &str) -> Option<KeyStatus> {
        let id = self.shared.keys.get(key.as_bytes()).map(|p| p.id)?;
        let now = clock::now();
        let b = self.family.breaker(Member::Key(id))?;
        let window = b.window_counts(now);
        Some(KeyStatus {
            key: key.to_owned(),
            state: b.state().kind(),
            generation: b.generation(),
            retry_after: retry_after(b.state(), b.settings().half_open_probes())
                .map(|at| at.saturating_duration_since(now)),
            window_calls: window.calls,
            window_failures: window.failures,
            idle_for: self
                .family
                .last_active(id)
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
        })
    }

    fn listing(&self, limit: usize) -> KeyListing {
        let now = clock::now();
        let keys: Vec<KeyState> = self
            .family
            .not_closed()
            .take(limit)
            .map(|(_, data, b)| KeyState {
                key: data.key.to_string(),
                state: b.state().kind(),
                retry_after: retry_after(b.state(), b.settings().half_open_probes())
                    .map(|at| at.saturating_duration_since(now)),
            })
            .collect();
        KeyListing {
            more: self.family.not_closed_len() - keys.len(),
            keys,
            overflow: self.overflow_state(),
        }
    }

    fn status(&self) -> FamilyStatus {
        let mut labelled_keys: Vec<String> = self
            .configured
            .keys()
            .chain(self.top.keys())
            .map(|k| k.to_string())
            .collect();
        labelled_keys.sort();
        FamilyStatus {
            name: self.shared.name.to_string(),
            keys: self.family.len(),
            max_keys: self.family.settings().max_keys(),
            by_state: BreakerState::ALL
                .iter()
                .map(|&s| (s, self.family.keys_in(s)))
                .collect(),
            overflow: self.overflow_state(),
            saturated: self.family.is_saturated(),
            evicted_idle: self.evicted_idle,
            evicted_capacity: self.evicted_capacity,
            outcomes_for_evicted: self.outcomes_for_evicted,
            outcomes: self.outcomes,
            drains: self.drains,
            labelled_keys,
        }
    }

    fn overflow_state(&self) -> BreakerState {
        self.family
            .breaker(Member::Overflow)
            .map_or(BreakerState::Closed, |b| b.state().kind())
    }

    // ===== publishing =====

    fn metrics_of(&self, member: Member) -> &KeyMetrics {
        match member {
            Member::Overflow => &self.shared.metrics.overflow,
            Member::Key(_) if self.labelled.is_empty() => &self.shared.metrics.other,
            Member::Key(id) => self
                .labelled
                .get(&id.index())
                .map_or(&self.shared.metrics.other, |m| &**m),
        }
    }

    /// Publishes transitions: the snapshot first (callers fail fast at once), then metrics,
    /// subscribers and the log.
    fn publish(&self, member: Member, transitions: Transitions) {
        let Some(last) = transitions.last() else {
            return;
        };
        self.publish_snapshot(member, last.until);
        for t in transitions {
            self.announce(member, &t);
        }
    }

    fn publish_snapshot(&self, member: Member, until: Option<Instant>) {
        let Some(snapshot) = self.family.breaker(member).map(|b| b.snapshot()) else {
            return;
        };
        match member {
            Member::Overflow => self.shared.publish_overflow(snapshot, until),
            Member::Key(id) => {
                if let Some(data) = self.family.data(id) {
                    self.shared
                        .publish_key(&data.key, id.index(), snapshot, until);
                }
            }
        }
    }

    fn announce(&self, member: Member, t: &Transition) {
        self.metrics_of(member).transition(t.from, t.to);
        let key = match member {
            Member::Key(id) => self.family.data(id).map(|d| d.key.to_string()),
            Member::Overflow => None,
        };
        if let Some(port) = self.shared.has_subscribers() {
            port.send(KeyedBreakerEvent {
                breaker: self.shared.name.to_string(),
                key: key.clone(),
                from: t.from,
                to: t.to,
                reason: t.reason,
                generation: t.generation,
                at: t.at.saturating_duration_since(self.shared.base),
                open_for: t.until.map(|until| until.saturating_duration_since(t.at)),
            });
        }
        let key = key.as_deref().unwrap_or("(overflow)");
        let name = &*self.shared.name;
        if matches!(t.to, BreakerState::Open | BreakerState::ForcedOpen) {
            tracing::warn!(breaker = name, key, from = %t.from, to = %t.to, reason = ?t.reason,
                "keyed circuit breaker opened");
        } else {
            tracing::info!(breaker = name, key, from = %t.from, to = %t.to, reason = ?t.reason,
                "keyed circuit breaker is {}", t.to);
        }
    }
}

fn target_of(member: Member) -> Target {
    match member {
        Member::Key(id) => Target::Key(id),
        Member::Overflow => Target::Overflow,
    }
}

/// When asking again may succeed: the end of the open period, or the half-open deadline once
/// every probe is out.
fn retry_after(state: &CircuitState, probes: u32) -> Option<Instant> {
    match *state {
        CircuitState::Open { until } => Some(until),
        CircuitState::HalfOpen {
            admitted, deadline, ..
        } if admitted >= probes => deadline,
        _ => None,
    }
}
