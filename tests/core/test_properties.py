"""Invariants of the engines, checked on generated inputs (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from microneedling.core.courses import plan_course
from microneedling.core.knowledge import load_pack
from microneedling.core.knowledge.models import OUTCOME_ORDER
from microneedling.core.screening import Intake, screen

PACK = load_pack()
AREAS = sorted(PACK.areas)
PLANNED = date(2027, 6, 15)
past_days = st.integers(min_value=0, max_value=500).map(lambda n: PLANNED - timedelta(days=n))

conditions = st.builds(
    lambda code, area, status, when: {"code": code, "area": area, "status": status, "date": when},
    st.sampled_from(sorted(PACK.codes["conditions"])),
    st.none() | st.sampled_from(AREAS),
    st.sampled_from(["active", "history"]),
    st.none() | past_days.map(date.isoformat),
)
medications = st.builds(
    lambda code, last: {"code": code, "last_dose": last},
    st.sampled_from(sorted(PACK.codes["medications"])),
    st.none() | past_days.map(date.isoformat),
)
procedures = st.builds(
    lambda code, area, when: {"code": code, "area": area, "date": when},
    st.sampled_from(sorted(PACK.codes["procedures"])),
    st.none() | st.sampled_from(AREAS),
    past_days.map(date.isoformat),
)
allergies = st.sampled_from(sorted(PACK.codes["allergies"]))


@st.composite
def intakes(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "planned_date": PLANNED.isoformat(),
        "birth_date": (PLANNED - timedelta(days=draw(st.integers(15 * 365, 80 * 365)))).isoformat(),
        "fitzpatrick_type": draw(st.integers(1, 6)),
        "treatment_areas": draw(
            st.lists(st.sampled_from(AREAS), min_size=1, max_size=3, unique=True)
        ),
        "pregnant": draw(st.booleans()),
        "breastfeeding": draw(st.booleans()),
        "conditions": draw(st.lists(conditions, max_size=3)),
        "medications": draw(st.lists(medications, max_size=2)),
        "procedures": draw(st.lists(procedures, max_size=2)),
        "allergies": draw(st.lists(allergies, max_size=1, unique=True)),
    }


def rank(verdict: str) -> int:
    return OUTCOME_ORDER.index(verdict)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    base=intakes(),
    extra=st.one_of(
        conditions.map(lambda c: ("conditions", c)),
        medications.map(lambda m: ("medications", m)),
        procedures.map(lambda p: ("procedures", p)),
        allergies.map(lambda a: ("allergies", a)),
        st.just(("pregnant", True)),
    ),
)
def test_adding_a_contraindication_never_improves_the_verdict(
    base: dict[str, Any], extra: tuple[str, Any]
) -> None:
    before = screen(Intake.model_validate(base), PACK)
    field, value = extra
    worse = dict(base)
    if field == "pregnant":
        worse["pregnant"] = True
    elif field == "allergies":
        worse["allergies"] = sorted({*base["allergies"], value})
    else:
        worse[field] = [*base[field], value]
    after = screen(Intake.model_validate(worse), PACK)
    assert rank(after.verdict) >= rank(before.verdict)
    for area, verdict in before.area_verdicts.items():
        assert rank(after.area_verdicts[area]) >= rank(verdict)


@settings(max_examples=300, deadline=None)
@given(base=intakes())
def test_deferred_verdict_dates_are_after_the_planned_day(base: dict[str, Any]) -> None:
    result = screen(Intake.model_validate(base), PACK)
    if result.deferred_until is not None:
        assert result.verdict == "deferred"
        assert result.deferred_until > PLANNED
    for hold in result.med_holds:
        assert hold.stop_on < PLANNED < hold.resume_on


indication_sets = st.lists(
    st.sampled_from(sorted(PACK.indications)), min_size=1, max_size=3, unique=True
)
first_days = st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31))


@settings(max_examples=300, deadline=None)
@given(indications=indication_sets, first=first_days, skin=st.integers(1, 6))
def test_consecutive_planned_sessions_fall_inside_their_declared_windows(
    indications: list[str], first: date, skin: int
) -> None:
    plan = plan_course(pack=PACK, indications=indications, first_session=first, fitzpatrick=skin)
    low, _, high = plan.gap_days
    assert len(plan.sessions) == plan.sessions_total
    assert [s.number for s in plan.sessions] == list(range(1, plan.sessions_total + 1))
    for session in plan.sessions:
        assert session.earliest <= session.target <= session.latest
    for before, after in zip(plan.sessions, plan.sessions[1:], strict=False):
        assert low <= (after.target - before.target).days <= high
        assert after.earliest == before.target + timedelta(days=low)
        assert after.latest == before.target + timedelta(days=high)


@settings(max_examples=300, deadline=None)
@given(
    indications=indication_sets,
    first=first_days,
    skin=st.integers(1, 6),
    gaps=st.lists(st.integers(10, 60), max_size=5),
    wait=st.integers(0, 90),
)
def test_replanning_never_moves_a_session_into_the_past_or_before_its_earliest(
    indications: list[str], first: date, skin: int, gaps: list[int], wait: int
) -> None:
    done = [first]
    for gap in gaps:
        done.append(done[-1] + timedelta(days=gap))
    today = done[-1] + timedelta(days=wait)
    plan = plan_course(
        pack=PACK,
        indications=indications,
        first_session=first,
        fitzpatrick=skin,
        done=done,
        as_of=today,
    )
    low, _, high = plan.gap_days
    for session in plan.sessions:
        assert session.target >= today
        assert session.earliest >= today
        assert session.earliest <= session.target <= session.latest
    if plan.status == "on_track":
        following = plan.sessions[0]
        assert following.number == len(done) + 1
        assert following.earliest >= done[-1] + timedelta(days=low)
        assert following.latest == done[-1] + timedelta(days=high)
        for before, after in zip(plan.sessions, plan.sessions[1:], strict=False):
            assert low <= (after.target - before.target).days <= high
    elif plan.status == "complete":
        assert len(done) >= plan.sessions_total and plan.sessions == ()
