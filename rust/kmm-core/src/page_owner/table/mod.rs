//! Keyed aggregation of dump records (`page_owner_sort`'s `add_list`, cull and
//! sort, without holding the records): every record is folded into its group
//! as soon as it is parsed.
//!
//! A record is four ids: its *template* (the header line without `ts`, with
//! the pid and tgid digits cut out), its *stack* (the frame lines and the kept
//! optional lines), its pid and its tgid. Templates, stacks and comms are
//! interned once in byte arenas, so a stack seen a million times is stored
//! once and compared by id. The group key is the record (default mode) or its
//! projection on the `--cull` fields; `--pid/--tgid/--name` filter records
//! before they are folded. Memory: the interned strings (a few thousand on a
//! real machine) plus one [`Slot`] (about 64 bytes and its index entry) per
//! distinct key: with a cull without pid that is bounded by the distinct
//! stacks, whatever the dump's size; in default mode it is proportional to the
//! distinct records (pids make most records distinct), in this compact form.
//!
//! The module by concept:
//! - this file: the keyed table ([`OwnerTable`]: interning, folding, the
//!   groups), the `--cull` bits and filters;
//! - `order`: the sort keys and [`OwnerTable::order`];
//! - `diff`: [`diff`], matching the groups of two tables;
//! - `merge`: folding a table built from the next part of the input into this one.

use super::sort::{Allocator, Group};
use crate::stackdepot::hash_bytes;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

mod diff;
mod merge;
mod order;

pub use diff::{diff, DiffRow};
pub use order::{parse_keys, SortKey};

/// No id (no template: a `show_stacks` record; no comm).
pub const NONE: u32 = u32::MAX;
/// pid or tgid absent from the record (printed and compared as -1, like `page_owner_sort`).
pub const NO_ID: i64 = -1;
/// `first_ts` absent.
const NO_TS: u64 = u64::MAX;

/// `--cull` fields, as bits.
pub mod cull {
    pub const PID: u8 = 1;
    pub const TGID: u8 = 2;
    pub const NAME: u8 = 4;
    pub const STACKTRACE: u8 = 8;
    pub const ALLOCATOR: u8 = 16;
    /// The names `--cull` takes, with their bits (page_owner_sort's and their short forms).
    pub const NAMES: [(&str, u8); 10] = [
        ("pid", PID),
        ("p", PID),
        ("tgid", TGID),
        ("tg", TGID),
        ("name", NAME),
        ("n", NAME),
        ("stacktrace", STACKTRACE),
        ("st", STACKTRACE),
        ("allocator", ALLOCATOR),
        ("ator", ALLOCATOR),
    ];
}

/// Records kept: `None` keeps all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub pids: Option<Vec<i64>>,
    pub tgids: Option<Vec<i64>>,
    pub names: Option<Vec<String>>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.pids.is_none() && self.tgids.is_none() && self.names.is_none()
    }
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
type IdMap = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

/// Byte strings interned in one arena, by id.
#[derive(Default)]
pub(crate) struct Interner {
    arena: Vec<u8>,
    spans: Vec<(usize, usize)>,
    next: Vec<u32>,
    index: IdMap,
}

impl Interner {
    #[inline]
    pub fn hash(b: &[u8]) -> u64 {
        hash_bytes(0x9e37_79b9_7f4a_7c15, b)
    }

    #[inline]
    pub fn get(&self, id: u32) -> &[u8] {
        let (s, e) = self.spans[id as usize];
        &self.arena[s..e]
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The id of `b`, if interned.
    pub fn lookup(&self, h: u64, b: &[u8]) -> Option<u32> {
        let mut i = self.index.get(&h).copied().unwrap_or(NONE);
        while i != NONE {
            if self.get(i) == b {
                return Some(i);
            }
            i = self.next[i as usize];
        }
        None
    }

    /// The id of `b` (hash `h`), and whether it is new.
    #[inline]
    pub fn intern(&mut self, h: u64, b: &[u8]) -> (u32, bool) {
        if let Some(i) = self.lookup(h, b) {
            return (i, false);
        }
        let id = self.spans.len() as u32;
        let s = self.arena.len();
        self.arena.extend_from_slice(b);
        self.spans.push((s, self.arena.len()));
        self.next.push(self.index.insert(h, id).unwrap_or(NONE));
        (id, true)
    }

    /// Ids ranked by byte order of their strings: `rank[id]`.
    pub fn ranks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.len() as u32).collect();
        ids.sort_by(|&a, &b| self.get(a).cmp(self.get(b)));
        let mut rank = vec![0u32; ids.len()];
        for (r, &id) in ids.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        rank
    }

    pub fn memory(&self) -> u64 {
        (self.arena.capacity() + self.spans.capacity() * 16 + self.next.capacity() * 4) as u64
            + self.index.capacity() as u64 * 16
    }
}

