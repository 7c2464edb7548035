//! A lock-free multi-producer, single-consumer descriptor ring.
//!
//! Dmitry Vyukov's bounded queue (the design of crossbeam's `ArrayQueue`)
//! with DPDK `rte_ring`'s interface: free-running 32-bit positions masked on
//! access, bulk (all-or-nothing) and burst (as many as fit) enqueue in one
//! reservation, and a consumer that fetches descriptors and reclaims them
//! later, as a NIC's DMA engine and its completion path do.
//!
//! Every slot carries a stamp that says, for the position the slot holds
//! next, whether it is free or published:
//!
//! * `stamp == pos`: the slot is free for position `pos` (the consumer
//!   reclaimed position `pos - size`);
//! * `stamp == pos + 1`: the descriptor of position `pos` is written.
//!
//! A producer reserves positions by moving `prod_head` with a compare-and-swap
//! once the stamp of the last position it wants says free, so producers read
//! only `prod_head` and the slots they are about to write: never the
//! consumer's index, whose cache line stays with the consumer (crossbeam
//! `ArrayQueue` and DPDK both make producers read it). The consumer takes
//! positions in order and stops at the first stamp that is not published, so
//! descriptors reach it in reservation order while no producer waits for
//! another; it frees slots by stamping them for the next lap, in order, and
//! then moves `cons_tail`, which only [`MpscRing::free`] reads.
//!
//! Bursts amortise everything that is per reservation: a multi-producer
//! burst moves `prod_head` by one compare-and-swap for all its slots, then
//! writes them in a tight loop over (at most two) contiguous runs of slots;
//! the consumer's burst reads, copies and frees its slots in one pass and
//! publishes `cons_tail` once. A ring whose only producer holds an
//! [`SpProducer`] (DPDK's single-producer mode) reserves without any
//! compare-and-swap: it keeps its own copy of the head and only stores it.
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
    /// Next position a producer may reserve (moved by CAS).
    prod_head: CachePadded<AtomicU32>,
    /// Every position before this one has been reclaimed. Written by the
    /// consumer after it stamped the slots free; read by [`MpscRing::free`]
    /// only, never by an enqueue.
    cons_tail: CachePadded<AtomicU32>,
    /// Set while a [`Consumer`] handle exists (single consumer).
    consumer_claimed: AtomicBool,
    /// Who may enqueue: [`NO_PRODUCER`], [`MULTI_PRODUCER`] (a [`Producer`]
    /// was handed out) or [`SINGLE_PRODUCER`] (an [`SpProducer`] exists).
    producers: AtomicU32,
    slots: Box<[Slot]>,
}

const NO_PRODUCER: u32 = 0;
const MULTI_PRODUCER: u32 = 1;
const SINGLE_PRODUCER: u32 = 2;

/// One descriptor slot and its stamp (see the module documentation).
#[derive(Debug)]
struct Slot {
    stamp: AtomicU32,
    desc: AtomicU64,
}

/// What a slot's stamp says about position `pos`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Free for `pos`.
    Free,
    /// Still holds an earlier lap's descriptor: the ring is full at `pos`.
    Behind,
    /// Already reserved for `pos` or later: the head we read is stale.
    Ahead,
}

