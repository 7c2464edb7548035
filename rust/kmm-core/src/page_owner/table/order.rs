//! The order of the groups of an [`OwnerTable`].
//!
//! Order ([`OwnerTable::order`]): by the sort keys, ties broken as
//! `page_owner_sort` leaves them (its first qsort is by the cull fields, or by
//! the record text without `--cull`, and merging keeps that order), then by
//! first appearance.

use super::{cull, OwnerTable, Rec, NONE};
use crate::page_owner::sort::Allocator;
use std::cmp::Ordering;

/// A sort key (`-t -m -s -p -P -n -a` and `--sort`'s names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Times,
    Pages,
    Pid,
    Tgid,
    Name,
    Stacktrace,
    Txt,
    AllocTs,
    Allocator,
}

impl SortKey {
    /// The key of a `--sort` name (long or short).
    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "p" | "pid" => SortKey::Pid,
            "tg" | "tgid" => SortKey::Tgid,
            "n" | "name" => SortKey::Name,
            "st" | "stacktrace" => SortKey::Stacktrace,
            "T" | "txt" => SortKey::Txt,
            "at" | "alloc_ts" => SortKey::AllocTs,
            "ator" | "allocator" => SortKey::Allocator,
            "t" | "times" => SortKey::Times,
            "m" | "pages" => SortKey::Pages,
            _ => return None,
        })
    }
}

impl OwnerTable {
    /// Group ids sorted by `keys` (each `(key, descending)`, first most
    /// significant), ties as page_owner_sort leaves them (by the cull fields,
    /// or by the record text), then by first appearance.
    pub fn order(&self, keys: &[(SortKey, bool)]) -> Vec<u32> {
        self.sort_ids(keys, (0..self.slots.len() as u32).collect())
    }

