"""The page_owner text aggregator and ``kmm page-owner sort``: formats, options, pipes, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

import kmm.page_owner as po
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm.cli import main
from kmm.errors import PageOwnerError, ParseError

STACK_A = " kmem_cache_alloc+0x95/0xc0\n d_alloc+0x29/0x170\n"
STACK_B = " __get_free_pages+0x1e/0x40\n copy_process+0xb7/0xd10\n"
STACK_C = " __vmalloc_node_range+0x60/0x90\n module_alloc+0x20/0x40 [kmod]\n"


def rec(order: int, pid: int, tgid: int, comm: str, ts: int, pfn: int, stack: str) -> str:
    return (
        f"Page allocated via order {order}, mask 0xcc0(GFP_KERNEL), pid {pid}, tgid {tgid} ({comm}), ts {ts} ns\n"
        f"PFN {pfn:#x} type Unmovable Block {pfn >> 9} type Unmovable Flags 0x0()\n{stack}\n"
    )


#: R1 x3 (pid 10 bash, slab), R2 (order 2, pid 5 cc1), R3 x2 (pid 20 tgid 7 make, vmalloc), R4 (pid 10 bash)
DUMP = (
    rec(0, 10, 10, "bash", 500, 0x100, STACK_A)
    + rec(2, 5, 5, "cc1", 50, 0x104, STACK_B)
    + rec(0, 10, 10, "bash", 100, 0x108, STACK_A)
    + rec(0, 20, 7, "make", 300, 0x109, STACK_C)
    + rec(0, 10, 10, "bash", 700, 0x10A, STACK_B)
    + rec(0, 20, 7, "make", 310, 0x10B, STACK_C)
    + rec(0, 10, 10, "bash", 900, 0x10C, STACK_A)
)

H1 = "Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 10, tgid 10 (bash)"
H2 = "Page allocated via order 2, mask 0xcc0(GFP_KERNEL), pid 5, tgid 5 (cc1)"
H3 = "Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 20, tgid 7 (make)"


def groups():
    return po.read(DUMP.encode()).groups


def order_of(gs) -> list[tuple[int | None, int]]:
    return [(g.pid, g.count) for g in gs]


def test_read_merges_identical_records_ignoring_ts_and_pfn() -> None:
    r = po.read(DUMP.encode())
    assert r.stats["records"] == 7 and r.stats["groups"] == 4 and r.stats["records_modern"] == 7
    g = r.groups
    assert [x.header for x in g] == [H1, H2, H3, H1]
    assert [(x.count, x.pages) for x in g] == [(3, 3), (1, 4), (2, 2), (1, 1)]
    assert [x.first_ts for x in g] == [100, 50, 300, 700]
    assert [x.allocator for x in g] == ["SLAB", "OTHERS", "VMALLOC", "OTHERS"]
    assert g[2].symbols() == ["__vmalloc_node_range", "module_alloc"]
    assert (g[2].pid, g[2].tgid, g[2].comm, g[2].mask, g[2].order) == (20, 7, "make", 0xCC0, 0)


#: text order (the tie-break without --cull): G3 (H1, STACK_B) < G0 (H1, STACK_A) < G2 (H3) < G1 (H2)
@pytest.mark.parametrize(
    "keys,want",
    [
        ("-times", [(10, 3), (20, 2), (10, 1), (5, 1)]),
        ("-pages", [(5, 1), (10, 3), (20, 2), (10, 1)]),
        ("pid", [(5, 1), (10, 1), (10, 3), (20, 2)]),
        ("tgid", [(5, 1), (20, 2), (10, 1), (10, 3)]),
        ("name", [(10, 1), (10, 3), (5, 1), (20, 2)]),
        ("alloc_ts", [(5, 1), (10, 3), (20, 2), (10, 1)]),
        ("-pid", [(20, 2), (10, 1), (10, 3), (5, 1)]),
        ("n,-times", [(10, 3), (10, 1), (5, 1), (20, 2)]),
        # page_owner_sort's allocator order: CMA < SLAB < VMALLOC < OTHERS
        ("ator,p", [(10, 3), (20, 2), (5, 1), (10, 1)]),
    ],
)
def test_sort_keys(keys: str, want) -> None:
    assert order_of(po.sort_groups(groups(), keys)) == want
    # the CLI prints the same order
    t = po.read(DUMP.encode()).table
    assert [(g.pid, g.count) for g in po.group.groups_of(t, t.order(po.parse_sort(keys)))] == want


def test_sort_by_stacktrace_is_textual() -> None:
    gs = po.sort_groups(groups(), "st")
    assert [g.stack_text for g in gs] == sorted(g.stack_text for g in gs)
    with pytest.raises(PageOwnerError, match="unknown sort key"):
        po.sort_groups(groups(), "bogus")


def test_classic_output_exact() -> None:
    out = po.format_classic(po.sort_groups(groups())[:2])
    assert out == f"3 times:\n{H1}\n{STACK_A}\n2 times:\n{H3}\n{STACK_C}\n"
    assert po.format_classic([]) == ""


def test_page_owner_sort_output_exact() -> None:
    out = po.format_sort(po.sort_groups(groups())[:2])
    assert out == (
        f"3 times, 3 pages, allocated by SLAB :\n{H1}\n{STACK_A}\n"
        f"2 times, 2 pages, allocated by VMALLOC :\n{H3}\n{STACK_C}\n"
    )


def test_cull_and_filters() -> None:
    by_pid = po.sort_groups(po.cull_groups(groups(), ["pid"]))
    assert po.format_sort(by_pid) == (
        "4 times, 4 pages, PID 10\n2 times, 2 pages, PID 20\n1 times, 4 pages, PID 5\n"
    )
    by_stack = po.sort_groups(po.cull_groups(groups(), ["stacktrace"]), "-pages")
    assert po.format_sort(by_stack) == (
        f"2 times, 5 pages:\n{STACK_B}\n3 times, 3 pages:\n{STACK_A}\n2 times, 2 pages:\n{STACK_C}\n"
    )
    both = po.cull_groups(groups(), ["name", "allocator"])
    assert po.format_sort(po.sort_groups(both)).splitlines()[0] == (
        "3 times, 3 pages, task_comm_name: bash, allocated by SLAB "
    )
    f = po.filter_groups(groups(), pids=[10])
    assert [g.count for g in f] == [3, 1]
    assert po.format_sort(po.cull_groups(f, ["name"])) == (
        "4 times, 4 pages, PID 10, task_comm_name: bash\n"
    )
    # groups of two tables do not mix; hand-made groups have no table
    with pytest.raises(PageOwnerError, match="different tables"):
        po.format_sort([groups()[0], groups()[1]])
    with pytest.raises(PageOwnerError, match="not a group"):
        po.sort_groups([po.OwnerGroup(header="h", stack=[], order=0, count=1, pages=1)])
    assert po.filter_groups(groups(), tgids=[7], names=["make"])[0].count == 2
    assert po.filter_groups(groups(), names=["nobody"]) == []
    with pytest.raises(PageOwnerError):
        po.cull_groups(groups(), ["color"])


def test_folded_and_json() -> None:
    assert po.format_folded(groups()) == (
        "copy_process;__get_free_pages 5\n"
        "d_alloc;kmem_cache_alloc 3\n"
        "module_alloc;__vmalloc_node_range 2\n"
    )
    j = po.to_json(po.sort_groups(groups())[:1], {"records": 7})
    assert json.loads(json.dumps(j))["groups"][0]["symbols"] == ["kmem_cache_alloc", "d_alloc"]
    assert j["groups"][0]["count"] == 3 and j["stats"]["records"] == 7


# ---------------------------------------------------------------------------
# real kernels' text

#: 2005 record exactly as the article shows it (no mask field).
ARTICLE = """Page allocated via order 0
[0xc0146f01] kmem_getpages+49
[0xc014846d] cache_grow+173
[0xc0148aac] cache_alloc_refill+460
[0xc0118a8f] copy_files+431
[0xc0148ff5] kmem_cache_alloc+149
[0xc011986b] copy_process+3051
[0xc01199d1] fork_idle+65
[0xc041824a] do_boot_cpu+42

