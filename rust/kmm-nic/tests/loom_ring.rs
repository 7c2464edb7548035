//! loom: the lock-free MPSC ring loses, duplicates and reorders nothing.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p kmm-nic --release --test loom_ring`
#![cfg(loom)]

use kmm_nic::MpscRing;
use loom::sync::Arc;
use loom::thread;

mod loom_common;
use loom_common::model;

/// Drain `ring` as the NIC would: spin until at least `first` descriptors
/// arrived (so that blocked producers can finish), join the producers, then
/// take the rest. Returns everything in arrival order.
fn drain(ring: &MpscRing, first: usize, producers: Vec<thread::JoinHandle<()>>) -> Vec<u64> {
    let mut cons = ring.consumer().unwrap();
    let mut seen = Vec::new();
    while seen.len() < first {
        match cons.dequeue() {
            Some(d) => seen.push(d),
            None => thread::yield_now(),
        }
    }
    for h in producers {
        h.join().unwrap();
    }
    while let Some(d) = cons.dequeue() {
        seen.push(d);
    }
    seen
}

/// A ring of 2 already holding one descriptor; two producers each enqueue
/// one more while the consumer drains, so one of them meets a full ring.
/// Every descriptor arrives exactly once, the old one first.
#[test]
fn mpsc_ring_exactly_once_in_order() {
    model(|| {
        let ring = Arc::new(MpscRing::new(2).unwrap());
        assert!(ring.enqueue(0xaa));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut prod = ring.producer();
                    while !prod.enqueue(p) {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let mut seen = drain(&ring, 3, producers);
        assert_eq!(seen.len(), 3, "lost or duplicated: {seen:x?}");
        assert_eq!(seen[0], 0xaa, "reordered: {seen:x?}");
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 0xaa], "lost or duplicated");
        assert_eq!(ring.free(), 2);
    });
}

/// Bulk reservations of two descriptors (one packet each) into a ring of 4
/// holding one: the second packet must wait for room; a packet's descriptors
/// stay contiguous and whole.
#[test]
fn mpsc_ring_bulk_packets_stay_whole() {
    model(|| {
        let ring = Arc::new(MpscRing::new(4).unwrap());
        assert!(ring.enqueue(0xaa));
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
        let seen = drain(&ring, 3, producers);
        assert_eq!(seen.len(), 5, "lost or duplicated: {seen:x?}");
        assert_eq!(seen[0], 0xaa);
        for pair in seen[1..].chunks(2) {
            assert_eq!(pair[0] >> 8, pair[1] >> 8, "packet torn: {seen:x?}");
            assert_eq!((pair[0] & 0xff, pair[1] & 0xff), (0x10, 0x11));
        }
        assert_ne!(
            seen[1] >> 8,
            seen[3] >> 8,
            "a packet was duplicated: {seen:x?}"
        );
    });
}
