"""Course planning and re-planning (see :func:`plan_course`)."""

from microneedling.core.courses.engine import chain_sessions, plan_course
from microneedling.core.courses.plan import (
    CoursePlan,
    DepthMm,
    MaintenancePlan,
    PlannedSession,
    TimelineItem,
)

__all__ = [
    "CoursePlan",
    "DepthMm",
    "MaintenancePlan",
    "PlannedSession",
    "TimelineItem",
    "chain_sessions",
    "plan_course",
]
