"""Writes for aftercare: filing a skin report (triaged on the way in) and handling it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.aftercare.models import SkinReport
from microneedling.audit.services import audit_record
from microneedling.core.knowledge import load_pack
from microneedling.core.triage import SymptomReport, TriageReport, triage
from microneedling.directory.policy import booking_rules
from microneedling.notifications import events
from microneedling.scheduling.models import Appointment


def skin_report_file(
    *,
    appointment: Appointment,
    symptoms: list[SymptomReport],
    notes: str = "",
    photo: UploadedFile[bytes] | None = None,
) -> SkinReport:
    """Triage what the patient reports about the visit's healing and keep it; reports that
    need the clinic are in the providers' queue as soon as this returns."""
    zone = ZoneInfo(appointment.location.timezone)
    session_day = appointment.starts_at.astimezone(zone).date()
    today = timezone.now().astimezone(zone).date()
    report = TriageReport(
        symptoms=tuple(symptoms),
        session_date=session_day,
        reported_on=today,
        fitzpatrick_type=appointment.patient.fitzpatrick_type,
    )
    # Where the sources differ (must every bruise be reported?), the clinic's chosen position.
    policy = booking_rules(appointment.location.organization_id).pack_policy
    result = triage(report, load_pack(), policy)
    with transaction.atomic():
        filed = SkinReport.objects.create(
            patient=appointment.patient,
            appointment=appointment,
            day=result.day,
            symptoms=[s.model_dump() for s in symptoms],
            notes=notes,
            photo=photo or "",
            action=result.action,
            result=result.to_dict(),
        )
        if filed.needs_staff:
            events.skin_report_escalated(
                patient_id=filed.patient_id, report_id=filed.pk, action=filed.action
            )
    return filed


def skin_report_handle(*, report: SkinReport, actor: Actor, note: str) -> SkinReport:
    """A provider has dealt with a report (called the patient, booked a review...): audited."""
    if not note.strip():
        raise ValueError("say what was done")
    with transaction.atomic():
        # Only an open report: a second provider's note must not overwrite the first's.
        handled = {
            "status": SkinReport.Status.HANDLED,
            "handled_by": acting_user(actor),
            "handled_at": timezone.now(),
            "handling_note": note,
        }
        if not SkinReport.objects.filter(pk=report.pk, status=SkinReport.Status.OPEN).update(
            **handled
        ):
            raise ValueError("this report has already been handled")
        for name, value in handled.items():
            setattr(report, name, value)
        audit_record(
            actor=actor,
            action="skin_report_handle",
            object_type="skin_report",
            object_id=report.pk,
            reason=note,
            # Named, so that the handling is in the patient's access log and audit search.
            details={"patient": report.patient_id},
        )
    return report
