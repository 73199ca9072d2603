"""Writes for patients: signing up, recording a screening and a provider's review of it."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.directory.models import Location
from microneedling.directory.policy import booking_rules
from microneedling.notifications import events
from microneedling.patients.models import Patient, Screening


def screening_record(*, patient: Patient, intake: Intake) -> Screening:
    """Screen an intake under the clinic's policy and keep the verdict; a relative
    contraindication waits for review."""
    pack = load_pack()
    result = screen(intake, pack, booking_rules(patient.organization_id).pack_policy)
    review = (
        Screening.Review.PENDING
        if result.verdict == "clinician_review"
        else Screening.Review.NOT_NEEDED
    )
    with transaction.atomic():
        if patient.fitzpatrick_type != intake.fitzpatrick_type:
            # The latest intake is the truth about the skin type the plans use.
            patient.fitzpatrick_type = intake.fitzpatrick_type
            patient.save(update_fields=["fitzpatrick_type"])
        return Screening.objects.create(
            patient=patient,
            intake=intake.model_dump(mode="json"),
            result=result.to_dict(),
            verdict=result.verdict,
            deferred_until=result.deferred_until,
            pack_version=pack.version,
            review=review,
        )


def screening_review(
    *, screening: Screening, actor: Actor, approve: bool, reason: str
) -> Screening:
    """A provider approves or declines a screening that needs review (audited)."""
    if screening.review != Screening.Review.PENDING:
        raise ValueError("this screening is not waiting for review")
    if not reason.strip():
        raise ValueError("a review needs a reason")
    with transaction.atomic():
        screening.review = Screening.Review.APPROVED if approve else Screening.Review.DECLINED
        screening.reviewed_by = acting_user(actor)
        screening.reviewed_at = timezone.now()
        screening.review_reason = reason
        screening.save(update_fields=["review", "reviewed_by", "reviewed_at", "review_reason"])
        details: dict[str, Any] = {"verdict": screening.verdict, "decision": screening.review}
        audit_record(
            actor=actor,
            action="screening_review",
            object_type="screening",
            object_id=screening.pk,
            reason=reason,
            details=details,
        )
        events.screening_result(screening)
    return screening


def patient_register(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    birth_date: date,
    location: Location,
    phone: str = "",
    zip_code: str = "",
) -> Patient:
    """Create a patient's sign-in and record together (both or neither), with the chosen
    location's organisation as their clinic. The e-mail address is the user name."""
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(
            username=email.lower(),
            email=email.lower(),
            password=password,
            first_name=first_name,
            last_name=last_name,
        )
        return Patient.objects.create(
            user=user,
            organization_id=location.organization_id,
            first_name=first_name,
            last_name=last_name,
            email=email.lower(),
            phone=phone,
            birth_date=birth_date,
            zip_code=zip_code,
            timezone=location.timezone,
        )
