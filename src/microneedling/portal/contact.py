"""The patient's messages and calendar page: channels, reminders, a private calendar
address, and one visit as a calendar file."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from microneedling.notifications.feeds import calendar_feed_issue, calendar_feed_revoke, live_feed
from microneedling.notifications.ical import calendar_bytes
from microneedling.notifications.preferences import contact_preference_of, contact_preference_set
from microneedling.patients.models import Patient
from microneedling.portal.views import patient_required
from microneedling.scheduling.selectors import patient_visit

PHONE = re.compile(r"^\+?[0-9 ()\-]{7,20}$")


class ContactForm(forms.Form):
    """How the patient wants to hear from the clinic."""

    email = forms.BooleanField(label="By email", required=False)
    sms = forms.BooleanField(label="By text message", required=False)
    phone = forms.CharField(
        label="Mobile number",
        max_length=40,
        required=False,
        help_text="For text messages, e.g. +1 210 555 0123.",
    )
    reminders = forms.BooleanField(
        label="Reminders, care check-ins and recalls",
        required=False,
        help_text="Booking confirmations, changes and safety notices are always sent.",
    )

    def clean_phone(self) -> str:
        """A phone number looks like one."""
        phone = str(self.cleaned_data.get("phone", "")).strip()
        if phone and not PHONE.match(phone):
            raise forms.ValidationError(
                "Enter a phone number with digits only, e.g. +1 210 555 0123."
            )
        return phone

    def clean(self) -> dict[str, object]:
        """Texts need a number; some route must remain."""
        data = super().clean() or {}
        if data.get("sms") and not data.get("phone"):
            self.add_error("phone", "Give a mobile number to get text messages.")
        if not data.get("email") and not data.get("sms"):
            self.add_error("email", "Choose email, text messages or both.")
        return data


@patient_required
@require_http_methods(["GET", "POST"])
def contact(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Choose channels and reminders; see and manage the private calendar address."""
    stored = contact_preference_of(patient)
    initial = {
        "email": stored.email,
        "sms": stored.sms,
        "reminders": stored.reminders,
        "phone": patient.phone,
    }
    form = ContactForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        contact_preference_set(patient=patient, actor=request.user, **form.cleaned_data)
        messages.success(request, "Saved: we will reach you the way you chose.")
        return redirect("portal:contact")
    token = request.session.pop("new_feed_token", None)
    feed_url = request.build_absolute_uri(reverse("calendar:feed", args=[token])) if token else ""
    return render(
        request,
        "portal/contact.html",
        {"form": form, "feed": live_feed(patient=patient), "feed_url": feed_url},
    )


@patient_required
@require_POST
def feed_issue(request: HttpRequest, patient: Patient) -> HttpResponse:
    """A new private calendar address (any earlier one stops working)."""
    # Shown once, on the next page, then forgotten: only its hash is kept.
    request.session["new_feed_token"] = calendar_feed_issue(actor=request.user, patient=patient)
    return redirect("portal:contact")


@patient_required
@require_POST
def feed_revoke(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Stop the private calendar address working."""
    feed = live_feed(patient=patient)
    if feed is not None:
        calendar_feed_revoke(feed=feed, actor=request.user)
        messages.success(request, "The calendar address no longer works.")
    return redirect("portal:contact")


@patient_required
def visit_calendar(request: HttpRequest, patient: Patient, appointment_id: int) -> HttpResponse:
    """One of the patient's own visits as a calendar file."""
    visit = patient_visit(patient, appointment_id)
    if visit is None:
        return render(request, "portal/not_found.html", status=404)
    body = calendar_bytes([visit], stamp=timezone.now(), method="PUBLISH")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="visit-{visit.pk}.ics"'
    return response
