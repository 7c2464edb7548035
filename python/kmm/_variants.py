"""Running a benchmark's variants on one generated load: the load is generated
once, in this process, while the variants replay it in worker processes (one
per variant by default), one progress bar fed by all of them.

``produce(store)`` generates the load, handing each chunk of trace to
``store.put(name, chunk)`` in order; it runs once and returns what the caller
wants back (its statistics). ``fn(name, cfg, chunks, tick, *extra)`` runs one
variant (a module-level function, so it pickles): ``chunks.get(name)`` is the
chunk of that name and ``chunks.group(prefix)`` every chunk named
``prefix...`` in order, each waiting until it has been generated; ``tick`` is
None or a callable a variant calls once per unit of progress. With worker
processes each chunk goes to a file in shared memory (``/dev/shm`` where there
is one), written once and read by every worker as it arrives, so replay
overlaps generation and no worker generates or copies the load again. With a
worker per variant the load streams: a chunk every variant has read is
removed, and generation waits while more than :data:`_STREAM_WINDOW` bytes are
kept, so a load of any size (a 64 GiB machine's is about 45 GB of records)
needs only that much room.
Results come back in the order of ``names``, whatever the number of processes.

:func:`check_config` is the validation the benchmarks' config classes share.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import pickle
import queue
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    runs out of memory (a 64 GiB machine's load is tens of GB of records, too
    much to keep unless it streams): the bytes kept against the room there
    was at the start (:func:`_budget`), and, when they are memory,
    MemAvailable now against :func:`_floor`."""

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

    def release(self, nbytes: int) -> None:
        """``nbytes`` of the load are no longer kept (a streamed chunk every variant has read)."""
        self.used -= nbytes

    @property
    def limit(self) -> int | None:
        """The bytes there was room for at the start (None: unknown)."""
        return self._limit


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


#: How far, in bytes of trace records, generation may run ahead of the
#: slowest variant when the load streams (one worker per variant): a chunk
#: every worker has read is removed, so a load of any size keeps at most this
#: much (the default run's whole load, about 470 MB, fits: it never waits).
_STREAM_WINDOW = 1 << 30

#: A worker that has read every chunk it will read (its variants are done).
_ALL = float("inf")


def _chunk_path(directory: Path, k: int) -> Path:
    """The file of chunk ``k`` of a load shared in ``directory``."""
    return directory / f"{k:08d}.trace"


class _Collector:
    """The workers' messages on the result queue: progress ticks, results, errors."""

    def __init__(self, q: Any, procs: list[Any], bar: Any) -> None:
        self._q = q
        self._procs = procs
        self._bar = bar
        self.results: dict[str, Any] = {}

    def poll(self) -> None:
        """Take every message waiting; raise a worker's error, or BenchmarkError
        if a worker died without one."""
        while True:
            try:
                msg = self._q.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "tick":
                self._bar.update(1)
            elif msg[0] == "error":
                raise msg[2]
            else:
                self.results[msg[1]] = msg[2]
        if any(p.exitcode not in (None, 0) for p in self._procs):
            raise BenchmarkError("a variant's worker process died")


