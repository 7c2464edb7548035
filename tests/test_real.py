"""Real machines: kernel trace import, snapshots, Machine.from_snapshot, kmm inspect.

The fixtures in tests/data/real/ are small recordings of a real 6.18 machine
(see its README). The trace tests compare the Rust importer with a small,
obviously correct Python model of the same rules.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import kmm
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kmm import kernel_trace as kt
from kmm import snapshot as ks
from kmm.cli import main
from kmm.errors import NeedsRootError, ParseError, SnapshotError

DATA = Path(__file__).parent / "data" / "real"
FTRACE = DATA / "ftrace.txt.zst"
PERF = DATA / "perf-script.txt.zst"
PERF_FIELDS = DATA / "perf-script-fields.txt.zst"
SNAP = DATA / "snapshot-end.tar.zst"
CHURN = DATA / "churn"  # a kmm record bundle of this machine, shrunk (README)
SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "real"


def text_of(path: Path) -> str:
    return zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read().decode()


# ---- a small, obviously correct model of the import rules -------------------

_LINE = re.compile(r"^\s*(.*?)\s+\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+):\s+(?:\d+\s+)?(?:kmem:)?(\w+):\s*(.*)$")


def model(text: str) -> tuple[list[tuple[int, int, int, int]], dict[str, int]]:
    """(op, obj, order, pid) records and event counts, by the rules of `docs/real.md`."""
    live: dict[int, int] = {}  # pfn -> obj
    freed: set[int] = set()  # pfns freed by mm_page_free, awaiting a batched duplicate
    out = []
    events: dict[str, int] = {}
    nxt = 0
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        m = _LINE.match(line)
        assert m, line
        task, _cpu, _ts, ev, fields = m.groups()
        task = task.split("(")[0].strip()
        last = task.split()[-1]
        if "/" in last and task.count(" "):
            pid = int(last.split("/")[1])
        elif last.isdigit() and " " in task:
            pid = int(last)
        else:
            pid = int(task.rsplit("-", 1)[1])
        events[ev] = events.get(ev, 0) + 1
        kv = dict(f.split("=", 1) for f in fields.split() if "=" in f)
        if ev == "mm_page_alloc":
            pfn = int(kv["pfn"], 16)
            if pfn == 0:
                continue
            if pfn in live:
                out.append((kmm.OP_FREE, live.pop(pfn), 0, pid))
            live[pfn] = nxt
            freed.discard(pfn)
            out.append((kmm.OP_ALLOC, nxt, int(kv["order"]), pid))
            nxt += 1
        elif ev in ("mm_page_free", "mm_page_free_batched"):
            pfn = int(kv["pfn"], 16)
            if ev == "mm_page_free_batched" and pfn in freed:
                freed.discard(pfn)
                continue
            if pfn in live:
                out.append((kmm.OP_FREE, live.pop(pfn), 0, pid))
            if ev == "mm_page_free":
                freed.add(pfn)
            else:
                freed.discard(pfn)
    return out, events


def records(trace: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(r["op"]), int(r["obj"]), int(r["order"]) if r["op"] == kmm.OP_ALLOC else 0, int(r["pid"])) for r in trace]


@pytest.mark.parametrize("path", [FTRACE, PERF, PERF_FIELDS], ids=["ftrace", "perf", "perf-fields"])
def test_import_matches_the_model_on_real_recordings(path):
    text = text_of(path)
    want, events = model(text)
    kt_ = kmm.trace.read_kernel(path)
    assert records(kt_.trace) == want
    s = kt_.summary
    assert {k: v for k, v in s["events"].items() if v} == events
    assert s["lines"] == len(text.splitlines())
    assert s["allocations"] == sum(1 for r in want if r[0] == kmm.OP_ALLOC)
    assert s["frees"] == sum(1 for r in want if r[0] == kmm.OP_FREE)
    assert s["skipped"]["malformed_lines"] == 0
    assert s["format"] == ("ftrace" if path == FTRACE else "perf")
    if path == PERF_FIELDS:
        # period, ip and sym: three fields per line kmm does not read, counted
        assert s["unknown_fields"] == 3 * s["lines"]
    else:
        assert s["unknown_fields"] == 0


def test_batched_duplicates_are_counted_once_on_the_real_trace():
    s = kmm.trace.read_kernel(FTRACE).summary
    assert s["skipped"]["batched_duplicates"] == s["events"]["mm_page_free_batched"] > 0
    assert s["markers"] and s["markers"][0]["text"] == "kmm-snapshot start begin"


def test_perf_with_extra_fields_gives_the_same_trace():
    a = kmm.trace.read_kernel(PERF).trace
    b = kmm.trace.read_kernel(PERF_FIELDS).trace
    assert a.tobytes() == b.tobytes()


def test_pipe_and_small_chunks_give_the_same_trace():
    whole = kmm.trace.read_kernel(FTRACE)
    unzstd = "import sys, zstandard; zstandard.ZstdDecompressor().copy_stream(open(sys.argv[1], 'rb'), sys.stdout.buffer)"
    p = subprocess.Popen([sys.executable, "-c", unzstd, str(FTRACE)], stdout=subprocess.PIPE)
    assert p.stdout is not None
    piped = kmm.trace.read_kernel(p.stdout, chunk=4093)
    p.wait()
    assert piped.trace.tobytes() == whole.trace.tobytes()
    assert piped.summary == whole.summary


def test_a_trace_cut_mid_line_is_counted():
    text = text_of(FTRACE)
    cut = text[: len(text) - 40]
    r = kmm.trace.read_kernel(io.BytesIO(cut.encode()))
    want, _ = model(text[: text.rstrip("\n").rfind("\n")])
    assert r.summary["truncated_last_line"] is True
    assert r.summary["skipped"]["malformed_lines"] == 1
    assert records(r.trace) == want
    assert any("middle of a line" in w for w in kt.warnings(r.summary))


def test_lost_events_lines_and_ring_stats_are_reported():
    text = text_of(FTRACE).splitlines()
    text.insert(500, "CPU:1 [LOST 123 EVENTS]")
    r = kmm.trace.read_kernel(io.BytesIO("\n".join(text).encode()), stats=DATA / "stats-dropped")
    rb = r.summary["ring_buffer"]
    assert rb["dropped"] == 2252575 + 4532109 and rb["overrun"] == 0
    assert r.summary["lost_events"] == 123
    assert r.summary["skipped"]["lost_events"] == 123 + rb["dropped"]
    w = kt.warnings(r.summary)
    assert any("dropped" in x for x in w) and any("lost 123" in x for x in w)


@pytest.mark.parametrize(
    "text, msg",
    [
        (b"", "empty input"),
        (b" bash-1 [000] ..... 1.000000: sched_switch: prev_comm=bash\n" * 3, "only other events (sched_switch)"),
        (b"hello\nworld\n", "not an ftrace or perf script text"),
        (b"# tracer: nop\n#\n", "not an ftrace or perf script text"),
    ],
)
def test_inputs_with_no_page_event_are_errors(text, msg):
    with pytest.raises(ParseError, match=re.escape(msg)):
        kmm.trace.read_kernel(io.BytesIO(text))


def test_corrupt_compressed_input_is_an_error(tmp_path):
    raw = FTRACE.read_bytes()
    p = tmp_path / "cut.zst"
    p.write_bytes(raw[: len(raw) // 2])
    # a cut zstd stream ends early: the lines before are imported, the cut line counted
    r = kmm.trace.read_kernel(p)
    assert 0 < r.summary["lines"] < 20013
    p.write_bytes(raw[:8] + b"\0" * 100)
    with pytest.raises(ParseError):
        kmm.trace.read_kernel(p)


def test_other_events_are_counted_not_fatal():
    text = text_of(PERF).splitlines()
    text[10:10] = ["   sh 7 [000] 1.000000: sched:sched_switch: prev_comm=sh"] * 4
    r = kmm.trace.read_kernel(io.BytesIO("\n".join(text).encode()))
    assert r.summary["other_events"] == {"sched_switch": 4}
    assert r.summary["skipped"]["other_event_lines"] == 4


def test_cli_trace_import_json_and_output(tmp_path, capsys):
    out = tmp_path / "t.npy"
    assert main(["trace", "import", str(FTRACE), "-o", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert list(s)[:6] == ["format", "lines", "events", "allocations", "frees", "skipped"]
    t = np.load(out)
    assert t.dtype == kmm.TRACE_DTYPE
    assert t.tobytes() == kmm.trace.read_kernel(FTRACE).trace.tobytes()
    assert s["records"] == len(t)
    assert main(["trace", "import", str(tmp_path / "missing.txt")]) == 2


_COMM = st.text(alphabet="abcXYZ019 -_/:.", min_size=1, max_size=16).filter(lambda c: c.strip() == c and c)


@settings(max_examples=200, deadline=None)
@given(comm=_COMM, pid=st.integers(0, 4_000_000), cpu=st.integers(0, 511), pfn=st.integers(1, 2**40),
       order=st.integers(0, 10), perf=st.booleans())
def test_any_comm_pid_and_cpu_are_read_back(comm, pid, cpu, pfn, order, perf):
    if perf:
        line = f"{comm:>16} {pid} [{cpu:03d}] 12.000001: kmem:mm_page_alloc: page=0x1 pfn={pfn:#x} order={order} migratetype=1 gfp_flags=GFP_KERNEL\n"
    else:
        line = f"{comm:>16}-{pid:<7} [{cpu:03d}] d..2. 12.000001: mm_page_alloc: page=00000000deadbeef pfn={pfn:#x} order={order} migratetype=1 gfp_flags=GFP_KERNEL\n"
    r = kmm.trace.read_kernel(io.BytesIO(line.encode()))
    assert r.summary["skipped"]["malformed_lines"] == 0, line
    (rec,) = r.trace
    assert (int(rec["pid"]), int(rec["order"]), int(rec["gfp"])) == (pid, order, kmm.GFP_KERNEL)


# ---- snapshots ----------------------------------------------------------------


def test_snapshot_fixture_loads_and_is_consistent():
    s = ks.load(SNAP)
    assert s.label == "end" and s.consistent is True
    assert len(s.kpageflags) == len(s.kpagecount) >= max(z.end_pfn for z in s.zones())


@pytest.mark.parametrize("allocator", ["vanilla", "antifrag", "mobility"])
def test_from_snapshot_gives_the_zones_and_buddyinfo_exactly(allocator):
    m = kmm.Machine.from_snapshot(SNAP, allocator=allocator)
    m.check()
    snap = m.snapshot
    assert m.buddyinfo() == snap.texts["buddyinfo"]
    real = {(z.node, z.name): z for z in snap.zones()}
    for st_ in m.zone_stats():
        z = real[(st_.node, st_.zone)]
        assert (st_.start_pfn, st_.spanned, st_.present, st_.managed) == (z.start_pfn, z.spanned, z.present, z.managed)
        assert (st_.min, st_.low, st_.high) == z.watermarks


def test_from_snapshot_meets_the_pageblock_counts():
    m = kmm.Machine.from_snapshot(SNAP, allocator="mobility")
    counts = ks.parse_block_counts(m.snapshot.texts["pagetypeinfo"])
    ours = ks.parse_block_counts(m.pagetypeinfo())
    for key, c in counts.items():
        assert ours[key]["Unmovable"] == c["Unmovable"] + c["HighAtomic"]
        assert ours[key]["Reclaimable"] == c["Reclaimable"]


def test_snapshot_directory_and_pack_round_trip(tmp_path):
    d = tmp_path / "mybox"
    d.mkdir()
    with zstandard.ZstdDecompressor().stream_reader(open(SNAP, "rb")) as zr, tarfile.open(fileobj=zr, mode="r|") as tf:
        tf.extractall(d, filter="data")
    (d / "kmm-snapshot.json").unlink()
    a = ks.load(d)
    assert a.label == "mybox" and a.consistent is True
    out = tmp_path / "packed.tar.zst"
    assert main(["snapshot", "--from", str(d), "-o", str(out)]) == 0
    b = ks.load(out)
    assert b.label == "mybox" and b.texts == a.texts
    assert np.array_equal(a.kpageflags, b.kpageflags)
    assert kmm.Machine.from_snapshot(d).buddyinfo() == kmm.Machine.from_snapshot(out).buddyinfo()


@pytest.mark.skipif(not (SHARED_REAL / "end").is_dir(), reason="shared/real not beside the checkout")
def test_the_shared_recording_loads_from_its_directories():
    for name in ("start", "end"):
        m = kmm.Machine.from_snapshot(SHARED_REAL / name)
        m.check()
        assert m.buddyinfo() == m.snapshot.texts["buddyinfo"]


def test_a_truncated_snapshot_file_is_an_error(tmp_path):
    raw = SNAP.read_bytes()
    p = tmp_path / "cut.tar.zst"
    p.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(SnapshotError, match=r"cut\.tar\.zst"):
        ks.load(p)
    p.write_bytes(b"not a snapshot")
    with pytest.raises(SnapshotError, match="not a kmm snapshot"):
        ks.load(p)
    with pytest.raises(SnapshotError, match="no snapshot at"):
        ks.load(tmp_path / "nothing")


def test_a_short_kpageflags_is_an_error(tmp_path):
    s = ks.load(SNAP)
    for name, t in s.texts.items():
        (tmp_path / name).write_text(t)
    (tmp_path / "kpagecount").write_bytes(s.kpagecount.tobytes())
    (tmp_path / "kpageflags").write_bytes(s.kpageflags[:1000].tobytes())
    with pytest.raises(SnapshotError, match="kpageflags holds 1000 pfns but zoneinfo's zones end at pfn"):
        ks.load(tmp_path)
    (tmp_path / "kpageflags").write_bytes(s.kpageflags.tobytes()[:-3])
    with pytest.raises(SnapshotError, match="not a whole number of u64"):
        ks.load(tmp_path)
    (tmp_path / "kpageflags").unlink()
    with pytest.raises(SnapshotError, match="lacks kpageflags"):
        ks.load(tmp_path)


def test_a_snapshot_cut_anywhere_is_a_clear_error(tmp_path, capsys):
    raw = SNAP.read_bytes()
    p = tmp_path / "cut.tar.zst"
    for k in range(1, 8):
        p.write_bytes(raw[: len(raw) * k // 8])
        with pytest.raises(SnapshotError, match=r"cut\.tar\.zst"):
            ks.load(p)
    assert main(["inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kmm inspect: SnapshotError:") and err.count("\n") == 1 and "Traceback" not in err
    # a dictionary-coded kpageflags shorter than zoneinfo's zones
    s = ks.load(SNAP)
    files = {n: t.encode() for n, t in s.texts.items()}
    files["kpageflags"] = s.kpageflags[:4096].tobytes()
    files["kpagecount"] = s.kpagecount.tobytes()
    short = tmp_path / "short.tar.zst"
    ks.write(files, dict(s.meta), short)
    with pytest.raises(SnapshotError, match="kpageflags holds 4096 pfns but zoneinfo's zones end at pfn"):
        ks.load(short)
    with pytest.raises(SnapshotError, match="kpageflags holds 4096 pfns"):
        kmm.Machine.from_snapshot(short)


def test_zoneinfo_and_block_count_parsers_reject_garbage():
    with pytest.raises(SnapshotError, match="no zone with pages"):
        ks.parse_zoneinfo("hello\n")
    with pytest.raises(SnapshotError, match="has no 'managed'"):
        ks.parse_zoneinfo("Node 0, zone      DMA\n  spanned 10\n  present 10\n  start_pfn: 1\n")
    with pytest.raises(SnapshotError, match="block counts for"):
        ks.parse_block_counts("Number of blocks type     Unmovable      Movable\nNode 0, zone      DMA            1\n")


def _can_read_kpageflags() -> bool:
    try:
        with open("/proc/kpageflags", "rb") as f:
            f.read(8)
        return True
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0 or not _can_read_kpageflags(), reason="needs root and /proc/kpageflags")
def test_live_snapshot_as_root(tmp_path):
    # buddyinfo read before and after kpageflags can agree while a page was
    # allocated and freed in between (kpageflags then caught it in use), so a
    # "consistent" snapshot may still rebuild a different buddyinfo on a busy
    # machine.  Up to five snapshots are taken: every one must load and pass
    # check(), and one consistent snapshot must rebuild its buddyinfo exactly.
    seen = []
    for i in range(5):
        out = tmp_path / f"live{i}.tar.zst"
        assert main(["snapshot", "-o", str(out), "--label", "t1"]) == 0
        s = ks.load(out)
        assert s.label == "t1" and s.meta["source"] == "live"
        assert isinstance(s.meta["buddyinfo_changed"], bool)
        m = kmm.Machine.from_snapshot(out, allocator="vanilla")
        m.check()
        seen.append((s.consistent, s.consistent and m.buddyinfo() == s.texts["buddyinfo"]))
        if seen[-1][1]:
            return
    if not any(c for c, _ in seen):
        pytest.skip("buddyinfo changed during every one of five snapshots (a busy machine)")
    pytest.fail(f"no consistent snapshot rebuilt its buddyinfo exactly: {seen}")


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to nobody from root")
def test_snapshot_without_root_names_the_file(tmp_path):
    try:
        r = subprocess.run(
            [sys.executable, "-m", "kmm", "snapshot", "-o", str(tmp_path / "x.tar.zst")],
            user=65534, capture_output=True, text=True, timeout=120, cwd="/",
        )
    except PermissionError:
        pytest.skip("the Python interpreter is not executable by nobody")
    if "No module named" in r.stderr or "Permission denied: '" in r.stderr:
        pytest.skip("the venv is not readable by nobody")
    assert r.returncode == 2, r.stderr
    assert "NeedsRootError" in r.stderr and "/proc/kpageflags" in r.stderr and "needs root" in r.stderr


def test_a_refused_proc_file_is_named(monkeypatch, capsys):
    real_open = open

    def refuse(path, *a, **k):
        if str(path) == "/proc/kpageflags":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(ks, "open", refuse, raising=False)
    with pytest.raises(NeedsRootError, match="/proc/kpageflags: permission denied; a snapshot of a live machine needs root"):
        ks.take()
    assert main(["snapshot", "-o", os.devnull]) == 2
    assert "/proc/kpageflags" in capsys.readouterr().err


def test_needs_root_error_is_a_permission_error():
    assert issubclass(NeedsRootError, PermissionError) and issubclass(NeedsRootError, kmm.KmmError)


def test_inspect_json(capsys):
    assert main(["inspect", str(SNAP), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["consistent"] is True and r["buddyinfo_equal"] is True
    assert [z["zone"] for z in r["zones"]] == ["DMA", "DMA32", "Normal"]
    for zone, c in r["pageblocks"].items():
        z = next(x for x in r["zones"] if f"{x['node']}:{x['zone']}" == zone)
        # the pageblocks holding a pfn of the zone (DMA starts at pfn 1: 8 of them)
        first = z["start_pfn"] // 512
        assert sum(c.values()) == -(-(z["start_pfn"] + z["spanned"]) // 512) - first
    assert set(r["ceiling"]) == {"9", "10"}
    # the extfrag indices are those of the snapshot's own buddyinfo
    bi = kmm.procfs.parse_buddyinfo(ks.load(SNAP).texts["buddyinfo"])
    ui = kmm.procfs.unusable_indices(bi.nr_free)
    assert [z["unusable_index"]["9"] for z in r["zones"]] == [int(x) for x in ui.reshape(-1, 11)[: len(r["zones"]), 9]]


# ---- replay of a real trace (kmm.real_replay, kmm replay, kmm record) ------

from kmm import real_replay as rr


def _window_trace(tmp_path: Path, label: str = "end", extra: str = "") -> Path:
    """The real ftrace fixture's events after a `kmm-snapshot LABEL end` marker."""
    text = text_of(FTRACE)
    lines = text.splitlines(keepends=True)
    marker = f"             kmm-1   [001] ...1.  4087.000000: tracing_mark_write: kmm-snapshot {label} end\n"
    p = tmp_path / "trace.txt"
    p.write_text("".join(lines[:12]) + marker + "".join(lines[12:]) + extra)
    return p


