"""FHIR search parameters: parsing what clients send, with a 400 OperationOutcome that names
the parameter for anything we cannot honour (an unknown parameter, a malformed date)."""

from __future__ import annotations

import re
from calendar import isleap, monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

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


#: The first and last instants the calendar holds (Python's and so every stored date's).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def _instant(moment: datetime, later: timedelta = timedelta(0)) -> datetime:
    """``moment`` plus ``later``, in UTC, held to the calendar's edges.

    FHIR dates run from 0001-01-01 to 9999-12-31 in any offset, so a real search value can
    begin or end past an edge once in UTC (0001-01-01T00:00:00+05:00 is still year 0 there;
    the day 9999-12-31 ends in year 10000). No record lies past an edge, so the edge stands
    in for such a bound (an end held to the last instant leaves out only that microsecond).
    The sum is taken in timedelta, which does not overflow where datetime would.
    """
    offset = moment.utcoffset() or timedelta(0)
    # The wall time read as if in UTC, less its offset: the instant, as a span from EARLIEST.
    since = moment.replace(tzinfo=UTC) - EARLIEST - offset + later
    return EARLIEST + min(max(since, timedelta(0)), LATEST - EARLIEST)


def _bounds(parameter: str, text: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date or dateTime value covers: [start, end), within the calendar
    (a 400 naming ``parameter`` for a value that is not a real date or dateTime)."""
    if _DATE.match(text):
        parts = [int(p) for p in text.split("-")]
        year, month, day = (*parts, 1, 1)[:3]
        try:
            start = datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            raise bad(parameter, f"{text!r} is not a real date") from None
        if len(parts) == 1:
            days = 366 if isleap(year) else 365
        elif len(parts) == 2:
            days = monthrange(year, month)[1]
        else:
            days = 1
        return start, _instant(start, timedelta(days=days))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad(parameter, f"{text!r} is not a FHIR date or dateTime") from None
    if moment.tzinfo is None:
        raise bad(parameter, f"{text!r} needs a time zone")
    return _instant(moment), _instant(moment, timedelta(seconds=1))


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


def instant_test(parameter: str, values: list[str]) -> Callable[[datetime], bool] | None:
    """Whether an instant meets every dateTime value of ``parameter`` (with its prefix), or
    ``None`` when no value is a dateTime. Plain dates are left out: for slots a date is a
    day at the location, which :func:`window` already chose."""
    bounds: list[tuple[str, datetime, datetime]] = []
    for raw in values:
        prefix, text = ("eq", raw)
        if raw[:2] in PREFIXES:
            prefix, text = raw[:2], raw[2:]
        if not _DATE.match(text):
            bounds.append((prefix, *_bounds(parameter, text)))
    if not bounds:
        return None
    return lambda moment: all(_meets(prefix, a, b, moment) for prefix, a, b in bounds)


def _meets(prefix: str, start: datetime, end: datetime, moment: datetime) -> bool:
    """``moment`` against the span ``[start, end)`` a value covers, as ``date_filter`` reads
    each prefix."""
    if prefix in ("gt", "sa"):
        return moment >= end
    if prefix == "ge":
        return moment >= start
    if prefix in ("lt", "eb"):
        return moment < start
    if prefix == "le":
        return moment < end
    inside = start <= moment < end
    return not inside if prefix == "ne" else inside


def window(
    parameter: str, values: list[str], *, default_days: int, most_days: int
) -> tuple[date, date]:
    """The days a Slot search covers from ``ge``/``gt``/``le``/``lt``/``eq`` start values (the
    days asked for: they may lie anywhere on the calendar, its first and last included)."""
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
            # The day of the last instant covered; a period wholly before the calendar
            # (held to its first instant) ends on its first day.
            last = (end - timedelta(microseconds=1)).date() if end > EARLIEST else date.min
        if prefix == "ne":
            raise bad(parameter, "'ne' is not supported for slots")
    today = datetime.now(tz=UTC).date()
    first = first or today
    # A search from the calendar's last days gets the days left, not an overflow.
    last = last or first + timedelta(days=min(default_days - 1, (date.max - first).days))
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
