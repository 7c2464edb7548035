//! Folding the groups of one table into another: the parts of a parallel read
//! (`aggregate_file`) into one table in input order ([`OwnerTable::absorb`]),
//! and the groups of a table into a new one with other `--cull` fields or
//! filters ([`OwnerTable::refold`], the Python API's `cull_groups` and
//! `filter_groups`).

use super::{Filter, OwnerTable, Rec, NONE, NO_TS};

impl OwnerTable {
    /// Fold every group of `o` (built with the same cull and filters, from the
    /// input that follows this table's) into this table, in its order.
    /// A `handle: H` stack of `o` (a `show_handles` record read before its
    /// handle's frames were known) joins the frames this table knows for H.
    pub(crate) fn absorb(&mut self, o: &OwnerTable) {
        self.fold_groups(o, 0..o.slots.len() as u32);
        self.filtered += o.filtered;
    }

    /// The groups `ids` of this table folded, in that order, into a new table
    /// keyed on `cull` that keeps what `filter` passes: each group counts as
    /// its records (its first record's fields, its count, pages and first ts).
    pub fn refold(&self, ids: &[u32], cull: u8, filter: Filter) -> OwnerTable {
        let mut t = OwnerTable::new(cull, filter);
        t.fold_groups(self, ids.iter().copied());
        t
    }

    /// Fold the groups `ids` of `o` into this table, mapping its ids to ours.
    fn fold_groups(&mut self, o: &OwnerTable, ids: impl Iterator<Item = u32>) {
        let mut tpl_map = vec![NONE; o.tpls.len()];
        let mut stack_map = vec![NONE; o.stacks.len()];
        for g in ids {
            let s = o.slots[g as usize];
            let tpl = match s.rec.tpl {
                NONE => NONE,
                i if tpl_map[i as usize] != NONE => tpl_map[i as usize],
                i => {
                    let t = o.tpls.get(i);
                    let info = o.tpl_info[i as usize];
                    let id = match self.tpl_id(t, info.pid_at, info.tgid_at) {
                        Some(id) => id,
                        None => {
                            let comm = (info.comm != NONE).then(|| o.comms.get(info.comm));
                            self.add_tpl(t, info.pid_at, info.tgid_at, info.order, info.mask, comm)
                        }
                    };
                    tpl_map[i as usize] = id;
                    id
                }
            };
            let si = s.rec.stack as usize;
            if stack_map[si] == NONE {
                let text = o.stacks.get(s.rec.stack);
                stack_map[si] = match handle_line(text) {
                    Some(h) => self.handle_stack(h),
                    None => self.intern_stack(text, o.stk_info[si].nr_frames),
                };
            }
            let r = Rec {
                tpl,
                stack: stack_map[si],
                pid: s.rec.pid,
                tgid: s.rec.tgid,
            };
            let ts = (s.first_ts != NO_TS).then_some(s.first_ts);
            self.fold(r, s.count, s.pages, ts);
        }
        for (&h, &st) in &o.handles {
            if let std::collections::hash_map::Entry::Vacant(e) = self.handles.entry(h) {
                let text = o.stacks.get(st);
                e.insert(
                    self.stacks
                        .lookup(super::Interner::hash(text), text)
                        .unwrap_or(NONE),
                );
            }
        }
        self.handles.retain(|_, s| *s != NONE);
    }
}

/// The handle of a `handle: H` stand-in stack.
fn handle_line(text: &[u8]) -> Option<i64> {
    let d = text.strip_prefix(b"handle: ")?.strip_suffix(b"\n")?;
    std::str::from_utf8(d).ok()?.parse().ok()
}
