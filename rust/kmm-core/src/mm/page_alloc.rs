//! The allocation and free paths (the kernel's `__alloc_pages`,
//! `get_page_from_freelist`, `__free_pages`), with the argument checks of the
//! public entry points. Reclaim (`mm::vmscan`) is called from here and frees
//! through here, as `page_alloc.c` and `vmscan.c` call each other.

use super::compaction;
use super::machine::Machine;
use super::page::{
    forder, ftype, kind, mkflags, F_OBJ, F_SLAB, K_ALLOC, K_FREE, K_PCP, K_RESERVED, K_TAIL,
};
use super::policy::PolicyKind;
use crate::error::{Error, Result};
use crate::gfp::{self, AllocType};
use crate::page_owner::AllocCtx;
use crate::{MAX_ORDER, NONE};

impl Machine {
    /// Mark `pfn` as the head of an allocated block (`prep_new_page`).
    #[inline]
    pub(crate) fn set_allocated(&mut self, pfn: u32, order: u32, t: usize) {
        self.flags[pfn as usize] = mkflags(K_ALLOC, order, t);
        self.next[pfn as usize] = NONE;
    }

    /// `get_page_from_freelist`: one pass over the zonelist for highest zone
    /// type `hz`, at the low watermark (`use_low`) or the min watermark as
    /// lowered by `__GFP_HIGH` and atomic (no `__GFP_WAIT`) requests.
    #[inline]
    pub(crate) fn get_page_from_freelist(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
    ) -> Option<u32> {
        self.get_page_from_freelist_from(node, hz, order, t, gfp, use_low, 0)
    }

    /// [`Machine::get_page_from_freelist`] when the zones before `start` of
    /// the zonelist have been tried already (by the fast path, under the
    /// same `ALLOC_NOFRAGMENT`).
    #[allow(clippy::too_many_arguments)]
    fn get_page_from_freelist_from(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
        start: usize,
    ) -> Option<u32> {
        let nofragment = self.nofragment;
        let p =
            self.get_page_from_freelist_pass(node, hz, order, t, gfp, use_low, nofragment, start);
        if p.is_none() && nofragment && !self.cfg.defrag_mode {
            // ALLOC_NOFRAGMENT found nothing without fragmenting: retry allowing it
            return self.get_page_fragmenting(node, hz, order, t, gfp, use_low);
        }
        p
    }

    /// A pass over the zonelist without `ALLOC_NOFRAGMENT`.
    #[inline(never)]
    pub(crate) fn get_page_fragmenting(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
    ) -> Option<u32> {
        self.get_page_from_freelist_pass(node, hz, order, t, gfp, use_low, false, 0)
    }

    /// One pass over the zonelist from its `start`th zone; `nofragment` is
    /// `ALLOC_NOFRAGMENT` (only whole pageblocks may change type in a fallback).
    #[allow(clippy::too_many_arguments)]
    fn get_page_from_freelist_pass(
        &mut self,
        node: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
        nofragment: bool,
        start: usize,
    ) -> Option<u32> {
        let n = self.zonelists[node][hz].len();
        for i in start..n {
            let zi = self.zonelists[node][hz][i] as usize;
            if let Some(p) = self.try_zone(zi, hz, order, t, gfp, use_low, nofragment) {
                return Some(p);
            }
        }
        None
    }

