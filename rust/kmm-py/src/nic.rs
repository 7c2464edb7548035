//! Binding for kmm-nic: `_kmm.nic_run(...) -> dict`, `_kmm.NIC_MODES`,
//! `_kmm.NIC_DRIVERS`. Conversion and errors only: a bad configuration raises
//! `NicError` before any thread starts; a worker panic or a timeout raises
//! `NicWorkerError`; a panic of the run itself (a bug) is a `KmmError`, as
//! everywhere in the engine. The GIL is released while the threads run.
use crate::enter::enter_polled;
use crate::errors::Error;
use kmm_nic::{Driver, Fault, Mode, NicConfig, NicError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Run one transmit experiment and return its counters as a dict.
#[pyfunction]
#[pyo3(signature = (
    mode, driver, producers=2, packets=100_000, ring=256, max_descs=4, stop_thresh=None,
    wake_thresh=None, race_window_ns=0, tx_batch=16, tx_rate=0, watchdog_ms=20,
    timeout_ms=120_000, seed=0, fault=None, tx_bulk=8, napi_budget=64, coalesce_frames=16,
    coalesce_usecs=8, bql_hold_ms=1000
))]
#[allow(clippy::too_many_arguments)]
fn nic_run<'py>(
    py: Python<'py>,
    mode: &str,
    driver: &str,
    producers: u32,
    packets: u64,
    ring: u64,
    max_descs: u32,
    stop_thresh: Option<u32>,
    wake_thresh: Option<u32>,
    race_window_ns: u64,
    tx_batch: u32,
    tx_rate: u64,
    watchdog_ms: u64,
    timeout_ms: u64,
    seed: u64,
    fault: Option<&str>,
    tx_bulk: u32,
    napi_budget: u32,
    coalesce_frames: u32,
    coalesce_usecs: u64,
    bql_hold_ms: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg_err = |m: String| PyErr::from(Error::Nic(NicError::Config(m)));
    let m = Mode::parse(mode).ok_or_else(|| {
        cfg_err(format!(
            "unknown mode {mode:?} (known: {})",
            Mode::ALL.map(|m| m.name()).join(", ")
        ))
    })?;
    let d = Driver::parse(driver).ok_or_else(|| {
        cfg_err(format!(
            "unknown driver {driver:?} (known: {})",
            Driver::ALL.map(|d| d.name()).join(", ")
        ))
    })?;
    let fault = match fault {
        None => None,
        Some(f) => Some(Fault::parse(f).ok_or_else(|| {
            cfg_err(format!(
                "unknown fault {f:?} (known: producer_panic, consumer_panic, consumer_hang)"
            ))
        })?),
    };
    let mut cfg = NicConfig::new(m, d);
    cfg.producers = producers;
    cfg.packets = packets;
    cfg.ring = ring;
    cfg.max_descs = max_descs;
    cfg.stop_thresh = stop_thresh.unwrap_or(max_descs);
    cfg.wake_thresh = wake_thresh.unwrap_or_else(|| {
        let w = cfg.stop_thresh.saturating_mul(2) as u64;
        w.min(ring.max(cfg.stop_thresh as u64)).min(u32::MAX as u64) as u32
    });
    cfg.race_window_ns = race_window_ns;
    cfg.tx_batch = tx_batch;
    cfg.tx_bulk = tx_bulk;
    cfg.napi_budget = napi_budget;
    cfg.coalesce_frames = coalesce_frames;
    cfg.coalesce_usecs = coalesce_usecs;
    cfg.bql_hold_ms = bql_hold_ms;
    cfg.tx_rate = tx_rate;
    cfg.watchdog_ms = watchdog_ms;
    cfg.timeout_ms = timeout_ms;
    cfg.seed = seed;
    cfg.fault = fault;
    cfg.validate().map_err(Error::from)?;

    // Ctrl-C: the watchdog (on this thread) asks the poll and tears the run down
    let (r, signal) = enter_polled(py, None, |poll| Ok(kmm_nic::run_polled(&cfg, poll)))?;
    if let Some(e) = signal {
        return Err(e);
    }
    let r = r.map_err(Error::from)?;

    let out = PyDict::new(py);
    out.set_item("mode", m.name())?;
    out.set_item("driver", d.name())?;
    out.set_item("producers", cfg.producers)?;
    out.set_item("packets", cfg.packets)?;
    out.set_item("ring", cfg.ring)?;
    out.set_item("max_descs", cfg.max_descs)?;
    out.set_item("stop_thresh", cfg.stop_thresh)?;
    out.set_item("wake_thresh", cfg.wake_thresh)?;
    out.set_item("race_window_ns", cfg.race_window_ns)?;
    out.set_item("tx_batch", cfg.tx_batch)?;
    out.set_item("tx_bulk", cfg.tx_bulk)?;
    out.set_item("napi_budget", cfg.napi_budget)?;
    out.set_item("coalesce_frames", cfg.coalesce_frames)?;
    out.set_item("coalesce_usecs", cfg.coalesce_usecs)?;
    out.set_item("bql_hold_ms", cfg.bql_hold_ms)?;
    out.set_item("tx_rate", cfg.tx_rate)?;
    out.set_item("seed", cfg.seed)?;
    let x = &r.xmit;
    for (k, v) in [
        ("expected", r.expected),
        ("sent", x.sent),
        ("delivered", r.delivered),
        ("dropped", r.dropped),
        ("duplicates", r.duplicates),
        ("order_violations", r.order_violations),
        ("torn_packets", r.torn_packets),
        ("requeues", x.requeues),
        ("busy", x.busy),
        ("spurious_bug_logs", x.spurious_bug_logs),
        ("real_bug_logs", x.real_bug_logs),
        ("harmless_races", x.harmless_races),
        ("false_wakes", x.false_wakes),
        ("stopper_races", x.stopper_races),
        ("doorbells", x.doorbells),
        ("stack_xoffs", x.stack_xoffs),
        ("stops", x.stops),
        ("wakes", r.wakes),
        ("restarts", x.restarts),
        ("collisions", x.collisions),
        ("lost_wakeups", r.lost_wakeups),
        ("descriptors", r.descriptors),
        ("interrupts", r.interrupts),
        ("completions", r.completions),
        ("latency_ns_p50", r.latency_ns_p50),
        ("latency_ns_p99", r.latency_ns_p99),
        ("latency_ns_p999", r.latency_ns_p999),
    ] {
        out.set_item(k, v)?;
    }
    out.set_item("verified", r.verified())?;
    out.set_item("elapsed_s", r.elapsed_s)?;
    out.set_item("pps", r.pps)?;
    out.set_item("doorbells_per_packet", r.doorbells_per_packet())?;
    out.set_item("bql_limit", r.bql_limit.clone())?;
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nic_run, m)?)?;
    m.add("NIC_MODES", Mode::ALL.map(|m| m.name()).to_vec())?;
    m.add("NIC_DRIVERS", Driver::ALL.map(|d| d.name()).to_vec())?;
    m.add(
        "NIC_FAULTS",
        vec!["producer_panic", "consumer_panic", "consumer_hang"],
    )?;
    m.add("NETDEV_TX_OK", kmm_nic::NETDEV_TX_OK)?;
    m.add("NETDEV_TX_BUSY", kmm_nic::NETDEV_TX_BUSY)?;
    m.add("NETDEV_TX_LOCKED", kmm_nic::NETDEV_TX_LOCKED)?;
    m.add("BUG_TX_RING_FULL", kmm_nic::BUG_TX_RING_FULL)?;
    Ok(())
}
