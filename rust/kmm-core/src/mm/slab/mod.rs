//! Slab caches by object (the kernel's `mm/slab.c` of 2.6.11, and the
//! shrinkers of `fs/dcache.c`/`fs/inode.c` driven by `shrink_slab` in
//! `mm/vmscan.c`).
//!
//! A cache hands out objects of one size from slab pages (order 0) that hold
//! [`objs_per_slab`] objects each. An object goes into a partial slab of its
//! cache when there is one (the most recently used), else into a new slab page
//! allocated from the buddy allocator with the caller's mask (plus
//! `__GFP_KERNRCLM` for a reclaimable cache, as the 2005 patch's
//! `SLAB_RECLAIM_ACCOUNT` caches); a slab page is freed exactly when its last
//! object is freed. Nothing else frees a slab page: reclaim frees objects, not
//! pages.
//!
//! Reclaimable caches (dentry, inode, buffer_head) keep their objects on a list
//! oldest-last (`dentry_unused`, `inode_unused`). `shrink_slab` asks each for
//! `4 * scanned / seeks * objects / (lru_pages + 1)` objects scanned per call,
//! in batches of `SHRINK_BATCH` = 128 (2.6.11's rule); the scan takes the
//! oldest object, gives a referenced one a second chance, skips one that is
//! pinned (an inode with page cache or a dentry, see `OP_SLAB_PIN`), and frees
//! the rest. The pages that frees count as reclaimed (`reclaim_state`). The
//! shrinker is in `shrinker` (today's kernel keeps `shrink_slab` in
//! `mm/shrinker.c`).
//!
//! State is struct-of-arrays: one slab descriptor per slab page (indexed by
//! `next[pfn]` of the page, descriptors recycled through a free stack), and
//! per-cache intrusive lists; every operation is O(1) apart from the bounded
//! shrinker scan.

use super::machine::Machine;
use super::objects::{OBJ_HOLDS, OBJ_IS_SLAB, OBJ_RECLAIMED, OBJ_REF};
use super::page::{list_add, list_del, ListHead, F_SLAB};
use crate::gfp::__GFP_KERNRCLM;
use crate::page_owner::AllocCtx;
use crate::{NONE, PAGE_SIZE};

mod shrinker;
#[cfg(test)]
mod tests;

pub use shrinker::{DEFAULT_SEEKS, SHRINK_BATCH};

/// One slab cache of the 2.6.11 i386 kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheInfo {
    /// The name `/proc/slabinfo` prints.
    pub name: &'static str,
    /// Object size in bytes (i386 2.6.11 slabinfo of the era; approximate).
    pub size: u32,
    /// Created with `SLAB_RECLAIM_ACCOUNT` (2005 patch: pages are KernRclm) and
    /// shrunk by a shrinker.
    pub reclaimable: bool,
}

/// The caches, by index (the `order` byte of OP_SLAB_ALLOC). Append only:
/// traces name caches by index.
pub const CACHES: &[CacheInfo] = &[
    CacheInfo {
        name: "dentry_cache",
        size: 136,
        reclaimable: true,
    },
    CacheInfo {
        name: "ext3_inode_cache",
        size: 500,
        reclaimable: true,
    },
    CacheInfo {
        name: "buffer_head",
        size: 52,
        reclaimable: true,
    },
    CacheInfo {
        name: "task_struct",
        size: 1312,
        reclaimable: false,
    },
    CacheInfo {
        name: "files_cache",
        size: 416,
        reclaimable: false,
    },
    CacheInfo {
        name: "mm_struct",
        size: 448,
        reclaimable: false,
    },
    CacheInfo {
        name: "vm_area_struct",
        size: 88,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-32",
        size: 32,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-64",
        size: 64,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-128",
        size: 128,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-256",
        size: 256,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-512",
        size: 512,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-1024",
        size: 1024,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-2048",
        size: 2048,
        reclaimable: false,
    },
    CacheInfo {
        name: "size-4096",
        size: 4096,
        reclaimable: false,
    },
];
pub const NR_CACHES: usize = CACHES.len();

