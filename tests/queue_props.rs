//! The CoDel controller against a reference written differently: the queue stands exactly when
//! some run of consecutive looks, all above `target` and with no empty queue in between, spans
//! at least `interval`; it sheds only then, only what waited longer than `target`, and serves
//! newest-first only then (with adaptive LIFO on).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use ractor_resilience_core::queue::{Codel, CodelSettings};

#[derive(Debug, Clone, Copy)]
enum Event {
    /// Time passes, then the oldest item is seen to have waited this long.
    Look { after_ms: u64, waited_ms: u64 },
    /// Time passes, then the queue is found empty.
    Empty { after_ms: u64 },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => (0u64..400, 0u64..600).prop_map(|(after_ms, waited_ms)| Event::Look { after_ms, waited_ms }),
        1 => (0u64..400).prop_map(|after_ms| Event::Empty { after_ms }),
    ]
}

/// The reference: the queue stands iff, since the last empty queue, some look `j` ends a run of
/// looks `i..=j` all above target with `t_j − t_i ≥ interval` (and it stays standing until the
/// queue is empty again).
fn reference(events: &[Event], target: u64, interval: u64) -> bool {
    let mut t = 0u64;
    let mut looks: Vec<(u64, u64)> = Vec::new(); // (time, waited) since the last empty queue
    let mut standing = false;
    for e in events {
        match *e {
            Event::Empty { after_ms } => {
                t += after_ms;
                looks.clear();
                standing = false;
            }
            Event::Look {
                after_ms,
                waited_ms,
            } => {
                t += after_ms;
                looks.push((t, waited_ms));
                // The run of looks above target that ends here.
                let run: Vec<&(u64, u64)> = looks
                    .iter()
                    .rev()
                    .take_while(|(_, w)| *w > target)
                    .collect();
                if let Some(first) = run.last() {
                    if t - first.0 >= interval {
                        standing = true;
                    }
                }
            }
        }
    }
    standing
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_queue_stands_exactly_when_the_reference_says(
        events in prop::collection::vec(event(), 0..60),
        target in 1u64..200,
        extra in 0u64..1500,
        lifo in any::<bool>(),
    ) {
        let interval = target + extra;
        let ms = Duration::from_millis;
        let settings = CodelSettings::new(ms(target), ms(interval)).unwrap().with_adaptive_lifo(lifo);
        let t0 = Instant::now();
        let mut t = 0u64;
        let mut codel = Codel::new(settings);
        for (i, e) in events.iter().enumerate() {
            match *e {
                Event::Empty { after_ms } => {
                    t += after_ms;
                    codel.queue_empty();
                }
                Event::Look { after_ms, waited_ms } => {
                    t += after_ms;
                    codel.observe(ms(waited_ms), t0 + ms(t));
                }
            }
            let standing = reference(&events[..=i], target, interval);
            prop_assert_eq!(codel.congested(), standing, "after {:?}", &events[..=i]);
            // Shedding and LIFO follow from standing, and shedding only what waited too long.
            for waited in [0, target, target + 1, target * 3] {
                prop_assert_eq!(codel.shed(ms(waited)), standing && waited > target);
            }
            prop_assert_eq!(codel.lifo(), standing && lifo);
        }
    }
}
