//! `_kmm.Machine`: conversion between Python and `kmm_core::Machine`.
//!
//! Arguments arrive converted to the engine's types by `kmm.Machine`; every rule
//! on them is the engine's (`MachineConfig::validate`, `Machine::validate_alloc`...).

use crate::enter::{enter, enter_polled, guard, poisoned};
use crate::errors::TraceError;
use kmm_core::AllocCtx;
use kmm_core::{Layout, Machine, MachineConfig, Policy, MAX_ORDER};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::cell::RefCell;

/// A `/proc/slabinfo` row: (name, active objects, objects, object size, objects per slab, slabs).
type SlabinfoRow = (&'static str, u64, u64, u32, u32, u64);
/// (per-op outcomes or None, counters) of a replay.
type ReplayResult<'py> = (Option<Bound<'py, PyArray1<i64>>>, Bound<'py, PyDict>);
/// (head pfns, orders, types) of the allocated blocks.
type BlockArrays<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<u8>>,
);

#[pyclass(name = "Machine", module = "kmm._kmm")]
pub struct PyMachine {
    pub(crate) inner: Machine,
    /// Set when an engine call panicked: the machine may be half-changed and
    /// every later call is refused.
    pub(crate) poisoned: bool,
}

impl PyMachine {
    /// The machine, unless a panic poisoned it (`py`: the caller holds the GIL).
    pub(crate) fn get(&self, _py: Python<'_>) -> PyResult<&Machine> {
        if self.poisoned {
            return Err(poisoned());
        }
        Ok(&self.inner)
    }
    /// [`PyMachine::get`], mutable.
    pub(crate) fn get_mut(&mut self, _py: Python<'_>) -> PyResult<&mut Machine> {
        if self.poisoned {
            return Err(poisoned());
        }
        Ok(&mut self.inner)
    }
}

/// Overwrite a default of [`MachineConfig::new`] with the value the caller gave.
fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *field = v;
    }
}

fn pairs_to_dict<'py>(
    py: Python<'py>,
    pairs: &[(&'static str, u64)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(*k, *v)?;
    }
    Ok(d)
}

