"""Start times at which every phase of a visit finds its resources.

A visit is a sequence of phases run back to back; each phase needs some resource kinds
(check-in needs a room, the procedure a provider, the room and a device). Rather than test
every candidate start against every reservation, the search turns each resource's free time
into the set of *starts* it can serve and combines those sets with linear interval passes:

* a phase of ``length`` at ``offset`` from the start can use resource ``r`` from any start
  ``s`` with ``[s + offset, s + offset + length)`` inside one free interval of ``r``: the
  free interval shifted back by ``offset`` and shortened by ``length`` ("eroded");
* the provider and the room are *held* for the visit (one provider treats the patient, the
  patient does not change rooms), so for each of them the sets of its phases intersect, and
  the kind's set is the union over providers (or rooms);
* a device is picked per phase, so for each device phase the set is the union over devices;
* the valid starts are the intersection over kinds, and only then is the grid walked.

The cost is linear in the number of free intervals plus the number of starts returned, which
is what keeps a busy provider's month in milliseconds. Everything runs on whole seconds since
the epoch; a start ``s`` is in a set ``[a, b)`` of integers exactly when the visit fits.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from math import ceil, floor
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from microneedling.core.availability.clock import (
    Clock,
    instant,
    seconds_ceil,
    seconds_floor,
    zone_info,
)
from microneedling.core.availability.intervals import (
    FreeSeconds,
    Interval,
    Pair,
    coalesce,
    intersect_pairs,
    require_aware,
    subtract_pairs,
    union_pairs,
)
from microneedling.core.errors import InputError

#: The resource kinds a phase can need.
KINDS: Final = ("provider", "room", "device")

Seconds = Pair[int]
Assignment = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of a visit: ``minutes`` long, holding the resource kinds in ``needs``."""

    code: str
    minutes: int
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise InputError(f"phases.{self.code}.minutes", "must be positive")
        for kind in self.needs:
            if kind not in KINDS:
                raise InputError(f"phases.{self.code}.needs", f"unknown resource kind {kind!r}")
        if len(set(self.needs)) != len(self.needs):
            raise InputError(f"phases.{self.code}.needs", "names a kind twice")


@dataclass(frozen=True, slots=True)
class Resource:
    """A provider, room or device and its free time (sorted by start, e.g. from
    :func:`~microneedling.core.availability.free_time`)."""

    id: str
    kind: str
    free: Sequence[Interval]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"resources.{self.id}.kind", f"unknown resource kind {self.kind!r}")
        if isinstance(self.free, FreeSeconds):
            return  # checked and merged when it was built
        # The search bisects this list, which is only sound on sorted, disjoint intervals;
        # checking costs one comparison per interval. Touching intervals are merged here,
        # once, so that a visit may run across the seam without the search merging again.
        touching = False
        for before, after in pairwise(self.free):
            if after.start < before.end:
                raise InputError(
                    f"resources.{self.id}.free",
                    "free intervals must be sorted and must not overlap",
                )
            touching = touching or after.start == before.end
        if touching:
            merged = coalesce([(i.start, i.end) for i in self.free])
            object.__setattr__(self, "free", tuple(Interval(a, b) for a, b in merged))

    @classmethod
    def of_seconds(cls, *, id: str, kind: str, free: Iterable[Seconds]) -> Resource:
        """A resource whose free time is given as start-sorted whole seconds since the epoch
        (see :class:`FreeSeconds`): the fast path for adapters reading busy seasons."""
        return cls(id=id, kind=kind, free=FreeSeconds.of(free, field=f"resources.{id}.free"))


@dataclass(frozen=True, slots=True)
class Slot:
    """A start time that works: the visit's span and the resource each phase uses.

    ``assignment[phase_code][kind]`` is a resource id. It is read-only (and shared between
    slots that use the same resources), so a caller cannot alter another slot by accident.
    Slots compare by all three fields and hash by their span (mappings are not hashable).
    """

    start: datetime
    end: datetime
    assignment: Assignment = field(hash=False)

    @property
    def provider_id(self) -> str | None:
        """The visit's provider, or None when no phase needs one."""
        for needs in self.assignment.values():
            if "provider" in needs:
                return needs["provider"]
        return None


