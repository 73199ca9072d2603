"""A generated chain for the scheduling benchmark, written straight to the database.

20 locations, 150 providers, a year of bookings, and one provider ("the busy one") with
6,000 appointments. Rows are bulk-inserted (the services would take minutes for this many);
the generator lays visits out so that no two active reservations of a resource overlap,
exactly as the services would.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

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
from microneedling.scheduling.models import Appointment, Reservation

ZONE = "America/Chicago"
PHASES = [
    ("check_in_cleanse", 10, ()),
    ("numbing", 30, ()),
    ("procedure", 30, ("provider", "device")),
    ("serum_aftercare", 15, ()),
]
VISIT_MINUTES = sum(minutes for _, minutes, _ in PHASES)


def visit_rows(
    resource_room: str, provider: str, device: str, start: datetime
) -> tuple[list[tuple[str, str, datetime, datetime]], datetime]:
    """The reservations of one visit starting at ``start``, and its end (shared with the
    re-homing benchmark's generator)."""
    rows, at = [], start
    for code, minutes, needs in PHASES:
        ends = at + timedelta(minutes=minutes)
        if "provider" in needs:
            rows.append((provider, code, at, ends))
        if "device" in needs:
            rows.append((device, code, at, ends))
        at = ends
    # The room is held from check-in to aftercare: one row, as the booking service writes it.
    rows.append((resource_room, PHASES[0][0], start, at))
    return rows, at


def _places(org: Organization, count: int, seed: int) -> list[Location]:
    places = []
    for index in range(count):
        location = Location.objects.create(
            organization=org,
            name=f"Bench {index}",
            slug=f"bench-{seed}-{index}",
            address=f"{index} Bench St",
            city="Springfield",
            region="IL",
            zip_code="62701",
            latitude=39.78 + index / 100,
            longitude=-89.65,
            timezone=ZONE,
        )
        OpeningHours.objects.bulk_create(
            [
                OpeningHours(location=location, weekday=d, opens=time(7), closes=time(21))
                for d in range(7)
            ]
        )
        places.append(location)
    return places


def visits_write(
    appointments: list[Appointment], plans: list[list[tuple[str, str, datetime, datetime]]]
) -> None:
    """Bulk-insert generated visits and their reservations (``plans[i]`` for visit ``i``)."""
    Appointment.objects.bulk_create(appointments, batch_size=2000)
    Reservation.objects.bulk_create(
        [
            Reservation(
                appointment=appointment,
                resource=resource,
                phase=code,
                starts_at=starts,
                ends_at=ends,
            )
            for appointment, rows in zip(appointments, plans, strict=True)
            for resource, code, starts, ends in rows
        ],
        batch_size=5000,
    )


def bench_service(org: Organization) -> Service:
    """The benchmark's treatment: the four phases of a face visit."""
    service = Service.objects.create(
        organization=org, code="bench-face", name="Face", kind="treatment", areas=["face"]
    )
    for order, (code, minutes, needs) in enumerate(PHASES):
        ServicePhase.objects.create(
            service=service,
            order=order,
            code=code,
            minutes=minutes,
            needs_provider="provider" in needs,
            needs_device="device" in needs,
        )
    return service


def build_chain(
    *,
    first_day: date,
    locations: int = 20,
    providers: int = 150,
    busy_appointments: int = 6000,
    seed: int = 5,
) -> dict[str, int]:
    """Create the chain; returns the ids the benchmark needs."""
    rng = random.Random(seed)
    tz = ZoneInfo(ZONE)
    with transaction.atomic():
        org = Organization.objects.create(name="Bench Chain", slug=f"bench-{seed}")
        places = _places(org, locations, seed)
        # Location 0 is the busy one: more rooms and pens.
        rooms = {
            loc.pk: [Room.objects.create(location=loc, name=f"R{i}").pk for i in range(8)]
            for loc in places
        }
        devices = {
            loc.pk: [
                Device.objects.create(
                    location=loc, name=f"D{i}", model="Pen", serial_number=f"b{seed}-{loc.pk}-{i}"
                ).pk
                for i in range(8)
            ]
            for loc in places
        }
        service = bench_service(org)
        staff = [
            Provider(organization=org, display_name=f"Provider {i}", role="physician")
            for i in range(providers)
        ]
        Provider.objects.bulk_create(staff)
        # Providers 0–7 work at the busy location 0; the rest are spread over the others.
        home = {
            p.pk: places[0] if i < 8 else places[1 + i % (locations - 1)]
            for i, p in enumerate(staff)
        }
        ProviderSchedule.objects.bulk_create(
            [
                ProviderSchedule(
                    provider=p,
                    location=home[p.pk],
                    weekday=weekday,
                    starts=time(7) if i == 0 else time(9),
                    ends=time(21) if i == 0 else time(17),
                    valid_from=first_day - timedelta(days=1),
                )
                for i, p in enumerate(staff)
                for weekday in range(7 if i == 0 else 5)
            ]
        )
        patient = Patient.objects.create(
            organization=org,
            first_name="Bench",
            last_name="Load",
            email="bench@example.test",
            birth_date=date(1990, 1, 1),
        )
        appointments: list[Appointment] = []
        plans: list[list[tuple[str, str, datetime, datetime]]] = []

        def add(
            provider: Provider, location: Location, room: str, device: str, start: datetime
        ) -> None:
            rows, ends = visit_rows(room, f"provider:{provider.pk}", device, start)
            appointments.append(
                Appointment(
                    patient=patient,
                    service=service,
                    location=location,
                    provider=provider,
                    starts_at=start,
                    ends_at=ends,
                )
            )
            plans.append(rows)

        # The busy provider: a visit every 30 minutes from 07:00, about 85% of slots taken,
        # rotating rooms and pens at location 0, until 6,000 visits are placed.
        busy_rooms, busy_devices = rooms[places[0].pk], devices[places[0].pk]
        day, placed = first_day, 0
        while placed < busy_appointments:
            for slot in range(24):
                if placed >= busy_appointments or rng.random() < 0.15:
                    continue
                add(
                    staff[0],
                    places[0],
                    f"room:{busy_rooms[slot % 4]}",
                    f"device:{busy_devices[slot % 2]}",
                    datetime.combine(day, time(7), tzinfo=tz) + timedelta(minutes=30 * slot),
                )
                placed += 1
            day += timedelta(days=1)
        # Everyone away from location 0: one visit a working day for a year at 10:00, the
        # k-th provider of a location in its k-th room with its k-th pen (eight of each, and
        # at most eight providers a location), so no two generated visits share a resource.
        seen: dict[int, int] = {}
        for provider in staff[8:]:
            location = home[provider.pk]
            k = seen[location.pk] = seen.get(location.pk, -1) + 1
            for offset in range(365):
                when = first_day + timedelta(days=offset)
                if when.weekday() < 5:
                    add(
                        provider,
                        location,
                        f"room:{rooms[location.pk][k]}",
                        f"device:{devices[location.pk][k]}",
                        datetime.combine(when, time(10), tzinfo=tz),
                    )
        visits_write(appointments, plans)
    _settle_statistics()
    return {
        "organization": org.pk,
        "location": places[0].pk,
        "service": service.pk,
        "busy_provider": staff[0].pk,
        "appointments": len(appointments),
        "busy_appointments": placed,
    }


def _settle_statistics() -> None:
    """Bring the freshly loaded database to the state a live one is in: planner statistics
    gathered and, on PostgreSQL, the visibility map written (what autovacuum does in the
    background), so that index-only scans are measured as they run in service."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
