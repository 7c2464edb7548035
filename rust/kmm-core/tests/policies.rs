//! Hand-built scenarios for each allocator policy: Gorman's v7 anti-fragmentation
//! allocator (Gorman's v7 patch of January 2005), grouping by mobility (today's `mm/page_alloc.c`) and the per-cpu lists.

mod common;

use common::*;
use kmm_core::gfp::{self, __GFP_KERNRCLM, GFP_ATOMIC, GFP_KERNEL, GFP_USER};
use kmm_core::mm::page::{LT_FALLBACK, LT_GLOBAL, LT_KERNRCLM, LT_NORCLM, LT_USERRCLM, PM_ALLOC};
use kmm_core::{Layout, Machine, MachineConfig, Policy, MAX_ORDER};

/// A mask that asks for type `t` from the Normal zone of an x86_32 machine.
fn gfp_for(t: usize) -> u32 {
    match t {
        LT_NORCLM => GFP_KERNEL,
        LT_KERNRCLM => GFP_KERNEL | __GFP_KERNRCLM,
        _ => GFP_USER,
    }
}

fn nr(m: &Machine, zi: usize, lt: usize, o: usize) -> u32 {
    m.zones[zi].free_area[lt][o].nr
}

fn type_pages(m: &Machine, zi: usize, lt: usize) -> u64 {
    (0..MAX_ORDER).map(|o| (nr(m, zi, lt, o) as u64) << o).sum()
}

fn head(m: &Machine, zi: usize, lt: usize, o: usize) -> u64 {
    let l = m.zones[zi].free_area[lt][o];
    assert!(l.nr > 0, "list type {lt} order {o} of zone {zi} is empty");
    l.head as u64
}

fn block_of(m: &Machine, zi: usize, pfn: u64) -> usize {
    ((pfn - m.zones[zi].start_pfn) >> m.block_order) as usize
}

/// Allocate and insist the block comes from zone `zi`.
fn alloc_in(m: &mut Machine, zi: usize, order: u32, g: u32) -> u64 {
    let p = m
        .alloc(order, g, None)
        .unwrap()
        .unwrap_or_else(|| panic!("order {order} gfp {g:#x} failed"));
    assert_eq!(
        m.zone_of_pfn(p),
        zi,
        "order {order} gfp {g:#x} got pfn {p} outside zone {zi}"
    );
    m.check().unwrap();
    p
}

/// Allocate every free block below the maximum order in zone `zi` (as the type
/// of the list it is on), leaving only whole maximum-order blocks free.
fn pin_partial_blocks(m: &mut Machine, zi: usize) {
    for lt in [LT_NORCLM, LT_KERNRCLM, LT_USERRCLM] {
        for o in (0..MAX_ORDER - 1).rev() {
            while nr(m, zi, lt, o) > 0 {
                alloc_in(m, zi, o as u32, gfp_for(lt));
            }
        }
    }
    for o in 0..MAX_ORDER - 1 {
        assert_eq!(m.zones[zi].nr_free(o), 0);
    }
}

fn machine(mem_mib: u64, policy: Policy, f: impl FnOnce(&mut MachineConfig)) -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, mem_mib * MIB);
    cfg.policy = policy;
    cfg.pcp = false;
    cfg.reclaim = false;
    f(&mut cfg);
    Machine::new(cfg).unwrap()
}

// ---- anti-fragmentation (Gorman v7, Feb 2005) --------------------------------

#[test]
fn antifrag_boots_with_everything_on_the_global_list() {
    let m = machine(64, Policy::AntiFrag, |_| {});
    let pm = m.page_map();
    for (zi, z) in m.zones.iter().enumerate() {
        // every whole maximum-order block without a boot reservation is global,
        // and the usemap says so; the rest is KernNoRclm
        let mut whole = 0;
        for b in 0..(z.spanned >> 10) as usize {
            let s = z.start_pfn + ((b as u64) << 10);
            let clean = (s..s + 1024).all(|p| pm[p as usize] != kmm_core::mm::page::PM_RESERVED);
            whole += clean as u32;
            let want = if clean { LT_GLOBAL } else { LT_NORCLM };
            assert_eq!(z.block_type[b] as usize, want, "zone {} block {b}", z.name);
        }
        assert!(whole > 0);
        assert_eq!(nr(&m, zi, LT_GLOBAL, 10), whole);
        for lt in [LT_KERNRCLM, LT_USERRCLM, LT_FALLBACK] {
            assert_eq!(
                type_pages(&m, zi, lt),
                0,
                "type {lt} lists not empty at boot"
            );
        }
        for o in 0..10 {
            assert_eq!(nr(&m, zi, LT_GLOBAL, o), 0);
        }
    }
}

