//! loom: the netdev_queues stop/wake protocol between the transmit path
//! (`netif_txq_maybe_stop`, the stopper) and the completion path
//! (`__netif_txq_completed_wake`, the waker).
//!
//! * `modern` never loses a wakeup, with one stopper (under `xmit_lock`) and
//!   even with two lock-free stoppers under LLTX; nor does `modern_bql`,
//!   whose BQL stop bit (STACK_XOFF) follows the same protocol.
//! * With one stopper, room seen by the full-ring check at the start of xmit
//!   is still there when the driver reserves it; two stoppers break that
//!   rule (an expected failure: `should_panic`).
//! * The 2005 protocol (stop without recheck) and the modern protocol with
//!   its barrier pair removed both lose a wakeup: loom finds the
//!   interleaving, and those tests pass only because the model fails.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p kmm-nic --release --test loom_stop_wake`
#![cfg(loom)]

use kmm_nic::{Consumer, Driver, Mode, TxQueue, Xmit, XmitStats};
use loom::sync::Arc;
use loom::thread;

mod loom_common;
use loom_common::model;

/// One completion: fetch what the doorbell announced, reclaim it, run the
/// driver's completion-side wake (one byte per one-descriptor packet).
/// Returns false if there was nothing to complete.
fn complete(q: &TxQueue, cons: &mut Consumer<'_>) -> bool {
    let mut buf = [0u64; 2];
    let n = cons.fetch_until(q.doorbell(), &mut buf) as u32;
    if n > 0 {
        q.tx_complete(cons, cons.fetched(), n, n, 0);
    }
    n > 0
}

/// `producers` CPUs each send `packets` one-descriptor packets into a ring of
/// 2 (stop below 1 free, wake at 2), one attempt per packet: a CPU whose packet
/// is not taken leaves the rest in its qdisc (waiting for a wake that, if it
/// is lost, never comes). Meanwhile the NIC makes `ROUNDS` fetch-and-complete
/// passes; then the CPUs are joined and whatever is left is completed. A queue
/// still stopped over an empty ring at the end is a lost wakeup. Returns the
/// CPUs' summed counters.
///
/// (No thread spins on another's progress except the ring's in-order
/// publication: that keeps the models small enough for loom.)
fn stop_wake_model(mode: Mode, driver: Driver, producers: u32, packets: u64) -> XmitStats {
    const ROUNDS: usize = 3;
    let q = Arc::new(TxQueue::new(2, mode, driver, 1, 2, 0).unwrap());
    let cpus: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                let mut cpu = q.cpu();
                for seq in 0..packets {
                    let d = ((p as u64) << 8) | seq;
                    if q.xmit(&mut cpu, &[d], 1, false) != Xmit::Sent {
                        break;
                    }
                }
                cpu.stats
            })
        })
        .collect();
    let mut cons = q.ring.consumer().unwrap();
    for _ in 0..ROUNDS {
        if !complete(&q, &mut cons) {
            thread::yield_now();
        }
    }
    let mut st = XmitStats::default();
    for h in cpus {
        st.add(&h.join().unwrap());
    }
    while complete(&q, &mut cons) {}
    assert_eq!(q.ring.free(), 2);
    assert!(
        !q.xmit_stopped(),
        "lost wakeup: queue stopped with an empty ring and nothing left to complete ({st:?})"
    );
    st
}

/// The one-stopper rule: room the full-ring check saw is still there when
/// the driver reserves it, and BUSY comes only from a false wake.
fn assert_one_stopper(st: &XmitStats) {
    assert_eq!(
        st.stopper_races, 0,
        "two stoppers broke the one-stopper rule: the room the full-ring check saw was taken ({st:?})"
    );
    assert!(st.busy <= st.false_wakes, "{st:?}");
}

#[test]
fn modern_never_loses_a_wakeup_xmit_lock() {
    model(|| assert_one_stopper(&stop_wake_model(Mode::XmitLock, Driver::Modern, 1, 3)));
}

/// BQL's STACK_XOFF has the same stop / barrier / recheck against the
/// completion's barrier: the limit starts at 0, so the first packet is over
/// it, and the completion that grows the limit must clear the bit.
#[test]
fn modern_bql_never_loses_a_wakeup_xmit_lock() {
    model(|| assert_one_stopper(&stop_wake_model(Mode::XmitLock, Driver::ModernBql, 1, 3)));
}

/// Two CPUs fill the ring with one packet each and may both stop the queue
/// while the NIC completes: the wake still comes.
#[test]
fn modern_never_loses_a_wakeup_lltx_lockfree_two_stoppers() {
    model(|| {
        stop_wake_model(Mode::LltxLockfree, Driver::Modern, 2, 1);
    });
}

/// Two lock-free stoppers: both pass the full-ring check on the last free
/// descriptor, one reserves it, the other's reservation fails with the queue
/// running.
#[test]
#[should_panic(expected = "two stoppers broke the one-stopper rule")]
fn two_stoppers_break_the_one_stopper_rule() {
    model(|| assert_one_stopper(&stop_wake_model(Mode::LltxLockfree, Driver::Modern, 2, 2)));
}

/// The 2005 stop (read free, then stop, no recheck) races with a completion
/// that reclaims everything and sees the queue still running.
#[test]
#[should_panic(expected = "lost wakeup")]
fn stop_without_recheck_loses_the_wakeup() {
    model(|| {
        stop_wake_model(Mode::XmitLock, Driver::Fixed2005, 1, 3);
    });
}

/// The modern recheck without the barrier pair: the stopper's recheck reads a
/// stale reclaim index while the completion reads a stale stopped flag (store
/// buffering); both skip the wake.
#[test]
#[should_panic(expected = "lost wakeup")]
fn recheck_without_barrier_loses_the_wakeup() {
    model(|| {
        stop_wake_model(Mode::XmitLock, Driver::ModernNoBarrier, 1, 3);
    });
}
