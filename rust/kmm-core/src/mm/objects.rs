//! Trace objects: the block each holds, how it was allocated, and its LRU links.

use super::page::advise_huge;
use crate::NONE;
use std::collections::hash_map::HashMap;
use std::collections::TryReserveError;
use std::hash::{BuildHasherDefault, Hasher};

/// Ids below this map to their slot through a direct table.
pub(crate) const DENSE_IDS: u32 = 1 << 22;

/// Hashes a trace object id (a `u32`) for the id -> slot map. Ids 4096
/// apart land at unrelated places (a multiply of the high bits, Fibonacci
/// hashing), so no pattern of ids piles up in one spot; within a run of 4096
/// they are XORed with one constant, so consecutive ids, as workloads number
/// them, stay in the same cache lines (hashbrown takes the bucket from the low
/// bits, the 7-bit tag from the top, here the id's own low 7 bits).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        let i = i as u64;
        self.0 = (i >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i ^ ((i & 0x7f) << 57);
    }
}

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
/// The object's block is unevictable (`TF_UNEVICTABLE`, `PG_unevictable`):
/// on its zone's unevictable list, never reclaimed, migrated by compaction.
pub(crate) const OBJ_UNEVICTABLE: u8 = 128;

/// Struct-of-arrays over object slots. A trace names objects by ids of its
/// own choosing (anything below `max_objects`); each live id holds a slot,
/// so the table is as long as the most objects live at once (plus those one
/// trace allocates), not as the largest id.
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
    /// The trace id each slot holds, NONE for a free slot.
    pub slot_id: Vec<u32>,
    /// Trace id -> slot + 1 (0: none) for ids below [`DENSE_IDS`], as
    /// workloads number them: one load, in id order. Grows to the largest
    /// such id allocated, at most 16 MiB.
    pub dense: Vec<u32>,
    /// Trace id -> slot for larger ids: as big as the live ones.
    pub sparse: HashMap<u32, u32, BuildHasherDefault<IdHasher>>,
    /// Slots no id holds, to be given out again.
    pub free_slots: Vec<u32>,
}

impl Objects {
    /// Grow to at least `n` slots; an allocation failure leaves the table as it was.
    pub fn try_ensure(&mut self, n: usize) -> Result<(), TryReserveError> {
        let k = n.saturating_sub(self.pfn.len());
        if k == 0 {
            return Ok(());
        }
        self.pfn.try_reserve_exact(k)?;
        self.gfp.try_reserve_exact(k)?;
        self.order.try_reserve_exact(k)?;
        self.state.try_reserve_exact(k)?;
        self.lru_next.try_reserve_exact(k)?;
        self.lru_prev.try_reserve_exact(k)?;
        self.pin.try_reserve_exact(k)?;
        self.npins.try_reserve_exact(k)?;
        self.held.try_reserve_exact(k)?;
        self.slot_id.try_reserve_exact(k)?;
        self.owner.try_reserve_exact(k)?;
        advise_huge(&self.pfn);
        advise_huge(&self.gfp);
        advise_huge(&self.order);
        advise_huge(&self.state);
        advise_huge(&self.lru_next);
        advise_huge(&self.lru_prev);
        advise_huge(&self.pin);
        advise_huge(&self.npins);
        advise_huge(&self.held);
        advise_huge(&self.slot_id);
        advise_huge(&self.owner);
        self.ensure(n);
        Ok(())
    }

    /// The slot trace id `id` holds now.
    #[inline]
    pub fn slot(&self, id: u32) -> Option<usize> {
        if id < DENSE_IDS {
            match self.dense.get(id as usize) {
                Some(&s) if s != 0 => Some(s as usize - 1),
                _ => None,
            }
        } else {
            self.sparse.get(&id).map(|&s| s as usize)
        }
    }

    /// Give id `id` slot `s`; an allocation failure changes nothing.
    pub fn set_slot(&mut self, id: u32, s: u32) -> Result<(), TryReserveError> {
        if id < DENSE_IDS {
            let i = id as usize;
            if i >= self.dense.len() {
                let want = (i + 1).max(self.dense.len() * 2).min(DENSE_IDS as usize);
                self.dense.try_reserve_exact(want - self.dense.len())?;
                advise_huge(&self.dense);
                self.dense.resize(want, 0);
            }
            self.dense[i] = s + 1;
        } else {
            self.sparse.try_reserve(1)?;
            self.sparse.insert(id, s);
        }
        Ok(())
    }

    /// Id `id` holds no slot any more.
    pub fn remove_slot(&mut self, id: u32) {
        if id < DENSE_IDS {
            if let Some(s) = self.dense.get_mut(id as usize) {
                *s = 0;
            }
        } else {
            self.sparse.remove(&id);
        }
    }

    /// One past the largest id that holds a slot.
    pub fn ids_end(&self) -> usize {
        let sparse = self.sparse.keys().max().map(|&m| m as usize + 1);
        sparse.unwrap_or_else(|| {
            self.dense
                .iter()
                .rposition(|&s| s != 0)
                .map_or(0, |i| i + 1)
        })
    }

    /// Grow to at least `n` slots.
    pub fn ensure(&mut self, n: usize) {
        if self.pfn.len() < n {
            self.slot_id.resize(n, NONE);
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
        self.slot_id.truncate(n);
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
