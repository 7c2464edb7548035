//! loom: the stop/wake protocol between the transmit path and completion.
//!
//! * `modern` never loses a wakeup (one stopper under `xmit_lock`; two
//!   lock-free stoppers under LLTX).
//! * The 2005 protocol (stop without recheck) and the modern protocol with
//!   its barrier pair removed both lose it: loom finds the interleaving, and
//!   those tests pass only because the model fails (`should_panic`).
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p kmm-nic --release --test loom_stop_wake`
#![cfg(loom)]

use kmm_nic::{Driver, Mode, TxQueue, Xmit, XmitStats};
use loom::sync::Arc;
use loom::thread;

mod loom_common;
use loom_common::model;

/// `producers` CPUs each send `packets` one-descriptor packets into a ring of
/// 2 (stop below 1 free, wake at 2), one attempt per packet: a CPU whose packet
/// is not taken leaves the rest in its qdisc (waiting for a wake that, if it
/// is lost, never comes). Meanwhile the NIC makes `ROUNDS` fetch-and-complete
/// passes; then the CPUs are joined and whatever is left is completed. A queue
/// still stopped over an empty ring at the end is a lost wakeup.
///
/// (No thread spins on another's progress except the ring's in-order
/// publication: that keeps the models small enough for loom.)
fn stop_wake_model(mode: Mode, driver: Driver, producers: u32, packets: u64) {
    const ROUNDS: usize = 3;
    let q = Arc::new(TxQueue::new(2, mode, driver, 1, 2, 0).unwrap());
    let cpus: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                let mut st = XmitStats::default();
                let mut prod = q.ring.producer();
                for seq in 0..packets {
                    let d = ((p as u64) << 8) | seq;
                    if q.xmit(&mut prod, &[d], &mut st) != Xmit::Sent {
                        break;
                    }
                }
                st
            })
        })
        .collect();
    let mut cons = q.ring.consumer().unwrap();
    let mut buf = [0u64; 2];
    for _ in 0..ROUNDS {
        if cons.fetch(&mut buf) > 0 {
            q.tx_complete(&mut cons);
        } else {
            thread::yield_now();
        }
    }
    let mut st = XmitStats::default();
    for h in cpus {
        st.add(&h.join().unwrap());
    }
    while cons.fetch(&mut buf) > 0 {
        q.tx_complete(&mut cons);
    }
    assert_eq!(st.busy, 0, "{} returned NETDEV_TX_BUSY", driver.name());
    assert_eq!(q.ring.free(), 2);
    assert!(
        !q.queue_stopped(),
        "lost wakeup: queue stopped with an empty ring and nothing left to complete ({st:?})"
    );
}

#[test]
fn modern_never_loses_a_wakeup_xmit_lock() {
    model(|| stop_wake_model(Mode::XmitLock, Driver::Modern, 1, 3));
}

#[test]
fn modern_never_loses_a_wakeup_lltx_lockfree_two_stoppers() {
    model(|| stop_wake_model(Mode::LltxLockfree, Driver::Modern, 2, 2));
}

/// The 2005 stop (read free, then stop, no recheck) races with a completion
/// that reclaims everything and sees the queue still running.
#[test]
#[should_panic(expected = "lost wakeup")]
fn stop_without_recheck_loses_the_wakeup() {
    model(|| stop_wake_model(Mode::XmitLock, Driver::Fixed2005, 1, 3));
}

/// The modern recheck without the barrier pair: the stopper's recheck reads a
/// stale reclaim index while the completion reads a stale stopped flag (store
/// buffering); both skip the wake.
#[test]
#[should_panic(expected = "lost wakeup")]
fn recheck_without_barrier_loses_the_wakeup() {
    model(|| stop_wake_model(Mode::XmitLock, Driver::ModernNoBarrier, 1, 3));
}
