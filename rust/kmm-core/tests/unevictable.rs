//! Unevictable pages (`TF_UNEVICTABLE`: mlocked, or anonymous memory with no
//! swap): reclaim never takes them, compaction migrates them, and every
//! invariant holds through both.

mod common;

use common::{alloc, free, touch, MIB};
use kmm_core::gfp;
use kmm_core::replay::{TraceOp, OP_SLAB_ALLOC, TF_TASK, TF_UNEVICTABLE};
use kmm_core::{Layout, Machine, MachineConfig, Policy};
use std::collections::BTreeMap;

const MOVABLE: u32 = gfp::GFP_HIGHUSER;

fn machine(compaction: bool) -> Machine {
    let mut c = MachineConfig::new(Layout::X86_64, 128 * MIB);
    c.policy = Policy::Mobility;
    c.compaction = compaction;
    Machine::new(c).unwrap()
}

fn unevictable(obj: u32) -> TraceOp {
    TraceOp {
        flags: TF_UNEVICTABLE | TF_TASK,
        tgid: 7,
        ..alloc(obj, 0, MOVABLE)
    }
}

/// Fill 90% of memory with order-0 movable pages, one in 64 unevictable (so
/// every pageblock holds some), then free every evictable one but a few:
/// reclaim could free a pageblock's evictable pages, never its unevictable ones.
fn scatter(m: &mut Machine) -> (Vec<u32>, u32) {
    let n = (m.nr_pages * 9 / 10) as u32;
    let ops: Vec<TraceOp> = (0..n)
        .map(|o| {
            if o % 64 == 0 {
                unevictable(o)
            } else {
                alloc(o, 0, MOVABLE)
            }
        })
        .collect();
    m.replay_ops(&ops, false).unwrap();
    let frees: Vec<TraceOp> = (0..n)
        .filter(|o| o % 64 != 0 && o % 7 != 0)
        .map(free)
        .collect();
    m.replay_ops(&frees, false).unwrap();
    ((0..n).filter(|o| o % 64 == 0).collect(), n)
}

fn blocks(m: &Machine, objs: &[u32]) -> BTreeMap<u32, (u32, u16)> {
    objs.iter()
        .map(|&o| {
            let (p, ord) = m
                .object_block(o)
                .expect("unevictable object lost its block");
            (o, (ord, m.page_flags(p as u64)))
        })
        .collect()
}

#[test]
fn reclaim_never_takes_an_unevictable_page() {
    let mut m = machine(false);
    let (unev, n) = scatter(&mut m);
    m.check().unwrap();
    let before = blocks(&m, &unev);
    // the blocks never filled are the only ones reclaim can give: order-9
    // requests reclaim evictable pages and get no more, since every other
    // pageblock holds an unevictable page
    let ceiling = m.highorder_ceiling(9, MOVABLE).unwrap();
    let mut got = 0;
    for _ in 0..64 {
        if m.alloc(9, MOVABLE, None).unwrap().is_some() {
            got += 1;
        }
    }
    m.check().unwrap();
    assert!(
        m.counters.pgsteal_direct + m.counters.pgsteal_kswapd > 0,
        "reclaim did not run"
    );
    assert_eq!(
        got, ceiling,
        "an order-9 block came free around unevictable pages"
    );
    assert!(ceiling < 16, "{ceiling} blocks without an unevictable page");
    assert_eq!(m.highorder_ceiling(9, MOVABLE).unwrap(), got);
    assert_eq!(
        blocks(&m, &unev),
        before,
        "an unevictable page moved or went"
    );
    // touching one changes nothing; freeing one takes it off its list
    m.replay_ops(&[touch(unev[0]), free(unev[1])], false)
        .unwrap();
    m.check().unwrap();
    assert!(m.object_block(unev[1]).is_none());
    assert!(n > 0);
}

#[test]
fn compaction_migrates_unevictable_pages_intact() {
    let mut m = machine(false);
    let (unev, _) = scatter(&mut m);
    let before = blocks(&m, &unev);
    let pfn_before: Vec<u32> = unev.iter().map(|&o| m.object_block(o).unwrap().0).collect();
    let moved = m.compact(-1).unwrap();
    m.check().unwrap();
    assert!(moved > 0);
    let after = blocks(&m, &unev);
    assert_eq!(after.len(), before.len());
    for (o, (ord, f)) in &before {
        let (p, ord2) = m.object_block(*o).unwrap();
        assert_eq!((ord2, m.page_flags(p as u64)), (*ord, *f), "object {o}");
    }
    let moved_unev = unev
        .iter()
        .zip(&pfn_before)
        .filter(|(&o, &p)| m.object_block(o).unwrap().0 != p)
        .count();
    assert!(moved_unev > 0, "no unevictable page migrated");
    assert!(m.highorder_ceiling(9, MOVABLE).unwrap() > 16);
    // the direct-compaction machine gets order-9 blocks where reclaim alone got none
    let mut c = machine(true);
    scatter(&mut c);
    let mut got = 0;
    for _ in 0..16 {
        if c.alloc(9, MOVABLE, None).unwrap().is_some() {
            got += 1;
        }
    }
    c.check().unwrap();
    assert!(got > 0 && c.counters.pgmigrate_success > 0, "got {got}");
}

#[test]
fn unevictable_is_a_page_flag_only() {
    let mut m = machine(false);
    let slab = TraceOp {
        op: OP_SLAB_ALLOC,
        flags: TF_UNEVICTABLE,
        obj: 1,
        gfp: gfp::GFP_KERNEL,
        ..TraceOp::default()
    };
    let bad = TraceOp {
        flags: 4,
        ..alloc(2, 0, MOVABLE)
    };
    for op in [slab, bad] {
        let before = m.counters.clone();
        assert!(m.replay_ops(&[op], false).is_err());
        assert_eq!(m.counters, before);
    }
    m.check().unwrap();
}
