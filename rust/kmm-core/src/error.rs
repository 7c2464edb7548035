//! Errors of the engine. Every fallible call leaves the machine as it was.

use std::fmt;

/// What went wrong, by kind; the binding maps each kind to the Python class of
/// `kmm.errors` that [`Error::class_name`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Config(String),
    Gfp(String),
    Order(String),
    Pfn(String),
    DoubleFree(String),
    Trace(String),
    Parse(String),
    Invariant(String),
    PageOwner(String),
}

impl Error {
    /// Name of the matching Python exception class in `kmm.errors`.
    pub fn class_name(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::Gfp(_) => "GfpError",
            Error::Order(_) => "OrderError",
            Error::Pfn(_) => "PfnError",
            Error::DoubleFree(_) => "DoubleFreeError",
            Error::Trace(_) => "TraceError",
            Error::Parse(_) => "ParseError",
            Error::Invariant(_) => "InvariantError",
            Error::PageOwner(_) => "PageOwnerError",
        }
    }

    /// The message, without the class name.
    pub fn message(&self) -> &str {
        match self {
            Error::Config(m)
            | Error::Gfp(m)
            | Error::Order(m)
            | Error::Pfn(m)
            | Error::DoubleFree(m)
            | Error::Trace(m)
            | Error::Parse(m)
            | Error::Invariant(m)
            | Error::PageOwner(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class_name(), self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Return `Err(Error::Kind(format!(...)))` unless `cond` holds:
/// `ensure!(n <= 64, Config, "nodes must be 1..64, got {n}")`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $kind:ident, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Error::$kind(format!($($msg)+)));
        }
    };
}
