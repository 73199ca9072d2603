"""The access matrix: every route of the app, asked by every role, allowed or refused.

``MATRIX`` names each route pattern (as Django's resolver spells it), how to call it with the
world's rows, and which roles may. The test walks the resolver itself, so a route added
without an entry here fails until someone decides who may use it.

Refused means 401, 403, 404 (where saying "forbidden" would reveal that a record exists) or a
redirect to the sign-in page; allowed means anything else but a server error. The admin
site's routes are generated per model, so they are checked per model (index and change list)
under one entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from microneedling.directory.models import Location, Organization
from microneedling.interop.export import export_folder
from microneedling.interop.models import ExportJob
from microneedling.notifications.feeds import calendar_feed_issue
from microneedling.notifications.models import Message
from microneedling.scheduling.models import RehomingRun
from tests.web.access_world import MONDAY, ROLES, World, build_world
from tests.web.conftest import TZ, Clinic, build_clinic

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

AFTER_FIRST_VISIT = datetime.combine(MONDAY + timedelta(days=2), time(12), tzinfo=TZ)
EVERYONE = frozenset(ROLES)
PATIENT = frozenset({"patient"})
SIGNED_IN = EVERYONE - {"anonymous"}
DESK = frozenset({"front_desk", "provider", "clinic_admin", "chain_operator", "superuser"})
CLINICAL = frozenset({"provider", "clinic_admin", "superuser"})
CLOSURES = frozenset({"clinic_admin", "chain_operator", "superuser"})
AUDIT = frozenset({"auditor", "chain_operator", "superuser"})
ADMIN_SITE = frozenset({"clinic_admin", "chain_operator", "superuser"})
READS_RECORDS = DESK | PATIENT  # FHIR: patients (their own) and the desk roles
EXPORT = frozenset({"chain_operator", "superuser"})
BREAK_GLASS = frozenset({"provider", "clinic_admin", "superuser"})


@dataclass(frozen=True)
class Entry:
    """How to call one route, and who may."""

    allowed: frozenset[str]
    url: Callable[[World, dict[str, Any]], str]
    method: str = "get"
    body: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None
    json_body: bool = False
    bearer: bool = False
    #: When to ask (default: the tests' NOW), for pages that only open after a visit.
    at: datetime | None = None


def _u(name: str, *args: Callable[[World], object]) -> Callable[[World, dict[str, Any]], str]:
    return lambda w, extra: reverse(name, args=[a(w) for a in args])


def _fhir(path: Callable[[World, dict[str, Any]], str]) -> Callable[[World, dict[str, Any]], str]:
    return lambda w, extra: "/fhir/R4/" + path(w, extra)


def _api(path: Callable[[World, dict[str, Any]], str]) -> Callable[[World, dict[str, Any]], str]:
    return lambda w, extra: "/api/v1/" + path(w, extra)


cleo = lambda w: w.cleo  # noqa: E731


MATRIX: dict[str, Entry] = {
    # Public pages.
    "": Entry(EVERYONE, _u("web:home")),
    "treatment/": Entry(EVERYONE, _u("web:treatment")),
    "locations/": Entry(EVERYONE, _u("web:locations")),
    "locations/<slug:slug>/": Entry(EVERYONE, _u("web:location", lambda w: "riverbend")),
    # The patient's pages (Cleo's own rows).
    "my/sign-up/": Entry(EVERYONE, _u("portal:sign_up")),
    "my/sign-up/sent/": Entry(EVERYONE, _u("portal:sign_up_sent")),
    "my/sign-up/<uidb64>/<token>/": Entry(
        EVERYONE, _u("portal:sign_up_confirm", lambda w: "MQ", lambda w: "set-by-mail")
    ),
    "my/sign-in/": Entry(EVERYONE, _u("portal:sign_in")),
    "my/sign-out/": Entry(EVERYONE, _u("portal:sign_out"), method="post"),
    "my/password-reset/": Entry(EVERYONE, _u("portal:password_reset")),
    "my/password-reset/sent/": Entry(EVERYONE, _u("portal:password_reset_sent")),
    # A wrong or spent link shows "this link has expired": an answer, not a refusal.
    "my/password-reset/<uidb64>/<token>/": Entry(
        EVERYONE, lambda w, e: reverse("portal:password_reset_confirm", args=["MQ", "x-y"])
    ),
    "my/password-reset/done/": Entry(EVERYONE, _u("portal:password_reset_complete")),
    # The second step of signing in: anyone signed in (staff must, patients may opt in).
    "my/two-factor/": Entry(SIGNED_IN, _u("portal:two_factor")),
    "my/two-factor/setup/": Entry(SIGNED_IN, _u("portal:two_factor_setup")),
    "my/": Entry(PATIENT, _u("portal:home")),
    "my/messages/": Entry(PATIENT, _u("portal:contact")),
    "my/calendar/new/": Entry(PATIENT, _u("portal:feed_issue"), method="post"),
    "my/calendar/stop/": Entry(PATIENT, _u("portal:feed_revoke"), method="post"),
    "my/visits/<int:appointment_id>/calendar.ics": Entry(
        PATIENT, _u("portal:visit_calendar", lambda w: w.cleo.visit.pk)
    ),
    "my/record/": Entry(PATIENT, _u("portal:record")),
    "my/record/my-record.pdf": Entry(PATIENT, _u("portal:record_pdf")),
    "my/record/my-record.fhir.json": Entry(PATIENT, _u("portal:record_fhir")),
    "my/record/close/": Entry(PATIENT, _u("portal:close_account")),
    "my/intake/": Entry(PATIENT, _u("portal:intake")),
    "my/consent/": Entry(PATIENT, _u("portal:consent")),
    "my/screenings/<int:screening_id>/": Entry(
        PATIENT, _u("portal:screening", lambda w: w.cleo.screening.pk)
    ),
    "my/course/plan/": Entry(PATIENT, _u("portal:course_plan")),
    "my/courses/<int:course_id>/": Entry(PATIENT, _u("portal:course", lambda w: w.cleo.course.pk)),
    "my/visits/<int:appointment_id>/move/": Entry(
        PATIENT, _u("portal:session_move", lambda w: w.cleo.visit.pk)
    ),
    "my/visits/<int:appointment_id>/cancel/": Entry(
        PATIENT, _u("portal:session_cancel", lambda w: w.cleo.visit.pk)
    ),
    "my/visits/<int:appointment_id>/care/": Entry(
        PATIENT, _u("portal:visit_care", lambda w: w.cleo.visit.pk)
    ),
    "my/visits/<int:appointment_id>/skin/": Entry(
        PATIENT, _u("portal:skin_report", lambda w: w.cleo.visit.pk), at=AFTER_FIRST_VISIT
    ),
    "my/skin-reports/<int:report_id>/": Entry(
        PATIENT, _u("portal:skin_report_result", lambda w: w.cleo.report.pk)
    ),
    # The desk (Cleo is a Riverbend patient, in every Riverbend role's scope).
    "desk/": Entry(DESK, _u("desk:home")),
    "desk/skin-reports/": Entry(CLINICAL, _u("desk:skin_reports")),
    "desk/skin-reports/<int:report_id>/": Entry(
        CLINICAL, _u("desk:skin_report", lambda w: w.cleo.report.pk)
    ),
    "desk/skin-reports/<int:report_id>/photo/": Entry(
        CLINICAL, _u("desk:skin_report_photo", lambda w: w.cleo.report.pk)
    ),
    "desk/locations/<slug:slug>/day/": Entry(DESK, _u("desk:day_sheet", lambda w: "riverbend")),
    "desk/screenings/": Entry(CLINICAL, _u("desk:screenings")),
    "desk/screenings/<int:screening_id>/": Entry(
        CLINICAL, _u("desk:screening", lambda w: w.cleo.screening.pk)
    ),
    "desk/requests/": Entry(DESK, _u("desk:requests")),
    "desk/requests/<int:request_id>/close/": Entry(
        DESK,
        _u("desk:request_close", lambda w: w.request_id),
        method="post",
        body=lambda w, extra: {"reason": "matrix: booked by phone"},
    ),
    "desk/rehoming/": Entry(CLOSURES, _u("desk:rehoming")),
    "desk/rehoming/<int:run_id>/": Entry(
        CLOSURES, lambda w, extra: reverse("desk:rehoming_run", args=[extra["run"]])
    ),
    "desk/rehoming/<int:run_id>/apply/": Entry(
        CLOSURES,
        lambda w, extra: reverse("desk:rehoming_apply", args=[extra["run"]]),
        method="post",
    ),
    "desk/rehoming/<int:run_id>/moves.csv": Entry(
        CLOSURES, lambda w, extra: reverse("desk:rehoming_csv", args=[extra["run"]])
    ),
    "desk/calendars/": Entry(DESK, _u("desk:provider_calendars")),
    "desk/calendars/<int:provider_id>/": Entry(
        DESK, _u("desk:provider_calendar", lambda w: w.clinic.ada.pk), method="post"
    ),
    "desk/messages/dead/": Entry(DESK, _u("desk:dead_messages")),
    "desk/messages/<int:message_id>/retry/": Entry(
        DESK, _u("desk:dead_message_retry", lambda w: w.message_id), method="post"
    ),
    "desk/patients/<int:patient_id>/break-glass/": Entry(
        BREAK_GLASS,
        _u("desk:break_glass", lambda w: w.eve.patient.pk),
        method="post",
        body=lambda w, extra: {"reason": "matrix: an emergency call at night"},
    ),
    "desk/visits/<int:appointment_id>/": Entry(DESK, _u("desk:visit", lambda w: w.cleo.visit.pk)),
    "desk/visits/<int:appointment_id>/status/": Entry(
        DESK,
        _u("desk:visit_status", lambda w: w.cleo.visit.pk),
        method="post",
        body=lambda w, extra: {"status": "checked_in"},
    ),
    "desk/visits/<int:appointment_id>/move/": Entry(
        DESK, _u("desk:visit_move", lambda w: w.cleo.visit.pk)
    ),
    "desk/photos/<int:photo_id>/": Entry(
        CLINICAL, _u("desk:session_photo", lambda w: w.cleo.photo.pk)
    ),
    "desk/courses/<int:course_id>/compare/": Entry(
        CLINICAL, _u("desk:course_compare", lambda w: w.cleo.course.pk)
    ),
    # The auditor's search.
    "audit/": Entry(AUDIT, _u("audit:search")),
    # Calendar feeds: the unguessable address is the credential, whoever holds it.
    "calendar/<str:token>.ics": Entry(
        EVERYONE, lambda w, extra: reverse("calendar:feed", args=[extra["feed"]])
    ),
    # FHIR (bearer tokens).
    "fhir/R4/metadata": Entry(EVERYONE, _fhir(lambda w, e: "metadata"), bearer=True),
    "fhir/R4/Patient/<str:resource_id>/$everything": Entry(
        READS_RECORDS,
        _fhir(lambda w, e: f"Patient/{w.cleo.patient.pk}/$everything"),
        bearer=True,
    ),
    "fhir/R4/$export": Entry(EXPORT, _fhir(lambda w, e: "$export"), bearer=True),
    "fhir/R4/$export-status/<int:job_id>": Entry(
        EXPORT, _fhir(lambda w, e: f"$export-status/{e['export']}"), bearer=True
    ),
    "fhir/R4/$export-file/<int:job_id>/<str:type_name>.ndjson": Entry(
        EXPORT, _fhir(lambda w, e: f"$export-file/{e['export']}/Patient.ndjson"), bearer=True
    ),
    "fhir/R4/<str:type_name>": Entry(READS_RECORDS, _fhir(lambda w, e: "Procedure"), bearer=True),
    "fhir/R4/<str:type_name>/<str:resource_id>": Entry(
        CLINICAL | PATIENT, _fhir(lambda w, e: f"Procedure/{w.cleo.chart.pk}"), bearer=True
    ),
    # Anything else under /fhir/R4/ is a 400 OperationOutcome, signed in or not.
    "fhir/R4/^(?P<rest>.*)$": Entry(EVERYONE, _fhir(lambda w, e: "Nonsense/1/2"), bearer=True),
    # The JSON API (bearer tokens). Object checks answer 404 to those outside scope.
    "api/v1/availability": Entry(
        EVERYONE,
        _api(
            lambda w, e: (
                f"availability?location_id={w.clinic.location.pk}"
                f"&service_id={w.clinic.treatment.pk}&start={MONDAY}&end={MONDAY}"
            )
        ),
        bearer=True,
    ),
    # The patient, or a clinical role that writes the record (not the desk or the chain).
    "api/v1/screenings": Entry(
        PATIENT | {"provider", "superuser"},
        _api(lambda w, e: "screenings"),
        method="post",
        json_body=True,
        bearer=True,
        body=lambda w, e: {
            "patient_id": w.cleo.patient.pk,
            "intake": {
                "planned_date": "2027-04-05",
                "birth_date": "1990-04-02",
                "fitzpatrick_type": 2,
                "treatment_areas": ["face"],
                "pregnant": False,
                "breastfeeding": False,
            },
        },
    ),
    "api/v1/appointments/<appointment_id>/status": Entry(
        DESK | PATIENT,
        _api(lambda w, e: f"appointments/{w.cleo.visit.pk}/status"),
        method="post",
        json_body=True,
        bearer=True,
        body=lambda w, e: {"status": "cancelled", "reason": "matrix"},
    ),
    "api/v1/appointment-requests": Entry(
        DESK, _api(lambda w, e: "appointment-requests"), bearer=True
    ),
    "api/v1/health": Entry(EVERYONE, _api(lambda w, e: "health"), bearer=True),
    "api/v1/locations": Entry(EVERYONE, _api(lambda w, e: "locations"), bearer=True),
    "api/v1/locations/<location_id>": Entry(
        EVERYONE, _api(lambda w, e: f"locations/{w.clinic.location.pk}"), bearer=True
    ),
    "api/v1/providers": Entry(EVERYONE, _api(lambda w, e: "providers"), bearer=True),
    "api/v1/services": Entry(EVERYONE, _api(lambda w, e: "services"), bearer=True),
    # django-ninja's root: nothing is served there (404 to all).
    "api/v1/": Entry(frozenset(), _api(lambda w, e: ""), bearer=True),
    "api/v1/openapi.json": Entry(EVERYONE, _api(lambda w, e: "openapi.json"), bearer=True),
    "api/v1/docs": Entry(EVERYONE, _api(lambda w, e: "docs"), bearer=True),
}

#: Routes whose gate is the bearer token (401 without one) and whose object checks are the
#: same ``can_act_for`` as ``api/v1/screenings``; their bodies need a whole booking, so the
#: matrix asks them signed out and signed in with a role that may not act for Cleo.
API_TOKEN_GATED = (
    "api/v1/courses/search",
    "api/v1/courses",
    "api/v1/appointments",
    "api/v1/appointments/<appointment_id>/move",
    "api/v1/appointments/<appointment_id>/replace",
)


def _routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    found: list[str] = []
    for item in (resolver or get_resolver()).url_patterns:
        text = prefix + str(item.pattern)
        if isinstance(item, URLResolver):
            if text == "admin/":
                found.append("admin/")
                continue
            found += _routes(item, text)
        elif isinstance(item, URLPattern):
            found.append(text)
    return found


def _refused(answer: Any) -> bool:
    if answer.status_code in (401, 403, 404):
        return True
    location = answer.get("Location", "") if answer.status_code in (301, 302) else ""
    return "/sign-in/" in location or "/admin/login/" in location


@pytest.fixture
def world(clinic: Clinic, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return build_world(clinic)


def _extra(world: World) -> dict[str, Any]:
    run = RehomingRun.objects.create(
        operation=RehomingRun.Operation.CLOSE_LOCATION,
        location=world.clinic.location,
        from_date=MONDAY,
        status=RehomingRun.Status.DONE,
        report={"moves": [], "unplaced": [], "summary": {}},
    )
    job = ExportJob.objects.create(
        types=["Patient"],
        status=ExportJob.Status.DONE,
        output=[{"type": "Patient", "count": 0}],
        request_url="http://testserver/fhir/R4/$export",
        # A job is its requester's alone (and the superuser's): the operator asked for this one.
        created_by=world.users["chain_operator"],
    )
    export_folder(job).mkdir(parents=True)
    (export_folder(job) / "Patient.ndjson").write_text("")
    feed = calendar_feed_issue(actor=None, patient=world.cleo.patient)
    # A retry by one role must not leave the next with nothing dead to retry.
    Message.objects.filter(pk=world.message_id).update(status=Message.Status.DEAD)
    return {"run": run.pk, "export": job.pk, "feed": feed}


def test_every_route_has_an_entry_in_the_access_matrix() -> None:
    routes = set(_routes())
    missing = routes - set(MATRIX) - set(API_TOKEN_GATED) - {"admin/"}
    assert not missing, f"decide who may use these routes, in MATRIX: {sorted(missing)}"
    stale = set(MATRIX) - routes
    assert not stale, f"these MATRIX entries name no route any more: {sorted(stale)}"


def _call(world: World, role: str, entry: Entry, extra: dict[str, Any]) -> Any:
    client = world.client(role) if not entry.bearer else Client()
    headers: dict[str, str] = {}
    if entry.bearer and (token := world.token(role)):
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    url = entry.url(world, extra)
    data = entry.body(world, extra) if entry.body else {}
    if entry.method == "get":
        return client.get(url, **headers)  # type: ignore[arg-type]
    if entry.json_body:
        return client.post(url, json.dumps(data), content_type="application/json", **headers)  # type: ignore[arg-type]
    return client.post(url, data, **headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_each_role_is_allowed_or_refused_as_the_matrix_says(world: World, route: str) -> None:
    entry = MATRIX[route]
    wrong: list[str] = []
    for role in ROLES:
        extra = _extra(world)
        if entry.at is None:
            answer = _call(world, role, entry, extra)
        else:
            with time_machine.travel(entry.at, tick=False):
                answer = _call(world, role, entry, extra)
        assert answer.status_code < 500, (route, role, answer.status_code)
        if _refused(answer) == (role in entry.allowed):
            verdict = "refused" if role in entry.allowed else "allowed"
            wrong.append(f"{role} was {verdict} ({answer.status_code})")
    assert not wrong, f"{route}: {'; '.join(wrong)}"


@pytest.mark.parametrize("route", API_TOKEN_GATED)
def test_the_booking_api_asks_for_a_token_and_refuses_roles_without_the_record(
    world: World, route: str
) -> None:
    path = "/" + route.replace("<appointment_id>", str(world.cleo.visit.pk))
    signed_out = Client().post(path, "{}", content_type="application/json")
    assert signed_out.status_code == 401
    assert signed_out["Content-Type"] == "application/problem+json"


#: Staff accounts, authenticators and lock-outs: the chain operator's, not a clinic admin's.
PEOPLE_MODELS = {
    "staffmember",
    "apitoken",
    "totpdevice",
    "accessattempt",
    "accesslog",
    "accessfailurelog",
}


def test_the_admin_site_opens_to_the_roles_that_run_the_clinic(world: World) -> None:
    pages = [reverse("admin:index")] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    # Clinical rows, user accounts and the task queue's internals: the superuser's only.
    clinical = {
        "procedurechart",
        "outcomescore",
        "consent",
        "consenttext",
        "user",
        "group",
        "dbtaskresult",
    }
    wrong = []
    for role in ROLES:
        client = world.client(role)
        for page in pages:
            answer = client.get(page)
            assert answer.status_code < 500, (page, role)
            model = page.rstrip("/").split("/")[-1]
            allowed = role == "superuser" or (
                role in ADMIN_SITE
                and (page == reverse("admin:index") or model not in clinical)
                and not (model in PEOPLE_MODELS and role == "clinic_admin")
            )
            if _refused(answer) == allowed:
                wrong.append(f"{role} {page} {answer.status_code}")
    assert not wrong, wrong


@pytest.mark.parametrize(
    "route", sorted(r for r, e in MATRIX.items() if e.method == "post" and not e.bearer)
)
def test_every_form_post_without_the_csrf_token_is_refused(world: World, route: str) -> None:
    entry = MATRIX[route]
    role = sorted(entry.allowed - {"anonymous"})[0]
    client = Client(enforce_csrf_checks=True)
    if world.users.get(role) is not None:
        client.force_login(world.users[role])
    data = entry.body(world, _extra(world)) if entry.body else {}
    answer = client.post(entry.url(world, _extra(world)), data)
    assert answer.status_code == 403, (route, role, answer.status_code)


def test_the_admin_shows_each_organisation_only_its_own_rows(world: World) -> None:
    other = build_clinic(name="Faraway")
    elsewhere = Organization.objects.create(name="Faraway Group", slug="faraway-group")
    Location.objects.filter(pk=other.location.pk).update(organization=elsewhere)
    operator = world.client("chain_operator")
    listing = operator.get(reverse("admin:directory_location_changelist")).content.decode()
    assert "Riverbend" in listing and "Faraway" not in listing
    page = operator.get(reverse("admin:directory_location_change", args=[other.location.pk]))
    assert page.status_code == 302  # Django's answer for an id outside the queryset
    add = operator.get(reverse("admin:directory_location_add")).content.decode()
    assert "Faraway Group" not in add
    root = world.client("superuser")
    assert "Faraway" in root.get(reverse("admin:directory_location_changelist")).content.decode()
