//! A lock-free multi-producer, single-consumer descriptor ring.
//!
//! Reservation is DPDK's `rte_ring` in its multi-producer form (FACTS section
//! 8): free-running 32-bit indices masked on access; a producer reserves a run
//! of slots by moving `prod_head` with a compare-and-swap. Publication is per
//! slot (a sequence number, as in Vyukov's bounded queue / crossbeam's
//! `ArrayQueue`) rather than DPDK's shared `prod_tail`: a producer never waits
//! for the one ahead of it (on 2 cores that wait, behind a descheduled
//! producer, cost a factor of 3-4), and since the consumer takes positions in
//! order and stops at the first unpublished one, descriptors still reach it in
//! reservation order. The single consumer (the NIC's DMA engine) fetches published descriptors and
//! later reclaims them by moving `cons_tail`, which is what frees slots for the
//! producers. Bulk enqueue is all-or-nothing (a packet's descriptors), burst
//! enqueue takes as many as fit (DPDK's burst, one reservation for a batch).
//!
//! Descriptors are `u64` words stored in atomics (plain stores on x86), so the
//! ring has no `unsafe` and runs unchanged under loom.

use crate::sync::{spin_wait, AtomicBool, AtomicU32, AtomicU64, CachePadded, Ordering};

/// Largest ring the model accepts (2^24 descriptors).
pub const MAX_RING: u32 = 1 << 24;

/// Why a ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// The size is not a power of two, or is outside 2..=[`MAX_RING`].
    BadSize(u64),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::BadSize(n) => write!(
                f,
                "ring size {n} must be a power of two between 2 and {MAX_RING}"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// The ring itself: shared by all producers and the consumer.
#[derive(Debug)]
pub struct MpscRing {
    size: u32,
    mask: u32,
    /// Next slot a producer may reserve (moved by CAS).
    prod_head: CachePadded<AtomicU32>,
    /// Every slot before this one has been reclaimed (is free for producers).
    cons_tail: CachePadded<AtomicU32>,
    /// Set while a [`Consumer`] handle exists (single consumer).
    consumer_claimed: AtomicBool,
    slots: Box<[Slot]>,
}

/// One descriptor slot. `seq == pos + 1` says the descriptor for ring
/// position `pos` is written (published); the slot's previous round left
/// `pos - size + 1`, which the consumer reads as "not yet".
#[derive(Debug)]
struct Slot {
    seq: AtomicU32,
    desc: AtomicU64,
}

/// How many descriptors an enqueue takes when not all of them fit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// All or nothing (a packet's descriptors; DPDK bulk).
    Bulk,
    /// As many as fit (DPDK burst).
    Burst,
}

impl MpscRing {
    /// A ring of `size` descriptors; `size` must be a power of two in 2..=[`MAX_RING`].
    pub fn new(size: u64) -> Result<Self, RingError> {
        if !(2..=MAX_RING as u64).contains(&size) || !size.is_power_of_two() {
            return Err(RingError::BadSize(size));
        }
        let size = size as u32;
        Ok(MpscRing {
            size,
            mask: size - 1,
            prod_head: CachePadded(AtomicU32::new(0)),
            cons_tail: CachePadded(AtomicU32::new(0)),
            consumer_claimed: AtomicBool::new(false),
            slots: (0..size)
                .map(|i| Slot {
                    // position i - size, long consumed: not published for i
                    seq: AtomicU32::new(i.wrapping_sub(size).wrapping_add(1)),
                    desc: AtomicU64::new(0),
                })
                .collect(),
        })
    }

    /// Number of descriptors in the ring.
    #[inline]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Free descriptors as producers see them now (`size - (prod_head - cons_tail)`).
    ///
    /// Like the kernel's `TX_BUFFS_AVAIL`, this is a snapshot: it may already
    /// be stale when the caller looks at it.
    #[inline]
    pub fn free(&self) -> u32 {
        // Read the tail first: it only grows, so a later head gives a lower bound.
        let tail = self.cons_tail.load(Ordering::Acquire);
        let head = self.prod_head.load(Ordering::Acquire);
        self.size.saturating_sub(head.wrapping_sub(tail))
    }

    /// The reclaim index (`cons_tail`); it changes only when descriptors are freed.
    #[inline]
    pub fn reclaimed(&self) -> u32 {
        self.cons_tail.load(Ordering::Acquire)
    }

