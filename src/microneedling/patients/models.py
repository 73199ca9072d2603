"""Patients and the screenings that gate their bookings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Patient(models.Model):
    """A person who books treatment; their record is health data (never logged)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient",
    )
    organization = models.ForeignKey(
        "directory.Organization", on_delete=models.PROTECT, related_name="patients"
    )
    first_name = models.CharField(max_length=120)
    last_name = models.CharField(max_length=120)
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    birth_date = models.DateField()
    zip_code = models.CharField(max_length=12, blank=True)
    fitzpatrick_type = models.PositiveSmallIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="America/Chicago")
    preferred_weekdays = models.JSONField(
        default=list, blank=True, help_text="0 = Monday … 6 = Sunday"
    )
    preferred_times = models.JSONField(
        default=list, blank=True, help_text='Local ranges, e.g. [["09:00", "12:00"]]'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: When the patient closed their account (they can no longer sign in; the clinical
    #: record is kept until ``retain_until``, then erased).
    closed_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fitzpatrick_type__isnull=True)
                | models.Q(fitzpatrick_type__gte=1, fitzpatrick_type__lte=6),
                name="patient_fitzpatrick_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Patient #{self.pk}"


#: A patient's current screening is the first in this order: the latest, and of two saved in
#: the same instant the later row.
NEWEST_FIRST = ("-created_at", "-id")


class ScreeningQuerySet(models.QuerySet["Screening"]):
    """Reads of screenings shared by the booking gate, aftercare and the portal."""

    def newest_first(self) -> ScreeningQuerySet:
        """Latest first, explicitly (so every reader agrees on the patient's current one)."""
        return self.order_by(*NEWEST_FIRST)


class Screening(models.Model):
    """One run of the screening engine on a patient's intake, and a provider's review of it."""

    class Verdict(models.TextChoices):
        ELIGIBLE = "eligible", "Eligible"
        PRECAUTIONS = "eligible_with_precautions", "Eligible with precautions"
        REVIEW = "clinician_review", "Clinician review"
        DEFERRED = "deferred", "Deferred"
        NOT_ELIGIBLE = "not_eligible", "Not eligible"

    class Review(models.TextChoices):
        NOT_NEEDED = "not_needed", "Not needed"
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="screenings")
    intake = models.JSONField()
    result = models.JSONField()
    verdict = models.CharField(max_length=30, choices=Verdict.choices)
    deferred_until = models.DateField(null=True, blank=True)
    pack_version = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)
    review = models.CharField(max_length=12, choices=Review.choices, default=Review.NOT_NEEDED)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)

    objects = ScreeningQuerySet.as_manager()

    class Meta:
        ordering = list(NEWEST_FIRST)
        indexes = [models.Index(fields=["patient", "-created_at"])]

    def __str__(self) -> str:
        return f"Screening #{self.pk}: {self.verdict}"
