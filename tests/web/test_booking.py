"""Booking one visit and a whole course on a real database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest
from django.test import Client

from microneedling.audit.models import AuditEvent
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.directory.models import ClinicPolicy, LocationClosure
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, CourseSession, Reservation
from tests.web.conftest import (
    MONDAY,
    NOW,
    TZ,
    Clinic,
    book_course,
    book_visit,
    local,
    make_patient,
    propose_course,
    screen_again,
)

pytestmark = pytest.mark.usefixtures("frozen_now")


def book(clinic: Clinic, patient, hour: int, minute: int = 0, provider=None, *, service=None, **kw):
    return services.appointment_book(
        patient=patient,
        service=service or clinic.treatment,
        location=clinic.location,
        provider=provider or clinic.ada,
        starts_at=local(MONDAY, hour, minute),
        **kw,
    )


def test_each_phase_reserves_exactly_the_resources_it_needs(clinic: Clinic) -> None:
    appointment = book(clinic, make_patient(clinic), 10)
    rows = {r.resource.split(":")[0]: r for r in appointment.reservations.all()}
    assert set(rows) == {"room", "provider", "device", "patient"}
    # One room, and the patient, from check-in to aftercare; provider and pen only for the
    # needling itself.
    for kind in ("room", "patient"):
        assert (rows[kind].starts_at, rows[kind].ends_at) == (
            local(MONDAY, 10),
            local(MONDAY, 11, 25),
        )
    assert rows["patient"].resource == f"patient:{appointment.patient_id}"
    for kind in ("provider", "device"):
        assert (rows[kind].starts_at, rows[kind].ends_at) == (
            local(MONDAY, 10, 40),
            local(MONDAY, 11, 10),
        )
        assert rows[kind].phase == "procedure"
    assert appointment.ends_at == local(MONDAY, 11, 25)


def test_provider_treats_one_patient_while_another_is_numbing(clinic: Clinic) -> None:
    first = book(clinic, make_patient(clinic), 10)
    second = book(clinic, make_patient(clinic, name="Dev Patel"), 10, 30)
    assert first.provider == second.provider == clinic.ada
    rooms = {a.reservations.get(resource__startswith="room").resource for a in (first, second)}
    assert len(rooms) == 2


def test_overlapping_procedure_for_one_provider_is_a_conflict_naming_the_resource(
    clinic: Clinic,
) -> None:
    book(clinic, make_patient(clinic), 10)
    with pytest.raises(BookingConflict) as error:
        book(clinic, make_patient(clinic, name="Dev Patel"), 10, 15)
    assert error.value.resource == f"provider:{clinic.ada.pk}"
    assert Appointment.objects.count() == 1


def test_a_visit_needs_a_free_room_for_its_whole_length(clinic: Clinic) -> None:
    book(clinic, make_patient(clinic), 10)
    book(clinic, make_patient(clinic, name="Dev Patel"), 10, provider=clinic.ben)
    with pytest.raises(BookingConflict) as error:
        book(clinic, make_patient(clinic, name="Eve Stone"), 10, 30, provider=clinic.ben)
    assert "room" in str(error.value)


def test_booking_outside_working_hours_is_refused(clinic: Clinic) -> None:
    with pytest.raises(BookingConflict):
        book(clinic, make_patient(clinic), 16, 30)  # would end after 17:00


def test_staff_override_double_books_on_purpose_and_is_audited(clinic: Clinic, staff_user) -> None:
    book(clinic, make_patient(clinic), 10)
    second = book(
        clinic,
        make_patient(clinic, name="Dev Patel"),
        10,
        actor=staff_user,
        override_reason="Patient travelling from far; doctor agreed",
    )
    assert second.reservations.count() == 4  # room, provider, pen and the patient
    assert not second.reservations.filter(overlap_allowed=False).exists()
    event = AuditEvent.objects.get(action="booking_override")
    assert event.object_id == str(second.pk)
    assert "doctor agreed" in event.reason


def test_cancelling_frees_the_resources(clinic: Clinic) -> None:
    first = book(clinic, make_patient(clinic), 10)
    services.appointment_cancel(appointment=first, actor=None, reason="patient asked")
    assert not first.reservations.filter(active=True).exists()
    book(clinic, make_patient(clinic, name="Dev Patel"), 10)


def test_invalid_status_change_is_refused(clinic: Clinic) -> None:
    appointment = book(clinic, make_patient(clinic), 10)
    with pytest.raises(BookingRefused, match="cannot change"):
        services.appointment_set_status(appointment=appointment, status="completed", actor=None)


# --- courses -------------------------------------------------------------------------------
def test_course_books_every_session_inside_its_window(clinic: Clinic) -> None:
    course = book_course(clinic, make_patient(clinic))
    sessions = list(course.sessions.order_by("number"))
    assert len(sessions) == 3
    days = []
    for session in sessions:
        appointment = session.appointments.get()
        day = appointment.starts_at.astimezone(TZ).date()
        assert session.earliest <= day <= session.latest
        days.append(day)
    for before, after in pairwise(days):
        assert course.gap_min_days <= (after - before).days <= course.gap_max_days


def test_booking_a_course_costs_the_same_queries_however_many_sessions_it_has(
    clinic: Clinic,
) -> None:
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from microneedling.core.knowledge.models import Policy  # noqa: PLC0415
    from microneedling.notifications.models import Message  # noqa: PLC0415

    counts = {}
    six = Policy(protocols={"acne_scars": "protocol.acne_scars.seed000"})
    for name, policy in (("three", None), ("six", six)):
        patient = make_patient(clinic, name=f"Cleo {name.title()}")
        with CaptureQueriesContext(connection) as queries:
            course = book_course(clinic, patient, policy=policy)
        counts[name] = (len(queries), course.sessions.count(), Message.objects.count())
    (three, three_sessions, _), (six_queries, six_sessions, _) = counts["three"], counts["six"]
    assert (three_sessions, six_sessions) == (3, 6)
    # Sessions, visits, reservations and messages are each written in one insert, and what
    # the visits share is read once: twice the sessions, not one query more.
    assert six_queries == three
    assert three <= 25


def test_course_prefers_one_provider_throughout(clinic: Clinic) -> None:
    course = book_course(
        clinic, make_patient(clinic), preferences=services.Preferences(provider_id=clinic.ben.pk)
    )
    providers = {s.appointments.get().provider_id for s in course.sessions.all()}
    assert providers == {clinic.ben.pk}


def test_a_clinic_following_seed_004_treats_with_doctors_and_nurse_practitioners_only(
    clinic: Clinic,
) -> None:
    ClinicPolicy.objects.create(
        organization=clinic.org, positions={"dispute.who_performs": "doctor_or_np"}
    )
    # Ben is an aesthetician: the course asked of him goes to Dr. Quill instead.
    course = book_course(
        clinic, make_patient(clinic), preferences=services.Preferences(provider_id=clinic.ben.pk)
    )
    providers = {s.appointments.get().provider_id for s in course.sessions.all()}
    assert providers == {clinic.ada.pk}
    # Asked for by name, he is refused for what he is, not for a full diary, override or not.
    for override in ("", "squeezed in"):
        with pytest.raises(BookingRefused) as refused:
            book(
                clinic,
                make_patient(clinic, name=f"Dev Patel{override[:1]}"),
                15,
                provider=clinic.ben,
                override_reason=override,
            )
        assert (refused.value.code, refused.value.field) == ("provider_not_treating", "provider")
        assert "physician or nurse practitioner" in refused.value.message
    assert not Appointment.objects.filter(provider=clinic.ben).exists()
    # Visits that are not treatments may still be with him.
    consultation = services.appointment_book(
        patient=make_patient(clinic, name="Eve Moss"),
        service=clinic.consultation,
        location=clinic.location,
        provider=clinic.ben,
        starts_at=local(MONDAY, 15),
    )
    assert consultation.provider_id == clinic.ben.pk


def test_course_across_daylight_saving_keeps_the_local_time(clinic: Clinic) -> None:
    course = book_course(
        clinic, make_patient(clinic), preferences=services.Preferences(times=(("10:00", "10:15"),))
    )
    starts = [s.appointments.get().starts_at for s in course.sessions.order_by("number")]
    assert [s.astimezone(TZ).hour for s in starts] == [10, 10, 10]
    # 8 March is CST (UTC-6), the later sessions CDT (UTC-5): the UTC hour moved, not 10:00.
    assert {s.astimezone(TZ).utcoffset() for s in starts} == {
        timedelta(hours=-6),
        timedelta(hours=-5),
    }


def test_holiday_on_a_target_day_moves_that_session_within_its_window(clinic: Clinic) -> None:
    LocationClosure.objects.create(
        location=clinic.location,
        starts_on=date(2027, 4, 5),
        ends_on=date(2027, 4, 5),
        reason="Staff training",
    )
    course = book_course(clinic, make_patient(clinic))
    second = course.sessions.get(number=2)
    day = second.appointments.get().starts_at.astimezone(TZ).date()
    assert second.target == date(2027, 4, 5)
    assert day != date(2027, 4, 5)
    assert second.earliest <= day <= second.latest


def test_closure_over_a_whole_window_fails_clearly_and_books_nothing(clinic: Clinic) -> None:
    LocationClosure.objects.create(
        location=clinic.location,
        starts_on=date(2027, 4, 1),
        ends_on=date(2027, 4, 30),
        reason="Refurbishment",
    )
    with pytest.raises(BookingConflict) as error:
        book_course(clinic, make_patient(clinic))
    assert error.value.session == 2
    assert Appointment.objects.count() == 0
    assert CourseSession.objects.count() == 0
    assert Reservation.objects.count() == 0


# --- screening gates -----------------------------------------------------------------------
def test_not_eligible_patient_cannot_book(clinic: Clinic) -> None:
    with pytest.raises(BookingRefused) as error:
        book_course(clinic, make_patient(clinic, pregnant=True))
    assert error.value.code == "not_eligible"


def test_deferred_patient_can_only_book_from_the_allowed_date(clinic: Clinic) -> None:
    patient = make_patient(
        clinic, procedures=[{"code": "chemical_peel", "area": "face", "date": "2027-02-20"}]
    )
    with pytest.raises(BookingRefused) as error:
        book_course(clinic, patient)
    assert error.value.code == "deferred"
    course = book_course(clinic, patient, first=date(2027, 3, 22))
    assert course.sessions.count() == 3


def test_clinician_review_blocks_booking_until_approved(clinic: Clinic, staff_user) -> None:
    from microneedling.patients.services import screening_review  # noqa: PLC0415

    patient = make_patient(clinic, conditions=[{"code": "rosacea"}])
    with pytest.raises(BookingRefused) as error:
        book_course(clinic, patient)
    assert error.value.code == "review_pending"
    screening_review(
        screening=patient.screenings.get(),
        actor=staff_user,
        approve=True,
        reason="Mild rosacea, calm today",
    )
    assert book_course(clinic, patient).sessions.count() == 3


def test_unscreened_patient_cannot_book(clinic: Clinic) -> None:
    from microneedling.patients.models import Patient  # noqa: PLC0415

    patient = Patient.objects.create(
        organization=clinic.org,
        first_name="No",
        last_name="Intake",
        email="no@example.test",
        birth_date=date(1990, 1, 1),
    )
    with pytest.raises(BookingRefused) as error:
        book_course(clinic, patient)
    assert error.value.code == "not_screened"


@pytest.mark.django_db
@pytest.mark.parametrize("intake", [{"pregnant": True}, None], ids=["not_eligible", "unscreened"])
def test_the_desk_books_a_consultation_for_a_patient_the_screening_does_not_clear(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]], intake: dict[str, bool] | None
) -> None:
    """The screening decides microneedling, not a talk: the clinic suggests a consultation to
    a patient it found not eligible (or has not screened yet), so the desk can book one."""
    if intake is None:
        from microneedling.patients.models import Patient  # noqa: PLC0415

        patient = Patient.objects.create(
            organization=clinic.org,
            first_name="No",
            last_name="Intake",
            email="no@example.test",
            birth_date=date(1990, 1, 1),
        )
    else:
        patient = make_patient(clinic, **intake)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }

    def post(service_id: int):  # type: ignore[no-untyped-def]
        return Client().post(
            "/api/v1/appointments",
            json.dumps({**body, "service_id": service_id}),
            content_type="application/json",
            **auth_headers(),
        )

    refused = post(clinic.treatment.pk)
    assert refused.status_code == 422, refused.content
    assert not Appointment.objects.exists()
    booked = post(clinic.consultation.pk)
    assert booked.status_code == 201, booked.content
    assert Appointment.objects.get().service_id == clinic.consultation.pk


def test_now_is_frozen_for_these_tests() -> None:
    from django.utils import timezone  # noqa: PLC0415

    assert timezone.now() == NOW


# --- moving a session re-plans the rest ----------------------------------------------------
def test_moving_a_session_previews_the_replanned_rest_without_saving(clinic: Clinic) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    second = course.sessions.get(number=2).appointments.get()
    third_before = course.sessions.get(number=3).appointments.get().starts_at
    latest = course.sessions.get(number=2).latest
    new_start = local(latest, 14)
    preview = course_session_move(appointment=second, starts_at=new_start, actor=None, apply=False)
    assert not preview.applied
    assert [c.number for c in preview.changes] == [2, 3]
    assert preview.changes[0].new_start == new_start
    third = preview.changes[1]
    new_day = new_start.astimezone(TZ).date()
    assert third.window[0] == new_day + timedelta(days=course.gap_min_days)
    assert third.window[0] <= third.new_start.astimezone(TZ).date() <= third.window[2]
    # Nothing was saved by the preview.
    second.refresh_from_db()
    assert second.starts_at != new_start
    assert course.sessions.get(number=3).appointments.get().starts_at == third_before
    assert (
        second.reservations.filter(active=True).count() == 4
    )  # room, provider, pen and the patient


def test_applying_a_move_saves_the_replanned_course(clinic: Clinic) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    second = course.sessions.get(number=2).appointments.get()
    new_start = local(course.sessions.get(number=2).latest, 14)
    result = course_session_move(appointment=second, starts_at=new_start, actor=None, apply=True)
    assert result.applied
    second.refresh_from_db()
    assert second.starts_at == new_start
    days = [
        s.appointments.get().starts_at.astimezone(TZ).date()
        for s in course.sessions.order_by("number")
    ]
    for session, day in zip(course.sessions.order_by("number"), days, strict=True):
        assert session.earliest <= day <= session.latest
    for before, after in pairwise(days):
        assert course.gap_min_days <= (after - before).days <= course.gap_max_days
    assert AuditEvent.objects.filter(action="course_session_move").count() == 1


def test_moving_a_session_outside_its_window_is_refused(clinic: Clinic) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    session = course.sessions.get(number=2)
    with pytest.raises(BookingRefused) as error:
        course_session_move(
            appointment=session.appointments.get(),
            starts_at=local(session.latest + timedelta(days=1), 10),
            actor=None,
            apply=True,
        )
    assert error.value.code == "outside_window"


def test_deadlocks_and_serialisation_failures_count_as_lost_races() -> None:
    from django.db import OperationalError  # noqa: PLC0415

    class Cause(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    def error_with(state: str) -> OperationalError:
        error = OperationalError("database said no")
        error.__cause__ = Cause(state)
        return error

    assert services.lost_race(error_with("40P01"))  # deadlock_detected
    assert services.lost_race(error_with("40001"))  # serialization_failure
    assert not services.lost_race(error_with("53300"))  # too_many_connections
    assert not services.lost_race(OperationalError("disk I/O error"))


def test_only_a_booked_session_can_be_moved(clinic: Clinic) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    first = course.sessions.get(number=1).appointments.get()
    services.appointment_cancel(appointment=first, actor=None, reason="patient asked")
    with pytest.raises(BookingRefused) as error:
        course_session_move(
            appointment=first, starts_at=first.starts_at + timedelta(days=1), actor=None, apply=True
        )
    assert error.value.code == "invalid_transition"


def test_a_move_from_an_earlier_reading_leaves_a_visit_cancelled_meanwhile_holding_nothing(
    clinic: Clinic,
) -> None:
    """The desk opens a session to move it while the patient cancels it: the move, read
    before the cancellation, must not give the cancelled visit its time back."""
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    booked = course.sessions.get(number=2).appointments.get()
    seen_by_desk = Appointment.objects.get(pk=booked.pk)
    services.appointment_cancel(appointment=booked, actor=None, reason="patient asked")
    with pytest.raises(BookingRefused) as refused:
        course_session_move(
            appointment=seen_by_desk,
            starts_at=local(course.sessions.get(number=2).latest, 14),
            actor=None,
            apply=True,
        )
    assert refused.value.code == "changed_meanwhile"
    booked.refresh_from_db()
    assert booked.status == "cancelled"
    assert not booked.reservations.filter(active=True).exists()


def test_a_plan_window_shut_by_a_closure_falls_back_to_the_full_search(clinic: Clinic) -> None:
    """Session 2's own plan window is closed, but counted from the day session 1 really
    takes, the course's gap still reaches beyond the closure: the course is booked there."""
    patient = make_patient(clinic)
    plan = propose_course(clinic, patient).plan
    window = plan.sessions[1]
    LocationClosure.objects.create(
        location=clinic.location, starts_on=window.earliest, ends_on=window.latest, reason="Refit"
    )
    course = book_course(clinic, patient)
    days = [
        s.appointments.get().starts_at.astimezone(TZ).date()
        for s in course.sessions.order_by("number")
    ]
    assert days[1] > window.latest
    for before, after in pairwise(days):
        assert course.gap_min_days <= (after - before).days <= course.gap_max_days


