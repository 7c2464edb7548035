use super::*;

fn table() -> KindTable {
    // kind 0: pages (gfp 10, stack 100); kind 1: a slab object in cache 3
    KindTable {
        cache: vec![NO_CACHE, 3],
        gfp: vec![10, 20],
        stack: vec![100, 200],
        flags: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn ev(t: i64, op: u8, kind: u8, proc_: u8, obj: u32, pid: u32, pin: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(EVENT_SIZE);
    b.extend_from_slice(&t.to_le_bytes());
    b.extend_from_slice(&[op, 0, kind, proc_]);
    for v in [obj, pid, pin] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// (op, order, flags, obj, gfp, stack, pid) of each record
fn records(b: &[u8]) -> Vec<(u8, u8, u8, u32, u32, u32, u32)> {
    let u = |r: &[u8], i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap());
    b.chunks_exact(TRACE_RECORD_SIZE)
        .map(|r| {
            assert_eq!(r[3], 0, "padding byte");
            assert_eq!(u(r, 16), u(r, 20), "tgid is the pid");
            (r[0], r[1], r[2], u(r, 4), u(r, 8), u(r, 12), u(r, 16))
        })
        .collect()
}

#[test]
fn orders_by_millisecond_keeping_generation_order_and_ticks_each_one() {
    let mut em = Emitter::new(table()).unwrap();
    let mut part = ev(1_500, OP_ALLOC, 0, 1, 7, 9, NO_PIN);
    part.extend(ev(200, OP_ALLOC, 0, 1, 8, 9, NO_PIN));
    part.extend(ev(1_100, OP_FREE, 0, 1, 8, 9, NO_PIN));
    em.push(0, &part).unwrap();
    em.ready(0).unwrap();
    let r = {
        em.emit(2_500).unwrap();
        records(&em.take())
    };
    assert_eq!(
        r,
        vec![
            (OP_ALLOC, 0, TF_TASK, 8, 10, 100, 9),
            (OP_TICK, 0, 0, 1_000, 0, 0, 0),
            (OP_ALLOC, 0, TF_TASK, 7, 10, 100, 9),
            (OP_FREE, 0, 0, 8, 10, 100, 9),
            (OP_TICK, 0, 0, 1_000, 0, 0, 0),
            (OP_TICK, 0, 0, 500, 0, 0, 0),
        ]
    );
    assert_eq!(em.live_process_objects(), 1);
    let r = {
        em.emit(2_700).unwrap();
        records(&em.take())
    };
    assert_eq!(r, vec![(OP_TICK, 0, 0, 200, 0, 0, 0)]);
    let r = {
        em.stop();
        records(&em.take())
    };
    assert_eq!(r, vec![(OP_FREE, 0, 0, 7, 0, 0, 9)]);
    assert_eq!(em.live_process_objects(), 0);
}

#[test]
fn first_access_allocates_later_ones_touch_and_pins_follow() {
    let mut em = Emitter::new(table()).unwrap();
    let mut part = ev(10, OP_ALLOC, 1, 0, 1, 5, NO_PIN); // an inode object
    part.extend(ev(20, OP_ACCESS, 0, 0, 2, 5, 1)); // a page of its file
    part.extend(ev(30, OP_ACCESS, 0, 0, 2, 5, 1));
    em.push(0, &part).unwrap();
    em.ready(0).unwrap();
    let r = {
        em.emit(1_000).unwrap();
        records(&em.take())
    };
    assert_eq!(
        r,
        vec![
            (OP_SLAB_ALLOC, 3, 0, 1, 20, 200, 5),
            (OP_ALLOC, 0, 0, 2, 10, 100, 5),
            (OP_SLAB_PIN, 0, 0, 2, 1, 0, 5),
            (OP_TOUCH, 0, 0, 2, 10, 100, 5),
            (OP_TICK, 0, 0, 1_000, 0, 0, 0),
        ]
    );
    assert_eq!(em.cache_objects(), 2);
    // the pinning page goes first, then the inode
    let r = {
        em.drop_caches();
        records(&em.take())
    };
    assert_eq!(
        r,
        vec![
            (OP_FREE, 0, 0, 2, 0, 0, 0),
            (OP_SLAB_FREE, 0, 0, 1, 0, 0, 0)
        ]
    );
    assert_eq!(em.cache_objects(), 0);
}

#[test]
fn pages_a_permanent_process_maps_stay_through_drop_caches() {
    let mut em = Emitter::new(table()).unwrap();
    let mut part = ev(10, OP_ALLOC, 0, 2, 1, 77, NO_PIN); // a daemon's page
    part.extend(ev(20, OP_ACCESS, 0, 0, 2, 77, NO_PIN)); // its program text
    part.extend(ev(30, OP_ACCESS, 0, 0, 3, 78, NO_PIN)); // another process's file
    em.push(0, &part).unwrap();
    em.ready(0).unwrap();
    em.emit(1_000).unwrap();
    em.take();
    em.stop();
    assert!(records(&em.take()).is_empty(), "the daemon outlives stop()");
    assert_eq!(
        {
            em.drop_caches();
            records(&em.take())
        },
        vec![(OP_FREE, 0, 0, 3, 0, 0, 0)]
    );
}

#[test]
fn events_land_in_later_windows_and_bad_events_change_nothing() {
    let mut em = Emitter::new(table()).unwrap();
    em.push(0, &ev(2_000_500, OP_ALLOC, 0, 1, 1, 1, NO_PIN))
        .unwrap();
    assert!(
        em.push(1, &ev(500, OP_ALLOC, 0, 1, 2, 1, NO_PIN)).is_err(),
        "before its window"
    );
    assert!(
        em.push(0, &ev(5, OP_ALLOC, 9, 1, 2, 1, NO_PIN)).is_err(),
        "unknown kind"
    );
    assert!(em.push(0, &[0u8; 5]).is_err());
    for w in 0..2 {
        em.ready(w).unwrap();
        let r = {
            em.emit((w + 1) * WIN_US).unwrap();
            records(&em.take())
        };
        assert_eq!(r.len(), 1000);
        assert!(r.iter().all(|x| x.0 == OP_TICK));
    }
    em.ready(2).unwrap();
    let r = {
        em.emit(2_001_000).unwrap();
        records(&em.take())
    };
    assert_eq!(r[0], (OP_ALLOC, 0, TF_TASK, 1, 10, 100, 1));
    assert!(em.ready(1).is_err(), "window 1 is done");
    assert!(em.emit(3_500_000).is_err(), "past the ready window");
}

#[test]
fn a_kinds_flags_go_on_its_owned_allocations_only() {
    let mut t = table();
    t.flags = vec![TF_UNEVICTABLE, 0];
    let mut em = Emitter::new(t).unwrap();
    let mut part = ev(100, OP_ALLOC, 0, 2, 7, 9, NO_PIN);
    part.extend(ev(200, OP_FREE, 0, 2, 7, 9, NO_PIN));
    part.extend(ev(300, OP_ALLOC, 0, 0, 8, 9, NO_PIN));
    em.push(0, &part).unwrap();
    em.ready(0).unwrap();
    em.emit(1_000).unwrap();
    let r = records(&em.take());
    assert_eq!(r[0], (OP_ALLOC, 0, TF_TASK | TF_UNEVICTABLE, 7, 10, 100, 9));
    assert_eq!(r[1], (OP_FREE, 0, 0, 7, 10, 100, 9));
    assert_eq!(r[2], (OP_ALLOC, 0, 0, 8, 10, 100, 9));
    let mut bad = table();
    bad.flags = vec![TF_TASK, 0];
    assert!(Emitter::new(bad).is_err());
    let mut short = table();
    short.flags = vec![0];
    assert!(Emitter::new(short).is_err());
}

/// The records of windows 0..w (emitted to their ends) and of stop().
fn run_to(em: &mut Emitter, windows: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for w in 0..windows {
        em.ready(w).unwrap();
        em.emit((w + 1) * WIN_US).unwrap();
        out.extend(em.take());
    }
    em.stop();
    out.extend(em.take());
    out
}

#[test]
fn touches_are_the_events_of_their_draws() {
    // two pages: 3 touches over [100, 2_500_100), 2 over [10, 20), and one
    // page with none between them
    let u = [0.0, 0.5, 0.999_999_9, 0.25, 0.75];
    let n = [3i64, 0, 2];
    let t0 = [100i64, 50, 10];
    let t1 = [2_500_100i64, 60, 20];
    let obj = [4u32, 5, 6];
    let pid = [9u32, 9, 8];
    let mut a = Emitter::new(table()).unwrap();
    let mut pre = ev(5, OP_ALLOC, 0, 1, 4, 9, NO_PIN);
    pre.extend(ev(5, OP_ALLOC, 0, 1, 6, 8, NO_PIN));
    a.push(0, &pre).unwrap();
    let t = Touches {
        u: &u,
        n: &n,
        t0: &t0,
        t1: &t1,
        obj: &obj,
        pid: &pid,
        kind: 0,
        proc_: 1,
    };
    a.push_touches(0, t).unwrap();
    let mut b = Emitter::new(table()).unwrap();
    b.push(0, &pre).unwrap();
    let mut evs = Vec::new();
    for (i, &t) in [100, 100 + 1_250_000, 100 + 2_499_999, 10 + 2, 10 + 7]
        .iter()
        .enumerate()
    {
        let (o, p) = if i < 3 { (4, 9) } else { (6, 8) };
        evs.extend(ev(t, OP_TOUCH, 0, 1, o, p, NO_PIN));
    }
    b.push(0, &evs).unwrap();
    let (ra, rb) = (run_to(&mut a, 3), run_to(&mut b, 3));
    assert_eq!(ra, rb);
    assert_eq!(records(&ra).iter().filter(|r| r.0 == OP_TOUCH).count(), 5);
    // a bad part changes nothing: counts that do not match the draws, a touch
    // outside the horizon
    let mut c = Emitter::new(table()).unwrap();
    let short = Touches { u: &u[..4], ..t };
    assert!(c.push_touches(0, short).is_err());
    let late = [0i64, 0, 0];
    let far = [(MAX_AHEAD + 1) * WIN_US; 3];
    let t_far = Touches {
        t0: &late,
        t1: &far,
        ..t
    };
    assert!(c.push_touches(0, t_far).is_err());
    assert!(records(&run_to(&mut c, 3)).iter().all(|r| r.0 == OP_TICK));
}

#[test]
fn an_end_drops_later_events_and_keeps_the_trace_before_it() {
    let mut part = Vec::new();
    for (k, t) in [10i64, 1_500_000, 1_500_400, 1_500_700, 2_600_000]
        .iter()
        .enumerate()
    {
        part.extend(ev(*t, OP_ALLOC, 0, 1, k as u32, 3, NO_PIN));
    }
    let mut a = Emitter::new(table()).unwrap();
    a.push(0, &part).unwrap();
    let mut b = Emitter::new(table()).unwrap();
    // the end falls inside a millisecond: that millisecond's events stay
    b.set_end(1_500_500).unwrap();
    assert!(b.set_end(1_600_000).is_err(), "an end does not move later");
    b.push(0, &part).unwrap();
    let mut ra = Vec::new();
    let mut rb = Vec::new();
    for (em, r) in [(&mut a, &mut ra), (&mut b, &mut rb)] {
        em.ready(0).unwrap();
        em.emit(WIN_US).unwrap();
        em.ready(1).unwrap();
        em.emit(1_500_500).unwrap();
        r.extend(em.take());
    }
    assert_eq!(ra, rb);
    // emit() writes the whole millisecond of its end: 1_500_700 too
    assert_eq!(records(&rb).iter().filter(|r| r.0 == OP_ALLOC).count(), 4);
    assert!(b.emit(1_600_000).is_err(), "past the end");
    b.stop();
    let freed = records(&b.take());
    assert_eq!(freed.len(), 4, "stop() frees what was emitted");
    // the dropped events never reach a bucket: only ticks after stop()
    b.emit(2 * WIN_US).unwrap();
    b.ready(2).unwrap();
    b.emit(2_700_000).unwrap();
    assert!(records(&b.take()).iter().all(|r| r.0 == OP_TICK));
}

/// One generation window's parts: plain events `(t, obj)` and touch sets,
/// each page `(obj, pid, t0, span, draws)`.
type Part = (Vec<(i64, u32)>, Vec<Vec<(u32, u32, i64, i64, Vec<f64>)>>);

use proptest::strategy::Strategy;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Touches kept as draws at their source's marks (`Touch`, 8 bytes)
    /// are the trace the same touches make pushed as events in the same
    /// generation order: across windows, sources interleaved with later
    /// windows' events in the same millisecond, an end dropping some, and
    /// sources freed and reused.
    // times on a 100 ms grid: touches and events share milliseconds
    #[test]
    fn touches_kept_at_marks_are_the_trace_of_their_events(
        parts in proptest::collection::vec(
            (
                proptest::collection::vec(((0i64..40).prop_map(|k| k * 100_000), 0u32..64), 0..6),
                proptest::collection::vec(
                    proptest::collection::vec(
                        (0u32..64, 0u32..4, (0i64..30).prop_map(|k| k * 100_000), 0i64..3_000,
                         proptest::collection::vec(0.0f64..1.0, 0..5)),
                        0..4),
                    0..3),
            ),
            1..6),
        end in proptest::option::of(0i64..9_000_000),
    ) {
        let parts: Vec<Part> = parts;
        let mut a = Emitter::new(table()).unwrap();
        let mut b = Emitter::new(table()).unwrap();
        if let Some(e) = end {
            a.set_end(e).unwrap();
            b.set_end(e).unwrap();
        }
        let mut ra = Vec::new();
        let mut rb = Vec::new();
        for (g, (plain, sets)) in parts.iter().enumerate() {
            let g = g as i64;
            let lo = g * WIN_US;
            let mut evs = Vec::new();
            for &(t, obj) in plain {
                evs.extend(ev(lo + t, OP_ALLOC, 0, 1, obj, 1, NO_PIN));
            }
            a.push(g, &evs).unwrap();
            b.push(g, &evs).unwrap();
            for set in sets {
                let u: Vec<f64> = set.iter().flat_map(|p| p.4.iter().copied()).collect();
                let n: Vec<i64> = set.iter().map(|p| p.4.len() as i64).collect();
                let t0: Vec<i64> = set.iter().map(|p| lo + p.2).collect();
                let t1: Vec<i64> = set.iter().map(|p| lo + p.2 + p.3).collect();
                let obj: Vec<u32> = set.iter().map(|p| p.0).collect();
                let pid: Vec<u32> = set.iter().map(|p| p.1).collect();
                let t = Touches { u: &u, n: &n, t0: &t0, t1: &t1, obj: &obj, pid: &pid, kind: 0, proc_: 1 };
                a.push_touches(g, t).unwrap();
                let mut evs = Vec::new();
                for p in set {
                    for &d in &p.4 {
                        let at = lo + p.2 + (d * p.3 as f64) as i64;
                        evs.extend(ev(at, OP_TOUCH, 0, 1, p.0, p.1, NO_PIN));
                    }
                }
                b.push(g, &evs).unwrap();
            }
            proptest::prop_assert_eq!(a.held().0, b.held().0);
            // emit this window (to the end, if it falls in it)
            let stop = ((g + 1) * WIN_US).min(end.unwrap_or(i64::MAX));
            for (em, r) in [(&mut a, &mut ra), (&mut b, &mut rb)] {
                em.ready(g).unwrap();
                if stop > em.now_us() {
                    em.emit(stop).unwrap();
                }
                r.extend(em.take());
            }
        }
        // the windows still held, then stop()
        let last = parts.len() as i64 + 4;
        for (em, r) in [(&mut a, &mut ra), (&mut b, &mut rb)] {
            for w in parts.len() as i64..last {
                let stop = ((w + 1) * WIN_US).min(end.unwrap_or(i64::MAX));
                em.ready(w).unwrap();
                if stop > em.now_us() {
                    em.emit(stop).unwrap();
                }
                r.extend(em.take());
            }
        }
        // every source was released with the last window naming it
        proptest::prop_assert_eq!(a.srcs.len(), a.free_srcs.len());
        for (em, r) in [(&mut a, &mut ra), (&mut b, &mut rb)] {
            em.stop();
            r.extend(em.take());
        }
        proptest::prop_assert_eq!(records(&ra), records(&rb));
    }
}

#[test]
fn sources_are_released_with_their_last_window() {
    let mut em = Emitter::new(table()).unwrap();
    let (u, n, obj, pid) = ([0.1, 0.9], [2i64], [3u32], [1u32]);
    for g in 0..4 {
        let (t0, t1) = ([g * WIN_US], [g * WIN_US + 2 * WIN_US]);
        let t = Touches {
            u: &u,
            n: &n,
            t0: &t0,
            t1: &t1,
            obj: &obj,
            pid: &pid,
            kind: 0,
            proc_: 1,
        };
        em.push_touches(g, t).unwrap();
        em.ready(g).unwrap();
        em.emit((g + 1) * WIN_US).unwrap();
        em.take();
        // the source of window g - 1 is free by now: at most two in use
        let used = em.srcs.len() - em.free_srcs.len();
        assert!(used <= 2, "{used} sources in use at window {g}");
    }
    assert!(em.srcs.len() <= 3, "freed sources are reused");
}