def find_starts(
    *,
    phases: Sequence[Phase],
    resources: Sequence[Resource],
    start: datetime,
    end: datetime,
    grid_minutes: int,
    zone: str,
    not_before: datetime,
    not_after: datetime,
    same_room: bool = True,
    provider_ids: Sequence[str] | None = None,
    every_provider: bool = False,
    patient_busy: Sequence[tuple[datetime, datetime]] = (),
) -> list[Slot]:
    """Every grid start in ``[start, end)`` at which each phase finds its resources.

    Starts lie on a grid of ``grid_minutes`` counted from local midnight in ``zone``. A
    start must also be at or after ``not_before`` (minimum notice) and before ``not_after``
    (booking horizon); the visit may run past ``end`` and ``not_after``, since free time
    already bounds it. ``same_room`` keeps the patient in one room for all room phases; the
    provider is always one for the visit. ``provider_ids`` restricts which providers count.
    ``patient_busy`` are the patient's other visits: no start is offered whose visit would
    overlap one (a person cannot be in two chairs at once).

    Where several resources fit, the first in ``resources`` order is chosen, so the caller
    states its preference by ordering them. With ``every_provider`` a start yields one slot
    per provider able to take it (in that order), for searches that must compare providers;
    otherwise one slot per start. Slots are sorted by start.
    """
    board = Board.build(
        phases=phases,
        resources=resources,
        start=start,
        end=end,
        grid_minutes=grid_minutes,
        zone=zone,
        not_before=not_before,
        not_after=not_after,
        same_room=same_room,
        provider_ids=provider_ids,
        patient_busy=patient_busy,
    )
    if every_provider:
        by_provider = board.provider_starts()
        pairs = [
            (s, rank) for rank, (_, starts) in enumerate(by_provider) for s in board.grid(starts)
        ]
        pairs.sort()
        return [board.slot(s, by_provider[rank][0]) for s, rank in pairs]
    return [board.slot(s, None) for s in board.grid(board.any_provider_starts())]


@dataclass(frozen=True, slots=True)
class _Options:
    """Resources that can serve one need, each with the starts it can serve (parallel
    lists of interval starts and ends, for bisecting)."""

    ids: tuple[str, ...]
    starts: tuple[tuple[int, ...], ...]
    ends: tuple[tuple[int, ...], ...]
    sets: tuple[list[Seconds], ...]

    @classmethod
    def of(cls, items: list[tuple[str, list[Seconds]]]) -> _Options:
        # Resources with the very same start set (idle rooms, pens, providers on one shift)
        # share one list object; its bisect columns are built once.
        columns: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for _, pairs in items:
            if id(pairs) not in columns:
                columns[id(pairs)] = (tuple(map(_start_of, pairs)), tuple(map(_end_of, pairs)))
        return cls(
            ids=tuple(rid for rid, _ in items),
            starts=tuple(columns[id(pairs)][0] for _, pairs in items),
            ends=tuple(columns[id(pairs)][1] for _, pairs in items),
            sets=tuple(pairs for _, pairs in items),
        )

    def union(self) -> list[Seconds]:
        """Starts that at least one of the resources can serve."""
        distinct = {id(pairs): pairs for pairs in self.sets}
        return union_pairs(distinct.values())

    def first_serving(self, moment: int) -> str | None:
        """The first resource (in preference order) that can serve a start at ``moment``."""
        for rid, starts, ends in zip(self.ids, self.starts, self.ends, strict=True):
            index = bisect_right(starts, moment) - 1
            if index >= 0 and moment < ends[index]:
                return rid
        return None


