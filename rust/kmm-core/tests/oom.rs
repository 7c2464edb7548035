//! The OOM killer: an allocation that may not fail and finds nothing to
//! reclaim kills the task holding the most pages, frees what belongs to it and
//! drops its remaining work; with the killer off the allocation fails and is
//! counted.

mod common;

use common::*;
use kmm_core::gfp::{GFP_KERNEL, GFP_USER};
use kmm_core::replay::{TraceOp, OP_ALLOC, OP_SLAB_ALLOC, TF_TASK};
use kmm_core::{Error, Layout, Machine, MachineConfig, Policy};

fn machine(oom: bool) -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, 32 * MIB);
    cfg.policy = Policy::Vanilla;
    cfg.pcp = false;
    cfg.oom_kill = oom;
    cfg.max_objects = 100_000;
    Machine::new(cfg).unwrap()
}

/// A page of task `tgid`'s own (a kernel allocation that goes with the task).
fn task_alloc(obj: u32, tgid: u32) -> TraceOp {
    TraceOp {
        flags: TF_TASK,
        pid: tgid,
        tgid,
        ..alloc(obj, 0, GFP_KERNEL)
    }
}

/// Task 100 holds 300 pages, task 200 holds 100 (and a slab object), the
/// kernel the rest: nothing is reclaimable. Returns the next free object id.
fn fill(m: &mut Machine) -> u32 {
    let mut ops = vec![];
    for o in 0..300 {
        ops.push(task_alloc(o, 100));
    }
    for o in 300..400 {
        ops.push(task_alloc(o, 200));
    }
    ops.push(TraceOp {
        op: OP_SLAB_ALLOC,
        order: 0,
        flags: TF_TASK,
        obj: 400,
        gfp: GFP_KERNEL,
        pid: 200,
        tgid: 200,
        ..TraceOp::default()
    });
    m.replay_ops(&ops, false).unwrap();
    // the kernel takes everything else, one page at a time, until the first
    // allocation that the free lists cannot meet
    let mut id = 1000;
    loop {
        let killed = m.counters.oom_kill + m.counters.oom_fail;
        let before = m.counters.alloc_fail;
        let out = m
            .replay_ops(&[alloc(id, 0, GFP_KERNEL)], true)
            .unwrap()
            .outcomes
            .unwrap()[0];
        id += 1;
        if m.counters.oom_kill + m.counters.oom_fail > killed {
            assert!(out >= 0 || m.counters.alloc_fail > before);
            return id;
        }
        assert!(id < 20_000, "memory never ran out");
    }
}

#[test]
fn oom_kills_the_largest_task_frees_its_memory_and_drops_its_work() {
    let mut m = machine(true);
    let next = fill(&mut m);
    m.check().unwrap();
    assert_eq!(m.counters.oom_kill, 1);
    assert_eq!(m.counters.oom_kill_pages, 300);
    assert_eq!(m.counters.oom_fail, 0);
    // the allocation that ran out succeeded after the kill
    assert!(m.object_block(next - 1).is_some());
    assert!(
        (0..300).all(|o| m.object_block(o).is_none()),
        "task 100 keeps memory"
    );
    assert!(
        (300..400).all(|o| m.object_block(o).is_some()),
        "task 200 was touched"
    );
    // its remaining work is dropped: a new allocation, a fault; its frees are no-ops
    let noop = m.counters.free_noop;
    let out = m
        .replay_ops(
            &[
                task_alloc(500, 100),
                TraceOp {
                    pid: 100,
                    tgid: 100,
                    ..touch(5)
                },
                free(7),
                free(500),
            ],
            true,
        )
        .unwrap()
        .outcomes
        .unwrap();
    assert_eq!(out, vec![-1, -1, -1, -1]);
    assert_eq!(m.counters.oom_dropped, 2);
    assert_eq!(m.counters.free_noop, noop + 2);
    // another task still allocates
    let out = m
        .replay_ops(&[task_alloc(501, 200)], true)
        .unwrap()
        .outcomes
        .unwrap();
    assert!(out[0] >= 0);
    m.check().unwrap();
}

#[test]
fn with_the_oom_killer_off_the_allocation_fails_and_is_counted() {
    let mut m = machine(false);
    let fails = m.counters.alloc_fail;
    fill(&mut m);
    m.check().unwrap();
    assert_eq!(m.counters.oom_kill, 0);
    assert_eq!(m.counters.oom_fail, 1);
    assert_eq!(m.counters.alloc_fail, fails + 1);
    assert!(
        (0..400).all(|o| m.object_block(o).is_some()),
        "nothing was freed"
    );
}

#[test]
fn no_oom_while_reclaim_makes_progress_or_for_high_orders() {
    let mut m = machine(true);
    let mut ops = vec![];
    for o in 0..300 {
        ops.push(task_alloc(o, 100));
    }
    m.replay_ops(&ops, false).unwrap();
    // fill with reclaimable user pages: reclaim always finds something
    let mut id = 1000;
    while id < 12_000 {
        m.replay_ops(&[alloc(id, 0, GFP_USER)], false).unwrap();
        id += 1;
    }
    assert_eq!(m.counters.oom_kill, 0);
    assert!(m.counters.pgsteal_direct + m.counters.pgsteal_kswapd > 0);
    // an order-10 request may fail: it never calls the OOM killer
    let mut m = machine(true);
    m.replay_ops(&ops, false).unwrap();
    let mut id = 1000;
    while m
        .replay_ops(&[alloc(id, 0, GFP_KERNEL)], true)
        .unwrap()
        .outcomes
        .unwrap()[0]
        >= 0
        && m.counters.oom_kill == 0
    {
        id += 1;
    }
    let kills = m.counters.oom_kill;
    let big = TraceOp {
        op: OP_ALLOC,
        order: 10,
        obj: 50_000,
        gfp: GFP_KERNEL,
        ..TraceOp::default()
    };
    m.replay_ops(&[big], false).unwrap();
    assert_eq!(m.counters.oom_kill, kills);
}

#[test]
fn unknown_flags_are_trace_errors() {
    let mut m = machine(true);
    // bit 2 is TF_UNEVICTABLE; 4 and up mean nothing
    let bad = TraceOp {
        flags: 4,
        ..alloc(0, 0, GFP_KERNEL)
    };
    assert!(matches!(m.replay_ops(&[bad], false), Err(Error::Trace(_))));
    let on_free = TraceOp {
        flags: TF_TASK,
        ..free(0)
    };
    assert!(matches!(
        m.replay_ops(&[alloc(0, 0, GFP_KERNEL), on_free], false),
        Err(Error::Trace(_))
    ));
    assert!(m.object_block(0).is_none());
}
