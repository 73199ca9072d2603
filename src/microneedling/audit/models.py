"""Audit events. Rows are only ever added: the model and its querysets refuse updates and
deletes, and on PostgreSQL a trigger makes the database refuse them too (migration 0002)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditTrailIsAppendOnly(Exception):
    """Raised on any attempt to change or remove an audit event."""


class _AppendOnly(models.QuerySet["AuditEvent"]):
    """A queryset that cannot update or delete."""

    def update(self, **kwargs: object) -> int:
        """Refused: audit events never change."""
        raise AuditTrailIsAppendOnly("audit events cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        """Refused: audit events are never removed."""
        raise AuditTrailIsAppendOnly("audit events cannot be deleted")


class AuditEvent(models.Model):
    """One sensitive action: an override, a review decision, an access to a record."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    #: The actor's role when they acted (roles change; the trail keeps what held then).
    role = models.CharField(max_length=20, blank=True)
    #: Where the request came from (None for the system and commands).
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = _AppendOnly.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        """Insert only: saving an event that is already stored is refused."""
        if self.pk is not None and not self._state.adding:
            raise AuditTrailIsAppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        """Refused: audit events are never removed."""
        raise AuditTrailIsAppendOnly("audit events cannot be deleted")