/// Give the Normal zone's global blocks to types: `blocks[i]` maximum-order
/// blocks to type i, each by an order-9 allocation (which leaves one order-9
/// buddy on the type's lists; a second order-9 allocation of the type uses it).
/// Returns the pfns allocated for each type, in order.
fn hand_out_globals(m: &mut Machine, zi: usize, blocks: [usize; 3]) -> [Vec<u64>; 3] {
    let mut out: [Vec<u64>; 3] = Default::default();
    for (t, &k) in blocks.iter().enumerate() {
        for i in 0..k {
            let before = m.zones[zi].free_area[LT_GLOBAL][10].nr;
            out[t].push(alloc_in(m, zi, 9, gfp_for(t)));
            assert_eq!(m.zones[zi].free_area[LT_GLOBAL][10].nr, before - 1);
            if i + 1 < k {
                // use the buddy too, so the next one takes a fresh global block
                out[t].push(alloc_in(m, zi, 9, gfp_for(t)));
            }
        }
    }
    out
}

#[test]
fn antifrag_v7_fallback_orders() {
    for t in [LT_NORCLM, LT_KERNRCLM, LT_USERRCLM] {
        let [first, second] = V7_FALLBACK[t];
        let mut m = machine(64, Policy::AntiFrag, |_| {});
        let n = zone_index(&m, 0, "Normal");
        pin_partial_blocks(&mut m, n);
        let g = nr(&m, n, LT_GLOBAL, 10) as usize;
        assert!(g >= 8);
        let mut blocks = [0; 3];
        blocks[first] = 1;
        blocks[second] = g - 1;
        let given = hand_out_globals(&mut m, n, blocks);
        assert_eq!(nr(&m, n, LT_GLOBAL, 10), 0);
        assert_eq!(type_pages(&m, n, t), 0);
        assert_eq!((nr(&m, n, first, 9), nr(&m, n, second, 9)), (1, 1));

        // 1. nothing of its own, no global block: the first fallback type, smallest block
        let want = head(&m, n, first, 9);
        let usemap = m.zones[n].block_type.clone();
        let fallbacks = m.counters.fallbacks;
        let p = alloc_in(&mut m, n, 0, gfp_for(t));
        assert_eq!(
            p, want,
            "type {t}: order 0 did not come from type {first}'s block"
        );
        assert_eq!(m.counters.fallbacks, fallbacks + 1);
        // ownership does not change and the remainders stay on the owner's lists
        assert_eq!(
            m.zones[n].block_type, usemap,
            "usemap changed on a fallback"
        );
        for o in 0..9 {
            assert_eq!(
                nr(&m, n, first, o),
                1,
                "remainder of order {o} not on type {first}"
            );
        }
        assert_eq!(
            type_pages(&m, n, t),
            0,
            "remainder went to the requester's lists"
        );
        assert_eq!(m.page_map()[p as usize], PM_ALLOC + t as u8);
        // freeing goes by the usemap: back to the owner's lists, coalesced again
        m.free(p).unwrap();
        m.check().unwrap();
        assert_eq!(nr(&m, n, first, 9), 1);
        assert_eq!(type_pages(&m, n, first), 512);

        // 2. the first fallback type has no block of the order: the second one.
        // Room above the watermarks first: free one half of two of the second
        // type's blocks (the other halves stay allocated, so nothing goes global)
        m.free(given[second][0]).unwrap();
        m.free(given[second][2]).unwrap();
        assert_eq!(nr(&m, n, second, 9), 3);
        assert_eq!(nr(&m, n, LT_GLOBAL, 10), 0);
        alloc_in(&mut m, n, 9, gfp_for(first)); // the owner uses its own block
        let want = head(&m, n, second, 9);
        let p = alloc_in(&mut m, n, 9, gfp_for(t));
        assert_eq!(p, want, "type {t}: order 9 did not come from type {second}");
        assert_eq!(m.zones[n].block_type, usemap);
    }
}

