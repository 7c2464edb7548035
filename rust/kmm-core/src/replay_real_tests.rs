//! Unit tests of the real-trace replay.

use super::*;

const BUDDY: u64 = 1 << KPF_BUDDY;
const LRU: u64 = 1 << KPF_LRU;

fn ev(ts: u32, body: &str) -> String {
    format!("          a b-7 [000] ..... 1.{ts:06}: {body}\n")
}

fn pfns(s: &[u8], r: std::ops::Range<usize>) -> Vec<u8> {
    s[r].to_vec()
}

#[test]
fn recorded_rules_move_pages_and_count_divergences() {
    let mut kpf = vec![BUDDY; 64];
    kpf[32..].fill(LRU);
    let lines = [
        ev(
            1,
            "mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=1 gfp_flags=GFP_KERNEL",
        ), // before the window
        ev(2, "tracing_mark_write: kmm-snapshot s end"),
        ev(
            3,
            "mm_page_alloc_zone_locked: page=0x1 pfn=0x2 order=0 migratetype=1 percpu_refill=1",
        ),
        ev(
            4,
            "mm_page_alloc: page=0x1 pfn=0x2 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
        ),
        ev(5, "mm_page_free: page=0x1 pfn=0x2 order=0"),
        ev(6, "mm_page_free_batched: page=0x1 pfn=0x2 order=0"),
        ev(
            7,
            "mm_page_pcpu_drain: page=0x1 pfn=0x2 order=0 migratetype=1",
        ),
        ev(
            8,
            "mm_page_alloc_zone_locked: page=0x1 pfn=0x4 order=2 migratetype=0 percpu_refill=0",
        ),
        ev(
            9,
            "mm_page_alloc: page=0x1 pfn=0x4 order=2 migratetype=0 gfp_flags=GFP_KERNEL",
        ),
        ev(
            10,
            "mm_page_alloc_zone_locked: page=0x1 pfn=0x10 order=4 migratetype=1 percpu_refill=0",
        ),
        ev(
            11,
            "mm_page_alloc: page=0x1 pfn=0x10 order=4 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
        ),
        ev(12, "mm_page_free: page=0x1 pfn=0x28 order=3"), // snapshot pages to a pcp list
        ev(13, "mm_page_free: page=0x1 pfn=0x30 order=4"), // not a pcp order: to buddy
        ev(
            14,
            "mm_page_alloc: page=0x1 pfn=0x30 order=0 migratetype=1 gfp_flags=GFP_KERNEL",
        ), // alloc_of_free
        ev(
            15,
            "mm_page_alloc_zone_locked: page=0x1 pfn=0x21 order=0 migratetype=1 percpu_refill=1",
        ), // refill_not_free
        ev(
            16,
            "mm_page_pcpu_drain: page=0x1 pfn=0x1 order=0 migratetype=1",
        ), // drain_of_free
        ev(
            17,
            "mm_page_alloc: page=0x1 pfn=0x100 order=0 migratetype=1 gfp_flags=GFP_KERNEL",
        ), // outside
        ev(18, "tracing_mark_write: kmm-snapshot e begin"),
        ev(
            19,
            "mm_page_alloc_zone_locked: page=0x1 pfn=0x3 order=0 migratetype=1 percpu_refill=1",
        ), // after
    ];
    let text: String = lines.concat();
    let zones = [(0u64, 64u64)];
    let mut r = RealReplay::new(Some("s"), Some("e"), Some((&kpf, &zones)), true).unwrap();
    // cut the input anywhere: the same result
    let (a, b) = text.as_bytes().split_at(333);
    r.feed(a).unwrap();
    r.feed(b).unwrap();
    r.finish().unwrap();
    let st = &r.stats;
    assert_eq!(
        (st.events_before, st.events_in_window, st.events_after),
        (1, 15, 1)
    );
    assert_eq!(st.batched_duplicates, 1);
    let s = r.states().unwrap();
    assert_eq!(s[0], S_FREE);
    assert_eq!(s[3], S_FREE);
    assert_eq!(pfns(&s, 4..8), vec![S_ALLOC; 4]);
    assert_eq!(pfns(&s, 16..32), vec![S_ALLOC; 16]);
    assert_eq!(pfns(&s, 40..48), vec![S_PCP; 8]);
    assert_eq!(s[48], S_ALLOC);
    assert_eq!(pfns(&s, 49..64), vec![S_FREE; 15]);
    assert_eq!(s[33], S_PCP);
    assert_eq!(s[2], S_FREE);
    let names: Vec<(&str, u64, u64)> = DIVERGENCES
        .iter()
        .zip(st.divergences)
        .filter(|(_, d)| d.0 > 0)
        .map(|(n, d)| (*n, d.0, d.1))
        .collect();
    assert_eq!(
        names,
        vec![
            ("refill_not_free", 1, 1),
            ("alloc_of_free", 1, 1),
            ("drain_of_free", 1, 1),
            ("reserved_or_outside", 1, 0)
        ]
    );
    let ex = &st.divergence_examples[0];
    assert_eq!(
        (ex.reason, ex.line, ex.pfn, ex.found),
        ("alloc_of_free", 14, 0x30, "free")
    );
    // the end state as kpageflags: free pages BUDDY, the order-4 block compound
    let f = r.end_kpageflags(&kpf).unwrap();
    assert_eq!(f[2], BUDDY);
    assert_eq!(f[16], LRU | 1 << KPF_COMPOUND_HEAD);
    assert_eq!(f[17], LRU | 1 << KPF_COMPOUND_TAIL);
    assert_eq!(f[4] & (1 << 26), 1 << 26);
    assert_eq!(f[35], LRU);
    // policy placement: the window's allocations and frees as records
    let im = r.importer().unwrap();
    assert_eq!(im.stats.allocations, 5);
    // frees: pfn 2, and pfn 0x28 / 0x30 were allocated before the trace
    assert_eq!((im.stats.frees, im.stats.frees_untracked), (1, 2));
}

