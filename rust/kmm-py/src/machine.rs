//! `_kmm.Machine`: conversion between Python and `kmm_core::Machine`.

use crate::{core_err, guard, kmm_err, pairs_to_dict};
use kmm_core::{Layout, Machine, MachineConfig, Policy, MAX_ORDER};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

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
    pub(crate) poisoned: bool,
}

impl PyMachine {
    pub(crate) fn get(&self, py: Python<'_>) -> PyResult<&Machine> {
        if self.poisoned {
            return Err(kmm_err(
                py,
                "KmmError",
                "machine is unusable after an internal engine error",
            ));
        }
        Ok(&self.inner)
    }
    pub(crate) fn get_mut(&mut self, py: Python<'_>) -> PyResult<&mut Machine> {
        if self.poisoned {
            return Err(kmm_err(
                py,
                "KmmError",
                "machine is unusable after an internal engine error",
            ));
        }
        Ok(&mut self.inner)
    }
    /// Run a mutating engine call; a panic poisons the machine.
    pub(crate) fn run<T>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut Machine) -> kmm_core::Result<T>,
    ) -> PyResult<T> {
        let m = self.get_mut(py)?;
        match guard(py, || f(m)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(core_err(py, e)),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }
}

fn order_arg(py: Python<'_>, order: i64) -> PyResult<u32> {
    if !(0..MAX_ORDER as i64).contains(&order) {
        return Err(kmm_err(
            py,
            "OrderError",
            format!("order {order} is out of range 0..{}", MAX_ORDER - 1),
        ));
    }
    Ok(order as u32)
}

fn pfn_arg(py: Python<'_>, pfn: i64) -> PyResult<u64> {
    if pfn < 0 {
        return Err(kmm_err(py, "PfnError", format!("pfn {pfn} is negative")));
    }
    Ok(pfn as u64)
}

