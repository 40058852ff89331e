//! [`AgentHandle::attempt_once`]: one attempt served for a remote caller (the serving node's
//! ingress), handed straight to the dispatcher without the agent's actor and answered once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::call::{final_without_retry, refused_error};
use super::error::{AttemptError, CallError};
use super::handle::AgentHandle;
use super::job::{AttemptEnd, Job};
use super::options::CallOptions;
use super::shared::Shared;
use super::{Agent, Outcome};
use crate::clock;
use crate::task::{CancellationToken, TaskId};

/// A one-attempt task served for a remote caller: its admission and its answer, taken once by
/// whichever comes first (the attempt's end, or its deadline while it still waits in the queue).
struct Once<A: Agent, F> {
    admitted: super::shared::Admitted<'static>,
    answer: F,
    /// The queued-deadline timer, if one was armed: stopped once the task is answered.
    timer: Option<tokio::task::AbortHandle>,
    _agent: std::marker::PhantomData<fn() -> A>,
}

type OnceSlot<A, F> = Arc<std::sync::Mutex<Option<Once<A, F>>>>;

fn take_once<A: Agent, F>(slot: &OnceSlot<A, F>) -> Option<Once<A, F>> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

impl<A: Agent, F: FnOnce(Outcome<A>)> Once<A, F> {
    /// Counts the task's outcome, releases its admission, then answers.
    fn finish(mut self, shared: &Shared<A>, attempts: u32, result: Outcome<A>) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        shared.finish(&mut self.admitted, attempts, &result);
        drop(self.admitted);
        (self.answer)(result);
    }
}

impl<A: Agent> AgentHandle<A> {
    /// One attempt of `task` for a caller that retries it itself (a remote caller: the serving
    /// node's ingress), without the agent's actor: admitted here, handed straight to the
    /// dispatcher as [`call_with`](Self::call_with) does, and answered from the worker that
    /// ran it — one hop, and nothing awaited by the caller of this function.
    ///
    /// `answer` is called exactly once: here if the task is refused at once (admission,
    /// breaker, a full queue, a stopping agent); else with the attempt's outcome, classified
    /// as `call_with` classifies a first attempt with `retried_upstream` (no retry); with
    /// `TimedOut` at the task's deadline if the job is still queued then (a running attempt
    /// ends at the deadline on its own: its worker caps its timeout by it; `opts.cancel`, if
    /// given, is fired then, so that no worker starts the job); `Cancelled` if `opts.cancel`
    /// fires first; `WorkerLost` if its worker crashes. The task's outcome is counted as
    /// `call_with` counts it.
    pub(crate) fn attempt_once<F>(&self, task: A::Task, opts: CallOptions, answer: F)
    where
        F: FnOnce(Outcome<A>) + Send + 'static,
    {
        let shared = &self.shared;
        let key = shared.key_of(opts.breaker_key.as_deref(), &task);
        let admitted = match shared.admit(true, key) {
            Ok(admitted) => admitted.into_owned(shared),
            Err(refused) => return answer(Err(refused)),
        };
        let user = opts.cancel;
        let submitted = admitted.submitted;
        let once = Once {
            admitted,
            answer,
            timer: None,
            _agent: std::marker::PhantomData,
        };
        if user.as_ref().is_some_and(CancellationToken::is_cancelled) {
            return once.finish(shared, 0, Err(CallError::Cancelled));
        }
        let deadline = opts.deadline.map(|d| clock::after(submitted, d));
        let started = deadline.map(|_| Arc::new(AtomicBool::new(false)));
        // With a deadline, the job carries a signal (the caller's, else one of its own): it
        // fires at the deadline if the job is still queued then, so that no worker starts it.
        let cancel = user
            .clone()
            .or_else(|| deadline.map(|_| CancellationToken::new()));
        let deadline_in = opts.deadline;
        let slot: OnceSlot<A, F> = Arc::new(std::sync::Mutex::new(Some(once)));
        let reply = {
            let slot = slot.clone();
            let shared = self.shared.clone();
            let user = user.clone();
            super::job::JobReply::<A>::callback(move |answer| {
                let Some(mut once) = take_once(&slot) else {
                    return; // answered at the deadline already
                };
                let (attempts, result) = match answer {
                    Some((end, took)) => {
                        // Queued as it was admitted: the job's time is the task's.
                        once.admitted.took = Some(took);
                        let attempts = u32::from(end.ran());
                        match end {
                            AttemptEnd::Ran(Ok(output)) => (1, Ok(output)),
                            AttemptEnd::Ran(Err(_))
                                if user.as_ref().is_some_and(CancellationToken::is_cancelled) =>
                            {
                                (1, Err(CallError::Cancelled))
                            }
                            AttemptEnd::Ran(Err(error)) => {
                                (1, Err(Shared::<A>::final_error(error, 1)))
                            }
                            end => (
                                attempts,
                                Err(final_without_retry(&shared, end, deadline_in)),
                            ),
                        }
                    }
                    // Dropped unanswered: skipped in the queue because it was cancelled, or
                    // its worker crashed.
                    None if user.as_ref().is_some_and(CancellationToken::is_cancelled) => {
                        (0, Err(CallError::Cancelled))
                    }
                    None => (
                        1,
                        Err(Shared::<A>::final_error(AttemptError::WorkerLost, 1)),
                    ),
                };
                once.finish(&shared, attempts, result);
            })
        };
        let job = Box::new(Job {
            task,
            id: opts.id.unwrap_or_else(TaskId::next),
            attempt: 1,
            deadline,
            operation: opts.operation,
            breaker_key: opts.breaker_key,
            cancel: cancel.clone(),
            retried_upstream: true,
            queued: submitted,
            started: started.clone(),
            reply,
        });
        match shared.dispatch.place(job) {
            Ok(super::dispatch::Placed::Worker) => {}
            Ok(super::dispatch::Placed::Queued) => {
                let (Some(at), Some(cancel)) = (deadline, cancel) else {
                    return;
                };
                // The worker enforces the deadline of a job it runs; one still queued at its
                // deadline is answered then, and skipped by the worker that reaches it.
                let timer = {
                    let slot = slot.clone();
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at).await;
                        cancel.cancel();
                        if let Some(once) = take_once(&slot) {
                            let ran = started.is_some_and(|s| s.load(Ordering::Acquire));
                            let attempts = u32::from(ran);
                            let after = deadline_in.unwrap_or_default();
                            let result = Err(CallError::TimedOut { after, attempts });
                            once.finish(&shared, attempts, result);
                        }
                    })
                    .abort_handle()
                };
                let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
                match held.as_mut() {
                    Some(once) => once.timer = Some(timer),
                    None => timer.abort(),
                }
            }
            Err(refused) => {
                // The job is dropped after this answer: its reply then finds the task answered.
                if let Some(once) = take_once(&slot) {
                    once.finish(shared, 0, Err(refused_error(shared, refused)));
                }
            }
        }
    }
}