/// `struct slab` on i386 2.6.11: list_head, colouroff, s_mem, inuse, free.
pub const SLAB_DESC_BYTES: u32 = 24;
/// `kmem_bufctl_t`, one per object after an on-slab descriptor.
pub const BUFCTL_BYTES: u32 = 4;
/// Objects of at least PAGE_SIZE / 8 keep their descriptor off the slab.
pub const OFF_SLAB_MIN: u32 = (PAGE_SIZE as u32) >> 3;

/// Objects one order-0 slab page holds: with the descriptor and one bufctl
/// per object on the slab for small objects, the whole page for large ones.
pub const fn objs_per_slab(size: u32) -> u32 {
    let page = PAGE_SIZE as u32;
    if size >= OFF_SLAB_MIN {
        page / size
    } else {
        (page - SLAB_DESC_BYTES) / (size + BUFCTL_BYTES)
    }
}

/// Cache index by name.
pub fn cache_index(name: &str) -> Option<usize> {
    CACHES.iter().position(|c| c.name == name)
}

/// Which of its cache's lists a slab is on.
const ON_PARTIAL: u8 = 0;
const ON_FULL: u8 = 1;

/// The slab state of a machine.
#[derive(Debug, Clone)]
pub(crate) struct Slabs {
    // per slab descriptor
    pub pfn: Vec<u32>,
    pub inuse: Vec<u32>,
    pub cache: Vec<u8>,
    pub on: Vec<u8>,
    pub next: Vec<u32>,
    pub prev: Vec<u32>,
    /// Descriptors not in use.
    pub spare: Vec<u32>,
    // per cache
    pub partial: [ListHead; NR_CACHES],
    pub full: [ListHead; NR_CACHES],
    /// Reclaimable caches: objects, newest at the head (the unused list).
    pub lru: [ListHead; NR_CACHES],
    pub nr_objs: [u64; NR_CACHES],
    /// Objects the shrinker still owes a scan (`shrinker->nr`).
    pub shrink_nr: [u64; NR_CACHES],
}

impl Default for Slabs {
    fn default() -> Self {
        Slabs {
            pfn: Vec::new(),
            inuse: Vec::new(),
            cache: Vec::new(),
            on: Vec::new(),
            next: Vec::new(),
            prev: Vec::new(),
            spare: Vec::new(),
            partial: [ListHead::default(); NR_CACHES],
            full: [ListHead::default(); NR_CACHES],
            lru: [ListHead::default(); NR_CACHES],
            nr_objs: [0; NR_CACHES],
            shrink_nr: [0; NR_CACHES],
        }
    }
}

impl Slabs {
    fn new_desc(&mut self) -> u32 {
        if let Some(s) = self.spare.pop() {
            return s;
        }
        let s = self.pfn.len() as u32;
        self.pfn.push(NONE);
        self.inuse.push(0);
        self.cache.push(0);
        self.on.push(ON_PARTIAL);
        self.next.push(NONE);
        self.prev.push(NONE);
        s
    }

    fn list(&mut self, c: usize, on: u8) -> (&mut Vec<u32>, &mut Vec<u32>, &mut ListHead) {
        let l = if on == ON_FULL {
            &mut self.full[c]
        } else {
            &mut self.partial[c]
        };
        (&mut self.next, &mut self.prev, l)
    }

    fn unlink(&mut self, s: u32) {
        let (c, on) = (self.cache[s as usize] as usize, self.on[s as usize]);
        let (n, p, l) = self.list(c, on);
        list_del(n, p, l, s);
    }

    fn link(&mut self, s: u32, on: u8) {
        let c = self.cache[s as usize] as usize;
        self.on[s as usize] = on;
        let (n, p, l) = self.list(c, on);
        list_add(n, p, l, s);
    }