#[pymethods]
impl PyMachine {
    #[new]
    #[pyo3(signature = (layout, mem_bytes, nodes=1, node_sizes=None, distance=None, allocator="vanilla",
        seed=0, kernel_image_bytes=4<<20, pcp=true, pcp_batch=0, pcp_high=0, pageblock_order=None,
        fallback_reserve=0.0, reclaim=true, active_freeing=false, max_objects=1<<26,
        page_owner=false, page_owner_free_stacks=false, kswapd_pages_per_ms=32))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        layout: &str,
        mem_bytes: u64,
        nodes: usize,
        node_sizes: Option<Vec<u64>>,
        distance: Option<Vec<Vec<u32>>>,
        allocator: &str,
        seed: u64,
        kernel_image_bytes: u64,
        pcp: bool,
        pcp_batch: u32,
        pcp_high: u32,
        pageblock_order: Option<i64>,
        fallback_reserve: f64,
        reclaim: bool,
        active_freeing: bool,
        max_objects: u32,
        page_owner: bool,
        page_owner_free_stacks: bool,
        kswapd_pages_per_ms: u64,
    ) -> PyResult<Self> {
        let layout = Layout::parse(layout).map_err(|e| core_err(py, e))?;
        let mut cfg = MachineConfig::new(layout, mem_bytes);
        cfg.nodes = nodes;
        cfg.node_sizes = node_sizes.unwrap_or_default();
        cfg.distance = distance.unwrap_or_default();
        cfg.policy = Policy::parse(allocator).map_err(|e| core_err(py, e))?;
        cfg.seed = seed;
        cfg.kernel_image_bytes = kernel_image_bytes;
        cfg.pcp = pcp;
        cfg.pcp_batch = pcp_batch;
        cfg.pcp_high = pcp_high;
        if let Some(pb) = pageblock_order {
            if !(0..MAX_ORDER as i64).contains(&pb) {
                return Err(kmm_err(
                    py,
                    "ConfigError",
                    format!(
                        "pageblock_order {pb} must be in 0..MAX_ORDER-1 = {}",
                        MAX_ORDER - 1
                    ),
                ));
            }
            if cfg.policy != Policy::Mobility {
                return Err(kmm_err(
                    py,
                    "ConfigError",
                    "pageblock_order applies to allocator=\"mobility\" only",
                ));
            }
            cfg.pageblock_order = Some(pb as u32);
        }
        cfg.fallback_reserve = fallback_reserve;
        if fallback_reserve != 0.0 && cfg.policy != Policy::AntiFrag {
            return Err(kmm_err(
                py,
                "ConfigError",
                "fallback_reserve applies to allocator=\"antifrag\" only",
            ));
        }
        cfg.reclaim = reclaim;
        cfg.active_freeing = active_freeing;
        cfg.max_objects = max_objects;
        cfg.page_owner = page_owner;
        cfg.page_owner_free_stacks = page_owner_free_stacks;
        if kswapd_pages_per_ms > 1 << 20 {
            return Err(kmm_err(
                py,
                "ConfigError",
                "kswapd_pages_per_ms must be at most 2^20",
            ));
        }
        let r = py.detach(|| std::panic::catch_unwind(|| Machine::new(cfg)));
        let mut m = match r {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(core_err(py, e)),
            Err(_) => {
                return Err(kmm_err(
                    py,
                    "KmmError",
                    "internal error while booting the machine",
                ))
            }
        };
        m.kswapd_pages_per_ms = kswapd_pages_per_ms;
        Ok(PyMachine {
            inner: m,
            poisoned: false,
        })
    }

    #[pyo3(signature = (order, gfp, node=None, stack=0, pid=0, tgid=0))]
    #[allow(clippy::too_many_arguments)]
    fn alloc(
        &mut self,
        py: Python<'_>,
        order: i64,
        gfp: u32,
        node: Option<usize>,
        stack: u32,
        pid: u32,
        tgid: u32,
    ) -> PyResult<Option<u64>> {
        let order = order_arg(py, order)?;
        let ctx = kmm_core::machine::AllocCtx { stack, pid, tgid };
        self.run(py, |m| m.alloc_ctx(order, gfp, node, ctx))
    }

    #[pyo3(signature = (pfn, stack=0))]
    fn free(&mut self, py: Python<'_>, pfn: i64, stack: u32) -> PyResult<()> {
        let pfn = pfn_arg(py, pfn)?;
        self.run(py, |m| m.free_stack(pfn, stack))
    }

    fn check(&mut self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |m| m.check())
    }

    fn buddyinfo(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.get(py)?.buddyinfo())
    }

    fn pagetypeinfo(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.get(py)?.pagetypeinfo())
    }

    /// nr_free as a (nodes, 3, MAX_ORDER) uint64 array.
    fn free_area<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.get(py)?;
        let v = m.free_area();
        let a = v.into_pyarray(py).reshape([m.nr_nodes, 3, MAX_ORDER])?;
        Ok(a.into_any())
    }

    /// nr_free per type as (nodes, 3, types, MAX_ORDER).
    fn free_area_by_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.get(py)?;
        let (v, nt) = m.free_area_by_type();
        let a = v.into_pyarray(py).reshape([m.nr_nodes, 3, nt, MAX_ORDER])?;
        Ok(a.into_any())
    }

    fn type_names(&self, py: Python<'_>) -> PyResult<Vec<&'static str>> {
        Ok(self
            .get(py)?
            .list_types()
            .into_iter()
            .map(|(_, n)| n)
            .collect())
    }

    fn page_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let m = self.get(py)?;
        let v = py.detach(|| m.page_map());
        Ok(v.into_pyarray(py))
    }

    fn zone_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let m = self.get(py)?;
        let out = PyList::empty(py);
        for z in m.zone_stats() {
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
            out.append(d)?;
        }
        Ok(out)
    }

    fn zone_names(&self, py: Python<'_>) -> PyResult<Vec<&'static str>> {
        Ok(self.get(py)?.layout.zone_names().to_vec())
    }

    /// Replay trace bytes (validated by the Python layer's dtype check).
    #[pyo3(signature = (trace, outcomes=true))]
    fn replay<'py>(
        &mut self,
        py: Python<'py>,
        trace: PyReadonlyArray1<'py, u8>,
        outcomes: bool,
    ) -> PyResult<ReplayResult<'py>> {
        if self.poisoned {
            return Err(kmm_err(
                py,
                "KmmError",
                "machine is unusable after an internal engine error",
            ));
        }
        let bytes = trace
            .as_slice()
            .map_err(|_| kmm_err(py, "TraceError", "trace must be C-contiguous"))?;
        let m = &mut self.inner;
        let r = py.detach(|| catch(|| m.replay_bytes(bytes, outcomes)));
        let res = match r {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(core_err(py, e)),
            Err(msg) => {
                self.poisoned = true;
                return Err(kmm_err(
                    py,
                    "KmmError",
                    format!("internal error in replay: {msg}"),
                ));
            }
        };
        let d = pairs_to_dict(py, &res.counters)?;
        d.set_item("ops", res.ops)?;
        Ok((res.outcomes.map(|o| o.into_pyarray(py)), d))
    }

    fn drain_pcp(&mut self, py: Python<'_>) -> PyResult<u64> {
        self.run(py, |m| Ok(m.drain_pcp()))
    }

    fn advance(&mut self, py: Python<'_>, ns: i64) -> PyResult<()> {
        if !(0..=3_600_000_000_000i64).contains(&ns) {
            return Err(kmm_err(
                py,
                "ConfigError",
                format!("cannot advance time by {ns} ns (0..1 hour)"),
            ));
        }
        self.run(py, |m| {
            m.advance(ns as u64);
            Ok(())
        })
    }

    #[pyo3(signature = (order, gfp))]
    fn highorder_ceiling(&self, py: Python<'_>, order: i64, gfp: u32) -> PyResult<u64> {
        let order = order_arg(py, order)?;
        let m = self.get(py)?;
        py.detach(|| m.highorder_ceiling(order, gfp))
            .map_err(|e| core_err(py, e))
    }

    #[pyo3(signature = (order, gfp))]
    fn highorder_limit(&self, py: Python<'_>, order: i64, gfp: u32) -> PyResult<u64> {
        let order = order_arg(py, order)?;
        let m = self.get(py)?;
        py.detach(|| m.highorder_limit(order, gfp))
            .map_err(|e| core_err(py, e))
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_to_dict(py, &self.get(py)?.counters.as_pairs())
    }

    /// (head pfns, orders, types) of every allocated block.
    fn allocated_blocks<'py>(&self, py: Python<'py>) -> PyResult<BlockArrays<'py>> {
        let m = self.get(py)?;
        let v = py.detach(|| m.allocated_blocks());
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
        Ok(self.get(py)?.object_block(obj))
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
}

fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

use std::panic::AssertUnwindSafe;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMachine>()?;
    Ok(())
}
