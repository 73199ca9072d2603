"""Consent, procedure charts (locked once signed; amendments are new linked records) and
outcome scores on the knowledge pack's scales."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ConsentText(models.Model):
    """One version of the consent a patient signs before a procedure."""

    version = models.CharField(max_length=20, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField()
    active_from = models.DateField()

    class Meta:
        ordering = ["-active_from"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class Consent(models.Model):
    """A patient's signature on one version of the consent text, with its time."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="consents"
    )
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="signatures")
    signed_at = models.DateTimeField()
    #: The name the patient typed as their signature.
    signature = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "text"], name="consent_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"Consent of patient #{self.patient_id} to v{self.text.version}"


class ProcedureChart(models.Model):
    """What was done in one session. Signed by the provider, then locked: a correction is a
    new chart that ``amends`` this one, so what was first written is never lost."""

    class Endpoint(models.TextChoices):
        PINPOINT_BLEEDING = "pinpoint_bleeding", "Pinpoint bleeding"
        UNIFORM_ERYTHEMA = "uniform_erythema", "Even redness (erythema)"
        STOPPED_EARLY = "stopped_early", "Stopped before the endpoint"

    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.PROTECT, related_name="charts"
    )
    amends = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="amendment"
    )
    device = models.ForeignKey("directory.Device", on_delete=models.PROTECT, related_name="+")
    cartridge_lot = models.ForeignKey(
        "directory.CartridgeLot", on_delete=models.PROTECT, related_name="+"
    )
    #: ``[{"area": "face.cheeks", "depth_mm": 1.0, "passes": 3}, ...]``
    areas = models.JSONField()
    numbing_product = models.CharField(max_length=120)
    numbing_minutes = models.PositiveSmallIntegerField()
    #: ``[{"product": "Hyaluronic serum", "sterile": true}, ...]``
    products = models.JSONField(default=list, blank=True)
    endpoint = models.CharField(max_length=30, choices=Endpoint.choices)
    immediate_reaction = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    written_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Chart #{self.pk} of appointment #{self.appointment_id}"

    @property
    def locked(self) -> bool:
        """Signed charts never change."""
        return self.signed_at is not None

    @property
    def non_sterile_products(self) -> list[str]:
        """Products applied that were not sterile: a flag for the provider and the audit."""
        return [p["product"] for p in self.products if not p.get("sterile")]


class OutcomeScore(models.Model):
    """A score on one of the pack's scales, taken at a session."""

    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.PROTECT, related_name="scores"
    )
    scale = models.CharField(max_length=60, help_text="A scale code of the knowledge pack")
    value = models.IntegerField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "scale"], name="outcome_score_once_per_scale"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scale}={self.value} at appointment #{self.appointment_id}"


class SessionPhoto(models.Model):
    """A before or after photo of a session, kept privately for the clinical record."""

    class Kind(models.TextChoices):
        BEFORE = "before", "Before"
        AFTER = "after", "After"

    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.PROTECT, related_name="photos"
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    file = models.FileField(upload_to="session-photos/%Y/%m/")
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    taken_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} photo of appointment #{self.appointment_id}"
