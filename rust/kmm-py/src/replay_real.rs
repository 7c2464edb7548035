//! Binding for `kmm_core::replay_real`: the streaming replay of a real
//! kernel trace. Conversion only; `kmm.real_replay` opens the inputs and
//! drives the machines.

use crate::enter::{enter, guard};
use crate::ftrace::stats_dict;
use kmm_core::ftrace::EVENT_NAMES;
use kmm_core::replay_real::{RealReplay, DIVERGENCES};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// A real trace's window read for the recorded and/or policy placement.
#[pyclass(name = "RealReplay", module = "kmm._kmm")]
pub struct PyRealReplay {
    inner: RealReplay,
    poisoned: bool,
}

fn contiguous<'a>(a: &'a PyReadonlyArray1<'_, u64>) -> PyResult<&'a [u64]> {
    a.as_slice().map_err(|_| {
        crate::errors::Error::Core(kmm_core::Error::Parse(
            "kpageflags must be a contiguous u64 array".into(),
        ))
        .into()
    })
}

#[pymethods]
impl PyRealReplay {
    /// `kpageflags` and `zones` ([start, end) pfns) of the start snapshot
    /// enable the recorded placement; `policy` makes kmm trace records.
    #[new]
    #[pyo3(signature = (start_label, end_label, kpageflags, zones, policy))]
    fn new(
        start_label: Option<String>,
        end_label: Option<String>,
        kpageflags: Option<PyReadonlyArray1<'_, u64>>,
        zones: Vec<(u64, u64)>,
        policy: bool,
    ) -> PyResult<Self> {
        let flags = match &kpageflags {
            Some(a) => Some(contiguous(a)?),
            None => None,
        };
        let inner = guard(None, || {
            RealReplay::new(
                start_label.as_deref(),
                end_label.as_deref(),
                flags.map(|f| (f, zones.as_slice())),
                policy,
            )
        })?;
        Ok(PyRealReplay {
            inner,
            poisoned: false,
        })
    }

    /// Read the next bytes of the trace.
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let r = &mut self.inner;
        enter(py, Some(&mut self.poisoned), || r.feed(data))
    }

    /// End of the trace (errors: a marker not found, no page event).
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let r = &mut self.inner;
        enter(py, Some(&mut self.poisoned), || r.finish())
    }

    /// Policy placement: the TRACE_DTYPE records produced since the last call.
    fn take_records<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let r = &mut self.inner;
        let b = guard(Some(&mut self.poisoned), || Ok(r.take_records()))?;
        Ok(PyBytes::new(py, &b))
    }

    /// The window's counts and the divergences (recorded placement), and the
    /// importer's summary (policy placement) under `import`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner.stats;
        let d = PyDict::new(py);
        d.set_item("lines", s.lines)?;
        d.set_item("events_before", s.events_before)?;
        d.set_item("events_in_window", s.events_in_window)?;
        d.set_item("events_after", s.events_after)?;
        let ev = PyDict::new(py);
        for (name, n) in EVENT_NAMES.iter().zip(s.events).take(6) {
            ev.set_item(*name, n)?;
        }
        d.set_item("events", ev)?;
        d.set_item("start_marker_line", s.start_marker_line)?;
        d.set_item("end_marker_line", s.end_marker_line)?;
        d.set_item("malformed_lines", s.malformed)?;
        d.set_item("lost_events", s.lost_events)?;
        d.set_item("truncated_last_line", s.truncated_last_line)?;
        d.set_item("batched_duplicates", s.batched_duplicates)?;
        let dv = PyDict::new(py);
        for (name, (events, pages)) in DIVERGENCES.iter().zip(s.divergences) {
            let e = PyDict::new(py);
            e.set_item("events", events)?;
            e.set_item("pages", pages)?;
            dv.set_item(*name, e)?;
        }
        d.set_item("divergences", dv)?;
        let ex = PyList::empty(py);
        for x in &s.divergence_examples {
            let e = PyDict::new(py);
            e.set_item("reason", x.reason)?;
            e.set_item("line", x.line)?;
            e.set_item("event", x.event)?;
            e.set_item("pfn", x.pfn)?;
            e.set_item("order", x.order)?;
            e.set_item("found", x.found)?;
            ex.append(e)?;
        }
        d.set_item("divergence_examples", ex)?;
        if let Some(im) = self.inner.importer() {
            let i = stats_dict(py, &im.stats)?;
            i.set_item("live_objects", im.live_objects())?;
            d.set_item("import", i)?;
        }
        Ok(d)
    }

    /// Recorded placement: each pfn's state (0 reserved, 1 free, 2 pcp,
    /// 3 allocated, 4 taken, 5 as in the snapshot), or None.
    fn states<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<u8>>> {
        self.inner.states().map(|v| v.into_pyarray(py))
    }

    /// Recorded placement: the end state as kpageflags words, or None.
    fn end_kpageflags<'py>(
        &self,
        py: Python<'py>,
        start: PyReadonlyArray1<'py, u64>,
    ) -> PyResult<Option<Bound<'py, PyArray1<u64>>>> {
        let s = contiguous(&start)?;
        Ok(self.inner.end_kpageflags(s).map(|v| v.into_pyarray(py)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRealReplay>()?;
    m.add("REPLAY_DIVERGENCES", DIVERGENCES.to_vec())?;
    m.add("REPLAY_STATES", kmm_core::replay_real::STATE_NAMES.to_vec())?;
    Ok(())
}