impl Slot {
    #[inline]
    fn state(&self, pos: u32) -> SlotState {
        // Stamps and positions are free-running: compare as a signed distance.
        match self.stamp.load(Ordering::Acquire).wrapping_sub(pos) as i32 {
            0 => SlotState::Free,
            d if d < 0 => SlotState::Behind,
            _ => SlotState::Ahead,
        }
    }
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
            producers: AtomicU32::new(NO_PRODUCER),
            slots: (0..size)
                .map(|i| Slot {
                    stamp: AtomicU32::new(i),
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

    #[inline]
    fn slot(&self, pos: u32) -> &Slot {
        &self.slots[(pos & self.mask) as usize]
    }

    /// Free descriptors (`size - (prod_head - cons_tail)`), the driver's
    /// `TX_BUFFS_AVAIL`.
    ///
    /// A snapshot that may be stale when the caller looks at it, and a lower
    /// bound: the consumer stamps slots free before it moves `cons_tail`, so
    /// an enqueue of `free()` descriptors by the only producer succeeds.
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

    /// Call `f(slot, pos)` for the `n` slots from position `pos` on, in
    /// order, until it returns `false`; returns how many it accepted. The
    /// slots are (at most) two contiguous runs of the array, walked without
    /// a bounds check per slot.
    #[inline(always)]
    fn scan(&self, pos: u32, n: u32, mut f: impl FnMut(&Slot, u32) -> bool) -> u32 {
        let start = (pos & self.mask) as usize;
        let n = n.min(self.size) as usize;
        let first = (self.size as usize - start).min(n);
        let mut done = 0u32;
        for s in &self.slots[start..start + first] {
            if !f(s, pos.wrapping_add(done)) {
                return done;
            }
            done += 1;
        }
        for s in &self.slots[..n - first] {
            if !f(s, pos.wrapping_add(done)) {
                return done;
            }
            done += 1;
        }
        done
    }

    /// The slots of the `n` positions from `pos` on: (at most) two
    /// contiguous runs of the array.
    #[inline(always)]
    fn runs(&self, pos: u32, n: usize) -> (&[Slot], &[Slot]) {
        let start = (pos & self.mask) as usize;
        let n = n.min(self.size as usize);
        let first = (self.size as usize - start).min(n);
        (&self.slots[start..start + first], &self.slots[..n - first])
    }

    /// Write `descs` into the reserved positions from `head` on and publish
    /// them, in position order (Release per stamp): the consumer stops at the
    /// first slot not yet published, so it sees a packet's descriptors whole
    /// and in order.
    #[inline(always)]
    fn publish(&self, head: u32, descs: &[u64]) {
        #[inline(always)]
        fn run(slots: &[Slot], descs: &[u64], mut stamp: u32) -> u32 {
            for (slot, &d) in slots.iter().zip(descs) {
                slot.desc.store(d, Ordering::Relaxed);
                slot.stamp.store(stamp, Ordering::Release);
                stamp = stamp.wrapping_add(1);
            }
            stamp
        }
        let (a, b) = self.runs(head, descs.len());
        let stamp = run(a, descs, head.wrapping_add(1));
        run(b, &descs[a.len()..], stamp);
    }

    /// How many of the `want` positions from `head` on are free: `want` if
    /// the last one is (slots are freed in position order), else 0 for a
    /// bulk and the free prefix for a burst; `Err` if the head is stale.
    #[inline]
    fn free_prefix(&self, head: u32, want: u32, fill: Fill) -> Result<u32, SlotState> {
        let last = head.wrapping_add(want - 1);
        match self.slot(last).state(last) {
            SlotState::Free => Ok(want),
            SlotState::Ahead => Err(SlotState::Ahead),
            SlotState::Behind => match fill {
                Fill::Bulk => Ok(0),
                Fill::Burst => {
                    Ok(self.scan(head, want - 1, |s, pos| s.state(pos) == SlotState::Free))
                }
            },
        }
    }

    /// A producer handle (any number may exist, one per transmitting CPU).
    ///
    /// # Panics
    ///
    /// If an [`SpProducer`] holds the ring (it enqueues without a
    /// compare-and-swap, so no other producer may run beside it).
    pub fn producer(&self) -> Producer<'_> {
        if self.producers.load(Ordering::Relaxed) != MULTI_PRODUCER {
            match self.producers.compare_exchange(
                NO_PRODUCER,
                MULTI_PRODUCER,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) | Err(MULTI_PRODUCER) => {}
                Err(_) => panic!("the ring has a single producer (an SpProducer holds it)"),
            }
        }
        Producer { ring: self }
    }

