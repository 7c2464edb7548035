//! Trace objects: the block each holds, how it was allocated, and its LRU links.

use crate::NONE;

/// Between OP_ALLOC and OP_FREE in the trace.
pub(crate) const OBJ_LIVE: u8 = 1;
/// Reclaim took the object's block; a touch refaults it.
pub(crate) const OBJ_RECLAIMED: u8 = 2;

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
    }
}