#[test]
fn antifrag_blocks_return_to_the_global_list_at_max_order() {
    let mut m = machine(64, Policy::AntiFrag, |_| {});
    let n = zone_index(&m, 0, "Normal");
    pin_partial_blocks(&mut m, n);
    let g = nr(&m, n, LT_GLOBAL, 10);
    let takes = m.counters.global_takes;
    let p: Vec<u64> = (0..3)
        .map(|_| alloc_in(&mut m, n, 0, GFP_KERNEL | __GFP_KERNRCLM))
        .collect();
    let b = block_of(&m, n, p[0]);
    assert!(
        p.iter().all(|&x| block_of(&m, n, x) == b),
        "three pages from different blocks"
    );
    assert_eq!(m.zones[n].block_type[b] as usize, LT_KERNRCLM);
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), g - 1);
    assert_eq!(m.counters.global_takes, takes + 1);
    assert_eq!(type_pages(&m, n, LT_KERNRCLM), 1024 - 3);
    m.free(p[0]).unwrap();
    m.free(p[2]).unwrap();
    // not whole yet: still owned by KernRclm, pieces on its lists
    assert_eq!(m.zones[n].block_type[b] as usize, LT_KERNRCLM);
    assert_eq!(type_pages(&m, n, LT_KERNRCLM), 1024 - 1);
    m.free(p[1]).unwrap();
    m.check().unwrap();
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), g);
    assert_eq!(m.zones[n].block_type[b] as usize, LT_GLOBAL);
    assert_eq!(type_pages(&m, n, LT_KERNRCLM), 0);
    // an order-10 allocation of a type is a global block given whole to the type
    let q = alloc_in(&mut m, n, 10, GFP_USER);
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, q)] as usize,
        LT_USERRCLM
    );
    m.free(q).unwrap();
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, q)] as usize,
        LT_GLOBAL
    );
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), g);
    m.check().unwrap();
}

#[test]
fn antifrag_v8_fallback_reserve() {
    // 25% of Normal's 12 blocks: 3 kept back for fallbacks
    let mut m = machine(64, Policy::AntiFrag, |c| c.fallback_reserve = 0.25);
    let n = zone_index(&m, 0, "Normal");
    assert!(m.list_types().iter().any(|&(lt, _)| lt == LT_FALLBACK));
    assert_eq!(m.zones[n].spanned >> 10, 12);
    pin_partial_blocks(&mut m, n);
    let g = nr(&m, n, LT_GLOBAL, 10) as usize;
    hand_out_globals(&mut m, n, [0, 0, g - 3]);
    alloc_in(&mut m, n, 9, GFP_USER); // the last UserRclm buddy
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 3);
    assert_eq!(type_pages(&m, n, LT_USERRCLM), 0);
    // UserRclm has nothing; the 3 global blocks are the reserve: a fallback block
    let fallbacks = m.counters.fallbacks;
    let want = head(&m, n, LT_GLOBAL, 10);
    let p = alloc_in(&mut m, n, 9, GFP_USER);
    assert_eq!(p, want);
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, p)] as usize,
        LT_FALLBACK
    );
    assert_eq!(nr(&m, n, LT_FALLBACK, 9), 1);
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 2);
    // KernNoRclm with nothing of its own uses the fallback block's remainder,
    // not another global block and not UserRclm's
    let want = head(&m, n, LT_FALLBACK, 9);
    let q = alloc_in(&mut m, n, 9, GFP_KERNEL);
    assert_eq!(q, want);
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 2);
    assert_eq!(m.counters.fallbacks, fallbacks + 2);
    // freed, the fallback block coalesces and goes back to the global list
    m.free(p).unwrap();
    m.free(q).unwrap();
    m.check().unwrap();
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 3);
    assert_eq!(type_pages(&m, n, LT_FALLBACK), 0);
}

#[test]
fn antifrag_v7_without_reserve_takes_every_global_block() {
    let mut m = machine(64, Policy::AntiFrag, |_| {});
    let n = zone_index(&m, 0, "Normal");
    pin_partial_blocks(&mut m, n);
    let g = nr(&m, n, LT_GLOBAL, 10) as usize;
    hand_out_globals(&mut m, n, [0, 0, g - 1]);
    alloc_in(&mut m, n, 9, GFP_USER);
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 1);
    let fallbacks = m.counters.fallbacks;
    alloc_in(&mut m, n, 9, GFP_USER);
    assert_eq!(nr(&m, n, LT_GLOBAL, 10), 0);
    assert_eq!(
        m.counters.fallbacks, fallbacks,
        "taking a global block is not a fallback"
    );
}

