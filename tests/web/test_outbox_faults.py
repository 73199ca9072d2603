"""Real `microneedling worker` processes against the test database and a real SMTP server:
a worker killed with SIGKILL mid-run loses nothing, and workers running side by side never
send a message twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.utils import timezone

from microneedling.notifications.models import Message
from microneedling.notifications.outbox import message_queue
from tests.web.conftest import Clinic, build_clinic, make_patient
from tests.web.processes import database_env
from tests.web.sinks import MailSink, mail_sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]
MESSAGES = 400
LEASE_SECONDS = 2
#: The worker takes one task at a time: at most this many can be in flight at a kill.
WORKER_BATCH = 1


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    yield from mail_sink()


@pytest.fixture
def clinic() -> Clinic:
    return build_clinic()


def _worker_env(sink: MailSink) -> dict[str, str]:
    return database_env(
        EMAIL_HOST=sink.host,
        EMAIL_PORT=str(sink.port),
        MICRONEEDLING_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
    )


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "microneedling.cli", "worker", "--interval", "0.05", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _queue(clinic: Clinic, count: int) -> set[str]:
    patient = make_patient(clinic)
    for number in range(count):
        message_queue(patient=patient, kind="screening_result", key=f"fault:{number}")
    return {m.message_id for m in Message.objects.all()}


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _finish(process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    _, errors = process.communicate(timeout=timeout)
    assert process.returncode == 0, errors.decode()[-2000:]


def test_a_worker_killed_midway_loses_nothing_and_repeats_only_what_was_in_flight(
    clinic: Clinic, smtp: MailSink
) -> None:
    expected = _queue(clinic, MESSAGES)
    assert len(expected) == MESSAGES
    env = _worker_env(smtp)
    first = _worker(env)
    _wait_for(lambda: len(smtp.received) >= MESSAGES // 3, 120, "a third of the mail")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    arrived_before_restart = len(smtp.received)
    assert arrived_before_restart < MESSAGES, "the kill came too late to test anything"
    # What the dead worker held stays held until its lease runs out; then it is fair game.
    time.sleep(2 * LEASE_SECONDS + 1)
    _finish(_worker(env, "--batch"))

    ids = smtp.message_ids()
    assert set(ids) == expected  # every message arrived
    repeats = {mid: n for mid, n in Counter(ids).items() if n > 1}
    assert sum(n - 1 for n in repeats.values()) <= WORKER_BATCH, repeats
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}


def test_two_workers_on_one_queue_never_send_a_message_twice(
    clinic: Clinic, smtp: MailSink
) -> None:
    expected = _queue(clinic, MESSAGES)
    env = _worker_env(smtp)
    workers = [_worker(env, "--batch") for _ in range(2)]
    for worker in workers:
        _finish(worker)
    ids = smtp.message_ids()
    assert len(ids) == len(set(ids)) == MESSAGES  # nothing twice, nothing missing
    assert set(ids) == expected
    # Both really worked: each recorded attempts under its own worker id.
    by_worker = Counter(Message.objects.values_list("worker", flat=True))
    assert len(by_worker) == 2, by_worker
    assert Message.objects.filter(sent_at__lte=timezone.now()).count() == MESSAGES


def test_the_worker_refuses_a_bad_interval_with_exit_status_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "microneedling.cli", "worker", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--interval" in result.stderr
