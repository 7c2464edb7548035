//! Compaction (`mm::compaction`): invariants after every step, the
//! differential test (the live objects before and after `compact()` are the
//! same, each block intact; pinned blocks stay where they are), and the
//! effect on high-order allocation.

mod common;

use common::{alloc, free};
use kmm_core::gfp;
use kmm_core::replay::{TraceOp, OP_TICK};
use kmm_core::{Layout, Machine, MachineConfig, Policy};
use proptest::prelude::*;
use std::collections::BTreeMap;

const MIB: u64 = 1 << 20;
/// A movable object, as a user page or page cache page is allocated.
const MOVABLE: u32 = gfp::GFP_HIGHUSER;
/// A reclaimable kernel object (slab): on the LRU but not movable.
const KERNRCLM: u32 = gfp::GFP_KERNEL | gfp::__GFP_KERNRCLM;

fn cfg(layout: Layout, mem: u64, policy: Policy, compaction: bool) -> MachineConfig {
    let mut c = MachineConfig::new(layout, mem);
    c.policy = policy;
    c.compaction = compaction;
    c
}

/// Every live object: id -> (order, flag word of its head with the kind bits).
fn objects(m: &Machine) -> BTreeMap<u32, (u32, u16)> {
    (0..m.objects_len() as u32)
        .filter_map(|o| {
            m.object_block(o)
                .map(|(p, ord)| (o, (ord, m.page_flags(p as u64))))
        })
        .collect()
}

/// A small LCG so the fragmenting load is the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Fill most of memory with order-0..2 objects, mostly movable with some
/// reclaimable kernel objects and a few pinned blocks, then free a random
/// two thirds of the objects: free memory ends up scattered.
fn fragment(m: &mut Machine, seed: u64, fill: f64) -> Vec<u64> {
    let mut rng = Lcg(seed);
    let target = (m.nr_pages as f64 * fill) as u64;
    let mut ops = Vec::new();
    let mut pinned = Vec::new();
    let mut pages = 0u64;
    let mut obj = 0u32;
    while pages < target {
        let r = rng.next() % 100;
        let order = (rng.next() % 3) as u8;
        if r < 3 {
            if let Some(p) = m.alloc(0, gfp::GFP_KERNEL, None).unwrap() {
                pinned.push(p);
            }
            pages += 1;
            continue;
        }
        let g = if r < 13 { KERNRCLM } else { MOVABLE };
        ops.push(alloc(obj, order, g));
        obj += 1;
        pages += 1 << order;
        if ops.len() == 4096 {
            m.replay_ops(&ops, false).unwrap();
            ops.clear();
        }
    }
    m.replay_ops(&ops, false).unwrap();
    ops.clear();
    for o in 0..obj {
        if rng.next() % 3 != 0 && m.object_block(o).is_some() {
            ops.push(free(o));
        }
    }
    m.replay_ops(&ops, false).unwrap();
    pinned
}

/// Free order-9 blocks, counting larger free blocks as the order-9 blocks they hold.
fn huge_free(m: &Machine) -> u64 {
    m.zones
        .iter()
        .map(|z| (9..11).map(|o| z.nr_free(o) << (o - 9)).sum::<u64>())
        .sum()
}

fn free_total(m: &Machine) -> u64 {
    m.zones
        .iter()
        .map(|z| z.free_pages + z.pcp.count as u64)
        .sum()
}

