"""Shrink a ``kmm record`` bundle into a test fixture (tests/data/real/README.md).

    python tests/data/real/shrink.py BUNDLE OUTDIR

writes OUTDIR/{start,end}.tar.zst, trace.txt.zst, stats and kmm-bundle.json,
each compressed with zstd -19, by two reductions that change nothing a
replay reads:

- kpageflags keeps only the bits kmm reads (``mm/kpageflags.rs``: LRU, SLAB,
  BUDDY, MMAP, ANON, SWAPCACHE, SWAPBACKED, COMPOUND_HEAD/TAIL, UNEVICTABLE,
  HWPOISON, NOPAGE, KSM, THP, OFFLINE, RESERVED); a word that had other bits
  only keeps its lowest set bit, so no page's flags turn 0.
- the trace keeps its header, every ``tracing_mark_write`` line, and the
  kmem event lines that can fall inside their pfn's replay window: after the
  start snapshot's read of the pfn's 16,384-pfn kpageflags chunk began and
  before the end snapshot's read of it ended (the chunk being read when the
  event fired is kept on both sides, for the replay to decide). A marker
  ``kmm-snapshot LABEL kpageflags N`` comes before the read of pfns from N
  on (the last gives the pfn count).

The rules are written here independently of the replay's; the README records
that the shrunk and the full bundle replay to the same result.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import zstandard
from kmm import snapshot as ks

KEPT_BITS = (5, 7, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 32)
CHUNK = 16384
MARK = re.compile(rb"tracing_mark_write: kmm-snapshot (\S+) (\S+)(?: (\d+))?")
PFN = re.compile(rb" pfn=0x([0-9a-f]+)")


def mask(flags: np.ndarray) -> np.ndarray:
    kept = np.uint64(sum(1 << b for b in KEPT_BITS))
    m = flags & kept
    lowest = flags & (~flags + np.uint64(1))
    return np.where((m == 0) & (flags != 0), lowest, m)


def shrink_snapshot(raw: bytes, out: Path) -> None:
    snap = ks.load_stream(io.BytesIO(raw), out.name)
    files = {n: t.encode() for n, t in snap.texts.items()}
    files["kpageflags"] = mask(snap.kpageflags).tobytes()
    assert snap.kpagecount is not None
    files["kpagecount"] = snap.kpagecount.tobytes()
    meta = dict(snap.meta, shrunk="kpageflags masked to the bits kmm reads (tests/data/real/shrink.py)")
    ks.write(files, meta, out, level=19)


def shrink_trace(text: bytes, start: str, end: str) -> bytes:
    out = []
    phase = "before"  # before, start (reading), between, end (reading), after
    chunk = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(b"#"):
            out.append(line)
            continue
        m = MARK.search(line)
        if m:
            out.append(line)
            label, what, n = m.group(1).decode(), m.group(2), m.group(3)
            if what == b"kpageflags":
                chunk = int(n) // CHUNK
                if label == start and phase == "before":
                    phase = "start"
                elif label == end and phase == "between":
                    phase = "end"
            elif label == start and what == b"end":
                phase = "between"
            elif label == end and what == b"end":
                phase = "after"
            continue
        p = PFN.search(line)
        if p is None:
            out.append(line)  # not a pfn event (extfrag keeps its own fields): kept
            continue
        c = int(p.group(1), 16) // CHUNK
        keep = {
            "before": False,
            "start": c <= chunk,
            "between": True,
            "end": c >= chunk,
            "after": False,
        }[phase]
        if keep:
            out.append(line)
    return b"".join(out)


def main(bundle: str, outdir: str) -> None:
    od = Path(outdir)
    od.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle) as tf:
        members = {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]
    meta = json.loads(members["kmm-bundle.json"])
    for side in ("start", "end"):
        shrink_snapshot(members[f"{side}.tar.zst"], od / f"{side}.tar.zst")
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(members["trace.txt.zst"])).read()
    small = shrink_trace(text, meta["start"], meta["end"])
    (od / "trace.txt.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(small))
    (od / "stats").write_bytes(members["stats"])
    meta["shrunk"] = "tests/data/real/shrink.py"
    (od / "kmm-bundle.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
