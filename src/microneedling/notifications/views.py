"""Calendar downloads: one visit as .ics for its patient, and the private feeds."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from microneedling.notifications.feeds import feed_appointments, feed_for_token
from microneedling.notifications.ical import calendar_bytes

ICS = "text/calendar; charset=utf-8"


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """A private subscription feed (the token is the credential)."""
    found = feed_for_token(token)
    if found is None:
        raise Http404
    for_patient = found.patient_id is not None
    owner = found.patient.first_name if found.patient else found.provider.display_name  # type: ignore[union-attr]
    body = calendar_bytes(
        feed_appointments(found),
        stamp=timezone.now(),
        for_patient=for_patient,
        name=f"{owner}: clinic visits",
    )
    response = HttpResponse(body, content_type=ICS)
    response["Cache-Control"] = "private, max-age=300"
    return response
