"""Closing a location and moving a provider on a real database: preview, apply, and what
must hold afterwards (no double booking, every session in its window, every visit counted)."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from microneedling.accounts.models import StaffMember
from microneedling.audit.models import AuditEvent
from microneedling.core.errors import BookingRefused
from microneedling.core.rehoming.model import Placement
from microneedling.directory.models import (
    ClinicPolicy,
    Location,
    LocationClosure,
    ProviderSchedule,
)
from microneedling.directory.policy import booking_rules
from microneedling.notifications.kinds import TIMED_KINDS
from microneedling.notifications.models import Message
from microneedling.notifications.outbox import UNSENT
from microneedling.scheduling import rehoming, services
from microneedling.scheduling.booking import slot_at
from microneedling.scheduling.calendars import location_calendar
from microneedling.scheduling.models import Appointment, AppointmentRequest, RehomingRun
from microneedling.scheduling.rehoming import hold_again, location_close, provider_move
from microneedling.scheduling.replanning import course_session_move
from tests.web.conftest import (
    MONDAY,
    NOW,
    TZ,
    Clinic,
    book_course,
    book_visit,
    build_clinic,
    local,
    make_patient,
    make_staff,
    screen_again,
)
from tests.web.rehoming_checks import overlapping_reservations, sessions_outside_windows

pytestmark = pytest.mark.usefixtures("frozen_now")
CLOSING_FROM = MONDAY


@pytest.fixture
def chain(clinic: Clinic) -> dict[str, Clinic]:
    """Riverbend (closing) and two receivers, Lakeside 3 km away and Northgate 25 km."""
    lakeside = build_clinic(name="Lakeside")
    northgate = build_clinic(name="Northgate")
    Location.objects.filter(pk=lakeside.location.pk).update(latitude=41.913)
    Location.objects.filter(pk=northgate.location.pk).update(latitude=42.11)
    return {"riverbend": clinic, "lakeside": lakeside, "northgate": northgate}


def _book_at_riverbend(clinic: Clinic, count: int) -> list[Appointment]:
    visits = []
    for n in range(count):
        patient = make_patient(clinic, name=f"Pat Number{n}")
        if n % 2:
            course = book_course(clinic, patient)
            visits += list(Appointment.objects.filter(course_session__course=course))
        else:
            visits.append(
                services.appointment_book(
                    patient=patient,
                    service=clinic.treatment,
                    location=clinic.location,
                    provider=clinic.ada if n % 4 else clinic.ben,
                    starts_at=local(MONDAY + timedelta(days=n % 5), 9 + n % 6),
                )
            )
    return visits


def _close_receivers(chain: dict[str, Clinic]) -> None:
    """Lakeside and Northgate close for the whole period (a refit), so nowhere can take a
    visit from Riverbend; deleting the closures with reason "refit" opens them again."""
    for name in ("lakeside", "northgate"):
        LocationClosure.objects.create(
            location=chain[name].location,
            starts_on=NOW.date(),
            ends_on=NOW.date() + timedelta(days=200),
            reason="refit",
        )


def _close_with_nowhere_to_go(chain: dict[str, Clinic]) -> rehoming.RehomingReport:
    """Riverbend, with four patients booked, closes from CLOSING_FROM while the receivers are
    shut too: the closure is applied and its visits are left behind."""
    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 4)
    _close_receivers(chain)
    return location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )


def _reopen_and_run_again(chain: dict[str, Clinic]) -> rehoming.RehomingReport:
    """The receivers open again and the closure is run again: it moves what it left."""
    LocationClosure.objects.filter(reason="refit").delete()
    return location_close(
        location=chain["riverbend"].location, from_date=CLOSING_FROM, actor=None, apply=True
    )


def test_a_preview_lists_every_move_and_changes_nothing(chain: dict[str, Clinic]) -> None:
    riverbend = chain["riverbend"]
    booked = _book_at_riverbend(riverbend, 6)
    messages_before = Message.objects.count()
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=False
    )
    summary = report.summary()
    assert not report.applied
    assert summary["affected"] == len(booked) == summary["rehomed"] + summary["stuck"]
    assert summary["rehomed"] == len(booked)
    assert {m.to_location for m in report.moves} <= {"Lakeside", "Northgate"}
    # Lakeside is nearer: it takes everything it has room for.
    assert sum(m.to_location == "Lakeside" for m in report.moves) >= len(booked) // 2
    assert Appointment.objects.filter(location=riverbend.location).count() == len(booked)
    riverbend.location.refresh_from_db()
    assert riverbend.location.status == "open"
    assert Message.objects.count() == messages_before


def test_applying_a_closure_rehomes_every_visit_with_nothing_broken(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    booked = _book_at_riverbend(riverbend, 8)
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    summary = report.summary()
    assert report.applied and summary["violations"] == []
    assert summary["reconciles"] and summary["active_before"] == summary["active_after"]
    assert not Appointment.objects.filter(
        location=riverbend.location, status="booked", starts_at__gte=NOW
    ).exists()
    assert Appointment.objects.filter(pk__in=[b.pk for b in booked], status="booked").count() == (
        len(booked)
    )
    assert overlapping_reservations() == []
    assert sessions_outside_windows() == []
    assert Message.objects.filter(kind="location_change").count() == len(booked)
    riverbend.location.refresh_from_db()
    assert riverbend.location.status == "closing"
    assert riverbend.location.closes_on == CLOSING_FROM
    # Each move names where the patient travels and by how many days the visit shifted.
    assert all(m.distance_km > 0 for m in report.moves)
    assert summary["mean_shift_days"] <= 3
    # Each patient's record says their visit was moved, and which, as a desk move would.
    events = AuditEvent.objects.filter(action="visit_rehomed")
    assert {int(e.object_id) for e in events} == {b.patient_id for b in booked}
    assert sorted(a for e in events for a in e.details["moved"]) == sorted(b.pk for b in booked)


def test_visits_with_nowhere_to_go_keep_their_time_and_reach_the_desk(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 4)
    _close_receivers(chain)  # nowhere can take anyone
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    summary = report.summary()
    assert summary["rehomed"] == 0 and summary["stuck"] == summary["affected"] > 0
    assert summary["reconciles"]
    assert all("allowed day" in s.reason or "kept its time" in s.reason for s in report.stuck)
    assert AppointmentRequest.objects.filter(reason="rehoming").count() == summary["stuck"]
    assert overlapping_reservations() == []


def test_a_temporary_closure_moves_only_the_visits_inside_it(chain: dict[str, Clinic]) -> None:
    riverbend = chain["riverbend"]
    inside = services.appointment_book(
        patient=make_patient(riverbend, name="Ina Side"),
        service=riverbend.treatment,
        location=riverbend.location,
        provider=riverbend.ada,
        starts_at=local(MONDAY, 10),
    )
    after = services.appointment_book(
        patient=make_patient(riverbend, name="Al After"),
        service=riverbend.treatment,
        location=riverbend.location,
        provider=riverbend.ada,
        starts_at=local(MONDAY + timedelta(days=7), 10),
    )
    report = location_close(
        location=riverbend.location,
        from_date=MONDAY,
        until=MONDAY + timedelta(days=2),
        actor=None,
        apply=True,
    )
    assert [m.appointment_id for m in report.moves] == [inside.pk]
    after.refresh_from_db()
    assert after.location_id == riverbend.location.pk
    riverbend.location.refresh_from_db()
    assert riverbend.location.status == "open"  # a temporary closure is a closure row


def test_a_moved_provider_takes_their_hours_and_their_patients_along(
    chain: dict[str, Clinic],
) -> None:
    riverbend, lakeside = chain["riverbend"], chain["lakeside"]
    ada = riverbend.ada
    visits = [
        services.appointment_book(
            patient=make_patient(riverbend, name=f"Moe Number{n}"),
            service=riverbend.treatment,
            location=riverbend.location,
            provider=ada,
            starts_at=local(MONDAY + timedelta(days=n), 10),
        )
        for n in range(3)
    ]
    report = provider_move(
        provider=ada, to_location=lakeside.location, from_date=MONDAY, actor=None, apply=True
    )
    assert report.applied and report.summary()["violations"] == []
    for visit in visits:
        visit.refresh_from_db()
        assert visit.location_id == lakeside.location.pk
        assert visit.provider_id == ada.pk  # the same provider, at their new location
    hours = ProviderSchedule.objects.filter(provider=ada)
    assert hours.filter(location=lakeside.location, valid_from=MONDAY).count() == 5
    assert set(hours.filter(location=riverbend.location).values_list("valid_until", flat=True)) == {
        MONDAY - timedelta(days=1)
    }
    assert overlapping_reservations() == []


def test_bad_operations_are_refused_naming_the_field(chain: dict[str, Clinic]) -> None:
    riverbend = chain["riverbend"]
    with pytest.raises(BookingRefused) as raised:
        location_close(
            location=riverbend.location,
            from_date=MONDAY,
            until=MONDAY - timedelta(days=1),
            actor=None,
            apply=False,
        )
    assert raised.value.field == "until"
    Location.objects.filter(pk=chain["northgate"].location.pk).update(status="closed")
    with pytest.raises(BookingRefused) as raised:
        provider_move(
            provider=riverbend.ada,
            to_location=Location.objects.get(pk=chain["northgate"].location.pk),
            from_date=date(2027, 3, 8),
            actor=None,
            apply=False,
        )
    assert raised.value.field == "to"


# --- The staff pages -----------------------------------------------------------------------


@pytest.fixture
def desk() -> Client:
    client = Client()
    client.force_login(make_staff("cleo.admin", "clinic_admin"))
    return client


def _run_queued_task() -> None:
    """Run the run's task as the worker would (the task row is real)."""
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    from microneedling.scheduling.rehoming_runs import rehoming_run_execute  # noqa: PLC0415

    for task in DBTaskResult.objects.filter(task_path__endswith="rehoming_execute"):
        rehoming_run_execute(*task.args_kwargs["args"])


