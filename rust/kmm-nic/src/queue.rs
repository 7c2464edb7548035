//! One transmit queue: the descriptor ring, the queue state bits
//! (`__QUEUE_STATE_DRV_XOFF`, `__QUEUE_STATE_STACK_XOFF`), the two locks of
//! 2005 (`dev->xmit_lock` in the core, a driver's private `tx_lock`), byte
//! queue limits, the doorbell (tail register), the core's transmit step
//! (`qdisc_restart` calling `hard_start_xmit`) in the three locking modes, the
//! drivers' ring-full and stop/wake behaviour, and the completion path that
//! reclaims descriptors and wakes the queue.
//!
//! The modern drivers are built on today's `include/net/netdev_queues.h`
//! helpers ([`TxQueue::netif_txq_try_stop`], [`TxQueue::netif_txq_maybe_stop`],
//! [`TxQueue::netif_txq_completed_wake`]) with their return codes; the
//! protocol assumes one stopper (xmit, serialised by a lock) and one waker
//! (the completion path).
//!
//! This is the code loom checks (`tests/loom_*.rs`) and the threads of
//! [`crate::run`] execute; nothing here blocks except the spinlocks' owners.

use crate::dql::{Dql, DQL_MAX_LIMIT};
use crate::ring::{Consumer, MpscRing, Producer};
use crate::sync::{fence, AtomicU32, CachePadded, Ordering, SpinLock};

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
    /// Today's protocol: the full-ring check at the start of xmit
    /// (`netif_txq_try_stop`, BUSY only if that leaves the queue stopped),
    /// `netif_txq_maybe_stop` after queuing, `__netif_txq_completed_wake` in
    /// the completion path, a doorbell per packet.
    Modern,
    /// [`Driver::Modern`] without its barrier pair: the tg3 "Fix tx race
    /// condition" bug, a wakeup can be lost (the watchdog then fires).
    ModernNoBarrier,
    /// [`Driver::Modern`] with byte queue limits (`netdev_tx_sent_queue` /
    /// `netdev_tx_completed_queue`, `__QUEUE_STATE_STACK_XOFF`).
    ModernBql,
    /// [`Driver::ModernBql`] that skips the doorbell while the stack says
    /// more packets follow (`netdev_xmit_more`, `__netdev_tx_sent_queue`).
    ModernXmitMore,
}

impl Driver {
    /// Every driver, in the order tables list them.
    pub const ALL: [Driver; 6] = [
        Driver::Buggy2005,
        Driver::Fixed2005,
        Driver::Modern,
        Driver::ModernNoBarrier,
        Driver::ModernBql,
        Driver::ModernXmitMore,
    ];

    /// The driver's name (`buggy_2005`, `fixed_2005`, `modern`,
    /// `modern_nobarrier`, `modern_bql`, `modern_xmit_more`).
    pub fn name(self) -> &'static str {
        match self {
            Driver::Buggy2005 => "buggy_2005",
            Driver::Fixed2005 => "fixed_2005",
            Driver::Modern => "modern",
            Driver::ModernNoBarrier => "modern_nobarrier",
            Driver::ModernBql => "modern_bql",
            Driver::ModernXmitMore => "modern_xmit_more",
        }
    }

    /// Parse a driver name.
    pub fn parse(name: &str) -> Option<Driver> {
        Driver::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Built on the netdev_queues helpers.
    pub fn is_modern(self) -> bool {
        !matches!(self, Driver::Buggy2005 | Driver::Fixed2005)
    }

    /// Keeps byte queue limits.
    pub fn uses_bql(self) -> bool {
        matches!(self, Driver::ModernBql | Driver::ModernXmitMore)
    }

    /// Honours `xmit_more` (defers the doorbell).
    pub fn uses_xmit_more(self) -> bool {
        self == Driver::ModernXmitMore
    }

    fn has_barriers(self) -> bool {
        self != Driver::ModernNoBarrier
    }
}

/// What one transmit attempt came to, seen from the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xmit {
    /// The packet is on the ring (`NETDEV_TX_OK`).
    Sent,
    /// The queue was stopped (`netif_xmit_stopped`: DRV_XOFF or STACK_XOFF)
    /// when looked at without a lock: the packet stays in the qdisc and the
    /// core waits for a wake (not a requeue).
    QueueStopped,
    /// The packet went back to the qdisc (`dev_requeue_skb`): BUSY, a
    /// collision, `NETDEV_TX_LOCKED`, or the queue found stopped under a lock.
    Requeued,
}

