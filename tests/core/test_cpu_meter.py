"""The load benchmark's CPU meter reads real counters of real processes from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

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


def _postgres(database: str) -> Any:
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(
            host="127.0.0.1", user="postgres", dbname=database, autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server on 127.0.0.1")


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    """Two scratch databases on the local server: the bench's and someone else's."""
    names = (f"mn_h_bench_cpu_{os.getpid()}_ours", f"mn_h_bench_cpu_{os.getpid()}_other")
    with _postgres("postgres") as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield names
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _burn_in(connection: Any, rows: int) -> None:
    burn = "SELECT sum(i::bigint * i %% 7) FROM generate_series(1, %s) AS i"
    connection.execute(burn, (rows,)).fetchone()


def test_only_the_bench_databases_backends_are_charged(two_databases: tuple[str, str]) -> None:
    ours, other = two_databases
    with _postgres(ours) as mine, _postgres(other) as theirs:
        meter = CpuMeter(server_groups=[], database_is_local=True, database_name=ours)
        before = meter.start()
        started = time.process_time()
        _burn_in(theirs, 8_000_000)  # another tenant of the shared server, busy
        _burn_in(mine, 1_000_000)
        used = meter.used_since(before)
        assert time.process_time() - started < 0.5  # the load generator itself did little
        mine_alone = CpuMeter(server_groups=[], database_is_local=True, database_name=other)
        reading = mine_alone.start()
        _burn_in(theirs, 8_000_000)
        theirs_used = mine_alone.used_since(reading)["database"]
    assert used["database"] is not None and theirs_used is not None
    # The other database's work cost several times ours: none of it is charged to ours.
    assert 0 < used["database"] < theirs_used / 2


def test_a_backend_that_ends_mid_phase_still_counts(two_databases: tuple[str, str]) -> None:
    ours, _ = two_databases
    meter = CpuMeter(
        server_groups=[], database_is_local=True, database_name=ours, sample_seconds=0.1
    )
    before = meter.start()
    with _postgres(ours) as short_lived:  # a connection closed at its maximum age
        _burn_in(short_lived, 8_000_000)
        time.sleep(0.3)  # read by the meter at least once, as over a whole phase
    time.sleep(0.3)  # and gone
    used = meter.used_since(before)["database"]
    assert used is not None and used >= 0.3


def test_a_database_with_no_backend_seen_is_unknown_not_free() -> None:
    meter = CpuMeter(
        server_groups=[], database_is_local=True, database_name=f"mn_h_bench_none_{os.getpid()}"
    )
    before = meter.start()
    _burn(0.05)
    assert meter.used_since(before)["database"] is None
