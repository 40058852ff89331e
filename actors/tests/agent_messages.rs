//! Tasks by message, on tokio's paused clock: an actor calls an agent with ractor's own RPC and
//! gets typed outcomes; another sends tasks with `AgentMsg::Submit` and gets each outcome back,
//! once, as one of its own messages — successes, failures, deadlines from the envelope,
//! cancellation by id and refusals alike.

mod scripted;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RactorErr};
use ractor_resilience::agent::{
    AgentBuilder, AgentMsg, AttemptError, CallError, Outcome, OverloadReason,
};
use ractor_resilience::core::backoff::RetryPolicy;
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::{TaskEnvelope, TaskId};
use scripted::{Script, ScriptError, Scripted, Seen, Step, ms, never_trips, observed, quiet};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().with_max_attempts(1).build().unwrap()
}

fn tagged(tag: u64, mut script: Script) -> Script {
    script.tag = tag;
    script
}

// ===== an actor that calls the agent with ractor::call! =====

struct Caller;

type Asked = Result<Outcome<Scripted>, RactorErr<AgentMsg<Scripted>>>;

enum CallerMsg {
    Ask(Script, Option<u64>, oneshot::Sender<Asked>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for CallerMsg {}

impl Actor for Caller {
    type Msg = CallerMsg;
    type State = ActorRef<AgentMsg<Scripted>>;
    type Arguments = ActorRef<AgentMsg<Scripted>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<CallerMsg>,
        agent: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(agent)
    }

    async fn handle(
        &self,
        _myself: ActorRef<CallerMsg>,
        message: CallerMsg,
        agent: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // This actor chooses to wait for each answer (ractor's RPC): the agent does not.
        let CallerMsg::Ask(script, timeout_ms, tx) = message;
        let answer = match timeout_ms {
            None => ractor::call!(agent, AgentMsg::Call, script),
            Some(ms) => ractor::call_t!(agent, AgentMsg::Call, ms, script),
        };
        let _ = tx.send(answer);
        Ok(())
    }
}

async fn ask(caller: &ActorRef<CallerMsg>, script: Script, timeout_ms: Option<u64>) -> Asked {
    let (tx, rx) = oneshot::channel();
    caller
        .send_message(CallerMsg::Ask(script, timeout_ms, tx))
        .unwrap();
    rx.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_actor_calls_an_agent_with_ractor_call_and_gets_typed_outcomes() {
    let (make, mut seen) = observed();
    let agent = AgentBuilder::new("rpc", make)
        .workers(2)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let (caller, _) = Actor::spawn(None, Caller, agent.actor().clone())
        .await
        .unwrap();
    let t0 = Instant::now();
    let ok = ask(&caller, tagged(5, Script::ok(30)), None).await.unwrap();
    assert_eq!(ok, Ok(5));
    assert_eq!(t0.elapsed(), ms(30));
    let failed = ask(&caller, Script::new(&[(10, Step::Permanent)]), None)
        .await
        .unwrap();
    assert_eq!(
        failed,
        Err(CallError::Failed {
            attempts: 1,
            source: AttemptError::Agent(ScriptError::Permanent)
        })
    );
    // `call_t!`'s timeout is the task's deadline: the caller stops waiting at 100 ms, and the
    // agent stops the task there too (its worker is told, its slot freed).
    let t1 = Instant::now();
    let timed_out = ask(&caller, tagged(9, Script::ok(1000)), Some(100)).await;
    assert!(
        matches!(timed_out, Err(RactorErr::Timeout)),
        "{timed_out:?}"
    );
    assert_eq!(t1.elapsed(), ms(100));
    tokio::task::yield_now().await;
    let events: Vec<Seen> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Seen::Cancelled { tag: 9, at, .. } if *at - t1 == ms(100))),
        "{events:?}"
    );
    assert_eq!(agent.inflight(), 0);
    caller.stop(None);
    agent.stop();
}

// ===== an actor that gets outcomes as its own messages =====

struct Collector;

