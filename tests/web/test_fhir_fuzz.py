"""A hand-written fuzz of the FHIR search parameters, over real HTTP.

For every type, hypothesis builds searches from that type's own parameters, the control
parameters and names it does not know, with values of every shape a client might send:
dates with and without prefixes, references, ids, numbers, junk and unicode. The server must
never fail (5xx); every refusal is an OperationOutcome naming the problem; every answer is a
searchset Bundle of the asked type; and a patient's search only ever returns their own.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microneedling.interop.fhir.views import ALL_TYPES, KINDS, PAIRED
from tests.web.access_world import World, build_world
from tests.web.conftest import Clinic

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_now")]

CONTROL = ["_count", "_offset", "_include", "_id", "_sort", "_elements", "_format"]
EXTRA = {"Slot": ["schedule", "start", "service-type", "status"]}
EXTRA.update({key: ["practitioner", "location", "actor"] for key in PAIRED})

DATES = st.builds(
    lambda prefix, year, month, day, tail: f"{prefix}{year:04d}-{month:02d}-{day:02d}{tail}",
    st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx"]),
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["", "T10:00:00Z", "T25:61", "T09:00:00+05:00", "Z", "T"]),
)
REFERENCES = st.builds(
    lambda kind, ident: f"{kind}/{ident}",
    st.sampled_from(["Patient", "Practitioner", "Location", "Appointment", "Nope", ""]),
    st.one_of(st.integers(-5, 10**20).map(str), st.text(max_size=8)),
)
VALUES = st.one_of(
    DATES,
    REFERENCES,
    st.integers(-(10**6), 10**20).map(str),
    st.sampled_from(["", ",", ",,1", "1,2,3", "²", "٣", "1e3", "-0", "0x10", "true", "Patient:"]),
    st.text(max_size=20),
)


def _names(type_name: str) -> list[str]:
    own = list(KINDS[type_name].params) if type_name in KINDS else EXTRA.get(type_name, [])
    includes = [f"{type_name}:{name}" for name in getattr(KINDS.get(type_name), "includes", {})]
    return own + CONTROL + includes + ["unknown-param", "patient:missing"]


@st.composite
def searches(draw: Any) -> tuple[str, list[tuple[str, str]]]:
    type_name = draw(st.sampled_from(ALL_TYPES))
    names = _names(type_name)
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(names), VALUES), max_size=4),
    )
    return type_name, pairs


@pytest.fixture
def fhir_world(clinic: Clinic, tmp_path, settings) -> World:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return build_world(clinic)


@pytest.mark.parametrize("role", ["patient", "provider", "front_desk"])
def test_fhir_search_never_fails_and_refuses_with_an_operation_outcome(
    live_server, fhir_world: World, role: str
) -> None:  # type: ignore[no-untyped-def]
    token = fhir_world.token(role)
    own = f"Patient/{fhir_world.cleo.patient.pk}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    @given(search=searches())
    @settings(
        max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def probe(search: tuple[str, list[tuple[str, str]]]) -> None:
        type_name, pairs = search
        answer = session.get(f"{live_server.url}/fhir/R4/{type_name}", params=pairs, timeout=30)
        assert answer.status_code < 500, (type_name, pairs, answer.text[:300])
        body = answer.json()
        if answer.status_code >= 400:
            assert body["resourceType"] == "OperationOutcome", body
            assert body["issue"][0]["diagnostics"], body
            return
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
        assert isinstance(body["total"], int) and body["total"] >= 0
        for entry in body.get("entry", []):
            resource = entry["resource"]
            if entry.get("search", {}).get("mode") == "include":
                continue
            assert resource["resourceType"] == type_name
            if role == "patient" and type_name in KINDS and KINDS[type_name].patient_field:
                assert own in str(resource) or resource.get("id") == own.split("/")[1], resource

    probe()
