//! Engine micro-benchmarks for `benches/run.py`: prints one JSON object.
//! Every per-pair figure is the best of several passes of this thread's CPU
//! time (`/proc/thread-self/schedstat`, ns; wall time where there is none),
//! so that a loaded machine's preemption does not count as the engine's time.
//!
//! - `<policy>_alloc_free_order0_ns`: a steady-state order-0 GFP_KERNEL alloc+free
//!   pair on a 1.5 GiB x86_32 machine that is half full (per-cpu lists on, as booted):
//!   every page allocated, then a random half freed. `..._contiguous_ns`: the other
//!   reading of "half full", the lower half allocated in one go, so free memory is a
//!   few large blocks.
//! - `<policy>_alloc_free_mixed_ns`: alloc+free pairs over orders 0..10 (geometric mix)
//!   against a pool of live blocks.
//! - `peer_buddy_system_allocator_order0_ns`: the `buddy_system_allocator` crate's
//!   `FrameAllocator` doing the same order-0 work on the same number of frames, same run,
//!   in both states; `peer_ratio_*` = peer time / kmm vanilla time.
//! - `mobility_compaction_alloc_free_order0_ns`: the mobility order-0 pair on a
//!   machine built with `compaction=True`, where no compaction is needed;
//!   `mobility_compaction_vs_mobility_order0` = its ratio to mobility's.
//! - `compact_pages_migrated_per_s`: one full `compact(-1)` of an 8 GiB x86_64
//!   mobility machine fragmented by movable order-0..2 objects (85% of memory,
//!   1% pinned kernel pages among them, then a random two thirds freed).

use buddy_system_allocator::FrameAllocator;
use kmm_core::{gfp, Layout, Machine, MachineConfig, Policy};
use std::hint::black_box;
use std::time::Instant;

const MEM: u64 = 1536 << 20;

fn machine(policy: Policy) -> Machine {
    machine_c(policy, false)
}

fn machine_c(policy: Policy, compaction: bool) -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, MEM);
    cfg.policy = policy;
    cfg.compaction = compaction;
    Machine::new(cfg).expect("boot")
}

/// Steady state, machine half full: fill every page with order-0 allocations, then
/// free a random half of them, so free memory is scattered as on a machine that has
/// been running (not one huge free block that every pair splits and merges).
fn half_fill(m: &mut Machine, scattered: bool) -> Vec<u64> {
    if !scattered {
        // the other reading of "half full": the lower half allocated in one go
        let target = m.nr_pages / 2;
        let mut held = Vec::with_capacity(target as usize);
        while (held.len() as u64) < target {
            match m
                .alloc(0, gfp::GFP_KERNEL | gfp::__GFP_HIGHMEM, None)
                .unwrap()
            {
                Some(p) => held.push(p),
                None => break,
            }
        }
        return held;
    }
    let mut held = Vec::with_capacity(m.nr_pages as usize);
    while let Some(p) = m
        .alloc(0, gfp::GFP_KERNEL | gfp::__GFP_HIGHMEM, None)
        .unwrap()
    {
        held.push(p);
    }
    shuffle(&mut held, &mut Lcg(7));
    let keep = held.len() / 2;
    for p in held.drain(keep..) {
        m.free(p).unwrap();
    }
    held
}

