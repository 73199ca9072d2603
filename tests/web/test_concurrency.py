"""Real parallel clients on separate connections: no double booking, every client answered.

Run on SQLite (IMMEDIATE transactions serialise the check and the insert) and on PostgreSQL
(the exclusion constraint refuses the loser of a race).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from microneedling.core.errors import BookingConflict
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course, Reservation
from microneedling.scheduling.rehoming import hold_again
from tests.web.conftest import book_visit, build_clinic, local, make_patient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.concurrency,
    pytest.mark.usefixtures("frozen_now"),
]
MONDAY = date(2027, 3, 8)


def run_in_parallel(jobs: list[Callable[[], object]]) -> Counter[str]:
    """Start every job at the same moment on its own thread (own connection)."""
    barrier = threading.Barrier(len(jobs))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def runner(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
            outcome = "booked"
        except BookingConflict:
            outcome = "conflict"
        except Exception as error:
            outcome = f"error: {type(error).__name__}: {error}"
        finally:
            connections.close_all()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=runner, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def overlaps(rows: list[tuple[str, datetime, datetime]]) -> list[tuple[str, datetime]]:
    """Where two rows of one resource overlap (rows: resource, start, end)."""
    clashes = []
    previous: dict[str, datetime] = {}
    for resource, start, end in sorted(rows):
        if resource in previous and start < previous[resource]:
            clashes.append((resource, start))
        previous[resource] = max(end, previous.get(resource, end))
    return clashes


def assert_one_room_per_visit() -> None:
    """A patient never changes rooms during a visit."""
    for appointment in Appointment.objects.prefetch_related("reservations"):
        rooms = {r.resource for r in appointment.reservations.all() if r.resource[:5] == "room:"}
        assert len(rooms) == 1, (appointment.pk, rooms)


def overlapping_active_reservations() -> list[tuple[str, datetime]]:
    """Overlaps among active, non-override reservations in the database."""
    return overlaps(
        list(
            Reservation.objects.filter(active=True, overlap_allowed=False).values_list(
                "resource", "starts_at", "ends_at"
            )
        )
    )


def test_32_clients_booking_overlapping_slots_of_one_provider() -> None:
    clinic = build_clinic(rooms=4, devices=4)
    patients = [make_patient(clinic, name=f"Client {i}") for i in range(32)]
    starts = [local(MONDAY, 10, 5 * (i % 8)) for i in range(32)]
    jobs = [
        (
            lambda p=p, s=s: services.appointment_book(
                patient=p,
                service=clinic.treatment,
                location=clinic.location,
                provider=clinic.ada,
                starts_at=s,
            )
        )
        for p, s in zip(patients, starts, strict=True)
    ]
    outcomes = run_in_parallel(jobs)
    assert set(outcomes) <= {"booked", "conflict"}, outcomes
    assert outcomes["booked"] + outcomes["conflict"] == 32
    assert outcomes["booked"] >= 1
    assert Appointment.objects.count() == outcomes["booked"]
    assert overlapping_active_reservations() == []
    assert_one_room_per_visit()
    connection.close()


def test_16_clients_booking_overlapping_courses() -> None:
    clinic = build_clinic(rooms=2, devices=1)
    patients = [make_patient(clinic, name=f"Course {i}") for i in range(16)]
    jobs = [
        (
            lambda p=p: services.course_book(
                patient=p,
                location=clinic.location,
                service=clinic.treatment,
                indications=["acne_scars"],
                first_session=MONDAY,
                areas=["face"],
                preferences=services.Preferences(
                    provider_id=clinic.ada.pk, times=(("10:00", "11:00"),)
                ),
            )
        )
        for p in patients
    ]
    outcomes = run_in_parallel(jobs)
    assert set(outcomes) <= {"booked", "conflict"}, outcomes
    assert outcomes["booked"] + outcomes["conflict"] == 16
    assert Course.objects.count() == outcomes["booked"]
    # All or nothing: every course that exists has all of its sessions booked.
    for course in Course.objects.all():
        assert Appointment.objects.filter(course_session__course=course).count() == 3
    assert Appointment.objects.count() == 3 * outcomes["booked"]
    assert overlapping_active_reservations() == []
    assert_one_room_per_visit()
    connection.close()


def test_overlap_check_finds_a_planted_overlap() -> None:
    """The checker used above really detects overlaps (so its empty answer means something)."""
    at = local(MONDAY, 10)
    rows = [
        ("room:1", at, at + timedelta(minutes=30)),
        ("room:2", at, at + timedelta(minutes=30)),
        ("room:1", at + timedelta(minutes=30), at + timedelta(minutes=60)),
    ]
    assert overlaps(rows) == []
    planted = ("room:1", at + timedelta(minutes=20), at + timedelta(minutes=25))
    assert overlaps([*rows, planted]) == [("room:1", at + timedelta(minutes=20))]


def test_a_refused_move_does_not_take_back_a_time_booked_while_it_looked() -> None:
    """A visit whose holds were turned off in a committed transaction gets its time back
    only after checking the time is free. A booking that commits between that check and the
    update must win: on PostgreSQL the constraint refuses the update, on SQLite the write
    lock orders them. (Inside a re-homing run the holds are turned off in the run's own
    transaction, so such a booking waits for the run instead.)"""
    clinic = build_clinic()
    moving = book_visit(clinic, make_patient(clinic), local(MONDAY, 10))
    moving.reservations.update(active=False)  # its move is being tried
    booked, release = threading.Event(), threading.Event()

    def book_meanwhile() -> None:
        with transaction.atomic():
            book_visit(clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10))
            booked.set()
            release.wait(10)  # commit only once the check has read the time as free

    outcomes: Counter[str] = Counter()
    taker = threading.Thread(target=lambda: outcomes.update(run_in_parallel([book_meanwhile])))
    taker.start()
    assert booked.wait(10)
    threading.Timer(1.0, release.set).start()
    with transaction.atomic():
        held = hold_again(moving)
    taker.join(30)
    assert outcomes == Counter({"booked": 1})
    assert not held
    assert not moving.reservations.filter(active=True).exists()
    assert overlapping_active_reservations() == []
    connection.close()
