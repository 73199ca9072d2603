"""What screening returns: a verdict, the reasons for it and what the plan must honour."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from microneedling.core.knowledge.models import OUTCOME_ORDER, Outcome


def worst(outcomes: list[Outcome] | tuple[Outcome, ...]) -> Outcome:
    """The worst of some outcomes (``eligible`` when there are none)."""
    return max(outcomes, key=OUTCOME_ORDER.index, default="eligible")


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that fired: what it decided, why, on which areas, and from which sources."""

    rule: str
    outcome: Outcome
    message: str
    sources: tuple[str, ...]
    #: Treatment areas the reason concerns; ``None`` means all of them.
    areas: tuple[str, ...] | None = None
    #: For deferrals: the earliest day treatment may happen (``None``: once resolved).
    until: date | None = None


@dataclass(frozen=True, slots=True)
class MedHold:
    """Stop a medicine on ``stop_on`` and take it again from ``resume_on``."""

    code: str
    stop_on: date
    resume_on: date
    rule: str
    message: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PrecautionNote:
    """A precaution the plan and the provider must honour."""

    id: str
    message: str
    effect: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ScreeningResult:
    """The verdict and everything that explains it."""

    verdict: Outcome
    deferred_until: date | None
    med_holds: tuple[MedHold, ...]
    precautions: tuple[PrecautionNote, ...]
    reasons: tuple[Reason, ...]
    area_verdicts: dict[str, Outcome] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (dates as ISO strings)."""
        return {
            "verdict": self.verdict,
            "deferred_until": _iso(self.deferred_until),
            "med_holds": [
                {
                    "code": h.code,
                    "stop_on": h.stop_on.isoformat(),
                    "resume_on": h.resume_on.isoformat(),
                    "rule": h.rule,
                    "message": h.message,
                }
                for h in self.med_holds
            ],
            "precautions": [
                {"id": p.id, "message": p.message, "effect": p.effect, "sources": list(p.sources)}
                for p in self.precautions
            ],
            "reasons": [
                {
                    "rule": r.rule,
                    "outcome": r.outcome,
                    "message": r.message,
                    "sources": list(r.sources),
                    "areas": None if r.areas is None else list(r.areas),
                    "until": _iso(r.until),
                }
                for r in self.reasons
            ],
            "area_verdicts": dict(self.area_verdicts),
        }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
