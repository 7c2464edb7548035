//! `check()`: every invariant of the machine, one function per structure
//! (free lists, per-cpu lists, LRU, the policy's block types, the memory map
//! and how they agree). The error names the first violation.

use super::machine::Machine;
use super::mmzone::Zone;
use super::objects::{OBJ_ACTIVE, OBJ_UNEVICTABLE};
use super::page::{
    forder, ftype, kind, F_LRU, F_OBJ, K_ALLOC, K_FREE, K_PCP, K_RESERVED, K_TAIL, NR_LISTS,
};
use super::pcp::pcp_cpu;
use crate::error::{Error, Result};
use crate::{MAX_ORDER, NONE};

type Check<T> = std::result::Result<T, String>;

impl Machine {
    /// Verify every invariant; the error names the first violation.
    pub fn check(&self) -> Result<()> {
        self.check_all().map_err(Error::Invariant)
    }

    fn check_all(&self) -> Check<()> {
        let mut list_members = 0u64;
        let mut pcp_members = 0u64;
        for (zi, z) in self.zones.iter().enumerate() {
            list_members += self.check_free_area(z)?;
            pcp_members += self.check_pcp(zi, z)?;
            self.check_lru(zi, z)?;
            self.check_block_types(z)?;
        }
        self.check_memmap(list_members, pcp_members)?;
        self.check_slab()
    }

    /// A zone's free lists: nonempty bits, links, counts, every member a free
    /// head of that order and type, aligned, maximally coalesced and as the
    /// policy wants; `free_pages` is their sum. Returns the blocks listed.
    fn check_free_area(&self, z: &Zone) -> Check<u64> {
        let mut free = 0u64;
        let mut members = 0u64;
        for lt in 0..NR_LISTS {
            for o in 0..MAX_ORDER {
                let l = &z.free_area[lt][o];
                if (z.nonempty[lt] >> o) & 1 != (l.nr > 0) as u16 {
                    return Err(format!(
                        "zone {} node {}: nonempty bit of list type {lt} order {o} disagrees with nr_free {}",
                        z.name, z.node, l.nr
                    ));
                }
                let mut x = l.head;
                let mut cnt = 0u32;
                let mut prev = NONE;
                while x != NONE {
                    cnt += 1;
                    if cnt > l.nr {
                        return Err(format!(
                            "zone {} node {}: free_area[{lt}][{o}] holds more blocks than nr_free {}",
                            z.name, z.node, l.nr
                        ));
                    }
                    self.check_free_block(z, x, o, lt, prev)?;
                    free += 1u64 << o;
                    prev = x;
                    x = self.next[x as usize];
                }
                if cnt != l.nr || (cnt > 0 && l.tail != prev) {
                    return Err(format!(
                        "zone {} free_area[{lt}][{o}]: nr_free {} but {cnt} blocks linked",
                        z.name, l.nr
                    ));
                }
                members += cnt as u64;
            }
        }
        if free != z.free_pages {
            return Err(format!(
                "zone {} node {}: free_pages {} but the lists hold {free}",
                z.name, z.node, z.free_pages
            ));
        }
        Ok(members)
    }

    /// One member `x` of `free_area[lt][o]` of zone `z`, linked after `prev`.
    fn check_free_block(&self, z: &Zone, x: u32, o: usize, lt: usize, prev: u32) -> Check<()> {
        let p = x as u64;
        if p < z.start_pfn || p >= z.end_pfn() {
            return Err(format!(
                "pfn {p} on a free list of zone {} outside it",
                z.name
            ));
        }
        if self.prev[x as usize] != prev {
            return Err(format!("pfn {p}: broken prev link on free list"));
        }
        let f = self.flags[p as usize];
        if kind(f) != K_FREE || forder(f) as usize != o || ftype(f) != lt {
            return Err(format!(
                "pfn {p} is on free_area[{lt}][{o}] of zone {} but its page says kind {} order {} type {}",
                z.name, kind(f), forder(f), ftype(f)
            ));
        }
        let rel = p - z.start_pfn;
        if rel % (1u64 << o) != 0 || rel + (1u64 << o) > z.spanned {
            return Err(format!(
                "free block at pfn {p} order {o} is not aligned inside zone {}",
                z.name
            ));
        }
        // maximally coalesced
        if o < MAX_ORDER - 1 {
            let brel = rel ^ (1u64 << o);
            if brel + (1u64 << o) <= z.spanned {
                let bf = self.flags[(z.start_pfn + brel) as usize];
                if kind(bf) == K_FREE && forder(bf) as usize == o {
                    return Err(format!(
                        "free block at pfn {p} order {o} and its buddy pfn {} are both free: not coalesced",
                        z.start_pfn + brel
                    ));
                }
            }
        }
        self.check_free_block_type(z, p, o, lt)
    }

