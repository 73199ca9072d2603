"""The FHIR R4 REST API under ``/fhir/R4/``: metadata, read and search for every type we
emit, ``Patient/{id}/$everything``, and booking an Appointment from a free Slot.

Access follows the rest of the product (``accounts.access``): a bearer token names the user;
staff read everything (each read of a patient's records audited), a patient only their own
records, and anyone signed in reads the directory (locations, practitioners, slots).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from microneedling.accounts.access import Can, may, patients_visible, role_of
from microneedling.accounts.services import api_token_user
from microneedling.aftercare.models import SkinReport
from microneedling.audit.middleware import client_address
from microneedling.audit.services import audit_patient_view
from microneedling.charting.models import Consent, OutcomeScore, ProcedureChart
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.core.ids import is_record_id
from microneedling.directory.models import (
    Location,
    Organization,
    Provider,
    Service,
)
from microneedling.directory.policy import booking_rules
from microneedling.directory.selectors import schedules_in_force
from microneedling.interop.fhir import resources as build
from microneedling.interop.fhir.search import (
    CONTROL,
    MAX_COUNT,
    FhirError,
    bad,
    date_filter,
    instant_test,
    integer_id,
    paging,
    window,
)
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course
from microneedling.scheduling.selectors import free_starts
from microneedling.web.security import RATE_BUCKET_SECONDS, too_many

FHIR_JSON = "application/fhir+json"
SLOT_DAYS, MOST_SLOT_DAYS = 14, 31
#: Slot.status (FHIR R4 slotstatus); only free slots are ever offered.
SLOT_STATUSES = frozenset(
    {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"}
)


def respond(body: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    """A FHIR JSON response."""
    response = HttpResponse(json.dumps(body), status=status, content_type=FHIR_JSON)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def outcome(error: FhirError) -> HttpResponse:
    """An OperationOutcome for ``error``."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": error.code,
        "diagnostics": error.diagnostics,
    }
    if error.expression:
        issue["expression"] = [error.expression]
    return respond({"resourceType": "OperationOutcome", "issue": [issue]}, error.status)


# --- Who is asking -------------------------------------------------------------------------


@dataclass
class Caller:
    """The signed-in user, and their patient record if they are a patient."""

    user: Any
    patient_id: int | None
    staff: bool


