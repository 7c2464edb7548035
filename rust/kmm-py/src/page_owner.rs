//! Binding for page_owner: the `PageOwner` class of a machine (stack depot,
//! dumps, stack counts, the engine's aggregation and groups) and the streaming
//! dump-text aggregator. Conversion only: engine calls go through [`enter`],
//! files are opened and read by the Python side.

use crate::enter::{enter, guard};
use crate::errors;
use crate::machine::PyMachine;
use kmm_core::page_owner::print::DUMP_CHUNK;
use kmm_core::page_owner::{
    diff, parse_cull, parse_keys, AggStats, Aggregator, DumpFormat, Filter, OutFormat, OwnerDump,
    OwnerTable, Report, StacksFile,
};
use kmm_core::stackdepot::FrameRef;
use kmm_core::Error;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// A frame as Python sees it: (address, symbol, offset, size, module | None).
type PyFrame = (u64, String, u32, u32, Option<String>);
type StackArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u64>>);
/// A record's owner: (stack, order, gfp, pid, tgid, free_stack, ts_ns, last_migrate_reason).
type PyRecord = (u32, u8, u32, u32, u32, u32, u64, Option<&'static str>);

fn format_arg(format: &str) -> PyResult<DumpFormat> {
    Ok(DumpFormat::parse(format).map_err(errors::Error::from)?)
}

/// The groups `ids` of `t` as tuples: (text, header_len in characters,
/// order, mask, pid, tgid, comm, allocator, nr_frames, count, pages, first_ts).
fn group_rows<'py>(
    py: Python<'py>,
    t: &OwnerTable,
    ids: impl Iterator<Item = u32>,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for i in ids {
        let g = t.group(i);
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
        let mut first = true;
        loop {
            buf.clear();
            let done = enter(py, None, || {
                mm.page_owner_dump_fill(&mut d, &mut buf, DUMP_CHUNK)
            })?;
            if first || !buf.is_empty() {
                write_all(py, &file, &buf)?;
                first = false;
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

    /// The table a text aggregation of `dump(format)` gives, without the text.
    fn groups(&self, py: Python<'_>, format: &str) -> PyResult<PyOwnerTable> {
        let fmt = format_arg(format)?;
        let a = self.read(py, |m| m.page_owner_groups(fmt))?;
        Ok(PyOwnerTable::of(a))
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

    /// The owner of the block headed by `pfn`: (stack, order, gfp, pid, tgid,
    /// free_stack, ts_ns, last_migrate_reason or None).
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
            r.last_migrate_reason.map(|m| m.name()),
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
    new: &OwnerTable,
    old: Option<&OwnerTable>,
) -> PyResult<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(DUMP_CHUNK + 65536);
    let mut first = true;
    loop {
        buf.clear();
        let done = enter(py, None, || Ok(report.fill(new, old, &mut buf, DUMP_CHUNK)))?;
        if first || !buf.is_empty() {
            write_all(py, file, &buf)?;
            first = false;
        }
        if done {
            return Ok(());
        }
    }
}

/// Hand all of `buf` to `file.write`, again with the rest after a short
/// write (a raw file may take less than it is given).
///
/// The first chunk is written even when empty, so that a file that cannot
/// be written raises what its `write` raises (OSError, ValueError for a
/// closed file, ...) whatever the size of the output, an empty one
/// included. Whatever `write` raises goes to the caller unchanged. `None`
/// counts as everything written (the file-like objects that return nothing);
/// any other answer than a count of 1 to `len` bytes is a PageOwnerError.
fn write_all(py: Python<'_>, file: &Bound<'_, PyAny>, buf: &[u8]) -> PyResult<()> {
    let mut off = 0;
    loop {
        let rest = &buf[off..];
        let r = file.call_method1("write", (PyBytes::new(py, rest),))?;
        if r.is_none() {
            return Ok(());
        }
        let n = match r.extract::<i64>() {
            Ok(n) if (0..=rest.len() as i64).contains(&n) => n as usize,
            _ => {
                return Err(bad(format!(
                    "write() of {} bytes returned {}, not a byte count",
                    rest.len(),
                    r.repr().map_or_else(|_| "?".into(), |s| s.to_string())
                )))
            }
        };
        off += n;
        if off == buf.len() {
            return Ok(());
        }
        if n == 0 {
            return Err(bad(format!(
                "write() took none of {} bytes; the output is incomplete",
                rest.len()
            )));
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
    /// pipe, /proc, debugfs) on one; the GIL is released throughout, but
    /// for calling `progress(bytes_read_so_far)` about ten times a second.
    #[pyo3(signature = (fd, threads=2, progress=None))]
    fn feed_fd(
        &mut self,
        py: Python<'_>,
        fd: i32,
        threads: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        use std::os::unix::io::FromRawFd;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
        let file: &std::fs::File = &file;
        let (lenient, cull, filter) = (
            self.inner.lenient(),
            self.inner.table().cull(),
            self.inner.table().filter().clone(),
        );
        let read = |n: Option<&AtomicU64>| {
            kmm_core::page_owner::parse::aggregate_open_file(
                file, threads, lenient, cull, filter, n,
            )
        };
        // Ctrl-C on a blocked read: the read fails with EINTR; the pending
        // KeyboardInterrupt, not that error, is what the caller gets
        let Some(progress) = progress else {
            let agg = enter(py, None, || read(None));
            if agg.is_err() {
                py.check_signals()?;
            }
            self.inner = agg?;
            return Ok(());
        };
        let bytes = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let (agg, cb_err) = std::thread::scope(|sc| {
            let worker = sc.spawn(|| {
                let r = guard(None, || read(Some(&bytes)));
                done.store(true, Ordering::Release);
                r
            });
            let mut cb_err = None;
            while !done.load(Ordering::Acquire) {
                py.detach(|| {
                    for _ in 0..10 {
                        if done.load(Ordering::Acquire) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                });
                if cb_err.is_none() {
                    if let Err(e) = progress.call1(py, (bytes.load(Ordering::Relaxed),)) {
                        cb_err = Some(e);
                    }
                }
            }
            let agg = worker.join().unwrap_or_else(|_| {
                Err(crate::errors::KmmError::new_err(
                    "internal error in the kmm engine: the reading thread panicked",
                ))
            });
            (agg, cb_err)
        });
        if agg.is_err() {
            py.check_signals()?;
        }
        self.inner = agg?;
        match cb_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// End of input (a truncated last record is an error, or skipped when lenient).
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let a = &mut self.inner;
        enter(py, None, || a.finish())
    }

    /// Finish, and move the table of groups out (with the counters) into an
    /// `OwnerTable`; this aggregator is left empty.
    fn table(&mut self, py: Python<'_>) -> PyResult<PyOwnerTable> {
        self.finish(py)?;
        let fresh = Aggregator::with(
            self.inner.lenient(),
            self.inner.table().cull(),
            self.inner.table().filter().clone(),
        );
        let a = std::mem::replace(&mut self.inner, fresh);
        Ok(PyOwnerTable::of(a))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats(), self.inner.memory())
    }

    fn errors(&self) -> Vec<String> {
        self.inner.errors().to_vec()
    }
}

fn stats_dict<'py>(py: Python<'py>, s: &AggStats, memory: u64) -> PyResult<Bound<'py, PyDict>> {
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
    d.set_item("memory", memory)?;
    Ok(d)
}

fn bad(msg: String) -> PyErr {
    errors::Error::from(Error::PageOwner(msg)).into()
}

/// The groups of a dump or of a live machine, keyed on the `--cull` fields
/// (or whole records), with the counters of the aggregation that made them:
/// what the Python groups stand on and every page_owner_sort text is rendered from.
#[pyclass(name = "OwnerTable", module = "kmm._kmm", frozen)]
pub struct PyOwnerTable {
    table: OwnerTable,
    stats: AggStats,
    errors: Vec<String>,
}

impl PyOwnerTable {
    fn of(a: Aggregator) -> PyOwnerTable {
        let stats = a.stats();
        let errors = a.errors().to_vec();
        PyOwnerTable {
            table: a.into_table(),
            stats,
            errors,
        }
    }

    /// `ids` checked against the table, or every group in order of first appearance.
    fn ids(&self, ids: Option<Vec<u32>>) -> PyResult<Vec<u32>> {
        let n = self.table.len() as u32;
        match ids {
            None => Ok((0..n).collect()),
            Some(v) => match v.iter().find(|&&i| i >= n) {
                Some(i) => Err(bad(format!("group {i} is not in this table of {n} groups"))),
                None => Ok(v),
            },
        }
    }
}

#[pymethods]
impl PyOwnerTable {
    fn __len__(&self) -> usize {
        self.table.len()
    }

    /// Groups as tuples (see `group_rows`): `ids`, or all in order of first appearance.
    #[pyo3(signature = (ids=None))]
    fn groups<'py>(&self, py: Python<'py>, ids: Option<Vec<u32>>) -> PyResult<Bound<'py, PyList>> {
        let ids = self.ids(ids)?;
        group_rows(py, &self.table, ids.into_iter())
    }

    /// Group ids (`ids`, or all) sorted by `keys` ((name, descending) pairs),
    /// ties as page_owner_sort leaves them, then by first appearance.
    #[pyo3(signature = (keys, ids=None))]
    fn order(
        &self,
        py: Python<'_>,
        keys: Vec<(String, bool)>,
        ids: Option<Vec<u32>>,
    ) -> PyResult<Vec<u32>> {
        let k = parse_keys(&keys).map_err(errors::Error::from)?;
        let ids = self.ids(ids)?;
        let t = &self.table;
        enter(py, None, || Ok(t.sort_ids(&k, ids)))
    }

    /// The groups `ids` (in that order) folded into a new table culled on
    /// `cull` and filtered by `pids`/`tgids`/`names` (None: this table's).
    #[pyo3(signature = (ids, cull=None, pids=None, tgids=None, names=None))]
    fn refold(
        &self,
        py: Python<'_>,
        ids: Vec<u32>,
        cull: Option<Vec<String>>,
        pids: Option<Vec<i64>>,
        tgids: Option<Vec<i64>>,
        names: Option<Vec<String>>,
    ) -> PyResult<PyOwnerTable> {
        let ids = self.ids(Some(ids))?;
        let bits = match cull {
            Some(c) => parse_cull(&c).map_err(errors::Error::from)?,
            None => self.table.cull(),
        };
        let old = self.table.filter();
        let filter = Filter {
            pids: pids.or_else(|| old.pids.clone()),
            tgids: tgids.or_else(|| old.tgids.clone()),
            names: names.or_else(|| old.names.clone()),
        };
        let t = &self.table;
        let table = enter(py, None, || Ok(t.refold(&ids, bits, filter)))?;
        let mut stats = self.stats.clone();
        stats.groups = table.len() as u64;
        stats.filtered += table.filtered;
        Ok(PyOwnerTable {
            table,
            stats,
            errors: self.errors.clone(),
        })
    }

    /// Stream the groups `ids` (in that order) to `file` in `format` (sort,
    /// classic, folded, json), at most `top`, in chunks of about 1 MiB.
    #[pyo3(signature = (file, format, ids=None, top=None))]
    fn render(
        &self,
        py: Python<'_>,
        file: Bound<'_, PyAny>,
        format: &str,
        ids: Option<Vec<u32>>,
        top: Option<usize>,
    ) -> PyResult<()> {
        let f = out_format(format)?;
        let ids = self.ids(ids)?;
        let report = Report::groups(&self.table, f, ids, top, self.stats.clone());
        write_report(py, &file, report, &self.table, None)
    }

    /// Stream the leak diff from `old` to this table to `file` (format sort or json), at most `top` rows.
    #[pyo3(signature = (old, file, format, top=None))]
    fn diff(
        &self,
        py: Python<'_>,
        old: PyRef<'_, PyOwnerTable>,
        file: Bound<'_, PyAny>,
        format: &str,
        top: Option<usize>,
    ) -> PyResult<()> {
        let f = out_format(format)?;
        if !matches!(f, OutFormat::Sort | OutFormat::Json) {
            return Err(bad(format!("a diff prints as sort or json, not {format}")));
        }
        let (a, o) = (&self.table, &old.table);
        if a.cull() != o.cull() {
            return Err(bad(
                "both dumps of a diff must be culled on the same fields".into(),
            ));
        }
        let (so, sn) = (old.stats.clone(), self.stats.clone());
        let report = enter(py, None, || Ok(Report::diff(diff(o, a), f, top, so, sn)))?;
        write_report(py, &file, report, a, Some(o))
    }

    /// The counters of the aggregation (and `memory`: bytes the table holds).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.stats, self.table.memory())
    }

    /// Messages of the records skipped in lenient mode (the first few).
    fn errors(&self) -> Vec<String> {
        self.errors.clone()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPageOwner>()?;
    m.add_class::<PyAggregator>()?;
    m.add_class::<PyOwnerTable>()?;
    Ok(())
}