    /// One zone of the zonelist walk: the watermark check, then
    /// `buffered_rmqueue`, then kswapd's wakeup check.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn try_zone(
        &mut self,
        zi: usize,
        hz: usize,
        order: u32,
        t: usize,
        gfp: u32,
        use_low: bool,
        nofragment: bool,
    ) -> Option<u32> {
        let wait = gfp & gfp::__GFP_WAIT != 0;
        let harder = !use_low && !wait;
        let high = !use_low && gfp & gfp::__GFP_HIGH != 0;
        let z = &self.zones[zi];
        let mark = if use_low { z.pages_low } else { z.pages_min };
        // the common case (order 0, plenty free) passes without the order-aware walk
        let plenty =
            order == 0 && !harder && !high && z.free_pages > mark + z.lowmem_reserve[hz] + 1;
        if !plenty && !self.watermark_walk(zi, order, mark, hz, harder, high) {
            return None;
        }
        let p = self.buffered_rmqueue(zi, order, t, gfp & gfp::__GFP_COLD != 0, nofragment)?;
        self.set_allocated(p, order, t);
        if gfp & gfp::__GFP_NO_KSWAPD == 0 {
            self.check_kswapd(zi, order);
            if self.cfg.defrag_mode {
                self.defrag_mode_wake(zi);
            }
        }
        Some(p)
    }

    /// [`Machine::zone_watermark_ok`] out of line: the fast path's order-0
    /// check with plenty free does not need its order-aware walk.
    #[inline(never)]
    fn watermark_walk(
        &self,
        zi: usize,
        order: u32,
        mark: u64,
        hz: usize,
        harder: bool,
        high: bool,
    ) -> bool {
        self.zone_watermark_ok(zi, order, mark, hz, harder, high)
    }

    /// The allocator entry for already-validated arguments; records the owner
    /// when page_owner is on.
    #[inline(always)]
    pub(crate) fn alloc_inner(
        &mut self,
        order: u32,
        gfp: u32,
        node: usize,
        ctx: AllocCtx,
    ) -> Option<u32> {
        let p = match self.alloc_fast(order, gfp, node) {
            Some(p) => Some(p),
            None => self.alloc_pages(order, gfp, node),
        };
        if let (Some(pfn), Some(o)) = (p, self.owner.as_mut()) {
            o.on_alloc(pfn, order, gfp, ctx, self.now_ns);
        }
        p
    }

    /// `__alloc_pages` of 2.6.11: the zonelist at the low watermark; then wake
    /// kswapd and retry at min; then, for a request that may sleep, direct
    /// reclaim (retried for small orders while it makes progress) and active
    /// freeing. The first pass at the low watermark is tried first (a
    /// per-cpu hit is [`Machine::alloc_fast`], inline in the caller);
    /// everything after it is [`Machine::alloc_pages_slowpath`].
    #[inline(never)]
    pub(crate) fn alloc_pages(&mut self, order: u32, gfp: u32, node: usize) -> Option<u32> {
        let t = AllocType::from_gfp(gfp) as usize;
        let hz = self.gfp_zone(gfp);
        // the fast path: the first zone of the zonelist, at the low watermark
        if let Some(&zi) = self.zonelists[node][hz].first() {
            let nofragment = self.nofragment;
            if let Some(p) = self.try_zone(zi as usize, hz, order, t, gfp, true, nofragment) {
                self.counters.alloc += 1;
                return Some(p);
            }
        }
        self.alloc_pages_slowpath(order, gfp, node)
    }

    /// `__alloc_pages` once the fast path found nothing in the zonelist's
    /// first zone (the rest of the first pass at the low watermark, then the
    /// kernel's `__alloc_pages_slowpath`).
    #[cold]
    #[inline(never)]
    fn alloc_pages_slowpath(&mut self, order: u32, gfp: u32, node: usize) -> Option<u32> {
        let mut low_start = 1;
        loop {
            let (p, no_progress) = self.alloc_pages_attempt(order, gfp, node, low_start);
            low_start = 0;
            if p.is_some() {
                self.counters.alloc += 1;
                return p;
            }
            // 2.6.11: reclaim made no progress for a request that loops until
            // it succeeds: out_of_memory(), then start again
            let may_not_fail = order <= 3 || gfp & gfp::__GFP_NOFAIL != 0;
            if !(no_progress
                && may_not_fail
                && gfp & gfp::__GFP_FS != 0
                && gfp & gfp::__GFP_NORETRY == 0)
            {
                break;
            }
            if !self.cfg.oom_kill {
                self.counters.oom_fail += 1;
                break;
            }
            if !self.out_of_memory() {
                break;
            }
        }
        self.counters.alloc_fail += 1;
        None
    }

    /// One pass of `__alloc_pages`; also says whether direct reclaim ran and
    /// freed nothing (the OOM condition). The pass at the low watermark
    /// starts at the zonelist's `low_start`th zone (the fast path tried the
    /// ones before).
    fn alloc_pages_attempt(
        &mut self,
        order: u32,
        gfp: u32,
        node: usize,
        low_start: usize,
    ) -> (Option<u32>, bool) {
        let t = AllocType::from_gfp(gfp) as usize;
        let hz = self.gfp_zone(gfp);
        let mut no_progress = false;
        if let Some(p) = self.get_page_from_freelist_from(node, hz, order, t, gfp, true, low_start)
        {
            return (Some(p), false);
        }
        if gfp & gfp::__GFP_NO_KSWAPD == 0 {
            for i in 0..self.zonelists[node][hz].len() {
                let zi = self.zonelists[node][hz][i] as usize;
                self.wakeup_kswapd(zi, order);
            }
        }
        if let Some(p) = self.get_page_from_freelist(node, hz, order, t, gfp, false) {
            return (Some(p), false);
        }
        if gfp & gfp::__GFP_WAIT != 0 {
            // today's slow path: direct compaction before and after direct reclaim
            let compact = self.cfg.compaction && order > 0;
            if compact && compaction::compact_first(order, t, gfp) {
                if let Some(p) = self.alloc_pages_direct_compact(node, hz, order, t, gfp, true) {
                    return (Some(p), false);
                }
            }
            let retry = order <= 3 || gfp & (gfp::__GFP_REPEAT | gfp::__GFP_NOFAIL) != 0;
            for _round in 0..16 {
                let mut got = 0;
                no_progress = false;
                if self.cfg.reclaim {
                    self.counters.allocstall += 1;
                    got = self.try_to_free_pages(node, hz);
                    no_progress = got == 0;
                    if compact {
                        got += self.reclaim_for_compaction(node, hz, order);
                    }
                    if let Some(p) = self.get_page_from_freelist(node, hz, order, t, gfp, false) {
                        return (Some(p), false);
                    }
                } else if !compact {
                    break;
                }
                if compact {
                    if let Some(p) = self.alloc_pages_direct_compact(node, hz, order, t, gfp, false)
                    {
                        return (Some(p), false);
                    }
                }
                if !self.cfg.reclaim || got == 0 || !retry || gfp & gfp::__GFP_NORETRY != 0 {
                    break;
                }
            }
            if self.cfg.defrag_mode {
                // defrag_mode: fragmenting fallback only once reclaim and compaction failed
                if let Some(p) = self.get_page_fragmenting(node, hz, order, t, gfp, false) {
                    return (Some(p), false);
                }
            }
            if self.cfg.active_freeing && order > 0 {
                if let Some(p) = self.active_free(node, hz, order, t) {
                    return (Some(p), false);
                }
            }
        }
        (None, no_progress)
    }

    /// Validate and allocate a block; `Ok(None)` is an ordinary failure.
    #[inline(always)]
    pub fn alloc(&mut self, order: u32, gfp: u32, node: Option<usize>) -> Result<Option<u64>> {
        self.alloc_ctx(order, gfp, node, AllocCtx::default())
    }

    /// [`Machine::alloc`] on behalf of a task and call chain (page_owner).
    /// Inline with the per-cpu fast path, so a caller's constant order and
    /// mask fold into it; everything else is out of line.
    #[inline(always)]
    pub fn alloc_ctx(
        &mut self,
        order: u32,
        gfp: u32,
        node: Option<usize>,
        ctx: AllocCtx,
    ) -> Result<Option<u64>> {
        self.validate_alloc(order, gfp, node)?;
        self.validate_stack(ctx.stack)?;
        Ok(self
            .alloc_inner(order, gfp, node.unwrap_or(0), ctx)
            .map(|p| p as u64))
    }

    /// A stack handle must be known to the depot (0 = none is always fine).
    #[inline]
    pub fn validate_stack(&self, handle: u32) -> Result<()> {
        if handle == 0 {
            return Ok(());
        }
        self.validate_stack_handle(handle)
    }

    #[inline(never)]
    fn validate_stack_handle(&self, handle: u32) -> Result<()> {
        match &self.owner {
            Some(o) if !o.valid_handle(handle) => Err(Error::PageOwner(format!(
                "stack handle {handle:#x} is not in this machine's stack depot"
            ))),
            None if handle != 0 => Err(Error::PageOwner(format!(
                "stack handle {handle:#x} given, but the machine was built without page_owner"
            ))),
            _ => Ok(()),
        }
    }

    /// Check an allocation's order, mask and node against this machine.
    #[inline]
    pub fn validate_alloc(&self, order: u32, gfp: u32, node: Option<usize>) -> Result<()> {
        if (order as usize) < MAX_ORDER && gfp::valid(gfp) && node.is_none_or(|n| n < self.nr_nodes)
        {
            return Ok(());
        }
        self.alloc_args_error(order, gfp, node)
    }

    /// The error [`Machine::validate_alloc`] reports.
    #[cold]
    #[inline(never)]
    fn alloc_args_error(&self, order: u32, gfp: u32, node: Option<usize>) -> Result<()> {
        if order as usize >= MAX_ORDER {
            return Err(Error::Order(format!(
                "order {order} is out of range 0..{}",
                MAX_ORDER - 1
            )));
        }
        gfp::validate(gfp)?;
        if let Some(n) = node {
            if n >= self.nr_nodes {
                return Err(Error::Config(format!(
                    "node {n} does not exist (machine has {} nodes)",
                    self.nr_nodes
                )));
            }
        }
        Ok(())
    }

    /// Free the block headed by `pfn` (validated).
    #[inline(always)]
    pub fn free(&mut self, pfn: u64) -> Result<()> {
        self.free_stack(pfn, 0)
    }

    /// [`Machine::free`] recording the freeing call chain (page_owner).
    #[inline(always)]
    pub fn free_stack(&mut self, pfn: u64, free_stack: u32) -> Result<()> {
        self.validate_stack(free_stack)?;
        let f = self.head_flags(pfn)?;
        if f & (F_OBJ | F_SLAB) != 0 {
            return Err(self.not_freeable(pfn, f));
        }
        self.free_block_flags(pfn as u32, f, false, free_stack);
        self.counters.free += 1;
        Ok(())
    }

    /// Why the allocated head `pfn` (flag word `f`) may not be freed directly.
    #[cold]
    #[inline(never)]
    fn not_freeable(&self, pfn: u64, f: u16) -> Error {
        if f & F_OBJ != 0 {
            Error::Pfn(format!(
                "pfn {pfn} belongs to trace object {}: free it with an OP_FREE in a trace",
                self.next[pfn as usize]
            ))
        } else {
            Error::Pfn(format!(
                "pfn {pfn} is a slab page: it is freed when its last object is (OP_SLAB_FREE)"
            ))
        }
    }

    /// Flags of an allocated head, or the error that explains why `pfn` is not one.
    #[inline]
    pub fn head_flags(&self, pfn: u64) -> Result<u16> {
        if let Some(&f) = self.flags.get(pfn as usize) {
            if kind(f) == K_ALLOC && pfn < self.nr_pages {
                return Ok(f);
            }
        }
        Err(self.not_a_head(pfn))
    }

    /// The error that explains why `pfn` is not an allocated head.
    #[cold]
    #[inline(never)]
    fn not_a_head(&self, pfn: u64) -> Error {
        if pfn >= self.nr_pages {
            return Error::Pfn(format!(
                "pfn {pfn} is out of range (machine has {} pages)",
                self.nr_pages
            ));
        }
        let f = self.flags[pfn as usize];
        match kind(f) {
            K_FREE | K_PCP => Error::DoubleFree(format!("pfn {pfn} is already free (double free)")),
            K_RESERVED => Error::Pfn(format!("pfn {pfn} is reserved at boot and never freed")),
            _ => {
                // a tail page: inside a free block (it was freed and merged), or not a head
                let zi = self.zone_of_pfn(pfn);
                let zs = self.zones[zi].start_pfn;
                for o in 1..MAX_ORDER as u32 {
                    let h = zs + ((pfn - zs) & !((1u64 << o) - 1));
                    let hf = self.flags[h as usize];
                    if kind(hf) == K_FREE && forder(hf) == o {
                        return Error::DoubleFree(format!(
                            "pfn {pfn} is already free, inside the free order-{o} block at pfn {h} (double free)"
                        ));
                    }
                }
                Error::Pfn(format!("pfn {pfn} is not the head of an allocated block"))
            }
        }
    }

    /// `__free_pages` under policy `P`: free an allocated block, order-0
    /// through the per-cpu lists (`free_hot_cold_page`) unless `direct`, else
    /// `free_one_page`.
    #[inline(always)]
    pub(crate) fn free_block_of<P: PolicyKind>(
        &mut self,
        pfn: u32,
        f: u16,
        direct: bool,
        free_stack: u32,
    ) {
        debug_assert_eq!(f, self.flags[pfn as usize]);
        let order = forder(f);
        if let Some(o) = self.owner.as_mut() {
            o.on_free(pfn, order, free_stack, self.now_ns);
        }
        let t = ftype(f);
        let zi = self.zone_of_pfn(pfn as u64);
        if !direct && self.pcp_eligible_in(P::POLICY, order, t) {
            self.free_hot_cold_page(P::POLICY, zi, pfn, t);
            return;
        }
        if order == 0 && self.free_order0_unmerged::<P>(zi, pfn) {
            return;
        }
        self.flags[pfn as usize] = K_TAIL;
        self.free_one_page_of::<P>(zi, pfn, order, None);
    }
}
