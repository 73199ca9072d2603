"""Course booking search: one slot for every session, each inside its window, or none.

Which windows are enforced
    The first session must fall in its planned ``[earliest, latest]``. Every later session
    must be ``gap_min``–``gap_max`` days after the session *chosen* before it (the windows
    re-derive from real choices), and, with ``follow_plan_windows`` (the default), also
    inside its own planned window, so a booked session is never outside the window the
    patient was shown. Sessions always fall on different local days (a gap of at least one
    day) and each visit ends on the day it starts, so they can never overlap.

How it searches
    The preferences are a cost per session (distance from the target, weekday, time of
    day) plus a cost between consecutive sessions (a change of provider), and the hard rule
    between consecutive sessions depends only on their days. That is a shortest path
    through (session, day, provider) states, solved exactly by dynamic programming: per
    session, per provider, a sliding-window minimum over the previous session's states
    (same provider) and over their per-day best (any provider, one more change). The cost
    is linear in sessions × window days × providers, so there is no search to bound and no
    preference is lost to a greedy ordering.

    A day's candidate for a provider is its earliest start inside the preferred times, else
    its earliest start: within a day only the time preference differs between starts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from microneedling.core.availability import Phase, Resource, Slot
from microneedling.core.availability.clock import (
    Clock,
    day_start,
    seconds_ceil,
    seconds_floor,
    zone_info,
)
from microneedling.core.availability.engine import Board, busy_seconds, overlaps_busy
from microneedling.core.availability.intervals import require_aware
from microneedling.core.courses import PlannedSession
from microneedling.core.errors import InputError
from microneedling.core.series.result import SeriesResult, SeriesScore, Weights

#: Gives the slots whose local start date is from ``first`` to ``last`` (inclusive), one
#: per start *and provider* that can take it (``find_starts(..., every_provider=True)``).
SlotSource = Callable[[date, date], Iterable[Slot]]

#: (provider changes, sessions off the preferred provider, points, sum of start seconds)
Cost = tuple[int, int, int, int]
_SWITCH: Cost = (1, 0, 0, 0)


def search_series(
    *,
    sessions: Sequence[PlannedSession],
    gap_days: tuple[int, int] | tuple[int, int, int],
    zone: str,
    slots: SlotSource | Mapping[date, Sequence[Slot]] | None = None,
    phases: Sequence[Phase] | None = None,
    resources: Sequence[Resource] | None = None,
    grid_minutes: int = 15,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    same_room: bool = True,
    provider_ids: Sequence[str] | None = None,
    preferred_provider: str | None = None,
    preferred_weekdays: Iterable[int] = (),
    preferred_times: Sequence[tuple[time | str, time | str]] = (),
    follow_plan_windows: bool = True,
    weights: Weights | None = None,
    patient_busy: Sequence[tuple[datetime, datetime]] = (),
) -> SeriesResult:
    """Find one slot per session (see the module docstring for the rules), or say which
    session cannot be placed.

    Where the slots come from, one of:

    * ``phases`` and ``resources`` (with ``grid_minutes``, ``same_room``): the availability
      engine is asked directly, day by day, without building every slot of the months;
    * ``slots``: a :data:`SlotSource` or a mapping from local date to that day's slots, one
      per start and provider.

    ``gap_days`` is ``(min, max)`` or a plan's ``(min, target, max)``. Starts honour
    ``not_before`` / ``not_after`` (notice and horizon). ``provider_ids`` restricts the
    providers. Preferences, strongest first: one provider for every session (falling back
    to the fewest changes), the ``preferred_provider``, then the weighted soft preferences
    (:class:`Weights`): closeness to each target, ``preferred_weekdays`` (0 = Monday) and
    ``preferred_times`` (local ``(from, to)`` ranges the start falls in; ``"HH:MM"``
    strings are accepted); then the earliest times. A remaining tie goes to the provider
    listed first: in ``resources``, or with ``slots`` in ``provider_ids`` (else in order of
    first appearance).

    ``patient_busy`` are the patient's other visits (say, another course's sessions): no
    session is placed where its visit would overlap one, so what is proposed can be booked.
    """
    tz = zone_info(zone)
    busy = busy_seconds(patient_busy)
    planned = _checked_sessions(sessions)
    gap_min, gap_max = _checked_gap(gap_days)
    for name, moment in (("not_before", not_before), ("not_after", not_after)):
        if moment is not None:
            require_aware(name, moment)
    weekdays = _checked_weekdays(preferred_weekdays)
    times = _checked_times(preferred_times)
    weights = weights or Weights()

    ranges = _day_ranges(planned, gap_min, gap_max, follow_plan_windows)
    if slots is not None and not (phases is None and resources is None):
        raise InputError("slots", "give either slots or phases and resources, not both")
    if slots is not None:
        table = _options_from_slots(
            source=slots,
            ranges=ranges,
            tz=tz,
            not_before=not_before,
            not_after=not_after,
            provider_ids=provider_ids,
            times=times,
            busy=busy,
        )
    elif phases is not None and resources is not None:
        table = _options_from_board(
            phases=phases,
            resources=resources,
            ranges=ranges,
            tz=tz,
            zone=zone,
            grid_minutes=grid_minutes,
            not_before=not_before,
            not_after=not_after,
            same_room=same_room,
            provider_ids=provider_ids,
            times=times,
            patient_busy=patient_busy,
        )
    else:
        raise InputError("slots", "give either slots or both phases and resources")
    return _solve(
        planned=planned,
        ranges=ranges,
        table=table,
        gap=(gap_min, gap_max),
        weekdays=weekdays,
        preferred_provider=preferred_provider,
        weights=weights,
        not_before=not_before,
        not_after=not_after,
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class _Option:
    """A provider's best start on one local day (as whole seconds) and how to make its slot."""

    day: int
    start: int
    in_time: bool
    make: Callable[[], Slot]