/// Per-CPU transmit counters (each producer keeps its own; summed at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmitStats {
    /// Packets the driver accepted.
    pub sent: u64,
    /// Times a packet went back to the qdisc.
    pub requeues: u64,
    /// `NETDEV_TX_BUSY` returns.
    pub busy: u64,
    /// BUG lines logged while the queue was already stopped (the harmless race).
    pub spurious_bug_logs: u64,
    /// BUG lines logged while the queue was running (flow control really broken).
    pub real_bug_logs: u64,
    /// Full rings met with the queue already stopped (whether logged or not;
    /// for the modern drivers, at the full-ring check).
    pub harmless_races: u64,
    /// Queue stops (running -> stopped transitions made by this CPU).
    pub stops: u64,
    /// Restarts: stopped, then the recheck found room (`netif_txq_try_stop`'s -1).
    pub restarts: u64,
    /// Failed trylocks: core `xmit_lock` collisions and `NETDEV_TX_LOCKED`.
    pub collisions: u64,
    /// Modern drivers: the full-ring check at the start of xmit found no room
    /// with the queue running. With one stopper at a time only a false wake
    /// (allowed by the protocol) does this; under LLTX another CPU's packet
    /// that has not stopped the queue yet can too.
    pub false_wakes: u64,
    /// Modern drivers: the reservation failed although the check just before
    /// found room. Impossible with one stopper: this counts the one-stopper
    /// rule broken (lock-free LLTX).
    pub stopper_races: u64,
    /// Doorbell (tail register) writes.
    pub doorbells: u64,
    /// Times BQL set `__QUEUE_STATE_STACK_XOFF` (over the limit).
    pub stack_xoffs: u64,
}

impl XmitStats {
    /// Add another CPU's counters.
    pub fn add(&mut self, o: &XmitStats) {
        self.sent += o.sent;
        self.requeues += o.requeues;
        self.busy += o.busy;
        self.spurious_bug_logs += o.spurious_bug_logs;
        self.real_bug_logs += o.real_bug_logs;
        self.harmless_races += o.harmless_races;
        self.stops += o.stops;
        self.restarts += o.restarts;
        self.collisions += o.collisions;
        self.false_wakes += o.false_wakes;
        self.stopper_races += o.stopper_races;
        self.doorbells += o.doorbells;
        self.stack_xoffs += o.stack_xoffs;
    }
}

/// `__QUEUE_STATE_DRV_XOFF`: the driver stopped the queue (ring nearly full).
pub const DRV_XOFF: u32 = 1 << 0;
/// `__QUEUE_STATE_STACK_XOFF`: BQL stopped the queue (bytes over the limit).
pub const STACK_XOFF: u32 = 1 << 1;

/// BQL's `slack_hold_time` default: one second (`HZ`).
pub const BQL_SLACK_HOLD_NS: u64 = 1_000_000_000;

/// One CPU's transmit context: its handle on the ring, its counters and the
/// end of the descriptors it queued with `xmit_more` and has not yet
/// announced with a doorbell.
#[derive(Debug)]
pub struct TxCpu<'a> {
    prod: Producer<'a>,
    /// This CPU's counters.
    pub stats: XmitStats,
    doorbell_pending: Option<u32>,
}

/// A transmit queue and its driver.
#[derive(Debug)]
pub struct TxQueue {
    /// The descriptor ring.
    pub ring: MpscRing,
    /// The queue state bits ([`DRV_XOFF`], [`STACK_XOFF`]), changed by atomic
    /// read-modify-writes as the kernel's `set_bit` / `test_and_clear_bit`.
    state: CachePadded<AtomicU32>,
    /// The tail register: the NIC fetches descriptors before this position.
    doorbell: CachePadded<AtomicU32>,
    /// `dev->xmit_lock` (taken by the core in [`Mode::XmitLock`]).
    xmit_lock: CachePadded<SpinLock>,
    /// The driver's private `tx_lock` (taken in [`Mode::LltxDriverLock`]).
    tx_lock: CachePadded<SpinLock>,
    /// Byte queue limits, for the drivers that keep them.
    bql: Option<Dql>,
    mode: Mode,
    driver: Driver,
    stop_thresh: u32,
    wake_thresh: u32,
    race_window_ns: u64,
}