#[test]
fn compact_memory_moves_objects_intact_and_keeps_invariants() {
    for (layout, policy) in [
        (Layout::X86_64, Policy::Mobility),
        (Layout::X86_64, Policy::Vanilla),
        (Layout::X86_32, Policy::Mobility),
    ] {
        let mut m = Machine::new(cfg(layout, 128 * MIB, policy, false)).unwrap();
        let pinned = fragment(&mut m, 3, 0.8);
        m.check().unwrap();
        let before = objects(&m);
        let pinned_flags: Vec<u16> = pinned.iter().map(|&p| m.page_flags(p)).collect();
        let free_before = free_total(&m);
        let big_before = huge_free(&m);
        let moved = m.compact(-1).unwrap();
        m.check().unwrap();
        assert!(moved > 0, "{layout:?} {policy:?}: nothing migrated");
        assert_eq!(objects(&m).len(), before.len());
        for (o, (order, f)) in &before {
            let (p, ord) = m.object_block(*o).expect("object lost");
            assert_eq!((ord, m.page_flags(p as u64)), (*order, *f), "object {o}");
        }
        for (p, f) in pinned.iter().zip(pinned_flags) {
            assert_eq!(m.page_flags(*p), f, "pinned block at {p} moved");
        }
        assert_eq!(free_total(&m), free_before, "pages lost or made");
        let c = m.counters.clone();
        assert_eq!(c.pgmigrate_success, moved);
        assert!(c.compact_migrate_scanned > 0 && c.compact_free_scanned > 0);
        let big_after = huge_free(&m);
        // vanilla's pinned pages are scattered through every block: there
        // compaction moves pages but cannot make huge ones
        assert!(
            policy == Policy::Vanilla || big_after > big_before,
            "{layout:?} {policy:?}: order-9 free blocks {big_before} -> {big_after}"
        );
        // a second pass has nothing left to gain
        let again = m.compact(-1).unwrap();
        m.check().unwrap();
        assert!(again <= moved / 4, "second pass moved {again} of {moved}");
    }
}

#[test]
fn page_owner_records_follow_migrated_objects() {
    let mut c = cfg(Layout::X86_64, 64 * MIB, Policy::Mobility, false);
    c.page_owner = true;
    let mut m = Machine::new(c).unwrap();
    fragment(&mut m, 5, 0.7);
    let before: BTreeMap<u32, (u32, u64)> = (0..m.objects_len() as u32)
        .filter_map(|o| {
            let (p, _) = m.object_block(o)?;
            Some((o, m.owner.as_ref().unwrap().raw(p)))
        })
        .collect();
    m.compact(-1).unwrap();
    let po = m.owner.as_ref().unwrap();
    let mut migrated = 0;
    for (o, rec) in before {
        let (p, _) = m.object_block(o).unwrap();
        assert_eq!(
            po.raw(p),
            rec,
            "object {o}'s page_owner record did not follow it"
        );
        migrated += po.migrated(p) as u32;
    }
    assert!(migrated > 0);
    // a new allocation at a pfn clears its migrated mark
    let mut m2 = m.clone();
    let p = (0..m2.nr_pages as u32)
        .find(|&p| m2.owner.as_ref().unwrap().migrated(p))
        .unwrap();
    let obj = (0..m2.objects_len() as u32)
        .find(|&o| m2.object_block(o).map(|b| b.0) == Some(p))
        .unwrap();
    m2.replay_ops(&[free(obj)], false).unwrap();
    m2.drain_pcp();
    let mut hit = false;
    while let Some(q) = m2.alloc(0, gfp::GFP_KERNEL, None).unwrap() {
        if q == p as u64 {
            hit = true;
            break;
        }
    }
    assert!(hit);
    assert!(!m2.owner.as_ref().unwrap().migrated(p));
}

#[test]
fn compaction_rejects_bad_orders_and_antifrag_without_change() {
    let mut m = Machine::new(cfg(Layout::X86_64, 64 * MIB, Policy::Mobility, false)).unwrap();
    assert!(matches!(m.compact(11), Err(kmm_core::Error::Order(_))));
    assert!(matches!(m.compact(-2), Err(kmm_core::Error::Order(_))));
    assert_eq!(m.counters, kmm_core::Counters::default());
    let mut c = cfg(Layout::X86_64, 64 * MIB, Policy::AntiFrag, true);
    assert!(matches!(
        Machine::new(c.clone()),
        Err(kmm_core::Error::Config(_))
    ));
    c.compaction = false;
    let mut a = Machine::new(c).unwrap();
    assert!(matches!(a.compact(-1), Err(kmm_core::Error::Config(_))));
    let mut c = cfg(Layout::X86_64, 64 * MIB, Policy::Mobility, true);
    c.extfrag_threshold = 1001;
    assert!(Machine::new(c.clone()).is_err());
    c.extfrag_threshold = 500;
    c.compaction_proactiveness = 101;
    assert!(Machine::new(c).is_err());
}