// ---- grouping by mobility -----------------------------------------------------

#[test]
fn mobility_boots_movable() {
    for layout in [Layout::X86_32, Layout::X86_64] {
        let mut cfg = MachineConfig::new(layout, 64 * MIB);
        cfg.policy = Policy::Mobility;
        let m = Machine::new(cfg).unwrap();
        assert_eq!(m.block_order, if layout == Layout::X86_32 { 10 } else { 9 });
        for (zi, z) in m.zones.iter().enumerate() {
            assert!(z.block_type.iter().all(|&b| b as usize == LT_USERRCLM));
            assert_eq!(
                type_pages(&m, zi, LT_NORCLM) + type_pages(&m, zi, LT_KERNRCLM),
                0
            );
        }
    }
}

#[test]
fn mobility_modern_fallback_table() {
    // Unmovable -> Reclaimable, Movable; Reclaimable -> Unmovable, Movable:
    // give the first fallback type one free order-10 block beside Movable's
    for t in [LT_NORCLM, LT_KERNRCLM] {
        let [first, second] = MODERN_FALLBACK[t];
        assert_eq!(second, LT_USERRCLM);
        let mut m = machine(32, Policy::Mobility, |_| {});
        let n = zone_index(&m, 0, "Normal");
        pin_partial_blocks(&mut m, n);
        assert_eq!(nr(&m, n, LT_USERRCLM, 10), 3);
        let p = alloc_in(&mut m, n, 10, gfp_for(first));
        assert_eq!(m.zones[n].block_type[block_of(&m, n, p)] as usize, first);
        m.free(p).unwrap();
        assert_eq!(nr(&m, n, first, 10), 1);
        let want = head(&m, n, first, 10);
        let q = alloc_in(&mut m, n, 10, gfp_for(t));
        assert_eq!(q, want, "type {t} did not fall back to type {first} first");
        assert_eq!(m.zones[n].block_type[block_of(&m, n, q)] as usize, t);
        let want = head(&m, n, second, 10);
        let r = alloc_in(&mut m, n, 10, gfp_for(t));
        assert_eq!(
            r, want,
            "type {t} did not fall back to type {second} second"
        );
        assert_eq!(m.zones[n].block_type[block_of(&m, n, r)] as usize, t);
    }
    // Movable -> Reclaimable, Unmovable: Movable must first have nothing free
    let mut m = machine(32, Policy::Mobility, |_| {});
    let n = zone_index(&m, 0, "Normal");
    pin_partial_blocks(&mut m, n);
    assert_eq!(nr(&m, n, LT_USERRCLM, 10), 3);
    let u = alloc_in(&mut m, n, 10, GFP_KERNEL);
    let r = alloc_in(&mut m, n, 10, GFP_KERNEL | __GFP_KERNRCLM);
    alloc_in(&mut m, n, 9, GFP_KERNEL); // steals the last Movable block whole
    m.free(u).unwrap();
    m.free(r).unwrap();
    m.check().unwrap();
    assert_eq!(type_pages(&m, n, LT_USERRCLM), 0);
    assert_eq!(
        (nr(&m, n, LT_KERNRCLM, 10), nr(&m, n, LT_NORCLM, 10)),
        (1, 1)
    );
    let want = head(&m, n, LT_KERNRCLM, 10);
    let p = alloc_in(&mut m, n, 10, GFP_USER);
    assert_eq!(p, want, "Movable did not fall back to Reclaimable first");
    let want = head(&m, n, LT_NORCLM, 10);
    let q = alloc_in(&mut m, n, 10, GFP_USER);
    assert_eq!(q, want, "Movable did not fall back to Unmovable second");
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, q)] as usize,
        LT_USERRCLM
    );
}

