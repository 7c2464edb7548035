//! `kmm._kmm`: the thin PyO3 layer over kmm-core and kmm-nic.
//!
//! Conversion and errors only: every call into the engine goes through
//! [`enter::enter`] (or its GIL-keeping sibling [`enter::guard`]), which catches
//! a panic as a `KmmError` (poisoning the machine) and maps every engine error to
//! its class of `kmm.errors` ([`errors`]); a caught panic prints nothing
//! ([`enter::quiet_panics`]). No rule of the engine lives here.

use pyo3::prelude::*;

mod enter;
mod errors;
mod ftrace;
mod gfp;
mod machine;
mod nic;
mod page_owner;
mod replay_real;
mod snapshot;
mod workload;

#[pymodule]
fn _kmm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    enter::quiet_panics();
    m.add("MAX_ORDER", kmm_core::MAX_ORDER)?;
    m.add("PAGE_SIZE", kmm_core::PAGE_SIZE)?;
    m.add("OP_ALLOC", kmm_core::replay::OP_ALLOC)?;
    m.add("OP_FREE", kmm_core::replay::OP_FREE)?;
    m.add("OP_TOUCH", kmm_core::replay::OP_TOUCH)?;
    m.add("OP_TICK", kmm_core::replay::OP_TICK)?;
    m.add("TRACE_RECORD_SIZE", kmm_core::replay::TRACE_RECORD_SIZE)?;
    m.add("OP_SLAB_ALLOC", kmm_core::replay::OP_SLAB_ALLOC)?;
    m.add("OP_SLAB_FREE", kmm_core::replay::OP_SLAB_FREE)?;
    m.add("OP_SLAB_PIN", kmm_core::replay::OP_SLAB_PIN)?;
    m.add("TF_TASK", kmm_core::replay::TF_TASK)?;
    m.add("TF_UNEVICTABLE", kmm_core::replay::TF_UNEVICTABLE)?;
    gfp::register(m)?;
    machine::register(m)?;
    nic::register(m)?;
    page_owner::register(m)?;
    ftrace::register(m)?;
    snapshot::register(m)?;
    replay_real::register(m)?;
    workload::register(m)?;
    Ok(())
}
