//! The serving side of a remote agent, in one process on tokio's paused clock: the ingress
//! decodes a call frame, runs exactly one attempt with the deadline the caller had left, and
//! answers every call — with the outcome, a refusal, or `BadRequest` for a frame it cannot
//! read (never by dropping the caller's reply port). No node server: the ingress is called
//! locally, as a remote node's session does after decoding the bytes. What travels in the call
//! applies there: the operation (per-operation timeouts), the breaker key, and a `Cancel`
//! naming the call's tag stops the attempt; a version-1 call is still served.
#![cfg(feature = "cluster")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, ErrorClass};
use ractor_resilience::cluster::{
    self, Answer, CallTag, FRAME_VERSION, Frame, FrameError, FrameKind, IngressMsg, RemoteCall,
};
use ractor_resilience::task::{TaskContext, TaskEnvelope};
use ractor_resilience::timeout::{OperationTimeouts, TimeoutPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("work failed: {0}")]
struct WorkError(String);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Work {
    Echo(String),
    Fail,
    Sleep(Duration),
    /// Answers the operation and breaker key its context carries.
    Context,
    /// Waits for its cancellation signal (at most an hour) and records that it came.
    UntilCancelled,
}

struct Worker {
    runs: Arc<AtomicU32>,
    cancelled: Arc<AtomicBool>,
}

impl Agent for Worker {
    type Task = Work;
    type Output = String;
    type Error = WorkError;

    async fn handle(&mut self, task: Work, ctx: TaskContext) -> Result<String, WorkError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match task {
            Work::Echo(s) => Ok(s),
            Work::Fail => Err(WorkError("always".into())),
            Work::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok("slept".into())
            }
            Work::Context => Ok(format!(
                "{}/{}",
                ctx.operation.as_deref().unwrap_or("-"),
                ctx.breaker_key.as_deref().unwrap_or("-")
            )),
            Work::UntilCancelled => {
                tokio::select! {
                    () = ctx.cancel().cancelled() => {
                        self.cancelled.store(true, Ordering::SeqCst);
                        Err(WorkError("cancelled".into()))
                    }
                    () = tokio::time::sleep(Duration::from_secs(3600)) => Ok("not cancelled".into()),
                }
            }
        }
    }

    fn classify(_: &WorkError) -> ErrorClass {
        ErrorClass::TRANSIENT
    }
}

struct Served {
    agent: AgentHandle<Worker>,
    ingress: ActorRef<IngressMsg>,
    runs: Arc<AtomicU32>,
    cancelled: Arc<AtomicBool>,
}

async fn served(scope: &str, workers: usize, max_pending: usize) -> Served {
    served_with(scope, workers, max_pending, None).await
}

async fn served_with(
    scope: &str,
    workers: usize,
    max_pending: usize,
    timeouts: Option<TimeoutPolicy>,
) -> Served {
    let runs = Arc::new(AtomicU32::new(0));
    let cancelled = Arc::new(AtomicBool::new(false));
    let (counted, seen) = (runs.clone(), cancelled.clone());
    let mut builder = AgentBuilder::new("work", move || Worker {
        runs: counted.clone(),
        cancelled: seen.clone(),
    })
    .workers(workers)
    .max_pending(max_pending);
    if let Some(policy) = timeouts {
        builder = builder.timeout_policy("work", policy);
    }
    let agent = builder.spawn().await.unwrap();
    let ingress = cluster::serve(agent.clone(), scope, "node-test")
        .await
        .unwrap();
    Served {
        agent,
        ingress,
        runs,
        cancelled,
    }
}

