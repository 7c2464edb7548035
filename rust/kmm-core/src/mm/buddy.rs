//! Buddy mechanics (the core of the kernel's `mm/page_alloc.c`): putting blocks
//! on and off the free lists, `expand`, `__rmqueue_smallest` and the
//! `__free_one_page` merge loop. Which list a block goes on is the policy's
//! business (`mm::policy`).

use super::machine::Machine;
use super::page::{
    forder, ftype, kind, list_add, list_add_unchecked, list_del, mkflags, K_FREE, K_TAIL,
};
use super::policy::PolicyKind;
use crate::{MAX_ORDER, NONE};

impl Machine {
    /// Put the free block of `order` at `pfn` on the zone's `lt` list
    /// (`add_to_free_list` with `set_buddy_order`).
    #[inline(always)]
    pub(crate) fn add_free(&mut self, zi: usize, pfn: u32, order: u32, lt: usize) {
        self.flags[pfn as usize] = mkflags(K_FREE, order, lt);
        let z = &mut self.zones[zi];
        list_add(
            &mut self.next,
            &mut self.prev,
            &mut z.free_area[lt][order as usize],
            pfn,
        );
        z.nonempty[lt] |= 1 << order;
        z.free_pages += 1 << order;
    }

    /// Take the free block of `order` at `pfn` off the zone's `lt` list
    /// (`del_page_from_free_list`).
    #[inline(always)]
    pub(crate) fn del_free(&mut self, zi: usize, pfn: u32, order: u32, lt: usize) {
        let z = &mut self.zones[zi];
        let l = &mut z.free_area[lt][order as usize];
        list_del(&mut self.next, &mut self.prev, l, pfn);
        if l.nr == 0 {
            z.nonempty[lt] &= !(1 << order);
        }
        z.free_pages -= 1 << order;
        self.flags[pfn as usize] = K_TAIL;
    }

    /// Split a block of order `high` at `pfn` down to `low`, the upper halves going
    /// on the `lt` lists (the kernel's `expand`).
    #[inline]
    pub(crate) fn expand(&mut self, zi: usize, pfn: u32, low: u32, high: u32, lt: usize) {
        let mut h = high;
        while h > low {
            h -= 1;
            self.add_free(zi, pfn + (1 << h), h, lt);
        }
    }

    /// `__rmqueue_smallest`: take the smallest block of at least `order` from the
    /// `lt` lists and split it down to `order`.
    #[inline(always)]
    pub(crate) fn rmqueue_smallest(&mut self, zi: usize, order: u32, lt: usize) -> Option<u32> {
        // a block of exactly `order` first: that list's address does not wait
        // on the nonempty bits (a list has a head exactly when its bit is set)
        let z = &self.zones[zi];
        let exact = z.free_area[lt][order as usize].head;
        let (o, pfn) = if exact != NONE {
            (order, exact)
        } else {
            let mask = z.nonempty[lt] & !((1u16 << order) - 1);
            if mask == 0 {
                return None;
            }
            let o = mask.trailing_zeros();
            (o, z.free_area[lt][o as usize].head)
        };
        self.del_free(zi, pfn, o, lt);
        self.expand(zi, pfn, order, o, lt);
        Some(pfn)
    }

    /// `__rmqueue_smallest` for order 0 on list `lt` of zone `zi` when that
    /// list has a block: its head, off the list, with its flag word left for
    /// the caller to write once (`prep_new_page`). `None`, with nothing
    /// changed, when the order-0 list is empty (a split is the general path's).
    #[inline(always)]
    pub(crate) fn rmqueue_order0_head(&mut self, zi: usize, lt: usize) -> Option<u32> {
        let Machine {
            zones, next, prev, ..
        } = self;
        let z = &mut zones[zi];
        let l = &mut z.free_area[lt][0];
        let p = l.head;
        if p == NONE {
            return None;
        }
        // the head has no predecessor: only its successor's link changes
        debug_assert_eq!(prev[p as usize], NONE);
        debug_assert!((p as usize) < next.len());
        // SAFETY: a free list holds pfns of the map, which `next` spans
        let n = unsafe { *next.get_unchecked(p as usize) };
        l.head = n;
        if n != NONE {
            debug_assert!((n as usize) < prev.len());
            // SAFETY: `n` is on the same list
            unsafe { *prev.get_unchecked_mut(n as usize) = NONE };
        } else {
            l.tail = NONE;
            z.nonempty[lt] &= !1;
        }
        l.nr -= 1;
        z.free_pages -= 1;
        Some(p)
    }

