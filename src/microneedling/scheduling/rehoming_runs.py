"""Re-homing started from the staff pages: a run row, a background task that carries it out,
and its progress for the page to poll (kept in the cache, since the operation's own
transaction hides its writes until the end)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.access import Can, may, may_use_location
from microneedling.accounts.actors import Actor, acting_user
from microneedling.core.errors import BookingRefused
from microneedling.scheduling.models import RehomingRun
from microneedling.scheduling.rehoming import RehomingReport, location_close, provider_move

PROGRESS_SECONDS = 24 * 3600
logger = logging.getLogger(__name__)


def _progress_key(run_id: int) -> str:
    return f"rehoming-run:{run_id}:progress"


def run_progress(run_id: int) -> dict[str, Any]:
    """How far a run has got: ``{"phase", "done", "total", "percent"}``."""
    found = cache.get(_progress_key(run_id))
    return dict(found) if found else {"phase": "waiting", "done": 0, "total": 0, "percent": 0}


def rehoming_run_start(
    *,
    operation: str,
    actor: Actor,
    apply: bool,
    location: Any,
    provider: Any = None,
    from_date: Any,
    until: Any = None,
) -> RehomingRun:
    """Record a run and queue its task in one transaction."""
    from microneedling.scheduling.tasks import rehoming_execute  # noqa: PLC0415 (cycle)

    with transaction.atomic():
        run = RehomingRun.objects.create(
            operation=operation,
            location=location,
            provider=provider,
            from_date=from_date,
            until=until,
            apply=apply,
            created_by=acting_user(actor),
        )
        rehoming_execute.enqueue(run.pk)
    cache.delete(_progress_key(run.pk))  # ids restart with a new database; old keys linger
    return run


def rehoming_run_execute(run_id: int) -> str:
    """Carry out a queued run, recording progress as it goes and the report at the end."""
    taken = RehomingRun.objects.filter(pk=run_id, status=RehomingRun.Status.QUEUED).update(
        status=RehomingRun.Status.RUNNING
    )
    if not taken:
        return "skipped"
    run = RehomingRun.objects.select_related("location", "provider", "created_by").get(pk=run_id)
    shown = [-1]

    def progress(phase: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent != shown[0]:
            shown[0] = percent
            cache.set(
                _progress_key(run_id),
                {"phase": phase, "done": done, "total": total, "percent": percent},
                PROGRESS_SECONDS,
            )

    try:
        report = _execute(run, progress)
    except BookingRefused as refused:
        run.status, run.error = RehomingRun.Status.FAILED, f"{refused.field}: {refused.message}"
    except Exception as unexpected:
        # Anything else (bad data, a bug) must not leave the run "running" for ever: the
        # page would poll it, and no one could start it again. The operation's own
        # transaction has rolled back, so nothing of it was written.
        # The type only, as the outbox sweep logs: an error's text may name a patient.
        logger.error("re-homing run %s failed (%s)", run_id, type(unexpected).__name__)
        error = f"unexpected error: {type(unexpected).__name__}: {unexpected}"
        run.status, run.error = RehomingRun.Status.FAILED, error[:300]
    else:
        run.status, run.report = RehomingRun.Status.DONE, report.as_dict()
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "report", "finished_at"])
    return run.status


def _author_check(run: RehomingRun) -> None:
    """Raise ``BookingRefused`` unless the account that started ``run`` may still start it
    now: a run waits in the queue, and one queued by someone who has since left (account
    deleted or deactivated) or lost the right to close locations here must not act on
    their behalf."""
    author = run.created_by
    if author is None or not author.is_active:
        raise BookingRefused(
            "the account that started the run is gone or deactivated",
            code="author_gone",
            field="created_by",
        )
    if not may(author, Can.CLOSURES) or (
        run.location is not None and not may_use_location(author, run.location.pk)
    ):
        raise BookingRefused(
            "the account that started the run may no longer close this location",
            code="author_denied",
            field="created_by",
        )


def _execute(run: RehomingRun, progress: Any) -> RehomingReport:
    _author_check(run)
    if run.location is None:
        raise BookingRefused("the run names no location", code="missing", field="location")
    if run.operation == RehomingRun.Operation.CLOSE_LOCATION:
        return location_close(
            location=run.location,
            from_date=run.from_date,
            until=run.until,
            actor=run.created_by,
            apply=run.apply,
            progress=progress,
        )
    if run.provider is None:
        raise BookingRefused("the run names no provider", code="missing", field="provider")
    return provider_move(
        provider=run.provider,
        to_location=run.location,
        from_date=run.from_date,
        actor=run.created_by,
        apply=run.apply,
        progress=progress,
    )
