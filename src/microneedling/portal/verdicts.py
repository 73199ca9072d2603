"""A screening's verdict in plain words, with what happens next for each verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from microneedling.patients.models import Screening

HEADLINES = {
    "eligible": "Good news: you can book your course.",
    "eligible_with_precautions": "You can book, with a few precautions we will take.",
    "clinician_review": "A provider will look at your answers before you book.",
    "deferred": "Not yet: microneedling has to wait for now.",
    "not_eligible": "Microneedling is not right for you at the moment.",
}
NEXT_STEPS = {
    "eligible": "Choose your concerns and areas and we will propose the whole course.",
    "eligible_with_precautions": (
        "Choose your concerns and areas; the course we propose already follows the precautions "
        "below, and your provider goes through them with you on the day."
    ),
    "clinician_review": (
        "A provider reads your answers, usually within two working days, and approves or "
        "suggests a consultation first. You will find the decision here."
    ),
    "deferred": (
        "You can book from the date below. If nothing is dated, tell us when the reason "
        "below has passed and answer the questions again."
    ),
    "not_eligible": (
        "We suggest a consultation to talk about other options; answer the questions again "
        "if your situation changes."
    ),
}


@dataclass(frozen=True)
class Explanation:
    """What the patient reads about one screening."""

    verdict: str
    headline: str
    next_step: str
    reasons: tuple[str, ...]
    holds: tuple[tuple[str, date, date, str], ...]
    #: The session day the pauses in ``holds`` are counted from.
    holds_day: date
    precautions: tuple[str, ...]
    deferred_until: date | None
    review: str
    can_book: bool


def explain(screening: Screening) -> Explanation:
    """The screening's verdict, its reasons and the next step (approval counts)."""
    result = screening.result
    verdict = screening.verdict
    review = screening.review
    can_book = verdict in ("eligible", "eligible_with_precautions") or (
        verdict == "clinician_review" and review == Screening.Review.APPROVED
    )
    next_step = NEXT_STEPS[verdict]
    if verdict == "clinician_review" and review == Screening.Review.APPROVED:
        next_step = "A provider has approved your answers: you can book your course."
    elif verdict == "clinician_review" and review == Screening.Review.DECLINED:
        next_step = (
            "A provider looked at your answers and suggests a consultation first: "
            f"{screening.review_reason}"
        )
    return Explanation(
        verdict=verdict,
        headline=HEADLINES[verdict],
        next_step=next_step,
        reasons=tuple(
            r["message"] for r in result.get("reasons", []) if r["outcome"] != "eligible"
        ),
        holds=tuple(
            (
                h["code"].replace("_", " "),
                date.fromisoformat(h["stop_on"]),
                date.fromisoformat(h["resume_on"]),
                h["message"],
            )
            for h in result.get("med_holds", [])
        ),
        holds_day=date.fromisoformat(screening.intake["planned_date"]),
        precautions=tuple(p["message"] for p in result.get("precautions", [])),
        deferred_until=screening.deferred_until,
        review=review,
        can_book=can_book,
    )