#[pymethods]
impl PyMachine {
    /// Boot a machine; an argument left out (None) keeps `MachineConfig::new`'s default.
    #[new]
    #[pyo3(signature = (layout, mem_bytes, *, nodes=None, node_sizes=None, distance=None,
        allocator=None, kernel_image_bytes=None, pcp=None, pcp_batch=None, pcp_high=None, nr_cpus=None,
        pageblock_order=None, fallback_reserve=None, min_free_kbytes=None, reclaim=None, kswapd_pages_per_ms=None,
        swap=None, swappiness=None, mapped_rule=None,
        active_freeing=None, oom_kill=None, max_objects=None, page_owner=None, page_owner_free_stacks=None,
        compaction=None, extfrag_threshold=None, compaction_proactiveness=None,
        watermark_boost_factor=None, defrag_mode=None, freelist_hygiene=None,
        trace_extfrag=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        layout: &str,
        mem_bytes: u64,
        nodes: Option<usize>,
        node_sizes: Option<Vec<u64>>,
        distance: Option<Vec<Vec<u32>>>,
        allocator: Option<&str>,
        kernel_image_bytes: Option<u64>,
        pcp: Option<bool>,
        pcp_batch: Option<u32>,
        pcp_high: Option<u32>,
        nr_cpus: Option<u32>,
        pageblock_order: Option<u32>,
        fallback_reserve: Option<f64>,
        min_free_kbytes: Option<u64>,
        reclaim: Option<bool>,
        kswapd_pages_per_ms: Option<u64>,
        swap: Option<bool>,
        swappiness: Option<u32>,
        mapped_rule: Option<bool>,
        active_freeing: Option<bool>,
        oom_kill: Option<bool>,
        max_objects: Option<u32>,
        page_owner: Option<bool>,
        page_owner_free_stacks: Option<bool>,
        compaction: Option<bool>,
        extfrag_threshold: Option<u32>,
        compaction_proactiveness: Option<u32>,
        watermark_boost_factor: Option<u32>,
        defrag_mode: Option<bool>,
        freelist_hygiene: Option<bool>,
        trace_extfrag: Option<bool>,
    ) -> PyResult<Self> {
        let inner = enter(py, None, || {
            let mut cfg = MachineConfig::new(Layout::parse(layout)?, mem_bytes);
            if let Some(a) = allocator {
                cfg.policy = Policy::parse(a)?;
            }
            if let Some(sizes) = node_sizes {
                cfg.set_node_sizes(sizes);
            }
            set(&mut cfg.nodes, nodes);
            set(&mut cfg.distance, distance);
            set(&mut cfg.kernel_image_bytes, kernel_image_bytes);
            set(&mut cfg.pcp, pcp);
            set(&mut cfg.pcp_batch, pcp_batch);
            set(&mut cfg.pcp_high, pcp_high);
            set(&mut cfg.nr_cpus, nr_cpus);
            cfg.pageblock_order = pageblock_order;
            set(&mut cfg.fallback_reserve, fallback_reserve);
            set(&mut cfg.min_free_kbytes, min_free_kbytes);
            set(&mut cfg.reclaim, reclaim);
            set(&mut cfg.kswapd_pages_per_ms, kswapd_pages_per_ms);
            set(&mut cfg.swap, swap);
            set(&mut cfg.swappiness, swappiness);
            set(&mut cfg.mapped_rule, mapped_rule);
            set(&mut cfg.active_freeing, active_freeing);
            set(&mut cfg.oom_kill, oom_kill);
            set(&mut cfg.max_objects, max_objects);
            set(&mut cfg.page_owner, page_owner);
            set(&mut cfg.page_owner_free_stacks, page_owner_free_stacks);
            set(&mut cfg.compaction, compaction);
            set(&mut cfg.extfrag_threshold, extfrag_threshold);
            set(&mut cfg.compaction_proactiveness, compaction_proactiveness);
            set(&mut cfg.watermark_boost_factor, watermark_boost_factor);
            set(&mut cfg.defrag_mode, defrag_mode);
            set(&mut cfg.freelist_hygiene, freelist_hygiene);
            set(&mut cfg.trace_extfrag, trace_extfrag);
            Machine::new(cfg)
        })?;
        Ok(PyMachine {
            inner,
            poisoned: false,
        })
    }

    /// Allocate 2^order pages (`__alloc_pages`); None is an ordinary failure.
    #[pyo3(signature = (order, gfp, node=None, stack=0, pid=0, tgid=0))]
    #[allow(clippy::too_many_arguments)]
    fn alloc(
        &mut self,
        order: u32,
        gfp: u32,
        node: Option<usize>,
        stack: u32,
        pid: u32,
        tgid: u32,
    ) -> PyResult<Option<u64>> {
        let ctx = AllocCtx { stack, pid, tgid };
        guard(Some(&mut self.poisoned), || {
            self.inner.alloc_ctx(order, gfp, node, ctx)
        })
    }

    /// Free the block headed by `pfn` (`__free_pages`).
    #[pyo3(signature = (pfn, stack=0))]
    fn free(&mut self, pfn: u64, stack: u32) -> PyResult<()> {
        guard(Some(&mut self.poisoned), || {
            self.inner.free_stack(pfn, stack)
        })
    }

    /// Verify every allocator invariant (`InvariantError` names the first broken one).
    fn check(&mut self) -> PyResult<()> {
        guard(Some(&mut self.poisoned), || self.inner.check())
    }

    /// Per slab cache: (name, active objects, objects, object size, objects
    /// per slab, slabs), as `/proc/slabinfo` counts them (`mm::slab`).
    fn slabinfo(&self, py: Python<'_>) -> PyResult<Vec<SlabinfoRow>> {
        let m = self.get(py)?;
        guard(None, || {
            Ok(m.slabinfo()
                .into_iter()
                .map(|s| {
                    (
                        s.name,
                        s.active_objs,
                        s.num_objs,
                        s.objsize,
                        s.objperslab,
                        s.num_slabs,
                    )
                })
                .collect())
        })
    }

    /// The kept `mm_page_alloc_extfrag` events as ftrace `trace` text (None
    /// unless the machine was built with `trace_extfrag`).
    fn extfrag_trace(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let m = self.get(py)?;
        guard(None, || Ok(m.extfrag_trace()))
    }

    /// `/proc/buddyinfo` (`frag_show`).
    fn buddyinfo(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.get(py)?;
        guard(None, || Ok(m.buddyinfo()))
    }

    /// `/proc/pagetypeinfo` (`pagetypeinfo_show`).
    fn pagetypeinfo(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.get(py)?;
        guard(None, || Ok(m.pagetypeinfo()))
    }

    /// nr_free as a (nodes, 3, MAX_ORDER) uint64 array.
    fn free_area<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.get(py)?;
        let v = guard(None, || Ok(m.free_area()))?;
        let a = v.into_pyarray(py).reshape([m.nr_nodes, 3, MAX_ORDER])?;
        Ok(a.into_any())
    }

    /// nr_free per type as (nodes, 3, types, MAX_ORDER).
    fn free_area_by_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.get(py)?;
        let (v, nt) = guard(None, || Ok(m.free_area_by_type()))?;
        let a = v.into_pyarray(py).reshape([m.nr_nodes, 3, nt, MAX_ORDER])?;
        Ok(a.into_any())
    }

    /// The policy's free-list type names, in type order.
    fn type_names(&self, py: Python<'_>) -> PyResult<Vec<&'static str>> {
        let m = self.get(py)?;
        guard(None, || {
            Ok(m.list_types().into_iter().map(|(_, n)| n).collect())
        })
    }

    /// One code per pfn (free, pcp, reserved, or 3 + the owner's type).
    fn page_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let m = self.get(py)?;
        Ok(enter(py, None, || Ok(m.page_map()))?.into_pyarray(py))
    }

    /// Per zone: span, free pages, watermarks, lowmem_reserve, LRU size.
    fn zone_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let m = self.get(py)?;
        let out = PyList::empty(py);
        for z in guard(None, || Ok(m.zone_stats()))? {
            let d = PyDict::new(py);
            d.set_item("node", z.node)?;
            d.set_item("zone", z.zone)?;
            d.set_item("start_pfn", z.start_pfn)?;
            d.set_item("spanned", z.spanned)?;
            d.set_item("present", z.present)?;
            d.set_item("managed", z.managed)?;
            d.set_item("free", z.free)?;
            d.set_item("pcp", z.pcp)?;
            d.set_item("min", z.min)?;
            d.set_item("low", z.low)?;
            d.set_item("high", z.high)?;
            d.set_item("lowmem_reserve", z.lowmem_reserve.to_vec())?;
            d.set_item("lru_pages", z.lru_pages)?;
            d.set_item("nr_active", z.nr_active)?;
            d.set_item("nr_inactive", z.nr_inactive)?;
            d.set_item("pgscan", z.pgscan)?;
            d.set_item("nr_mapped", z.nr_mapped)?;
            d.set_item("prev_priority", z.prev_priority)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Zone type names of the layout, lowest first.
    fn zone_names(&self, py: Python<'_>) -> PyResult<Vec<&'static str>> {
        Ok(self.get(py)?.layout.zone_names().to_vec())
    }

    /// Replay trace bytes (the records of `kmm.TRACE_DTYPE`, checked by the engine).
    #[pyo3(signature = (trace, outcomes=true))]
    fn replay<'py>(
        &mut self,
        py: Python<'py>,
        trace: PyReadonlyArray1<'py, u8>,
        outcomes: bool,
    ) -> PyResult<ReplayResult<'py>> {
        // validation reads the caller's buffer once, with the GIL held, into
        // the program the engine runs: whatever other threads do to the array
        // afterwards, what runs is what was checked
        let bytes = trace
            .as_slice()
            .map_err(|_| TraceError::new_err("trace must be C-contiguous"))?;
        let pending: RefCell<Option<PyErr>> = RefCell::new(None);
        let poll = || match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                *pending.borrow_mut() = Some(e);
                true
            }
        };
        let inner = &mut self.inner;
        let checked = guard(Some(&mut self.poisoned), move || {
            inner.check_trace(bytes, outcomes, &poll)
        })?;
        let (res, signal) = match checked {
            Some(c) => enter_polled(py, Some(&mut self.poisoned), |poll| Ok(c.run(poll)))?,
            None => (
                kmm_core::replay::ReplayResult::stopped(outcomes),
                pending.into_inner(),
            ),
        };
        let d = pairs_to_dict(py, &res.counters)?;
        d.set_item("ops", res.ops)?;
        let out = (res.outcomes.map(|o| o.into_pyarray(py)), d);
        match signal {
            None => Ok(out),
            Some(e) => {
                // Ctrl-C: the first `ops` records ran; what they did rides on the exception
                e.value(py).setattr("replay", out)?;
                Err(e)
            }
        }
    }

    /// Return every per-cpu page to the buddy lists (`drain_all_pages`); pages moved.
    fn drain_pcp(&mut self) -> PyResult<u64> {
        guard(Some(&mut self.poisoned), || Ok(self.inner.drain_pcp()))
    }

    /// Compact every zone (`order` -1, `/proc/sys/vm/compact_memory`) or each
    /// zone until it has a free block of `order` (`Machine::compact`); pages migrated.
    #[pyo3(signature = (order=-1))]
    fn compact(&mut self, py: Python<'_>, order: i32) -> PyResult<u64> {
        enter(py, Some(&mut self.poisoned), || self.inner.compact(order))
    }

    /// Advance simulated time by `ns` nanoseconds, kswapd working meanwhile (`Machine::tick`).
    fn advance(&mut self, ns: u64) -> PyResult<()> {
        guard(Some(&mut self.poisoned), || self.inner.tick(ns))
    }

    /// Aligned blocks of `order` that could be had (`Machine::highorder_ceiling`).
    fn highorder_ceiling(&self, py: Python<'_>, order: u32, gfp: u32) -> PyResult<u64> {
        let m = self.get(py)?;
        enter(py, None, || m.highorder_ceiling(order, gfp))
    }

    /// The perfect-packing limit for `order` (`Machine::highorder_limit`).
    fn highorder_limit(&self, py: Python<'_>, order: u32, gfp: u32) -> PyResult<u64> {
        let m = self.get(py)?;
        enter(py, None, || m.highorder_limit(order, gfp))
    }

    /// The event counters since boot.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_to_dict(py, &self.get(py)?.counters.as_pairs())
    }

    /// (head pfns, orders, types) of every allocated block.
    fn allocated_blocks<'py>(&self, py: Python<'py>) -> PyResult<BlockArrays<'py>> {
        let m = self.get(py)?;
        let v = enter(py, None, || Ok(m.allocated_blocks()))?;
        let pfns: Vec<u32> = v.iter().map(|x| x.0).collect();
        let orders: Vec<u8> = v.iter().map(|x| x.1).collect();
        let types: Vec<u8> = v.iter().map(|x| x.2).collect();
        Ok((
            pfns.into_pyarray(py),
            orders.into_pyarray(py),
            types.into_pyarray(py),
        ))
    }

    /// (pfn, order) the trace object holds, or None.
    fn object_block(&self, py: Python<'_>, obj: u32) -> PyResult<Option<(u32, u32)>> {
        let m = self.get(py)?;
        guard(None, || Ok(m.object_block(obj)))
    }

    #[getter]
    fn nr_pages(&self) -> u64 {
        self.inner.nr_pages
    }
    #[getter]
    fn nr_nodes(&self) -> usize {
        self.inner.nr_nodes
    }
    #[getter]
    fn layout(&self) -> &'static str {
        self.inner.layout.name()
    }
    #[getter]
    fn allocator(&self) -> &'static str {
        self.inner.policy.name()
    }
    #[getter]
    fn pageblock_order(&self) -> u32 {
        self.inner.block_order
    }
    #[getter]
    fn now_ns(&self) -> u64 {
        self.inner.now_ns
    }
    #[getter]
    fn max_objects(&self) -> u32 {
        self.inner.cfg.max_objects
    }
    #[getter]
    fn active_freeing(&self) -> bool {
        self.inner.cfg.active_freeing
    }
    #[getter]
    fn pcp_enabled(&self) -> bool {
        self.inner.cfg.pcp
    }
    #[getter]
    fn compaction(&self) -> bool {
        self.inner.cfg.compaction
    }
}

/// Bytes of a memory size such as `"1536MiB"` (`kmm_core::parse_mem`).
#[pyfunction]
fn parse_mem(text: &str) -> PyResult<u64> {
    guard(None, || kmm_core::parse_mem(text))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMachine>()?;
    m.add_function(wrap_pyfunction!(parse_mem, m)?)?;
    m.add("LAYOUTS", Layout::ALL.map(Layout::name).to_vec())?;
    m.add("ALLOCATORS", Policy::ALL.map(Policy::name).to_vec())?;
    let caches: Vec<(&str, u32, bool, u32)> = kmm_core::mm::slab::CACHES
        .iter()
        .map(|c| {
            (
                c.name,
                c.size,
                c.reclaimable,
                kmm_core::mm::slab::objs_per_slab(c.size),
            )
        })
        .collect();
    m.add("SLAB_CACHES", caches)?;
    Ok(())
}