@dataclass(frozen=True, eq=False)
class Board:
    """A prepared search: the start sets of every resource for one service and span.

    Shared by :func:`find_starts` and the course search, which asks it per provider and
    per day instead of materialising every slot of several months.
    """

    phases: tuple[Phase, ...]
    length: int
    clock: Clock
    tz: ZoneInfo
    step: int
    #: Providers (filtered, in preference order) with the starts each can take.
    providers: _Options | None
    #: Held kinds other than the provider (the room when ``same_room``).
    held: dict[str, _Options]
    #: Kinds chosen phase by phase: ``(phase code, kind) -> options``.
    per_phase: dict[tuple[str, str], _Options]
    #: Starts every non-provider need can serve, inside the bookable span.
    common: list[Seconds]
    _assignments: dict[tuple[str | None, ...], Assignment] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        phases: Sequence[Phase],
        resources: Sequence[Resource],
        start: datetime,
        end: datetime,
        grid_minutes: int,
        zone: str,
        not_before: datetime,
        not_after: datetime,
        same_room: bool = True,
        provider_ids: Sequence[str] | None = None,
        patient_busy: Sequence[tuple[datetime, datetime]] = (),
    ) -> Board:
        """Check the inputs and compute every resource's start set (see the module doc).
        Starts whose visit would overlap one of ``patient_busy`` are left out."""
        _check_inputs(phases, grid_minutes, start, end, not_before, not_after)
        busy = busy_seconds(patient_busy)
        tz = zone_info(zone)
        # Starts must fall in [low, high); only free time a visit starting there can touch
        # is converted, which matters when a caller passes months of free time.
        low = seconds_ceil(max(start, not_before))
        high = max(seconds_ceil(min(end, not_after)), low)
        length = 60 * sum(p.minutes for p in phases)
        spans = _spans(phases, same_room)
        free = _free_by_kind(resources, spans, provider_ids, low, high + length)

        held: dict[str, _Options] = {}
        per_phase: dict[tuple[str, str], _Options] = {}
        serves = _Shared(_serves_all)
        for kind, kind_spans in spans.items():
            if kind_spans[0][0] is None:  # held for the visit: one resource for every span
                covered = tuple((o, n) for _, o, n in kind_spans)
                held[kind] = _Options.of(
                    [(rid, serves(pairs, covered)) for rid, pairs in free[kind]]
                )
            else:
                for code, o, n in kind_spans:
                    per_phase[str(code), kind] = _Options.of(
                        [(rid, serves(pairs, ((o, n),))) for rid, pairs in free[kind]]
                    )
        providers = held.pop("provider", None)

        common: list[Seconds] = [(low, high)] if low < high else []
        if busy:
            common = subtract_pairs(common, _clashing_starts(busy, length))
        for options in [*held.values(), *per_phase.values()]:
            common = intersect_pairs(common, options.union())
        return cls(
            phases=tuple(phases),
            length=length,
            clock=Clock.covering(tz, low, high + length),
            tz=tz,
            step=60 * grid_minutes,
            providers=providers,
            held=held,
            per_phase=per_phase,
            common=common,
        )

    def provider_starts(self) -> list[tuple[str | None, list[Seconds]]]:
        """Each provider (in preference order) with the starts at which the whole visit
        works with them; a single ``None`` entry when no phase needs a provider."""
        if self.providers is None:
            return [(None, self.common)]
        with_common = _Shared(intersect_pairs)
        return [
            (rid, with_common(pairs, self.common))
            for rid, pairs in zip(self.providers.ids, self.providers.sets, strict=True)
        ]

    def any_provider_starts(self) -> list[Seconds]:
        """Starts at which the visit works with at least one provider."""
        if self.providers is None:
            return self.common
        return intersect_pairs(self.providers.union(), self.common)

    def grid(self, pairs: Sequence[Seconds]) -> list[int]:
        """The grid instants inside ``pairs``."""
        out: list[int] = []
        for low, high in pairs:
            out.extend(self.clock.grid(low, high, self.step))
        return out

    def first_start(self, pairs: Sequence[Seconds], low: int, high: int) -> int | None:
        """The earliest grid instant in ``[low, high)`` inside ``pairs`` (sorted, disjoint)."""
        index = bisect_left(pairs, (low, low))
        if index > 0 and pairs[index - 1][1] > low:
            index -= 1
        while index < len(pairs) and pairs[index][0] < high:
            a, b = pairs[index]
            found = self.clock.first_on_grid(max(a, low), min(b, high), self.step)
            if found is not None:
                return found
            index += 1
        return None

    def slot(self, moment: int, provider: str | None) -> Slot:
        """The slot starting at ``moment`` (a start known to work) with ``provider`` or, if
        None, the first provider that can take it."""
        if provider is None and self.providers is not None:
            provider = self.providers.first_serving(moment)
        chosen: dict[str, str | None] = {"provider": provider}
        for kind, options in self.held.items():
            chosen[kind] = options.first_serving(moment)
        per_phase = [options.first_serving(moment) for options in self.per_phase.values()]
        key = (*chosen.values(), *per_phase)
        assignment = self._assignments.get(key)
        if assignment is None:
            assignment = self._assign(chosen, per_phase)
            self._assignments[key] = assignment
        return Slot(instant(moment), instant(moment + self.length), assignment)

    def _assign(self, held: dict[str, str | None], per_phase: list[str | None]) -> Assignment:
        picked = dict(zip(self.per_phase, per_phase, strict=True))
        assignment: dict[str, Mapping[str, str]] = {}
        for phase in self.phases:
            needs: dict[str, str] = {}
            for kind in phase.needs:
                rid = held[kind] if kind in held else picked.get((phase.code, kind))
                if rid is None:  # only if asked for a start the board did not offer
                    raise InputError("start", "no resource can serve that start")
                needs[kind] = rid
            assignment[phase.code] = MappingProxyType(needs)
        return MappingProxyType(assignment)


