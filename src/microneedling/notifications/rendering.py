"""Turning an outbox row into the words that go out, from the records as they stand when it
is sent. Email may name the treatment; a text message carries only the date, time and
place, because a phone's lock screen is not private."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from microneedling.notifications.channels import Rendered
from microneedling.notifications.ical import calendar_bytes
from microneedling.notifications.kinds import KINDS
from microneedling.notifications.models import Message
from microneedling.scheduling.models import Appointment

#: Kinds whose email carries the visit (or the course) as a calendar attachment.
WITH_CALENDAR = {"course_booked", "visit_booked", "visit_moved", "visit_cancelled"}


#: Kinds whose email quotes the knowledge pack's care advice for the visit.
WITH_CARE = {"reminder", "pre_care", "aftercare_check"}


def _care(appointment: Appointment, day: int | None) -> dict[str, Any]:
    from microneedling.aftercare.selectors import care_plan  # noqa: PLC0415 (app cycle)

    plan = care_plan(appointment)
    healing = ""
    if day is not None:
        on = plan.session_day + timedelta(days=day)
        healing = next((text for start, end, text in plan.recovery if start <= on <= end), "")
    return {
        "before": [text for _, text in plan.before],
        "day_of": list(plan.day_of),
        "after": [line.text for line in plan.after],
        "healing": healing,
    }


def _link(name: str, *args: object) -> str:
    return str(settings.MICRONEEDLING["PUBLIC_URL"]).rstrip("/") + reverse(name, args=args)


def _visit(appointment: Appointment) -> dict[str, Any]:
    zone = ZoneInfo(appointment.location.timezone)
    local = appointment.starts_at.astimezone(zone)
    return {
        "when": local.strftime("%A %-d %B %Y at %H:%M"),
        "short_when": local.strftime("%a %-d %b %H:%M"),
        "location": appointment.location,
        "service": appointment.service.name,
        "care_link": _link("portal:visit_care", appointment.pk),
        "skin_link": _link("portal:skin_report", appointment.pk),
    }


def _visits(message: Message) -> list[Appointment]:
    ids = message.context.get("appointments")
    if ids:
        # Those still standing: one cancelled or entered in error since the message was
        # queued is neither listed nor put in the patient's calendar.
        return list(
            Appointment.objects.filter(pk__in=ids, status__in=Appointment.HOLDING)
            .select_related("location", "service", "patient")
            .order_by("starts_at")
        )
    return [message.appointment] if message.appointment else []


def message_render(message: Message) -> Rendered:
    """Subject, body and attachments of ``message`` for its channel."""
    spec = KINDS[message.kind]
    visits = _visits(message)
    patient = message.patient
    context = {
        **message.context,
        "first_name": patient.first_name,
        "clinic": patient.organization.name,
        "visit": _visit(visits[0]) if visits else None,
        "visits": [_visit(v) for v in visits],
        "home_link": _link("portal:home"),
    }
    if visits and message.channel == Message.Channel.EMAIL and message.kind in WITH_CARE:
        context["plan"] = _care(visits[0], message.context.get("day"))
    template = f"notifications/{message.channel}/{message.kind}.txt"
    body = render_to_string(template, context).strip() + "\n"
    rendered = Rendered(subject=f"{spec.subject} · {context['clinic']}", body=body)
    if message.channel == Message.Channel.EMAIL and message.kind in WITH_CALENDAR and visits:
        method = "CANCEL" if message.kind == "visit_cancelled" else "PUBLISH"
        rendered.attachments.append(
            (
                "visit.ics",
                calendar_bytes(visits, stamp=timezone.now(), method=method),
                "text/calendar",
            )
        )
    return rendered
