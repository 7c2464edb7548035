//! Leak diffs: the groups of two tables matched on their key.

use super::{cull, Interner, OwnerTable, Rec, NONE};

impl OwnerTable {
    /// `r` of `other` in this table's ids, as far as the key needs them
    /// (`None`: a string the key compares is not in this table, so no group matches).
    fn translate(&self, other: &OwnerTable, r: &Rec) -> Option<Rec> {
        let c = self.cull;
        let need_stack = c == 0 || c & cull::STACKTRACE != 0;
        let stack = if need_stack {
            let t = other.stacks.get(r.stack);
            self.stacks.lookup(Interner::hash(t), t)?
        } else {
            0
        };
        let need_tpl = c == 0 || c & cull::NAME != 0;
        let tpl = if !need_tpl || r.tpl == NONE {
            if r.tpl == NONE {
                NONE
            } else if c & cull::NAME != 0 {
                return None;
            } else {
                0
            }
        } else if c == 0 {
            let t = other.tpls.get(r.tpl);
            let oi = &other.tpl_info[r.tpl as usize];
            self.tpl_id(t, oi.pid_at, oi.tgid_at)?
        } else {
            // only the comm matters: any template of ours with that comm
            let want = other.comm(r);
            let cid = match want {
                None => NONE,
                Some(w) => self.comms.lookup(Interner::hash(w), w)?,
            };
            self.tpl_info.iter().position(|t| t.comm == cid)? as u32
        };
        if c != 0 && c & cull::ALLOCATOR != 0 && c & cull::STACKTRACE == 0 {
            // the allocator is all that matters of the stack: any stack of ours with it
            let a = other.allocator(r);
            let s = self.stk_info.iter().position(|s| s.allocator == a)? as u32;
            return Some(Rec {
                tpl,
                stack: s,
                pid: r.pid,
                tgid: r.tgid,
            });
        }
        Some(Rec {
            tpl,
            stack,
            pid: r.pid,
            tgid: r.tgid,
        })
    }
}

/// One line of a leak diff: a group of the new dump, of the old one, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffRow {
    /// Group id in the new table (`NONE`: the group is gone).
    pub new: u32,
    /// Group id in the old table (`NONE`: the group is new).
    pub old: u32,
    pub pages_before: u64,
    pub pages_after: u64,
    pub count_before: u64,
    pub count_after: u64,
}

impl DiffRow {
    pub fn delta(&self) -> i64 {
        self.pages_after as i64 - self.pages_before as i64
    }
}

/// The groups of `new` and `old` (built with the same cull and filters) matched
/// on their key, most growth first (ties: more pages after, then `new`'s
/// order of first appearance, then `old`'s).
pub fn diff(old: &OwnerTable, new: &OwnerTable) -> Vec<DiffRow> {
    let mut rows = Vec::with_capacity(new.len());
    let mut seen = vec![false; old.len()];
    for (i, s) in new.slots.iter().enumerate() {
        let o = old.translate(new, &s.rec).and_then(|r| old.find(&r));
        let (pb, cb, oi) = match o {
            Some(oi) => {
                seen[oi as usize] = true;
                let os = old.slot(oi);
                (os.pages, os.count, oi)
            }
            None => (0, 0, NONE),
        };
        rows.push(DiffRow {
            new: i as u32,
            old: oi,
            pages_before: pb,
            pages_after: s.pages,
            count_before: cb,
            count_after: s.count,
        });
    }
    for (i, s) in old.slots.iter().enumerate() {
        if !seen[i] {
            rows.push(DiffRow {
                new: NONE,
                old: i as u32,
                pages_before: s.pages,
                pages_after: 0,
                count_before: s.count,
                count_after: 0,
            });
        }
    }
    rows.sort_by(|a, b| {
        b.delta()
            .cmp(&a.delta())
            .then(b.pages_after.cmp(&a.pages_after))
            .then(a.new.cmp(&b.new))
            .then(a.old.cmp(&b.old))
    });
    rows
}