impl TxQueue {
    /// A queue over a ring of `ring` descriptors. The caller has validated the
    /// parameters ([`crate::NicConfig::validate`]); `ring` must be a power of
    /// two. BQL drivers start with a limit of 0 that grows on the first
    /// completions, and shrink it at most once per [`BQL_SLACK_HOLD_NS`]
    /// (see [`TxQueue::with_bql_slack_hold`]).
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
            state: CachePadded(AtomicU32::new(0)),
            doorbell: CachePadded(AtomicU32::new(0)),
            xmit_lock: CachePadded(SpinLock::new()),
            tx_lock: CachePadded(SpinLock::new()),
            bql: driver
                .uses_bql()
                .then(|| Dql::new(0, DQL_MAX_LIMIT, BQL_SLACK_HOLD_NS)),
            mode,
            driver,
            stop_thresh,
            wake_thresh,
            race_window_ns,
        })
    }

    /// The same queue with BQL's `slack_hold_time` set to `ns`.
    pub fn with_bql_slack_hold(mut self, ns: u64) -> Self {
        if self.bql.is_some() {
            self.bql = Some(Dql::new(0, DQL_MAX_LIMIT, ns));
        }
        self
    }

    /// The locking mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The driver.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The byte queue limit state, if the driver keeps one.
    pub fn bql(&self) -> Option<&Dql> {
        self.bql.as_ref()
    }

    /// A transmitting CPU's context on this queue.
    pub fn cpu(&self) -> TxCpu<'_> {
        TxCpu {
            prod: self.ring.producer(),
            stats: XmitStats::default(),
            doorbell_pending: None,
        }
    }

    /// `netif_tx_queue_stopped`: the driver's DRV_XOFF bit.
    #[inline]
    pub fn queue_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & DRV_XOFF != 0
    }

    /// `netif_xmit_stopped`: DRV_XOFF or STACK_XOFF, what the core checks
    /// before it dequeues a packet for the driver.
    #[inline]
    pub fn xmit_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & (DRV_XOFF | STACK_XOFF) != 0
    }

    /// A stopped queue whose wake condition holds: at least `wake_thresh`
    /// descriptors free under DRV_XOFF, or BQL room under STACK_XOFF. With an
    /// idle completion path this is a lost wakeup (what `dev_watchdog` sees).
    #[inline]
    pub fn wake_overdue(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        (s & DRV_XOFF != 0 && self.ring.free() >= self.wake_thresh)
            || (s & STACK_XOFF != 0 && self.bql.as_ref().is_some_and(|d| d.avail() >= 0))
    }

    /// `netif_tx_stop_queue` (`set_bit`); true if this call stopped a running queue.
    #[inline]
    fn stop_queue(&self) -> bool {
        self.state.fetch_or(DRV_XOFF, Ordering::AcqRel) & DRV_XOFF == 0
    }

    /// `netif_tx_wake_queue` / `netif_tx_start_queue` (`test_and_clear_bit`);
    /// true if the queue was stopped. Atomic like the stop, so that stops and
    /// wakes from several CPUs are totally ordered.
    #[inline]
    fn wake_queue(&self) -> bool {
        self.state.fetch_and(!DRV_XOFF, Ordering::AcqRel) & DRV_XOFF != 0
    }

    /// What `tx_timeout` ends with after a reset: both stop bits cleared.
    pub fn tx_timeout(&self) {
        self.state
            .fetch_and(!(DRV_XOFF | STACK_XOFF), Ordering::AcqRel);
    }

    /// The NIC's view of the tail register.
    #[inline]
    pub fn doorbell(&self) -> u32 {
        self.doorbell.load(Ordering::Acquire)
    }

    /// The doorbell write: tell the NIC that descriptors before `end` are
    /// ready. Several CPUs may ring (LLTX), so the register only moves forward.
    fn ring_doorbell(&self, end: u32, st: &mut XmitStats) {
        st.doorbells += 1;
        let mut cur = self.doorbell.load(Ordering::Relaxed);
        while (end.wrapping_sub(cur) as i32) > 0 {
            match self.doorbell.compare_exchange_weak(
                cur,
                end,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Ring the doorbell for descriptors queued with `xmit_more`, if any (the
    /// driver does this whenever it stops taking packets from the stack).
    fn flush_doorbell(&self, cpu: &mut TxCpu<'_>) {
        if let Some(end) = cpu.doorbell_pending.take() {
            self.ring_doorbell(end, &mut cpu.stats);
        }
    }

    /// The core's transmit step for one packet (`descs`: its descriptors,
    /// `bytes`: its length; `more`: the stack has further packets for this
    /// queue right behind it, `netdev_xmit_more`).
    ///
    /// The core looks at the queue state first (without a lock in the LLTX
    /// modes, under `xmit_lock` otherwise); `race_window_ns` then pauses
    /// before the driver reserves ring space, widening the 2005 race window.
    pub fn xmit(&self, cpu: &mut TxCpu<'_>, descs: &[u64], bytes: u32, more: bool) -> Xmit {
        let r = self.xmit_step(cpu, descs, bytes, more);
        if r != Xmit::Sent {
            self.flush_doorbell(cpu);
        }
        r
    }

    fn xmit_step(&self, cpu: &mut TxCpu<'_>, descs: &[u64], bytes: u32, more: bool) -> Xmit {
        // qdisc_run: only dequeue from the qdisc when the queue looks running.
        if self.xmit_stopped() {
            return Xmit::QueueStopped;
        }
        match self.mode {
            Mode::XmitLock => {
                if !self.xmit_lock.try_lock() {
                    cpu.stats.collisions += 1;
                    cpu.stats.requeues += 1;
                    return Xmit::Requeued;
                }
                let r = if self.xmit_stopped() {
                    cpu.stats.requeues += 1;
                    Xmit::Requeued
                } else {
                    race_window(self.race_window_ns);
                    self.hard_start_xmit(cpu, descs, bytes, more)
                };
                self.xmit_lock.unlock();
                r
            }
            Mode::LltxDriverLock => {
                race_window(self.race_window_ns);
                if !self.tx_lock.try_lock() {
                    // NETDEV_TX_LOCKED: the core counts a collision and retries.
                    cpu.stats.collisions += 1;
                    cpu.stats.requeues += 1;
                    return Xmit::Requeued;
                }
                let r = self.hard_start_xmit(cpu, descs, bytes, more);
                self.tx_lock.unlock();
                r
            }
            Mode::LltxLockfree => {
                race_window(self.race_window_ns);
                self.hard_start_xmit(cpu, descs, bytes, more)
            }
        }
    }

    /// The driver's `hard_start_xmit`.
    fn hard_start_xmit(&self, cpu: &mut TxCpu<'_>, descs: &[u64], bytes: u32, more: bool) -> Xmit {
        if self.driver.is_modern() {
            return self.modern_xmit(cpu, descs, bytes, more);
        }
        let st = &mut cpu.stats;
        let Some(end) = cpu.prod.enqueue_bulk_at(descs) else {
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
            st.requeues += 1;
            return Xmit::Requeued;
        };
        st.sent += 1;
        self.ring_doorbell(end, st);
        // 2005: stop when the next worst-case packet might not fit. No
        // barrier, no recheck: a completion in between can leave it stopped.
        if self.ring.free() < self.stop_thresh && self.stop_queue() {
            st.stops += 1;
        }
        Xmit::Sent
    }

    /// A modern driver's `ndo_start_xmit`, in bnxt's order: the full-ring
    /// check first (false wakes are allowed), queue with BQL accounting, the
    /// doorbell unless `xmit_more` says to wait and the queue runs, then
    /// `netif_txq_maybe_stop` (kicking a deferred doorbell before a stop).
    fn modern_xmit(&self, cpu: &mut TxCpu<'_>, descs: &[u64], bytes: u32, more: bool) -> Xmit {
        if self.ring.free() < descs.len() as u32 {
            if self.queue_stopped() {
                // LLTX: another CPU stopped it after the core's unlocked look.
                cpu.stats.harmless_races += 1;
            } else {
                cpu.stats.false_wakes += 1;
            }
            if self.netif_txq_try_stop(&mut cpu.stats) == 0 {
                cpu.stats.busy += 1;
                cpu.stats.requeues += 1;
                return Xmit::Requeued;
            }
        }
        let more = more && self.driver.uses_xmit_more();
        // BQL counts the bytes before the descriptors are published: under
        // lock-free LLTX another CPU's doorbell may announce them at once,
        // and the NIC must not complete bytes that were never queued.
        let mut doorbell = false;
        let Some(end) = cpu.prod.enqueue_bulk_then(descs, || {
            doorbell = self.netdev_tx_sent_queue(bytes, more, &mut cpu.stats);
        }) else {
            // The room seen a moment ago is gone: another stopper took it.
            cpu.stats.stopper_races += 1;
            cpu.stats.busy += 1;
            cpu.stats.requeues += 1;
            return Xmit::Requeued;
        };
        cpu.stats.sent += 1;
        // This packet's end covers every earlier packet of this CPU.
        cpu.doorbell_pending = Some(end);
        if doorbell || self.xmit_stopped() {
            self.flush_doorbell(cpu);
        }
        if cpu.doorbell_pending.is_some() && self.ring.free() < self.stop_thresh {
            // The NIC must see everything queued before the queue stops.
            self.flush_doorbell(cpu);
        }
        self.netif_txq_maybe_stop(&mut cpu.stats);
        Xmit::Sent
    }

    /// `__netdev_tx_sent_queue`: account `bytes` to BQL and say whether the
    /// doorbell must be rung now. With `more`, only the bytes are counted and
    /// the doorbell waits unless the queue is stopped; otherwise
    /// `netdev_tx_sent_queue`: over the limit sets STACK_XOFF, then a full
    /// barrier and a recheck (a completion may have raced), as
    /// `netif_txq_try_stop` does for DRV_XOFF.
    fn netdev_tx_sent_queue(&self, bytes: u32, more: bool, st: &mut XmitStats) -> bool {
        let Some(dql) = &self.bql else {
            return !more;
        };
        dql.queued(bytes);
        if more {
            return self.queue_stopped();
        }
        if dql.avail() >= 0 {
            return true;
        }
        self.state.fetch_or(STACK_XOFF, Ordering::AcqRel);
        st.stack_xoffs += 1;
        fence(Ordering::SeqCst);
        if dql.avail() >= 0 {
            self.state.fetch_and(!STACK_XOFF, Ordering::AcqRel);
        }
        true
    }

    /// `netif_txq_try_stop`: stop the queue, full barrier, and restart it if
    /// a completion made room meanwhile. Returns 0 if the queue stays
    /// stopped, -1 if it was restarted.
    pub fn netif_txq_try_stop(&self, st: &mut XmitStats) -> i32 {
        if self.stop_queue() {
            st.stops += 1;
        }
        if self.driver.has_barriers() {
            // smp_mb__after_atomic: pairs with the barrier in
            // netif_txq_completed_wake. Either we see its reclaim, or it
            // sees our stop.
            fence(Ordering::SeqCst);
        }
        if self.ring.free() >= self.wake_thresh {
            self.wake_queue();
            st.restarts += 1;
            return -1;
        }
        0
    }

    /// `netif_txq_maybe_stop` after queuing a packet: 1 if at least
    /// `stop_thresh` descriptors are free (the queue is left running),
    /// otherwise [`TxQueue::netif_txq_try_stop`] (0 stopped, -1 restarted).
    pub fn netif_txq_maybe_stop(&self, st: &mut XmitStats) -> i32 {
        if self.ring.free() >= self.stop_thresh {
            return 1;
        }
        self.netif_txq_try_stop(st)
    }

    /// `netdev_tx_completed_queue`: BQL completion, full barrier, and clear
    /// STACK_XOFF if the limit now has room. A no-op without bytes.
    fn netdev_tx_completed_queue(&self, dql: &Dql, bytes: u32, now_ns: u64) {
        if bytes == 0 {
            return;
        }
        dql.completed(bytes, now_ns);
        fence(Ordering::SeqCst);
        if dql.avail() >= 0 {
            self.state.fetch_and(!STACK_XOFF, Ordering::AcqRel);
        }
    }

    /// `__netif_txq_completed_wake` after `pkts` packets of `bytes` bytes
    /// were reclaimed: the BQL completion (or a full barrier), then wake the
    /// queue if packets completed, at least `wake_thresh` descriptors are
    /// free and it is stopped. Returns 0 if it woke the queue, 1 if the queue
    /// was already running, -1 if nothing completed or the threshold is not
    /// reached.
    pub fn netif_txq_completed_wake(&self, pkts: u32, bytes: u32, now_ns: u64) -> i32 {
        match &self.bql {
            Some(dql) => self.netdev_tx_completed_queue(dql, bytes, now_ns),
            // netdev_txq_completed_mb without BQL: pairs with the barrier in
            // netif_txq_try_stop.
            None if pkts > 0 && self.driver.has_barriers() => fence(Ordering::SeqCst),
            None => {}
        }
        if pkts == 0 || self.ring.free() < self.wake_thresh {
            return -1;
        }
        if self.queue_stopped() && self.wake_queue() {
            return 0;
        }
        1
    }

    /// The completion path: reclaim the fetched descriptors before position
    /// `end` (`pkts` packets, `bytes` bytes), then wake the queue as the
    /// driver does. Returns true if it woke the queue.
    pub fn tx_complete(
        &self,
        cons: &mut Consumer<'_>,
        end: u32,
        pkts: u32,
        bytes: u32,
        now_ns: u64,
    ) -> bool {
        cons.reclaim_to(end);
        if self.driver.is_modern() {
            return self.netif_txq_completed_wake(pkts, bytes, now_ns) == 0;
        }
        // 2005: no barrier between the reclaim and the look at the queue.
        self.queue_stopped() && self.ring.free() >= self.wake_thresh && self.wake_queue()
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
