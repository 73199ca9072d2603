"""Triage of side-effect reports (see :func:`triage`)."""

from microneedling.core.triage.engine import (
    SymptomReport,
    TriageReason,
    TriageReport,
    TriageResult,
    triage,
)

__all__ = ["SymptomReport", "TriageReason", "TriageReport", "TriageResult", "triage"]
