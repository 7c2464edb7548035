//! Errors of the engine. Every fallible call leaves the machine as it was.

use std::fmt;

/// What went wrong, by kind; the binding maps each kind to a Python class in
/// `kmm.errors` (named by [`Error::class_name`]).
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