def test_staff_preview_watch_and_apply_a_closure_from_the_desk(
    chain: dict[str, Clinic], desk: Client
) -> None:
    riverbend = chain["riverbend"]
    booked = _book_at_riverbend(riverbend, 4)
    start = desk.post(
        reverse("desk:rehoming"),
        {
            "operation": "location_close",
            "location": riverbend.location.pk,
            "from_date": CLOSING_FROM.isoformat(),
        },
    )
    run = RehomingRun.objects.get()
    assert start["Location"] == reverse("desk:rehoming_run", args=[run.pk])
    waiting = desk.get(start["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in waiting  # the page polls while it waits

    _run_queued_task()
    page = desk.get(start["Location"]).content.decode()
    assert f"Preview: {len(booked)} of {len(booked)} visits re-homed" in page
    assert "hx-trigger" not in page  # done: no more polling
    assert Appointment.objects.filter(location=riverbend.location).count() == len(booked)

    csv_text = desk.get(reverse("desk:rehoming_csv", args=[run.pk])).content.decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == len(booked) and {r["outcome"] for r in rows} == {"moved"}

    applied = desk.post(reverse("desk:rehoming_apply", args=[run.pk]))
    _run_queued_task()
    final = desk.get(applied["Location"]).content.decode()
    assert f"Applied: {len(booked)} of {len(booked)} visits re-homed" in final
    assert not Appointment.objects.filter(location=riverbend.location, status="booked").exists()
    assert overlapping_reservations() == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"operation": "provider_move", "from_date": "2027-03-08"}, "provider"),
        (
            {"operation": "location_close", "from_date": "2027-03-08", "until": "2027-03-01"},
            "until",
        ),
        ({"operation": "location_close", "from_date": "next week"}, "from_date"),
    ],
)
def test_a_bad_operation_form_names_the_field_and_starts_nothing(
    chain: dict[str, Clinic], desk: Client, data: dict[str, str], field: str
) -> None:
    response = desk.post(
        reverse("desk:rehoming"), {"location": chain["riverbend"].location.pk, **data}
    )
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not RehomingRun.objects.exists()