def caller_of(request: HttpRequest) -> Caller:
    """Who the bearer token names (401 without a valid one)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = api_token_user(token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise FhirError(401, "login", "a bearer token is required (microneedling token)")
    patient_id = Patient.objects.filter(user=user).values_list("pk", flat=True).first()
    staff = may(user, Can.DESK)
    if not staff and role_of(user) != "patient":
        # Auditors and accounts without a role read no patient data here at all.
        raise FhirError(403, "forbidden", "this account's role does not read records")
    return Caller(user, patient_id, staff)


# --- Resource types ------------------------------------------------------------------------


Filter = Callable[[QuerySet[Any], list[str]], QuerySet[Any]]


@dataclass
class Kind:
    """One resource type: its rows, how a caller is limited, its search parameters."""

    name: str
    rows: Callable[[], QuerySet[Any]]
    render: Callable[[Any], dict[str, Any]]
    patient_field: str | None  # how a row belongs to a patient (None: directory data)
    params: dict[str, Filter] = field(default_factory=dict)
    includes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (type, id attr)


def _by(field_name: str, kind: str) -> Filter:
    def apply(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
        for value in values:
            ids = [integer_id(kind.lower(), v, kind) for v in value.split(",")]
            rows = rows.filter(**{f"{field_name}__in": ids})
        return rows

    return apply


def _dates(field_name: str, parameter: str = "date") -> Filter:
    def apply(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
        return rows.filter(date_filter(parameter, values, field_name))

    return apply


def _ids() -> Filter:
    def apply(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
        for value in values:
            ids = [v for v in value.split(",") if v]
            if not all(is_record_id(v) for v in ids):
                raise bad("_id", "ids are whole numbers")
            rows = rows.filter(pk__in=[int(v) for v in ids])
        return rows

    return apply


def _text(field_name: str) -> Filter:
    def apply(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
        for value in values:
            rows = rows.filter(**{f"{field_name}__icontains": value})
        return rows

    return apply


def _appointment_status(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    wanted = [s for value in values for s in value.split(",")]
    unknown = [s for s in wanted if s not in build.STATUS_FROM_FHIR]
    if unknown:
        raise bad("status", f"unknown appointment status {unknown[0]!r}")
    return rows.filter(status__in=[build.STATUS_FROM_FHIR[s] for s in wanted])


def _patient_name(rows: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    for value in values:
        rows = rows.filter(Q(first_name__icontains=value) | Q(last_name__icontains=value))
    return rows


KINDS: dict[str, Kind] = {
    "Organization": Kind(
        "Organization",
        lambda: Organization.objects.order_by("pk"),
        build.organization,
        None,
        {"_id": _ids(), "name": _text("name")},
    ),
    "Location": Kind(
        "Location",
        lambda: Location.objects.prefetch_related("hours").order_by("pk"),
        build.location,
        None,
        {
            "_id": _ids(),
            "name": _text("name"),
            "address-postalcode": _text("zip_code"),
            "address-city": _text("city"),
            "organization": _by("organization_id", "Organization"),
        },
    ),
    "Practitioner": Kind(
        "Practitioner",
        lambda: Provider.objects.order_by("pk"),
        build.practitioner,
        None,
        {"_id": _ids(), "name": _text("display_name")},
    ),
    "HealthcareService": Kind(
        "HealthcareService",
        lambda: Service.objects.order_by("pk"),
        build.healthcare_service,
        None,
        {
            "_id": _ids(),
            "name": _text("name"),
            "organization": _by("organization_id", "Organization"),
        },
    ),
    "Patient": Kind(
        "Patient",
        lambda: Patient.objects.order_by("pk"),
        build.patient,
        "pk",
        {"_id": _ids(), "name": _patient_name, "birthdate": _dates("birth_date", "birthdate")},
    ),
    "Appointment": Kind(
        "Appointment",
        lambda: Appointment.objects.select_related(
            "service", "provider", "location", "course_session"
        ).order_by("starts_at", "pk"),
        build.appointment,
        "patient_id",
        {
            "_id": _ids(),
            "patient": _by("patient_id", "Patient"),
            "practitioner": _by("provider_id", "Practitioner"),
            "location": _by("location_id", "Location"),
            "status": _appointment_status,
            "date": _dates("starts_at"),
        },
        {
            "Appointment:patient": ("Patient", "patient_id"),
            "Appointment:practitioner": ("Practitioner", "provider_id"),
            "Appointment:location": ("Location", "location_id"),
        },
    ),
    "CarePlan": Kind(
        "CarePlan",
        lambda: Course.objects.prefetch_related("sessions__appointments").order_by("pk"),
        build.care_plan,
        "patient_id",
        {"_id": _ids(), "patient": _by("patient_id", "Patient"), "date": _dates("created_at")},
    ),
    "Procedure": Kind(
        "Procedure",
        lambda: ProcedureChart.objects.select_related(
            "appointment", "device", "cartridge_lot"
        ).order_by("pk"),
        build.procedure,
        "appointment__patient_id",
        {
            "_id": _ids(),
            "patient": _by("appointment__patient_id", "Patient"),
            "date": _dates("appointment__starts_at"),
        },
    ),
    "QuestionnaireResponse": Kind(
        "QuestionnaireResponse",
        lambda: Screening.objects.order_by("pk"),
        build.questionnaire_response,
        "patient_id",
        {
            "_id": _ids(),
            "patient": _by("patient_id", "Patient"),
            "authored": _dates("created_at", "authored"),
        },
    ),
    "Observation": Kind(
        "Observation",
        lambda: (
            OutcomeScore.objects.select_related("appointment")
            .prefetch_related("appointment__charts")
            .order_by("pk")
        ),
        build.observation,
        "appointment__patient_id",
        {
            "_id": _ids(),
            "patient": _by("appointment__patient_id", "Patient"),
            "date": _dates("appointment__starts_at"),
        },
    ),
    "AdverseEvent": Kind(
        "AdverseEvent",
        lambda: (
            SkinReport.objects.select_related("appointment")
            .prefetch_related("appointment__charts")
            .order_by("pk")
        ),
        build.adverse_event,
        "patient_id",
        {
            "_id": _ids(),
            "subject": _by("patient_id", "Patient"),
            "patient": _by("patient_id", "Patient"),
            "date": _dates("created_at"),
        },
    ),
    "Consent": Kind(
        "Consent",
        lambda: Consent.objects.select_related("text").order_by("pk"),
        build.consent,
        "patient_id",
        {
            "_id": _ids(),
            "patient": _by("patient_id", "Patient"),
            "date": _dates("signed_at"),
        },
    ),
}
#: Types whose ids are "<provider>-<location>" (a provider's diary at one location).
PAIRED = ("PractitionerRole", "Schedule")
ALL_TYPES = sorted([*KINDS, *PAIRED, "Slot"])


#: Types that hold clinical notes: staff read them only with a clinical role.
CLINICAL = frozenset({"Procedure", "QuestionnaireResponse", "Observation", "AdverseEvent"})


def scoped_rows(kind: Kind, caller: Caller) -> QuerySet[Any]:
    """The rows of ``kind`` the caller may read (``accounts.access`` decides); searches,
    reads and bulk exports all take their rows from here."""
    rows = kind.rows()
    if kind.patient_field is None:
        return rows
    if caller.patient_id is not None and role_of(caller.user) == "patient":
        return rows.filter(**{kind.patient_field: caller.patient_id})
    if not caller.staff or (kind.name in CLINICAL and not may(caller.user, Can.CLINICAL_READ)):
        return rows.none()
    return rows.filter(**{f"{kind.patient_field}__in": patients_visible(caller.user)})


def _audit(kind: Kind, caller: Caller, rows: Iterable[Model]) -> None:
    """Staff reads of patients' records leave an audit row per patient read."""
    if kind.patient_field is None or not caller.staff:
        return
    attribute = kind.patient_field.replace("__", ".")
    seen: set[int] = set()
    for row in rows:
        value: Any = row
        for part in attribute.split("."):
            value = getattr(value, part)
        if value not in seen:
            seen.add(value)
            audit_patient_view(
                actor=caller.user,
                patient_id=value,
                action="fhir_read",
                details={"resource": kind.name},
            )


