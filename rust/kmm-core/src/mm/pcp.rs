//! Per-cpu page lists (the kernel's `zone_batchsize`, `rmqueue_bulk`,
//! `free_hot_cold_page`, `free_pages_bulk` and `drain_all_pages`). One CPU is
//! modelled; order-0 pages the policy allows go through these lists.

use super::machine::Machine;
use super::page::{ftype, list_add, list_add_tail, list_del, mkflags, K_PCP, K_TAIL};
use crate::NONE;

/// `zone_batchsize` of 2.6.11: present/1024, at most 256 KiB worth, /4, at least 1.
fn zone_batchsize(present: u64) -> u32 {
    let mut batch = present / 1024;
    if batch * 4096 > 256 * 1024 {
        batch = (256 * 1024) / 4096;
    }
    batch /= 4;
    batch.max(1) as u32
}

impl Machine {
    /// `setup_pageset` for every zone: batch from `zone_batchsize` (or the
    /// config), high = 6 * batch (or the config, at least batch).
    pub(crate) fn setup_pagesets(&mut self) {
        for z in self.zones.iter_mut() {
            let batch = match self.cfg.pcp_batch {
                0 => zone_batchsize(z.present),
                b => b,
            };
            let high = match self.cfg.pcp_high {
                0 => 6 * batch,
                h => h,
            };
            z.pcp.batch = batch;
            z.pcp.high = high.max(batch);
        }
    }

    /// `buffered_rmqueue`: order-0 through the per-cpu lists (refilled by
    /// `rmqueue_bulk` when empty; `cold` takes the tail), else `__rmqueue`;
    /// `nofragment` is `ALLOC_NOFRAGMENT`.
    #[inline(always)]
    pub(crate) fn buffered_rmqueue(
        &mut self,
        zi: usize,
        order: u32,
        t: usize,
        cold: bool,
        nofragment: bool,
    ) -> Option<u32> {
        if !self.pcp_eligible(order, t) {
            return self.rmqueue(zi, order, t, nofragment);
        }
        let li = self.pcp_list(t);
        if self.zones[zi].pcp.lists[li].nr == 0 && self.rmqueue_bulk(zi, li, t, nofragment) == 0 {
            return None;
        }
        let Machine {
            zones, next, prev, ..
        } = self;
        let pcp = &mut zones[zi].pcp;
        let l = &mut pcp.lists[li];
        let p = if cold { l.tail } else { l.head };
        list_del(next, prev, l, p);
        pcp.count -= 1;
        Some(p)
    }

    /// `rmqueue_bulk`: move up to a batch of order-0 pages of type `t` from the
    /// buddy lists to per-cpu list `li`; returns how many it moved.
    #[inline(never)]
    fn rmqueue_bulk(&mut self, zi: usize, li: usize, t: usize, nofragment: bool) -> u32 {
        let batch = self.zones[zi].pcp.batch;
        let mut got = 0;
        while got < batch {
            let Some(p) = self.rmqueue(zi, 0, t, nofragment) else {
                break;
            };
            self.flags[p as usize] = mkflags(K_PCP, 0, t);
            let z = &mut self.zones[zi];
            list_add_tail(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], p);
            z.pcp.count += 1;
            got += 1;
        }
        if got > 0 {
            self.counters.pcp_refills += 1;
        }
        got
    }

    /// `free_hot_cold_page`: put the order-0 page `pfn` of type `t` at the head
    /// of its per-cpu list; past `high`, return a batch to the buddy lists.
    #[inline(always)]
    pub(crate) fn free_hot_cold_page(&mut self, zi: usize, pfn: u32, t: usize) {
        let lt = self.pcp_free_type(zi, pfn, t);
        let li = self.pcp_list(lt);
        let Machine {
            zones,
            flags,
            next,
            prev,
            ..
        } = self;
        let pcp = &mut zones[zi].pcp;
        flags[pfn as usize] = mkflags(K_PCP, 0, lt);
        list_add(next, prev, &mut pcp.lists[li], pfn);
        pcp.count += 1;
        if pcp.count >= pcp.high {
            let batch = pcp.batch;
            self.free_pages_bulk(zi, batch);
        }
    }

    /// `free_pages_bulk`: return up to `n` of the coldest per-cpu pages (the
    /// tail of the fullest list) to the buddy lists.
    #[inline(never)]
    fn free_pages_bulk(&mut self, zi: usize, n: u32) {
        for _ in 0..n {
            let li = (0..3)
                .max_by_key(|&i| self.zones[zi].pcp.lists[i].nr)
                .unwrap();
            let z = &mut self.zones[zi];
            let p = z.pcp.lists[li].tail;
            if p == NONE {
                break;
            }
            list_del(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], p);
            z.pcp.count -= 1;
            let lt = ftype(self.flags[p as usize]);
            self.flags[p as usize] = K_TAIL;
            self.free_one_page(zi, p, 0, Some(lt));
        }
    }

    /// Take the per-cpu page at `pfn` (flag word `f`) off its list and free it
    /// to the buddy lists.
    pub(crate) fn pcp_page_to_buddy(&mut self, zi: usize, pfn: u32, f: u16) {
        let lt = ftype(f);
        let li = self.pcp_list(lt);
        let z = &mut self.zones[zi];
        list_del(&mut self.next, &mut self.prev, &mut z.pcp.lists[li], pfn);
        z.pcp.count -= 1;
        self.flags[pfn as usize] = K_TAIL;
        self.free_one_page(zi, pfn, 0, Some(lt));
    }

    /// `drain_all_pages`: return every per-cpu page to the buddy lists;
    /// returns how many pages moved.
    pub fn drain_all_pages(&mut self) -> u64 {
        let mut n = 0;
        for zi in 0..self.zones.len() {
            let c = self.zones[zi].pcp.count;
            if c > 0 {
                self.free_pages_bulk(zi, c);
                n += c as u64;
                self.counters.pcp_drains += 1;
            }
        }
        n
    }

    /// `drain_zone_pages`: return zone `zi`'s per-cpu pages to the buddy lists.
    pub(crate) fn drain_zone_pages(&mut self, zi: usize) {
        let c = self.zones[zi].pcp.count;
        if c > 0 {
            self.free_pages_bulk(zi, c);
            self.counters.pcp_drains += 1;
        }
    }

    /// [`Machine::drain_all_pages`] under the name the binding uses.
    pub fn drain_pcp(&mut self) -> u64 {
        self.drain_all_pages()
    }
}
