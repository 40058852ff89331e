//! The serving side of a remote agent, in one process on tokio's paused clock: the ingress
//! decodes a call frame, runs exactly one attempt with the deadline the caller had left, and
//! answers every call — with the outcome, a refusal, or `BadRequest` for a frame it cannot
//! read (never by dropping the caller's reply port). No node server: the ingress is called
//! locally, as a remote node's session does after decoding the bytes.
#![cfg(feature = "cluster")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use ractor_resilience::agent::{Agent, AgentBuilder, AgentHandle, ErrorClass};
use ractor_resilience::cluster::{
    self, Answer, FRAME_VERSION, Frame, FrameError, FrameKind, IngressMsg, RemoteCall,
};
use ractor_resilience::task::{TaskContext, TaskEnvelope};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("work failed: {0}")]
struct WorkError(String);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Work {
    Echo(String),
    Fail,
    Sleep(Duration),
}

struct Worker {
    runs: Arc<AtomicU32>,
}

impl Agent for Worker {
    type Task = Work;
    type Output = String;
    type Error = WorkError;

    async fn handle(&mut self, task: Work, _ctx: TaskContext) -> Result<String, WorkError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match task {
            Work::Echo(s) => Ok(s),
            Work::Fail => Err(WorkError("always".into())),
            Work::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok("slept".into())
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
}

async fn served(scope: &str, workers: usize, max_pending: usize) -> Served {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let agent = AgentBuilder::new("work", move || Worker {
        runs: counted.clone(),
    })
    .workers(workers)
    .max_pending(max_pending)
    .spawn()
    .await
    .unwrap();
    let ingress = cluster::serve(agent.clone(), scope, "node-test")
        .await
        .unwrap();
    Served {
        agent,
        ingress,
        runs,
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

fn call(work: Work, deadline: Duration) -> Frame {
    let env: RemoteCall<Work> = TaskEnvelope::new(work).with_deadline(deadline);
    Frame::encode(FrameKind::Call, &env).unwrap()
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
