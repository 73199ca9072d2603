"""The task worker behind ``microneedling worker``: django-tasks' database worker, plus a
sweep that hands lost messages (a worker killed mid-send) a new task. Any number of workers
may run against one database."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from django.db import close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Worker

from microneedling.notifications.delivery import outbox_recover

QUEUES = ["default", "messages"]
logger = logging.getLogger(__name__)


def _sweep_forever(
    every: float, stop: threading.Event, sweep: Callable[[], int] = outbox_recover
) -> None:
    """Run ``sweep`` every ``every`` seconds until ``stop`` is set, whatever one pass raises."""
    while not stop.wait(every):
        try:
            sweep()
        except Exception as error:
            # One failed pass (the database away for a moment) must not end the sweep for the
            # life of the worker. Only the error's type is logged: its text, or a traceback's
            # locals, may carry a patient's address or a message's context.
            logger.error("outbox sweep failed (%s); trying again next pass", type(error).__name__)
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
