//! Binding for page_owner: the stack depot, dumps, stack counts, the engine's
//! aggregation, and the streaming dump-text aggregator. Conversion only.

use crate::enter::guard;
use crate::errors::{Error, KmmError, PageOwnerError, PfnError};
use crate::machine::PyMachine;
use kmm_core::owner_text::{allocator_name, Aggregator};
use kmm_core::page_owner::{DumpFormat, OwnerDump};
use kmm_core::stackdepot::FrameRef;
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::io::{Read, Write};

type PyFrame = (u64, String, u32, u32, Option<String>);

/// Intern a call chain, leaf first, as (address, symbol, offset, size, module|None).
#[pyfunction]
fn po_intern(
    _py: Python<'_>,
    mut m: PyRefMut<'_, PyMachine>,
    frames: Vec<PyFrame>,
) -> PyResult<u32> {
    let refs: Vec<FrameRef<'_>> = frames
        .iter()
        .map(|(a, s, o, z, md)| FrameRef {
            addr: *a,
            symbol: s,
            offset: *o,
            size: *z,
            module: md.as_deref(),
        })
        .collect();
    let pm = &mut *m;
    guard(Some(&mut pm.poisoned), || pm.inner.page_owner_intern(&refs))
}

#[pyfunction]
fn po_set_comm(
    _py: Python<'_>,
    mut m: PyRefMut<'_, PyMachine>,
    pid: u32,
    comm: &str,
) -> PyResult<()> {
    let pm = &mut *m;
    guard(Some(&mut pm.poisoned), || {
        pm.inner.page_owner_mut()?.set_comm(pid, comm)
    })
}

#[pyfunction]
fn po_comm(py: Python<'_>, m: PyRef<'_, PyMachine>, pid: u32, tgid: u32) -> PyResult<String> {
    let mm = m.get(py)?;
    let po = mm.page_owner().map_err(Error::from)?;
    Ok(po.comm(pid, tgid).to_string())
}

fn format_arg(_py: Python<'_>, format: &str) -> PyResult<DumpFormat> {
    Ok(DumpFormat::parse(format).map_err(Error::from)?)
}

/// Stream the dump into a Python file object (binary `write`), `chunk` bytes at a time.
#[pyfunction]
#[pyo3(signature = (m, file, format, chunk=1<<20))]
fn po_dump(
    py: Python<'_>,
    m: PyRef<'_, PyMachine>,
    file: Bound<'_, PyAny>,
    format: &str,
    chunk: usize,
) -> PyResult<u64> {
    let fmt = format_arg(py, format)?;
    let mm = m.get(py)?;
    mm.page_owner().map_err(Error::from)?;
    let chunk = chunk.clamp(4096, 64 << 20);
    let mut d = OwnerDump::new(fmt);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + 8192);
    loop {
        buf.clear();
        let r = py.detach(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.fill(mm, &mut buf, chunk)))
        });
        let done = match r {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(Error::from(e).into()),
            Err(_) => return Err(KmmError::new_err("internal error while dumping page_owner")),
        };
        if !buf.is_empty() {
            file.call_method1("write", (PyBytes::new(py, &buf),))?;
        }
        if done {
            return Ok(d.records);
        }
    }
}

/// Write the dump to a file path with the GIL released.
#[pyfunction]
fn po_dump_path(
    py: Python<'_>,
    m: PyRef<'_, PyMachine>,
    path: std::path::PathBuf,
    format: &str,
) -> PyResult<u64> {
    let fmt = format_arg(py, format)?;
    let mm = m.get(py)?;
    mm.page_owner().map_err(Error::from)?;
    let r = py.detach(|| -> Result<Result<u64, String>, kmm_core::Error> {
        let f = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => return Ok(Err(format!("{}: {e}", path.display()))),
        };
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let n = mm.page_owner_dump(fmt, &mut w)?;
        if let Err(e) = w.flush() {
            return Ok(Err(format!("{}: {e}", path.display())));
        }
        Ok(Ok(n))
    });
    match r {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(msg)) => Err(PyOSError::new_err(msg)),
        Err(e) => Err(Error::from(e).into()),
    }
}

type StackArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u64>>);