    /// Slab pages of cache `c`.
    pub fn nr_slabs(&self, c: usize) -> u64 {
        (self.partial[c].nr + self.full[c].nr) as u64
    }
}

/// One row of `/proc/slabinfo`-like statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabInfo {
    pub name: &'static str,
    pub active_objs: u64,
    pub num_objs: u64,
    pub objsize: u32,
    pub objperslab: u32,
    pub num_slabs: u64,
}

impl Machine {
    /// Put object `obj` in cache `c` (`kmem_cache_alloc`); the caller's mask
    /// `gfp` is used if a slab page must be allocated. Returns the slab page's
    /// pfn, or None if no page could be had (the object is then not present).
    pub(crate) fn slab_alloc_obj(
        &mut self,
        obj: u32,
        c: usize,
        gfp: u32,
        ctx: AllocCtx,
    ) -> Option<u32> {
        let s = match self.slab.partial[c].head {
            NONE => self.cache_grow(c, gfp, ctx)?,
            s => s,
        };
        let sl = &mut self.slab;
        sl.inuse[s as usize] += 1;
        if sl.inuse[s as usize] == objs_per_slab(CACHES[c].size) {
            sl.unlink(s);
            sl.link(s, ON_FULL);
        }
        sl.nr_objs[c] += 1;
        let pfn = sl.pfn[s as usize];
        let o = obj as usize;
        self.objs.pfn[o] = pfn;
        self.objs.state[o] &= !(OBJ_RECLAIMED | OBJ_REF);
        self.objs.state[o] |= OBJ_IS_SLAB;
        self.objs.order[o] = c as u8;
        self.objs.gfp[o] = gfp;
        if CACHES[c].reclaimable {
            let sl = &mut self.slab;
            list_add(
                &mut self.objs.lru_next,
                &mut self.objs.lru_prev,
                &mut sl.lru[c],
                obj,
            );
        }
        self.counters.slab_alloc += 1;
        Some(pfn)
    }

    /// `cache_grow`: a new slab page for cache `c`, linked as partial; returns
    /// its descriptor.
    fn cache_grow(&mut self, c: usize, gfp: u32, ctx: AllocCtx) -> Option<u32> {
        let mask = if CACHES[c].reclaimable {
            gfp | __GFP_KERNRCLM
        } else {
            gfp
        };
        let node = 0;
        let pfn = self.alloc_inner(0, mask, node, ctx)?;
        let s = self.slab.new_desc();
        let sl = &mut self.slab;
        sl.pfn[s as usize] = pfn;
        sl.inuse[s as usize] = 0;
        sl.cache[s as usize] = c as u8;
        sl.link(s, ON_PARTIAL);
        self.flags[pfn as usize] |= F_SLAB;
        self.next[pfn as usize] = s;
        self.counters.slab_pages_alloc += 1;
        Some(s)
    }

    /// Take present object `obj` out of its slab (`kmem_cache_free`); the slab
    /// page goes back to the allocator if this was its last object. Returns the
    /// pages freed (0 or 1). `direct_free` bypasses the per-cpu lists.
    pub(crate) fn slab_free_obj(&mut self, obj: u32, direct_free: bool) -> u64 {
        let o = obj as usize;
        let pfn = self.objs.pfn[o];
        let s = self.next[pfn as usize];
        let c = self.slab.cache[s as usize] as usize;
        if CACHES[c].reclaimable {
            let sl = &mut self.slab;
            list_del(
                &mut self.objs.lru_next,
                &mut self.objs.lru_prev,
                &mut sl.lru[c],
                obj,
            );
        }
        self.release_hold(obj);
        self.objs.pfn[o] = NONE;
        self.counters.slab_free += 1;
        let sl = &mut self.slab;
        sl.nr_objs[c] -= 1;
        let was_full = sl.on[s as usize] == ON_FULL;
        sl.inuse[s as usize] -= 1;
        if sl.inuse[s as usize] == 0 {
            sl.unlink(s);
            sl.pfn[s as usize] = NONE;
            sl.spare.push(s);
            self.flags[pfn as usize] &= !F_SLAB;
            self.next[pfn as usize] = NONE;
            self.free_block(pfn, direct_free, 0);
            self.counters.slab_pages_free += 1;
            return 1;
        }
        if was_full {
            sl.unlink(s);
            sl.link(s, ON_PARTIAL);
        }
        0
    }

