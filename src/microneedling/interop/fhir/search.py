"""FHIR search parameters: parsing what clients send, with a 400 OperationOutcome that names
the parameter for anything we cannot honour (an unknown parameter, a malformed date)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q

from microneedling.core.ids import is_record_id

#: Search result parameters every type accepts.
CONTROL = {"_count", "_offset", "_include", "_format", "_summary"}
DEFAULT_COUNT = 20
MAX_COUNT = 100
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass
class FhirError(Exception):
    """A request we answer with an OperationOutcome: HTTP ``status``, FHIR issue ``code``."""

    status: int
    code: str
    diagnostics: str
    expression: str | None = None


def bad(parameter: str, problem: str) -> FhirError:
    """A 400 naming the parameter."""
    return FhirError(400, "invalid", f"{parameter}: {problem}", parameter)


def reference_id(parameter: str, value: str, kind: str) -> str:
    """``Patient/12`` or ``12`` → ``"12"``; another type's reference is refused."""
    if "/" in value:
        found_kind, _, value = value.rpartition("/")
        if found_kind.rsplit("/", 1)[-1] != kind:
            raise bad(parameter, f"expects a reference to {kind}, not {found_kind}")
    if not value:
        raise bad(parameter, "is empty")
    return value


def integer_id(parameter: str, value: str, kind: str) -> int:
    """A reference whose id is one of our integer keys."""
    text = reference_id(parameter, value, kind)
    if not is_record_id(text):
        raise bad(parameter, f"{text!r} is not a {kind} id")
    return int(text)


def _bounds(parameter: str, text: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date or dateTime value covers: [start, end)."""
    if _DATE.match(text):
        parts = [int(p) for p in text.split("-")]
        try:
            if len(parts) == 1:
                start, end = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
            elif len(parts) == 2:
                start = date(parts[0], parts[1], 1)
                end = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
            else:
                start = date(*parts)
                end = start + timedelta(days=1)
        except ValueError:
            raise bad(parameter, f"{text!r} is not a real date") from None
        return (
            datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end, time.min, tzinfo=UTC),
        )
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad(parameter, f"{text!r} is not a FHIR date or dateTime") from None
    if moment.tzinfo is None:
        raise bad(parameter, f"{text!r} needs a time zone")
    return moment, moment + timedelta(seconds=1)


def date_filter(parameter: str, values: list[str], field: str) -> Q:
    """Every value of a date parameter (prefixes eq, ne, gt, lt, ge, le, sa, eb) on ``field``."""
    query = Q()
    for raw in values:
        prefix, text = ("eq", raw)
        if raw[:2] in PREFIXES:
            prefix, text = raw[:2], raw[2:]
        start, end = _bounds(parameter, text)
        query &= {
            "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
            "ne": ~Q(**{f"{field}__gte": start, f"{field}__lt": end}),
            "gt": Q(**{f"{field}__gte": end}),
            "sa": Q(**{f"{field}__gte": end}),
            "ge": Q(**{f"{field}__gte": start}),
            "lt": Q(**{f"{field}__lt": start}),
            "eb": Q(**{f"{field}__lt": start}),
            "le": Q(**{f"{field}__lt": end}),
        }[prefix]
    return query


def window(
    parameter: str, values: list[str], *, default_days: int, most_days: int
) -> tuple[date, date]:
    """The days a Slot search covers from ``ge``/``gt``/``le``/``lt``/``eq`` start values."""
    first: date | None = None
    last: date | None = None
    for raw in values:
        prefix, text = ("eq", raw)
        if raw[:2] in PREFIXES:
            prefix, text = raw[:2], raw[2:]
        start, end = _bounds(parameter, text)
        if prefix in ("ge", "gt", "sa", "eq"):
            first = start.date()
        if prefix in ("le", "lt", "eb", "eq"):
            last = (end - timedelta(microseconds=1)).date()
        if prefix == "ne":
            raise bad(parameter, "'ne' is not supported for slots")
    today = datetime.now(tz=UTC).date()
    first = first or today
    last = last or first + timedelta(days=default_days - 1)
    if last < first:
        raise bad(parameter, "ends before it starts")
    if (last - first).days >= most_days:
        raise bad(parameter, f"ask for at most {most_days} days of slots at a time")
    return first, last


def paging(params: dict[str, list[str]]) -> tuple[int, int]:
    """``_count`` (1–100, default 20) and ``_offset`` (from 0)."""
    count, offset = DEFAULT_COUNT, 0
    for name in ("_count", "_offset"):
        if name not in params:
            continue
        text = params[name][-1]
        if not is_record_id(text):
            raise bad(name, f"{text!r} is not a whole number")
        number = int(text)
        if name == "_count":
            if not 1 <= number <= MAX_COUNT:
                raise bad(name, f"must be from 1 to {MAX_COUNT}")
            count = number
        else:
            offset = number
    return count, offset
