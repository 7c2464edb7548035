//! The one way into the engine: release the GIL, catch a panic (poisoning the
//! machine it may have left half-changed), map the error to its `kmm.errors` class.

use crate::errors::{Error, KmmError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Release the GIL, run `f`, catch a panic (poisoning `poison` if given), map kmm_core::Error to the kmm.errors class.
///
/// A poisoned machine is refused before `f` runs. Pass `poison` for calls that
/// change a machine, `None` for calls that only read one.
pub(crate) fn enter<T: Send>(
    py: Python<'_>,
    poison: Option<&mut bool>,
    f: impl FnOnce() -> kmm_core::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| guard(poison, f))
}

/// [`enter`] keeping the GIL, for calls too short to be worth releasing it.
pub(crate) fn guard<T>(
    poison: Option<&mut bool>,
    f: impl FnOnce() -> kmm_core::Result<T>,
) -> PyResult<T> {
    if poison.as_deref() == Some(&true) {
        return Err(poisoned());
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| Error::Core(e).into()),
        Err(panic) => {
            if let Some(flag) = poison {
                *flag = true;
            }
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(KmmError::new_err(format!(
                "internal error in the kmm engine: {what}"
            )))
        }
    }
}

/// The error of any call on a machine an earlier panic poisoned.
pub(crate) fn poisoned() -> PyErr {
    KmmError::new_err("machine is unusable after an internal engine error")
}
