"""Real parallel clients on separate connections: no double booking, every client answered.

Run on SQLite (IMMEDIATE transactions serialise the check and the insert) and on PostgreSQL
(the exclusion constraint refuses the loser of a race).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest
from django.db import connection, connections, transaction

from microneedling.charting import services as charting
from microneedling.charting.models import ProcedureChart
from microneedling.core.errors import BookingConflict
from microneedling.directory.models import CartridgeLot
from microneedling.scheduling import booking, services
from microneedling.scheduling.booking import TakenByOverride
from microneedling.scheduling.models import Appointment, AppointmentRequest, Course, Reservation
from microneedling.scheduling.rehoming import hold_again
from tests.web.conftest import (
    NOW,
    TZ,
    Clinic,
    book_course,
    book_visit,
    build_clinic,
    local,
    make_patient,
    make_staff,
    procedure_start,
)
from tests.web.test_desk_pages import chart_fields

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


def in_flight(job: Callable[[], object]) -> tuple[threading.Thread, threading.Event, Counter[str]]:
    """Run ``job`` on its own thread and connection, in a transaction left uncommitted until
    the returned event is set; return once the job has run (its outcome lands in the
    counter when the thread ends)."""
    ran, release = threading.Event(), threading.Event()

    def held_open() -> None:
        with transaction.atomic():
            job()
            ran.set()
            release.wait(10)

    outcomes: Counter[str] = Counter()
    thread = threading.Thread(target=lambda: outcomes.update(run_in_parallel([held_open])))
    thread.start()
    assert ran.wait(10)
    return thread, release, outcomes


def release_once_a_booking_waits(release: threading.Event) -> None:
    """Set ``release`` once another transaction waits for a booking lock: on PostgreSQL when
    pg_locks shows an advisory lock not granted; on SQLite (the write lock, which no view
    shows) after a second."""
    if connection.vendor != "postgresql":
        threading.Timer(1.0, release.set).start()
        return

    def watch() -> None:
        try:
            with connections["default"].cursor() as cursor:
                for _ in range(400):
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                    if cursor.fetchone()[0]:
                        break
                    time.sleep(0.025)
        finally:
            connections.close_all()
            release.set()

    threading.Thread(target=watch).start()


def override_in_flight(
    clinic: Clinic,
) -> tuple[threading.Thread, Counter[str]]:
    """A member of staff books Monday 10:00 over anything there, and commits once another
    booking waits for it (see ``release_once_a_booking_waits``)."""
    desk = make_staff("desk.override")  # works at every location of the clinic
    staff, release, outcomes = in_flight(
        lambda: book_visit(
            clinic, make_patient(clinic, name="Over Ride"), local(MONDAY, 10), over_by=desk
        )
    )
    release_once_a_booking_waits(release)
    return staff, outcomes


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
    # Commits only once the check below has read the time as free.
    taker, release, outcomes = in_flight(
        lambda: book_visit(clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10))
    )
    threading.Timer(1.0, release.set).start()
    with transaction.atomic():
        held = hold_again(moving)
    taker.join(30)
    assert outcomes == Counter({"booked": 1})
    assert not held
    assert not moving.reservations.filter(active=True).exists()
    assert overlapping_active_reservations() == []
    connection.close()


def test_an_ordinary_booking_loses_to_an_override_committed_while_it_books() -> None:
    """The one-way rule under a race: a staff override may overlap what is booked, but an
    ordinary booking that read the diary before the override committed must not land on
    top of it. On PostgreSQL the booking waits on the override's lock, then sees it; on
    SQLite it waits for the write lock before it reads."""
    clinic = build_clinic()
    staff, outcomes = override_in_flight(clinic)
    # PostgreSQL: the booking read the diary, then waited on the override's lock.
    expected = TakenByOverride if connection.vendor == "postgresql" else BookingConflict
    with pytest.raises(expected) as refused:
        book_visit(clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10))
    staff.join(30)
    assert outcomes == Counter({"booked": 1})
    assert refused.value.resource is not None
    assert list(Appointment.objects.values_list("override_reason", flat=True)) != [""]
    assert Appointment.objects.count() == 1
    connection.close()


def test_an_override_waits_for_an_ordinary_booking_in_flight_then_overlaps_it() -> None:
    """An override that starts while an ordinary booking of the same time is uncommitted
    waits for it, then books over it on purpose: both visits stand, the override marked."""
    clinic = build_clinic()
    desk = make_staff("desk.override")  # works at every location of the clinic
    patient, release, outcomes = in_flight(
        lambda: book_visit(clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10))
    )
    threading.Timer(1.0, release.set).start()
    visit = book_visit(
        clinic, make_patient(clinic, name="Over Ride"), local(MONDAY, 10), over_by=desk
    )
    patient.join(30)
    assert outcomes == Counter({"booked": 1})
    assert visit.override_reason
    assert visit.reservations.filter(overlap_allowed=True).count() == visit.reservations.count()
    assert Appointment.objects.count() == 2
    assert overlapping_active_reservations() == []
    connection.close()


def test_an_override_that_cannot_get_its_lock_in_time_is_refused_with_nothing_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL an override waits only so long for the writes in flight on its
    resources (a re-homing run can hold them for minutes), then answers 409 saying so."""
    monkeypatch.setattr(booking, "OVERRIDE_LOCK_WAIT", 0.2)
    clinic = build_clinic()
    desk = make_staff("desk.override")  # works at every location of the clinic
    patient, release, outcomes = in_flight(
        lambda: book_visit(clinic, make_patient(clinic, name="Dev Patel"), local(MONDAY, 10))
    )
    if connection.vendor == "sqlite":
        # No advisory locks: the override waits for the write lock (the busy timeout).
        threading.Timer(1.0, release.set).start()
        book_visit(clinic, make_patient(clinic, name="Over Ride"), local(MONDAY, 10), over_by=desk)
        patient.join(30)
        assert Appointment.objects.count() == 2
        connection.close()
        return
    try:
        with pytest.raises(BookingConflict, match="are being written"):
            book_visit(
                clinic, make_patient(clinic, name="Over Ride"), local(MONDAY, 10), over_by=desk
            )
    finally:
        release.set()
        patient.join(30)
    assert outcomes == Counter({"booked": 1})
    assert list(Appointment.objects.values_list("override_reason", flat=True)) == [""]
    connection.close()


