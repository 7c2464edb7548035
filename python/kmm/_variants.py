"""Running a benchmark's variants on one generated load: the load is generated
once, in this process, while the variants replay it in worker processes (up
to the cores), one progress bar fed by all of them.

``produce(store)`` generates the load, handing each chunk of trace to
``store.put(name, chunk)`` in order; it runs once and returns what the caller
wants back (its statistics). ``fn(name, cfg, chunks, tick, *extra)`` runs one
variant (a module-level function, so it pickles): ``chunks.get(name)`` is the
chunk of that name and ``chunks.group(prefix)`` every chunk named
``prefix...`` in order, each waiting until it has been generated; ``tick`` is
None or a callable a variant calls once per unit of progress. With worker
processes the chunks go to one file in shared memory (``/dev/shm`` where there
is one), written once and read by every worker as it arrives, so replay
overlaps generation and no worker generates or copies the load again.
Results come back in the order of ``names``, whatever the number of processes.

:func:`check_config` is the validation the benchmarks' config classes share.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import gfp as _gfp
from ._args import float_arg, int_arg
from .errors import BenchmarkError

_SHM = "/dev/shm"
#: /dev/shm is used only with this much free: a container's is often 64 MiB,
#: and the default run's load alone is about 400 MB
_SHM_MIN_FREE = 4 << 30


def _load_dir() -> str | None:
    """Where the shared load file goes: /dev/shm when it is writable and
    roomy, else the default temporary directory (its page cache serves as well)."""
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return None
    if not os.access(_SHM, os.W_OK) or st.f_bavail * st.f_frsize < _SHM_MIN_FREE:
        return None
    return _SHM


def _meminfo(field: str) -> int | None:
    """A field of /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _mem_available() -> int | None:
    """MemAvailable, in bytes."""
    return _meminfo("MemAvailable")


def _in_memory(directory: str | None) -> bool:
    """Whether bytes kept in ``directory`` (None: this process) are memory."""
    return directory is None or directory.startswith(_SHM) or _is_tmpfs(directory)


