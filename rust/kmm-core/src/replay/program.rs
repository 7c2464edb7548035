//! A validated trace as the engine runs it: validation reads each record of
//! the caller's buffer once and writes it here, so what runs is what was
//! checked whatever happens to the caller's buffer meanwhile. Each record's
//! object id (or a tick's microseconds) goes to `ids`, one word a record, so
//! the run can look at the objects of the records ahead ([`Decoder::id_ahead`])
//! and prefetch them. The rest goes to `bytes`: 4 bytes (header, order,
//! flags, 1 spare), 4 more for an allocation (its gfp) or an OP_SLAB_PIN
//! (its target id), and 4 more for each of stack, pid and tgid that differs
//! from the last record's (the header says which). Fields an op does not
//! read are not kept: order and gfp are an allocation's.

use super::{TraceOp, OP_ALLOC, OP_SLAB_ALLOC, OP_SLAB_PIN};
use crate::mm::objects::{TraceView, KEEP_PROGRAM};

const H_OP: u8 = 7;
const H_STACK: u8 = 16;
const H_PID: u8 = 32;
const H_TGID: u8 = 64;
/// The longest record in `bytes`: the base, a word, and three fields.
pub(super) const MAX_RECORD: usize = 4 + 4 + 3 * 4;
/// Bytes the encoder writes (and the decoder reads) at once: a record and
/// what follows it; `bytes` ends with this many spare bytes.
pub(super) const WINDOW: usize = 32;

/// Whether op `op` reads the record's order and gfp.
#[inline(always)]
fn allocates(op: u8) -> bool {
    op == OP_ALLOC || op == OP_SLAB_ALLOC
}

/// Whether op `op`'s record holds a second word (gfp, or a pin's target).
#[inline(always)]
fn wide(op: u8) -> bool {
    (1u32 << OP_ALLOC | 1 << OP_SLAB_ALLOC | 1 << OP_SLAB_PIN) >> (op & 7) & 1 != 0
}

/// The fields the last record left, shared by the encoder and the decoder.
#[derive(Default, Clone, Copy)]
struct Last {
    stack: u32,
    pid: u32,
    tgid: u32,
}

/// A finished program.
#[derive(Default)]
pub(super) struct Program {
    pub(super) bytes: Vec<u8>,
    pub(super) ids: Vec<u32>,
}

impl Program {
    /// Keep the buffers, emptied, for the next replay on `view`'s machine
    /// (unless they are large).
    pub(super) fn give_back(self, view: &mut TraceView) {
        let (mut bytes, mut ids) = (self.bytes, self.ids);
        if bytes.capacity() + 4 * ids.capacity() <= KEEP_PROGRAM {
            bytes.clear();
            ids.clear();
            view.prog_bytes = bytes;
            view.prog_ids = ids;
        }
    }
}

/// Writes validated records (both buffers are reserved for the whole trace).
#[derive(Default)]
pub(super) struct Encoder {
    pub(super) p: Program,
    last: Last,
}

/// Field offsets stay inside the window whatever the header says (they are
/// multiples of 4 below 20, which this leaves as they are).
#[inline(always)]
fn at(k: usize) -> usize {
    k & 0x1c
}

impl Encoder {
    /// An encoder writing into the buffers `view` kept from the last replay.
    pub(super) fn reusing(view: &mut TraceView) -> Encoder {
        let mut bytes = std::mem::take(&mut view.prog_bytes);
        let mut ids = std::mem::take(&mut view.prog_ids);
        bytes.clear();
        ids.clear();
        Encoder {
            p: Program { bytes, ids },
            last: Last::default(),
        }
    }

    #[inline(always)]
    pub(super) fn push(&mut self, r: &TraceOp) {
        let l = &mut self.last;
        let (ds, dp, dt) = (r.stack != l.stack, r.pid != l.pid, r.tgid != l.tgid);
        *l = Last {
            stack: r.stack,
            pid: r.pid,
            tgid: r.tgid,
        };
        let h = r.op | (H_STACK * ds as u8) | (H_PID * dp as u8) | (H_TGID * dt as u8);
        let order = if allocates(r.op) { r.order } else { 0 };
        // the `TF_*` bits as validation let them through
        let w0 = u32::from_ne_bytes([h, order, r.flags, 0]);
        // every word written where it goes if the record has it, the offset
        // moving past it only if it does: no branch on which fields changed
        let mut k = if wide(r.op) { 8 } else { 4 };
        let buf = &mut self.p.bytes;
        let len = buf.len();
        // the program's room is reserved for every record at its longest
        assert!(buf.capacity() - len >= WINDOW);
        let at = buf.as_mut_ptr().wrapping_add(len);
        let put = |off: usize, v: u32| {
            debug_assert!(off + 4 <= WINDOW);
            // SAFETY: `off + 4 <= WINDOW` and the WINDOW bytes from `len`
            // are inside the buffer's capacity (asserted above); an
            // unaligned store of plain bytes
            unsafe { (at.add(off) as *mut u32).write_unaligned(v) }
        };
        put(0, w0);
        put(4, r.gfp);
        put(k, r.stack);
        k += 4 * ds as usize;
        put(k, r.pid);
        k += 4 * dp as usize;
        put(k, r.tgid);
        k += 4 * dt as usize;
        // SAFETY: the first `len + k` bytes are initialised (the record's
        // words were just written, `k` past the last that counts)
        unsafe { buf.set_len(len + k) };
        self.p.ids.push(r.obj);
    }

