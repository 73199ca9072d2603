"""The patient's own record: who has opened it, and downloads of all of it."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.accounts.models import StaffMember
from microneedling.audit.selectors import patient_access_log
from microneedling.interop.fhir.views import Caller, everything_bundle
from microneedling.patients.closure import patient_account_close
from microneedling.patients.models import Patient
from microneedling.portal.record_pdf import record_pdf
from microneedling.portal.views import patient_required

ROLE_NAMES = {**dict(StaffMember.Role.choices), "superuser": "Administrator"}


@patient_required
def access_log(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Every time a member of the clinic opened or changed this record, newest first."""
    page = Paginator(patient_access_log(patient.pk), 50).get_page(request.GET.get("page"))
    rows = [
        {
            "at": event.at,
            "who": (event.actor.get_full_name() or event.actor.username) if event.actor else "",
            "role": ROLE_NAMES.get(event.role, event.role),
            "what": event.action.replace("_", " "),
            "why": event.reason,
        }
        for event in page
    ]
    return render(request, "portal/access_log.html", {"page": page, "rows": rows})


@patient_required
def record_pdf_download(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The whole record as a PDF (no photos), as an attachment."""
    response = HttpResponse(record_pdf(patient, now=timezone.now()), content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="my-record.pdf"'
    response["Cache-Control"] = "no-store"
    return response


@patient_required
def record_fhir_download(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The whole record as FHIR R4 (``Patient/$everything``), as an attachment."""
    caller = Caller(request.user, patient.pk, staff=False)
    body = everything_bundle(request, caller, patient)
    response = HttpResponse(json.dumps(body, indent=1), content_type="application/fhir+json")
    response["Content-Disposition"] = 'attachment; filename="my-record.fhir.json"'
    response["Cache-Control"] = "no-store"
    return response


class CloseAccountForm(forms.Form):
    """Closing is confirmed with the password, so a borrowed session cannot do it."""

    password = forms.CharField(label="Your password", widget=forms.PasswordInput)
    understood = forms.BooleanField(
        label="I understand my visits will be cancelled and I will not be able to sign in again"
    )


@patient_required
@require_http_methods(["GET", "POST"])
def close_account(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Close the account: what goes now, what the law keeps and until when."""
    form = CloseAccountForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if not request.user.check_password(form.cleaned_data["password"]):
            form.add_error("password", "That is not your password.")
        else:
            patient_account_close(patient=patient, actor=request.user, now=timezone.now())
            logout(request)
            messages.success(request, "Your account is closed. Thank you for visiting us.")
            return redirect("web:home")
    rules = settings.MICRONEEDLING["RETENTION"]
    return render(request, "portal/close_account.html", {"form": form, "rules": rules})
