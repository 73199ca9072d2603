"""Shared fixtures for the engine tests: the shipped pack and a healthy baseline intake."""

from __future__ import annotations

from typing import Any

import pytest

from microneedling.core.knowledge import Pack, load_pack
from microneedling.core.screening import Intake


@pytest.fixture(scope="session")
def pack() -> Pack:
    return load_pack()


def make_intake(**changes: Any) -> Intake:
    """A healthy 35-year-old, skin type II, face only, planned for 2026-12-10; with changes."""
    data: dict[str, Any] = {
        "planned_date": "2026-12-10",
        "birth_date": "1991-06-15",
        "fitzpatrick_type": 2,
        "treatment_areas": ["face"],
        "pregnant": False,
        "breastfeeding": False,
        "conditions": [],
        "medications": [],
        "procedures": [],
        "allergies": [],
    }
    data.update(changes)
    return Intake.model_validate(data)
