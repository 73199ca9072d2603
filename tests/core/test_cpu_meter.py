"""The load benchmark's CPU meter reads real counters of real processes from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from microneedling.bench.cpu import CpuMeter, cpu_seconds, group_members

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")


def _burn(seconds: float) -> None:
    ends = time.process_time() + seconds
    while time.process_time() < ends:
        pass


def _stand_in_server(*, worker_exits: bool) -> subprocess.Popen[bytes]:
    # A server in its own process group whose worker, like a gunicorn worker, starts burning
    # CPU a moment after it starts (after the meter's first reading); a worker that exits
    # is waited for by its master, as gunicorn and PostgreSQL's postmaster do.
    worker = "import time\ntime.sleep(1)\nend = time.process_time() + 0.6\n"
    worker += "while time.process_time() < end: pass\n"
    if not worker_exits:
        worker += "time.sleep(60)"
    code = "import subprocess, sys, time;"
    code += f"subprocess.Popen([sys.executable, '-c', {worker!r}]).wait(); time.sleep(60)"
    server = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(group_members(server.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return server


@pytest.mark.parametrize("worker_exits", [False, True], ids=["worker_lives", "worker_exits"])
def test_a_busy_process_group_is_charged_with_its_cpu(worker_exits: bool) -> None:
    server = _stand_in_server(worker_exits=worker_exits)
    try:
        meter = CpuMeter(server_groups=[server.pid], database_is_local=False)
        before = meter.start()
        _burn(0.2)
        deadline = time.monotonic() + 30
        while True:
            used, members = meter.used_since(before), len(group_members(server.pid))
            burnt = (used["app_servers"] or 0) >= 0.5 and members == (1 if worker_exits else 2)
            if burnt or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the stand-in and its worker
        server.wait()
    assert members == (1 if worker_exits else 2)
    assert used["app_servers"] is not None and 0.5 <= used["app_servers"] < 2.0
    assert used["load_generator"] is not None and used["load_generator"] >= 0.15
    assert used["database"] is None  # not on this machine: unknown, never zero


def test_a_process_that_has_ended_counts_as_nothing() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert cpu_seconds(finished.pid) == 0.0
