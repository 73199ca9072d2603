"""A hand-written fuzz of the FHIR search parameters, over real HTTP.

For every type, hypothesis builds searches from that type's own parameters, the control
parameters and names it does not know, with values of every shape a client might send:
dates with and without prefixes, references, ids, numbers, junk and unicode. The server must
never fail (5xx); every refusal is an OperationOutcome naming the problem; every answer is a
searchset Bundle of the asked type; and a patient's search only ever returns their own.
"""

from __future__ import annotations

import json
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
#: Dates at and past the calendar's edges: FHIR's first and last days, alone, as a year or a
#: month, and with times whose offset carries them past either edge once in UTC.
EDGE_DATES = st.builds(
    lambda prefix, day, tail: f"{prefix}{day}{tail}",
    st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]),
    st.sampled_from(
        [
            "0001-01-01",
            "0001-01-02",
            "9999-12-31",
            "9999-12-30",
            "0001",
            "9999",
            "0001-01",
            "9999-12",
            "0000-12-31",
            "10000-01-01",
        ]
    ),
    st.sampled_from(
        [
            "",
            "T00:00:00Z",
            "T23:59:59Z",
            "T23:59:59.999999Z",
            "T00:00:00+05:00",
            "T00:00:00+14:00",
            "T23:59:59-12:00",
            "T23:00:00-05:00",
            "T12:00:00+00:00",
        ]
    ),
)
REFERENCES = st.builds(
    lambda kind, ident: f"{kind}/{ident}",
    st.sampled_from(["Patient", "Practitioner", "Location", "Appointment", "Nope", ""]),
    st.one_of(st.integers(-5, 10**20).map(str), st.text(max_size=8)),
)
VALUES = st.one_of(
    DATES,
    EDGE_DATES,
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


#: Each type's date parameters (and a Slot's start, searched in a real Schedule).
DATE_PARAMS = [
    (name, param)
    for name, kind in KINDS.items()
    for param in kind.params
    if param in ("date", "birthdate", "authored")
] + [("Slot", "start")]


def test_fhir_date_searches_at_the_calendars_edges_never_fail(
    live_server, fhir_world: World
) -> None:  # type: ignore[no-untyped-def]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fhir_world.token('front_desk')}"
    clinic = fhir_world.clinic
    schedule = f"Schedule/{clinic.ada.pk}-{clinic.location.pk}"

    @given(
        target=st.sampled_from(DATE_PARAMS),
        values=st.lists(st.one_of(EDGE_DATES, DATES), min_size=1, max_size=2),
    )
    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def probe(target: tuple[str, str], values: list[str]) -> None:
        type_name, param = target
        pairs = [(param, value) for value in values]
        if type_name == "Slot":
            pairs.append(("schedule", schedule))
        answer = session.get(f"{live_server.url}/fhir/R4/{type_name}", params=pairs, timeout=30)
        assert answer.status_code in (200, 400), (type_name, pairs, answer.text[:300])
        body = answer.json()
        if answer.status_code == 400:
            assert body["resourceType"] == "OperationOutcome", body
            assert body["issue"][0]["expression"] == [param], body
        else:
            assert body["resourceType"] == "Bundle" and body["type"] == "searchset", body

    probe()


# --- Booking: Appointment bodies of every shape ----------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["Patient/1", "Slot/1-1-1-1", "Slot/", "Patient/", "Practitioner/1"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def appointment_bodies(draw: Any, slot: str, patient: str) -> bytes:
    """A booking body: right, or with one of its parts (or the whole) of another shape."""
    reference = st.one_of(
        JSON_VALUES,
        st.sampled_from([slot, patient, f"{slot}9", "Slot/1-1-1-999999999999999999"]),
    )
    body: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(["Appointment", "Appointment", "Patient"])),
        "slot": draw(
            st.one_of(
                st.just([{"reference": slot}]),
                st.lists(
                    st.one_of(st.builds(lambda r: {"reference": r}, reference), JSON_VALUES),
                    max_size=2,
                ),
                JSON_VALUES,
            )
        ),
        "participant": draw(
            st.one_of(
                st.just([{"actor": {"reference": patient}}]),
                st.lists(
                    st.one_of(
                        st.builds(lambda r: {"actor": {"reference": r}}, reference),
                        st.builds(lambda a: {"actor": a}, JSON_VALUES),
                        JSON_VALUES,
                    ),
                    max_size=3,
                ),
                JSON_VALUES,
            )
        ),
    }
    for key in draw(st.lists(st.sampled_from(["slot", "participant", "resourceType"]))):
        body.pop(key, None)
    encoded = json.dumps(body).encode()
    return draw(
        st.one_of(
            st.just(encoded),
            st.just(json.dumps(draw(JSON_VALUES)).encode()),
            st.binary(max_size=12).map(lambda junk: junk + encoded),
            st.sampled_from([b"\xff{}", b"[" * 5000, b"", b"{", b"\xef\xbb\xbf" + encoded]),
        )
    )


def test_fhir_booking_with_a_body_of_any_shape_never_fails(live_server, fhir_world: World) -> None:  # type: ignore[no-untyped-def]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fhir_world.token('front_desk')}"
    session.headers["Content-Type"] = "application/fhir+json"
    clinic = fhir_world.clinic
    url = f"{live_server.url}/fhir/R4"
    schedule = f"Schedule/{clinic.ada.pk}-{clinic.location.pk}"
    free = session.get(f"{url}/Slot", params={"schedule": schedule}, timeout=30).json()
    slot = f"Slot/{free['entry'][0]['resource']['id']}"
    patient = f"Patient/{fhir_world.cleo.patient.pk}"

    @given(body=appointment_bodies(slot, patient))
    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def probe(body: bytes) -> None:
        answer = session.post(f"{url}/Appointment", data=body, timeout=30)
        assert answer.status_code in (201, 400, 404, 409, 422), (body[:200], answer.text[:300])
        resource = answer.json()
        if answer.status_code == 201:
            assert resource["resourceType"] == "Appointment"
            return
        assert resource["resourceType"] == "OperationOutcome", resource
        issue = resource["issue"][0]
        assert issue["diagnostics"], resource
        if answer.status_code == 400 and b"\\u0000" not in body and b"\x00" not in body:
            assert issue["expression"][0] in (
                "body",
                "resourceType",
                "Appointment.slot",
                "Appointment.participant",
            ), resource

    probe()