def test_a_rehomed_visit_is_planned_around_the_patients_other_visit(
    chain: dict[str, Clinic], staff_user
) -> None:
    riverbend, lakeside = chain["riverbend"], chain["lakeside"]
    patient = make_patient(riverbend)
    # Ten o'clock at Lakeside first; ten o'clock at Riverbend too, by a deliberate override.
    elsewhere = book_visit(lakeside, patient, local(MONDAY, 10))
    closing = book_visit(riverbend, patient, local(MONDAY, 10), over_by=staff_user)
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    summary = report.summary()
    assert summary["reconciles"] and summary["active_before"] == summary["active_after"]
    assert report.violations == []
    # Lakeside's other provider is free at ten, but the patient is not: the visit moves to
    # a time clear of the one they keep, rather than on top of it or nowhere.
    assert report.stuck == []
    assert [m.appointment_id for m in report.moves] == [closing.pk]
    closing.refresh_from_db()
    elsewhere.refresh_from_db()
    assert closing.location_id != riverbend.location.pk
    assert not (closing.starts_at < elsewhere.ends_at and elsewhere.starts_at < closing.ends_at)
    assert (elsewhere.location_id, elsewhere.starts_at) == (lakeside.location.pk, local(MONDAY, 10))
    assert overlapping_reservations() == []


def test_every_patients_other_visits_are_read_however_many_patients_move(
    chain: dict[str, Clinic], staff_user, monkeypatch
) -> None:
    monkeypatch.setattr(rehoming, "ID_BATCH", 1)  # one patient per query
    riverbend, northgate = chain["riverbend"], chain["northgate"]
    pairs = []
    # Each keeps a visit at Northgate at ten; Lakeside, nearer, is free at ten for both.
    for name, provider in (("Ana Alpha", northgate.ada), ("Bo Beta", northgate.ben)):
        patient = make_patient(riverbend, name=name)
        kept = book_visit(northgate, patient, local(MONDAY, 10), provider)
        own = riverbend.ada if name == "Ana Alpha" else riverbend.ben
        moving = book_visit(riverbend, patient, local(MONDAY, 10), own, over_by=staff_user)
        pairs.append((kept, moving))
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.stuck == [] and report.violations == []
    for kept, moving in pairs:
        moving.refresh_from_db()
        assert moving.location_id != riverbend.location.pk
        assert not (moving.starts_at < kept.ends_at and kept.starts_at < moving.ends_at)


def test_two_visits_of_one_patient_at_a_closing_location_are_moved_apart(
    chain: dict[str, Clinic], staff_user
) -> None:
    riverbend = chain["riverbend"]
    patient = make_patient(riverbend)
    both = [
        book_visit(riverbend, patient, local(MONDAY, 10), provider, over_by=staff_user)
        for provider in (riverbend.ada, riverbend.ben)
    ]
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.stuck == [] and report.violations == []
    first, second = sorted(
        Appointment.objects.filter(pk__in=[v.pk for v in both]), key=lambda v: v.starts_at
    )
    assert first.location_id != riverbend.location.pk
    assert second.location_id != riverbend.location.pk
    # Moved, they no longer need the override: one after the other.
    assert first.ends_at <= second.starts_at


def test_a_visit_whose_move_failed_is_held_again_only_if_its_old_time_is_still_free(
    clinic: Clinic,
) -> None:
    """After a refused move the visit takes its old time back; if a move written earlier
    in the run took that time meanwhile, it is not held over it (the run then reports a
    violation and is not committed)."""
    first = book_visit(clinic, make_patient(clinic), local(MONDAY, 10), clinic.ada)
    first.reservations.update(active=False)  # its move is being tried
    taker = book_visit(
        clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10), clinic.ada
    )
    assert not hold_again(first)
    assert not first.reservations.filter(active=True).exists()
    services.appointment_cancel(appointment=taker, actor=None, reason="patient asked")
    assert hold_again(first)
    assert first.reservations.filter(active=False).count() == 0
    assert overlapping_reservations() == []


def test_a_refused_move_takes_back_a_time_shared_on_purpose_with_an_override(
    clinic: Clinic, staff_user
) -> None:
    """An override overlaps the patient's other visit on purpose; after a refused move
    either of the two takes its old time back, as the database's constraint allows."""
    patient = make_patient(clinic)
    ordinary = book_visit(clinic, patient, local(MONDAY, 10), clinic.ada)
    override = book_visit(clinic, patient, local(MONDAY, 10), clinic.ben, over_by=staff_user)
    for moving in (override, ordinary):
        moving.reservations.update(active=False)  # its move is being tried
        assert hold_again(moving)
        assert not moving.reservations.filter(active=False).exists()
    assert overlapping_reservations() == []


#: Parameters SQLite takes in one statement during the next test: far below its real limit
#: (32,766 in its default build, 250,000 in Debian's), which no test could reach in
#: reasonable time, and above any fixed-size statement of a re-homing run.
FEW_PARAMETERS = 24


