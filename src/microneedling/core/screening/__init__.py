"""Screening: intake in, verdict out (see :func:`screen`)."""

from microneedling.core.screening.engine import age_on, medicine_holds, screen
from microneedling.core.screening.intake import (
    EARLIEST_DATE,
    LATEST_DATE,
    ConditionEntry,
    Intake,
    MedicationEntry,
    ProcedureEntry,
    check_codes,
)
from microneedling.core.screening.result import MedHold, Reason, ScreeningResult, worst

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "ConditionEntry",
    "Intake",
    "MedHold",
    "MedicationEntry",
    "ProcedureEntry",
    "Reason",
    "ScreeningResult",
    "age_on",
    "check_codes",
    "medicine_holds",
    "screen",
    "worst",
]
