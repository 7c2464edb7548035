//! Counting the records of a live machine: outstanding pages per stack (the
//! `page_owner_stacks/show_stacks` file, `stack_print` in `mm/page_owner.c`),
//! per allocation context, and as `page_owner_sort` groups.

use super::pages::PageView;
use super::parse::Aggregator;
use super::print::{put_dec, put_frame_modern, put_header, DumpFormat, RecordText};
use super::{OwnerCtx, PageOwner};
use crate::error::Result;
use std::collections::HashMap;

/// Per-stack count of outstanding base pages (the `show_stacks` view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackCount {
    pub handle: u32,
    pub nr_base_pages: u64,
}

/// Per-context totals of allocated blocks (the engine's own aggregation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextCount {
    pub stack: u32,
    pub order: u8,
    pub gfp: u32,
    pub pid: u32,
    pub tgid: u32,
    pub blocks: u64,
    pub pages: u64,
    /// Earliest allocation time among the blocks, ns.
    pub first_ts_ns: u64,
}

/// Outstanding base pages per stack handle (handles with at least one page), by handle.
pub(crate) fn stack_counts(po: &PageOwner, pages: PageView<'_>) -> Vec<StackCount> {
    let mut nr = vec![0u64; po.depot.len() + 1];
    for b in pages.allocated() {
        let (id, _) = po.raw(b.pfn);
        nr[po.ctx(id).stack as usize] += 1 << b.order;
    }
    nr.iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(h, &n)| StackCount {
            handle: h as u32,
            nr_base_pages: n,
        })
        .collect()
}

/// Which `page_owner_stacks` file to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StacksFile {
    /// `show_stacks` (6.9): the frames, `nr_base_pages: N`, a blank line.
    Stacks,
    /// `show_handles` (6.19): `handle: H`, `nr_base_pages: N`, a blank line.
    Handles,
    /// `show_stacks_handles` (6.19): the frames, `handle: H`, a blank line.
    StacksHandles,
}

