//! One thread, one kind of ring operation, `N` descriptors: for instruction
//! counts per descriptor under callgrind (two runs with different `N`, the
//! difference over the difference in `N`, cancels start-up):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   target/release/ring_ops single 1000000
//! ```
//!
//! `what`: `single` (enqueue, dequeue), `sp_single` (the single-producer
//! handle), `burst32` (enqueue_burst, dequeue_burst of 32), `sp_burst32`,
//! `arrayqueue` (crossbeam push, pop).
use crossbeam_queue::ArrayQueue;
use kmm_nic::MpscRing;
use std::hint::black_box;

const CAPACITY: u64 = 1024;
const BURST: usize = 32;

fn burst(n: u64, mut enq: impl FnMut(&[u64]) -> usize, ring: &MpscRing) -> u64 {
    let mut cons = ring.consumer().unwrap();
    let (mut buf, mut out, mut sum) = ([0u64; BURST], [0u64; BURST], 0u64);
    for r in 0..n / BURST as u64 {
        for (k, b) in buf.iter_mut().enumerate() {
            *b = r * BURST as u64 + k as u64;
        }
        assert_eq!(enq(black_box(&buf)), BURST);
        assert_eq!(cons.dequeue_burst(&mut out), BURST);
        sum = out.iter().fold(sum, |a, &v| a.wrapping_add(v));
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, n) = match args.as_slice() {
        [w, n] => (w.as_str(), n.parse::<u64>().expect("N must be a number")),
        _ => {
            eprintln!("usage: ring_ops single|sp_single|burst32|sp_burst32|arrayqueue N");
            std::process::exit(2);
        }
    };
    let ring = MpscRing::new(CAPACITY).unwrap();
    let sum = match what {
        "single" | "sp_single" => {
            let mut cons = ring.consumer().unwrap();
            let mut sum = 0u64;
            if what == "single" {
                let mut prod = ring.producer();
                for i in 0..n {
                    assert!(prod.enqueue(black_box(i)));
                    sum = sum.wrapping_add(cons.dequeue().unwrap());
                }
            } else {
                let mut prod = ring.sp_producer().unwrap();
                for i in 0..n {
                    assert!(prod.enqueue(black_box(i)));
                    sum = sum.wrapping_add(cons.dequeue().unwrap());
                }
            }
            sum
        }
        "burst32" => {
            let mut prod = ring.producer();
            burst(n, |v| prod.enqueue_burst(v), &ring)
        }
        "sp_burst32" => {
            let mut prod = ring.sp_producer().unwrap();
            burst(n, |v| prod.enqueue_burst(v), &ring)
        }
        "arrayqueue" => {
            let q = ArrayQueue::new(CAPACITY as usize);
            let mut sum = 0u64;
            for i in 0..n {
                q.push(black_box(i)).unwrap();
                sum = sum.wrapping_add(q.pop().unwrap());
            }
            sum
        }
        _ => {
            eprintln!("unknown operation {what:?}");
            std::process::exit(2);
        }
    };
    println!("{sum}");
}
