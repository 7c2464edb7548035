//! `page_owner_sort`'s groups (`tools/mm/page_owner_sort.c`): identical records
//! merged into one [`Group`] with a count, the fields its options sort, filter
//! and cull on, and the allocator it guesses from the stack.
//!
//! Two producers fill the [`super::table::OwnerTable`] the groups are read
//! from: the text parser ([`super::parse`]) and the live machine
//! ([`Machine::page_owner_groups`](crate::Machine::page_owner_groups)), which
//! folds each context's rendered record as the parser does, so a dump and its
//! machine give the same groups.

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
#[inline]
pub(crate) fn find(h: &[u8], pat: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, pat)
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
}
