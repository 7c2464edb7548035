//! Kernel-exact text views: `/proc/buddyinfo` and `/proc/pagetypeinfo`.

use crate::machine::Machine;
use crate::MAX_ORDER;
use std::fmt::Write;

impl Machine {
    /// `/proc/buddyinfo`: `"Node %d, zone %8s "` then `"%6lu "` per order.
    pub fn buddyinfo(&self) -> String {
        let mut s = String::new();
        for z in &self.zones {
            let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.name);
            for o in 0..MAX_ORDER {
                let _ = write!(s, "{:6} ", z.nr_free(o));
            }
            s.push('\n');
        }
        s
    }

    /// `/proc/pagetypeinfo` with this policy's type names. Like the kernel's
    /// seq_file, the whole block (header, free pages, block counts) repeats per node.
    pub fn pagetypeinfo(&self) -> String {
        let mut s = String::new();
        let types = self.type_rows();
        for node in 0..self.nr_nodes {
            let zones: Vec<usize> = (0..self.zones.len())
                .filter(|&zi| self.zones[zi].node == node)
                .collect();
            if zones.is_empty() {
                continue;
            }
            let _ = writeln!(s, "Page block order: {}", self.block_order);
            let _ = writeln!(s, "Pages per block:  {}", 1u64 << self.block_order);
            s.push('\n');
            let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
            for o in 0..MAX_ORDER {
                let _ = write!(s, "{o:6} ");
            }
            s.push('\n');
            for &zi in &zones {
                let z = &self.zones[zi];
                for &(lt, name) in &types {
                    let _ = write!(
                        s,
                        "Node {:4}, zone {:>8}, type {:>12} ",
                        z.node, z.name, name
                    );
                    for o in 0..MAX_ORDER {
                        let n = lt.map_or(0, |lt| z.free_area[lt][o].nr as u64);
                        if n >= 100_000 {
                            let _ = write!(s, ">{:6} ", 100_000);
                        } else {
                            let _ = write!(s, "{n:6} ");
                        }
                    }
                    s.push('\n');
                }
            }
            let _ = write!(s, "\n{:<23}", "Number of blocks type ");
            for &(_, name) in &types {
                let _ = write!(s, "{name:>12} ");
            }
            s.push('\n');
            for &zi in &zones {
                let z = &self.zones[zi];
                let counts = self.block_counts(zi);
                let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.name);
                for i in 0..types.len() {
                    let _ = write!(s, "{:12} ", counts.get(i).copied().unwrap_or(0));
                }
                s.push('\n');
            }
        }
        s
    }

    /// Rows of pagetypeinfo: the policy's list types, plus today's types kmm does not
    /// model (always empty) so the mobility view reads like a current kernel's.
    fn type_rows(&self) -> Vec<(Option<usize>, &'static str)> {
        let mut v: Vec<(Option<usize>, &'static str)> = self
            .list_types()
            .into_iter()
            .map(|(lt, n)| (Some(lt), n))
            .collect();
        if self.policy == crate::Policy::Mobility {
            v.push((None, "HighAtomic"));
            v.push((None, "Isolate"));
        }
        v
    }
}
