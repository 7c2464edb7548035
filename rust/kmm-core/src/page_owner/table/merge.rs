//! Merging the tables of consecutive parts of the input (the parts of
//! `aggregate_file`) into one, in input order.

use super::{OwnerTable, Rec, NONE, NO_TS};

impl OwnerTable {
    /// Fold every group of `o` (built with the same cull and filters, from the
    /// input that follows this table's) into this table, in its order.
    pub(crate) fn absorb(&mut self, o: &OwnerTable) {
        let tpl_map: Vec<u32> = (0..o.tpls.len() as u32)
            .map(|i| {
                let t = o.tpls.get(i);
                let info = o.tpl_info[i as usize];
                match self.tpl_id(t, info.pid_at, info.tgid_at) {
                    Some(id) => id,
                    None => {
                        let comm = (info.comm != NONE).then(|| o.comms.get(info.comm));
                        self.add_tpl(t, info.pid_at, info.tgid_at, info.order, info.mask, comm)
                    }
                }
            })
            .collect();
        let stack_map: Vec<u32> = (0..o.stacks.len() as u32)
            .map(|i| self.intern_stack(o.stacks.get(i), o.stk_info[i as usize].nr_frames))
            .collect();
        for s in &o.slots {
            let r = Rec {
                tpl: if s.rec.tpl == NONE {
                    NONE
                } else {
                    tpl_map[s.rec.tpl as usize]
                },
                stack: stack_map[s.rec.stack as usize],
                pid: s.rec.pid,
                tgid: s.rec.tgid,
            };
            let ts = (s.first_ts != NO_TS).then_some(s.first_ts);
            self.fold(r, s.count, s.pages, ts);
        }
        self.filtered += o.filtered;
    }
}
