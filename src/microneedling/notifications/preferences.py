"""A patient's choice of channels and of non-essential messages."""

from __future__ import annotations

from django.db import transaction

from microneedling.accounts.actors import Actor
from microneedling.audit.services import audit_record
from microneedling.notifications.models import ContactPreference
from microneedling.patients.models import Patient


def contact_preference_of(patient: Patient) -> ContactPreference:
    """The stored choice, or the default one (email, everything) unsaved."""
    return ContactPreference.objects.filter(patient=patient).first() or ContactPreference(
        patient=patient
    )


def contact_preference_set(
    *, patient: Patient, actor: Actor, email: bool, sms: bool, reminders: bool, phone: str
) -> ContactPreference:
    """Save how the patient wants to hear from the clinic; texts need a phone number."""
    if sms and not phone.strip():
        raise ValueError("a phone number is needed for text messages")
    with transaction.atomic():
        if phone != patient.phone:
            patient.phone = phone
            patient.save(update_fields=["phone"])
        preference, _ = ContactPreference.objects.update_or_create(
            patient=patient, defaults={"email": email, "sms": sms, "reminders": reminders}
        )
        audit_record(
            actor=actor,
            action="contact_preference_set",
            object_type="patient",
            object_id=patient.pk,
            details={"email": email, "sms": sms, "reminders": reminders},
        )
    return preference