/// A `page_owner_stacks` file: one entry per stack holding at least
/// `threshold` base pages (`count_threshold`), by handle; blocks without a
/// stack are not shown.
pub(crate) fn show_stacks(
    po: &PageOwner,
    pages: PageView<'_>,
    threshold: u64,
    file: StacksFile,
) -> String {
    let mut out = Vec::new();
    for s in stack_counts(po, pages) {
        if s.handle == 0 || s.nr_base_pages < threshold {
            continue;
        }
        if file != StacksFile::Handles {
            for f in po.depot.frames(s.handle) {
                put_frame_modern(&mut out, &po.depot, f);
            }
        }
        if file != StacksFile::Stacks {
            out.extend_from_slice(b"handle: ");
            put_dec(&mut out, s.handle as u64);
            out.push(b'\n');
        }
        if file != StacksFile::StacksHandles {
            out.extend_from_slice(b"nr_base_pages: ");
            put_dec(&mut out, s.nr_base_pages);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    String::from_utf8(out).expect("dump text is UTF-8")
}

/// Allocated blocks and pages per allocation context (the free stack left
/// out), in order of first appearance by pfn.
pub(crate) fn context_counts(po: &PageOwner, pages: PageView<'_>) -> Vec<ContextCount> {
    let mut index: HashMap<OwnerCtx, usize> = HashMap::new();
    let mut out: Vec<ContextCount> = Vec::new();
    // context id -> slot in `out`: most blocks hit this instead of the hash map
    let mut by_id: Vec<u32> = vec![u32::MAX; po.nr_contexts() + 1];
    for b in pages.allocated() {
        let (id, ms) = po.raw(b.pfn);
        let slot = by_id.get(id as usize).copied().unwrap_or(u32::MAX);
        let i = if slot != u32::MAX {
            slot as usize
        } else {
            let mut c = po.ctx(id);
            c.free_stack = 0;
            let i = *index.entry(c).or_insert_with(|| {
                out.push(ContextCount {
                    stack: c.stack,
                    order: c.order,
                    gfp: c.gfp,
                    pid: c.pid,
                    tgid: c.tgid,
                    blocks: 0,
                    pages: 0,
                    first_ts_ns: u64::MAX,
                });
                out.len() - 1
            });
            if let Some(s) = by_id.get_mut(id as usize) {
                *s = i as u32;
            }
            i
        };
        let e = &mut out[i];
        e.blocks += 1;
        e.pages += 1 << b.order;
        e.first_ts_ns = e.first_ts_ns.min(ms * 1_000_000);
    }
    out
}

/// The groups `page_owner_sort` makes of the `format` dump, from the records:
/// each context's header and stack rendered by [`super::print`] once and
/// folded into a table as the parser folds a record (so a machine and its
/// dump give the same table), in order of first appearance by pfn.
pub(crate) fn groups(
    po: &PageOwner,
    pages: PageView<'_>,
    format: DumpFormat,
) -> Result<Aggregator> {
    let modern = format == DumpFormat::Modern;
    let mut text = RecordText::new(format);
    let mut agg = Aggregator::new(false);
    let mut header = Vec::new();
    for c in context_counts(po, pages) {
        let ctx = OwnerCtx {
            stack: c.stack,
            gfp: c.gfp,
            pid: c.pid,
            tgid: c.tgid,
            free_stack: 0,
            order: c.order,
        };
        header.clear();
        put_header(&mut header, po, &ctx, format);
        let stack = text.stack(po, c.stack);
        let first_ts = modern.then_some(c.first_ts_ns);
        agg.fold_rendered(
            &header,
            stack,
            c.order as u32,
            modern,
            c.blocks,
            c.pages,
            first_ts,
        )?;
    }
    agg.finish()?;
    Ok(agg)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{machine, readahead};
    use super::super::{aggregate_bytes, AllocCtx};
    use super::StacksFile;
    use crate::config::Policy;
    use crate::gfp;
    use crate::page_owner::DumpFormat;
    use proptest::prelude::*;

    #[test]
    fn show_stacks_and_threshold() {
        let mut m = machine(Policy::AntiFrag);
        let h = readahead(&mut m);
        for _ in 0..3 {
            m.alloc_ctx(
                1,
                gfp::GFP_KERNEL,
                None,
                AllocCtx {
                    stack: h,
                    pid: 1,
                    tgid: 1,
                },
            )
            .unwrap();
        }
        m.alloc(0, gfp::GFP_KERNEL, None).unwrap();
        let s = m.page_owner_stacks().unwrap();
        assert_eq!(s.iter().find(|c| c.handle == h).unwrap().nr_base_pages, 6);
        let t = m.page_owner_show_stacks(0).unwrap();
        assert!(
            t.ends_with(" filemap_nopage+0x316/0x3a0\nnr_base_pages: 6\n\n"),
            "{t}"
        );
        assert_eq!(m.page_owner_show_stacks(7).unwrap(), "");
        let f = |file| m.page_owner_stacks_file(0, file).unwrap();
        assert_eq!(
            f(StacksFile::Handles),
            format!("handle: {h}\nnr_base_pages: 6\n\n")
        );
        let sh = f(StacksFile::StacksHandles);
        assert!(
            sh.ends_with(&format!(" filemap_nopage+0x316/0x3a0\nhandle: {h}\n\n")),
            "{sh}"
        );
        assert_eq!(sh.lines().count(), t.lines().count());
        assert_eq!(
            m.page_owner_stacks_file(7, StacksFile::Handles).unwrap(),
            ""
        );
        // sort reads a show_stacks file: one record per stack, its pages
        let a = aggregate_bytes(t.as_bytes(), false).unwrap();
        let g = a.groups();
        assert_eq!((g.len(), g[0].count, g[0].pages), (1, 1, 6));
        assert_eq!(
            g[0].stack_text(),
            t.strip_suffix("nr_base_pages: 6\n\n").unwrap().as_bytes()
        );
        // and the two 6.19 files, the stacks first: the same groups as show_stacks
        let both = format!("{sh}{}", f(StacksFile::Handles));
        assert_eq!(aggregate_bytes(both.as_bytes(), false).unwrap().groups(), g);
        let alone = aggregate_bytes(f(StacksFile::Handles).as_bytes(), false).unwrap();
        let ga = alone.groups();
        let want = format!("handle: {h}\n");
        assert_eq!(
            (ga[0].count, ga[0].pages, ga[0].stack_text()),
            (1, 6, want.as_bytes())
        );
    }

    proptest! {
        #[test]
        fn aggregate_matches_records(ops in prop::collection::vec((0u32..3, 0u32..4, 0u32..3, any::<bool>()), 1..200)) {
            let mut m = machine(Policy::Mobility);
            let h = readahead(&mut m);
            let mut live: Vec<u64> = Vec::new();
            for (order, pid, stk, free) in ops {
                if free && !live.is_empty() {
                    let p = live.swap_remove(0);
                    m.free(p).unwrap();
                } else {
                    let ctx = AllocCtx { stack: if stk == 0 { 0 } else { h }, pid, tgid: pid };
                    if let Some(p) = m.alloc_ctx(order, gfp::GFP_KERNEL, None, ctx).unwrap() {
                        live.push(p);
                    }
                }
            }
            let agg = m.page_owner_aggregate().unwrap();
            let blocks: u64 = agg.iter().map(|c| c.blocks).sum();
            prop_assert_eq!(blocks as usize, live.len());
            for p in &live {
                let r = m.page_owner_record(*p).unwrap();
                prop_assert!(agg.iter().any(|c| c.stack == r.ctx.stack && c.pid == r.ctx.pid && c.order == r.ctx.order));
            }
            let mut out = Vec::new();
            let n = m.page_owner_dump(DumpFormat::Modern, &mut out).unwrap();
            prop_assert_eq!(n as usize, live.len());
        }

        #[test]
        fn groups_are_what_the_dump_parses_to(ops in prop::collection::vec((0u32..3, 0u32..4, 0u32..3, 0u32..3), 1..100)) {
            let mut m = machine(Policy::AntiFrag);
            let h = readahead(&mut m);
            m.page_owner_mut().unwrap().set_comm(2, "cc1").unwrap();
            for (order, pid, stk, g) in ops {
                let ctx = AllocCtx { stack: if stk == 0 { 0 } else { h }, pid, tgid: pid };
                let gfp = [gfp::GFP_KERNEL, gfp::GFP_HIGHUSER, 0][g as usize];
                m.alloc_ctx(order, gfp, None, ctx).unwrap();
                m.advance(1_000_000);
            }
            for format in [DumpFormat::Proc2005, DumpFormat::Modern] {
                let mut text = Vec::new();
                m.page_owner_dump(format, &mut text).unwrap();
                let parsed = aggregate_bytes(&text, false).unwrap();
                prop_assert_eq!(m.page_owner_groups(format).unwrap().groups(), parsed.groups());
            }
        }
    }
}
