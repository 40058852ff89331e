//! [`Dispatch`]: how a job reaches a worker — join-the-idle-queue (Lu et al., "Join-Idle-Queue",
//! 2011). Workers pull; no job waits behind a busy worker while another is idle.
//!
//! ```text
//!  submit(job) ──▶ an idle worker registered?  yes ──▶ straight into its mailbox (one hop)
//!                                              no  ──▶ the agent's one bounded queue
//!  a worker that finishes ──▶ takes the next job from the queue (the newest first while
//!                             the queue stands: adaptive LIFO), or registers itself idle
//! ```
//!
//! The idle list and the queue sit behind one lock, so a job is never queued while a worker
//! parks unseen. Once the queue stands ([`Codel`]), it sheds what waited too long — a shed job
//! is answered [`AttemptEnd::Shed`] (the task ends `Overloaded`) without taking a worker — and
//! serves the newest job first.

use std::collections::VecDeque;

use ractor::{ActorId, ActorRef, MessagingErr};
use ractor_resilience_core::queue::{Codel, CodelSettings};
use tokio::time::Instant;

use super::Agent;
use super::job::{AttemptEnd, Job, WorkerMsg};

/// The agent's idle workers and its queue.
///
/// Behind a spin lock that yields to the OS while it waits: every holder runs a few dozen
/// instructions and a non-blocking send, never an await or a blocking call, and the lock is
/// released by a plain store (a std mutex's release is a read-modify-write, which the caller
/// and the worker each paid on every task: about 15 ns of a 660 ns call, measured).
pub(crate) struct Dispatch<A: Agent> {
    state: spin::mutex::SpinMutex<State<A>, spin::relax::Yield>,
}

struct State<A: Agent> {
    /// The pool's workers by slot (`None` while one is being restarted).
    workers: Vec<Option<ActorRef<WorkerMsg<A>>>>,
    /// Slots of the workers waiting for a job, the most recently parked last (it is taken
    /// first: its caches are warm).
    idle: Vec<usize>,
    /// Jobs waiting for a worker, oldest first.
    queue: VecDeque<Job<A>>,
    /// At most this many jobs are queued (the agent's admission bound).
    capacity: usize,
    /// Sheds what waited too long; `None`: the queue never sheds (pure FIFO).
    codel: Option<Codel>,
    /// What `codel` was made from (a reload with the same settings keeps its state).
    codel_settings: Option<CodelSettings>,
    closed: bool,
}

/// Where [`Dispatch::place`] put a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Into an idle worker's mailbox: it starts at once (and the worker enforces its deadline).
    Worker,
    /// Into the agent's queue: it waits for a worker.
    Queued,
}

/// Why [`Dispatch::submit`] handed a job back.
pub(crate) enum Refused<A: Agent> {
    /// The queue is full of live jobs.
    Full(Job<A>),
    /// The agent is shutting down.
    Closed(Job<A>),
}

impl<A: Agent> Dispatch<A> {
    pub(crate) fn new(workers: usize, capacity: usize, codel: Option<CodelSettings>) -> Self {
        Dispatch {
            state: spin::mutex::SpinMutex::new(State {
                workers: vec![None; workers],
                idle: Vec::with_capacity(workers),
                queue: VecDeque::new(),
                capacity,
                codel: codel.map(Codel::new),
                codel_settings: codel,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> spin::mutex::SpinMutexGuard<'_, State<A>> {
        self.state.lock()
    }

    /// Hands `job` to an idle worker (sent under the lock: no clone of its reference), or
    /// queues it.
    pub(crate) fn submit(&self, job: Box<Job<A>>) -> Result<(), Refused<A>> {
        self.place(job).map(|_| ())
    }

    /// [`submit`](Self::submit), telling where the job went: `Queued` (no worker was idle),
    /// or `Worker` (it is in an idle worker's mailbox).
    pub(crate) fn place(&self, mut job: Box<Job<A>>) -> Result<Placed, Refused<A>> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Closed(*job));
        }
        while let Some(slot) = s.idle.pop() {
            let Some(worker) = &s.workers[slot] else {
                continue;
            };
            match worker.send_message(WorkerMsg::Run(job)) {
                Ok(()) => return Ok(Placed::Worker),
                // The worker stopped after it parked: try the next one.
                Err(MessagingErr::SendErr(WorkerMsg::Run(back))) => job = back,
                // Not a send error: the message (and with it the job's reply) is gone, which
                // its waiter sees as a lost worker.
                Err(_) => return Ok(Placed::Worker),
            }
        }
        // Queued inline: the worker that takes it boxes it again (see `WorkerMsg::Run`).
        s.enqueue(*job).map(|()| Placed::Queued)
    }