class _Writer:
    """Writes each chunk to its own file in the shared directory and tells
    every worker its name, index and length. When the load streams (each
    worker runs one variant, reading the chunks in order), a worker says which
    chunk it has read; a chunk every worker has read is removed, and a put
    waits while the chunks kept would exceed :data:`_STREAM_WINDOW`."""

    def __init__(self, directory: Path, conns: list[Any], collector: _Collector, stream: bool) -> None:
        self._dir = directory
        self._conns: list[Any] = list(conns)  # None once that worker has gone
        self._col = collector
        self._stream = stream
        self._budget = _Budget(str(directory))
        limit = self._budget.limit
        self._window = _STREAM_WINDOW if limit is None else min(_STREAM_WINDOW, limit // 2)
        self._next = 0
        self._kept: dict[int, int] = {}  # chunk index -> bytes, oldest first (their sum: the budget's `used`)
        self._read: list[float] = [-1] * len(conns)  # the last chunk each worker has read

    def put(self, name: str, chunk: np.ndarray) -> None:
        data = np.ascontiguousarray(chunk).view(np.uint8)
        n = data.shape[0]
        self.poll(0)
        while self._stream and self._kept and self._budget.used + n > self._window:
            self.poll(0.2)  # the slowest variant is a window behind: wait for it
        self._budget.take(n)
        k = self._next
        with open(_chunk_path(self._dir, k), "wb") as f:
            f.write(memoryview(data))  # in the page cache before any worker hears of it
        self._next += 1
        self._kept[k] = n
        for i, c in enumerate(self._conns):
            if c is None:
                continue
            try:
                c.send((name, k, chunk.shape[0]))
            except OSError:  # that worker has gone: its error (if any) is on the queue
                self._gone(i)

    def _gone(self, i: int) -> None:
        c, self._conns[i] = self._conns[i], None
        self._read[i] = _ALL
        try:
            c.close()
        except OSError:  # pragma: no cover - closing a broken pipe
            pass

    def poll(self, timeout: float) -> None:
        """Take the workers' news (the chunks they have read, their results,
        their errors), waiting up to ``timeout`` seconds for some; remove every
        chunk all workers have read when the load streams."""
        live = [c for c in self._conns if c is not None]
        ready = mp_connection.wait(live, timeout) if live else []
        if not live and timeout:
            time.sleep(timeout)
        for c in ready:
            i = self._conns.index(c)
            try:
                while c.poll():
                    self._read[i] = max(self._read[i], c.recv())
            except (EOFError, OSError):  # the worker has ended
                self._gone(i)
        self._col.poll()
        if self._stream:
            low = min(self._read, default=_ALL)
            while self._kept:
                k = next(iter(self._kept))
                if k > low:
                    break
                self._budget.release(self._kept.pop(k))
                _chunk_path(self._dir, k).unlink()

    def close(self) -> None:
        """The load is complete: every worker hears so (their pipes stay open
        for the chunks they read after this)."""
        for i, c in enumerate(self._conns):
            if c is None:
                continue
            try:
                c.send(None)
            except OSError:  # that worker has gone already
                self._gone(i)

    def shut(self) -> None:
        """Close every worker's pipe (the run is over)."""
        for i, c in enumerate(self._conns):
            if c is not None:
                self._gone(i)


class _Reader(Chunks):
    """A worker's view of the shared directory: entries arrive on a pipe; when
    the load streams, each chunk read is reported back on it (and every chunk
    before it may be removed)."""

    def __init__(self, directory: str, conn: Any, stream: bool, token: Any = None) -> None:
        super().__init__()
        self._dir = Path(directory)
        self._conn = conn
        self._stream = stream
        self._token = token
        self._done = False
        self._reported = -1

    def _more(self) -> bool:
        if self._done:
            return False
        try:
            if self._token is not None and not self._conn.poll():
                # nothing to replay until the generator writes more: another
                # variant may have the core meanwhile
                self._token.release()
                try:
                    e = self._conn.recv()
                finally:
                    self._token.acquire()
            else:
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

        k, n = payload
        if self._stream and k < self._reported:
            raise BenchmarkError(
                f"chunk {k} of the load read after chunk {self._reported}: when the load streams "
                "(one worker per variant), a variant reads its chunks in the order they were generated"
            )
        a = np.fromfile(_chunk_path(self._dir, k), dtype=TRACE_DTYPE, count=n)
        if self._stream and k > self._reported:
            self._reported = k
            try:
                self._conn.send(k)
            except OSError:  # pragma: no cover - the parent has gone: this worker is stopped anyway
                pass
        return a


def _worker(
    fn: Callable[..., Any], names: list[str], cfg: Any, directory: str, conn: Any, q: Any, ticks: bool,
    extra: tuple[Any, ...], token: Any,
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's terminate() stops it at once
    chunks = _Reader(directory, conn, stream=len(names) == 1, token=token)
    tick = (lambda: q.put(("tick",))) if ticks else None
    for n in names:
        try:
            if token is not None:
                token.acquire()
            try:
                r = fn(n, cfg, chunks, tick, *extra)
            finally:
                if token is not None:
                    token.release()
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
    """``(produce(store), {name: fn(name, cfg, chunks, tick, *extra)})`` for every variant.

    ``processes``: the worker processes. None (the default) gives every
    variant its own, and the load streams through them: each chunk is removed
    once every variant has read it, so a load of any size keeps at most
    :data:`_STREAM_WINDOW` bytes (a variant then reads its chunks in the order
    they were generated). Fewer workers than variants run their variants one
    after another, so the whole load is kept; 1 runs everything in this
    process, one variant after another, after the whole load is generated."""
    if processes is None:
        nproc = len(names)
    else:
        nproc = min(int_arg("processes", processes, 1, None, error=BenchmarkError), len(names))
    if nproc == 1 and processes is not None:
        local = LocalChunks()
        gen = produce(local)
        return gen, {n: fn(n, cfg, local, (lambda: bar.update(1)) if bar else None, *extra) for n in names}
    ctx = mp.get_context("spawn" if os.name != "posix" else "fork")
    # SIGTERM ends the run through the finally blocks below, as Ctrl-C does:
    # the workers are stopped and the shared load files (memory, in /dev/shm,
    # until reboot otherwise) are removed. This process returns to Python at
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


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_workers(
    fn: Callable[..., Any], names: Sequence[str], cfg: Any, produce: Callable[[Any], Any], extra: tuple[Any, ...],
    nproc: int, ctx: Any, bar: Any,
) -> tuple[Any, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="kmm-load-", dir=_load_dir()) as tmp:
        q = ctx.Queue()
        procs: list[Any] = []
        conns: list[Any] = []
        writer = None
        try:
            # the workers start first (this process is small now) and replay
            # each chunk as soon as it is written
            # with more workers than cores, a worker replays only while it
            # holds one of the cores' tokens, and gives it up when it has to
            # wait for the generator: variants take turns a window of the
            # load at a time instead of a time slice at a time (four machines
            # interleaved that finely cost a third more CPU in the default
            # run: each evicts the others' tables from the caches)
            cores = _cores()
            token = ctx.BoundedSemaphore(cores) if nproc > cores else None
            for i in range(nproc):
                mine, theirs = ctx.Pipe(duplex=True)
                p = ctx.Process(
                    target=_worker,
                    args=(fn, list(names[i::nproc]), cfg, tmp, theirs, q, bar is not None, extra, token),
                    daemon=True,
                )
                p.start()
                theirs.close()
                procs.append(p)
                conns.append(mine)
            col = _Collector(q, procs, bar)
            writer = _Writer(Path(tmp), conns, col, stream=nproc == len(names))
            try:
                gen = produce(writer)
            finally:
                writer.close()
            while len(col.results) < len(names):
                writer.poll(0.2)
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join()
            if writer is not None:
                writer.shut()
            else:
                for c in conns:
                    c.close()
    return gen, {n: col.results[n] for n in names}


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
