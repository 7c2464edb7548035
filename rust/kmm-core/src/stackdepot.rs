//! A stack depot: call chains interned once and named by a 32-bit handle.
//!
//! Like the kernel's `lib/stackdepot.c` (2016), every distinct call chain is
//! stored once and referred to by a handle; handle 0 means "no stack". Frames
//! carry what a dump prints: the return address, the symbol, the offset into it,
//! the symbol's size and, for module text, the module name. Symbol and module
//! names are themselves interned, so a frame is 24 bytes.
//!
//! Interning a chain that is already known allocates nothing: the frames are
//! hashed in place, the open-addressing table is probed, and the candidate is
//! compared frame by frame against the caller's borrowed strings.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Most frames a chain may have (the kernel's page_owner keeps 16; kmm allows more).
pub const MAX_FRAMES: usize = 64;
/// Longest symbol or module name accepted.
pub const MAX_NAME: usize = 255;
/// `module` value of a frame in the core kernel text.
pub const NO_MODULE: u32 = u32::MAX;

/// A frame as the caller describes it (borrowed; nothing is copied to look it up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// Return address (i386: 0xc01xxxxx).
    pub addr: u64,
    pub symbol: &'a str,
    /// Offset of `addr` into the symbol.
    pub offset: u32,
    /// Size of the symbol.
    pub size: u32,
    pub module: Option<&'a str>,
}

/// A stored frame: names are indexes into the depot's string table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub addr: u64,
    pub symbol: u32,
    pub offset: u32,
    pub size: u32,
    pub module: u32,
}

/// Counters of a depot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepotStats {
    /// Distinct call chains stored.
    pub stacks: u64,
    /// Frames stored over all chains.
    pub frames: u64,
    /// Distinct symbol and module names.
    pub names: u64,
    /// Bytes the depot holds (frames, records, names, hash tables), by capacity.
    pub bytes: u64,
    /// Lookups that found an existing chain.
    pub hits: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StackDepot {
    frames: Vec<Frame>,
    /// Per stack (handle - 1): first frame index.
    start: Vec<u32>,
    /// Per stack: number of frames.
    len: Vec<u8>,
    /// Per stack: hash of its frames.
    hash: Vec<u64>,
    /// Open addressing over handles (0 = empty slot); capacity a power of two.
    table: Vec<u32>,
    names: Vec<Box<str>>,
    name_ids: HashMap<Box<str>, u32>,
    name_bytes: u64,
    hits: u64,
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(K1)
}

/// A fast 64-bit hash of a byte string (8 bytes at a time).
#[inline]
pub fn hash_bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().unwrap()));
    }
    let r = chunks.remainder();
    let mut last = [0u8; 8];
    last[..r.len()].copy_from_slice(r);
    mix(mix(h, u64::from_le_bytes(last)), b.len() as u64)
}

