//! A validated trace as the engine runs it: validation reads each record of
//! the caller's buffer once and writes it here, so what runs is what was
//! checked whatever happens to the caller's buffer meanwhile. A record takes
//! 8 bytes (header, order, flags, 1 spare, object id or a tick's
//! microseconds), 12
//! for an allocation (its gfp) or an OP_SLAB_PIN (its target id), and 4 more
//! for each of stack, pid and tgid that differs from the last record's (the
//! header says which). Fields an op does not read are not kept: order and
//! gfp are an allocation's.

use super::{TraceOp, OP_ALLOC, OP_SLAB_ALLOC, OP_SLAB_PIN};

const H_OP: u8 = 7;
const H_STACK: u8 = 16;
const H_PID: u8 = 32;
const H_TGID: u8 = 64;
/// The longest record: the base, a word, and three fields.
pub(super) const MAX_RECORD: usize = 8 + 4 + 3 * 4;
/// Bytes the encoder writes (and the decoder reads) at once: a record and
/// what follows it; the program ends with this many spare bytes.
pub(super) const WINDOW: usize = 32;

/// Whether op `op` reads the record's order and gfp.
#[inline]
fn allocates(op: u8) -> bool {
    op == OP_ALLOC || op == OP_SLAB_ALLOC
}

/// The fields the last record left, shared by the encoder and the decoder.
#[derive(Default, Clone, Copy)]
struct Last {
    stack: u32,
    pid: u32,
    tgid: u32,
}

/// Writes validated records (the buffer is reserved for the whole trace).
#[derive(Default)]
pub(super) struct Encoder {
    pub(super) buf: Vec<u8>,
    last: Last,
}

#[inline(always)]
fn put(b: &mut [u8; WINDOW], k: usize, v: u32) {
    let k = k % (WINDOW - 3);
    b[k..k + 4].copy_from_slice(&v.to_ne_bytes());
}

impl Encoder {
    #[inline]
    pub(super) fn push(&mut self, r: &TraceOp) {
        let mut b = [0u8; WINDOW];
        let alloc = allocates(r.op);
        b[0] = r.op;
        b[1] = if alloc { r.order } else { 0 };
        // the `TF_*` bits as validation let them through
        b[2] = r.flags;
        put(&mut b, 4, r.obj);
        let mut k = 8;
        if alloc || r.op == OP_SLAB_PIN {
            put(&mut b, 8, r.gfp);
            k = 12;
        }
        let l = &mut self.last;
        if r.stack != l.stack || r.pid != l.pid || r.tgid != l.tgid {
            if r.stack != l.stack {
                b[0] |= H_STACK;
                l.stack = r.stack;
                put(&mut b, k, r.stack);
                k += 4;
            }
            if r.pid != l.pid {
                b[0] |= H_PID;
                l.pid = r.pid;
                put(&mut b, k, r.pid);
                k += 4;
            }
            if r.tgid != l.tgid {
                b[0] |= H_TGID;
                l.tgid = r.tgid;
                put(&mut b, k, r.tgid);
                k += 4;
            }
        }
        // a whole window, cut back to the record: no copy of variable length
        let len = self.buf.len();
        self.buf.extend_from_slice(&b);
        self.buf.truncate(len + k);
    }

    /// The program: the records, then [`WINDOW`] spare bytes for the decoder.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&[0; WINDOW]);
        self.buf
    }
}

/// Reads records back in order.
pub(super) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    last: Last,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Decoder {
            buf,
            pos: 0,
            last: Last::default(),
        }
    }

    /// Bytes read so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The next record (the caller counts them: there must be one). Fields
    /// its op does not read are 0.
    #[inline(always)]
    pub(super) fn next(&mut self) -> TraceOp {
        let w: &[u8; WINDOW] = self.buf[self.pos..self.pos + WINDOW].try_into().unwrap();
        // field offsets stay inside the window whatever the header says
        let word = |k: usize| {
            let k = k % (WINDOW - 3);
            u32::from_ne_bytes([w[k], w[k + 1], w[k + 2], w[k + 3]])
        };
        let h = w[0];
        let op = h & H_OP;
        let wide = allocates(op) || op == OP_SLAB_PIN;
        let mut k = if wide { 12 } else { 8 };
        if h & (H_STACK | H_PID | H_TGID) != 0 {
            if h & H_STACK != 0 {
                self.last.stack = word(k);
                k += 4;
            }
            if h & H_PID != 0 {
                self.last.pid = word(k);
                k += 4;
            }
            if h & H_TGID != 0 {
                self.last.tgid = word(k);
                k += 4;
            }
        }
        self.pos += k;
        TraceOp {
            op,
            order: w[1],
            flags: w[2],
            obj: word(4),
            gfp: if wide { word(8) } else { 0 },
            stack: self.last.stack,
            pid: self.last.pid,
            tgid: self.last.tgid,
        }
    }

    /// Whether records are left (the program's spare bytes are not one).
    #[inline]
    pub(super) fn more(&self) -> bool {
        self.pos + WINDOW < self.buf.len()
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
        for r in &recs {
            e.push(r);
        }
        let buf = e.finish();
        let mut d = Decoder::new(&buf);
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
        assert_eq!(d.pos + WINDOW, buf.len());
    }
}