@dataclass(frozen=True, slots=True)
class _Table:
    """Options per provider rank, each list sorted by day; ``providers[rank]`` is the id."""

    providers: tuple[str | None, ...]
    options: tuple[list[_Option], ...]


@dataclass(frozen=True, slots=True)
class _Step:
    """A DP state: session placed with ``option`` by provider ``rank``, after ``before``."""

    day: int
    cost: Cost
    rank: int
    option: _Option
    before: _Step | None


def _checked_sessions(sessions: Sequence[PlannedSession]) -> list[PlannedSession]:
    if not sessions:
        raise InputError("sessions", "at least one session is required")
    for index, session in enumerate(sessions):
        if not session.earliest <= session.target <= session.latest:
            raise InputError(f"sessions.{index}", "needs earliest <= target <= latest")
        if index and session.number <= sessions[index - 1].number:
            raise InputError(f"sessions.{index}", "session numbers must increase")
    return list(sessions)


def _checked_gap(gap_days: tuple[int, ...]) -> tuple[int, int]:
    if len(gap_days) not in (2, 3):
        raise InputError("gap_days", "give (min, max) or (min, target, max)")
    low, high = gap_days[0], gap_days[-1]
    if low < 0 or high < low:
        raise InputError("gap_days", f"{low}–{high} is not a window of days")
    # Two sessions never share a day, whatever the protocol's minimum says.
    return max(low, 1), high


def _checked_weekdays(weekdays: Iterable[int]) -> frozenset[int]:
    chosen = frozenset(weekdays)
    for weekday in chosen:
        if not 0 <= weekday <= 6:
            raise InputError("preferred_weekdays", f"{weekday} is not 0 (Monday) to 6")
    return chosen


def _checked_times(ranges: Sequence[tuple[time | str, time | str]]) -> list[tuple[time, time]]:
    checked = []
    for index, (begin, end) in enumerate(ranges):
        field = f"preferred_times.{index}"
        try:
            low = begin if isinstance(begin, time) else time.fromisoformat(begin)
            high = end if isinstance(end, time) else time.fromisoformat(end)
        except ValueError as error:
            raise InputError(field, "times are HH:MM") from error
        if low.tzinfo is not None or high.tzinfo is not None:
            raise InputError(field, "times are local wall-clock times without a zone")
        if high != time(0) and high <= low:
            raise InputError(field, f"{high} is not after {low}")
        checked.append((low, high))
    return checked


def search_days(
    *,
    sessions: Sequence[PlannedSession],
    gap_days: tuple[int, int] | tuple[int, int, int],
    follow_plan_windows: bool = True,
) -> list[tuple[date, date]]:
    """The stretches of local days (merged, inclusive) a :func:`search_series` with the same
    arguments looks at: what an adapter needs to load, and nothing between them."""
    planned = _checked_sessions(sessions)
    gap_min, gap_max = _checked_gap(gap_days)
    ranges = _day_ranges(planned, gap_min, gap_max, follow_plan_windows)
    return [(date.fromordinal(a), date.fromordinal(b)) for a, b in _spans(ranges)]


