"""Side-effect reports ("How is your skin?") and their triage."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SkinReport(models.Model):
    """What a patient reported after a session, the triage engine's verdict on it, and who
    on the staff dealt with it. Anything above ``monitor`` enters the providers' queue."""

    class Action(models.TextChoices):
        EXPECTED = "expected", "Expected"
        MONITOR = "monitor", "Keep an eye on it"
        CONTACT_CLINIC = "contact_clinic", "Contact the clinic"
        URGENT = "urgent", "Urgent"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        HANDLED = "handled", "Handled"

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="skin_reports"
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.CASCADE, related_name="skin_reports"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    day = models.PositiveSmallIntegerField(help_text="Days since the session")
    #: ``[{"code": "redness", "severity": "mild"}, ...]``
    symptoms = models.JSONField()
    notes = models.TextField(blank=True)
    photo = models.FileField(upload_to="skin-reports/%Y/%m/", blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    #: The triage result (reasons with messages, advice and sources).
    result = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    handling_note = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "action", "created_at"])]

    def __str__(self) -> str:
        return f"Skin report #{self.pk} ({self.action})"

    @property
    def needs_staff(self) -> bool:
        """Whether the report belongs in the providers' queue."""
        return self.action in (self.Action.CONTACT_CLINIC, self.Action.URGENT)