/// (handles, nr_base_pages) of every stack holding pages, by handle.
#[pyfunction]
fn po_stacks<'py>(py: Python<'py>, m: PyRef<'py, PyMachine>) -> PyResult<StackArrays<'py>> {
    let mm = m.get(py)?;
    let v = py.detach(|| mm.page_owner_stacks()).map_err(Error::from)?;
    let h: Vec<u32> = v.iter().map(|s| s.handle).collect();
    let n: Vec<u64> = v.iter().map(|s| s.nr_base_pages).collect();
    Ok((h.into_pyarray(py), n.into_pyarray(py)))
}

#[pyfunction]
fn po_show_stacks(py: Python<'_>, m: PyRef<'_, PyMachine>, threshold: u64) -> PyResult<String> {
    let mm = m.get(py)?;
    Ok(py
        .detach(|| mm.page_owner_show_stacks(threshold))
        .map_err(Error::from)?)
}

#[pyfunction]
fn po_depot_stats<'py>(py: Python<'py>, m: PyRef<'py, PyMachine>) -> PyResult<Bound<'py, PyDict>> {
    let mm = m.get(py)?;
    let po = mm.page_owner().map_err(Error::from)?;
    let s = po.depot_stats();
    let d = PyDict::new(py);
    d.set_item("stacks", s.stacks)?;
    d.set_item("frames", s.frames)?;
    d.set_item("names", s.names)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("hits", s.hits)?;
    d.set_item("contexts", po.nr_contexts())?;
    d.set_item("context_overflows", po.ctx_overflows)?;
    Ok(d)
}

#[pyfunction]
fn po_memory<'py>(py: Python<'py>, m: PyRef<'py, PyMachine>) -> PyResult<Bound<'py, PyDict>> {
    let mm = m.get(py)?;
    let s = mm.page_owner_memory().map_err(Error::from)?;
    let d = PyDict::new(py);
    d.set_item("per_page", s.per_page)?;
    d.set_item("contexts", s.contexts)?;
    d.set_item("depot", s.depot)?;
    d.set_item("comms", s.comms)?;
    d.set_item("total", s.total)?;
    d.set_item("nr_pages", s.nr_pages)?;
    Ok(d)
}

/// The engine's aggregation by context, as columns.
#[pyfunction]
fn po_aggregate<'py>(py: Python<'py>, m: PyRef<'py, PyMachine>) -> PyResult<Bound<'py, PyDict>> {
    let mm = m.get(py)?;
    let v = py
        .detach(|| mm.page_owner_aggregate())
        .map_err(Error::from)?;
    let d = PyDict::new(py);
    macro_rules! col {
        ($name:literal, $f:expr) => {
            d.set_item($name, v.iter().map($f).collect::<Vec<_>>().into_pyarray(py))?;
        };
    }
    col!("stack", |c| c.stack);
    col!("order", |c| c.order);
    col!("gfp", |c| c.gfp);
    col!("pid", |c| c.pid);
    col!("tgid", |c| c.tgid);
    col!("blocks", |c| c.blocks);
    col!("pages", |c| c.pages);
    col!("first_ts", |c| c.first_ts_ns);
    Ok(d)
}

#[pyfunction]
fn po_frames(py: Python<'_>, m: PyRef<'_, PyMachine>, handle: u32) -> PyResult<Vec<PyFrame>> {
    let mm = m.get(py)?;
    let po = mm.page_owner().map_err(Error::from)?;
    if !po.valid_handle(handle) {
        return Err(PageOwnerError::new_err(format!(
            "stack handle {handle:#x} is not in this machine's stack depot"
        )));
    }
    let d = &po.depot;
    Ok(d.frames(handle)
        .iter()
        .map(|f| {
            (
                f.addr,
                d.name(f.symbol).to_string(),
                f.offset,
                f.size,
                d.module(f).map(|s| s.to_string()),
            )
        })
        .collect())
}

/// The owner of the block headed by `pfn`: (stack, order, gfp, pid, tgid, free_stack, ts_ns).
#[pyfunction]
fn po_record(
    py: Python<'_>,
    m: PyRef<'_, PyMachine>,
    pfn: i64,
) -> PyResult<(u32, u8, u32, u32, u32, u32, u64)> {
    if pfn < 0 {
        return Err(PfnError::new_err(format!("pfn {pfn} is negative")));
    }
    let mm = m.get(py)?;
    let r = mm.page_owner_record(pfn as u64).map_err(Error::from)?;
    let c = r.ctx;
    Ok((
        c.stack,
        c.order,
        c.gfp,
        c.pid,
        c.tgid,
        c.free_stack,
        r.ts_ns,
    ))
}

