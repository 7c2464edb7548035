//! A table like DPDK's `test_ring_perf`: nanoseconds per element for single
//! enqueue/dequeue (`b1`) and bulk sizes 8, 32, 64, 128 and 256 through a
//! ring of 4096, for the kmm-nic ring
//! beside crossbeam's `ArrayQueue` (element by element: it has no bulk API)
//! and a `Mutex<VecDeque>` (one lock per bulk).
//!
//! * `one core`: one thread enqueues a bulk and dequeues it again (DPDK's
//!   single-core test);
//! * `SP/SC two`: one producer thread and one consumer thread;
//! * `MP/SC two`: two producer threads and one consumer thread (three
//!   threads on a 2-core machine).
//!
//! kmm's ring runs `SP/SC` with its single-producer handle (no
//! compare-and-swap) and the other rows with the multi-producer one. Also measures an empty dequeue (DPDK: "should
//! be 2 or 3 cycles"). Prints the table, then one JSON object on the last
//! line (`benches/nic.py` reads it).
//!
//! `cargo run --release -q -p kmm-bench --bin ring_perf -- [--quick]`
use crossbeam_queue::ArrayQueue;
use kmm_nic::{Consumer, MpscRing, Producer, SpProducer};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

const RING: usize = 4096;
const BULKS: [usize; 6] = [1, 8, 32, 64, 128, 256];

/// A queue under test: bulk enqueue (as many as fit) and bulk dequeue.
trait Contender: Sync {
    /// The consumer's handle.
    type Rx<'a>: Send
    where
        Self: 'a;
    /// A producer's handle (`sp`: the only producer).
    type Tx<'a>
    where
        Self: 'a;
    const NAME: &'static str;
    fn new() -> Self;
    fn rx(&self) -> Self::Rx<'_>;
    fn tx(&self, sp: bool) -> Self::Tx<'_>;
    fn enq(tx: &mut Self::Tx<'_>, v: &[u64]) -> usize;
    fn deq(rx: &mut Self::Rx<'_>, out: &mut [u64]) -> usize;
}

/// The kmm ring's two producer handles.
enum RingTx<'a> {
    Mp(Producer<'a>),
    Sp(SpProducer<'a>),
}

impl Contender for MpscRing {
    type Rx<'a> = Consumer<'a>;
    type Tx<'a> = RingTx<'a>;
    const NAME: &'static str = "kmm ring";
    fn new() -> Self {
        MpscRing::new(RING as u64).unwrap()
    }
    fn rx(&self) -> Consumer<'_> {
        self.consumer().unwrap()
    }
    fn tx(&self, sp: bool) -> RingTx<'_> {
        if sp {
            RingTx::Sp(self.sp_producer().unwrap())
        } else {
            RingTx::Mp(self.producer())
        }
    }
    #[inline]
    fn enq(tx: &mut RingTx<'_>, v: &[u64]) -> usize {
        match (tx, v.len()) {
            (RingTx::Mp(p), 1) => p.enqueue(v[0]) as usize,
            (RingTx::Sp(p), 1) => p.enqueue(v[0]) as usize,
            (RingTx::Mp(p), _) => p.enqueue_burst(v),
            (RingTx::Sp(p), _) => p.enqueue_burst(v),
        }
    }
    #[inline]
    fn deq(rx: &mut Consumer<'_>, out: &mut [u64]) -> usize {
        if out.len() == 1 {
            return rx.dequeue().map(|v| out[0] = v).is_some() as usize;
        }
        rx.dequeue_burst(out)
    }
}

impl Contender for ArrayQueue<u64> {
    type Rx<'a> = &'a ArrayQueue<u64>;
    type Tx<'a> = &'a ArrayQueue<u64>;
    const NAME: &'static str = "ArrayQueue";
    fn new() -> Self {
        ArrayQueue::new(RING)
    }
    fn rx(&self) -> &ArrayQueue<u64> {
        self
    }
    fn tx(&self, _sp: bool) -> &ArrayQueue<u64> {
        self
    }
    #[inline]
    fn enq(tx: &mut &ArrayQueue<u64>, v: &[u64]) -> usize {
        v.iter().take_while(|&&x| tx.push(x).is_ok()).count()
    }
    #[inline]
    fn deq(rx: &mut &ArrayQueue<u64>, out: &mut [u64]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match rx.pop() {
                Some(v) => out[n] = v,
                None => break,
            }
            n += 1;
        }
        n
    }
}

struct MutexDeque(Mutex<VecDeque<u64>>);

impl Contender for MutexDeque {
    type Rx<'a> = &'a MutexDeque;
    type Tx<'a> = &'a MutexDeque;
    const NAME: &'static str = "Mutex<VecDeque>";
    fn new() -> Self {
        MutexDeque(Mutex::new(VecDeque::with_capacity(RING)))
    }
    fn rx(&self) -> &MutexDeque {
        self
    }
    fn tx(&self, _sp: bool) -> &MutexDeque {
        self
    }
    #[inline]
    fn enq(tx: &mut &MutexDeque, v: &[u64]) -> usize {
        let mut q = tx.0.lock().unwrap();
        let n = v.len().min(RING - q.len());
        q.extend(&v[..n]);
        n
    }
    #[inline]
    fn deq(rx: &mut &MutexDeque, out: &mut [u64]) -> usize {
        let mut q = rx.0.lock().unwrap();
        let n = out.len().min(q.len());
        for (o, v) in out.iter_mut().zip(q.drain(..n)) {
            *o = v;
        }
        n
    }
}

