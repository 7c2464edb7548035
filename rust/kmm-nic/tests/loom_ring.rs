//! loom: the lock-free MPSC ring loses, duplicates and reorders nothing.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p kmm-nic --release --test loom_ring`
#![cfg(loom)]

use kmm_nic::MpscRing;
use loom::sync::Arc;
use loom::thread;

/// `loom::model` with a preemption bound of 3 unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (an unbounded search of these models takes far too long).
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 100_000;
    b.check(f);
}

/// Two producers, one consumer, a ring of 2: every descriptor arrives exactly
/// once and each producer's descriptors arrive in the order it sent them,
/// with the ring filling up along the way.
#[test]
fn mpsc_ring_exactly_once_in_order() {
    model(|| {
        let ring = Arc::new(MpscRing::new(2).unwrap());
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut prod = ring.producer();
                    for i in 0..2u64 {
                        while !prod.enqueue((p << 8) | i) {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut cons = ring.consumer().unwrap();
        let mut next = [0u64; 2];
        let mut got = 0;
        while got < 4 {
            match cons.dequeue() {
                Some(d) => {
                    let (p, i) = ((d >> 8) as usize, d & 0xff);
                    assert!(p < 2, "corrupt descriptor {d:#x}");
                    assert_eq!(i, next[p], "producer {p}: lost, duplicated or reordered");
                    next[p] += 1;
                    got += 1;
                }
                None => thread::yield_now(),
            }
        }
        for h in producers {
            h.join().unwrap();
        }
        assert_eq!(cons.dequeue(), None, "a descriptor was duplicated");
        assert_eq!(ring.free(), 2);
    });
}

/// Bulk reservations of two descriptors (one packet) into a ring of 4 while
/// the consumer drains: a packet's descriptors stay contiguous and whole.
#[test]
fn mpsc_ring_bulk_packets_stay_whole() {
    model(|| {
        let ring = Arc::new(MpscRing::new(4).unwrap());
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut prod = ring.producer();
                    let pkt = [(p << 8) | 0x10, (p << 8) | 0x11];
                    while !prod.enqueue_bulk(&pkt) {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let mut cons = ring.consumer().unwrap();
        let mut seen = Vec::new();
        while seen.len() < 4 {
            match cons.dequeue() {
                Some(d) => seen.push(d),
                None => thread::yield_now(),
            }
        }
        for h in producers {
            h.join().unwrap();
        }
        for pair in seen.chunks(2) {
            assert_eq!(pair[0] >> 8, pair[1] >> 8, "packet torn: {seen:x?}");
            assert_eq!((pair[0] & 0xff, pair[1] & 0xff), (0x10, 0x11));
        }
        assert_ne!(seen[0] >> 8, seen[2] >> 8, "a packet was duplicated: {seen:x?}");
    });
}
