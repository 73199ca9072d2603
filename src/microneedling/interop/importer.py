"""Import from the system a clinic leaves behind: patients, providers and future visits from
CSV files (the columns are in ``docs/import.md``).

Every row is checked first, the visits through the same booking service as any other
booking, inside one transaction: a dry run rolls it back and reports every problem by file,
line and column; applying commits only when there is none (all or nothing).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor
from microneedling.audit.services import audit_record
from microneedling.core.dates import wall_clock_problem
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.core.screening import EARLIEST_DATE, LATEST_DATE
from microneedling.directory.models import (
    Location,
    Organization,
    Provider,
    ProviderSchedule,
    Service,
)
from microneedling.patients.models import Patient
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.spacing import treatment_spacing_check

COLUMNS = {
    "patients": ("external_id", "first_name", "last_name", "email", "birth_date"),
    "providers": ("external_id", "display_name", "role", "location", "weekdays", "starts", "ends"),
    "appointments": ("external_id", "patient", "provider", "location", "service", "starts_at"),
}
OPTIONAL = {
    "patients": ("phone", "zip_code", "timezone"),
    "providers": (),
    "appointments": ("status",),
}
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one cell (or one row)."""

    file: str
    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}.csv line {self.line}, {self.column}: {self.problem}"


@dataclass
class ImportReport:
    """What an import did, or would do."""

    applied: bool
    patients: int = 0
    providers: int = 0
    appointments: int = 0
    #: Patients and providers of the file found already here (matched, not created again),
    #: and visits already booked as the file has them (an import run twice, or resumed).
    matched: int = 0
    already_booked: int = 0
    #: Treatments kept at the time the patient agreed in the old system although they come
    #: within the shortest interval of another treatment of the same skin: a clinician
    #: should look at them (the booking rules would refuse such a time today).
    too_soon: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "applied": self.applied,
            "patients": self.patients,
            "providers": self.providers,
            "appointments": self.appointments,
            "matched": self.matched,
            "already_booked": self.already_booked,
            "too_soon": self.too_soon,
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "problem": p.problem}
                for p in self.problems
            ],
        }


class _Rollback(Exception):
    pass


def _first_line(last: int, row: dict[str | None, Any]) -> int:
    """The line of the file a row starts on, as an editor numbers it: the reader's count is
    of the row's last line, after any blank lines it skipped, and a quoted cell may hold
    line breaks of its own."""
    cells = [v for k, v in row.items() if k is not None and isinstance(v, str)]
    cells += row.get(None) or []  # cells beyond the header's columns
    return last - sum(cell.count("\n") for cell in cells)


def _rows(name: str, text: str | None, report: ImportReport) -> list[tuple[int, dict[str, str]]]:
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in COLUMNS[name] if c not in header]
        unknown = [c for c in header if c not in COLUMNS[name] + OPTIONAL[name]]
        for column in missing:
            report.problems.append(RowProblem(name, 1, column, "this column is missing"))
        for column in unknown:
            report.problems.append(
                RowProblem(name, 1, column, "unknown column (see docs/import.md)")
            )
        if missing:
            return []
        for row in reader:
            line = _first_line(reader.line_num, row)
            extra = row.get(None) or []
            if any(cell.strip() for cell in extra):
                # Cells past the header's last column (an unquoted comma, a column the header
                # lacks) would be dropped unread, and the row taken for what is left of it.
                # Empty ones are only a trailing comma, as spreadsheets save rows.
                report.problems.append(
                    RowProblem(
                        name,
                        line,
                        "row",
                        f"has {len(header) + len(extra)} cells, the header {len(header)}: "
                        "quote a cell that holds a comma",
                    )
                )
                continue
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            # Python's csv reader takes a NUL byte that no database text field can hold
            # (PostgreSQL refuses it outright): refuse it here, by line and column.
            nul = next((k for k, v in cells.items() if "\x00" in v or "\x00" in k), None)
            if nul is not None:
                report.problems.append(RowProblem(name, line, nul, "holds a NUL byte"))
                continue
            rows.append((line, cells))
    except csv.Error as error:
        # A field over the csv module's limit (131072 characters), a NUL byte: the rest of
        # the file cannot be trusted, so the problem ends the file (and nothing is written).
        # The inner reader's count: DictReader's own is only updated after a good row.
        line = max(reader.reader.line_num, 1)
        report.problems.append(RowProblem(name, line, "row", f"cannot be read as CSV ({error})"))
    return rows


def _note(report: ImportReport, file: str, line: int, column: str, problem: str) -> None:
    report.problems.append(RowProblem(file, line, column, problem))


