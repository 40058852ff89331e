//! Tasks by message: a plain ractor actor (`Dispatcher`) sends tasks to a supervised agent and
//! gets every outcome back as one of its own messages — no callback glue, and no `await` in its
//! `handle()`.
//!
//! - Four tasks go out as `AgentMsg::Submit(envelope, ReplyTo::to_actor(&myself, Msg::Done))`:
//!   two that succeed, one whose envelope carries a 50 ms deadline it cannot meet (it ends
//!   `timed out` at its deadline), and one that the dispatcher cancels with `AgentMsg::Cancel`.
//!   Each outcome arrives as `Msg::Done(id, outcome)`, in the order the tasks end.
//! - Then, from plain async code, one task by ractor's own RPC:
//!   `ractor::call!(agent.actor(), AgentMsg::Call, task)`, which returns the typed outcome.
//!
//! It prints one line per outcome, in the order the tasks end, then the RPC's answer and the
//! agent's counters (task ids vary; so does the attempt count by one if a worker starts the
//! cancelled task before the cancellation reaches the agent):
//!
//! ```text
//! dispatcher: sent 4 tasks by message
//!   task-4  cancelled
//!   task-1  ok: "SHORT"
//!   task-3  timed out after 1 attempt(s), last timeout 50ms
//!   task-2  ok: "A LONGER ONE"
//! call!: ok: "BY RPC"
//! agent: 4 attempts, 0 retries, 0 in flight
//! ```
//!
//! ```sh
//! cargo run --example by_message
//! ```

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, AgentMsg, Outcome};
use ractor_resilience::reply::ReplyTo;
use ractor_resilience::task::{TaskContext, TaskEnvelope, TaskId};
use tokio::sync::oneshot;

// ===== the agent =====

/// Shouts its text back after 20 ms per word (a stand-in for a slow model call).
struct Shouter;

#[derive(Debug, thiserror::Error)]
#[error("cancelled mid-way")]
struct Interrupted;

impl Agent for Shouter {
    type Task = String;
    type Output = String;
    type Error = Interrupted;

    async fn handle(&mut self, text: String, ctx: TaskContext) -> Result<String, Interrupted> {
        let work = Duration::from_millis(20 * text.split_whitespace().count() as u64);
        tokio::select! {
            () = tokio::time::sleep(work) => Ok(text.to_uppercase()),
            () = ctx.cancel().cancelled() => Err(Interrupted),
        }
    }
}

// ===== a plain ractor actor that uses it =====

enum Msg {
    /// Send the tasks.
    Start,
    /// A task's outcome, delivered by the agent as this actor's own message.
    Done(TaskId, Outcome<Shouter>),
}

// With ractor's `cluster` feature (which `ractor_cluster` turns on) every message type says so.
#[cfg(feature = "cluster")]
impl ractor::Message for Msg {}

struct Dispatcher;

struct State {
    agent: ActorRef<AgentMsg<Shouter>>,
    pending: usize,
    finished: Option<oneshot::Sender<()>>,
}

impl Actor for Dispatcher {
    type Msg = Msg;
    type State = State;
    type Arguments = (ActorRef<AgentMsg<Shouter>>, oneshot::Sender<()>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        (agent, finished): Self::Arguments,
    ) -> Result<State, ActorProcessingErr> {
        Ok(State {
            agent,
            pending: 0,
            finished: Some(finished),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        message: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Msg::Start => {
                let tasks = [
                    TaskEnvelope::new("short".to_string()),
                    TaskEnvelope::new("a longer one".to_string()),
                    // Five words take 100 ms; its caller's patience is 50 ms.
                    TaskEnvelope::new("one two three four five".to_string())
                        .with_deadline(Duration::from_millis(50)),
                    TaskEnvelope::new("to be cancelled".to_string()),
                ];
                let cancel = tasks[3].id;
                for envelope in tasks {
                    let id = envelope.id;
                    let reply = ReplyTo::to_actor(&myself, move |outcome| Msg::Done(id, outcome));
                    state
                        .agent
                        .send_message(AgentMsg::Submit(envelope, reply))?;
                    state.pending += 1;
                }
                state.agent.send_message(AgentMsg::Cancel(cancel))?;
                println!("dispatcher: sent {} tasks by message", state.pending);
            }
            Msg::Done(id, outcome) => {
                match outcome {
                    Ok(text) => println!("  {id}  ok: {text:?}"),
                    Err(error) => println!("  {id}  {error}"),
                }
                state.pending -= 1;
                if state.pending == 0 {
                    if let Some(finished) = state.finished.take() {
                        let _ = finished.send(());
                    }
                }
            }
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let agent: AgentHandle<Shouter> = AgentBuilder::new("shouter", || Shouter)
        .workers(4)
        .spawn()
        .await?;

    let (finished, done) = oneshot::channel();
    let (dispatcher, _) = Actor::spawn(None, Dispatcher, (agent.actor().clone(), finished)).await?;
    dispatcher.send_message(Msg::Start)?;
    done.await?;

    let answer = ractor::call!(agent.actor(), AgentMsg::Call, "by rpc".to_string())?;
    match answer {
        Ok(text) => println!("call!: ok: {text:?}"),
        Err(error) => println!("call!: {error}"),
    }
    let stats = agent.stats();
    println!(
        "agent: {} attempts, {} retries, {} in flight",
        stats.attempts, stats.retries, stats.inflight
    );
    dispatcher.stop(None);
    agent.stop();
    Ok(())
}
