//! The allocation fast path's shortcuts against the obvious definitions:
//! `zone_of_pfn` (a count of zone starts for a few zones, a binary search for
//! many) against a scan of every zone's span, on machines of 1 to 12 nodes and
//! unaligned node sizes; and alloc/free pairs through the per-cpu and buddy
//! fast paths leave every invariant (`check`) holding on every policy.

use kmm_core::{gfp, Layout, Machine, MachineConfig, Policy};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const MIB: u64 = 1 << 20;

fn machine(layout: Layout, nodes: usize, extra_pages: u64, policy: Policy) -> Machine {
    let mut cfg = MachineConfig::new(layout, nodes as u64 * 48 * MIB + extra_pages * 4096);
    cfg.nodes = nodes;
    cfg.policy = policy;
    cfg.reclaim = false;
    Machine::new(cfg).expect("boot")
}

/// The zone whose span holds `pfn`, by looking at every zone.
fn zone_by_scan(m: &Machine, pfn: u64) -> Option<usize> {
    m.zones
        .iter()
        .position(|z| z.start_pfn <= pfn && pfn < z.end_pfn())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn zone_of_pfn_is_the_zone_spanning_it(
        x86_64 in any::<bool>(),
        nodes in 1usize..=12,
        extra in 0u64..3000,
        picks in prop::collection::vec(any::<u64>(), 64),
    ) {
        let layout = if x86_64 { Layout::X86_64 } else { Layout::X86_32 };
        let m = machine(layout, nodes, extra, Policy::Vanilla);
        // every zone's first and last pfn, and random ones
        let mut pfns: Vec<u64> = m.zones.iter().flat_map(|z| [z.start_pfn, z.end_pfn() - 1]).collect();
        pfns.extend(picks.iter().map(|p| p % m.nr_pages));
        for pfn in pfns {
            if let Some(zi) = zone_by_scan(&m, pfn) {
                prop_assert_eq!(m.zone_of_pfn(pfn), zi, "pfn {} of {} zones", pfn, m.zones.len());
            }
        }
    }

    #[test]
    fn order0_pairs_keep_the_invariants(
        p in 0usize..3,
        pcp in any::<bool>(),
        compaction in any::<bool>(),
        ops in prop::collection::vec((0usize..4, any::<u16>()), 1..400),
    ) {
        let policy = Policy::ALL[p];
        let mut cfg = MachineConfig::new(Layout::X86_32, 64 * MIB);
        cfg.policy = policy;
        cfg.pcp = pcp;
        // compaction (ALLOC_NOFRAGMENT on the fast path) is not the 2005 allocator's
        cfg.compaction = compaction && policy != Policy::AntiFrag;
        cfg.reclaim = false;
        let mut m = Machine::new(cfg).expect("boot");
        let masks = [gfp::GFP_KERNEL, gfp::GFP_HIGHUSER, gfp::GFP_KERNEL | gfp::__GFP_KERNRCLM, gfp::GFP_ATOMIC];
        let mut live: Vec<u64> = Vec::new();
        for (g, r) in ops {
            // mostly order 0 (the fast paths), some larger blocks to split and merge
            let order = if r % 8 == 0 { (r as u32 >> 3) % 4 } else { 0 };
            if r % 3 == 0 && !live.is_empty() {
                let i = r as usize % live.len();
                m.free(live.swap_remove(i)).unwrap();
            } else if let Some(pfn) = m.alloc(order, masks[g], None).unwrap() {
                live.push(pfn);
            }
        }
        prop_assert!(m.check().is_ok(), "{:?}", m.check());
        for pfn in live {
            m.free(pfn).unwrap();
        }
        m.drain_all_pages();
        prop_assert!(m.check().is_ok(), "{:?}", m.check());
        let free: u64 = m.zones.iter().map(|z| z.free_pages).sum();
        let present: u64 = m.zones.iter().map(|z| z.present - z.reserved).sum();
        prop_assert_eq!(free, present, "every page is free again");
    }
}
