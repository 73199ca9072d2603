"""How the desk's views ask ``accounts.access``: by capability, then by patient."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from microneedling.accounts.access import (
    AccessDenied,
    Can,
    may,
    may_see_patient,
    may_use_location,
)
from microneedling.accounts.models import StaffMember

ViewFn = Callable[..., HttpResponseBase]


class PatientOutOfScope(AccessDenied):
    """A record outside the caller's locations: they may ask for break-glass access."""

    def __init__(self, patient_id: int) -> None:
        super().__init__("this patient is not one of your locations'")
        self.patient_id = patient_id


def requires(*capabilities: Can) -> Callable[[ViewFn], ViewFn]:
    """Signed in, with every one of ``capabilities``; others get a plain refusal (never a
    patient's data). Object checks inside the view raise ``AccessDenied`` the same way."""

    def decorate(view: ViewFn) -> ViewFn:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not all(may(request.user, c) for c in capabilities):
                return render(request, "desk/forbidden.html", status=403)
            try:
                return view(request, *args, **kwargs)
            except PatientOutOfScope as refused:
                context = {
                    "patient_id": refused.patient_id,
                    "break_glass": may(request.user, Can.BREAK_GLASS),
                    "next": request.get_full_path(),
                }
                return render(request, "desk/forbidden.html", context, status=403)
            except AccessDenied:
                return render(request, "desk/forbidden.html", status=403)

        return wrapper

    return decorate


#: Any member of staff who works with patients.
staff_required = requires(Can.DESK)


def check_patient(request: HttpRequest, patient_id: int, *, clinical: bool = False) -> None:
    """Refuse unless the caller may open this patient's record (clinical part if asked)."""
    if not may_see_patient(request.user, patient_id):
        raise PatientOutOfScope(patient_id)
    # The scope is checked just above: what is left is whether the role reads clinical notes
    # (asking may_read_clinical would run the same scope query again).
    if clinical and not may(request.user, Can.CLINICAL_READ):
        raise AccessDenied("clinical notes")


def check_location(request: HttpRequest, location_id: int) -> None:
    """Refuse unless the caller works at (or runs) the location: seeing a patient, who may
    have visits at several of the chain's locations, does not make each of their diaries
    one's own to check in, mark or move (as ``scheduling.services.staff_location_check``
    keeps staff to their own locations' bookings)."""
    if not may_use_location(request.user, location_id):
        raise AccessDenied("another location's visits")


def charts_here(user: Any, *, location_id: int, provider_id: int, works_there: bool) -> bool:
    """Whether ``user`` may record clinical notes (chart, photo, score) on a visit: if they
    work at its location (``works_there``, asked of ``may_use_location`` already) or are the
    visit's own provider, who may have moved on since. Reading a patient's record is
    chain-wide within scope; recording another location's procedure is not."""
    if works_there:
        return True
    member = StaffMember.objects.filter(user_id=user.pk).first()
    return (
        member is not None
        and member.provider_id is not None
        and (member.provider_id == provider_id)
    )
