"""What the course search returns, and how it weighs soft preferences."""

from __future__ import annotations

from dataclasses import dataclass

from microneedling.core.availability import Slot


@dataclass(frozen=True, slots=True)
class Weights:
    """Points for the soft preferences; the search minimises their total.

    With the defaults a preferred weekday is worth moving a session up to two days from its
    target, and a preferred time of day is worth moving it one day: the target matters, but
    a window is clinically fine anywhere, and a patient who can only come on Saturdays
    should not be offered Tuesdays.
    """

    day_from_target: int = 2
    off_weekday: int = 5
    off_time: int = 3


@dataclass(frozen=True, slots=True)
class SeriesScore:
    """How well a booked series meets the preferences, in the order they rank.

    The search compares results lexicographically: fewest ``provider_changes`` first, then
    fewest sessions away from the patient's ``preferred_provider``, then fewest ``points``
    (the weighted sum of the three soft counts below), then the earliest times.
    """

    provider_changes: int
    off_preferred_provider: int
    days_from_target: int
    off_weekday: int
    off_time: int
    points: int


@dataclass(frozen=True, slots=True)
class SeriesResult:
    """One slot per session, or the session that could not be placed and why.

    All or nothing: when ``ok`` is False, ``choices`` is empty. ``provider_id`` is the
    provider of every session when one provider does them all, else None.
    """

    ok: bool
    choices: tuple[tuple[int, Slot], ...] = ()
    provider_id: str | None = None
    failed_session: int | None = None
    reason: str | None = None
    score: SeriesScore | None = None
