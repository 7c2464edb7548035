//! Replay the churn trace of `benches/run.py` (profiling aid):
//! `cargo run --release --example replay_churn [OPS] [REPS] [order0|random|mixed] [LIVE]`
//! (`order0`: every allocation order 0 with GFP_KERNEL, as
//! `replay_vs_pure_python` replays; `random`: order 0 too, but each
//! allocation frees a live object picked at random, so the objects a record
//! names are scattered over the tables instead of in order). Prints the CPU
//! time of validation and of the run separately (`valgrind --tool=callgrind`
//! on it gives each part's instructions).
use kmm_core::gfp::{GFP_HIGHUSER, GFP_KERNEL};
use kmm_core::replay::{TraceOp, OP_ALLOC, OP_FREE};
use kmm_core::{Layout, Machine, MachineConfig};

/// CPU time of this process, in seconds.
fn cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a.get(1).map_or(10_000_000, |s| s.parse().unwrap());
    let reps: usize = a.get(2).map_or(3, |s| s.parse().unwrap());
    let random = a.get(3).is_some_and(|s| s == "random");
    let order0 = random || a.get(3).is_some_and(|s| s == "order0");
    // objects live at once (a fifth argument; 100 000 as `benches/run.py`)
    let live: usize = a.get(4).map_or(100_000, |s| s.parse().unwrap());
    let n_alloc = (n + live) / 2;
    let mut x = 1u64;
    let mut rnd = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut ops = Vec::with_capacity(2 * n_alloc - live);
    let alloc = |i: usize, r1: f64, r2: f64, r3: f64| TraceOp {
        op: OP_ALLOC,
        order: if r1 < 0.9 || order0 {
            0
        } else {
            1 + (r3 * 3.0) as u8
        },
        obj: i as u32,
        gfp: if r2 < 0.5 || order0 {
            GFP_KERNEL
        } else {
            GFP_HIGHUSER
        },
        ..TraceOp::default()
    };
    for i in 0..live {
        ops.push(alloc(i, rnd(), rnd(), rnd()));
    }
    // the live ids, for `random`
    let mut pool: Vec<usize> = (0..live).collect();
    for i in live..n_alloc {
        ops.push(alloc(i, rnd(), rnd(), rnd()));
        let gone = if random {
            let k = (rnd() * live as f64) as usize % live;
            std::mem::replace(&mut pool[k], i)
        } else {
            i - live
        };
        ops.push(TraceOp {
            op: OP_FREE,
            obj: gone as u32,
            ..TraceOp::default()
        });
    }
    let bytes = TraceOp::to_bytes(&ops);
    for _ in 0..reps {
        let mut m = Machine::new(MachineConfig::new(Layout::X86_32, 1536 << 20)).unwrap();
        let t0 = cpu();
        let c = m.check_trace(&bytes, false, &|| false).unwrap().unwrap();
        let t1 = cpu();
        let r = c.run(&|| false);
        let t2 = cpu();
        println!(
            "{} ops: check {:.3} s, run {:.3} s, total {:.1} M ops/s (cpu)",
            r.ops,
            t1 - t0,
            t2 - t1,
            r.ops as f64 / (t2 - t0) / 1e6
        );
    }
}