def test_a_course_that_loses_to_an_override_searches_again_around_it() -> None:
    """A course whose search read the diary before an override committed on its provider
    does not land on the override: it searches again and books around it."""
    clinic = build_clinic()
    staff, outcomes = override_in_flight(clinic)
    course = services.course_book(
        patient=make_patient(clinic, name="Dev Patel"),
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["face"],
        preferences=services.Preferences(provider_id=clinic.ada.pk, times=(("10:00", "11:00"),)),
    )
    staff.join(30)
    assert outcomes == Counter({"booked": 1})
    ours = Reservation.objects.filter(appointment__course_session__course=course)
    theirs = Reservation.objects.filter(overlap_allowed=True)
    assert ours.count() > 0
    assert theirs.count() > 0
    assert overlaps([(r.resource, r.starts_at, r.ends_at) for r in [*ours, *theirs]]) == []
    connection.close()


def test_an_override_is_not_held_up_by_a_write_in_flight_in_another_organisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each organisation has lock buckets of its own: a long write in one chain (say, a
    closure's re-homing run) leaves another chain's overrides free. One bucket per
    organisation here, so within one organisation every pair of writes would collide."""
    monkeypatch.setattr(booking, "LOCK_BUCKETS", 1)
    monkeypatch.setattr(booking, "OVERRIDE_LOCK_WAIT", 0.2)
    riverbend = build_clinic()
    lakeside = build_clinic(name="Lakeside", group="Lakeside Group")
    assert lakeside.org.pk != riverbend.org.pk
    desk = make_staff("desk.lakeside", locations=[lakeside.location], organization=lakeside.org)
    writer, release, outcomes = in_flight(
        lambda: book_visit(riverbend, make_patient(riverbend), local(MONDAY, 10))
    )
    if connection.vendor == "sqlite":
        # One write lock for the whole file: the override waits for the other write.
        threading.Timer(1.0, release.set).start()
    try:
        visit = book_visit(
            lakeside, make_patient(lakeside, name="Over Ride"), local(MONDAY, 10), over_by=desk
        )
    finally:
        release.set()
        writer.join(30)
    assert outcomes == Counter({"booked": 1})
    assert visit.override_reason
    assert Appointment.objects.count() == 2
    connection.close()


def test_a_signature_waits_for_a_draft_save_in_flight_and_is_never_undone_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider signs while a colleague's save of the same draft has read it but not yet
    written it. The signature must come after the save (and vouch for what it wrote), never
    before it, where the save would write back the empty signature it read."""
    from microneedling.charting.models import ConsentText  # noqa: PLC0415

    clinic = build_clinic()
    # The consent the migrations load is gone in a test that commits (the tables are
    # emptied after each one), and the procedure starts only once it is signed.
    ConsentText.objects.get_or_create(
        version="1",
        defaults={"title": "Consent", "body": "I agree.", "active_from": date(2026, 1, 1)},
    )
    visit = procedure_start(book_visit(clinic, make_patient(clinic), local(MONDAY, 10)))
    cartridge = CartridgeLot.objects.create(
        location=clinic.location,
        device_model="SkinPen",
        lot_number="L1",
        expires_on=date(2028, 1, 1),
        quantity=20,
    )

    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    ben = make_staff("ben.ortiz", "provider", provider=clinic.ben)
    draft = charting.chart_write(
        appointment=visit, actor=ada, data=chart_fields(clinic, cartridge, 1.0)
    )
    read, go = threading.Event(), threading.Event()
    real = charting.latest_chart

    def read_then_pause(appointment: Appointment) -> ProcedureChart | None:
        found = real(appointment)
        read.set()
        go.wait(10)
        return found

    monkeypatch.setattr(charting, "latest_chart", read_then_pause)
    saver = threading.Thread(
        target=lambda: run_in_parallel(
            [
                lambda: charting.chart_write(
                    appointment=visit, actor=ben, data=chart_fields(clinic, cartridge, 1.5)
                )
            ]
        )
    )
    saver.start()
    assert read.wait(10)
    threading.Timer(1.0, go.set).start()
    charting.chart_sign(chart=ProcedureChart.objects.get(pk=draft.pk), actor=ada)
    saver.join(30)
    chart = ProcedureChart.objects.get()
    assert chart.locked and chart.signed_by_id == ada.pk
    assert chart.areas[0]["depth_mm"] == 1.5  # signed after the save, so what it wrote
    connection.close()


def test_two_face_treatments_a_week_apart_booked_at_once_are_not_both_kept() -> None:
    """Different providers, rooms and days: the exclusion constraint has nothing to refuse,
    and each booking read the patient's treatments before the other committed. The patient
    lock makes the second read the first."""
    clinic = build_clinic()
    patient = make_patient(clinic)
    jobs = [
        lambda day=day, provider=provider: services.appointment_book(
            patient=patient,
            service=clinic.treatment,
            location=clinic.location,
            provider=provider,
            starts_at=local(day, 10),
        )
        for day, provider in ((MONDAY, clinic.ada), (MONDAY + timedelta(days=7), clinic.ben))
    ]
    for _ in range(3):
        Appointment.objects.filter(patient=patient).delete()
        outcomes = run_in_parallel(jobs)
        assert outcomes["booked"] == 1, outcomes
        assert Appointment.objects.filter(patient=patient).count() == 1


def _while_the_desk_moves_the_second_session(
    monkeypatch: pytest.MonkeyPatch, course: Course, patient_action: Callable[[], object]
) -> dict[str, str]:
    """The desk moves the course's second session to its last day, re-planning the third;
    once it has planned, and before it writes, the patient's ``patient_action`` starts on
    another connection (the desk goes on a second later). Each one's outcome: "done", the
    code it was refused with, or the error it failed with."""
    from microneedling.core.errors import BookingRefused  # noqa: PLC0415
    from microneedling.scheduling import replanning  # noqa: PLC0415

    second = course.sessions.get(number=2)
    read, go = threading.Event(), threading.Event()
    real = replanning._keep_or_search

    def plan_then_pause(**kwargs: object) -> object:
        found = real(**kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "desk":
            read.set()
            go.wait(10)
        return found

    monkeypatch.setattr(replanning, "_keep_or_search", plan_then_pause)
    outcomes: dict[str, str] = {}

    def run(name: str, action: Callable[[], object]) -> None:
        try:
            action()
            outcomes[name] = "done"
        except BookingRefused as refused:
            outcomes[name] = refused.code
        except Exception as error:
            outcomes[name] = f"error: {type(error).__name__}: {error}"
        finally:
            connections.close_all()

    def desks_move() -> object:
        return replanning.course_session_move(
            appointment=second.appointments.get(),
            starts_at=local(second.latest, 14),
            actor=None,
            apply=True,
        )

    desk = threading.Thread(name="desk", target=run, args=("desk", desks_move))
    desk.start()
    assert read.wait(10)  # the desk's move has planned and not yet written
    threading.Timer(1.0, go.set).start()
    patient = threading.Thread(name="patient", target=run, args=("patient", patient_action))
    patient.start()
    desk.join(60)
    patient.join(60)
    return outcomes


def _spacing_kept(course: Course) -> None:
    """The course's booked sessions keep its minimum gap, each inside its own window."""
    visits = list(
        Appointment.objects.filter(course_session__course=course, status="booked").order_by(
            "starts_at"
        )
    )
    days = [v.starts_at.astimezone(TZ).date() for v in visits]
    for earlier, later in pairwise(days):
        assert (later - earlier).days >= course.gap_min_days, days
    for visit, day in zip(visits, days, strict=True):
        session = visit.course_session
        assert session is not None
        session.refresh_from_db()
        assert session.earliest <= day <= session.latest, (session.number, day)


def test_two_moves_of_one_course_at_once_keep_its_spacing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The patient moves the third session to the first time offered, while the desk's move
    of the second is under way. The patient's move waits for the desk's and is judged
    against the course as the desk left it: that day is now too soon after the second
    session, so it is refused by name. Neither move fails on a lock, and no answer is
    overwritten."""
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415
    from microneedling.scheduling.selectors import session_move_options  # noqa: PLC0415

    clinic = build_clinic()
    course = book_course(clinic, make_patient(clinic))
    second, third = (course.sessions.get(number=n) for n in (2, 3))
    third_visit = third.appointments.get()
    patient_start = session_move_options(third_visit, now=NOW)[0]
    too_soon = second.latest + timedelta(days=course.gap_min_days)
    assert patient_start.astimezone(TZ).date() < too_soon

    outcomes = _while_the_desk_moves_the_second_session(
        monkeypatch,
        course,
        lambda: course_session_move(
            appointment=third_visit, starts_at=patient_start, actor=None, apply=True
        ),
    )
    assert outcomes == {"desk": "done", "patient": "outside_window"}
    assert second.appointments.get().starts_at == local(second.latest, 14)
    _spacing_kept(course)
    connection.close()


def test_cancelling_a_session_while_another_moves_books_its_replacement_after_the_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The patient cancels the third session, and a replacement is booked for it, while
    the desk's move of the second is under way: the replacement waits for the move and is
    placed in the window the move gave the third session, not the one it had before."""
    from microneedling.scheduling.rebooking import course_session_replace  # noqa: PLC0415

    clinic = build_clinic()
    course = book_course(clinic, make_patient(clinic))
    second, third = (course.sessions.get(number=n) for n in (2, 3))
    third_visit = third.appointments.get()
    outcomes = _while_the_desk_moves_the_second_session(
        monkeypatch,
        course,
        lambda: course_session_replace(
            appointment=third_visit, status="cancelled", actor=None, apply=True
        ),
    )
    assert outcomes == {"desk": "done", "patient": "done"}
    assert second.appointments.get().starts_at == local(second.latest, 14)
    third_visit.refresh_from_db()
    assert third_visit.status == "cancelled"
    assert Appointment.objects.filter(course_session__course=course, status="booked").count() == 3
    _spacing_kept(course)
    connection.close()


def test_a_cancellation_while_a_move_is_under_way_waits_for_it_rather_than_deadlocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recent peel puts the first session on the desk's follow-up list. The patient then
    cancels the third session while the desk's move of the second (which re-plans the
    third) is under way. The cancellation takes the patient's lock before the visit's row,
    as the move does, so it waits for the move instead of holding the row the move needs
    while it waits for the lock the move holds."""
    from microneedling.scheduling.screening_followup import REASON  # noqa: PLC0415
    from tests.web.conftest import screen_again  # noqa: PLC0415

    clinic = build_clinic()
    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    first, third = (course.sessions.get(number=n).appointments.get() for n in (1, 3))
    screen_again(
        patient, procedures=[{"code": "chemical_peel", "area": "face", "date": f"{NOW.date()}"}]
    )
    waiting = AppointmentRequest.objects.get(reason=REASON, status="open")
    assert waiting.payload["appointments"] == [first.pk]
    outcomes = _while_the_desk_moves_the_second_session(
        monkeypatch,
        course,
        lambda: services.appointment_cancel(appointment=third, actor=None, reason="patient"),
    )
    assert outcomes == {"desk": "done", "patient": "done"}
    third.refresh_from_db()
    assert third.status == "cancelled"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.payload["appointments"]) == ("open", [first.pk])
    connection.close()


def test_a_provider_s_decision_and_the_patient_asking_again_at_once_do_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider approves a screening (which approves the requests waiting for it) while
    the patient asks for the course again (which merges into the waiting request). Both
    lock the patient before the requests, so the ask waits for the decision and neither
    fails on a lock."""
    from microneedling.patients import services as patient_services  # noqa: PLC0415

    clinic = build_clinic()
    patient = make_patient(clinic, conditions=[{"code": "rosacea"}])

    def ask() -> AppointmentRequest:
        return services.appointment_request_create(
            patient=patient,
            location=clinic.location,
            service=clinic.treatment,
            reason="clinician_review",
            payload={"first_session": MONDAY.isoformat()},
        )

    waiting = ask()
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    decided, go = threading.Event(), threading.Event()
    real = patient_services.events.screening_result

    def tell_then_pause(screening: object) -> None:
        real(screening)  # type: ignore[arg-type]
        decided.set()
        go.wait(10)

    monkeypatch.setattr(patient_services.events, "screening_result", tell_then_pause)
    outcomes: dict[str, str] = {}

    def run(name: str, action: Callable[[], object]) -> None:
        try:
            action()
            outcomes[name] = "done"
        except Exception as error:
            outcomes[name] = f"error: {type(error).__name__}: {error}"
        finally:
            connections.close_all()

    provider = threading.Thread(
        target=run,
        args=(
            "provider",
            lambda: patient_services.screening_review(
                screening=patient.screenings.get(), actor=ada, approve=True, reason="Calm today"
            ),
        ),
    )
    provider.start()
    assert decided.wait(10)  # the decision is written, not yet committed
    threading.Timer(1.0, go.set).start()
    asker = threading.Thread(target=run, args=("patient", ask))
    asker.start()
    provider.join(60)
    asker.join(60)
    assert outcomes == {"provider": "done", "patient": "done"}
    waiting.refresh_from_db()
    assert waiting.status == AppointmentRequest.Status.APPROVED
    connection.close()
