"""A generated closing location for the re-homing benchmark, written straight to the
database: the closing site with ``visits`` future visits (a third of them course sessions
with their windows), and three receiving sites 5, 12 and 20 km away, each already 40% booked.

Rows are bulk-inserted as in :mod:`microneedling.bench.chain`, laid out so that no two
active reservations of a resource overlap, exactly as the services would leave them.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from microneedling.bench.chain import bench_service, visit_rows, visits_write
from microneedling.directory.models import (
    Device,
    Location,
    OpeningHours,
    Organization,
    Provider,
    ProviderSchedule,
    Room,
    Service,
)
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, Course, CourseSession

ZONE = "America/Chicago"
#: Real San Antonio ZIP codes (the offline table knows them): where the patients live.
ZIPS = ("78201", "78204", "78209", "78212", "78216", "78230", "78240", "78249", "78250", "78258")
GAP_DAYS = 35  # five weeks: the same weekday, inside the 28–42 day gap


def _starts() -> list[time]:
    """Eight visits a room a day, every 90 minutes from 08:00."""
    return [time(8 + (90 * k) // 60, (90 * k) % 60) for k in range(8)]


def _site(org: Organization, name: str, km_north: float, size: int, seed: int) -> dict:  # type: ignore[type-arg]
    location = Location.objects.create(
        organization=org,
        name=name,
        slug=f"rehome-{seed}-{name.lower().replace(' ', '-')}",
        address=f"{int(km_north)} Bench Rd",
        city="San Antonio",
        region="TX",
        zip_code="78209",
        latitude=29.45 + km_north / 111.0,
        longitude=-98.50,
        timezone=ZONE,
    )
    OpeningHours.objects.bulk_create(
        [
            OpeningHours(location=location, weekday=d, opens=time(8), closes=time(21))
            for d in range(6)
        ]
    )
    rooms = [Room.objects.create(location=location, name=f"R{i}").pk for i in range(size)]
    devices = [
        Device.objects.create(
            location=location, name=f"D{i}", model="Pen", serial_number=f"r{seed}-{name}-{i}"
        ).pk
        for i in range(size)
    ]
    providers = [
        Provider(organization=org, display_name=f"{name} provider {i}", role="physician")
        for i in range(size)
    ]
    Provider.objects.bulk_create(providers)
    return {"location": location, "rooms": rooms, "devices": devices, "providers": providers}


def build_closing(*, first_day: date, visits: int = 10_000, seed: int = 7) -> dict[str, int]:
    """Create the closing site and its receivers; returns the ids the benchmark needs."""
    rng = random.Random(seed)
    tz = ZoneInfo(ZONE)
    with transaction.atomic():
        org = Organization.objects.create(name="Rehoming Bench", slug=f"rehome-{seed}")
        service = bench_service(org)
        closing = _site(org, "Closing", 0, 10, seed)
        receivers = [_site(org, f"Receiver {km}", km, 9, seed) for km in (5, 12, 20)]
        for site in (closing, *receivers):
            ProviderSchedule.objects.bulk_create(
                [
                    ProviderSchedule(
                        provider=provider,
                        location=site["location"],
                        weekday=weekday,
                        starts=time(8),
                        ends=time(21),
                        valid_from=first_day - timedelta(days=1),
                    )
                    for provider in site["providers"]
                    for weekday in range(6)
                ]
            )
        patients = [
            Patient(
                organization=org,
                first_name=f"P{n}",
                last_name="Bench",
                email=f"p{n}@example.test",
                birth_date=date(1980, 1, 1),
                zip_code=ZIPS[n % len(ZIPS)],
            )
            for n in range(max(1, visits // 3))
        ]
        Patient.objects.bulk_create(patients, batch_size=2000)
        appointments: list[Appointment] = []
        plans: list[list[tuple[str, str, datetime, datetime]]] = []

        def add(site: dict, k: int, start: datetime, patient: Patient) -> Appointment:  # type: ignore[type-arg]
            provider = site["providers"][k]
            rows, ends = visit_rows(
                f"room:{site['rooms'][k]}",
                f"provider:{provider.pk}",
                f"device:{site['devices'][k]}",
                start,
            )
            appointment = Appointment(
                patient=patient,
                service=service,
                location=site["location"],
                provider=provider,
                starts_at=start,
                ends_at=ends,
            )
            appointments.append(appointment)
            plans.append(rows)
            return appointment

        starts = _starts()
        # The closing site: every slot of every room, Monday to Saturday, until full.
        day = first_day
        slots: list[tuple[datetime, int]] = []
        while len(slots) < visits:
            if day.weekday() < 6:
                slots += [
                    (datetime.combine(day, clock, tzinfo=tz), k)
                    for k in range(10)
                    for clock in starts
                ]
            day += timedelta(days=1)
        slots = slots[:visits]
        closing_visits = [
            add(closing, k, start, patients[n % len(patients)])
            for n, (start, k) in enumerate(slots)
        ]
        last_day = day
        # Receivers: 40% of their slots already booked, over the same season and a week more.
        day = first_day
        while day <= last_day + timedelta(days=7):
            if day.weekday() < 6:
                for site in receivers:
                    for k in range(9):
                        for clock in starts:
                            if rng.random() < 0.4:
                                add(
                                    site,
                                    k,
                                    datetime.combine(day, clock, tzinfo=tz),
                                    patients[rng.randrange(len(patients))],
                                )
            day += timedelta(days=1)
        sessions = _courses(
            location=closing["location"], service=service, slots=slots, visits=closing_visits, tz=tz
        )
        visits_write(appointments, plans)
    return {
        "organization": org.pk,
        "closing": closing["location"].pk,
        "closing_slug": closing["location"].slug,
        "receivers": len(receivers),
        "visits": len(slots),
        "course_sessions": sessions,
    }


def _trios(slots: list[tuple[datetime, int]]) -> list[tuple[int, int, int]]:
    """Index triples of slots in the same room and hour five and ten weeks apart, none
    sharing a slot, covering a third of the slots."""
    index = {slot: n for n, slot in enumerate(slots)}
    used: set[int] = set()
    trios: list[tuple[int, int, int]] = []
    for n, (start, k) in enumerate(slots):
        if len(trios) * 9 >= len(slots):
            break
        second = index.get((start + timedelta(days=GAP_DAYS), k))
        third = index.get((start + timedelta(days=2 * GAP_DAYS), k))
        if second is None or third is None or used & {n, second, third}:
            continue
        used |= {n, second, third}
        trios.append((n, second, third))
    return trios


def _courses(
    *,
    location: Location,
    service: Service,
    slots: list[tuple[datetime, int]],
    visits: list[Appointment],
    tz: ZoneInfo,
) -> int:
    """Make a third of the visits course sessions of one patient, each session's window a
    week either side of its day. Sets the visits' patient and session (before they are
    written); returns how many sessions."""
    trios = _trios(slots)
    courses = Course.objects.bulk_create(
        [
            Course(
                patient=visits[trio[0]].patient,
                location=location,
                service=service,
                indications=["acne_scars"],
                protocols=["protocol.acne_scars.harris2015"],
                areas=["face"],
                sessions_total=3,
                gap_min_days=28,
                gap_target_days=GAP_DAYS,
                gap_max_days=42,
            )
            for trio in trios
        ]
    )
    members = [
        (course, trio, number)
        for course, trio in zip(courses, trios, strict=True)
        for number in range(3)
    ]
    rows = []
    for course, trio, number in members:
        day = visits[trio[number]].starts_at.astimezone(tz).date()
        rows.append(
            CourseSession(
                course=course,
                number=number + 1,
                earliest=day - timedelta(days=7),
                target=day,
                latest=day + timedelta(days=7),
                status=CourseSession.Status.BOOKED,
            )
        )
    created = CourseSession.objects.bulk_create(rows, batch_size=2000)
    for session, (_, trio, number) in zip(created, members, strict=True):
        visit = visits[trio[number]]
        visit.course_session = session
        visit.patient = visits[trio[0]].patient
    return len(created)
