"""kmm._variants: the load generated once, replayed by every variant (in this
process or in workers reading it as it is written), and the shared config check."""

from __future__ import annotations

import os

import kmm
import numpy as np
import pytest
from kmm._variants import check_config, run_variants
from kmm.highalloc import VARIANTS, HighallocConfig


def produce(store) -> int:
    n = 0
    for k in range(3):
        t = kmm.empty_trace(1000 + k)
        t["op"] = kmm.OP_TICK
        t["obj"] = k + 1
        store.put(f"warm{k}", t)
        n += len(t)
    store.put("last", kmm.empty_trace(7))
    return n


def variant(name, cfg, chunks, tick, scale):
    if name == "boom":
        raise kmm.ConfigError("boom")
    warm = [int(c["obj"].sum()) for c in chunks.group("warm")]
    if tick:
        tick()
    return {"name": name, "warm": warm, "last": len(chunks.get("last")), "scale": scale}


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_every_variant_sees_every_chunk_whatever_the_processes(processes: int) -> None:
    gen, res = run_variants(variant, ["a", "b", "c"], None, produce, 5, processes=processes)
    assert gen == 3003
    assert list(res) == ["a", "b", "c"]
    for n, r in res.items():
        assert r == {"name": n, "warm": [1000, 2002, 3006], "last": 7, "scale": 5}


@pytest.mark.parametrize("processes", [1, 2])
def test_a_variant_error_reaches_the_caller(processes: int) -> None:
    with pytest.raises(kmm.ConfigError, match="boom"):
        run_variants(variant, ["a", "boom"], None, produce, 1, processes=processes)


def missing(name, cfg, chunks, tick):
    return chunks.get("nope")


@pytest.mark.parametrize("processes", [1, 2])
def test_a_chunk_never_generated_is_an_error(processes: int) -> None:
    with pytest.raises(kmm.BenchmarkError, match="no chunk 'nope'"):
        run_variants(missing, ["a", "b"], None, produce, processes=processes)


