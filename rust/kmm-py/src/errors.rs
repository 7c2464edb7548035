//! The engine's errors as `kmm.errors` exceptions.
//!
//! `impl From<kmm_core::Error> for PyErr` is refused by the orphan rule (both
//! types are foreign here, E0117), so the conversion goes through the local
//! [`CoreError`], as polars' `PyPolarsErr` does: `.map_err(CoreError)?`.

use pyo3::prelude::*;

/// An engine error on its way to Python.
#[derive(Debug)]
pub(crate) struct CoreError(pub kmm_core::Error);

impl From<kmm_core::Error> for CoreError {
    fn from(e: kmm_core::Error) -> CoreError {
        CoreError(e)
    }
}

impl From<CoreError> for PyErr {
    /// The `kmm.errors` class the error names ([`kmm_core::Error::class_name`]).
    fn from(e: CoreError) -> PyErr {
        Python::attach(|py| crate::core_err(py, e.0))
    }
}