def _required(name: str, line: int, row: dict[str, str], report: ImportReport) -> bool:
    ok = True
    for column in COLUMNS[name]:
        if not row.get(column):
            report.problems.append(RowProblem(name, line, column, "is empty"))
            ok = False
    return ok


def _fits(
    model: type[Patient] | type[Provider],
    name: str,
    line: int,
    row: dict[str, str],
    report: ImportReport,
) -> None:
    """Note every cell longer than its column: PostgreSQL refuses the row with an error that
    aborts the whole transaction (SQLite would silently store it)."""
    for column, value in row.items():
        try:
            longest = getattr(model._meta.get_field(column), "max_length", None)
        except FieldDoesNotExist:  # a column that is not stored as it is (external_id)
            continue
        if longest is not None and len(value) > longest:
            _note(report, name, line, column, f"is longer than {longest} characters")


def _patients(
    rows: list[tuple[int, dict[str, str]]], org: Organization, report: ImportReport
) -> dict[str, Patient]:
    made: dict[str, Patient] = {}
    created = 0
    for line, row in rows:
        if not _required("patients", line, row, report):
            continue
        problems = len(report.problems)
        key = row["external_id"]
        if key in made:
            _note(report, "patients", line, "external_id", "appears twice")
        try:
            validate_email(row["email"])
        except ValidationError:
            _note(report, "patients", line, "email", "is not an email address")
        _fits(Patient, "patients", line, row, report)
        try:
            born = date.fromisoformat(row["birth_date"])
            if born >= timezone.localdate():
                _note(report, "patients", line, "birth_date", "is not in the past")
            elif born < EARLIEST_DATE:
                # The same bound as the intake's: no patient alive was born earlier.
                _note(report, "patients", line, "birth_date", f"is before {EARLIEST_DATE}")
        except ValueError:
            _note(report, "patients", line, "birth_date", "use YYYY-MM-DD")
            born = date(1900, 1, 1)
        if row.get("zip_code") and not _ZIP.fullmatch(row["zip_code"]):
            # Distances for re-homing are read from it; a wrong one would quietly give none.
            _note(report, "patients", line, "zip_code", "use a US ZIP code: 12345 or 12345-6789")
        zone = row.get("timezone") or "America/Chicago"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            _note(report, "patients", line, "timezone", f"unknown zone {zone!r}")
        if len(report.problems) > problems:
            continue
        # The same person already here (an earlier import, or booked directly): theirs is
        # the record to book on, so their own visits keep them from being double-booked.
        found = (
            Patient.objects.filter(organization=org, email__iexact=row["email"], birth_date=born)
            .order_by("pk")
            .first()
        )
        if found is not None:
            # Twins sharing a parent's address share both keys; booking one on the other's
            # record would put a visit, and its screening, on the wrong person. A name that
            # differs is for a person to look at, not for the import to settle.
            for column in ("first_name", "last_name"):
                if getattr(found, column).strip().casefold() != row[column].strip().casefold():
                    _note(
                        report,
                        "patients",
                        line,
                        column,
                        "differs from the patient here with this email and birth date",
                    )
            if len(report.problems) > problems:
                continue
            made[key] = found
            report.matched += 1
            continue
        created += 1
        made[key] = Patient.objects.create(
            organization=org,
            first_name=row["first_name"],
            last_name=row["last_name"],
            email=row["email"],
            phone=row.get("phone", ""),
            birth_date=born,
            zip_code=row.get("zip_code", ""),
            timezone=zone,
        )
    report.patients = created
    return made


def _weekdays(text: str) -> list[int] | None:
    days: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS or DAYS[last] < DAYS[first]:
                return None
            days += range(DAYS[first], DAYS[last] + 1)
        elif part in DAYS:
            days.append(DAYS[part])
        else:
            return None
    return sorted(set(days))


