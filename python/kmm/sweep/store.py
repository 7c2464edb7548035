"""A sweep's directory: the manifest, one record per finished cell, and the tidy table.

Layout of ``DIR``::

    sweep.json          {"format": "kmm-sweep", "version": 1, "kind": ..., "fn": ...}
    cells/KEY.json      one per finished cell: config, seed, status (done | failed), rows, extra
    cells/KEY.npz       arrays a cell returned (page maps), when it returned any
    results.parquet     the tidy table of the last run's cells (pyarrow), the manifest in its metadata
    results.csv         the same table, with --csv

Every file is written to a temporary name and renamed, so an interrupted sweep
leaves only whole records behind.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import SweepError
from .grid import Cell

FORMAT = "kmm-sweep"
VERSION = 1
META_KEY = b"kmm.sweep"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and not isinstance(x, (list, dict, str)):
        return _jsonable(x.item())
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


class Store:
    """The results directory of one kind of sweep; refuses a directory of another kind."""

    def __init__(self, root: str | os.PathLike[str], kind: str, fn: str) -> None:
        self.root = Path(root)
        self.kind = kind
        self.fn = fn
        self.cells = self.root / "cells"
        manifest = self.root / "sweep.json"
        if self.root.exists() and not self.root.is_dir():
            raise SweepError(f"--out {self.root}: exists and is not a directory")
        if manifest.exists():
            m = read_manifest(self.root)
            if m.get("kind") != kind or m.get("fn") != fn:
                raise SweepError(
                    f"{self.root} holds a sweep of another kind ({m.get('kind')}, {m.get('fn')}), "
                    f"not {kind} ({fn}): choose another --out"
                )
        elif self.root.exists() and any(self.root.iterdir()):
            raise SweepError(f"{self.root} is not empty and holds no kmm sweep (no sweep.json): choose another --out")

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind, "fn": self.fn}

    def open(self) -> None:
        self.cells.mkdir(parents=True, exist_ok=True)
        p = self.root / "sweep.json"
        if not p.exists():
            _atomic_write(p, (json.dumps(self.manifest(), indent=2) + "\n").encode())

    def record_path(self, cell: Cell) -> Path:
        return self.cells / f"{cell.key}.json"

    def finished(self, cell: Cell) -> dict[str, Any] | None:
        """The record of ``cell`` when it finished (done) in an earlier run, else None."""
        p = self.record_path(cell)
        if not p.exists():
            return None
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        if rec.get("status") != "done" or rec.get("config") != cell.config or rec.get("seed") != cell.seed:
            return None
        return rec

    def save(self, cell: Cell, rec: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        if arrays:
            import io

            import numpy as np

            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            _atomic_write(self.cells / f"{cell.key}.npz", buf.getvalue())
        _atomic_write(self.record_path(cell), (json.dumps(_jsonable(rec)) + "\n").encode())

    def write_table(self, df: Any, *, csv: bool = False) -> Path:
        write_parquet(df, self.root / "results.parquet", self.manifest())
        if csv:
            tmp = self.root / ".results.csv.tmp"
            df.to_csv(tmp, index=False)
            os.replace(tmp, self.root / "results.csv")
        return self.root / "results.parquet"


def read_manifest(root: Path) -> dict[str, Any]:
    p = Path(root) / "sweep.json"
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise SweepError(f"{p}: not a kmm sweep manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise SweepError(f"{p}: not a kmm sweep manifest")
    if m.get("version") != VERSION:
        raise SweepError(f"{p}: kmm sweep format version {m.get('version')}, this kmm reads {VERSION}")
    return m


def write_parquet(df: Any, path: Path, manifest: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = dict(manifest, config_columns=list(df.attrs.get("kmm.sweep.config_columns", [])))
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike[str]) -> Any:
    """A sweep's results as a pandas DataFrame: ``path`` is the sweep directory or its
    ``results.parquet``. ``df.attrs`` holds the manifest (``kmm.sweep``) and the config
    columns. Raises :class:`kmm.SweepError` for anything that is not a kmm sweep's table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        p = p / "results.parquet"
    if not p.exists():
        raise SweepError(f"{p}: no such results file (a sweep directory holds results.parquet)")
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise SweepError(f"{p}: not a Parquet file ({e})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise SweepError(f"{p}: a Parquet file, but not a kmm sweep's results (no kmm.sweep metadata)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise SweepError(f"{p}: kmm sweep results of an unknown format or version ({meta.get('format')}, {meta.get('version')})")
    df = table.to_pandas()
    df.attrs["kmm.sweep"] = {k: v for k, v in meta.items() if k != "config_columns"}
    df.attrs["kmm.sweep.config_columns"] = meta.get("config_columns", [])
    df.attrs["kmm.sweep.dir"] = str(p.parent)
    return df


def load_record(root: str | os.PathLike[str], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One cell's record and its arrays (an empty dict when it stored none)."""
    import numpy as np

    d = Path(root) / "cells"
    rec = json.loads((d / f"{key}.json").read_text())
    npz = d / f"{key}.npz"
    arrays: dict[str, Any] = {}
    if npz.exists():
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    return rec, arrays
