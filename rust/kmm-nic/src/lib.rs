//! kmm-nic: the transmit path of a network driver on real threads, from the
//! NETIF_F_LLTX race of 2005 to today's netdev_queues protocol.
//!
//! * [`ring`]: a lock-free multi-producer single-consumer descriptor ring
//!   (Vyukov's per-slot stamps, so producers never read the consumer's index;
//!   DPDK `rte_ring`'s bulk and burst enqueue; fetch, then reclaim).
//! * [`queue`]: one transmit queue: the ring, the DRV_XOFF / STACK_XOFF state
//!   bits, `dev->xmit_lock` and a driver `tx_lock`, the doorbell; the core's
//!   transmit step in the modes `xmit_lock`, `lltx_driver_lock`,
//!   `lltx_lockfree`; the drivers `buggy_2005`, `fixed_2005`, `modern`
//!   (`netif_txq_maybe_stop` / `__netif_txq_completed_wake`),
//!   `modern_nobarrier`, `modern_bql`, `modern_xmit_more`; the completion path.
//! * [`dql`]: byte queue limits (`lib/dynamic_queue_limits.c`).
//! * [`run`]: producers, the NIC (DMA, moderated interrupt, NAPI poll with a
//!   budget) and `dev_watchdog` on real threads, with exactly-once and
//!   per-producer order verification and completion-latency percentiles
//!   ([`latency`]).
//! * [`sync`]: std atomics, or loom's under `cfg(loom)` (see `tests/loom_*.rs`).

pub mod dql;
#[cfg(not(loom))]
pub mod latency;
pub mod queue;
pub mod ring;
#[cfg(not(loom))]
pub mod sim;
pub mod sync;

pub use dql::Dql;
pub use queue::{
    Driver, Mode, TxCpu, TxQueue, Xmit, XmitStats, BUG_TX_RING_FULL, DRV_XOFF, NETDEV_TX_BUSY,
    NETDEV_TX_LOCKED, NETDEV_TX_OK, STACK_XOFF,
};
pub use ring::{Consumer, MpscRing, Producer, RingError, SpProducer, MAX_RING};
#[cfg(not(loom))]
pub use sim::{run, run_polled, Fault, NicConfig, NicError, NicReport};
