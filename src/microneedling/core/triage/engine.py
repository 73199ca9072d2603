"""Triage: what a patient reports after a session in, what to do about it out.

Each symptom has stages by day after the session (redness on day 2 is expected, on day 8 it
is not). Severity ``severe`` raises the action one step; red flags carry their own floor
(pus, spreading redness, fever and blisters are urgent on any day). In darker skin, lasting
inflammation leads to dark patches, so some symptoms escalate sooner there. The most
pressing symptom decides the action.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import ACTION_ORDER, Action, Policy, Symptom

Severity = Literal["mild", "moderate", "severe"]
#: The latest day after a session that a report may concern (ten years: beyond any course).
MAX_DAYS = 3650
_DARK_SKIN = frozenset({4, 5, 6})


class SymptomReport(BaseModel):
    """One symptom as the patient reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="A symptom code from `microneedling pack codes`.")
    severity: Severity = "mild"


class TriageReport(BaseModel):
    """A side-effect report: what, how bad, and how long after the session.

    Give either ``days_since_session`` or both ``session_date`` and ``reported_on``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    symptoms: tuple[SymptomReport, ...] = Field(min_length=1)
    # Strict, as the intake: "3" or 3.0 for a day or a skin type is a client's mistake.
    days_since_session: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    session_date: dt.date | None = None
    reported_on: dt.date | None = None
    fitzpatrick_type: StrictInt | None = Field(default=None, ge=1, le=6)

    @model_validator(mode="after")
    def _one_way_to_give_the_day(self) -> TriageReport:
        by_dates = self.session_date is not None or self.reported_on is not None
        if self.days_since_session is None and not by_dates:
            raise ValueError("give days_since_session, or session_date and reported_on")
        if self.days_since_session is not None and by_dates:
            raise ValueError("give days_since_session or the two dates, not both")
        if by_dates:
            if self.session_date is None or self.reported_on is None:
                raise ValueError("session_date and reported_on go together")
            if self.reported_on < self.session_date:
                raise ValueError("reported_on is before session_date")
            if (self.reported_on - self.session_date).days > MAX_DAYS:
                # The same bound as days_since_session: either way of giving the day agrees.
                raise ValueError(f"reported_on is more than {MAX_DAYS} days after session_date")
        return self

    @property
    def day(self) -> int:
        """Days since the session (0 = the day of the session)."""
        if self.days_since_session is not None:
            return self.days_since_session
        assert self.session_date is not None and self.reported_on is not None  # noqa: S101
        return (self.reported_on - self.session_date).days


@dataclass(frozen=True, slots=True)
class TriageReason:
    """Why one reported symptom needs the action it got."""

    symptom: str
    action: Action
    red_flag: bool
    message: str
    advice: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class TriageResult:
    """The action for the whole report and the reason for each symptom."""

    action: Action
    day: int
    reasons: tuple[TriageReason, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "action": self.action,
            "day": self.day,
            "reasons": [
                {
                    "symptom": r.symptom,
                    "action": r.action,
                    "red_flag": r.red_flag,
                    "message": r.message,
                    "advice": r.advice,
                    "sources": list(r.sources),
                }
                for r in self.reasons
            ],
        }


def _step_up(action: Action) -> Action:
    return ACTION_ORDER[min(ACTION_ORDER.index(action) + 1, len(ACTION_ORDER) - 1)]


def _most(*actions: Action) -> Action:
    return max(actions, key=ACTION_ORDER.index)


def assess(symptom: Symptom, *, day: int, severity: Severity, fitzpatrick: int | None) -> Action:
    """The action one symptom needs on ``day`` at ``severity`` for a skin type."""
    action = symptom.action_on(day)
    if severity == "severe":
        action = _most(_step_up(action), symptom.severe_action)
    if (
        fitzpatrick in _DARK_SKIN
        and symptom.dark_skin_action is not None
        and symptom.action_on(day) != "expected"
    ):
        action = _most(action, symptom.dark_skin_action)
    return action


def _explain(symptom: Symptom, day: int, action: Action, severity: Severity) -> str:
    expected_until = _expected_until(symptom)
    if action == "expected":
        return symptom.message
    if symptom.red_flag and symptom.action_on(0) != "expected":
        return symptom.message
    if expected_until is not None and day > expected_until:
        return f"{symptom.name} on day {day} is later than usual. {symptom.message}"
    if severity == "severe":
        return f"Severe {symptom.name.lower()} needs attention. {symptom.message}"
    return symptom.message


def _expected_until(symptom: Symptom) -> int | None:
    """The last day the symptom is still ordinary, or ``None`` if it never is."""
    stages = symptom.stages
    if stages[0].action != "expected":
        return None
    for stage in stages:
        if stage.action != "expected":
            return stage.from_day - 1
    return None


def _floor(symptom: Symptom, pack: Pack, policy: Policy | None) -> Action | None:
    """The least action the clinic's position on the symptom's dispute asks for, if any."""
    if symptom.dispute is None:
        return None
    floor = pack.position(symptom.dispute, policy).params.get("floor")
    return floor if floor in ACTION_ORDER else None


def triage(report: TriageReport, pack: Pack, policy: Policy | None = None) -> TriageResult:
    """Decide what the patient should do about what they report, following the clinic's
    chosen positions where the sources differ (``policy``; the pack's defaults without one)."""
    day = report.day
    reasons = []
    for index, reported in enumerate(report.symptoms):
        symptom = pack.symptoms.get(reported.code)
        if symptom is None:
            raise InputError(f"symptoms.{index}.code", f"unknown symptom {reported.code!r}")
        action = assess(
            symptom, day=day, severity=reported.severity, fitzpatrick=report.fitzpatrick_type
        )
        message = _explain(symptom, day, action, reported.severity)
        floor = _floor(symptom, pack, policy)
        if floor is not None and ACTION_ORDER.index(floor) > ACTION_ORDER.index(action):
            action = floor
            message = f"Your clinic asks to hear about any {symptom.name.lower()}. {message}"
        reasons.append(
            TriageReason(
                symptom=symptom.code,
                action=action,
                red_flag=symptom.red_flag,
                message=message,
                advice=symptom.advice,
                sources=symptom.sources,
            )
        )
    reasons.sort(key=lambda r: ACTION_ORDER.index(r.action), reverse=True)
    return TriageResult(action=_most(*(r.action for r in reasons)), day=day, reasons=tuple(reasons))
