//! Trace objects: the block each holds, how it was allocated, and its LRU links.

use super::page::advise_huge;
use crate::replay::program::Rec;
use crate::NONE;
use std::collections::hash_map::HashMap;
use std::collections::TryReserveError;
use std::hash::{BuildHasherDefault, Hasher};

/// Ids below this map to their slot through a direct table.
/// (128 Mi ids: a load that numbers that many objects without reusing an id
/// stays direct, as `kmm highalloc --layout x86_64 --mem 64GiB` does, whose
/// 405 trees' pages, dentries and inodes number 85.5 M ids; ids above go
/// through maps, where 54% of the samples of that run's replay were when
/// the limit was 8 Mi (`docs/workloads.md`). The direct table grows to the largest id allocated, by
/// half again each time past [`DENSE_DOUBLE`]: at most 512 MiB, the
/// validation view 256 MiB; the default run's ids stay below 8 Mi.)
pub(crate) const DENSE_IDS: u32 = 1 << 27;

/// Below this many entries a direct table doubles when it grows; above,
/// it grows by half its length (a 64 GiB load's 85.5 M ids take 96 Mi
/// entries instead of 128 Mi).
const DENSE_DOUBLE: usize = 1 << 23;

/// The length a direct table of `len` entries grows to for an entry at
/// `need - 1`: at least 4096, doubling and then growing by half, at most
/// [`DENSE_IDS`].
fn dense_len(len: usize, need: usize) -> usize {
    let step = if len < DENSE_DOUBLE {
        len * 2
    } else {
        len + len / 2
    };
    need.max(step).max(1 << 12).min(DENSE_IDS as usize)
}

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

