"""Bulk exports of the clinic's data (FHIR Bulk Data style)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExportJob(models.Model):
    """One ``$export`` request: which types, how far it has got, and the files it wrote."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    types = models.JSONField(help_text="Resource types to export")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done_types = models.PositiveSmallIntegerField(default=0)
    output = models.JSONField(default=list, blank=True, help_text="[{type, count}] written")
    error = models.CharField(max_length=300, blank=True)
    request_url = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.status})"