    /// A zone's per-cpu lists, every CPU's: every member a pcp page of the
    /// zone marked with the list's CPU, each count right, the running CPU's
    /// slot an empty placeholder. Returns the pages listed.
    fn check_pcp(&self, zi: usize, z: &Zone) -> Check<u64> {
        if z.pcp_parked.len() != self.cfg.nr_cpus as usize {
            return Err(format!(
                "zone {}: {} per-cpu slots for {} CPUs",
                z.name,
                z.pcp_parked.len(),
                self.cfg.nr_cpus
            ));
        }
        let mut total = 0u64;
        for cpu in 0..self.cfg.nr_cpus {
            let pcp = if cpu == self.cpu {
                if z.pcp_parked[cpu as usize].count != 0 {
                    return Err(format!(
                        "zone {}: the running CPU {cpu}'s parked slot holds pages",
                        z.name
                    ));
                }
                &z.pcp
            } else {
                &z.pcp_parked[cpu as usize]
            };
            let mut pc = 0;
            for li in 0..3 {
                let mut x = pcp.lists[li].head;
                while x != NONE {
                    let f = self.flags[x as usize];
                    if kind(f) != K_PCP || self.zone_of_pfn(x as u64) != zi || pcp_cpu(f) != cpu {
                        return Err(format!(
                            "pfn {x} on CPU {cpu}'s pcp list of zone {} is not a pcp page of it",
                            z.name
                        ));
                    }
                    pc += 1;
                    x = self.next[x as usize];
                }
            }
            if pc != pcp.count {
                return Err(format!(
                    "zone {} CPU {cpu}: pcp count {} but {pc} linked",
                    z.name, pcp.count
                ));
            }
            total += pc as u64;
        }
        Ok(total)
    }

    /// A zone's LRU lists: exactly the live reclaimable objects of this zone,
    /// each on the list its active bit names, with the page counts kept.
    fn check_lru(&self, zi: usize, z: &Zone) -> Check<()> {
        let mut all_pages = 0u64;
        let (mut mapped, mut anon_lru) = (0u64, 0u64);
        let lists = [
            (true, false, &z.active),
            (false, false, &z.inactive),
            (false, true, &z.unevictable),
        ];
        for (active, unevictable, l) in lists {
            let mut x = l.head;
            let mut n = 0u32;
            let mut pages = 0u64;
            while x != NONE {
                n += 1;
                if n > l.nr {
                    return Err(format!("zone {}: LRU longer than its count", z.name));
                }
                let p = self.objs.pfn[x as usize];
                if p == NONE {
                    return Err(format!(
                        "object {x} is on the LRU of zone {} but holds no block",
                        z.name
                    ));
                }
                let f = self.flags[p as usize];
                if kind(f) != K_ALLOC
                    || f & F_LRU == 0
                    || f & F_OBJ == 0
                    || self.next[p as usize] != x
                {
                    return Err(format!(
                        "object {x} on the LRU: its block at pfn {p} is not an LRU page of it"
                    ));
                }
                if (self.objs.state[x as usize] & OBJ_UNEVICTABLE != 0) != unevictable {
                    return Err(format!(
                        "object {x} on the {} lists of zone {} with the wrong unevictable bit",
                        if unevictable {
                            "unevictable"
                        } else {
                            "evictable"
                        },
                        z.name
                    ));
                }
                if (self.objs.state[x as usize] & OBJ_ACTIVE != 0) != active {
                    return Err(format!(
                        "object {x} on the {} list of zone {} with the wrong active bit",
                        if active { "active" } else { "inactive" },
                        z.name
                    ));
                }
                if self.zone_of_pfn(p as u64) != zi {
                    return Err(format!(
                        "object {x} on the LRU of zone {} holds pfn {p} of another zone",
                        z.name
                    ));
                }
                if self.obj_mapped(x) {
                    mapped += 1u64 << forder(f);
                    if !unevictable {
                        anon_lru += 1u64 << forder(f);
                        if !active && !self.cfg.swap {
                            return Err(format!(
                                "anonymous object {x} on the inactive list of zone {} with no swap",
                                z.name
                            ));
                        }
                    }
                }
                pages += 1u64 << forder(f);
                x = self.objs.lru_next[x as usize];
            }
            if n != l.nr
                || (active && pages != z.active_pages)
                || (unevictable && pages != z.unevictable_pages)
            {
                return Err(format!(
                    "zone {}: LRU count {} but {n} objects {pages} pages linked",
                    z.name, l.nr
                ));
            }
            if !unevictable {
                all_pages += pages;
            }
        }
        if all_pages != z.lru_pages {
            return Err(format!(
                "zone {}: {} LRU pages counted but {all_pages} linked",
                z.name, z.lru_pages
            ));
        }
        if mapped != z.nr_mapped || anon_lru != z.anon_lru {
            return Err(format!(
                "zone {}: nr_mapped {} anon_lru {} counted but {mapped} and {anon_lru} linked",
                z.name, z.nr_mapped, z.anon_lru
            ));
        }
        if z.prev_priority > 12 || z.temp_priority > 12 {
            return Err(format!("zone {}: priority above DEF_PRIORITY", z.name));
        }
        Ok(())
    }

