"""The auditor's search page over the audit trail (read-only)."""

from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from microneedling.accounts.access import Can
from microneedling.audit.selectors import AuditQuery, audit_search
from microneedling.audit.services import audit_record
from microneedling.core.ids import is_record_id
from microneedling.desk.access import requires


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@requires(Can.AUDIT)
def search(request: HttpRequest) -> HttpResponse:
    """Search by patient, member of staff, action, address and dates; 50 events a page.

    Only the events of the user's own organisation are searched (superusers: all), so another
    organisation's patient answers like one without events. Searching is itself recorded:
    who looked into whose trail is part of the trail."""
    data = request.GET
    patient = data.get("patient", "").strip()
    query = AuditQuery(
        patient_id=int(patient) if is_record_id(patient) else None,
        actor=data.get("actor", "").strip(),
        action=data.get("action", "").strip(),
        ip=data.get("ip", "").strip(),
        since=_day(data.get("since", "")),
        until=_day(data.get("until", "")),
    )
    problems = [
        f"{name} must be a date like 2027-03-08"
        for name in ("since", "until")
        if data.get(name) and _day(data[name]) is None
    ]
    if patient and not is_record_id(patient):
        problems.append("patient must be a record number")
    page = Paginator(audit_search(query, user=request.user), 50).get_page(data.get("page"))
    audit_record(
        actor=request.user,
        action="audit_search",
        object_type="audit",
        object_id="search",
        details={k: v for k, v in data.items() if k != "page" and v},
    )
    return render(request, "audit/search.html", {"page": page, "query": data, "problems": problems})
