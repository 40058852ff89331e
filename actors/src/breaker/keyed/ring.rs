//! [`Ring`]: the fast lane of a family's outcome queue — a bounded multi-producer,
//! single-consumer ring of fixed-size records made of atomics only (no `unsafe`), for the
//! common outcome: a held key, admitted from its published snapshot.
//!
//! **Why not the general queue.** A queue slot is written by a caller and read by the actor, on
//! different cores. `crossbeam`'s `ArrayQueue` has each producer *read* the slot's stamp before
//! writing it, a load of a line the actor touched last: one cross-core miss per outcome, on the
//! caller's path (profiled: most of `record`'s time at 100 000 keys). Here a producer checks for
//! room against a cached copy of the consumer's position and only *stores* into the slot, and a
//! record is 32 bytes, two per cache line.
//!
//! **Protocol.** Producers reserve position `p` by a compare-and-swap on `tail` after checking
//! `p < head + capacity` (with `head` cached; refreshed from the consumer's word only when the
//! cache says full), write the record's words, then publish `stamp = p + 1` (release). The
//! consumer reads slot `head`, takes it if its stamp is `head + 1` (acquire), then advances
//! `head` (release). A slot is reused only once `head` has passed it, so a record is never
//! overwritten while it is read; a reserved but unwritten slot makes the consumer stop there
//! until its producer publishes it (and that producer then finds the drain flag cleared and
//! schedules another drain: see [`OutcomeQueue`](super::queue::OutcomeQueue)).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor_resilience_core::breaker::{CallOutcome, KeyId};

/// One fast-lane record: four words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Packed {
    /// The key's slot and incarnation (`KeyId`), `index | tag << 32`.
    pub(super) key: u64,
    /// The snapshot the call was admitted from (`Snapshot::to_bits`).
    pub(super) snapshot: u64,
    /// The duration in nanoseconds (saturated at 2⁶⁰ − 1) and the outcome in the top bits.
    pub(super) rest: u64,
}

/// Durations are kept in the low 60 bits of `rest` (36 years of nanoseconds, saturated).
const DURATION_BITS: u64 = (1 << 60) - 1;

impl Packed {
    pub(super) fn new(id: KeyId, snapshot: u64, outcome: CallOutcome, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let outcome = match outcome {
            CallOutcome::Success => 0,
            CallOutcome::Failure => 1,
            CallOutcome::Ignored => 2,
        };
        Packed {
            key: u64::from(id.index()) | (u64::from(id.tag()) << 32),
            snapshot,
            rest: nanos.min(DURATION_BITS) | (outcome << 60),
        }
    }

    pub(super) fn id(self) -> KeyId {
        KeyId::from_parts(self.key as u32, (self.key >> 32) as u32)
    }

    pub(super) fn outcome(self) -> CallOutcome {
        match self.rest >> 60 {
            0 => CallOutcome::Success,
            1 => CallOutcome::Failure,
            _ => CallOutcome::Ignored,
        }
    }

    pub(super) fn duration(self) -> Duration {
        Duration::from_nanos(self.rest & DURATION_BITS)
    }
}

#[derive(Debug, Default)]
struct Slot {
    stamp: AtomicU64,
    key: AtomicU64,
    snapshot: AtomicU64,
    rest: AtomicU64,
}

/// A line of its own for each position word, so producers and the consumer do not share one.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// The ring (allocated by the first push).
#[derive(Debug)]
pub(super) struct Ring {
    slots: OnceLock<Box<[Slot]>>,
    mask: u64,
    /// Next position to reserve (producers).
    tail: Padded,
    /// Next position to read (the consumer).
    head: Padded,
    /// The producers' copy of `head`, refreshed when it says full.
    head_seen: Padded,
}