#[test]
fn mobility_steals_the_biggest_block_first() {
    let mut m = machine(32, Policy::Mobility, |_| {});
    let n = zone_index(&m, 0, "Normal");
    pin_partial_blocks(&mut m, n);
    // Reclaimable steals a whole Movable block; its remainders (orders 3..9) are Reclaimable
    let r = alloc_in(&mut m, n, 3, GFP_KERNEL | __GFP_KERNRCLM);
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, r)] as usize,
        LT_KERNRCLM
    );
    for o in 3..10 {
        assert_eq!(nr(&m, n, LT_KERNRCLM, o), 1);
    }
    // Unmovable's table says Reclaimable first, but steal-big looks at the highest
    // order first: Movable's order-10 block wins over Reclaimable's order 9
    let want = head(&m, n, LT_USERRCLM, 10);
    let steals = m.counters.steals;
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL);
    assert_eq!(p, want);
    assert_eq!(
        m.zones[n].block_type[block_of(&m, n, p)] as usize,
        LT_NORCLM
    );
    assert_eq!(m.counters.steals, steals + 1);
    for o in 0..10 {
        assert_eq!(
            nr(&m, n, LT_NORCLM, o),
            1,
            "remainder of order {o} not Unmovable"
        );
    }
}

#[test]
fn mobility_relabels_only_when_half_the_pageblock_is_free() {
    // a Movable pageblock with only a quarter free: Unmovable steals its free
    // pages but the pageblock stays Movable
    let mut m = machine(32, Policy::Mobility, |_| {});
    let n = zone_index(&m, 0, "Normal");
    pin_partial_blocks(&mut m, n);
    for _ in 0..2 {
        alloc_in(&mut m, n, 10, GFP_USER);
    }
    let a = alloc_in(&mut m, n, 9, GFP_USER);
    let b = alloc_in(&mut m, n, 8, GFP_USER);
    let pb = block_of(&m, n, a);
    assert_eq!(block_of(&m, n, b), pb);
    assert_eq!(type_pages(&m, n, LT_USERRCLM), 256);
    let (steals, relabels) = (m.counters.steals, m.counters.pageblock_relabels);
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL);
    assert_eq!(block_of(&m, n, p), pb);
    assert_eq!(
        m.zones[n].block_type[pb] as usize, LT_USERRCLM,
        "relabelled with 256 of 1024 free"
    );
    assert_eq!(m.counters.steals, steals + 1);
    assert_eq!(m.counters.pageblock_relabels, relabels);
    assert_eq!(
        type_pages(&m, n, LT_USERRCLM),
        0,
        "free pages of the pageblock not moved"
    );
    assert_eq!(type_pages(&m, n, LT_NORCLM), 255);

    // the same with half of the pageblock free: relabelled
    let mut m = machine(32, Policy::Mobility, |_| {});
    pin_partial_blocks(&mut m, n);
    for _ in 0..2 {
        alloc_in(&mut m, n, 10, GFP_USER);
    }
    let a = alloc_in(&mut m, n, 9, GFP_USER);
    let pb = block_of(&m, n, a);
    let relabels = m.counters.pageblock_relabels;
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL);
    assert_eq!(block_of(&m, n, p), pb);
    assert_eq!(
        m.zones[n].block_type[pb] as usize, LT_NORCLM,
        "not relabelled with 512 of 1024 free"
    );
    assert_eq!(m.counters.pageblock_relabels, relabels + 1);
    m.check().unwrap();
}