    /// The single-producer handle (DPDK's `RING_F_SP_ENQ`): enqueues without
    /// a compare-and-swap. `None` if a [`Producer`] was ever handed out (they
    /// are `Copy`, so once multi-producer, always) or another `SpProducer`
    /// exists.
    pub fn sp_producer(&self) -> Option<SpProducer<'_>> {
        self.producers
            .compare_exchange(
                NO_PRODUCER,
                SINGLE_PRODUCER,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        Some(SpProducer {
            ring: self,
            head: self.prod_head.load(Ordering::Acquire),
        })
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
            tail,
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

    /// One descriptor: Vyukov's enqueue. Runs `reserved` between the
    /// reservation and the publication; returns the position it took.
    #[inline]
    fn enqueue_one(&self, desc: u64, reserved: impl FnOnce()) -> Option<u32> {
        let mut head = self.prod_head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            match slot.state(head) {
                SlotState::Free => match self.prod_head.compare_exchange_weak(
                    head,
                    head.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        reserved();
                        slot.desc.store(desc, Ordering::Relaxed);
                        slot.stamp.store(head.wrapping_add(1), Ordering::Release);
                        return Some(head);
                    }
                    Err(now) => head = now,
                },
                SlotState::Behind => {
                    // Full, unless another producer moved the head meanwhile.
                    let now = self.prod_head.load(Ordering::Relaxed);
                    if now == head {
                        return None;
                    }
                    head = now;
                }
                SlotState::Ahead => head = self.prod_head.load(Ordering::Relaxed),
            }
        }
    }

    /// Reserve up to `want` positions (all of them for [`Fill::Bulk`]) with
    /// one compare-and-swap, run `reserved`, and publish `descs` into them;
    /// returns the first position and the count.
    #[inline]
    fn enqueue_many(
        &self,
        descs: &[u64],
        fill: Fill,
        reserved: impl FnOnce(),
    ) -> Option<(u32, u32)> {
        let want = descs.len() as u32;
        if want == 0 || (fill == Fill::Bulk && want > self.size) {
            return None;
        }
        let want = want.min(self.size);
        let mut spins = 0;
        let mut head = self.prod_head.load(Ordering::Relaxed);
        let (head, n) = loop {
            let n = match self.free_prefix(head, want, fill) {
                Ok(0) => {
                    // full, unless another producer moved the head meanwhile
                    let now = self.prod_head.load(Ordering::Relaxed);
                    if now == head {
                        return None;
                    }
                    head = now;
                    spin_wait(&mut spins);
                    continue;
                }
                Ok(n) => n,
                Err(_) => {
                    head = self.prod_head.load(Ordering::Relaxed);
                    continue;
                }
            };
            match self.prod_head.compare_exchange_weak(
                head,
                head.wrapping_add(n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break (head, n),
                Err(now) => head = now,
            }
        };
        reserved();
        self.publish(head, &descs[..n as usize]);
        Some((head, n))
    }
}

/// A producer's view of the ring (one per transmitting CPU).
#[derive(Debug, Clone, Copy)]
pub struct Producer<'a> {
    ring: &'a MpscRing,
}

impl<'a> Producer<'a> {
    /// The ring this handle writes to.
    pub fn ring(&self) -> &'a MpscRing {
        self.ring
    }

    /// Enqueue one descriptor; `false` if the ring is full.
    #[inline]
    pub fn enqueue(&mut self, desc: u64) -> bool {
        self.ring.enqueue_one(desc, || {}).is_some()
    }

    /// Enqueue all of `descs` in one reservation, or none (`false`).
    #[inline]
    pub fn enqueue_bulk(&mut self, descs: &[u64]) -> bool {
        self.enqueue_bulk_at(descs).is_some()
    }

    /// [`Producer::enqueue_bulk`], returning the position just past the
    /// packet (what a driver writes to the doorbell register).
    #[inline]
    pub fn enqueue_bulk_at(&mut self, descs: &[u64]) -> Option<u32> {
        self.enqueue_bulk_then(descs, || {})
    }

    /// [`Producer::enqueue_bulk_at`] that runs `reserved` once the space is
    /// reserved and before any descriptor is published: accounting that the
    /// consumer must never see lag behind the descriptors themselves.
    #[inline]
    pub fn enqueue_bulk_then(&mut self, descs: &[u64], reserved: impl FnOnce()) -> Option<u32> {
        let (head, n) = if descs.len() == 1 {
            (self.ring.enqueue_one(descs[0], reserved)?, 1)
        } else {
            self.ring.enqueue_many(descs, Fill::Bulk, reserved)?
        };
        Some(head.wrapping_add(n))
    }

    /// Enqueue as many of `descs` as fit in one reservation; returns how many.
    #[inline]
    pub fn enqueue_burst(&mut self, descs: &[u64]) -> usize {
        self.ring
            .enqueue_many(descs, Fill::Burst, || {})
            .map_or(0, |(_, n)| n as usize)
    }
}

