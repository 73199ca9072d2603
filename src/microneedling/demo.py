"""A readable demonstration of the engines on one invented patient (``microneedling demo``)."""

from __future__ import annotations

from datetime import date

from microneedling.core.courses import plan_course
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.core.triage import TriageReport, triage

#: An invented patient: skin type V, acne scars on the face, cold sores in the past,
#: takes ibuprofen now and then.
_INTAKE = {
    "planned_date": "2027-01-12",
    "birth_date": "1994-05-30",
    "fitzpatrick_type": 5,
    "treatment_areas": ["face"],
    "pregnant": False,
    "breastfeeding": False,
    "conditions": [{"code": "herpes_simplex", "area": "face", "status": "history"}],
    "medications": [{"code": "ibuprofen", "last_dose": None}],
}


def engines_demo() -> str:
    """Screen, plan and triage for the sample patient; return the text to print."""
    pack = load_pack()
    intake = Intake.model_validate(_INTAKE)
    result = screen(intake, pack)
    lines = [
        f"Microneedling Clinic engines (knowledge pack {pack.version})",
        "",
        "Screening an invented patient (skin type V, acne scars, past cold sores):",
        f"  verdict: {result.verdict}",
    ]
    lines += [f"  - {r.outcome}: {r.message}" for r in result.reasons]
    lines += [f"  hold {h.code}: stop {h.stop_on}, resume {h.resume_on}" for h in result.med_holds]
    plan = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=intake.planned_date,
        fitzpatrick=intake.fitzpatrick_type,
        areas=["face"],
    )
    lines += ["", f"Course ({', '.join(plan.protocols)}):"]
    lines += [
        f"  session {s.number}: {s.earliest} … {s.target} … {s.latest}" for s in plan.sessions
    ]
    lines.append(f"  depth on the face: {plan.depth_mm['face'].min}–{plan.depth_mm['face'].max} mm")
    lines.append(
        f"  maintenance from {plan.maintenance.first_due}, every "
        f"{plan.maintenance.every_days_min}–{plan.maintenance.every_days_max} days"
    )
    replanned = plan_course(
        pack=pack,
        indications=["acne_scars"],
        first_session=intake.planned_date,
        fitzpatrick=5,
        done=[intake.planned_date, date(2027, 2, 16)],
        as_of=date(2027, 3, 1),
    )
    lines += ["", f"Re-planned after session 2 came late ({replanned.status}):"]
    lines += [
        f"  session {s.number}: {s.earliest} … {s.target} … {s.latest}" for s in replanned.sessions
    ]
    for day, code in ((2, "redness"), (8, "redness"), (4, "blisters")):
        report = TriageReport.model_validate(
            {"symptoms": [{"code": code}], "days_since_session": day, "fitzpatrick_type": 5}
        )
        lines.append(f"Triage: {code} on day {day} → {triage(report, pack).action}")
    lines.append("")
    return "\n".join(lines)
