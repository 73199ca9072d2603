"""The load benchmark leaves no app server running, whatever goes wrong."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from microneedling.bench.load import _serve_command, _servers

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")


def _running(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in line and state != "Z":
            found.append(int(entry.name))
    return found


def test_servers_that_never_answer_are_all_stopped() -> None:
    marker = f"mn_h_bench_deaf_{os.getpid()}"
    # Each starts, ignores SIGTERM (as a server stuck in a request would), never listens.
    code = f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); '{marker}'; "
    code += "time.sleep(120)"
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            _servers(
                dict(os.environ),
                command=lambda port: [sys.executable, "-c", code],
                ready_seconds=1,
                grace_seconds=1,
            )
        assert time.monotonic() - started < 30
        assert _running(marker) == []
    finally:
        for pid in _running(marker):  # what a failing run left behind
            os.kill(pid, 9)


def test_the_load_servers_listen_on_loopback_only() -> None:
    command = _serve_command(8123)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "8123"
