"""What the course planner returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

CourseStatus = Literal["planned", "on_track", "complete", "restart"]


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """A session to book: aim for ``target``; anywhere from ``earliest`` to ``latest`` works."""

    number: int
    earliest: date
    target: date
    latest: date


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    """When maintenance starts and how often it recurs once the series is done."""

    first_due: date
    every_days_min: int
    every_days_max: int


@dataclass(frozen=True, slots=True)
class DepthMm:
    """Needle depth range for one area, in millimetres."""

    min: float
    max: float


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """A stretch of the expected course: recovery after a session, or when results show."""

    kind: Literal["recovery", "result"]
    anchor: Literal["each_session", "series_end"]
    from_day: int
    to_day: int | None
    from_date: date
    to_date: date | None
    message: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class CoursePlan:
    """A course: remaining sessions with their windows, maintenance, depth and timeline."""

    indications: tuple[str, ...]
    status: CourseStatus
    protocols: tuple[str, ...]
    sessions_total: int
    done: tuple[date, ...]
    sessions: tuple[PlannedSession, ...]
    maintenance: MaintenancePlan
    gap_days: tuple[int, int, int]
    depth_mm: dict[str, DepthMm]
    timeline: tuple[TimelineItem, ...]
    reasons: tuple[str, ...]
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (dates as ISO strings)."""
        return {
            "indications": list(self.indications),
            "status": self.status,
            "protocols": list(self.protocols),
            "sessions_total": self.sessions_total,
            "done": [d.isoformat() for d in self.done],
            "sessions": [
                {
                    "number": s.number,
                    "earliest": s.earliest.isoformat(),
                    "target": s.target.isoformat(),
                    "latest": s.latest.isoformat(),
                }
                for s in self.sessions
            ],
            "maintenance": {
                "first_due": self.maintenance.first_due.isoformat(),
                "every_days_min": self.maintenance.every_days_min,
                "every_days_max": self.maintenance.every_days_max,
            },
            "gap_days": dict(zip(("min", "target", "max"), self.gap_days, strict=True)),
            "depth_mm": {a: {"min": d.min, "max": d.max} for a, d in self.depth_mm.items()},
            "timeline": [
                {
                    "kind": t.kind,
                    "anchor": t.anchor,
                    "from_day": t.from_day,
                    "to_day": t.to_day,
                    "from_date": t.from_date.isoformat(),
                    "to_date": None if t.to_date is None else t.to_date.isoformat(),
                    "message": t.message,
                    "sources": list(t.sources),
                }
                for t in self.timeline
            ],
            "reasons": list(self.reasons),
            "sources": list(self.sources),
        }
