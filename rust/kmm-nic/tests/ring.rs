//! The MPSC ring on its own: sizes, bulk/burst semantics against a model
//! (proptest), and real-thread exactly-once stress.
#![cfg(not(loom))]

use kmm_nic::{MpscRing, RingError};
use proptest::prelude::*;
use std::collections::VecDeque;

#[test]
fn sizes_must_be_powers_of_two() {
    for bad in [0u64, 1, 3, 6, 100, 1 << 25] {
        assert_eq!(MpscRing::new(bad).unwrap_err(), RingError::BadSize(bad));
    }
    for good in [2u64, 4, 1024, 1 << 24] {
        assert_eq!(MpscRing::new(good).unwrap().size() as u64, good);
    }
}

#[test]
fn bulk_is_all_or_nothing_burst_takes_what_fits() {
    let r = MpscRing::new(8).unwrap();
    assert!(r.enqueue_bulk(&[1, 2, 3, 4, 5]));
    assert_eq!(r.free(), 3);
    assert!(
        !r.enqueue_bulk(&[6, 7, 8, 9]),
        "bulk of 4 into 3 free must fail"
    );
    assert_eq!(r.free(), 3, "a failed bulk reserves nothing");
    assert_eq!(r.enqueue_burst(&[6, 7, 8, 9]), 3);
    assert_eq!(r.free(), 0);
    assert!(!r.enqueue(10));
    assert!(!r.enqueue_bulk(&[]), "an empty bulk is not a success");
    let mut c = r.consumer().unwrap();
    assert!(r.consumer().is_none(), "single consumer");
    let mut out = [0u64; 16];
    assert_eq!(c.fetch(&mut out[..2]), 2);
    assert_eq!(
        r.free(),
        0,
        "fetched but not reclaimed descriptors are not free"
    );
    assert_eq!(c.in_flight(), 2);
    c.reclaim();
    assert_eq!(r.free(), 2);
    assert_eq!(c.dequeue_burst(&mut out), 6);
    assert_eq!(&out[..6], &[3, 4, 5, 6, 7, 8]);
    assert_eq!(c.dequeue(), None);
    drop(c);
    assert!(
        r.consumer().is_some(),
        "the consumer handle is released on drop"
    );
}

#[test]
fn indices_wrap_around_u32() {
    // Many more operations than the ring size exercise the masked indices.
    let r = MpscRing::new(4).unwrap();
    let mut c = r.consumer().unwrap();
    for i in 0..100_000u64 {
        assert!(r.enqueue_bulk(&[i, i + 1]));
        assert_eq!(c.dequeue(), Some(i));
        assert_eq!(c.dequeue(), Some(i + 1));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Bulk(Vec<u64>),
    Burst(Vec<u64>),
    Fetch(usize),
    Reclaim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(any::<u64>(), 0..10).prop_map(Op::Bulk),
        prop::collection::vec(any::<u64>(), 0..10).prop_map(Op::Burst),
        (0usize..10).prop_map(Op::Fetch),
        Just(Op::Reclaim),
    ]
}

proptest! {
    /// Single-threaded, the ring is a bounded FIFO whose slots come back only
    /// when reclaimed.
    #[test]
    fn ring_matches_a_bounded_fifo(shift in 1u32..5, ops in prop::collection::vec(op(), 1..200)) {
        let size = 1usize << shift;
        let r = MpscRing::new(size as u64).unwrap();
        let mut c = r.consumer().unwrap();
        let mut queued: VecDeque<u64> = VecDeque::new();
        let mut fetched = 0usize;
        for o in ops {
            let used = queued.len() + fetched;
            match o {
                Op::Bulk(v) => {
                    let fits = !v.is_empty() && v.len() <= size - used;
                    prop_assert_eq!(r.enqueue_bulk(&v), fits);
                    if fits { queued.extend(v); }
                }
                Op::Burst(v) => {
                    let n = v.len().min(size - used);
                    prop_assert_eq!(r.enqueue_burst(&v), n);
                    queued.extend(&v[..n]);
                }
                Op::Fetch(k) => {
                    let mut out = vec![0; k];
                    let n = c.fetch(&mut out);
                    prop_assert_eq!(n, k.min(queued.len()));
                    for x in &out[..n] {
                        prop_assert_eq!(Some(*x), queued.pop_front());
                    }
                    fetched += n;
                }
                Op::Reclaim => {
                    c.reclaim();
                    fetched = 0;
                }
            }
            prop_assert_eq!(r.free() as usize, size - queued.len() - fetched);
        }
    }
}

/// Real threads: producers x items through a small ring, single and burst
/// enqueues mixed; every item arrives exactly once and in per-producer order.
fn stress(producers: u64, items: u64, ring: u64) {
    let r = MpscRing::new(ring).unwrap();
    std::thread::scope(|s| {
        for p in 0..producers {
            let r = &r;
            s.spawn(move || {
                let mut prod = r.producer();
                let mut i = 0;
                while i < items {
                    let n = ((i % 7) + 1).min(items - i);
                    let batch: Vec<u64> = (i..i + n).map(|k| (p << 40) | k).collect();
                    let done = if i % 2 == 0 {
                        prod.enqueue_burst(&batch) as u64
                    } else if prod.enqueue_bulk(&batch) {
                        n
                    } else {
                        0
                    };
                    if done == 0 {
                        std::thread::yield_now();
                    }
                    i += done;
                }
            });
        }
        let mut c = r.consumer().unwrap();
        let mut next = vec![0u64; producers as usize];
        let mut got = 0;
        let mut buf = [0u64; 16];
        while got < producers * items {
            let n = c.dequeue_burst(&mut buf);
            if n == 0 {
                std::thread::yield_now();
            }
            for &v in &buf[..n] {
                let (p, k) = ((v >> 40) as usize, v & ((1 << 40) - 1));
                assert_eq!(k, next[p], "producer {p}: lost, duplicated or reordered");
                next[p] += 1;
            }
            got += n as u64;
        }
        assert_eq!(c.dequeue(), None);
    });
}

