"""Half-open time intervals and the set operations availability is built from.

Free time is a sorted list of disjoint intervals; every constraint (opening hours, a
provider's schedule, leave, existing reservations) is combined with one linear pass over two
such lists instead of a check per candidate start. The same passes run on aware datetimes
(the public :class:`Interval`) and on whole seconds (inside the slot search, where integer
arithmetic is several times faster), so the merging logic exists once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, chain, compress, islice
from operator import itemgetter, lt
from typing import TypeVar, overload

from microneedling.core.errors import InputError

_first = itemgetter(0)
_second = itemgetter(1)

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


class FreeSeconds(Sequence[Interval]):
    """Free time kept as sorted, disjoint, non-touching whole seconds since the epoch.

    A read-only sequence of :class:`Interval` (built on access, in UTC) for code that wants
    instants, while the slot search reads :attr:`pairs` directly: an adapter that loads a
    busy season as integers never builds thousands of datetimes only to take them apart.
    Build it with :meth:`of`, which checks the order.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: tuple[Pair[int], ...]) -> None:
        self.pairs = pairs

    @classmethod
    def of(cls, pairs: Iterable[Pair[int]], *, field: str = "free") -> FreeSeconds:
        """Free time from start-sorted pairs; touching or overlapping pairs merge and empty
        ones drop (see :func:`coalesce`), unsorted input raises :class:`InputError`."""
        items = tuple(pairs)
        # Usually the output of a set operation, already in shape: sorted, non-empty,
        # disjoint and not touching is exactly "start0 < end0 < start1 < end1 < ...", which
        # one pass of C-level comparisons confirms; a merge runs only when it fails.
        bounds = list(chain.from_iterable(items))
        if all(map(lt, bounds, islice(bounds, 1, None))):
            return cls(items)
        return cls(tuple(coalesce(items, field=field)))

    @overload
    def __getitem__(self, index: int) -> Interval: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Interval, ...]: ...

    def __getitem__(self, index: int | slice) -> Interval | tuple[Interval, ...]:
        if isinstance(index, slice):
            return tuple(_seconds_interval(pair) for pair in self.pairs[index])
        return _seconds_interval(self.pairs[index])

    def __len__(self) -> int:
        return len(self.pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FreeSeconds):
            return self.pairs == other.pairs
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"FreeSeconds({len(self.pairs)} intervals)"


def _seconds_interval(pair: Pair[int]) -> Interval:
    start, end = pair
    return _intervals([(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))])[0]


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


def subtract_pairs(
    a: Sequence[Pair[T]], b: Sequence[Pair[T]], *, shortest: int = 0
) -> list[Pair[T]]:
    """:func:`subtract` on sorted disjoint ``(start, end)`` pairs. On whole seconds, pieces
    shorter than ``shortest`` seconds are left out (free time no visit phase could use).

    ``b`` need only be sorted by start: its pairs may overlap or touch (bookings and leave
    on one diary), so callers need not merge them first. With ``reach[k]``, the latest end
    among the first ``k + 1`` blocks (never decreasing, so it can be bisected), the free
    pieces inside an interval of ``a`` are: before its first block, between block ``k``'s
    reach and block ``k + 1``'s start wherever the reach falls short of it, and after the
    last block's reach. The passes over ``b`` run in C; Python only touches the gaps.
    """
    starts = list(map(_first, b))
    ends = list(map(_second, b))
    if not all(map(lt, starts, ends)):
        # Empty blocks cover nothing, but would split a free stretch in two touching pieces.
        kept = list(map(lt, starts, ends))
        starts, ends = list(compress(starts, kept)), list(compress(ends, kept))
    if not starts:
        return list(a)
    reach = list(accumulate(ends, max))
    out: list[Pair[T]] = []
    for low, high in a:
        # Blocks before ``first`` end by ``low``; blocks from ``last`` on start at ``high``.
        first = bisect_right(reach, low)
        last = bisect_left(starts, high, lo=first)
        if first == last:
            _keep(out, low, high, shortest)
            continue
        _keep(out, low, starts[first], shortest)
        gaps = zip(reach[first : last - 1], starts[first + 1 : last], strict=True)
        if shortest:  # whole seconds: the length can be compared with a number
            out.extend([(end, start) for end, start in gaps if start - end >= shortest])
        else:
            out.extend([(end, start) for end, start in gaps if end < start])
        _keep(out, reach[last - 1], high, shortest)
    return out


def _keep(out: list[Pair[T]], start: T, end: T, shortest: int) -> None:
    """Add ``(start, end)`` if it is not empty (and, on seconds, at least ``shortest``)."""
    if start < end and (not shortest or end - start >= shortest):  # type: ignore[operator]
        out.append((start, end))


def union_pairs(lists: Iterable[Sequence[Pair[T]]]) -> list[Pair[T]]:
    """Merge several sorted lists of pairs into one sorted disjoint list.

    Sorting the concatenation is the k-way merge here: the sort finds the sorted runs and
    merges them in C, several times faster than a merge driven from Python.
    """
    return coalesce(sorted(chain.from_iterable(lists)))
