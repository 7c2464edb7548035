//! The one way into the engine: release the GIL, catch a panic (poisoning the
//! machine it may have left half-changed), map the error to its `kmm.errors` class.
//!
//! Ctrl-C in a long call: the engine's long loops (replay, the NIC run, the
//! page_owner readers) take an interrupt poll, `&dyn Fn() -> bool`, and call
//! it between chunks of work. [`enter_polled`] passes one that, at most every
//! [`POLL_MS`] ms, takes the GIL back for a moment on the calling thread (the
//! main thread, where Python runs signal handlers) and calls
//! `Python::check_signals`: a pending SIGINT runs Python's handler, whose
//! `KeyboardInterrupt` is kept and makes the poll say stop. The engine stops
//! at its next boundary, leaving the state its docs describe, and the caller
//! raises the kept exception.
//!
//! A caught panic is an error, not a crash: [`quiet_panics`] (run once at
//! module init) replaces Rust's default panic hook, which would print the
//! message and a backtrace to stderr, with one that only notes where the
//! panic happened; [`guard`] puts the message and that place in the
//! `KmmError`. (Each extension module has its own copy of std, so the hook
//! is kmm's alone.)

use crate::errors::{Error, KmmError};
use pyo3::prelude::*;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How often, at most, an interrupt poll takes the GIL to look for signals.
pub(crate) const POLL_MS: u64 = 20;

thread_local! {
    /// Where the last panic on this thread happened (`file:line`), noted by
    /// the hook [`quiet_panics`] installs.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replace the default panic hook (message and backtrace on stderr) with one
/// that prints nothing and notes the panic's place for [`guard`]'s error.
pub(crate) fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            // try_with: a panic while the thread is being torn down has no
            // thread-local left; there is nothing to note then.
            let _ = PANIC_AT.try_with(|p| *p.borrow_mut() = at);
        }));
    });
}

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

/// [`enter`] for a long call: `f` gets an interrupt poll (see the module
/// docs). Returns `f`'s result and the exception a signal handler raised
/// meanwhile (`KeyboardInterrupt` for Ctrl-C), if any: the caller raises it
/// once it has kept what `f` computed.
pub(crate) fn enter_polled<T: Send>(
    py: Python<'_>,
    poison: Option<&mut bool>,
    f: impl FnOnce(&dyn Fn() -> bool) -> kmm_core::Result<T> + Send,
) -> PyResult<(T, Option<PyErr>)> {
    py.detach(|| {
        let pending: RefCell<Option<PyErr>> = RefCell::new(None);
        let last = Cell::new(Instant::now());
        let poll = || {
            if pending.borrow().is_some() {
                return true;
            }
            if last.get().elapsed() < Duration::from_millis(POLL_MS) {
                return false;
            }
            last.set(Instant::now());
            match Python::attach(|py| py.check_signals()) {
                Ok(()) => false,
                Err(e) => {
                    *pending.borrow_mut() = Some(e);
                    true
                }
            }
        };
        let r = guard(poison, || f(&poll))?;
        Ok((r, pending.into_inner()))
    })
}

/// [`enter`] keeping the GIL, for calls too short to be worth releasing it.
pub(crate) fn guard<T>(
    poison: Option<&mut bool>,
    f: impl FnOnce() -> kmm_core::Result<T>,
) -> PyResult<T> {
    if poison.as_deref() == Some(&true) {
        return Err(poisoned());
    }
    let _ = PANIC_AT.try_with(|p| p.borrow_mut().take());
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
            let at = PANIC_AT
                .try_with(|p| p.borrow_mut().take())
                .ok()
                .flatten()
                .map(|l| format!(" (at {l})"))
                .unwrap_or_default();
            Err(KmmError::new_err(format!(
                "internal error in the kmm engine: {what}{at}"
            )))
        }
    }
}

/// The error of any call on a machine an earlier panic poisoned.
pub(crate) fn poisoned() -> PyErr {
    KmmError::new_err("machine is unusable after an internal engine error")
}