/// A Normal zone whose free memory is all in Unmovable blocks of order <= 4
/// (every 32-page region keeps one pinned page) and nothing on Movable lists.
fn fragmented_unmovable_zone() -> (Machine, usize) {
    let mut m = machine(32, Policy::Mobility, |_| {});
    let n = zone_index(&m, 0, "Normal");
    let zs = m.zones[n].start_pfn;
    // use up DMA first, so that nothing below falls back to it
    let d = zone_index(&m, 0, "DMA");
    while let Some(p) = m.alloc(0, gfp::GFP_DMA | gfp::__GFP_HIGH, None).unwrap() {
        assert_eq!(m.zone_of_pfn(p), d);
    }
    // fill Normal with Unmovable pages down to the GFP_ATOMIC watermark
    let mut pages = Vec::new();
    while let Some(p) = m.alloc(0, GFP_ATOMIC, None).unwrap() {
        assert_eq!(m.zone_of_pfn(p), n);
        pages.push(p);
    }
    assert!(m.zones[n]
        .block_type
        .iter()
        .take(4)
        .all(|&b| b as usize == LT_NORCLM));
    // what is left free is the top of the zone, in blocks bigger than order 4.
    // Some headroom below order 4 first (offsets 1..15 of ten regions)...
    let regions: Vec<u64> = pages
        .iter()
        .copied()
        .filter(|&p| (p - zs) % 32 == 0)
        .collect();
    let mut freed = std::collections::HashSet::new();
    for &r in &regions[..10] {
        for p in r + 1..r + 16 {
            m.free(p).unwrap();
            freed.insert(p);
        }
    }
    // ...then pin the top: big blocks whole (largest first, while the next one is
    // still free the order-aware watermark check passes), then order-4 pieces
    // until no free block of order 5 or more is left
    for o in (6..MAX_ORDER).rev() {
        while nr(&m, n, LT_NORCLM, o) > 0 {
            alloc_in(&mut m, n, o as u32, GFP_ATOMIC);
        }
    }
    while (5..MAX_ORDER).any(|o| m.zones[n].nr_free(o) > 0) {
        alloc_in(&mut m, n, 4, GFP_ATOMIC);
    }
    // keep the first page of every 32-page region, free the rest
    for &p in &pages {
        if (p - zs) % 32 != 0 && !freed.contains(&p) {
            m.free(p).unwrap();
        }
    }
    m.check().unwrap();
    for o in 5..MAX_ORDER {
        assert_eq!(m.zones[n].nr_free(o), 0);
    }
    assert_eq!(type_pages(&m, n, LT_USERRCLM), 0);
    assert_eq!(type_pages(&m, n, LT_KERNRCLM), 0);
    assert!(nr(&m, n, LT_NORCLM, 0) > 0 && nr(&m, n, LT_NORCLM, 4) > 0);
    (m, n)
}

#[test]
fn mobility_movable_that_may_not_steal_takes_the_smallest_block() {
    let (mut m, n) = fragmented_unmovable_zone();
    // order 4 < pageblock_order / 2 = 5: a Movable request may not steal, so it
    // takes the smallest fitting block, not steal-big's order 4
    for order in [0u32, 1, 2] {
        let want = head(&m, n, LT_NORCLM, order as usize);
        let types = m.zones[n].block_type.clone();
        let (steals, relabels) = (m.counters.steals, m.counters.pageblock_relabels);
        let p = alloc_in(&mut m, n, order, GFP_USER);
        assert_eq!(p, want, "order {order}: not the smallest Unmovable block");
        assert_eq!(m.zones[n].block_type, types, "pageblock relabelled");
        assert_eq!(
            (m.counters.steals, m.counters.pageblock_relabels),
            (steals, relabels)
        );
    }
    // a Reclaimable request may steal: it takes the biggest (order 4) and moves
    // every free page of that pageblock to Reclaimable, relabelling it
    let want = head(&m, n, LT_NORCLM, 4);
    let pb = block_of(&m, n, want);
    let start = m.zones[n].start_pfn + ((pb as u64) << m.block_order);
    let pm = m.page_map();
    let free_in_block = (start..start + 1024)
        .filter(|&p| pm[p as usize] == kmm_core::mm::page::PM_FREE)
        .count() as u64;
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL | __GFP_KERNRCLM);
    assert_eq!(p, want);
    assert!(free_in_block >= 512);
    assert_eq!(m.zones[n].block_type[pb] as usize, LT_KERNRCLM);
    assert_eq!(type_pages(&m, n, LT_KERNRCLM), free_in_block - 1);
}

// ---- per-cpu lists ----------------------------------------------------------

#[test]
fn pcp_batch_follows_the_2_6_11_formula() {
    for mem in [32u64, 64, 1024] {
        let mut cfg = MachineConfig::new(Layout::X86_32, mem * MIB);
        cfg.policy = Policy::Vanilla;
        let m = Machine::new(cfg).unwrap();
        for z in &m.zones {
            // present/1024, at most 256 KiB worth of pages, divided by 4, at least 1
            let batch = ((z.present / 1024).min(256 * 1024 / 4096) / 4).max(1) as u32;
            assert_eq!(z.pcp.batch, batch, "{mem} MiB zone {}", z.name);
            assert_eq!(z.pcp.high, 6 * batch);
        }
    }
}

