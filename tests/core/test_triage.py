"""Triage: symptoms outside their expected days and red flags escalate."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import Policy
from microneedling.core.triage import TriageReport, triage


def report(
    *codes: str, day: int = 1, severity: str = "mild", skin: int = 2, **extra: Any
) -> TriageReport:
    data: dict[str, Any] = {
        "symptoms": [{"code": c, "severity": severity} for c in codes],
        "days_since_session": day,
        "fitzpatrick_type": skin,
        **extra,
    }
    return TriageReport.model_validate(data)


@pytest.mark.parametrize(
    ("day", "action"),
    [
        (0, "expected"),
        (2, "expected"),
        (4, "expected"),
        (5, "monitor"),
        (7, "monitor"),
        (8, "contact_clinic"),
        (30, "contact_clinic"),
    ],
)
def test_redness_is_expected_early_and_escalates_when_it_lasts(
    pack: Pack, day: int, action: str
) -> None:
    assert triage(report("redness", day=day), pack).action == action


@pytest.mark.parametrize(
    ("day", "action"), [(0, "expected"), (4, "expected"), (7, "expected"), (8, "contact_clinic")]
)
def test_peeling_past_its_usual_week_is_a_call_to_the_clinic(
    pack: Pack, day: int, action: str
) -> None:
    # Seed-004 says to call about peeling; the default position of dispute.bruising_peeling
    # keeps it ordinary only while mild and inside its usual days (flaking ends by day 7).
    assert triage(report("peeling", day=day), pack).action == action
    assert triage(report("peeling", day=2, severity="severe"), pack).action == "contact_clinic"


@pytest.mark.parametrize("code", ["bruising", "peeling"])
def test_a_clinic_following_seed_004_hears_about_every_bruise_and_peel(
    pack: Pack, code: str
) -> None:
    strict = Policy(positions={"dispute.bruising_peeling": "call_the_doctor"})
    assert triage(report(code, day=1), pack).action == "expected"
    result = triage(report(code, day=1), pack, strict)
    assert result.action == "contact_clinic"
    assert result.reasons[0].message.startswith("Your clinic asks to hear about any")
    # A position that only sets a floor never lowers what the stages already ask for.
    assert triage(report(code, day=9, severity="severe"), pack, strict).action == "urgent"


def test_a_side_effect_is_called_common_only_when_its_frequency_is(pack: Pack) -> None:
    # Seed-000 says only some people get itching: its text must not call it common.
    for symptom in pack.data.symptoms:
        if symptom.frequency != "common":
            assert " common" not in symptom.message.lower(), symptom.code


def test_lasting_redness_in_darker_skin_is_escalated_sooner(pack: Pack) -> None:
    assert triage(report("redness", day=6, skin=2), pack).action == "monitor"
    assert triage(report("redness", day=6, skin=5), pack).action == "contact_clinic"
    assert triage(report("redness", day=2, skin=5), pack).action == "expected"


def test_pinpoint_bleeding_on_the_day_is_expected_but_not_after_the_first_day(
    pack: Pack,
) -> None:
    assert triage(report("bleeding", day=0), pack).action == "expected"
    assert triage(report("bleeding", day=1), pack).action == "contact_clinic"
    assert triage(report("bleeding", day=3), pack).action == "contact_clinic"


def test_severe_bleeding_is_urgent(pack: Pack) -> None:
    assert triage(report("bleeding", day=0, severity="severe"), pack).action == "urgent"


def test_severity_raises_an_ordinary_symptom_one_step(pack: Pack) -> None:
    assert triage(report("swelling", day=1, severity="moderate"), pack).action == "expected"
    assert triage(report("swelling", day=1, severity="severe"), pack).action == "contact_clinic"


@pytest.mark.parametrize("code", ["pus", "spreading_redness", "fever", "blisters"])
@pytest.mark.parametrize("day", [0, 2, 9])
def test_signs_of_infection_or_herpes_are_urgent_on_any_day(
    pack: Pack, code: str, day: int
) -> None:
    result = triage(report(code, day=day), pack)
    assert result.action == "urgent"
    assert result.reasons[0].red_flag


def test_new_itchy_eruption_from_day_three_is_a_red_flag(pack: Pack) -> None:
    assert triage(report("itchy_eruption", day=1), pack).action == "monitor"
    result = triage(report("itchy_eruption", day=3), pack)
    assert result.action == "contact_clinic"
    assert "friedmann2024" in result.reasons[0].sources


@pytest.mark.parametrize("skin", [1, 6])
def test_darkening_patches_always_need_the_clinic(pack: Pack, skin: int) -> None:
    assert triage(report("darkening", day=10, skin=skin), pack).action == "contact_clinic"


def test_most_pressing_symptom_decides_and_comes_first(pack: Pack) -> None:
    result = triage(report("redness", "dryness", "pus", day=2), pack)
    assert result.action == "urgent"
    assert result.reasons[0].symptom == "pus"
    assert [r.action for r in result.reasons[1:]] == ["expected", "expected"]


def test_message_explains_a_symptom_that_lasts_too_long(pack: Pack) -> None:
    result = triage(report("redness", day=9), pack)
    assert "day 9" in result.reasons[0].message


def test_day_can_be_given_as_two_dates_across_a_month_end(pack: Pack) -> None:
    by_dates = TriageReport.model_validate(
        {
            "symptoms": [{"code": "redness"}],
            "session_date": "2027-02-26",
            "reported_on": "2027-03-06",
        }
    )
    assert by_dates.day == 8
    assert triage(by_dates, pack).action == "contact_clinic"


def test_unknown_symptom_names_the_field(pack: Pack) -> None:
    with pytest.raises(InputError) as error:
        triage(report("redness", "glowing_eyes"), pack)
    assert error.value.field == "symptoms.1.code"


def test_report_needs_exactly_one_way_to_give_the_day() -> None:
    with pytest.raises(ValidationError, match="days_since_session"):
        TriageReport.model_validate({"symptoms": [{"code": "redness"}]})
    with pytest.raises(ValidationError, match="not both"):
        report("redness", session_date="2027-01-01", reported_on="2027-01-02")


def test_report_dated_before_the_session_is_rejected() -> None:
    with pytest.raises(ValidationError, match="before"):
        TriageReport.model_validate(
            {
                "symptoms": [{"code": "redness"}],
                "session_date": "2027-01-05",
                "reported_on": "2027-01-04",
            }
        )


def test_report_dates_further_apart_than_a_day_count_may_be_are_rejected() -> None:
    # The same ten-year bound as days_since_session, whichever way the day is given.
    with pytest.raises(ValidationError, match="3650 days"):
        TriageReport.model_validate(
            {
                "symptoms": [{"code": "redness"}],
                "session_date": "1900-01-01",
                "reported_on": "2199-12-31",
            }
        )


@pytest.mark.parametrize(
    ("field", "value"), [("days_since_session", "3"), ("fitzpatrick_type", 4.0)]
)
def test_report_numbers_given_as_text_or_fractions_are_rejected(field: str, value: object) -> None:
    data = {"symptoms": [{"code": "redness"}], "days_since_session": 3, field: value}
    with pytest.raises(ValidationError, match=field):
        TriageReport.model_validate(data)
