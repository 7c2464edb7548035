//! Zone watermarks (the kernel's `setup_per_zone_wmarks`,
//! `setup_per_zone_lowmem_reserve` and `zone_watermark_ok`).

use super::machine::Machine;
use super::mmzone::{Zone, ZNONE};
use crate::{PAGE_SHIFT, SWAP_CLUSTER_MAX};

impl Machine {
    /// `setup_per_zone_wmarks` of 2.6.11 (`setup_per_zone_pages_min`):
    /// `min_free_kbytes = sqrt(lowmem_kbytes * 16)` clamped to 128..65536
    /// (or the configured `vm.min_free_kbytes`),
    /// shared among the lowmem zones by size; a highmem zone gets
    /// present/1024 clamped to SWAP_CLUSTER_MAX..128. low = min * 5/4,
    /// high = min * 3/2.
    pub(crate) fn setup_per_zone_wmarks(&mut self) {
        let layout = self.layout;
        let lowmem_pages: u64 = self
            .zones
            .iter()
            .filter(|z| !layout.is_highmem(z.zt))
            .map(|z| z.present)
            .sum();
        let lowmem_kb = lowmem_pages << (PAGE_SHIFT - 10);
        let min_free_kbytes = match self.cfg.min_free_kbytes {
            0 => isqrt(lowmem_kb * 16).clamp(128, 65536),
            k => k,
        };
        let pages_min = min_free_kbytes >> (PAGE_SHIFT - 10);
        for z in self.zones.iter_mut() {
            let min = if layout.is_highmem(z.zt) {
                (z.present / 1024).clamp(SWAP_CLUSTER_MAX, 128)
            } else {
                pages_min * z.present / lowmem_pages.max(1)
            };
            z.pages_min = min;
            z.pages_low = min + min / 4;
            z.pages_high = min + min / 2;
        }
    }

    /// `setup_per_zone_lowmem_reserve`: per node, what each lower zone keeps back
    /// from an allocation that could have used a higher zone: the pages of the
    /// zones between, divided by the layout's `lowmem_reserve_ratio`.
    pub(crate) fn setup_per_zone_lowmem_reserve(&mut self) {
        let layout = self.layout;
        for nid in 0..self.nr_nodes {
            let present = |zt: usize, zs: &[Zone], zi: &[[u16; 3]]| -> u64 {
                let i = zi[nid][zt];
                if i == ZNONE {
                    0
                } else {
                    zs[i as usize].present
                }
            };
            for j in 0..3 {
                let mut acc = present(j, &self.zones, &self.zone_index);
                for idx in (0..j).rev() {
                    let ratio = layout.lowmem_reserve_ratio(idx);
                    let zi = self.zone_index[nid][idx];
                    if zi != ZNONE {
                        self.zones[zi as usize].lowmem_reserve[j] = acc / ratio;
                    }
                    acc += present(idx, &self.zones, &self.zone_index);
                }
            }
        }
    }

    /// `zone_watermark_ok` of 2.6.11 (order-aware, Nick Piggin 2004): whether
    /// zone `zi` keeps more than `mark` (less half for `high`, less a quarter
    /// for `harder`) plus its lowmem_reserve for `classzone` free after an
    /// allocation of `order`, and enough of it at every order below.
    #[inline]
    pub fn zone_watermark_ok(
        &self,
        zi: usize,
        order: u32,
        mark: u64,
        classzone: usize,
        harder: bool,
        high: bool,
    ) -> bool {
        let z = &self.zones[zi];
        let mut min = mark as i64;
        if high {
            min -= min / 2;
        }
        if harder {
            min -= min / 4;
        }
        let mut free = z.free_pages as i64 - (1i64 << order) + 1;
        if free <= min + z.lowmem_reserve[classzone] as i64 {
            return false;
        }
        for o in 0..order as usize {
            free -= (z.nr_free(o) << o) as i64;
            min >>= 1;
            if free <= min {
                return false;
            }
        }
        true
    }
}

/// Integer square root (the kernel's `int_sqrt`).
fn isqrt(x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::isqrt;

    #[test]
    fn isqrt_is_the_floor() {
        for x in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, u32::MAX as u64 * 16] {
            let r = isqrt(x);
            assert!(r * r <= x && (r + 1) * (r + 1) > x, "isqrt({x}) = {r}");
        }
    }
}
