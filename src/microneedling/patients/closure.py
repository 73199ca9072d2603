"""Closing a patient's account, and erasing records once the law no longer needs them.

Closing stops everything that is the person's to stop: future visits are cancelled, the login
is disabled and stripped of the e-mail address, contact preferences, calendar addresses and
API tokens are removed. The clinical record (visits, screenings, charts, photos, reports,
consents) stays, because the law requires it, until ``retain_until``; a sweep then erases it.
The audit trail is never erased: it names the record by number only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor
from microneedling.accounts.models import ApiToken
from microneedling.aftercare.models import SkinReport
from microneedling.audit.services import audit_record
from microneedling.charting.models import OutcomeScore, ProcedureChart, SessionPhoto
from microneedling.core.retention import retain_until
from microneedling.notifications.models import CalendarFeed, ContactPreference
from microneedling.notifications.outbox import patient_messages_withdraw
from microneedling.patients.models import Patient
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, AppointmentRequest, RehomingRun

#: Visits that count as treatment for the retention clock.
TREATED = ("completed", "in_progress", "checked_in")
#: What a report that outlives an erased record shows where it named the patient.
ERASED = "(record erased)"


def _retention_date(patient: Patient, now: datetime) -> date:
    rules = settings.MICRONEEDLING["RETENTION"]
    last = (
        Appointment.objects.filter(patient=patient, status__in=TREATED)
        .select_related("location")
        .order_by("-starts_at")
        .first()
    )
    # Days as the law counts them where the treatment was given: a UTC day ahead of the
    # clinic's would have the record erased a day early.
    return retain_until(
        closed_on=now.astimezone(ZoneInfo(patient.timezone)).date(),
        last_treatment=(
            last.starts_at.astimezone(ZoneInfo(last.location.timezone)).date() if last else None
        ),
        birth_date=patient.birth_date,
        adult_years=rules["ADULT_YEARS"],
        minor_until_age=rules["MINOR_UNTIL_AGE"],
    )


def patient_account_close(*, patient: Patient, actor: Actor, now: datetime) -> Patient:
    """Close the account at the patient's request (all of it in one transaction)."""
    if patient.closed_at is not None:
        return patient
    with transaction.atomic():
        for visit in Appointment.objects.filter(
            patient=patient, starts_at__gt=now, status__in=("requested", "booked")
        ):
            services.appointment_set_status(
                appointment=visit,
                status="cancelled",
                actor=actor,
                reason="account_closed",
                now=now,
            )
        # Requests waiting for the desk would otherwise still ask it to book them: open ones,
        # and those a provider's approval made ready to book (the desk lists both).
        AppointmentRequest.objects.filter(
            patient=patient,
            status__in=services.REQUESTS_WAITING,
        ).update(
            status=AppointmentRequest.Status.DECLINED,
            decided_at=now,
            decision_reason="account_closed",
        )
        # Last, after the cancellations above queued their notices: nothing queued, and no
        # dead letter a desk might resend, may reach an account the patient closed.
        patient_messages_withdraw(patient=patient)
        ContactPreference.objects.filter(patient=patient).delete()
        CalendarFeed.objects.filter(patient=patient).delete()
        user = patient.user
        if user is not None:
            ApiToken.objects.filter(user=user).delete()
            # The user row stays (the audit trail points at it), but nobody can sign in as it
            # and it no longer says who it was.
            user.username = f"closed-{secrets.token_hex(8)}"
            user.email = ""
            user.first_name = user.last_name = ""
            user.is_active = False
            user.set_unusable_password()
            user.save()
            _end_sessions(user.pk)
        patient.closed_at = now
        patient.retain_until = _retention_date(patient, now)
        patient.phone = ""
        patient.preferred_weekdays = []
        patient.preferred_times = []
        patient.save()
        audit_record(
            actor=actor,
            action="account_close",
            object_type="patient",
            object_id=patient.pk,
            details={"retain_until": patient.retain_until.isoformat()},
        )
    return patient


def _end_sessions(user_id: int) -> None:
    # Sessions are signed blobs keyed by id: decode each to find the user's (few rows here).
    for session in Session.objects.all().iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()


def _rehoming_reports_forget(appointment_ids: set[int]) -> None:
    # A re-homing report lists each visit it moved or left behind by the patient's name and
    # outlives the record on the desk's pages: from now on it names the visit by number only.
    for run in RehomingRun.objects.only("pk", "report").order_by("pk").iterator():
        report = run.report if isinstance(run.report, dict) else {}
        listed = [*report.get("moves", []), *report.get("stuck_visits", [])]
        named = [e for e in listed if e.get("appointment") in appointment_ids and e.get("patient")]
        for entry in named:
            entry["patient"] = ERASED
        if named:
            run.save(update_fields=["report"])


@dataclass(frozen=True)
class ErasureReport:
    """What a sweep erased."""

    patients: int
    photos: int


def records_erase_due(*, today: date, apply: bool = False) -> ErasureReport:
    """Erase every closed record whose retention has run out (``apply=False``: only count).

    Each patient is erased in its own transaction, photos' files after the rows are gone, so
    a failure leaves each record either whole or gone."""
    due = Patient.objects.filter(closed_at__isnull=False, retain_until__lte=today)
    patients = photos = 0
    for patient in due.order_by("pk"):
        # Counted again now: a visit the desk marked treated after the closure (it had not
        # checked the patient in yet) starts the retention period afresh, and the date stored
        # at closure knew nothing of it.
        recounted = _retention_date(patient, patient.closed_at or timezone.now())
        if recounted > today:
            if apply and recounted != patient.retain_until:
                Patient.objects.filter(pk=patient.pk).update(retain_until=recounted)
            continue
        files = [
            str(p.file.name) for p in SessionPhoto.objects.filter(appointment__patient=patient)
        ]
        files += [
            str(r.photo.name) for r in SkinReport.objects.filter(patient=patient).exclude(photo="")
        ]
        patients += 1
        photos += len(files)
        if not apply:
            continue
        with transaction.atomic():
            SessionPhoto.objects.filter(appointment__patient=patient).delete()
            OutcomeScore.objects.filter(appointment__patient=patient).delete()
            charts = ProcedureChart.objects.filter(appointment__patient=patient)
            # Amendments protect the charts they amend: remove the newest versions first.
            while charts.exists():
                charts.filter(amendment__isnull=True).delete()
            user_id = patient.user_id
            patient_id = patient.pk
            _rehoming_reports_forget(
                set(Appointment.objects.filter(patient=patient).values_list("pk", flat=True))
            )
            patient.delete()
            audit_record(
                actor=None,
                action="record_erase",
                object_type="patient",
                object_id=patient_id,
                details={"retention_ended": today.isoformat(), "photos": len(files)},
            )
        storage = SessionPhoto._meta.get_field("file").storage
        for name in files:
            storage.delete(name)
        # Bulk exports are copies too: one holding this record must not outlive it.
        from microneedling.interop.export import exports_forget_patients  # noqa: PLC0415

        exports_forget_patients(patient_ids=[patient_id])
        if user_id is not None:
            get_user_model().objects.filter(pk=user_id, is_active=False).update(
                username=f"erased-{user_id}"
            )
    return ErasureReport(patients=patients, photos=photos)
