//! Binding for page_owner: the `PageOwner` class of a machine (stack depot,
//! dumps, stack counts, the engine's aggregation and groups) and the streaming
//! dump-text aggregator. Conversion only: engine calls go through [`enter`],
//! files are opened and read by the Python side.

use crate::enter::enter;
use crate::errors;
use crate::machine::PyMachine;
use kmm_core::page_owner::print::DUMP_CHUNK;
use kmm_core::page_owner::{
    diff, parse_cull, parse_keys, Aggregator, DumpFormat, Filter, Group, OutFormat, OwnerDump,
    Report, StacksFile,
};
use kmm_core::stackdepot::FrameRef;
use kmm_core::Error;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// A frame as Python sees it: (address, symbol, offset, size, module | None).
type PyFrame = (u64, String, u32, u32, Option<String>);
type StackArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u64>>);
/// A record's owner: (stack, order, gfp, pid, tgid, free_stack, ts_ns).
type PyRecord = (u32, u8, u32, u32, u32, u32, u64);

fn format_arg(format: &str) -> PyResult<DumpFormat> {
    Ok(DumpFormat::parse(format).map_err(errors::Error::from)?)
}

/// Groups as tuples: (text, header_len in characters, order, mask, pid, tgid,
/// comm, allocator, nr_frames, count, pages, first_ts).
fn group_rows<'py>(py: Python<'py>, groups: &[Group]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for g in groups {
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
            g.allocator.name(),
            g.nr_frames,
            g.count,
            g.pages,
            g.first_ts,
        ))?;
    }
    Ok(out)
}

/// The page_owner records of a machine built with `page_owner=True`.
#[pyclass(name = "PageOwner", module = "kmm._kmm", frozen)]
pub struct PyPageOwner {
    machine: Py<PyMachine>,
}

impl PyPageOwner {
    /// Run a read-only engine call on the machine.
    fn read<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&kmm_core::Machine) -> kmm_core::Result<T> + Send,
    ) -> PyResult<T> {
        let m = self.machine.bind(py).borrow();
        let mm = m.get(py)?;
        enter(py, None, || f(mm))
    }

    /// Run a mutating engine call on the machine; a panic poisons it.
    fn write<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut kmm_core::Machine) -> kmm_core::Result<T> + Send,
    ) -> PyResult<T> {
        let mut m = self.machine.bind(py).borrow_mut();
        m.get_mut(py)?;
        let pm = &mut *m;
        let inner = &mut pm.inner;
        enter(py, Some(&mut pm.poisoned), || f(inner))
    }
}

#[pymethods]
impl PyPageOwner {
    /// The records of `machine` (a `PageOwnerError` if it has none).
    #[new]
    fn new(py: Python<'_>, machine: Py<PyMachine>) -> PyResult<Self> {
        let po = PyPageOwner { machine };
        po.read(py, |m| m.page_owner().map(|_| ()))?;
        Ok(po)
    }

    /// Intern a call chain, leaf first; returns its handle.
    fn intern(&self, py: Python<'_>, frames: Vec<PyFrame>) -> PyResult<u32> {
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
        self.write(py, |m| m.page_owner_intern(&refs))
    }

    fn set_comm(&self, py: Python<'_>, pid: u32, comm: &str) -> PyResult<()> {
        self.write(py, |m| m.page_owner_mut()?.set_comm(pid, comm))
    }

    fn comm(&self, py: Python<'_>, pid: u32, tgid: u32) -> PyResult<String> {
        self.read(py, |m| Ok(m.page_owner()?.comm(pid, tgid).to_string()))
    }

    /// Stream the dump into `file` (anything with a binary `write`), in chunks
    /// of about 1 MiB rendered with the GIL released; returns the records.
    fn dump(&self, py: Python<'_>, file: Bound<'_, PyAny>, format: &str) -> PyResult<u64> {
        let fmt = format_arg(format)?;
        let m = self.machine.bind(py).borrow();
        let mm = m.get(py)?;
        let mut d = OwnerDump::new(fmt);
        let mut buf: Vec<u8> = Vec::with_capacity(DUMP_CHUNK + 8192);
        loop {
            buf.clear();
            let done = enter(py, None, || {
                mm.page_owner_dump_fill(&mut d, &mut buf, DUMP_CHUNK)
            })?;
            if !buf.is_empty() {
                file.call_method1("write", (PyBytes::new(py, &buf),))?;
            }
            if done {
                return Ok(d.records);
            }
        }
    }

