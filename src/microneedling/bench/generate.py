"""Generated, realistic engine inputs for the benchmarks (seeded, so runs are comparable)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from microneedling.core.knowledge import Pack


def _before(rng: random.Random, day: date) -> str:
    """An ISO date up to about a year before ``day``."""
    return (day - timedelta(days=rng.randrange(1, 400))).isoformat()


def intakes(pack: Pack, count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` intakes as JSON-like dicts: mostly healthy, some with several findings."""
    rng = random.Random(seed)
    areas = sorted(pack.areas)
    conditions = sorted(pack.codes["conditions"])
    medications = sorted(pack.codes["medications"])
    procedures = sorted(pack.codes["procedures"])
    allergies = sorted(pack.codes["allergies"])
    result = []
    for _ in range(count):
        planned = date(2026, 1, 1) + timedelta(days=rng.randrange(730))
        result.append(
            {
                "planned_date": planned.isoformat(),
                "birth_date": (
                    planned - timedelta(days=rng.randrange(16 * 365, 75 * 365))
                ).isoformat(),
                "fitzpatrick_type": rng.randint(1, 6),
                "treatment_areas": rng.sample(areas, rng.randint(1, 3)),
                "pregnant": rng.random() < 0.03,
                "breastfeeding": rng.random() < 0.03,
                "conditions": [
                    {
                        "code": rng.choice(conditions),
                        "area": rng.choice([None, *areas]),
                        "status": rng.choice(["active", "history"]),
                        "date": rng.choice([None, _before(rng, planned)]),
                    }
                    for _ in range(rng.choice([0, 0, 1, 2, 3]))
                ],
                "medications": [
                    {
                        "code": rng.choice(medications),
                        "last_dose": rng.choice([None, _before(rng, planned)]),
                    }
                    for _ in range(rng.choice([0, 0, 1, 2]))
                ],
                "procedures": [
                    {
                        "code": rng.choice(procedures),
                        "area": rng.choice([None, *areas]),
                        "date": _before(rng, planned),
                    }
                    for _ in range(rng.choice([0, 0, 1]))
                ],
                "allergies": rng.sample(allergies, rng.choice([0, 0, 0, 1])),
            }
        )
    return result


def course_requests(pack: Pack, count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` planning requests: one to three concerns, some with sessions done."""
    rng = random.Random(seed)
    codes = sorted(pack.indications)
    requests = []
    for _ in range(count):
        first = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        done = []
        if rng.random() < 0.4:
            day = first
            for _ in range(rng.randint(1, 3)):
                done.append(day)
                day += timedelta(days=rng.randint(25, 50))
        requests.append(
            {
                "indications": rng.sample(codes, rng.randint(1, 3)),
                "first_session": first,
                "fitzpatrick": rng.randint(1, 6),
                "done": done,
                "as_of": done[-1] + timedelta(days=rng.randint(0, 60)) if done else first,
            }
        )
    return requests


def triage_reports(pack: Pack, count: int, *, seed: int = 13) -> list[dict[str, Any]]:
    """``count`` side-effect reports with one to three symptoms."""
    rng = random.Random(seed)
    codes = sorted(pack.symptoms)
    return [
        {
            "symptoms": [
                {"code": c, "severity": rng.choice(["mild", "moderate", "severe"])}
                for c in rng.sample(codes, rng.randint(1, 3))
            ],
            "days_since_session": rng.randint(0, 20),
            "fitzpatrick_type": rng.randint(1, 6),
        }
        for _ in range(count)
    ]