def test_one_patient_cannot_be_booked_into_two_visits_at_once(clinic: Clinic, staff_user) -> None:
    patient = make_patient(clinic)
    book(clinic, patient, 10)
    # Ben is free for a consultation at 10:30, but the patient is not.
    with pytest.raises(BookingConflict) as refused:
        book(clinic, patient, 10, 30, provider=clinic.ben, service=clinic.consultation)
    assert refused.value.resource == "patient"
    assert Appointment.objects.filter(patient=patient).count() == 1
    # Back to back is fine, and a member of staff may override on purpose.
    book(clinic, patient, 11, 30, provider=clinic.ben, service=clinic.consultation)
    overlapping = book_visit(clinic, patient, local(MONDAY, 10, 30), clinic.ben, over_by=staff_user)
    assert overlapping.reservations.get(resource__startswith="patient:").overlap_allowed


def test_an_override_visit_still_refuses_a_later_ordinary_booking_on_top_of_it(
    clinic: Clinic, staff_user
) -> None:
    patient = make_patient(clinic)
    book(clinic, patient, 10)
    book_visit(clinic, patient, local(MONDAY, 10, 30), clinic.ben, over_by=staff_user)
    # The first visit is cancelled; the override visit keeps the patient busy all the same.
    first = Appointment.objects.get(patient=patient, provider=clinic.ada)
    services.appointment_cancel(appointment=first, actor=None, reason="patient asked")
    with pytest.raises(BookingConflict) as refused:
        book(clinic, patient, 11, service=clinic.consultation)
    assert refused.value.resource == "patient"
    assert Appointment.objects.filter(patient=patient, status="booked").count() == 1


