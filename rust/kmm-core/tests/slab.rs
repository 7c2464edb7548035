//! Slab caches by object through trace replay: partial slabs, the last-object
//! free, pins, the trace checks, and a property test against a model that
//! knows only "a page goes when its last object goes".

mod common;

use common::{alloc, free, MIB};
use kmm_core::gfp::{GFP_HIGHUSER, GFP_KERNEL};
use kmm_core::mm::slab::{cache_index, objs_per_slab, CACHES};
use kmm_core::replay::{TraceOp, OP_SLAB_ALLOC, OP_SLAB_FREE, OP_SLAB_PIN, OP_TOUCH};
use kmm_core::{Error, Layout, Machine, MachineConfig, Policy};
use proptest::prelude::*;
use std::collections::HashMap;

fn machine(policy: Policy) -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, 64 * MIB);
    cfg.policy = policy;
    cfg.max_objects = 100_000;
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
fn sfree(obj: u32) -> TraceOp {
    TraceOp {
        op: OP_SLAB_FREE,
        obj,
        ..TraceOp::default()
    }
}
fn pin(obj: u32, target: u32) -> TraceOp {
    TraceOp {
        op: OP_SLAB_PIN,
        obj,
        gfp: target,
        ..TraceOp::default()
    }
}
fn slabs(m: &Machine, c: usize) -> u64 {
    m.slabinfo()[c].num_slabs
}

#[test]
fn a_new_slab_only_when_no_partial_one_has_room() {
    for policy in Policy::ALL {
        let mut m = machine(policy);
        let d = cache_index("dentry_cache").unwrap();
        let per = objs_per_slab(CACHES[d].size);
        let out = m
            .replay_ops(&(0..per).map(|o| salloc(o, d)).collect::<Vec<_>>(), true)
            .unwrap();
        let first = out.outcomes.unwrap();
        assert!(first.iter().all(|&p| p == first[0] && p >= 0), "{first:?}");
        assert_eq!(slabs(&m, d), 1);
        // the slab is full: the next object needs a second page
        let p2 = m
            .replay_ops(&[salloc(per, d)], true)
            .unwrap()
            .outcomes
            .unwrap()[0];
        assert_ne!(p2, first[0]);
        assert_eq!(slabs(&m, d), 2);
        // a hole in the first slab: the next object goes to a partial slab, no new page
        let before = m.counters.slab_pages_alloc;
        m.replay_ops(&[sfree(3), salloc(per + 1, d)], false)
            .unwrap();
        assert_eq!(m.counters.slab_pages_alloc, before);
        assert_eq!(slabs(&m, d), 2);
        assert_eq!(m.slabinfo()[d].active_objs, per as u64 + 1);
        m.check().unwrap();
    }
}

#[test]
fn the_page_goes_with_its_last_object_only() {
    let mut m = machine(Policy::AntiFrag);
    let t = cache_index("task_struct").unwrap();
    let out = m
        .replay_ops(&[salloc(0, t), salloc(1, t), salloc(2, t)], true)
        .unwrap();
    let pfn = out.outcomes.unwrap()[0] as u64;
    assert_eq!(
        m.page_map()[pfn as usize],
        3,
        "a KernNoRclm page (task_struct is unmovable)"
    );
    m.replay_ops(&[sfree(0), sfree(2)], false).unwrap();
    assert_eq!(m.counters.slab_pages_free, 0);
    assert_eq!(slabs(&m, t), 1);
    // the slab page cannot be freed as a page
    assert!(matches!(m.free(pfn), Err(Error::Pfn(_))));
    m.replay_ops(&[sfree(1)], false).unwrap();
    assert_eq!(m.counters.slab_pages_free, 1);
    assert_eq!(slabs(&m, t), 0);
    m.check().unwrap();
}

#[test]
fn reclaimable_caches_take_kernrclm_pages() {
    let mut m = machine(Policy::AntiFrag);
    let i = cache_index("ext3_inode_cache").unwrap();
    let p = m
        .replay_ops(&[salloc(0, i)], true)
        .unwrap()
        .outcomes
        .unwrap()[0];
    assert_eq!(m.page_map()[p as usize], 4, "KernRclm");
}

#[test]
fn an_inode_with_page_cache_is_not_shrunk_until_the_page_goes() {
    let mut cfg = MachineConfig::new(Layout::X86_32, 64 * MIB);
    cfg.max_objects = 100_000;
    let mut m = Machine::new(cfg).unwrap();
    let i = cache_index("ext3_inode_cache").unwrap();
    // 3000 inodes (a small cache is hardly shrunk: shrink_slab asks
    // 4 * scanned / 2 * objects / lru_pages, in batches of 128), each with a page
    let n = 3000u32;
    let mut ops: Vec<TraceOp> = (0..n).map(|o| salloc(o, i)).collect();
    for k in 0..n {
        ops.push(alloc(5000 + k, 0, GFP_HIGHUSER));
        ops.push(pin(5000 + k, k));
    }
    m.replay_ops(&ops, false).unwrap();
    // fill memory with page cache, in steps: reclaim takes the oldest pages
    // (ours), and the shrinker may then free their inodes, never before
    for step in 0..20u32 {
        let fill: Vec<TraceOp> = (0..1000u32)
            .map(|k| alloc(10_000 + step * 1000 + k, 0, GFP_HIGHUSER))
            .collect();
        m.replay_ops(&fill, false).unwrap();
        for k in 0..n {
            if m.object_block(5000 + k).is_some() {
                assert!(
                    m.slab_object(k).is_some(),
                    "inode {k} went while its page stayed"
                );
            }
        }
        m.check().unwrap();
    }
    assert!(
        m.counters.slab_reclaimed > 0,
        "the inodes whose pages went were shrunk: {:?}",
        m.counters
    );
    // a touch of a reclaimed page reads it back, and its inode with it
    let k = (0..n).find(|&k| m.slab_object(k).is_none()).unwrap();
    let before = m.counters.slab_refaults;
    m.replay_ops(
        &[TraceOp {
            op: OP_TOUCH,
            obj: 5000 + k,
            ..TraceOp::default()
        }],
        false,
    )
    .unwrap();
    assert!(m.object_block(5000 + k).is_some() && m.slab_object(k).is_some());
    assert_eq!(m.counters.slab_refaults, before + 1);
    m.check().unwrap();
}

