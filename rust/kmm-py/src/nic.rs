//! Binding for kmm-nic (the transmit ring). Filled in by the NIC issue.
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