def _audit_matches(kind: Kind, caller: Caller, rows: QuerySet[Any], *, total: int) -> None:
    """A staff search whose page is empty still answers how many records matched: past the
    last page, a name and a birth date say whether such a patient is on file. So the
    patients it matched get an audit row each, as a page of them would have."""
    if kind.patient_field is None or not caller.staff:
        return
    # At most one full page of patients per request, like the reads themselves: a search
    # broad enough to match more tells nothing about any one of them beyond the total, and
    # one request must not write an audit row for every patient of the chain.
    matched = (
        Patient.objects.filter(pk__in=rows.values(kind.patient_field))
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_COUNT]
    )
    for patient_id in matched:
        audit_patient_view(
            actor=caller.user,
            patient_id=patient_id,
            action="fhir_search_match",
            details={"resource": kind.name, "total": total},
        )


# --- Bundles -------------------------------------------------------------------------------


def base_url(request: HttpRequest) -> str:
    """The server's FHIR base address as the client reached it."""
    return request.build_absolute_uri("/fhir/R4/").rstrip("/")


def _bundle(
    request: HttpRequest,
    type_name: str,
    resources: list[dict[str, Any]],
    *,
    total: int,
    count: int,
    offset: int,
    included: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    base = base_url(request)
    params = {k: v for k, v in request.GET.lists() if k != "_offset"}
    query = urlencode([(k, v) for k, values in params.items() for v in values])
    links = [{"relation": "self", "url": request.build_absolute_uri()}]
    if count and offset + count < total:
        joiner = "&" if query else ""
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{type_name}?{query}{joiner}_offset={offset + count}",
            }
        )
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ] + [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in included or []
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    }