/// The ring's only producer (from [`MpscRing::sp_producer`]): it keeps its
/// own copy of `prod_head`, so a reservation is a check of the last slot's
/// stamp and a plain store of the head, no compare-and-swap.
#[derive(Debug)]
pub struct SpProducer<'a> {
    ring: &'a MpscRing,
    /// Next position to write (`prod_head`, which only this handle moves).
    head: u32,
}

impl<'a> SpProducer<'a> {
    /// The ring this handle writes to.
    pub fn ring(&self) -> &'a MpscRing {
        self.ring
    }

    /// Reserve up to `descs.len()` positions and publish into them.
    #[inline]
    fn enqueue_many(&mut self, descs: &[u64], fill: Fill) -> u32 {
        let want = descs.len() as u32;
        if want == 0 || (fill == Fill::Bulk && want > self.ring.size) {
            return 0;
        }
        let want = want.min(self.ring.size);
        // No other producer: no slot can be ahead of our head.
        let n = self.ring.free_prefix(self.head, want, fill).unwrap_or(0);
        if n == 0 {
            return 0;
        }
        let head = self.head;
        self.head = head.wrapping_add(n);
        // the reservation, for `free()` (what the compare-and-swap does for MP)
        self.ring.prod_head.store(self.head, Ordering::Relaxed);
        self.ring.publish(head, &descs[..n as usize]);
        n
    }

    /// Enqueue one descriptor; `false` if the ring is full.
    #[inline]
    pub fn enqueue(&mut self, desc: u64) -> bool {
        let head = self.head;
        let slot = self.ring.slot(head);
        if slot.stamp.load(Ordering::Acquire) != head {
            return false;
        }
        self.head = head.wrapping_add(1);
        self.ring.prod_head.store(self.head, Ordering::Relaxed);
        slot.desc.store(desc, Ordering::Relaxed);
        slot.stamp.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Enqueue all of `descs`, or none (`false`).
    #[inline]
    pub fn enqueue_bulk(&mut self, descs: &[u64]) -> bool {
        !descs.is_empty() && self.enqueue_many(descs, Fill::Bulk) as usize == descs.len()
    }

    /// Enqueue as many of `descs` as fit; returns how many.
    #[inline]
    pub fn enqueue_burst(&mut self, descs: &[u64]) -> usize {
        self.enqueue_many(descs, Fill::Burst) as usize
    }
}

impl Drop for SpProducer<'_> {
    fn drop(&mut self) {
        self.ring.producers.store(NO_PRODUCER, Ordering::Release);
    }
}

/// The single consumer (the NIC fetching descriptors, then reclaiming them).
#[derive(Debug)]
pub struct Consumer<'a> {
    ring: &'a MpscRing,
    /// Next position to fetch (fetched but unreclaimed ones lie before it).
    head: u32,
    /// Every position before this one is reclaimed (the consumer's own copy
    /// of `cons_tail`).
    tail: u32,
}

