"""Fixtures for tests on a real database (SQLite by default, PostgreSQL with DATABASE_URL).

The cast: the "Riverbend" location in Chicago time with two rooms and two pens, Dr. Ada
Quill (physician) and Ben Ortiz (aesthetician) working weekdays 09:00–17:00, and patient Cleo
Marsh, screened eligible. A fixed "now" keeps every date in the tests meaningful.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.accounts.models import StaffMember
from microneedling.accounts.services import api_token_issue
from microneedling.core.screening import Intake
from microneedling.directory.models import (
    Device,
    Location,
    OpeningHours,
    Organization,
    Provider,
    ProviderSchedule,
    Room,
    Service,
    ServicePhase,
)
from microneedling.patients.models import Patient
from microneedling.patients.services import screening_record
from microneedling.scheduling.models import Appointment, Course
from microneedling.scheduling.services import (
    CourseProposal,
    appointment_book,
    course_book,
    course_propose,
)

ZONE = "America/Chicago"
TZ = ZoneInfo(ZONE)
#: "Now" for booking tests: a Monday morning, far enough ahead of every planned date.
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=TZ)
#: The Monday a week after NOW, when the booking tests book.
MONDAY = date(2027, 3, 8)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """An aware local datetime at the clinic."""
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


@dataclass
class Clinic:
    """The cast of the booking tests."""

    org: Organization
    location: Location
    treatment: Service
    consultation: Service
    ada: Provider
    ben: Provider
    rooms: list[Room]
    devices: list[Device]


def build_clinic(
    *, rooms: int = 2, devices: int = 2, name: str = "Riverbend", group: str = "Riverbend Group"
) -> Clinic:
    """A location open weekdays 08:00–18:00 with two providers working 09:00–17:00, in the
    organisation named ``group``."""
    org, _ = Organization.objects.get_or_create(
        slug=group.lower().replace(" ", "-"), defaults={"name": group}
    )
    location = Location.objects.create(
        organization=org,
        name=name,
        slug=name.lower(),
        address="1 River Rd",
        city="Chicago",
        region="IL",
        zip_code="60601",
        latitude=41.886,
        longitude=-87.618,
        timezone=ZONE,
    )
    for weekday in range(5):
        OpeningHours.objects.create(
            location=location, weekday=weekday, opens=time(8), closes=time(18)
        )
    treatment = Service.objects.create(
        organization=org,
        code=f"mn-face-{name.lower()}",
        name="Microneedling: face",
        kind="treatment",
        areas=["face"],
    )
    for order, (code, minutes, provider, device) in enumerate(
        [
            ("check_in_cleanse", 10, False, False),
            ("numbing", 30, False, False),
            ("procedure", 30, True, True),
            ("serum_aftercare", 15, False, False),
        ]
    ):
        ServicePhase.objects.create(
            service=treatment,
            order=order,
            code=code,
            minutes=minutes,
            needs_provider=provider,
            needs_device=device,
        )
    consultation = Service.objects.create(
        organization=org, code=f"consult-{name.lower()}", name="Consultation", kind="consultation"
    )
    ServicePhase.objects.create(
        service=consultation, order=0, code="consultation", minutes=30, needs_provider=True
    )
    people = []
    for display, role in (("Dr. Ada Quill", "physician"), ("Ben Ortiz", "aesthetician")):
        provider = Provider.objects.create(organization=org, display_name=display, role=role)
        for weekday in range(5):
            ProviderSchedule.objects.create(
                provider=provider,
                location=location,
                weekday=weekday,
                starts=time(9),
                ends=time(17),
                valid_from=date(2026, 1, 1),
            )
        people.append(provider)
    return Clinic(
        org=org,
        location=location,
        treatment=treatment,
        consultation=consultation,
        ada=people[0],
        ben=people[1],
        rooms=[Room.objects.create(location=location, name=f"Room {i}") for i in range(rooms)],
        devices=[
            Device.objects.create(
                location=location, name=f"Pen {i}", model="SkinPen", serial_number=f"{name}-{i}"
            )
            for i in range(devices)
        ],
    )


def make_patient(
    clinic: Clinic,
    *,
    name: str = "Cleo Marsh",
    skin: int = 2,
    screen_on: date = date(2027, 3, 8),
    **intake: Any,
) -> Patient:
    """A patient screened with a healthy intake (override intake fields to change it)."""
    first, last = name.split(" ", 1)
    patient = Patient.objects.create(
        organization=clinic.org,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}@example.test",
        birth_date=date(1990, 4, 2),
        fitzpatrick_type=skin,
    )
    screen_again(patient, screen_on=screen_on, skin=skin, **intake)
    return patient


def screen_again(
    patient: Patient, *, screen_on: date = date(2027, 3, 8), skin: int = 2, **intake: Any
) -> None:
    """The patient answers the intake (again) with a healthy one, changed by ``intake``."""
    data = {
        "planned_date": screen_on.isoformat(),
        "birth_date": "1990-04-02",
        "fitzpatrick_type": skin,
        "treatment_areas": ["face"],
        "pregnant": False,
        "breastfeeding": False,
        **intake,
    }
    screening_record(patient=patient, intake=Intake.model_validate(data))


def procedure_start(appointment: Appointment) -> Appointment:
    """Check the patient in on the visit's day and start the procedure, as the desk does
    before a chart is signed (signing the current consent first, if the patient has not)."""
    from microneedling.charting.services import consent_is_current, consent_sign  # noqa: PLC0415
    from microneedling.scheduling.services import appointment_set_status  # noqa: PLC0415

    patient = appointment.patient
    if not consent_is_current(patient):
        consent_sign(
            patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None
        )
    for status in ("checked_in", "in_progress"):
        appointment_set_status(
            appointment=appointment, status=status, actor=None, now=appointment.starts_at
        )
    return appointment


def client_of(user: Any) -> Client:
    """A browser signed in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def book_visit(
    clinic: Clinic,
    patient: Patient,
    starts_at: datetime,
    provider: Provider | None = None,
    *,
    over_by: AbstractBaseUser | None = None,
    service: Service | None = None,
) -> Appointment:
    """One treatment visit at ``clinic`` (with Ada unless ``provider`` says otherwise), or
    a visit of ``service`` (a consultation, say: a visit that is not a treatment of the
    skin); with ``over_by``, that member of staff books it on purpose over the patient's
    other visit at that time (an audited override)."""
    override = (
        {"actor": over_by, "override_reason": "the patient asked for both visits at once"}
        if over_by is not None
        else {}
    )
    return appointment_book(
        patient=patient,
        service=service or clinic.treatment,
        location=clinic.location,
        provider=provider or clinic.ada,
        starts_at=starts_at,
        **override,
    )


