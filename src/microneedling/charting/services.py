"""Writes for charting: signing consent, writing, signing and amending procedure charts, and
recording outcome scores. Every write is audited; a signed chart is never changed."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.charting.models import (
    Consent,
    ConsentText,
    OutcomeScore,
    ProcedureChart,
    SessionPhoto,
)
from microneedling.charting.selectors import chart_version, fingerprint, latest_chart
from microneedling.core.errors import InputError
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import CartridgeLot, Device
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment

MAX_PASSES = 8
MAX_NUMBING_MINUTES = 90


def consent_current_text(today: date | None = None) -> ConsentText | None:
    """The consent version in force today."""
    today = today or timezone.localdate()
    return ConsentText.objects.filter(active_from__lte=today).order_by("-active_from").first()


def consent_is_current(patient: Patient, today: date | None = None) -> bool:
    """Whether the patient has signed the version in force (on ``today``: give the visit's
    local date, so the answer does not depend on the zone the request happens to be in)."""
    text = consent_current_text(today)
    return text is not None and Consent.objects.filter(patient=patient, text=text).exists()


def consent_text_seal(text: ConsentText) -> str:
    """A short fingerprint of the words of ``text``: the consent page sends it back with the
    signature, so a patient signs the text they read, not one put in force or edited since."""
    return fingerprint([text.pk, text.version, text.title, text.body])


def consent_sign(
    *, patient: Patient, signature: str, actor: Actor, shown: str | None = None
) -> Consent:
    """The patient signs the current consent by typing their full name (audited).

    ``shown`` is the ``consent_text_seal`` of the text the patient was shown: when another
    text is in force by the time they sign, nothing is signed and they are asked to read it."""
    text = consent_current_text()
    if text is None:
        raise InputError("consent", "there is no consent text in force")
    if shown is not None and consent_text_seal(text) != shown:
        raise InputError("consent", "the consent text changed while you read it: read it again")
    expected = f"{patient.first_name} {patient.last_name}".casefold().split()
    if signature.casefold().split() != expected:
        raise InputError("signature", "type your full name exactly as on your account")
    with transaction.atomic():
        consent, _ = Consent.objects.get_or_create(
            patient=patient,
            text=text,
            defaults={"signed_at": timezone.now(), "signature": signature.strip()},
        )
        audit_record(
            actor=actor,
            action="consent_sign",
            object_type="patient",
            object_id=patient.pk,
            details={"version": text.version},
        )
    return consent


def _person(actor: Actor) -> Any:
    """Charts and scores are always someone's: a signed-in member of staff."""
    user = acting_user(actor)
    if user is None:
        raise InputError("actor", "charts and scores need the provider who writes them")
    return user


def _checked_chart(appointment: Appointment, data: dict[str, Any]) -> dict[str, Any]:
    """The chart's fields, refused with the field named if they do not fit this visit."""
    pack = load_pack()
    location = appointment.location
    device: Device = data["device"]
    lot: CartridgeLot = data["cartridge_lot"]
    if device.location_id != location.pk:
        raise InputError("device", "this pen is not at the visit's location")
    if lot.location_id != location.pk:
        raise InputError("cartridge_lot", "this lot is not stocked at the visit's location")
    if lot.device_model != device.model:
        raise InputError("cartridge_lot", f"this lot is for {lot.device_model}, not {device.model}")
    visit_day = appointment.starts_at.astimezone(ZoneInfo(location.timezone)).date()
    if lot.expires_on < visit_day:
        raise InputError("cartridge_lot", f"this lot expired on {lot.expires_on.isoformat()}")
    areas = []
    for index, row in enumerate(data["areas"]):
        area = pack.areas.get(row["area"])
        if area is None:
            raise InputError(f"areas.{index}.area", f"unknown area {row['area']!r}")
        depth = float(row["depth_mm"])
        if not 0 < depth <= area.depth_max_mm:
            raise InputError(
                f"areas.{index}.depth_mm",
                f"depth for {area.name} must be above 0 and at most {area.depth_max_mm} mm",
            )
        passes = int(row["passes"])
        if not 1 <= passes <= MAX_PASSES:
            raise InputError(f"areas.{index}.passes", f"passes must be 1 to {MAX_PASSES}")
        areas.append({"area": area.code, "depth_mm": depth, "passes": passes})
    if not areas:
        raise InputError("areas", "chart at least one treated area")
    if not 0 <= int(data["numbing_minutes"]) <= MAX_NUMBING_MINUTES:
        raise InputError("numbing_minutes", f"must be 0 to {MAX_NUMBING_MINUTES}")
    return {**data, "areas": areas}


def chart_write(
    *,
    appointment: Appointment,
    actor: Actor,
    data: dict[str, Any],
    amends: ProcedureChart | None = None,
) -> ProcedureChart:
    """Write a chart (or an amendment of a signed one) as a draft; nothing is locked yet.

    Without ``amends`` this saves the visit's draft: the first one, or the unsigned latest
    version edited in place (so a second click adds no parallel chart); once signed, only an
    amendment changes it.
    """
    treated_check(appointment, "chart")
    if amends is not None and not amends.locked:
        raise InputError("amends", "only a signed chart is amended; edit the draft instead")
    if amends is not None and amends.appointment_id != appointment.pk:
        raise InputError("amends", "this chart is another visit's")
    if amends is not None and hasattr(amends, "amendment"):
        raise InputError("amends", "this chart was amended already; amend the latest version")
    fields = _checked_chart(appointment, data)
    with transaction.atomic():
        # One writer at a time per visit (PostgreSQL; SQLite has one writer anyway); signing
        # takes the same lock, so a draft read here cannot be signed before it is saved.
        _lock_visit(appointment)
        if amends is not None and ProcedureChart.objects.filter(amends=amends).exists():
            # Asked again under the lock: two amendments sent together both passed above.
            raise InputError("amends", "this chart was amended already; amend the latest version")
        draft = None if amends is not None else latest_chart(appointment)
        if draft is not None and draft.locked:
            raise InputError("amends", "this visit's chart is signed; amend it to change it")
        if draft is not None:
            # Only the columns written, and only while unsigned: a whole-row save would put
            # back the empty signature it read.
            saved = ProcedureChart.objects.filter(pk=draft.pk, signed_at__isnull=True).update(
                written_by=_person(actor), **fields
            )
            if not saved:
                raise InputError("amends", "this visit's chart is signed; amend it to change it")
            draft.refresh_from_db()
            chart = draft
        else:
            chart = ProcedureChart.objects.create(
                appointment=appointment, amends=amends, written_by=_person(actor), **fields
            )
        audit_record(
            actor=actor,
            action="chart_amend" if amends else "chart_write",
            object_type="patient",
            object_id=appointment.patient_id,
            details={"chart": chart.pk, "amends": amends.pk if amends else None},
        )
    return chart


