//! Replay's object slots: an id's slot is given back when the trace frees it
//! and taken by the next new id, in the same replay. None of that may show:
//! a trace replays the same whole or cut into pieces, and with every object
//! renamed to an id of its own (dense or sparse); a bad record anywhere
//! raises a Trace error and leaves the machine as it was, so that what runs
//! next runs as on a machine that never saw the bad trace.

use kmm_core::gfp::{__GFP_KERNRCLM, GFP_HIGHUSER, GFP_KERNEL, GFP_USER};
use kmm_core::mm::slab::NR_CACHES;
use kmm_core::replay::{
    TraceOp, OP_ALLOC, OP_FREE, OP_SLAB_ALLOC, OP_SLAB_FREE, OP_SLAB_PIN, OP_TICK, OP_TOUCH,
};
use kmm_core::{Error, Layout, Machine, MachineConfig, Policy};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const IDS: u32 = 24;
const GFPS: [u32; 4] = [
    GFP_KERNEL,
    GFP_USER,
    GFP_HIGHUSER,
    GFP_KERNEL | __GFP_KERNRCLM,
];

fn machine() -> Machine {
    let mut cfg = MachineConfig::new(Layout::X86_32, 32 << 20);
    cfg.policy = Policy::AntiFrag;
    cfg.max_objects = u32::MAX - 1;
    Machine::new(cfg).unwrap()
}

/// What a generated trace's objects are, as it goes.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Page,
    Slab,
}

#[derive(Default)]
struct Model {
    live: BTreeMap<u32, Kind>,
    /// pinner -> target, and how many pin each target
    pin: HashMap<u32, u32>,
    npins: HashMap<u32, u32>,
}

/// A valid trace from raw choices over a small id space (so ids come back).
fn build(choices: &[(u8, u32, u8, u8)]) -> Vec<TraceOp> {
    let mut m = Model::default();
    let mut out = vec![];
    for &(what, id, a, b) in choices {
        let id = id % IDS;
        let rec = |op, order, gfp| TraceOp {
            op,
            order,
            obj: id,
            gfp,
            pid: (a % 3) as u32,
            stack: 0,
            ..TraceOp::default()
        };
        let live = m.live.get(&id).copied();
        let pinned = m.npins.get(&id).copied().unwrap_or(0) > 0;
        match (what % 6, live) {
            (0 | 1, None) => {
                out.push(rec(OP_ALLOC, a % 3, GFPS[(b % 4) as usize]));
                m.live.insert(id, Kind::Page);
            }
            (2, None) => {
                out.push(rec(OP_SLAB_ALLOC, a % NR_CACHES as u8, GFP_KERNEL));
                m.live.insert(id, Kind::Slab);
            }
            (0 | 2, Some(k)) if !pinned => {
                out.push(rec(
                    if k == Kind::Page {
                        OP_FREE
                    } else {
                        OP_SLAB_FREE
                    },
                    0,
                    0,
                ));
                m.live.remove(&id);
                if let Some(t) = m.pin.remove(&id) {
                    *m.npins.get_mut(&t).unwrap() -= 1;
                }
            }
            (1 | 3, Some(_)) => out.push(rec(OP_TOUCH, 0, 0)),
            (4, Some(_)) if !m.pin.contains_key(&id) && !pinned => {
                // pin a live slab object that pins nothing
                let t = m
                    .live
                    .iter()
                    .filter(|&(&t, &k)| k == Kind::Slab && t != id && !m.pin.contains_key(&t))
                    .map(|(&t, _)| t)
                    .nth(b as usize % 4);
                if let Some(t) = t {
                    out.push(TraceOp {
                        op: OP_SLAB_PIN,
                        gfp: t,
                        ..rec(OP_SLAB_PIN, 0, 0)
                    });
                    m.pin.insert(id, t);
                    *m.npins.entry(t).or_default() += 1;
                }
            }
            (5, _) => out.push(TraceOp {
                op: OP_TICK,
                obj: 50_000 * (a as u32 % 4),
                ..TraceOp::default()
            }),
            _ => {}
        }
    }
    out
}

/// Give every object lifetime an id of its own (no id is used twice), far
/// apart and on both sides of the direct table's end.
fn rename(trace: &[TraceOp]) -> Vec<TraceOp> {
    let mut now: HashMap<u32, u32> = HashMap::new();
    let mut next = 0u32;
    let mut fresh = || {
        next += 1;
        if next % 2 == 0 {
            next * 7 + 3
        } else {
            (1 << 31) + next * 1_000_003
        }
    };
    let mut out = vec![];
    for r in trace {
        let mut r = *r;
        match r.op {
            OP_ALLOC | OP_SLAB_ALLOC => {
                let n = fresh();
                now.insert(r.obj, n);
                r.obj = n;
            }
            OP_TICK => {}
            _ => {
                let id = r.obj;
                r.obj = now[&id];
                if r.op == OP_SLAB_PIN {
                    r.gfp = now[&r.gfp];
                }
                if r.op == OP_FREE || r.op == OP_SLAB_FREE {
                    now.remove(&id);
                }
            }
        }
        out.push(r);
    }
    out
}

