"""The desk's chain-wide pages stay inside the user's organisation and locations: re-homing,
undelivered messages, day sheets and provider calendars; and record pages are audited
whenever they show the record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from microneedling.accounts.access import locations_usable, may_use_location, providers_usable
from microneedling.audit.models import AuditEvent
from microneedling.audit.selectors import patient_access_log
from microneedling.directory.models import Location, ProviderSchedule
from microneedling.notifications.feeds import calendar_feed_issue, calendar_feed_revoke
from microneedling.notifications.models import CalendarFeed, Message
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, RehomingRun
from microneedling.scheduling.rehoming import provider_move_reach
from microneedling.scheduling.replanning import course_session_move
from tests.web.conftest import (
    MONDAY,
    NOW,
    Clinic,
    book_course,
    build_clinic,
    client_of,
    local,
    make_patient,
    make_staff,
)

pytestmark = pytest.mark.usefixtures("frozen_now")


def _visit(clinic: Clinic, name: str, hour: int = 10) -> Appointment:
    return services.appointment_book(
        patient=make_patient(clinic, name=name),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, hour),
    )


def _stuck(name: str) -> dict[str, object]:
    """A visit a re-homing report could not move, as the report lists it."""
    return {"appointment": 1, "patient": name, "starts_at": "2027-03-08 10:00", "reason": "full"}


def _move(appointment: int, name: str) -> dict[str, object]:
    """A visit a re-homing report moved, as the report lists it."""
    return {
        "appointment": appointment,
        "patient": name,
        "from": "Northside",
        "to": "Harbour",
        "from_start": "2027-03-08 10:00",
        "to_start": "2027-03-08 11:00",
        "from_provider": "Ada",
        "to_provider": "Ada",
        "distance_km": 4.2,
        "shift_days": 0,
    }


def _other_organisation(clinic: Clinic) -> tuple[Clinic, Appointment]:
    """A location of another organisation, with a booked patient of its own."""
    far = build_clinic(name="Faraway", group="Faraway Group")
    visit = _visit(far, "Yuri Foreign")
    return far, visit


def test_a_chain_operator_uses_every_location_of_their_organisation_and_no_other(
    clinic: Clinic,
) -> None:
    far, _ = _other_organisation(clinic)
    operator = make_staff("op", "chain_operator")
    assert may_use_location(operator, clinic.location.pk)
    assert not may_use_location(operator, far.location.pk)
    assert set(locations_usable(operator)) == {clinic.location}
    assert set(providers_usable(operator)) == {clinic.ada, clinic.ben}


def test_a_chain_operator_is_answered_alike_from_a_row_in_hand_and_from_an_id(
    clinic: Clinic,
) -> None:
    # With the row in hand, a chain operator's scope is read from it (no query): the answers
    # must be those of the query on the id, for their organisation and another's.
    from microneedling.accounts.access import may_see_patient  # noqa: PLC0415

    far, foreign_visit = _other_organisation(clinic)
    ours = make_patient(clinic, name="Nell Local")
    operator = make_staff("op", "chain_operator")
    desk = make_staff("front", "front_desk", locations=[clinic.location])
    for user in (operator, desk):
        for patient in (ours, foreign_visit.patient):
            assert may_see_patient(user, patient) == may_see_patient(user, patient.pk)
        for location in (clinic.location, far.location):
            assert may_use_location(user, location) == may_use_location(user, location.pk)
    assert may_see_patient(operator, ours) and not may_see_patient(operator, foreign_visit.patient)
    assert may_use_location(operator, clinic.location)
    assert not may_use_location(operator, far.location)


def test_a_chain_operator_cannot_open_another_organisations_day_sheet(clinic: Clinic) -> None:
    far, _ = _other_organisation(clinic)
    client = client_of(make_staff("op", "chain_operator"))
    page = client.get(
        reverse("desk:day_sheet", args=[far.location.slug]), {"day": MONDAY.isoformat()}
    )
    assert page.status_code == 403
    assert "Yuri Foreign" not in page.content.decode()
    home = client.get(reverse("desk:home")).content.decode()
    assert "Faraway" not in home and clinic.location.name in home


def test_a_clinic_admin_cannot_close_or_read_the_re_homing_of_another_location(
    clinic: Clinic,
) -> None:
    other = build_clinic(name="Stoneridge")
    _visit(other, "Zara Secret")
    admin = make_staff("admin", "clinic_admin", locations=[clinic.location])
    client = client_of(admin)
    form = client.get(reverse("desk:rehoming")).content.decode()
    assert "Stoneridge" not in form and clinic.location.name in form
    refused = client.post(
        reverse("desk:rehoming"),
        {"operation": "location_close", "location": other.location.pk, "from_date": "2027-03-02"},
    )
    assert refused.status_code == 200 and "location" in refused.context["form"].errors
    assert not RehomingRun.objects.exists()
    # A run someone else made on that location is not the admin's to read or apply.
    run = RehomingRun.objects.create(
        operation=RehomingRun.Operation.CLOSE_LOCATION,
        location=other.location,
        from_date=MONDAY,
        status=RehomingRun.Status.DONE,
        report={"moves": [], "stuck_visits": [_stuck("Zara Secret")]},
    )
    assert client.get(reverse("desk:rehoming_run", args=[run.pk])).status_code == 404
    assert client.get(reverse("desk:rehoming_csv", args=[run.pk])).status_code == 404
    assert client.post(reverse("desk:rehoming_apply", args=[run.pk])).status_code == 404
    assert RehomingRun.objects.count() == 1
    other.location.refresh_from_db()
    assert other.location.status == Location.Status.OPEN


def _shared_with_stoneridge(clinic: Clinic) -> Clinic:
    """Stoneridge, another location of the organisation, where Ada works on Fridays and
    has a patient booked."""
    other = build_clinic(name="Stoneridge")
    ProviderSchedule.objects.filter(provider=clinic.ada, weekday=4).update(location=other.location)
    services.appointment_book(
        patient=make_patient(other, name="Zara Secret"),
        service=other.treatment,
        location=other.location,
        provider=clinic.ada,
        starts_at=local(MONDAY + timedelta(days=4), 10),
    )
    return other


def _move_ada(client: Client, clinic: Clinic) -> Any:
    return client.post(
        reverse("desk:rehoming"),
        {
            "operation": "provider_move",
            "location": clinic.location.pk,
            "provider": clinic.ada.pk,
            "from_date": MONDAY.isoformat(),
        },
    )


def test_a_clinic_admin_cannot_move_a_provider_shared_with_a_location_they_do_not_run(
    clinic: Clinic,
) -> None:
    _shared_with_stoneridge(clinic)
    admin = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    refused = _move_ada(admin, clinic)
    assert refused.status_code == 200
    assert "Stoneridge" in refused.context["form"].errors["provider"][0]
    assert not RehomingRun.objects.exists()
    # The chain operator runs both locations, so the same move is theirs to make.
    started = _move_ada(client_of(make_staff("op", "chain_operator")), clinic)
    assert started.status_code == 302
    assert RehomingRun.objects.get().provider_id == clinic.ada.pk


def test_a_provider_move_is_checked_again_when_it_is_applied(clinic: Clinic) -> None:
    admin = make_staff("admin", "clinic_admin", locations=[clinic.location])
    preview = RehomingRun.objects.create(
        operation=RehomingRun.Operation.MOVE_PROVIDER,
        location=clinic.location,
        provider=clinic.ada,
        from_date=MONDAY,
        status=RehomingRun.Status.DONE,
        report={"moves": [], "stuck_visits": []},
    )
    _shared_with_stoneridge(clinic)  # since the preview, Ada works at Stoneridge too
    client = client_of(admin)
    applied = client.post(reverse("desk:rehoming_apply", args=[preview.pk]), follow=True)
    assert "Not applied" in applied.content.decode()
    assert "Stoneridge" in applied.content.decode()
    assert RehomingRun.objects.count() == 1


def test_a_provider_move_reaches_every_location_with_their_hours_or_visits_to_come(
    clinic: Clinic,
) -> None:
    other = _shared_with_stoneridge(clinic)
    reach = provider_move_reach(
        provider=clinic.ada, to_location=clinic.location, from_date=MONDAY, now=NOW
    )
    assert reach == {other.location.pk}
    # Without hours there any more, the visit still to come keeps Stoneridge in reach.
    ProviderSchedule.objects.filter(provider=clinic.ada, location=other.location).delete()
    reach = provider_move_reach(
        provider=clinic.ada, to_location=clinic.location, from_date=MONDAY, now=NOW
    )
    assert reach == {other.location.pk}
    # A visit before the move's first day stays where it is, so it is out of reach.
    later = MONDAY + timedelta(days=7)
    reach = provider_move_reach(
        provider=clinic.ada, to_location=clinic.location, from_date=later, now=NOW
    )
    assert reach == set()


def test_reading_a_re_homing_report_is_audited_for_the_run_and_each_patient_shown(
    clinic: Clinic,
) -> None:
    operator = make_staff("op", "chain_operator")
    moved, stuck = _visit(clinic, "Moe Moved", 10), _visit(clinic, "Zara Secret", 12)
    run = RehomingRun.objects.create(
        operation=RehomingRun.Operation.CLOSE_LOCATION,
        location=clinic.location,
        from_date=MONDAY,
        status=RehomingRun.Status.DONE,
        report={
            "moves": [_move(moved.pk, "Moe Moved")],
            "stuck_visits": [{**_stuck("Zara Secret"), "appointment": stuck.pk}],
        },
    )
    client = client_of(operator)
    assert "Zara Secret" in client.get(reverse("desk:rehoming_run", args=[run.pk])).content.decode()
    assert client.get(reverse("desk:rehoming_csv", args=[run.pk])).status_code == 200
    events = AuditEvent.objects.filter(action="rehoming_report_view")
    on_run = events.filter(object_type="rehoming_run", object_id=str(run.pk))
    assert on_run.count() == 2 and {e.actor_id for e in on_run} == {operator.pk}
    for visit in (moved, stuck):
        seen = patient_access_log(visit.patient_id).filter(action="rehoming_report_view")
        assert [e.details for e in seen] == [
            {"rehoming_run": run.pk, "appointments": [visit.pk]}
        ] * 2


def test_the_undelivered_list_shows_and_resends_only_ones_own_patients(clinic: Clinic) -> None:
    other = build_clinic(name="Stoneridge")
    theirs = _visit(other, "Zara Secret")
    mine = _visit(clinic, "Cleo Marsh", hour=12)
    Message.objects.filter(patient__in=[theirs.patient, mine.patient]).update(
        status=Message.Status.DEAD
    )
    client = client_of(make_staff("desk", "front_desk", locations=[clinic.location]))
    page = client.get(reverse("desk:dead_messages")).content.decode()
    assert "Cleo Marsh" in page and "Zara Secret" not in page
    # Listing a patient's undelivered messages is a look at their record: audited, by name.
    assert patient_access_log(mine.patient_id).filter(action="dead_messages_view").exists()
    assert not patient_access_log(theirs.patient_id).exists()
    foreign = Message.objects.filter(patient=theirs.patient).first()
    assert foreign is not None
    answer = client.post(reverse("desk:dead_message_retry", args=[foreign.pk]))
    assert answer.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == Message.Status.DEAD
    own = Message.objects.filter(patient=mine.patient).first()
    assert own is not None
    assert client.post(reverse("desk:dead_message_retry", args=[own.pk])).status_code == 302
    # The resend names the patient, so it shows in their access log.
    assert patient_access_log(mine.patient_id).filter(action="message_retry").exists()


def test_the_desk_counts_only_ones_own_undelivered_messages(clinic: Clinic) -> None:
    other = build_clinic(name="Stoneridge")
    Message.objects.filter(patient=_visit(other, "Zara Secret").patient).update(
        status=Message.Status.DEAD
    )
    client = client_of(make_staff("desk", "front_desk", locations=[clinic.location]))
    assert client.get(reverse("desk:home")).context["dead_messages"] == 0


def test_a_front_desk_cannot_issue_or_revoke_another_organisations_provider_feed(
    clinic: Clinic,
) -> None:
    far, _ = _other_organisation(clinic)
    client = client_of(make_staff("desk", "front_desk", locations=[clinic.location]))
    listing = client.get(reverse("desk:provider_calendars")).content.decode()
    # (Both clinics' providers share names: the addresses tell them apart.)
    assert reverse("desk:provider_calendar", args=[clinic.ada.pk]) in listing
    assert reverse("desk:provider_calendar", args=[far.ada.pk]) not in listing
    answer = client.post(reverse("desk:provider_calendar", args=[far.ada.pk]))
    assert answer.status_code == 404
    assert not CalendarFeed.objects.filter(provider=far.ada).exists()
    assert client.post(reverse("desk:provider_calendar", args=[clinic.ada.pk])).status_code == 200


def test_a_visit_page_sent_back_by_a_post_is_audited_like_a_get(clinic: Clinic) -> None:
    visit = _visit(clinic, "Cleo Marsh")
    client = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    page = client.post(reverse("desk:visit", args=[visit.pk]), {})
    assert page.status_code == 200 and "Cleo Marsh" in page.content.decode()
    assert patient_access_log(visit.patient_id).filter(action__startswith="visit_view").exists()


def test_moving_a_course_session_and_stopping_a_patients_feed_show_in_their_access_log(
    clinic: Clinic,
) -> None:
    desk = make_staff("desk", "front_desk", locations=[clinic.location])
    course = book_course(clinic, make_patient(clinic))
    session = course.sessions.get(number=2)
    course_session_move(
        appointment=session.appointments.get(),
        starts_at=local(session.latest, 14),
        actor=desk,
        apply=True,
    )
    calendar_feed_issue(actor=desk, patient=course.patient)
    calendar_feed_revoke(feed=CalendarFeed.objects.get(patient=course.patient), actor=desk)
    logged = set(patient_access_log(course.patient_id).values_list("action", flat=True))
    assert {"course_session_move", "calendar_feed_revoke"} <= logged
