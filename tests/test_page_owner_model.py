"""Differential test of ``kmm page-owner sort`` (the Rust keyed aggregator and
renderer) against an independent, obviously-correct model of
``tools/mm/page_owner_sort``'s documented semantics, on generated dumps.

The model holds every record as a dict, filters them, groups them with a
plain dict on the cull fields (or the record text without ts and PFN lines),
sorts with Python's stable sort by the sort keys, ties broken as
page_owner_sort's first qsort leaves them (by the cull fields in its order:
stacktrace, pid, tgid, comm, allocator; or by the text), then first
appearance, and prints page_owner_sort's output. Small pid/comm/stack pools
make ties and merges common; empty and one-record dumps are included.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys

import kmm.page_owner as po
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm.errors import ParseError

STACKS = [
    " kmem_cache_alloc+0x95/0xc0\n d_alloc+0x29/0x170\n",
    " __vmalloc_node_range+0x1/0x2\n alloc_pages+0x3/0x4\n",
    " cma_alloc+0x10/0x20\n dma_alloc+0x1/0x2 [nvme]\n",
    " filemap_fault+0x1/0x9\n",
    " filemap_fault+0x1/0x9\n do_fault+0x2/0x8\n",
    "",
]
COMMS = ["bash", "cc1", "a b", "kworker/0:1"]
OPTIONAL = ["", "Page has been migrated, last migrate reason: compaction\n", "Charged to memcg a\n",
            "Slab cache page\n"]
#: pids whose digits are prefixes of each other's, so that text order is not number order
PIDS = [1, 2, 12, 21, 123]
ALLOC_BIT = {"CMA": 2, "SLAB": 4, "VMALLOC": 8, "OTHERS": 16}


def classify(stack: str) -> str:
    """The allocator rule kmm documents (docs/page_owner.md): CMA, then slab, then vmalloc."""
    if "cma_alloc" in stack:
        return "CMA"
    if any(m in stack for m in ("slab_alloc", "kmem_cache_alloc", "kmem_getpages", "cache_grow",
                                "allocate_slab", "new_slab")):
        return "SLAB"
    if "vmalloc" in stack:
        return "VMALLOC"
    return "OTHERS"


record = st.fixed_dictionaries({
    "order": st.sampled_from([0, 0, 1, 3]),
    "pid": st.sampled_from(PIDS),
    "tgid": st.integers(1, 3),
    "comm": st.sampled_from(COMMS),
    "ts": st.integers(0, 50),
    "pfn": st.integers(0, 1 << 20),
    "stack": st.sampled_from(STACKS),
    "opt": st.sampled_from(OPTIONAL),
})


def text_of(recs: list[dict]) -> str:
    out = []
    for r in recs:
        out.append(
            f"Page allocated via order {r['order']}, mask 0xcc0(GFP_KERNEL), pid {r['pid']}, tgid {r['tgid']} "
            f"({r['comm']}), ts {r['ts']} ns\n"
            f"PFN {r['pfn']:#x} type Movable Block {r['pfn'] >> 9} type Movable Flags 0x0(node=0|zone=1)\n"
            f"{r['stack']}{r['opt']}\n"
        )
    return "".join(out)


def model(recs: list[dict], cull: list[str], keys: list[tuple[str, bool]], pids, tgids, names) -> str:
    rows = []
    for r in recs:
        if pids is not None and r["pid"] not in pids:
            continue
        if tgids is not None and r["tgid"] not in tgids:
            continue
        if names is not None and r["comm"] not in names:
            continue
        kept = r["opt"] if not r["opt"].startswith("Page has been migrated") else ""
        stack = r["stack"] + kept
        header = f"Page allocated via order {r['order']}, mask 0xcc0(GFP_KERNEL), pid {r['pid']}, " \
                 f"tgid {r['tgid']} ({r['comm']})"
        rows.append({"txt": header + "\n" + stack, "stacktrace": stack, "pid": r["pid"], "tgid": r["tgid"],
                     "name": r["comm"], "allocator": classify(stack), "pages": 1 << r["order"],
                     "ts": r["ts"]})
    fields = {"stacktrace": "stacktrace", "pid": "pid", "tgid": "tgid", "name": "name", "allocator": "allocator"}
    groups: dict[tuple, dict] = {}
    for row in rows:
        k = tuple(row[fields[f]] for f in cull) if cull else (row["txt"],)
        g = groups.get(k)
        if g is None:
            groups[k] = dict(row, times=1, first=len(groups))
        else:
            g["times"] += 1
            g["pages"] += row["pages"]
            g["ts"] = min(g["ts"], row["ts"])
    gl = list(groups.values())

    def val(g: dict, k: str):
        return {"times": g["times"], "pages": g["pages"], "pid": g["pid"], "tgid": g["tgid"],
                "name": g["name"], "stacktrace": g["stacktrace"], "txt": g["txt"], "alloc_ts": g["ts"],
                "allocator": ALLOC_BIT[g["allocator"]]}[k]

    # stable sorts, least significant first: first appearance, the tie order, the keys
    gl.sort(key=lambda g: g["first"])
    order = ["stacktrace", "pid", "tgid", "name", "allocator"]
    tie = [f for f in order if f in cull] if cull else ["txt"]
    gl.sort(key=lambda g: tuple(val(g, "allocator" if f == "allocator" else f) for f in tie))
    for k, desc in reversed(keys):
        gl.sort(key=lambda g, k=k: val(g, k), reverse=desc)
    out = []
    for g in gl:
        if not cull:
            out.append(f"{g['times']} times, {g['pages']} pages, allocated by {g['allocator']} :\n{g['txt']}\n")
            continue
        s = f"{g['times']} times, {g['pages']} pages"
        if "pid" in cull or pids is not None:
            s += f", PID {g['pid']}"
        if "tgid" in cull or tgids is not None:
            s += f", TGID {g['tgid']}"
        if "name" in cull or names is not None:
            s += f", task_comm_name: {g['name']}"
        if "allocator" in cull:
            s += f", allocated by {g['allocator']} "
        if "stacktrace" in cull:
            s += ":\n" + g["stacktrace"]
        out.append(s + "\n")
    return "".join(out)


def kmm_sort(text: str, cull, keys, pids, tgids, names) -> str:
    t = po.read(text.encode(), cull=cull, pids=pids, tgids=tgids, names=names).table
    buf = io.BytesIO()
    t.render(buf, "sort", t.order(keys))
    return buf.getvalue().decode()


def api_sort(text: str, cull, keys, pids, tgids, names) -> str:
    """The same through the Python API: read every record, then filter, cull, sort, print."""
    gs = po.read(text.encode()).groups
    if pids is not None or tgids is not None or names is not None:
        gs = po.filter_groups(gs, pids=pids, tgids=tgids, names=names)
    if cull:
        gs = po.cull_groups(gs, cull)
    return po.format_sort(po.sort_groups(gs, keys))


KEYS = ["times", "pages", "pid", "tgid", "name", "stacktrace", "txt", "alloc_ts", "allocator"]


@settings(max_examples=100, deadline=None)
@given(
    recs=st.lists(record, max_size=25),
    cull=st.lists(st.sampled_from(["pid", "tgid", "name", "stacktrace", "allocator"]), unique=True,
                  max_size=3),
    keys=st.lists(st.tuples(st.sampled_from(KEYS), st.booleans()), min_size=1, max_size=3),
    pids=st.none() | st.lists(st.sampled_from(PIDS), min_size=1, max_size=2),
    tgids=st.none() | st.lists(st.integers(1, 3), min_size=1, max_size=2),
    names=st.none() | st.lists(st.sampled_from(COMMS), min_size=1, max_size=2),
)
def test_sort_matches_the_model(recs, cull, keys, pids, tgids, names) -> None:
    text = text_of(recs)
    want = model(recs, cull, keys, pids, tgids, names)
    assert kmm_sort(text, cull, keys, pids, tgids, names) == want
    assert api_sort(text, cull, keys, pids, tgids, names) == want


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_one_record(n: int) -> None:
    recs = [{"order": 2, "pid": 7, "tgid": 7, "comm": "bash", "ts": 5, "pfn": 16, "stack": STACKS[0],
             "opt": ""}][:n]
    for cull in ([], ["stacktrace"], ["pid", "allocator"]):
        assert kmm_sort(text_of(recs), cull, [("times", True)], None, None, None) == model(
            recs, cull, [("times", True)], None, None, None)


@settings(max_examples=40, deadline=None)
@given(old=st.lists(record, max_size=15), new=st.lists(record, max_size=15))
def test_diff_matches_a_dict_of_stacks(old, new) -> None:
    """diff --cull=stacktrace: pages per stack before and after, most growth first."""
    def pages(recs):
        d: dict[str, int] = {}
        for r in recs:
            kept = r["opt"] if not r["opt"].startswith("Page has been migrated") else ""
            k = r["stack"] + kept
            d[k] = d.get(k, 0) + (1 << r["order"])
        return d

    a = po.read(text_of(old).encode(), cull=["stacktrace"]).table
    b = po.read(text_of(new).encode(), cull=["stacktrace"]).table
    buf = io.BytesIO()
    b.diff(a, buf, "json")
    import json

    got = json.loads(buf.getvalue())["diff"]
    pa, pb = pages(old), pages(new)
    want = {k: (pa.get(k, 0), pb.get(k, 0)) for k in set(pa) | set(pb)}
    assert len(got) == len(want)
    seen = {}
    for row in got:
        stack = "".join(" " + s + "\n" for s in row["stack"]) + "".join(e + "\n" for e in row["extra"])
        seen[stack] = (row["before"], row["after"])
        assert row["delta"] == row["after"] - row["before"]
    assert seen == want
    deltas = [row["delta"] for row in got]
    assert deltas == sorted(deltas, reverse=True)


def test_show_stacks_file_is_read_as_input() -> None:
    text = " a+0x1/0x2\n b+0x3/0x4\nnr_base_pages: 12\n\n c+0x1/0x2\nnr_base_pages: 3\n\n"
    r = po.read(text.encode())
    assert [(g.count, g.pages, g.stack) for g in r.groups] == [
        (1, 12, [" a+0x1/0x2", " b+0x3/0x4"]), (1, 3, [" c+0x1/0x2"])]
    assert r.stats["records_stacks"] == 2


BAD = [
    ("Page allocated via order 0\n a+0x1/0x2\n", 1, "truncated record"),
    ("Page allocated via order 0\n " + "x" * 200_000 + "\n\n", 2, "line longer than"),
    ("Page allocated via order 0\r\n a+0x1/0x2\r\n\r\nPage allocated via order 99\r\n a\r\n\r\n", 4, "order 99"),
    ("Page allocated via order 0\n a\x00b\n\n", 2, "binary data (byte 0x00"),
    ("\x8f\x12\xff\xfe random bytes\n\n", 1, "binary data"),
]


@pytest.mark.parametrize("text,line,what", BAD)
def test_bad_input_one_line_error_or_counted_skip(text: str, line: int, what: str) -> None:
    with pytest.raises(ParseError, match=f"^line {line}: .*{re.escape(what)}"):
        po.read(text.encode())
    good = "Page allocated via order 1\n z+0x1/0x2\n\n"
    r = po.read((good + good + text).encode(), lenient=True)
    assert r.stats["skipped"] == 1
    assert [(g.count, g.pages) for g in r.groups if g.stack == [" z+0x1/0x2"]] == [(2, 4)]
    assert len(r.errors) == 1 and r.errors[0].startswith(f"line {line + 6}: ")


def test_cli_bad_input_is_one_line_not_a_traceback(tmp_path) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(b"Page allocated via order 0\n a+0x1/0x2\n\nPage allocated via order 99\n a\n\n")
    r = subprocess.run([sys.executable, "-m", "kmm", "page-owner", "sort", "--no-progress", str(p)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "line 4" in err[0] and "order 99" in err[0], r.stderr
