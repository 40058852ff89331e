//! [`ReplyTo`]: where an answer goes — a caller's future waiting on a oneshot channel, or a
//! callback that turns it into a message for an actor (the pattern that keeps `handle()` from
//! awaiting anything: forward the request, and let the answer come back as a message).
//!
//! A reply that is dropped without being sent (its actor crashed mid-request) is not silent: a
//! port's receiver sees the channel close, and a callback is called with `None`.

use std::fmt;

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

    /// Sends the answer. Returns `false` when nobody is listening any more (a caller that gave
    /// up): the answer is dropped, which is the documented fate of late replies.
    pub fn send(mut self, value: T) -> bool {
        match &mut self.0 {
            Inner::Port(tx) => tx.take().is_some_and(|tx| tx.send(value).is_ok()),
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

    /// Completes when a port's receiver is dropped; never, for a callback.
    pub(crate) async fn closed(&mut self) {
        match &mut self.0 {
            Inner::Port(Some(tx)) => tx.closed().await,
            Inner::Port(None) => {}
            Inner::Callback(_) => std::future::pending().await,
        }
    }

    /// Whether the receiving side has gone away (a port whose receiver was dropped).
    pub fn is_closed(&self) -> bool {
        match &self.0 {
            Inner::Port(tx) => tx.as_ref().is_none_or(|tx| tx.is_closed()),
            Inner::Callback(f) => f.is_none(),
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
        }
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