def test_a_course_refuses_a_session_on_top_of_the_patients_own_visit(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    first = course.sessions.get(number=1).appointments.get()
    with pytest.raises(BookingConflict) as refused:
        book_visit(
            clinic,
            patient,
            # Half an hour in (while the patient numbs): a consultation needs its provider
            # from the start, and a session may begin before the providers' hours.
            first.starts_at + timedelta(minutes=30),
            clinic.ben if first.provider == clinic.ada else clinic.ada,
            service=clinic.consultation,
        )
    assert refused.value.resource == "patient"


def _overlapping(visits: list[Appointment]) -> list[tuple[int, int]]:
    ordered = sorted(visits, key=lambda v: v.starts_at)
    return [(a.pk, b.pk) for a, b in pairwise(ordered) if b.starts_at < a.ends_at]


def test_a_course_is_planned_around_the_patients_own_visit_instead_of_refused(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    # Where the search would put the first session for this patient...
    first = dict(propose_course(clinic, patient).series.choices)[1]
    # ...the patient already has a visit with the other provider (room and pen left free).
    other = clinic.ben if first.provider_id == f"provider:{clinic.ada.pk}" else clinic.ada
    visit = book_visit(
        clinic, patient, first.start + timedelta(minutes=30), other, service=clinic.consultation
    )
    course = book_course(clinic, patient)
    sessions = Appointment.objects.filter(course_session__course=course)
    assert sessions.count() == 3
    assert not sessions.filter(starts_at__lt=visit.ends_at, ends_at__gt=visit.starts_at).exists()
    assert _overlapping(list(Appointment.objects.filter(patient=patient))) == []


def test_a_second_course_for_the_same_patient_never_lands_on_the_first(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    screen_again(patient, treatment_areas=["face", "neck"])
    book_course(clinic, patient)
    # A course of other skin (the neck): the other provider, room and pen are free at the
    # first course's times, only the patient is not, and the second course is planned
    # around them rather than refused.
    services.course_book(
        patient=patient,
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["neck"],
        preferences=services.Preferences(provider_id=clinic.ben.pk),
    )
    visits = list(Appointment.objects.filter(patient=patient))
    assert len(visits) == 6
    assert _overlapping(visits) == []


def test_a_session_cannot_be_offered_a_move_onto_the_patients_other_visit(clinic: Clinic) -> None:
    from microneedling.scheduling.selectors import session_move_options  # noqa: PLC0415

    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    session = course.sessions.get(number=2).appointments.get()
    day = session.starts_at.astimezone(TZ).date() + timedelta(days=1)
    other = clinic.ben if session.provider == clinic.ada else clinic.ada
    visit = book_visit(clinic, patient, local(day, 11), other, service=clinic.consultation)
    length = session.ends_at - session.starts_at

    def clashing() -> list[datetime]:
        offered = session_move_options(session, now=NOW)
        return [s for s in offered if s < visit.ends_at and visit.starts_at < s + length]

    assert clashing() == []
    # Only the patient's visit ruled those starts out: once it is cancelled they are offered.
    services.appointment_cancel(appointment=visit, actor=None, reason="patient asked")
    assert local(day, 11) in clashing()


def test_a_session_is_offered_a_start_overlapping_its_own_time_and_can_move_there(
    clinic: Clinic,
) -> None:
    """The visit being moved frees its own time: its patient hold (the whole visit) used to
    hide every start that overlapped it, though the move itself would take them."""
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415
    from microneedling.scheduling.selectors import session_move_options  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    session = course.sessions.get(number=2).appointments.get()
    later = session.starts_at + timedelta(minutes=15)
    assert later in session_move_options(session, now=NOW)
    moved = course_session_move(appointment=session, starts_at=later, actor=None, apply=True)
    assert moved.applied and moved.changes[0].new_start == later


def test_a_move_preview_onto_the_patients_other_visit_is_refused_as_the_move_would_be(
    clinic: Clinic,
) -> None:
    """The preview used to promise a move that applying then refused with a 409."""
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    session = course.sessions.get(number=2).appointments.get()
    day = session.starts_at.astimezone(TZ).date() + timedelta(days=1)
    other = clinic.ben if session.provider == clinic.ada else clinic.ada
    book_visit(clinic, patient, local(day, 11), other, service=clinic.consultation)
    for apply in (False, True):
        with pytest.raises(BookingConflict) as refused:
            course_session_move(
                appointment=session, starts_at=local(day, 11), actor=None, apply=apply
            )
        assert refused.value.resource == "patient"
    session.refresh_from_db()
    assert session.starts_at.astimezone(TZ).date() != day


@pytest.mark.django_db
def test_a_course_is_booked_only_for_areas_the_screening_asked_about(clinic: Clinic) -> None:
    # Screened for the face: a rash on the neck was never asked about.
    cleo = make_patient(clinic)
    for areas in (["neck"], ["face", "chest"]):
        with pytest.raises(BookingRefused) as refused:
            services.course_book(
                patient=cleo,
                location=clinic.location,
                service=clinic.treatment,
                indications=["acne_scars"],
                first_session=MONDAY,
                areas=areas,
            )
        assert (refused.value.code, refused.value.field) == ("area_not_screened", "areas")
    # The concern's own default area counts too: stretch marks default to the abdomen.
    with pytest.raises(BookingRefused) as refused:
        services.course_book(
            patient=cleo,
            location=clinic.location,
            service=clinic.treatment,
            indications=["stretch_marks"],
            first_session=MONDAY,
        )
    assert "abdomen" in refused.value.message
    assert not Appointment.objects.exists()
    # A part of the face lies inside the screened face.
    course = services.course_book(
        patient=cleo,
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["face.cheeks"],
    )
    assert course.areas == ["face.cheeks"]


def test_the_strict_scar_position_refuses_a_course_for_scars_the_intake_did_not_name(
    clinic: Clinic,
) -> None:
    # Seed-004 read literally: anyone who has scars is not needled. The intake names no scar
    # condition, but a course for acne scars says the patient has them.
    ClinicPolicy.objects.create(
        organization=clinic.org,
        positions={"dispute.scars_indication_or_contraindication": "avoid_with_scars"},
    )
    cleo = make_patient(clinic)
    for concern in ("acne_scars", "other_scars"):
        with pytest.raises(BookingRefused) as refused:
            services.course_book(
                patient=cleo,
                location=clinic.location,
                service=clinic.treatment,
                indications=["fine_lines", concern],
                first_session=MONDAY,
                areas=["face"],
            )
        assert (refused.value.code, refused.value.field) == ("not_eligible", "indications")
        assert "scars" in refused.value.message
    assert not Appointment.objects.exists()
    # Concerns that are not scars are still booked under that position.
    course = services.course_book(
        patient=cleo,
        location=clinic.location,
        service=clinic.treatment,
        indications=["fine_lines"],
        first_session=MONDAY,
        areas=["face"],
    )
    assert course.sessions.count() >= 1


@pytest.mark.django_db
def test_a_single_treatment_of_an_unscreened_area_is_refused_naming_the_service(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    cleo = make_patient(clinic, treatment_areas=["neck"])
    # The clinic's treatment is of the face (build_clinic); Cleo was screened for her neck.
    assert clinic.treatment.areas == ["face"]
    body = {
        "patient_id": cleo.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }
    answer = Client().post(
        "/api/v1/appointments", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert answer.status_code == 422, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == "service_id"
    assert "neck" not in answer.json()["errors"][0]["message"]  # it names the face
    assert "face" in answer.json()["errors"][0]["message"]
    assert not Appointment.objects.exists()
    # Screened for the face as well, the same request books.
    screen_again(cleo, treatment_areas=["neck", "face"])
    answer = Client().post(
        "/api/v1/appointments", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert answer.status_code == 201, answer.content


def test_booking_a_course_through_the_api_answers_what_was_stored_in_few_queries(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    import json  # noqa: PLC0415

    from django.db import connection  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from microneedling.scheduling.models import Course  # noqa: PLC0415

    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": "2027-03-08",
        "areas": ["face"],
    }
    api = Client()
    with CaptureQueriesContext(connection) as queries:
        answer = api.post(
            "/api/v1/courses", json.dumps(body), content_type="application/json", **auth_headers()
        )
    assert answer.status_code == 201, answer.content
    # The answer is built from the rows the booking wrote: it must say what a read gives.
    course = Course.objects.get(pk=answer.json()["id"])
    stored = []
    for session in course.sessions.order_by("number"):
        visit = session.appointments.get()
        stored.append(
            {
                "number": session.number,
                "earliest": session.earliest.isoformat(),
                "target": session.target.isoformat(),
                "latest": session.latest.isoformat(),
                "status": session.status,
                "appointment": {
                    "id": visit.pk,
                    "starts_at": visit.starts_at.isoformat(),
                    "ends_at": visit.ends_at.isoformat(),
                    "provider_id": visit.provider_id,
                    "status": visit.status,
                },
            }
        )
    assert answer.json() == {
        "id": course.pk,
        "status": course.status,
        "indications": course.indications,
        "protocols": course.protocols,
        "sessions": stored,
    }
    # Authentication, the checks, the search (with the patient's other treatments, for
    # spacing, read under a lock of the patient's row on PostgreSQL), every write and the
    # answer: no read per session or per message, and nothing read back after the commit.
    pinned = 25 if connection.vendor == "postgresql" else 23
    assert len(queries) <= pinned, "\n".join(q["sql"][:150] for q in queries)


@pytest.mark.django_db
def test_a_single_treatment_before_the_day_screened_for_is_refused_naming_its_start(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    cleo = make_patient(clinic)  # her answers were screened for treatment from MONDAY
    body = {
        "patient_id": cleo.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY - timedelta(days=4), 10).isoformat(),
    }
    answer = Client().post(
        "/api/v1/appointments", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert answer.status_code == 422, answer.content
    [error] = answer.json()["errors"]
    assert error["field"] == "starts_at" and MONDAY.isoformat() in error["message"]
    assert not Appointment.objects.exists()