def test_check_config_names_the_first_bad_field() -> None:
    ok = HighallocConfig()
    assert check_config(ok, layouts=("x86_32",), variants=VARIANTS) == 1536 << 20
    for bad, match in [
        (HighallocConfig(layout="arm"), "layout"),
        (HighallocConfig(mem="12XB"), "mem"),
        (HighallocConfig(variants=[]), "variants"),
        (HighallocConfig(variants=["slab"]), "variants"),
        (HighallocConfig(gfp="GFP_NOPE"), "gfp"),
        (HighallocConfig(order=11), "order"),
        (HighallocConfig(warmup_s=np.nan), "warmup_s"),
        (HighallocConfig(oom="yes"), "oom"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(kmm.BenchmarkError, match=match):
            bad.validate()
    HighallocConfig(builds=None, attempts_rest=None).validate()  # None: the default


def test_the_load_file_leaves_a_small_dev_shm_alone(monkeypatch, tmp_path):
    from kmm import _variants

    # a roomy, writable directory is used; one with less free than the floor is not
    monkeypatch.setattr(_variants, "_SHM", str(tmp_path))
    monkeypatch.setattr(_variants, "_SHM_MIN_FREE", 0)
    assert _variants._load_dir() == str(tmp_path)
    monkeypatch.setattr(_variants, "_SHM_MIN_FREE", 1 << 62)
    assert _variants._load_dir() is None
    monkeypatch.setattr(_variants, "_SHM", str(tmp_path / "missing"))
    monkeypatch.setattr(_variants, "_SHM_MIN_FREE", 0)
    assert _variants._load_dir() is None


@pytest.mark.parametrize("processes", [1, 2])
def test_a_load_kept_whole_that_outgrows_the_memory_left_is_refused_before_the_machine_runs_short(
    processes: int, monkeypatch, tmp_path
) -> None:
    # with fewer workers than variants the whole load is kept, and a 64 GiB
    # machine's is tens of GB of records: it must be refused with a clear
    # error, not end in the host's OOM killer. The budget is made tiny here
    # (two 1,000-record chunks fit, the third does not).
    from kmm import _variants

    monkeypatch.setattr(_variants, "_budget", lambda directory: 2 * 1001 * kmm.empty_trace(1).nbytes + 10)
    monkeypatch.setattr(_variants, "_load_dir", lambda: str(tmp_path))
    with pytest.raises(kmm.BenchmarkError, match=r"generated load has reached .* GB of trace records"):
        run_variants(variant, ["a", "b", "c"], None, produce, 1, processes=processes)
    assert list(tmp_path.iterdir()) == []  # the shared load files are gone


def many(store) -> list[int]:
    """60 chunks of 1,000 records; returns how many chunk files were kept after each put."""
    kept = []
    for k in range(60):
        t = kmm.empty_trace(1000)
        t["op"] = kmm.OP_TICK
        t["obj"] = k
        store.put(f"c{k:03d}", t)
        d = getattr(store, "_dir", None)  # the shared directory, with workers
        kept.append(0 if d is None else sum(1 for p in d.rglob("*.trace")))
    return kept


def read_all(name, cfg, chunks, tick):
    import time

    out = []
    for k, c in enumerate(chunks.group("c")):
        if name == "slow" and k % 10 == 0:
            time.sleep(0.02)  # the slowest variant holds generation back
        out.append(int(c["obj"][0]))
    return out


def test_a_load_streams_through_a_worker_per_variant_keeping_only_the_window(monkeypatch, tmp_path) -> None:
    # one worker per variant (the default): a chunk every variant has read is
    # removed, and generation waits while the window (here 3 chunks) is full,
    # so a load of any size keeps only that much; a tiny budget that would
    # refuse the whole load does not refuse it
    from kmm import _variants

    nbytes = kmm.empty_trace(1000).nbytes
    monkeypatch.setattr(_variants, "_STREAM_WINDOW", 3 * nbytes)
    monkeypatch.setattr(_variants, "_budget", lambda directory: 8 * nbytes)
    monkeypatch.setattr(_variants, "_load_dir", lambda: str(tmp_path))
    kept, res = run_variants(read_all, ["a", "slow", "b"], None, many)
    assert res == {n: list(range(60)) for n in ("a", "slow", "b")}
    assert max(kept) <= 3
    assert list(tmp_path.iterdir()) == []


def backwards(name, cfg, chunks, tick):
    chunks.get("c001")
    return len(chunks.get("c000"))


def test_a_variant_that_reads_a_streamed_load_out_of_order_is_told_so() -> None:
    with pytest.raises(kmm.BenchmarkError, match="reads its chunks in the order"):
        run_variants(backwards, ["a", "b"], None, many)
    # kept whole, any order is fine
    assert run_variants(backwards, ["a", "b"], None, many, processes=1)[1] == {"a": 1000, "b": 1000}


def test_the_budget_is_bounded_by_the_memory_available_for_a_load_in_memory() -> None:
    from kmm import _variants

    avail = _variants._mem_available()
    if avail is None:
        pytest.skip("no /proc/meminfo")
    left = max(0, avail - max(2 << 30, avail // 4))
    assert _variants._budget(None) is not None
    assert 0 <= _variants._budget(None) <= left
    if os.path.isdir("/dev/shm"):
        assert 0 <= _variants._budget("/dev/shm") <= left


@pytest.mark.parametrize("processes", [1, 2])
def test_a_load_kept_in_memory_is_refused_when_the_host_runs_low_while_it_grows(
    processes: int, monkeypatch, tmp_path
) -> None:
    # the room at the start is not enough: the generator and the machines grow
    # meanwhile, so MemAvailable is read again at every chunk
    from kmm import _variants

    left = iter([10 << 30, 10 << 30] + [0] * 100)  # after two chunks the host is out of memory
    monkeypatch.setattr(_variants, "_budget", lambda directory: None)
    monkeypatch.setattr(_variants, "_in_memory", lambda directory: True)
    monkeypatch.setattr(_variants, "_mem_available", lambda: next(left))
    monkeypatch.setattr(_variants, "_load_dir", lambda: str(tmp_path))
    with pytest.raises(kmm.BenchmarkError, match=r"would have .* GB of memory left, less than the .* GB kept free"):
        run_variants(variant, ["a", "b"], None, produce, 1, processes=processes)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("processes", [["--processes", "2"], []], ids=["kept", "streamed"])
def test_sigterm_stops_the_workers_and_removes_the_shared_load_file(processes: list[str], tmp_path) -> None:
    # `kill PID` (or a job scheduler's stop) must not leave the load file,
    # which is memory in /dev/shm until reboot, nor a worker behind
    import glob
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    pattern = [os.path.join(d, "kmm-load-*") for d in ("/dev/shm", tempfile.gettempdir())]
    before = {p for pat in pattern for p in glob.glob(pat)}
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmm", "highalloc", "--quick", "--no-progress", *processes],
        stdout=subprocess.DEVNULL, stderr=err, text=True, start_new_session=True,
    )
    new: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while not new:
            assert proc.poll() is None, "the run ended before its load file was seen"
            assert time.monotonic() < deadline, "no load file appeared"
            time.sleep(0.02)
            new = {p for pat in pattern for p in glob.glob(pat)} - before
        time.sleep(0.3)  # generating and replaying now
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        # no worker of the run is left (its session's processes are gone)
        alive = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left, so a failure cannot hang
        except ProcessLookupError:
            pass
        proc.wait()
        leftover = [p for p in new if os.path.exists(p)]
        for p in leftover:
            shutil.rmtree(p, ignore_errors=True)
    err.seek(0)
    assert proc.returncode == 128 + signal.SIGTERM, err.read()
    assert alive == []
    assert leftover == []
