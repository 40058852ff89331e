//! [`LazyQueue`]: a bounded lock-free queue whose slots are allocated late, so an actor that
//! has never been used holds none: by the first push (a timeout actor's records, a keyed
//! family's outcomes), or when its owner decides (a breaker allocates its outcome queue only
//! once outcomes arrive faster than its messages should carry them). The queue itself is boxed:
//! its cache-padded head and tail would otherwise make every owner 128-byte aligned and a few
//! hundred bytes larger, used or not.

use std::sync::OnceLock;

use crossbeam_queue::ArrayQueue;

/// A bounded MPMC queue of `capacity` slots, allocated on first push.
#[derive(Debug)]
pub(crate) struct LazyQueue<T> {
    slots: OnceLock<Box<ArrayQueue<T>>>,
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
        self.allocate().push(value)
    }

    /// Queues `value` if the slots are allocated; gives it back when they are not, or when the
    /// queue is full.
    pub(crate) fn push_if_allocated(&self, value: T) -> Result<(), T> {
        match self.slots.get() {
            Some(queue) => queue.push(value),
            None => Err(value),
        }
    }

    /// Allocates the slots (if not yet done).
    pub(crate) fn allocate(&self) -> &ArrayQueue<T> {
        self.slots
            .get_or_init(|| Box::new(ArrayQueue::new(self.capacity)))
    }

    /// Whether the slots are allocated.
    pub(crate) fn is_allocated(&self) -> bool {
        self.slots.get().is_some()
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.slots.get()?.pop()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.get().map_or(0, |q| q.len())
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

    #[test]
    fn push_if_allocated_waits_for_the_owner_to_allocate() {
        let q = LazyQueue::new(1);
        assert_eq!(q.push_if_allocated(1), Err(1));
        assert!(!q.is_allocated());
        q.allocate();
        assert!(q.is_allocated());
        assert_eq!(
            (q.push_if_allocated(1), q.push_if_allocated(2)),
            (Ok(()), Err(2))
        );
        assert_eq!(q.pop(), Some(1));
    }
}
