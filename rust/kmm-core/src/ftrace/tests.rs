//! Unit tests of the ftrace / perf script importer.

use super::*;
use crate::gfp;
use crate::replay::TraceOp;

const A: &str = "             sh-19934   [001] .....  1976.273556: mm_page_alloc: page=00000000b130e681 pfn=0x1bc36d order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP";

fn ops(b: &[u8]) -> Vec<TraceOp> {
    b.chunks(TRACE_RECORD_SIZE).map(TraceOp::read).collect()
}

#[test]
fn ftrace_alloc_line() {
    let Line::Event(ev, _) = parse_line(A.as_bytes()) else {
        panic!("not an event")
    };
    assert_eq!(ev.kind, EventKind::Alloc);
    assert_eq!(ev.format, Format::Ftrace);
    assert_eq!((ev.pid, ev.cpu, ev.pfn, ev.order), (19934, 1, 0x1bc36d, 0));
    assert_eq!(ev.ts_ns, 1_976_273_556_000);
    assert_eq!(ev.gfp, gfp::GFP_KERNEL | gfp::__GFP_ZERO | gfp::__GFP_COMP);
    assert_eq!(ev.unknown_fields, 0);
}

#[test]
fn comm_with_spaces_and_dashes() {
    let l = b"  opt cgu.0-x-12256 [003] d..2. 10.5: mm_page_free: page=ffffea0001 pfn=0x10 order=2";
    let Line::Event(ev, _) = parse_line(l) else {
        panic!()
    };
    assert_eq!((ev.pid, ev.cpu, ev.order, ev.pfn), (12256, 3, 2, 0x10));
    assert_eq!(ev.ts_ns, 10_500_000_000);
    let l = b"  opt cgu.0 12256 [003] 10.000001: kmem:mm_page_free: page=0x1 pfn=0x10 order=2";
    let Line::Event(ev, _) = parse_line(l) else {
        panic!()
    };
    assert_eq!(
        (ev.format, ev.pid, ev.ts_ns),
        (Format::Perf, 12256, 10_000_001_000)
    );
    let l = b"  kworker/1:1-15832   [001] d..2.  1.5: mm_page_free: page=1 pfn=0x10 order=0";
    let Line::Event(ev, _) = parse_line(l) else {
        panic!()
    };
    assert_eq!((ev.format, ev.pid), (Format::Ftrace, 15832));
    let l = b"  tgid-test-7 (    5) [000] ..... 1.0: mm_page_free: page=1 pfn=0x10 order=0";
    let Line::Event(ev, _) = parse_line(l) else {
        panic!()
    };
    assert_eq!((ev.pid, ev.tgid), (7, 5));
}

#[test]
fn perf_unknown_fields_are_counted() {
    let l = b"python3 99/100 [1] 5.000002:          1 kmem:mm_page_free: page=0x1 pfn=0x10 order=0 extra=3 ffffffff8123 __free_pages";
    let Line::Event(ev, _) = parse_line(l) else {
        panic!()
    };
    assert_eq!((ev.pid, ev.tgid), (100, 99));
    assert_eq!(ev.unknown_fields, 4);
}

#[test]
fn malformed_and_others() {
    assert_eq!(parse_line(b"# tracer: nop"), Line::Header);
    assert_eq!(parse_line(b"   "), Line::Blank);
    assert_eq!(parse_line(b"CPU:1 [LOST 42 EVENTS]"), Line::Lost(42));
    assert!(matches!(parse_line(b"garbage"), Line::Malformed(_)));
    assert!(matches!(
        parse_line(b" a-1 [000] ..... 1.0: sched_switch: prev=a"),
        Line::OtherEvent(b"sched_switch")
    ));
    assert!(matches!(
        parse_line(b" a-1 [000] ..... 1.0: mm_page_free: page=1 pfn=0x10"),
        Line::Malformed("missing field")
    ));
    assert!(matches!(
        parse_line(b" a-1 [000] ..... 1.0: mm_page_free: page=1 pfn=0x1g order=0"),
        Line::Malformed("bad field value")
    ));
}