def _check_params(allowed: Iterable[str], params: dict[str, list[str]]) -> None:
    known = set(allowed) | CONTROL
    for name in params:
        if name not in known:
            raise bad(name, "is not a search parameter we support for this type")


# --- Paired types and slots ----------------------------------------------------------------


def provider_sites(params: dict[str, list[str]]) -> list[tuple[Provider, Location]]:
    """Each (provider, location) with working hours in force, filtered by practitioner/location: the
    PractitionerRoles and Schedules."""
    # Hours that ended are no diary any more (those still to begin are: slots come from them).
    schedules = schedules_in_force().select_related("provider", "location")
    for name, attribute, kind in (
        ("practitioner", "provider_id", "Practitioner"),
        ("actor", "provider_id", "Practitioner"),
        ("location", "location_id", "Location"),
    ):
        for value in params.get(name, []):
            if name == "actor" and value.startswith("Location/"):
                schedules = schedules.filter(location_id=integer_id(name, value, "Location"))
                continue
            schedules = schedules.filter(**{attribute: integer_id(name, value, kind)})
    seen: dict[tuple[int, int], tuple[Provider, Location]] = {}
    for row in schedules.order_by("provider_id", "location_id"):
        seen.setdefault((row.provider_id, row.location_id), (row.provider, row.location))
    return list(seen.values())


def _pair_of(text: str, type_name: str) -> tuple[Provider, Location]:
    left, _, right = text.partition("-")
    if not (is_record_id(left) and is_record_id(right)):
        raise FhirError(404, "not-found", f"{type_name}/{text} does not exist")
    provider = Provider.objects.filter(pk=int(left)).first()
    place = Location.objects.filter(pk=int(right)).first()
    in_force = schedules_in_force()
    works = in_force.filter(provider_id=left, location_id=right).exists()
    if provider is None or place is None or not works:
        raise FhirError(404, "not-found", f"{type_name}/{text} does not exist")
    return provider, place


def render_pair(type_name: str, provider: Provider, place: Location) -> dict[str, Any]:
    """A provider at a location as a Schedule or a PractitionerRole."""
    if type_name == "Schedule":
        return build.schedule(provider, place)
    hours = list(schedules_in_force().filter(provider=provider, location=place))
    return build.practitioner_role(provider, place, hours)


def _slot_service(params: dict[str, list[str]], place: Location) -> Service:
    values = params.get("service-type", [])
    services_at = Service.objects.filter(organization_id=place.organization_id, active=True)
    if values:
        service = services_at.filter(
            pk=integer_id("service-type", values[-1], "HealthcareService")
        ).first()
        if service is None:
            raise bad("service-type", "no such active service at this location")
        return service
    service = services_at.filter(kind=Service.Kind.TREATMENT).order_by("pk").first()
    if service is None:
        raise bad("service-type", "this organisation offers no treatment to book")
    return service


def _slot_id(provider: Provider, place: Location, service: Service, start: datetime) -> str:
    return f"{provider.pk}-{place.pk}-{service.pk}-{int(start.timestamp())}"