    /// A present pinner stops holding its pin target.
    #[inline]
    pub(crate) fn release_hold(&mut self, obj: u32) {
        let o = obj as usize;
        if self.objs.state[o] & OBJ_HOLDS != 0 {
            self.objs.state[o] &= !OBJ_HOLDS;
            let t = self.objs.pin[o] as usize;
            self.objs.held[t] -= 1;
        }
    }

    /// A present pinner starts holding its pin target (present or not: an
    /// absent target is faulted back first, as a page read needs its inode).
    pub(crate) fn take_hold(&mut self, obj: u32, ctx: AllocCtx) {
        let o = obj as usize;
        let t = self.objs.pin[o];
        if t == NONE || self.objs.state[o] & OBJ_HOLDS != 0 {
            return;
        }
        if self.objs.pfn[t as usize] == NONE {
            let (c, gfp) = (
                self.objs.order[t as usize] as usize,
                self.objs.gfp[t as usize],
            );
            if self.slab_alloc_obj(t, c, gfp, ctx).is_none() {
                return;
            }
            self.counters.slab_refaults += 1;
            // reclaim for the target's page may have taken the pinner itself
            if self.objs.pfn[o] == NONE {
                return;
            }
        }
        self.objs.held[t as usize] += 1;
        self.objs.state[o] |= OBJ_HOLDS;
    }

    /// `mark_page_accessed` for a slab object: referenced, kept one more scan.
    #[inline]
    pub(crate) fn slab_touch(&mut self, obj: u32) {
        self.objs.state[obj as usize] |= OBJ_REF;
    }

    /// Per cache: objects, slab pages and their geometry (`/proc/slabinfo`).
    pub fn slabinfo(&self) -> Vec<SlabInfo> {
        (0..NR_CACHES)
            .map(|c| {
                let per = objs_per_slab(CACHES[c].size);
                let slabs = self.slab.nr_slabs(c);
                SlabInfo {
                    name: CACHES[c].name,
                    active_objs: self.slab.nr_objs[c],
                    num_objs: slabs * per as u64,
                    objsize: CACHES[c].size,
                    objperslab: per,
                    num_slabs: slabs,
                }
            })
            .collect()
    }

    /// The cache and slab page of a present slab object, if it is one.
    pub fn slab_object(&self, obj: u32) -> Option<(usize, u32)> {
        let obj = self.objs.slot(obj)? as u32;
        let p = self.objs.pfn[obj as usize];
        if p == NONE || self.flags[p as usize] & F_SLAB == 0 {
            return None;
        }
        if self.objs.state[obj as usize] & OBJ_IS_SLAB == 0 {
            return None;
        }
        Some((self.slab.cache[self.next[p as usize] as usize] as usize, p))
    }

