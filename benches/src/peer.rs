//! The peer: what a user would write instead of the supervised stack — tower's retry and
//! timeout layers and a `recloser` circuit breaker around the same bare `call!`.
//!
//! ```text
//!  Retry (3 attempts, exponential backoff 1 s … 30 s, +0–25% jitter: the stack's defaults)
//!   └─ Breaker (recloser defaults: 50% error rate over 100 calls, 30 s open; every Err counts)
//!       └─ Timeout (30 s: the stack's default fixed timeout)
//!           └─ service_fn(|()| call!(bare_worker, Ping))
//! ```
//!
//! The breaker sits outside the timeout so that a timed-out attempt counts as a failure, as it
//! does in the stack.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use ractor::ActorRef;
use recloser::{AnyError, AsyncRecloser, Recloser, RecloserFuture};
use tower::retry::Policy;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::util::rng::HasherRng;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::calls::{BareMsg, Caller};

/// A recloser breaker as a tower middleware.
#[derive(Debug, Clone)]
pub(crate) struct Breaker<S> {
    inner: S,
    recloser: AsyncRecloser,
}

impl<S: Service<()>> Service<()> for Breaker<S> {
    type Response = S::Response;
    type Error = recloser::Error<S::Error>;
    type Future = RecloserFuture<S::Future, AnyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(recloser::Error::Inner)
    }

    fn call(&mut self, req: ()) -> Self::Future {
        self.recloser.call(self.inner.call(req))
    }
}

/// Up to 3 attempts with tower's exponential backoff; never retries a breaker rejection.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    attempts_left: u32,
    backoff: ExponentialBackoff<HasherRng>,
}

impl<E> Policy<(), (), recloser::Error<E>> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut (),
        result: &mut Result<(), recloser::Error<E>>,
    ) -> Option<Self::Future> {
        match result {
            Err(recloser::Error::Inner(_)) if self.attempts_left > 1 => {
                self.attempts_left -= 1;
                Some(self.backoff.next_backoff())
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, _req: &()) -> Option<()> {
        Some(())
    }
}

/// The error of the bare call inside the peer stack.
#[derive(Debug)]
pub(crate) struct CallFailed(String);

impl fmt::Display for CallFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallFailed {}

/// Builds the peer stack around `worker`.
pub(crate) fn peer_service(
    worker: ActorRef<BareMsg>,
) -> impl Service<(), Response = (), Error = recloser::Error<BoxError>, Future: Send>
+ Clone
+ Send
+ 'static {
    let mut maker = ExponentialBackoffMaker::new(
        Duration::from_secs(1),
        Duration::from_secs(30),
        0.25,
        HasherRng::default(),
    )
    .expect("valid backoff");
    let policy = RetryPolicy {
        attempts_left: 3,
        backoff: maker.make_backoff(),
    };
    let recloser = AsyncRecloser::from(Recloser::default());
    ServiceBuilder::new()
        .retry(policy)
        .layer_fn(move |inner| Breaker {
            inner,
            recloser: recloser.clone(),
        })
        .timeout(Duration::from_secs(30))
        .service_fn(move |()| {
            let worker = worker.clone();
            async move {
                ractor::call!(worker, BareMsg::Ping).map_err(|e| CallFailed(e.to_string()))
            }
        })
}

/// A call through the peer stack: must succeed.
#[derive(Debug, Clone)]
pub(crate) struct PeerCaller<S>(pub(crate) S);

impl<S> Caller for PeerCaller<S>
where
    S: Service<(), Response = (), Error = recloser::Error<BoxError>> + Clone + Send + 'static,
    S::Future: Send,
{
    async fn call(&mut self) {
        let svc = match self.0.ready().await {
            Ok(svc) => svc,
            Err(e) => panic!("the peer stack is not ready: {}", describe(&e)),
        };
        if let Err(e) = svc.call(()).await {
            panic!("peer call failed: {}", describe(&e));
        }
    }
}

fn describe(e: &recloser::Error<BoxError>) -> String {
    match e {
        recloser::Error::Inner(e) => e.to_string(),
        recloser::Error::Rejected => "rejected by recloser".into(),
    }
}