def test_policy_replay_runs_every_variant_and_each_checks_clean(tmp_path):
    from kmm.highalloc import VARIANTS

    trace = _window_trace(tmp_path)
    machines, r = rr.replay(trace, snapshot=SNAP, placement="policy", variants=list(VARIANTS))
    assert set(r["columns"]) == set(VARIANTS)
    imp = r["import"]
    assert imp["allocations"] > 1000 and imp["frees"] > 500
    for name, m in machines.items():
        m.check()
        col = r["columns"][name]
        assert col["free_pages"] == sum(col["free_per_order"][o] << o for o in range(11))
        assert col["counters"]["alloc"] >= imp["allocations"] - col["alloc_failures"] - 1
    # the same records on every allocator: object ids stay below the live peak
    assert r["records"] == imp["allocations"] + imp["frees"]


def test_recorded_replay_counts_divergences_with_examples(tmp_path):
    # the fixture's events are from another moment than the snapshot: they disagree
    end = "             kmm-1   [001] ...1.  4099.000000: tracing_mark_write: kmm-snapshot end begin\n"
    trace = _window_trace(tmp_path, extra=end)
    machines, r = rr.replay(trace, snapshot=SNAP, compare=SNAP, placement="recorded")
    d = r["columns"]["recorded"]["divergences"]
    assert d["events"] > 0 and d["examples"]
    assert set(d["by_reason"]) <= set(kmm._kmm.REPLAY_DIVERGENCES)
    e = d["examples"][0]
    assert {"reason", "line", "event", "pfn", "order", "found"} <= set(e)
    c = r["columns"]["recorded"]["compare"]
    assert c["free_both"] + c["free_only_real"] == r["columns"]["real"]["free_pages"]
    assert c["free_both"] + c["free_only_kmm"] == r["columns"]["recorded"]["free_pages"]
    machines["recorded"].check()