def _providers(
    rows: list[tuple[int, dict[str, str]]],
    org: Organization,
    locations: dict[str, Location],
    report: ImportReport,
) -> dict[str, Provider]:
    made: dict[str, Provider] = {}
    named: dict[str, tuple[str, str]] = {}  # external_id: the first row's name and role
    created = 0
    roles = {r.value for r in Provider.Role}
    for line, row in rows:
        if not _required("providers", line, row, report):
            continue
        problems = len(report.problems)
        _fits(Provider, "providers", line, {"display_name": row["display_name"]}, report)
        if row["role"] not in roles:
            _note(report, "providers", line, "role", f"use one of {', '.join(sorted(roles))}")
        place = locations.get(row["location"])
        if place is None:
            _note(report, "providers", line, "location", "no such location slug")
        days = _weekdays(row["weekdays"])
        if not days:
            _note(report, "providers", line, "weekdays", "e.g. mon-fri or mon,wed")
        hours = []
        for column in ("starts", "ends"):
            if not _HHMM.match(row[column]):
                report.problems.append(RowProblem("providers", line, column, "use HH:MM"))
            else:
                hour, minute = (int(x) for x in row[column].split(":"))
                if hour > 23 or minute > 59:
                    report.problems.append(RowProblem("providers", line, column, "is not a time"))
                else:
                    hours.append(time(hour, minute))
        if len(hours) == 2 and hours[0] >= hours[1]:
            _note(report, "providers", line, "ends", "is not after starts")
        who = named.setdefault(row["external_id"], (row["display_name"], row["role"]))
        if who != (row["display_name"], row["role"]):
            # More rows of one provider add hours; a row that names someone else under the
            # same id is a mistake in the file, not a second name for the first person.
            _note(
                report,
                "providers",
                line,
                "external_id",
                "is given on an earlier line to a provider of another name or role",
            )
        if len(report.problems) > problems or place is None or not days:
            continue
        provider = made.get(row["external_id"])
        if provider is None:
            same_name = list(
                Provider.objects.filter(organization=org, display_name=row["display_name"])
            )
            if len(same_name) > 1:
                _note(
                    report,
                    "providers",
                    line,
                    "display_name",
                    f"matches {len(same_name)} providers here; give each a distinct name first",
                )
                continue
            if same_name:  # already here (an earlier import): add only hours it lacks
                provider = made[row["external_id"]] = same_name[0]
                report.matched += 1
            else:
                provider = made[row["external_id"]] = Provider.objects.create(
                    organization=org, display_name=row["display_name"], role=row["role"]
                )
                created += 1
        has = set(
            ProviderSchedule.objects.filter(provider=provider, location=place).values_list(
                "weekday", "starts", "ends"
            )
        )
        ProviderSchedule.objects.bulk_create(
            [
                ProviderSchedule(
                    provider=provider,
                    location=place,
                    weekday=d,
                    starts=hours[0],
                    ends=hours[1],
                    # The location's own day: in the evening in the Americas the
                    # server's (UTC) date is already tomorrow, and today's hours would go.
                    valid_from=timezone.localdate(timezone=ZoneInfo(place.timezone)),
                )
                for d in days
                if (d, hours[0], hours[1]) not in has
            ]
        )
    report.providers = created
    return made