/// What a replay left that a user can see.
fn state(m: &Machine) -> (Vec<u8>, Vec<u64>, kmm_core::Counters, u64) {
    (m.page_map(), m.free_area(), m.counters.clone(), m.now_ns)
}

fn run(m: &mut Machine, t: &[TraceOp]) -> Vec<i64> {
    let r = m.replay_ops(t, true).unwrap();
    m.check().unwrap();
    r.outcomes.unwrap()
}

/// A record that makes `t` (valid) bad at its position, if one exists there.
fn poison(t: &[TraceOp], at: usize, how: u8) -> Option<TraceOp> {
    let mut live: HashMap<u32, u8> = HashMap::new();
    for r in &t[..at] {
        match r.op {
            OP_ALLOC | OP_SLAB_ALLOC => {
                live.insert(r.obj, r.op);
            }
            OP_FREE | OP_SLAB_FREE => {
                live.remove(&r.obj);
            }
            _ => {}
        }
    }
    let dead = (0..IDS).find(|i| !live.contains_key(i))?;
    let any_live = live.keys().min().copied();
    Some(match how % 5 {
        0 => TraceOp {
            op: OP_FREE,
            obj: dead,
            ..TraceOp::default()
        },
        1 => TraceOp {
            op: OP_TOUCH,
            obj: dead,
            ..TraceOp::default()
        },
        2 => TraceOp {
            op: OP_ALLOC,
            obj: any_live?,
            gfp: GFP_KERNEL,
            ..TraceOp::default()
        },
        3 => TraceOp {
            op: OP_ALLOC,
            order: 11,
            obj: dead,
            gfp: GFP_KERNEL,
            ..TraceOp::default()
        },
        _ => {
            let (&id, &op) = live.iter().min()?;
            // the wrong free for its kind
            let op = if op == OP_ALLOC {
                OP_SLAB_FREE
            } else {
                OP_FREE
            };
            TraceOp {
                op,
                obj: id,
                ..TraceOp::default()
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn slots_given_back_within_a_trace_do_not_show(
        choices in prop::collection::vec((any::<u8>(), any::<u32>(), any::<u8>(), any::<u8>()), 1..400),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let t = build(&choices);
        let mut whole = machine();
        let out = run(&mut whole, &t);

        let mut pieces = machine();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(t.len() + 1)).collect();
        at.push(0);
        at.push(t.len());
        at.sort();
        let mut out_p = vec![];
        for w in at.windows(2) {
            out_p.extend(run(&mut pieces, &t[w[0]..w[1]]));
        }
        prop_assert_eq!(&out, &out_p);
        prop_assert_eq!(state(&whole), state(&pieces));

        let mut renamed = machine();
        let out_r = run(&mut renamed, &rename(&t));
        prop_assert_eq!(&out, &out_r);
        prop_assert_eq!(state(&whole), state(&renamed));
    }

    #[test]
    fn a_bad_record_changes_nothing(
        choices in prop::collection::vec((any::<u8>(), any::<u32>(), any::<u8>(), any::<u8>()), 2..300),
        split in any::<prop::sample::Index>(),
        bad_at in any::<prop::sample::Index>(),
        how in any::<u8>(),
    ) {
        let t = build(&choices);
        let s = split.index(t.len() + 1);
        let (first, rest) = t.split_at(s);
        let mut m = machine();
        run(&mut m, first);
        let k = bad_at.index(rest.len() + 1);
        // ids as the machine has them after `first`
        let Some(bad) = poison(&t, s + k, how) else { return Ok(()) };
        let mut trace = rest.to_vec();
        trace.insert(k, bad);
        let mut twin = m.clone();
        let before = state(&m);
        let r = m.replay_ops(&trace, true);
        prop_assert!(matches!(r, Err(Error::Trace(_))), "{:?}", r.map(|r| r.ops));
        prop_assert_eq!(&state(&m), &before);
        m.check().unwrap();
        // and the rest of the good trace runs as if the bad one never came
        prop_assert_eq!(run(&mut m, rest), run(&mut twin, rest));
        prop_assert_eq!(state(&m), state(&twin));
    }
}
