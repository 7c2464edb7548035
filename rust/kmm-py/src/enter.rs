//! The one way into the engine from Python.

use crate::errors::CoreError;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Release the GIL, run `f`, catch a panic (poisoning `poison` if given), map
/// kmm_core::Error to the kmm.errors class.
pub(crate) fn enter<T: Send>(
    py: Python<'_>,
    poison: Option<&mut bool>,
    f: impl FnOnce() -> kmm_core::Result<T> + Send,
) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(r) => r.map_err(|e| CoreError(e).into()),
        Err(panic) => {
            if let Some(p) = poison {
                *p = true;
            }
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(crate::kmm_err(
                py,
                "KmmError",
                format!("internal error in the kmm engine: {what}"),
            ))
        }
    }
}
