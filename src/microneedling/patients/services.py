"""Writes for patients: recording a screening and a provider's review of it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.patients.models import Patient, Screening


def screening_record(*, patient: Patient, intake: Intake) -> Screening:
    """Screen an intake and keep the verdict; a relative contraindication waits for review."""
    pack = load_pack()
    result = screen(intake, pack)
    review = (
        Screening.Review.PENDING
        if result.verdict == "clinician_review"
        else Screening.Review.NOT_NEEDED
    )
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
    return screening
