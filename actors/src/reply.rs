//! [`ReplyTo`]: where an answer goes — a caller's future waiting on a oneshot channel, ractor's
//! own RPC port, an actor that gets the answer as one of its own messages
//! ([`ReplyTo::to_actor`]), or a callback (the pattern that keeps `handle()` from awaiting
//! anything: forward the request, and let the answer come back as a message).
//!
//! A reply that is dropped without being sent (its actor crashed mid-request) is not silent: a
//! port's receiver sees the channel close, and a callback is called with `None`.

use std::fmt;

use ractor::{ActorRef, Message, RpcReplyPort};
use tokio::sync::oneshot;

/// The destination of exactly one answer of type `T`.
///
/// ```
/// use ractor_resilience::reply::ReplyTo;
///
/// let (reply, mut rx) = ReplyTo::port();
/// assert!(reply.send(42));
/// assert_eq!(rx.try_recv().unwrap(), 42);
/// ```
pub struct ReplyTo<T>(Inner<T>);

type Callback<T> = Box<dyn FnOnce(Option<T>) + Send>;

enum Inner<T> {
    /// A caller's future awaits the receiving end.
    Port(Option<oneshot::Sender<T>>),
    /// Called once: with `Some(answer)`, or with `None` if the reply is dropped unsent.
    Callback(Option<Callback<T>>),
    /// A ractor RPC port (`call!`, `call_t!`): its caller sees the channel close if the reply is
    /// dropped unsent.
    Rpc(Option<RpcReplyPort<T>>),
}

impl<T> ReplyTo<T> {
    /// A port and the receiver its answer arrives on.
    pub fn port() -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (ReplyTo(Inner::Port(Some(tx))), rx)
    }

    /// A callback, run in the sender's context: keep it short (typically an actor `cast`).
    /// If the reply is dropped unsent (its holder crashed), the callback runs with `None`.
    pub fn callback(f: impl FnOnce(Option<T>) + Send + 'static) -> Self {
        ReplyTo(Inner::Callback(Some(Box::new(f))))
    }

    /// The answer as one of `actor`'s own messages, built by `wrap` (for example
    /// `ReplyTo::to_actor(&myself, MyMsg::Done)`): the actor gets it in its mailbox, and its
    /// `handle()` never awaits. If the reply is dropped unsent, nothing is sent.
    ///
    /// ```
    /// use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// use ractor_resilience::reply::ReplyTo;
    ///
    /// struct Sink;
    /// impl Actor for Sink {
    ///     type Msg = u32;
    ///     type State = tokio::sync::mpsc::UnboundedSender<u32>;
    ///     type Arguments = tokio::sync::mpsc::UnboundedSender<u32>;
    ///     async fn pre_start(&self, _: ActorRef<u32>, tx: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
    ///         Ok(tx)
    ///     }
    ///     async fn handle(&self, _: ActorRef<u32>, n: u32, tx: &mut Self::State) -> Result<(), ActorProcessingErr> {
    ///         let _ = tx.send(n);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let (sink, _) = Actor::spawn(None, Sink, tx).await.unwrap();
    /// assert!(ReplyTo::to_actor(&sink, |n: u32| n + 1).send(41));
    /// assert_eq!(rx.recv().await, Some(42));
    /// sink.stop(None);
    /// # });
    /// ```
    pub fn to_actor<M: Message>(
        actor: &ActorRef<M>,
        wrap: impl FnOnce(T) -> M + Send + 'static,
    ) -> Self
    where
        T: 'static,
    {
        let actor = actor.clone();
        ReplyTo::callback(move |value| {
            if let Some(value) = value {
                let _ = actor.send_message(wrap(value));
            }
        })
    }

    /// Sends the answer. Returns `false` when nobody is listening any more (a caller that gave
    /// up): the answer is dropped, which is the documented fate of late replies.
    pub fn send(mut self, value: T) -> bool {
        match &mut self.0 {
            Inner::Port(tx) => tx.take().is_some_and(|tx| tx.send(value).is_ok()),
            Inner::Rpc(port) => port.take().is_some_and(|port| port.send(value).is_ok()),
            Inner::Callback(f) => match f.take() {
                Some(f) => {
                    f(Some(value));
                    true
                }
                None => false,
            },
        }
    }

    /// Whether this is a port (a caller's future waits on its receiver).
    pub(crate) fn is_port(&self) -> bool {
        matches!(self.0, Inner::Port(_))
    }

    /// Completes when a port's receiver is dropped; never, for a callback or an RPC port.
    pub(crate) async fn closed(&mut self) {
        match &mut self.0 {
            Inner::Port(Some(tx)) => tx.closed().await,
            Inner::Port(None) => {}
            Inner::Callback(_) | Inner::Rpc(_) => std::future::pending().await,
        }
    }

    /// Whether the receiving side has gone away (a port whose receiver was dropped, an RPC
    /// caller that stopped waiting).
    pub fn is_closed(&self) -> bool {
        match &self.0 {
            Inner::Port(tx) => tx.as_ref().is_none_or(|tx| tx.is_closed()),
            Inner::Callback(f) => f.is_none(),
            Inner::Rpc(port) => port.as_ref().is_none_or(RpcReplyPort::is_closed),
        }
    }

    /// Drops the reply without answering and without telling anyone (a callback is not called
    /// with `None`): for a request refused at once, whose refusal is returned instead.
    pub(crate) fn forget(mut self) {
        if let Inner::Callback(f) = &mut self.0 {
            f.take();
        }
    }
}

impl<T> Drop for ReplyTo<T> {
    fn drop(&mut self) {
        if let Inner::Callback(f) = &mut self.0 {
            if let Some(f) = f.take() {
                f(None);
            }
        }
    }
}

impl<T> fmt::Debug for ReplyTo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Port(_) => f.write_str("ReplyTo::Port"),
            Inner::Callback(_) => f.write_str("ReplyTo::Callback"),
            Inner::Rpc(_) => f.write_str("ReplyTo::Rpc"),
        }
    }
}

impl<T> From<RpcReplyPort<T>> for ReplyTo<T> {
    /// Answers a ractor RPC (`call!`, `call_t!`).
    fn from(port: RpcReplyPort<T>) -> Self {
        ReplyTo(Inner::Rpc(Some(port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_dropped_callback_reports_none() {
        let (tx, rx) = mpsc::channel();
        drop(ReplyTo::<u32>::callback(move |v| tx.send(v).unwrap()));
        assert_eq!(rx.recv().unwrap(), None);
    }

    #[test]
    fn a_sent_callback_is_called_once() {
        let (tx, rx) = mpsc::channel();
        assert!(ReplyTo::callback(move |v| tx.send(v).unwrap()).send(7));
        assert_eq!(rx.recv().unwrap(), Some(7));
        assert!(rx.recv().is_err(), "not called again on drop");
    }

    #[test]
    fn a_port_whose_receiver_left_reports_false() {
        let (reply, rx) = ReplyTo::port();
        drop(rx);
        assert!(reply.is_closed());
        assert!(!reply.send(1));
    }
}
