"""The outbox: every message a change causes, written in the change's own transaction, with
each attempt to deliver it; patients' contact choices; private calendar feeds."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class ContactPreference(models.Model):
    """How a patient wants to hear from the clinic. Without a row: email only, everything."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.CASCADE, related_name="contact_preference"
    )
    email = models.BooleanField(default=True, help_text="Send messages by email")
    sms = models.BooleanField(default=False, help_text="Send messages by text")
    reminders = models.BooleanField(
        default=True,
        help_text="Reminders, care check-ins and recalls (confirmations and safety notices "
        "are always sent)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Contact preference of {self.patient_id}"


class Message(models.Model):
    """One message to one patient on one channel, due at one moment.

    ``key`` is the idempotency key: the change that causes a message names it, so writing
    the same change twice makes one message, and the mail's Message-ID derives from it, so a
    repeat after a crash is recognisable downstream. Never log ``context``: it may hold
    health details (email only; SMS text carries date, time and place)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "Text message"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        DEAD = "dead", "Gave up (needs staff)"
        CANCELLED = "cancelled", "No longer needed"

    key = models.CharField(max_length=200, unique=True)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="messages"
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    essential = models.BooleanField(default=True)
    recipient = models.CharField(max_length=254)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField(help_text="When it should go out (after quiet hours)")
    available_at = models.DateTimeField(help_text="When a worker may next try it")
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "available_at"], name="message_due"),
            models.Index(fields=["appointment", "status"], name="message_by_visit"),
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk} ({self.kind}, {self.channel}, {self.status})"

    @property
    def message_id(self) -> str:
        """The RFC 5322 Message-ID: the same for every attempt at this message."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:32]
        return f"<{digest}@microneedling.clinic>"


class DeliveryAttempt(models.Model):
    """One try at sending a message, with its outcome."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=64)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.message_id}: {self.outcome}"


class CalendarFeed(models.Model):
    """A private subscription address for a patient's or a provider's appointments. Only a
    hash of the token is kept; revoking stops the address working at once."""

    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.CASCADE, related_name="feeds"
    )
    provider = models.ForeignKey(
        "directory.Provider",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="feeds",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(patient__isnull=True, provider__isnull=False)
                | models.Q(patient__isnull=False, provider__isnull=True),
                name="feed_has_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"Calendar feed #{self.pk}"
