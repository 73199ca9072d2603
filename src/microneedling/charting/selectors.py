"""Reads for charting: a course's scores over its sessions, and its before/after photos."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from microneedling.charting.models import ProcedureChart, SessionPhoto
from microneedling.core.knowledge import load_pack
from microneedling.scheduling.models import Appointment, Course


def course_scores(course: Course) -> list[dict[str, Any]]:
    """Each scale scored during the course with its value at each session, for a table and
    a bar chart (scores over time). Works on prefetched sessions, visits and scores (see
    ``scheduling.selectors.patient_courses``): no queries of its own then."""
    scales = {s.code: s for s in load_pack().data.scales}
    table: dict[str, dict[str, Any]] = {}
    for session in course.sessions.all():
        for visit in session.appointments.all():
            if visit.status == Appointment.Status.ENTERED_IN_ERROR:
                continue  # it never was: its scores are no part of the course's progress
            for score in visit.scores.all():
                scale = scales.get(score.scale)
                if scale is None:
                    continue
                top = (
                    max(level.value for level in scale.levels)
                    if scale.levels
                    else (scale.range[1] if scale.range else score.value) or 1
                )
                row = table.setdefault(
                    score.scale, {"name": scale.name, "measures": scale.measures, "points": []}
                )
                label = next((lv.label for lv in scale.levels if lv.value == score.value), "")
                row["points"].append(
                    {
                        "session": session.number,
                        "value": score.value,
                        "label": label,
                        "percent": round(100 * score.value / top),
                    }
                )
    return list(table.values())


def course_photos(course: Course) -> tuple[SessionPhoto | None, SessionPhoto | None]:
    """The first "before" photo of the course and the latest "after" one, to compare (none
    of a visit entered in error: it never was)."""
    photos = SessionPhoto.objects.filter(appointment__course_session__course=course).exclude(
        appointment__status=Appointment.Status.ENTERED_IN_ERROR
    )
    first = photos.filter(kind=SessionPhoto.Kind.BEFORE).order_by("taken_at").first()
    last = photos.filter(kind=SessionPhoto.Kind.AFTER).order_by("-taken_at").first()
    return first, last


#: What a draft says; a change to any of them is a different draft to sign.
_CHART_CONTENT = (
    "device_id",
    "cartridge_lot_id",
    "areas",
    "numbing_product",
    "numbing_minutes",
    "products",
    "endpoint",
    "immediate_reaction",
    "notes",
    "written_by_id",
)


def fingerprint(content: object) -> str:
    """A short fingerprint of ``content`` (anything JSON can write, dates as text): a page
    sends it back with what the user vouches for, and a change since shows as a mismatch."""
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chart_version(chart: ProcedureChart) -> str:
    """The fingerprint of what ``chart`` says: the page that shows a draft sends it back
    with "sign", so a provider signs the draft they read, not one edited since."""
    return fingerprint({name: getattr(chart, name) for name in _CHART_CONTENT})


def latest_chart(appointment: Appointment) -> ProcedureChart | None:
    """The visit's newest chart version: the one no amendment has replaced."""
    charts = list(appointment.charts.select_related("amends", "signed_by").order_by("pk"))
    replaced = {c.amends_id for c in charts if c.amends_id}
    current = [c for c in charts if c.pk not in replaced]
    return current[-1] if current else None
