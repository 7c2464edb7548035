//! kmm-nic: the transmit path of a 2005 network driver, on real threads.
//!
//! * [`ring`]: a lock-free multi-producer single-consumer descriptor ring
//!   (DPDK `rte_ring` style: CAS reservation, in-order publication, bulk and
//!   burst enqueue).
//! * [`queue`]: one transmit queue: the ring, the real shared stopped flag,
//!   `dev->xmit_lock` and a driver `tx_lock`; the core's transmit step in the
//!   modes `xmit_lock`, `lltx_driver_lock`, `lltx_lockfree`; the drivers
//!   `buggy_2005`, `fixed_2005`, `modern` (and `modern_nobarrier`); the
//!   completion path.
//! * [`run`]: producers, the NIC consumer and `dev_watchdog` on real threads,
//!   with exactly-once and per-producer order verification.
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
pub use ring::{Consumer, MpscRing, Producer, RingError, MAX_RING};
#[cfg(not(loom))]
pub use sim::{run, Fault, NicConfig, NicError, NicReport};