def _lock_visit(appointment: Appointment) -> Appointment | None:
    # The visit row is the lock for its chart: writers and signers queue on it.
    return Appointment.objects.select_for_update().filter(pk=appointment.pk).first()


#: A visit's statuses once its procedure has begun: only then is a chart signed.
STARTED = (Appointment.Status.IN_PROGRESS, Appointment.Status.COMPLETED)


def treated_check(appointment: Appointment, what: str) -> None:
    """Refuse to record ``what`` on a visit that did not take place."""
    if appointment.status in Appointment.NOT_TREATED:
        raise InputError(
            "appointment",
            f"this visit is {appointment.get_status_display().lower()}: there is no {what} to "
            "record for it",
        )


def chart_sign(*, chart: ProcedureChart, actor: Actor, seen: str | None = None) -> ProcedureChart:
    """The provider signs the chart; from now on it is read-only.

    ``seen`` is the ``chart_version`` of the draft the provider read: if the draft has been
    edited since, nothing is signed (a signature vouches for what was on the screen)."""
    if chart.locked:
        raise InputError("chart", "this chart is signed already")
    with transaction.atomic():
        # After any draft save in flight, never during it.
        visit = _lock_visit(chart.appointment) or chart.appointment
        # The draft may have been written before the visit was called off (the patient left
        # while numbing): a signature would record a procedure that never took place.
        treated_check(visit, "chart")
        if visit.status not in STARTED:
            # A signature records a procedure done: before the visit is started (where the
            # newest screening and the consent are checked) there is none yet.
            raise InputError(
                "chart",
                f"this visit is {visit.get_status_display().lower()}: start the procedure "
                "before signing its chart",
            )
        current = ProcedureChart.objects.get(pk=chart.pk)
        if seen is not None and chart_version(current) != seen:
            raise InputError("chart", "the draft was changed since you opened it: read it again")
        updated = ProcedureChart.objects.filter(pk=chart.pk, signed_at__isnull=True).update(
            signed_by=acting_user(actor), signed_at=timezone.now()
        )
        if not updated:  # signed by someone else a moment ago
            raise InputError("chart", "this chart is signed already")
        audit_record(
            actor=actor,
            action="chart_sign",
            object_type="patient",
            object_id=chart.appointment.patient_id,
            details={"chart": chart.pk},
        )
    chart.refresh_from_db()
    return chart


def score_record(
    *, appointment: Appointment, scale: str, value: int, actor: Actor, notes: str = ""
) -> OutcomeScore:
    """Score the session on one of the pack's scales (a later score replaces it, audited)."""
    treated_check(appointment, "score")
    known = {s.code: s for s in load_pack().data.scales}
    found = known.get(scale)
    if found is None:
        raise InputError("scale", f"unknown scale {scale!r}")
    allowed = (
        {level.value for level in found.levels}
        if found.levels
        else set(range(found.range[0], found.range[1] + 1))
        if found.range
        else set()
    )
    if value not in allowed:
        raise InputError("value", f"{found.name} takes {min(allowed)} to {max(allowed)}")
    # Each scale has one rater: a patient-rated score stands for the patient's own answer, so
    # nobody else may give it for them (it would replace theirs), nor they a clinician's.
    user = _person(actor)
    by_patient = user.pk == appointment.patient.user_id
    if found.rater == "patient" and not by_patient:
        raise InputError("scale", f"{found.name} is the patient's to answer")
    if found.rater == "clinician" and by_patient:
        raise InputError("scale", f"{found.name} is for the patient's clinicians")
    with transaction.atomic():
        score, _ = OutcomeScore.objects.update_or_create(
            appointment=appointment,
            scale=scale,
            defaults={"value": value, "recorded_by": user, "notes": notes},
        )
        audit_record(
            actor=actor,
            action="outcome_score",
            object_type="patient",
            object_id=appointment.patient_id,
            details={"scale": scale, "value": value, "appointment": appointment.pk},
        )
    return score


def session_photo_add(
    *, appointment: Appointment, kind: str, file: Any, actor: Actor
) -> SessionPhoto:
    """Keep a before or after photo of the session (checked as an image first; audited)."""
    treated_check(appointment, "photo")
    if kind not in SessionPhoto.Kind.values:
        raise InputError("kind", "choose before or after")
    with transaction.atomic():
        photo = SessionPhoto.objects.create(
            appointment=appointment, kind=kind, file=file, taken_by=_person(actor)
        )
        audit_record(
            actor=actor,
            action="session_photo_add",
            object_type="patient",
            object_id=appointment.patient_id,
            details={"photo": photo.pk, "kind": kind},
        )
    return photo
