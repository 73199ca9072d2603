"""Screening: an intake in, a verdict out.

Each rule of the pack is tried against the intake; every rule that fires adds a reason, and
the worst reason decides the verdict. Conditions and procedures confined to one area only
concern treatment areas that share skin with it (eczema on the face does not block the legs),
so the result also carries a verdict per area.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from microneedling.core.dates import Span
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import Duration, Outcome, Policy, Rule
from microneedling.core.screening.intake import Intake, check_codes
from microneedling.core.screening.result import (
    MedHold,
    PrecautionNote,
    Reason,
    ScreeningResult,
    worst,
)

#: A medicine stopped this recently still counts as taken (it is still in the body).
_STILL_ACTIVE = timedelta(days=7)


def age_on(birth: date, day: date) -> int:
    """Whole years of age on ``day`` (a 29 February birthday turns over on 1 March)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def screen(intake: Intake, pack: Pack, policy: Policy | None = None) -> ScreeningResult:
    """Decide whether the intake's planned course may be booked, and on what terms."""
    check_codes(intake, pack)
    reasons = [reason for rule in pack.data.rules for reason in _fire(rule, intake, pack, policy)]
    reasons = _drop_milder_age_rules(reasons, pack)
    holds = _holds(intake, pack)
    reasons += [
        Reason(
            rule=h.rule,
            outcome="eligible_with_precautions",
            message=h.message,
            sources=h.sources,
        )
        for h in holds
    ]
    deciding = [r for r in reasons if r.outcome != "eligible"]
    verdict = worst([r.outcome for r in deciding])
    return ScreeningResult(
        verdict=verdict,
        deferred_until=_deferred_until(deciding) if verdict == "deferred" else None,
        med_holds=tuple(holds),
        precautions=_precautions(reasons, pack),
        reasons=tuple(reasons),
        area_verdicts={
            area: worst([r.outcome for r in deciding if r.areas is None or area in r.areas])
            for area in intake.treatment_areas
        },
    )


def _simple_match(rule: Rule, intake: Intake) -> bool:
    """Rules that look at one field of the intake and fire at most once."""
    if rule.when == "pregnant":
        return intake.pregnant
    if rule.when == "breastfeeding":
        return intake.breastfeeding
    if rule.when == "age":
        return rule.age_below is not None and (
            age_on(intake.birth_date, intake.planned_date) < rule.age_below
        )
    if rule.when == "fitzpatrick":
        return intake.fitzpatrick_type in rule.fitzpatrick
    if rule.when == "allergy":
        return bool(set(rule.codes).intersection(intake.allergies))
    return False


def _fire(rule: Rule, intake: Intake, pack: Pack, policy: Policy | None) -> Iterator[Reason]:
    planned = intake.planned_date
    if _simple_match(rule, intake):
        yield _reason(rule)
    elif rule.when == "condition":
        codes = _codes(rule, pack, policy)
        for condition in intake.conditions:
            if condition.code in codes and rule.status in ("any", condition.status):
                yield from _located(
                    rule, intake, pack, policy, condition.area, started=condition.date or planned
                )
    elif rule.when == "procedure":
        for procedure in intake.procedures:
            if procedure.code in rule.codes:
                yield from _located(
                    rule, intake, pack, policy, procedure.area, started=procedure.date
                )
    elif rule.when == "medication":
        for medication in intake.medications:
            if pack.medication_matches(medication.code, rule.codes):
                yield from _medication(rule, medication.last_dose, planned, pack, policy)


def _located(
    rule: Rule,
    intake: Intake,
    pack: Pack,
    policy: Policy | None,
    area: str | None,
    *,
    started: date,
) -> Iterator[Reason]:
    """Fire a condition or procedure rule, limited to the treatment areas it touches."""
    areas: tuple[str, ...] | None = None
    if _scope(rule, pack, policy) == "area" and area is not None:
        areas = tuple(a for a in intake.treatment_areas if pack.areas_overlap(a, area))
        if not areas:
            # Say so explicitly: staff should see that the entry was considered.
            yield Reason(
                rule=rule.id,
                outcome="eligible",
                sources=rule.sources,
                message=f"Outside the treated areas ({pack.areas[area].name}): "
                "no effect on this course.",
                areas=(),
            )
            return
    outcome, message = _outcome(rule, pack, policy), rule.message
    until = None
    if outcome == "deferred":
        wait = _wait(rule, pack, policy)
        if wait is not None:
            until = wait.after(started)
            if until <= intake.planned_date:
                return
            message = f"{message} Earliest date: {until.isoformat()}."
    yield Reason(
        rule=rule.id,
        outcome=outcome,
        message=message,
        sources=rule.sources,
        areas=areas,
        until=until,
    )