fn best_of<F: FnMut() -> f64>(reps: usize, mut f: F) -> f64 {
    (0..reps).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// ns per iteration of `f` running `iters` iterations: this thread's CPU
/// time (wall time where the kernel gives no schedstat).
fn ns_per<F: FnOnce()>(iters: u64, f: F) -> f64 {
    let (c0, t) = (thread_cpu_ns(), Instant::now());
    f();
    let cpu = thread_cpu_ns().saturating_sub(c0);
    let ns = if c0 == 0 {
        t.elapsed().as_nanos() as u64
    } else {
        cpu
    };
    ns as f64 / iters.max(1) as f64
}

fn order0_pair(policy: Policy, iters: u64, scattered: bool) -> f64 {
    order0_pair_on(machine(policy), iters, scattered)
}

fn order0_pair_on(mut m: Machine, iters: u64, scattered: bool) -> f64 {
    let _held = half_fill(&mut m, scattered);
    best_of(5, || ns_per(iters, || order0_loop(&mut m, iters)))
}

/// The timed loop of the order-0 figures: `iters` GFP_KERNEL alloc+free pairs.
/// Not inlined, so that a profiler can count it alone
/// (`valgrind --tool=callgrind --toggle-collect='*order0_loop*'`).
#[inline(never)]
fn order0_loop(m: &mut Machine, iters: u64) {
    for _ in 0..iters {
        let p = m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap();
        m.free(black_box(p)).unwrap();
    }
}

/// Fisher-Yates with the benchmark's LCG (deterministic).
fn shuffle<T>(v: &mut [T], rng: &mut Lcg) {
    for i in (1..v.len()).rev() {
        let j = (rng.next() as usize) % (i + 1);
        v.swap(i, j);
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn mixed_pair(policy: Policy, iters: u64) -> f64 {
    let mut m = machine(policy);
    let _held = half_fill(&mut m, true);
    let mut rng = Lcg(42);
    // a pool of live blocks of mixed orders
    let mut pool: Vec<u64> = Vec::new();
    let pick_order = |r: u64| -> u32 { (r.trailing_ones()).min(10) };
    for _ in 0..4096 {
        if let Some(p) = m
            .alloc(pick_order(rng.next()), gfp::GFP_HIGHUSER, None)
            .unwrap()
        {
            pool.push(p);
        }
    }
    best_of(3, || {
        ns_per(iters, || {
            for _ in 0..iters {
                let o = pick_order(rng.next());
                if let Some(p) = m.alloc(o, gfp::GFP_HIGHUSER, None).unwrap() {
                    let i = (rng.next() as usize) % pool.len();
                    let old = std::mem::replace(&mut pool[i], p);
                    m.free(old).unwrap();
                }
            }
        })
    })
}

/// Pages migrated per second by one `compact(-1)` of a fragmented 8 GiB machine.
fn compact_rate() -> f64 {
    use kmm_core::replay::{TraceOp, OP_ALLOC, OP_FREE};
    let mut cfg = MachineConfig::new(Layout::X86_64, 8 << 30);
    cfg.policy = Policy::Mobility;
    let mut m = Machine::new(cfg).expect("boot");
    let mut rng = Lcg(99);
    let target = m.nr_pages * 85 / 100;
    let (mut pages, mut obj, mut ops) = (0u64, 0u32, Vec::new());
    while pages < target {
        if rng.next() % 100 == 0 {
            m.alloc(0, gfp::GFP_KERNEL, None).unwrap();
            pages += 1;
            continue;
        }
        let order = (rng.next() % 3) as u8;
        ops.push(TraceOp {
            op: OP_ALLOC,
            order,
            obj,
            gfp: gfp::GFP_HIGHUSER,
            ..TraceOp::default()
        });
        obj += 1;
        pages += 1 << order;
        if ops.len() == 1 << 16 {
            m.replay_ops(&ops, false).unwrap();
            ops.clear();
        }
    }
    m.replay_ops(&ops, false).unwrap();
    ops.clear();
    for o in 0..obj {
        if rng.next() % 3 != 0 && m.object_block(o).is_some() {
            ops.push(TraceOp {
                op: OP_FREE,
                obj: o,
                ..TraceOp::default()
            });
        }
    }
    m.replay_ops(&ops, false).unwrap();
    let t = Instant::now();
    let moved = m.compact(-1).unwrap();
    let s = t.elapsed().as_secs_f64();
    assert!(moved > 0);
    moved as f64 / s
}

/// `--profile peer ITERS`: the peer's scattered order-0 pair (as
/// [`peer_order0`]), one pass, its CPU time per pair in ns.
fn profile_peer(iters: u64) {
    let frames = (MEM >> 12) as usize;
    let mut fa = FrameAllocator::<32>::new();
    fa.add_frame(0, frames);
    let mut held = Vec::with_capacity(frames);
    while let Some(p) = fa.alloc(1) {
        held.push(p);
    }
    shuffle(&mut held, &mut Lcg(7));
    let keep = held.len() / 2;
    for p in held.drain(keep..) {
        fa.dealloc(p, 1);
    }
    println!("{:.3}", ns_per(iters, || peer_loop(&mut fa, iters)));
}

fn peer_order0(iters: u64, scattered: bool) -> f64 {
    let frames = (MEM >> 12) as usize;
    let mut fa = FrameAllocator::<32>::new();
    fa.add_frame(0, frames);
    if !scattered {
        for _ in 0..frames / 2 {
            fa.alloc(1).unwrap();
        }
        return best_of(5, || ns_per(iters, || peer_loop(&mut fa, iters)));
    }
    // the same steady state: every frame allocated, then a random half freed
    let mut held = Vec::with_capacity(frames);
    while let Some(p) = fa.alloc(1) {
        held.push(p);
    }
    shuffle(&mut held, &mut Lcg(7));
    let keep = held.len() / 2;
    for p in held.drain(keep..) {
        fa.dealloc(p, 1);
    }
    best_of(5, || ns_per(iters, || peer_loop(&mut fa, iters)))
}

/// The peer's timed loop: `iters` order-0 alloc+free pairs.
fn peer_loop(fa: &mut FrameAllocator<32>, iters: u64) {
    for _ in 0..iters {
        let p = fa.alloc(1).unwrap();
        fa.dealloc(black_box(p), 1);
    }
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`; 0
/// where there is none).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `--profile POLICY ITERS`: only the scattered order-0 pair of one policy
/// (`vanilla`, `antifrag`, `mobility`, `mobility_compaction`, or `peer`: the
/// `buddy_system_allocator` crate), one pass of
/// ITERS pairs, for a profiler; prints the pass's CPU time per pair in ns
/// (a figure a loaded machine disturbs less than wall time).
fn profile(args: &[String]) {
    let (name, iters) = match args {
        [name, iters] => (name.as_str(), iters.parse().expect("ITERS: a number")),
        _ => panic!("usage: engine --profile POLICY ITERS"),
    };
    if name == "peer" {
        return profile_peer(iters);
    }
    let (policy, compaction) = match name {
        "mobility_compaction" => (Policy::Mobility, true),
        n => (Policy::parse(n).expect("POLICY"), false),
    };
    let mut m = machine_c(policy, compaction);
    let _held = half_fill(&mut m, true);
    println!("{:.3}", ns_per(iters, || order0_loop(&mut m, iters)));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        return profile(&args[i + 1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let n0: u64 = if quick { 1_000_000 } else { 10_000_000 };
    let nm: u64 = if quick { 200_000 } else { 2_000_000 };
    let mut out: Vec<(String, f64)> = Vec::new();
    for (name, p) in [
        ("vanilla", Policy::Vanilla),
        ("antifrag", Policy::AntiFrag),
        ("mobility", Policy::Mobility),
    ] {
        let prefix = if name == "vanilla" {
            String::new()
        } else {
            format!("{name}_")
        };
        out.push((
            format!("{prefix}alloc_free_order0_ns"),
            order0_pair(p, n0, true),
        ));
        out.push((
            format!("{prefix}alloc_free_order0_contiguous_ns"),
            order0_pair(p, n0, false),
        ));
        out.push((format!("{prefix}alloc_free_mixed_ns"), mixed_pair(p, nm)));
    }
    let mob = out
        .iter()
        .find(|(k, _)| k == "mobility_alloc_free_order0_ns")
        .unwrap()
        .1;
    let mob_c = order0_pair_on(machine_c(Policy::Mobility, true), n0, true);
    out.push(("mobility_compaction_alloc_free_order0_ns".into(), mob_c));
    out.push(("mobility_compaction_vs_mobility_order0".into(), mob_c / mob));
    out.push(("compact_pages_migrated_per_s".into(), compact_rate()));
    let peer = peer_order0(n0, true);
    let peer_c = peer_order0(n0, false);
    let ours = out[0].1;
    let ours_c = out[1].1;
    out.push(("peer_buddy_system_allocator_order0_ns".into(), peer));
    out.push((
        "peer_buddy_system_allocator_order0_contiguous_ns".into(),
        peer_c,
    ));
    out.push(("peer_ratio_order0".into(), peer / ours));
    out.push(("peer_ratio_order0_contiguous".into(), peer_c / ours_c));
    let body: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v:.3}"))
        .collect();
    println!("{{\n{}\n}}", body.join(",\n"));
}
