//! Unit tests of the page_owner text parser.

use super::*;
use crate::page_owner::Allocator;
use proptest::prelude::*;

const R2005: &str = "Page allocated via order 0, mask 0x50\n\
    [0xc0146f01] kmem_getpages+49\n\
    [0xc014846d] cache_grow+173\n\n";
const RMOD: &str = "Page allocated via order 1, mask 0x152800(GFP_NOWAIT|__GFP_NOWARN), pid 1, tgid 1 (systemd), ts 1234 ns\n\
    PFN 0x10040 type Unmovable Block 128 type Unmovable Flags 0x17ffffc0000000(node=0|zone=2)\n \
    post_alloc_hook+0x1d2/0x220\n \
    kmalloc_large+0x20/0x90 [xfs]\n\n";

#[test]
fn merges_ignoring_ts_and_pfn() {
    let other = RMOD.replace("ts 1234", "ts 99").replace("0x10040", "65600");
    let text = format!("{R2005}{RMOD}{R2005}\n\n{other}");
    let a = aggregate_bytes(text.as_bytes(), false).unwrap();
    let g = a.groups();
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].count, g[0].pages), (2, 2));
    assert_eq!((g[1].count, g[1].pages), (2, 4));
    assert_eq!(g[1].first_ts, Some(99));
    assert_eq!(g[1].pid, Some(1));
    assert_eq!(g[1].comm.as_deref(), Some("systemd"));
    assert_eq!(g[1].mask, Some(0x152800));
    assert_eq!(g[0].allocator, Allocator::Slab);
    assert_eq!(
        std::str::from_utf8(&g[1].text).unwrap(),
        "Page allocated via order 1, mask 0x152800(GFP_NOWAIT|__GFP_NOWARN), pid 1, tgid 1 (systemd)\n post_alloc_hook+0x1d2/0x220\n kmalloc_large+0x20/0x90 [xfs]\n"
    );
    let s = a.stats();
    assert_eq!(
        (s.records, s.records_2005, s.records_modern, s.lines),
        (4, 2, 2, 20)
    );
}

#[test]
fn chunking_does_not_matter() {
    let text = format!("{R2005}{RMOD}").repeat(5);
    let whole = aggregate_bytes(text.as_bytes(), false).unwrap();
    for step in [1, 2, 3, 7, 64] {
        let mut a = Aggregator::new(false);
        for c in text.as_bytes().chunks(step) {
            a.feed(c).unwrap();
        }
        a.finish().unwrap();
        assert_eq!(a.groups(), whole.groups());
        assert_eq!(a.stats(), whole.stats());
    }
}

fn err(text: &[u8]) -> String {
    match aggregate_bytes(text, false) {
        Err(Error::Parse(m)) => m,
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!(
            "accepted bad input {:?}",
            String::from_utf8_lossy(&text[..text.len().min(80)])
        ),
    }
}

#[test]
fn bad_inputs_name_the_line() {
    assert!(err(b"hello world\n\n").starts_with("line 1: unknown format"));
    let t = format!("{R2005}Page allocated via order 0\n[0x1] a+1\n");
    assert!(err(t.as_bytes()).starts_with("line 5: truncated record"));
    let t = format!("{R2005}Page allocated via order 0\n[0x1] a+");
    assert!(err(t.as_bytes()).starts_with("line 6: truncated"));
    let t = format!("{R2005}Page allocated via order 0\n\x00\x01\x02garbage\n\n");
    assert!(err(t.as_bytes()).starts_with("line 6: binary data"));
    let t = format!(
        "Page allocated via order 0\n[0x1] {}\n\n",
        "a".repeat(MAX_LINE + 10)
    );
    assert!(err(t.as_bytes()).starts_with("line 2: line longer than"));
    assert!(err(b"Page allocated via order x\n[0x1] a+1\n\n").contains("order"));
    assert!(err(b"Page allocated via order 0, mask zz\n[0x1] a+1\n\n").contains("mask"));
    assert!(err(b"Page allocated via order 0, pid x\n[0x1] a+1\n\n").contains("pid"));
    assert!(err(b"Page allocated via order 0\nPFN type Movable\n a+0x1/0x2\n\n").contains("PFN"));
    assert!(err(b"Page allocated via order 0, ts abc ns\n a+0x1/0x2\n\n").contains("ts"));
    assert!(
        err(b"Page allocated via order 0\n a\nPage allocated via order 0\n\n")
            .starts_with("line 3")
    );
    assert!(err(b"Page allocated via order 0\nrandom words\n\n").contains("unexpected line"));
}

