//! `kmm._kmm`: the thin PyO3 layer over kmm-core and kmm-nic.
//!
//! Conversion and errors only: every engine error becomes the matching class of
//! `kmm.errors`, every panic becomes a `KmmError` (and poisons the machine), and
//! long calls release the GIL.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use std::panic::{catch_unwind, AssertUnwindSafe};

mod enter;
mod errors;
mod machine;
mod nic;
mod page_owner;

/// Raise the `kmm.errors` class called `class` with `msg`.
pub(crate) fn kmm_err(py: Python<'_>, class: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    match py
        .import("kmm.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
    {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(e) => e,
    }
}

pub(crate) fn core_err(py: Python<'_>, e: kmm_core::Error) -> PyErr {
    kmm_err(py, e.class_name(), e.message().to_string())
}

/// Run engine code, turning a panic into a `KmmError` instead of letting it cross.
pub(crate) fn guard<T>(py: Python<'_>, f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        kmm_err(
            py,
            "KmmError",
            format!("internal error in the kmm engine: {what}"),
        )
    })
}

pub(crate) fn pairs_to_dict<'py>(
    py: Python<'py>,
    pairs: &[(&'static str, u64)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(*k, *v)?;
    }
    Ok(d)
}

#[pyfunction]
fn parse_gfp(py: Python<'_>, text: &str) -> PyResult<u32> {
    kmm_core::gfp::parse(text).map_err(|e| core_err(py, e))
}

#[pyfunction]
fn validate_gfp(py: Python<'_>, gfp: u32) -> PyResult<()> {
    kmm_core::gfp::validate(gfp).map_err(|e| core_err(py, e))
}

#[pyfunction]
fn gfp_names(gfp: u32) -> String {
    kmm_core::gfp::format_names(gfp)
}

#[pyfunction]
fn parse_mem(py: Python<'_>, text: &str) -> PyResult<u64> {
    kmm_core::parse_mem(text).map_err(|e| core_err(py, e))
}

#[pymodule]
fn _kmm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use kmm_core::gfp as g;
    m.add_function(wrap_pyfunction!(parse_gfp, m)?)?;
    m.add_function(wrap_pyfunction!(validate_gfp, m)?)?;
    m.add_function(wrap_pyfunction!(gfp_names, m)?)?;
    m.add_function(wrap_pyfunction!(parse_mem, m)?)?;
    let flags = PyDict::new(m.py());
    for (name, v) in g::GFP_NAMES {
        flags.set_item(*name, *v)?;
    }
    m.add("GFP_FLAGS", flags)?;
    m.add("MAX_ORDER", kmm_core::MAX_ORDER)?;
    m.add("PAGE_SIZE", kmm_core::PAGE_SIZE)?;
    m.add("OP_ALLOC", kmm_core::replay::OP_ALLOC)?;
    m.add("OP_FREE", kmm_core::replay::OP_FREE)?;
    m.add("OP_TOUCH", kmm_core::replay::OP_TOUCH)?;
    m.add("OP_TICK", kmm_core::replay::OP_TICK)?;
    m.add("TRACE_RECORD_SIZE", kmm_core::replay::TRACE_RECORD_SIZE)?;
    machine::register(m)?;
    nic::register(m)?;
    page_owner::register(m)?;
    Ok(())
}