#[test]
fn missing_markers_and_empty_windows_are_errors() {
    let kpf = vec![BUDDY; 16];
    let zones = [(0u64, 16u64)];
    let t = ev(1, "mm_page_free: page=0x1 pfn=0x0 order=0");
    let mut r = RealReplay::new(Some("s"), None, Some((&kpf, &zones)), false).unwrap();
    r.feed(t.as_bytes()).unwrap();
    let e = r.finish().unwrap_err();
    assert!(e.message().contains("kmm-snapshot s end"), "{e}");
    let mut r = RealReplay::new(None, Some("e"), None, true).unwrap();
    r.feed(t.as_bytes()).unwrap();
    assert!(r
        .finish()
        .unwrap_err()
        .message()
        .contains("kmm-snapshot e begin"));
    let mut r = RealReplay::new(None, None, None, true).unwrap();
    r.feed(b"not a trace\n").unwrap();
    assert!(r
        .finish()
        .unwrap_err()
        .message()
        .contains("no kmem page event"));
    assert!(RealReplay::new(None, None, Some((&kpf, &[(0, 17)])), false).is_err());
    // a line cut mid-way at the end is counted
    let mut r = RealReplay::new(None, None, Some((&kpf, &zones)), false).unwrap();
    r.feed(t.as_bytes()).unwrap();
    r.feed(b"   a-1 [000] ..... 1.5: mm_page_fr").unwrap();
    r.finish().unwrap();
    assert!(r.stats.truncated_last_line);
}

#[test]
fn kpageflags_read_markers_place_each_pfn_in_the_window() {
    let kpf = vec![BUDDY; 64];
    let zones = [(0u64, 64u64)];
    let z = |ts: u32, pfn: u32| {
        ev(ts, &format!("mm_page_alloc_zone_locked: page=0x1 pfn={pfn:#x} order=0 migratetype=1 percpu_refill=1"))
    };
    let lines = [
        ev(1, "tracing_mark_write: kmm-snapshot s begin"),
        z(2, 40), // before the read began: the snapshot saw it
        ev(3, "tracing_mark_write: kmm-snapshot s kpageflags 0"),
        ev(4, "tracing_mark_write: kmm-snapshot s kpageflags 32"),
        z(5, 10), // read already: in the window
        z(6, 33), // in the chunk being read: counted as seen by the snapshot
        ev(7, "tracing_mark_write: kmm-snapshot s kpageflags 64"),
        z(8, 50), // read finished
        ev(9, "tracing_mark_write: kmm-snapshot s end"),
        z(10, 51),
        ev(11, "tracing_mark_write: kmm-snapshot e begin"),
        ev(12, "tracing_mark_write: kmm-snapshot e kpageflags 0"),
        ev(13, "tracing_mark_write: kmm-snapshot e kpageflags 32"),
        z(14, 20), // read already by the end snapshot: out
        z(15, 40), // not read yet: in
        ev(16, "tracing_mark_write: kmm-snapshot e kpageflags 64"),
        z(17, 60), // after the read: out
        ev(18, "tracing_mark_write: kmm-snapshot e end"),
    ];
    let mut r = RealReplay::new(Some("s"), Some("e"), Some((&kpf, &zones)), false).unwrap();
    r.feed(lines.concat().as_bytes()).unwrap();
    r.finish().unwrap();
    let s = r.states().unwrap();
    let pcp: Vec<usize> = (0..64).filter(|&p| s[p] == S_PCP).collect();
    assert_eq!(pcp, vec![10, 40, 50, 51]);
    assert_eq!(r.stats.events_in_window, 4);
    assert_eq!((r.stats.events_before, r.stats.events_after), (2, 2));
}