def _slots(params: dict[str, list[str]]) -> list[dict[str, Any]]:
    if "schedule" not in params:
        raise bad("schedule", "is required: slots are searched in one Schedule")
    schedule_id = params["schedule"][-1].rpartition("/")[2]
    provider, place = _pair_of(schedule_id, "Schedule")
    service = _slot_service(params, place)
    wanted = {status for value in params.get("status", []) for status in value.split(",")}
    if wanted - SLOT_STATUSES:
        raise bad("status", f"unknown slot status {sorted(wanted - SLOT_STATUSES)[0]!r}")
    if wanted and "free" not in wanted:
        return []  # Only free slots are offered: there are no busy ones to find.
    values = params.get("start", [])
    first, last = window("start", values, default_days=SLOT_DAYS, most_days=MOST_SLOT_DAYS)
    fits = instant_test("start", values)
    if fits is not None:
        # An instant's day in UTC may be the day before or after at the location: look a
        # day either side, then keep only the starts within the instants asked for.
        first = first - timedelta(days=1) if first > date.min else first
        last = last + timedelta(days=1) if last < date.max else last
    # Nothing is free outside the clinic's booking window, so only the days near it are
    # looked at: days far from it (the calendar's first or last) would run the calendar's
    # day arithmetic off its edge, and have no slots to find anyway.
    not_before, not_after = booking_rules(place.organization_id).window(timezone.now())
    first = max(first, not_before.date() - timedelta(days=1))
    last = min(last, not_after.date() + timedelta(days=1))
    if last < first:
        return []
    starts = free_starts(
        location=place,
        service=service,
        first_day=first,
        last_day=last,
        provider_id=provider.pk,
        now=timezone.now(),
    )
    return [
        build.slot(
            _slot_id(provider, place, service, s.start), schedule_id, service, s.start, s.end
        )
        for s in starts
        if fits is None or fits(s.start)
    ]


#: A slot id's start is whole seconds since the epoch (see ``_slot_id``).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _slot_parts(slot_id: str) -> tuple[Provider, Location, Service, datetime]:
    """The provider, location, service and start a slot id names; a 404 for an id that
    names no slot we could offer."""
    parts = slot_id.split("-")
    if len(parts) != 4 or not all(is_record_id(p) for p in parts):
        raise FhirError(404, "not-found", f"Slot/{slot_id} does not exist")
    provider, place = _pair_of(f"{parts[0]}-{parts[1]}", "Slot")
    service = Service.objects.filter(
        pk=int(parts[2]), organization_id=place.organization_id
    ).first()
    if service is None:
        raise FhirError(404, "not-found", f"Slot/{slot_id} does not exist")
    if not service.active:
        # A retired service is offered no more (the search lists only active ones), so an
        # id made while it was offered names no slot to read or book now.
        raise FhirError(
            404, "not-found", f"Slot/{slot_id} does not exist (its service is no longer offered)"
        )
    # Slots are offered only up to the clinic's booking horizon, so a start past it names
    # no slot. Checked before any date arithmetic: an 18-digit id is far past the calendar's
    # end, and a start near that end would run the availability engine off it.
    _, not_after = booking_rules(place.organization_id).window(timezone.now())
    seconds = int(parts[3])
    if seconds > (not_after - EPOCH).total_seconds():
        raise FhirError(
            404,
            "not-found",
            f"Slot/{slot_id} does not exist (it starts past the clinic's booking horizon)",
        )
    start = (EPOCH + timedelta(seconds=seconds)).astimezone(timezone.get_current_timezone())
    return provider, place, service, start


def _slot_read(slot_id: str) -> dict[str, Any]:
    provider, place, service, start = _slot_parts(slot_id)
    local = start.astimezone(timezone.get_current_timezone()).date()
    for s in free_starts(
        location=place,
        service=service,
        first_day=local - timedelta(days=1),
        last_day=local + timedelta(days=1),
        provider_id=provider.pk,
        now=timezone.now(),
    ):
        if s.start == start:
            return build.slot(slot_id, f"{provider.pk}-{place.pk}", service, s.start, s.end)
    raise FhirError(404, "not-found", f"Slot/{slot_id} is no longer free")


# --- Views ---------------------------------------------------------------------------------


def fhir_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A FHIR endpoint: a FhirError becomes an OperationOutcome (never a 500 for input),
    and no CSRF token is asked for (callers authenticate with a bearer token)."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except FhirError as error:
            return outcome(error)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return csrf_exempt(wrapper)