    /// The group ids `ids` sorted as [`OwnerTable::order`] sorts all of them.
    pub fn sort_ids(&self, keys: &[(SortKey, bool)], mut ids: Vec<u32>) -> Vec<u32> {
        let srank = self.stacks.ranks();
        let crank = self.comms.ranks();
        let comm_rank = |r: &Rec| -> i64 {
            // strcmp order, no comm as ""
            match self.comm_of(r) {
                NONE => -1,
                c => crank[c as usize] as i64,
            }
        };
        let mut ha = Vec::new();
        let mut hb = Vec::new();
        let mut txt = |a: &Rec, b: &Rec| -> Ordering {
            let o = match self.header_cmp_fast(a, b) {
                Some(o) => o,
                None => {
                    ha.clear();
                    hb.clear();
                    self.put_header(&mut ha, a);
                    self.put_header(&mut hb, b);
                    // a header that is a prefix of the other sorts first ('\n' is below any printable byte)
                    ha.cmp(&hb)
                }
            };
            o.then_with(|| srank[a.stack as usize].cmp(&srank[b.stack as usize]))
        };
        let empty = |r: &Rec| -> bool { r.tpl == NONE };
        let cull = self.cull;
        ids.sort_by(|&x, &y| {
            let (a, b) = (self.slot(x), self.slot(y));
            let (ra, rb) = (&a.rec, &b.rec);
            for &(k, desc) in keys {
                let o = match k {
                    SortKey::Times => a.count.cmp(&b.count),
                    SortKey::Pages => a.pages.cmp(&b.pages),
                    SortKey::Pid => ra.pid.cmp(&rb.pid),
                    SortKey::Tgid => ra.tgid.cmp(&rb.tgid),
                    SortKey::Name => comm_rank(ra).cmp(&comm_rank(rb)),
                    SortKey::Stacktrace => srank[ra.stack as usize].cmp(&srank[rb.stack as usize]),
                    SortKey::Txt => {
                        if empty(ra) || empty(rb) {
                            srank[ra.stack as usize].cmp(&srank[rb.stack as usize])
                        } else {
                            txt(ra, rb)
                        }
                    }
                    SortKey::AllocTs => a.first_ts.cmp(&b.first_ts),
                    SortKey::Allocator => {
                        alloc_bit(self.allocator(ra)).cmp(&alloc_bit(self.allocator(rb)))
                    }
                };
                let o = if desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            let o = if cull == 0 {
                txt(ra, rb)
            } else {
                let mut o = Ordering::Equal;
                if cull & cull::STACKTRACE != 0 {
                    o = o.then(srank[ra.stack as usize].cmp(&srank[rb.stack as usize]));
                }
                if cull & cull::PID != 0 {
                    o = o.then(ra.pid.cmp(&rb.pid));
                }
                if cull & cull::TGID != 0 {
                    o = o.then(ra.tgid.cmp(&rb.tgid));
                }
                if cull & cull::NAME != 0 {
                    o = o.then(comm_rank(ra).cmp(&comm_rank(rb)));
                }
                if cull & cull::ALLOCATOR != 0 {
                    o = o.then(alloc_bit(self.allocator(ra)).cmp(&alloc_bit(self.allocator(rb))));
                }
                o
            };
            o.then(x.cmp(&y))
        });
        ids
    }

    /// The byte order of the headers of `a` and `b` without rendering them,
    /// when it is decided before the tgid: by the template text up to the pid
    /// (the part before the pid digits), or by the pid digits when that part
    /// is the same and both are followed by a byte below `'0'`. `None`: render
    /// and compare.
    fn header_cmp_fast(&self, a: &Rec, b: &Rec) -> Option<Ordering> {
        if a.tpl == NONE || b.tpl == NONE {
            return None;
        }
        let (ia, ib) = (
            &self.tpl_info[a.tpl as usize],
            &self.tpl_info[b.tpl as usize],
        );
        if ia.pid_at == NONE || ib.pid_at == NONE {
            return None;
        }
        let (ta, tb) = (self.tpls.get(a.tpl), self.tpls.get(b.tpl));
        let (pa, pb) = (&ta[..ia.pid_at as usize], &tb[..ib.pid_at as usize]);
        if let Some(o) = first_difference(pa, pb) {
            return Some(o);
        }
        if pa.len() != pb.len() {
            return None;
        }
        let (mut ba, mut bb) = ([0u8; 20], [0u8; 20]);
        let (da, db) = (dec(&mut ba, a.pid), dec(&mut bb, b.pid));
        if let Some(o) = first_difference(da, db) {
            return Some(o);
        }
        if da.len() == db.len() {
            return None;
        }
        // one pid's digits are a prefix of the other's: the shorter is followed
        // by its template's next byte, the longer by a digit
        let next = |t: &[u8], at: u32| t.get(at as usize).copied().unwrap_or(b'\n');
        let (ca, cb) = (next(ta, ia.pid_at), next(tb, ib.pid_at));
        if ca < b'0' && cb < b'0' {
            Some(da.len().cmp(&db.len()))
        } else {
            None
        }
    }
}

/// `v` in decimal, in `buf`.
#[inline]
fn dec(buf: &mut [u8; 20], v: i64) -> &[u8] {
    let mut u = v.unsigned_abs();
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// The order of `a` and `b` at their first differing byte, if they differ
/// within the shorter one.
#[inline]
fn first_difference(a: &[u8], b: &[u8]) -> Option<Ordering> {
    a.iter().zip(b).find(|(x, y)| x != y).map(|(x, y)| x.cmp(y))
}

/// page_owner_sort's allocator bits (CMA < SLAB < VMALLOC < OTHERS).
fn alloc_bit(a: Allocator) -> u8 {
    match a {
        Allocator::Cma => 2,
        Allocator::Slab => 4,
        Allocator::Vmalloc => 8,
        Allocator::Others => 16,
    }
}

/// Sort keys from `(name, descending)` pairs.
pub fn parse_keys<S: AsRef<str>>(keys: &[(S, bool)]) -> crate::error::Result<Vec<(SortKey, bool)>> {
    keys.iter()
        .map(|(k, d)| {
            SortKey::parse(k.as_ref()).map(|s| (s, *d)).ok_or_else(|| {
                crate::error::Error::PageOwner(format!("unknown sort key {:?}", k.as_ref()))
            })
        })
        .collect()
}
