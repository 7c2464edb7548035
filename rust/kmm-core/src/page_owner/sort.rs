//! `page_owner_sort`'s groups (`tools/mm/page_owner_sort.c`): identical records
//! merged into one [`Group`] with a count, the fields its options sort, filter
//! and cull on, and the allocator it guesses from the stack.
//!
//! Two producers fill a `GroupTable`: the text parser ([`super::parse`]) and
//! the live machine ([`Machine::page_owner_groups`](crate::Machine::page_owner_groups)); both key a group on its
//! normalised text, so a dump and its machine give the same groups.

use crate::stackdepot::hash_bytes;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Allocator of a record, guessed from its stack as `page_owner_sort` does
/// (`get_allocator`: CMA, then slab, then vmalloc, else others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Allocator {
    #[default]
    Others,
    Cma,
    Slab,
    Vmalloc,
}

impl Allocator {
    /// The allocator of a record whose stack lines are `stack`.
    pub fn classify(stack: &[u8]) -> Allocator {
        let has = |p: &[u8]| find(stack, p).is_some();
        if has(b"cma_alloc") {
            Allocator::Cma
        } else if has(b"slab_alloc")
            || has(b"kmem_cache_alloc")
            || has(b"kmem_getpages")
            || has(b"cache_grow")
            || has(b"allocate_slab")
            || has(b"new_slab")
        {
            Allocator::Slab
        } else if has(b"vmalloc") {
            Allocator::Vmalloc
        } else {
            Allocator::Others
        }
    }

    /// The name `page_owner_sort` prints (`allocated by SLAB`).
    pub fn name(self) -> &'static str {
        match self {
            Allocator::Others => "OTHERS",
            Allocator::Cma => "CMA",
            Allocator::Slab => "SLAB",
            Allocator::Vmalloc => "VMALLOC",
        }
    }
}

/// Offset of the first occurrence of `pat` in `h`.
pub(crate) fn find(h: &[u8], pat: &[u8]) -> Option<usize> {
    h.windows(pat.len()).position(|w| w == pat)
}

/// One distinct record and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Normalised record text: the header without ts/free_ts, the stack lines,
    /// the kept optional lines; every line ends with `\n`.
    pub text: Vec<u8>,
    /// Bytes of `text` taken by the header line (with its newline).
    pub header_len: usize,
    pub order: u32,
    pub mask: Option<u64>,
    pub pid: Option<i64>,
    pub tgid: Option<i64>,
    pub comm: Option<String>,
    pub allocator: Allocator,
    /// Number of stack lines.
    pub nr_frames: u32,
    /// Records merged into this group.
    pub count: u64,
    /// Base pages they hold (count * 2^order).
    pub pages: u64,
    /// Earliest `ts` among them, if the format has one.
    pub first_ts: Option<u64>,
}

impl Group {
    /// The stack lines (and kept optional lines) of the record.
    pub fn stack_text(&self) -> &[u8] {
        &self.text[self.header_len..]
    }
}

/// The header fields a group is filtered and culled on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordFields {
    pub mask: Option<u64>,
    pub pid: Option<i64>,
    pub tgid: Option<i64>,
    pub comm: Option<String>,
}

/// What a new group holds besides its text and fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub order: u32,
    pub nr_frames: u32,
    pub count: u64,
    pub pages: u64,
    pub first_ts: Option<u64>,
}

/// Hashes `u64` keys that are hashes already.
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("IdHasher hashes u64 keys only")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Groups in order of first appearance, indexed by the hash of their text.
#[derive(Default)]
pub(crate) struct GroupTable {
    groups: Vec<Group>,
    /// Next group with the same hash, by group.
    next_same: Vec<u32>,
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
}

impl GroupTable {
    /// The key of a normalised record text.
    #[inline]
    pub fn hash(text: &[u8]) -> u64 {
        hash_bytes(0x2545_f491_4f6c_dd1d, text)
    }

    /// Count `count` more records of `text` (hash `h`), holding `pages` base
    /// pages, allocated first at `ts`, in the group that has this text; false
    /// when there is none yet (then [`GroupTable::insert`] it).
    pub fn merge(&mut self, h: u64, text: &[u8], count: u64, pages: u64, ts: Option<u64>) -> bool {
        let mut gi = self.index.get(&h).copied().unwrap_or(u32::MAX);
        while gi != u32::MAX {
            let g = &mut self.groups[gi as usize];
            if g.text == text {
                g.count += count;
                g.pages += pages;
                if let Some(t) = ts {
                    g.first_ts = Some(g.first_ts.map_or(t, |f| f.min(t)));
                }
                return true;
            }
            gi = self.next_same[gi as usize];
        }
        false
    }

    /// A new group for `text` (hash `h`, not in the table), whose header line
    /// takes its first `header_len` bytes.
    pub fn insert(
        &mut self,
        h: u64,
        text: Vec<u8>,
        header_len: usize,
        fields: RecordFields,
        t: Tally,
    ) {
        let allocator = Allocator::classify(&text[header_len..]);
        let next_same = self
            .index
            .insert(h, self.groups.len() as u32)
            .unwrap_or(u32::MAX);
        self.next_same.push(next_same);
        self.groups.push(Group {
            header_len,
            order: t.order,
            mask: fields.mask,
            pid: fields.pid,
            tgid: fields.tgid,
            comm: fields.comm,
            allocator,
            nr_frames: t.nr_frames,
            count: t.count,
            pages: t.pages,
            first_ts: t.first_ts,
            text,
        });
    }

    pub fn into_groups(self) -> Vec<Group> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_order_and_names() {
        let c = |s: &str| Allocator::classify(s.as_bytes());
        assert_eq!(
            c(" cma_alloc+0x1/0x2\n kmem_cache_alloc+0x1/0x2\n"),
            Allocator::Cma
        );
        assert_eq!(c("[0xc0146f01] kmem_getpages+49\n"), Allocator::Slab);
        assert_eq!(c(" __vmalloc_node+0x1/0x2\n"), Allocator::Vmalloc);
        assert_eq!(c(" filemap_fault+0x1/0x2\n"), Allocator::Others);
        let names: Vec<_> = [
            Allocator::Others,
            Allocator::Cma,
            Allocator::Slab,
            Allocator::Vmalloc,
        ]
        .map(Allocator::name)
        .into();
        assert_eq!(names, ["OTHERS", "CMA", "SLAB", "VMALLOC"]);
    }

    #[test]
    fn same_text_merges_and_keeps_first_appearance() {
        let mut t = GroupTable::default();
        let tally = |count, ts| Tally {
            order: 1,
            nr_frames: 1,
            count,
            pages: 2 * count,
            first_ts: ts,
        };
        for (text, ts) in [("a\n b\n", 5), ("c\n d\n", 1), ("a\n b\n", 3)] {
            let h = GroupTable::hash(text.as_bytes());
            if !t.merge(h, text.as_bytes(), 1, 2, Some(ts)) {
                t.insert(
                    h,
                    text.into(),
                    2,
                    RecordFields::default(),
                    tally(1, Some(ts)),
                );
            }
        }
        let g = t.into_groups();
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].count, g[0].pages, g[0].first_ts), (2, 4, Some(3)));
        assert_eq!(g[1].stack_text(), b" d\n");
    }
}
