//! Binding for `Machine::from_snapshot` (`kmm_core::mm::kpageflags`).
//! Conversion only: the snapshot's files are read and parsed by `kmm.snapshot`.

use crate::enter::enter;
use crate::errors;
use crate::machine::PyMachine;
use kmm_core::mm::kpageflags::RealZone;
use kmm_core::{Error, Machine, Policy};
use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A zone: (node, name, start_pfn, spanned, present, managed,
/// (min, low, high) | None, (unmovable, movable, reclaimable, highatomic) | None).
type PyZone = (
    usize,
    String,
    u64,
    u64,
    u64,
    u64,
    Option<(u64, u64, u64)>,
    Option<[u64; 4]>,
);

/// Build a machine from a snapshot's zones and kpageflags; returns the machine,
/// pages per class per zone and the kmm start pfn of each zone.
/// `compaction`, `active_freeing`, `defrag_mode`: None keeps kmm's default.
#[pyfunction]
#[pyo3(signature = (allocator, zones, kpageflags, compaction=None, active_freeing=None, defrag_mode=None, freelist_hygiene=None))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn machine_from_snapshot(
    py: Python<'_>,
    allocator: &str,
    zones: Vec<PyZone>,
    kpageflags: PyReadonlyArray1<'_, u64>,
    compaction: Option<bool>,
    active_freeing: Option<bool>,
    defrag_mode: Option<bool>,
    freelist_hygiene: Option<bool>,
) -> PyResult<(PyMachine, Vec<[u64; 6]>)> {
    let policy = Policy::parse(allocator).map_err(errors::Error::from)?;
    let zones: Vec<RealZone> = zones
        .into_iter()
        .map(
            |(node, name, start_pfn, spanned, present, managed, watermarks, block_counts)| {
                RealZone {
                    node,
                    name,
                    start_pfn,
                    spanned,
                    present,
                    managed,
                    watermarks,
                    block_counts,
                }
            },
        )
        .collect();
    let flags = kpageflags.as_slice().map_err(|_| {
        errors::Error::from(Error::Parse(format!(
            "kpageflags must be a contiguous array of u64 (got {} entries, not contiguous)",
            kpageflags.len()
        )))
    })?;
    let tune = |c: &mut kmm_core::MachineConfig| {
        for (field, v) in [
            (&mut c.compaction, compaction),
            (&mut c.active_freeing, active_freeing),
            (&mut c.defrag_mode, defrag_mode),
            (&mut c.freelist_hygiene, freelist_hygiene),
        ] {
            if let Some(v) = v {
                *field = v;
            }
        }
    };
    let (m, load) = enter(py, None, || {
        Machine::from_snapshot_tuned(policy, tune, &zones, flags)
    })?;
    Ok((
        PyMachine {
            inner: m,
            poisoned: false,
        },
        load.classes,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(machine_from_snapshot, m)?)?;
    Ok(())
}