def test_a_closure_never_names_more_visits_in_one_statement_than_sqlite_takes(
    chain: dict[str, Clinic], monkeypatch
) -> None:
    riverbend = chain["riverbend"]
    booked = _book_at_riverbend(riverbend, 16)
    assert len(booked) > FEW_PARAMETERS  # one statement naming them all would be refused
    monkeypatch.setattr(rehoming, "ID_BATCH", FEW_PARAMETERS // 2)
    limited = connection.vendor == "sqlite"
    if limited:
        # The real engine refuses the statement ("too many SQL variables"), as it would
        # a closure of more visits than its build's limit; PostgreSQL has no such limit.
        previous = connection.connection.setlimit(
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, FEW_PARAMETERS
        )
    try:
        report = location_close(
            location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
        )
    finally:
        if limited:
            connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)
    assert report.violations == []
    assert len(report.moves) + len(report.stuck) == len(booked)
    assert (
        not Appointment.objects.filter(
            pk__in=[v.pk for v in booked], location=riverbend.location, status="booked"
        )
        .exclude(pk__in=[s.appointment_id for s in report.stuck])
        .exists()
    )
    assert overlapping_reservations() == []


def test_a_move_onto_a_time_an_override_took_after_the_plan_is_refused_and_says_so(
    clinic: Clinic, staff_user
) -> None:
    """The plan read the diary before a member of staff booked over the new time on
    purpose: writing the move is refused, the visit keeps its place, and the reason names
    the override (not the patient, who has no other visit)."""
    moving = book_visit(clinic, make_patient(clinic), local(MONDAY, 10), clinic.ada)
    new_time = local(MONDAY, 14)
    calendar = location_calendar(
        location=clinic.location,
        service=clinic.treatment,
        first_day=MONDAY,
        last_day=MONDAY,
        provider_ids=[clinic.ben.pk],
    )
    rules = booking_rules(clinic.location.organization_id)
    slot = slot_at(calendar, new_time, clinic.ben, rules=rules, now=timezone.now())
    assert slot is not None  # free when the plan read the diary
    book_visit(
        clinic, make_patient(clinic, name="Dev Patel"), new_time, clinic.ben, over_by=staff_user
    )
    placement = Placement(
        visit_id=moving.pk,
        site_id=clinic.location.pk,
        slot=slot,
        distance_km=0.0,
        shift_days=0,
        cost=0.0,
    )
    names = {clinic.location.pk: clinic.location.name}
    with transaction.atomic():
        refused = rehoming._try_move(moving, placement, calendar.phases, names, {})
    assert refused == "a staff override took the new time after the plan was made"
    moving.refresh_from_db()
    assert (moving.starts_at, moving.provider_id) == (local(MONDAY, 10), clinic.ada.pk)
    assert moving.reservations.filter(active=True).count() > 0


def test_a_provider_cannot_move_to_a_location_that_closes_by_the_move_date(
    chain: dict[str, Clinic],
) -> None:
    riverbend, northgate = chain["riverbend"], chain["northgate"]
    Location.objects.filter(pk=northgate.location.pk).update(
        status="closing", closes_on=MONDAY - timedelta(days=1)
    )
    closing = Location.objects.get(pk=northgate.location.pk)
    for day in (MONDAY, MONDAY + timedelta(days=30)):
        with pytest.raises(BookingRefused) as raised:
            provider_move(
                provider=riverbend.ada, to_location=closing, from_date=day, actor=None, apply=False
            )
        assert raised.value.field == "to" and "closes" in str(raised.value)
    assert (
        not ProviderSchedule.objects.filter(location=closing)
        .exclude(provider__in=[northgate.ada, northgate.ben])
        .exists()
    )
    # Closing only after the move date: the move stands (the closure re-homes them later).
    Location.objects.filter(pk=closing.pk).update(closes_on=MONDAY + timedelta(days=60))
    closing.refresh_from_db()
    report = provider_move(
        provider=riverbend.ada, to_location=closing, from_date=MONDAY, actor=None, apply=False
    )
    assert report.summary()["violations"] == []


def test_dates_more_than_five_years_ahead_are_refused_naming_the_field(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    far = NOW.date() + timedelta(days=5 * 366 + 1)
    with pytest.raises(BookingRefused) as raised:
        location_close(location=riverbend.location, from_date=far, actor=None, apply=False)
    assert raised.value.field == "from_date" and "5 years" in str(raised.value)
    with pytest.raises(BookingRefused) as raised:
        location_close(
            location=riverbend.location,
            from_date=MONDAY,
            until=date(9999, 12, 31),
            actor=None,
            apply=False,
        )
    assert raised.value.field == "until" and "5 years" in str(raised.value)
    with pytest.raises(BookingRefused) as raised:
        provider_move(
            provider=riverbend.ada,
            to_location=chain["lakeside"].location,
            from_date=date(9999, 12, 31),
            actor=None,
            apply=False,
        )
    assert raised.value.field == "from_date"


def test_the_desk_form_refuses_a_date_more_than_five_years_ahead(
    chain: dict[str, Clinic], desk: Client
) -> None:
    location = chain["riverbend"].location
    page = desk.post(
        reverse("desk:rehoming"),
        {"operation": "location_close", "location": location.pk, "from_date": "9999-12-30"},
    )
    assert page.status_code == 200 and "from_date" in page.context["form"].errors
    assert not RehomingRun.objects.exists()


def test_a_run_that_fails_unexpectedly_is_marked_failed(chain: dict[str, Clinic]) -> None:
    from microneedling.scheduling.rehoming_runs import rehoming_run_execute  # noqa: PLC0415

    riverbend = chain["riverbend"]
    # A zone no database row should hold (written past the model's checks): the run cannot
    # read the location's days, and fails instead of staying "running" for ever.
    Location.objects.filter(pk=riverbend.location.pk).update(timezone="Mars/Olympus_Mons")
    run = RehomingRun.objects.create(
        operation=RehomingRun.Operation.CLOSE_LOCATION,
        location=Location.objects.get(pk=riverbend.location.pk),
        from_date=MONDAY,
        created_by=make_staff("zone.admin", "clinic_admin"),
    )
    assert rehoming_run_execute(run.pk) == RehomingRun.Status.FAILED
    run.refresh_from_db()
    assert run.status == RehomingRun.Status.FAILED
    assert "ZoneInfoNotFoundError" in run.error and run.finished_at is not None
    assert Location.objects.get(pk=riverbend.location.pk).status == "open"


def test_applying_one_temporary_closure_preview_twice_records_the_closure_once(
    chain: dict[str, Clinic], desk: Client
) -> None:
    from microneedling.directory.models import LocationClosure  # noqa: PLC0415

    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 2)
    until = CLOSING_FROM + timedelta(days=4)
    desk.post(
        reverse("desk:rehoming"),
        {
            "operation": "location_close",
            "location": riverbend.location.pk,
            "from_date": CLOSING_FROM.isoformat(),
            "until": until.isoformat(),
        },
    )
    preview = RehomingRun.objects.get()
    _run_queued_task()
    for _ in range(2):  # a double click, or the button pressed again later
        desk.post(reverse("desk:rehoming_apply", args=[preview.pk]))
        _run_queued_task()
    closures = LocationClosure.objects.filter(location=riverbend.location)
    assert list(closures.values_list("starts_on", "ends_on")) == [(CLOSING_FROM, until)]
    assert overlapping_reservations() == []


