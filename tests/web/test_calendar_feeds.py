"""Calendar feeds over real HTTP, parsed with icalendar and expanded with
recurring-ical-events: local times survive a daylight-saving change, cancellations show as
cancelled, and a revoked address stops working; plus the patient's messages page."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import recurring_ical_events
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from microneedling.notifications.feeds import calendar_feed_issue
from microneedling.notifications.models import CalendarFeed, ContactPreference
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from tests.web.conftest import MONDAY, TZ, Clinic, book_course, make_patient, make_staff

pytestmark = pytest.mark.usefixtures("frozen_now")


def _fetch(live_server, token: str) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(f"{live_server.url}/calendar/{token}.ics", timeout=30)


def test_a_course_across_the_spring_change_keeps_its_local_times_in_the_feed(
    clinic: Clinic, live_server
) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient)  # 8 March, then April: the clocks change 14 March
    visits = list(Appointment.objects.filter(course_session__course=course).order_by("starts_at"))
    offsets = {v.starts_at.astimezone(TZ).utcoffset() for v in visits}
    assert offsets == {timedelta(hours=-6), timedelta(hours=-5)}  # really across the change
    token = calendar_feed_issue(actor=None, patient=patient)

    response = _fetch(live_server, token)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/Chicago"]
    expanded = recurring_ical_events.of(calendar).between(
        datetime(2027, 3, 1, tzinfo=TZ), datetime(2027, 12, 31, tzinfo=TZ)
    )
    assert len(expanded) == len(visits) == 3
    by_uid = {str(e["UID"]): e for e in expanded}
    for visit in visits:
        event = by_uid[f"appointment-{visit.pk}@microneedling.clinic"]
        start = event.decoded("DTSTART")
        assert start.tzinfo is not None and str(start.tzinfo) == "America/Chicago"
        local = visit.starts_at.astimezone(TZ)
        assert (start.date(), start.hour, start.minute) == (local.date(), local.hour, local.minute)
        assert start == visit.starts_at  # the same instant
        assert str(event["STATUS"]) == "CONFIRMED"
    # The raw text names the zone rather than UTC, so DST rules travel with the event.
    assert b"DTSTART;TZID=America/Chicago:" in response.content


def test_a_cancelled_visit_stays_in_the_feed_as_cancelled_with_a_higher_sequence(
    clinic: Clinic, live_server
) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    first = course.sessions.get(number=1).appointments.get()
    token = calendar_feed_issue(actor=None, patient=patient)
    before = Calendar.from_ical(_fetch(live_server, token).content)
    sequence = {str(e["UID"]): int(e["SEQUENCE"]) for e in before.walk("VEVENT")}
    services.appointment_cancel(appointment=first, actor=None)
    after = Calendar.from_ical(_fetch(live_server, token).content)
    events = {str(e["UID"]): e for e in after.walk("VEVENT")}
    uid = f"appointment-{first.pk}@microneedling.clinic"
    assert str(events[uid]["STATUS"]) == "CANCELLED"
    assert int(events[uid]["SEQUENCE"]) >= sequence[uid]
    others = [e for u, e in events.items() if u != uid]
    assert {str(e["STATUS"]) for e in others} == {"CONFIRMED"}


def test_a_revoked_or_replaced_address_answers_404(clinic: Clinic, live_server) -> None:
    patient = make_patient(clinic)
    book_course(clinic, patient)
    old = calendar_feed_issue(actor=None, patient=patient)
    new = calendar_feed_issue(actor=None, patient=patient)  # replaces the first
    assert _fetch(live_server, old).status_code == 404
    assert _fetch(live_server, new).status_code == 200
    assert _fetch(live_server, "not-a-real-token").status_code == 404
    # Only hashes are stored: the token itself is nowhere in the table.
    assert not CalendarFeed.objects.filter(token_hash=new).exists()


def test_a_providers_feed_shows_initials_only(clinic: Clinic, live_server) -> None:
    book_course(clinic, make_patient(clinic))
    token = calendar_feed_issue(actor=None, provider=clinic.ada)
    text = _fetch(live_server, token).content.decode()
    assert "Visit: C. M." in text
    assert "Cleo" not in text and "Marsh" not in text
    assert clinic.treatment.name not in text  # no treatment named


# --- The patient's messages page -----------------------------------------------------------


@pytest.fixture
def patient_client(clinic: Clinic) -> tuple[Client, object]:
    patient = make_patient(clinic)
    patient.user = get_user_model().objects.create_user("cleo", password=None)
    patient.save()
    client = Client()
    client.force_login(patient.user)
    return client, patient


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "on", "sms": "on", "phone": ""}, "phone"),
        ({"email": "on", "phone": "call me maybe"}, "phone"),
        ({"phone": "+1 210 555 0123"}, "email"),
    ],
)
def test_bad_contact_choices_are_named_beside_the_field_and_nothing_is_saved(
    patient_client, data: dict[str, str], field: str
) -> None:
    client, patient = patient_client
    response = client.post(reverse("portal:contact"), data)
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not ContactPreference.objects.filter(patient=patient).exists()
    patient.refresh_from_db()
    assert patient.phone == ""


def test_a_patient_chooses_texts_and_no_reminders(patient_client) -> None:
    client, patient = patient_client
    response = client.post(
        reverse("portal:contact"), {"email": "on", "sms": "on", "phone": "+1 210 555 0123"}
    )
    assert response.status_code == 302
    preference = ContactPreference.objects.get(patient=patient)
    assert (preference.email, preference.sms, preference.reminders) == (True, True, False)
    patient.refresh_from_db()
    assert patient.phone == "+1 210 555 0123"


def test_the_calendar_address_is_shown_once_and_works(patient_client, live_server) -> None:
    client, _ = patient_client
    client.post(reverse("portal:feed_issue"))
    page = client.get(reverse("portal:contact")).content.decode()
    url = page.split('<code id="feed-url">')[1].split("</code>")[0]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert _fetch(live_server, token).status_code == 200
    again = client.get(reverse("portal:contact")).content.decode()
    assert token not in again  # shown once
    client.post(reverse("portal:feed_revoke"))
    assert _fetch(live_server, token).status_code == 404


def test_a_patient_downloads_one_visit_and_cannot_download_anothers(
    clinic: Clinic, patient_client
) -> None:
    client, patient = patient_client
    mine = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=datetime.combine(MONDAY, datetime.min.time(), tzinfo=TZ).replace(hour=10),
    )
    response = client.get(reverse("portal:visit_calendar", args=[mine.pk]))
    assert response.status_code == 200
    [event] = Calendar.from_ical(response.content).walk("VEVENT")
    assert event.decoded("DTSTART") == mine.starts_at
    theirs = services.appointment_book(
        patient=make_patient(clinic, name="Dev Patel"),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ben,
        starts_at=mine.starts_at,
    )
    assert client.get(reverse("portal:visit_calendar", args=[theirs.pk])).status_code == 404


def test_staff_issue_and_stop_a_providers_calendar_address(clinic: Clinic, live_server) -> None:
    staff = Client()
    staff.force_login(make_staff("ida.front"))
    listing = staff.get(reverse("desk:provider_calendars")).content.decode()
    assert clinic.ada.display_name in listing
    issued = staff.post(
        reverse("desk:provider_calendar", args=[clinic.ada.pk]), {"action": "issue"}
    )
    url = issued.content.decode().split('<code id="feed-url">')[1].split("</code>")[0]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert _fetch(live_server, token).status_code == 200
    staff.post(reverse("desk:provider_calendar", args=[clinic.ada.pk]), {"action": "revoke"})
    assert _fetch(live_server, token).status_code == 404


def test_a_provider_who_has_left_has_no_working_address_and_gets_no_new_one(
    clinic: Clinic, live_server
) -> None:  # type: ignore[no-untyped-def]
    staff = Client()
    staff.force_login(make_staff("ida.front"))
    token = calendar_feed_issue(actor=None, provider=clinic.ben)
    assert _fetch(live_server, token).status_code == 200
    clinic.ben.active = False  # Ben leaves the clinic
    clinic.ben.save(update_fields=["active"])
    assert _fetch(live_server, token).status_code == 404
    # Still listed while the address is unrevoked, so the desk can stop it for good.
    listing = staff.get(reverse("desk:provider_calendars")).content.decode()
    assert clinic.ben.display_name in listing and "Stopped (left)" in listing
    staff.post(reverse("desk:provider_calendar", args=[clinic.ben.pk]), {"action": "issue"})
    assert CalendarFeed.objects.filter(provider=clinic.ben).count() == 1  # no new address
    staff.post(reverse("desk:provider_calendar", args=[clinic.ben.pk]), {"action": "revoke"})
    assert not CalendarFeed.objects.filter(provider=clinic.ben, revoked_at__isnull=True).exists()
    clinic.ben.active = True  # back again: the old address stays stopped
    clinic.ben.save(update_fields=["active"])
    assert _fetch(live_server, token).status_code == 404