    /// A producer handle (any number may exist). It caches the consumer's
    /// index so that an uncontended enqueue does not touch the consumer's
    /// cache line.
    pub fn producer(&self) -> Producer<'_> {
        Producer {
            ring: self,
            cached_cons_tail: self.cons_tail.load(Ordering::Acquire),
        }
    }

    /// The consumer handle; `None` if one already exists (single consumer).
    pub fn consumer(&self) -> Option<Consumer<'_>> {
        if self
            .consumer_claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let tail = self.cons_tail.load(Ordering::Acquire);
        Some(Consumer {
            ring: self,
            head: tail,
        })
    }

    /// Enqueue one descriptor; `false` if the ring is full.
    pub fn enqueue(&self, desc: u64) -> bool {
        self.producer().enqueue(desc)
    }

    /// Enqueue all of `descs` in one reservation, or none of them.
    pub fn enqueue_bulk(&self, descs: &[u64]) -> bool {
        self.producer().enqueue_bulk(descs)
    }

    /// Enqueue as many of `descs` as fit, in one reservation; returns how many.
    pub fn enqueue_burst(&self, descs: &[u64]) -> usize {
        self.producer().enqueue_burst(descs)
    }

    fn enqueue_with(&self, descs: &[u64], fill: Fill, cached_tail: &mut u32) -> usize {
        let want = descs.len() as u32;
        if want == 0 {
            return 0;
        }
        if fill == Fill::Bulk && want > self.size {
            return 0;
        }
        let mut spins = 0;
        let (head, n) = loop {
            let head = self.prod_head.load(Ordering::Acquire);
            let mut used = head.wrapping_sub(*cached_tail);
            if used > self.size || self.size - used < want {
                // The cached reclaim index may be stale: look again.
                *cached_tail = self.cons_tail.load(Ordering::Acquire);
                used = head.wrapping_sub(*cached_tail);
                if used > self.size {
                    // `head` was read before another producer moved it past
                    // the fresh tail: start over with a fresh head.
                    spin_wait(&mut spins);
                    continue;
                }
            }
            let free = self.size - used;
            let n = match fill {
                Fill::Bulk if free < want => return 0,
                Fill::Burst if free == 0 => return 0,
                Fill::Bulk => want,
                Fill::Burst => want.min(free),
            };
            if self
                .prod_head
                .compare_exchange_weak(
                    head,
                    head.wrapping_add(n),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break (head, n);
            }
        };
        // Publish each slot (Release): the consumer takes positions in order
        // and stops at the first one not yet published, so descriptors are
        // seen in reservation order without producers waiting for each other.
        for (i, &d) in descs[..n as usize].iter().enumerate() {
            let pos = head.wrapping_add(i as u32);
            let slot = &self.slots[(pos & self.mask) as usize];
            slot.desc.store(d, Ordering::Relaxed);
            slot.seq.store(pos.wrapping_add(1), Ordering::Release);
        }
        n as usize
    }
}

/// A producer's view of the ring (one per transmitting CPU).
#[derive(Debug)]
pub struct Producer<'a> {
    ring: &'a MpscRing,
    cached_cons_tail: u32,
}

impl<'a> Producer<'a> {
    /// The ring this handle writes to.
    pub fn ring(&self) -> &'a MpscRing {
        self.ring
    }

    /// Enqueue one descriptor; `false` if the ring is full.
    #[inline]
    pub fn enqueue(&mut self, desc: u64) -> bool {
        self.ring
            .enqueue_with(&[desc], Fill::Bulk, &mut self.cached_cons_tail)
            == 1
    }

    /// Enqueue all of `descs` in one reservation, or none (`false`).
    #[inline]
    pub fn enqueue_bulk(&mut self, descs: &[u64]) -> bool {
        !descs.is_empty()
            && self
                .ring
                .enqueue_with(descs, Fill::Bulk, &mut self.cached_cons_tail)
                == descs.len()
    }

    /// Enqueue as many of `descs` as fit in one reservation; returns how many.
    #[inline]
    pub fn enqueue_burst(&mut self, descs: &[u64]) -> usize {
        self.ring
            .enqueue_with(descs, Fill::Burst, &mut self.cached_cons_tail)
    }
}

/// The single consumer (the NIC fetching descriptors, then reclaiming them).
#[derive(Debug)]
pub struct Consumer<'a> {
    ring: &'a MpscRing,
    /// Next descriptor to fetch (fetched but unreclaimed ones lie before it).
    head: u32,
}

impl Consumer<'_> {
    /// Fetch up to `out.len()` published descriptors, oldest first, without
    /// freeing their slots; returns how many.
    #[inline]
    pub fn fetch(&mut self, out: &mut [u64]) -> usize {
        let mut n = 0;
        for o in out.iter_mut() {
            let pos = self.head.wrapping_add(n as u32);
            let slot = &self.ring.slots[(pos & self.ring.mask) as usize];
            if slot.seq.load(Ordering::Acquire) != pos.wrapping_add(1) {
                break;
            }
            *o = slot.desc.load(Ordering::Relaxed);
            n += 1;
        }
        self.head = self.head.wrapping_add(n as u32);
        n
    }

    /// Descriptors fetched but not yet reclaimed.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.head
            .wrapping_sub(self.ring.cons_tail.load(Ordering::Relaxed))
    }

    /// Reclaim (free) every fetched descriptor: the completion path's
    /// "clean tx ring". Release, so producers see our reads done before they
    /// overwrite the slots.
    #[inline]
    pub fn reclaim(&mut self) {
        self.ring.cons_tail.store(self.head, Ordering::Release);
    }

    /// Fetch and immediately reclaim (a plain queue pop of up to `out.len()`).
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut [u64]) -> usize {
        let n = self.fetch(out);
        if n > 0 {
            self.reclaim();
        }
        n
    }

    /// Pop one descriptor.
    #[inline]
    pub fn dequeue(&mut self) -> Option<u64> {
        let mut one = [0u64];
        (self.dequeue_burst(&mut one) == 1).then_some(one[0])
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        self.ring.consumer_claimed.store(false, Ordering::Release);
    }
}