impl Consumer<'_> {
    /// Fetch up to `out.len()` published descriptors, oldest first, without
    /// freeing their slots; returns how many.
    #[inline]
    pub fn fetch(&mut self, out: &mut [u64]) -> usize {
        self.fetch_until(self.head.wrapping_add(out.len() as u32), out)
    }

    /// [`Consumer::fetch`], but no descriptor at or after position `end`
    /// (the NIC fetches only up to the doorbell the driver last rang).
    #[inline]
    pub fn fetch_until(&mut self, end: u32, out: &mut [u64]) -> usize {
        let room = (end.wrapping_sub(self.head) as usize).min(out.len()) as u32;
        let mut dst = out.iter_mut();
        let n = self.ring.scan(self.head, room, |slot, pos| {
            if slot.stamp.load(Ordering::Acquire) != pos.wrapping_add(1) {
                return false;
            }
            if let Some(o) = dst.next() {
                *o = slot.desc.load(Ordering::Relaxed);
            }
            true
        });
        self.head = self.head.wrapping_add(n);
        n as usize
    }

    /// Descriptors fetched but not yet reclaimed.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.head.wrapping_sub(self.tail)
    }

    /// The position after the last fetched descriptor.
    #[inline]
    pub fn fetched(&self) -> u32 {
        self.head
    }

    /// Reclaim (free) every fetched descriptor: the completion path's
    /// "clean tx ring".
    #[inline]
    pub fn reclaim(&mut self) {
        self.reclaim_to(self.head);
    }

    /// Reclaim the fetched descriptors before position `end` (clamped to
    /// what was fetched). Each slot is stamped free for the next lap
    /// (Release, so the producer that reuses it sees our read of it done), in
    /// position order; then `cons_tail` moves for [`MpscRing::free`].
    #[inline]
    pub fn reclaim_to(&mut self, end: u32) {
        let n = end.wrapping_sub(self.tail).min(self.in_flight());
        let size = self.ring.size;
        self.ring.scan(self.tail, n, |slot, pos| {
            slot.stamp.store(pos.wrapping_add(size), Ordering::Release);
            true
        });
        self.tail = self.tail.wrapping_add(n);
        self.ring.cons_tail.store(self.tail, Ordering::Release);
    }

    /// Pop up to `out.len()` descriptors (fetch and reclaim at once): one
    /// pass that checks each slot's stamp, copies its descriptor and stamps
    /// it free for the next lap, then one store of `cons_tail`.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut [u64]) -> usize {
        if self.tail != self.head {
            // fetched descriptors are waiting to be reclaimed: take the general path
            let n = self.fetch(out);
            self.reclaim();
            return n;
        }
        /// Take the published prefix of `slots` (positions from `pos` on)
        /// into `out`, stamping each slot free; returns how many.
        #[inline(always)]
        fn run(slots: &[Slot], out: &mut [u64], pos: u32, size: u32) -> usize {
            let m = slots.len().min(out.len());
            let (slots, out) = (&slots[..m], &mut out[..m]);
            let mut want = pos.wrapping_add(1);
            for i in 0..m {
                let slot = &slots[i];
                if slot.stamp.load(Ordering::Acquire) != want {
                    return i;
                }
                out[i] = slot.desc.load(Ordering::Relaxed);
                slot.stamp
                    .store(want.wrapping_add(size - 1), Ordering::Release);
                want = want.wrapping_add(1);
            }
            m
        }
        let size = self.ring.size;
        let (a, b) = self.ring.runs(self.head, out.len());
        let mut n = run(a, out, self.head, size);
        if n == a.len() && !b.is_empty() {
            n += run(b, &mut out[n..], self.head.wrapping_add(n as u32), size);
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n as u32);
            self.tail = self.head;
            self.ring.cons_tail.store(self.tail, Ordering::Release);
        }
        n
    }

    /// Pop exactly `out.len()` descriptors or none (DPDK's dequeue bulk):
    /// one scan of the stamps first, then the copy-and-free pass.
    #[inline]
    pub fn dequeue_bulk(&mut self, out: &mut [u64]) -> bool {
        let want = out.len() as u32;
        if want == 0 || want > self.ring.size || self.tail != self.head {
            return false;
        }
        let ready = self.ring.scan(self.head, want, |slot, pos| {
            slot.stamp.load(Ordering::Acquire) == pos.wrapping_add(1)
        });
        ready == want && self.dequeue_burst(out) == out.len()
    }

    /// Pop one descriptor.
    #[inline]
    pub fn dequeue(&mut self) -> Option<u64> {
        if self.tail != self.head {
            // fetched descriptors are waiting to be reclaimed: take the general path
            let mut one = [0u64];
            return (self.dequeue_burst(&mut one) == 1).then_some(one[0]);
        }
        let pos = self.head;
        let slot = self.ring.slot(pos);
        if slot.stamp.load(Ordering::Acquire) != pos.wrapping_add(1) {
            return None;
        }
        let d = slot.desc.load(Ordering::Relaxed);
        slot.stamp
            .store(pos.wrapping_add(self.ring.size), Ordering::Release);
        self.head = pos.wrapping_add(1);
        self.tail = self.head;
        self.ring.cons_tail.store(self.tail, Ordering::Release);
        Some(d)
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        self.ring.consumer_claimed.store(false, Ordering::Release);
    }
}
