//! Aggregate a page_owner dump file (profiling aid):
//! `cargo run --release --example po_agg FILE THREADS [CULL...]`.
use kmm_core::page_owner::{aggregate_file, parse_cull, Filter};
use std::os::unix::fs::FileExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args[2].parse().unwrap();
    let cull = parse_cull(&args[3..]).unwrap();
    let f = std::fs::File::open(&args[1]).unwrap();
    let size = f.metadata().unwrap().len();
    let t = std::time::Instant::now();
    let a = aggregate_file(
        |off, buf| f.read_at(buf, off),
        size,
        threads,
        false,
        cull,
        Filter::default(),
    )
    .unwrap();
    eprintln!(
        "{:?} {:.3}s memory {}",
        a.stats(),
        t.elapsed().as_secs_f64(),
        a.memory()
    );
}
