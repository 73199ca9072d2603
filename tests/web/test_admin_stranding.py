"""The admin site cannot strand booked visits: a location is closed, and a closure recorded,
through re-homing (which moves the visits and tells the patients), not by a form's field; a
provider with visits still to come is not switched off with a tick-box."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from microneedling.directory.models import Location, LocationClosure, Provider
from tests.web.conftest import (
    MONDAY,
    Clinic,
    book_visit,
    client_of,
    local,
    make_patient,
    make_superuser,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


class _Form(HTMLParser):
    """The values a browser would send back from the admin's change form, as it shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        name = found.get("name")
        if tag == "input" and name and found.get("type") not in ("submit", "button", "file"):
            if found.get("type") in ("checkbox", "radio"):
                if "checked" in found:
                    self.values[name] = found.get("value") or "on"
            else:
                self.values[name] = found.get("value", "")
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in found:
            self.values[self._select] = found.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def _as_shown(client: Client, url: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(client.get(url).content.decode())
    return parser.values


def test_a_location_is_not_closed_from_its_admin_form(clinic: Clinic) -> None:
    book_visit(clinic, make_patient(clinic), local(MONDAY, 10))
    root = client_of(make_superuser("root"))
    url = reverse("admin:directory_location_change", args=[clinic.location.pk])
    form = _as_shown(root, url)
    # A closure typed into the closures table: not offered.
    assert form.get("closures-TOTAL_FORMS") in (None, "0")
    sent = {**form, "status": "closed", "closes_on": MONDAY.isoformat()}
    sent.update(
        {
            "closures-TOTAL_FORMS": "1",
            "closures-INITIAL_FORMS": "0",
            "closures-0-starts_on": MONDAY.isoformat(),
            "closures-0-ends_on": MONDAY.isoformat(),
            "closures-0-reason": "flood",
        }
    )
    refused = root.post(url, sent)
    assert refused.status_code == 200
    assert "close a location through re-homing" in refused.content.decode()
    location = Location.objects.get(pk=clinic.location.pk)
    assert location.status == Location.Status.OPEN and location.closes_on is None
    assert not LocationClosure.objects.exists()


def test_a_planned_closure_is_called_off_in_the_admin_and_audited(clinic: Clinic) -> None:
    from microneedling.audit.models import AuditEvent  # noqa: PLC0415
    from microneedling.scheduling.rehoming import location_close  # noqa: PLC0415

    location_close(location=clinic.location, from_date=date(2027, 6, 1), actor=None, apply=True)
    clinic.location.refresh_from_db()
    assert clinic.location.status == Location.Status.CLOSING
    root = client_of(make_superuser("root"))
    url = reverse("admin:directory_location_change", args=[clinic.location.pk])
    form = _as_shown(root, url)
    # Moving the closing day is a closure of its own: re-homing's, not a form's.
    later = root.post(url, {**form, "closes_on": "2027-07-01"})
    assert later.status_code == 200
    assert root.post(url, {**form, "status": "open", "closes_on": ""}).status_code == 302
    clinic.location.refresh_from_db()
    assert clinic.location.status == Location.Status.OPEN and clinic.location.closes_on is None
    [event] = AuditEvent.objects.filter(action="location_reopen")
    assert event.details == {"status_was": "closing", "closes_on_was": "2027-06-01"}


def test_a_provider_with_visits_to_come_is_not_switched_off_in_the_admin(clinic: Clinic) -> None:
    visit = book_visit(clinic, make_patient(clinic), local(MONDAY, 10))
    root = client_of(make_superuser("root"))
    url = reverse("admin:directory_provider_change", args=[visit.provider_id])
    form = _as_shown(root, url)
    assert form.get("active") == "on"
    sent = {k: v for k, v in form.items() if k != "active"}  # the box unticked
    refused = root.post(url, sent)
    assert refused.status_code == 200
    assert "move them first" in refused.content.decode()
    assert Provider.objects.get(pk=visit.provider_id).active
    # Once the visit has gone elsewhere (here: cancelled), the box may be unticked.
    visit.status = "cancelled"
    visit.save(update_fields=["status"])
    assert root.post(url, sent).status_code == 302
    assert not Provider.objects.get(pk=visit.provider_id).active


def _hours_row(form: dict[str, str], weekday: int) -> str:
    """The form prefix of the hours row for ``weekday`` ("hours-0", say)."""
    for name, value in form.items():
        if name.startswith("hours-") and name.endswith("-weekday") and value == str(weekday):
            return name.removesuffix("-weekday")
    raise AssertionError(f"no hours row for weekday {weekday}")


def test_new_opening_hours_may_not_leave_a_booked_visit_outside_them(clinic: Clinic) -> None:
    book_visit(clinic, make_patient(clinic), local(MONDAY, 10))  # Monday 10:00, open 8–18
    root = client_of(make_superuser("root"))
    url = reverse("admin:directory_location_change", args=[clinic.location.pk])
    form = _as_shown(root, url)
    monday = _hours_row(form, MONDAY.weekday())
    refused = root.post(url, {**form, f"{monday}-opens": "12:00"})
    assert refused.status_code == 200
    assert "1 visit(s) still to come would fall outside these hours" in refused.content.decode()
    assert clinic.location.hours.get(weekday=MONDAY.weekday()).opens.hour == 8
    # Deleting Monday's hours strands it just the same.
    deleted = root.post(url, {**form, f"{monday}-DELETE": "on"})
    assert deleted.status_code == 200
    assert clinic.location.hours.filter(weekday=MONDAY.weekday()).exists()
    # Hours that still hold the visit are saved.
    assert root.post(url, {**form, f"{monday}-closes": "17:00"}).status_code == 302
    assert clinic.location.hours.get(weekday=MONDAY.weekday()).closes.hour == 17


def test_a_providers_hours_or_leave_may_not_leave_a_booked_visit_outside_them(
    clinic: Clinic,
) -> None:
    visit = book_visit(clinic, make_patient(clinic), local(MONDAY, 10))
    root = client_of(make_superuser("root"))
    url = reverse("admin:directory_provider_change", args=[visit.provider_id])
    form = _as_shown(root, url)
    rows = [
        name.removesuffix("-weekday")
        for name, value in form.items()
        if name.startswith("schedules-")
        and name.endswith("-weekday")
        and value == str(MONDAY.weekday())
    ]
    assert rows, "the provider has Monday hours"
    # Ending the hours the day before the visit strands it.
    ended = {**form, **{f"{row}-valid_until": "2027-03-07" for row in rows}}
    refused = root.post(url, ended)
    assert refused.status_code == 200
    assert "1 visit(s) still to come" in refused.content.decode()
    # Leave over the visit's day strands it as well.
    away = {
        **form,
        "leave-TOTAL_FORMS": str(int(form["leave-TOTAL_FORMS"]) + 1),
        f"leave-{form['leave-TOTAL_FORMS']}-starts_at_0": MONDAY.isoformat(),
        f"leave-{form['leave-TOTAL_FORMS']}-starts_at_1": "00:00",
        f"leave-{form['leave-TOTAL_FORMS']}-ends_at_0": MONDAY.isoformat(),
        f"leave-{form['leave-TOTAL_FORMS']}-ends_at_1": "23:59",
        f"leave-{form['leave-TOTAL_FORMS']}-reason": "course",
    }
    assert root.post(url, away).status_code == 200
    provider = Provider.objects.get(pk=visit.provider_id)
    assert not provider.leave.exists()
    assert not provider.schedules.filter(valid_until__isnull=False).exists()
    # Ending them after the visit is fine.
    later = {**form, **{f"{row}-valid_until": "2027-03-09" for row in rows}}
    assert root.post(url, later).status_code == 302
    assert provider.schedules.filter(valid_until__isnull=False).exists()


def test_a_clinic_admin_saves_a_shared_providers_page_with_the_hours_they_cannot_see(
    clinic: Clinic,
) -> None:
    from datetime import datetime, time  # noqa: PLC0415

    from microneedling.directory.models import ProviderSchedule  # noqa: PLC0415
    from microneedling.scheduling.services import appointment_book  # noqa: PLC0415
    from tests.web.conftest import TZ, build_clinic, make_staff  # noqa: PLC0415

    other = build_clinic(name="Stoneridge")
    ProviderSchedule.objects.filter(provider=clinic.ada, weekday=4).update(location=other.location)
    appointment_book(
        patient=make_patient(clinic),
        service=other.treatment,
        location=other.location,
        provider=clinic.ada,
        starts_at=datetime.combine(date(2027, 3, 12), time(10), TZ),
    )
    admin = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    url = reverse("admin:directory_provider_change", args=[clinic.ada.pk])
    form = _as_shown(admin, url)
    assert form["schedules-TOTAL_FORMS"] == "4"  # Friday at Stoneridge is not theirs to see
    saved = admin.post(url, {**form, "display_name": "Dr. Ada Quill-Ortiz"})
    assert saved.status_code == 302
    assert ProviderSchedule.objects.filter(provider=clinic.ada, location=other.location).exists()