    /// Puts `worker` in `slot` (spawned or restarted): it is told to pull if work queued while
    /// no worker was there, else registered idle with no message (a never-used mailbox costs
    /// nothing). `None` empties the slot (its worker stopped).
    pub(crate) fn set_worker(&self, slot: usize, worker: Option<ActorRef<WorkerMsg<A>>>) {
        let mut s = self.lock();
        if slot >= s.workers.len() {
            // The pool shrank while this worker was being (re)started: it retires at once.
            if let Some(worker) = worker {
                let _ = worker.send_message(WorkerMsg::Retire);
            }
            return;
        }
        s.idle.retain(|&i| i != slot);
        if let Some(worker) = &worker {
            if s.queue.is_empty() || worker.send_message(WorkerMsg::Pull).is_err() {
                s.park(slot);
            }
        }
        s.workers[slot] = worker;
    }

    /// The next job for the worker of `slot`, which just finished one (or was just started) at
    /// `now`; with none queued, it is registered idle. Jobs shed on the way are answered here,
    /// outside the lock.
    ///
    /// `me` is the asking worker: a worker whose slot was retired (the pool shrank), or given
    /// to a new worker since (it shrank and grew again while this one finished its attempt),
    /// gets nothing and is not registered idle; its `Retire` message is on its way.
    pub(crate) fn next(&self, slot: usize, me: ActorId, now: Instant) -> Option<Job<A>> {
        let mut shed = Vec::new();
        let job = {
            let mut s = self.lock();
            let current = s
                .workers
                .get(slot)
                .and_then(|w| w.as_ref().map(|w| w.get_id()));
            if current != Some(me) {
                return None;
            }
            s.take(slot, now, &mut shed)
        };
        // Checked first: the loop's iterator would otherwise be made and dropped on every call,
        // and this runs after every attempt.
        if !shed.is_empty() {
            for (job, waited) in shed {
                job.answer(AttemptEnd::Shed { waited }, now);
            }
        }
        job
    }

    /// Resizes the pool to `workers` slots: new slots start empty (the supervisor spawns their
    /// workers); the workers of removed slots are returned, already unreachable — no job is
    /// handed to them any more, and one that finishes is not given the next — so that the
    /// supervisor can tell them to retire (behind whatever their mailbox already holds).
    pub(crate) fn resize(&self, workers: usize) -> Vec<ActorRef<WorkerMsg<A>>> {
        let mut s = self.lock();
        if workers >= s.workers.len() {
            s.workers.resize(workers, None);
            return Vec::new();
        }
        s.idle.retain(|&i| i < workers);
        s.workers.drain(workers..).flatten().collect()
    }

    /// A new admission bound and queue discipline (hot reload). Jobs already queued stay
    /// queued even past a lower bound; the same CoDel settings keep their state.
    pub(crate) fn set_limits(&self, capacity: usize, codel: Option<CodelSettings>) {
        let mut s = self.lock();
        s.capacity = capacity;
        if s.codel_settings != codel {
            s.codel = codel.map(Codel::new);
            s.codel_settings = codel;
        }
    }