    /// The slab invariants: every slab page is an allocated order-0 head marked
    /// F_SLAB whose descriptor points back at it, on the list its fill says,
    /// holding exactly the present objects that name it; the caches' object
    /// counts and unused lists agree.
    pub(crate) fn check_slab(&self) -> std::result::Result<(), String> {
        use super::objects::OBJ_LIVE;
        use super::page::{forder, kind, K_ALLOC};
        let sl = &self.slab;
        let mut count = vec![0u32; sl.pfn.len()];
        let mut per_cache = [0u64; NR_CACHES];
        for o in 0..self.objs.len() {
            let st = self.objs.state[o];
            let p = self.objs.pfn[o];
            if st & OBJ_IS_SLAB == 0 || p == NONE {
                continue;
            }
            if st & OBJ_LIVE == 0 {
                return Err(format!(
                    "slab object {o} is present but not allocated by the trace"
                ));
            }
            if self.flags[p as usize] & F_SLAB == 0 {
                return Err(format!(
                    "slab object {o} names pfn {p}, which is not a slab page"
                ));
            }
            let s = self.next[p as usize] as usize;
            count[s] += 1;
            per_cache[sl.cache[s] as usize] += 1;
        }
        let mut held = vec![0u32; self.objs.len()];
        for o in 0..self.objs.len() {
            if self.objs.state[o] & OBJ_HOLDS != 0 {
                let t = self.objs.pin[o];
                if t == NONE || self.objs.pfn[o] == NONE || self.objs.pfn[t as usize] == NONE {
                    return Err(format!(
                        "object {o} holds a pin but it or its target is absent"
                    ));
                }
                held[t as usize] += 1;
            }
        }
        if let Some(o) = (0..self.objs.len()).find(|&o| held[o] != self.objs.held[o]) {
            return Err(format!(
                "object {o} is held by {} pinners but counts {}",
                held[o], self.objs.held[o]
            ));
        }
        let mut pages = 0u64;
        for c in 0..NR_CACHES {
            let per = objs_per_slab(CACHES[c].size);
            for (on, l) in [(ON_PARTIAL, &sl.partial[c]), (ON_FULL, &sl.full[c])] {
                let mut s = l.head;
                let mut n = 0u32;
                while s != NONE {
                    n += 1;
                    if n > l.nr {
                        return Err(format!(
                            "cache {}: a slab list is longer than its count",
                            CACHES[c].name
                        ));
                    }
                    let (su, p) = (s as usize, sl.pfn[s as usize]);
                    let f = self.flags[p as usize];
                    if kind(f) != K_ALLOC
                        || forder(f) != 0
                        || f & F_SLAB == 0
                        || self.next[p as usize] != s
                    {
                        return Err(format!(
                            "slab {s} of {}: pfn {p} is not its slab page",
                            CACHES[c].name
                        ));
                    }
                    if sl.cache[su] as usize != c || sl.on[su] != on {
                        return Err(format!(
                            "slab {s} is on the wrong list of {}",
                            CACHES[c].name
                        ));
                    }
                    let want_full = sl.inuse[su] == per;
                    if sl.inuse[su] == 0 || sl.inuse[su] > per || want_full != (on == ON_FULL) {
                        return Err(format!(
                            "slab {s} of {} holds {} of {per} objects but is on the {} list",
                            CACHES[c].name,
                            sl.inuse[su],
                            if on == ON_FULL { "full" } else { "partial" }
                        ));
                    }
                    if count[su] != sl.inuse[su] {
                        return Err(format!(
                            "slab {s} of {} counts {} objects but {} name it",
                            CACHES[c].name, sl.inuse[su], count[su]
                        ));
                    }
                    pages += 1;
                    s = sl.next[su];
                }
                if n != l.nr {
                    return Err(format!(
                        "cache {}: slab list count {} but {n} linked",
                        CACHES[c].name, l.nr
                    ));
                }
            }
            if per_cache[c] != sl.nr_objs[c] {
                return Err(format!(
                    "cache {}: {} objects counted, {} present",
                    CACHES[c].name, sl.nr_objs[c], per_cache[c]
                ));
            }
            let want_lru = if CACHES[c].reclaimable {
                per_cache[c]
            } else {
                0
            };
            if sl.lru[c].nr as u64 != want_lru {
                return Err(format!(
                    "cache {}: {} objects on the unused list, {want_lru} expected",
                    CACHES[c].name, sl.lru[c].nr
                ));
            }
        }
        let marked = self.flags.iter().filter(|&&f| f & F_SLAB != 0).count() as u64;
        if marked != pages {
            return Err(format!(
                "{marked} pages marked slab but {pages} on slab lists"
            ));
        }
        Ok(())
    }
}