/// Order-9 movable requests at rest, after fragmenting load: how many succeed.
fn order9_at_rest(policy: Policy, compaction: bool) -> (u64, Machine) {
    let mut m = Machine::new(cfg(Layout::X86_64, 256 * MIB, policy, compaction)).unwrap();
    fragment(&mut m, 11, 0.85);
    m.check().unwrap();
    let mut ok = 0;
    for i in 0..200 {
        match m.alloc(9, MOVABLE, None).unwrap() {
            Some(_) => ok += 1,
            None => break,
        }
        if i % 8 == 0 {
            m.check().unwrap();
        }
    }
    m.check().unwrap();
    (ok, m)
}

#[test]
fn direct_compaction_gets_more_huge_pages() {
    let (without, m0) = order9_at_rest(Policy::Mobility, false);
    let (with, m1) = order9_at_rest(Policy::Mobility, true);
    assert_eq!(m0.counters.compact_stall, 0);
    assert_eq!(m0.counters.pgmigrate_success, 0);
    assert!(m1.counters.compact_stall > 0 && m1.counters.pgmigrate_success > 0);
    assert!(
        with >= without + 10,
        "order-9 at rest: {with} with compaction, {without} without"
    );
}

#[test]
fn kcompactd_runs_in_simulated_time() {
    let mut c = cfg(Layout::X86_64, 128 * MIB, Policy::Mobility, true);
    // low mark 10, high mark 20
    c.compaction_proactiveness = 90;
    c.reclaim = false;
    let mut m = Machine::new(c).unwrap();
    fragment(&mut m, 13, 0.8);
    let score = m.fragmentation_score_node(0);
    assert!(score > 20, "score {score}");
    // 400 ms: no proactive check yet
    let short = TraceOp {
        op: OP_TICK,
        obj: 400_000,
        ..TraceOp::default()
    };
    m.replay_ops(&[short], false).unwrap();
    assert_eq!(m.counters.pgmigrate_success, 0);
    let tick = TraceOp {
        op: OP_TICK,
        obj: 100_000,
        ..TraceOp::default()
    };
    m.replay_ops(&[tick], false).unwrap();
    m.check().unwrap();
    assert!(
        m.counters.pgmigrate_success > 0,
        "proactive compaction did not run"
    );
    let after = m.fragmentation_score_node(0);
    assert!(after <= 10 || after < score / 2, "score {score} -> {after}");
}

/// Movable pages scattered through all of memory (no pageblock left free),
/// then unmovable kernel allocations that must find room among them.
fn mixed_load(m: &mut Machine, seed: u64) {
    let mut rng = Lcg(seed);
    let n = (m.nr_pages * 9 / 10) as u32;
    let mut ops: Vec<TraceOp> = (0..n).map(|o| alloc(o, 0, MOVABLE)).collect();
    ops.extend((0..n).filter(|_| rng.next() % 2 == 0).map(free));
    m.replay_ops(&ops, false).unwrap();
    for _ in 0..4000 {
        m.alloc(0, gfp::GFP_KERNEL, None).unwrap();
    }
}

#[test]
fn defrag_mode_cuts_pageblock_fallbacks() {
    let mut fallbacks = Vec::new();
    for defrag in [false, true] {
        let mut c = cfg(Layout::X86_64, 256 * MIB, Policy::Mobility, true);
        c.freelist_hygiene = true;
        c.defrag_mode = defrag;
        let mut m = Machine::new(c).unwrap();
        mixed_load(&mut m, 21);
        m.check().unwrap();
        fallbacks.push(m.counters.pageblock_fallback);
    }
    assert!(fallbacks[0] > 0, "{fallbacks:?}");
    eprintln!("pageblock_fallback without, with defrag_mode: {fallbacks:?}");
    assert!(fallbacks[1] * 10 <= fallbacks[0], "{fallbacks:?}");
}