async fn send(ingress: &ActorRef<IngressMsg>, frame: Frame) -> Answer<String, WorkError> {
    match ingress
        .call(
            |port| IngressMsg::Call(frame, port),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap()
    {
        CallResult::Success(reply) => reply.decode(FrameKind::Answer).unwrap(),
        other => panic!("the ingress must answer every call, got {other:?}"),
    }
}

fn envelope(work: Work, deadline: Duration) -> TaskEnvelope<Work> {
    TaskEnvelope::new(work).with_deadline(deadline)
}

fn call(work: Work, deadline: Duration) -> Frame {
    Frame::encode(FrameKind::Call, &RemoteCall::new(envelope(work, deadline))).unwrap()
}

fn tagged(envelope: TaskEnvelope<Work>, tag: CallTag) -> Frame {
    Frame::encode(FrameKind::Call, &RemoteCall::new(envelope).with_tag(tag)).unwrap()
}

fn cancel(ingress: &ActorRef<IngressMsg>, tag: CallTag) {
    let frame = Frame::encode(FrameKind::Cancel, &tag).unwrap();
    ingress.cast(IngressMsg::Cancel(frame)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancel_naming_the_call_stops_the_attempt_there() {
    let s = served("ingress-cancel", 2, 8).await;
    let tag = CallTag { caller: 9, seq: 1 };
    let started = tokio::time::Instant::now();
    let ingress = s.ingress.clone();
    let answer = tokio::spawn(async move {
        let frame = tagged(envelope(Work::UntilCancelled, Duration::from_secs(10)), tag);
        send(&ingress, frame).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another caller's tag, and another attempt's: nothing stops.
    cancel(&s.ingress, CallTag { caller: 8, seq: 1 });
    cancel(&s.ingress, CallTag { caller: 9, seq: 2 });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!answer.is_finished(), "only its own tag cancels it");
    assert!(!s.cancelled.load(Ordering::SeqCst));
    cancel(&s.ingress, tag);
    let answer = answer.await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer, Answer::Unavailable, "cancelled there");
    assert!(
        s.cancelled.load(Ordering::SeqCst),
        "the agent saw its signal"
    );
    assert!(
        took < Duration::from_millis(300),
        "not its deadline: {took:?}"
    );
    // A cancel for a call that already ended changes nothing; the ingress still serves.
    cancel(&s.ingress, tag);
    assert_eq!(
        send(
            &s.ingress,
            call(Work::Echo("on".into()), Duration::from_secs(1))
        )
        .await,
        Answer::Ok("on".into())
    );
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_operation_and_breaker_key_reach_the_serving_agent() {
    let s = served("ingress-context", 1, 8).await;
    let env = envelope(Work::Context, Duration::from_secs(1))
        .with_operation("summarise")
        .with_breaker_key("gpt-4o");
    let answer = send(&s.ingress, tagged(env, CallTag { caller: 1, seq: 1 })).await;
    assert_eq!(answer, Answer::Ok("summarise/gpt-4o".into()));
    let bare = send(&s.ingress, call(Work::Context, Duration::from_secs(1))).await;
    assert_eq!(bare, Answer::Ok("-/-".into()));
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_operations_own_timeout_applies_on_the_serving_node() {
    let policy = TimeoutPolicy::PerOperation(
        OperationTimeouts::new(Duration::from_secs(30))
            .with_operation("quick", Duration::from_millis(50)),
    );
    let s = served_with("ingress-operation", 1, 8, Some(policy)).await;
    let env = envelope(Work::Sleep(Duration::from_secs(10)), Duration::from_secs(5))
        .with_operation("quick");
    let started = tokio::time::Instant::now();
    let answer = send(&s.ingress, tagged(env, CallTag { caller: 1, seq: 1 })).await;
    assert_eq!(
        answer,
        Answer::TimedOut {
            after: Duration::from_millis(50)
        }
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_version_1_call_is_still_served_and_answered_in_version_1() {
    let s = served("ingress-v1", 1, 8).await;
    // A version-1 caller's frame: the bare envelope. Answers are written at version 1, so
    // one is the same bytes with the kind changed.
    let env = envelope(Work::Echo("old".into()), Duration::from_secs(1));
    let mut bytes = Frame::encode(FrameKind::Answer, &env)
        .unwrap()
        .as_bytes()
        .to_vec();
    assert_eq!(bytes[0], 1);
    bytes[1] = FrameKind::Call as u8;
    let reply = s
        .ingress
        .call(
            |port| IngressMsg::Call(Frame::from_vec(bytes), port),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.version(), Some(1), "an older caller reads the answer");
    assert_eq!(
        reply.decode::<Answer<String, WorkError>>(FrameKind::Answer),
        Ok(Answer::Ok("old".into()))
    );
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_call_frame_runs_the_task_and_answers_its_output() {
    let s = served("ingress-ok", 2, 8).await;
    let answer = send(
        &s.ingress,
        call(Work::Echo("hi".into()), Duration::from_secs(1)),
    )
    .await;
    assert_eq!(answer, Answer::Ok("hi".into()));
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_failing_task_runs_once_because_the_caller_retries() {
    let s = served("ingress-once", 2, 8).await;
    let answer = send(&s.ingress, call(Work::Fail, Duration::from_secs(5))).await;
    assert_eq!(answer, Answer::Agent(WorkError("always".into())));
    assert_eq!(
        s.runs.load(Ordering::SeqCst),
        1,
        "retried_upstream: one attempt here"
    );
    assert_eq!(s.agent.stats().retries, 0);
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_deadline_the_caller_had_left_bounds_the_attempt() {
    let s = served("ingress-deadline", 2, 8).await;
    let started = tokio::time::Instant::now();
    let answer = send(
        &s.ingress,
        call(
            Work::Sleep(Duration::from_secs(30)),
            Duration::from_millis(200),
        ),
    )
    .await;
    assert!(matches!(answer, Answer::TimedOut { .. }), "{answer:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(300),
        "{took:?}"
    );
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_full_agent_answers_overloaded_at_once() {
    let s = served("ingress-full", 1, 1).await;
    let busy = s.ingress.clone();
    let first = tokio::spawn(async move {
        send(
            &busy,
            call(Work::Sleep(Duration::from_secs(1)), Duration::from_secs(5)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let answer = send(
        &s.ingress,
        call(Work::Echo("x".into()), Duration::from_secs(5)),
    )
    .await;
    assert_eq!(answer, Answer::Overloaded);
    assert_eq!(first.await.unwrap(), Answer::Ok("slept".into()));
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn bad_frames_are_answered_bad_request_never_dropped() {
    let s = served("ingress-bad", 2, 8).await;
    let good = call(Work::Echo("hi".into()), Duration::from_secs(1));
    let mut wrong_version = good.as_bytes().to_vec();
    wrong_version[0] = FRAME_VERSION + 1;
    let truncated = good.as_bytes()[..good.len() - 3].to_vec();
    type Expected = fn(&FrameError) -> bool;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (vec![], |e| matches!(e, FrameError::Truncated { len: 0 })),
        (wrong_version, |e| matches!(e, FrameError::Version { .. })),
        (truncated, |e| matches!(e, FrameError::Body(_))),
        (vec![FRAME_VERSION, FrameKind::Answer as u8, 0], |e| {
            matches!(e, FrameError::Kind { .. })
        }),
        (
            vec![FRAME_VERSION, FrameKind::Call as u8, 0xde, 0xad, 0xbe, 0xef],
            |e| matches!(e, FrameError::Body(_)),
        ),
    ];
    for (bytes, expected) in cases {
        match send(&s.ingress, Frame::from_vec(bytes.clone())).await {
            Answer::BadRequest(e) => assert!(expected(&e), "{bytes:?}: {e:?}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    assert_eq!(s.runs.load(Ordering::SeqCst), 0, "nothing ran");
    // Still serving.
    assert_eq!(send(&s.ingress, good).await, Answer::Ok("hi".into()));
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_probe_answers_the_node_name() {
    let s = served("ingress-ping", 1, 1).await;
    let pong = s
        .ingress
        .call(IngressMsg::Ping, Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.decode::<String>(FrameKind::Pong).unwrap(), "node-test");
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn the_ingress_is_in_its_agents_group_until_it_stops() {
    let s = served("ingress-group", 1, 1).await;
    let group = cluster::group_name("work");
    let scope = "ingress-group".to_string();
    let members = ractor::pg::get_scoped_members(&scope, &group);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].get_id(), s.ingress.get_id());
    s.ingress.stop(None);
    for _ in 0..100 {
        if ractor::pg::get_scoped_members(&scope, &group).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(ractor::pg::get_scoped_members(&scope, &group).is_empty());
    // The agent itself keeps running.
    assert_eq!(
        s.agent.call(Work::Echo("still".into())).await.unwrap(),
        "still"
    );
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_call_is_handed_to_a_worker_without_the_agents_actor_holding_it() {
    let s = served("ingress-direct", 1, 8).await;
    let serving = s.ingress.clone();
    let running = tokio::spawn(async move {
        send(
            &serving,
            call(Work::Sleep(Duration::from_secs(1)), Duration::from_secs(5)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Admitted (it holds a slot of the admission bound) and running on the worker, but not a
    // task of the agent's actor: the ingress submitted it to the dispatcher as `call` does.
    assert_eq!(s.agent.inflight(), 1);
    let status = s.agent.status().await.unwrap();
    assert_eq!((status.tasks, status.idle_workers), (0, 0), "{status:?}");
    assert_eq!(running.await.unwrap(), Answer::Ok("slept".into()));
    assert_eq!(
        s.agent.inflight(),
        0,
        "its slot is released with its answer"
    );
    assert_eq!(s.agent.stats().attempts, 1);
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn a_call_still_queued_at_its_deadline_is_answered_then_and_never_runs() {
    let s = served("ingress-queued-deadline", 1, 8).await;
    let serving = s.ingress.clone();
    let busy = tokio::spawn(async move {
        send(
            &serving,
            call(Work::Sleep(Duration::from_secs(2)), Duration::from_secs(5)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let answer = send(
        &s.ingress,
        call(Work::Echo("late".into()), Duration::from_millis(200)),
    )
    .await;
    let took = started.elapsed();
    assert!(matches!(answer, Answer::TimedOut { .. }), "{answer:?}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(300),
        "answered at its deadline, not when the worker came free: {took:?}"
    );
    assert_eq!(busy.await.unwrap(), Answer::Ok("slept".into()));
    // The worker that came free skipped the timed-out job.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
    assert_eq!(s.agent.inflight(), 0);
    s.ingress.stop(None);
    s.agent.stop();
}

#[tokio::test(start_paused = true)]
async fn stopping_the_agent_answers_the_running_and_the_queued_call() {
    let s = served("ingress-stop", 1, 8).await;
    let (a, b) = (s.ingress.clone(), s.ingress.clone());
    let running = tokio::spawn(async move {
        send(
            &a,
            call(
                Work::Sleep(Duration::from_secs(30)),
                Duration::from_secs(60),
            ),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let queued = tokio::spawn(async move {
        send(
            &b,
            call(Work::Echo("queued".into()), Duration::from_secs(60)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    s.agent.stop();
    // `send` fails the test if a reply port is dropped unanswered.
    let (running, queued) = (running.await.unwrap(), queued.await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!matches!(running, Answer::Ok(_)), "{running:?}");
    assert_eq!(queued, Answer::Unavailable);
    s.ingress.stop(None);
}
