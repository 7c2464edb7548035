//! Transparent huge page faults (the kernel's `mm/huge_memory.c`,
//! `do_huge_pmd_anonymous_page`) on x86_64.
//!
//! A trace faults an anonymous 2 MiB region as a THP with an OP_ALLOC of
//! order `HPAGE_PMD_ORDER` (9) whose mask has `__GFP_COMP` and `__GFP_MOVABLE`
//! (`GFP_TRANSHUGE_LIGHT` for today's default `defrag=madvise`,
//! `GFP_TRANSHUGE` to reclaim and compact) at an object id that is a multiple
//! of 512: the region's head. The region's other 4 KiB pages are the objects
//! head+1 .. head+511; the trace allocates them (order 0, `__GFP_COMP` still
//! set) as it touches them. When the THP fault gets its huge page the head
//! holds it and its pages cover the others (they hold nothing, a touch of one
//! touches the head); when it fails the fault falls back to a base page, as
//! the kernel does (`thp_fault_fallback`): the head holds an order-0
//! `GFP_HIGHUSER_MOVABLE` page from then on, and so does each other page the
//! trace touches. `thp_fault_alloc` counts the huge pages faulted.
//!
//! Only x86_64 has THP (`HAVE_ARCH_TRANSPARENT_HUGEPAGE`); on x86_32 such an
//! allocation is an ordinary order-9 one.

use super::machine::Machine;
use super::objects::OBJ_RECLAIMED;
use crate::config::Layout;
use crate::gfp;
use crate::page_owner::AllocCtx;
use crate::NONE;

/// `HPAGE_PMD_ORDER` on x86_64.
pub const HPAGE_PMD_ORDER: u32 = 9;
/// Pages of a PMD-mapped huge page.
const HPAGE_PMD_NR: u32 = 1 << HPAGE_PMD_ORDER;
/// The bits that mark a THP fault's mask (the base-page fallback drops them).
const THP_ONLY: u32 = gfp::__GFP_COMP | gfp::__GFP_NO_KSWAPD;

impl Machine {
    /// Whether an allocation of `order` with `gfp` for object slot `obj` is a
    /// THP fault: x86_64, the PMD order, compound and movable, at a region
    /// head (a trace id that is a multiple of 512). Objects here are slots
    /// (`mm::objects`); the region arithmetic is on their trace ids.
    #[inline]
    pub(crate) fn is_thp_fault(&self, obj: u32, order: u32, gfp_mask: u32) -> bool {
        order == HPAGE_PMD_ORDER
            && self.layout == Layout::X86_64
            && gfp_mask & (gfp::__GFP_COMP | gfp::__GFP_MOVABLE)
                == (gfp::__GFP_COMP | gfp::__GFP_MOVABLE)
            && self.objs.slot_id[obj as usize] % HPAGE_PMD_NR == 0
    }

    /// The slot of the head of `obj`'s region (`obj` a slot, the region found
    /// by its trace id) if `obj` is a THP region's 4 KiB page that
    /// the head's huge page covers now (order 0 `__GFP_COMP` page; the head
    /// still of the PMD order and holding its page, or reclaimed). Only the
    /// engine's view of the head is read: validation runs ahead of the engine
    /// over a whole trace, so `OBJ_LIVE` may already say a later free.
    #[inline]
    pub(crate) fn thp_covering_head(&self, obj: u32, order: u32, gfp_mask: u32) -> Option<u32> {
        if order != 0 || gfp_mask & gfp::__GFP_COMP == 0 || self.layout != Layout::X86_64 {
            return None;
        }
        let id = self.objs.slot_id[obj as usize];
        let head = id & !(HPAGE_PMD_NR - 1);
        if head == id {
            return None;
        }
        let h = self.objs.slot(head)?;
        ((self.objs.pfn[h] != NONE || self.objs.state[h] & OBJ_RECLAIMED != 0)
            && self.objs.order[h] as u32 == HPAGE_PMD_ORDER
            && self.objs.gfp[h] & gfp::__GFP_COMP != 0)
            .then_some(h as u32)
    }

    /// `do_huge_pmd_anonymous_page` for region head `obj`: a huge page with
    /// the THP mask, or else (`VM_FAULT_FALLBACK`) a base page with the
    /// ordinary movable user mask; the object's order and mask follow what it
    /// got. Returns the block's pfn.
    pub(crate) fn thp_fault(
        &mut self,
        obj: u32,
        gfp_mask: u32,
        node: usize,
        ctx: AllocCtx,
    ) -> Option<u32> {
        if let Some(p) = self.alloc_inner(HPAGE_PMD_ORDER, gfp_mask, node, ctx) {
            self.counters.thp_fault_alloc += 1;
            return Some(p);
        }
        self.counters.thp_fault_fallback += 1;
        let base = thp_base_gfp(gfp_mask);
        self.objs.order[obj as usize] = 0;
        self.objs.gfp[obj as usize] = base;
        self.alloc_inner(0, base, node, ctx)
    }

    /// The pfn of `obj`'s 4 KiB page inside its covering head's huge page, if
    /// the head holds one now.
    #[inline]
    pub(crate) fn thp_covered_pfn(&self, head: u32, obj: u32) -> Option<u32> {
        let p = self.objs.pfn[head as usize];
        let off = self.objs.slot_id[obj as usize] - self.objs.slot_id[head as usize];
        (p != NONE).then(|| p + off)
    }
}

/// The mask of a THP fault's base-page fallback and of the region's other
/// pages once it fell back: `GFP_HIGHUSER_MOVABLE` (the THP-only bits gone;
/// a fault may sleep).
#[inline]
pub(crate) fn thp_base_gfp(gfp_mask: u32) -> u32 {
    (gfp_mask & !THP_ONLY) | gfp::__GFP_WAIT
}
