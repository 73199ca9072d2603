"""Two runs of one closure at once, each on its own connection: every visit is moved, and its
patient told, once (on PostgreSQL the second run waits for the first and then reads what it
did; on SQLite IMMEDIATE transactions run them one after the other)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections

from microneedling.directory.models import Location, LocationClosure
from microneedling.notifications.models import Message
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.rehoming import RehomingReport, location_close
from tests.web.conftest import MONDAY, book_visit, build_clinic, local, make_patient
from tests.web.rehoming_checks import overlapping_reservations

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.concurrency,
    pytest.mark.usefixtures("frozen_now"),
]


def test_a_temporary_closure_applied_twice_at_once_moves_and_tells_each_patient_once() -> None:
    riverbend = build_clinic()
    lakeside = build_clinic(name="Lakeside")
    Location.objects.filter(pk=lakeside.location.pk).update(latitude=41.913)
    visits = [
        book_visit(riverbend, make_patient(riverbend, name=f"Pat Number{n}"), local(MONDAY, 9 + n))
        for n in range(3)
    ]
    first_done = threading.Event()
    reports: dict[str, RehomingReport] = {}
    errors: list[str] = []

    def hold_open(phase: str, done: int, total: int) -> None:
        # The first run has written its moves: keep its transaction open a moment while the
        # second run (the same closure, applied again) starts against the same visits.
        if phase == "applying" and done == total and not first_done.is_set():
            first_done.set()
            time.sleep(2)

    def run(name: str, **kw: Any) -> None:
        try:
            if name == "second":
                first_done.wait(timeout=60)
            reports[name] = location_close(
                location=Location.objects.get(pk=riverbend.location.pk),
                from_date=MONDAY,
                until=MONDAY + timedelta(days=4),
                actor=None,
                apply=True,
                **kw,
            )
        except Exception as error:  # reported by the assertion below
            errors.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=("first",), kwargs={"progress": hold_open}),
        threading.Thread(target=run, args=("second",)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(reports["first"].moves) == len(visits)
    assert reports["second"].moves == []
    told = Counter(
        Message.objects.filter(kind="location_change").values_list("appointment_id", flat=True)
    )
    assert told == Counter({v.pk: 1 for v in visits})
    moved = Appointment.objects.filter(pk__in=[v.pk for v in visits])
    assert set(moved.values_list("location_id", flat=True)) == {lakeside.location.pk}
    assert overlapping_reservations() == []
    assert LocationClosure.objects.filter(location=riverbend.location).count() == 1
