//! loom: the NETIF_F_LLTX race of 2005.
//!
//! Two CPUs both see the queue running; one fills the ring and stops the
//! queue; the other then reaches the driver with no room. Under `xmit_lock`
//! this cannot happen. Under LLTX with a driver lock it can, and the queue is
//! always already stopped when it does (the harmless race): `buggy_2005` logs
//! a spurious BUG, `fixed_2005` returns BUSY silently. With a lock-free ring
//! "fill, then stop" is no longer atomic, and `fixed_2005` can log a BUG
//! while the queue is still running although nothing is broken. `modern`
//! never logs.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p kmm-nic --release --test loom_lltx_race`
#![cfg(loom)]

use kmm_nic::{Driver, Mode, TxQueue, Xmit, XmitStats};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicBool, Ordering};

mod loom_common;
use loom_common::model;

/// A ring of 2 with one descriptor already queued (the NIC is busy and does
/// not complete); two CPUs each offer one packet of one descriptor, retrying
/// on `NETDEV_TX_LOCKED`/collisions and leaving when they see the queue
/// stopped. Returns the summed counters.
fn race_model(mode: Mode, driver: Driver) -> XmitStats {
    let q = Arc::new(TxQueue::new(2, mode, driver, 1, 2, 0).unwrap());
    assert!(q.ring.enqueue(0xff00));
    let cpus: Vec<_> = (0..2u64)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                let mut cpu = q.cpu();
                loop {
                    match q.xmit(&mut cpu, &[p << 8], 1, false) {
                        Xmit::Sent | Xmit::QueueStopped => break,
                        Xmit::Requeued => thread::yield_now(),
                    }
                }
                cpu.stats
            })
        })
        .collect();
    let mut st = XmitStats::default();
    for h in cpus {
        st.add(&h.join().unwrap());
    }
    assert_eq!(st.sent, 1, "exactly one of the two packets fits");
    assert!(
        q.queue_stopped(),
        "the CPU that filled the ring stopped the queue"
    );
    st
}

#[test]
fn xmit_lock_never_reaches_a_full_ring() {
    model(|| {
        let st = race_model(Mode::XmitLock, Driver::Buggy2005);
        assert_eq!(st.busy, 0);
        assert_eq!(st.spurious_bug_logs + st.real_bug_logs, 0);
    });
}

#[test]
fn lltx_driver_lock_buggy_2005_logs_a_spurious_bug() {
    static SEEN: AtomicBool = AtomicBool::new(false);
    model(|| {
        let st = race_model(Mode::LltxDriverLock, Driver::Buggy2005);
        assert_eq!(
            st.real_bug_logs, 0,
            "under the driver lock the queue is always stopped"
        );
        if st.spurious_bug_logs > 0 {
            SEEN.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        SEEN.load(Ordering::Relaxed),
        "loom found no LLTX race interleaving"
    );
}

#[test]
fn lltx_driver_lock_fixed_2005_is_silent_in_the_harmless_race() {
    static SEEN: AtomicBool = AtomicBool::new(false);
    model(|| {
        let st = race_model(Mode::LltxDriverLock, Driver::Fixed2005);
        assert_eq!(
            st.spurious_bug_logs + st.real_bug_logs,
            0,
            "fixed_2005 logged"
        );
        if st.harmless_races > 0 {
            assert_eq!(st.busy, st.harmless_races);
            SEEN.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        SEEN.load(Ordering::Relaxed),
        "loom found no harmless-race interleaving"
    );
}

#[test]
fn lltx_lockfree_fixed_2005_can_log_while_running() {
    static STOPPED: AtomicBool = AtomicBool::new(false);
    static RUNNING: AtomicBool = AtomicBool::new(false);
    model(|| {
        let st = race_model(Mode::LltxLockfree, Driver::Fixed2005);
        assert_eq!(st.spurious_bug_logs, 0);
        if st.harmless_races > 0 {
            STOPPED.store(true, Ordering::Relaxed);
        }
        if st.real_bug_logs > 0 {
            RUNNING.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        STOPPED.load(Ordering::Relaxed),
        "no full ring with the queue stopped"
    );
    assert!(
        RUNNING.load(Ordering::Relaxed),
        "no full ring with the queue still running"
    );
}

/// The modern driver in the same race never logs: the CPU that finds no
/// room at the start of xmit stops the queue (`netif_txq_try_stop`) and
/// returns BUSY only if it stays stopped, or its reservation loses to the
/// other CPU (two stoppers, see `loom_stop_wake`).
#[test]
fn lltx_modern_never_logs() {
    model(|| {
        let st = race_model(Mode::LltxLockfree, Driver::Modern);
        assert_eq!(st.spurious_bug_logs + st.real_bug_logs, 0);
        assert!(
            st.busy <= st.false_wakes + st.harmless_races + st.stopper_races,
            "{st:?}"
        );
    });
}