def _budget(directory: str | None) -> int | None:
    """How many bytes of trace a load may keep (in ``directory``'s file
    system, or in this process's memory when None) before the machine would
    run short: the room there, bounded by MemAvailable when the bytes live in
    memory (no directory, or a tmpfs such as /dev/shm), less a quarter of
    MemAvailable (at least 2 GiB) left for the variants' machines."""
    room = None
    if directory is not None:
        try:
            st = os.statvfs(directory)
            room = st.f_bavail * st.f_frsize
        except OSError:
            return None
    avail = _mem_available()
    if _in_memory(directory) and avail is not None:
        room = avail if room is None else min(room, avail)
    if room is None:
        return None
    reserve = max(2 << 30, (avail or 0) // 4)
    return max(0, room - reserve)


def _floor() -> int:
    """MemAvailable below which a load kept in memory is refused while it is
    generated (the generator and the variants' machines grow meanwhile):
    a tenth of MemTotal, at least 1 GiB."""
    return max(1 << 30, (_meminfo("MemTotal") or 0) // 10)


def _is_tmpfs(directory: str) -> bool:
    """Whether ``directory`` is on a tmpfs (its bytes are memory)."""
    try:
        with open("/proc/mounts") as f:
            best, fstype = "", ""
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and (directory == parts[1] or directory.startswith(parts[1].rstrip("/") + "/")):
                    if len(parts[1]) > len(best):
                        best, fstype = parts[1], parts[2]
            return fstype == "tmpfs"
    except OSError:
        return False


class _Budget:
    """Refuses a load that outgrows the room it is kept in, before the machine
    runs out of memory (a 64 GiB machine's load is tens of GB of records): its
    bytes against the room there was at the start (:func:`_budget`), and, when
    they are memory, MemAvailable now against :func:`_floor`."""

    def __init__(self, directory: str | None) -> None:
        self._limit = _budget(directory)
        self._memory = _in_memory(directory)
        self._floor = _floor() if self._memory else 0
        self._where = directory or "this process's memory"
        self.used = 0

    def take(self, nbytes: int) -> None:
        short = None
        if self._limit is not None and self.used + nbytes > self._limit:
            short = f"more than the {self._limit / 1e9:.1f} GB there was room for ({self._where})"
        elif self._memory:
            avail = _mem_available()
            if avail is not None and avail - nbytes < self._floor:
                short = (
                    f"and the host would have {max(0, avail - nbytes) / 1e9:.1f} GB of memory left, less than "
                    f"the {self._floor / 1e9:.1f} GB kept free ({self._where})"
                )
        if short is not None:
            raise BenchmarkError(
                f"the generated load has reached {(self.used + nbytes) / 1e9:.1f} GB of trace records, {short}; "
                "a load this size needs a host with more memory: try a smaller --mem or --builds"
            )
        self.used += nbytes


class Chunks:
    """The chunks of one generated load, by name, in the order they were put."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, Any]] = []
        self._index: dict[str, int] = {}

    def _more(self) -> bool:
        """Wait for one more entry; False once the load is complete."""
        return False

    def _load(self, payload: Any) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - interface

    def _add(self, name: str, payload: Any) -> None:
        self._index[name] = len(self._entries)
        self._entries.append((name, payload))

    def _at(self, k: int) -> tuple[str, Any] | None:
        while len(self._entries) <= k:
            if not self._more():
                return None
        return self._entries[k]

    def get(self, name: str) -> np.ndarray:
        """The chunk ``name`` (waiting for it to be generated)."""
        while name not in self._index:
            if not self._more():
                raise BenchmarkError(f"the generated load has no chunk {name!r}")
        return self._load(self._entries[self._index[name]][1])

    def group(self, prefix: str) -> Iterator[np.ndarray]:
        """The chunks whose names start with ``prefix``, in order: the first
        run of them (ending at the next chunk of another name, or the load's end)."""
        k = 0
        started = False
        while (e := self._at(k)) is not None:
            if e[0].startswith(prefix):
                started = True
                yield self._load(e[1])
            elif started:
                return
            k += 1


class LocalChunks(Chunks):
    """The chunks kept in this process (no workers)."""

    def __init__(self) -> None:
        super().__init__()
        self._budget = _Budget(None)

    def put(self, name: str, chunk: np.ndarray) -> None:
        self._budget.take(chunk.nbytes)
        self._add(name, chunk)

    def _load(self, payload: Any) -> np.ndarray:
        return payload


class _Writer:
    """Appends chunks to the shared file and tells every worker where each is."""

    def __init__(self, path: Path, conns: list[Any]) -> None:
        self._f: BinaryIO = open(path, "wb")
        self._conns = conns
        self._off = 0
        self._budget = _Budget(str(path.parent))

    def put(self, name: str, chunk: np.ndarray) -> None:
        data = np.ascontiguousarray(chunk).view(np.uint8)
        self._budget.take(data.shape[0])
        self._f.write(memoryview(data))
        self._f.flush()  # in the page cache before any worker hears of it
        entry = (name, self._off, chunk.shape[0])
        self._off += data.shape[0]
        for c in list(self._conns):
            try:
                c.send(entry)
            except OSError:  # that worker has gone: its error is on the queue
                self._conns.remove(c)

    def close(self) -> None:
        self._f.close()
        for c in self._conns:
            try:
                c.send(None)  # the load is complete
                c.close()
            except OSError:  # that worker has gone already
                pass


class _Reader(Chunks):
    """A worker's view of the shared file: entries arrive on a pipe."""

    def __init__(self, path: str, conn: Any) -> None:
        super().__init__()
        self._f = open(path, "rb")
        self._conn = conn
        self._done = False

    def _more(self) -> bool:
        if self._done:
            return False
        try:
            e = self._conn.recv()
        except EOFError:
            e = None
        if e is None:
            self._done = True
            return False
        self._add(e[0], (e[1], e[2]))
        return True

    def _load(self, payload: Any) -> np.ndarray:
        from .trace import TRACE_DTYPE

        off, n = payload
        self._f.seek(off)
        return np.fromfile(self._f, dtype=TRACE_DTYPE, count=n)


def _worker(
    fn: Callable[..., Any], names: list[str], cfg: Any, path: str, conn: Any, q: Any, ticks: bool,
    extra: tuple[Any, ...],
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's terminate() stops it at once
    chunks = _Reader(path, conn)
    tick = (lambda: q.put(("tick",))) if ticks else None
    for n in names:
        try:
            r = fn(n, cfg, chunks, tick, *extra)
        except BaseException as e:  # sent to the parent, which raises it
            try:
                pickle.dumps(e)
            except Exception:
                e = BenchmarkError(f"variant {n}: {type(e).__name__}: {e}")
            q.put(("error", n, e))
            return
        q.put(("done", n, r))


def run_variants(
    fn: Callable[..., Any],
    names: Sequence[str],
    cfg: Any,
    produce: Callable[[Any], Any],
    *extra: Any,
    processes: int | None = None,
    bar: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """``(produce(store), {name: fn(name, cfg, chunks, tick, *extra)})`` for every variant."""
    nproc = max(1, min(processes or os.cpu_count() or 1, len(names)))
    if nproc == 1:
        local = LocalChunks()
        gen = produce(local)
        return gen, {n: fn(n, cfg, local, (lambda: bar.update(1)) if bar else None, *extra) for n in names}
    ctx = mp.get_context("spawn" if os.name != "posix" else "fork")
    # SIGTERM ends the run through the finally blocks below, as Ctrl-C does:
    # the workers are stopped and the shared load file (memory, in /dev/shm,
    # until reboot otherwise) is removed. This process returns to Python at
    # every chunk it generates and every 0.2 s while it waits, so the handler
    # runs promptly; the workers get the default action back.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run_workers(fn, names, cfg, produce, extra, nproc, ctx, bar)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_workers(
    fn: Callable[..., Any], names: Sequence[str], cfg: Any, produce: Callable[[Any], Any], extra: tuple[Any, ...],
    nproc: int, ctx: Any, bar: Any,
) -> tuple[Any, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="kmm-load-", dir=_load_dir()) as tmp:
        path = Path(tmp) / "load.trace"
        path.touch()
        q = ctx.Queue()
        procs, conns = [], []
        try:
            # the workers start first (this process is small now) and replay
            # each chunk as soon as it is written
            for i in range(nproc):
                r, w = ctx.Pipe(duplex=False)
                p = ctx.Process(
                    target=_worker,
                    args=(fn, list(names[i::nproc]), cfg, str(path), r, q, bar is not None, extra),
                    daemon=True,
                )
                p.start()
                r.close()
                procs.append(p)
                conns.append(w)
            writer = _Writer(path, conns)
            try:
                gen = produce(writer)
            finally:
                writer.close()
            results: dict[str, Any] = {}
            while len(results) < len(names):
                try:
                    msg = q.get(timeout=0.2)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        raise BenchmarkError("a variant's worker process died") from None
                    continue
                if msg[0] == "tick":
                    bar.update(1)
                elif msg[0] == "error":
                    raise msg[2]
                else:
                    results[msg[1]] = msg[2]
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join()
    return gen, {n: results[n] for n in names}


def check_config(
    cfg: Any,
    *,
    layouts: Collection[str],
    variants: Collection[str],
    ints: Mapping[str, tuple[int, int | None]] = {},
    floats: Mapping[str, tuple[float, float]] = {},
    bools: Sequence[str] = (),
) -> int:
    """Check the fields every benchmark config has: ``layout`` one of ``layouts``,
    ``mem`` a memory size, ``variants`` a non-empty list of names in
    ``variants``, ``gfp`` (when the config has one) a GFP mask; then each field
    of ``ints`` / ``floats`` in its (low, high) range (a field that is None is
    left out: None means "the default") and each of ``bools`` a bool. Raises
    :class:`kmm.BenchmarkError` naming the first bad field; returns the memory
    size in bytes."""
    from .machine import parse_mem

    if cfg.layout not in layouts:
        raise BenchmarkError(f"layout {cfg.layout!r} must be {' or '.join(layouts)}")
    try:
        mem = parse_mem(cfg.mem)
    except Exception as e:
        raise BenchmarkError(f"mem {cfg.mem!r}: {e}") from None
    for name, (lo, hi) in ints.items():
        if getattr(cfg, name) is not None:
            int_arg(name, getattr(cfg, name), lo, hi, error=BenchmarkError)
    for name, (flo, fhi) in floats.items():
        if getattr(cfg, name) is not None:
            float_arg(name, getattr(cfg, name), flo, fhi, error=BenchmarkError)
    for name in bools:
        if not isinstance(getattr(cfg, name), bool):
            raise BenchmarkError(f"{name} must be a bool, got {getattr(cfg, name)!r}")
    unknown = [v for v in cfg.variants if v not in variants]
    if unknown or not cfg.variants:
        raise BenchmarkError(f"unknown variants {unknown}; choose from {', '.join(variants)}")
    if hasattr(cfg, "gfp"):
        try:
            _gfp.parse(cfg.gfp)
        except Exception as e:
            raise BenchmarkError(f"gfp {cfg.gfp!r}: {e}") from None
    return mem
