"""The demo clinic: an invented chain of three locations (one closing), eight providers,
rooms, devices, services and forty patients with courses in progress.

Every name, address and phone number is invented. Courses are booked through the same
services a real booking uses, as of a date in the past, so the demo's schedule obeys every
rule (no overlaps, sessions inside their windows); sessions already past are then completed.
"""

from __future__ import annotations

import random
import secrets
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.models import StaffMember
from microneedling.charting.services import consent_is_current, consent_sign
from microneedling.core.errors import BookingConflict
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake
from microneedling.directory.models import (
    CartridgeLot,
    ClinicPolicy,
    Device,
    Location,
    LocationClosure,
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
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment

ZONE = "America/Chicago"
LOCATIONS = [
    # slug, name, address, zip, lat, lon, rooms
    (
        "alamo-heights",
        "Alamo Heights",
        "4120 Broadway Ave, Suite 200",
        "78209",
        29.4852,
        -98.4656,
        3,
    ),
    (
        "medical-center",
        "Medical Center",
        "7700 Floyd Curl Dr, Suite 310",
        "78229",
        29.5078,
        -98.5755,
        3,
    ),
    ("stone-ridge", "Stone Ridge", "20811 Heights Blvd, Suite 105", "78258", 29.6331, -98.4771, 2),
]
PROVIDERS = [
    ("Dr. Amara Okafor", "physician", ["board-certified dermatologist"], ["alamo-heights"]),
    ("Dr. Tomas Lindqvist", "physician", ["dermatologic surgery"], ["stone-ridge"]),
    (
        "Priya Raman, NP",
        "nurse_practitioner",
        ["aesthetic nurse practitioner"],
        ["alamo-heights", "medical-center"],
    ),
    ("Jordan Ellis, NP", "nurse_practitioner", ["nurse practitioner"], ["medical-center"]),
    ("Mei-Lin Cho", "aesthetician", ["licensed medical aesthetician"], ["alamo-heights"]),
    ("Rafael Duarte", "aesthetician", ["licensed medical aesthetician"], ["medical-center"]),
    ("Hannah Brooks", "aesthetician", ["licensed medical aesthetician"], ["stone-ridge"]),
    ("Dr. Kwame Mensah", "physician", ["dermatologist"], ["medical-center", "stone-ridge"]),
]
FIRST_NAMES = [
    "Ava",
    "Liam",
    "Sofia",
    "Noah",
    "Isabella",
    "Mateo",
    "Mia",
    "Elijah",
    "Camila",
    "Lucas",
    "Harper",
    "Diego",
    "Zoe",
    "Ethan",
    "Luna",
    "Aiden",
    "Chloe",
    "Omar",
    "Nora",
    "Kai",
]
LAST_NAMES = [
    "Alvarez",
    "Bennett",
    "Castillo",
    "Dawson",
    "Esposito",
    "Fischer",
    "Garza",
    "Hughes",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Morrison",
    "Nakamura",
]
CONCERNS = [
    ["acne_scars"],
    ["fine_lines"],
    ["wrinkles"],
    ["texture_tone"],
    ["hyperpigmentation"],
    ["enlarged_pores"],
    ["fine_lines", "texture_tone"],
    ["melasma"],
]
FACE_PHASES = [
    ("check_in_cleanse", 10, False, False),
    ("numbing", 30, False, False),
    ("procedure", 30, True, True),
    ("serum_aftercare", 15, False, False),
]


def demo_is_loaded() -> bool:
    """Whether the demo (or any) organisation exists already."""
    return Organization.objects.exists()


def _services(org: Organization) -> dict[str, Service]:
    specs = {
        "consultation": (
            "Consultation",
            "consultation",
            [],
            [("check_in_cleanse", 5, False, False), ("consultation", 25, True, False)],
        ),
        "microneedling-face": ("Microneedling: face", "treatment", ["face"], FACE_PHASES),
        "microneedling-face-neck": (
            "Microneedling: face and neck",
            "treatment",
            ["face", "neck"],
            [
                ("check_in_cleanse", 10, False, False),
                ("numbing", 30, False, False),
                ("procedure", 40, True, True),
                ("serum_aftercare", 15, False, False),
            ],
        ),
        "microneedling-body": (
            "Microneedling: one body area",
            "treatment",
            ["back"],
            [
                ("check_in_cleanse", 10, False, False),
                ("numbing", 30, False, False),
                ("procedure", 45, True, True),
                ("serum_aftercare", 15, False, False),
            ],
        ),
        "follow-up": ("Follow-up review", "follow_up", [], [("review", 15, True, False)]),
    }
    made = {}
    for code, (name, kind, areas, phases) in specs.items():
        service = Service.objects.create(
            organization=org, code=code, name=name, kind=kind, areas=areas
        )
        for order, (phase, minutes, provider, device) in enumerate(phases):
            ServicePhase.objects.create(
                service=service,
                order=order,
                code=phase,
                minutes=minutes,
                needs_provider=provider,
                needs_room=True,
                needs_device=device,
            )
        made[code] = service
    return made


def _locations(org: Organization, today: date) -> dict[str, Location]:
    """The three locations with hours, rooms, pens, cartridges and a winter holiday."""
    locations: dict[str, Location] = {}
    for slug, name, address, zip_code, lat, lon, rooms in LOCATIONS:
        location = Location.objects.create(
            organization=org,
            name=name,
            slug=slug,
            address=address,
            city="San Antonio",
            region="TX",
            zip_code=zip_code,
            latitude=lat,
            longitude=lon,
            timezone=ZONE,
            phone=f"(210) 555-01{len(locations) + 10}",
        )
        for weekday in range(5):
            OpeningHours.objects.create(
                location=location, weekday=weekday, opens=time(8, 30), closes=time(18, 0)
            )
        OpeningHours.objects.create(
            location=location, weekday=5, opens=time(9, 0), closes=time(13, 0)
        )
        for number in range(1, rooms + 1):
            Room.objects.create(location=location, name=f"Room {number}")
        for number in range(1, 3):
            Device.objects.create(
                location=location,
                name=f"Pen {number}",
                model="SkinPen Precision",
                serial_number=f"DEMO-{slug[:3].upper()}-{number:03d}",
            )
        CartridgeLot.objects.create(
            location=location,
            device_model="SkinPen Precision",
            lot_number=f"LOT-{slug[:2].upper()}2611",
            expires_on=today + timedelta(days=400),
            quantity=120,
        )
        LocationClosure.objects.create(
            location=location,
            starts_on=date(today.year, 12, 25),
            ends_on=date(today.year, 12, 26),
            reason="Winter holiday",
        )
        locations[slug] = location
    return locations


def _staff_accounts(
    org: Organization, provider: Provider, locations: list[Location], password: str
) -> None:
    """One account per role, all with ``password``, so each role's view can be tried."""
    user_model = get_user_model()
    cast = [
        ("frontdesk", StaffMember.Role.FRONT_DESK, None),
        ("okafor", StaffMember.Role.PROVIDER, provider),
        ("clinicadmin", StaffMember.Role.CLINIC_ADMIN, None),
        ("operator", StaffMember.Role.CHAIN_OPERATOR, None),
        ("auditor", StaffMember.Role.AUDITOR, None),
    ]
    for username, staff_role, staff_provider in cast:
        if user_model.objects.filter(username=username).exists():
            continue
        member = StaffMember.objects.create(
            user=user_model.objects.create_user(username, password=password),
            role=staff_role,
            organization=org,
            provider=staff_provider,
        )
        if staff_role in (StaffMember.Role.FRONT_DESK, StaffMember.Role.CLINIC_ADMIN):
            member.locations.set(locations)


def load_demo(*, today: date, seed: int = 2026) -> dict[str, int | str]:
    """Create the demo chain and book its patients' courses; returns counts and the desk's
    sign-in (a random password made for this database)."""
    rng = random.Random(seed)
    with transaction.atomic():
        org = Organization.objects.create(name="Mesquite Skin Clinics", slug="mesquite")
        # The pack's defaults, stored so the admin shows the clinic something to change.
        ClinicPolicy.objects.create(organization=org)
        locations = _locations(org, today)
        closing = locations["stone-ridge"]
        closing.status = Location.Status.CLOSING
        closing.closes_on = today + timedelta(days=45)
        closing.successor = locations["alamo-heights"]
        closing.save()

        providers = []
        for name, role, qualifications, works_at in PROVIDERS:
            provider = Provider.objects.create(
                organization=org, display_name=name, role=role, qualifications=qualifications
            )
            for index, slug in enumerate(works_at):
                # Split weeks between sites: Mon–Wed at the first, Thu–Sat at the second.
                days = range(6) if len(works_at) == 1 else (range(3) if index == 0 else range(3, 6))
                for weekday in days:
                    ends = time(13, 0) if weekday == 5 else time(17, 30)
                    ProviderSchedule.objects.create(
                        provider=provider,
                        location=locations[slug],
                        weekday=weekday,
                        starts=time(9, 0),
                        ends=ends,
                        valid_from=today - timedelta(days=365),
                    )
            providers.append(provider)
        face = _services(org)["microneedling-face"]
        catalogue = dict.fromkeys(locations, face)

        # A fresh random password per demo database, printed once by `microneedling demo`:
        # usable on this machine, never a password that ships with the code.
        desk_password = secrets.token_urlsafe(12)
        _staff_accounts(org, providers[0], list(locations.values()), desk_password)

        pack, booked, patients = load_pack(), 0, 0
        started = today - timedelta(days=70)
        clock = datetime.combine(started, time(8, 0), tzinfo=ZoneInfo(ZONE))
        for number in range(40):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            skin = rng.randint(1, 6)
            patient = Patient.objects.create(
                organization=org,
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}{number}@example.test",
                birth_date=date(rng.randint(1965, 2001), rng.randint(1, 12), rng.randint(1, 28)),
                zip_code=rng.choice(["78209", "78229", "78258", "78216"]),
                fitzpatrick_type=skin,
                timezone=ZONE,
                preferred_weekdays=sorted(rng.sample(range(6), 3)),
            )
            patients += 1
            first_session = started + timedelta(days=rng.randint(2, 60))
            concerns = rng.choice(CONCERNS)
            intake = Intake.model_validate(
                {
                    "planned_date": first_session.isoformat(),
                    "birth_date": patient.birth_date.isoformat(),
                    "fitzpatrick_type": skin,
                    "treatment_areas": ["face"],
                    "pregnant": False,
                    "breastfeeding": False,
                }
            )
            screening_record(patient=patient, intake=intake)
            location = (
                locations["stone-ridge"]
                if number % 5 == 0
                else rng.choice([locations["alamo-heights"], locations["medical-center"]])
            )
            # A patient of the closing location whose course runs past its last day is
            # booked at its successor, as the front desk would.
            for place in (location, location.successor):
                if place is None:
                    continue
                try:
                    services.course_book(
                        patient=patient,
                        location=place,
                        service=catalogue[place.slug],
                        indications=concerns,
                        first_session=first_session,
                        areas=["face"],
                        preferences=services.Preferences(
                            weekdays=tuple(patient.preferred_weekdays)
                        ),
                        now=clock,
                    )
                except BookingConflict:
                    continue
                booked += 1
                break
        now = timezone.now()
        for appointment in Appointment.objects.filter(
            ends_at__lt=now, status=Appointment.Status.BOOKED
        ).select_related("patient"):
            patient = appointment.patient
            if not consent_is_current(patient):
                consent_sign(
                    patient=patient,
                    signature=f"{patient.first_name} {patient.last_name}",
                    actor=None,
                )
            for status in ("checked_in", "in_progress", "completed"):
                services.appointment_set_status(
                    appointment=appointment, status=status, actor=None, reason="demo history"
                )
    return {
        "locations": len(locations),
        "providers": len(providers),
        "patients": patients,
        "courses": booked,
        "pack_entries": len(pack.entry_ids),
        "desk_sign_in": (
            f"frontdesk, okafor (provider), clinicadmin, operator or auditor / {desk_password}"
            " at /my/sign-in/ (then /desk/; the auditor's page is /audit/)"
        ),
    }
