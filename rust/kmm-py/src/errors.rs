//! The `kmm.errors` classes, declared once, and the one conversion of engine
//! errors into them.
//!
//! `From<kmm_core::Error> for PyErr` cannot be written here (the orphan rule: both
//! types are foreign to this crate), so errors cross through [`Error`], as
//! polars' `PyPolarsErr` does: `.map_err(Error::from)?` in a `PyResult` function,
//! or implicitly in [`enter`](crate::enter::enter) and [`guard`](crate::enter::guard).

use pyo3::{import_exception, PyErr};

import_exception!(kmm.errors, KmmError);
import_exception!(kmm.errors, ConfigError);
import_exception!(kmm.errors, GfpError);
import_exception!(kmm.errors, OrderError);
import_exception!(kmm.errors, PfnError);
import_exception!(kmm.errors, DoubleFreeError);
import_exception!(kmm.errors, TraceError);
import_exception!(kmm.errors, ParseError);
import_exception!(kmm.errors, InvariantError);
import_exception!(kmm.errors, PageOwnerError);
import_exception!(kmm.errors, NicError);
import_exception!(kmm.errors, NicWorkerError);

/// An error of the engine or of the NIC simulator on its way to Python.
#[derive(Debug)]
pub(crate) enum Error {
    Core(kmm_core::Error),
    Nic(kmm_nic::NicError),
}

impl From<kmm_core::Error> for Error {
    fn from(e: kmm_core::Error) -> Error {
        Error::Core(e)
    }
}

impl From<kmm_nic::NicError> for Error {
    fn from(e: kmm_nic::NicError) -> Error {
        Error::Nic(e)
    }
}

/// The `kmm.errors` class of each error kind (the one [`kmm_core::Error::class_name`] names).
impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        use kmm_core::Error as E;
        use kmm_nic::NicError as N;
        match e {
            Error::Core(E::Config(m)) => ConfigError::new_err(m),
            Error::Core(E::Gfp(m)) => GfpError::new_err(m),
            Error::Core(E::Order(m)) => OrderError::new_err(m),
            Error::Core(E::Pfn(m)) => PfnError::new_err(m),
            Error::Core(E::DoubleFree(m)) => DoubleFreeError::new_err(m),
            Error::Core(E::Trace(m)) => TraceError::new_err(m),
            Error::Core(E::Parse(m)) => ParseError::new_err(m),
            Error::Core(E::Invariant(m)) => InvariantError::new_err(m),
            Error::Core(E::PageOwner(m)) => PageOwnerError::new_err(m),
            Error::Nic(N::Config(m)) => NicError::new_err(m),
            Error::Nic(N::Worker(m)) => NicWorkerError::new_err(m),
        }
    }
}
