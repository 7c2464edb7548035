"""Running a sweep's cells on Dask distributed, storing each as it finishes.

The client sends each worker a cell function (by reference), a config of plain
values and a seed, and gets a small :class:`Record` back; nothing else crosses.
The table is assembled in grid order from the records, so it is the same
whatever the number of workers or the order in which cells finish.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SweepError
from .grid import Cell, expand, fn_name
from .store import Store


@dataclass
class Record:
    """What a cell returns beyond plain rows: ``rows`` (dicts of plain values), ``config``
    (the resolved config fields, added to every row and counted as config columns),
    ``extra`` (plain data kept in the cell's record, for reports) and ``arrays``
    (numpy arrays kept beside it, compressed)."""

    rows: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)


def _normalize(out: Any) -> Record:
    if isinstance(out, Record):
        return out
    if isinstance(out, Mapping):
        return Record([dict(out)])
    if isinstance(out, (list, tuple)) and all(isinstance(r, Mapping) for r in out):
        return Record([dict(r) for r in out])
    raise TypeError(f"a cell function returns a dict, a list of dicts or a kmm.sweep.Record, not {type(out).__name__}")


def _call(fn: Callable[[dict[str, Any], int], Any], config: dict[str, Any], seed: int) -> Record:
    """What a worker runs: the cell function on a copy of its config."""
    return _normalize(fn(dict(config), seed))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Cluster:
    """A Dask client on a scheduler address, or on a LocalCluster started (and killed) here."""

    def __init__(self, scheduler: str | None, workers: int | None, log: Callable[[str], None]) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        self.pids: list[int] = []
        # a worker that dies fails its cell at once; the sweep retries it itself (once)
        self._config = dask.config.set({"distributed.scheduler.allowed-failures": 0})
        self._config.__enter__()
        try:
            if scheduler:
                try:
                    self.client = Client(scheduler, timeout="5s")
                except (OSError, TimeoutError, ValueError) as e:
                    raise SweepError(f"cannot reach the Dask scheduler {scheduler}: {e}") from None
            else:
                n = workers or os.cpu_count() or 1
                self.cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR,
                )
                self.client = Client(self.cluster)
                self.pids = [int(p) for p in self.client.run(os.getpid).values()]
        except BaseException:
            self.close(kill=True)
            raise
        nw = len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        where = "local cluster" if self.cluster is not None else f"scheduler {scheduler}"
        hint = ""
        if self.cluster is not None and importlib.util.find_spec("bokeh") is None:
            hint = " (its pages need bokeh: pip install 'kmm[dashboard]')"
        log(f"kmm sweep: {where}, {nw} workers; dashboard: {self.client.dashboard_link}{hint}")

    def close(self, *, kill: bool = False) -> None:
        if kill:
            _quiet_dask_logs()
            for pid in self.pids:  # our own LocalCluster's worker processes only
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        client = getattr(self, "client", None)
        for obj in (client, self.cluster):
            if obj is not None:
                try:
                    obj.close(timeout=1 if kill else 10)
                except Exception:
                    pass
        self._config.__exit__(None, None, None)


def _quiet_dask_logs() -> None:
    """Every ``distributed`` logger at CRITICAL from now on in this process.

    Called before a kill (of the sweep's own local cluster at its end, or of
    the workers on Ctrl-C): the scheduler's comms to the dead workers then log
    their closing, with tracebacks, while the cluster shuts down and after (on
    its event loop thread); expected, and no news to the user."""
    names = ["distributed"] + [n for n in logging.Logger.manager.loggerDict if n.startswith("distributed.")]
    for lg in map(logging.getLogger, names):
        lg.setLevel(logging.CRITICAL)


def _error_text(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def run(
    fn: Callable[[dict[str, Any], int], Any],
    grid: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    scheduler: str | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    kind: str | None = None,
    validate: Callable[[dict[str, Any]], None] | None = None,
    csv: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = _stderr,
) -> Any:
    """Run ``fn(config, seed)`` for every cell of ``grid`` on Dask; return the tidy table.

    ``grid``: parameter -> list of values (``"seed"``: the seeds), or a list of
    configs (see :func:`kmm.sweep.grid.expand`). ``fn`` is a pure function of its
    config and seed returning a dict, a list of dicts or a :class:`Record`.
    ``scheduler``: a Dask scheduler address (``tcp://HOST:8786``); None starts a
    LocalCluster of ``workers`` processes (default: one per core). ``out``: a
    directory that keeps each finished cell as it completes (a rerun skips
    them) and the table as ``results.parquet`` (and ``results.csv`` with
    ``csv``). ``validate(config)`` runs here on every distinct config before
    any cell starts. A cell that raises, or whose worker dies, is run once more,
    then recorded as failed (``status`` "failed", ``error``) and the sweep goes
    on. A KeyboardInterrupt kills the cluster's workers, writes the table of the
    finished cells and is raised again.

    Returns a pandas DataFrame: one row per row of every cell, with the config
    columns, ``seed``, ``status`` and ``error`` first; ``df.attrs["kmm.sweep.counts"]``
    has ``done``, ``failed`` and ``skipped``.
    """
    say = log or (lambda _msg: None)
    # the table's libraries, loaded now: after a Ctrl-C only the writing is left to do
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    name = fn_name(fn)
    cells = expand(grid, name)
    seen: set[str] = set()
    for c in cells:
        if c.key in seen:
            raise SweepError(f"the grid holds the cell {c.config} seed {c.seed} twice")
        seen.add(c.key)
    if validate is not None:
        done_cfg: list[dict[str, Any]] = []
        for c in cells:
            if c.config not in done_cfg:
                validate(dict(c.config))
                done_cfg.append(c.config)
    store = Store(out, kind or name, name) if out is not None else None
    records: dict[str, dict[str, Any]] = {}
    todo: list[Cell] = []
    for c in cells:
        rec = store.finished(c) if store else None
        if rec is not None:
            records[c.key] = rec
        else:
            todo.append(c)
    skipped = len(cells) - len(todo)
    if skipped:
        say(f"kmm sweep: skipping {skipped} of {len(cells)} cells finished in an earlier run ({out})")
    counts = {"done": 0, "failed": 0, "skipped": skipped}
    from tqdm import tqdm

    bar = tqdm(total=len(cells), initial=skipped, desc="sweep", unit="cell", file=sys.stderr, disable=not progress, leave=False)
    bar.set_postfix_str(_postfix(counts))
    interrupted: BaseException | None = None
    if todo:
        cluster = _Cluster(scheduler, workers, say)
        if store:
            store.open()
        try:
            _execute(cluster.client, fn, todo, store, records, counts, bar)
        except KeyboardInterrupt as e:
            interrupted = e
            cluster.close(kill=True)
        else:
            cluster.close(kill=cluster.cluster is not None)
    bar.close()
    df = table_of(cells, records)
    df.attrs["kmm.sweep.counts"] = dict(counts)
    if store:
        store.open()
        store.write_table(df, csv=csv)
        df.attrs["kmm.sweep.dir"] = str(store.root)
    if interrupted is not None:
        raise interrupted
    return df


def _postfix(counts: dict[str, int]) -> str:
    return f"done={counts['done']} failed={counts['failed']} skipped={counts['skipped']}"


def _execute(client: Any, fn: Any, todo: list[Cell], store: Store | None, records: dict[str, dict[str, Any]], counts: dict[str, int], bar: Any) -> None:
    from distributed import as_completed

    start = time.time()

    def submit(cell: Cell, attempt: int) -> Any:
        return client.submit(_call, fn, cell.config, cell.seed, key=f"kmm-cell-{cell.key}-{int(start * 1e6)}-{attempt}", pure=False)

    pending = {}
    for c in todo:
        pending[submit(c, 0)] = (c, 0)
    ac = as_completed(list(pending))
    for fut in ac:
        cell, attempt = pending.pop(fut)
        try:
            res = fut.result()
        except Exception as e:
            fut.release()
            if attempt == 0:
                nxt = submit(cell, 1)
                pending[nxt] = (cell, 1)
                ac.add(nxt)
                continue
            rec = {"config": cell.config, "seed": cell.seed, "status": "failed", "attempts": attempt + 1, "error": _error_text(e), "rows": [], "row_config": {}, "extra": {}}
            counts["failed"] += 1
            arrays = None
        else:
            fut.release()
            rec = {"config": cell.config, "seed": cell.seed, "status": "done", "attempts": attempt + 1, "error": None, "rows": res.rows, "row_config": res.config, "extra": res.extra}
            counts["done"] += 1
            arrays = res.arrays
        if store:
            store.save(cell, rec, arrays)
        records[cell.key] = rec
        bar.update(1)
        bar.set_postfix_str(_postfix(counts))


def _flat(v: Any) -> Any:
    return ",".join(map(str, v)) if isinstance(v, list) else v


def table_of(cells: list[Cell], records: dict[str, dict[str, Any]]) -> Any:
    """The tidy table of ``cells`` from their records, in grid order (cells without a record are left out)."""
    import pandas as pd

    rows = []
    config_cols: dict[str, None] = {}
    for c in cells:
        rec = records.get(c.key)
        if rec is None:  # not run (interrupted)
            continue
        base = {k: _flat(v) for k, v in c.config.items()}
        base.update({k: _flat(v) for k, v in rec.get("row_config", {}).items() if k not in base})
        config_cols.update(dict.fromkeys(base))
        base["seed"] = c.seed
        base["status"] = rec["status"]
        base["error"] = rec["error"]
        base["cell"] = c.key
        if rec["status"] == "done" and rec["rows"]:
            rows.extend({**base, **r} for r in rec["rows"])
        else:
            rows.append(base)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=[*config_cols, "seed", "status", "error", "cell"])
    df.attrs["kmm.sweep.config_columns"] = [*config_cols, "seed"]
    return df
