"""Reads of the directory: locations near a place, providers, services."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import zipcodes
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from microneedling.core.errors import InputError
from microneedling.core.geo import distance_km
from microneedling.directory.models import (
    Location,
    OpeningHours,
    Provider,
    ProviderLeave,
    ProviderSchedule,
    Service,
    visits_to_come,
)


@dataclass(frozen=True)
class Place:
    """A point a patient searches from."""

    latitude: float
    longitude: float
    label: str


def place_from_zip(zip_code: str) -> Place:
    """Coordinates of a US ZIP code (offline table), or InputError naming ``zip``."""
    code = zip_code.strip()[:5]
    if not looks_like_zip(code):
        raise InputError("zip", f"{zip_code!r} is not a 5-digit ZIP code")
    matches = zipcodes.matching(code)  # type: ignore[no-untyped-call]
    if not matches:
        raise InputError("zip", f"unknown ZIP code {code}")
    found = matches[0]
    return Place(
        float(found["lat"]), float(found["long"]), f"{found['city']}, {found['state']} {code}"
    )


def looks_like_zip(text: str) -> bool:
    """Whether ``text`` starts with five ASCII digits, as a ZIP code does. (``str.isdigit``
    alone takes "²" or Arabic-Indic digits, which the ZIP table's native code cannot slice.)"""
    head = text[:5]
    return len(head) == 5 and head.isascii() and head.isdigit()


@cache
def _zips_by_city() -> dict[str, list[dict[str, Any]]]:
    # The table once, keyed without case: people type "san antonio" as often as not.
    index: dict[str, list[dict[str, Any]]] = {}
    for entry in zipcodes.list_all():  # type: ignore[no-untyped-call]
        if entry.get("lat"):
            index.setdefault(entry["city"].casefold(), []).append(entry)
    return index


def place_from_city(city: str, region: str | None = None) -> Place:
    """The centre of a city's ZIP codes (its name in any case), or InputError naming
    ``city``."""
    state = region.strip().upper() if region else None
    matches = [
        z
        for z in _zips_by_city().get(city.strip().casefold(), [])
        if state is None or z["state"] == state
    ]
    if not matches:
        raise InputError("city", f"no such city {city!r}")
    lat = sum(float(z["lat"]) for z in matches) / len(matches)
    lon = sum(float(z["long"]) for z in matches) / len(matches)
    return Place(lat, lon, f"{matches[0]['city']}, {matches[0]['state']}")


def locations_with_hours() -> QuerySet[Location]:
    """Locations with their hours and successor loaded (two queries however many)."""
    return Location.objects.select_related("successor", "organization").prefetch_related(
        Prefetch("hours", queryset=OpeningHours.objects.order_by("weekday", "opens"))
    )


def locations_near(
    place: Place, *, within_km: float, include_closed: bool = False
) -> list[tuple[Location, float]]:
    """Locations within ``within_km`` of a place, nearest first, with their distance."""
    found = []
    for location in locations_with_hours():
        if location.status == Location.Status.CLOSED and not include_closed:
            continue
        km = distance_km(place.latitude, place.longitude, location.latitude, location.longitude)
        if km <= within_km:
            found.append((location, km))
    found.sort(key=lambda pair: pair[1])
    return found


def schedules_in_force(on: date | None = None) -> QuerySet[ProviderSchedule]:
    """Providers' weekly hours that have not ended by ``on`` (those still to begin count:
    a provider starting next month already works there, for booking ahead).

    Without ``on``: the earliest date it is anywhere now. The server's clock is UTC, and an
    hours' last day is the location's: in the evening of that day in the Americas, the UTC
    date is already the next one, and the provider would lose their place hours early."""
    if on is None:
        on = (timezone.now() - timedelta(hours=12)).date()  # UTC-12, the last to turn over
    return ProviderSchedule.objects.exclude(valid_until__lt=on)


def providers_at(location: Location, *, on: date | None = None) -> QuerySet[Provider]:
    """Active providers with a schedule at the location (valid on ``on`` when given)."""
    schedules = ProviderSchedule.objects.filter(location=location)
    if on is not None:
        schedules = schedules.filter(valid_from__lte=on).exclude(valid_until__lt=on)
    return Provider.objects.filter(active=True, pk__in=schedules.values("provider_id")).order_by(
        "display_name"
    )


def services_of(location: Location) -> QuerySet[Service]:
    """Active services of the location's organisation, with their phases."""
    return (
        Service.objects.filter(organization_id=location.organization_id, active=True)
        .prefetch_related("phases")
        .order_by("kind", "name")
    )


def treatment_service_for(location: Location, areas: list[str]) -> Service | None:
    """The organisation's microneedling service that covers every chosen area (an area is
    covered by itself or by an area it lies in, such as the cheeks by the face), the one
    covering the fewest extra areas first; None if no service covers them all."""
    from microneedling.core.knowledge import load_pack  # noqa: PLC0415 - pack loads lazily

    pack = load_pack()
    candidates = []
    for service in Service.objects.filter(
        organization_id=location.organization_id, active=True, kind="treatment"
    ).order_by("pk"):
        offered = set(service.areas)
        if all(offered & set(pack.area_lineage(area)) for area in areas):
            candidates.append((len(offered), service.pk, service))
    return min(candidates)[2] if candidates else None


Spans = dict[int, list[tuple[time, time]]]


def stranded_visits(location: Location, *, before: Spans, after: Spans) -> int:
    """How many visits still to come at ``location`` lie within its weekly hours ``before``
    (weekday: [(opens, closes)], local time) but not within ``after``. A visit the old hours
    did not hold either (a deliberate booking out of hours) is not the new hours' doing."""
    zone = ZoneInfo(location.timezone)
    visits = visits_to_come(location=location)

    def held(spans: Spans, starts: datetime, ends: datetime) -> bool:
        return starts.date() == ends.date() and any(
            opens <= starts.time() and ends.time() <= closes
            for opens, closes in spans.get(starts.weekday(), [])
        )

    count = 0
    for starts_at, ends_at in visits.values_list("starts_at", "ends_at"):
        starts, ends = starts_at.astimezone(zone), ends_at.astimezone(zone)
        if held(before, starts, ends) and not held(after, starts, ends):
            count += 1
    return count


#: A provider's hours as the admin edits them: (location id, weekday, starts, ends, valid
#: from, valid until or None), local times of the location.
Hours = tuple[int, int, time, time, date, date | None]
#: A provider's leave: (starts at, ends at), aware.
Leave = tuple[datetime, datetime]


def hours_of(rows: Iterable[ProviderSchedule]) -> list[Hours]:
    """Stored hours as ``provider_stranded_visits`` compares them."""
    return [(s.location_id, s.weekday, s.starts, s.ends, s.valid_from, s.valid_until) for s in rows]


def leave_of(rows: Iterable[ProviderLeave]) -> list[Leave]:
    """Stored leave as ``provider_stranded_visits`` compares it."""
    return [(away.starts_at, away.ends_at) for away in rows]


def provider_stranded_visits(
    provider: Provider,
    *,
    hours: tuple[list[Hours], list[Hours]] | None = None,
    leave: tuple[list[Leave], list[Leave]] | None = None,
) -> int:
    """How many of ``provider``'s visits still to come their hours and leave hold now but
    would not after an edit: ``hours`` and ``leave`` give (before, after) when they change;
    what is not given stays as stored."""
    if hours is None:
        stored_hours = hours_of(ProviderSchedule.objects.filter(provider=provider))
        hours = (stored_hours, stored_hours)
    if leave is None:
        stored_leave = leave_of(ProviderLeave.objects.filter(provider=provider))
        leave = (stored_leave, stored_leave)
    visits = visits_to_come(provider=provider).values_list(
        "location_id", "location__timezone", "starts_at", "ends_at"
    )

    def held(spans: list[Hours], away: list[Leave], place: int, zone: str, at: Leave) -> bool:
        starts, ends = (moment.astimezone(ZoneInfo(zone)) for moment in at)
        day = starts.date()
        worked = ends.date() == day and any(
            location == place
            and weekday == day.weekday()
            and begins <= starts.time()
            and ends.time() <= finishes
            and valid_from <= day
            and (valid_until is None or day <= valid_until)
            for location, weekday, begins, finishes, valid_from, valid_until in spans
        )
        return worked and not any(off < at[1] and at[0] < back for off, back in away)

    return sum(
        1
        for place, zone, starts_at, ends_at in visits
        if held(hours[0], leave[0], place, zone, (starts_at, ends_at))
        and not held(hours[1], leave[1], place, zone, (starts_at, ends_at))
    )