/// What a template says about its records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tpl {
    /// Where in the template the pid / tgid digits go (`NONE`: not cut out).
    pub pid_at: u32,
    pub tgid_at: u32,
    pub order: u32,
    pub mask: Option<u64>,
    /// comm id (`NONE`: the header has none).
    pub comm: u32,
    /// Passes the `--name` filter.
    pub name_ok: bool,
}

/// What a stack says about its records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stk {
    pub allocator: Allocator,
    pub nr_frames: u32,
}

/// One record, as ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    /// Template id, or `NONE` for a `show_stacks` record.
    pub tpl: u32,
    pub stack: u32,
    pub pid: i64,
    pub tgid: i64,
}

/// One group: its first record, and the tallies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub rec: Rec,
    pub count: u64,
    pub pages: u64,
    pub first_ts: u64,
    next: u32,
}

/// The groups of a dump, keyed on the cull fields (or the whole record).
pub struct OwnerTable {
    pub(crate) tpls: Interner,
    pub(crate) tpl_info: Vec<Tpl>,
    pub(crate) stacks: Interner,
    pub(crate) stk_info: Vec<Stk>,
    pub(crate) comms: Interner,
    pub(crate) slots: Vec<Slot>,
    index: IdMap,
    cull: u8,
    filter: Filter,
    /// Records the filters dropped.
    pub filtered: u64,
    /// `page_owner_stacks` handle -> its stack (from `show_stacks_handles` records).
    pub(crate) handles: HashMap<i64, u32>,
}

impl OwnerTable {
    pub fn new(cull: u8, filter: Filter) -> OwnerTable {
        OwnerTable {
            tpls: Interner::default(),
            tpl_info: Vec::new(),
            stacks: Interner::default(),
            stk_info: Vec::new(),
            comms: Interner::default(),
            slots: Vec::new(),
            index: IdMap::default(),
            cull,
            filter,
            filtered: 0,
            handles: HashMap::new(),
        }
    }

