"""API tokens: a random secret shown once, stored only as its SHA-256 digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token tied to a user; revocable."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    #: After this moment the token no longer works (none: until revoked).
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"API token #{self.pk} of user {self.user_id}"


class StaffMember(models.Model):
    """A member of staff: what they may do (their role), for which organisation, and where.

    The role decides the kind of data (see ``accounts.access``); the locations decide whose
    records: a provider's are the sites in their schedule plus any listed here.
    """

    class Role(models.TextChoices):
        FRONT_DESK = "front_desk", "Front desk"
        PROVIDER = "provider", "Provider"
        CLINIC_ADMIN = "clinic_admin", "Clinic admin"
        CHAIN_OPERATOR = "chain_operator", "Chain operator"
        AUDITOR = "auditor", "Auditor"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_member"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    organization = models.ForeignKey(
        "directory.Organization", on_delete=models.PROTECT, related_name="staff"
    )
    provider = models.OneToOneField(
        "directory.Provider",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staff_member",
    )
    locations = models.ManyToManyField("directory.Location", blank=True, related_name="staff")

    def __str__(self) -> str:
        return f"{self.get_role_display()} (user {self.user_id})"


class BreakGlassGrant(models.Model):
    """Emergency access by one member of staff to one patient outside their usual scope,
    for a short time, with the reason they gave (the grant itself is audited)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="break_glass"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="break_glass"
    )
    reason = models.TextField()
    granted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "patient", "expires_at"])]

    def __str__(self) -> str:
        return f"Break-glass of user {self.user_id} to patient {self.patient_id}"
