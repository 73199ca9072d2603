"""What availability reads from the database: the epoch-second columns the database keeps on
reservations, and a location's layout in one query (both engines)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from microneedling.directory.models import (
    LocationClosure,
    Provider,
    ProviderLeave,
    ProviderSchedule,
    Room,
)
from microneedling.scheduling.calendars import day_bounds, location_calendar
from microneedling.scheduling.layout import layout_read
from microneedling.scheduling.models import Appointment, Reservation
from tests.web.conftest import TZ, Clinic, local, make_patient

pytestmark = pytest.mark.django_db(transaction=False)

DAY = date(2027, 3, 9)  # a Tuesday


def _reservation(clinic: Clinic, starts_at: datetime, ends_at: datetime) -> Reservation:
    patient = make_patient(clinic)
    appointment = Appointment.objects.create(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    return Reservation.objects.create(
        appointment=appointment,
        resource=f"room:{clinic.rooms[0].pk}",
        phase="visit",
        starts_at=starts_at,
        ends_at=ends_at,
    )


def test_the_database_keeps_reservation_bounds_in_whole_epoch_seconds(clinic: Clinic) -> None:
    starts_at = local(DAY, 10)
    reservation = _reservation(clinic, starts_at, local(DAY, 11, 25))
    reservation.refresh_from_db()
    assert reservation.start_second == int(starts_at.timestamp())
    assert reservation.end_second == int(local(DAY, 11, 25).timestamp())

    # Moving it updates them: the database computes them, no caller can forget.
    Reservation.objects.filter(pk=reservation.pk).update(
        starts_at=starts_at + timedelta(hours=1), ends_at=local(DAY, 12, 25)
    )
    reservation.refresh_from_db()
    assert reservation.start_second == int(starts_at.timestamp()) + 3600


def test_a_fractional_end_rounds_up_and_a_fractional_start_down(clinic: Clinic) -> None:
    starts_at = datetime(2027, 3, 9, 16, 0, 0, 250_000, tzinfo=UTC)
    ends_at = datetime(2027, 3, 9, 17, 0, 0, 1, tzinfo=UTC)
    reservation = _reservation(clinic, starts_at, ends_at)
    reservation.refresh_from_db()
    assert reservation.start_second == int(datetime(2027, 3, 9, 16, tzinfo=UTC).timestamp())
    assert reservation.end_second == int(datetime(2027, 3, 9, 17, 0, 1, tzinfo=UTC).timestamp())


def test_the_layout_comes_back_in_one_query_with_every_part(clinic: Clinic) -> None:
    LocationClosure.objects.create(
        location=clinic.location,
        starts_on=date(2027, 3, 10),
        ends_on=date(2027, 3, 11),
        reason="Refit",
    )
    Room.objects.create(location=clinic.location, name="Shut room", active=False)
    retired = Provider.objects.create(
        organization=clinic.org, display_name="Retired", role="nurse_practitioner", active=False
    )
    ProviderSchedule.objects.create(
        provider=retired,
        location=clinic.location,
        weekday=1,
        starts=time(9),
        ends=time(12),
        valid_from=date(2026, 1, 1),
    )
    ProviderLeave.objects.create(
        provider=clinic.ben, starts_at=local(DAY, 13), ends_at=local(DAY, 15), reason="Training"
    )
    first, last = DAY, DAY + timedelta(days=6)
    start, end = day_bounds(first, last, clinic.location.timezone)
    with CaptureQueriesContext(connection) as queries:
        layout = layout_read(
            location=clinic.location, first_day=first, last_day=last, start=start, end=end
        )
    assert len(queries) == 1
    assert layout.hours[1] == [(time(8), time(18))]
    assert 5 not in layout.hours  # shut on Saturdays
    assert layout.closed == {date(2027, 3, 10), date(2027, 3, 11)}
    assert layout.rooms == [room.pk for room in clinic.rooms]
    assert layout.devices == [device.pk for device in clinic.devices]
    assert list(layout.shifts) == [clinic.ada.pk, clinic.ben.pk]  # not the inactive one
    assert (date(2026, 1, 1), None, 1, time(9), time(17)) in layout.shifts[clinic.ada.pk]
    assert layout.leave == {
        clinic.ben.pk: [(int(local(DAY, 13).timestamp()), int(local(DAY, 15).timestamp()))]
    }


def test_the_layout_keeps_only_the_providers_asked_for(clinic: Clinic) -> None:
    start, end = day_bounds(DAY, DAY, clinic.location.timezone)
    layout = layout_read(
        location=clinic.location,
        first_day=DAY,
        last_day=DAY,
        start=start,
        end=end,
        provider_ids=[clinic.ben.pk],
    )
    assert list(layout.shifts) == [clinic.ben.pk]


def test_a_location_closing_for_good_is_shut_from_its_last_day(clinic: Clinic) -> None:
    clinic.location.closes_on = DAY + timedelta(days=2)
    clinic.location.save()
    start, end = day_bounds(DAY, DAY + timedelta(days=4), clinic.location.timezone)
    layout = layout_read(
        location=clinic.location,
        first_day=DAY,
        last_day=DAY + timedelta(days=4),
        start=start,
        end=end,
    )
    assert layout.closed == {DAY + timedelta(days=k) for k in (2, 3, 4)}


def test_the_calendar_takes_bookings_and_leave_out_of_free_time(clinic: Clinic) -> None:
    _reservation(clinic, local(DAY, 10), local(DAY, 11, 25))
    ProviderLeave.objects.create(
        provider=clinic.ada, starts_at=local(DAY, 13), ends_at=local(DAY, 14), reason="Dentist"
    )
    calendar = location_calendar(
        location=clinic.location, service=clinic.treatment, first_day=DAY, last_day=DAY
    )
    free = {r.id: [(i.start, i.end) for i in r.free] for r in calendar.resources}
    assert free[f"room:{clinic.rooms[0].pk}"] == [
        (local(DAY, 8), local(DAY, 10)),
        (local(DAY, 11, 25), local(DAY, 18)),
    ]
    assert free[f"provider:{clinic.ada.pk}"] == [
        (local(DAY, 9), local(DAY, 13)),
        (local(DAY, 14), local(DAY, 17)),
    ]


def test_a_calendar_limited_to_some_days_has_free_time_only_on_them(clinic: Clinic) -> None:
    later = DAY + timedelta(days=7)
    calendar = location_calendar(
        location=clinic.location,
        service=clinic.treatment,
        first_day=DAY,
        last_day=later,
        only_days=[(DAY, DAY), (later, later)],
    )
    for resource in calendar.resources:
        days = {i.start.astimezone(TZ).date() for i in resource.free}
        assert days <= {DAY, later}, resource.id
        assert days, resource.id


def test_a_calendar_limited_to_some_days_is_the_full_calendar_cut_to_those_days(
    clinic: Clinic,
) -> None:
    """Reading hours, shifts, bookings and leave for the chosen days only gives the same
    free time, on those days, as reading the whole span."""
    later, last = DAY + timedelta(days=7), DAY + timedelta(days=20)
    _reservation(clinic, local(DAY, 10), local(DAY, 11, 25))
    ProviderLeave.objects.create(
        provider=clinic.ada, starts_at=local(later, 13), ends_at=local(later, 14), reason="Dentist"
    )
    LocationClosure.objects.create(
        location=clinic.location,
        starts_on=later + timedelta(days=1),
        ends_on=later + timedelta(days=2),
        reason="floor",
    )
    stretches = [(DAY, DAY + timedelta(days=1)), (later, later + timedelta(days=3)), (last, last)]
    full = location_calendar(
        location=clinic.location, service=clinic.treatment, first_day=DAY, last_day=last
    )
    limited = location_calendar(
        location=clinic.location,
        service=clinic.treatment,
        first_day=DAY,
        last_day=last,
        only_days=stretches,
    )
    bounds = [day_bounds(a, b, clinic.location.timezone) for a, b in stretches]
    for whole, part in zip(full.resources, limited.resources, strict=True):
        assert whole.id == part.id
        cut = [
            (max(i.start, low), min(i.end, high))
            for i in whole.free
            for low, high in bounds
            if max(i.start, low) < min(i.end, high)
        ]
        assert [(i.start, i.end) for i in part.free] == cut, whole.id
        assert cut, whole.id
