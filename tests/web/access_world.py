"""A clinic with two locations, a patient's full record at each, and one person per role.

Shared by the access tests and the access matrix: Cleo and Dan are patients of Riverbend,
Eve of Eastside. Ida works Riverbend's front desk, Ada is a Riverbend provider, Cleo-the-admin
runs Riverbend, Otto operates the chain, Aud audits, Root is the superuser.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client

from microneedling.accounts.services import api_token_issue
from microneedling.aftercare.models import SkinReport
from microneedling.charting.models import ProcedureChart, SessionPhoto
from microneedling.directory.models import CartridgeLot, Location
from microneedling.notifications.models import Message
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, AppointmentRequest, Course
from tests.web.conftest import Clinic, build_clinic, local, make_patient, make_staff, make_superuser

MONDAY = date(2027, 3, 8)
#: The roles the matrix asks about, in the order its rows list them.
ROLES = (
    "anonymous",
    "patient",
    "front_desk",
    "provider",
    "clinic_admin",
    "chain_operator",
    "auditor",
    "superuser",
)


def _png() -> bytes:
    from PIL import Image  # noqa: PLC0415

    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 120, 110)).save(out, format="PNG")
    return out.getvalue()


#: A real, decodable PNG.
PNG = _png()


@dataclass
class Record:
    """One patient's rows."""

    patient: Patient
    visit: Appointment
    course: Course
    chart: ProcedureChart
    photo: SessionPhoto
    report: SkinReport
    screening: Screening


@dataclass
class World:
    """Everything the access tests point at."""

    clinic: Clinic
    east: Clinic
    cleo: Record
    dan: Record
    eve: Record
    users: dict[str, Any] = field(default_factory=dict)
    request_id: int = 0
    message_id: int = 0

    def client(self, role: str) -> Client:
        """A browser signed in as ``role`` (anonymous: signed out)."""
        client = Client()
        if self.users.get(role) is not None:
            client.force_login(self.users[role])
        return client

    def token(self, role: str) -> str | None:
        """A bearer token for ``role`` (None for anonymous)."""
        user = self.users.get(role)
        return api_token_issue(user=user) if user is not None else None


def _record(clinic: Clinic, location: Location, name: str, day: date) -> Record:
    patient = make_patient(clinic, name=name)
    course = services.course_book(
        patient=patient,
        location=location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=day,
        areas=["face"],
    )
    visit = Appointment.objects.filter(course_session__course=course).order_by("starts_at")[0]
    lot = CartridgeLot.objects.get_or_create(
        location=location,
        lot_number=f"L-{location.slug}",
        defaults={"device_model": "SkinPen", "expires_on": date(2029, 1, 1), "quantity": 9},
    )[0]
    chart = ProcedureChart.objects.create(
        appointment=visit,
        device=location.devices.first(),
        cartridge_lot=lot,
        areas=[{"area": "face", "depth_mm": "1.0", "passes": 3}],
        numbing_product="Lidocaine 4% cream",
        numbing_minutes=30,
        endpoint=ProcedureChart.Endpoint.PINPOINT_BLEEDING,
        written_by=get_user_model().objects.get_or_create(username="scribe")[0],
    )
    photo = SessionPhoto.objects.create(
        appointment=visit,
        kind="before",
        file=ContentFile(PNG, name="before.png"),
        taken_by=get_user_model().objects.get_or_create(username="scribe")[0],
    )
    report = SkinReport.objects.create(
        patient=patient,
        appointment=visit,
        day=2,
        symptoms=[],
        action=SkinReport.Action.CONTACT_CLINIC,
        result={},
        photo=ContentFile(PNG, name="skin.png"),
    )
    screening = patient.screenings.first()
    assert screening is not None
    Screening.objects.filter(pk=screening.pk).update(review=Screening.Review.PENDING)
    return Record(patient, visit, course, chart, photo, report, screening)


def build_world(clinic: Clinic) -> World:
    """The cast and their records (``frozen_now`` must be active)."""
    east = build_clinic(name="Eastside")
    world = World(
        clinic,
        east,
        cleo=_record(clinic, clinic.location, "Cleo Marsh", MONDAY),
        dan=_record(clinic, clinic.location, "Dan Reyes", MONDAY),
        eve=_record(east, east.location, "Eve Long", MONDAY),
    )
    riverbend = [clinic.location]
    world.users = {
        "anonymous": None,
        "patient": _patient_user(world.cleo.patient),
        "front_desk": make_staff("ida.front", "front_desk", locations=riverbend),
        "provider": make_staff("ada.quill", "provider", locations=[], provider=clinic.ada),
        "clinic_admin": make_staff("cleo.admin", "clinic_admin", locations=riverbend),
        "chain_operator": make_staff("otto.ops", "chain_operator", locations=[]),
        "auditor": make_staff("aud.it", "auditor", locations=[]),
        "superuser": make_superuser("root"),
    }
    world.request_id = AppointmentRequest.objects.create(
        patient=world.cleo.patient,
        location=clinic.location,
        service=clinic.treatment,
        provider=clinic.ada,
        reason="patient_request",
        payload={},
    ).pk
    world.message_id = Message.objects.filter(patient=world.cleo.patient).first().pk  # type: ignore[union-attr]
    Message.objects.filter(pk=world.message_id).update(status=Message.Status.DEAD)
    return world


def _patient_user(patient: Patient) -> Any:
    user = get_user_model().objects.create_user(
        username=patient.email, email=patient.email, password=None
    )
    patient.user = user
    patient.save(update_fields=["user"])
    return user


__all__ = ["MONDAY", "PNG", "ROLES", "Record", "World", "build_world", "local"]
