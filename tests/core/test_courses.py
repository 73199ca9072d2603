"""Course planning and re-planning: windows, combinations, depth, and the calendar."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path

import pytest

from microneedling.core.courses import plan_course
from microneedling.core.errors import InputError, PackError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.loader import _read_files, build_pack
from microneedling.core.knowledge.models import Policy

DATA = Path(__file__).parents[2] / "src/microneedling/core/knowledge/data"


def targets(plan) -> list[date]:
    return [s.target for s in plan.sessions]


def test_acne_scars_default_is_three_sessions_four_to_six_weeks_apart(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["acne_scars"], first_session=date(2027, 1, 5))
    assert plan.status == "planned"
    assert plan.sessions_total == 3
    assert targets(plan) == [date(2027, 1, 5), date(2027, 2, 2), date(2027, 3, 2)]
    second = plan.sessions[1]
    assert (second.earliest, second.latest) == (date(2027, 2, 2), date(2027, 2, 16))
    assert "harris2015" in plan.sources


def test_first_session_is_fixed_on_the_requested_day(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["melasma"], first_session=date(2027, 1, 5))
    first = plan.sessions[0]
    assert first.earliest == first.target == first.latest == date(2027, 1, 5)


@pytest.mark.parametrize(("fitzpatrick", "sessions"), [(3, 3), (4, 5), (5, 5), (6, 3)])
def test_skin_types_four_and_five_get_five_acne_scar_sessions(
    pack: Pack, fitzpatrick: int, sessions: int
) -> None:
    # As Dogra 2014 studied (types IV–V); type VI keeps the three of Harris and Fabbrocini.
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        fitzpatrick=fitzpatrick,
    )
    assert plan.sessions_total == sessions


def test_windows_across_a_month_end_land_on_the_right_day(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["acne_scars"], first_session=date(2027, 1, 31))
    assert plan.sessions[1].target == date(2027, 2, 28)
    assert plan.sessions[2].target == date(2027, 3, 28)


def test_windows_include_a_leap_day(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["acne_scars"], first_session=date(2028, 2, 1))
    assert plan.sessions[1].target == date(2028, 2, 29)


def test_windows_across_a_daylight_saving_change_keep_whole_days(pack: Pack) -> None:
    # US clocks change on 2027-03-14; dates, not elapsed hours, define the windows.
    plan = plan_course(pack=pack, indications=["acne_scars"], first_session=date(2027, 3, 1))
    assert plan.sessions[1].target == date(2027, 3, 29)
    assert (plan.sessions[1].target - plan.sessions[0].target).days == 28


def test_combined_concerns_take_the_most_demanding_protocol_and_keep_reasons(
    pack: Pack,
) -> None:
    plan = plan_course(
        pack=pack, indications=["melasma", "wrinkles"], first_session=date(2027, 1, 5)
    )
    assert plan.sessions_total == 4  # wrinkles: 4 sessions beats melasma's 2
    assert plan.gap_days == (28, 30, 35)  # both windows must hold: 28–35
    assert len(plan.reasons) >= 3
    assert set(plan.protocols) == {"protocol.melasma.lima2017", "protocol.wrinkles.aust2008"}


def test_clinic_policy_can_choose_the_seed_protocol(pack: Pack) -> None:
    policy = Policy(protocols={"acne_scars": "protocol.acne_scars.seed000"})
    plan = plan_course(
        pack=pack, indications=["acne_scars"], first_session=date(2027, 1, 5), policy=policy
    )
    assert plan.sessions_total == 6
    assert plan.gap_days == (35, 42, 49)


def test_a_clinic_choosing_seed_000_s_longer_course_gets_it_for_those_concerns(
    pack: Pack,
) -> None:
    policy = Policy(positions={"dispute.session_spacing": "seed000_demanding"})

    def plan(code: str, chosen: Policy | None = policy):  # type: ignore[no-untyped-def]
        return plan_course(
            pack=pack, indications=[code], first_session=date(2027, 1, 5), policy=chosen
        )

    # Seed-000: six to eight sessions six weeks apart for acne scars, stretch marks...
    for code in ("acne_scars", "stretch_marks", "wrinkles", "photo_ageing"):
        assert (plan(code).sessions_total, plan(code).gap_days) == (6, (35, 42, 49)), code
    # ... while a concern the position says nothing about keeps its default.
    assert plan("melasma").protocols == plan("melasma", None).protocols
    # A clinic's choice for one concern still comes first.
    both = Policy(
        positions=policy.positions,
        protocols={"acne_scars": "protocol.acne_scars.harris2015"},
    )
    assert plan("acne_scars", both).sessions_total == 3


def test_seed_002_s_series_is_used_where_a_concern_has_one(pack: Pack) -> None:
    policy = Policy(positions={"dispute.session_spacing": "seed002_series"})
    plan = plan_course(
        pack=pack, indications=["other_scars"], first_session=date(2027, 1, 5), policy=policy
    )
    assert plan.protocols == ("protocol.other_scars.seed002",)
    assert plan.gap_days == (28, 35, 42)


def test_a_position_naming_an_unknown_protocol_fails_validation() -> None:
    raw = copy.deepcopy(_read_files(DATA))
    dispute = next(d for d in raw["disputes"] if d["id"] == "dispute.session_spacing")
    dispute["positions"][0]["params"]["protocols"] = ["protocol.nowhere"]
    with pytest.raises(PackError, match=r"unknown protocol 'protocol\.nowhere'"):
        build_pack(raw)


@pytest.mark.parametrize(
    ("position", "days", "words"),
    [
        (None, (14, 42), "about two weeks"),
        ("two_weeks", (0, 14), "within the first two weeks"),
        ("weeks_to_six_months", (7, 42), "several weeks"),
    ],
)
def test_the_timeline_says_when_results_show_as_the_clinic_chose(
    pack: Pack, position: str | None, days: tuple[int, int], words: str
) -> None:
    policy = Policy(positions={"dispute.results_onset": position}) if position else None
    plan = plan_course(
        pack=pack, indications=["fine_lines"], first_session=date(2027, 1, 5), policy=policy
    )
    # results.visible: the one milestone after each session that seed-004 is cited for.
    visible = next(
        i
        for i in plan.timeline
        if i.kind == "result" and i.anchor == "each_session" and "seed-004" in i.sources
    )
    assert (visible.from_day, visible.to_day) == days
    assert words in visible.message


def test_prevention_is_one_session_then_yearly(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["prevention"], first_session=date(2027, 1, 5))
    assert plan.sessions_total == 1
    assert plan.maintenance.every_days_min >= 330


def test_maintenance_starts_after_the_last_session(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["texture_tone"], first_session=date(2027, 1, 5))
    assert plan.maintenance.first_due == plan.sessions[-1].target + timedelta(days=60)
    assert (plan.maintenance.every_days_min, plan.maintenance.every_days_max) == (60, 90)


def test_depth_is_capped_in_thin_skin_areas(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["wrinkles"],
        first_session=date(2027, 1, 5),
        areas=["face", "face.periorbital"],
    )
    assert plan.depth_mm["face"].max == 1.0
    assert plan.depth_mm["face.periorbital"].max == 0.5


def test_scar_depth_on_the_face_stays_within_the_devices_evaluated_depth(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["other_scars"],
        first_session=date(2027, 1, 5),
        areas=["face", "back"],
    )
    assert plan.depth_mm["face"].max == 1.5
    assert plan.depth_mm["back"].max == 2.0


def test_darker_skin_gets_a_conservative_depth(pack: Pack) -> None:
    light = plan_course(
        pack=pack,
        indications=["stretch_marks"],
        first_session=date(2027, 1, 5),
        areas=["abdomen"],
        fitzpatrick=2,
    )
    dark = plan_course(
        pack=pack,
        indications=["stretch_marks"],
        first_session=date(2027, 1, 5),
        areas=["abdomen"],
        fitzpatrick=6,
    )
    assert light.depth_mm["abdomen"].max == 2.0
    assert dark.depth_mm["abdomen"].max < light.depth_mm["abdomen"].max
    assert dark.depth_mm["abdomen"].max <= 1.5


def test_timeline_covers_recovery_by_day_and_results(pack: Pack) -> None:
    plan = plan_course(pack=pack, indications=["fine_lines"], first_session=date(2027, 1, 5))
    kinds = {(t.kind, t.anchor) for t in plan.timeline}
    assert ("recovery", "each_session") in kinds
    assert ("result", "series_end") in kinds
    six_months = [t for t in plan.timeline if t.to_day == 182]
    assert six_months and six_months[0].from_date == plan.sessions[-1].target


# --- re-planning -------------------------------------------------------------------------
def test_replanning_counts_from_the_real_last_session(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        done=[date(2027, 1, 5), date(2027, 2, 10)],
        as_of=date(2027, 2, 11),
    )
    assert plan.status == "on_track"
    (third,) = plan.sessions
    assert third.number == 3
    assert (third.earliest, third.target, third.latest) == (
        date(2027, 3, 10),
        date(2027, 3, 10),
        date(2027, 3, 24),
    )


def test_replanning_moves_an_overdue_target_to_today_inside_the_window(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        done=[date(2027, 1, 5)],
        as_of=date(2027, 2, 10),
    )
    second = plan.sessions[0]
    assert second.target == date(2027, 2, 10)
    assert second.earliest == date(2027, 2, 10)
    assert second.latest == date(2027, 2, 16)


def test_course_restarts_when_the_window_has_closed(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        done=[date(2027, 1, 5)],
        as_of=date(2027, 3, 1),
    )
    assert plan.status == "restart"
    assert plan.sessions[0].target == date(2027, 3, 1)
    assert len(plan.sessions) == 3
    assert "restarts" in plan.reasons[-1]


def test_course_restarts_when_a_done_gap_was_too_long(pack: Pack) -> None:
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        done=[date(2027, 1, 5), date(2027, 3, 20)],
        as_of=date(2027, 3, 21),
    )
    assert plan.status == "restart"


def test_course_is_complete_when_every_session_is_done(pack: Pack) -> None:
    done = [date(2027, 1, 5), date(2027, 2, 2), date(2027, 3, 2)]
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=date(2027, 1, 5),
        done=done,
        as_of=date(2027, 3, 3),
    )
    assert plan.status == "complete"
    assert plan.sessions == ()
    assert plan.maintenance.first_due == date(2027, 5, 1)


# --- bad input ---
def test_unknown_indication_names_the_field(pack: Pack) -> None:
    with pytest.raises(InputError) as error:
        plan_course(
            pack=pack, indications=["acne_scars", "hiccups"], first_session=date(2027, 1, 5)
        )
    assert error.value.field == "indication.1"


def test_area_not_treated_for_the_indication_is_rejected(pack: Pack) -> None:
    with pytest.raises(InputError, match="not treated"):
        plan_course(
            pack=pack, indications=["melasma"], first_session=date(2027, 1, 5), areas=["legs"]
        )


def test_first_session_in_the_past_is_rejected(pack: Pack) -> None:
    with pytest.raises(InputError) as error:
        plan_course(
            pack=pack,
            indications=["melasma"],
            first_session=date(2027, 1, 5),
            as_of=date(2027, 1, 6),
        )
    assert error.value.field == "first_session"


def test_done_session_in_the_future_is_rejected(pack: Pack) -> None:
    with pytest.raises(InputError, match="future"):
        plan_course(
            pack=pack,
            indications=["melasma"],
            first_session=date(2027, 1, 5),
            done=[date(2027, 1, 5), date(2027, 2, 5)],
            as_of=date(2027, 2, 1),
        )


def test_the_same_done_day_twice_is_refused_naming_its_position(pack: Pack) -> None:
    # Three sessions on one day would otherwise read as a finished three-session course.
    with pytest.raises(InputError, match="given twice") as error:
        plan_course(
            pack=pack,
            indications=["melasma"],
            first_session=date(2027, 1, 5),
            done=[date(2027, 1, 5), date(2027, 2, 2), date(2027, 1, 5)],
        )
    assert error.value.field == "done.2"
