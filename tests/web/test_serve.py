"""`microneedling serve --workers N`: gunicorn app processes and task workers, the
production way, against the test database."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from microneedling.notifications.models import Message
from microneedling.notifications.outbox import message_queue
from tests.web.conftest import Clinic, build_clinic, make_patient
from tests.web.processes import answers, database_env, free_port, wait_for
from tests.web.sinks import MailSink, mail_sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    yield from mail_sink()


def _processes_of(root: int) -> list[str]:
    """Command lines of ``root`` and every process under it (from /proc)."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return [lines.get(pid, "") for pid in found]


def test_serve_runs_app_processes_and_task_workers_and_stops_them_all(smtp: MailSink) -> None:
    clinic: Clinic = build_clinic()
    port = free_port()
    env = database_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        MICRONEEDLING_SSL_REDIRECT="0",
        MICRONEEDLING_BEHIND_TLS_PROXY="1",
        EMAIL_HOST=smtp.host,
        EMAIL_PORT=str(smtp.port),
    )
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "microneedling.cli", "serve", "--port", str(port)),
            *("--workers", "2", "--task-workers", "1"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/api/v1/locations"), 60, "the server to answer")
        listing = requests.get(f"{base}/api/v1/locations", timeout=10)
        assert listing.status_code == 200
        assert [row["name"] for row in listing.json()] == [clinic.location.name]
        css = requests.get(f"{base}/static/web/site.css", timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
        # Behind a TLS proxy (which says so in X-Forwarded-Proto): HSTS and the CSP.
        page = requests.get(f"{base}/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        tree = _processes_of(server.pid)
        assert sum("gunicorn" in line for line in tree) == 3  # the master and two workers
        assert sum(line.endswith("microneedling.cli worker ") for line in tree) == 1
        # The task worker sends what the app queued.
        message_queue(patient=make_patient(clinic), kind="screening_result", key="serve:1")
        wait_for(
            lambda: Message.objects.filter(status=Message.Status.SENT).count() == 1,
            60,
            "the task worker to send the message",
        )
        assert len(smtp.received) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0, server.stderr.read().decode()[-2000:] if server.stderr else ""
    assert not answers(f"{base}/api/v1/locations")
