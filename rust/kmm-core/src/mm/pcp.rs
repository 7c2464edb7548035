//! Per-cpu page lists (the kernel's `zone_batchsize`, `rmqueue_bulk`,
//! `free_hot_cold_page`, `free_pages_bulk` and `drain_all_pages`); order-0
//! pages the policy allows go through these lists.
//!
//! A machine has `nr_cpus` CPUs, each with its own lists in every zone. The
//! running CPU's lists are in `Zone::pcp`, the others' wait in
//! `Zone::pcp_parked`; `Machine::switch_cpu` swaps them (a trace record runs
//! on the CPU of its pid, kswapd on CPU 0). A page on a per-cpu list keeps
//! its CPU in the order bits of its flag word (`pcp_cpu`). As in 2.6.11, a
//! CPU's lists are emptied only by that CPU (a batch past `high`), by
//! `drain_all_pages` (software suspend, and today's compaction), or by
//! active freeing, which takes the pages of the block it frees: nothing else
//! returns another CPU's pages to the buddy lists.

use super::machine::Machine;
use super::page::{
    forder, ftype, list_add_tail, list_add_unchecked, list_del, list_del_unchecked, mkflags,
    K_ALLOC, K_PCP, K_TAIL,
};
use super::policy::{pcp_list_in, PolicyKind};
use crate::config::Policy;
use crate::gfp::{self, AllocType};
use crate::NONE;

