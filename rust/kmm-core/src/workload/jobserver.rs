//! The jobserver schedule of a kernel build (`kmm.workloads.build.BuildSource`):
//! `jobs` slots take the compile units in build order, each starting on the
//! slot that frees first (ties: the lower slot), running its CPU time
//! stretched by the CPUs the build gets then, plus 2 ms of exec and exit,
//! the slot free 1 ms after it ends. In the engine because a 64 GiB load has
//! hundreds of builds of 1,300 units each; the model's description stays in
//! `build.py` and `docs/workloads.md`.

use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// (start, end) of each unit, us. `cpu_us[i]`: unit `i`'s CPU time; the
/// slots first free at `t0`; the build has `share_cpus[k]` CPUs from
/// `share_from[k]` us on (sorted; before the first step, the first value).
pub fn schedule(
    cpu_us: &[f64],
    t0: i64,
    jobs: usize,
    share_from: &[f64],
    share_cpus: &[f64],
) -> Result<(Vec<i64>, Vec<i64>)> {
    if jobs == 0
        || share_from.is_empty()
        || share_from.len() != share_cpus.len()
        || share_from
            .windows(2)
            .any(|w| w[0].is_nan() || w[1].is_nan() || w[0] > w[1])
        || share_cpus.iter().any(|c| c.is_nan() || *c <= 0.0)
        || cpu_us.iter().any(|c| !(c.is_finite() && *c >= 0.0))
    {
        return Err(Error::Config(
            "jobserver: jobs >= 1, sorted share steps of positive CPUs, finite CPU times".into(),
        ));
    }
    let jobs_f = jobs as f64;
    // the last step at or before t (bisect_right on the step times)
    let share = |t: i64| {
        let i = share_from.partition_point(|&s| s <= t as f64);
        share_cpus[i.saturating_sub(1)]
    };
    let mut slots: BinaryHeap<Reverse<(i64, usize)>> =
        (0..jobs).map(|s| Reverse((t0, s))).collect();
    let mut start = Vec::with_capacity(cpu_us.len());
    let mut end = Vec::with_capacity(cpu_us.len());
    for &cpu in cpu_us {
        let Reverse((t, s)) = slots.pop().expect("jobs >= 1");
        let f = share(t) / jobs_f;
        let dur = (cpu / if f < 1.0 { f } else { 1.0 }) as i64 + 2_000;
        start.push(t);
        end.push(t + dur);
        slots.push(Reverse((t + dur + 1_000, s)));
    }
    Ok((start, end))
}