    /// The program: the records, then [`WINDOW`] spare bytes for the decoder.
    pub(super) fn finish(mut self) -> Program {
        self.p.bytes.extend_from_slice(&[0; WINDOW]);
        self.p
    }
}

/// Reads records back in order.
pub(super) struct Decoder<'a> {
    bytes: &'a [u8],
    ids: &'a [u32],
    pos: usize,
    i: usize,
    last: Last,
}

impl<'a> Decoder<'a> {
    /// Read `p` from record `i`, at byte `pos` (a place an earlier decoder
    /// of `p` reached, [`Decoder::pos`]).
    pub(super) fn new(p: &'a Program, (pos, i): (usize, usize)) -> Self {
        Decoder {
            bytes: &p.bytes,
            ids: &p.ids,
            pos,
            i,
            last: Last::default(),
        }
    }

    /// Where the decoder is: (byte, record).
    pub(super) fn pos(&self) -> (usize, usize) {
        (self.pos, self.i)
    }

    /// The object id of the record `k` ahead of the next one, if there is one.
    #[inline(always)]
    pub(super) fn id_ahead(&self, k: usize) -> Option<u32> {
        self.ids.get(self.i + k).copied()
    }

    /// The next record (the caller counts them: there must be one). Fields
    /// its op does not read are 0.
    #[inline(always)]
    pub(super) fn next(&mut self) -> TraceOp {
        let w: &[u8; WINDOW] = self.bytes[self.pos..self.pos + WINDOW].try_into().unwrap();
        let word = |k: usize| {
            let k = at(k);
            u32::from_ne_bytes([w[k], w[k + 1], w[k + 2], w[k + 3]])
        };
        let h = w[0];
        let op = h & H_OP;
        let wide = wide(op);
        // branch-free: each field's offset, and whether the record has it
        let k_stack = if wide { 8 } else { 4 };
        let k_pid = k_stack + ((h & H_STACK) >> 2) as usize;
        let k_tgid = k_pid + ((h & H_PID) >> 3) as usize;
        let end = k_tgid + ((h & H_TGID) >> 4) as usize;
        if h & H_STACK != 0 {
            self.last.stack = word(k_stack);
        }
        if h & H_PID != 0 {
            self.last.pid = word(k_pid);
        }
        if h & H_TGID != 0 {
            self.last.tgid = word(k_tgid);
        }
        self.pos += end;
        let obj = self.ids[self.i];
        self.i += 1;
        TraceOp {
            op,
            order: w[1],
            flags: w[2],
            obj,
            gfp: if wide { word(4) } else { 0 },
            stack: self.last.stack,
            pid: self.last.pid,
            tgid: self.last.tgid,
        }
    }

    /// Whether records are left.
    #[inline]
    pub(super) fn more(&self) -> bool {
        self.i < self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    /// Every field an op reads comes back as it went in.
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
            let op = 1 + rnd(7) as u8;
            let pick = |r: u64| [0u32, 7, 0xFFFF_FFFF, 1 << 31][r as usize];
            recs.push(TraceOp {
                op,
                order: rnd(11) as u8,
                flags: if allocates(op) { rnd(4) as u8 } else { 0 },
                obj: rnd(1 << 32) as u32,
                gfp: pick(rnd(4)),
                stack: pick(rnd(4)),
                pid: pick(rnd(4)),
                tgid: pick(rnd(4)),
            });
        }
        let mut e = Encoder::default();
        e.p.bytes.reserve(recs.len() * MAX_RECORD + WINDOW);
        for r in &recs {
            e.push(r);
        }
        let p = e.finish();
        let mut d = Decoder::new(&p, (0, 0));
        for r in &recs {
            let mut want = *r;
            if !allocates(r.op) {
                want.order = 0;
                if r.op != OP_SLAB_PIN {
                    want.gfp = 0;
                }
            }
            assert_eq!(d.next(), want);
        }
        assert!(!d.more());
        assert_eq!(d.pos + WINDOW, p.bytes.len());
        assert_eq!(d.i, recs.len());
    }
}
