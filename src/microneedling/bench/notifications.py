"""Notifications benchmark: outbox messages delivered per second by the real worker (the
django-tasks database worker with our claim, send and record) to a local SMTP server.

Runs inside a process whose Django settings point at the engine being measured. The
baseline is the same number of mails sent straight over one SMTP connection with no
database at all: the ratio says what the outbox's guarantees (a claim, a record and a task
per message) cost on top of the send itself.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import date
from typing import Any

from microneedling.bench.timing import machine_reference, summarise

MESSAGES = 500


class _Sink:
    """Counts what the SMTP server accepted."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _patient() -> Any:
    from microneedling.directory.models import Organization  # noqa: PLC0415
    from microneedling.patients.models import Patient  # noqa: PLC0415

    org = Organization.objects.create(name="Bench Mail Clinic", slug="bench-mail")
    return Patient.objects.create(
        organization=org,
        first_name="Bench",
        last_name="Patient",
        email="bench@example.test",
        birth_date=date(1990, 1, 1),
    )


def _queue(patient: Any, run: int) -> float:
    from django.db import transaction  # noqa: PLC0415

    from microneedling.notifications.outbox import audience_of, message_queue  # noqa: PLC0415

    started = time.perf_counter()
    with transaction.atomic():
        # As a booking does: the patient's channels read once, then each message queued.
        audience = audience_of(patient)
        for number in range(MESSAGES):
            message_queue(
                patient=patient,
                kind="screening_result",
                key=f"bench:{run}:{number}",
                audience=audience,
            )
    return time.perf_counter() - started


def _direct_smtp(port: int) -> float:
    from django.core.mail import EmailMessage, get_connection  # noqa: PLC0415

    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port
    )
    connection.open()
    started = time.perf_counter()
    for number in range(MESSAGES):
        connection.send_messages(
            [EmailMessage("Bench", "Body\n", "clinic@example.test", [f"p{number}@example.test"])]
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def run(runs: int) -> dict[str, Any]:
    """Queue and deliver ``MESSAGES`` messages ``runs`` times (call after django.setup())."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from microneedling.config.runtime import settle_after_startup  # noqa: PLC0415
    from microneedling.notifications import channels  # noqa: PLC0415
    from microneedling.notifications.models import Message  # noqa: PLC0415
    from microneedling.notifications.worker import worker_run  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    channels._mail_reset()
    try:
        patient = _patient()
        settle_after_startup()
        reference_before = machine_reference()
        queue_times, deliver_times, direct_times = [], [], []
        for number in range(runs + 1):  # the first run warms up and is not counted
            queued = _queue(patient, number)
            before = sink.count
            started = time.perf_counter()
            worker_run(interval=0.01, batch=True)
            delivered = time.perf_counter() - started
            if sink.count - before != MESSAGES:
                raise RuntimeError(f"run {number}: {sink.count - before} of {MESSAGES} arrived")
            straight = _direct_smtp(port)
            if number:
                queue_times.append(queued)
                deliver_times.append(delivered)
                direct_times.append(straight)
        reference_after = machine_reference()
        sent = Message.objects.filter(status=Message.Status.SENT).count()
    finally:
        controller.stop()
    deliver = summarise(deliver_times)
    direct = summarise(direct_times)
    queued_summary = summarise(queue_times)
    return {
        "engine": connection.vendor,
        "machine_reference": {"before": reference_before, "after": reference_after},
        "messages_per_run": MESSAGES,
        "all_sent": sent == MESSAGES * (runs + 1),
        "deliver": {
            **deliver,
            "messages_per_second_median": MESSAGES / deliver["median_s"],
            "messages_per_second_at_p95_time": MESSAGES / deliver["p95_s"],
        },
        "queue_in_one_transaction": {
            **queued_summary,
            "per_message_median_ms": queued_summary["median_s"] / MESSAGES * 1e3,
        },
        "baseline_direct_smtp": {
            **direct,
            "messages_per_second_median": MESSAGES / direct["median_s"],
        },
        "ratio_outbox_to_direct_median": deliver["median_s"] / direct["median_s"],
    }