/// A hint that `v[i]` will be read soon: replay looks a few records ahead,
/// so that the random per-object loads of a large trace overlap instead of
/// each waiting for memory in turn. No bounds test: an x86 prefetch of any
/// address, mapped or not, is only a hint that never faults, and a replay
/// issues a dozen of these a record (the test was 15 instructions a record).
#[inline(always)]
pub(crate) fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` reads nothing the program sees and cannot
    // fault, whatever the address; `wrapping_add` makes the address without
    // the in-bounds requirement of `add` (it is never dereferenced)
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            v.as_ptr().wrapping_add(i) as *const i8,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, i);
}

/// Between OP_ALLOC and OP_FREE in the trace.
pub(crate) const OBJ_LIVE: u8 = 1;
/// Reclaim took the object's block; a touch refaults it.
pub(crate) const OBJ_RECLAIMED: u8 = 2;
/// A slab object (OP_SLAB_ALLOC), not a block of pages: `pfn` is its slab
/// page, `order` its cache. Set with `OBJ_LIVE` when the slot is bound.
pub(crate) const OBJ_SLAB: u8 = 4;
/// Referenced since the shrinker last looked (`DCACHE_REFERENCED`, `I_REFERENCED`).
pub(crate) const OBJ_REF: u8 = 8;
/// The object is present and counts in `held` of the object it pins.
pub(crate) const OBJ_HOLDS: u8 = 16;
/// A page object is on its zone's active list (`PageActive`); its
/// referenced bit (`PageReferenced`) is `OBJ_REF`.
pub(crate) const OBJ_ACTIVE: u8 = 64;
/// The engine's view of `OBJ_SLAB`: set when OP_SLAB_ALLOC is applied,
/// cleared when OP_ALLOC is.
pub(crate) const OBJ_IS_SLAB: u8 = 32;
/// The object's block is unevictable (`TF_UNEVICTABLE`, `PG_unevictable`):
/// on its zone's unevictable list, never reclaimed, migrated by compaction.
pub(crate) const OBJ_UNEVICTABLE: u8 = 128;

/// Struct-of-arrays over object slots. A trace names objects by ids of its
/// own choosing (anything below `max_objects`); each live id holds a slot,
/// taken when its allocation runs and given back when its free runs (the
/// next new id takes it, in the same trace too), so the table is as long as
/// the most objects live at once, not as the largest id nor as the ids one
/// trace names.
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
    /// such id allocated, at most 512 MiB.
    pub dense: Vec<u32>,
    /// Trace id -> slot for larger ids: as big as the live ones.
    pub sparse: HashMap<u32, u32, BuildHasherDefault<IdHasher>>,
    /// Slots no id holds, to be given out again.
    pub free_slots: Vec<u32>,
    /// The trace's view of its ids while a replay validates it (`replay::validate`).
    pub view: TraceView,
}

/// A validated id's state in [`TraceView`]: named by the trace (0: not yet,
/// the machine's own tables say).
pub(crate) const V_SEEN: u8 = 1;
/// Allocated at this point of the trace.
pub(crate) const V_LIVE: u8 = 2;
/// A slab object.
pub(crate) const V_SLAB: u8 = 4;
/// Pins or is pinned: [`TraceView::pins`] holds its links.
pub(crate) const V_PINS: u8 = 8;

/// What validation knows of the ids a trace names, record by record, without
/// changing the machine: by id (a direct table below [`DENSE_IDS`], a map
/// above). The engine's own tables change only when a record runs. A direct
/// entry is `epoch << 4 | state` and means something only in the replay of
/// its epoch: each replay starts a new one ([`TraceView::begin`]), so nothing
/// has to clear what the last replay wrote, record by record.
#[derive(Debug, Default, Clone)]
pub(crate) struct TraceView {
    pub dense: Vec<u16>,
    /// This replay's epoch (1 ..= [`LAST_EPOCH`]; 0 before the first).
    epoch: u16,
    pub sparse: HashMap<u32, u8, BuildHasherDefault<IdHasher>>,
    /// Id -> (the id it pins or NONE, how many ids pin it), for ids marked `V_PINS`.
    pub pins: HashMap<u32, (u32, u32), BuildHasherDefault<IdHasher>>,
    /// The buffer of the last replay's records (`replay::program`), empty,
    /// kept for the next one when it is at most [`KEEP_PROGRAM`] bytes.
    pub prog: Vec<Rec>,
}

/// The most program buffer capacity, in bytes, a machine keeps between
/// replays (a chunk of about a million records).
pub(crate) const KEEP_PROGRAM: usize = 32 << 20;

/// Epochs before the direct table is cleared and they start again (12 bits).
pub(crate) const LAST_EPOCH: u16 = (1 << 12) - 1;

impl TraceView {
    /// Start a replay's view: every id not named yet (a new epoch).
    pub fn begin(&mut self) {
        debug_assert!(self.sparse.is_empty() && self.pins.is_empty());
        if self.epoch == LAST_EPOCH {
            self.dense.fill(0);
            self.epoch = 0;
        }
        self.epoch += 1;
    }

    /// End a replay's view (run, interrupted or refused): its maps are cleared.
    pub fn end(&mut self) {
        if !self.sparse.is_empty() {
            self.sparse.clear();
        }
        if !self.pins.is_empty() {
            self.pins.clear();
        }
    }

    /// The state of id `id` (0: not named yet).
    #[inline(always)]
    pub fn get(&self, id: u32) -> u8 {
        if id < DENSE_IDS {
            match self.dense.get(id as usize) {
                // this epoch's entry is its state, below 16; any other is 16 or more
                Some(&e) => {
                    let x = e ^ (self.epoch << 4);
                    if x < 16 {
                        x as u8
                    } else {
                        0
                    }
                }
                None => 0,
            }
        } else {
            self.sparse.get(&id).copied().unwrap_or(0)
        }
    }

    /// Set id `id`'s state (below 16); an allocation failure changes nothing.
    #[inline(always)]
    pub fn set(&mut self, id: u32, v: u8) -> Result<(), TryReserveError> {
        debug_assert!(v < 16);
        if let Some(e) = self.dense.get_mut(id as usize) {
            *e = self.epoch << 4 | v as u16;
            return Ok(());
        }
        self.set_grow(id, v)
    }

    #[inline(never)]
    fn set_grow(&mut self, id: u32, v: u8) -> Result<(), TryReserveError> {
        if id < DENSE_IDS {
            let i = id as usize;
            if i >= self.dense.len() {
                let want = dense_len(self.dense.len(), i + 1);
                self.dense.try_reserve_exact(want - self.dense.len())?;
                self.dense.resize(want, 0);
            }
            self.dense[i] = self.epoch << 4 | v as u16;
        } else {
            self.sparse.try_reserve(1)?;
            self.sparse.insert(id, v);
        }
        Ok(())
    }
}

impl Objects {
    /// Room for `k` more slots and for every slot to be free at once, so that
    /// [`Objects::bind`] and [`Objects::unbind`] never allocate; an allocation
    /// failure leaves the table as it was.
    pub fn try_reserve_slots(&mut self, k: usize) -> Result<(), TryReserveError> {
        let n = self.pfn.len() + k;
        self.free_slots
            .try_reserve(n.saturating_sub(self.free_slots.len()))?;
        if k == 0 {
            return Ok(());
        }
        self.pfn.try_reserve(k)?;
        self.gfp.try_reserve(k)?;
        self.order.try_reserve(k)?;
        self.state.try_reserve(k)?;
        self.lru_next.try_reserve(k)?;
        self.lru_prev.try_reserve(k)?;
        self.pin.try_reserve(k)?;
        self.npins.try_reserve(k)?;
        self.held.try_reserve(k)?;
        self.slot_id.try_reserve(k)?;
        self.owner.try_reserve(k)?;
        Ok(())
    }

    /// Give id `id`, which holds no slot, one: the free slot given back
    /// last, else a new one (within the room [`Objects::try_reserve_slots`]
    /// made). Its state is `state` (`OBJ_LIVE`, with `OBJ_SLAB` for a slab
    /// object); the id map has room for `id` (see `replay::validate`).
    #[inline(always)]
    pub fn bind(&mut self, id: u32, state: u8) -> u32 {
        let s = match self.free_slots.pop() {
            Some(s) => s,
            None => self.new_slot(),
        };
        debug_assert!((s as usize) < self.slot_id.len() && (s as usize) < self.state.len());
        // SAFETY: `s` is a slot: a free one (`unbind` gives back only slots
        // it indexed) or the one just made, and every slot array is as long
        // as the table (they grow together, in `new_slot`)
        unsafe {
            *self.slot_id.get_unchecked_mut(s as usize) = id;
            *self.state.get_unchecked_mut(s as usize) = state;
        }
        if id < DENSE_IDS {
            self.dense[id as usize] = s + 1;
        } else {
            self.sparse.insert(id, s);
        }
        s
    }

    /// A new slot at the end of every slot array.
    #[inline(never)]
    fn new_slot(&mut self) -> u32 {
        let s = self.pfn.len() as u32;
        self.slot_id.push(NONE);
        self.pfn.push(NONE);
        self.gfp.push(0);
        self.order.push(0);
        self.state.push(0);
        self.lru_next.push(NONE);
        self.lru_prev.push(NONE);
        self.pin.push(NONE);
        self.npins.push(0);
        self.held.push(0);
        self.owner.push(NONE);
        s
    }

    /// The trace freed the object in slot `s`: its id holds no slot any more
    /// and the slot is free for the next new id.
    #[inline(always)]
    pub fn unbind(&mut self, s: u32) {
        let id = std::mem::replace(&mut self.slot_id[s as usize], NONE);
        self.remove_slot(id);
        debug_assert!((s as usize) < self.state.len() && (s as usize) < self.pfn.len());
        // SAFETY: `s` indexed `slot_id` just now, and every slot array is
        // as long as it (they grow together, in `new_slot`)
        unsafe {
            *self.state.get_unchecked_mut(s as usize) = 0;
            *self.pfn.get_unchecked_mut(s as usize) = NONE;
        }
        debug_assert!(self.free_slots.len() < self.free_slots.capacity());
        // within the room `try_reserve_slots` made for every slot at once
        self.free_slots.push(s);
    }

    /// Room in the id map for every id below `end` that is below
    /// [`DENSE_IDS`], and for `sparse` more ids above it (twice over, so that
    /// inserts between removals rehash in place instead of growing).
    pub fn try_reserve_ids(&mut self, end: usize, sparse: usize) -> Result<(), TryReserveError> {
        if end > self.dense.len() {
            let want = dense_len(self.dense.len(), end);
            self.dense.try_reserve_exact(want - self.dense.len())?;
            advise_huge(&self.dense);
            self.dense.resize(want, 0);
        }
        if sparse > 0 {
            self.sparse.try_reserve(self.sparse.len() + 2 * sparse)?;
        }
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

    pub fn len(&self) -> usize {
        self.pfn.len()
    }
}