impl Ring {
    /// A ring of `capacity` records, rounded up to a power of two (at least 2).
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2).next_power_of_two();
        Ring {
            slots: OnceLock::new(),
            mask: capacity as u64 - 1,
            tail: Padded::default(),
            head: Padded::default(),
            head_seen: Padded::default(),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// Records written and not yet read (approximate while producers write).
    pub(super) fn len(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        tail.saturating_sub(head) as usize
    }

    /// Queues `record`, or gives it back when the ring is full.
    pub(super) fn push(&self, record: Packed) -> Result<(), Packed> {
        let capacity = self.mask + 1;
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        let position = loop {
            if tail.saturating_sub(self.head_seen.0.load(Ordering::Acquire)) >= capacity {
                // Looks full: ask the consumer's word (the only read of its line).
                let head = self.head.0.load(Ordering::Acquire);
                self.head_seen.0.fetch_max(head, Ordering::AcqRel);
                if tail.saturating_sub(head) >= capacity {
                    return Err(record);
                }
            }
            match self.tail.0.compare_exchange_weak(
                tail,
                tail + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break tail,
                Err(now) => tail = now,
            }
        };
        let slots = self
            .slots
            .get_or_init(|| (0..capacity).map(|_| Slot::default()).collect());
        let slot = &slots[(position & self.mask) as usize];
        slot.key.store(record.key, Ordering::Relaxed);
        slot.snapshot.store(record.snapshot, Ordering::Relaxed);
        slot.rest.store(record.rest, Ordering::Relaxed);
        slot.stamp.store(position + 1, Ordering::Release);
        Ok(())
    }

    /// The next record, if it has been written (the single consumer only).
    pub(super) fn pop(&self) -> Option<Packed> {
        let slots = self.slots.get()?;
        let head = self.head.0.load(Ordering::Relaxed);
        let slot = &slots[(head & self.mask) as usize];
        if slot.stamp.load(Ordering::Acquire) != head + 1 {
            return None; // not written yet (or nothing reserved)
        }
        let record = Packed {
            key: slot.key.load(Ordering::Relaxed),
            snapshot: slot.snapshot.load(Ordering::Relaxed),
            rest: slot.rest.load(Ordering::Relaxed),
        };
        self.head.0.store(head + 1, Ordering::Release);
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    fn record(p: u64, i: u64) -> Packed {
        Packed {
            key: p,
            snapshot: i,
            rest: p ^ i ^ 0x5555,
        }
    }

    #[test]
    fn a_packed_record_keeps_its_parts() {
        let id = KeyId::from_parts(7, 3);
        for (outcome, d) in [
            (CallOutcome::Success, Duration::from_micros(1500)),
            (CallOutcome::Failure, Duration::ZERO),
            (CallOutcome::Ignored, Duration::MAX),
        ] {
            let p = Packed::new(id, 0xabc, outcome, d);
            assert_eq!((p.id(), p.snapshot, p.outcome()), (id, 0xabc, outcome));
            assert_eq!(p.duration(), d.min(Duration::from_nanos(DURATION_BITS)));
        }
    }

    #[test]
    fn fifo_bounded_and_reusable() {
        let ring = Ring::new(3);
        assert_eq!(ring.capacity(), 4);
        assert_eq!(ring.pop(), None);
        for lap in 0..3 {
            for i in 0..4 {
                assert_eq!(ring.push(record(lap, i)), Ok(()));
            }
            assert_eq!(ring.push(record(9, 9)), Err(record(9, 9)), "full");
            assert_eq!(ring.len(), 4);
            for i in 0..4 {
                assert_eq!(ring.pop(), Some(record(lap, i)));
            }
            assert_eq!(ring.pop(), None);
        }
    }

    /// Four producers and one consumer on real threads: every record arrives once, whole, and
    /// in its producer's order.
    #[test]
    fn every_record_arrives_once_whole_and_in_order_per_producer() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 50_000;
        let ring = Arc::new(Ring::new(64));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        let mut r = record(p, i);
                        while let Err(back) = ring.push(r) {
                            r = back;
                            std::hint::spin_loop();
                        }
                    }
                })
            })
            .collect();
        let mut next = vec![0; PRODUCERS as usize];
        let mut taken = 0;
        while taken < PRODUCERS * EACH {
            match ring.pop() {
                Some(r) => {
                    assert_eq!(r.rest, r.key ^ r.snapshot ^ 0x5555, "torn record {r:?}");
                    assert_eq!(
                        r.snapshot, next[r.key as usize],
                        "order of producer {}",
                        r.key
                    );
                    next[r.key as usize] += 1;
                    taken += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(ring.pop(), None);
    }
}
