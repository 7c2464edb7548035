//! A validated trace as the engine runs it: the engine's own copy of the
//! caller's records. Validation copies them here a block at a time (a
//! `memcpy`, at memory speed) and checks the copy, never the caller's buffer,
//! so what runs is what was checked whatever happens to the caller's buffer
//! meanwhile. The records keep the trace's own 24-byte layout ([`Rec`]): an
//! encoded program (the earlier design, 8-20 bytes a record) took about 54
//! instructions a record to write and 50 to read back, against about 1 for
//! the copy (`docs/workloads.md`, "Where a replay's time goes").

use super::validate::AHEAD;
use super::{TraceOp, TRACE_RECORD_SIZE};
use crate::mm::objects::{TraceView, KEEP_PROGRAM};
use crate::mm::page::advise_huge;
use std::collections::TryReserveError;

/// One trace record as the caller wrote it (`kmm.TRACE_DTYPE`): a
/// [`TraceOp`], whose layout is the record's (`#[repr(C)]`, the spare byte 3
/// its padding) and of which every bit pattern is a value, so any 24 bytes
/// can be copied into one.
pub(crate) type Rec = TraceOp;

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Rec>() == TRACE_RECORD_SIZE);
    assert!(offset_of!(Rec, op) == 0 && offset_of!(Rec, order) == 1);
    assert!(offset_of!(Rec, flags) == 2 && offset_of!(Rec, obj) == 4);
    assert!(offset_of!(Rec, gfp) == 8 && offset_of!(Rec, stack) == 12);
    assert!(offset_of!(Rec, pid) == 16 && offset_of!(Rec, tgid) == 20);
};

/// The copied records.
#[derive(Default)]
pub(super) struct Program {
    pub(super) recs: Vec<Rec>,
}

impl Program {
    /// An empty program in the buffer `view` kept from the last replay.
    pub(super) fn reusing(view: &mut TraceView) -> Program {
        let mut recs = std::mem::take(&mut view.prog);
        recs.clear();
        Program { recs }
    }

    /// Room for `n` records and the [`AHEAD`] blank ones
    /// [`Program::pad`] puts after them, taken at once (a large trace's on huge pages:
    /// faulting in 4 KiB pages costs about 0.4 ms a MiB in this VM, huge ones
    /// a tenth of it).
    pub(super) fn reserve(&mut self, n: usize) -> Result<(), TryReserveError> {
        let had = self.recs.capacity();
        self.recs.try_reserve_exact(n.saturating_add(AHEAD))?;
        if self.recs.capacity() != had {
            advise_huge(&self.recs);
        }
        Ok(())
    }

    /// Copy the whole records of `bytes` (a multiple of 24) to the end,
    /// within the room [`Program::reserve`] made.
    #[inline]
    pub(super) fn append(&mut self, bytes: &[u8]) {
        let k = bytes.len() / TRACE_RECORD_SIZE;
        debug_assert_eq!(bytes.len() % TRACE_RECORD_SIZE, 0);
        let spare = self.recs.spare_capacity_mut();
        assert!(
            spare.len() >= k,
            "the program's room is reserved for the trace"
        );
        // SAFETY: the destination is `k` records of spare capacity (asserted),
        // `k * 24` bytes, which cannot overlap the caller's `bytes`; every bit
        // pattern is a `Rec`, so the copied records are initialised
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                spare.as_mut_ptr() as *mut u8,
                k * TRACE_RECORD_SIZE,
            );
            self.recs.set_len(self.recs.len() + k);
        }
    }

    /// End the program with [`AHEAD`] blank records (op 0: they never run),
    /// so that the run looks ahead of any record without a bounds test.
    pub(super) fn pad(&mut self) {
        debug_assert!(self.recs.capacity() - self.recs.len() >= AHEAD);
        self.recs.extend_from_slice(&[Rec::default(); AHEAD]);
    }

    /// Keep the buffer, emptied, for the next replay on `view`'s machine
    /// (unless it is large): a trace replayed in chunks would otherwise map,
    /// fault in and zero fresh pages for every chunk.
    pub(super) fn give_back(self, view: &mut TraceView) {
        let mut recs = self.recs;
        if recs.capacity() * TRACE_RECORD_SIZE <= KEEP_PROGRAM {
            recs.clear();
            view.prog = recs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    /// Every field of every record comes back as it went in, whatever the bytes.
    #[test]
    fn records_round_trip() {
        let mut recs = Vec::new();
        let mut x = 12345u64;
        let mut rnd = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for _ in 0..5000 {
            let pick = |r: u64| [0u32, 7, 0xFFFF_FFFF, 1 << 31][r as usize];
            recs.push(TraceOp {
                op: rnd(256) as u8,
                order: rnd(256) as u8,
                flags: rnd(256) as u8,
                obj: rnd(1 << 32) as u32,
                gfp: pick(rnd(4)),
                stack: pick(rnd(4)),
                pid: pick(rnd(4)),
                tgid: pick(rnd(4)),
            });
        }
        let bytes = TraceOp::to_bytes(&recs);
        let mut p = Program::default();
        p.reserve(recs.len()).unwrap();
        // unaligned, in uneven pieces
        let mut odd = vec![0u8; bytes.len() + 1];
        odd[1..].copy_from_slice(&bytes);
        let src = &odd[1..];
        let cut = 37 * TRACE_RECORD_SIZE;
        p.append(&src[..cut]);
        p.append(&src[cut..]);
        assert_eq!(p.recs.len(), recs.len());
        for (r, want) in p.recs.iter().zip(&recs) {
            assert_eq!(r, want);
        }
    }
}