def _check_inputs(
    phases: Sequence[Phase],
    grid_minutes: int,
    *moments: datetime,
) -> None:
    for name, moment in zip(("start", "end", "not_before", "not_after"), moments, strict=True):
        require_aware(name, moment)
    if not phases:
        raise InputError("phases", "a visit needs at least one phase")
    codes = [p.code for p in phases]
    if len(set(codes)) != len(codes):
        raise InputError("phases", "phase codes must be unique")
    if grid_minutes <= 0:
        raise InputError("grid_minutes", "must be positive")


def busy_seconds(busy: Sequence[tuple[datetime, datetime]]) -> list[Seconds]:
    """The patient's visits as start-sorted whole seconds (start rounded down, end up: never
    less busy than given), each checked to be an aware, non-empty span."""
    pairs: list[Seconds] = []
    for index, (begin, finish) in enumerate(busy):
        require_aware(f"patient_busy.{index}", begin)
        require_aware(f"patient_busy.{index}", finish)
        if finish <= begin:
            raise InputError(f"patient_busy.{index}", "must end after it starts")
        pairs.append((seconds_floor(begin), seconds_ceil(finish)))
    # A patient has a handful of visits in a search's span: sorting them here is free, and
    # spares every caller from having to.
    pairs.sort()
    return pairs


def overlaps_busy(busy: Sequence[Seconds], start: int, end: int) -> bool:
    """Whether ``[start, end)`` overlaps one of ``busy`` (from :func:`busy_seconds`)."""
    # One patient's visits in a search's span are a handful: a scan beats any index.
    return any(a < end and start < b for a, b in busy)


def _clashing_starts(busy: list[Seconds], length: int) -> list[Seconds]:
    """Starts whose visit of ``length`` seconds overlaps one of ``busy``: a visit from ``s``
    meets ``[a, b)`` when ``s < b`` and ``s + length > a``, so the integers ``s`` in
    ``[a - length + 1, b)``. Sorted by start (the shift keeps the order), possibly touching."""
    return [(a - length + 1, b) for a, b in busy]


#: What a kind must cover: ``(phase code, offset, length)`` in seconds from the start; the
#: code is None for a kind held for the whole visit (one resource for all its spans).
_Span = tuple[str | None, int, int]


def _spans(phases: Sequence[Phase], same_room: bool) -> dict[str, list[_Span]]:
    """The spans of each needed kind, in ``KINDS`` order (kinds nobody needs are left out)."""
    held_kinds = {"provider", "room"} if same_room else {"provider"}
    spans: dict[str, list[_Span]] = {}
    for kind in KINDS:
        own: list[_Span] = []
        at = 0
        for phase in phases:
            if kind in phase.needs:
                own.append((phase.code, at, 60 * phase.minutes))
            at += 60 * phase.minutes
        if own and kind in held_kinds:
            spans[kind] = [(None, o, n) for o, n in _joined([(o, n) for _, o, n in own])]
        elif own:
            spans[kind] = own
    return spans


def shortest_needs(phases: Sequence[Phase], *, same_room: bool = True) -> dict[str, int]:
    """Per needed resource kind, the shortest stretch of free time (seconds) that could
    serve the visit: the shortest run of back-to-back phases the kind is held for (the
    whole run for a provider, and for a room when the patient keeps it). Shorter free time
    can be dropped as soon as it is found; on a busy diary most gaps are such crumbs."""
    return {
        kind: min(length for _, _, length in kind_spans)
        for kind, kind_spans in _spans(phases, same_room).items()
    }


def _free_by_kind(
    resources: Sequence[Resource],
    spans: dict[str, list[_Span]],
    provider_ids: Sequence[str] | None,
    low: int,
    high: int,
) -> dict[str, list[tuple[str, list[Seconds]]]]:
    """Each needed kind's resources (in the given order) with their free seconds."""
    wanted = None if provider_ids is None else set(provider_ids)
    free: dict[str, list[tuple[str, list[Seconds]]]] = {kind: [] for kind in spans}
    # Resources sharing one free-time object (see _Shared) share its conversion too.
    converted: dict[tuple[int, str], list[Seconds]] = {}
    seen: set[str] = set()
    for resource in resources:
        if resource.id in seen:
            raise InputError("resources", f"{resource.id} appears twice")
        seen.add(resource.id)
        if resource.kind not in spans or (
            resource.kind == "provider" and wanted is not None and resource.id not in wanted
        ):
            continue
        shortest = timedelta(seconds=min(n for _, _, n in spans[resource.kind]))
        key = (id(resource.free), resource.kind)
        if key not in converted:
            converted[key] = _free_seconds(resource, low, high, shortest)
        free[resource.kind].append((resource.id, converted[key]))
    return free