    /// A job a worker took but yields back (a whole batch ran): to itself, behind its mailbox,
    /// unless its slot was retired meanwhile — then to an idle worker or the queue's front.
    /// Under the lock, so a retirement cannot slip between the check and the send.
    pub(crate) fn yield_job(&self, slot: usize, me: &ActorRef<WorkerMsg<A>>, job: Box<Job<A>>) {
        let mut s = self.lock();
        let mine = s
            .workers
            .get(slot)
            .and_then(|w| w.as_ref().map(|w| w.get_id()));
        let job = if mine == Some(me.get_id()) {
            match me.send_message(WorkerMsg::Run(job)) {
                Ok(()) => return,
                Err(MessagingErr::SendErr(WorkerMsg::Run(back))) => back,
                Err(_) => return,
            }
        } else {
            job
        };
        let mut job = job;
        while let Some(idle) = s.idle.pop() {
            let Some(worker) = &s.workers[idle] else {
                continue;
            };
            match worker.send_message(WorkerMsg::Run(job)) {
                Ok(()) => return,
                Err(MessagingErr::SendErr(WorkerMsg::Run(back))) => job = back,
                Err(_) => return,
            }
        }
        // It was admitted and had reached a worker: it goes first, whatever the bound.
        s.queue.push_front(*job);
    }

    /// Refuses every job from now on, and answers every queued one [`AttemptEnd::Closed`].
    pub(crate) fn close(&self) {
        let queued = {
            let mut s = self.lock();
            s.closed = true;
            s.idle.clear();
            std::mem::take(&mut s.queue)
        };
        let now = Instant::now();
        for job in queued {
            job.answer(AttemptEnd::Closed, now);
        }
    }

    /// Jobs queued and workers idle, now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.queue.len(), s.idle.len())
    }
}

impl<A: Agent> State<A> {
    /// Registers the worker of `slot` idle (once; never while the agent is closing).
    fn park(&mut self, slot: usize) {
        if !self.closed && slot < self.workers.len() && !self.idle.contains(&slot) {
            self.idle.push(slot);
        }
    }

    fn enqueue(&mut self, job: Job<A>) -> Result<(), Refused<A>> {
        if self.queue.len() >= self.capacity {
            // Jobs whose callers left (their deadline passed, or they were cancelled) still sit
            // here until a worker would skip them: make room by dropping them now.
            self.queue.retain(|j| !j.abandoned());
            if self.queue.len() >= self.capacity {
                return Err(Refused::Full(job));
            }
        }
        self.queue.push_back(job);
        Ok(())
    }

    fn take(
        &mut self,
        slot: usize,
        now: Instant,
        shed: &mut Vec<(Job<A>, std::time::Duration)>,
    ) -> Option<Job<A>> {
        if self.queue.is_empty() {
            if let Some(codel) = &mut self.codel {
                codel.queue_empty();
            }
            self.park(slot);
            return None;
        }
        // Jobs nobody waits for any more (their deadline passed, or they were cancelled) are
        // dropped from the front: they must not make the queue look as if it stood.
        while self.queue.front().is_some_and(Job::abandoned) {
            self.queue.pop_front();
        }
        let mut lifo = false;
        if let Some(codel) = &mut self.codel {
            if let Some(front) = self.queue.front() {
                codel.observe(now.saturating_duration_since(front.queued), now.into_std());
            }
            // The oldest are at the front: shed from there whatever waited too long.
            while let Some(front) = self.queue.front() {
                let waited = now.saturating_duration_since(front.queued);
                if !codel.shed(waited) {
                    break;
                }
                let job = self.queue.pop_front().expect("the front exists");
                shed.push((job, waited));
            }
            lifo = codel.lifo();
        }
        let job = if lifo {
            self.queue.pop_back()
        } else {
            self.queue.pop_front()
        };
        if self.queue.is_empty() {
            if let Some(codel) = &mut self.codel {
                codel.queue_empty();
            }
        }
        if job.is_none() {
            // Everything queued was shed or abandoned.
            self.park(slot);
        }
        job
    }
}
