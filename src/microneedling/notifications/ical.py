"""Visits as iCalendar (RFC 5545): attachments to confirmations and private feeds.

Events carry the location's own zone with its VTIMEZONE, so a calendar shows 10:00 as
10:00 on both sides of a daylight-saving change. A cancelled visit stays in the calendar as
a cancelled event with the same UID, so clients remove it rather than keep a stale copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from microneedling.scheduling.models import Appointment

PRODID = "-//Microneedling Clinic//Appointments//EN"
CANCELLED = {Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW}


def appointment_uid(appointment: Appointment) -> str:
    """The stable UID of a visit in every calendar it appears in."""
    return f"appointment-{appointment.pk}@microneedling.clinic"


def _event(appointment: Appointment, *, stamp: datetime, for_patient: bool) -> Event:
    zone = ZoneInfo(appointment.location.timezone)
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("dtstamp", stamp)
    event.add("dtstart", appointment.starts_at.astimezone(zone))
    event.add("dtend", appointment.ends_at.astimezone(zone))
    # A change of time or status must win over the copy a calendar already holds.
    event.add("sequence", int(appointment.updated_at.timestamp()) // 60)
    location = appointment.location
    event.add("location", f"{location.name}, {location.address}, {location.city}")
    if for_patient:
        event.add("summary", f"{appointment.service.name} at {location.name}")
    else:
        # A provider's feed may sit on a shared device: initials only, no treatment named.
        patient = appointment.patient
        event.add("summary", f"Visit: {patient.first_name[:1]}. {patient.last_name[:1]}.")
    cancelled = appointment.status in CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def calendar_bytes(
    appointments: Iterable[Appointment],
    *,
    stamp: datetime,
    for_patient: bool = True,
    method: str | None = None,
    name: str = "",
) -> bytes:
    """A VCALENDAR holding each visit, with the VTIMEZONE of every zone used."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    if method:
        calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
    for appointment in appointments:
        calendar.add_component(_event(appointment, stamp=stamp, for_patient=for_patient))
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
