//! Mel Gorman's 2005 anti-fragmentation allocator (v7, with v8's fallback
//! reserve): three allocation types with their own free lists, maximum-order
//! blocks owned by no type on `free_area_global`, a usemap of the owner of
//! every maximum-order block, and `fallback_allocs`.

use crate::config::MachineConfig;
use crate::mm::machine::Machine;
use crate::mm::mmzone::Zone;
use crate::mm::page::{
    forder, ftype, kind, K_FREE, LT_FALLBACK, LT_GLOBAL, LT_KERNRCLM, LT_NORCLM, LT_USERRCLM,
};
use crate::{MAX_ORDER, NONE};

/// The list types, as pagetypeinfo shows them.
pub(super) const TYPES: &[(usize, &str)] = &[
    (LT_NORCLM, "KernNoRclm"),
    (LT_KERNRCLM, "KernRclm"),
    (LT_USERRCLM, "UserRclm"),
    (LT_FALLBACK, "Fallback"),
    (LT_GLOBAL, "Global"),
];

/// `fallback_allocs`: v7's fallback order per allocation type (Gorman's v7 patch, linux-mm, January 2005).
const FALLBACK_ALLOCS: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM],
    [LT_NORCLM, LT_USERRCLM],
    [LT_NORCLM, LT_KERNRCLM],
];

/// The Fallback lists are shown only when v8's reserve is on.
pub(super) fn shown(cfg: &MachineConfig, lt: usize) -> bool {
    lt != LT_FALLBACK || cfg.fallback_reserve > 0.0
}

/// v7: only UserRclm pages use the per-cpu lists.
#[inline]
pub(super) fn pcp_type(t: usize) -> bool {
    t == LT_USERRCLM
}

const TOP: u32 = (MAX_ORDER - 1) as u32;

impl Machine {
    /// v8's fallback reserve: a fraction of each zone's maximum-order blocks.
    pub(super) fn setup_fallback_reserve(&mut self) {
        let frac = self.cfg.fallback_reserve;
        self.fallback_reserve_blocks = self
            .zones
            .iter()
            .map(|z| ((z.spanned >> (MAX_ORDER - 1)) as f64 * frac).ceil() as u64)
            .collect();
    }

    /// At boot every maximum-order block sits on the global list; smaller
    /// remainders (around reserved pages) are KernNoRclm's.
    pub(super) fn antifrag_boot_type(&mut self, zi: usize, rel: u64, order: u32) -> usize {
        if order == TOP {
            self.zones[zi].block_type[(rel >> self.block_order) as usize] = LT_GLOBAL as u8;
            LT_GLOBAL
        } else {
            LT_NORCLM
        }
    }

    /// `steal_globallist`: move one maximum-order block from `free_area_global`
    /// to type `owner` (marking the usemap) and split `order` off it.
    fn steal_globallist(&mut self, zi: usize, order: u32, owner: usize) -> Option<u32> {
        let g = self.zones[zi].free_area[LT_GLOBAL][MAX_ORDER - 1].head;
        if g == NONE {
            return None;
        }
        self.del_free(zi, g, TOP, LT_GLOBAL);
        let b = self.block_index(zi, g);
        self.zones[zi].block_type[b] = owner as u8;
        self.counters.global_takes += 1;
        self.expand(zi, g, order, TOP, owner);
        Some(g)
    }

    /// `__rmqueue` under anti-fragmentation once the type's own lists have
    /// nothing: a global block while more than the reserve are left, then the
    /// fallbacks.
    pub(super) fn rmqueue_antifrag_fallback(
        &mut self,
        zi: usize,
        order: u32,
        t: usize,
    ) -> Option<u32> {
        let reserve = self.fallback_reserve_blocks[zi];
        let nglobal = self.zones[zi].free_area[LT_GLOBAL][MAX_ORDER - 1].nr as u64;
        if nglobal > reserve {
            return self.steal_globallist(zi, order, t);
        }
        self.fallback_alloc(zi, order, t, reserve)
    }

    /// The fallback path (v8): the reserve's own blocks, then its global blocks,
    /// then the smallest fitting block of the other types in `fallback_allocs`
    /// order; the remainders stay on the other type's lists.
    fn fallback_alloc(&mut self, zi: usize, order: u32, t: usize, reserve: u64) -> Option<u32> {
        self.counters.fallbacks += 1;
        if reserve > 0 {
            if let Some(p) = self.rmqueue_smallest(zi, order, LT_FALLBACK) {
                return Some(p);
            }
            if let Some(p) = self.steal_globallist(zi, order, LT_FALLBACK) {
                return Some(p);
            }
        }
        for &ft in &FALLBACK_ALLOCS[t] {
            if let Some(p) = self.rmqueue_smallest(zi, order, ft) {
                return Some(p);
            }
        }
        None
    }

    /// Active freeing splits a free block at `head` (on list `lt`) for type
    /// `t`: a global block becomes `t`'s, as `steal_globallist` does.
    pub(super) fn antifrag_claim(&mut self, zi: usize, head: u32, lt: usize, t: usize) -> usize {
        if lt != LT_GLOBAL {
            return lt;
        }
        let b = self.block_index(zi, head);
        self.zones[zi].block_type[b] = t as u8;
        t
    }

    /// Free: a block that merged to the maximum order returns to the global
    /// list and no type owns it any more.
    #[inline]
    pub(super) fn antifrag_merged_type(
        &mut self,
        zi: usize,
        rel: u64,
        order: u32,
        lt: usize,
    ) -> usize {
        if order == TOP {
            let b = (rel >> self.block_order) as usize;
            self.zones[zi].block_type[b] = LT_GLOBAL as u8;
            LT_GLOBAL
        } else {
            lt
        }
    }

    /// A free block is on the list its usemap entry names; only maximum-order
    /// blocks are global.
    pub(super) fn antifrag_check_free_block(
        &self,
        z: &Zone,
        pfn: u64,
        order: usize,
        lt: usize,
    ) -> Result<(), String> {
        let bt = z.block_type[((pfn - z.start_pfn) >> self.block_order) as usize] as usize;
        if lt == LT_GLOBAL && order != MAX_ORDER - 1 {
            return Err(format!(
                "free_area_global holds pfn {pfn} of order {order}, not the maximum order"
            ));
        }
        if bt != lt {
            return Err(format!(
                "free block at pfn {pfn} is on type {lt} lists but the usemap says {bt}"
            ));
        }
        Ok(())
    }

    /// A usemap entry says Global only for a block that is whole on the global list.
    pub(super) fn antifrag_check_usemap(&self, z: &Zone) -> Result<(), String> {
        let nb = (z.spanned >> (MAX_ORDER - 1)) as usize;
        for b in 0..nb {
            let h = z.start_pfn + ((b as u64) << (MAX_ORDER - 1));
            let f = self.flags[h as usize];
            let whole_free = kind(f) == K_FREE && forder(f) as usize == MAX_ORDER - 1;
            if (z.block_type[b] as usize == LT_GLOBAL) != (whole_free && ftype(f) == LT_GLOBAL) {
                return Err(format!(
                    "zone {} block {b}: usemap and free_area_global disagree",
                    z.name
                ));
            }
        }
        Ok(())
    }
}
