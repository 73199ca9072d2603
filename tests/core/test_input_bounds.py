"""Dates at the edges of the calendar: the intake and the course planner refuse them with an
error that names the field, instead of crashing in their date arithmetic."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from microneedling.core.courses import chain_sessions, plan_course
from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import Gap
from microneedling.core.screening import screen
from tests.core.conftest import make_intake

ISOTRETINOIN_LAST_DAY: dict[str, Any] = {
    "planned_date": "9999-12-31",
    "medications": [{"code": "isotretinoin", "last_dose": "9999-12-30"}],
}
ASPIRIN_IN_YEAR_ONE: dict[str, Any] = {
    "birth_date": "0001-01-01",
    "planned_date": "0001-01-02",
    "medications": [{"code": "aspirin", "last_dose": None}],
}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (ISOTRETINOIN_LAST_DAY, "planned_date"),
        (ASPIRIN_IN_YEAR_ONE, "planned_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"planned_date": "2200-01-01"}, "planned_date"),
        (
            {"medications": [{"code": "isotretinoin", "last_dose": "0001-01-01"}]},
            "medications.0.last_dose",
        ),
        (
            {"procedures": [{"code": "botox", "area": "face", "date": "1000-06-01"}]},
            "procedures.0.date",
        ),
        ({"conditions": [{"code": "eczema", "date": "0001-01-01"}]}, "conditions.0.date"),
    ],
)
def test_an_intake_date_outside_the_clinical_range_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_intake(**changes)
    first = refused.value.errors()[0]
    assert ".".join(str(part) for part in first["loc"]) == field
    assert "1900-01-01" in first["msg"] and "2199-12-31" in first["msg"]


def test_intakes_at_the_edges_of_the_range_screen_without_error(pack: Pack) -> None:
    late = make_intake(
        planned_date="2199-12-31",
        medications=[{"code": "isotretinoin", "last_dose": "2199-12-30"}],
    )
    assert screen(late, pack).verdict == "deferred"
    early = make_intake(
        birth_date="1900-01-01",
        planned_date="1900-01-02",
        medications=[{"code": "aspirin", "last_dose": None}],
    )
    assert screen(early, pack).med_holds[0].stop_on < date(1900, 1, 2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_session": date(9999, 12, 31), "as_of": date(9999, 12, 1)}, "first_session"),
        ({"first_session": date(1, 1, 1)}, "first_session"),
        (
            {
                "first_session": date(9999, 11, 1),
                "done": [date(9999, 12, 31)],
                "as_of": date(9999, 12, 31),
            },
            "first_session",
        ),
        (
            {
                "first_session": date(2027, 1, 5),
                "done": [date(2027, 1, 5), date(9999, 12, 31)],
                "as_of": date(9999, 12, 31),
            },
            "done.1",
        ),
        ({"first_session": date(2027, 1, 5), "as_of": date(9999, 12, 31)}, "as_of"),
    ],
)
def test_a_course_date_outside_the_clinical_range_is_refused_naming_the_field(
    pack: Pack, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as refused:
        plan_course(pack=pack, indications=["acne_scars"], **changes)
    assert refused.value.field == field
    assert "2199-12-31" in refused.value.problem


def test_a_course_on_the_last_accepted_day_plans_past_it(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2199, 12, 31),
        as_of=date(2199, 12, 1),
    )
    assert plan.sessions[-1].target.year == 2200


def test_chaining_sessions_from_a_day_outside_the_range_is_refused() -> None:
    gap = Gap(min=21, target=28, max=42)
    with pytest.raises(InputError) as refused:
        chain_sessions(start_number=2, count=2, anchor=date(9999, 12, 1), gap=gap, as_of=None)
    assert refused.value.field == "anchor"
