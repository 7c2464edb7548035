//! Ring throughput: the kmm-nic lock-free MPSC ring against crossbeam's
//! `ArrayQueue` and a `Mutex<VecDeque>`, 2 producers + 1 consumer, same work
//! in the same run; plus the ring's burst-32 API. Then the same operations
//! on one thread (enqueue, then dequeue: no other thread, no cache-line
//! transfers), which is the per-operation cost the two-core figures hide
//! under scheduling on a shared machine. Prints one JSON object.
//!
//! `cargo run --release -q -p kmm-bench --bin ring -- [--quick]`
use crossbeam_queue::ArrayQueue;
use kmm_nic::MpscRing;
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

const PRODUCERS: u64 = 2;
const CAPACITY: usize = 1024;
const BURST: usize = 32;

#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins % 64 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`;
/// 0 where there is none).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A measurement: millions of items per second (wall), and CPU ns per item
/// (all threads, spinning included).
#[derive(Clone, Copy)]
struct Figure {
    mops: f64,
    cpu_ns: f64,
}

/// Run `producer(p)` on PRODUCERS threads and `consumer()` on one.
fn measure(
    items: u64,
    producer: impl Fn(u64) + Sync,
    consumer: impl FnOnce() -> u64 + Send,
) -> Figure {
    let t = Instant::now();
    let (sum, cpu) = std::thread::scope(|s| {
        let prods: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let producer = &producer;
                s.spawn(move || {
                    let c0 = thread_cpu_ns();
                    producer(p);
                    thread_cpu_ns() - c0
                })
            })
            .collect();
        let (sum, mut cpu) = s
            .spawn(move || {
                let c0 = thread_cpu_ns();
                let sum = consumer();
                (sum, thread_cpu_ns() - c0)
            })
            .join()
            .unwrap();
        for h in prods {
            cpu += h.join().unwrap();
        }
        (sum, cpu)
    });
    let dt = t.elapsed().as_secs_f64();
    // every item is p << 40 | i; the consumer sums them: check nothing was lost
    let expect: u64 = (0..PRODUCERS)
        .map(|p| (p << 40) * items + items * (items - 1) / 2)
        .sum();
    assert_eq!(sum, expect, "items lost or duplicated");
    Figure {
        mops: (PRODUCERS * items) as f64 / dt / 1e6,
        cpu_ns: cpu as f64 / (PRODUCERS * items) as f64,
    }
}

fn ring_single(items: u64) -> Figure {
    let ring = MpscRing::new(CAPACITY as u64).unwrap();
    measure(
        items,
        |p| {
            let mut prod = ring.producer();
            for i in 0..items {
                let mut spins = 0;
                while !prod.enqueue((p << 40) | i) {
                    backoff(&mut spins);
                }
            }
        },
        || {
            let mut cons = ring.consumer().unwrap();
            let (mut sum, mut n, mut spins) = (0u64, 0, 0);
            while n < PRODUCERS * items {
                match cons.dequeue() {
                    Some(v) => {
                        sum = sum.wrapping_add(v);
                        n += 1;
                    }
                    None => backoff(&mut spins),
                }
            }
            sum
        },
    )
}

fn ring_burst(items: u64) -> Figure {
    let ring = MpscRing::new(CAPACITY as u64).unwrap();
    measure(
        items,
        |p| {
            let mut prod = ring.producer();
            let mut buf = [0u64; BURST];
            let mut i = 0;
            while i < items {
                let n = (items - i).min(BURST as u64) as usize;
                for (k, b) in buf[..n].iter_mut().enumerate() {
                    *b = (p << 40) | (i + k as u64);
                }
                let mut done = 0;
                let mut spins = 0;
                while done < n {
                    let k = prod.enqueue_burst(&buf[done..n]);
                    if k == 0 {
                        backoff(&mut spins);
                    }
                    done += k;
                }
                i += n as u64;
            }
        },
        || {
            let mut cons = ring.consumer().unwrap();
            let mut buf = [0u64; BURST];
            let (mut sum, mut n, mut spins) = (0u64, 0, 0);
            while n < PRODUCERS * items {
                let k = cons.dequeue_burst(&mut buf);
                if k == 0 {
                    backoff(&mut spins);
                }
                for &v in &buf[..k] {
                    sum = sum.wrapping_add(v);
                }
                n += k as u64;
            }
            sum
        },
    )
}

fn arrayqueue(items: u64) -> Figure {
    let q = ArrayQueue::new(CAPACITY);
    measure(
        items,
        |p| {
            for i in 0..items {
                let mut v = (p << 40) | i;
                let mut spins = 0;
                while let Err(back) = q.push(v) {
                    v = back;
                    backoff(&mut spins);
                }
            }
        },
        || {
            let (mut sum, mut n, mut spins) = (0u64, 0, 0);
            while n < PRODUCERS * items {
                match q.pop() {
                    Some(v) => {
                        sum = sum.wrapping_add(v);
                        n += 1;
                    }
                    None => backoff(&mut spins),
                }
            }
            sum
        },
    )
}