/// The streaming dump-text aggregator.
#[pyclass(name = "OwnerTextAggregator", module = "kmm._kmm")]
pub struct PyAggregator {
    inner: Aggregator,
}

#[pymethods]
impl PyAggregator {
    #[new]
    #[pyo3(signature = (lenient=false))]
    fn new(lenient: bool) -> Self {
        PyAggregator {
            inner: Aggregator::new(lenient),
        }
    }

    /// Feed bytes (GIL released while parsing).
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let a = &mut self.inner;
        let r =
            py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.feed(data))));
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e).into()),
            Err(_) => Err(KmmError::new_err(
                "internal error in the page_owner text aggregator",
            )),
        }
    }

    /// Read up to `max_bytes` from file descriptor `fd` (a file, pipe or
    /// terminal; never stat()ed) and feed them, GIL released. Returns the bytes
    /// read: 0 at end of input.
    #[pyo3(signature = (fd, max_bytes=4<<20))]
    fn feed_fd(&mut self, py: Python<'_>, fd: i32, max_bytes: usize) -> PyResult<usize> {
        use std::os::fd::FromRawFd;
        if fd < 0 {
            return Err(PyOSError::new_err(format!("bad file descriptor {fd}")));
        }
        let a = &mut self.inner;
        let max_bytes = max_bytes.clamp(4096, 256 << 20);
        let r = py.detach(
            || -> Result<Result<usize, std::io::Error>, kmm_core::Error> {
                // borrow the descriptor without taking ownership (it is not closed)
                let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
                let mut buf = vec![0u8; max_bytes];
                let mut got = 0;
                while got < max_bytes {
                    match f.read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => {
                            got += n;
                            // a pipe hands out what it has; parse once we have a good amount
                            if got >= (1 << 20) && got < max_bytes && n < (64 << 10) {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Ok(Err(e)),
                    }
                }
                a.feed(&buf[..got])?;
                Ok(Ok(got))
            },
        );
        match r {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(PyOSError::new_err(format!("reading fd {fd}: {e}"))),
            Err(e) => Err(Error::from(e).into()),
        }
    }

    /// End of input (a truncated last record is an error, or skipped when lenient).
    fn finish(&mut self, _py: Python<'_>) -> PyResult<()> {
        Ok(self.inner.finish().map_err(Error::from)?)
    }

    /// Distinct records as tuples: (text, header_len, order, mask, pid, tgid,
    /// comm, allocator, nr_frames, count, pages, first_ts).
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for g in self.inner.groups() {
            let text = String::from_utf8_lossy(&g.text);
            let header_len = String::from_utf8_lossy(&g.text[..g.header_len])
                .chars()
                .count();
            out.append((
                text.as_ref(),
                header_len,
                g.order,
                g.mask,
                g.pid,
                g.tgid,
                g.comm.as_deref(),
                allocator_name(g.allocator),
                g.nr_frames,
                g.count,
                g.pages,
                g.first_ts,
            ))?;
        }
        Ok(out)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("bytes", s.bytes)?;
        d.set_item("lines", s.lines)?;
        d.set_item("records", s.records)?;
        d.set_item("groups", s.groups)?;
        d.set_item("skipped", s.skipped)?;
        d.set_item("records_2005", s.records_2005)?;
        d.set_item("records_modern", s.records_modern)?;
        d.set_item("memory", self.inner.memory())?;
        Ok(d)
    }

    fn errors(&self) -> Vec<String> {
        self.inner.errors().to_vec()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(po_intern, m)?)?;
    m.add_function(wrap_pyfunction!(po_set_comm, m)?)?;
    m.add_function(wrap_pyfunction!(po_comm, m)?)?;
    m.add_function(wrap_pyfunction!(po_dump, m)?)?;
    m.add_function(wrap_pyfunction!(po_dump_path, m)?)?;
    m.add_function(wrap_pyfunction!(po_stacks, m)?)?;
    m.add_function(wrap_pyfunction!(po_show_stacks, m)?)?;
    m.add_function(wrap_pyfunction!(po_depot_stats, m)?)?;
    m.add_function(wrap_pyfunction!(po_memory, m)?)?;
    m.add_function(wrap_pyfunction!(po_aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(po_frames, m)?)?;
    m.add_function(wrap_pyfunction!(po_record, m)?)?;
    m.add_class::<PyAggregator>()?;
    Ok(())
}