#[test]
fn freelist_hygiene_keeps_every_free_page_on_its_pageblock_list() {
    // the same mixed load with and without 6.10's hygiene: without it, steals
    // that do not claim a pageblock leave free pages on the thief's lists and
    // allocations find them there; with it, none (and check() verifies every
    // free block is on its pageblock's list)
    let mut mismatch = Vec::new();
    for hygiene in [false, true] {
        let mut c = cfg(Layout::X86_64, 256 * MIB, Policy::Mobility, true);
        c.freelist_hygiene = hygiene;
        let mut m = Machine::new(c).unwrap();
        mixed_load(&mut m, 5);
        m.check().unwrap();
        m.tick(2_000_000_000).unwrap();
        m.check().unwrap();
        mismatch.push(m.counters.type_mismatch);
        if !hygiene {
            // the invariant check can fail: the unhygienic machine breaks it
            m.cfg.freelist_hygiene = true;
            assert!(m.check().is_err());
        }
    }
    assert!(mismatch[0] > 0, "{mismatch:?}");
    assert_eq!(mismatch[1], 0, "{mismatch:?}");
}

#[test]
fn a_fragmenting_fallback_boosts_the_watermarks_until_kswapd_is_done() {
    let mut c = cfg(Layout::X86_64, 64 * MIB, Policy::Mobility, true);
    c.compaction_proactiveness = 0;
    let mut m = Machine::new(c).unwrap();
    let zi = m.zones.len() - 1;
    let high = m.zones[zi].pages_high;
    // movable pages everywhere, then unmovable requests that must fall back
    let mut ops: Vec<TraceOp> = (0..8000).map(|o| alloc(o, 0, MOVABLE)).collect();
    ops.extend((0..8000).step_by(2).map(free));
    m.replay_ops(&ops, false).unwrap();
    let before = m.counters.pageblock_fallback;
    let mut n = 0;
    while m.counters.pageblock_fallback == before && n < 20_000 {
        m.alloc(0, gfp::GFP_KERNEL, None).unwrap();
        n += 1;
    }
    m.check().unwrap();
    let boost = m.zones[zi].compact.watermark_boost;
    assert!(boost > 0, "no boost after {n} unmovable allocations");
    assert_eq!(m.zones[zi].pages_high, high + boost);
    m.tick(1_000_000_000).unwrap();
    m.check().unwrap();
    assert_eq!(m.zones[zi].compact.watermark_boost, 0);
    assert_eq!(m.zones[zi].pages_high, high);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any mix of live objects and pinned blocks: `compact()` keeps the same
    /// objects, each with its order and flags, leaves pinned blocks in place,
    /// and keeps every invariant.
    #[test]
    fn compact_is_a_permutation_of_movable_objects(
        seed in 0u64..1_000_000,
        fill in 0.3f64..0.95,
        order in -1i32..=10,
        vanilla in any::<bool>(),
    ) {
        let policy = if vanilla { Policy::Vanilla } else { Policy::Mobility };
        let mut m = Machine::new(cfg(Layout::X86_64, 40 * MIB, policy, false)).unwrap();
        let pinned = fragment(&mut m, seed, fill);
        let before = objects(&m);
        let pf: Vec<u16> = pinned.iter().map(|&p| m.page_flags(p)).collect();
        let free_before = free_total(&m);
        m.compact(order).unwrap();
        prop_assert!(m.check().is_ok(), "{:?}", m.check());
        let after = objects(&m);
        prop_assert_eq!(&after.keys().collect::<Vec<_>>(), &before.keys().collect::<Vec<_>>());
        for (o, v) in &before {
            prop_assert_eq!(after[o], *v);
        }
        for (p, f) in pinned.iter().zip(pf) {
            prop_assert_eq!(m.page_flags(*p), f);
        }
        prop_assert_eq!(free_total(&m), free_before);
    }
}
