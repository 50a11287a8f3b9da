"""The API against its own OpenAPI document, with schemathesis on loopback: no 5xx, no answer
that breaks the documented schema (status codes, content types, bodies; errors in the one shape).

A real uvicorn serves the app over SQLite and over PostgreSQL (which refuses NUL characters and
integers beyond 32 bits: inputs SQLite lets through), with recorded runs, traces and logs in it.
Each operation gets a bounded number of generated requests that fit the schema and as many that
do not, with a fixed seed (`derandomize`), so a CI run is repeatable. `/api/stream` is left out:
it streams until the client leaves (its parameters and auth are tested in
test_api_stream_ui_auth.py and test_hostile.py).

The checks are schemathesis's own, minus the two that judge how strict the *input* schema is
(`positive_data_acceptance`: the server also refuses NUL characters and control characters in
rule patterns, which the schema does not spell out; `negative_data_rejection`: FastAPI accepts a
number as a time). Every answer, to valid and invalid requests alike, must still be no 5xx and
match its documented status, content type, body and headers.

The operations are listed from the app's own OpenAPI at collection time and driven with
`@given(operation.as_strategy(...))` (schemathesis's `from_fixture` loader does not run on the
pytest this project uses). Generated run ids never name a recorded run, so the response schemas
of real runs, steps, traces, logs and retention reports are checked by explicit requests too.
An operation whose every input is valid (no parameters, or only free-text ones) has no invalid
requests to generate: hypothesis reports that as Unsatisfiable.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from rundossier.server import create_app
from rundossier.settings import Settings
from tests.seeding import failed_run, history_run, log_run
from tests.server.conftest import Api

EXAMPLES_PER_OPERATION = 25
SKIPPED = {"/api/stream"}


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation, from the app built in-process."""
    home = tempfile.mkdtemp(prefix="rd-openapi-")
    app = create_app(Settings.resolve(explicit={"home": home}))
    return [
        (method.upper(), path)
        for path, item in sorted(app.openapi()["paths"].items())
        if path not in SKIPPED
        for method in item
    ]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def seeded_ids(_served: Api) -> dict[str, str]:
    return {
        "history": history_run(
            _served.store, flow_id="nightly_etl", status="failed", error=("KeyError", "'customer_id'")
        ),
        "failed": failed_run(_served.rec),
        "logged": log_run(_served.rec, 50),
    }


@pytest.fixture(scope="module")
def live_schema(_served: Api, seeded_ids: dict[str, str]) -> Iterator[schemathesis.BaseSchema]:
    yield schemathesis.openapi.from_url(f"{_served.url}/openapi.json")


def test_the_operations_cover_the_api() -> None:
    paths = {path for _, path in OPERATIONS}
    assert {"/api/runs", "/api/runs/{run_id}/trace", "/api/retention/{pattern}", "/api/failures"} <= paths
    assert ("POST", "/api/retention/sweep") in OPERATIONS and ("PUT", "/api/retention/{pattern}") in OPERATIONS


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_schema(
    live_schema: schemathesis.BaseSchema, _served: Api, method: str, path: str, mode: GenerationMode
) -> None:
    operation = live_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=_served.url, timeout=30, excluded_checks=[positive_data_acceptance, negative_data_rejection]
        )

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise


def _real_requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Requests that reach recorded data (generated run ids never do): each answer is checked
    against its documented response schema with the real bodies."""
    failed, logged = ids["failed"], ids["logged"]
    return [
        ("GET", "/healthz", {}, {}),
        ("GET", "/api/about", {}, {}),
        ("GET", "/api/runs", {}, {}),
        ("GET", "/api/runs", {}, {"status": "failed", "limit": 1}),
        ("GET", "/api/flows", {}, {}),
        ("GET", "/api/lookup", {}, {"orchestrator": "python", "flow_id": "nightly_etl", "run_key": ids["history"]}),
        ("GET", "/api/runs/{run_id}", {"run_id": failed}, {}),
        ("GET", "/api/runs/{run_id}", {"run_id": logged}, {}),
        ("GET", "/api/runs/{run_id}", {"run_id": ids["history"]}, {}),
        ("GET", "/api/runs/{run_id}/trace", {"run_id": failed}, {}),
        ("GET", "/api/runs/{run_id}/trace.json", {"run_id": failed}, {}),
        ("GET", "/api/runs/{run_id}/steps/{step_id}/trace", {"run_id": failed, "step_id": "load"}, {"try": 1}),
        ("GET", "/api/runs/{run_id}/steps/{step_id}/trace.json", {"run_id": failed, "step_id": "load"}, {}),
        ("GET", "/api/runs/{run_id}/steps/{step_id}/logs", {"run_id": logged, "step_id": "render"}, {"q": "row"}),
        ("GET", "/api/runs/{run_id}/steps/{step_id}/logs/download", {"run_id": logged, "step_id": "render"}, {}),
        ("GET", "/api/failures", {}, {}),
        ("GET", "/api/retention", {}, {}),
        ("POST", "/api/retention/sweep", {}, {"dry_run": "true", "orphans": "true"}),
        ("DELETE", "/api/retention/{pattern}", {"pattern": "no_such_rule"}, {}),
    ]


def test_answers_with_recorded_data_match_their_response_schemas(
    live_schema: schemathesis.BaseSchema, _served: Api, seeded_ids: dict[str, str]
) -> None:
    put = live_schema["/api/retention/{pattern}"]["PUT"]
    put.Case(
        path_parameters={"pattern": "nightly_*"}, body={"keep_days": 30}, media_type="application/json"
    ).call_and_validate(base_url=_served.url, timeout=30)
    checked = 1
    for method, path, path_parameters, query in _real_requests(seeded_ids):
        case = live_schema[path][method].Case(path_parameters=path_parameters, query=query)
        response = case.call_and_validate(base_url=_served.url, timeout=30)
        assert response.status_code < 300 or path == "/api/retention/{pattern}", (path, response.text[:300])
        checked += 1
    delete = live_schema["/api/retention/{pattern}"]["DELETE"]
    response = delete.Case(path_parameters={"pattern": "nightly_*"}).call_and_validate(base_url=_served.url, timeout=30)
    assert response.status_code == 200
    assert checked == len(_real_requests(seeded_ids)) + 1
