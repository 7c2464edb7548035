//! THP faults (`mm::huge_memory`): a region head faulted with
//! `GFP_TRANSHUGE_LIGHT` gets a huge page that covers the region's other
//! pages, or falls back to base pages; the counters; invariants throughout.

mod common;

use common::{alloc, free, touch, MIB};
use kmm_core::gfp;
use kmm_core::{Layout, Machine, MachineConfig, Policy};

fn machine(mem: u64) -> Machine {
    let mut c = MachineConfig::new(Layout::X86_64, mem);
    c.policy = Policy::Mobility;
    c.compaction = true;
    c.freelist_hygiene = true;
    Machine::new(c).unwrap()
}

/// Fault `regions` 2 MiB regions: each head as a THP, then its 511 pages.
fn fault(m: &mut Machine, first: u32, regions: u32) {
    let mut ops = Vec::new();
    for r in 0..regions {
        let head = (first + r) * 512;
        ops.push(alloc(head, 9, gfp::GFP_TRANSHUGE_LIGHT));
        for k in 1..512 {
            ops.push(alloc(
                head + k,
                0,
                gfp::GFP_TRANSHUGE_LIGHT & !gfp::__GFP_NO_KSWAPD,
            ));
        }
    }
    m.replay_ops(&ops, false).unwrap();
}

#[test]
fn a_huge_page_covers_its_region_and_frees_as_one() {
    let mut m = machine(64 * MIB);
    let free0 = m.zones.iter().map(|z| z.free_pages).sum::<u64>();
    fault(&mut m, 0, 4);
    m.check().unwrap();
    assert_eq!(m.counters.thp_fault_alloc, 4);
    assert_eq!(m.counters.thp_fault_fallback, 0);
    let (p, o) = m.object_block(512).unwrap();
    assert_eq!(o, 9);
    assert!(
        m.object_block(513).is_none(),
        "a covered page holds nothing"
    );
    // touching a covered page touches the head; frees of the region's pages are no-ops
    m.replay_ops(&[touch(700)], false).unwrap();
    let ops: Vec<_> = (0..4 * 512).rev().map(free).collect();
    m.replay_ops(&ops, false).unwrap();
    m.drain_pcp();
    m.check().unwrap();
    assert!(p > 0);
    assert_eq!(m.zones.iter().map(|z| z.free_pages).sum::<u64>(), free0);
}

#[test]
fn a_failed_thp_fault_falls_back_to_base_pages() {
    let mut m = machine(64 * MIB);
    // pin one unmovable page in every pageblock: no order-9 block can exist
    let nr = m.nr_pages;
    let mut pins = Vec::new();
    while let Some(p) = m.alloc(0, gfp::GFP_KERNEL, None).unwrap() {
        pins.push(p);
        if pins.len() as u64 > nr {
            break;
        }
    }
    let keep: Vec<u64> = pins.iter().copied().filter(|p| p % 512 == 7).collect();
    for p in pins.iter().filter(|p| *p % 512 != 7) {
        m.free(*p).unwrap();
    }
    assert!(!keep.is_empty());
    m.check().unwrap();
    fault(&mut m, 0, 2);
    m.check().unwrap();
    assert_eq!(m.counters.thp_fault_alloc, 0);
    assert_eq!(m.counters.thp_fault_fallback, 2);
    // the head and every other page of each region hold a base page now
    for obj in [0u32, 1, 511, 512, 1023] {
        assert_eq!(m.object_block(obj).map(|b| b.1), Some(0), "object {obj}");
    }
    let ops: Vec<_> = (0..2 * 512).map(free).collect();
    m.replay_ops(&ops, false).unwrap();
    m.check().unwrap();
}

#[test]
fn thp_faults_are_ordinary_allocations_on_x86_32() {
    let mut c = MachineConfig::new(Layout::X86_32, 256 * MIB);
    c.policy = Policy::Mobility;
    let mut m = Machine::new(c).unwrap();
    fault(&mut m, 0, 1);
    m.check().unwrap();
    assert_eq!(
        m.counters.thp_fault_alloc + m.counters.thp_fault_fallback,
        0
    );
    assert_eq!(m.object_block(1).map(|b| b.1), Some(0));
}