def _medication(
    rule: Rule, last_dose: date | None, planned: date, pack: Pack, policy: Policy | None
) -> Iterator[Reason]:
    params = pack.position(rule.dispute, policy).params if rule.dispute else {}
    if params.get("skip"):
        return
    current = last_dose is None
    if rule.outcome != "deferred" or params.get("current_only"):
        if current or (last_dose is not None and planned - last_dose <= _STILL_ACTIVE):
            yield _reason(rule, until=None)
        return
    wait = _wait(rule, pack, policy)
    if last_dose is None or wait is None:
        described = f" Treatment can follow {wait.describe()} after the last dose." if wait else ""
        yield _reason(rule, extra=described)
        return
    until = wait.after(last_dose)
    if until > planned:
        yield _reason(rule, until=until, extra=f" Earliest date: {until.isoformat()}.")


def _codes(rule: Rule, pack: Pack, policy: Policy | None) -> tuple[str, ...]:
    """The codes that trigger the rule: the chosen position of its dispute may widen them
    (seed-004 read literally: any scar, not only a keloid tendency)."""
    if rule.dispute is not None:
        chosen = pack.position(rule.dispute, policy).params.get("codes")
        if chosen is not None:
            return tuple(chosen)
    return rule.codes


def _scope(rule: Rule, pack: Pack, policy: Policy | None) -> str:
    """Whether the rule is confined to the treated areas: the chosen position of its dispute
    may widen it to the whole body (seed-004 read literally on psoriasis and eczema)."""
    if rule.dispute is not None:
        chosen = pack.position(rule.dispute, policy).params.get("scope")
        if chosen is not None:
            return str(chosen)
    return rule.scope


def _outcome(rule: Rule, pack: Pack, policy: Policy | None) -> Outcome:
    if rule.dispute is not None:
        chosen = pack.position(rule.dispute, policy).params.get("outcome")
        if chosen is not None:
            return chosen  # type: ignore[no-any-return]
    return rule.outcome


def _wait(rule: Rule, pack: Pack, policy: Policy | None) -> Span | None:
    if rule.dispute is not None:
        raw = pack.position(rule.dispute, policy).params.get("wait")
        if raw is not None:
            return Duration.model_validate(raw).span
    return rule.wait.span if rule.wait is not None else None


def _reason(rule: Rule, *, until: date | None = None, extra: str = "") -> Reason:
    return Reason(
        rule=rule.id,
        outcome=rule.outcome,
        message=rule.message + extra,
        sources=rule.sources,
        until=until,
    )


def _drop_milder_age_rules(reasons: list[Reason], pack: Pack) -> list[Reason]:
    """Keep only the strictest age band that applies (under 18 supersedes under 22)."""
    age_rules = {r.id: r for r in pack.data.rules if r.when == "age"}
    fired = [r for r in reasons if r.rule in age_rules]
    if len(fired) < 2:
        return reasons
    keep = min(fired, key=lambda r: age_rules[r.rule].age_below or 0)
    return [r for r in reasons if r.rule not in age_rules or r is keep]


def _holds(intake: Intake, pack: Pack) -> list[MedHold]:
    return medicine_holds(intake, pack, session_day=intake.planned_date)


def medicine_holds(intake: Intake, pack: Pack, *, session_day: date) -> list[MedHold]:
    """The pauses the intake's medicines need around a session on ``session_day``: stop on
    a day before it, take again from a day after (each later session has its own)."""
    planned, holds = session_day, []
    for medication in intake.medications:
        for hold in pack.data.holds:
            if not pack.medication_matches(medication.code, hold.codes):
                continue
            stop_on = hold.stop_before.span.before(planned)
            if medication.last_dose is not None and medication.last_dose < stop_on:
                continue  # already stopped long enough before the session
            holds.append(
                MedHold(
                    code=medication.code,
                    stop_on=stop_on,
                    resume_on=hold.resume_after.span.after(planned),
                    rule=hold.id,
                    message=hold.message,
                    sources=hold.sources,
                )
            )
    return holds


def _deferred_until(reasons: list[Reason]) -> date | None:
    """The latest of the deferral dates, or ``None`` if any deferral waits on a condition."""
    deferrals = [r for r in reasons if r.outcome == "deferred"]
    if any(r.until is None for r in deferrals):
        return None
    return max(r.until for r in deferrals if r.until is not None)


def _precautions(reasons: list[Reason], pack: Pack) -> tuple[PrecautionNote, ...]:
    rules = {rule.id: rule for rule in pack.data.rules}
    ids: dict[str, None] = {}
    for reason in reasons:
        rule = rules.get(reason.rule)
        if rule is not None and reason.outcome != "eligible":
            ids.update(dict.fromkeys(rule.precautions))
    return tuple(
        PrecautionNote(id=p.id, message=p.message, effect=p.effect, sources=p.sources)
        for p in (pack.precautions[i] for i in ids)
    )
