"""Background tasks of the interop app (run by ``microneedling worker``)."""

from __future__ import annotations

from django_tasks import task

from microneedling.interop.export import export_run


@task()
def export_execute(job_id: int) -> str:
    """Carry out one bulk export."""
    return export_run(job_id)
