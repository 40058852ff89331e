//! [`LazyQueue`]: a bounded lock-free queue whose slots are allocated by the first push, so an
//! actor that has never been used holds none (the breaker's outcomes, a timeout actor's
//! records).

use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// A bounded MPMC queue of `capacity` slots, allocated on first push.
#[derive(Debug)]
pub(crate) struct LazyQueue<T> {
    slots: OnceLock<ArrayQueue<T>>,
    capacity: usize,
}

impl<T> LazyQueue<T> {
    /// A queue of `capacity` slots (at least 1), none allocated yet.
    pub(crate) fn new(capacity: usize) -> Self {
        LazyQueue {
            slots: OnceLock::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `value`; gives it back when the queue is full.
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        self.slots
            .get_or_init(|| ArrayQueue::new(self.capacity))
            .push(value)
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.slots.get()?.pop()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.get().map_or(0, ArrayQueue::len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_on_first_push_and_stays_bounded() {
        let q = LazyQueue::new(2);
        assert!(q.slots.get().is_none());
        assert_eq!((q.pop(), q.len(), q.is_empty()), (None, 0, true));
        assert_eq!((q.push(1), q.push(2), q.push(3)), (Ok(()), Ok(()), Err(3)));
        assert_eq!((q.len(), q.capacity()), (2, 2));
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), None));
    }
}