    /// The memory map: every pfn is covered by exactly one head, and the heads
    /// agree with the free lists (`list_members` blocks), the per-cpu lists
    /// (`pcp_members` pages) and the LRUs.
    fn check_memmap(&self, list_members: u64, pcp_members: u64) -> Check<()> {
        let mut heads_free = 0u64;
        let mut heads_pcp = 0u64;
        let mut lru_heads = 0u64;
        for z in &self.zones {
            let mut p = z.start_pfn;
            while p < z.end_pfn() {
                let f = self.flags[p as usize];
                let o = forder(f);
                match kind(f) {
                    K_FREE | K_ALLOC => {
                        let rel = p - z.start_pfn;
                        if rel % (1u64 << o) != 0 || p + (1u64 << o) > z.end_pfn() {
                            return Err(format!(
                                "block at pfn {p} order {o} is misaligned or crosses its zone"
                            ));
                        }
                        let what = if kind(f) == K_FREE {
                            "free"
                        } else {
                            "allocated"
                        };
                        for q in p + 1..p + (1u64 << o) {
                            let qk = kind(self.flags[q as usize]);
                            if qk != K_TAIL {
                                return Err(format!(
                                    "pfn {q} inside the {what} block at pfn {p} order {o} is also a head (page both {what} and kind {qk})"
                                ));
                            }
                        }
                        if kind(f) == K_FREE {
                            heads_free += 1;
                        } else if f & F_LRU != 0 {
                            lru_heads += 1;
                        }
                        p += 1u64 << o;
                    }
                    K_PCP => {
                        heads_pcp += 1;
                        p += 1
                    }
                    K_RESERVED => p += 1,
                    _ => {
                        return Err(format!(
                            "pfn {p} is covered by no block (a stray tail page)"
                        ))
                    }
                }
            }
        }
        if heads_free != list_members {
            return Err(format!(
                "{heads_free} free heads in the memory map but {list_members} on free lists"
            ));
        }
        if heads_pcp != pcp_members {
            return Err(format!(
                "{heads_pcp} pcp pages in the memory map but {pcp_members} on pcp lists"
            ));
        }
        let lru_objs: u64 = self
            .zones
            .iter()
            .map(|z| (z.active.nr + z.inactive.nr + z.unevictable.nr) as u64)
            .sum();
        if lru_heads != lru_objs {
            return Err(format!(
                "{lru_heads} blocks marked LRU but {lru_objs} objects on LRUs"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layout, MachineConfig, Policy};
    use crate::gfp;
    use crate::mm::machine::Machine;
    use crate::mm::page::{mkflags, K_FREE, K_TAIL};
    use crate::Error;

    fn machine(policy: Policy) -> Machine {
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
        cfg.policy = policy;
        Machine::new(cfg).unwrap()
    }

    fn invariant(m: &Machine) -> String {
        match m.check() {
            Err(Error::Invariant(s)) => s,
            r => panic!("expected an invariant violation, got {r:?}"),
        }
    }

    #[test]
    fn a_fresh_machine_passes() {
        for policy in [Policy::Vanilla, Policy::AntiFrag, Policy::Mobility] {
            let mut m = machine(policy);
            m.check().unwrap();
            let p = m.alloc(3, gfp::GFP_KERNEL, None).unwrap().unwrap();
            m.check().unwrap();
            m.free(p).unwrap();
            m.check().unwrap();
        }
    }

    #[test]
    fn free_pages_must_match_the_lists() {
        let mut m = machine(Policy::Vanilla);
        m.zones[1].free_pages += 1;
        assert!(invariant(&m).contains("free_pages"));
    }

    #[test]
    fn a_tail_page_marked_free_is_caught() {
        let mut m = machine(Policy::Vanilla);
        let p = m.alloc(2, gfp::GFP_KERNEL, None).unwrap().unwrap() as usize;
        assert_eq!(m.flags[p + 1], K_TAIL);
        m.flags[p + 1] = mkflags(K_FREE, 0, 0);
        assert!(invariant(&m).contains("also a head"));
    }

    #[test]
    fn an_antifrag_usemap_must_agree_with_the_global_list() {
        let mut m = machine(Policy::AntiFrag);
        let zi = m.zones.len() - 1;
        m.zones[zi].block_type[0] ^= 1;
        assert!(invariant(&m).contains("usemap"));
    }
}
