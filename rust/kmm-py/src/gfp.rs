//! Binding for `kmm_core::gfp`: GFP names and masks.

use crate::enter::guard;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A mask from names (`"GFP_KERNEL|__GFP_HIGH"`) or a number (`kmm_core::gfp::parse`).
#[pyfunction]
fn parse_gfp(text: &str) -> PyResult<u32> {
    guard(None, || kmm_core::gfp::parse(text))
}

/// Refuse bits the kernel does not define and combinations it forbids.
#[pyfunction]
fn validate_gfp(gfp: u32) -> PyResult<()> {
    guard(None, || kmm_core::gfp::validate(gfp))
}

/// The mask as names, as page_owner prints them.
#[pyfunction]
fn gfp_names(gfp: u32) -> String {
    kmm_core::gfp::format_names(gfp)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_gfp, m)?)?;
    m.add_function(wrap_pyfunction!(validate_gfp, m)?)?;
    m.add_function(wrap_pyfunction!(gfp_names, m)?)?;
    let flags = PyDict::new(m.py());
    for (name, v) in kmm_core::gfp::GFP_NAMES {
        flags.set_item(*name, *v)?;
    }
    m.add("GFP_FLAGS", flags)?;
    Ok(())
}
