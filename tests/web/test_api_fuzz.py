"""Schemathesis against the running app's whole OpenAPI document, over real HTTP.

Every operation is called with generated inputs (valid and invalid) by a chain operator's
token: no answer may be a server error or break the documented schema, and every 4xx must be
problem+json with a title, status and detail. Runs on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.web.access_world import World, build_world
from tests.web.conftest import Clinic

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_now")]


@pytest.fixture
def api_world(clinic: Clinic, tmp_path, settings) -> World:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return build_world(clinic)


def problem_json_for_client_errors(ctx: Any, response: Any, case: Any) -> bool:
    """A 4xx answer is RFC 9457 problem+json naming what went wrong."""
    if 400 <= response.status_code < 500:
        headers = {name.lower(): value for name, value in response.headers.items()}
        kind = headers.get("content-type", [""])
        kind = kind[0] if isinstance(kind, list) else kind
        assert kind.startswith("application/problem+json"), (response.status_code, kind)
        body = response.json()
        assert {"title", "status", "detail"} <= set(body), body
        assert body["status"] == response.status_code
    return True


PROBLEM_CHECK = schemathesis.check(problem_json_for_client_errors)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_every_generated_request_within_its_contract(
    live_server, api_world: World, mode: GenerationMode
) -> None:  # type: ignore[no-untyped-def]
    # Unknown query parameters are ignored, as HTTP servers do, not refused: do not send them.
    config = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}})
    loaded = schemathesis.openapi.from_url(
        f"{live_server.url}/api/v1/openapi.json", config=config, timeout=30
    )
    token = api_world.token("chain_operator")
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 12  # every operation of the document, none skipped
    without_inputs: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            response = case.call(
                base_url=live_server.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            case.validate_response(
                response,
                additional_checks=[PROBLEM_CHECK],
                # A well-formed request may still be refused for what it asks (an unknown
                # ZIP code, a slot already taken): 4xx there is right, not a failure.
                excluded_checks=[positive_data_acceptance],
            )

        try:
            exercise()
        except Unsatisfiable:
            # No input to make invalid (GET /health takes none): nothing negative to send.
            assert mode == GenerationMode.NEGATIVE, operation.label
            without_inputs.append(operation.label)
    assert len(without_inputs) <= 3, without_inputs
