//! The `anatomy` group (not part of the contract, run with `--only anatomy`): where the stack's
//! overhead over a bare call comes from, rebuilt piece by piece outside the library.
//!
//! Latency: the bare `call!`, then cumulatively what the stack's happy path adds around the same
//! message — the 30 s tokio timeout of `race_in_caller`, the task's and the attempt's
//! cancellation tokens (cancelled on drop), the worker's `select!` on its token, and the clock
//! reads. What the full stack costs beyond the last step is everything else (spans, admission,
//! breaker and timeout records, metrics, pool pick, reply routing).
//!
//! Memory: agents whose timeout actor, or whose breaker and timeout actors, are shared by all
//! agents (`AgentBuilder::timeout` / `::breaker`), to split the per-agent bytes among them.

use std::hint::black_box;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_resilience::task::CancellationToken;

use crate::calls::{BareMsg, Caller};

/// A no-op worker that, like the stack's worker, races the (instant) work against the
/// attempt's cancellation token.
#[derive(Debug)]
pub(crate) struct SelectWorker;

/// The select worker's message.
#[derive(Debug)]
pub(crate) struct SelectMsg {
    cancel: CancellationToken,
    reply: RpcReplyPort<()>,
}

#[cfg(feature = "cluster")]
impl ractor::Message for SelectMsg {}

impl Actor for SelectWorker {
    type Msg = SelectMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        SelectMsg { cancel, reply }: SelectMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if cancel.is_cancelled() || reply.is_closed() {
            return Ok(());
        }
        let watch = cancel.clone();
        tokio::select! {
            biased;
            () = async {} => { let _ = reply.send(()); }
            () = watch.cancelled() => {}
        }
        Ok(())
    }
}

/// Spawns one select worker.
pub(crate) async fn spawn_select() -> ActorRef<SelectMsg> {
    let (actor, _) = Actor::spawn(None, SelectWorker, ())
        .await
        .expect("spawn the select worker");
    actor
}

/// How much of the stack's happy path is rebuilt around the bare call (cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    /// `call!` to the bare worker.
    Bare,
    /// + `tokio::time::timeout(30 s, …)` around it.
    Timer,
    /// + a task token (`new`, a clone as a drop guard) and an attempt token (`child_token`,
    ///   a clone for the worker).
    Tokens,
    /// + the worker's `select!` on the attempt token (the select worker instead of the bare
    ///   one).
    Select,
    /// + the clock reads of the happy path (7: submission, permit, deadline, start, timer
    ///   deadline, attempt duration, task duration).
    Clocks,
}

impl Step {
    pub(crate) const ALL: [Step; 5] = [
        Step::Bare,
        Step::Timer,
        Step::Tokens,
        Step::Select,
        Step::Clocks,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Bare => "anatomy_bare_p50_ns",
            Step::Timer => "anatomy_timer_p50_ns",
            Step::Tokens => "anatomy_tokens_p50_ns",
            Step::Select => "anatomy_select_p50_ns",
            Step::Clocks => "anatomy_clocks_p50_ns",
        }
    }
}

/// A caller that rebuilds the stack's happy path up to `step`.
#[derive(Debug, Clone)]
pub(crate) struct StepCaller {
    pub(crate) step: Step,
    pub(crate) bare: ActorRef<BareMsg>,
    pub(crate) select: ActorRef<SelectMsg>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Caller for StepCaller {
    async fn call(&mut self) {
        let step = self.step;
        if step == Step::Bare {
            ractor::call!(self.bare, BareMsg::Ping).expect("bare call");
            return;
        }
        if step == Step::Timer {
            tokio::time::timeout(TIMEOUT, async {
                ractor::call!(self.bare, BareMsg::Ping).expect("bare call")
            })
            .await
            .expect("in time");
            return;
        }
        let clocks = step >= Step::Clocks;
        let clock = || {
            if clocks {
                black_box(tokio::time::Instant::now());
            }
        };
        clock(); // submitted
        let task = CancellationToken::new();
        let _guard = task.clone().drop_guard();
        clock(); // permit held
        let attempt = task.child_token();
        clock(); // ctx deadline
        clock(); // attempt start
        if step == Step::Tokens {
            let for_worker = attempt.clone();
            tokio::time::timeout(TIMEOUT, async {
                ractor::call!(self.bare, BareMsg::Ping).expect("bare call")
            })
            .await
            .expect("in time");
            drop(for_worker);
        } else {
            let cancel = attempt.clone();
            tokio::time::timeout(TIMEOUT, async {
                ractor::call!(self.select, |reply| SelectMsg { cancel, reply }).expect("call")
            })
            .await
            .expect("in time");
        }
        clock(); // attempt took
        clock(); // task took
    }
}
