//! Touches of pages by the processes owning them, kept as draws rather than
//! events (`kmm.workloads.events.Touches`): the events are made as they are filed.

use super::Sink;
use crate::error::{Error, Result};

/// The touches of pages by the processes owning them (`kmm.workloads.process`):
/// page `i` is touched `n[i]` times at `t0[i] + trunc(u * (t1[i] - t0[i]))`,
/// one `u` (in `[0, 1)`) each, taken in order from `u`.
#[derive(Clone, Copy, Debug)]
pub struct Touches<'a> {
    pub u: &'a [f64],
    pub n: &'a [i64],
    pub t0: &'a [i64],
    pub t1: &'a [i64],
    pub obj: &'a [u32],
    pub pid: &'a [u32],
    pub kind: u8,
    pub proc_: u8,
}

impl Touches<'_> {
    /// Check the arrays against each other and every touch's time against
    /// the window's horizon `[lo, hi)`, before any event is made.
    pub(super) fn check(&self, lo: i64, hi: i64, nkinds: usize) -> Result<()> {
        if self.kind as usize >= nkinds {
            return Err(Error::Trace(format!(
                "workload event of unknown kind {}",
                self.kind
            )));
        }
        let p = self.n.len();
        if self.t0.len() != p || self.t1.len() != p || self.obj.len() != p || self.pid.len() != p {
            return Err(Error::Trace(
                "touches: n, t0, t1, obj and pid must have one entry per page".into(),
            ));
        }
        let mut total = 0u64;
        for &k in self.n {
            if k < 0 {
                return Err(Error::Trace("touches: a negative count".into()));
            }
            total += k as u64;
        }
        if total != self.u.len() as u64 {
            return Err(Error::Trace(format!(
                "touches: {} draws for {total} touches",
                self.u.len()
            )));
        }
        if !self.u.iter().all(|u| (0.0..=1.0).contains(u)) {
            return Err(Error::Trace("touches: a draw outside [0, 1]".into()));
        }
        for ((&a, &b), &k) in self.t0.iter().zip(self.t1).zip(self.n) {
            if k > 0 && (a < lo || b >= hi || b < a) {
                return Err(Error::Trace(format!(
                    "workload generated touches from {a} us to {b} us, outside the horizon \
                     [{lo}, {hi}) us"
                )));
            }
        }
        Ok(())
    }

    /// Every touch, page by page in draw order (checked first), as page `i`
    /// of [`Touches::pages`].
    pub(super) fn for_each(&self, sink: &mut impl Sink) {
        let mut k = 0usize;
        for i in 0..self.n.len() {
            let (t0, t1) = (self.t0[i], self.t1[i]);
            let n = self.n[i] as usize;
            for &u in &self.u[k..k + n] {
                sink.touch(i as u32, t0 + (u * (t1 - t0) as f64) as i64, self.obj[i]);
            }
            k += n;
        }
    }

    /// The (object id, pid) of every page, in order.
    pub(super) fn pages(&self, out: &mut Vec<[u32; 2]>) {
        out.clear();
        out.extend(self.obj.iter().zip(self.pid).map(|(&o, &p)| [o, p]));
    }
}