    /// `__free_one_page` of an order-0 page at `pfn` whose buddy is not a
    /// free order-0 block (no merge): straight onto its list under policy
    /// `P`, its flag word written once. False, with nothing changed, when the
    /// buddy is free (the merge loop is [`Machine::free_one_page_of`]'s).
    #[inline(always)]
    pub(crate) fn free_order0_unmerged<P: PolicyKind>(&mut self, zi: usize, pfn: u32) -> bool {
        let z = &self.zones[zi];
        let (zs, spanned) = (z.start_pfn, z.spanned);
        let rel = pfn as u64 - zs;
        let brel = rel ^ 1;
        if brel < spanned {
            let bf = self.flags[(zs + brel) as usize];
            if kind(bf) == K_FREE && forder(bf) == 0 {
                return false;
            }
        }
        let lt = self.free_list_type_in(P::POLICY, zi, rel, None);
        let lt = self.merged_list_type_in(P::POLICY, zi, rel, 0, lt);
        match lt {
            0 => self.add_free0(zi, pfn, 0),
            1 => self.add_free0(zi, pfn, 1),
            2 => self.add_free0(zi, pfn, 2),
            lt => self.add_free0(zi, pfn, lt),
        }
        true
    }

    /// [`Machine::add_free`] of an order-0 block at `pfn`, a pfn of the map
    /// (the caller indexed `flags` with it).
    #[inline(always)]
    fn add_free0(&mut self, zi: usize, pfn: u32, lt: usize) {
        self.flags[pfn as usize] = mkflags(K_FREE, 0, lt);
        let z = &mut self.zones[zi];
        // SAFETY: `next` and `prev` have `flags`' length; the list's members
        // are pfns of the map
        unsafe { list_add_unchecked(&mut self.next, &mut self.prev, &mut z.free_area[lt][0], pfn) };
        z.nonempty[lt] |= 1;
        z.free_pages += 1;
    }

    /// `__free_one_page` under policy `P` (reached through `free_one_page`): coalesce the block
    /// of `order` at `pfn` with its free buddies and put the result on the list
    /// the policy chooses. `pcp_type` is the list type a page leaving a per-cpu
    /// list was kept under.
    #[inline(always)]
    pub(crate) fn free_one_page_of<P: PolicyKind>(
        &mut self,
        zi: usize,
        pfn: u32,
        order: u32,
        pcp_type: Option<usize>,
    ) {
        let zs = self.zones[zi].start_pfn;
        let spanned = self.zones[zi].spanned;
        let mut rel = pfn as u64 - zs;
        let mut order = order;
        let lt = self.free_list_type_in(P::POLICY, zi, rel, pcp_type);
        let top = (MAX_ORDER - 1) as u32;
        while order < top {
            let brel = rel ^ (1u64 << order);
            if brel + (1u64 << order) > spanned {
                break;
            }
            let bpfn = (zs + brel) as u32;
            let bf = self.flags[bpfn as usize];
            if kind(bf) != K_FREE || forder(bf) != order {
                break;
            }
            self.del_free(zi, bpfn, order, ftype(bf));
            rel &= !(1u64 << order);
            order += 1;
        }
        let lt = self.merged_list_type_in(P::POLICY, zi, rel, order, lt);
        let head = (zs + rel) as u32;
        // the list type as control flow, not data: in each arm the list's
        // address is a constant, so the next allocation's read of that list
        // does not wait on the pageblock type's load (the branch is predicted)
        match lt {
            0 => self.add_free(zi, head, order, 0),
            1 => self.add_free(zi, head, order, 1),
            2 => self.add_free(zi, head, order, 2),
            lt => self.add_free(zi, head, order, lt),
        }
    }
}