@fhir_view
def metadata(request: HttpRequest) -> HttpResponse:
    """The CapabilityStatement: exactly what this server supports."""
    if request.method != "GET":
        raise FhirError(405, "not-supported", "metadata is read-only")
    rest_resources = []
    for name in ALL_TYPES:
        kind = KINDS.get(name)
        params = (
            sorted(kind.params)
            if kind
            else (
                ["schedule", "start", "service-type", "status"]
                if name == "Slot"
                else ["practitioner", "location"]
                if name == "PractitionerRole"
                else ["actor"]
            )
        )
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": p, "type": _param_type(p)} for p in params],
        }
        if kind and kind.includes:
            entry["searchInclude"] = sorted(kind.includes)
        if name == "Appointment":
            entry["interaction"].append({"code": "create"})
        if name == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        rest_resources.append(entry)
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "software": {"name": "Microneedling Clinic"},
        "implementation": {
            "description": "Microneedling Clinic FHIR R4 API",
            "url": base_url(request),
        },
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Bearer tokens from `microneedling token`."},
                "resource": rest_resources,
            }
        ],
    }
    return respond(body)


def _param_type(name: str) -> str:
    if name in ("date", "birthdate", "authored", "start"):
        return "date"
    if name in ("_id", "status"):
        return "token"
    if name in ("name", "address-postalcode", "address-city"):
        return "string"
    return "reference"


@fhir_view
def type_endpoint(request: HttpRequest, type_name: str) -> HttpResponse:
    """Search a type (GET), or create an Appointment (POST)."""
    if type_name not in ALL_TYPES:
        raise FhirError(400, "not-supported", f"{type_name} is not a resource type we serve")
    caller = caller_of(request)
    if request.method == "POST":
        if type_name != "Appointment":
            raise FhirError(405, "not-supported", f"{type_name} cannot be created here")
        return _appointment_create(request, caller)
    if request.method != "GET":
        raise FhirError(405, "not-supported", f"{request.method} is not supported")
    params = dict(request.GET.lists())
    count, offset = paging(params)
    if _counting_only(params):
        # No entries, so no page: the Bundle's total is the answer, and no next link.
        count, offset = 0, 0
    if type_name == "Slot":
        _check_params(("schedule", "start", "service-type", "status"), params)
        found = _slots(params)
        return respond(
            _bundle(
                request,
                type_name,
                found[offset : offset + count],
                total=len(found),
                count=count,
                offset=offset,
            )
        )
    if type_name in PAIRED:
        _check_params(("practitioner", "location", "actor"), params)
        pairs = provider_sites(params)
        page = [render_pair(type_name, p, loc) for p, loc in pairs[offset : offset + count]]
        return respond(
            _bundle(request, type_name, page, total=len(pairs), count=count, offset=offset)
        )
    kind = KINDS[type_name]
    _check_params(kind.params, params)
    rows = scoped_rows(kind, caller)
    for name, apply in kind.params.items():
        if name in params:
            rows = apply(rows, params[name])
    total = rows.count()
    page_rows = list(rows[offset : offset + count])
    _audit(kind, caller, page_rows)
    if total and not page_rows:
        _audit_matches(kind, caller, rows, total=total)
    included = _includes(kind, caller, params.get("_include", []), page_rows)
    return respond(
        _bundle(
            request,
            type_name,
            [kind.render(r) for r in page_rows],
            total=total,
            count=count,
            offset=offset,
            included=included,
        )
    )


def _counting_only(params: dict[str, list[str]]) -> bool:
    """Whether ``_summary=count`` asks for the total alone; ``_summary=false`` is a full
    search, and a summary we do not offer (``true``, ``text``, ``data``) is a 400 rather
    than full resources the client did not ask for."""
    values = params.get("_summary", [])
    unknown = [v for v in values if v not in ("count", "false")]
    if unknown:
        raise bad("_summary", f"{unknown[0]!r} is not offered; use count or false")
    return "count" in values


