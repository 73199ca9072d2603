"""The task worker behind ``microneedling worker``: django-tasks' database worker, plus a
sweep that hands lost messages (a worker killed mid-send) a new task. Any number of workers
may run against one database."""

from __future__ import annotations

import threading
import uuid

from django.db import close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Worker

from microneedling.notifications.delivery import outbox_recover

QUEUES = ["default", "messages"]


def _sweep_forever(every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            outbox_recover()
        finally:
            connection.close()  # this thread's own connection; never keep it idle


def worker_run(
    *,
    interval: float = 0.5,
    batch: bool = False,
    max_tasks: int | None = None,
    sweep_seconds: float = 30.0,
    in_thread: bool = False,
) -> None:
    """Run tasks until stopped (or, with ``batch``, until none are ready)."""
    close_old_connections()
    outbox_recover()  # whatever a killed worker left behind is taken up first
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_forever, args=(sweep_seconds, stop), daemon=True, name="outbox-sweep"
    )
    sweeper.start()
    worker = Worker(
        queue_names=QUEUES,
        interval=interval,
        batch=batch,
        backend_name="default",
        startup_delay=not batch,
        max_tasks=max_tasks,
        worker_id=uuid.uuid4().hex[:32],
        excluded_queue_names=[],
    )
    if not in_thread:
        worker.configure_signals()  # signals can only be set from the main thread
    try:
        worker.run()
    finally:
        stop.set()