    pub fn cull(&self) -> u8 {
        self.cull
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Memory held, in bytes.
    pub fn memory(&self) -> u64 {
        self.tpls.memory()
            + self.stacks.memory()
            + self.comms.memory()
            + (self.tpl_info.capacity() * std::mem::size_of::<Tpl>()
                + self.stk_info.capacity() * std::mem::size_of::<Stk>()
                + self.slots.capacity() * std::mem::size_of::<Slot>()) as u64
            + (self.index.capacity() + self.handles.capacity()) as u64 * 16
    }

    /// `handle` stands for `stack` from now on.
    pub(crate) fn set_handle_stack(&mut self, handle: i64, stack: u32) {
        self.handles.insert(handle, stack);
    }

    /// The stack `handle` stands for: its frames if a `show_stacks_handles`
    /// record named them, else a `handle: H` line.
    pub(crate) fn handle_stack(&mut self, handle: i64) -> u32 {
        if let Some(&s) = self.handles.get(&handle) {
            return s;
        }
        let mut line = b"handle: ".to_vec();
        put_int(&mut line, handle);
        line.push(b'\n');
        self.intern_stack(&line, 0)
    }

    #[inline]
    fn tpl_hash(text: &[u8], pid_at: u32, tgid_at: u32) -> u64 {
        Interner::hash(text) ^ ((pid_at as u64) << 32 | tgid_at as u64)
    }

    /// The id of a template (the header without ts, pid and tgid digits cut
    /// out at `pid_at`/`tgid_at`), if it is known.
    #[inline]
    pub(crate) fn tpl_id(&self, text: &[u8], pid_at: u32, tgid_at: u32) -> Option<u32> {
        let id = self
            .tpls
            .lookup(Self::tpl_hash(text, pid_at, tgid_at), text)?;
        let i = &self.tpl_info[id as usize];
        (i.pid_at == pid_at && i.tgid_at == tgid_at).then_some(id)
    }

    /// Add a template not known yet, with its order, mask and comm.
    pub(crate) fn add_tpl(
        &mut self,
        text: &[u8],
        pid_at: u32,
        tgid_at: u32,
        order: u32,
        mask: Option<u64>,
        comm: Option<&[u8]>,
    ) -> u32 {
        let h = Self::tpl_hash(text, pid_at, tgid_at);
        let id = self.tpls.spans.len() as u32;
        let st = self.tpls.arena.len();
        self.tpls.arena.extend_from_slice(text);
        self.tpls.spans.push((st, self.tpls.arena.len()));
        self.tpls
            .next
            .push(self.tpls.index.insert(h, id).unwrap_or(NONE));
        let comm_id = match comm {
            Some(c) => self.comms.intern(Interner::hash(c), c).0,
            None => NONE,
        };
        let name_ok = match &self.filter.names {
            None => true,
            Some(ns) => {
                let c: &[u8] = comm.unwrap_or(b"");
                ns.iter().any(|n| n.as_bytes() == c)
            }
        };
        self.tpl_info.push(Tpl {
            pid_at,
            tgid_at,
            order,
            mask,
            comm: comm_id,
            name_ok,
        });
        id
    }

    /// Intern a stack text.
    #[inline]
    pub(crate) fn intern_stack(&mut self, text: &[u8], nr_frames: u32) -> u32 {
        let (id, new) = self.stacks.intern(Interner::hash(text), text);
        if new {
            self.stk_info.push(Stk {
                allocator: Allocator::classify(text),
                nr_frames,
            });
        }
        id
    }

    #[inline]
    fn comm_of(&self, r: &Rec) -> u32 {
        if r.tpl == NONE {
            NONE
        } else {
            self.tpl_info[r.tpl as usize].comm
        }
    }

    #[inline]
    fn key_hash(&self, r: &Rec) -> u64 {
        let c = self.cull;
        let mut h: u64 = 0x51_7cc1_b727_220a;
        let mut mix = |v: u64| {
            h = (h.rotate_left(23) ^ v).wrapping_mul(0x9fb2_1c65_1e98_df25);
        };
        if c == 0 {
            mix(r.tpl as u64);
            mix(r.stack as u64);
            mix(r.pid as u64);
            mix(r.tgid as u64);
        } else {
            if c & cull::STACKTRACE != 0 {
                mix(r.stack as u64);
            }
            if c & cull::PID != 0 {
                mix(r.pid as u64);
            }
            if c & cull::TGID != 0 {
                mix(r.tgid as u64);
            }
            if c & cull::NAME != 0 {
                mix(self.comm_of(r) as u64);
            }
            if c & cull::ALLOCATOR != 0 {
                mix(self.stk_info[r.stack as usize].allocator as u64);
            }
        }
        h ^ (h >> 29)
    }

    #[inline]
    fn same_key(&self, a: &Rec, b: &Rec) -> bool {
        let c = self.cull;
        if c == 0 {
            return a == b;
        }
        (c & cull::STACKTRACE == 0 || a.stack == b.stack)
            && (c & cull::PID == 0 || a.pid == b.pid)
            && (c & cull::TGID == 0 || a.tgid == b.tgid)
            && (c & cull::NAME == 0 || self.comm_of(a) == self.comm_of(b))
            && (c & cull::ALLOCATOR == 0
                || self.stk_info[a.stack as usize].allocator
                    == self.stk_info[b.stack as usize].allocator)
    }

    /// Does the record pass the filters?
    #[inline]
    fn wanted(&self, r: &Rec) -> bool {
        let f = &self.filter;
        if let Some(p) = &f.pids {
            if !p.contains(&r.pid) {
                return false;
            }
        }
        if let Some(t) = &f.tgids {
            if !t.contains(&r.tgid) {
                return false;
            }
        }
        if let Some(names) = &f.names {
            let ok = r.tpl != NONE && self.tpl_info[r.tpl as usize].name_ok
                || r.tpl == NONE && names.iter().any(|n| n.is_empty());
            if !ok {
                return false;
            }
        }
        true
    }

    /// Fold `count` records `r` holding `pages` base pages (first allocated at `ts`) into their group.
    #[inline]
    pub fn fold(&mut self, r: Rec, count: u64, pages: u64, ts: Option<u64>) {
        if !self.filter.is_empty() && !self.wanted(&r) {
            self.filtered += count;
            return;
        }
        let h = self.key_hash(&r);
        let ts = ts.unwrap_or(NO_TS);
        let mut i = self.index.get(&h).copied().unwrap_or(NONE);
        while i != NONE {
            let s = &self.slots[i as usize];
            if self.same_key(&s.rec, &r) {
                let s = &mut self.slots[i as usize];
                s.count += count;
                s.pages += pages;
                s.first_ts = s.first_ts.min(ts);
                return;
            }
            i = s.next;
        }
        let id = self.slots.len() as u32;
        let next = self.index.insert(h, id).unwrap_or(NONE);
        self.slots.push(Slot {
            rec: r,
            count,
            pages,
            first_ts: ts,
            next,
        });
    }

    /// The group with the same key as `r`, whose ids are this table's.
    fn find(&self, r: &Rec) -> Option<u32> {
        let h = self.key_hash(r);
        let mut i = self.index.get(&h).copied().unwrap_or(NONE);
        while i != NONE {
            let s = &self.slots[i as usize];
            if self.same_key(&s.rec, r) {
                return Some(i);
            }
            i = s.next;
        }
        None
    }

    // ---- reading a group back ----------------------------------------------

    pub(crate) fn slot(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    /// Append the header line of `r` (without newline): the template with its pid and tgid put back.
    pub(crate) fn put_header(&self, out: &mut Vec<u8>, r: &Rec) {
        if r.tpl == NONE {
            return;
        }
        let t = self.tpls.get(r.tpl);
        let info = &self.tpl_info[r.tpl as usize];
        let mut at = 0usize;
        if info.pid_at != NONE {
            out.extend_from_slice(&t[..info.pid_at as usize]);
            put_int(out, r.pid);
            at = info.pid_at as usize;
        }
        if info.tgid_at != NONE {
            out.extend_from_slice(&t[at..info.tgid_at as usize]);
            put_int(out, r.tgid);
            at = info.tgid_at as usize;
        }
        out.extend_from_slice(&t[at..]);
    }

    /// The stack lines (and kept optional lines) of `r`, each ending in a newline.
    pub(crate) fn stack_text(&self, r: &Rec) -> &[u8] {
        self.stacks.get(r.stack)
    }

    pub(crate) fn comm(&self, r: &Rec) -> Option<&[u8]> {
        match self.comm_of(r) {
            NONE => None,
            c => Some(self.comms.get(c)),
        }
    }

    pub(crate) fn allocator(&self, r: &Rec) -> Allocator {
        self.stk_info[r.stack as usize].allocator
    }

    pub(crate) fn order_of(&self, r: &Rec) -> u32 {
        if r.tpl == NONE {
            0
        } else {
            self.tpl_info[r.tpl as usize].order
        }
    }

    /// Does the record have a pid / tgid field?
    pub(crate) fn has_ids(&self, r: &Rec) -> (bool, bool) {
        if r.tpl == NONE {
            return (false, false);
        }
        let i = &self.tpl_info[r.tpl as usize];
        let h = self.tpls.get(r.tpl);
        (
            i.pid_at != NONE || super::sort::find(h, b", pid ").is_some(),
            i.tgid_at != NONE || super::sort::find(h, b", tgid ").is_some(),
        )
    }

    /// Group `i` as a [`Group`] (its first record's text and fields, the group's tallies).
    pub fn group(&self, i: u32) -> Group {
        let s = self.slot(i);
        let r = &s.rec;
        let mut text = Vec::new();
        let header_len = if r.tpl == NONE {
            0
        } else {
            self.put_header(&mut text, r);
            text.push(b'\n');
            text.len()
        };
        text.extend_from_slice(self.stack_text(r));
        let (hp, ht) = self.has_ids(r);
        Group {
            text,
            header_len,
            order: self.order_of(r),
            mask: if r.tpl == NONE {
                None
            } else {
                self.tpl_info[r.tpl as usize].mask
            },
            pid: hp.then_some(r.pid),
            tgid: ht.then_some(r.tgid),
            comm: self
                .comm(r)
                .map(|c| String::from_utf8_lossy(c).into_owned()),
            allocator: self.allocator(r),
            nr_frames: self.stk_info[r.stack as usize].nr_frames,
            count: s.count,
            pages: s.pages,
            first_ts: (s.first_ts != NO_TS).then_some(s.first_ts),
        }
    }

    /// Every group, in order of first appearance.
    pub fn groups(&self) -> Vec<Group> {
        (0..self.slots.len() as u32)
            .map(|i| self.group(i))
            .collect()
    }
}

/// Append a signed decimal.
#[inline]
pub(crate) fn put_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    super::print::put_dec(out, v.unsigned_abs());
}

/// The bits of `--cull` field names (`pid`, `tgid`, `name`, `stacktrace`, `allocator` or their short forms).
pub fn parse_cull<S: AsRef<str>>(fields: &[S]) -> crate::error::Result<u8> {
    let mut bits = 0;
    for f in fields {
        let f = f.as_ref().trim();
        match cull::NAMES.iter().find(|(n, _)| *n == f) {
            Some((_, b)) => bits |= b,
            None => {
                return Err(crate::error::Error::PageOwner(format!(
                    "unknown --cull field {f:?} (expected some of pid, tgid, name, stacktrace, allocator)"
                )))
            }
        }
    }
    Ok(bits)
}