#[test]
fn pcp_refill_high_mark_and_drain() {
    for policy in [Policy::Vanilla, Policy::AntiFrag, Policy::Mobility] {
        let mut m = machine(64, policy, |c| {
            c.pcp = true;
            c.pcp_batch = 8;
            c.pcp_high = 32;
        });
        let n = zone_index(&m, 0, "Normal");
        let mut model = Model::boot(&m);
        // the first order-0 allocation refills the empty list with one batch
        let free0 = m.zones[n].free_pages;
        let p = alloc_in(&mut m, n, 0, GFP_USER);
        model.record_alloc(p, 0, LT_USERRCLM, GFP_USER).unwrap();
        assert_eq!(m.counters.pcp_refills, 1, "{policy:?}");
        assert_eq!(m.zones[n].pcp.count, 7);
        assert_eq!(m.zones[n].free_pages, free0 - 8);
        let mut pages = vec![p];
        for i in 1..40 {
            let p = alloc_in(&mut m, n, 0, GFP_USER);
            model.record_alloc(p, 0, LT_USERRCLM, GFP_USER).unwrap();
            pages.push(p);
            // a refill whenever the list ran dry
            assert_eq!(m.zones[n].pcp.count, (8 - 1 - i % 8) as u32);
        }
        assert_eq!(m.counters.pcp_refills, 5);
        verify(&m, &model).unwrap();
        // freeing: when the count reaches high, a batch goes back to the buddy lists
        let mut count = m.zones[n].pcp.count;
        for &p in &pages {
            let free = m.zones[n].free_pages;
            m.free(p).unwrap();
            model.record_free(p);
            count += 1;
            if count >= 32 {
                count -= 8;
                assert_eq!(
                    m.zones[n].free_pages,
                    free + 8,
                    "{policy:?}: no batch freed at high"
                );
            } else {
                assert_eq!(m.zones[n].free_pages, free);
            }
            assert_eq!(m.zones[n].pcp.count, count);
            verify(&m, &model).unwrap();
        }
        // drain_pcp returns every pcp page and the lists are fully coalesced again
        let drained = m.drain_pcp();
        assert_eq!(drained, count as u64);
        assert_eq!(m.zones.iter().map(|z| z.pcp.count).sum::<u32>(), 0);
        assert_eq!(m.free_area(), model.canonical());
        verify(&m, &model).unwrap();
        assert_eq!(m.drain_pcp(), 0);
    }
}

#[test]
fn pcp_lists_per_policy() {
    let pcp8 = |c: &mut MachineConfig| {
        c.pcp = true;
        c.pcp_batch = 8;
        c.pcp_high = 48;
    };
    // antifrag v7: only UserRclm order-0 pages go through the per-cpu lists
    let mut m = machine(64, Policy::AntiFrag, pcp8);
    let n = zone_index(&m, 0, "Normal");
    alloc_in(&mut m, n, 0, GFP_KERNEL);
    alloc_in(&mut m, n, 0, GFP_KERNEL | __GFP_KERNRCLM);
    assert_eq!(m.zones[n].pcp.count, 0);
    alloc_in(&mut m, n, 0, GFP_USER);
    assert!(m.zones[n].pcp.count > 0);
    // mobility: one list per type; vanilla: one list
    let mut m = machine(64, Policy::Mobility, pcp8);
    alloc_in(&mut m, n, 0, GFP_USER);
    alloc_in(&mut m, n, 0, GFP_KERNEL);
    let b = m.zones[n].pcp.batch;
    assert_eq!(m.zones[n].pcp.lists[LT_USERRCLM].nr, b - 1);
    assert_eq!(m.zones[n].pcp.lists[LT_NORCLM].nr, b - 1);
    let mut m = machine(64, Policy::Vanilla, pcp8);
    alloc_in(&mut m, n, 0, GFP_USER);
    alloc_in(&mut m, n, 0, GFP_KERNEL);
    assert_eq!(m.zones[n].pcp.lists[0].nr, b - 2);
    // __GFP_COLD takes from the cold end (the tail), hot from the head
    let tail = m.zones[n].pcp.lists[0].tail as u64;
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL | gfp::__GFP_COLD);
    assert_eq!(p, tail);
    let head = m.zones[n].pcp.lists[0].head as u64;
    let p = alloc_in(&mut m, n, 0, GFP_KERNEL);
    assert_eq!(p, head);
}
