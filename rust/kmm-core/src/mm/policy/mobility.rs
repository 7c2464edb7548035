//! Today's grouping pages by mobility (2.6.23 on): a migratetype per
//! pageblock, the `fallbacks[]` table, `__rmqueue_fallback` stealing big, and
//! `steal_suitable_fallback` moving a pageblock's free pages to the requester.

use crate::mm::machine::Machine;
use crate::mm::mmzone::Zone;
use crate::mm::page::{forder, ftype, kind, K_ALLOC, K_FREE, LT_KERNRCLM, LT_NORCLM, LT_USERRCLM};
use crate::MAX_ORDER;

/// The migratetypes, as pagetypeinfo shows them.
pub(super) const TYPES: &[(usize, &str)] = &[
    (LT_NORCLM, "Unmovable"),
    (LT_USERRCLM, "Movable"),
    (LT_KERNRCLM, "Reclaimable"),
];

/// Today's types kmm does not model; pagetypeinfo shows them empty.
pub(super) const UNMODELLED: &[&str] = &["HighAtomic", "Isolate"];

/// `memmap_init` marks every pageblock MOVABLE at boot.
pub(super) const BOOT_TYPE: usize = LT_USERRCLM;

/// `fallbacks[]` (today's `mm/page_alloc.c`), in kmm type numbering.
const FALLBACKS: [[usize; 2]; 3] = [
    [LT_KERNRCLM, LT_USERRCLM], // Unmovable -> Reclaimable, Movable
    [LT_NORCLM, LT_USERRCLM],   // Reclaimable -> Unmovable, Movable
    [LT_KERNRCLM, LT_NORCLM],   // Movable -> Reclaimable, Unmovable
];

/// Only the three migratetypes have free lists.
pub(super) fn check_free_block(pfn: u64, lt: usize) -> Result<(), String> {
    if lt > LT_USERRCLM {
        return Err(format!("mobility free block at pfn {pfn} on list {lt}"));
    }
    Ok(())
}

impl Machine {
    /// `__rmqueue` under grouping by mobility took `p` from type `t`'s own
    /// lists: count it when its pageblock is of another type (then come
    /// [`Machine::rmqueue_fallback`]'s steals when the lists are empty).
    #[inline]
    pub(super) fn mobility_count_mismatch(&mut self, zi: usize, p: u32, t: usize) {
        if self.zones[zi].block_type[self.block_index(zi, p)] as usize != t {
            self.counters.type_mismatch += 1;
        }
    }

    /// Freelist hygiene's invariant: the free block of `order` at `pfn` is on
    /// the list of the type of every pageblock it covers.
    pub(super) fn check_hygiene(
        &self,
        z: &Zone,
        pfn: u64,
        order: usize,
        lt: usize,
    ) -> Result<(), String> {
        let b0 = ((pfn - z.start_pfn) >> self.block_order) as usize;
        let nb = 1usize << (order as u32).saturating_sub(self.block_order);
        match z.block_type[b0..(b0 + nb).min(z.block_type.len())]
            .iter()
            .find(|&&bt| bt as usize != lt)
        {
            Some(bt) => Err(format!(
                "freelist hygiene: free order-{order} block at pfn {pfn} on list {lt}, its pageblock is type {bt}"
            )),
            None => Ok(()),
        }
    }

    /// `__rmqueue_fallback`: take a block of another type from the highest order
    /// down (steal big). Stealing is allowed from half a pageblock up or for a
    /// non-movable requester; a movable request that may not steal takes the
    /// smallest fitting block instead.
    pub(crate) fn rmqueue_fallback(
        &mut self,
        zi: usize,
        order: u32,
        t: usize,
        nofragment: bool,
    ) -> Option<u32> {
        let pb = self.block_order;
        let can_steal = |o: u32| o >= pb || o >= pb / 2 || t != LT_USERRCLM;
        // ALLOC_NOFRAGMENT: only whole pageblocks may change type
        let min_order = if nofragment { order.max(pb) } else { order };
        let mut found: Option<(u32, usize)> = None;
        for o in (min_order..MAX_ORDER as u32).rev() {
            if let Some(ft) = self.find_fallback(zi, o, t) {
                if !can_steal(o) && o > order {
                    found = (order..MAX_ORDER as u32)
                        .find_map(|o2| self.find_fallback(zi, o2, t).map(|ft2| (o2, ft2)));
                } else {
                    found = Some((o, ft));
                }
                break;
            }
        }
        let (o, ft) = found?;
        self.counters.fallbacks += 1;
        let pfn = self.zones[zi].free_area[ft][o as usize].head;
        let mut claimed = o >= pb;
        if o >= pb {
            // a whole pageblock or more changes owner
            self.set_pageblock_types(zi, pfn, o, t);
            self.counters.steals += 1;
            self.counters.pageblock_relabels += 1 << (o - pb);
        } else if can_steal(o) {
            claimed = self.steal_suitable_fallback(zi, pfn, t);
        }
        self.trace_extfrag(pfn, order, o, t, ft);
        if o < pb {
            // a fallback that fragments a pageblock
            self.counters.pageblock_fallback += 1;
            if self.cfg.compaction {
                self.boost_watermark(zi);
            }
        }
        // the found block's remainder goes on the requester's lists; with
        // freelist hygiene only if its pageblock became the requester's
        // (6.10's __rmqueue_fallback takes an unclaimed block's page with
        // __rmqueue_smallest of the fallback type)
        let lt = if self.cfg.freelist_hygiene && !claimed {
            ft
        } else {
            t
        };
        self.del_free(zi, pfn, o, ft);
        self.expand(zi, pfn, order, o, lt);
        Some(pfn)
    }

