"""Courses, appointments and reservations.

A reservation is one resource (a provider, a room or a device) held by one appointment for one
time range. Two active reservations of one resource never overlap: on PostgreSQL an exclusion
constraint (added by migration 0002) refuses it; on SQLite the check and the insert run in one
IMMEDIATE transaction. A staff override that deliberately overlaps marks its reservations
``overlap_allowed`` and is audited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from microneedling.core.knowledge.models import Gap
from microneedling.scheduling.epoch import EpochSeconds


class Course(models.Model):
    """A planned series of sessions for a patient's concerns, then maintenance."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETE = "complete", "Complete"
        RESTARTED = "restarted", "Restarted"
        CANCELLED = "cancelled", "Cancelled"

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="courses"
    )
    location = models.ForeignKey(
        "directory.Location", on_delete=models.PROTECT, related_name="courses"
    )
    service = models.ForeignKey(
        "directory.Service", on_delete=models.PROTECT, related_name="courses"
    )
    preferred_provider = models.ForeignKey(
        "directory.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    screening = models.ForeignKey(
        "patients.Screening",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="courses",
    )
    indications = models.JSONField()
    protocols = models.JSONField()
    areas = models.JSONField()
    fitzpatrick_type = models.PositiveSmallIntegerField(null=True, blank=True)
    sessions_total = models.PositiveSmallIntegerField()
    gap_min_days = models.PositiveSmallIntegerField()
    gap_target_days = models.PositiveSmallIntegerField()
    gap_max_days = models.PositiveSmallIntegerField()
    maintenance_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days after the last session a maintenance visit is due"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Course #{self.pk}"

    @property
    def gap(self) -> Gap:
        """The days allowed between consecutive sessions, as the course engine takes them."""
        return Gap(min=self.gap_min_days, target=self.gap_target_days, max=self.gap_max_days)


class CourseSession(models.Model):
    """One session of a course with its window; linked to its appointment once booked."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        BOOKED = "booked", "Booked"
        DONE = "done", "Done"
        MISSED = "missed", "Missed"
        CANCELLED = "cancelled", "Cancelled"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    number = models.PositiveSmallIntegerField()
    earliest = models.DateField()
    target = models.DateField()
    latest = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)

    class Meta:
        ordering = ["course", "number"]
        constraints = [
            models.UniqueConstraint(fields=["course", "number"], name="course_session_number"),
            models.CheckConstraint(
                condition=models.Q(earliest__lte=models.F("target"))
                & models.Q(target__lte=models.F("latest")),
                name="course_session_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Course #{self.course_id} session {self.number}"


class Appointment(models.Model):
    """A visit: a service at a location, with a provider, from start to end."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        BOOKED = "booked", "Booked"
        CHECKED_IN = "checked_in", "Checked in"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"
        ENTERED_IN_ERROR = "entered_in_error", "Entered in error"

    #: Statuses of a visit that did not take place: nothing to chart, score or report on.
    NOT_TREATED = (Status.CANCELLED, Status.NO_SHOW, Status.ENTERED_IN_ERROR)

    #: Statuses of a visit still to be given, before anyone has arrived.
    TO_COME = (Status.REQUESTED, Status.BOOKED)

    #: Statuses whose reservations still hold their resources.
    HOLDING = (
        Status.REQUESTED,
        Status.BOOKED,
        Status.CHECKED_IN,
        Status.IN_PROGRESS,
        Status.COMPLETED,
    )

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="appointments"
    )
    service = models.ForeignKey(
        "directory.Service", on_delete=models.PROTECT, related_name="appointments"
    )
    location = models.ForeignKey(
        "directory.Location", on_delete=models.PROTECT, related_name="appointments"
    )
    provider = models.ForeignKey(
        "directory.Provider", on_delete=models.PROTECT, related_name="appointments"
    )
    course_session = models.ForeignKey(
        CourseSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOOKED)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    override_reason = models.TextField(blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["provider", "starts_at"]),
            models.Index(fields=["location", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="appointment_starts_before_it_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"Appointment #{self.pk} ({self.status})"


class Reservation(models.Model):
    """One resource held by one appointment for one phase's time range."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="reservations"
    )
    #: ``provider:12``, ``room:3`` or ``device:5``: one column so one constraint covers all.
    resource = models.CharField(max_length=40)
    phase = models.CharField(max_length=40)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    active = models.BooleanField(default=True)
    overlap_allowed = models.BooleanField(default=False)
    #: ``starts_at`` and ``ends_at`` as whole epoch seconds (start rounded down, end up),
    #: kept by the database itself: what availability reads (see ``epoch.py``).
    start_second = models.GeneratedField(
        expression=EpochSeconds("starts_at"),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )
    end_second = models.GeneratedField(
        expression=EpochSeconds("ends_at", up=True),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        indexes = [
            models.Index(fields=["resource", "starts_at"], name="reservation_resource_start"),
            # Covers the availability read (active rows of some resources in a span), so
            # it never visits the table.
            models.Index(
                fields=["resource", "start_second", "end_second"],
                condition=models.Q(active=True),
                name="reservation_busy_seconds",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="reservation_starts_before_it_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.starts_at}–{self.ends_at}"


class AppointmentRequest(models.Model):
    """A booking that needs someone's decision first (clinician review, or a patient's ask)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"
        BOOKED = "booked", "Booked"

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="requests"
    )
    location = models.ForeignKey(
        "directory.Location", on_delete=models.PROTECT, related_name="requests"
    )
    service = models.ForeignKey(
        "directory.Service", on_delete=models.PROTECT, related_name="requests"
    )
    provider = models.ForeignKey(
        "directory.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    screening = models.ForeignKey(
        "patients.Screening",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requests",
    )
    reason = models.CharField(max_length=40, help_text="clinician_review or patient_request")
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Request #{self.pk} ({self.status})"


class IdempotencyRecord(models.Model):
    """The stored answer to a request made with an ``Idempotency-Key`` header."""

    scope = models.CharField(max_length=120)
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"


class RehomingRun(models.Model):
    """A closure or a provider's move started from the staff pages: its parameters, how far
    it has got, and its report once done (a preview, or applied)."""

    class Operation(models.TextChoices):
        CLOSE_LOCATION = "location_close", "Close a location"
        MOVE_PROVIDER = "provider_move", "Move a provider"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    operation = models.CharField(max_length=20, choices=Operation.choices)
    location = models.ForeignKey(
        "directory.Location", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.ForeignKey(
        "directory.Provider", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    from_date = models.DateField()
    until = models.DateField(null=True, blank=True)
    apply = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    report = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Re-homing run #{self.pk} ({self.operation}, {self.status})"