"""

#: 4.x style: decimal PFN, [<addr>] stack lines, no tgid.
OLD_KERNEL = """Page allocated via order 0, mask 0x24201ca(GFP_HIGHUSER_MOVABLE|__GFP_COLD)
PFN 65600 type Movable Block 128 type Movable Flags 0x1fffff80000028(uptodate|lru)
 [<ffffffff811a2c2b>] __alloc_pages_nodemask+0x1bb/0x2e0
 [<ffffffff811f07e1>] alloc_pages_current+0x91/0x110
 [<ffffffff8119851c>] __page_cache_alloc+0x12c/0x160

"""

#: 6.x style: hex PFN, module suffix, free_ts, migrate and memcg lines.
NEW_KERNEL = """Page allocated via order 0, mask 0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), pid 1234, tgid 1234 (kworker/u8:2), ts 2254331085 ns, free_ts 0 ns
PFN 0x10040 type Movable Block 128 type Movable Flags 0x17ffffc0020036(referenced|uptodate|lru|active|mappedtodisk|node=0|zone=2|lastcpupid=0x1fffff)
 post_alloc_hook+0x1d2/0x220
 get_page_from_freelist+0x5b8/0x1150
 __alloc_pages+0x1a3/0x370
 xfs_buf_alloc_pages+0x5a/0x140 [xfs]
