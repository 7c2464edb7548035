//! Trace objects: the block each holds, how it was allocated, and its LRU links.

use crate::NONE;

/// Between OP_ALLOC and OP_FREE in the trace.
pub(crate) const OBJ_LIVE: u8 = 1;
/// Reclaim took the object's block; a touch refaults it.
pub(crate) const OBJ_RECLAIMED: u8 = 2;
/// A slab object (OP_SLAB_ALLOC), not a block of pages: `pfn` is its slab
/// page, `order` its cache. Set and cleared with `OBJ_LIVE` by validation.
pub(crate) const OBJ_SLAB: u8 = 4;
/// Referenced since the shrinker last looked (`DCACHE_REFERENCED`, `I_REFERENCED`).
pub(crate) const OBJ_REF: u8 = 8;
/// The object is present and counts in `held` of the object it pins.
pub(crate) const OBJ_HOLDS: u8 = 16;
/// A page object is on its zone's active list (`PageActive`); its
/// referenced bit (`PageReferenced`) is `OBJ_REF`.
pub(crate) const OBJ_ACTIVE: u8 = 64;
/// The engine's view of `OBJ_SLAB`: set when OP_SLAB_ALLOC is applied,
/// cleared when OP_ALLOC is (validation runs ahead of the engine, so the
/// engine cannot read `OBJ_SLAB`).
pub(crate) const OBJ_IS_SLAB: u8 = 32;

/// Struct-of-arrays over object ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct Objects {
    pub pfn: Vec<u32>,
    pub gfp: Vec<u32>,
    pub order: Vec<u8>,
    /// `OBJ_LIVE` | `OBJ_RECLAIMED`.
    pub state: Vec<u8>,
    pub lru_next: Vec<u32>,
    pub lru_prev: Vec<u32>,
    /// The slab object this one pins (OP_SLAB_PIN: a page-cache page or a
    /// dentry pins its inode), NONE if none; kept until the trace frees it.
    pub pin: Vec<u32>,
    /// Pin links naming this object (the trace's view: reclaim does not change it).
    pub npins: Vec<u32>,
    /// Pinners present now (not reclaimed): the shrinker skips an object while > 0.
    pub held: Vec<u32>,
    /// The task (tgid) the object belongs to (`TF_TASK`), NONE if none.
    pub owner: Vec<u32>,
}

impl Objects {
    /// Grow to at least `n` objects.
    pub fn ensure(&mut self, n: usize) {
        if self.pfn.len() < n {
            self.pfn.resize(n, NONE);
            self.gfp.resize(n, 0);
            self.order.resize(n, 0);
            self.state.resize(n, 0);
            self.lru_next.resize(n, NONE);
            self.lru_prev.resize(n, NONE);
            self.pin.resize(n, NONE);
            self.npins.resize(n, 0);
            self.held.resize(n, 0);
            self.owner.resize(n, NONE);
        }
    }

    pub fn len(&self) -> usize {
        self.pfn.len()
    }

    /// Shrink back to `n` objects (undoing an `ensure` for a rejected trace).
    pub fn truncate(&mut self, n: usize) {
        self.pfn.truncate(n);
        self.gfp.truncate(n);
        self.order.truncate(n);
        self.state.truncate(n);
        self.lru_next.truncate(n);
        self.lru_prev.truncate(n);
        self.pin.truncate(n);
        self.npins.truncate(n);
        self.held.truncate(n);
        self.owner.truncate(n);
    }
}