enum CollectorMsg {
    Send(Vec<TaskEnvelope<Script>>),
    Cancel(TaskId),
    Done(TaskId, Outcome<Scripted>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for CollectorMsg {}

struct CollectorState {
    agent: ActorRef<AgentMsg<Scripted>>,
    out: mpsc::UnboundedSender<(TaskId, Outcome<Scripted>, Instant)>,
}

impl Actor for Collector {
    type Msg = CollectorMsg;
    type State = CollectorState;
    type Arguments = CollectorState;

    async fn pre_start(
        &self,
        _myself: ActorRef<CollectorMsg>,
        state: CollectorState,
    ) -> Result<CollectorState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<CollectorMsg>,
        message: CollectorMsg,
        state: &mut CollectorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            // No await: each outcome comes back later as `Done`.
            CollectorMsg::Send(envelopes) => {
                for envelope in envelopes {
                    let id = envelope.id;
                    let reply =
                        ReplyTo::to_actor(&myself, move |outcome| CollectorMsg::Done(id, outcome));
                    state
                        .agent
                        .send_message(AgentMsg::Submit(envelope, reply))?;
                }
            }
            CollectorMsg::Cancel(id) => state.agent.send_message(AgentMsg::Cancel(id))?,
            CollectorMsg::Done(id, outcome) => {
                let _ = state.out.send((id, outcome, Instant::now()));
            }
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_come_back_as_the_senders_own_messages_once_each() {
    let agent = AgentBuilder::new("by-message", quiet)
        .workers(4)
        .max_pending(4)
        .retry_policy("p", one_attempt())
        .breaker_settings("b", never_trips())
        .spawn()
        .await
        .unwrap();
    let (out, mut outcomes) = mpsc::unbounded_channel();
    let (collector, _) = Actor::spawn(
        None,
        Collector,
        CollectorState {
            agent: agent.actor().clone(),
            out,
        },
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let ok = TaskEnvelope::new(tagged(1, Script::ok(10)));
    let late = TaskEnvelope::new(Script::ok(200)).with_deadline(ms(50));
    let failing = TaskEnvelope::new(Script::new(&[(20, Step::Permanent)]));
    let cancelled = TaskEnvelope::new(Script::ok(1000));
    // The agent admits 4 at a time: the fifth is refused at once, through the same reply.
    let refused = TaskEnvelope::new(Script::ok(10));
    let ids = [ok.id, late.id, failing.id, cancelled.id, refused.id];
    collector
        .send_message(CollectorMsg::Send(vec![
            ok, late, failing, cancelled, refused,
        ]))
        .unwrap();
    tokio::time::sleep(ms(30)).await;
    collector
        .send_message(CollectorMsg::Cancel(ids[3]))
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..ids.len() {
        got.push(outcomes.recv().await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(outcomes.try_recv().is_err(), "a task was answered twice");
    let at = |id: TaskId| {
        let (_, outcome, at) = got.iter().find(|(i, ..)| *i == id).expect("answered");
        (outcome.clone(), *at - t0)
    };
    assert_eq!(
        at(ids[4]),
        (
            Err(CallError::Overloaded {
                reason: OverloadReason::Full { max_pending: 4 }
            }),
            ms(0)
        )
    );
    assert_eq!(at(ids[0]), (Ok(1), ms(10)));
    assert_eq!(
        at(ids[2]),
        (
            Err(CallError::Failed {
                attempts: 1,
                source: AttemptError::Agent(ScriptError::Permanent)
            }),
            ms(20)
        )
    );
    assert_eq!(
        at(ids[3]),
        (Err(CallError::Cancelled), ms(30)),
        "cancelled by id"
    );
    assert_eq!(
        at(ids[1]),
        (
            Err(CallError::TimedOut {
                after: ms(50),
                attempts: 1
            }),
            ms(50)
        ),
        "the envelope's deadline"
    );
    assert_eq!(agent.inflight(), 0);
    collector.stop(None);
    agent.stop();
}