/// The CPU whose list holds the per-cpu page with flag word `f`.
#[inline]
pub(crate) fn pcp_cpu(f: u16) -> u32 {
    forder(f)
}

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
    /// `setup_pageset` for every zone and CPU: batch from `zone_batchsize`
    /// (or the config), high = 6 * batch (or the config, at least batch).
    pub(crate) fn setup_pagesets(&mut self) {
        let cpus = self.cfg.nr_cpus as usize;
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
            z.pcp_parked = vec![z.pcp.clone(); cpus];
        }
    }

    /// Run on CPU `cpu` from now on: every zone's running lists go back to
    /// their CPU's slot and `cpu`'s come out (`smp_processor_id()` changing).
    #[inline]
    pub(crate) fn switch_cpu(&mut self, cpu: u32) {
        if cpu == self.cpu {
            return;
        }
        let (old, new) = (self.cpu as usize, cpu as usize);
        for z in self.zones.iter_mut() {
            std::mem::swap(&mut z.pcp, &mut z.pcp_parked[old]);
            std::mem::swap(&mut z.pcp, &mut z.pcp_parked[new]);
        }
        self.cpu = cpu;
    }

    /// The CPU a task runs on: its pid modulo the CPUs (`docs/model.md`,
    /// "Per-cpu lists").
    #[inline]
    pub(crate) fn cpu_of_pid(&self, pid: u32) -> u32 {
        match self.cfg.nr_cpus {
            1 => 0,
            n => pid % n,
        }
    }

    /// Pages on the per-cpu lists of zone `zi`, every CPU's.
    pub fn pcp_pages(&self, zi: usize) -> u64 {
        let z = &self.zones[zi];
        let cur = self.cpu as usize;
        let parked: u64 = (z.pcp_parked.iter().enumerate())
            .filter(|&(c, _)| c != cur)
            .map(|(_, p)| p.count as u64)
            .sum();
        z.pcp.count as u64 + parked
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
        // SAFETY: a per-cpu list holds pfns of the map, which `next` and
        // `prev` span (`check()` verifies every list)
        unsafe { list_del_unchecked(next, prev, l, p) };
        pcp.count -= 1;
        Some(p)
    }

    /// The order-0 allocation fast path under policy `P`: the zonelist's
    /// first zone at its low watermark with plenty free (the order-0 case of
    /// `zone_watermark_ok`), then a page off a non-empty per-cpu list or the
    /// type's own buddy lists, as `__alloc_pages`' first
    /// `get_page_from_freelist` pass would take it. `None`, with nothing
    /// changed, whenever that pass would do anything else (refill a per-cpu
    /// list, fall back to another type, another zone, the watermark walk,
    /// `defrag_mode`'s wakeup): the caller then runs the whole path. kswapd
    /// needs no check: the zone had more than low + reserve + 1 free pages
    /// and lost at most one, so it is still at or above its low watermark.
    #[inline(always)]
    pub(crate) fn alloc_fast_of<P: PolicyKind>(
        &mut self,
        order: u32,
        gfp: u32,
        node: usize,
    ) -> Option<u32> {
        if order != 0 || self.cfg.defrag_mode {
            return None;
        }
        let t = AllocType::from_gfp(gfp) as usize;
        let hz = self.gfp_zone(gfp);
        let zi = *self.zonelists[node][hz].first()? as usize;
        let z = &self.zones[zi];
        if z.free_pages <= z.pages_low + z.lowmem_reserve[hz] + 1 {
            return None;
        }
        let p = if self.pcp_eligible_in(P::POLICY, 0, t) {
            self.pcp_take(P::POLICY, zi, t, gfp & gfp::__GFP_COLD != 0)?
        } else {
            self.rmqueue_order0_own(P::POLICY, zi, t)?
        };
        // prep_new_page (`set_allocated`); p came off a list of the map's pfns
        debug_assert!((p as usize) < self.flags.len() && (p as usize) < self.next.len());
        // SAFETY: every list member is a pfn of the map, which `flags` and
        // `next` span (`check()` verifies the lists)
        unsafe {
            *self.flags.get_unchecked_mut(p as usize) = mkflags(K_ALLOC, 0, t);
            *self.next.get_unchecked_mut(p as usize) = NONE;
        }
        self.counters.alloc += 1;
        Some(p)
    }

    /// Take a page of type `t` off zone `zi`'s per-cpu list under `policy`
    /// (the head, or the tail for a `cold` request); `None` when the list
    /// is empty.
    #[inline(always)]
    fn pcp_take(&mut self, policy: Policy, zi: usize, t: usize, cold: bool) -> Option<u32> {
        let Machine {
            zones, next, prev, ..
        } = self;
        let pcp = &mut zones[zi].pcp;
        let l = &mut pcp.lists[pcp_list_in(policy, t)];
        if l.nr == 0 {
            return None;
        }
        let p = if cold { l.tail } else { l.head };
        // SAFETY: a per-cpu list holds pfns of the map, which `next` and
        // `prev` span (`check()` verifies every list)
        unsafe { list_del_unchecked(next, prev, l, p) };
        pcp.count -= 1;
        Some(p)
    }

    /// `free_hot_cold_page` under `policy`: put the order-0 page `pfn` of
    /// allocation type `t` at the head of its per-cpu list; past `high`,
    /// return a batch to the buddy lists.
    #[inline(always)]
    pub(crate) fn free_hot_cold_page(&mut self, policy: Policy, zi: usize, pfn: u32, t: usize) {
        let lt = self.pcp_free_type_in(policy, zi, pfn, t);
        let cpu = self.cpu;
        let Machine {
            zones,
            flags,
            next,
            prev,
            ..
        } = self;
        let pcp = &mut zones[zi].pcp;
        flags[pfn as usize] = mkflags(K_PCP, cpu, lt);
        // SAFETY: `pfn` indexed `flags` just now, and `next`, `prev` have its
        // length; the list's members are pfns of the map
        unsafe { list_add_unchecked(next, prev, &mut pcp.lists[pcp_list_in(policy, lt)], pfn) };
        pcp.count += 1;
        if pcp.count >= pcp.high {
            let batch = pcp.batch;
            self.free_pages_bulk(zi, batch);
        }
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
            self.flags[p as usize] = mkflags(K_PCP, self.cpu, t);
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

    /// Take the per-cpu page at `pfn` (flag word `f`, on any CPU's list) off
    /// its list and free it to the buddy lists.
    pub(crate) fn pcp_page_to_buddy(&mut self, zi: usize, pfn: u32, f: u16) {
        let lt = ftype(f);
        let li = self.pcp_list(lt);
        let (cpu, cur) = (pcp_cpu(f), self.cpu);
        let z = &mut self.zones[zi];
        let pcp = if cpu == cur {
            &mut z.pcp
        } else {
            &mut z.pcp_parked[cpu as usize]
        };
        list_del(&mut self.next, &mut self.prev, &mut pcp.lists[li], pfn);
        pcp.count -= 1;
        self.flags[pfn as usize] = K_TAIL;
        self.free_one_page(zi, pfn, 0, Some(lt));
    }

    /// `drain_all_pages`: return every CPU's per-cpu pages to the buddy
    /// lists; returns how many pages moved.
    pub fn drain_all_pages(&mut self) -> u64 {
        let mut n = 0;
        for zi in 0..self.zones.len() {
            n += self.drain_zone_pages(zi);
        }
        n
    }

    /// `drain_zone_pages`: return zone `zi`'s per-cpu pages, every CPU's, to
    /// the buddy lists; returns how many pages moved.
    pub(crate) fn drain_zone_pages(&mut self, zi: usize) -> u64 {
        let cur = self.cpu;
        let mut n = 0;
        for cpu in 0..self.cfg.nr_cpus {
            self.switch_cpu(cpu);
            let c = self.zones[zi].pcp.count;
            if c > 0 {
                self.free_pages_bulk(zi, c);
                n += c as u64;
                self.counters.pcp_drains += 1;
            }
        }
        self.switch_cpu(cur);
        n
    }

    /// [`Machine::drain_all_pages`] under the name the binding uses.
    pub fn drain_pcp(&mut self) -> u64 {
        self.drain_all_pages()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layout, MachineConfig};
    use crate::gfp;
    use crate::mm::machine::Machine;
    use proptest::prelude::*;

    fn machine(cpus: u32) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.nr_cpus = cpus;
        cfg.pcp_batch = 4;
        cfg.pcp_high = 16;
        Machine::new(cfg).unwrap()
    }

    fn normal(m: &Machine) -> usize {
        m.zones.iter().position(|z| z.name == "Normal").unwrap()
    }

    /// Free pages plus every CPU's per-cpu pages of every zone.
    fn free_and_pcp(m: &Machine) -> u64 {
        (0..m.zones.len())
            .map(|zi| m.zones[zi].free_pages + m.pcp_pages(zi))
            .sum()
    }

    #[test]
    fn a_cpus_pages_stay_on_its_lists_while_another_cpu_runs() {
        let mut m = machine(2);
        let n = normal(&m);
        let before = free_and_pcp(&m);
        m.switch_cpu(1);
        let pages: Vec<u64> = (0..6)
            .map(|_| m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap())
            .collect();
        for &p in &pages {
            m.free(p).unwrap();
        }
        let on_cpu1 = m.zones[n].pcp.count;
        assert!(on_cpu1 >= 6, "CPU 1 holds the pages it freed ({on_cpu1})");
        m.switch_cpu(0);
        assert_eq!(m.zones[n].pcp.count, 0, "CPU 0's lists are its own");
        assert_eq!(m.zones[n].pcp_parked[1].count, on_cpu1);
        assert_eq!(m.pcp_pages(n), on_cpu1 as u64);
        // CPU 0 allocating takes nothing of CPU 1's
        let p = m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap();
        assert!(!pages.contains(&p), "CPU 0 got CPU 1's per-cpu page {p}");
        assert_eq!(m.zones[n].pcp_parked[1].count, on_cpu1);
        m.free(p).unwrap();
        m.check().unwrap();
        assert_eq!(free_and_pcp(&m), before);
        // back on CPU 1, the hot page it freed last comes out first (LIFO)
        m.switch_cpu(1);
        let q = m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap();
        assert_eq!(q, *pages.last().unwrap());
        m.check().unwrap();
    }

    #[test]
    fn drain_all_pages_empties_every_cpu_and_the_zone_coalesces() {
        let mut m = machine(3);
        let free0 = free_and_pcp(&m);
        for cpu in [2, 1, 0] {
            m.switch_cpu(cpu);
            let ps: Vec<u64> = (0..5)
                .map(|_| m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap())
                .collect();
            for p in ps {
                m.free(p).unwrap();
            }
        }
        let parked: u64 = (0..m.zones.len()).map(|zi| m.pcp_pages(zi)).sum();
        assert!(parked >= 15);
        m.switch_cpu(1);
        assert_eq!(m.drain_all_pages(), parked);
        assert_eq!(m.cpu, 1, "draining leaves the machine on its CPU");
        for zi in 0..m.zones.len() {
            assert_eq!(m.pcp_pages(zi), 0);
        }
        assert_eq!(free_and_pcp(&m), free0);
        m.check().unwrap();
    }

    #[test]
    fn a_pcp_page_carries_its_cpu_and_check_catches_a_wrong_one() {
        let mut m = machine(2);
        m.switch_cpu(1);
        let p = m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap();
        m.free(p).unwrap();
        assert_eq!(super::pcp_cpu(m.flags[p as usize]), 1);
        m.check().unwrap();
        let f = m.flags[p as usize];
        m.flags[p as usize] = super::mkflags(super::K_PCP, 0, super::ftype(f));
        let e = m.check().unwrap_err().to_string();
        assert!(e.contains("CPU 1"), "{e}");
    }

    #[test]
    fn a_trace_record_runs_on_the_cpu_of_its_pid_and_kswapd_on_cpu_0() {
        use crate::replay::{TraceOp, OP_ALLOC, OP_FREE, OP_TICK};
        let mut m = machine(2);
        let op = |op, obj, pid| TraceOp {
            op,
            obj,
            gfp: gfp::GFP_KERNEL,
            pid,
            tgid: pid,
            ..Default::default()
        };
        // pid 3 runs on CPU 1, pid 4 on CPU 0
        let ops = [
            op(OP_ALLOC, 1, 3),
            op(OP_ALLOC, 2, 3),
            op(OP_FREE, 1, 3),
            op(OP_FREE, 2, 3),
            op(OP_ALLOC, 3, 4),
        ];
        let out = m.replay_ops(&ops, true).unwrap().outcomes.unwrap();
        assert_eq!(m.cpu, 0);
        let n = normal(&m);
        let cpu1: Vec<u32> = {
            let l = &m.zones[n].pcp_parked[1];
            let mut v = Vec::new();
            let mut x = l.lists[0].head;
            while x != crate::NONE {
                v.push(x);
                x = m.next[x as usize];
            }
            v
        };
        assert!(cpu1.contains(&(out[0] as u32)) && cpu1.contains(&(out[1] as u32)));
        assert!(
            !cpu1.contains(&(out[4] as u32)),
            "pid 4's page came from CPU 0"
        );
        m.switch_cpu(1);
        m.replay_ops(&[op(OP_TICK, 1000, 3)], false).unwrap();
        assert_eq!(m.cpu, 0, "kswapd runs on CPU 0");
        m.check().unwrap();
    }

    /// The allocator's state a fast path may touch, comparable.
    fn state(m: &Machine) -> (Vec<u16>, Vec<u32>, Vec<u32>, String, String) {
        (
            m.flags.clone(),
            m.next.clone(),
            m.prev.clone(),
            format!("{:?}", m.zones),
            format!("{:?}", m.counters),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The order-0 fast paths against the general paths, on a small
        /// machine driven down to and past its watermarks: whenever
        /// `alloc_fast` takes a page, `alloc_pages` on a copy takes the same
        /// page and leaves the same state; when it declines, it changed
        /// nothing. An unmerged order-0 buddy free equals `free_one_page`'s.
        #[test]
        fn fast_paths_do_what_the_general_paths_do(
            p in 0usize..3,
            pcp in any::<bool>(),
            compaction in any::<bool>(),
            cpus in 1u32..3,
            prefill in 0usize..9000,
            ops in proptest::collection::vec((0usize..6, any::<u16>()), 1..1500),
        ) {
            use crate::config::Policy;
            use crate::mm::page::{forder, ftype, K_TAIL};
            let policy = Policy::ALL[p];
            let mut cfg = MachineConfig::new(Layout::X86_32, 40 << 20);
            cfg.policy = policy;
            cfg.pcp = pcp;
            cfg.nr_cpus = cpus;
            cfg.pcp_batch = 4;
            cfg.pcp_high = 16;
            cfg.compaction = compaction && policy != Policy::AntiFrag;
            cfg.reclaim = false;
            let mut m = Machine::new(cfg).unwrap();
            let masks = [
                gfp::GFP_KERNEL,
                gfp::GFP_HIGHUSER,
                gfp::GFP_KERNEL | gfp::__GFP_KERNRCLM,
                gfp::GFP_ATOMIC,
                gfp::GFP_KERNEL | gfp::__GFP_COLD,
                gfp::GFP_KERNEL | gfp::__GFP_DMA,
            ];
            // start anywhere from empty to past the watermarks (6144 Normal pages)
            let mut live: Vec<u32> = (0..prefill)
                .filter_map(|i| m.alloc(0, masks[i % 4], None).unwrap())
                .map(|p| p as u32)
                .collect();
            let (mut fast_allocs, mut fast_frees) = (0, 0);
            for (g, r) in ops {
                m.switch_cpu(r as u32 % cpus);
                if r % 4 == 0 && !live.is_empty() {
                    let pfn = live.swap_remove(r as usize % live.len());
                    let f = m.flags[pfn as usize];
                    let (order, t) = (forder(f), ftype(f));
                    if order == 0 && !m.pcp_eligible(0, t) {
                        // the general free of an order-0 block beside the fast one
                        let mut gen = m.clone();
                        let zi = gen.zone_of_pfn(pfn as u64);
                        gen.flags[pfn as usize] = K_TAIL;
                        gen.free_one_page(zi, pfn, 0, None);
                        gen.counters.free += 1;
                        m.free(pfn as u64).unwrap();
                        prop_assert!(state(&m) == state(&gen), "free of pfn {}", pfn);
                        fast_frees += 1;
                    } else {
                        m.free(pfn as u64).unwrap();
                    }
                    continue;
                }
                let order = if r % 16 == 1 { (r as u32 >> 4) % 3 } else { 0 };
                let mask = masks[g];
                let before = m.clone();
                match m.alloc_fast(order, mask, 0) {
                    Some(pfn) => {
                        let mut gen = before;
                        prop_assert_eq!(gen.alloc_pages(order, mask, 0), Some(pfn));
                        prop_assert!(state(&m) == state(&gen), "alloc {} {:#x}", order, mask);
                        live.push(pfn);
                        fast_allocs += 1;
                    }
                    None => {
                        prop_assert!(state(&m) == state(&before), "declined alloc changed state");
                        if let Some(pfn) = m.alloc(order, mask, None).unwrap() {
                            live.push(pfn as u32);
                        }
                    }
                }
            }
            prop_assert!(m.check().is_ok(), "{:?}", m.check());
            // the fast paths were taken, where they can be: a machine filled
            // past its watermarks (prefill near the 6144 Normal pages, and
            // no reclaim here) may decline every allocation, and on several
            // CPUs every free then goes to a per-cpu list (not compared here)
            if prefill < 4000 {
                prop_assert!(fast_allocs > 0 || fast_frees > 0 || live.is_empty());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any interleaving of CPUs allocating and freeing order-0 pages keeps
        /// every invariant and every page; and a machine of several CPUs run
        /// on CPU 0 alone hands out exactly what a one-CPU machine does.
        #[test]
        fn cpus_keep_every_page(ops in proptest::collection::vec((0u32..4, any::<bool>(), 0usize..64), 1..300)) {
            let mut m = machine(4);
            let mut one = machine(1);
            let mut solo = machine(4);
            let total = free_and_pcp(&m);
            let mut held: Vec<u64> = Vec::new();
            let mut held_one: Vec<u64> = Vec::new();
            let mut held_solo: Vec<u64> = Vec::new();
            for (cpu, alloc, k) in ops {
                m.switch_cpu(cpu);
                if alloc || held.is_empty() {
                    if let Some(p) = m.alloc(0, gfp::GFP_KERNEL, None).unwrap() {
                        held.push(p);
                    }
                    let a = one.alloc(0, gfp::GFP_KERNEL, None).unwrap();
                    let b = solo.alloc(0, gfp::GFP_KERNEL, None).unwrap();
                    prop_assert_eq!(a, b);
                    if let Some(p) = a {
                        held_one.push(p);
                        held_solo.push(p);
                    }
                } else {
                    let i = k % held.len();
                    m.free(held.swap_remove(i)).unwrap();
                    if !held_one.is_empty() {
                        let j = k % held_one.len();
                        one.free(held_one.swap_remove(j)).unwrap();
                        solo.free(held_solo.swap_remove(j)).unwrap();
                    }
                }
            }
            m.check().unwrap();
            solo.check().unwrap();
            prop_assert_eq!(free_and_pcp(&m) + held.len() as u64, total);
            for p in held {
                m.free(p).unwrap();
            }
            m.drain_all_pages();
            let zs: u64 = m.zones.iter().map(|z| z.free_pages).sum();
            prop_assert_eq!(zs, total);
            m.check().unwrap();
        }
    }
}
