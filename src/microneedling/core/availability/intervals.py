"""Half-open time intervals and the set operations availability is built from.

Free time is a sorted list of disjoint intervals; every constraint (opening hours, a
provider's schedule, leave, existing reservations) is combined with one linear pass over two
such lists instead of a check per candidate start. The same passes run on aware datetimes
(the public :class:`Interval`) and on whole seconds (inside the slot search, where integer
arithmetic is several times faster), so the merging logic exists once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from heapq import merge
from typing import TypeVar

from microneedling.core.errors import InputError

#: Interval end points: aware datetimes, or whole seconds since the Unix epoch.
T = TypeVar("T", datetime, int)
Pair = tuple[T, T]


def require_aware(field: str, moment: datetime) -> None:
    """Refuse a naive datetime: without a zone, an instant means nothing to a clinic."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(field, f"{moment.isoformat()} must be time-zone aware")


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """The instants from ``start`` (included) to ``end`` (excluded), both time-zone aware.

    Intervals order by start then end, so ``sorted(intervals)`` is a valid input for the
    set operations below.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware("start", self.start)
        require_aware("end", self.end)
        if self.end < self.start:
            raise InputError("end", f"{self.end.isoformat()} is before {self.start.isoformat()}")


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in both ``a`` and ``b``.

    Each input must be sorted by start (overlapping or touching intervals inside one input
    are merged first). The result is sorted, disjoint and in UTC; the work is linear in the
    sizes.
    """
    return _intervals(intersect_pairs(_pairs(a, "a"), _pairs(b, "b")))


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in ``a`` but not in ``b`` (same input rules and cost as :func:`intersect`)."""
    return _intervals(subtract_pairs(_pairs(a, "a"), _pairs(b, "b")))


def union(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in ``a`` or ``b``, merged (same input rules and cost as :func:`intersect`)."""
    return _intervals(union_pairs([_pairs(a, "a"), _pairs(b, "b")]))


def _pairs(intervals: Sequence[Interval], field: str) -> list[Pair[datetime]]:
    # UTC out whatever zones come in: storage is UTC, and the slot search converts UTC
    # datetimes to seconds several times faster than zoneinfo ones.
    return coalesce(
        [(i.start.astimezone(UTC), i.end.astimezone(UTC)) for i in intervals], field=field
    )


def from_utc_pairs(pairs: Iterable[Pair[datetime]]) -> list[Interval]:
    """Intervals from (start, end) pairs that are already aware, UTC and start <= end.

    For adapters that read instants from the database, where the storage guarantees all
    three; skipping the per-interval checks matters when a busy month is thousands of rows.
    """
    return _intervals(pairs)


def _intervals(pairs: Iterable[Pair[datetime]]) -> list[Interval]:
    # These pairs came out of validated Intervals (aware, ordered, now UTC): checking them
    # again cost more than the set operation itself on a busy month, so they skip it.
    out = []
    for start, end in pairs:
        interval = object.__new__(Interval)
        object.__setattr__(interval, "start", start)
        object.__setattr__(interval, "end", end)
        out.append(interval)
    return out


def coalesce(pairs: Iterable[Pair[T]], *, field: str = "intervals") -> list[Pair[T]]:
    """Merge a start-sorted list into disjoint intervals, dropping empty ones.

    Overlapping and touching intervals merge: ``[9, 10)`` and ``[10, 11)`` are one free
    stretch, so a 90-minute visit fits in it. Unsorted input raises :class:`InputError`
    rather than being sorted silently: it always means a caller forgot to sort, and sorting
    here would hide a quadratic caller behind a linear-looking API.
    """
    out: list[Pair[T]] = []
    last_start: T | None = None
    for start, end in pairs:
        if last_start is not None and start < last_start:
            raise InputError(field, "intervals must be sorted by start")
        last_start = start
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def intersect_pairs(a: Sequence[Pair[T]], b: Sequence[Pair[T]]) -> list[Pair[T]]:
    """:func:`intersect` on sorted disjoint ``(start, end)`` pairs (two moving pointers)."""
    out: list[Pair[T]] = []
    i = j = 0
    a_count, b_count = len(a), len(b)
    while i < a_count and j < b_count:
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        start = a_start if a_start > b_start else b_start
        end = a_end if a_end < b_end else b_end
        if start < end:
            out.append((start, end))
        # Whichever ends first cannot meet anything further in the other list.
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return out


def subtract_pairs(a: Sequence[Pair[T]], b: Sequence[Pair[T]]) -> list[Pair[T]]:
    """:func:`subtract` on sorted disjoint ``(start, end)`` pairs (two moving pointers)."""
    out: list[Pair[T]] = []
    j = 0
    for start, end in a:
        # Blocks that end before this interval starts cannot touch it or any later one.
        while j < len(b) and b[j][1] <= start:
            j += 1
        cursor, k = start, j
        while k < len(b) and b[k][0] < end:
            block_start, block_end = b[k]
            if block_start > cursor:
                out.append((cursor, block_start))
            cursor = max(cursor, block_end)
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def union_pairs(lists: Iterable[Sequence[Pair[T]]]) -> list[Pair[T]]:
    """Merge several sorted lists of pairs into one sorted disjoint list (a k-way merge)."""
    return coalesce(merge(*lists))
