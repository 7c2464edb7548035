//! One transmit queue: the descriptor ring, the queue's stopped flag, the two
//! locks of 2005 (`dev->xmit_lock` in the core, a driver's private `tx_lock`),
//! the core's transmit step (`qdisc_restart` calling `hard_start_xmit`) in the
//! three locking modes, the drivers' ring-full and stop/wake behaviour, and the
//! completion path that reclaims descriptors and wakes the queue.
//!
//! This is the code loom checks (`tests/loom_*.rs`) and the threads of
//! [`crate::run`] execute; nothing here blocks except the spinlocks' owners.

use crate::ring::{Consumer, MpscRing, Producer};
use crate::sync::{fence, AtomicBool, CachePadded, Ordering, SpinLock};

/// `NETDEV_TX_OK`: the driver consumed the packet.
pub const NETDEV_TX_OK: u32 = 0x00;
/// `NETDEV_TX_BUSY`: the driver did not take the packet; the core requeues it.
pub const NETDEV_TX_BUSY: u32 = 0x10;
/// `NETDEV_TX_LOCKED`: an LLTX driver's trylock failed; the core retries quickly.
pub const NETDEV_TX_LOCKED: u32 = 0x20;

/// The driver's log line when it finds the ring full while it thought the
/// queue was awake (tg3 and others, 2005).
pub const BUG_TX_RING_FULL: &str = "BUG! Tx Ring full when queue awake!";

/// Who serialises calls into the driver's transmit routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The core takes `dev->xmit_lock` (trylock; a failure is a "cpu
    /// collision") and checks the queue under it before calling the driver.
    XmitLock,
    /// `NETIF_F_LLTX`: the core checks the queue without a lock; the driver
    /// takes its private `tx_lock` with a trylock (`NETDEV_TX_LOCKED` on failure).
    LltxDriverLock,
    /// `NETIF_F_LLTX` with a lock-free multi-producer ring: no lock anywhere on
    /// the transmit path; slots are reserved by compare-and-swap.
    LltxLockfree,
}

impl Mode {
    /// Every mode, in the order tables list them.
    pub const ALL: [Mode; 3] = [Mode::XmitLock, Mode::LltxDriverLock, Mode::LltxLockfree];

    /// The mode's name (`xmit_lock`, `lltx_driver_lock`, `lltx_lockfree`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::XmitLock => "xmit_lock",
            Mode::LltxDriverLock => "lltx_driver_lock",
            Mode::LltxLockfree => "lltx_lockfree",
        }
    }

    /// Parse a mode name.
    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// How the driver handles a full ring and stops/wakes its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// 2005: stop the queue after queuing when free < worst case (no barrier,
    /// no recheck); on a full ring stop the queue, log the BUG line every
    /// time, return `NETDEV_TX_BUSY`.
    Buggy2005,
    /// The adopted 2005 fix: on a full ring, if the queue is already stopped it
    /// is the harmless LLTX race, return BUSY silently; if it is still running,
    /// stop it, log, return BUSY.
    Fixed2005,
    /// Today's protocol (`netif_txq_maybe_stop` / `netif_txq_completed_wake`):
    /// check for room (and, under its own lock, for a stopped queue) at the
    /// start of xmit; after queuing stop when free < worst case, full barrier,
    /// recheck and restart; the completion path frees, barrier, wakes.
    Modern,
    /// [`Driver::Modern`] without its barrier pair: the tg3 "Fix tx race
    /// condition" bug, a wakeup can be lost (the watchdog then fires).
    ModernNoBarrier,
}

impl Driver {
    /// Every driver, in the order tables list them.
    pub const ALL: [Driver; 4] = [
        Driver::Buggy2005,
        Driver::Fixed2005,
        Driver::Modern,
        Driver::ModernNoBarrier,
    ];

    /// The driver's name (`buggy_2005`, `fixed_2005`, `modern`, `modern_nobarrier`).
    pub fn name(self) -> &'static str {
        match self {
            Driver::Buggy2005 => "buggy_2005",
            Driver::Fixed2005 => "fixed_2005",
            Driver::Modern => "modern",
            Driver::ModernNoBarrier => "modern_nobarrier",
        }
    }

    /// Parse a driver name.
    pub fn parse(name: &str) -> Option<Driver> {
        Driver::ALL.into_iter().find(|d| d.name() == name)
    }

    fn is_modern(self) -> bool {
        matches!(self, Driver::Modern | Driver::ModernNoBarrier)
    }
}