#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins % 64 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// One thread: enqueue a bulk of `n`, dequeue it; ns per element.
fn one_core<C: Contender>(n: usize, items: u64) -> f64 {
    let q = C::new();
    let mut rx = q.rx();
    let mut tx = q.tx(false);
    let buf: Vec<u64> = (0..n as u64).collect();
    let mut out = vec![0u64; n];
    let rounds = items / n as u64;
    let t = Instant::now();
    for _ in 0..rounds {
        let k = C::enq(&mut tx, &buf);
        assert_eq!(C::deq(&mut rx, &mut out[..k]), k);
        black_box(&out);
    }
    t.elapsed().as_nanos() as f64 / (rounds * n as u64) as f64
}

/// `producers` threads enqueue `items` each in bulks of `n`, one consumer
/// dequeues in bulks of `n`; checks nothing was lost; ns per element.
fn threads<C: Contender>(producers: u64, n: usize, items: u64) -> f64 {
    let q = C::new();
    let t = Instant::now();
    let sum = std::thread::scope(|s| {
        for p in 0..producers {
            let q = &q;
            s.spawn(move || {
                let mut tx = q.tx(producers == 1);
                let mut buf = vec![0u64; n];
                let mut i = 0;
                while i < items {
                    let k = (items - i).min(n as u64) as usize;
                    for (j, b) in buf[..k].iter_mut().enumerate() {
                        *b = (p << 40) | (i + j as u64);
                    }
                    let (mut done, mut spins) = (0, 0);
                    while done < k {
                        let m = C::enq(&mut tx, &buf[done..k]);
                        if m == 0 {
                            backoff(&mut spins);
                        }
                        done += m;
                    }
                    i += k as u64;
                }
            });
        }
        let q = &q;
        s.spawn(move || {
            let mut rx = q.rx();
            let mut out = vec![0u64; n];
            let (mut sum, mut got, mut spins) = (0u64, 0u64, 0);
            while got < producers * items {
                let k = C::deq(&mut rx, &mut out);
                if k == 0 {
                    backoff(&mut spins);
                }
                sum = out[..k].iter().fold(sum, |a, &v| a.wrapping_add(v));
                got += k as u64;
            }
            sum
        })
        .join()
        .unwrap()
    });
    let dt = t.elapsed().as_nanos() as f64;
    let expect: u64 = (0..producers)
        .map(|p| (p << 40) * items + items * (items - 1) / 2)
        .sum();
    assert_eq!(sum, expect, "{}: items lost or duplicated", C::NAME);
    dt / (producers * items) as f64
}

/// Best (lowest) of `reps`.
fn best(reps: usize, f: impl Fn() -> f64) -> f64 {
    (0..reps).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// ns per empty dequeue of the kmm ring.
fn empty_dequeue(calls: u64) -> f64 {
    let q = MpscRing::new(RING as u64).unwrap();
    let mut rx = q.consumer().unwrap();
    let t = Instant::now();
    for _ in 0..calls {
        black_box(rx.dequeue());
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

fn rows<C: Contender>(items: u64, reps: usize, table: &mut String, json: &mut Vec<String>) {
    for (cfg, key) in [
        ("one core", "one"),
        ("SP/SC two", "spsc"),
        ("MP/SC two", "mpsc"),
    ] {
        let mut line = format!("{:<16} {:<10}", C::NAME, cfg);
        for n in BULKS {
            let ns = best(reps, || match key {
                "one" => one_core::<C>(n, items),
                "spsc" => threads::<C>(1, n, items),
                _ => threads::<C>(2, n, items / 2),
            });
            write!(line, " {ns:>7.2}").unwrap();
            let who = match C::NAME {
                "kmm ring" => "ring",
                "ArrayQueue" => "arrayqueue",
                _ => "mutex",
            };
            json.push(format!("\"ring_perf_{who}_{key}_b{n}_ns\": {ns:.3}"));
        }
        table.push_str(&line);
        table.push('\n');
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    for a in std::env::args().skip(1) {
        if a != "--quick" {
            eprintln!("usage: ring_perf [--quick]");
            std::process::exit(2);
        }
    }
    let (items, reps) = if quick { (256_000, 2) } else { (2_048_000, 3) };
    let mut table = format!("{:<16} {:<10}", "ns/element", "threads");
    for n in BULKS {
        write!(table, " {:>7}", format!("b{n}")).unwrap();
    }
    table.push('\n');
    let mut json = Vec::new();
    rows::<MpscRing>(items, reps, &mut table, &mut json);
    rows::<ArrayQueue<u64>>(items, reps, &mut table, &mut json);
    rows::<MutexDeque>(items, reps, &mut table, &mut json);
    let empty = best(reps, || empty_dequeue(items * 4));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    print!("{table}");
    println!("ring of {RING}, {items} elements per cell, best of {reps}, {cores} CPUs; empty dequeue {empty:.2} ns");
    json.push(format!("\"ring_perf_empty_dequeue_ns\": {empty:.3}"));
    json.push(format!("\"ring_perf_cpus\": {cores}"));
    println!("{{{}}}", json.join(", "));
}