def test_a_rehomed_visit_is_never_moved_inside_the_clinics_minimum_notice(
    chain: dict[str, Clinic],
) -> None:
    from microneedling.directory.models import ClinicPolicy  # noqa: PLC0415

    riverbend = chain["riverbend"]
    tuesday = NOW.date() + timedelta(days=1)
    visit = book_visit(riverbend, make_patient(riverbend, name="Nell Notice"), local(tuesday, 10))
    # The clinic asks three days' notice: a move may not give the patient less.
    ClinicPolicy.objects.create(organization=riverbend.org, min_notice_hours=72)
    report = location_close(location=riverbend.location, from_date=tuesday, actor=None, apply=True)
    [move] = report.moves
    assert move.appointment_id == visit.pk
    assert move.to_start >= NOW + timedelta(hours=72)
    assert overlapping_reservations() == []


@pytest.mark.parametrize("gone", ["deleted", "deactivated", "demoted"])
def test_a_queued_run_does_not_run_once_its_author_may_no_longer_close_locations(
    chain: dict[str, Clinic], gone: str
) -> None:
    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 2)
    author = make_staff("leaver.admin", "clinic_admin")
    client = Client()
    client.force_login(author)
    client.post(
        reverse("desk:rehoming"),
        {
            "operation": "location_close",
            "location": riverbend.location.pk,
            "from_date": CLOSING_FROM.isoformat(),
        },
    )
    preview = RehomingRun.objects.get()
    _run_queued_task()
    client.post(reverse("desk:rehoming_apply", args=[preview.pk]))
    queued = RehomingRun.objects.get(apply=True)
    # The author leaves (or loses the role) while the run waits for a worker.
    if gone == "deleted":
        author.delete()
    elif gone == "deactivated":
        type(author).objects.filter(pk=author.pk).update(is_active=False)
    else:
        StaffMember.objects.filter(user=author).update(role="front_desk")
    _run_queued_task()
    queued.refresh_from_db()
    assert queued.status == RehomingRun.Status.FAILED
    assert "created_by" in queued.error
    riverbend.location.refresh_from_db()
    assert riverbend.location.status == "open"
    assert Appointment.objects.filter(location=riverbend.location, status="booked").count() > 0


def test_the_desk_form_refuses_a_move_to_a_location_that_closes_by_the_move_date(
    chain: dict[str, Clinic], desk: Client
) -> None:
    riverbend, northgate = chain["riverbend"], chain["northgate"]
    Location.objects.filter(pk=northgate.location.pk).update(status="closing", closes_on=MONDAY)
    page = desk.post(
        reverse("desk:rehoming"),
        {
            "operation": "provider_move",
            "location": northgate.location.pk,
            "provider": riverbend.ada.pk,
            "from_date": MONDAY.isoformat(),
        },
    )
    assert page.status_code == 200
    assert "closes on" in " ".join(page.context["form"].errors["location"])
    assert not RehomingRun.objects.exists()


def test_a_patient_name_that_looks_like_a_formula_stays_text_in_the_report_csv(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    # Patients type their own names at sign-up; a spreadsheet would run these.
    names = ['=HYPERLINK("http://evil.test","Call") Marsh', "+1-2 Reyes", "@SUM(1) Vance"]
    for name in names:
        patient = make_patient(riverbend, name=name)
        book_visit(riverbend, patient, local(MONDAY, 10 + names.index(name)))
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=False
    )
    rows = list(csv.DictReader(io.StringIO(rehoming.report_csv(report.as_dict()))))
    assert len(rows) == len(names)
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (column, value)
    # Still the name, for the person who calls the patient, only marked as text.
    assert {r["patient"].split(" ")[0] for r in rows} == {"'" + n.split(" ")[0] for n in names}


def test_the_report_csv_download_is_marked_utf8_for_spreadsheets_and_keeps_accents(
    chain: dict[str, Clinic], desk: Client
) -> None:
    riverbend = chain["riverbend"]
    book_visit(riverbend, make_patient(riverbend, name="José Núñez"), local(MONDAY, 10))
    desk.post(
        reverse("desk:rehoming"),
        {
            "operation": "location_close",
            "location": riverbend.location.pk,
            "from_date": CLOSING_FROM.isoformat(),
        },
    )
    _run_queued_task()
    run = RehomingRun.objects.get()
    body = desk.get(reverse("desk:rehoming_csv", args=[run.pk])).content
    # The UTF-8 byte-order mark is how a spreadsheet knows the file is not in its code page.
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["patient"] for r in rows] == ["José Núñez"]