#[inline]
fn finish(h: u64) -> u64 {
    let h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

fn hash_frames(frames: &[FrameRef<'_>]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for f in frames {
        h = mix(h, f.addr);
        h = mix(h, ((f.offset as u64) << 32) | f.size as u64);
        h = hash_bytes(h, f.symbol.as_bytes());
        h = match f.module {
            Some(m) => hash_bytes(h ^ 1, m.as_bytes()),
            None => mix(h, 2),
        };
    }
    finish(mix(h, frames.len() as u64))
}

impl StackDepot {
    pub fn new() -> StackDepot {
        StackDepot {
            table: vec![0; 64],
            ..Default::default()
        }
    }

    /// Number of stacks stored.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Is `handle` a stack of this depot (0 = none is valid too)?
    #[inline]
    pub fn valid(&self, handle: u32) -> bool {
        (handle as usize) <= self.start.len()
    }

    fn check_frames(frames: &[FrameRef<'_>]) -> Result<()> {
        if frames.is_empty() {
            return Err(Error::PageOwner(
                "a call chain needs at least one frame".into(),
            ));
        }
        if frames.len() > MAX_FRAMES {
            return Err(Error::PageOwner(format!(
                "a call chain may have at most {MAX_FRAMES} frames, got {}",
                frames.len()
            )));
        }
        for (i, f) in frames.iter().enumerate() {
            let bad_name = |s: &str| {
                s.is_empty()
                    || s.len() > MAX_NAME
                    || s.bytes()
                        .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'[' | b']' | b'+'))
            };
            if bad_name(f.symbol) {
                return Err(Error::PageOwner(format!(
                    "frame {i}: symbol {:?} must be 1..{MAX_NAME} printable characters without spaces, brackets or '+'",
                    f.symbol
                )));
            }
            if let Some(m) = f.module {
                if bad_name(m) {
                    return Err(Error::PageOwner(format!(
                        "frame {i}: module {m:?} must be 1..{MAX_NAME} printable characters without spaces, brackets or '+'"
                    )));
                }
            }
            if f.size == 0 || f.offset >= f.size {
                return Err(Error::PageOwner(format!(
                    "frame {i} ({}): offset {:#x} must be below the symbol size {:#x}",
                    f.symbol, f.offset, f.size
                )));
            }
        }
        Ok(())
    }

    #[inline]
    fn same(&self, handle: u32, frames: &[FrameRef<'_>]) -> bool {
        let i = (handle - 1) as usize;
        if self.len[i] as usize != frames.len() {
            return false;
        }
        let s = self.start[i] as usize;
        self.frames[s..s + frames.len()]
            .iter()
            .zip(frames)
            .all(|(a, b)| {
                a.addr == b.addr
                    && a.offset == b.offset
                    && a.size == b.size
                    && &*self.names[a.symbol as usize] == b.symbol
                    && match (a.module, b.module) {
                        (NO_MODULE, None) => true,
                        (m, Some(bm)) if m != NO_MODULE => &*self.names[m as usize] == bm,
                        _ => false,
                    }
            })
    }

    /// The handle of a known chain, without interning it.
    pub fn lookup(&self, frames: &[FrameRef<'_>]) -> Option<u32> {
        let h = hash_frames(frames);
        self.probe(h, frames).ok()
    }

    /// Ok(handle) if found, Err(empty slot index) otherwise.
    #[inline]
    fn probe(&self, h: u64, frames: &[FrameRef<'_>]) -> std::result::Result<u32, usize> {
        let mask = self.table.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let e = self.table[i];
            if e == 0 {
                return Err(i);
            }
            if self.hash[(e - 1) as usize] == h && self.same(e, frames) {
                return Ok(e);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first empty slot on `h`'s probe path.
    fn empty_slot(&self, h: u64) -> usize {
        let mask = self.table.len() - 1;
        let mut i = (h as usize) & mask;
        while self.table[i] != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    fn name_id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.name_ids.insert(s.into(), id);
        self.name_bytes += s.len() as u64;
        id
    }

    fn grow(&mut self) {
        let cap = self.table.len() * 2;
        let mut t = vec![0u32; cap];
        for (i, &h) in self.hash.iter().enumerate() {
            let mut j = (h as usize) & (cap - 1);
            while t[j] != 0 {
                j = (j + 1) & (cap - 1);
            }
            t[j] = i as u32 + 1;
        }
        self.table = t;
    }

    /// Intern a call chain (leaf first); returns its handle (never 0).
    /// A known chain is found without allocating.
    pub fn intern(&mut self, frames: &[FrameRef<'_>]) -> Result<u32> {
        Self::check_frames(frames)?;
        let h = hash_frames(frames);
        match self.probe(h, frames) {
            Ok(handle) => {
                self.hits += 1;
                Ok(handle)
            }
            Err(_) => {
                if self.start.len() >= (u32::MAX - 1) as usize
                    || self.frames.len() + frames.len() > u32::MAX as usize
                {
                    return Err(Error::PageOwner("stack depot is full".into()));
                }
                if (self.start.len() + 1) * 2 > self.table.len() {
                    self.grow();
                }
                let start = self.frames.len() as u32;
                for f in frames {
                    let symbol = self.name_id(f.symbol);
                    let module = match f.module {
                        Some(m) => self.name_id(m),
                        None => NO_MODULE,
                    };
                    self.frames.push(Frame {
                        addr: f.addr,
                        symbol,
                        offset: f.offset,
                        size: f.size,
                        module,
                    });
                }
                self.start.push(start);
                self.len.push(frames.len() as u8);
                self.hash.push(h);
                let handle = self.start.len() as u32;
                let slot = self.empty_slot(h);
                self.table[slot] = handle;
                Ok(handle)
            }
        }
    }

    /// The frames of a stored chain (empty for 0 or an unknown handle).
    pub fn frames(&self, handle: u32) -> &[Frame] {
        if handle == 0 || handle as usize > self.start.len() {
            return &[];
        }
        let i = (handle - 1) as usize;
        let s = self.start[i] as usize;
        &self.frames[s..s + self.len[i] as usize]
    }

    /// A stored name (symbol or module).
    #[inline]
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// The module of a frame, if any.
    #[inline]
    pub fn module(&self, f: &Frame) -> Option<&str> {
        if f.module == NO_MODULE {
            None
        } else {
            Some(&self.names[f.module as usize])
        }
    }

    pub fn stats(&self) -> DepotStats {
        let names_bytes = self.name_bytes * 2 // the name and its map key
            + self.names.capacity() as u64 * 16
            + self.name_ids.capacity() as u64 * 20;
        DepotStats {
            stacks: self.start.len() as u64,
            frames: self.frames.len() as u64,
            names: self.names.len() as u64,
            bytes: self.frames.capacity() as u64 * std::mem::size_of::<Frame>() as u64
                + self.start.capacity() as u64 * 4
                + self.len.capacity() as u64
                + self.hash.capacity() as u64 * 8
                + self.table.capacity() as u64 * 4
                + names_bytes,
            hits: self.hits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fr(addr: u64, s: &str, off: u32, size: u32) -> FrameRef<'_> {
        FrameRef {
            addr,
            symbol: s,
            offset: off,
            size,
            module: None,
        }
    }

    #[test]
    fn intern_twice_same_handle_no_growth() {
        let mut d = StackDepot::new();
        let a = [
            fr(0xc0146f01, "kmem_getpages", 49, 0x80),
            fr(0xc014846d, "cache_grow", 173, 0x200),
        ];
        let h = d.intern(&a).unwrap();
        assert_eq!(h, 1);
        let st = d.stats();
        let h2 = d.intern(&a).unwrap();
        assert_eq!(h, h2);
        let st2 = d.stats();
        assert_eq!(st.bytes, st2.bytes);
        assert_eq!(st2.hits, 1);
        assert_eq!(st2.stacks, 1);
        assert_eq!(st2.frames, 2);
        let mut b = a;
        b[1].module = Some("ext3");
        let h3 = d.intern(&b).unwrap();
        assert_ne!(h3, h);
        assert_eq!(d.module(&d.frames(h3)[1]), Some("ext3"));
        assert_eq!(d.name(d.frames(h)[0].symbol), "kmem_getpages");
        assert!(d.valid(0) && d.valid(2) && !d.valid(3));
        assert!(d.frames(0).is_empty() && d.frames(99).is_empty());
    }

    #[test]
    fn bad_frames_rejected() {
        let mut d = StackDepot::new();
        assert!(d.intern(&[]).is_err());
        assert!(d.intern(&[fr(1, "", 0, 4)]).is_err());
        assert!(d.intern(&[fr(1, "a b", 0, 4)]).is_err());
        assert!(d.intern(&[fr(1, "a+1", 0, 4)]).is_err());
        assert!(d.intern(&[fr(1, "f", 4, 4)]).is_err());
        assert!(d.intern(&[fr(1, "f", 0, 0)]).is_err());
        let many = vec![fr(1, "f", 0, 4); MAX_FRAMES + 1];
        assert!(d.intern(&many).is_err());
        assert!(d.is_empty());
    }

    proptest! {
        #[test]
        fn interning_is_a_bijection(chains in prop::collection::vec(
            prop::collection::vec((0u64..4, 0usize..3, 0u32..3), 1..5), 1..60)) {
            let syms = ["alpha", "beta", "gamma"];
            let mut d = StackDepot::new();
            type Chain = Vec<(u64, usize, u32)>;
            let mut seen: Vec<(Chain, u32)> = Vec::new();
            for c in &chains {
                let frames: Vec<FrameRef> = c.iter()
                    .map(|&(a, s, o)| fr(0xc0100000 + a, syms[s], o, 8)).collect();
                let h = d.intern(&frames).unwrap();
                if let Some((_, h0)) = seen.iter().find(|(k, _)| k == c) {
                    prop_assert_eq!(*h0, h);
                } else {
                    prop_assert!(seen.iter().all(|(_, x)| *x != h));
                    seen.push((c.clone(), h));
                }
                let back = d.frames(h);
                prop_assert_eq!(back.len(), c.len());
                for (f, &(a, s, o)) in back.iter().zip(c) {
                    prop_assert_eq!(f.addr, 0xc0100000 + a);
                    prop_assert_eq!(d.name(f.symbol), syms[s]);
                    prop_assert_eq!(f.offset, o);
                }
            }
            prop_assert_eq!(d.len(), seen.len());
        }
    }
}