#[test]
fn a_pinned_inode_survives_shrinking() {
    let mut cfg = MachineConfig::new(Layout::X86_32, 64 * MIB);
    cfg.max_objects = 100_000;
    let mut m = Machine::new(cfg).unwrap();
    let i = cache_index("ext3_inode_cache").unwrap();
    // 200 inodes; inode 0 (the oldest) pinned by a GFP_KERNEL page that reclaim cannot take
    let mut ops: Vec<TraceOp> = (0..200).map(|o| salloc(o, i)).collect();
    ops.push(alloc(1000, 0, GFP_KERNEL));
    ops.push(pin(1000, 0));
    m.replay_ops(&ops, false).unwrap();
    // unreclaimable fill until reclaim has to shrink the slab hard
    let fill: Vec<TraceOp> = (0..15_000u32)
        .map(|k| alloc(2000 + k, 0, GFP_KERNEL))
        .collect();
    m.replay_ops(&fill, false).unwrap();
    assert!(m.counters.slab_reclaimed > 0);
    assert!(m.slab_object(0).is_some(), "the pinned inode stayed");
    m.check().unwrap();
}

#[test]
fn bad_slab_ops_are_rejected_and_change_nothing() {
    let mut m = machine(Policy::Vanilla);
    let d = cache_index("dentry_cache").unwrap();
    m.replay_ops(&[salloc(0, d), alloc(1, 0, GFP_KERNEL), pin(1, 0)], false)
        .unwrap();
    let before = (m.counters.clone(), m.page_map(), m.slabinfo());
    let bad: Vec<(Vec<TraceOp>, &str)> = vec![
        (vec![free(0)], "a slab object"),
        (vec![sfree(1)], "a block of pages"),
        (vec![sfree(0)], "still pin"),
        (vec![salloc(5, CACHES.len())], "does not exist"),
        (
            vec![TraceOp {
                gfp: GFP_HIGHUSER,
                ..salloc(5, d)
            }],
            "zone modifier",
        ),
        (vec![pin(1, 0)], "pins at most one"),
        (
            vec![salloc(7, d), pin(7, 1)],
            "not an allocated slab object",
        ),
        (vec![sfree(9)], "not allocated"),
        (vec![salloc(0, d)], "still allocated"),
    ];
    for (ops, want) in bad {
        match m.replay_ops(&ops, false) {
            Err(Error::Trace(msg)) => assert!(msg.contains(want), "{msg} (wanted {want})"),
            r => panic!("{ops:?}: expected a TraceError, got {r:?}"),
        }
        assert_eq!((m.counters.clone(), m.page_map(), m.slabinfo()), before);
    }
    // freed in order (the pinner first) the trace is fine
    m.replay_ops(&[free(1), sfree(0)], false).unwrap();
    assert_eq!(m.counters.slab_pages_free, 1);
    m.check().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every freed object returns its slab page exactly when it was the last
    /// object on that page (a model keyed by the pfns the engine reported).
    #[test]
    fn a_free_returns_the_page_exactly_when_it_was_the_last(
        steps in prop::collection::vec((0u32..300, 0usize..4), 1..600),
        policy in prop::sample::select(Policy::ALL.to_vec()),
    ) {
        let caches = ["dentry_cache", "task_struct", "size-32", "size-2048"]
            .map(|n| cache_index(n).unwrap());
        let mut m = machine(policy);
        let mut live: HashMap<u32, u64> = HashMap::new(); // object -> its slab page
        let mut on_page: HashMap<u64, u32> = HashMap::new();
        for (obj, which) in steps {
            let c = caches[which];
            if let Some(pfn) = live.remove(&obj) {
                let before = m.counters.slab_pages_free;
                m.replay_ops(&[sfree(obj)], false).unwrap();
                let n = on_page.get_mut(&pfn).unwrap();
                *n -= 1;
                let last = *n == 0;
                if last {
                    on_page.remove(&pfn);
                }
                prop_assert_eq!(m.counters.slab_pages_free - before, last as u64);
            } else {
                let before = m.counters.slab_pages_alloc;
                let p = m.replay_ops(&[salloc(obj, c)], true).unwrap().outcomes.unwrap()[0];
                prop_assert!(p >= 0);
                let p = p as u64;
                let grew = m.counters.slab_pages_alloc - before;
                // a new page exactly when the engine handed out one the model had no object on
                prop_assert_eq!(grew, (!on_page.contains_key(&p)) as u64);
                *on_page.entry(p).or_insert(0) += 1;
                prop_assert!(on_page[&p] <= objs_per_slab(CACHES[c].size));
                live.insert(obj, p);
            }
        }
        let pages: u64 = (0..CACHES.len()).map(|c| m.slabinfo()[c].num_slabs).sum();
        prop_assert_eq!(pages, on_page.len() as u64);
        m.check().unwrap();
    }
}