def _includes(
    kind: Kind, caller: Caller, wanted: list[str], rows: list[Any]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in wanted:
        if name not in kind.includes:
            raise bad("_include", f"{name!r} is not supported for {kind.name}")
        target, attribute = kind.includes[name]
        ids = sorted({getattr(r, attribute) for r in rows})
        target_kind = KINDS[target]
        found = scoped_rows(target_kind, caller).filter(pk__in=ids)
        out += [target_kind.render(r) for r in found]
    return out


@fhir_view
def instance_endpoint(request: HttpRequest, type_name: str, resource_id: str) -> HttpResponse:
    """Read one resource."""
    if type_name not in ALL_TYPES:
        raise FhirError(400, "not-supported", f"{type_name} is not a resource type we serve")
    caller = caller_of(request)
    if request.method != "GET":
        raise FhirError(405, "not-supported", f"{request.method} is not supported here")
    if type_name == "Slot":
        return respond(_slot_read(resource_id))
    if type_name in PAIRED:
        provider, place = _pair_of(resource_id, type_name)
        return respond(render_pair(type_name, provider, place))
    kind = KINDS[type_name]
    missing = FhirError(404, "not-found", f"{type_name}/{resource_id} does not exist")
    if not is_record_id(resource_id):
        raise missing
    # Another patient's record answers exactly as a missing one: ids reveal nothing.
    row = scoped_rows(kind, caller).filter(pk=int(resource_id)).first()
    if row is None:
        raise missing
    _audit(kind, caller, [row])
    return respond(kind.render(row))


@fhir_view
def everything(request: HttpRequest, resource_id: str) -> HttpResponse:
    """``Patient/{id}/$everything``: the patient and every resource about them."""
    caller = caller_of(request)
    if not is_record_id(resource_id):
        raise FhirError(404, "not-found", f"Patient/{resource_id} does not exist")
    person = scoped_rows(KINDS["Patient"], caller).filter(pk=int(resource_id)).first()
    if person is None:
        raise FhirError(404, "not-found", f"Patient/{resource_id} does not exist")
    return respond(everything_bundle(request, caller, person))


def everything_bundle(request: HttpRequest, caller: Caller, person: Patient) -> dict[str, Any]:
    """The patient and every resource about them that ``caller`` may read, as a Bundle
    (staff reads are audited; a patient reading their own record is not)."""
    found: list[dict[str, Any]] = [build.patient(person)]
    for kind in KINDS.values():
        if kind.patient_field in (None, "pk"):
            continue
        rows = scoped_rows(kind, caller).filter(**{kind.patient_field: person.pk})
        found += [kind.render(r) for r in rows]
    if caller.staff:
        audit_patient_view(
            actor=caller.user,
            patient_id=person.pk,
            action="fhir_everything",
            details={"resources": len(found)},
        )
    base = base_url(request)
    body = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": request.build_absolute_uri()}],
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in found
        ],
    }
    return body