/// What one transmit attempt came to, seen from the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xmit {
    /// The packet is on the ring (`NETDEV_TX_OK`).
    Sent,
    /// The queue was stopped when looked at without a lock: the packet stays
    /// in the qdisc and the core waits for a wake (not a requeue).
    QueueStopped,
    /// The packet went back to the qdisc: BUSY, a collision, `NETDEV_TX_LOCKED`,
    /// or the queue found stopped under a lock / no room at the start of xmit.
    Requeued,
}

/// Per-CPU transmit counters (each producer keeps its own; summed at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmitStats {
    /// Packets the driver accepted.
    pub sent: u64,
    /// Times a packet went back to the qdisc.
    pub requeued: u64,
    /// `NETDEV_TX_BUSY` returns.
    pub busy: u64,
    /// BUG lines logged while the queue was already stopped (the harmless race).
    pub spurious_bug_logs: u64,
    /// BUG lines logged while the queue was running (flow control really broken).
    pub real_bug_logs: u64,
    /// Full rings met with the queue already stopped (whether logged or not).
    pub harmless_races: u64,
    /// Queue stops (running -> stopped transitions made by this CPU).
    pub stops: u64,
    /// Modern restarts: stopped, then the recheck found room (maybe_stop's -1).
    pub restarts: u64,
    /// Failed trylocks: core `xmit_lock` collisions and `NETDEV_TX_LOCKED`.
    pub collisions: u64,
    /// Modern drivers' "no room / queue stopped" at the start of xmit (requeued,
    /// never BUSY).
    pub full_at_start: u64,
}

impl XmitStats {
    /// Add another CPU's counters.
    pub fn add(&mut self, o: &XmitStats) {
        self.sent += o.sent;
        self.requeued += o.requeued;
        self.busy += o.busy;
        self.spurious_bug_logs += o.spurious_bug_logs;
        self.real_bug_logs += o.real_bug_logs;
        self.harmless_races += o.harmless_races;
        self.stops += o.stops;
        self.restarts += o.restarts;
        self.collisions += o.collisions;
        self.full_at_start += o.full_at_start;
    }
}

/// A transmit queue and its driver.
#[derive(Debug)]
pub struct TxQueue {
    /// The descriptor ring.
    pub ring: MpscRing,
    /// `__QUEUE_STATE_DRV_XOFF`: the real shared stopped flag.
    stopped: CachePadded<AtomicBool>,
    /// `dev->xmit_lock` (taken by the core in [`Mode::XmitLock`]).
    xmit_lock: CachePadded<SpinLock>,
    /// The driver's private `tx_lock` (taken in [`Mode::LltxDriverLock`]).
    tx_lock: CachePadded<SpinLock>,
    mode: Mode,
    driver: Driver,
    stop_thresh: u32,
    wake_thresh: u32,
    race_window_ns: u64,
}

impl TxQueue {
    /// A queue over a ring of `ring` descriptors. The caller has validated the
    /// parameters ([`crate::NicConfig::validate`]); `ring` must be a power of two.
    pub fn new(
        ring: u64,
        mode: Mode,
        driver: Driver,
        stop_thresh: u32,
        wake_thresh: u32,
        race_window_ns: u64,
    ) -> Result<Self, crate::ring::RingError> {
        Ok(TxQueue {
            ring: MpscRing::new(ring)?,
            stopped: CachePadded(AtomicBool::new(false)),
            xmit_lock: CachePadded(SpinLock::new()),
            tx_lock: CachePadded(SpinLock::new()),
            mode,
            driver,
            stop_thresh,
            wake_thresh,
            race_window_ns,
        })
    }

    /// The locking mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The driver.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// `netif_queue_stopped`.
    #[inline]
    pub fn queue_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Free descriptors at the wake threshold or above: a stopped queue in
    /// this state with an idle completion path is a lost wakeup.
    #[inline]
    pub fn wakeable(&self) -> bool {
        self.ring.free() >= self.wake_thresh
    }

    /// `netif_stop_queue`; true if this call stopped a running queue.
    #[inline]
    fn stop_queue(&self) -> bool {
        !self.stopped.swap(true, Ordering::AcqRel)
    }

    /// `netif_wake_queue` (also what `tx_timeout` ends with after a reset).
    /// An atomic read-modify-write (`test_and_clear_bit`), like the stop, so
    /// that stops and wakes from several CPUs are totally ordered.
    #[inline]
    pub fn wake_queue(&self) {
        self.stopped.swap(false, Ordering::AcqRel);
    }