#[test]
fn lenient_skips_and_counts() {
    let t = format!("{R2005}junk\n\x01\n\n{R2005}Page allocated via order 0, pid x\n a\n\n{R2005}");
    let a = aggregate_bytes(t.as_bytes(), true).unwrap();
    assert_eq!(a.groups().len(), 1);
    assert_eq!(a.groups()[0].count, 3);
    assert_eq!(a.stats().skipped, 2);
    assert_eq!(a.errors().len(), 2);
    // an over-long line in lenient mode costs bounded memory
    let mut a = Aggregator::new(true);
    a.feed(b"Page allocated via order 0\n ").unwrap();
    for _ in 0..100 {
        a.feed(&[b'x'; 10000]).unwrap();
    }
    a.feed(b"\n\n").unwrap();
    a.feed(R2005.as_bytes()).unwrap();
    a.finish().unwrap();
    assert!(a.memory() < 200_000);
    assert_eq!(a.stats().skipped, 1);
    assert_eq!(a.groups().len(), 1);
}

#[test]
fn crlf_and_zero_mask_and_comm_with_paren() {
    let t = "Page allocated via order 0, mask 0(GFP_NOWAIT), pid 5, tgid 5 (a) b), ts 1 ns\r\n a+0x1/0x2\r\n\r\n";
    let a = aggregate_bytes(t.as_bytes(), false).unwrap();
    let g = &a.groups()[0];
    assert_eq!(g.mask, Some(0));
    assert_eq!(g.comm.as_deref(), Some("a) b"));
}

#[test]
fn parallel_parts_give_the_sequential_answer() {
    let recs = [
        R2005,
        RMOD,
        "Page allocated via order 2\n[0xc0100000] x+0\n\n",
    ];
    let mut text = String::new();
    for i in 0..40_000usize {
        text.push_str(&recs[(i * 7 + i / 3) % 3].replace("pid 1,", &format!("pid {},", i % 13)));
    }
    let b = text.as_bytes();
    let read_at = |off: u64, buf: &mut [u8]| -> std::io::Result<usize> {
        let o = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - o);
        buf[..n].copy_from_slice(&b[o..o + n]);
        Ok(n)
    };
    for cull in [0, crate::page_owner::table::cull::STACKTRACE] {
        let one = aggregate_file(read_at, 0, 1, false, cull, Filter::default()).unwrap();
        // pretend the file is big so that it is cut in parts
        let four = aggregate_file(
            read_at,
            PARALLEL_MIN.max(b.len() as u64),
            4,
            false,
            cull,
            Filter::default(),
        );
        let four = four.unwrap();
        assert_eq!(one.groups(), four.groups());
        assert_eq!(one.stats(), four.stats());
    }
    // a bad record in a later part: the sequential error, with its line
    let bad = format!("{text}Page allocated via order 99\n a\n\n");
    let bb = bad.as_bytes();
    let read_bad = |off: u64, buf: &mut [u8]| -> std::io::Result<usize> {
        let o = (off as usize).min(bb.len());
        let n = buf.len().min(bb.len() - o);
        buf[..n].copy_from_slice(&bb[o..o + n]);
        Ok(n)
    };
    let want = text.matches('\n').count() + 1;
    match aggregate_file(
        read_bad,
        PARALLEL_MIN.max(bb.len() as u64),
        2,
        false,
        0,
        Filter::default(),
    ) {
        Err(Error::Parse(m)) => {
            assert!(m.starts_with(&format!("line {want}: order 99")), "{m}")
        }
        _ => panic!("order 99 accepted"),
    }
}

