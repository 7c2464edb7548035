"""kmm sweep against a real ``dask scheduler`` + ``dask worker``, and Ctrl-C (a real SIGINT)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from kmm import sweep

pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from sweep_helpers import TINY_REST, deterministic, kmm_cli

DASK = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> list[str]:
    import psutil

    alive = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(p.info["cmdline"] or []))
        except (OSError, psutil.Error):
            continue
    return alive


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.skipif(DASK is None, reason="the dask command is not installed")
def test_sweep_on_a_real_scheduler_matches_the_local_run(tmp_path):
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "dask.log").open("w")
    sched = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"], stdout=log, stderr=log)
    worker = None
    try:
        worker = subprocess.Popen([DASK, "worker", addr, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--dashboard-address", "127.0.0.1:0"], stdout=log, stderr=log)
        args = ["sweep", "highalloc", "--quick", "--mem", "256MiB", *TINY_REST, "--seeds", "0-2", "--variants", "vanilla,antifrag"]
        deadline = time.monotonic() + 60
        while True:  # wait for the worker to register
            from distributed import Client

            try:
                with Client(addr, timeout="5s") as c:
                    if c.scheduler_info(n_workers=-1)["workers"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "dask.log").read_text()
            time.sleep(0.5)
        remote = kmm_cli(*args, "--scheduler", addr, "--out", str(tmp_path / "remote"))
        assert remote.returncode == 0, remote.stderr
        assert f"scheduler {addr}, 1 workers; dashboard: http://" in remote.stderr
        local = kmm_cli(*args, "--workers", "2", "--out", str(tmp_path / "local"))
        assert local.returncode == 0, local.stderr
        a, b = sweep.load(tmp_path / "remote"), sweep.load(tmp_path / "local")
        assert len(a) == 3 * 2 * 2
        pd.testing.assert_frame_equal(deterministic(a), deterministic(b))
        # the summaries agree to the last digit (the timings line aside)
        assert remote.stdout.splitlines()[:-1] == local.stdout.splitlines()[:-1]
    finally:
        if worker is not None:
            _stop(worker)
        _stop(sched)
        log.close()
    assert sched.poll() is not None and worker.poll() is not None


def test_ctrl_c_stops_within_2s_and_keeps_finished_cells(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmm", "sweep", "highalloc", "--quick", "--mem", "256MiB", *TINY_REST, "--seeds", "0-30", "--workers", "2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "cells").exists() or not any((out / "cells").glob("*.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no cell finished"
            time.sleep(0.05)
        time.sleep(0.3)  # cells are running now
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        proc.wait(timeout=2.0)
        elapsed = time.monotonic() - t0
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(f"stopped {elapsed:.2f} s after SIGINT")
    assert proc.returncode == 130, stderr
    assert "interrupted; the finished cells are kept" in stderr
    assert "Traceback" not in stderr, stderr
    # no process of the sweep is left running (workers included; a zombie waits for init to reap it)
    assert _group_alive(proc.pid) == []
    records = list((out / "cells").glob("*.json"))
    df = sweep.load(out)
    assert 1 <= len(set(df["cell"])) == len(records) < 31
    assert set(df["status"]) == {"done"}