def test_recorded_replay_of_no_events_reproduces_the_snapshot(tmp_path):
    # an empty window (only the markers and one event after the end): the end state is the start
    p = tmp_path / "t.txt"
    p.write_text(
        "  kmm-1 [001] ...1. 1.000000: tracing_mark_write: kmm-snapshot end end\n"
        "  kmm-1 [001] ...1. 1.000001: tracing_mark_write: kmm-snapshot end begin\n"
        "  sh-2 [001] ..... 1.000002: mm_page_free: page=0x1 pfn=0x1000 order=0\n"
    )
    machines, r = rr.replay(p, snapshot=SNAP, compare=SNAP, placement="recorded")
    c = r["columns"]["recorded"]["compare"]
    assert c["free_only_kmm"] == 0 and c["free_only_real"] == 0 and c["agreement"] == 1.0
    assert r["columns"]["recorded"]["buddyinfo"] == ks.load(SNAP).texts["buddyinfo"]
    assert r["window"]["events_in_window"] == 0 and r["window"]["events_after"] == 1


def test_replay_bad_inputs_are_clear_errors_or_counted(tmp_path, capsys):
    # the start snapshot's marker is not in the trace
    with pytest.raises(ParseError, match="kmm-snapshot end end"):
        rr.replay(FTRACE, snapshot=SNAP, placement="policy")
    # a trace of other events only
    p = tmp_path / "other.txt"
    p.write_text("  a-1 [000] ..... 1.0: sched_switch: prev_comm=a\n")
    with pytest.raises(ParseError, match="no kmem page event"):
        rr.replay(p, snapshot=SNAP, placement="recorded")
    # a trace cut mid-line: counted and reported
    cut = _window_trace(tmp_path, extra="   sh-1 [000] ..... 4088.1: mm_page_al")
    _, r = rr.replay(cut, snapshot=SNAP, placement="recorded")
    assert r["window"]["truncated_last_line"]
    assert any("middle of a line" in w for w in rr.warnings(r))
    # a perf script with fields kmm does not read
    p = tmp_path / "perf.txt"
    p.write_text("  kmm 1 [001] 1.000000: tracing_mark_write: kmm-snapshot end end\n" + text_of(PERF_FIELDS))
    _, r = rr.replay(p, snapshot=SNAP, placement="policy", variants=["mobility"])
    assert r["import"]["allocations"] > 0
    # lost events in the buffer stats of a recording directory: reported
    d = tmp_path / "rec"
    d.mkdir()
    (d / "start.tar.zst").write_bytes(SNAP.read_bytes())
    (d / "trace.txt").write_text(_window_trace(tmp_path).read_text())
    (d / "stats").write_text((DATA / "stats-dropped").read_text())
    assert main(["replay", str(d), "--placement", "recorded", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "dropped" in err and json.loads(out)["ring_buffer"]["dropped"] > 0
    # unknown variants, no start snapshot, a file that is nothing
    assert main(["replay", str(d), "--variants", "nonsense"]) == 2
    assert "unknown variants" in capsys.readouterr().err
    assert main(["replay", str(FTRACE)]) == 2
    assert "start snapshot" in capsys.readouterr().err
    bad = tmp_path / "bad.kmm"
    with tarfile.open(bad, "w:") as tf:
        ti = tarfile.TarInfo("x")
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(ParseError, match="not a kmm recording"):
        rr.load_bundle(bad)


def test_cli_replay_text_json_and_plot(tmp_path, capsys):
    end = "             kmm-1   [001] ...1.  4099.000000: tracing_mark_write: kmm-snapshot end begin\n"
    trace = _window_trace(tmp_path, extra=end)
    args = ["replay", str(trace), "--snapshot", str(SNAP), "--compare", str(SNAP), "--variants", "vanilla,mobility"]
    assert main(args + ["--plot", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    for key in ("free pages", "unusable@9", "fragmentation@10", "ceiling order 9", "fallbacks", "free_both", "free_only_kmm", "free_only_real"):
        assert key in out, key
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["page-map-mobility.png", "page-map-real.png", "page-map-vanilla.png"]
    assert main(args + ["--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["columns"]) == ["vanilla", "mobility", "real"]


@pytest.mark.skipif(not (SHARED_REAL / "end").is_dir(), reason="shared/real not beside the checkout")
def test_recorded_replay_of_the_shared_recording_agrees():
    _, r = rr.replay(SHARED_REAL, placement="recorded")
    assert r["columns"]["recorded"]["compare"]["agreement"] >= 0.999


def test_recorded_replay_of_our_recording_agrees():
    # a recording of a busy machine other than shared/real: >= 99.9% of the free pfns agree
    machines, r = rr.replay(CHURN, placement="recorded")
    rec = r["columns"]["recorded"]
    c = rec["compare"]
    assert c["agreement"] >= 0.999, c
    assert r["window"]["events_in_window"] > 50_000 and r["window"]["lost_events"] == 0
    assert r["ring_buffer"]["dropped"] == 0
    # what does not agree is reported: divergences with examples, pfn counts
    assert c["free_only_kmm"] + c["free_only_real"] > 0 and rec["divergences"]["events"] > 0
    assert rec["divergences"]["examples"]
    assert c["free_both"] + c["free_only_real"] == r["columns"]["real"]["free_pages"]
    machines["recorded"].check()


def test_policy_replay_of_our_recording_runs_every_variant_clean():
    from kmm.highalloc import VARIANTS

    machines, r = rr.replay(CHURN, placement="policy", variants=list(VARIANTS))
    assert set(machines) == set(VARIANTS) | {"real"}
    imp = r["import"]
    assert imp["allocations"] > 10_000 and imp["frees"] > 10_000
    for m in machines.values():
        m.check()
    assert len({r["columns"][v]["free_pages"] for v in VARIANTS}) > 1  # the allocators differ


def test_snapshot_format_1_files_are_still_read(tmp_path):
    # format 1 kept the u64 arrays raw; format 2 dictionary-codes them
    s = ks.load(SNAP)
    old = tmp_path / "old.tar.zst"
    with open(old, "wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as zw, tarfile.open(fileobj=zw, mode="w|") as tf:
        members = [(ks.META, json.dumps(dict(s.meta, format="kmm-snapshot 1")).encode())]
        members += [(n, t.encode()) for n, t in s.texts.items()]
        members += [("kpageflags", s.kpageflags.tobytes()), ("kpagecount", s.kpagecount.tobytes())]
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    o = ks.load(old)
    assert np.array_equal(o.kpageflags, s.kpageflags) and np.array_equal(o.kpagecount, s.kpagecount)
    assert o.texts == s.texts
    with tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(open(SNAP, "rb")), mode="r|") as tf:
        names = [ti.name for ti in tf]
    assert "kpageflags.words" in names and "kpageflags.index" in names and "kpageflags" not in names


def test_a_corrupt_dictionary_coded_snapshot_is_an_error(tmp_path):
    s = ks.load(SNAP)
    files = {n: t.encode() for n, t in s.texts.items()}
    files["kpageflags"] = s.kpageflags.tobytes()
    files["kpagecount"] = s.kpagecount.tobytes()
    ok = tmp_path / "ok.tar.zst"
    ks.write(files, dict(s.meta), ok)
    assert np.array_equal(ks.load(ok).kpageflags, s.kpageflags)
    # an index past the words: rewrite the archive with one word fewer
    raw = zstandard.ZstdDecompressor().stream_reader(open(ok, "rb")).read()
    members = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for ti in tf:
            data = tf.extractfile(ti).read()
            if ti.name == "kpageflags.words":
                data = data[:-8]
            members.append((ti.name, data))
    bad = tmp_path / "bad.tar.zst"
    with open(bad, "wb") as fo, zstandard.ZstdCompressor().stream_writer(fo) as zw, tarfile.open(fileobj=zw, mode="w|") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    with pytest.raises(SnapshotError, match="past the"):
        ks.load(bad)


def _tracefs_state() -> tuple[bool, str]:
    mounted = os.path.exists("/sys/kernel/tracing/trace_marker")
    return mounted, open("/sys/kernel/tracing/buffer_size_kb").read() if mounted else ""


@pytest.mark.skipif(os.geteuid() != 0 or not _can_read_kpageflags() or not os.environ.get("KMM_LIVE_TESTS"),
                    reason="needs root, /proc/kpageflags and KMM_LIVE_TESTS=1 (records this machine for ~30 s)")
def test_record_then_recorded_replay_agrees_on_this_machine(tmp_path):
    before = _tracefs_state()
    out = tmp_path / "rec.kmm"
    code = "b=[bytearray(1 << 16) for _ in range(2000)]; del b[::2]"
    assert main(["record", "-o", str(out), "--buffer-kb", "131072", "--", sys.executable, "-c", code]) == 0
    assert _tracefs_state() == before
    _, r = rr.replay(out, placement="recorded")
    if r.get("ring_buffer", {}).get("dropped"):
        pytest.skip("the ring buffer dropped events on this busy machine")
    assert r["columns"]["recorded"]["compare"]["agreement"] >= 0.999
    # a failing command: settings restored, exit status passed on
    assert main(["record", "-o", str(tmp_path / "f.kmm"), "--buffer-kb", "4096", "--", "false"]) == 1
    assert _tracefs_state() == before


def _fake_tracefs(root: Path) -> dict[str, str]:
    files = {"trace_marker": "", "tracing_on": "1\n", "buffer_size_kb": "1408 (expanded: 7)\n",
             "options/overwrite": "1\n", "trace": "# tracer: nop\n", "per_cpu/cpu0/stats": "entries: 0\ndropped events: 0\n"}
    for e in ("mm_page_alloc", "mm_page_alloc_zone_locked", "mm_page_free", "mm_page_free_batched",
              "mm_page_pcpu_drain", "mm_page_alloc_extfrag"):
        files[f"events/kmem/{e}/enable"] = "0\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return files


@pytest.mark.parametrize("failure", [RuntimeError("snapshot failed"), KeyboardInterrupt()])
def test_record_restores_tracefs_on_failure_and_ctrl_c(tmp_path, monkeypatch, failure):
    from kmm import recording

    root = tmp_path / "tracing"
    _fake_tracefs(root)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    calls = []

    def take(**kw):
        calls.append(kw)
        # while recording, the events are on, overwrite off and the buffer resized
        assert (root / "events/kmem/mm_page_alloc/enable").read_text() == "1\n"
        assert (root / "options/overwrite").read_text() == "0\n"
        assert (root / "buffer_size_kb").read_text() == "2048\n"
        raise failure

    monkeypatch.setattr(recording._snapshot, "take", take)
    monkeypatch.setattr(recording._snapshot, "live_buffers", lambda: {})
    with pytest.raises(type(failure)):
        recording.record(tmp_path / "out.kmm", ["true"], buffer_kb=2048, tracefs=str(root))
    assert calls
    assert (root / "events/kmem/mm_page_alloc/enable").read_text() == "0\n"
    assert (root / "options/overwrite").read_text() == "1\n"
    assert (root / "tracing_on").read_text() == "1\n"
    assert (root / "buffer_size_kb").read_text() == "1408\n"
    assert not (tmp_path / "out.kmm").exists()


def test_record_needs_root_and_a_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["record", "-o", str(tmp_path / "r.kmm"), "--", "true"]) == 2
    assert "needs root" in capsys.readouterr().err
    assert main(["record", "-o", str(tmp_path / "r.kmm")]) == 2
    assert "needs a command" in capsys.readouterr().err