proptest! {
    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..2000), lenient in any::<bool>(), step in 1usize..50) {
        let mut a = Aggregator::new(lenient);
        let mut ok = true;
        for c in data.chunks(step) {
            if a.feed(c).is_err() { ok = false; break; }
        }
        if ok { let _ = a.finish(); }
    }

    #[test]
    fn counts_add_up(picks in prop::collection::vec(0usize..3, 0..50)) {
        let recs = [R2005, RMOD, "Page allocated via order 2\n[0xc0100000] x+0\n\n"];
        let text: String = picks.iter().map(|&i| recs[i]).collect();
        let a = aggregate_bytes(text.as_bytes(), false).unwrap();
        let total: u64 = a.groups().iter().map(|g| g.count).sum();
        prop_assert_eq!(total as usize, picks.len());
        let pages: u64 = a.groups().iter().map(|g| g.pages).sum();
        let want: u64 = picks.iter().map(|&i| [1u64, 2, 4][i]).sum();
        prop_assert_eq!(pages, want);
    }
}

#[test]
fn show_handles_join_show_stacks_handles() {
    // show_stacks_handles (frames, handle) then show_handles (handle, pages),
    // with a handle that has no frames and one whose frames have no pages
    let mut text = String::new();
    for h in 0..3000u32 {
        text.push_str(&format!(" f{h}+0x1/0x2\n g+0x3/0x4\nhandle: {h}\n\n"));
    }
    for h in (0..3000u32).rev().chain([7777]) {
        if h != 5 {
            text.push_str(&format!("handle: {h}\nnr_base_pages: {}\n\n", h + 1));
        }
    }
    let b = text.as_bytes();
    let read_at = |off: u64, buf: &mut [u8]| -> std::io::Result<usize> {
        let o = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - o);
        buf[..n].copy_from_slice(&b[o..o + n]);
        Ok(n)
    };
    for cull in [0, crate::page_owner::table::cull::STACKTRACE] {
        let one = aggregate_file(read_at, 0, 1, false, cull, Filter::default()).unwrap();
        let g = one.groups();
        assert_eq!(g.len(), 3001);
        assert_eq!(
            (g[9].count, g[9].pages, g[9].stack_text()),
            (1, 10, &b" f9+0x1/0x2\n g+0x3/0x4\n"[..])
        );
        assert_eq!((g[5].count, g[5].pages), (0, 0));
        assert_eq!(
            (g[3000].count, g[3000].pages, g[3000].stack_text()),
            (1, 7778, &b"handle: 7777\n"[..])
        );
        assert_eq!(one.stats().records_stacks, 6000);
        // cut in parts (the show_handles half in another part than the frames): the same
        for threads in [2, 3, 4] {
            let parts = aggregate_file(
                read_at,
                PARALLEL_MIN.max(b.len() as u64),
                threads,
                false,
                cull,
                Filter::default(),
            )
            .unwrap();
            assert_eq!(one.groups(), parts.groups());
            assert_eq!(one.stats(), parts.stats());
        }
    }
    for (bad, what) in [
        ("handle: 1\n\n", "neither frames nor nr_base_pages"),
        ("handle: x\nnr_base_pages: 1\n\n", "malformed handle"),
        ("handle: 1\nhandle: 2\n\n", "malformed handle"),
        ("handle: 1\n f+0x1/0x2\n\n", "after handle"),
    ] {
        let e = aggregate_bytes(bad.as_bytes(), false).err().unwrap();
        assert!(e.to_string().contains(what), "{bad:?}: {e}");
    }
}