def _day_ranges(
    planned: list[PlannedSession], gap_min: int, gap_max: int, follow: bool
) -> list[tuple[int, int]]:
    """Days (ordinals, inclusive) each session could possibly take, before looking at slots."""
    first = planned[0]
    ranges = [(first.earliest.toordinal(), first.latest.toordinal())]
    for session in planned[1:]:
        low, high = ranges[-1][0] + gap_min, ranges[-1][1] + gap_max
        if follow:
            low = max(low, session.earliest.toordinal())
            high = min(high, session.latest.toordinal())
        ranges.append((low, high))
    return ranges


def _spans(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sessions' day ranges merged into contiguous stretches to fetch slots for."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(r for r in ranges if r[0] <= r[1]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _in_time(local: time, times: list[tuple[time, time]]) -> bool:
    return not times or any(
        low <= local and (high == time(0) or local < high) for low, high in times
    )


def _options_from_slots(
    *,
    source: SlotSource | Mapping[date, Sequence[Slot]],
    ranges: list[tuple[int, int]],
    tz: ZoneInfo,
    not_before: datetime | None,
    not_after: datetime | None,
    provider_ids: Sequence[str] | None,
    times: list[tuple[time, time]],
    busy: list[tuple[int, int]],
) -> _Table:
    """Best slot per (provider, day) from slots the caller computed, leaving out those
    that overlap one of the patient's ``busy`` visits."""
    wanted = None if provider_ids is None else set(provider_ids)
    ranks: dict[str | None, int] = (
        {} if provider_ids is None else {p: i for i, p in enumerate(provider_ids)}
    )
    best: dict[tuple[int, int], tuple[bool, datetime, Slot]] = {}
    for first, last in _spans(ranges):
        if isinstance(source, Mapping):
            found: Iterable[Slot] = (
                slot
                for ordinal in range(first, last + 1)
                for slot in source.get(date.fromordinal(ordinal), ())
            )
        else:
            found = source(date.fromordinal(first), date.fromordinal(last))
        for slot in found:
            local = slot.start.astimezone(tz)
            ordinal = local.date().toordinal()
            provider = slot.provider_id
            if not first <= ordinal <= last or (wanted is not None and provider not in wanted):
                continue
            if (not_before is not None and slot.start < not_before) or (
                not_after is not None and slot.start >= not_after
            ):
                continue
            if slot.end > day_start(date.fromordinal(ordinal + 1), tz):
                continue  # runs past midnight: could meet the next day's session
            if busy and overlaps_busy(busy, seconds_floor(slot.start), seconds_ceil(slot.end)):
                continue
            rank = ranks.setdefault(provider, len(ranks))
            # Prefer a start in the preferred times, then the earliest.
            candidate = (not _in_time(local.time(), times), slot.start, slot)
            current = best.get((rank, ordinal))
            if current is None or candidate[:2] < current[:2]:
                best[rank, ordinal] = candidate
    options: list[list[_Option]] = [[] for _ in ranks]
    for (rank, ordinal), (off_time, start, slot) in sorted(best.items(), key=lambda item: item[0]):
        options[rank].append(_Option(ordinal, seconds_floor(start), not off_time, _constant(slot)))
    providers = sorted(ranks, key=ranks.__getitem__)
    return _Table(tuple(providers), tuple(options))


def _constant(slot: Slot) -> Callable[[], Slot]:
    return lambda: slot


def _options_from_board(
    *,
    phases: Sequence[Phase],
    resources: Sequence[Resource],
    ranges: list[tuple[int, int]],
    tz: ZoneInfo,
    zone: str,
    grid_minutes: int,
    not_before: datetime | None,
    not_after: datetime | None,
    same_room: bool,
    provider_ids: Sequence[str] | None,
    times: list[tuple[time, time]],
    patient_busy: Sequence[tuple[datetime, datetime]],
) -> _Table:
    """Best start per (provider, day) straight from the availability engine.

    One board per stretch of window days: free time between the windows (most of a
    six-session course's months) is never converted or searched.
    """
    providers: tuple[str | None, ...] = ()
    options: list[list[_Option]] = []
    for first, last in _spans(ranges):
        begin = day_start(date.fromordinal(first), tz)
        finish = day_start(date.fromordinal(last + 1), tz)
        board = Board.build(
            phases=phases,
            resources=resources,
            start=begin,
            end=finish,
            grid_minutes=grid_minutes,
            zone=zone,
            not_before=begin if not_before is None else not_before,
            not_after=finish if not_after is None else not_after,
            same_room=same_room,
            provider_ids=provider_ids,
            patient_busy=patient_busy,
        )
        by_provider = board.provider_starts()
        if not options:
            providers = tuple(p for p, _ in by_provider)
            options = [[] for _ in by_provider]
        # Local readings to instants through one clock for the stretch: a zoneinfo call per
        # day boundary was a tenth of the search.
        clock = Clock.covering(tz, seconds_ceil(begin), seconds_ceil(finish))
        days = []
        for ordinal in range(first, last + 1):
            day = date.fromordinal(ordinal)
            low = clock.local_seconds(day, time(0))
            # The visit must end by midnight (+1: a start set is half-open).
            high = clock.local_seconds(day + timedelta(days=1), time(0)) - board.length + 1
            preferred = [
                (
                    max(low, clock.local_seconds(day, a)),
                    min(high, clock.local_seconds(*_range_end(day, b))),
                )
                for a, b in times
            ]
            days.append((ordinal, low, high, preferred))
        # Providers whose start sets are one shared object (the same shift, nothing booked)
        # have the same best start each day: worked out once for all of them.
        best_by_set: dict[int, list[tuple[int, int, bool]]] = {}
        for rank, (provider, starts) in enumerate(by_provider):
            if not starts:
                continue
            if id(starts) not in best_by_set:
                best_by_set[id(starts)] = _best_per_day(board, starts, days, bool(times))
            options[rank].extend(
                _Option(ordinal, start, in_time, _maker(board, start, provider))
                for ordinal, start, in_time in best_by_set[id(starts)]
            )
    return _Table(providers, tuple(options))


def _best_per_day(
    board: Board,
    starts: list[tuple[int, int]],
    days: list[tuple[int, int, int, list[tuple[int, int]]]],
    has_times: bool,
) -> list[tuple[int, int, bool]]:
    """Each day's best start in ``starts``: the earliest inside a preferred time range, else
    the earliest at all, with whether it honours the preferred times."""
    best = []
    for ordinal, low, high, preferred in days:
        earliest = board.first_start(starts, low, high)
        if earliest is None:
            continue
        in_range = [board.first_start(starts, a, b) for a, b in preferred if a < b]
        hits = [s for s in in_range if s is not None]
        best.append((ordinal, min(hits) if hits else earliest, bool(hits) or not has_times))
    return best


def _range_end(day: date, end: time) -> tuple[date, time]:
    """The local reading a preferred range ends at: 00:00 is the midnight ending ``day``."""
    return (day + timedelta(days=1) if end == time(0) else day), end


def _maker(board: Board, start: int, provider: str | None) -> Callable[[], Slot]:
    return lambda: board.slot(start, provider)


def _solve(
    *,
    planned: list[PlannedSession],
    ranges: list[tuple[int, int]],
    table: _Table,
    gap: tuple[int, int],
    weekdays: frozenset[int],
    preferred_provider: str | None,
    weights: Weights,
    not_before: datetime | None,
    not_after: datetime | None,
    tz: ZoneInfo,
) -> SeriesResult:
    """The dynamic programme over (session, day, provider); see the module docstring."""
    gap_min, gap_max = gap
    previous: list[list[_Step]] = []
    for index, session in enumerate(planned):
        low, high = ranges[index]
        target = session.target.toordinal()
        current: list[list[_Step]] = []
        any_choice = False
        any_provider = _per_day_best(previous) if index else []
        for rank, provider in enumerate(table.providers):
            here = [o for o in table.options[rank] if low <= o.day <= high]
            any_choice = any_choice or bool(here)
            steps: list[_Step] = []
            if not here:
                current.append(steps)
                continue
            own: Cost = (
                0,
                int(preferred_provider is not None and provider != preferred_provider),
                0,
                0,
            )
            if index == 0:
                for option in here:
                    cost = _plus(own, _soft(option, target, weekdays, weights))
                    steps.append(_Step(option.day, cost, rank, option, None))
            else:
                days = [o.day for o in here]
                same = _window_minima(previous[rank], days, gap_min, gap_max)
                other = _window_minima(any_provider, days, gap_min, gap_max)
                for option, before_same, before_any in zip(here, same, other, strict=True):
                    before = before_same
                    if before_any is not None and (
                        before is None or _plus(before_any.cost, _SWITCH) < before.cost
                    ):
                        before = before_any
                    if before is None:
                        continue
                    base = before.cost if before is before_same else _plus(before.cost, _SWITCH)
                    cost = _plus(base, _plus(own, _soft(option, target, weekdays, weights)))
                    steps.append(_Step(option.day, cost, rank, option, before))
            current.append(steps)
        if not any(current):
            return _failure(
                planned=planned,
                index=index,
                ranges=ranges,
                any_choice=any_choice,
                gap=gap,
                not_before=not_before,
                not_after=not_after,
                tz=tz,
            )
        previous = current
    best = min(
        (step for steps in previous for step in steps), key=lambda step: step.cost
    )  # min keeps the first of equals: the lowest provider rank, then the earliest day
    return _success(planned, best, table, weekdays)


def _plus(a: Cost, b: Cost) -> Cost:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _soft(option: _Option, target: int, weekdays: frozenset[int], weights: Weights) -> Cost:
    off_weekday = bool(weekdays) and date.fromordinal(option.day).weekday() not in weekdays
    points = (
        weights.day_from_target * abs(option.day - target)
        + weights.off_weekday * off_weekday
        + weights.off_time * (not option.in_time)
    )
    return (0, 0, points, option.start)


def _per_day_best(by_rank: list[list[_Step]]) -> list[_Step]:
    """For each day, the cheapest state over all providers (lowest rank on ties)."""
    best: dict[int, _Step] = {}
    for steps in by_rank:
        for step in steps:
            held = best.get(step.day)
            if held is None or step.cost < held.cost:
                best[step.day] = step
    return [best[day] for day in sorted(best)]


def _window_minima(
    steps: list[_Step], days: list[int], gap_min: int, gap_max: int
) -> list[_Step | None]:
    """For each day (ascending), the cheapest step ``gap_min``–``gap_max`` days before it.

    A monotonic deque: both window ends only move forward, so each step enters and leaves
    once. On ties the earlier day stays in front.
    """
    out: list[_Step | None] = []
    window: deque[_Step] = deque()
    index = 0
    for day in days:
        while index < len(steps) and steps[index].day <= day - gap_min:
            step = steps[index]
            while window and window[-1].cost > step.cost:
                window.pop()
            window.append(step)
            index += 1
        while window and window[0].day < day - gap_max:
            window.popleft()
        out.append(window[0] if window else None)
    return out


def _failure(
    *,
    planned: list[PlannedSession],
    index: int,
    ranges: list[tuple[int, int]],
    any_choice: bool,
    gap: tuple[int, int],
    not_before: datetime | None,
    not_after: datetime | None,
    tz: ZoneInfo,
) -> SeriesResult:
    session = planned[index]
    low, high = (date.fromordinal(d) for d in ranges[index])
    span = f"{low.isoformat()} and {high.isoformat()}"
    if low > high:
        reason = (
            f"Session {session.number}: its window {session.earliest.isoformat()} to "
            f"{session.latest.isoformat()} cannot be reached {gap[0]}–{gap[1]} days after "
            f"session {planned[index - 1].number}."
        )
    elif not_after is not None and low > not_after.astimezone(tz).date():
        reason = (
            f"Session {session.number}: no free slot between {span}; bookings are open "
            f"only until {not_after.astimezone(tz).date().isoformat()}."
        )
    elif not_before is not None and high < not_before.astimezone(tz).date():
        reason = (
            f"Session {session.number}: no free slot between {span}; the earliest bookable "
            f"time is {not_before.astimezone(tz).isoformat()}."
        )
    elif not any_choice:
        reason = f"Session {session.number}: no free slot between {span}."
    else:
        reason = (
            f"Session {session.number}: no free slot between {span} falls {gap[0]}–{gap[1]} "
            f"days after a possible session {planned[index - 1].number}."
        )
    return SeriesResult(ok=False, failed_session=session.number, reason=reason)


def _success(
    planned: list[PlannedSession],
    best: _Step,
    table: _Table,
    weekdays: frozenset[int],
) -> SeriesResult:
    chain: list[_Step] = []
    cursor: _Step | None = best
    while cursor is not None:
        chain.append(cursor)
        cursor = cursor.before
    chain.reverse()
    providers = [table.providers[step.rank] for step in chain]
    days_off = sum(
        abs(step.day - session.target.toordinal())
        for step, session in zip(chain, planned, strict=True)
    )
    off_weekday = sum(
        bool(weekdays) and date.fromordinal(step.day).weekday() not in weekdays for step in chain
    )
    off_time = sum(not step.option.in_time for step in chain)
    score = SeriesScore(
        provider_changes=best.cost[0],
        off_preferred_provider=best.cost[1],
        days_from_target=days_off,
        off_weekday=off_weekday,
        off_time=off_time,
        points=best.cost[2],
    )
    choices = tuple(
        (session.number, step.option.make()) for session, step in zip(planned, chain, strict=True)
    )
    return SeriesResult(
        ok=True,
        choices=choices,
        provider_id=providers[0] if len(set(providers)) == 1 else None,
        score=score,
    )
