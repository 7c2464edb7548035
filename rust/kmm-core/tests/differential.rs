//! Differential property tests: random alloc/free sequences on every allocator
//! and both layouts, checked step by step against the reference model in
//! `common` (the canonical buddy decomposition, zone rules, the 2.6.11
//! watermark check and each policy's choice of block).

mod common;

use common::*;
use kmm_core::gfp;
use kmm_core::{Layout, Machine, Policy};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

#[derive(Debug, Clone)]
enum Op {
    /// order, gfp index into GFPS, node hint (None when it is >= 2)
    Alloc(u32, usize, usize),
    /// free the live block at this index (mod the number of live blocks)
    Free(usize),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    let order = prop_oneof![3 => 0u32..=3, 2 => 0u32..=10];
    prop_oneof![
        6 => (order, 0..GFPS.len(), 0usize..3).prop_map(|(o, g, n)| Op::Alloc(o, g, n)),
        4 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::Drain),
    ]
}

/// A prefix of large allocations that brings the machine near its watermarks,
/// then a random mix.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let big = (6u32..=10, 0..GFPS.len(), 0usize..3).prop_map(|(o, g, n)| Op::Alloc(o, g, n));
    (
        prop::collection::vec(big, 10..60),
        prop::collection::vec(op(), 1..250),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Run one sequence and compare with the model after every step.
fn run(policy: Policy, layout: Layout, topo: usize, pcp: bool, ops: &[Op]) -> Result<(), String> {
    run_tuned(policy, layout, topo, pcp, 0, ops)
}

/// `tune`: mobility pageblock_order (0 = default, else 3 or 6); antifrag
/// fallback_reserve (0 = v7, else 10% or 25%).
fn run_tuned(
    policy: Policy,
    layout: Layout,
    topo: usize,
    pcp: bool,
    tune: usize,
    ops: &[Op],
) -> Result<(), String> {
    let mut cfg = topology(layout, topo, policy, pcp);
    match (policy, tune) {
        (Policy::Mobility, 1) => cfg.pageblock_order = Some(3),
        (Policy::Mobility, 2) => cfg.pageblock_order = Some(6),
        (Policy::AntiFrag, 1) => cfg.fallback_reserve = 0.1,
        (Policy::AntiFrag, 2) => cfg.fallback_reserve = 0.25,
        _ => {}
    }
    let mut m = Machine::new(cfg).map_err(|e| e.to_string())?;
    let mut model = Model::boot(&m);
    verify(&m, &model).map_err(|e| format!("after boot: {e}"))?;
    for (step, op) in ops.iter().enumerate() {
        let ctx = |e: String| format!("step {step} {op:?}: {e}");
        match *op {
            Op::Alloc(order, gi, node_hint) => {
                let g = GFPS[gi];
                let node = if node_hint < m.nr_nodes {
                    Some(node_hint)
                } else {
                    None
                };
                let t = ref_type(g);
                let views = if pcp {
                    views_from_engine(&m)
                } else {
                    views_from_model(&model)
                };
                let want_zone = predict_zone(&m, &model, &views, order, g, node.unwrap_or(0));
                let via_pcp = pcp_path(&m, order, t);
                let pick = want_zone.and_then(|zi| {
                    if via_pcp {
                        None
                    } else {
                        Some((
                            zi,
                            predict_pick(&m, zi, order, t),
                            m.zones[zi].block_type.clone(),
                        ))
                    }
                });
                let counters = m.counters.clone();
                let got = m.alloc(order, g, node).map_err(|e| ctx(e.to_string()))?;
                match (want_zone, got) {
                    (None, None) => {
                        if m.counters.alloc_fail != counters.alloc_fail + 1 {
                            return Err(ctx("failure not counted in alloc_fail".into()));
                        }
                    }
                    (Some(zi), None) => {
                        return Err(ctx(format!(
                            "allocation failed but zone {zi} passes the watermark check and has a block"
                        )))
                    }
                    (None, Some(p)) => {
                        return Err(ctx(format!(
                            "allocation succeeded at pfn {p} but no zone of the zonelist passes the watermark check with a block"
                        )))
                    }
                    (Some(zi), Some(p)) => {
                        let gz = model.zone_of(p);
                        if gz != zi {
                            return Err(ctx(format!(
                                "got pfn {p} in zone {gz} (node {}) but the zonelist walk picks zone {zi} (node {})",
                                model.zones[gz].node, model.zones[zi].node
                            )));
                        }
                        model.record_alloc(p, order, t, g).map_err(ctx)?;
                        if let Some((zi, Some(pk), before)) = pick {
                            if p != pk.pfn as u64 {
                                return Err(ctx(format!(
                                    "took pfn {p}, expected the head {} of list type {} order {}",
                                    pk.pfn, pk.lt, pk.order
                                )));
                            }
                            let mut want = before;
                            for (b, ty) in pk.relabel {
                                want[b] = ty;
                            }
                            if m.zones[zi].block_type != want {
                                let i = (0..want.len())
                                    .find(|&i| want[i] != m.zones[zi].block_type[i])
                                    .unwrap();
                                return Err(ctx(format!(
                                    "block type {i} of zone {zi} is {} after the allocation, expected {}",
                                    m.zones[zi].block_type[i], want[i]
                                )));
                            }
                        } else if let Some((_, None, _)) = pick {
                            return Err(ctx("the model finds no block to take".into()));
                        }
                    }
                }
            }
            Op::Free(i) => {
                if model.blocks.is_empty() {
                    continue;
                }
                let pfn = *model.blocks.keys().nth(i % model.blocks.len()).unwrap();
                m.free(pfn).map_err(|e| ctx(e.to_string()))?;
                model.record_free(pfn);
            }
            Op::Drain => {
                let pcp: u64 = m.zone_stats().iter().map(|s| s.pcp).sum();
                let n = m.drain_pcp();
                if n != pcp {
                    return Err(ctx(format!("drain_pcp returned {n}, pcp held {pcp}")));
                }
                if m.zone_stats().iter().any(|s| s.pcp != 0) {
                    return Err(ctx("pcp pages left after drain_pcp".into()));
                }
            }
        }
        verify(&m, &model).map_err(ctx)?;
    }
    Ok(())
}

fn layout_of(i: usize) -> Layout {
    if i == 0 {
        Layout::X86_32
    } else {
        Layout::X86_64
    }
}

const CASES: u32 = 48;

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn vanilla_matches_model(l in 0usize..2, topo in 0usize..2, pcp in any::<bool>(),
                             ops in ops()) {
        if let Err(e) = run(Policy::Vanilla, layout_of(l), topo, pcp, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn antifrag_matches_model(l in 0usize..2, topo in 0usize..2, pcp in any::<bool>(),
                              tune in 0usize..3, ops in ops()) {
        if let Err(e) = run_tuned(Policy::AntiFrag, layout_of(l), topo, pcp, tune, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn mobility_matches_model(l in 0usize..2, topo in 0usize..2, pcp in any::<bool>(),
                              tune in 0usize..3, ops in ops()) {
        if let Err(e) = run_tuned(Policy::Mobility, layout_of(l), topo, pcp, tune, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

proptest! {
    #![proptest_config(config(4))]

    /// A 1 GiB two-node machine: HighMem on node 1 (x86_32), per-node watermarks
    /// and lowmem_reserve, node fallback between HighMem, Normal and DMA.
    #[test]
    fn highmem_numa_matches_model(p in 0usize..3, pcp in any::<bool>(),
                                  big in prop::collection::vec((9u32..=10, 0..GFPS.len(), 0usize..2), 150..280),
                                  rest in prop::collection::vec(op(), 1..80)) {
        let policy = [Policy::Vanilla, Policy::AntiFrag, Policy::Mobility][p];
        let mut ops: Vec<Op> = big.into_iter().map(|(o, g, n)| Op::Alloc(o, g, n)).collect();
        ops.extend(rest);
        if let Err(e) = run(policy, Layout::X86_32, 2, pcp, &ops) {
            return Err(TestCaseError::fail(format!("{policy:?}: {e}")));
        }
    }
}

/// Fill a machine with random allocations until every order fails, so the
/// watermark refusals and zone fallbacks are exercised for sure (the random
/// sequences above do not always get that far).
#[test]
fn fill_to_exhaustion_matches_model() {
    for policy in [Policy::Vanilla, Policy::AntiFrag, Policy::Mobility] {
        for l in 0..2 {
            for pcp in [false, true] {
                let mut ops = Vec::new();
                let mut x = 0x9e3779b97f4a7c15u64;
                for i in 0..400usize {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let order = if i < 300 {
                        (x % 11) as u32
                    } else {
                        (x % 3) as u32
                    };
                    ops.push(Op::Alloc(order, (x >> 8) as usize % GFPS.len(), 0));
                    if x % 7 == 0 {
                        ops.push(Op::Free((x >> 20) as usize));
                    }
                }
                for tune in 0..3 {
                    if policy == Policy::Vanilla && tune > 0 {
                        continue;
                    }
                    if let Err(e) = run_tuned(policy, layout_of(l), 0, pcp, tune, &ops) {
                        panic!("{policy:?} {:?} pcp={pcp} tune={tune}: {e}", layout_of(l));
                    }
                }
            }
        }
    }
}

/// GFP_KERNEL never gets HighMem, GFP_DMA only DMA, GFP_DMA32 (x86_64) never
/// Normal: spelled out on a machine that has every zone.
#[test]
fn zone_modifiers_pick_allowed_zones() {
    // x86_32 with HighMem: 1 GiB
    let mut m = boot(Layout::X86_32, 1024 * MIB, Policy::Vanilla, false, false);
    let names = |m: &Machine, p: u64| m.zones[m.zone_of_pfn(p)].name;
    for _ in 0..50 {
        let p = m.alloc(0, gfp::GFP_KERNEL, None).unwrap().unwrap();
        assert_eq!(names(&m, p), "Normal");
        let p = m.alloc(0, gfp::GFP_HIGHUSER, None).unwrap().unwrap();
        assert_eq!(names(&m, p), "HighMem");
        let p = m.alloc(0, gfp::GFP_DMA, None).unwrap().unwrap();
        assert_eq!(names(&m, p), "DMA");
    }
    // x86_64 with Normal above 4 GiB (5 GiB machine; a vanilla boot is cheap)
    let mut m = boot(
        Layout::X86_64,
        5 * 1024 * MIB,
        Policy::Vanilla,
        false,
        false,
    );
    for _ in 0..50 {
        let p = m.alloc(3, gfp::GFP_KERNEL, None).unwrap().unwrap();
        assert_eq!(names(&m, p), "Normal");
        let p = m
            .alloc(3, gfp::GFP_DMA32 | gfp::GFP_KERNEL, None)
            .unwrap()
            .unwrap();
        assert_eq!(names(&m, p), "DMA32");
        let p = m
            .alloc(3, gfp::GFP_DMA | gfp::GFP_KERNEL, None)
            .unwrap()
            .unwrap();
        assert_eq!(names(&m, p), "DMA");
    }
    m.check().unwrap();
}

/// Node-local first: with two nodes, a request on node 1 is served from node 1
/// until node 1 falls to its low watermark, and only then from node 0 (the
/// pages_low pass walks the remote zones before the pages_min pass comes back).
#[test]
fn node_local_first_then_remote() {
    let mut cfg = kmm_core::MachineConfig::new(Layout::X86_32, 64 * MIB);
    cfg.nodes = 2;
    cfg.pcp = false;
    cfg.reclaim = false;
    let mut m = Machine::new(cfg).unwrap();
    let n1 = zone_index(&m, 1, "Normal");
    let node_of = |m: &Machine, p: u64| m.zones[m.zone_of_pfn(p)].node;
    let mut local = 0u64;
    loop {
        let free_before = m.zones[n1].free_pages;
        match m.alloc(4, gfp::GFP_KERNEL, Some(1)).unwrap() {
            Some(p) if node_of(&m, p) == 1 => local += 1,
            Some(_) => {
                // spilled: node 1 could not pass its pages_low check any more
                let z = &m.zones[n1];
                assert!(
                    free_before - 15 <= z.pages_low + 16,
                    "spilled with {free_before} free pages on node 1 (low {})",
                    z.pages_low
                );
                break;
            }
            None => panic!("failed before spilling"),
        }
    }
    // node 1 (32 MiB = 8192 pages, no reservations but its mem_map) served first
    assert!(
        local * 16 > 7000,
        "only {local} local blocks before spilling"
    );
    m.check().unwrap();
}

/// Watermarks and lowmem_reserve at boot, from 2.6.11's `mm/page_alloc.c` with 2.6.11's
/// `present_pages` as the zone size: min_free_kbytes = sqrt(lowmem_kbytes * 16)
/// clamped to [128, 65536], shared by the lowmem zones in proportion to their
/// size; HighMem gets size/1024 clamped to [32, 128]; low = min + min/4,
/// high = min + min/2; lowmem_reserve[j] of a lower zone = pages of the zones
/// above it up to j, divided by its ratio (DMA 256, DMA32 256, Normal 32).
#[test]
fn watermarks_and_lowmem_reserve_at_boot() {
    let cases = [
        (Layout::X86_32, 64 * MIB, 1usize),
        (Layout::X86_32, 1536 * MIB, 1),
        (Layout::X86_32, 3 * 1024 * MIB, 2),
        (Layout::X86_64, 128 * MIB, 1),
        (Layout::X86_64, 6 * 1024 * MIB, 2),
        (Layout::X86_64, 64 * 1024 * MIB, 1),
    ];
    for (layout, mem, nodes) in cases {
        let mut cfg = kmm_core::MachineConfig::new(layout, mem);
        cfg.nodes = nodes;
        let m = Machine::new(cfg).unwrap();
        let st = m.zone_stats();
        let names = layout.zone_names();
        let zt = |name: &str| names.iter().position(|&n| n == name).unwrap();
        let highmem = |s: &kmm_core::ZoneStats| layout == Layout::X86_32 && s.zone == "HighMem";
        let lowmem: u64 = st.iter().filter(|s| !highmem(s)).map(|s| s.present).sum();
        let kb = lowmem * 4;
        let mut min_free_kb = (kb * 16).isqrt();
        min_free_kb = min_free_kb.clamp(128, 65536);
        let pages_min = min_free_kb / 4;
        for s in &st {
            let min = if highmem(s) {
                (s.present / 1024).clamp(32, 128)
            } else {
                pages_min * s.present / lowmem
            };
            assert_eq!(
                (s.min, s.low, s.high),
                (min, min + min / 4, min + min / 2),
                "{layout:?} {mem} zone {} node {}",
                s.zone,
                s.node
            );
            // lowmem_reserve, per node
            let ratio = [256u64, if layout == Layout::X86_32 { 32 } else { 256 }, 32];
            let me = zt(s.zone);
            for j in 0..3 {
                let want = if j <= me {
                    0
                } else {
                    let above: u64 = st
                        .iter()
                        .filter(|o| o.node == s.node && zt(o.zone) > me && zt(o.zone) <= j)
                        .map(|o| o.present)
                        .sum();
                    above / ratio[me]
                };
                assert_eq!(
                    s.lowmem_reserve[j], want,
                    "{layout:?} {mem} zone {} node {} lowmem_reserve[{j}]",
                    s.zone, s.node
                );
            }
        }
    }
}

/// Remote nodes are tried by distance: with node 0 closer to node 2 than to
/// node 1, node 0's overflow goes to node 2 first.
#[test]
fn remote_nodes_by_distance() {
    let mut cfg = kmm_core::MachineConfig::new(Layout::X86_64, 96 * MIB);
    cfg.nodes = 3;
    cfg.distance = vec![vec![10, 40, 20], vec![40, 10, 20], vec![20, 20, 10]];
    cfg.pcp = false;
    cfg.reclaim = false;
    let mut m = Machine::new(cfg).unwrap();
    let node_of = |m: &Machine, p: u64| m.zones[m.zone_of_pfn(p)].node;
    let mut seen = Vec::new();
    while let Some(p) = m.alloc(5, gfp::GFP_KERNEL, Some(0)).unwrap() {
        let n = node_of(&m, p);
        if seen.last() != Some(&n) {
            seen.push(n);
        }
    }
    // node 0, then node 2, then node 1 (and maybe back, in the pages_min pass)
    assert_eq!(&seen[..3], &[0, 2, 1], "{seen:?}");
    m.check().unwrap();
}
