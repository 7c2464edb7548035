//! Synchronisation primitives: std's atomics normally, loom's under `cfg(loom)`.
//!
//! Everything in the transmit path that is shared between threads (ring
//! indices, descriptor slots, the queue's stopped flag, the spinlocks) is built
//! from these, so the same code runs on real threads and inside loom's model
//! checker (`RUSTFLAGS="--cfg loom"`).

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub use loom::sync::Arc;
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::Arc;
#[cfg(not(loom))]
pub use std::thread;

/// One step of a busy-wait loop.
///
/// On real threads this is a CPU spin hint, and every 64th call gives the CPU
/// away (a 2-core machine running three workers must not spin on a waiter
/// whose owner is descheduled). Under loom it yields to the scheduler, which is
/// what loom needs to explore spin loops finitely.
#[inline]
pub fn spin_wait(spins: &mut u32) {
    #[cfg(loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *spins = spins.wrapping_add(1);
        if *spins % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A value aligned to its own pair of cache lines (no false sharing between
/// the producer and the consumer indices, as `ptr_ring` and `rte_ring` do).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A test-and-set spinlock with `try_lock`, as `spin_trylock` is used on
/// `dev->xmit_lock` (core) and on a driver's private `tx_lock` (LLTX drivers).
#[derive(Debug)]
pub struct SpinLock {
    locked: AtomicBool,
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

impl SpinLock {
    /// An unlocked lock.
    pub fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// `spin_trylock`: take the lock if it is free; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        !self.locked.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// `spin_lock`: wait until the lock is taken.
    #[inline]
    pub fn lock(&self) {
        let mut spins = 0;
        while !self.try_lock() {
            spin_wait(&mut spins);
        }
    }

    /// `spin_unlock`.
    #[inline]
    pub fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}