    /// (handles, nr_base_pages) of every stack holding pages, by handle.
    fn stacks<'py>(&self, py: Python<'py>) -> PyResult<StackArrays<'py>> {
        let v = self.read(py, |m| m.page_owner_stacks())?;
        let h: Vec<u32> = v.iter().map(|s| s.handle).collect();
        let n: Vec<u64> = v.iter().map(|s| s.nr_base_pages).collect();
        Ok((h.into_pyarray(py), n.into_pyarray(py)))
    }

    fn show_stacks(&self, py: Python<'_>, threshold: u64) -> PyResult<String> {
        self.read(py, |m| m.page_owner_show_stacks(threshold))
    }

    fn show_handles(&self, py: Python<'_>, threshold: u64) -> PyResult<String> {
        self.read(py, |m| {
            m.page_owner_stacks_file(threshold, StacksFile::Handles)
        })
    }

    fn show_stacks_handles(&self, py: Python<'_>, threshold: u64) -> PyResult<String> {
        self.read(py, |m| {
            m.page_owner_stacks_file(threshold, StacksFile::StacksHandles)
        })
    }

    fn depot_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, contexts, overflows) = self.read(py, |m| {
            let po = m.page_owner()?;
            Ok((po.depot_stats(), po.nr_contexts(), po.ctx_overflows))
        })?;
        let d = PyDict::new(py);
        d.set_item("stacks", s.stacks)?;
        d.set_item("frames", s.frames)?;
        d.set_item("names", s.names)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("hits", s.hits)?;
        d.set_item("contexts", contexts)?;
        d.set_item("context_overflows", overflows)?;
        Ok(d)
    }

    fn memory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.read(py, |m| m.page_owner_memory())?;
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
    fn aggregate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let v = self.read(py, |m| m.page_owner_aggregate())?;
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

    /// The groups a text aggregation of `dump(format)` finds, as rows (see
    /// `OwnerTextAggregator.groups`).
    fn groups<'py>(&self, py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyList>> {
        let fmt = format_arg(format)?;
        let g = self.read(py, |m| m.page_owner_groups(fmt))?;
        group_rows(py, &g)
    }

    fn frames(&self, py: Python<'_>, handle: u32) -> PyResult<Vec<PyFrame>> {
        self.read(py, |m| {
            let po = m.page_owner()?;
            if !po.valid_handle(handle) {
                return Err(Error::PageOwner(format!(
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
        })
    }

    /// The owner of the block headed by `pfn`: (stack, order, gfp, pid, tgid, free_stack, ts_ns).
    fn record(&self, py: Python<'_>, pfn: i64) -> PyResult<PyRecord> {
        let pfn = u64::try_from(pfn)
            .map_err(|_| errors::Error::from(Error::Pfn(format!("pfn {pfn} is negative"))))?;
        let r = self.read(py, |m| m.page_owner_record(pfn))?;
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
}

/// The streaming dump-text aggregator.
#[pyclass(name = "OwnerTextAggregator", module = "kmm._kmm")]
pub struct PyAggregator {
    inner: Aggregator,
}

fn out_format(format: &str) -> PyResult<OutFormat> {
    OutFormat::parse(format).ok_or_else(|| {
        errors::Error::from(Error::PageOwner(format!(
            "unknown output format {format:?} (expected sort, classic, folded or json)"
        )))
        .into()
    })
}

/// Write a report to `file` (anything with a binary `write`) in chunks of
/// about 1 MiB rendered with the GIL released.
fn write_report(
    py: Python<'_>,
    file: &Bound<'_, PyAny>,
    mut report: Report,
    new: &Aggregator,
    old: Option<&Aggregator>,
) -> PyResult<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(DUMP_CHUNK + 65536);
    loop {
        buf.clear();
        let done = enter(py, None, || {
            Ok(report.fill(new.table(), old.map(|a| a.table()), &mut buf, DUMP_CHUNK))
        })?;
        if !buf.is_empty() {
            file.call_method1("write", (PyBytes::new(py, &buf),))?;
        }
        if done {
            return Ok(());
        }
    }
}

#[pymethods]
impl PyAggregator {
    #[new]
    #[pyo3(signature = (lenient=false, *, cull=None, pids=None, tgids=None, names=None))]
    fn new(
        lenient: bool,
        cull: Option<Vec<String>>,
        pids: Option<Vec<i64>>,
        tgids: Option<Vec<i64>>,
        names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let bits = parse_cull(&cull.unwrap_or_default()).map_err(errors::Error::from)?;
        let filter = Filter { pids, tgids, names };
        Ok(PyAggregator {
            inner: Aggregator::with(lenient, bits, filter),
        })
    }

    /// Feed the next bytes of the input (GIL released while parsing).
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let a = &mut self.inner;
        enter(py, None, || a.feed(data))
    }

    /// Read descriptor `fd` (not closed) to its end and finish: a regular
    /// file of 32 MiB or more on up to `threads` threads, anything else (a
    /// pipe, /proc, debugfs) on one; the GIL is released throughout.
    #[pyo3(signature = (fd, threads=2))]
    fn feed_fd(&mut self, py: Python<'_>, fd: i32, threads: usize) -> PyResult<()> {
        use std::os::unix::io::FromRawFd;
        if self.inner.stats().bytes != 0 {
            return Err(errors::Error::from(Error::Parse(
                "feed_fd reads a whole input: this aggregator was fed already".into(),
            ))
            .into());
        }
        if fd < 0 {
            return Err(
                errors::Error::from(Error::Parse(format!("bad file descriptor {fd}"))).into(),
            );
        }
        // SAFETY: the caller owns `fd` and keeps it open for this call; ManuallyDrop never closes it.
        let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        let (lenient, cull, filter) = (
            self.inner.lenient(),
            self.inner.table().cull(),
            self.inner.table().filter().clone(),
        );
        let agg = enter(py, None, || {
            kmm_core::page_owner::parse::aggregate_open_file(&file, threads, lenient, cull, filter)
        });
        // Ctrl-C on a blocked read: the read fails with EINTR; the pending
        // KeyboardInterrupt, not that error, is what the caller gets
        if agg.is_err() {
            py.check_signals()?;
        }
        self.inner = agg?;
        Ok(())
    }

    /// End of input (a truncated last record is an error, or skipped when lenient).
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let a = &mut self.inner;
        enter(py, None, || a.finish())
    }

    /// Groups as tuples: (text, header_len, order, mask, pid, tgid,
    /// comm, allocator, nr_frames, count, pages, first_ts), in order of first appearance.
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let g = self.inner.groups();
        group_rows(py, &g)
    }

    /// Group ids sorted by `keys` ((name, descending) pairs), page_owner_sort's tie order.
    fn order(&self, py: Python<'_>, keys: Vec<(String, bool)>) -> PyResult<Vec<u32>> {
        let k = parse_keys(&keys).map_err(errors::Error::from)?;
        let a = &self.inner;
        enter(py, None, || Ok(a.table().order(&k)))
    }

    /// Stream the groups sorted by `keys` to `file` in `format` (sort, classic, folded, json), at most `top`.
    #[pyo3(signature = (file, format, keys, top=None))]
    fn render(
        &self,
        py: Python<'_>,
        file: Bound<'_, PyAny>,
        format: &str,
        keys: Vec<(String, bool)>,
        top: Option<usize>,
    ) -> PyResult<()> {
        let f = out_format(format)?;
        let k = parse_keys(&keys).map_err(errors::Error::from)?;
        let a = &self.inner;
        let report = enter(py, None, || {
            Ok(Report::groups(
                a.table(),
                f,
                a.table().order(&k),
                top,
                a.stats(),
            ))
        })?;
        write_report(py, &file, report, a, None)
    }

    /// Stream the leak diff from `old` to this dump to `file` (format sort or json), at most `top` rows.
    #[pyo3(signature = (old, file, format, top=None))]
    fn diff(
        &self,
        py: Python<'_>,
        old: PyRef<'_, PyAggregator>,
        file: Bound<'_, PyAny>,
        format: &str,
        top: Option<usize>,
    ) -> PyResult<()> {
        let f = out_format(format)?;
        if !matches!(f, OutFormat::Sort | OutFormat::Json) {
            return Err(errors::Error::from(Error::PageOwner(format!(
                "a diff prints as sort or json, not {format}"
            )))
            .into());
        }
        let (a, o) = (&self.inner, &old.inner);
        if a.table().cull() != o.table().cull() {
            return Err(errors::Error::from(Error::PageOwner(
                "both dumps of a diff must be culled on the same fields".into(),
            ))
            .into());
        }
        let report = enter(py, None, || {
            Ok(Report::diff(
                diff(o.table(), a.table()),
                f,
                top,
                o.stats(),
                a.stats(),
            ))
        })?;
        write_report(py, &file, report, a, Some(o))
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
        d.set_item("records_stacks", s.records_stacks)?;
        d.set_item("filtered", s.filtered)?;
        d.set_item("memory", self.inner.memory())?;
        Ok(d)
    }

    fn errors(&self) -> Vec<String> {
        self.inner.errors().to_vec()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPageOwner>()?;
    m.add_class::<PyAggregator>()?;
    Ok(())
}