    /// `trace_mm_page_alloc_extfrag`: count the fallback, and keep it when
    /// the machine keeps them.
    #[inline]
    fn trace_extfrag(&mut self, pfn: u32, order: u32, o: u32, t: usize, ft: usize) {
        self.counters.mm_page_alloc_extfrag += 1;
        if self.extfrag_log.is_some() {
            let zi = self.zone_of_pfn(pfn as u64);
            let now = self.zones[zi].block_type[self.block_index(zi, pfn)] as usize;
            let ev = crate::mm::events::ExtfragEvent {
                ns: self.now_ns,
                pid: self.current_pid,
                pfn,
                alloc_order: order as u8,
                fallback_order: o as u8,
                alloc_type: t as u8,
                fallback_type: ft as u8,
                change_ownership: now == t,
            };
            if let Some(log) = self.extfrag_log.as_mut() {
                log.push(ev);
            }
        }
    }

    /// `find_suitable_fallback`: the first type in `fallbacks[t]` with a free
    /// block of order `o`.
    #[inline]
    fn find_fallback(&self, zi: usize, o: u32, t: usize) -> Option<usize> {
        let nonempty = &self.zones[zi].nonempty;
        FALLBACKS[t]
            .iter()
            .copied()
            .find(|&ft| nonempty[ft] & (1 << o) != 0)
    }

    /// `steal_suitable_fallback`: move every free block of `pfn`'s pageblock to
    /// type `t`'s lists and relabel the pageblock if free + compatible pages are
    /// at least half of it. With freelist hygiene (6.10's `try_to_claim_block`)
    /// the free blocks move only when the pageblock is relabelled. Returns
    /// whether it was.
    fn steal_suitable_fallback(&mut self, zi: usize, pfn: u32, t: usize) -> bool {
        let pb = self.block_order;
        let zs = self.zones[zi].start_pfn;
        let b = self.block_index(zi, pfn);
        let start = zs + ((b as u64) << pb);
        let end = (start + (1u64 << pb)).min(self.zones[zi].end_pfn());
        let mut free = 0u64;
        let mut alike = 0u64;
        let mut p = start;
        while p < end {
            let f = self.flags[p as usize];
            let o = forder(f);
            match kind(f) {
                K_FREE => {
                    free += 1 << o;
                    p += 1 << o;
                }
                K_ALLOC => {
                    if ftype(f) == t {
                        alike += 1 << o;
                    }
                    p += 1 << o;
                }
                _ => p += 1,
            }
        }
        self.counters.steals += 1;
        let claim = free + alike >= 1u64 << (pb.max(1) - 1);
        if claim || !self.cfg.freelist_hygiene {
            self.move_freepages(zi, start, end, pfn, t);
        }
        if claim {
            self.zones[zi].block_type[b] = t as u8;
            self.counters.pageblock_relabels += 1;
        }
        claim
    }

    /// `move_freepages`: every free block in [start, end) but the one at
    /// `skip` onto type `t`'s lists.
    fn move_freepages(&mut self, zi: usize, start: u64, end: u64, skip: u32, t: usize) {
        let mut p = start;
        while p < end {
            let f = self.flags[p as usize];
            let o = forder(f);
            if kind(f) == K_FREE {
                let lt = ftype(f);
                if lt != t && p as u32 != skip {
                    self.del_free(zi, p as u32, o, lt);
                    self.add_free(zi, p as u32, o, t);
                }
                p += 1 << o;
            } else if kind(f) == K_ALLOC {
                p += 1 << o;
            } else {
                p += 1;
            }
        }
    }

    /// Mark the pageblocks of the block of `order` (at least a pageblock) at
    /// `pfn` as type `t` (`set_pageblock_migratetype` over the block).
    fn set_pageblock_types(&mut self, zi: usize, pfn: u32, order: u32, t: usize) {
        let b0 = self.block_index(zi, pfn);
        let nb = 1usize << (order - self.block_order);
        self.zones[zi].block_type[b0..b0 + nb].fill(t as u8);
    }

    /// Active freeing takes a block of `order` at `pfn` for type `t` out of a
    /// free block on list `lt`: a block of at least a pageblock makes its
    /// pageblocks `t`'s; the halves not taken stay on `lt`.
    pub(super) fn mobility_claim(
        &mut self,
        zi: usize,
        pfn: u32,
        order: u32,
        lt: usize,
        t: usize,
    ) -> usize {
        if order >= self.block_order {
            self.set_pageblock_types(zi, pfn, order, t);
        }
        lt
    }

    /// Free: a merged block larger than a pageblock carries one type, the freed
    /// block's.
    #[inline]
    pub(super) fn mobility_merged_type(
        &mut self,
        zi: usize,
        rel: u64,
        order: u32,
        lt: usize,
    ) -> usize {
        if order > self.block_order {
            let b0 = (rel >> self.block_order) as usize;
            let nb = 1usize << (order - self.block_order);
            self.zones[zi].block_type[b0..b0 + nb].fill(lt as u8);
        }
        lt
    }
}