fn mutex_vecdeque(items: u64) -> Figure {
    let q = Mutex::new(VecDeque::with_capacity(CAPACITY));
    measure(
        items,
        |p| {
            for i in 0..items {
                let mut spins = 0;
                loop {
                    let mut g = q.lock().unwrap();
                    if g.len() < CAPACITY {
                        g.push_back((p << 40) | i);
                        break;
                    }
                    drop(g);
                    backoff(&mut spins);
                }
            }
        },
        || {
            let (mut sum, mut n, mut spins) = (0u64, 0, 0);
            while n < PRODUCERS * items {
                let v = q.lock().unwrap().pop_front();
                match v {
                    Some(v) => {
                        sum = sum.wrapping_add(v);
                        n += 1;
                    }
                    None => backoff(&mut spins),
                }
            }
            sum
        },
    )
}

/// One thread: `items` descriptors through the ring one at a time
/// (enqueue, dequeue); ns per item.
fn ring_single_one_core(items: u64) -> f64 {
    let ring = MpscRing::new(CAPACITY as u64).unwrap();
    let mut prod = ring.producer();
    let mut cons = ring.consumer().unwrap();
    let mut sum = 0u64;
    let t = Instant::now();
    for i in 0..items {
        assert!(prod.enqueue(black_box(i)));
        sum = sum.wrapping_add(cons.dequeue().unwrap());
    }
    let dt = t.elapsed().as_nanos() as f64;
    assert_eq!(sum, items * (items - 1) / 2);
    dt / items as f64
}

/// One thread: bursts of 32 (enqueue_burst, dequeue_burst); ns per item.
fn ring_burst_one_core(items: u64) -> f64 {
    let ring = MpscRing::new(CAPACITY as u64).unwrap();
    let mut prod = ring.producer();
    let mut cons = ring.consumer().unwrap();
    let mut buf = [0u64; BURST];
    let mut out = [0u64; BURST];
    let mut sum = 0u64;
    let rounds = items / BURST as u64;
    let t = Instant::now();
    for r in 0..rounds {
        for (k, b) in buf.iter_mut().enumerate() {
            *b = r * BURST as u64 + k as u64;
        }
        assert_eq!(prod.enqueue_burst(black_box(&buf)), BURST);
        assert_eq!(cons.dequeue_burst(&mut out), BURST);
        sum = out.iter().fold(sum, |a, &v| a.wrapping_add(v));
    }
    let dt = t.elapsed().as_nanos() as f64;
    let n = rounds * BURST as u64;
    assert_eq!(sum, n * (n - 1) / 2);
    dt / n as f64
}

/// One thread: ArrayQueue push, pop; ns per item.
fn arrayqueue_one_core(items: u64) -> f64 {
    let q = ArrayQueue::new(CAPACITY);
    let mut sum = 0u64;
    let t = Instant::now();
    for i in 0..items {
        q.push(black_box(i)).unwrap();
        sum = sum.wrapping_add(q.pop().unwrap());
    }
    let dt = t.elapsed().as_nanos() as f64;
    assert_eq!(sum, items * (items - 1) / 2);
    dt / items as f64
}

/// Lowest of `reps` runs.
fn least(reps: usize, f: impl Fn() -> f64) -> f64 {
    (0..reps).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// The better of two figures (highest throughput, lowest CPU per item).
fn better(a: Figure, b: Figure) -> Figure {
    Figure {
        mops: a.mops.max(b.mops),
        cpu_ns: a.cpu_ns.min(b.cpu_ns),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    for a in std::env::args().skip(1) {
        if a != "--quick" {
            eprintln!("usage: ring [--quick]");
            std::process::exit(2);
        }
    }
    let (items, reps) = if quick { (500_000, 2) } else { (4_000_000, 3) };
    // Interleave the contenders so that background load hits them alike.
    let none = Figure {
        mops: 0.0,
        cpu_ns: f64::INFINITY,
    };
    let (mut r, mut a, mut m, mut b) = (none, none, none, none);
    for _ in 0..reps {
        r = better(r, ring_single(items));
        a = better(a, arrayqueue(items));
        m = better(m, mutex_vecdeque(items));
        b = better(b, ring_burst(items));
    }
    let one = items * 4;
    let (mut r1, mut a1, mut b1) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        r1 = r1.min(least(1, || ring_single_one_core(one)));
        a1 = a1.min(least(1, || arrayqueue_one_core(one)));
        b1 = b1.min(least(1, || ring_burst_one_core(one)));
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{{\"ring_mpsc_mops\": {:.3}, \"peer_crossbeam_arrayqueue_mops\": {:.3}, \
         \"peer_mutex_vecdeque_mops\": {:.3}, \"ring_mpsc_burst32_mops\": {:.3}, \
         \"ring_mpsc_cpu_ns\": {:.3}, \"peer_crossbeam_arrayqueue_cpu_ns\": {:.3}, \
         \"peer_mutex_vecdeque_cpu_ns\": {:.3}, \"ring_mpsc_burst32_cpu_ns\": {:.3}, \
         \"ring_one_core_single_ns\": {r1:.3}, \"peer_arrayqueue_one_core_ns\": {a1:.3}, \
         \"ring_one_core_burst32_ns\": {b1:.3}, \
         \"ring_items_per_producer\": {items}, \"ring_producers\": {PRODUCERS}, \
         \"ring_capacity\": {CAPACITY}, \"ring_cpus\": {cores}}}",
        r.mops, a.mops, m.mops, b.mops, r.cpu_ns, a.cpu_ns, m.cpu_ns, b.cpu_ns
    );
}
