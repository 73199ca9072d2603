"""Background tasks of the scheduling app (run by ``microneedling worker``)."""

from __future__ import annotations

from django_tasks import task

from microneedling.scheduling.rehoming_runs import rehoming_run_execute


@task()
def rehoming_execute(run_id: int) -> str:
    """Carry out a re-homing run started from the staff pages."""
    return rehoming_run_execute(run_id)