def _free_seconds(resource: Resource, low: int, high: int, shortest: timedelta) -> list[Seconds]:
    """The resource's free time within ``[low, high)`` in whole seconds, leaving out
    intervals shorter than ``shortest`` (they cannot hold any phase that needs them).

    An interval with fractions of a second shrinks to the whole seconds inside it: a visit
    starting on a whole second fits exactly when it fits in the shrunk interval. Every free
    interval of a search passes through here once, so it is one comprehension over the
    slice that matters (a length check is cheaper than converting); the pairs may include
    empty ones at the edges, which every later step ignores.
    """
    free = resource.free  # sorted, disjoint and not touching: see Resource
    if isinstance(free, FreeSeconds):
        seconds = free.pairs
        first = bisect_left(seconds, low, key=_second_end)
        last = bisect_left(seconds, high, lo=first, key=_second_start)
        least = int(shortest.total_seconds())
        pairs = [(a, b) for a, b in seconds[first:last] if b - a >= least]
    else:
        first = bisect_left(free, low, key=_end_second)
        last = bisect_left(free, high, lo=first, key=_start_second)
        pairs = [
            (ceil(i.start.timestamp()), floor(i.end.timestamp()))
            for i in free[first:last]
            if i.end - i.start >= shortest
        ]
    if pairs:
        pairs[0] = (max(pairs[0][0], low), pairs[0][1])
        pairs[-1] = (pairs[-1][0], min(pairs[-1][1], high))
    return pairs


def _second_start(pair: Seconds) -> int:
    return pair[0]


def _second_end(pair: Seconds) -> int:
    return pair[1]


def _end_second(interval: Interval) -> int:
    return floor(interval.end.timestamp())


def _start_second(interval: Interval) -> int:
    return ceil(interval.start.timestamp())


def _joined(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Back-to-back ``(offset, length)`` spans joined into one.

    Exact, not an approximation: free intervals are merged where they touch, so a resource
    free for two adjacent spans is free for them within one interval.
    """
    joined: list[tuple[int, int]] = []
    for offset, length in spans:
        if joined and joined[-1][0] + joined[-1][1] == offset:
            joined[-1] = (joined[-1][0], joined[-1][1] + length)
        else:
            joined.append((offset, length))
    return joined


class _Shared:
    """A function of a list of pairs (and a hashable argument) computed once per distinct
    list *object* within one search.

    A clinic has many resources with the same free time: idle pens and rooms, providers on
    one shift with nothing booked. The calendar hands those the same object, and each step
    of the search then works on it once and passes the same result object on, so the next
    step can share its work too. Keyed by identity, which is sound because the inputs are
    never mutated and stay alive (referenced by the resources) for the whole search.
    """

    def __init__(self, function: Callable[[list[Seconds], Any], list[Seconds]]) -> None:
        self.function = function
        # The inputs are kept with each result, so no id can be reused while this lives.
        self.results: dict[tuple[int, Any], tuple[object, object, list[Seconds]]] = {}

    def __call__(self, pairs: list[Seconds], argument: Any) -> list[Seconds]:
        key = (id(pairs), argument if isinstance(argument, tuple) else id(argument))
        found = self.results.get(key)
        if found is None:
            found = self.results[key] = (pairs, argument, self.function(pairs, argument))
        return found[2]


def _start_of(pair: Seconds) -> int:
    return pair[0]


def _end_of(pair: Seconds) -> int:
    return pair[1]


def _serves_all(free: list[Seconds], spans: Sequence[tuple[int, int]]) -> list[Seconds]:
    """Starts from which the resource is free for every ``(offset, length)`` span."""
    result: list[Seconds] | None = None
    for offset, length in spans:
        # [s + offset, s + offset + length) inside [a, b) <=> a - offset <= s <= b - offset -
        # length; "+ 1" turns the closed range of whole seconds into a half-open one.
        eroded = [(a - offset, b - offset - length + 1) for a, b in free if b - a >= length]
        result = eroded if result is None else intersect_pairs(result, eroded)
    return result or []