Page has been migrated, last migrate reason: compaction
Charged to memcg system.slice

"""


def test_reads_real_kernel_formats() -> None:
    r = po.read((ARTICLE * 3 + OLD_KERNEL * 2 + NEW_KERNEL + NEW_KERNEL.replace("2254331085", "7")).encode())
    gs = r.groups
    assert [g.count for g in gs] == [3, 2, 2]
    assert gs[0].mask is None and gs[0].symbols()[0] == "kmem_getpages" and gs[0].allocator == "SLAB"
    assert gs[1].mask == 0x24201CA and gs[1].pid is None
    assert gs[1].symbols() == ["__alloc_pages_nodemask", "alloc_pages_current", "__page_cache_alloc"]
    new = gs[2]
    assert (new.pid, new.tgid, new.comm, new.first_ts) == (1234, 1234, "kworker/u8:2", 7)
    assert new.symbols()[-1] == "xfs_buf_alloc_pages"
    assert new.extra == ["Charged to memcg system.slice"]
    assert "free_ts" not in new.header and "ts " not in new.header
    assert r.stats["records_2005"] == 3 and r.stats["records_modern"] == 4


# ---------------------------------------------------------------------------
# sources: files, pipes, stdin, never stat()


def test_read_path_never_stats(tmp_path, monkeypatch) -> None:
    p = tmp_path / "dump.txt"
    p.write_text(DUMP)
    calls: list[str] = []
    for name in ("stat", "fstat", "lstat"):
        real = getattr(os, name)

        def spy(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(os, name, spy)
    try:
        r = po.read(str(p), chunk_size=4096)
    finally:
        monkeypatch.undo()
    assert calls == []
    assert r.stats["records"] == 7


def test_read_from_a_pipe_fd_bigger_than_the_pipe_buffer() -> None:
    rfd, wfd = os.pipe()
    data = (DUMP * 2000).encode()  # ~1.8 MB

    def writer() -> None:
        with os.fdopen(wfd, "wb") as w:
            for i in range(0, len(data), 7777):
                w.write(data[i : i + 7777])

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = po.read(rfd)
    finally:
        t.join()
        os.close(rfd)
    assert r.stats["records"] == 14000 and r.stats["bytes"] == len(data)
    assert [g.count for g in r.groups] == [6000, 2000, 4000, 2000]
    assert r.stats["memory"] < 200_000  # distinct records only, not the input


def test_read_file_objects_bytes_and_text() -> None:
    assert po.read(io.BytesIO(DUMP.encode())).stats["records"] == 7
    assert po.read(io.StringIO(DUMP)).stats["records"] == 7
    assert po.read(bytearray(DUMP.encode())).stats["records"] == 7
    with pytest.raises(ParseError):
        po.read(3.5)  # type: ignore[arg-type]
    with pytest.raises(ParseError):
        po.read(b"", chunk_size=10)


def test_cli_reads_stdin_pipe() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "kmm", "page-owner", "sort", "--no-progress", "-", "--top", "1"],
        input=(DUMP * 50).encode(), capture_output=True, check=True,
    )
    assert p.stdout.decode() == f"150 times, 150 pages, allocated by SLAB :\n{H1}\n{STACK_A}\n"


def test_cli_options(tmp_path, capsys) -> None:
    f = tmp_path / "d.txt"
    f.write_text(DUMP)
    assert main(["page-owner", "sort", str(f), "--classic", "-m", "--top", "1"]) == 0
    assert capsys.readouterr().out == f"1 times:\n{H2}\n{STACK_B}\n"
    assert main(["page-owner", "sort", str(f), "--cull=pid", "--pid", "10,20"]) == 0
    assert capsys.readouterr().out == "4 times, 4 pages, PID 10\n2 times, 2 pages, PID 20\n"
    assert main(["page-owner", "sort", str(f), "--folded"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "copy_process;__get_free_pages 5"
    assert main(["page-owner", "sort", str(f), "--json", "-n"]) == 0
    assert [g["comm"] for g in json.loads(capsys.readouterr().out)["groups"]] == ["bash", "bash", "cc1", "make"]
    assert main(["page-owner", "sort", str(f), "--sort=-tgid", "--name", "make"]) == 0
    assert capsys.readouterr().out.startswith("2 times, 2 pages, allocated by VMALLOC :\n")
    out = tmp_path / "out.txt"
    assert main(["page-owner", "sort", str(f), str(out), "-a"]) == 0
    assert out.read_text().startswith(f"1 times, 4 pages, allocated by OTHERS :\n{H2}\n")
    for bad in (["--cull=color"], ["--sort", "zz"], ["--pid", "x"], ["--top", "-1"]):
        assert main(["page-owner", "sort", str(f), *bad]) == 2
        assert "Error" in capsys.readouterr().err


def test_cli_dump_then_sort(tmp_path, capsys) -> None:
    pytest.importorskip("kmm.workloads")
    d = tmp_path / "dump.txt"
    assert main(["page-owner", "dump", str(d), "--seconds", "2", "--leak-every", "10", "--format", "modern"]) == 0
    assert main(["page-owner", "sort", str(d), "--cull=stacktrace", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "leaky_alloc_buffer+0x25/0x60 [leakydrv]" in out


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "text,line,what",
    [
        ("hello\n\n", 1, "unknown format"),
        (DUMP + "Page allocated via order 0\n [0x1] a+1\n", 36, "truncated record"),
        (DUMP + "Page allocated via order 0\n a+0x1/0x", 37, "truncated"),
        (DUMP + "Page allocated via order 0\n\x00\x01\x7fELF\x02\n\n", 37, "binary data"),
        ("Page allocated via order 0\n " + "x" * 70000 + "\n\n", 2, "longer than"),
        ("Page allocated via order , mask 0x0\n a\n\n", 1, "order"),
        ("Page allocated via order 0, mask 0xzz\n a\n\n", 1, "mask"),
        ("Page allocated via order 0, pid abc\n a\n\n", 1, "pid"),
        ("Page allocated via order 0, pid 1, tgid 1 (x\n a\n\n", 1, "comm"),
        ("Page allocated via order 0\nPFN type Movable\n a\n\n", 2, "PFN"),
        ("Page allocated via order 0\n a\nsomething else\n\n", 3, "unexpected line"),
    ],
)
def test_bad_input_names_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ParseError, match=f"^line {line}: .*{what}"):
        po.read(text.encode())
    # lenient: the bad record is skipped and counted, the good ones kept
    if not text.startswith(DUMP):
        text, line = DUMP + text, line + DUMP.count("\n")
    r = po.read(text.encode(), lenient=True)
    assert r.stats["skipped"] == 1 and r.errors == [r.errors[0]]
    assert r.errors[0].startswith(f"line {line}:") and what in r.errors[0]
    assert r.stats["records"] == 7 and sum(g.count for g in r.groups) == 7


def test_garbage_and_missing_files(tmp_path, capsys) -> None:
    junk = bytes(range(256)) * 100
    with pytest.raises(ParseError):
        po.read(junk)
    r = po.read(junk + b"\n\n" + DUMP.encode(), lenient=True)
    assert r.stats["records"] == 7
    with pytest.raises(ParseError, match="cannot open"):
        po.read(str(tmp_path / "missing"))
    with pytest.raises((ParseError, OSError)):
        po.read(str(tmp_path))  # a directory
    bad = tmp_path / "bad.txt"
    bad.write_text(DUMP + "Page allocated via order 0\n a\n")
    assert main(["page-owner", "sort", str(bad)]) == 2
    assert "line 36: truncated record" in capsys.readouterr().err
    assert main(["page-owner", "sort", str(bad), "--lenient"]) == 0
    cap = capsys.readouterr()
    assert "skipped 1 malformed records" in cap.err and cap.out.startswith("3 times")


@settings(max_examples=40, deadline=None)
@given(chunk=st.integers(4096, 70000), copies=st.integers(1, 300))
def test_chunking_never_changes_the_result(chunk: int, copies: int) -> None:
    data = (DUMP * copies).encode()
    whole = po.read(data)
    parts = po.read(io.BytesIO(data), chunk_size=chunk)
    assert [(g.text, g.count, g.pages, g.first_ts) for g in parts.groups] == [
        (g.text, g.count, g.pages, g.first_ts) for g in whole.groups
    ]
    parts.stats.pop("memory")
    whole.stats.pop("memory")
    assert parts.stats == whole.stats


class _Bar:
    def __init__(self) -> None:
        self.n = 0
        self.calls = 0

    def update(self, k: int) -> None:
        self.n += k
        self.calls += 1

    def close(self) -> None:
        pass


def test_progress_reads_in_rust_too(tmp_path, monkeypatch) -> None:
    """With a progress bar, files and pipes are still read by Rust (a big file on
    both cores), the bar told the bytes read; the answer is the same."""
    from kmm.page_owner import reader

    bars: list[_Bar] = []
    monkeypatch.setattr(reader, "_progress_bar", lambda: bars.append(_Bar()) or bars[-1])
    p = tmp_path / "d.txt"
    data = DUMP * 300
    p.write_text(data)
    want = po.read(str(p))
    got = po.read(str(p), progress=True)
    assert [(g.text, g.count) for g in got.groups] == [(g.text, g.count) for g in want.groups]
    assert bars[-1].n == len(data.encode()) and bars[-1].calls >= 1
    rfd, wfd = os.pipe()
    t = threading.Thread(target=lambda: (os.write(wfd, data.encode()), os.close(wfd)))
    t.start()
    try:
        got = po.read(rfd, progress=True)
    finally:
        t.join()
        os.close(rfd)
    assert got.stats["records"] == want.stats["records"] and bars[-1].n == len(data.encode())
