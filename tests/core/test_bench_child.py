"""A benchmark child on PostgreSQL leaves no database behind, even when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from microneedling.bench.runner import _per_engine

psycopg = pytest.importorskip("psycopg")


def _databases() -> set[str]:
    try:
        admin = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server on 127.0.0.1")
    with admin:
        return {row[0] for row in admin.execute("SELECT datname FROM pg_database")}


def test_a_failed_suite_drops_its_scratch_database() -> None:
    name = f"mn_h_bench_child_{os.getpid()}"
    assert name not in _databases()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "BENCH_RESET_DATABASE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "microneedling.bench.child", "no-such-suite", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    try:
        assert done.returncode != 0
        assert "unknown suite" in done.stderr
        assert name not in _databases()
    finally:
        admin = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        )
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_per_engine_suites_leave_no_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # read TMPDIR again
    name = f"mn_h_bench_child_{os.getpid()}"
    monkeypatch.setenv("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{name}")
    try:
        results = _per_engine("no-such-suite", 1)
    finally:
        tempfile.tempdir = None
    assert set(results) == {"sqlite", "postgresql"}
    assert all("error" in r for r in results.values())
    assert list(tmp_path.iterdir()) == []