#[test]
fn gfp_mapping() {
    let (m, u) = map_gfp(b"GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP");
    assert_eq!(u, 0);
    assert_eq!(m, gfp::GFP_HIGHUSER | gfp::__GFP_ZERO | gfp::__GFP_COMP);
    assert!(gfp::validate(m).is_ok());
    let (m, u) = map_gfp(b"GFP_KERNEL|__GFP_BOGUS|0x40000000");
    assert_eq!((m, u), (gfp::GFP_KERNEL, 1));
    let (m, _) = map_gfp(b"GFP_DMA|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_RECLAIMABLE");
    assert!(gfp::validate(m).is_ok());
    assert_eq!(map_gfp(b"none"), (0, 0));
}

#[test]
fn batched_duplicate_counted_once_and_failed_skipped() {
    let t = "\
# tracer: nop
 a-1 [000] ..... 1.000001: mm_page_alloc: page=1 pfn=0x10 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE
 a-1 [000] ..... 1.000002: mm_page_alloc: page=(null) pfn=0x0 order=3 migratetype=0 gfp_flags=GFP_KERNEL
 a-1 [000] ..... 1.000003: mm_page_free: page=1 pfn=0x10 order=0
 a-1 [000] ..... 1.000004: mm_page_free_batched: page=1 pfn=0x10 order=0
 a-1 [000] ..... 1.000005: mm_page_free_batched: page=1 pfn=0x99 order=0
 a-1 [000] ..... 1.000006: mm_page_alloc: page=1 pfn=0x20 order=1 migratetype=0 gfp_flags=GFP_KERNEL
 a-1 [000] ..... 1.000007: tracing_mark_write: kmm-snapshot x begin
 a-1 [000] ..... 1.000008: mm_page_free_batched: page=1 pfn=0x20 order=1
 a-1 [000] ..... 1.000009: mm_page_pcpu_drain: page=1 pfn=0x20 order=1 migratetype=0
 a-1 [000] ..... 1.0000";
    let (rec, st) = import_bytes(t.as_bytes()).unwrap();
    let o = ops(&rec);
    assert_eq!(o.len(), 4);
    assert_eq!((o[0].op, o[0].obj, o[0].pid), (OP_ALLOC, 0, 1));
    assert_eq!((o[1].op, o[1].obj), (OP_FREE, 0));
    assert_eq!((o[2].op, o[2].obj, o[2].order), (OP_ALLOC, 1, 1));
    assert_eq!((o[3].op, o[3].obj), (OP_FREE, 1));
    assert_eq!((st.allocations, st.frees, st.failed_allocations), (2, 2, 1));
    assert_eq!((st.batched_duplicates, st.frees_untracked), (1, 1));
    assert_eq!(st.events, [3, 0, 1, 3, 1, 0, 1]);
    assert!(st.truncated_last_line);
    assert_eq!(st.malformed, 1);
    assert_eq!(st.lines, 11);
    assert_eq!(st.markers.len(), 1);
    assert_eq!(st.markers[0].text, "kmm-snapshot x begin");
    assert_eq!((st.markers[0].record, st.markers[0].event), (3, 6));
}

#[test]
fn chunking_does_not_change_the_result() {
    let mut t = String::new();
    for i in 0..200u32 {
        t += &format!(" p q-{i} [00{}] ..... {}.{:06}: mm_page_alloc: page=1 pfn={:#x} order={} migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\n", i % 2, i / 10, i, 0x100 + i * 8, i % 4);
        if i % 3 == 0 {
            t += &format!(
                " p q-{i} [000] ..... {}.{:06}: mm_page_free: page=1 pfn={:#x} order={}\n",
                i / 10,
                i,
                0x100 + i * 8,
                i % 4
            );
        }
    }
    let (whole, st) = import_bytes(t.as_bytes()).unwrap();
    for step in [1usize, 7, 100, 4096] {
        let mut im = Importer::new();
        let mut got = Vec::new();
        for c in t.as_bytes().chunks(step) {
            im.feed(c).unwrap();
            got.extend(im.take_records());
        }
        im.finish().unwrap();
        got.extend(im.take_records());
        assert_eq!(got, whole, "chunk size {step}");
        assert_eq!(im.stats, st);
    }
}

#[test]
fn nothing_parsed_is_an_error() {
    assert!(import_bytes(b"").is_err());
    let e = import_bytes(b" a-1 [000] ..... 1.0: sched_switch: x=1\n").unwrap_err();
    assert!(
        e.message().contains("only other events (sched_switch)"),
        "{e}"
    );
    let e = import_bytes(b"hello\nworld\n").unwrap_err();
    assert!(
        e.message().contains("not an ftrace or perf script text"),
        "{e}"
    );
}
