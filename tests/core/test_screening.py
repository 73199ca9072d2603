"""Screening rules, family by family: the worst reason decides the verdict."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import Policy
from microneedling.core.screening import age_on, screen
from tests.core.conftest import make_intake


def rules_fired(result) -> set[str]:
    return {r.rule for r in result.reasons if r.outcome != "eligible"}


def test_healthy_patient_is_eligible_with_no_reasons(pack: Pack) -> None:
    result = screen(make_intake(), pack)
    assert result.verdict == "eligible"
    assert result.reasons == ()
    assert result.deferred_until is None


# --- states and age ---
def test_pregnancy_is_not_eligible(pack: Pack) -> None:
    result = screen(make_intake(pregnant=True), pack)
    assert result.verdict == "not_eligible"
    assert "rule.pregnant" in rules_fired(result)
    assert "seed-004" in result.reasons[0].sources


def test_breastfeeding_is_not_eligible(pack: Pack) -> None:
    assert screen(make_intake(breastfeeding=True), pack).verdict == "not_eligible"


def test_minor_needs_clinician_review_and_only_the_strictest_age_band_is_reported(
    pack: Pack,
) -> None:
    result = screen(make_intake(birth_date="2010-01-01"), pack)
    assert result.verdict == "clinician_review"
    assert rules_fired(result) == {"rule.age.minor"}


def test_adult_under_device_label_age_gets_precautions(pack: Pack) -> None:
    result = screen(make_intake(birth_date="2005-01-01"), pack)
    assert result.verdict == "eligible_with_precautions"
    assert rules_fired(result) == {"rule.age.under_label"}


def test_leap_day_birthday_turns_over_on_first_of_march() -> None:
    assert age_on(date(2004, 2, 29), date(2022, 2, 28)) == 17
    assert age_on(date(2004, 2, 29), date(2022, 3, 1)) == 18
    assert age_on(date(2004, 2, 29), date(2024, 2, 29)) == 20


@pytest.mark.parametrize("skin_type", [4, 5, 6])
def test_darker_skin_types_get_conservative_depth_and_sun_protection(
    pack: Pack, skin_type: int
) -> None:
    result = screen(make_intake(fitzpatrick_type=skin_type), pack)
    assert result.verdict == "eligible_with_precautions"
    effects = {p.effect for p in result.precautions}
    ids = {p.id for p in result.precautions}
    assert "conservative_depth" in effects
    assert "precaution.strict_sun_protection" in ids


@pytest.mark.parametrize("skin_type", [1, 2, 3])
def test_lighter_skin_types_need_no_skin_type_precaution(pack: Pack, skin_type: int) -> None:
    assert screen(make_intake(fitzpatrick_type=skin_type), pack).verdict == "eligible"


# --- conditions ---
def test_active_infection_defers_without_a_date(pack: Pack) -> None:
    result = screen(make_intake(conditions=[{"code": "active_infection"}]), pack)
    assert result.verdict == "deferred"
    assert result.deferred_until is None


def test_infection_elsewhere_in_the_body_still_defers(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "active_infection", "area": "legs"}])
    assert screen(intake, pack).verdict == "deferred"


def test_eczema_on_the_face_does_not_block_the_legs(pack: Pack) -> None:
    intake = make_intake(treatment_areas=["legs"], conditions=[{"code": "eczema", "area": "face"}])
    result = screen(intake, pack)
    assert result.verdict == "eligible"
    assert any(
        r.rule == "rule.condition.inflammatory_active" and r.outcome == "eligible"
        for r in result.reasons
    )


def test_a_clinic_following_seed_004_on_eczema_turns_it_away_wherever_it_is(pack: Pack) -> None:
    intake = make_intake(treatment_areas=["legs"], conditions=[{"code": "eczema", "area": "face"}])
    strict = Policy(positions={"dispute.inflammatory_skin_disease": "avoid"})
    assert screen(intake, pack).verdict == "eligible"
    assert screen(intake, pack, strict).verdict == "not_eligible"


def test_eczema_on_the_face_concerns_only_the_face_when_both_are_treated(pack: Pack) -> None:
    intake = make_intake(
        treatment_areas=["face", "legs"], conditions=[{"code": "eczema", "area": "face"}]
    )
    result = screen(intake, pack)
    assert result.verdict == "clinician_review"
    assert result.area_verdicts == {"face": "clinician_review", "legs": "eligible"}


def test_condition_on_a_sub_area_concerns_its_parent_area(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "psoriasis", "area": "face.forehead"}])
    assert screen(intake, pack).verdict == "clinician_review"


def test_condition_without_an_area_concerns_every_area(pack: Pack) -> None:
    intake = make_intake(treatment_areas=["legs"], conditions=[{"code": "psoriasis"}])
    assert screen(intake, pack).verdict == "clinician_review"


def test_past_eczema_gives_precautions_not_review(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "eczema", "status": "history"}])
    result = screen(intake, pack)
    assert result.verdict == "eligible_with_precautions"
    assert "precaution.skip_affected_skin" in {p.id for p in result.precautions}


def test_cold_sore_history_asks_for_antiviral_prophylaxis(pack: Pack) -> None:
    intake = make_intake(
        conditions=[{"code": "herpes_simplex", "area": "face", "status": "history"}]
    )
    result = screen(intake, pack)
    assert result.verdict == "eligible_with_precautions"
    assert "antiviral_prophylaxis" in {p.effect for p in result.precautions}


def test_active_cold_sore_in_the_area_defers(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "herpes_simplex", "area": "face"}])
    assert screen(intake, pack).verdict == "deferred"


@pytest.mark.parametrize("code", ["herpes_simplex", "warts"])
def test_an_active_viral_infection_outside_the_treated_area_still_defers(
    pack: Pack, code: str
) -> None:
    # Seed-000: no treatment while any infection is active anywhere in the body.
    intake = make_intake(
        treatment_areas=["legs"], conditions=[{"code": code, "area": "face.perioral"}]
    )
    result = screen(intake, pack)
    assert result.verdict == "deferred"
    assert result.area_verdicts == {"legs": "deferred"}
    assert "seed-000" in next(r for r in result.reasons if r.outcome == "deferred").sources


@pytest.mark.parametrize("code", ["bleeding_disorder", "skin_cancer"])
def test_absolute_contraindications_are_not_eligible(pack: Pack, code: str) -> None:
    assert screen(make_intake(conditions=[{"code": code}]), pack).verdict == "not_eligible"


@pytest.mark.parametrize(
    "code",
    [
        "rosacea",
        "active_acne",
        "immunosuppression",
        "scleroderma",
        "keloid_scarring",
        "poor_wound_healing",
    ],
)
def test_relative_contraindications_need_clinician_review(pack: Pack, code: str) -> None:
    assert screen(make_intake(conditions=[{"code": code}]), pack).verdict == "clinician_review"


def test_diabetes_gives_precautions(pack: Pack) -> None:
    result = screen(make_intake(conditions=[{"code": "diabetes"}]), pack)
    assert result.verdict == "eligible_with_precautions"


def test_open_wound_in_the_area_defers_until_healed(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "open_wound", "area": "face"}])
    result = screen(intake, pack)
    assert result.verdict == "deferred"
    assert result.deferred_until is None


def test_sunburn_defers_two_weeks_from_its_date(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "sunburn", "area": "face", "date": "2026-12-01"}])
    result = screen(intake, pack)
    assert result.verdict == "deferred"
    assert result.deferred_until == date(2026, 12, 15)


def test_old_sunburn_no_longer_defers(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "sunburn", "date": "2026-11-20"}])
    assert screen(intake, pack).verdict == "eligible"


def test_clinic_policy_can_choose_the_strict_scar_position(pack: Pack) -> None:
    intake = make_intake(conditions=[{"code": "keloid_scarring"}])
    strict = Policy(positions={"dispute.scars_indication_or_contraindication": "avoid_with_scars"})
    assert screen(intake, pack).verdict == "clinician_review"
    assert screen(intake, pack, strict).verdict == "not_eligible"


def test_the_strict_scar_position_turns_away_any_scar_not_only_keloids(pack: Pack) -> None:
    # Seed-004, read literally: anyone who has or had scars is not needled.
    intake = make_intake(conditions=[{"code": "recent_scar", "area": "face"}])
    strict = Policy(positions={"dispute.scars_indication_or_contraindication": "avoid_with_scars"})
    assert screen(intake, pack).verdict == "eligible_with_precautions"
    assert screen(intake, pack, strict).verdict == "not_eligible"


# --- medications ---
def test_isotretinoin_taken_now_defers_without_a_date(pack: Pack) -> None:
    result = screen(make_intake(medications=[{"code": "isotretinoin"}]), pack)
    assert result.verdict == "deferred"
    assert result.deferred_until is None
    assert "6 months" in result.reasons[0].message


def test_isotretinoin_waits_six_calendar_months_clamped_to_month_end(pack: Pack) -> None:
    intake = make_intake(medications=[{"code": "isotretinoin", "last_dose": "2026-08-31"}])
    assert screen(intake, pack).deferred_until == date(2027, 2, 28)


def test_isotretinoin_wait_lands_on_a_leap_day(pack: Pack) -> None:
    intake = make_intake(
        planned_date="2027-12-01", medications=[{"code": "isotretinoin", "last_dose": "2027-08-31"}]
    )
    assert screen(intake, pack).deferred_until == date(2028, 2, 29)


def test_isotretinoin_stopped_long_enough_ago_is_fine(pack: Pack) -> None:
    intake = make_intake(medications=[{"code": "isotretinoin", "last_dose": "2026-06-10"}])
    assert screen(intake, pack).verdict == "eligible"


def test_policy_following_the_asds_consensus_does_not_defer_isotretinoin(pack: Pack) -> None:
    intake = make_intake(medications=[{"code": "isotretinoin"}])
    policy = Policy(positions={"dispute.isotretinoin_wait": "no_delay_superficial"})
    assert screen(intake, pack, policy).verdict == "eligible"


def test_device_label_policy_defers_isotretinoin_only_while_taken(pack: Pack) -> None:
    policy = Policy(positions={"dispute.isotretinoin_wait": "currently_taking_only"})
    taking = make_intake(medications=[{"code": "isotretinoin"}])
    stopped = make_intake(medications=[{"code": "isotretinoin", "last_dose": "2026-10-01"}])
    assert screen(taking, pack, policy).verdict == "deferred"
    assert screen(stopped, pack, policy).verdict == "eligible"


def test_ibuprofen_is_held_a_week_before_and_resumed_after(pack: Pack) -> None:
    result = screen(make_intake(medications=[{"code": "ibuprofen"}]), pack)
    assert result.verdict == "eligible_with_precautions"
    (hold,) = result.med_holds
    assert (hold.code, hold.stop_on, hold.resume_on) == (
        "ibuprofen",
        date(2026, 12, 3),
        date(2026, 12, 13),
    )


def test_any_nsaid_is_held_through_its_class(pack: Pack) -> None:
    result = screen(make_intake(medications=[{"code": "naproxen"}]), pack)
    assert [h.rule for h in result.med_holds] == ["hold.nsaid"]


def test_retinoid_hold_dates_cross_a_month_end(pack: Pack) -> None:
    intake = make_intake(planned_date="2027-03-02", medications=[{"code": "topical_retinoid"}])
    (hold,) = screen(intake, pack).med_holds
    assert hold.stop_on == date(2027, 2, 25)
    assert hold.resume_on == date(2027, 3, 6)


def test_medicine_stopped_before_the_hold_starts_needs_no_hold(pack: Pack) -> None:
    intake = make_intake(medications=[{"code": "aspirin", "last_dose": "2026-11-01"}])
    result = screen(intake, pack)
    assert result.med_holds == ()
    assert result.verdict == "eligible"


def test_anticoagulants_need_the_prescribers_approval(pack: Pack) -> None:
    result = screen(make_intake(medications=[{"code": "anticoagulant"}]), pack)
    assert result.verdict == "clinician_review"
    assert "precaution.bleeding_watch" in {p.id for p in result.precautions}


# --- procedures ---
@pytest.mark.parametrize(
    ("code", "done_on", "until"),
    [
        ("botox", "2026-12-01", date(2026, 12, 15)),
        ("dermal_filler", "2026-11-30", date(2026, 12, 14)),
        ("chemical_peel", "2026-11-20", date(2026, 12, 20)),
        ("laser_resurfacing", "2026-12-05", date(2026, 12, 19)),
        ("radiation_therapy", "2026-10-31", date(2027, 1, 31)),
    ],
)
def test_recent_procedure_in_the_area_defers_to_the_end_of_its_wait(
    pack: Pack, code: str, done_on: str, until: date
) -> None:
    intake = make_intake(procedures=[{"code": code, "area": "face", "date": done_on}])
    result = screen(intake, pack)
    assert result.verdict == "deferred"
    assert result.deferred_until == until


def test_seed_004_s_radiation_position_sends_any_radiation_therapy_to_a_provider(
    pack: Pack,
) -> None:
    intake = make_intake(
        procedures=[{"code": "radiation_therapy", "area": "chest", "date": "2025-01-10"}]
    )
    literal = Policy(positions={"dispute.radiation_wait": "recent"})
    assert screen(intake, pack).verdict == "eligible"  # three months, same area only
    assert screen(intake, pack, literal).verdict == "clinician_review"


def test_injections_in_another_area_do_not_defer(pack: Pack) -> None:
    intake = make_intake(procedures=[{"code": "botox", "area": "legs", "date": "2026-12-08"}])
    assert screen(intake, pack).verdict == "eligible"


def test_deferral_date_is_the_latest_of_all_waits(pack: Pack) -> None:
    intake = make_intake(
        procedures=[
            {"code": "botox", "area": "face", "date": "2026-12-01"},
            {"code": "chemical_peel", "area": "face", "date": "2026-11-25"},
        ]
    )
    assert screen(intake, pack).deferred_until == date(2026, 12, 25)


def test_an_undated_deferral_leaves_the_date_open(pack: Pack) -> None:
    intake = make_intake(
        conditions=[{"code": "active_infection"}],
        procedures=[{"code": "botox", "area": "face", "date": "2026-12-01"}],
    )
    result = screen(intake, pack)
    assert result.verdict == "deferred"
    assert result.deferred_until is None


# --- allergies ---
@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        ("stainless_steel", "not_eligible"),
        ("nickel", "clinician_review"),
        ("topical_anesthetic", "clinician_review"),
    ],
)
def test_allergies(pack: Pack, code: str, verdict: str) -> None:
    assert screen(make_intake(allergies=[code]), pack).verdict == verdict


# --- the worst reason decides ---
def test_worst_reason_decides_and_every_reason_is_kept(pack: Pack) -> None:
    intake = make_intake(
        fitzpatrick_type=5,
        pregnant=True,
        medications=[{"code": "ibuprofen"}],
        conditions=[{"code": "rosacea"}],
    )
    result = screen(intake, pack)
    assert result.verdict == "not_eligible"
    assert {
        "rule.pregnant",
        "rule.condition.rosacea",
        "rule.fitzpatrick.darker",
        "hold.nsaid",
    } <= rules_fired(result)
    for reason in result.reasons:
        assert reason.message and reason.sources


def test_every_reason_cites_sources_the_pack_knows(pack: Pack) -> None:
    known = {s.id for s in pack.data.sources}
    intake = make_intake(
        conditions=[{"code": c} for c in pack.codes["conditions"]],
        allergies=list(pack.codes["allergies"]),
    )
    for reason in screen(intake, pack).reasons:
        assert set(reason.sources) <= known


# --- bad input ---
def test_unknown_condition_code_names_the_field(pack: Pack) -> None:
    with pytest.raises(InputError) as error:
        screen(make_intake(conditions=[{"code": "eczema"}, {"code": "dragon_pox"}]), pack)
    assert error.value.field == "conditions.1.code"


def test_unknown_area_names_the_field(pack: Pack) -> None:
    with pytest.raises(InputError) as error:
        screen(make_intake(treatment_areas=["face", "tail"]), pack)
    assert error.value.field == "treatment_areas.1"


def test_birth_after_the_planned_date_is_rejected() -> None:
    with pytest.raises(ValidationError, match="birth_date"):
        make_intake(birth_date="2027-01-01")


def test_fitzpatrick_type_outside_one_to_six_is_rejected() -> None:
    with pytest.raises(ValidationError, match="fitzpatrick_type"):
        make_intake(fitzpatrick_type=7)


def test_procedure_dated_after_the_planned_day_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"procedures\.0\.date"):
        make_intake(procedures=[{"code": "botox", "date": "2026-12-11"}])


@pytest.mark.parametrize(
    ("field", "value"),
    [("pregnant", "yes"), ("pregnant", "no"), ("breastfeeding", 0), ("fitzpatrick_type", "3")],
)
def test_intake_answers_of_the_wrong_type_are_refused_not_guessed(
    field: str, value: object
) -> None:
    # "no" read as false would screen a pregnant patient's typo as not pregnant.
    with pytest.raises(ValidationError, match=field):
        make_intake(**{field: value})
