"""The intake: what a patient (or the front desk) tells us before a course is booked.

These models are the boundary schema: they check types, ranges and dates, and their JSON
Schema is what ``microneedling screen --schema`` prints and what the API will accept. Codes
are checked against the knowledge pack separately (:func:`check_codes`), because the pack is
data that a clinic can extend without changing this schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack

#: The dates an intake may hold. Nobody alive was born before 1900, and no clinic books or
#: records a treatment two centuries from now. The bounds also keep the engines' arithmetic
#: (a six-month wait after a last dose, a hold days before the planned session) far inside
#: the calendar, which ends on 9999-12-31: without them such a date crashed screening.
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)


def date_in_range(day: dt.date) -> dt.date:
    """Return ``day`` if it lies within :data:`EARLIEST_DATE`..:data:`LATEST_DATE`.

    Raises pydantic's custom error so that the validation error carries the field's location
    and a message that says which dates are accepted.
    """
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise PydanticCustomError(
            "date_out_of_range",
            "must be between {earliest} and {latest}",
            {"earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()},
        )
    return day


#: A date that an intake accepts (see :data:`EARLIEST_DATE`).
ClinicalDate = Annotated[dt.date, AfterValidator(date_in_range)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionEntry(_Entry):
    """A skin or health condition, optionally confined to one area."""

    code: str = Field(description="A condition code from `microneedling pack codes`.")
    area: str | None = Field(
        default=None, description="Where it is; null means everywhere or unknown."
    )
    status: Literal["active", "history"] = Field(
        default="active", description="Present now, or only in the past."
    )
    date: ClinicalDate | None = Field(
        default=None, description="When it started or last flared (used by waiting periods)."
    )


class MedicationEntry(_Entry):
    """A medicine the patient takes or took."""

    code: str = Field(description="A medication code from `microneedling pack codes`.")
    last_dose: ClinicalDate | None = Field(
        default=None, description="Date of the last dose; null while still taking it."
    )


class ProcedureEntry(_Entry):
    """A previous treatment that imposes a waiting period."""

    code: str = Field(description="A procedure code from `microneedling pack codes`.")
    area: str | None = Field(
        default=None, description="Where it was done; null means everywhere or unknown."
    )
    date: ClinicalDate = Field(description="When it was done (or ended, for radiation therapy).")


class Intake(_Entry):
    """Everything screening needs to decide whether, when and how a course may be booked."""

    planned_date: ClinicalDate = Field(description="The day of the planned first session.")
    birth_date: ClinicalDate
    # Strict: a JSON "yes", "0" or 2.0 is a client's mistake, not an answer to read for it
    # (pydantic would take "no" as false and "3" as 3 without a word).
    fitzpatrick_type: StrictInt = Field(ge=1, le=6, description="Fitzpatrick skin type, 1 to 6.")
    treatment_areas: tuple[str, ...] = Field(min_length=1)
    pregnant: StrictBool
    breastfeeding: StrictBool
    conditions: tuple[ConditionEntry, ...] = ()
    medications: tuple[MedicationEntry, ...] = ()
    procedures: tuple[ProcedureEntry, ...] = ()
    allergies: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _dates_are_possible(self) -> Intake:
        if self.birth_date >= self.planned_date:
            raise ValueError("birth_date must be before planned_date")
        for index, medication in enumerate(self.medications):
            if medication.last_dose is not None and medication.last_dose > self.planned_date:
                raise ValueError(f"medications.{index}.last_dose is after planned_date")
        for index, procedure in enumerate(self.procedures):
            if procedure.date > self.planned_date:
                raise ValueError(f"procedures.{index}.date is after planned_date")
        for index, condition in enumerate(self.conditions):
            if condition.date is not None and condition.date > self.planned_date:
                raise ValueError(f"conditions.{index}.date is after planned_date")
        return self


def check_codes(intake: Intake, pack: Pack) -> None:
    """Raise :class:`InputError` naming the first code or area the pack does not know."""
    for index, treated in enumerate(intake.treatment_areas):
        if treated not in pack.areas:
            raise InputError(f"treatment_areas.{index}", f"unknown area {treated!r}")
    entries: list[tuple[str, int, str, str | None]] = [
        ("conditions", i, c.code, c.area) for i, c in enumerate(intake.conditions)
    ]
    entries += [("medications", i, m.code, None) for i, m in enumerate(intake.medications)]
    entries += [("procedures", i, p.code, p.area) for i, p in enumerate(intake.procedures)]
    for kind, index, code, area in entries:
        if code not in pack.codes[kind]:
            raise InputError(f"{kind}.{index}.code", f"unknown {kind[:-1]} {code!r}")
        if area is not None and area not in pack.areas:
            raise InputError(f"{kind}.{index}.area", f"unknown area {area!r}")
    for index, code in enumerate(intake.allergies):
        if code not in pack.codes["allergies"]:
            raise InputError(f"allergies.{index}", f"unknown allergy {code!r}")
