//! Unit tests of the slab caches and their shrinker.

use super::*;
use crate::config::{Layout, MachineConfig};
use crate::gfp::GFP_KERNEL;
use crate::replay::{TraceOp, OP_SLAB_ALLOC, OP_SLAB_PIN, OP_TOUCH};

fn machine() -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, 64 << 20);
    cfg.max_objects = 10_000;
    Machine::new(cfg).unwrap()
}
fn salloc(obj: u32, c: usize) -> TraceOp {
    TraceOp {
        op: OP_SLAB_ALLOC,
        order: c as u8,
        obj,
        gfp: GFP_KERNEL,
        ..TraceOp::default()
    }
}

#[test]
fn objects_per_page_from_the_2_6_11_layout() {
    let per = |n: &str| objs_per_slab(CACHES[cache_index(n).unwrap()].size);
    // (4096 - 24) / (size + 4) on the slab; 4096 / size off it
    assert_eq!(per("dentry_cache"), 29);
    assert_eq!(per("ext3_inode_cache"), 8);
    assert_eq!(per("buffer_head"), 72);
    assert_eq!(per("task_struct"), 3);
    assert_eq!(per("size-32"), 113);
    assert_eq!(per("size-512"), 8);
    assert_eq!(per("size-4096"), 1);
    for c in CACHES {
        assert!(objs_per_slab(c.size) >= 1, "{}", c.name);
    }
}

/// Shrinking frees the oldest first, gives referenced objects a second
/// chance and skips pinned ones.
#[test]
fn the_shrinker_takes_the_oldest_unreferenced_unpinned() {
    let mut m = machine();
    let d = cache_index("dentry_cache").unwrap();
    let i = cache_index("ext3_inode_cache").unwrap();
    let mut ops: Vec<TraceOp> = (0..10).map(|o| salloc(o, d)).collect();
    ops.push(salloc(100, i));
    // object 0 (the oldest) is referenced
    ops.push(TraceOp {
        op: OP_TOUCH,
        obj: 0,
        ..TraceOp::default()
    });
    m.replay_ops(&ops, false).unwrap();
    // a page pins object 3
    m.replay_ops(
        &[
            TraceOp {
                op: crate::replay::OP_ALLOC,
                obj: 50,
                gfp: GFP_KERNEL,
                ..TraceOp::default()
            },
            TraceOp {
                op: OP_SLAB_PIN,
                obj: 50,
                gfp: 3,
                ..TraceOp::default()
            },
        ],
        false,
    )
    .unwrap();
    m.shrink_cache(d, 3, false);
    // scanned 0 (referenced: kept), 1 and 2 (freed)
    let present = |m: &Machine, o: u32| m.slab_object(o).is_some();
    assert!(present(&m, 0) && !present(&m, 1) && !present(&m, 2) && present(&m, 3));
    m.shrink_cache(d, 2, false);
    // 3 is pinned (kept), 4 freed
    assert!(present(&m, 3) && !present(&m, 4) && present(&m, 5));
    assert_eq!(m.counters.slab_reclaimed, 3);
    assert_eq!(m.counters.slabs_scanned, 5);
    m.check().unwrap();
}

#[test]
fn shrink_slab_follows_the_2_6_11_proportion() {
    let mut m = machine();
    let d = cache_index("dentry_cache").unwrap();
    let ops: Vec<TraceOp> = (0..1000).map(|o| salloc(o, d)).collect();
    m.replay_ops(&ops, false).unwrap();
    // 4 * 100 / 2 * 1000 / (1999 + 1) = 100 objects owed: below one batch
    m.shrink_slab(100, 1999, false);
    assert_eq!(m.counters.slabs_scanned, 0);
    assert_eq!(m.slab.shrink_nr[d], 100);
    // another 100 owed: 200 >= 128, one batch of 128 scanned, 72 kept
    m.shrink_slab(100, 1999, false);
    assert_eq!(m.counters.slabs_scanned, 128);
    assert_eq!(m.slab.shrink_nr[d], 72);
    // the 128 oldest went: 4 whole slabs (29 each) and 12 of the fifth
    assert_eq!(m.slab.nr_objs[d], 872);
    assert_eq!(m.counters.slab_pages_free, 4);
    m.check().unwrap();
}