def _face_acne_course(clinic: Clinic, patient: Patient, first: date) -> dict[str, Any]:
    return {
        "patient": patient,
        "location": clinic.location,
        "service": clinic.treatment,
        "indications": ["acne_scars"],
        "first_session": first,
        "areas": ["face"],
    }


def book_course(clinic: Clinic, patient: Patient, first: date = MONDAY, **kw: Any) -> Course:
    """The three-session acne-scar course for the face, its first session from ``first``."""
    return course_book(**_face_acne_course(clinic, patient, first), **kw)


def propose_course(
    clinic: Clinic, patient: Patient, first: date = MONDAY, **kw: Any
) -> CourseProposal:
    """What :func:`book_course` would book, without booking it."""
    return course_propose(**_face_acne_course(clinic, patient, first), **kw)


#: The password the sign-up forms of the tests use (not a secret).
SIGN_UP_PASSWORD = "a-long-harbour-walk"  # noqa: S105


def sign_up_data(clinic: Clinic, **changes: str) -> dict[str, str]:
    """What a patient types into the sign-up form, with ``changes``."""
    data = {
        "first_name": "Dana",
        "last_name": "Reyes",
        "email": "dana.reyes@example.org",
        "birth_date": "1990-05-17",
        "location": str(clinic.location.pk),
        "password": SIGN_UP_PASSWORD,
    }
    return {**data, **changes}


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings) -> None:  # type: ignore[no-untyped-def]
    """The tests book many times a minute from one address; the limits' own tests set them
    back down."""
    settings.MICRONEEDLING = {
        **settings.MICRONEEDLING,
        "RATE_LIMITS": dict.fromkeys(settings.MICRONEEDLING["RATE_LIMITS"], 100_000),
    }


@pytest.fixture
def clinic(db: None) -> Clinic:
    return build_clinic()


def make_staff(
    username: str,
    role: str = "front_desk",
    *,
    locations: Iterable[Location] | None = None,
    provider: Provider | None = None,
    organization: Organization | None = None,
    **user_fields: Any,
) -> Any:
    """A member of staff with ``role`` (see accounts.access) in the test organisation; a front
    desk or provider works at ``locations`` (default: every location there is)."""
    org = (
        organization
        or Organization.objects.get_or_create(
            slug="riverbend-group", defaults={"name": "Riverbend Group"}
        )[0]
    )
    user = get_user_model().objects.create_user(username, **user_fields)
    member = StaffMember.objects.create(user=user, role=role, organization=org, provider=provider)
    member.locations.set(Location.objects.all() if locations is None else locations)
    # Staff sign in with a TOTP code: every test member of staff has an authenticator.
    TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    return user


def make_superuser(username: str) -> Any:
    """A superuser (the system's administrator), with an authenticator like all staff."""
    user = get_user_model().objects.create_superuser(username, password=None)
    TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    return user


def totp_code(user: Any) -> str:
    """The code ``user``'s authenticator shows now (what they would type)."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture(autouse=True)
def _force_login_gives_the_second_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Client.force_login`` skips the password, so here it also skips the code: the session
    is marked verified with the user's device, exactly as ``django_otp.login`` marks it after
    a right code. Signing in for real (password, then code) is tested in test_two_factor."""
    original = Client.force_login

    def force_login(self: Client, user: Any, backend: str | None = None) -> None:
        original(self, user, backend)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is not None:
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def staff_user(db: None) -> AbstractBaseUser:
    """The API tests' member of staff: a chain operator (every location, no clinical notes)."""
    return make_staff("desk", "chain_operator", password=None)  # type: ignore[no-any-return]


@pytest.fixture
def staff_token(staff_user: AbstractBaseUser) -> str:
    return api_token_issue(user=staff_user)


@pytest.fixture
def auth_headers(staff_token: str) -> Callable[..., dict[str, str]]:
    def headers(**extra: str) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {staff_token}", **extra}

    return headers


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Make the services' clock read NOW (the engines themselves have no clock)."""
    import time_machine  # noqa: PLC0415

    traveller = time_machine.travel(NOW, tick=False)
    traveller.start()
    yield NOW  # type: ignore[misc]
    traveller.stop()


def next_weekday(day: date, weekday: int) -> date:
    """The first date on or after ``day`` that falls on ``weekday``."""
    return day + timedelta(days=(weekday - day.weekday()) % 7)