    /// The core's transmit step for one packet (`descs`: its descriptors).
    ///
    /// The core looks at the queue state first (without a lock in the LLTX
    /// modes, under `xmit_lock` otherwise); `race_window_ns` then pauses
    /// before the driver reserves ring space, widening the 2005 race window.
    pub fn xmit(&self, prod: &mut Producer<'_>, descs: &[u64], st: &mut XmitStats) -> Xmit {
        // qdisc_run: only dequeue from the qdisc when the queue looks running.
        if self.queue_stopped() {
            return Xmit::QueueStopped;
        }
        match self.mode {
            Mode::XmitLock => {
                if !self.xmit_lock.try_lock() {
                    st.collisions += 1;
                    st.requeued += 1;
                    return Xmit::Requeued;
                }
                let r = if self.queue_stopped() {
                    st.requeued += 1;
                    Xmit::Requeued
                } else {
                    race_window(self.race_window_ns);
                    self.hard_start_xmit(prod, descs, st, true)
                };
                self.xmit_lock.unlock();
                r
            }
            Mode::LltxDriverLock => {
                race_window(self.race_window_ns);
                if !self.tx_lock.try_lock() {
                    // NETDEV_TX_LOCKED: the core counts a collision and retries.
                    st.collisions += 1;
                    st.requeued += 1;
                    return Xmit::Requeued;
                }
                let r = self.hard_start_xmit(prod, descs, st, true);
                self.tx_lock.unlock();
                r
            }
            Mode::LltxLockfree => {
                race_window(self.race_window_ns);
                self.hard_start_xmit(prod, descs, st, false)
            }
        }
    }

    /// The driver's `hard_start_xmit`. `locked` says whether a lock (core or
    /// driver) serialises this call with every other transmit.
    fn hard_start_xmit(
        &self,
        prod: &mut Producer<'_>,
        descs: &[u64],
        st: &mut XmitStats,
        locked: bool,
    ) -> Xmit {
        if self.driver.is_modern() {
            // Modern drivers look for a stopped queue / no room at the start
            // of xmit (under their lock when they have one) and hand the
            // packet back without calling it an error.
            if (locked && self.queue_stopped()) || !prod.enqueue_bulk(descs) {
                st.full_at_start += 1;
                st.requeued += 1;
                return Xmit::Requeued;
            }
            st.sent += 1;
            self.maybe_stop(st);
            return Xmit::Sent;
        }
        if !prod.enqueue_bulk(descs) {
            // Ring full for this packet.
            let was_stopped = self.queue_stopped();
            if was_stopped {
                st.harmless_races += 1;
            }
            match self.driver {
                Driver::Buggy2005 => {
                    if self.stop_queue() {
                        st.stops += 1;
                    }
                    // printk(KERN_ERR "%s: BUG! Tx Ring full when queue awake!")
                    if was_stopped {
                        st.spurious_bug_logs += 1;
                    } else {
                        st.real_bug_logs += 1;
                    }
                }
                _ => {
                    if !was_stopped {
                        if self.stop_queue() {
                            st.stops += 1;
                        }
                        st.real_bug_logs += 1;
                    }
                }
            }
            st.busy += 1;
            st.requeued += 1;
            return Xmit::Requeued;
        }
        st.sent += 1;
        // 2005: stop when the next worst-case packet might not fit. No
        // barrier, no recheck: a completion in between can leave it stopped.
        if self.ring.free() < self.stop_thresh && self.stop_queue() {
            st.stops += 1;
        }
        Xmit::Sent
    }

    /// `netif_txq_maybe_stop` after queuing a packet.
    fn maybe_stop(&self, st: &mut XmitStats) {
        if self.ring.free() >= self.stop_thresh {
            return;
        }
        if self.stop_queue() {
            st.stops += 1;
        }
        if self.driver == Driver::Modern {
            // Pairs with the fence in `tx_complete`: either we see the
            // completion's reclaim, or it sees our stop.
            fence(Ordering::SeqCst);
        }
        if self.ring.free() >= self.wake_thresh {
            // Raced with a completion that did not see the stop: restart.
            self.wake_queue();
            st.restarts += 1;
        }
    }

    /// The completion path after the hardware is done with every fetched
    /// descriptor: reclaim them, then wake the queue if it is stopped and at
    /// least `wake_thresh` descriptors are free. Returns true if it woke it.
    pub fn tx_complete(&self, cons: &mut Consumer<'_>) -> bool {
        cons.reclaim();
        if self.driver == Driver::Modern {
            // netif_txq_completed_wake: pairs with the fence in maybe_stop.
            fence(Ordering::SeqCst);
        }
        if self.queue_stopped() && self.ring.free() >= self.wake_thresh {
            self.wake_queue();
            return true;
        }
        false
    }
}

/// Busy-wait `ns` nanoseconds (the race-window knob). A no-op under loom.
#[inline]
fn race_window(ns: u64) {
    #[cfg(not(loom))]
    if ns > 0 {
        let t = std::time::Instant::now();
        let d = std::time::Duration::from_nanos(ns);
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }
    #[cfg(loom)]
    let _ = ns;
}