#[test]
fn stress_two_producers_small_ring() {
    stress(2, 500_000, 8);
}

#[test]
fn stress_four_producers() {
    stress(4, 250_000, 64);
}

#[test]
fn single_producer_handle_excludes_others_and_keeps_order() {
    let r = MpscRing::new(4).unwrap();
    let mut sp = r.sp_producer().unwrap();
    assert!(r.sp_producer().is_none(), "two single producers");
    assert_eq!(sp.enqueue_burst(&[1, 2, 3, 4, 5]), 4);
    assert!(!sp.enqueue(6));
    assert!(!sp.enqueue_bulk(&[6]));
    assert_eq!(r.free(), 0);
    let mut c = r.consumer().unwrap();
    let mut out = [0u64; 3];
    assert!(!c.dequeue_bulk(&mut [0u64; 5]), "bulk larger than the ring");
    assert!(c.dequeue_bulk(&mut out));
    assert_eq!(out, [1, 2, 3]);
    assert!(!c.dequeue_bulk(&mut out), "only one left: all or nothing");
    assert!(
        sp.enqueue_bulk(&[6, 7, 8]),
        "wraps around the end of the array"
    );
    assert!(!sp.enqueue(9));
    assert_eq!(c.dequeue_burst(&mut [0u64; 8][..]), 4);
    drop(sp);
    // once free again, the ring may go multi-producer; then never single again
    assert!(r.enqueue(10));
    assert!(r.sp_producer().is_none());
    assert_eq!(c.dequeue(), Some(10));
}

#[test]
#[should_panic(expected = "single producer")]
fn multi_producer_handle_refused_beside_a_single_producer() {
    let r = MpscRing::new(4).unwrap();
    let _sp = r.sp_producer().unwrap();
    let _ = r.producer();
}

#[derive(Debug, Clone)]
enum SpOp {
    One(u64),
    Bulk(Vec<u64>),
    Burst(Vec<u64>),
    Fetch(usize),
    Reclaim,
    Pop(usize),
    PopBulk(usize),
}

fn sp_op() -> impl Strategy<Value = SpOp> {
    prop_oneof![
        any::<u64>().prop_map(SpOp::One),
        prop::collection::vec(any::<u64>(), 0..10).prop_map(SpOp::Bulk),
        prop::collection::vec(any::<u64>(), 0..10).prop_map(SpOp::Burst),
        (0usize..10).prop_map(SpOp::Fetch),
        Just(SpOp::Reclaim),
        (0usize..10).prop_map(SpOp::Pop),
        (0usize..10).prop_map(SpOp::PopBulk),
    ]
}

proptest! {
    /// The single-producer handle and the consumer's burst and bulk pops:
    /// still a bounded FIFO, across the end of the slot array.
    #[test]
    fn sp_ring_matches_a_bounded_fifo(shift in 1u32..5, ops in prop::collection::vec(sp_op(), 1..200)) {
        let size = 1usize << shift;
        let r = MpscRing::new(size as u64).unwrap();
        let mut p = r.sp_producer().unwrap();
        let mut c = r.consumer().unwrap();
        let mut queued: VecDeque<u64> = VecDeque::new();
        let mut fetched = 0usize;
        for o in ops {
            let used = queued.len() + fetched;
            match o {
                SpOp::One(x) => {
                    let fits = used < size;
                    prop_assert_eq!(p.enqueue(x), fits);
                    if fits { queued.push_back(x); }
                }
                SpOp::Bulk(v) => {
                    let fits = !v.is_empty() && v.len() <= size - used;
                    prop_assert_eq!(p.enqueue_bulk(&v), fits);
                    if fits { queued.extend(v); }
                }
                SpOp::Burst(v) => {
                    let n = v.len().min(size - used);
                    prop_assert_eq!(p.enqueue_burst(&v), n);
                    queued.extend(&v[..n]);
                }
                SpOp::Fetch(k) => {
                    let mut out = vec![0; k];
                    let n = c.fetch(&mut out);
                    prop_assert_eq!(n, k.min(queued.len()));
                    for x in &out[..n] {
                        prop_assert_eq!(Some(*x), queued.pop_front());
                    }
                    fetched += n;
                }
                SpOp::Reclaim => {
                    c.reclaim();
                    fetched = 0;
                }
                SpOp::Pop(k) => {
                    // pops up to k, and reclaims whatever was fetched before
                    let mut out = vec![0; k];
                    let n = c.dequeue_burst(&mut out);
                    prop_assert_eq!(n, k.min(queued.len()));
                    for x in &out[..n] {
                        prop_assert_eq!(Some(*x), queued.pop_front());
                    }
                    if n > 0 || fetched > 0 {
                        fetched = 0;
                    }
                }
                SpOp::PopBulk(k) => {
                    let mut out = vec![0; k];
                    let ok = fetched == 0 && k > 0 && k <= size && queued.len() >= k;
                    prop_assert_eq!(c.dequeue_bulk(&mut out), ok);
                    if ok {
                        for x in &out {
                            prop_assert_eq!(Some(*x), queued.pop_front());
                        }
                    }
                }
            }
            prop_assert_eq!(r.free() as usize, size - queued.len() - fetched);
        }
    }
}
