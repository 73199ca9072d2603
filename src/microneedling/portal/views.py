"""The patient's pages: thin views over the patients services and the screening engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.accounts.access import Can, may
from microneedling.aftercare.selectors import visit_holds
from microneedling.charting.services import (
    consent_current_text,
    consent_is_current,
    consent_sign,
    consent_text_seal,
)
from microneedling.core.errors import InputError
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake
from microneedling.directory.models import Service
from microneedling.patients.models import Patient, Screening
from microneedling.patients.services import (
    MailNotSent,
    patient_sign_up,
    patient_sign_up_confirm,
    screening_record,
)
from microneedling.portal.forms import ConsentForm, IntakeForm, SignUpForm
from microneedling.portal.verdicts import explain
from microneedling.scheduling.models import Appointment, Course
from microneedling.web.security import rate_limit

View = Callable[..., HttpResponse]


def patient_required(view: Callable[..., HttpResponse]) -> View:
    """Signed in as a patient: the view gets the patient's own record and nobody else's."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        patient = Patient.objects.filter(user_id=request.user.pk or 0).first()
        if patient is None:
            # Staff accounts have no patient pages: a refusal, never someone else's record.
            return render(request, "portal/not_a_patient.html", status=403)
        # Times on the patient's pages read in the patient's own zone.
        with timezone.override(ZoneInfo(patient.timezone)):
            return view(request, patient, *args, **kwargs)

    return wrapper


@rate_limit("sign_up")
@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    """Start an account. The answer is the same whether or not the address has one: a new
    address gets a link to confirm it, a known one's holder is told someone tried."""
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            patient_sign_up(
                email=data["email"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                birth_date=data["birth_date"],
                location=data["location"],
                site=f"{request.scheme}://{request.get_host()}",
                confirm_link=lambda uid, token: request.build_absolute_uri(
                    reverse("portal:sign_up_confirm", args=[uid, token])
                ),
            )
        except MailNotSent:
            # The same words whichever message it was. (Django logs the 503, so an outage
            # shows in the server's log without any personal detail.)
            form.add_error(
                None,
                "We could not send you an e-mail just now. Nothing is lost: please try "
                "again in a few minutes.",
            )
            return render(request, "portal/sign_up.html", {"form": form}, status=503)
        return redirect("portal:sign_up_sent")
    return render(request, "portal/sign_up.html", {"form": form})


def sign_up_sent(request: HttpRequest) -> HttpResponse:
    """The "check your e-mail" page, the same whatever the address was."""
    return render(request, "portal/sign_up_sent.html")


@rate_limit("sign_up")
@require_http_methods(["GET", "POST"])
def sign_up_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link from the confirmation message. Opening it only shows a button (mail scanners
    open links too); pressing it opens the account, signs in and goes to the intake."""
    if request.method == "GET":
        return render(request, "portal/sign_up_confirm.html")
    patient = patient_sign_up_confirm(uidb64=uidb64, token=token)
    if patient is None or patient.user is None:
        return render(request, "portal/sign_up_confirm.html", {"invalid": True}, status=400)
    login(request, patient.user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, "Your account is ready. A few questions about your skin next.")
    return redirect("portal:intake")


class SignInView(LoginView):
    """Sign in with the e-mail address and password."""

    template_name = "portal/sign_in.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        """Where each role starts: patients their care, auditors the trail, staff the desk."""
        if may(self.request.user, Can.DESK):
            return reverse("desk:home")
        if may(self.request.user, Can.AUDIT):
            return reverse("audit:search")
        return reverse("portal:home")


class SignOutView(LogoutView):
    """Sign out (POST only, as Django requires)."""


@patient_required
def home(request: HttpRequest, patient: Patient) -> HttpResponse:
    """My care: where the patient stands and what to do next."""
    screening = patient.screenings.newest_first().first()
    verdict = explain(screening) if screening else None
    upcoming = (
        Appointment.objects.filter(
            patient=patient,
            status=Appointment.Status.BOOKED,
            starts_at__gt=timezone.now(),
            service__kind=Service.Kind.TREATMENT,
        )
        .select_related("location")
        .order_by("starts_at")
        .first()
    )
    if verdict is not None and screening is not None and upcoming is not None:
        # The answers' pauses are counted from the day asked for; the session booked may be
        # days later, and a medicine restarted by that count would be back before it.
        verdict = replace(
            verdict,
            holds=visit_holds(upcoming, Intake.model_validate(screening.intake)),
            holds_day=upcoming.starts_at.astimezone(ZoneInfo(upcoming.location.timezone)).date(),
        )
    return render(
        request,
        "portal/home.html",
        {
            "patient": patient,
            "screening": screening,
            "verdict": verdict,
            "consent_signed": consent_is_current(patient),
            "courses": Course.objects.filter(patient=patient)
            .select_related("location")
            .order_by("-created_at"),
        },
    )


@patient_required
@require_http_methods(["GET", "POST"])
def intake(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The questionnaire; a valid one is screened and kept, then its verdict explained."""
    pack = load_pack()
    initial = {"birth_date": patient.birth_date, "fitzpatrick_type": patient.fitzpatrick_type}
    form = IntakeForm(
        request.POST if request.method == "POST" else None, pack=pack, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        screening = screening_record(patient=patient, intake=form.intake)
        return redirect("portal:screening", screening_id=screening.pk)
    return render(request, "portal/intake.html", {"form": form})


@patient_required
def screening(request: HttpRequest, patient: Patient, screening_id: int) -> HttpResponse:
    """One of the patient's own screenings, explained."""
    found = Screening.objects.filter(patient=patient, pk=screening_id).first()
    if found is None:
        return render(request, "portal/not_found.html", status=404)
    return render(request, "portal/screening.html", {"screening": found, "verdict": explain(found)})


sign_in = rate_limit("sign_in")(SignInView.as_view())
sign_out = SignOutView.as_view()


@patient_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Read the current consent and sign it by typing one's full name."""
    text = consent_current_text()
    signed = consent_is_current(patient)
    form = ConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and text is not None:
        try:
            consent_sign(
                patient=patient,
                signature=form.cleaned_data["signature"],
                actor=request.user,
                shown=request.POST.get("shown", ""),  # the words this page showed
            )
        except InputError as error:
            form.add_error("signature" if error.field == "signature" else None, error.problem)
        else:
            messages.success(request, "Thank you: your consent is signed.")
            return redirect("portal:home")
    seal = consent_text_seal(text) if text is not None else ""
    return render(
        request,
        "portal/consent.html",
        {"text": text, "signed": signed, "form": form, "seal": seal},
    )