def _start(text: str, zone: str) -> datetime:
    """The aware start of a visit; ValueError says what is wrong with ``text``."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("use YYYY-MM-DDTHH:MM[+offset]") from None
    # Within the intake's range, so that converting to UTC (and every reminder counted from
    # the visit) stays on the calendar: 9999-12-31T23:00-12:00 is in the year 10000 in UTC.
    if not EARLIEST_DATE <= moment.date() <= LATEST_DATE:
        raise ValueError(f"is not between {EARLIEST_DATE} and {LATEST_DATE}")
    if moment.tzinfo is None:
        # A time without an offset is the location's wall clock: refuse one the clocks skip
        # or repeat rather than guess which instant the old system meant.
        problem = wall_clock_problem(moment, zone)
        if problem is not None:
            raise ValueError(problem)
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def _provider_named(
    name: str,
    line: int,
    providers: dict[str, Provider],
    existing: dict[str, list[Provider]],
    report: ImportReport,
) -> Provider | None:
    """The file's provider by external id, else the one provider here of that name (two of
    one name are refused: the visit would land on either)."""
    named = existing.get(name, [])
    provider = providers.get(name) or (named[0] if len(named) == 1 else None)
    if provider is None and len(named) > 1:
        _note(
            report,
            "appointments",
            line,
            "provider",
            f"matches {len(named)} providers; name one by its external_id in providers.csv",
        )
    elif provider is None:
        _note(report, "appointments", line, "provider", "no such provider")
    return provider


def _appointments(
    rows: list[tuple[int, dict[str, str]]],
    *,
    org: Organization,
    patients: dict[str, Patient],
    providers: dict[str, Provider],
    locations: dict[str, Location],
    service_map: dict[str, str],
    actor: Actor,
    report: ImportReport,
) -> None:
    offered = list(Service.objects.filter(organization=org, active=True))
    by_key = {s.code: s for s in offered} | {s.name: s for s in offered}
    existing: dict[str, list[Provider]] = {}
    for known in Provider.objects.filter(organization=org).order_by("pk"):
        existing.setdefault(known.display_name, []).append(known)
    now = timezone.now()
    seen: set[str] = set()
    for line, row in rows:
        if not _required("appointments", line, row, report):
            continue
        problems = len(report.problems)
        if row["external_id"] in seen:
            _note(report, "appointments", line, "external_id", "appears twice")
        seen.add(row["external_id"])
        patient = patients.get(row["patient"])
        if patient is None:
            _note(report, "appointments", line, "patient", "no such patient in patients.csv")
        provider = _provider_named(row["provider"], line, providers, existing, report)
        place = locations.get(row["location"])
        if place is None:
            _note(report, "appointments", line, "location", "no such location slug")
        wanted = service_map.get(row["service"], row["service"])
        service = by_key.get(wanted)
        if service is None:
            _note(report, "appointments", line, "service", f"no service {wanted!r}: map it")
        starts: datetime | None = None
        try:
            starts = _start(row["starts_at"], place.timezone if place else "UTC")
        except ValueError as error:
            _note(report, "appointments", line, "starts_at", str(error))
        if starts is not None and starts <= now:
            _note(report, "appointments", line, "starts_at", "is in the past")
        status = row.get("status") or "booked"
        if status != "booked":
            _note(report, "appointments", line, "status", "only future booked visits are imported")
        if len(report.problems) > problems:
            continue
        assert patient and provider and place and service and starts  # noqa: S101 (checked)
        if Appointment.objects.filter(
            patient=patient,
            provider=provider,
            location=place,
            starts_at=starts,
            status__in=Appointment.HOLDING,
        ).exists():
            report.already_booked += 1  # imported before: the same visit, not a second one
            continue
        try:
            with transaction.atomic():  # a savepoint: one refused row leaves the rest
                visit = services.appointment_book(
                    patient=patient,
                    service=service,
                    location=place,
                    provider=provider,
                    starts_at=starts,
                    actor=actor,
                    now=now - timedelta(days=1),  # the old system's notice rules applied
                    confirm=False,
                    # Agreed before: kept, and counted for a clinician to look at.
                    check_spacing=False,
                )
                report.too_soon += _too_soon(visit)
        except (BookingConflict, BookingRefused) as error:
            # A refusal about the place, the provider or the service belongs under that
            # column (a location closing by then, say); the rest are about the time.
            field = getattr(error, "field", None)
            column = (
                field if field in ("location", "provider", "service", "patient") else "starts_at"
            )
            _note(report, "appointments", line, column, str(error))
            continue
        report.appointments += 1


def _too_soon(visit: Appointment) -> int:
    """1 when ``visit`` is a treatment too soon before or after another of its patient's
    treatments of the same skin, else 0."""
    if visit.service.kind != Service.Kind.TREATMENT:
        return 0
    try:
        treatment_spacing_check(
            patient_id=visit.patient_id,
            areas=visit.service.areas,
            starts_at=visit.starts_at,
            zone=visit.location.timezone,
            excluding_appointment=visit.pk,
        )
    except BookingRefused:
        return 1
    return 0


def clinic_import(
    *,
    organization: Organization,
    patients_csv: str | None,
    providers_csv: str | None,
    appointments_csv: str | None,
    service_map: dict[str, str] | None = None,
    actor: Actor = None,
    apply: bool,
    audit_details: dict[str, str] | None = None,
) -> ImportReport:
    """Check (and with ``apply``, write) the files: all or nothing. ``audit_details`` go into
    the import's audit event (who ran it, when no account stands behind the ``actor``)."""
    report = ImportReport(applied=False)
    locations = {loc.slug: loc for loc in Location.objects.filter(organization=organization)}
    try:
        with transaction.atomic():
            made_patients = _patients(_rows("patients", patients_csv, report), organization, report)
            made_providers = _providers(
                _rows("providers", providers_csv, report),
                organization,
                locations,
                report,
            )
            _appointments(
                _rows("appointments", appointments_csv, report),
                org=organization,
                patients=made_patients,
                providers=made_providers,
                locations=locations,
                service_map=service_map or {},
                actor=actor,
                report=report,
            )
            if report.problems or not apply:
                raise _Rollback
            audit_record(
                actor=actor,
                action="clinic_import",
                object_type="organization",
                object_id=organization.pk,
                details={k: v for k, v in report.as_dict().items() if k != "problems"}
                | (audit_details or {}),
            )
            report.applied = True
    except _Rollback:
        report.applied = False
    return report
