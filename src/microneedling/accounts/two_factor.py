"""Two-factor sign-in for staff: a TOTP code from an authenticator app after the password.

Staff (every role but patients) must add a second factor before any page opens; the first
time, they set up an authenticator from a QR code. Patients may choose to add one too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.accounts.access import STAFF_ROLES, Role, role_of
from microneedling.audit.services import audit_record
from microneedling.web.security import rate_limit

#: Paths an unverified member of staff may still reach: the code pages, signing out, static
#: files, and the token-authenticated APIs (no session there).
OPEN_PREFIXES = ("/my/two-factor/", "/my/sign-out/", "/static/", "/api/", "/fhir/", "/calendar/")


def needs_second_factor(user: object) -> bool:
    """Whether ``user`` must give a TOTP code before pages open: staff always (unless the
    deployment turned it off), and patients who chose to set up an authenticator."""
    if settings.MICRONEEDLING["STAFF_TWO_FACTOR"] and role_of(user) in STAFF_ROLES | {
        Role.SUPERUSER
    }:
        return True
    devices = TOTPDevice.objects.filter(user_id=getattr(user, "pk", None), confirmed=True)
    return bool(devices.exists())


class StaffTwoFactorMiddleware:
    """Sends signed-in staff without a verified code this session to the code page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(OPEN_PREFIXES)
            and not user.is_verified()  # type: ignore[union-attr,attr-defined,unused-ignore]
            and needs_second_factor(user)
        ):
            return redirect(f"{reverse('portal:two_factor')}?next={quote(request.get_full_path())}")
        return self.get_response(request)


class CodeForm(forms.Form):
    """The six digits the authenticator app shows."""

    code = forms.RegexField(
        label="Code from your authenticator app",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the six digits the app shows."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("desk:home")


@rate_limit("sign_in")
@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Ask for the code; without a confirmed device, set one up first."""
    device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if device is None:
        return redirect(f"{reverse('portal:two_factor_setup')}?next={quote(_next(request))}")
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            django_otp.login(request, device)
            return redirect(_next(request))
        form.add_error("code", "That code is not right (or has expired): try the next one.")
    return render(request, "portal/two_factor.html", {"form": form, "next": _next(request)})


def _unconfirmed_device(user: Any) -> TOTPDevice:
    """The one authenticator ``user`` is setting up: made on first sight, the same one on every
    load after. Two pages loaded at once (or one added in the admin) could leave two, which
    would make the page fail for good; the user row's lock orders the loads, the oldest is
    kept and the rest, never confirmed, are removed."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        waiting = list(TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk"))
        if not waiting:
            return TOTPDevice.objects.create(user=user, confirmed=False, name="Authenticator app")
        TOTPDevice.objects.filter(pk__in=[d.pk for d in waiting[1:]]).delete()
        return waiting[0]


@rate_limit("sign_in")
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show a new authenticator's QR code and secret; a correct first code confirms it."""
    if TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
        # Replacing a device is an admin's job: a stolen session must not swap it.
        return redirect(f"{reverse('portal:two_factor')}?next={quote(_next(request))}")
    device = _unconfirmed_device(request.user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_record(
                actor=request.user,
                action="two_factor_enrolled",
                object_type="user",
                object_id=request.user.pk,
            )
            django_otp.login(request, device)
            return redirect(_next(request))
        form.add_error("code", "That code is not right: check the app and the phone's clock.")
    qr = segno.make(device.config_url, error="m").svg_inline(scale=5, title="Authenticator QR")
    return render(
        request,
        "portal/two_factor_setup.html",
        {
            "form": form,
            "qr": qr,
            "secret": _b32(device.bin_key),
            "next": _next(request),
        },
    )


def _b32(key: bytes) -> str:
    import base64  # noqa: PLC0415

    text = base64.b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