def test_a_rehomed_treatment_goes_only_to_a_provider_the_clinic_lets_do_the_needling(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    ClinicPolicy.objects.create(
        organization=riverbend.org, positions={"dispute.who_performs": "doctor_or_np"}
    )
    # The receivers' physicians no longer work there: only their aestheticians are in.
    for name in ("lakeside", "northgate"):
        ProviderSchedule.objects.filter(provider=chain[name].ada).delete()
    # A consultation first in the day (any provider may give it), then a treatment.
    consultation = services.appointment_book(
        patient=make_patient(riverbend, name="Con Sult"),
        service=riverbend.consultation,
        location=riverbend.location,
        provider=riverbend.ben,
        starts_at=local(MONDAY, 9),
    )
    treatment = book_visit(riverbend, make_patient(riverbend, name="Tre Atment"), local(MONDAY, 10))
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.summary()["violations"] == []
    consultation.refresh_from_db()
    treatment.refresh_from_db()
    # The consultation may go to an aesthetician; the treatment may not, so it stays for
    # the desk rather than being given to someone the clinic does not let treat.
    assert consultation.location_id != riverbend.location.pk
    assert treatment.provider.role in ("physician", "nurse_practitioner")
    assert [s.appointment_id for s in report.stuck] == [treatment.pk]


def test_a_rehomed_consultation_may_go_to_any_provider_when_only_doctors_treat(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    ClinicPolicy.objects.create(
        organization=riverbend.org, positions={"dispute.who_performs": "doctor_or_np"}
    )
    for name in ("lakeside", "northgate"):
        ProviderSchedule.objects.filter(provider=chain[name].ada).delete()
    # A treatment first in the day, then a consultation: only aestheticians are left to
    # receive them, and a consultation may be with anyone.
    book_visit(riverbend, make_patient(riverbend, name="Tre Atment"), local(MONDAY, 9))
    consultation = services.appointment_book(
        patient=make_patient(riverbend, name="Con Sult"),
        service=riverbend.consultation,
        location=riverbend.location,
        provider=riverbend.ben,
        starts_at=local(MONDAY, 11),
    )
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.summary()["violations"] == []
    assert [m.appointment_id for m in report.moves] == [consultation.pk]


def test_a_rehomed_treatment_is_never_moved_before_the_patients_deferral_ends(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    thursday = MONDAY + timedelta(days=3)
    patient = make_patient(riverbend, name="Bo Tox")
    visit = book_visit(riverbend, patient, local(thursday, 10))
    # Since booking, the patient had an injection: treatment waits two weeks, until Thursday.
    injected = thursday - timedelta(days=14)
    screen_again(
        patient, procedures=[{"code": "botox", "area": "face", "date": injected.isoformat()}]
    )
    until = patient.screenings.newest_first().first().deferred_until  # type: ignore[union-attr]
    assert until == thursday
    # The receivers are shut from Thursday to Monday: the nearest free day is Wednesday.
    for name in ("lakeside", "northgate"):
        LocationClosure.objects.create(
            location=chain[name].location,
            starts_on=thursday,
            ends_on=thursday + timedelta(days=4),
            reason="refit",
        )
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.summary()["violations"] == []
    visit.refresh_from_db()
    assert visit.starts_at.astimezone(TZ).date() >= until


def test_running_a_closure_again_lists_each_visit_left_behind_once_for_the_desk(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 4)
    _close_receivers(chain)
    # The desk applies the closure, then applies it again (another preview of it, applied).
    for _ in range(2):
        report = location_close(
            location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
        )
        assert report.applied and report.stuck
    requests = AppointmentRequest.objects.filter(reason="rehoming", status="open")
    listed = sorted(r.payload["appointment"] for r in requests)
    assert listed == sorted(s.appointment_id for s in report.stuck)
    # The receivers open again: the next run moves them, and the desk has nothing left open.
    LocationClosure.objects.filter(reason="refit").delete()
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.moves and not report.stuck
    assert not AppointmentRequest.objects.filter(reason="rehoming", status="open").exists()
    closed = AppointmentRequest.objects.filter(payload__appointment__in=listed)
    assert {(r.status, r.decision_reason) for r in closed} == {
        (AppointmentRequest.Status.BOOKED, "moved by a later re-homing")
    }
    assert closed.count() == len(listed)


def test_a_patient_whose_visit_is_left_behind_is_told_once_and_not_after_it_moves(
    chain: dict[str, Clinic],
) -> None:
    from microneedling.notifications.delivery import message_deliver_now  # noqa: PLC0415
    from microneedling.notifications.rendering import message_render  # noqa: PLC0415

    riverbend = chain["riverbend"]
    _book_at_riverbend(riverbend, 4)
    _close_receivers(chain)
    preview = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=False
    )
    assert preview.stuck and not Message.objects.filter(kind="visit_unsettled").exists()
    for _ in range(2):  # applied, then applied again: nothing new to say the second time
        report = location_close(
            location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
        )
    notices = Message.objects.filter(kind="visit_unsettled")
    told = sorted(notices.values_list("appointment_id", flat=True))
    assert told == sorted(s.appointment_id for s in report.stuck)
    first = notices.order_by("pk").first()
    assert first is not None
    body = message_render(first).body
    assert "cannot go ahead as booked" in body
    assert f"Riverbend is closed from {CLOSING_FROM:%-d %B %Y}." in body
    # The receivers open again and a later run moves every visit: the patients hear where
    # they will be seen, and the notice still waiting is no longer sent.
    moved = _reopen_and_run_again(chain)
    assert moved.moves and not moved.stuck
    assert Message.objects.filter(kind="location_change", appointment=first.appointment).exists()
    assert message_deliver_now(first.pk, now=first.available_at) == "withdrawn"


def test_a_visit_left_behind_gets_no_reminders_until_a_later_run_moves_it(
    chain: dict[str, Clinic],
) -> None:
    report = _close_with_nowhere_to_go(chain)
    left = [s.appointment_id for s in report.stuck]
    assert left
    timed = Message.objects.filter(appointment__in=left, kind__in=TIMED_KINDS)
    assert timed.filter(kind="reminder").exists()  # they were queued when booked
    # A reminder of a time and place the patient was just told cannot stand, pre-care for
    # it, or aftercare after it, would only mislead: none of them is still to go out.
    assert not timed.filter(status__in=UNSENT).exists()
    # The receivers open again and the next run moves them: each is reminded afresh.
    moved = _reopen_and_run_again(chain)
    assert sorted(m.appointment_id for m in moved.moves) == sorted(left)
    for visit in Appointment.objects.filter(pk__in=left):
        start = int(visit.starts_at.timestamp())
        waiting = Message.objects.filter(appointment=visit, status__in=UNSENT)
        kinds = {m.kind for m in waiting if m.key.startswith(f"visit:{visit.pk}:{start}@")}
        assert {"reminder", "pre_care", "aftercare_check"} <= kinds, visit.pk


def test_the_desk_request_for_a_visit_left_behind_closes_once_the_visit_is_dealt_with(
    chain: dict[str, Clinic], desk: Client
) -> None:
    report = _close_with_nowhere_to_go(chain)
    first, *others = (s.appointment_id for s in report.stuck)
    page = desk.get(reverse("desk:requests")).content.decode()
    assert reverse("desk:visit", args=[first]) in page
    assert report.stuck[0].reason in page  # why it waits, as the run said
    # The desk cancels the visit (to book the patient elsewhere by hand): the request is done.
    services.appointment_cancel(
        appointment=Appointment.objects.get(pk=first), actor=None, reason="rebooked by phone"
    )
    closed = AppointmentRequest.objects.get(reason="rehoming", payload__appointment=first)
    assert closed.status == AppointmentRequest.Status.DECLINED
    assert closed.decision_reason == "the visit is cancelled" and closed.decided_at == NOW
    page = desk.get(reverse("desk:requests")).content.decode()
    assert reverse("desk:visit", args=[first]) not in page
    # The others still wait.
    still = AppointmentRequest.objects.filter(reason="rehoming", status="open")
    assert sorted(r.payload["appointment"] for r in still) == sorted(others)


def test_moving_a_session_left_behind_closes_its_request_and_reminds_of_the_new_time(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    course = book_course(riverbend, make_patient(riverbend, name="Sue Session"))
    first = Appointment.objects.get(course_session__course=course, course_session__number=1)
    day = first.starts_at.astimezone(TZ).date()
    _close_receivers(chain)
    # Riverbend shuts for that one day only, and nowhere else can take the session.
    report = location_close(
        location=riverbend.location, from_date=day, until=day, actor=None, apply=True
    )
    assert [s.appointment_id for s in report.stuck] == [first.pk]
    first.refresh_from_db()
    new_start = first.starts_at + timedelta(days=1)
    course_session_move(appointment=first, starts_at=new_start, actor=None, apply=True)
    request = AppointmentRequest.objects.get(reason="rehoming", payload__appointment=first.pk)
    assert request.status == AppointmentRequest.Status.BOOKED
    assert request.decision_reason == "moved"
    key = f"visit:{first.pk}:{int(new_start.timestamp())}@"
    assert Message.objects.filter(
        appointment=first, kind="reminder", status__in=UNSENT, key__startswith=key
    ).exists()


def test_a_closure_or_move_from_a_day_already_past_is_refused_naming_the_field(
    chain: dict[str, Clinic], desk: Client
) -> None:
    riverbend = chain["riverbend"]
    last_week = NOW.date() - timedelta(days=7)
    hours_before = sorted(
        ProviderSchedule.objects.filter(provider=riverbend.ada).values_list(
            "location_id", "valid_from", "valid_until"
        )
    )
    for until in (None, last_week + timedelta(days=2)):
        with pytest.raises(BookingRefused) as raised:
            location_close(
                location=riverbend.location,
                from_date=last_week,
                until=until,
                actor=None,
                apply=True,
            )
        assert raised.value.field == "from_date" and "past" in str(raised.value)
    with pytest.raises(BookingRefused) as raised:
        provider_move(
            provider=riverbend.ada,
            to_location=chain["lakeside"].location,
            from_date=last_week,
            actor=None,
            apply=True,
        )
    assert raised.value.field == "from_date"
    # Nothing was written: where the provider worked last week is history.
    riverbend.location.refresh_from_db()
    assert riverbend.location.status == "open" and riverbend.location.closes_on is None
    assert not LocationClosure.objects.exists()
    hours_after = sorted(
        ProviderSchedule.objects.filter(provider=riverbend.ada).values_list(
            "location_id", "valid_from", "valid_until"
        )
    )
    assert hours_after == hours_before
    # Today itself is fine: a closure can start at once.
    assert (
        location_close(
            location=riverbend.location, from_date=NOW.date(), actor=None, apply=False
        ).summary()["violations"]
        == []
    )
    page = desk.post(
        reverse("desk:rehoming"),
        {
            "operation": "location_close",
            "location": riverbend.location.pk,
            "from_date": last_week.isoformat(),
        },
    )
    assert page.status_code == 200 and "from_date" in page.context["form"].errors
    assert not RehomingRun.objects.exists()


def test_the_commands_name_their_own_option_when_a_closure_or_move_is_refused(
    chain: dict[str, Clinic], capsys: pytest.CaptureFixture[str]
) -> None:
    from microneedling.cli import main  # noqa: PLC0415

    riverbend = chain["riverbend"]
    past = (NOW.date() - timedelta(days=7)).isoformat()
    slug, ada = riverbend.location.slug, str(riverbend.ada.pk)
    cases = [
        (["close-location", slug, "--from", past], "--from"),
        (["close-location", slug, "--from", "2027-03-08", "--until", "2099-01-01"], "--until"),
        (["move-provider", ada, "--to", "lakeside", "--from", past], "--from"),
        (["move-provider", ada, "--to", "lakeside", "--from", "2099-01-01"], "--from"),
    ]
    for args, option in cases:
        assert main(args) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and "Traceback" not in captured.err
        assert captured.err.startswith(f"microneedling: {option}: "), (args, captured.err)
    assert Appointment.objects.count() == 0 and not LocationClosure.objects.exists()


def test_a_provider_who_has_left_cannot_be_moved_and_nothing_is_written(
    chain: dict[str, Clinic], capsys: pytest.CaptureFixture[str]
) -> None:
    from microneedling.cli import main  # noqa: PLC0415

    riverbend = chain["riverbend"]
    ada = riverbend.ada
    ada.active = False
    ada.save(update_fields=["active"])
    hours_before = sorted(
        ProviderSchedule.objects.filter(provider=ada).values_list("location_id", "valid_from")
    )
    with pytest.raises(BookingRefused) as raised:
        provider_move(
            provider=ada,
            to_location=chain["lakeside"].location,
            from_date=MONDAY,
            actor=None,
            apply=True,
        )
    assert raised.value.field == "provider" and "no longer active" in str(raised.value)
    assert main(["move-provider", str(ada.pk), "--to", "lakeside", "--from", "2027-03-08"]) == 2
    assert capsys.readouterr().err.startswith("microneedling: PROVIDER: ")
    hours_after = sorted(
        ProviderSchedule.objects.filter(provider=ada).values_list("location_id", "valid_from")
    )
    assert hours_after == hours_before
    assert not AuditEvent.objects.filter(action="provider_move").exists()


def test_a_closure_or_move_that_displaces_no_visit_is_still_audited(
    chain: dict[str, Clinic],
) -> None:
    riverbend, lakeside = chain["riverbend"], chain["lakeside"]
    staff = make_staff("olga.ops", "chain_operator")
    location_close(location=lakeside.location, from_date=MONDAY, actor=staff, apply=True)
    provider_move(
        provider=riverbend.ben,
        to_location=chain["northgate"].location,
        from_date=MONDAY,
        actor=staff,
        apply=True,
    )
    events = AuditEvent.objects.filter(action__in=["location_close", "provider_move"])
    assert sorted(events.values_list("action", "object_id")) == [
        ("location_close", lakeside.location.slug),
        ("provider_move", str(riverbend.ben.pk)),
    ]


def test_a_treatment_the_screening_defers_past_its_allowed_days_is_left_for_the_desk_saying_so(
    chain: dict[str, Clinic],
) -> None:
    riverbend = chain["riverbend"]
    patient = make_patient(riverbend, name="Bo Tox")
    visit = book_visit(riverbend, patient, local(MONDAY, 10))
    # Injected since booking: treatment waits until well after the week the visit may move.
    injected = MONDAY - timedelta(days=1)
    screen_again(
        patient, procedures=[{"code": "botox", "area": "face", "date": injected.isoformat()}]
    )
    report = location_close(
        location=riverbend.location, from_date=CLOSING_FROM, actor=None, apply=True
    )
    assert report.moves == []
    [stuck] = report.stuck
    assert stuck.appointment_id == visit.pk
    assert "screening defers treatment until" in stuck.reason


def _face_days(patient) -> list[date]:  # type: ignore[no-untyped-def]
    return sorted(
        v.starts_at.astimezone(TZ).date()
        for v in Appointment.objects.filter(
            patient=patient, service__kind="treatment", status__in=Appointment.HOLDING
        )
    )


def test_a_closure_moves_no_treatment_within_the_interval_of_another_of_the_same_skin(
    chain: dict[str, Clinic],
) -> None:
    """The face treated at Lakeside on a Monday, and again at Riverbend four weeks later;
    Riverbend closes from the Tuesday before the second, the other places on its day too:
    the nearest open days (the week before) would bring the face within the interval, so
    the visit goes to the days after the closures."""
    from microneedling.core.knowledge import load_pack  # noqa: PLC0415

    gap = load_pack().treatment_gap_days
    riverbend, lakeside, northgate = chain["riverbend"], chain["lakeside"], chain["northgate"]
    patient = make_patient(riverbend)
    kept = book_visit(lakeside, patient, local(MONDAY, 10))
    moving = book_visit(riverbend, patient, local(MONDAY + timedelta(days=gap), 10))
    for other in (lakeside, northgate):
        location_close(
            location=other.location,
            from_date=MONDAY + timedelta(days=gap),
            until=MONDAY + timedelta(days=gap + 3),
            actor=None,
            apply=True,
        )
    location_close(
        location=riverbend.location,
        from_date=MONDAY + timedelta(days=gap - 6),
        until=MONDAY + timedelta(days=gap + 3),
        actor=None,
        apply=True,
    )
    moving.refresh_from_db()
    assert moving.status == Appointment.Status.BOOKED
    days = _face_days(patient)
    assert days[0] == kept.starts_at.astimezone(TZ).date()
    assert (days[1] - days[0]).days >= gap


def test_two_displaced_treatments_of_one_patient_stay_the_interval_apart(
    chain: dict[str, Clinic],
) -> None:
    from microneedling.core.knowledge import load_pack  # noqa: PLC0415

    gap = load_pack().treatment_gap_days
    riverbend, lakeside = chain["riverbend"], chain["lakeside"]
    patient = make_patient(riverbend)
    book_visit(riverbend, patient, local(MONDAY + timedelta(days=7), 10))
    book_visit(riverbend, patient, local(MONDAY + timedelta(days=7 + gap), 10))
    # Lakeside is shut on the first visit's day, so that one has to shift.
    location_close(
        location=lakeside.location,
        from_date=MONDAY + timedelta(days=7),
        until=MONDAY + timedelta(days=7),
        actor=None,
        apply=True,
    )
    location_close(
        location=riverbend.location,
        from_date=MONDAY + timedelta(days=7),
        until=MONDAY + timedelta(days=7 + gap),
        actor=None,
        apply=True,
    )
    days = _face_days(patient)
    assert len(days) == 2 and (days[1] - days[0]).days >= gap
