"""The one place that decides who may act on a patient's records."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from microneedling.patients.models import Patient


def is_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Clinic staff (front desk, providers, admins)."""
    return bool(user.is_authenticated and getattr(user, "is_staff", False))


def can_act_for(user: AbstractBaseUser | AnonymousUser, patient: Patient) -> bool:
    """Staff, or the patient themselves."""
    if not user.is_authenticated:
        return False
    return is_staff(user) or patient.user_id == user.pk
