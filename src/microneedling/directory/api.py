"""Public directory endpoints: find a location or a provider, list services."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from pydantic import WithJsonSchema

from microneedling.api_types import ClinicDate
from microneedling.core.errors import InputError
from microneedling.directory import selectors
from microneedling.directory.models import Location, Provider, Service

router = Router(tags=["directory"])
MAX_RADIUS_KM = 5000


#: A wall-clock time at the location, in its own zone (so without an offset: RFC 3339's
#: "time" format demands one, which an opening hour does not have).
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$",
            "description": "local time at the location (its timezone field), HH:MM[:SS]",
        }
    ),
]


class HoursOut(Schema):
    weekday: int
    opens: LocalTime
    closes: LocalTime


class LocationRef(Schema):
    id: int
    name: str


class LocationOut(Schema):
    id: int
    name: str
    address: str
    city: str
    region: str
    zip_code: str
    latitude: float
    longitude: float
    timezone: str
    phone: str
    status: str
    closes_on: date | None
    successor: LocationRef | None
    hours: list[HoursOut]
    distance_km: float | None = None


class ProviderOut(Schema):
    id: int
    display_name: str
    role: str
    qualifications: list[str]


class PhaseOut(Schema):
    code: str
    minutes: int
    needs: list[str]


class ServiceOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    areas: list[str]
    phases: list[PhaseOut]
    total_minutes: int


def _location_out(location: Location, distance: float | None = None) -> LocationOut:
    return LocationOut(
        id=location.pk,
        name=location.name,
        address=location.address,
        city=location.city,
        region=location.region,
        zip_code=location.zip_code,
        latitude=location.latitude,
        longitude=location.longitude,
        timezone=location.timezone,
        phone=location.phone,
        status=location.status,
        closes_on=location.closes_on,
        successor=(
            LocationRef(id=location.successor.pk, name=location.successor.name)
            if location.successor
            else None
        ),
        hours=[
            HoursOut(weekday=h.weekday, opens=h.opens, closes=h.closes)
            for h in location.hours.all()
        ],
        distance_km=None if distance is None else round(distance, 1),
    )


@router.get("/locations", response=list[LocationOut])
def list_locations(
    request: HttpRequest,
    zip: str | None = None,
    city: str | None = None,
    region: str | None = None,
    within_km: float = Query(80.0, gt=0, le=MAX_RADIUS_KM),  # type: ignore[type-arg]
    include_closed: bool = False,
) -> list[LocationOut]:
    """Locations, nearest first when a ZIP code or city is given."""
    if not 0 < within_km <= MAX_RADIUS_KM:
        raise InputError("within_km", f"must be more than 0 and at most {MAX_RADIUS_KM}")
    if zip and city:
        raise InputError("zip", "give a ZIP code or a city, not both")
    if zip or city:
        place = (
            selectors.place_from_zip(zip) if zip else selectors.place_from_city(city or "", region)
        )
        return [
            _location_out(loc, km)
            for loc, km in selectors.locations_near(
                place, within_km=within_km, include_closed=include_closed
            )
        ]
    return [
        _location_out(loc)
        for loc in selectors.locations_with_hours().order_by("name")
        if include_closed or loc.status != Location.Status.CLOSED
    ]


@router.get("/locations/{location_id}", response=LocationOut)
def get_location(request: HttpRequest, location_id: int) -> LocationOut:
    """One location with its hours and, if it closes, where its patients go."""
    return _location_out(get_object_or_404(selectors.locations_with_hours(), pk=location_id))


@router.get("/providers", response=list[ProviderOut])
def list_providers(
    request: HttpRequest, location_id: int | None = None, on: ClinicDate | None = None
) -> list[Provider]:
    """Active providers, optionally only those working at a location (on a day)."""
    if location_id is None:
        return list(Provider.objects.filter(active=True).order_by("display_name"))
    return list(selectors.providers_at(get_object_or_404(Location, pk=location_id), on=on))


@router.get("/services", response=list[ServiceOut])
def list_services(request: HttpRequest, location_id: int) -> list[ServiceOut]:
    """Services bookable at a location, with their phases."""
    location = get_object_or_404(Location, pk=location_id)
    result = []
    for service in selectors.services_of(location):
        phases = [
            PhaseOut(code=p.code, minutes=p.minutes, needs=list(p.needs))
            for p in service.phases.all()
        ]
        result.append(
            ServiceOut(
                id=service.pk,
                code=service.code,
                name=service.name,
                kind=service.kind,
                areas=service.areas,
                phases=phases,
                total_minutes=sum(p.minutes for p in phases),
            )
        )
    return result


def service_of(location: Location, service_id: int) -> Service:
    """A service of the location's organisation, or 404."""
    return get_object_or_404(
        Service, pk=service_id, organization_id=location.organization_id, active=True
    )
