"""Public pages: thin views over the treatment content and the directory selectors."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from microneedling.core.errors import InputError
from microneedling.directory import selectors
from microneedling.directory.models import Location
from microneedling.web.forms import LocationSearchForm
from microneedling.web.treatment import treatment_page

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: How far the location search reaches.
SEARCH_RADIUS_KM = 80.0


def home(request: HttpRequest) -> HttpResponse:
    """The front page: what the treatment is and where to start."""
    page = treatment_page()
    return render(request, "web/home.html", {"page": page})


def treatment(request: HttpRequest) -> HttpResponse:
    """Everything about the treatment, from the knowledge pack."""
    return render(request, "web/treatment.html", {"page": treatment_page()})


def locations(request: HttpRequest) -> HttpResponse:
    """Find a location by ZIP code or city, nearest first."""
    form = LocationSearchForm(request.GET or None)
    results: list[tuple[Location, float]] = []
    place = None
    if form.is_valid():
        query = form.cleaned_data["q"]
        try:
            place = (
                selectors.place_from_zip(query)
                if selectors.looks_like_zip(query)
                else selectors.place_from_city(query)
            )
        except InputError as error:
            form.add_error("q", error.problem)
        else:
            results = selectors.locations_near(
                place, within_km=SEARCH_RADIUS_KM, include_closed=True
            )
    return render(
        request,
        "web/locations.html",
        {"form": form, "results": results, "place": place, "radius": int(SEARCH_RADIUS_KM)},
    )


def location_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A location: address, opening hours, who works there, and where patients go if it
    closes."""
    location = get_object_or_404(selectors.locations_with_hours(), slug=slug)
    today = timezone.localdate()
    hours = [(WEEKDAYS[h.weekday], h.opens, h.closes) for h in location.hours.all()]
    return render(
        request,
        "web/location.html",
        {
            "location": location,
            "hours": hours,
            "providers": selectors.providers_at(location, on=today),
            "closed": location.status == Location.Status.CLOSED,
            "closing": location.status == Location.Status.CLOSING,
        },
    )
