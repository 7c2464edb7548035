//! Binding for `kmm_core::ftrace`: the streaming kernel trace importer.
//! Conversion only: parsing runs in the engine through [`enter`] (GIL
//! released); files and pipes are opened and read by the Python side
//! (`kmm.kernel_trace`).

use crate::enter::{enter, guard};
use kmm_core::ftrace::{ImportStats, Importer, EVENT_NAMES};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// Kernel kmem page event text in, kmm trace records out.
#[pyclass(name = "KernelTraceImporter", module = "kmm._kmm")]
pub struct PyImporter {
    inner: Importer,
    poisoned: bool,
}

#[pymethods]
impl PyImporter {
    #[new]
    fn new() -> Self {
        PyImporter {
            inner: Importer::new(),
            poisoned: false,
        }
    }

    /// Feed the next bytes of the input (a line may be cut between two feeds).
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let im = &mut self.inner;
        enter(py, Some(&mut self.poisoned), || im.feed(data))
    }

    /// End of input; an input of which no kmem page event parsed is an error.
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let im = &mut self.inner;
        enter(py, Some(&mut self.poisoned), || im.finish())
    }

    /// The TRACE_DTYPE records produced since the last call, as bytes.
    fn take_records<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let im = &mut self.inner;
        let b = guard(Some(&mut self.poisoned), || Ok(im.take_records()))?;
        Ok(PyBytes::new(py, &b))
    }

    /// Objects allocated in the trace and still allocated at its end.
    fn live_objects(&self) -> usize {
        self.inner.live_objects()
    }

    /// What the import saw so far, as a dict (see `kmm.kernel_trace.ImportSummary`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats)
    }
}

/// An import's counts as the dict `kmm.kernel_trace` documents.
pub fn stats_dict<'py>(py: Python<'py>, s: &ImportStats) -> PyResult<Bound<'py, PyDict>> {
    {
        let d = PyDict::new(py);
        d.set_item("format", s.format.map(|f| f.name()))?;
        d.set_item("lines", s.lines)?;
        let ev = PyDict::new(py);
        for (name, n) in EVENT_NAMES.iter().zip(s.events) {
            ev.set_item(*name, n)?;
        }
        d.set_item("events", ev)?;
        let other = PyDict::new(py);
        for (name, n) in &s.other_events {
            other.set_item(name, n)?;
        }
        d.set_item("other_events", other)?;
        d.set_item("records", s.records)?;
        d.set_item("allocations", s.allocations)?;
        d.set_item("frees", s.frees)?;
        let sk = PyDict::new(py);
        for (name, n) in s.skipped() {
            sk.set_item(name, n)?;
        }
        d.set_item("skipped", sk)?;
        d.set_item("headers", s.headers)?;
        d.set_item("blank", s.blank)?;
        d.set_item("lost_events", s.lost_events)?;
        d.set_item("alloc_of_allocated", s.alloc_of_allocated)?;
        d.set_item("free_order_mismatch", s.free_order_mismatch)?;
        d.set_item("gfp_unknown_names", s.gfp_unknown_names)?;
        d.set_item("unknown_fields", s.unknown_fields)?;
        d.set_item("mixed_format_lines", s.mixed_format_lines)?;
        d.set_item("truncated_last_line", s.truncated_last_line)?;
        d.set_item("first_ts_ns", s.first_ts_ns)?;
        d.set_item("last_ts_ns", s.last_ts_ns)?;
        let ex = PyList::empty(py);
        for (line, why, text) in &s.malformed_examples {
            ex.append((*line, *why, text.as_str()))?;
        }
        d.set_item("malformed_examples", ex)?;
        let mk = PyList::empty(py);
        for m in &s.markers {
            let md = PyDict::new(py);
            md.set_item("text", m.text.as_str())?;
            md.set_item("line", m.line)?;
            md.set_item("record", m.record)?;
            md.set_item("event", m.event)?;
            md.set_item("ts_ns", m.ts_ns)?;
            mk.append(md)?;
        }
        d.set_item("markers", mk)?;
        Ok(d)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyImporter>()?;
    m.add("KERNEL_EVENTS", EVENT_NAMES.to_vec())?;
    Ok(())
}