def _json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object (a 400 naming ``body`` or ``resourceType`` if not).

    FHIR bodies are UTF-8 (a byte-order mark is let pass): the body is decoded as that
    rather than left to ``json.loads`` to guess an encoding from the first bytes, so any
    other bytes are a 400, as is JSON nested deeper than the parser recurses."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise FhirError(
            413, "too-long", "body: is larger than this server accepts", "body"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("body", "is not UTF-8 text") from None
    try:
        body = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise bad("body", "is not JSON") from None
    except RecursionError:
        raise bad("body", "is JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise bad("resourceType", "the body must be a JSON object (a FHIR resource)")
    return body


def _reference(field_name: str, value: object) -> str | None:
    """The ``reference`` of a FHIR Reference (None when it has none, as one naming only an
    identifier); anything but a JSON object with a string there is a 400 naming the field."""
    if not isinstance(value, dict):
        raise bad(field_name, "must be a Reference (a JSON object)")
    reference = value.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise bad(field_name, "a Reference's reference must be a string")
    return reference


def _booked_slot(body: dict[str, Any]) -> str:
    """The id of the one Slot an Appointment to create references."""
    slots = body.get("slot")
    if not isinstance(slots, list) or len(slots) != 1:
        raise bad("Appointment.slot", "give exactly one Slot reference, in a list")
    slot_ref = _reference("Appointment.slot", slots[0])
    if slot_ref is None or not slot_ref.startswith("Slot/"):
        raise bad("Appointment.slot", "must reference a Slot")
    return slot_ref.partition("/")[2]


def _booked_patient(body: dict[str, Any]) -> int:
    """The id of the one Patient among an Appointment's participants."""
    participants = body.get("participant")
    if participants is None:
        participants = []
    if not isinstance(participants, list):
        raise bad("Appointment.participant", "must be a list of participants")
    patients = []
    for participant in participants:
        if not isinstance(participant, dict):
            raise bad("Appointment.participant", "each participant must be a JSON object")
        # A participant may name no actor (a role only): FHIR allows it, and it is not ours.
        if participant.get("actor") is None:
            continue
        actor = _reference("Appointment.participant", participant["actor"])
        if actor is not None and actor.startswith("Patient/"):
            patients.append(actor)
    if len(patients) != 1:
        raise bad("Appointment.participant", "name exactly one Patient")
    return integer_id("Appointment.participant", patients[0], "Patient")


def _appointment_create(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Book from a free Slot: the same rules as every other booking (409 on a conflict)."""
    # Counted with the JSON API's bookings (one scope): each address gets one allowance a
    # minute whichever door it books through, so FHIR is no way round the limit.
    limit = settings.MICRONEEDLING["RATE_LIMITS"]["booking"]
    if too_many("booking", client_address(request) or "unknown", limit):
        response = outcome(
            FhirError(
                429,
                "throttled",
                "too many booking requests from this address; try again in a minute",
            )
        )
        response["Retry-After"] = str(60 + RATE_BUCKET_SECONDS)
        return response
    body = _json_object(request)
    if body.get("resourceType") != "Appointment":
        raise bad("resourceType", "must be Appointment")
    slot_id = _booked_slot(body)
    patient_id = _booked_patient(body)
    person = scoped_rows(KINDS["Patient"], caller).filter(pk=patient_id).first()
    if person is None:
        raise FhirError(404, "not-found", f"Patient/{patient_id} does not exist")
    try:
        provider, place, service, start = _slot_parts(slot_id)
    except FhirError as error:
        raise bad("Appointment.slot", error.diagnostics) from None
    try:
        # The day at the location, as every other booking path screens it (not the server's);
        # a consultation is not screened.
        services.visit_gate(
            patient=person,
            service=service,
            location=place,
            starts_at=start,
            field="Appointment.slot",
            day_field="Appointment.slot",
        )
        visit = services.appointment_book(
            patient=person,
            service=service,
            location=place,
            provider=provider,
            starts_at=start,
            actor=caller.user,
        )
    except BookingConflict as conflict:
        raise FhirError(409, "conflict", f"the slot is no longer free: {conflict}") from None
    except BookingRefused as refused:
        # The request's only time and service are its slot's.
        where = refused.field if (refused.field or "").startswith("Appointment.") else None
        slot_fields = ("starts_at", "service", "service_id")
        where = where or ("Appointment.slot" if refused.field in slot_fields else "Appointment")
        raise FhirError(422, "business-rule", str(refused), where) from None
    visit = KINDS["Appointment"].rows().get(pk=visit.pk)
    location_header = f"{base_url(request)}/Appointment/{visit.pk}"
    return respond(build.appointment(visit), 201, Location=location_header)


@fhir_view
def unknown(request: HttpRequest, rest: str) -> HttpResponse:
    """Anything else under /fhir/R4/: an OperationOutcome, never an HTML page."""
    raise FhirError(400, "not-supported", f"{rest!r} is not something this server offers")


__all__ = ["everything", "instance_endpoint", "metadata", "type_endpoint", "unknown"]
